"""``operator_stats`` on SQLite and PostgreSQL: per operator, open claims now and, over a
window, claims, closes, false alarms and the median times to claim and to close, from real
transitions (each at the time its audit entry says)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.store import (
    AlertState,
    AuditEntry,
    LifecycleStore,
    SqlAlertStore,
    TransitionConflictError,
)
from alerts.store.models import Disposition, OperatorFigures
from tests.factories import T0, make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit

WINDOW = (T0, T0 + 1000)


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlAlertStore:
    """A store on a fresh database, SQLite and PostgreSQL in turn."""
    return store_factory()


class Script:
    """Alerts raised at set times, moved by named people at set times (``T0`` + s)."""

    def __init__(self, store: SqlAlertStore) -> None:
        self.store = store
        self._n = 0

    def alert(self, camera: str, raised: float) -> str:
        """A new alert of ``camera`` received at ``T0 + raised``; its event id."""
        self._n += 1
        event = make_event(self._n, camera=camera)
        self.store.upsert(event.to_record())
        with self.store._lock:  # received_at is the store's own clock: set it behind its back
            self.store._conn.execute(
                "UPDATE alerts SET received_at = ? WHERE event_id = ?",
                (T0 + raised, event.event_id),
            )
        return event.event_id

    def _move(
        self,
        eid: str,
        who: str,
        action: str,
        at: float,
        to: AlertState,
        from_states: Collection[AlertState],
        **kw: Any,
    ) -> None:
        entry = AuditEntry(
            at=datetime.fromtimestamp(T0 + at, UTC),
            actor=who,
            actor_kind="user",
            action=f"alert.{action}",
            target_kind="alert",
            target_id=eid,
        )
        self.store.transition(eid, to_state=to, from_states=from_states, audit=entry, **kw)

    def claim(self, eid: str, who: str, at: float) -> None:
        self._move(eid, who, "claim", at, "claimed", {"new", "escalated"}, set_owner=who)

    def release(self, eid: str, who: str, at: float) -> None:
        self._move(eid, who, "release", at, "new", {"claimed"}, set_owner=None)

    def escalate(self, eid: str, who: str, at: float) -> None:
        self._move(eid, who, "escalate", at, "escalated", {"claimed"}, set_owner=None)

    def close(self, eid: str, who: str, at: float, disposition: Disposition) -> None:
        fields = {"disposition": disposition}
        self._move(eid, who, "close", at, "closed", {"claimed", "escalated"}, fields=fields)

    def reopen(self, eid: str, who: str, at: float) -> None:
        self._move(eid, who, "reopen", at, "claimed", {"closed"}, set_owner=who)


def _play(store: SqlAlertStore) -> None:
    s = Script(store)
    a1 = s.alert("cam-1", 0)
    s.claim(a1, "ann", 10)
    s.close(a1, "ann", 40, "false_alarm")
    a2 = s.alert("cam-1", 100)
    s.claim(a2, "ann", 130)
    s.close(a2, "ann", 230, "true_incident")
    a3 = s.alert("cam-1", 200)
    s.claim(a3, "ann", 220)  # still hers
    with pytest.raises(TransitionConflictError):  # a claim that lost counts for nobody
        s.claim(a3, "sup", 221)
    a4 = s.alert("cam-2", 300)
    s.claim(a4, "ann", 350)
    s.release(a4, "ann", 360)
    s.claim(a4, "ann", 370)  # claimed twice: one alert claimed, her first claim's time
    s.release(a4, "ann", 380)
    s.claim(a4, "bob", 390)
    s.close(a4, "bob", 450, "false_alarm")  # 100 s after the alert's first claim
    a5 = s.alert("cam-2", 400)
    s.claim(a5, "bob", 405)
    s.escalate(a5, "bob", 410)
    s.claim(a5, "sup", 500)  # the supervisor holds it now
    a6 = s.alert("cam-2", 500)
    store.acknowledge(a6, by="bob")  # closed (no_action) without a claim
    a7 = s.alert("cam-1", -5000)  # raised before the window, held by ann now
    s.claim(a7, "ann", -4000)
    a8 = s.alert("cam-3", 600)
    s.claim(a8, "bob", 601)
    a9 = s.alert("cam-1", 5000)  # raised after the window: nothing of it counts
    s.claim(a9, "sup", 5010)
    s.close(a9, "sup", 5020, "false_alarm")
    a10 = s.alert("cam-1", 700)  # closed, reopened and closed again by another
    s.claim(a10, "ann", 710)
    s.close(a10, "ann", 720, "duplicate")
    s.reopen(a10, "sup", 800)
    s.close(a10, "sup", 910, "true_incident")  # 200 s after its first claim


def _rows(figures: list[OperatorFigures]) -> list[tuple[Any, ...]]:
    return [
        (
            f.name,
            f.open_claims,
            f.claimed,
            f.closed,
            f.false_alarms,
            f.median_to_claim_s,
            f.median_to_close_s,
        )
        for f in figures
    ]


def test_the_store_is_a_lifecycle_store_with_operator_figures(store: SqlAlertStore) -> None:
    assert isinstance(store, LifecycleStore)
    assert store.operator_stats(since=T0, until=T0 + 1000) == []


def test_operator_figures_over_a_window(store: SqlAlertStore) -> None:
    _play(store)
    got = store.operator_stats(since=WINDOW[0], until=WINDOW[1])
    assert _rows(got) == [
        # name, open, claimed, closed, false alarms, median to claim, median to close
        # ann claimed a1 (10 s), a2 (30), a3 (20), a4 (50), a10 (10); closed a1 (30 s after
        # its claim), a2 (100); a10 she closed was reopened and closed by sup.
        ("ann", 2, 5, 2, 1, 20.0, 65.0),
        # bob claimed a4 (90 s), a5 (5), a8 (1); closed a4 (false alarm, 100 s from its
        # first claim, ann's) and a6 (no claim: no time to close).
        ("bob", 1, 3, 2, 1, 5.0, 100.0),
        # sup claimed a5 (100 s) and holds it; closed a10 (200 s from its first claim).
        ("sup", 1, 1, 1, 0, 100.0, 200.0),
    ]


def test_only_the_given_cameras_count(store: SqlAlertStore) -> None:
    _play(store)
    cams_1_2 = store.operator_stats(since=WINDOW[0], until=WINDOW[1], camera_ids=["cam-1", "cam-2"])
    assert _rows(cams_1_2) == [
        ("ann", 2, 5, 2, 1, 20.0, 65.0),
        ("sup", 1, 1, 1, 0, 100.0, 200.0),
        ("bob", 0, 2, 2, 1, 47.5, 100.0),  # not a8 of cam-3
    ]
    cam_3 = store.operator_stats(since=WINDOW[0], until=WINDOW[1], camera_ids=["cam-3"])
    assert _rows(cam_3) == [("bob", 1, 1, 0, 0, 1.0, None)]
    assert store.operator_stats(since=WINDOW[0], until=WINDOW[1], camera_ids=[]) == []
    with pytest.raises(TypeError):
        store.operator_stats(since=WINDOW[0], until=WINDOW[1], camera_ids="cam-1")


def test_the_window_bounds_the_figures_not_the_open_claims(store: SqlAlertStore) -> None:
    _play(store)
    # since inclusive, until exclusive: a2 (raised at +100) only, not a3 (+200)
    edge = store.operator_stats(since=T0 + 100, until=T0 + 200)
    assert _rows(edge) == [
        ("ann", 2, 1, 1, 0, 30.0, 100.0),
        ("bob", 1, 0, 0, 0, None, None),
        ("sup", 1, 0, 0, 0, None, None),
    ]
    empty = store.operator_stats(since=T0, until=T0)
    assert _rows(empty) == [
        ("ann", 2, 0, 0, 0, None, None),
        ("bob", 1, 0, 0, 0, None, None),
        ("sup", 1, 0, 0, 0, None, None),
    ]
    later = store.operator_stats(since=T0 + 4000, until=T0 + 6000)  # a9 only
    assert _rows(later)[-1] == ("sup", 1, 1, 1, 1, 10.0, 10.0)
