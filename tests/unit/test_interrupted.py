"""Issue 12, defect 3: alerts a killed worker run left open are closed as ``interrupted``.

Every record a worker run publishes carries its ``run_id``; the run announces itself per
camera (a run marker) before any frame; the store closes that camera's alerts other runs
left open.  Schema, store (and its migration), API, alert service, sink, buses, runner.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from alerts.api import create_app
from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from alerts.schema import (
    EVENT,
    RUN_STARTED,
    InvalidEventError,
    load_marker_schema,
    marker_fields,
    record_fields,
    run_marker,
    validate_bus_record,
    validate_marker,
    validate_record,
)
from alerts.service import AlertService
from alerts.sinks import JsonlSink
from alerts.store import _MIGRATIONS, SqlAlertStore, SqliteAlertStore
from argus.runner import Runner
from tests.factories import T0, make_event
from tests.pg import StoreFactory
from tests.unit.test_runner import ScriptedSource, camera, walker

pytestmark = pytest.mark.unit

R1, R2, R3 = (
    "0b9e3c52-7f7d-4c1e-9a55-3f0f1f6f2a11",
    "5d2c7e0a-93f1-4b6e-8f4d-2a9c1e7b3d52",
    "e81f4a6c-0d3b-47a2-b5c9-6f1e2d8a9b03",
)
KEY = "interrupted-test-key-0123456789"


def _start(n: int, run: str | None, **kw: Any) -> dict[str, Any]:
    record = make_event(n, **kw).to_record()
    if run is not None:
        record["run_id"] = run
    return record


def _end(n: int, run: str | None, end_s: float, **kw: Any) -> dict[str, Any]:
    record = make_event(n, **kw).closed(end_s).to_record()
    if run is not None:
        record["run_id"] = run
    return record


def _interrupted(type_: str = "intrusion") -> float:
    return REGISTRY.get_sample_value("argus_alerts_interrupted_total", {"type": type_}) or 0.0


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


# ------------------------------------------------------------------------- schema


def test_marker_schema_ships_and_the_marker_has_exactly_its_fields() -> None:
    text = resources.files("alerts").joinpath("run.schema.json").read_text("utf-8")
    assert json.loads(text) == load_marker_schema()
    marker = run_marker("cam-1", R1, T0)
    validate_marker(marker, allow_unknown=False)
    assert set(marker) == set(marker_fields()) == set(load_marker_schema()["required"])
    assert marker["wall_time"] == "2024-05-01T10:00:00.000+00:00"
    assert validate_bus_record(json.loads(json.dumps(marker))) == RUN_STARTED


def test_event_records_may_carry_a_run_id_which_must_be_a_uuid() -> None:
    record = _start(1, R1)
    validate_record(record, allow_unknown=False)
    assert validate_bus_record(record) == EVENT
    assert "run_id" in record_fields() and "run_id" not in make_event(1).to_record()
    for bad in ("run-1", R1.upper(), 7):
        with pytest.raises(InvalidEventError) as info:
            validate_bus_record(record | {"run_id": bad})
        assert info.value.path == "$.run_id"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"kind": "run_stopped"}, "$.kind"),
        ({"kind": None}, "$.kind"),
        ({"run_id": "not-a-uuid"}, "$.run_id"),
        ({"camera_id": "../etc"}, "$.camera_id"),
        ({"wall_time": "2024-05-01T10:00:00"}, "$.wall_time"),  # no offset
        ({"schema_version": 2}, "$.schema_version"),
    ],
)
def test_malformed_markers_are_refused(change: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        validate_bus_record(run_marker("cam-1", R1, T0) | change)
    assert info.value.path == path


@pytest.mark.parametrize("field", ["schema_version", "camera_id", "run_id", "wall_time"])
def test_a_marker_missing_a_field_is_refused(field: str) -> None:
    marker = run_marker("cam-1", R1, T0)
    del marker[field]
    with pytest.raises(InvalidEventError, match=field):
        validate_bus_record(marker)


def test_an_event_only_validator_refuses_markers() -> None:
    """What a consumer older than markers does: it refuses them (the service dead-letters)."""
    with pytest.raises(InvalidEventError, match="event_id"):
        validate_record(run_marker("cam-1", R1, T0))


# -------------------------------------------------------------------------- store


def test_a_marker_closes_its_cameras_alerts_left_open_by_other_runs_only(
    store: SqlAlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.upsert(_start(1, R1))  # open, earlier run: interrupted
    store.upsert(_start(2, R1))
    store.upsert(_end(2, R1, 4.0))  # ended: untouched
    store.upsert(_start(3, None))  # open, stored before run ids: interrupted
    store.upsert(_start(4, R1, camera="cam-2"))  # another camera: untouched
    store.upsert(_start(5, R2))  # the new run's own: untouched
    store.acknowledge(make_event(1).event_id, by="alice", note="on it")
    before = _interrupted()
    with caplog.at_level(logging.INFO, logger="alerts.store"):
        store.upsert(run_marker("cam-1", R2, T0 + 100))
    assert _interrupted() == before + 2
    assert "closed as interrupted: 2" in caplog.text
    one, two, three, five = (store.get(make_event(n).event_id) for n in (1, 2, 3, 5))
    four = store.get(make_event(4, camera="cam-2").event_id)
    assert one is not None and two is not None and three is not None
    assert four is not None and five is not None
    assert (one.end_reason, one.end_s, one.is_open) == ("interrupted", 1.0, False)
    assert (one.status, one.acknowledged_by, one.note) == ("acknowledged", "alice", "on it")
    assert one.run_id == R1
    assert (three.end_reason, three.end_s, three.run_id) == ("interrupted", 3.0, None)
    assert (two.end_reason, two.end_s) == ("ended", 4.0)
    assert four.end_reason is None and four.is_open
    assert five.end_reason is None and five.is_open and five.run_id == R2
    assert {a.event_id for a in store.list(open=True)} == {four.event_id, five.event_id}


def test_an_interrupted_alert_stays_so_and_replayed_or_stale_markers_are_harmless(
    store: SqlAlertStore,
) -> None:
    store.upsert(_start(1, R1))
    store.upsert(run_marker("cam-1", R2, T0 + 100))
    store.upsert(_start(5, R2))
    # a replay of the interrupted alert's start, then a late end: still interrupted
    store.upsert(_start(1, R1, priority=90))
    store.upsert(_end(1, R1, 9.5))
    a = store.get(make_event(1).event_id)
    assert a is not None
    assert (a.end_reason, a.end_s, a.priority) == ("interrupted", 1.0, 90)
    # the same marker again (Kafka redelivers): nothing new closed
    count = _interrupted()
    store.upsert(run_marker("cam-1", R2, T0 + 100))
    # an older run's marker redelivered after the newer one: stale, closes nothing
    assert store.close_earlier_runs("cam-1", R1, T0) == []
    assert _interrupted() == count
    five = store.get(make_event(5).event_id)
    assert five is not None and five.is_open
    # the next run closes what R2 left open
    assert store.close_earlier_runs("cam-1", R3, T0 + 200) == [make_event(5).event_id]
    # an end record of an alert still open sets end_reason "ended"
    store.upsert(_start(6, R3))
    store.upsert(_end(6, R3, 7.0))
    six = store.get(make_event(6).event_id)
    assert six is not None and (six.end_reason, six.end_s) == ("ended", 7.0)


def test_a_recording_played_again_ends_what_the_killed_run_left_interrupted(
    store: SqlAlertStore,
) -> None:
    """Same file, same event ids: the new run sees the event end, and says so."""
    store.upsert(_start(1, R1))
    store.upsert(_start(2, R1))
    store.upsert(run_marker("cam-1", R2, T0 + 100))  # R1 was killed
    store.upsert(_start(1, R2))
    store.upsert(_end(1, R2, 8.5))
    one, two = store.get(make_event(1).event_id), store.get(make_event(2).event_id)
    assert one is not None and (one.end_reason, one.end_s, one.run_id) == ("ended", 8.5, R2)
    assert two is not None and two.end_reason == "interrupted"  # R2 never saw it end
    store.upsert(run_marker("cam-1", R3, T0 + 200))
    store.upsert(_end(2, R2, 9.0))  # a late end of an older run: still interrupted
    two = store.get(make_event(2).event_id)
    assert two is not None and (two.end_reason, two.end_s) == ("interrupted", 2.0)


def test_the_run_id_is_filled_in_when_the_first_record_had_none(store: SqlAlertStore) -> None:
    store.upsert(_start(1, None))
    store.upsert(_start(1, R1))
    store.upsert(_start(1, R2))
    a = store.get(make_event(1).event_id)
    assert a is not None and a.run_id == R1


def _v3_database(path: Path) -> None:
    """A database as the schema-3 code left it: an open alert and an ended one."""
    conn = sqlite3.connect(path)
    conn.executescript("".join(_MIGRATIONS[:3]) + "PRAGMA user_version = 3;")
    for n, end_s in ((1, None), (2, 5.0)):
        conn.execute(
            "INSERT INTO alerts (event_id, schema_version, camera_id, type, rule_id, zone, "
            "track_id, label, score, priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, "
            "bbox_y2, start_seq, snapshot, wall_time, status, received_at, line, direction, "
            "details) VALUES (?, 1, 'cam-1', 'intrusion', 'intrusion:z', 'z', ?, 'person', "
            "0.5, 60, ?, ?, 1.0, 2.0, 30.0, 40.0, ?, NULL, ?, 'acknowledged', ?, 'gate', '+', "
            "'{\"members\": 2}')",
            (make_event(n).event_id, n, float(n), end_s, n, T0 + n, T0 + n),
        )
    conn.commit()
    conn.close()


def test_version_3_database_is_migrated_keeping_alerts(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    _v3_database(path)
    with SqliteAlertStore(path) as s:
        assert s.schema_version == len(_MIGRATIONS)
        opened, ended = (s.get(make_event(n).event_id) for n in (1, 2))
        assert opened is not None and ended is not None
        assert (opened.end_reason, opened.run_id, opened.is_open) == (None, None, True)
        assert (ended.end_reason, ended.end_s) == ("ended", 5.0)
        for a in (opened, ended):
            assert (a.status, a.line, a.direction, a.details, a.priority) == (
                "acknowledged",
                "gate",
                "+",
                {"members": 2},
                60,
            )
        # the migrated open alert is closed by the first run that announces its camera
        s.upsert(run_marker("cam-1", R1, T0 + 100))
        again = s.get(make_event(1).event_id)
        assert again is not None and again.end_reason == "interrupted"
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError):  # the column keeps its own check
            conn.execute("UPDATE alerts SET end_reason = 'vanished'")
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT event_id FROM alerts "
                "WHERE camera_id = ? AND end_s IS NULL",
                ("cam-1",),
            )
        )
        assert "alerts_open_by_camera" in plan
    finally:
        conn.close()


# ---------------------------------------------------------------------------- API


def test_the_api_shows_the_end_reason(store: SqlAlertStore, tmp_path: Path) -> None:
    store.upsert(_start(1, R1))
    store.upsert(_start(2, R1))
    store.upsert(_end(2, R1, 4.0))
    store.upsert(run_marker("cam-1", R2, T0 + 100))
    store.upsert(_start(3, R2))
    app = create_app(store, LocalEvidenceStore(tmp_path / "ev"), api_key=KEY)
    client = TestClient(app, base_url="http://127.0.0.1")
    headers = {"Authorization": f"Bearer {KEY}"}
    items = client.get("/api/v1/alerts", headers=headers).json()["items"]
    reasons = {i["event_id"]: (i["end_reason"], i["run_id"]) for i in items}
    assert reasons == {
        make_event(1).event_id: ("interrupted", R1),
        make_event(2).event_id: ("ended", R1),
        make_event(3).event_id: (None, R2),
    }
    one = client.get(f"/api/v1/alerts/{make_event(1).event_id}", headers=headers).json()
    assert one["end_reason"] == "interrupted" and one["end_s"] == one["start_s"] == 1.0
    still_open = client.get("/api/v1/alerts", params={"open": "true"}, headers=headers).json()
    assert [i["event_id"] for i in still_open["items"]] == [make_event(3).event_id]


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_the_web_app_says_interrupted_of_the_event(tmp_path: Path) -> None:
    """The alert's page says whether its event is ongoing, ended or interrupted
    (``eventText`` of the web app's ``text.js``, run in Node)."""
    script = (resources.files("alerts.api") / "static" / "text.js").read_text("utf-8")
    base = {"type": "intrusion", "camera_id": "cam-1", "status": "acknowledged", "priority": 50}
    alerts = [
        base | {"end_s": None, "end_reason": None},
        base | {"end_s": 4.0, "end_reason": "ended"},
        base | {"end_s": 1.0, "end_reason": "interrupted"},
        base | {"end_s": 2.0},  # from an API before end_reason
    ]
    js = script + f"\nconsole.log(JSON.stringify({json.dumps(alerts)}.map(eventText)));\n"
    (tmp_path / "text.mjs").write_text(js)
    out = subprocess.run(
        [str(shutil.which("node")), str(tmp_path / "text.mjs")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["ongoing", "ended", "interrupted", "ended"]


# ---------------------------------------------------------- alert service, sink, buses


def test_the_alert_service_stores_markers_and_dead_letters_unknown_kinds(
    store: SqlAlertStore,
) -> None:
    service = AlertService("127.0.0.1:1", "t", "g", store, dlq_topic="t.dlq")
    dead: list[tuple[str, str]] = []
    service._dead_letter = lambda msg, why, detail, stop: dead.append((why, detail))  # type: ignore[method-assign,assignment]

    def handle(record: dict[str, Any], offset: int) -> None:
        value = json.dumps(record).encode()
        message = SimpleNamespace(value=value, topic="t", partition=0, offset=offset, key=b"cam-1")
        service._handle(message, threading.Event())

    handle(_start(1, R1), 1)
    handle(run_marker("cam-1", R2, T0 + 100), 2)
    a = store.get(make_event(1).event_id)
    assert dead == [] and a is not None and a.end_reason == "interrupted"
    handle(run_marker("cam-1", R3, T0 + 200) | {"kind": "run_paused"}, 3)
    assert [why for why, _ in dead] == ["invalid_schema"] and "$.kind" in dead[0][1]


def test_the_jsonl_sink_writes_events_but_not_markers(tmp_path: Path) -> None:
    bus = InProcessBus()
    with JsonlSink(tmp_path / "events.jsonl") as sink:
        bus.subscribe(sink.write)
        bus.publish(run_marker("cam-1", R1, T0))
        bus.publish(_start(1, R1))
        assert (sink.written, sink.skipped) == (1, 1)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == [make_event(1).event_id]


def test_buses_validate_markers_and_kafka_keys_them_by_camera(tmp_path: Path) -> None:
    from alerts.kafka_bus import KafkaEventBus, _key

    bus = InProcessBus()
    got: list[dict[str, Any]] = []
    bus.subscribe(got.append)
    bus.publish(run_marker("cam-1", R1, T0))
    with pytest.raises(InvalidEventError):
        bus.publish(run_marker("cam-1", R1, T0) | {"run_id": "x"})
    assert [g["kind"] for g in got] == [RUN_STARTED]

    kafka = KafkaEventBus(
        "127.0.0.1:1",
        "t",
        spool_dir=tmp_path / "spool",
        create_topic=False,
        connect_timeout_s=0.5,
        close_timeout_s=0.1,
    )
    try:
        kafka.publish(run_marker("cam-7", R1, T0))
        kafka.publish(_start(1, R1, camera="cam-7"))
        with pytest.raises(InvalidEventError):
            kafka.publish(run_marker("cam-7", R1, T0) | {"kind": "nope"})
        entries = kafka.spool.peek_entries(10)
        assert [e.record.get("kind") for e in entries] == [RUN_STARTED, None]
        assert {_key(e) for e in entries} == {b"cam-7"}
    finally:
        kafka.close()


# ------------------------------------------------------------------------- runner


def _runner(
    tmp_path: Path, run_id: str | None, bus: InProcessBus | None = None
) -> tuple[Runner, list[dict[str, Any]]]:
    ready = threading.Condition()
    bus = bus or InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(records.append)
    cams = [camera(c, ScriptedSource(c, 30), ready) for c in ("a", "b")]
    runner = Runner(
        cams,
        walker,
        bus,
        LocalEvidenceStore(tmp_path / "ev"),
        ready=ready,
        batch_size=3,
        run_id=run_id,
    )
    return runner, records


@pytest.mark.parametrize("sequential", [False, True])
def test_the_runner_announces_each_camera_then_stamps_its_records(
    tmp_path: Path, sequential: bool
) -> None:
    runner, records = _runner(tmp_path, R1)
    result = runner.run_sequential() if sequential else runner.run()
    assert result.ok
    markers = [r for r in records if "kind" in r]
    events = [r for r in records if "kind" not in r]
    assert records[:2] == markers, "the markers come before any event"
    assert {(m["camera_id"], m["run_id"]) for m in markers} == {("a", R1), ("b", R1)}
    for m in markers:
        validate_marker(m, allow_unknown=False)
    assert len(events) == 4  # one start and one end per camera
    for e in events:
        validate_record(e, allow_unknown=False)
        # every field but the clip's key (a runner without clips asks for none)
        assert set(e) == set(record_fields()) - {"clip"} and e["run_id"] == R1


def test_without_a_run_id_the_runner_publishes_plain_records(tmp_path: Path) -> None:
    runner, records = _runner(tmp_path, None)
    runner.run()
    assert records and all("kind" not in r and "run_id" not in r for r in records)


def test_a_restarted_run_closes_what_the_killed_one_left_open(tmp_path: Path) -> None:
    """In process: run 1 dies after an event's start record, run 2's start closes it."""
    store = SqliteAlertStore(tmp_path / "alerts.db")
    try:
        bus = InProcessBus()
        bus.subscribe(store.upsert)
        killed, _ = _runner(tmp_path / "1", R1, bus)
        killed._announce(killed.cameras, time.time())
        start = make_event(1, camera="a")
        killed._publish(killed.cameras[0], start, None)  # its end never comes
        assert store.count(open=True) == 1
        runner, _ = _runner(tmp_path / "2", R2, bus)
        assert runner.run().ok
        a = store.get(start.event_id)
        assert a is not None and (a.end_reason, a.run_id) == ("interrupted", R1)
        assert store.count(open=True) == 0
        assert [x.end_reason for x in store.list(camera_id="b")] == ["ended"]
    finally:
        store.close()
