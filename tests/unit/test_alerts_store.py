"""SqliteAlertStore: idempotent upserts, ordering, filters, acknowledgement, persistence."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.bus import InProcessBus
from alerts.schema import InvalidEventError
from alerts.store import AlertNotFoundError, AlertStore, AlertStoreError, SqliteAlertStore
from tests.factories import BBOX, SCORE, T0, make_event

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    s = SqliteAlertStore(tmp_path / "db" / "alerts.sqlite")
    yield s
    s.close()


def test_satisfies_protocol_and_uses_wal_and_migrations(store: SqliteAlertStore) -> None:
    assert isinstance(store, AlertStore)
    assert store.schema_version == 1
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"alerts_by_urgency", "alerts_by_camera", "alerts_by_status"} <= indexes
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM alerts WHERE camera_id = ? "
                "ORDER BY priority DESC, wall_time DESC LIMIT 10",
                ("cam-1",),
            )
        )
        assert "alerts_by_camera" in plan
    finally:
        conn.close()


def test_start_end_and_replays_make_one_row_with_end(store: SqliteAlertStore) -> None:
    ev = make_event(1)
    start, end = ev.to_record(), ev.closed(9.5).to_record()
    store.upsert(start)
    first = store.get(ev.event_id)
    assert first is not None and first.is_open and first.status == "new"
    store.upsert(end)
    for record in (start, end, start, end):
        store.upsert(record)
    assert store.count() == 1
    alert = store.get(ev.event_id)
    assert alert is not None
    assert alert.end_s == 9.5 and not alert.is_open
    assert alert.received_at == first.received_at
    assert alert.bbox == list(BBOX)
    assert alert.wall_time == datetime.fromtimestamp(T0 + 1, UTC)
    assert alert.model_dump()["score"] == SCORE


def test_end_without_start_creates_the_alert_and_late_start_changes_nothing(
    store: SqliteAlertStore,
) -> None:
    ev = make_event(2)
    store.upsert(ev.closed(4.0).to_record())
    alert = store.get(ev.event_id)
    assert alert is not None and alert.end_s == 4.0
    store.upsert(ev.to_record())  # start arrives late: must not reopen
    alert = store.get(ev.event_id)
    assert alert is not None and alert.end_s == 4.0


def test_snapshot_is_filled_in_but_never_replaced(store: SqliteAlertStore) -> None:
    ev = make_event(3)
    store.upsert(ev.to_record())
    store.upsert(ev.with_snapshot("cam-1/2024-05-01/a.jpg").closed(5.0).to_record())
    store.upsert(ev.with_snapshot("cam-1/2024-05-01/b.jpg").closed(5.0).to_record())
    alert = store.get(ev.event_id)
    assert alert is not None and alert.snapshot == "cam-1/2024-05-01/a.jpg"


def test_stored_and_closed_counters(store: SqliteAlertStore) -> None:
    labels = {"type": "counter-test"}
    stored0 = REGISTRY.get_sample_value("argus_alerts_stored_total", labels) or 0.0
    closed0 = REGISTRY.get_sample_value("argus_alerts_closed_total", labels) or 0.0
    ev = make_event(4, type_="counter-test")
    for rec in (
        ev.to_record(),
        ev.to_record(),
        ev.closed(1.0).to_record(),
        ev.closed(1.0).to_record(),
    ):
        store.upsert(rec)
    assert REGISTRY.get_sample_value("argus_alerts_stored_total", labels) == stored0 + 1
    assert REGISTRY.get_sample_value("argus_alerts_closed_total", labels) == closed0 + 1


def test_invalid_record_is_rejected_and_nothing_stored(store: SqliteAlertStore) -> None:
    bad = make_event(5).to_record()
    bad["score"] = 3.0
    with pytest.raises(InvalidEventError, match="score"):
        store.upsert(bad)
    assert store.count() == 0


def test_order_is_priority_then_recency(store: SqliteAlertStore) -> None:
    spec = [
        (1, 10, T0 + 100),
        (2, 90, T0 + 1),
        (3, 90, T0 + 50),
        (4, 50, T0 + 200),
        (5, 10, T0 + 300),
    ]
    for n, prio, wall in spec:
        store.upsert(make_event(n, priority=prio, wall=wall).to_record())
    got = [a.track_id for a in store.list()]
    assert got == [3, 2, 4, 5, 1]
    assert [a.track_id for a in store.list(limit=2)] == [3, 2]
    assert [a.track_id for a in store.list(limit=2, offset=2)] == [4, 5]
    assert [a.track_id for a in store.list(limit=2, offset=4)] == [1]
    assert store.list(offset=10) == []


def test_filters_and_count(store: SqliteAlertStore) -> None:
    store.upsert(make_event(1, camera="cam-1", type_="intrusion").to_record())
    store.upsert(make_event(2, camera="cam-2", type_="intrusion").to_record())
    store.upsert(make_event(3, camera="cam-2", type_="loitering").closed(9.0).to_record())
    store.acknowledge(make_event(2, camera="cam-2").event_id, by="ops")

    def ids(**kw: Any) -> set[int | None]:
        assert store.count(**kw) == len(store.list(**kw))
        return {a.track_id for a in store.list(**kw)}

    assert ids() == {1, 2, 3}
    assert ids(camera_id="cam-2") == {2, 3}
    assert ids(type="loitering") == {3}
    assert ids(status="acknowledged") == {2}
    assert ids(status="new") == {1, 3}
    assert ids(open=True) == {1, 2}
    assert ids(open=False) == {3}
    assert ids(camera_id="cam-2", type="intrusion", status="acknowledged", open=True) == {2}
    assert ids(camera_id="nope") == set()
    assert ids(camera_id="x' OR '1'='1") == set()  # parameterised, not interpolated


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"status": "closed"}])
def test_list_argument_bounds(store: SqliteAlertStore, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        store.list(**kw)


def test_acknowledge_is_idempotent_and_keeps_first(store: SqliteAlertStore) -> None:
    ev = make_event(1)
    store.upsert(ev.to_record())
    acks0 = REGISTRY.get_sample_value("argus_alerts_acknowledged_total") or 0.0
    a1 = store.acknowledge(ev.event_id, by="alice", note="checked")
    assert a1.status == "acknowledged" and a1.acknowledged_by == "alice" and a1.note == "checked"
    assert a1.acknowledged_at is not None
    a2 = store.acknowledge(ev.event_id, by="bob", note=None)
    assert a2 == a1
    assert REGISTRY.get_sample_value("argus_alerts_acknowledged_total") == acks0 + 1
    # later records of the same event do not reset operator state
    store.upsert(ev.closed(3.0).to_record())
    a3 = store.get(ev.event_id)
    assert a3 is not None and a3.status == "acknowledged" and a3.end_s == 3.0


def test_acknowledge_unknown_raises(store: SqliteAlertStore) -> None:
    with pytest.raises(AlertNotFoundError) as info:
        store.acknowledge("00000000-0000-0000-0000-000000000000", by="x")
    assert info.value.event_id == "00000000-0000-0000-0000-000000000000"
    assert store.get("00000000-0000-0000-0000-000000000000") is None


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    with SqliteAlertStore(path) as s:
        s.upsert(make_event(1).to_record())
        s.acknowledge(make_event(1).event_id, by="alice", note="n")
        s.upsert(make_event(2).to_record())
    with SqliteAlertStore(path) as s:
        assert s.schema_version == 1
        assert s.count() == 2
        a = s.get(make_event(1).event_id)
        assert a is not None and a.status == "acknowledged" and a.note == "n"
        s.upsert(make_event(2).closed(7.0).to_record())
        b = s.get(make_event(2).event_id)
        assert b is not None and b.end_s == 7.0


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    SqliteAlertStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(AlertStoreError, match="99"):
        SqliteAlertStore(path)


def test_unusable_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AlertStoreError) as info:
        SqliteAlertStore(path)
    assert info.value.path == str(path)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_concurrent_writers_while_reading(store: SqliteAlertStore) -> None:
    n_per_thread = 150
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(camera: str) -> None:
        try:
            for i in range(n_per_thread):
                ev = make_event(i, camera=camera, priority=i % 101)
                store.upsert(ev.to_record())
                store.upsert(ev.closed(i + 1.0).to_record())
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    def reader() -> None:
        try:
            while not done.is_set():
                page = store.list(limit=20)
                prios = [a.priority for a in page]
                assert prios == sorted(prios, reverse=True)
                store.count(open=True)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(c,)) for c in ("cam-a", "cam-b")]
    read = threading.Thread(target=reader)
    read.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    read.join()
    assert errors == []
    assert store.count() == 2 * n_per_thread
    assert store.count(open=True) == 0


def test_store_as_bus_subscriber(store: SqliteAlertStore) -> None:
    bus = InProcessBus()
    bus.subscribe(store)
    ev = make_event(1)
    bus.publish(ev.to_record())
    bus.publish(ev.closed(2.0).to_record())
    alert = store.get(ev.event_id)
    assert alert is not None and alert.end_s == 2.0


def test_closed_store_raises_store_error_with_cause(tmp_path: Path) -> None:
    s = SqliteAlertStore(tmp_path / "a.sqlite")
    s.close()
    for call in (
        lambda: s.upsert(make_event(1).to_record()),
        lambda: s.get(make_event(1).event_id),
        lambda: s.list(),
        lambda: s.count(),
        s.ping,
        lambda: s.acknowledge(make_event(1).event_id, by="x"),
    ):
        with pytest.raises(AlertStoreError) as info:
            call()
        assert isinstance(info.value.__cause__, sqlite3.Error)
