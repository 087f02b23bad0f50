"""SqliteAlertStore as a LifecycleStore: transitions (allowed, refused, concurrent), the SLA
escalation across store objects, disposition figures, the older actions as closes, the new
list filters, and migration 6 of a version-5 database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.schema import run_marker
from alerts.store import (
    ALERT_STATES,
    KEEP,
    MIGRATIONS,
    AlertNotFoundError,
    AlertState,
    AuditEntry,
    LifecycleStore,
    SqlAlertStore,
    SqliteAlertStore,
    TransitionConflictError,
)
from alerts.store.migrations import split_statements
from tests.factories import T0, make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit

R1 = "0b9e3c52-7f7d-4c1e-9a55-3f0f1f6f2a11"
OPEN: tuple[AlertState, ...] = ("new", "claimed", "escalated")


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


def _id(n: int, **kw: Any) -> str:
    return make_event(n, **kw).event_id


def _add(store: SqlAlertStore, n: int, **kw: Any) -> str:
    store.upsert(make_event(n, **kw).to_record())
    return _id(n, **kw)


def _set(store: SqlAlertStore, event_id: str, **columns: Any) -> None:
    """Set columns of an alert row behind the store's back (e.g. ``received_at``)."""
    assignments = ", ".join(f"{c} = ?" for c in columns)
    with store._lock:
        store._conn.execute(
            f"UPDATE alerts SET {assignments} WHERE event_id = ?", (*columns.values(), event_id)
        )


def _audit(actor: str, action: str, at: float, event_id: str, **kw: Any) -> AuditEntry:
    return AuditEntry(
        at=datetime.fromtimestamp(at, UTC),
        actor=actor,
        actor_kind="user",
        action=action,
        target_kind="alert",
        target_id=event_id,
        **kw,
    )


def _claim(store: SqlAlertStore, event_id: str, who: str, at: float = T0 + 10) -> Any:
    return store.transition(
        event_id,
        to_state="claimed",
        from_states=("new", "escalated"),
        audit=_audit(who, "alert.claim", at, event_id),
        set_owner=who,
    )


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def test_is_a_lifecycle_store(store: SqlAlertStore) -> None:
    assert isinstance(store, LifecycleStore)


def test_a_new_alert_starts_new_and_unowned(store: SqlAlertStore) -> None:
    a = store.get(_add(store, 1))
    assert a is not None
    assert (a.state, a.owner, a.claimed_at, a.disposition, a.status) == (
        "new",
        None,
        None,
        None,
        "new",
    )


def test_claim_then_a_second_claim_conflicts_naming_the_owner(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    a = _claim(store, eid, "alice")
    assert (a.state, a.owner, a.claimed_at, a.status) == ("claimed", "alice", _utc(T0 + 10), "new")
    with pytest.raises(TransitionConflictError) as info:
        _claim(store, eid, "bob", T0 + 11)
    assert (info.value.event_id, info.value.state, info.value.owner) == (eid, "claimed", "alice")
    assert "owned by alice" in str(info.value)
    (entry,) = store.list_audit(target_id=eid)  # the refused claim left no entry
    assert (entry.actor, entry.action, entry.target_kind) == ("alice", "alert.claim", "alert")
    assert entry.detail == {"from": "new", "to": "claimed"}
    assert entry.at == _utc(T0 + 10)


def test_require_owner_and_release_keep_the_first_claim_time(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    _claim(store, eid, "alice")

    def release(who: str, at: float) -> Any:
        return store.transition(
            eid,
            to_state="new",
            from_states=("claimed",),
            audit=_audit(who, "alert.release", at, eid),
            require_owner=who,
            set_owner=None,
        )

    with pytest.raises(TransitionConflictError) as info:
        release("bob", T0 + 20)
    assert (info.value.state, info.value.owner) == ("claimed", "alice")
    a = release("ALICE", T0 + 21)  # owners compare ignoring case
    assert (a.state, a.owner, a.claimed_at) == ("new", None, _utc(T0 + 10))
    b = _claim(store, eid, "bob", T0 + 30)
    assert (b.owner, b.claimed_at) == ("bob", _utc(T0 + 10))  # first claim kept


def test_escalate_close_and_reopen(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    _claim(store, eid, "alice")
    esc = store.transition(
        eid,
        to_state="escalated",
        from_states=("claimed",),
        audit=_audit("alice", "alert.escalate", T0 + 40, eid, detail={"ref": "case-7"}),
        fields={"escalated_to": "external", "escalation_ref": "police 2024-77"},
    )
    assert (esc.state, esc.owner, esc.escalated_at, esc.escalated_by) == (
        "escalated",
        "alice",
        _utc(T0 + 40),
        "alice",
    )
    assert (esc.escalated_to, esc.escalation_ref, esc.status) == (
        "external",
        "police 2024-77",
        "new",
    )
    closed = store.transition(
        eid,
        to_state="closed",
        from_states=OPEN,
        audit=_audit("carol", "alert.close", T0 + 50, eid),
        fields={"disposition": "false_alarm", "close_note": "a cat"},
    )
    assert (closed.state, closed.disposition, closed.closed_at, closed.closed_by) == (
        "closed",
        "false_alarm",
        _utc(T0 + 50),
        "carol",
    )
    # the older fields follow, for older clients
    assert (closed.status, closed.acknowledged_at, closed.acknowledged_by, closed.note) == (
        "false_positive",
        _utc(T0 + 50),
        "carol",
        "a cat",
    )
    assert closed.escalation_ref == "police 2024-77"  # history kept
    reopened = store.transition(
        eid,
        to_state="new",
        from_states=("closed",),
        audit=_audit("dave", "alert.reopen", T0 + 60, eid),
        set_owner=None,
    )
    assert (reopened.state, reopened.owner, reopened.status) == ("new", None, "new")
    assert (reopened.disposition, reopened.closed_at, reopened.closed_by) == (None, None, None)
    assert (reopened.close_note, reopened.acknowledged_at, reopened.note) == (None, None, None)
    actions = [(e.action, e.detail.get("from"), e.detail.get("to")) for e in store.list_audit()]
    assert actions == [
        ("alert.reopen", "closed", "new"),
        ("alert.close", "escalated", "closed"),
        ("alert.escalate", "claimed", "escalated"),
        ("alert.claim", "new", "claimed"),
    ]
    assert store.list_audit(action="alert.escalate")[0].detail["ref"] == "case-7"


def test_closing_as_no_action_reads_as_acknowledged(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    a = store.transition(
        eid,
        to_state="closed",
        from_states=OPEN,
        audit=_audit("alice", "alert.close", T0 + 5, eid),
        fields={"disposition": "true_incident"},
    )
    assert (a.status, a.acknowledged_by, a.owner) == ("acknowledged", "alice", None)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"to_state": "closed", "fields": {}}, "disposition"),
        ({"to_state": "closed", "fields": {"disposition": "bored"}}, "disposition"),
        ({"to_state": "claimed", "fields": {"owner": "x"}}, "owner"),
        ({"to_state": "claimed", "fields": {"state": "closed"}}, "state"),
        ({"to_state": "gone", "fields": {}}, "states"),
        ({"to_state": "escalated", "fields": {"escalated_to": "mars"}}, "escalated_to"),
    ],
)
def test_bad_transitions_are_refused_and_change_nothing(
    store: SqlAlertStore, kw: dict[str, Any], match: str
) -> None:
    eid = _add(store, 1)
    before = store.get(eid)
    with pytest.raises(ValueError, match=match):
        store.transition(
            eid,
            from_states=ALERT_STATES,
            audit=_audit("alice", "alert.x", T0, eid),
            set_owner=KEEP,
            **kw,
        )
    assert store.get(eid) == before and store.count_audit() == 0


def test_unknown_alert(store: SqlAlertStore) -> None:
    with pytest.raises(AlertNotFoundError):
        _claim(store, _id(99), "alice")
    assert store.count_audit() == 0


def test_not_allowed_from_that_state(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    with pytest.raises(TransitionConflictError) as info:
        store.transition(
            eid,
            to_state="new",
            from_states=("closed",),
            audit=_audit("alice", "alert.reopen", T0, eid),
        )
    assert (info.value.state, info.value.owner) == ("new", None)


def test_later_records_never_change_the_lifecycle(store: SqlAlertStore) -> None:
    eid = _add(store, 1, priority=40)
    _add(store, 2, priority=40)
    claimed = _claim(store, eid, "alice")
    store.upsert(make_event(1, priority=90).to_record())  # a priority step
    store.upsert(make_event(1, priority=90).closed(5.0).to_record())  # its end
    a = store.get(eid)
    assert a is not None and (a.priority, a.end_s) == (90, 5.0)
    lifecycle = ("state", "owner", "claimed_at", "disposition", "status", "closed_at")
    assert {f: getattr(a, f) for f in lifecycle} == {f: getattr(claimed, f) for f in lifecycle}
    closed = store.mark_false_positive(_id(2), by="bob")
    store.upsert(make_event(2, priority=70).to_record())
    store.upsert(run_marker("cam-1", R1, T0 + 100))  # interrupts it
    b = store.get(_id(2))
    assert b is not None and (b.priority, b.end_reason) == (70, "interrupted")
    assert {f: getattr(b, f) for f in lifecycle} == {f: getattr(closed, f) for f in lifecycle}


def test_acknowledge_is_a_close_as_no_action_once(store: SqlAlertStore) -> None:
    eid = _add(store, 1)
    _claim(store, eid, "alice")  # a claimed alert can be acknowledged (status was new)
    a = store.acknowledge(eid, by="bob", note="guard sent")
    assert (a.state, a.disposition, a.closed_by, a.close_note, a.owner) == (
        "closed",
        "no_action",
        "bob",
        "guard sent",
        "alice",
    )
    assert (a.status, a.acknowledged_by, a.note) == ("acknowledged", "bob", "guard sent")
    assert store.acknowledge(eid, by="carol", note="again") == a
    closes = store.list_audit(action="alert.close")
    assert len(closes) == 1
    assert (closes[0].actor, closes[0].actor_kind, closes[0].target_id) == ("bob", "user", eid)
    assert closes[0].detail["disposition"] == "no_action"
    with pytest.raises(AlertNotFoundError):
        store.acknowledge(_id(99), by="x")


def test_mark_false_positive_closes_from_any_state_keeping_the_first_close(
    store: SqlAlertStore,
) -> None:
    eid = _add(store, 1)
    acked = store.acknowledge(eid, by="bob", note="seen")
    fp = store.mark_false_positive(eid, by="carol", note=None)
    assert (fp.state, fp.disposition, fp.status) == ("closed", "false_alarm", "false_positive")
    assert (fp.closed_by, fp.closed_at, fp.close_note) == ("bob", acked.closed_at, "seen")
    fp2 = store.mark_false_positive(eid, by="dave", note="a shadow")
    assert (fp2.closed_by, fp2.close_note, fp2.note) == ("bob", "a shadow", "a shadow")
    entries = store.list_audit(target_id=eid)
    assert [(e.actor, e.detail["disposition"]) for e in entries] == [
        ("dave", "false_alarm"),
        ("carol", "false_alarm"),
        ("bob", "no_action"),
    ]
    e2 = _add(store, 2)
    _claim(store, e2, "alice")
    assert store.mark_false_positive(e2, by="alice").state == "closed"
    with pytest.raises(AlertNotFoundError):
        store.mark_false_positive(_id(99), by="x")


def test_list_filters_by_state_event_cameras_and_owner(store: SqlAlertStore) -> None:
    ids = [_add(store, n, camera=cam) for n, cam in ((1, "cam-1"), (2, "cam-1"), (3, "cam-2"))]
    ids.append(_add(store, 4, camera="cam-3"))
    store.upsert(make_event(2, camera="cam-1").closed(3.0).to_record())
    _claim(store, ids[0], "Alice")
    store.acknowledge(ids[2], by="bob")

    def tracks(**kw: Any) -> list[int | None]:
        assert store.count(**kw) == len(store.list(**kw))
        return sorted(a.track_id for a in store.list(**kw))

    assert tracks(states=OPEN) == [1, 2, 4]
    assert tracks(states=["new"]) == [2, 4]
    assert tracks(states=["closed"]) == [3]
    assert tracks(states=[]) == []
    assert tracks(ongoing=True) == [1, 3, 4] == tracks(open=True)
    assert tracks(ongoing=False) == [2] == tracks(open=False, ongoing=False)
    assert tracks(states=OPEN, ongoing=True) == [1, 4]  # not closed AND still going on
    assert tracks(camera_ids=["cam-1", "cam-3"]) == [1, 2, 4]
    assert tracks(camera_ids=set()) == []
    assert tracks(owner="alice") == [1]
    assert tracks(owner="bob") == []
    assert tracks(camera_ids=["cam-1"], states=["claimed"], owner="ALICE") == [1]
    with pytest.raises(ValueError, match="states"):
        store.list(states=["open"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="alias"):
        store.count(open=True, ongoing=False)
    with pytest.raises(TypeError):
        store.list(camera_ids="cam-1")


def test_the_queue_and_the_sla_use_their_indexes(sqlite_store: SqliteAlertStore) -> None:
    store = sqlite_store
    conn = sqlite3.connect(store.path)
    try:
        for sql, index in (
            (
                "SELECT * FROM alerts WHERE state IN ('new') ORDER BY priority DESC, "
                "wall_time DESC LIMIT 50",
                "alerts_by_state",
            ),
            (
                "SELECT event_id FROM alerts WHERE state = 'new' AND priority >= 60 "
                "AND received_at <= 5",
                "alerts_sla",
            ),
        ):
            plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert index in plan, plan
    finally:
        conn.close()


def test_concurrent_claims_exactly_one_wins(
    store: SqlAlertStore, store_factory: StoreFactory
) -> None:
    eid = _add(store, 1)
    other = store_factory()
    won: list[str] = []
    lost: list[TransitionConflictError] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def claim(i: int) -> None:
        s = store if i % 2 else other
        start.wait()
        try:
            _claim(s, eid, f"user{i}")
            won.append(f"user{i}")
        except TransitionConflictError as e:
            lost.append(e)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == [] and len(won) == 1 and len(lost) == 19
    assert {(e.state, e.owner) for e in lost} == {("claimed", won[0])}
    a = store.get(eid)
    assert a is not None and a.owner == won[0]
    assert store.count_audit(action="alert.claim") == 1


def test_escalate_overdue(store: SqlAlertStore) -> None:
    now = T0 + 1000
    due = _add(store, 1, priority=80)
    low = _add(store, 2, priority=20)
    recent = _add(store, 3, priority=90)
    claimed = _add(store, 4, priority=90)
    edge = _add(store, 5, priority=60)
    for eid, received in ((due, 0), (low, 0), (recent, 950), (claimed, 0), (edge, 700)):
        _set(store, eid, received_at=T0 + received)
    _claim(store, claimed, "alice")
    got = store.escalate_overdue(min_priority=60, claim_within_s=300, now=now)
    assert got == sorted([due, edge])
    a = store.get(due)
    assert a is not None
    assert (a.state, a.escalated_by, a.escalated_to, a.escalated_at, a.owner, a.status) == (
        "escalated",
        "sla",
        "supervisors",
        _utc(now),
        None,
        "new",
    )
    entries = store.list_audit(actor="sla")
    assert {e.target_id for e in entries} == {due, edge}
    assert {(e.actor_kind, e.action, e.target_kind) for e in entries} == {
        ("system", "alert.escalate", "alert")
    }
    assert entries[0].detail["reason"] == "not claimed within 300 s"
    assert store.escalate_overdue(min_priority=60, claim_within_s=300, now=now + 10) == []
    # an escalated alert can be claimed (by a supervisor): the SLA leaves it then
    b = _claim(store, due, "sue", T0 + 1100)
    assert (b.state, b.escalated_by) == ("claimed", "sla")


def test_escalate_overdue_once_across_stores_and_threads(
    store: SqlAlertStore, store_factory: StoreFactory
) -> None:
    ids = [_add(store, n, priority=90) for n in range(1, 31)]
    for eid in ids:
        _set(store, eid, received_at=T0)
    other = store_factory()
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def run(i: int) -> None:
        start.wait()
        try:
            results.append(
                (store if i % 2 else other).escalate_overdue(
                    min_priority=50, claim_within_s=60, now=T0 + 600
                )
            )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    escalated = [eid for r in results for eid in r]
    assert errors == [] and sorted(escalated) == sorted(ids)
    assert store.count_audit(action="alert.escalate") == 30
    assert store.count(states=["escalated"]) == 30


def test_disposition_stats(store: SqlAlertStore) -> None:
    # (n, camera, type, received, claimed after, closed after, disposition)
    script: list[tuple[int, str, str, float, float | None, float | None, str | None]] = [
        (1, "cam-1", "intrusion", 0, 10, 100, "false_alarm"),
        (2, "cam-1", "intrusion", 10, 30, 70, "true_incident"),
        (3, "cam-2", "intrusion", 20, 50, None, None),
        (4, "cam-2", "intrusion", 30, None, 40, "false_alarm"),
        (5, "cam-2", "loitering", 40, None, None, None),
        (6, "cam-1", "loitering", 5000, None, None, None),  # outside the window
    ]
    for n, cam, type_, received, claim_after, close_after, disposition in script:
        eid = _add(store, n, camera=cam, type_=type_)
        cols: dict[str, Any] = {"received_at": T0 + received}
        if claim_after is not None:
            cols |= {"state": "claimed", "claimed_at": T0 + received + claim_after}
        if close_after is not None:
            cols |= {"state": "closed", "closed_at": T0 + received + close_after}
            cols |= {"disposition": disposition}
        _set(store, eid, **cols)
    by_rule = store.disposition_stats(by="rule", since=T0, until=T0 + 1000)
    assert [(s.key, s.alerts) for s in by_rule] == [("intrusion:z", 4), ("loitering:z", 1)]
    intrusion, loitering = by_rule
    assert (intrusion.closed, intrusion.false_alarms, intrusion.false_alarm_share) == (3, 2, 2 / 3)
    assert intrusion.by_disposition == {"false_alarm": 2, "true_incident": 1}
    assert intrusion.median_time_to_claim_s == 30.0  # of 10, 30, 50
    assert intrusion.median_time_to_close_s == 70.0  # of 100, 70, 40
    assert (loitering.closed, loitering.false_alarm_share, loitering.by_disposition) == (
        0,
        None,
        {},
    )
    assert loitering.median_time_to_claim_s is None and loitering.median_time_to_close_s is None
    by_camera = store.disposition_stats(by="camera", since=T0, until=T0 + 1000)
    assert [(s.key, s.alerts, s.closed, s.false_alarms) for s in by_camera] == [
        ("cam-2", 3, 1, 1),
        ("cam-1", 2, 2, 1),
    ]
    assert by_camera[1].median_time_to_close_s == 85.0
    only = store.disposition_stats(by="camera", since=T0, until=T0 + 1000, camera_ids=["cam-1"])
    assert [s.key for s in only] == ["cam-1"]
    assert store.disposition_stats(by="rule", since=T0, until=T0 + 1000, camera_ids=[]) == []
    # until is exclusive, since inclusive
    edge = store.disposition_stats(by="camera", since=T0 + 10, until=T0 + 30)
    assert [(s.key, s.alerts) for s in edge] == [("cam-1", 1), ("cam-2", 1)]
    with pytest.raises(ValueError):
        store.disposition_stats(by="zone", since=T0, until=T0 + 1)  # type: ignore[arg-type]


# ------------------------------------------------------------------- migration 6


def test_statements_split_as_before_and_triggers_stay_whole() -> None:
    for script in MIGRATIONS[:5]:
        assert split_statements(script) == [s for s in script.split(";") if s.strip()]
    six = split_statements(MIGRATIONS[5])
    triggers = [s for s in six if "CREATE TRIGGER" in s]
    assert len(triggers) == 3 and all(s.rstrip().endswith("END") for s in triggers)
    assert split_statements("SELECT 'a;b'; SELECT 2;") == ["SELECT 'a;b'", " SELECT 2"]


def _v5_database(path: Path) -> dict[str, str]:
    """A database as the schema-5 code left it: a new, an acknowledged, a false-positive
    alert, a suppression, the rules and a worker run."""
    conn = sqlite3.connect(path)
    conn.executescript("".join(MIGRATIONS[:5]) + "PRAGMA user_version = 5;")
    rows = {
        "new": (1, None, None, None),
        "acknowledged": (2, T0 + 20, "bob", "seen"),
        "false_positive": (3, T0 + 30, "carol", "shadow"),
    }
    for status, (n, at, by, note) in rows.items():
        conn.execute(
            "INSERT INTO alerts (event_id, schema_version, camera_id, type, rule_id, zone, "
            "track_id, label, score, priority, start_s, end_s, start_seq, wall_time, status, "
            "acknowledged_at, acknowledged_by, note, received_at, details, run_id, reason) "
            "VALUES (?, 1, 'cam-1', 'intrusion', 'intrusion:z', 'z', ?, 'person', 0.5, 60, ?, "
            "NULL, ?, ?, ?, ?, ?, ?, ?, '{}', ?, 'why')",
            (_id(n), n, float(n), n, T0 + n, status, at, by, note, T0 + n, R1),
        )
    conn.execute(
        "INSERT INTO suppressions (suppression_id, camera_id, expires_at, created_at) "
        "VALUES ('sup-1', 'cam-1', ?, ?)",
        (T0 + 3600, T0),
    )
    conn.execute(
        "INSERT INTO control_documents (name, revision, body, updated_at) "
        "VALUES ('rules', 3, '[{\"type\": \"intrusion\"}]', ?)",
        (T0,),
    )
    conn.execute(
        "INSERT INTO worker_runs (camera_id, run_id, started_at, received_at) "
        "VALUES ('cam-1', ?, ?, ?)",
        (R1, T0, T0),
    )
    conn.commit()
    conn.close()
    return {status: _id(n) for status, (n, *_) in rows.items()}


def test_version_5_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    ids = _v5_database(path)
    with SqliteAlertStore(path) as s:
        assert s.schema_version == len(MIGRATIONS) >= 7
        new, acked, fp = (s.get(ids[k]) for k in ("new", "acknowledged", "false_positive"))
        assert new is not None and acked is not None and fp is not None
        assert (new.state, new.disposition, new.closed_at, new.status) == ("new", None, None, "new")
        assert (acked.state, acked.disposition, acked.status) == (
            "closed",
            "no_action",
            "acknowledged",
        )
        assert (acked.closed_at, acked.closed_by, acked.close_note) == (
            _utc(T0 + 20),
            "bob",
            "seen",
        )
        assert (fp.state, fp.disposition, fp.status) == ("closed", "false_alarm", "false_positive")
        assert (fp.closed_at, fp.closed_by, fp.close_note) == (_utc(T0 + 30), "carol", "shadow")
        for a in (new, acked, fp):
            assert (a.run_id, a.reason, a.priority, a.owner) == (R1, "why", 60, None)
        supp = s.get_suppression("sup-1")
        assert supp is not None and supp.expires_at == T0 + 3600
        assert s.get_rules() == (3, [{"type": "intrusion"}])
        assert s.count(states=["closed"]) == 2 and s.count(status="new") == 1
        # the migrated store works: people, audit, lifecycle
        s.add_user("alice", role="operator", groups=["default"], password_hash="h", now=T0)
        _claim(s, ids["new"], "alice")
        assert s.count_audit() == 1
    conn = sqlite3.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"users", "sessions", "tokens", "audit", "audit_refuses_update"} <= names
        assert {"audit_refuses_delete", "alerts_by_state", "alerts_sla"} <= names
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE alerts SET state = 'lost'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit")
        (runs,) = conn.execute("SELECT COUNT(*) FROM worker_runs").fetchone()
        assert runs == 1
    finally:
        conn.close()


def test_a_lifecycle_column_already_there_does_not_wedge_migration_6(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    ids = _v5_database(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE alerts ADD COLUMN owner TEXT")  # by hand, or a newer build
    conn.commit()
    conn.close()
    with SqliteAlertStore(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        a = s.get(ids["acknowledged"])
        assert a is not None and a.state == "closed" and a.owner is None
