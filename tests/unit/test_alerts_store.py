"""SqliteAlertStore: idempotent upserts, ordering, filters, acknowledgement, persistence."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.bus import InProcessBus
from alerts.schema import InvalidEventError
from alerts.store import (
    _MIGRATIONS,
    AlertNotFoundError,
    AlertStore,
    AlertStoreError,
    ControlStore,
    RulesRevisionConflictError,
    SqlAlertStore,
    SqliteAlertStore,
)
from selector.event import Event
from selector.suppression import Suppression
from tests.factories import BBOX, SCORE, T0, make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlAlertStore:
    """A store on a fresh database, SQLite and PostgreSQL in turn."""
    return store_factory()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    """A SQLite store (for what only SQLite has: its file, its migrations, its pragmas)."""
    s = SqliteAlertStore(tmp_path / "db" / "alerts.sqlite")
    yield s
    s.close()


def test_satisfies_protocol_and_uses_wal_and_migrations(sqlite_store: SqliteAlertStore) -> None:
    store = sqlite_store
    assert isinstance(store, AlertStore)
    assert store.schema_version == len(_MIGRATIONS)
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {
            "alerts_by_urgency",
            "alerts_by_camera",
            "alerts_by_status",
            "alerts_by_type",
        } <= indexes
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


def test_start_end_and_replays_make_one_row_with_end(store: SqlAlertStore) -> None:
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
    store: SqlAlertStore,
) -> None:
    ev = make_event(2)
    store.upsert(ev.closed(4.0).to_record())
    alert = store.get(ev.event_id)
    assert alert is not None and alert.end_s == 4.0
    store.upsert(ev.to_record())  # start arrives late: must not reopen
    alert = store.get(ev.event_id)
    assert alert is not None and alert.end_s == 4.0


def test_snapshot_is_filled_in_but_never_replaced(store: SqlAlertStore) -> None:
    ev = make_event(3)
    store.upsert(ev.to_record())
    store.upsert(ev.with_snapshot("cam-1/2024-05-01/a.jpg").closed(5.0).to_record())
    store.upsert(ev.with_snapshot("cam-1/2024-05-01/b.jpg").closed(5.0).to_record())
    alert = store.get(ev.event_id)
    assert alert is not None and alert.snapshot == "cam-1/2024-05-01/a.jpg"


def test_stored_and_closed_counters(store: SqlAlertStore) -> None:
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


def test_invalid_record_is_rejected_and_nothing_stored(store: SqlAlertStore) -> None:
    bad = make_event(5).to_record()
    bad["score"] = 3.0
    with pytest.raises(InvalidEventError, match="score"):
        store.upsert(bad)
    assert store.count() == 0


def test_order_is_priority_then_recency(store: SqlAlertStore) -> None:
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


def test_filters_and_count(store: SqlAlertStore) -> None:
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
def test_list_argument_bounds(store: SqlAlertStore, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        store.list(**kw)


def test_acknowledge_is_idempotent_and_keeps_first(store: SqlAlertStore) -> None:
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


def test_acknowledge_unknown_raises(store: SqlAlertStore) -> None:
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
        assert s.schema_version == len(_MIGRATIONS)
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


def test_concurrent_writers_while_reading(store: SqlAlertStore) -> None:
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


def test_store_as_bus_subscriber(store: SqlAlertStore) -> None:
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


# --------------------------------------------------------------- control plane (schema 2)


def _suppression(n: int, *, expires_at: float = T0 + 3600, **kw: Any) -> Suppression:
    fields: dict[str, Any] = {
        "suppression_id": f"00000000-0000-4000-8000-{n:012d}",
        "camera_id": "cam-1",
        "rule_id": "intrusion:z",
        "zone": "z",
        "label": "person",
        "region": (0.0, 1.0, 2.5, 3.0),
        "expires_at": expires_at,
        "created_at": T0 + n,
        "source_event_id": make_event(n).event_id,
        "note": f"note {n}",
    }
    return Suppression(**(fields | kw))


def test_version_1_database_is_migrated_keeping_alerts(tmp_path: Path) -> None:
    """A database written by the schema-1 code gains the control tables and the new status."""
    path = tmp_path / "alerts.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.close()
    with SqliteAlertStore(path) as old_shape:  # v1 -> v2 -> v3 here
        assert old_shape.schema_version == len(_MIGRATIONS)
    # and with rows: build v1 again, store through a v1-shaped table, then migrate
    path2 = tmp_path / "alerts2.sqlite"
    conn = sqlite3.connect(path2)
    conn.executescript(_MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO alerts (event_id, schema_version, camera_id, type, rule_id, zone, "
        "track_id, label, score, priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, "
        "bbox_y2, start_seq, snapshot, wall_time, status, acknowledged_at, acknowledged_by, "
        "note, received_at) VALUES (?, 1, 'cam-1', 'intrusion', 'intrusion:z', 'z', 1, "
        "'person', 0.5, 70, 1.0, NULL, 1.0, 2.0, 30.0, 40.0, 1, NULL, ?, 'acknowledged', ?, "
        "'bob', 'seen', ?)",
        (make_event(1).event_id, T0, T0 + 5, T0 + 1),
    )
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError):  # v1 refuses the new status
        conn.execute("UPDATE alerts SET status = 'false_positive'")
    conn.close()
    with SqliteAlertStore(path2) as s:
        assert s.schema_version == len(_MIGRATIONS)
        a = s.get(make_event(1).event_id)
        assert a is not None and a.status == "acknowledged" and a.acknowledged_by == "bob"
        assert a.bbox == [1.0, 2.0, 30.0, 40.0] and a.priority == 70
        assert a.line is None and a.direction is None and a.details == {}
        fp = s.mark_false_positive(make_event(1).event_id, by="carol", note="shadow")
        assert fp.status == "false_positive"
        assert fp.acknowledged_by == "bob" and fp.note == "shadow"  # first actor kept
        s.add_suppression(_suppression(1))
        assert s.put_rules([{"type": "intrusion"}], 0) == 1
    conn = sqlite3.connect(path2)
    try:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"alerts_by_urgency", "alerts_by_camera", "alerts_by_status"} <= indexes
        assert "alerts_v2" not in {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        conn.close()


def test_false_positive_status_and_filter(store: SqlAlertStore) -> None:
    for n in (1, 2, 3):
        store.upsert(make_event(n).to_record())
    a = store.mark_false_positive(make_event(1).event_id, by="alice", note=None)
    assert a.status == "false_positive" and a.acknowledged_by == "alice"
    assert a.acknowledged_at is not None and a.note is None
    again = store.mark_false_positive(make_event(1).event_id, by="bob", note="n")
    assert again.acknowledged_by == "alice" and again.acknowledged_at == a.acknowledged_at
    assert again.note == "n"
    # acknowledging a false positive changes nothing
    assert store.acknowledge(make_event(1).event_id, by="x").status == "false_positive"
    store.acknowledge(make_event(2).event_id, by="x")
    fps = store.list(status="false_positive")
    assert [x.event_id for x in fps] == [make_event(1).event_id]
    assert store.count(status="new") == 1 and store.count(status="false_positive") == 1
    with pytest.raises(AlertNotFoundError):
        store.mark_false_positive("00000000-0000-0000-0000-000000000000", by="x")


def test_suppressions_round_trip_list_and_delete(store: SqlAlertStore) -> None:
    s1 = _suppression(1)
    s2 = _suppression(2, region=None, rule_id=None, zone=None, label=None, source_event_id=None)
    expired = _suppression(3, expires_at=T0 + 10)
    for s in (s1, s2, expired):
        store.add_suppression(s)
    assert store.get_suppression(s1.suppression_id) == s1
    assert store.get_suppression(s2.suppression_id) == s2
    assert store.get_suppression("nope") is None
    now = T0 + 100
    assert store.list_suppressions(active_only=True, now=now) == [s2, s1]  # newest first
    assert store.list_suppressions(active_only=False, now=now) == [expired, s2, s1]
    assert store.list_suppressions(active_only=True, now=T0 + 5) == [expired, s2, s1]
    assert store.list_suppressions(active_only=True, now=T0 + 3600) == []  # expiry exclusive
    replaced = _suppression(1, note="changed")
    store.add_suppression(replaced)  # same id: replaced, not duplicated
    assert store.get_suppression(s1.suppression_id) == replaced
    assert store.delete_suppression(s1.suppression_id) is True
    assert store.delete_suppression(s1.suppression_id) is False
    assert store.get_suppression(s1.suppression_id) is None


def test_rules_document_optimistic_concurrency(store: SqlAlertStore) -> None:
    assert store.get_rules() is None
    with pytest.raises(RulesRevisionConflictError) as info:
        store.put_rules([{"a": 1}], 1)  # nothing stored: current is 0
    assert info.value.current == 0 and info.value.expected == 1
    assert store.put_rules([{"a": 1}], 0) == 1
    assert store.get_rules() == (1, [{"a": 1}])
    with pytest.raises(RulesRevisionConflictError, match="revision is 1, not 0"):
        store.put_rules([{"a": 2}], 0)
    assert store.put_rules([{"a": 2}, {"b": [1, None]}], 1) == 2
    assert store.put_rules([], None) == 3  # unconditional
    assert store.get_rules() == (3, [])
    with pytest.raises(ValueError):
        store.put_rules([{"x": float("nan")}], None)
    assert store.get_rules() == (3, [])


def test_concurrent_rule_writers_one_wins_per_revision(store: SqlAlertStore) -> None:
    results: list[int | str] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        try:
            rev = store.put_rules([{"writer": i}], 0)
            out: int | str = rev
        except RulesRevisionConflictError:
            out = "conflict"
        with lock:
            results.append(out)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [1] + ["conflict"] * 7


def test_control_store_protocol_and_closed_errors(tmp_path: Path) -> None:
    s = SqliteAlertStore(tmp_path / "a.sqlite")
    assert isinstance(s, ControlStore)
    s.close()
    for call in (
        lambda: s.add_suppression(_suppression(1)),
        lambda: s.get_suppression("x"),
        lambda: s.list_suppressions(),
        lambda: s.delete_suppression("x"),
        s.get_rules,
        lambda: s.put_rules([], None),
        lambda: s.mark_false_positive(make_event(1).event_id, by="x"),
    ):
        with pytest.raises(AlertStoreError):
            call()


# ------------------------------------- schema 3: line, direction, details; escalation


def _crossing(n: int, **kw: Any) -> Event:
    """A line-crossing start event with the optional fields set."""
    fields: dict[str, Any] = {
        "line": "gate",
        "direction": "+",
        "details": {"count_plus": 2, "count_minus": 5},
    }
    return replace(make_event(n, type_="line_crossing"), **(fields | kw))


def _v2_database(path: Path) -> None:
    """A database as the schema-2 code left it: one acknowledged alert, a suppression, rules."""
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[0] + _MIGRATIONS[1] + "PRAGMA user_version = 2;")
    conn.execute(
        "INSERT INTO alerts (event_id, schema_version, camera_id, type, rule_id, zone, "
        "track_id, label, score, priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, "
        "bbox_y2, start_seq, snapshot, wall_time, status, acknowledged_at, acknowledged_by, "
        "note, received_at) VALUES (?, 1, 'cam-1', 'intrusion', 'intrusion:z', 'z', 1, "
        "'person', 0.5, 70, 1.0, NULL, 1.0, 2.0, 30.0, 40.0, 1, NULL, ?, 'false_positive', ?, "
        "'bob', 'shadow', ?)",
        (make_event(1).event_id, T0, T0 + 5, T0 + 1),
    )
    conn.execute(
        "INSERT INTO suppressions (suppression_id, camera_id, expires_at, created_at) "
        "VALUES ('s-1', 'cam-1', ?, ?)",
        (T0 + 3600, T0),
    )
    conn.execute(
        "INSERT INTO control_documents (name, revision, body, updated_at) "
        "VALUES ('rules', 4, '[{\"type\": \"fall\"}]', ?)",
        (T0,),
    )
    conn.commit()
    conn.close()


def test_version_2_database_is_migrated_keeping_alerts_and_control_data(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    _v2_database(path)
    with SqliteAlertStore(path) as s:
        assert s.schema_version == len(_MIGRATIONS)
        a = s.get(make_event(1).event_id)
        assert a is not None
        assert (a.status, a.acknowledged_by, a.note, a.priority) == (
            "false_positive",
            "bob",
            "shadow",
            70,
        )
        assert a.line is None and a.direction is None and a.details == {}
        assert s.get_suppression("s-1") is not None
        assert s.get_rules() == (4, [{"type": "fall"}])
        # the migrated row takes part in the new behaviour: escalation, end details
        end = replace(make_event(1, priority=90), details={"members": 2}).closed(6.0)
        s.upsert(end.to_record())
        b = s.get(make_event(1).event_id)
        assert b is not None and b.priority == 90 and b.details == {"members": 2}
        assert b.end_s == 6.0 and b.status == "false_positive"
        s.upsert(_crossing(2).to_record())
        c = s.get(_crossing(2).event_id)
        assert c is not None and (c.line, c.direction) == ("gate", "+")
    conn = sqlite3.connect(path)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(alerts)")}
        assert {"line", "direction", "details"} <= cols
        with pytest.raises(sqlite3.IntegrityError):  # the column keeps its own check
            conn.execute("UPDATE alerts SET direction = 'up'")
    finally:
        conn.close()
    with SqliteAlertStore(path) as again:  # reopening an up-to-date database changes nothing
        assert again.schema_version == len(_MIGRATIONS) and again.count() == 2


def test_migration_3_skips_columns_that_already_exist(tmp_path: Path) -> None:
    """The guarded ADD COLUMN: a v2 database that already has ``line`` still migrates."""
    path = tmp_path / "alerts.sqlite"
    _v2_database(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE alerts ADD COLUMN line TEXT")
    conn.execute("UPDATE alerts SET line = 'kept'")
    conn.commit()
    conn.close()
    with SqliteAlertStore(path) as s:
        assert s.schema_version == len(_MIGRATIONS)
        a = s.get(make_event(1).event_id)
        assert a is not None and a.line == "kept" and a.details == {}


def test_concurrent_opens_of_an_old_database_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    _v2_database(path)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    versions: list[int] = []

    def open_it() -> None:
        try:
            barrier.wait()
            with SqliteAlertStore(path) as s:
                versions.append(s.schema_version)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and versions == [len(_MIGRATIONS)] * 4


def test_null_or_broken_stored_details_read_as_empty(sqlite_store: SqliteAlertStore) -> None:
    store = sqlite_store
    store.upsert(make_event(1).to_record())
    store.upsert(make_event(2).to_record())
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE alerts SET details = NULL WHERE track_id = 1")
    conn.execute("UPDATE alerts SET details = '[1, 2]' WHERE track_id = 2")
    conn.commit()
    conn.close()
    assert [a.details for a in store.list()] == [{}, {}]


def test_new_fields_are_stored_with_their_json_types(store: SqlAlertStore) -> None:
    ev = replace(
        make_event(1, type_="abandoned_object"),
        details={"source": "track", "owner_track_id": 4, "still_s": 12.5, "moved": False},
    )
    store.upsert(ev.to_record())
    a = store.get(ev.event_id)
    assert a is not None and a.line is None and a.direction is None
    assert a.details == {"source": "track", "owner_track_id": 4, "still_s": 12.5, "moved": False}
    assert type(a.details["moved"]) is bool and type(a.details["owner_track_id"]) is int
    x = _crossing(2)
    store.upsert(x.to_record())
    b = store.get(x.event_id)
    assert b is not None
    assert (b.line, b.direction, b.details) == ("gate", "+", {"count_plus": 2, "count_minus": 5})
    old = make_event(3).to_record()  # a producer from before the optional fields
    for k in ("line", "direction", "details"):
        del old[k]
    store.upsert(old)
    c = store.get(make_event(3).event_id)
    assert c is not None and (c.line, c.direction, c.details) == (None, None, {})


def test_non_finite_details_are_refused(store: SqlAlertStore) -> None:
    rec = make_event(1).to_record()
    rec["details"] = {"count": float("inf")}
    with pytest.raises(InvalidEventError, match="details"):
        store.upsert(rec)
    assert store.count() == 0


def test_priority_escalates_but_never_drops(store: SqlAlertStore) -> None:
    ev = make_event(1, priority=50)
    other = make_event(2, priority=70)
    store.upsert(ev.to_record())
    store.upsert(other.to_record())
    assert [a.track_id for a in store.list()] == [2, 1]
    store.upsert(replace(ev, priority=80).to_record())  # re-sent start: escalated
    a = store.get(ev.event_id)
    assert a is not None and a.priority == 80 and a.is_open
    assert [a.track_id for a in store.list()] == [1, 2]  # now first (priority DESC)
    store.upsert(replace(ev, priority=60).to_record())  # lower: ignored
    store.upsert(replace(ev, priority=20).closed(9.0).to_record())  # lower end: ignored
    b = store.get(ev.event_id)
    assert b is not None and b.priority == 80 and b.end_s == 9.0
    store.upsert(replace(ev, priority=95).closed(9.0).to_record())  # higher end: raises
    c = store.get(ev.event_id)
    assert c is not None and c.priority == 95 and c.received_at == a.received_at
    assert store.count() == 2


def test_end_details_replace_start_details_and_replays_are_stable(
    store: SqlAlertStore,
) -> None:
    start = replace(make_event(1, type_="crowding"), details={"count": 7})
    escalated = replace(start, priority=75)
    end = replace(start, priority=60, details={"count": 7, "members": 3}).closed(20.0)
    store.upsert(start.to_record())
    a = store.get(start.event_id)
    assert a is not None and a.details == {"count": 7}
    store.upsert(replace(start, details={"count": 9}).to_record())  # a start never replaces
    b = store.get(start.event_id)
    assert b is not None and b.details == {"count": 7}
    store.upsert(escalated.to_record())
    store.upsert(end.to_record())
    final = store.get(start.event_id)
    assert final is not None
    assert final.details == {"count": 7, "members": 3}
    assert final.priority == 75 and final.end_s == 20.0
    for rec in (start, escalated, end, start, end, escalated):
        store.upsert(rec.to_record())
    assert store.get(start.event_id) == final and store.count() == 1
    late_start = replace(start, details={"count": 1})  # start arriving after the end
    store.upsert(late_start.to_record())
    assert store.get(start.event_id) == final


def test_end_without_details_field_keeps_stored_details(store: SqlAlertStore) -> None:
    start = replace(make_event(1, type_="crowding"), details={"count": 7})
    store.upsert(start.to_record())
    end = start.closed(5.0).to_record()
    del end["details"]  # an older producer: absent means "no news", not "erase"
    store.upsert(end)
    a = store.get(start.event_id)
    assert a is not None and a.end_s == 5.0 and a.details == {"count": 7}
    store.upsert(replace(start, details={}).closed(5.0).to_record())  # present and empty
    b = store.get(start.event_id)
    assert b is not None and b.details == {}


def test_line_and_direction_are_filled_in_when_empty_never_replaced(
    store: SqlAlertStore,
) -> None:
    bare = _crossing(1, line=None, direction=None, details={})
    store.upsert(bare.to_record())
    store.upsert(_crossing(1, direction="-").closed(1.5).to_record())
    a = store.get(bare.event_id)
    assert a is not None and (a.line, a.direction) == ("gate", "-")
    store.upsert(_crossing(1, line="other", direction="+").closed(1.5).to_record())
    b = store.get(bare.event_id)
    assert b is not None and (b.line, b.direction) == ("gate", "-")


def test_type_filter_uses_its_index(sqlite_store: SqliteAlertStore) -> None:
    store = sqlite_store
    store.upsert(make_event(1, type_="fall", priority=10).to_record())
    store.upsert(make_event(2, type_="fall", priority=90).to_record())
    store.upsert(make_event(3, type_="crowding").to_record())
    assert [a.track_id for a in store.list(type="fall")] == [2, 1]
    assert store.count(type="fall") == 2 and store.count(type="covered") == 0
    conn = sqlite3.connect(store.path)
    try:
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM alerts WHERE type = ? "
                "ORDER BY priority DESC, wall_time DESC LIMIT 10",
                ("fall",),
            )
        )
        assert "alerts_by_type" in plan
    finally:
        conn.close()
