"""The store-wide change sequence (issue 17), on SQLite and PostgreSQL.

Every write of an alert takes the next number; a reader that has number N and asks for
``(N, head]`` gets each changed alert once, as it is now; a deleted alert comes as a
removal; a replay that changes nothing takes no number; pruned removals make a reader that
is too far behind reload; numbers are visible in commit order across connections.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from alerts.store import (
    MAX_CHANGES,
    AlertChange,
    AuditEntry,
    ChangeFeedStore,
    ChangesPrunedError,
    SqlAlertStore,
)
from tests.factories import make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlAlertStore:
    """A store on a fresh database, SQLite and PostgreSQL in turn."""
    return store_factory()


def _entry(actor: str, action: str, event_id: str) -> AuditEntry:
    return AuditEntry(
        seq=0,
        at=datetime.now(UTC),
        actor=actor,
        actor_kind="user",
        action=action,
        target_kind="alert",
        target_id=event_id,
    )


def _feed(store: SqlAlertStore, after: int, **kw: object) -> list[AlertChange]:
    head = store.change_head().seq
    return store.changes_since(after, through=head, **kw)  # type: ignore[arg-type]


def test_every_write_takes_a_number_in_order_and_each_alert_comes_once(
    store: SqlAlertStore,
) -> None:
    assert isinstance(store, ChangeFeedStore)
    assert store.change_head().seq == 0
    a, b = make_event(1), make_event(2, camera="cam-2")
    store.upsert(a.to_record())
    store.upsert(b.to_record())
    first = _feed(store, 0)
    assert [c.event_id for c in first] == [a.event_id, b.event_id]
    assert [c.seq for c in first] == sorted(c.seq for c in first)
    assert all(c.alert is not None and c.alert.change_seq == c.seq for c in first)
    last = first[-1].seq
    assert store.change_head().seq == last

    # a claim, then an end record: the alert comes once, as it is now, under its last number
    store.transition(
        a.event_id,
        to_state="claimed",
        from_states=["new"],
        audit=_entry("olga", "alert.claim", a.event_id),
        set_owner="olga",
    )
    store.upsert(replace(a, end_s=9.0).to_record())
    later = _feed(store, last)
    assert [c.event_id for c in later] == [a.event_id]
    got = later[0].alert
    assert got is not None and got.state == "claimed" and got.owner == "olga"
    assert got.end_s == 9.0 and got.change_seq == later[0].seq > last
    assert _feed(store, later[0].seq) == []  # nothing after the last number


def test_a_replay_that_changes_nothing_takes_no_number(store: SqlAlertStore) -> None:
    a = make_event(1)
    store.upsert(a.to_record())
    store.upsert(replace(a, end_s=5.0).to_record())
    head = store.change_head().seq
    store.upsert(a.to_record())  # the start again
    store.upsert(replace(a, end_s=5.0).to_record())  # the end again
    assert store.change_head().seq == head  # no number taken (no stream woken)
    assert _feed(store, head) == []


def test_camera_filter_and_removals(store: SqlAlertStore) -> None:
    a, b = make_event(1, camera="cam-1"), make_event(2, camera="cam-2")
    store.upsert(a.to_record())
    store.upsert(b.to_record())
    assert [c.event_id for c in _feed(store, 0, camera_ids=["cam-2"])] == [b.event_id]
    assert _feed(store, 0, camera_ids=[]) == []
    head = store.change_head().seq
    assert store.delete_alerts([a.event_id]) == 1
    removed = _feed(store, head)
    assert [(c.event_id, c.camera_id, c.alert) for c in removed] == [(a.event_id, "cam-1", None)]
    assert _feed(store, head, camera_ids=["cam-2"]) == []  # another group's removal: unseen


def test_limit_pages_through_in_order(store: SqlAlertStore) -> None:
    events = [make_event(n) for n in range(1, 8)]
    for e in events:
        store.upsert(e.to_record())
    head = store.change_head().seq
    seen: list[str] = []
    after = 0
    while True:
        page = store.changes_since(after, through=head, limit=3)
        if not page:
            break
        seen += [c.event_id for c in page]
        after = page[-1].seq
    assert seen == [e.event_id for e in events]
    with pytest.raises(ValueError):
        store.changes_since(0, through=head, limit=MAX_CHANGES + 1)


def test_pruned_removals_make_a_late_reader_reload(store: SqlAlertStore) -> None:
    a, b = make_event(1), make_event(2)
    store.upsert(a.to_record())
    store.upsert(b.to_record())
    before_delete = store.change_head().seq
    store.delete_alerts([a.event_id])
    assert store.prune_removals(before=datetime.now(UTC).timestamp() + 60) == 1
    with pytest.raises(ChangesPrunedError):
        _feed(store, before_delete)
    head = store.change_head()
    assert head.pruned_through == head.seq
    assert _feed(store, head.seq) == []  # a reader from the head goes on


def test_concurrent_writers_numbers_are_seen_in_order(store_factory: StoreFactory) -> None:
    """Two connections write at once; a third reads as they go.  Whenever the reader sees
    number N it has seen every number below it, and at the end every alert came."""
    writers = [store_factory(), store_factory()]
    reader = store_factory()
    per_writer = 40
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for n in range(per_writer):
                writers[w].upsert(make_event(1000 * (w + 1) + n, camera=f"cam-{w}").to_record())
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    seen: dict[str, int] = {}
    after = 0
    while True:
        finished = not any(t.is_alive() for t in threads)
        head = reader.change_head().seq
        for c in reader.changes_since(after, through=head):
            assert c.seq > after
            assert c.event_id not in seen  # inserts only: each alert once
            seen[c.event_id] = c.seq
            after = c.seq
        after = max(after, head)
        if finished:
            break
    done.set()
    assert not errors
    assert len(seen) == 2 * per_writer


def test_keyset_pages_hold_every_unchanged_alert_once_while_others_leave(
    store: SqlAlertStore,
) -> None:
    events = [make_event(n, priority=10 + n) for n in range(1, 11)]
    for e in events:
        store.upsert(e.to_record())
    ids = sorted(e.event_id for e in events)
    page1 = store.list(states=["new"], limit=4, after_event_id="")
    assert [a.event_id for a in page1] == ids[:4]
    store.delete_alerts([ids[0], ids[1]])  # earlier alerts leave: offsets would shift by 2
    page2 = store.list(states=["new"], limit=4, after_event_id=page1[-1].event_id)
    assert [a.event_id for a in page2] == ids[4:8]
