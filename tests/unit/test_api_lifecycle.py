"""The alert lifecycle of issue 14 through HTTP: claim, release, escalate, close, reopen,
the older ``/ack`` and ``/false-positive``, the list's filters and camera groups, the audit
trail, the claim SLA and the disposition figures.

One app for the module (a real SQLite store, ``InProcessControl`` with a ``ControlState``
standing in for a worker, a cheap argon2 hasher, a settable clock); every person signs in
with a session of their own and sends its CSRF token.  Each test makes its own alerts
(fresh event ids, and cameras of their own where counts matter).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from alerts.api import AccessSettings, create_app
from alerts.api.auth import CSRF_HEADER
from alerts.control import ControlState, InProcessControl
from alerts.evidence import LocalEvidenceStore
from alerts.sla import SlaJob
from alerts.store import DISPOSITIONS, SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from selector.event import Event
from tests.factories import T0, make_event
from tests.pg import fresh_schema

pytestmark = pytest.mark.unit

KEY = "lifecycle-test-api-key-0123456789"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GROUPS = {
    "cam-a": ["a"],
    "cam-a2": ["a"],
    "cam-b": ["b"],
    "cam-f1": ["fig"],
    "cam-f2": ["fig"],
    "cam-f3": ["other"],
}
USERS = [
    ("op-a1", "operator", ["a"]),
    ("op-a2", "operator", ["a"]),
    ("op-b", "operator", ["b"]),
    ("sup-a", "supervisor", ["a"]),
    ("sup-f", "supervisor", ["fig"]),
    ("adm", "admin", ["default"]),
    *((f"op-c{i}", "operator", ["a"]) for i in range(20)),
]
SLA_PRIORITY = 95
"""Only the SLA test raises alerts at or above this priority (the SLA job sees them all)."""


class Clock:
    """The app's clock: real time, unless a test pins it (``at``)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


class Person:
    """A signed-in user: their own client (cookie jar) sending their CSRF token."""

    def __init__(self, app: FastAPI, name: str) -> None:
        self.name = name
        self.client = TestClient(app, base_url="http://127.0.0.1")
        r = self.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.client.headers[CSRF_HEADER] = r.json()["csrf_token"]

    def act(self, event_id: str, action: str, body: Any = None) -> Response:
        return self.client.post(f"/api/v1/alerts/{event_id}/{action}", json=body)

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(path, params=params)


class World:
    def __init__(self, tmp_path: Path, open_store: Callable[[], SqlAlertStore]) -> None:
        self.open_store = open_store
        self.store = open_store()
        self.control = InProcessControl()
        self.worker = ControlState()
        self.control.subscribe(self.worker)
        self.clock = Clock()
        self.app = create_app(
            self.store,
            LocalEvidenceStore(tmp_path / "evidence"),
            api_key=KEY,
            control=self.control,
            validate_rules=lambda rules: [],
            initial_rules=[{"type": "intrusion", "camera": "cam-a", "zone": "z"}],
            access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP),
            clock=self.clock,
        )
        hashed = CHEAP.hash(PASSWORD)
        for name, role, groups in USERS:
            self.store.add_user(name, role=role, groups=groups, password_hash=hashed, now=T0)  # type: ignore[arg-type]
        self.people = {name: Person(self.app, name) for name, _, _ in USERS[:6]}
        self.key = TestClient(self.app, base_url="http://127.0.0.1", headers={"X-API-Key": KEY})
        self._n = itertools.count(1)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    def event(self, camera: str = "cam-a", **kw: Any) -> Event:
        """A fresh event (not stored)."""
        return make_event(next(self._n), camera=camera, **kw)

    def alert(self, camera: str = "cam-a", **kw: Any) -> str:
        """A fresh alert in the store; its event id."""
        event = self.event(camera, **kw)
        self.store.upsert(event.to_record())
        return event.event_id

    def state(self, event_id: str) -> tuple[str, str | None]:
        alert = self.store.get(event_id)
        assert alert is not None
        return alert.state, alert.owner

    def trail(self, event_id: str) -> list[tuple[str, str]]:
        """(action, actor) of the alert's audit entries, oldest first, via its route."""
        r = self["sup-a"].get(f"/api/v1/alerts/{event_id}/audit", limit=500)
        assert r.status_code == 200, r.text
        return [(e["action"], e["actor"]) for e in reversed(r.json()["items"])]

    def close(self) -> None:
        for person in self.people.values():
            person.client.close()
        self.key.close()
        self.store.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The API on a SQLite store, then on a PostgreSQL one."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    if request.param == "sqlite":
        w = World(tmp, lambda: SqliteAlertStore(tmp / "alerts.sqlite"))
        yield w
        w.close()
        return
    server = request.getfixturevalue("postgres")
    for schema in fresh_schema(server):
        w = World(tmp, partial(PostgresAlertStore, server.dsn, schema=schema))
        yield w
        w.close()


def ok(r: Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def conflict(r: Response) -> dict[str, Any]:
    body = ok(r, 409)
    assert set(body) == {"detail", "state", "owner", "allowed"}
    return body


# ------------------------------------------------------------------------ transitions


def test_the_whole_path_claim_release_escalate_close_reopen(world: World) -> None:
    op, other, sup = world["op-a1"], world["op-a2"], world["sup-a"]
    eid = world.alert()

    a = ok(op.act(eid, "claim", {"note": "on it"}))
    assert (a["state"], a["owner"]) == ("claimed", "op-a1") and a["claimed_at"]
    first_claim = a["claimed_at"]
    a = ok(op.act(eid, "release"))
    assert (a["state"], a["owner"]) == ("new", None)
    a = ok(op.act(eid, "claim"))
    assert (a["state"], a["owner"], a["claimed_at"]) == ("claimed", "op-a1", first_claim)
    a = ok(op.act(eid, "escalate", {}))
    assert (a["state"], a["owner"]) == ("escalated", None)
    assert (a["escalated_to"], a["escalated_by"]) == ("supervisors", "op-a1")

    # Escalated: for supervisors only.
    for who in (op, other):
        assert who.act(eid, "claim").status_code == 403
        assert who.act(eid, "close", {"disposition": "no_action"}).status_code == 403
        assert who.act(eid, "escalate", {}).status_code == 403
    assert world.state(eid) == ("escalated", None)
    a = ok(sup.act(eid, "claim"))
    assert (a["state"], a["owner"]) == ("claimed", "sup-a")
    a = ok(sup.act(eid, "close", {"disposition": "true_incident", "note": "police called"}))
    assert (a["state"], a["disposition"], a["closed_by"]) == ("closed", "true_incident", "sup-a")
    assert (a["close_note"], a["status"]) == ("police called", "acknowledged")
    a = ok(sup.act(eid, "reopen", {"note": "not over"}))
    assert (a["state"], a["owner"], a["disposition"], a["closed_at"]) == (
        "claimed", "sup-a", None, None,
    )  # fmt: skip
    assert a["status"] == "new"

    assert world.trail(eid) == [
        ("alert.claim", "op-a1"),
        ("alert.release", "op-a1"),
        ("alert.claim", "op-a1"),
        ("alert.escalate", "op-a1"),
        ("alert.claim", "sup-a"),
        ("alert.close", "sup-a"),
        ("alert.reopen", "sup-a"),
    ]
    entries = ok(sup.get(f"/api/v1/alerts/{eid}/audit"))["items"]
    assert entries[-1]["detail"]["note"] == "on it"
    assert (entries[-1]["detail"]["from"], entries[-1]["detail"]["to"]) == ("new", "claimed")
    assert all(e["client"] and e["actor_kind"] == "user" for e in entries)


@pytest.mark.parametrize("disposition", DISPOSITIONS)
def test_close_with_each_disposition_then_reopen(world: World, disposition: str) -> None:
    op = world["op-a1"]
    eid = world.alert()
    ok(op.act(eid, "claim"))
    a = ok(op.act(eid, "close", {"disposition": disposition, "suppress": {"scope": "rule"}}))
    assert (a["state"], a["disposition"], a["closed_by"], a["owner"]) == (
        "closed", disposition, "op-a1", "op-a1",
    )  # fmt: skip
    assert a["status"] == ("false_positive" if disposition == "false_alarm" else "acknowledged")
    assert a["acknowledged_by"] == "op-a1" and a["acknowledged_at"] == a["closed_at"]
    listed = ok(op.get("/api/v1/alerts", state="closed", camera_id="cam-a", limit=500))
    assert eid in {x["event_id"] for x in listed["items"]}
    a = ok(op.act(eid, "reopen"))
    assert (a["state"], a["owner"], a["disposition"]) == ("claimed", "op-a1", None)


def test_acting_on_a_new_alert_claims_it_first(world: World) -> None:
    op = world["op-a1"]
    escalated, closed = world.alert(), world.alert()
    a = ok(op.act(escalated, "escalate", {"note": "looks real"}))
    assert (a["state"], a["owner"], a["claimed_at"] is not None) == ("escalated", None, True)
    assert world.trail(escalated) == [("alert.claim", "op-a1"), ("alert.escalate", "op-a1")]
    a = ok(op.act(closed, "close", {"disposition": "duplicate"}))
    assert (a["state"], a["owner"], a["disposition"]) == ("closed", "op-a1", "duplicate")
    assert world.trail(closed) == [("alert.claim", "op-a1"), ("alert.close", "op-a1")]


def test_escalating_to_an_outside_service_keeps_the_owner(world: World) -> None:
    """Handed to the police with their case number, the alert stays the operator's: they
    close it when the case is done (other operators may not; supervisors may)."""
    op, other, sup = world["op-a1"], world["op-a2"], world["sup-a"]
    eid, again = world.alert(), world.alert()
    ok(op.act(eid, "claim"))
    a = ok(op.act(eid, "escalate", {"to": "external", "reference": "police case 2024-117"}))
    assert (a["state"], a["owner"], a["escalated_to"]) == ("escalated", "op-a1", "external")
    assert a["escalation_ref"] == "police case 2024-117"
    assert other.act(eid, "close", {"disposition": "no_action"}).status_code == 403
    assert other.act(eid, "claim").status_code == 403
    a = ok(op.act(eid, "close", {"disposition": "true_incident", "note": "arrested"}))
    assert (a["state"], a["closed_by"], a["escalation_ref"]) == (
        "closed", "op-a1", "police case 2024-117",
    )  # fmt: skip

    ok(op.act(again, "escalate", {"to": "external", "reference": "fire 8"}))
    a = ok(sup.act(again, "escalate", {"to": "external", "reference": "fire 9"}))
    assert (a["escalation_ref"], a["escalated_by"], a["owner"]) == ("fire 9", "sup-a", "op-a1")
    a = ok(sup.act(again, "close", {"disposition": "no_action"}))
    assert (a["state"], a["closed_by"]) == ("closed", "sup-a")


def test_a_transition_not_allowed_answers_409_with_the_allowed_ones(world: World) -> None:
    op = world["op-a1"]
    eid = world.alert()
    body = conflict(op.act(eid, "release"))
    assert (body["state"], body["owner"]) == ("new", None)
    assert body["allowed"] == ["claim", "escalate", "close"]
    assert conflict(op.act(eid, "reopen"))["state"] == "new"

    ok(op.act(eid, "claim"))
    body = conflict(op.act(eid, "reopen"))
    assert (body["state"], body["owner"], body["allowed"]) == (
        "claimed", "op-a1", ["release", "escalate", "close"],
    )  # fmt: skip
    assert "op-a1" in body["detail"]

    ok(op.act(eid, "close", {"disposition": "test"}))
    for action, payload in (
        ("claim", None),
        ("release", None),
        ("escalate", {}),
        ("close", {"disposition": "no_action"}),
    ):
        body = conflict(op.act(eid, action, payload))
        assert (body["state"], body["allowed"]) == ("closed", ["reopen"]), action
    assert world.store.get(eid).disposition == "test"  # type: ignore[union-attr]


def _race(world: World, event_id: str, names: list[str]) -> list[Response]:
    """Every name in ``names`` signs in on a client of its own; all claim at once."""
    people = [Person(world.app, name) for name in names]
    barrier = threading.Barrier(len(people))
    answers: list[Response | None] = [None] * len(people)

    def claim(i: int) -> None:
        barrier.wait()
        answers[i] = people[i].act(event_id, "claim")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(people))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for p in people:
        p.client.close()
    assert all(r is not None for r in answers)
    return [r for r in answers if r is not None]


def test_of_twenty_concurrent_claims_exactly_one_wins(world: World) -> None:
    eid = world.alert()
    names = [f"op-c{i}" for i in range(20)]
    answers = _race(world, eid, names)
    won = [(n, r) for n, r in zip(names, answers, strict=True) if r.status_code == 200]
    assert len(won) == 1, [r.status_code for r in answers]
    winner = won[0][0]
    assert won[0][1].json()["owner"] == winner
    for name, r in zip(names, answers, strict=True):
        if name != winner:
            body = conflict(r)
            assert (body["state"], body["owner"]) == ("claimed", winner)
            assert winner in body["detail"]
    assert world.state(eid) == ("claimed", winner)
    assert world.trail(eid) == [("alert.claim", winner)]


def test_two_operators_claiming_at_once_one_wins_the_other_is_told_who(world: World) -> None:
    """Ten sessions each of two operators: the winner's own requests are answered as a
    claim of their own again (200, nothing changes), every other one 409 naming them."""
    eid = world.alert()
    names = ["op-a1", "op-a2"] * 10
    answers = _race(world, eid, names)
    owner = world.state(eid)[1]
    assert owner in ("op-a1", "op-a2")
    for name, r in zip(names, answers, strict=True):
        if name == owner:
            assert r.status_code == 200 and r.json()["owner"] == owner, r.text
        else:
            body = conflict(r)
            assert (body["state"], body["owner"]) == ("claimed", owner)
    assert world.trail(eid) == [("alert.claim", owner)]


def test_an_operator_may_not_take_anothers_claim_a_supervisor_may(world: World) -> None:
    op, other, sup = world["op-a1"], world["op-a2"], world["sup-a"]
    eid = world.alert()
    ok(op.act(eid, "claim"))
    for action, payload in (
        ("claim", None),
        ("release", None),
        ("escalate", {}),
        ("close", {"disposition": "no_action"}),
        ("close", {"disposition": "false_alarm"}),
        ("ack", {}),
        ("false-positive", {"scope": "rule"}),
    ):
        body = conflict(other.act(eid, action, payload))
        assert (body["state"], body["owner"]) == ("claimed", "op-a1"), action
    assert world.state(eid) == ("claimed", "op-a1")
    assert not [s for s in world.worker.suppressions.values() if s.source_event_id == eid]
    a = ok(sup.act(eid, "release", {"note": "op-a1 went home"}))
    assert (a["state"], a["owner"]) == ("new", None)
    ok(op.act(eid, "claim"))
    a = ok(sup.act(eid, "close", {"disposition": "no_action"}))
    assert (a["state"], a["closed_by"], a["owner"]) == ("closed", "sup-a", "op-a1")
    assert world.trail(eid)[-2:] == [("alert.claim", "op-a1"), ("alert.close", "sup-a")]


def test_an_unknown_disposition_is_422_and_changes_nothing(world: World) -> None:
    op = world["op-a1"]
    eid = world.alert()
    for body in ({"disposition": "spam"}, {"disposition": None}, {}, {"disposition": 1}):
        r = op.act(eid, "close", body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][:2] == ["body", "disposition"]
    assert world.state(eid) == ("new", None)
    assert world.trail(eid) == []


# ------------------------------------------------------------------------- false alarms


def _suppressions_of(world: World, event_id: str) -> list[Any]:
    return [s for s in world.worker.suppressions.values() if s.source_event_id == event_id]


def test_a_false_alarm_suppresses_its_region_on_every_worker(world: World) -> None:
    op = world["op-a1"]
    eid = world.alert()
    a = ok(op.act(eid, "close", {"disposition": "false_alarm", "note": "a cat"}))
    assert (a["state"], a["status"], a["owner"]) == ("closed", "false_positive", "op-a1")
    (s,) = _suppressions_of(world, eid)
    alert = world.store.get(eid)
    assert alert is not None
    assert (s.camera_id, s.rule_id, s.zone, s.label) == ("cam-a", alert.rule_id, "z", "person")
    assert s.region is not None and s.note == "a cat"
    assert world.store.get_suppression(s.suppression_id) == s
    listed = ok(op.get(f"/api/v1/suppressions/{s.suppression_id}"))
    assert listed["source_event_id"] == eid
    assert [act for act, _ in world.trail(eid)] == ["alert.claim", "alert.close"]
    r = world["sup-a"].get("/api/v1/audit", action="suppression.create", target_id=s.suppression_id)
    (entry,) = ok(r)["items"]
    assert (entry["actor"], entry["detail"]["alert"], entry["detail"]["scope"]) == (
        "op-a1", eid, "region",
    )  # fmt: skip


def test_a_false_alarm_without_a_box_suppresses_its_rule(world: World) -> None:
    op = world["op-a1"]
    event = dataclasses.replace(world.event(), bbox=None)
    world.store.upsert(event.to_record())
    ok(op.act(event.event_id, "close", {"disposition": "false_alarm"}))
    (s,) = _suppressions_of(world, event.event_id)
    assert (s.camera_id, s.rule_id, s.zone, s.label, s.region) == (
        "cam-a", event.rule_id, None, None, None,
    )  # fmt: skip


def test_a_camera_wide_suppression_is_for_supervisors(world: World) -> None:
    op, sup = world["op-a1"], world["sup-a"]
    camera = {"disposition": "false_alarm", "suppress": {"scope": "camera"}}
    eid = world.alert()
    assert op.act(eid, "close", camera).status_code == 403
    assert op.act(eid, "false-positive", {"scope": "camera"}).status_code == 403
    # Refused: nothing happened to the alert, nothing reached a worker.
    assert world.state(eid) == ("new", None)
    assert world.trail(eid) == []
    assert _suppressions_of(world, eid) == []

    a = ok(sup.act(eid, "close", camera))
    assert (a["state"], a["disposition"]) == ("closed", "false_alarm")
    (s,) = _suppressions_of(world, eid)
    assert (s.camera_id, s.rule_id, s.zone, s.region) == ("cam-a", None, None, None)

    other = world.alert()
    made = ok(sup.act(other, "false-positive", {"scope": "camera", "expires_in_s": 600}), 201)
    assert made["camera_id"] == "cam-a" and made["rule_id"] is None
    assert world.worker.suppressions[made["suppression_id"]].source_event_id == other
    assert world.state(other)[0] == "closed"


def test_a_refused_suppression_leaves_the_alert_as_it_was(world: World) -> None:
    """``region`` for an alert without a box is 422: the alert is not claimed either."""
    op = world["op-a1"]
    event = dataclasses.replace(world.event(), bbox=None)
    world.store.upsert(event.to_record())
    r = op.act(event.event_id, "close", {"disposition": "false_alarm", "suppress": {}})
    assert r.status_code == 422, r.text
    assert op.act(event.event_id, "false-positive", {"scope": "region"}).status_code == 422
    assert world.state(event.event_id) == ("new", None)
    assert world.trail(event.event_id) == []


def test_later_records_of_the_event_never_change_its_state(world: World) -> None:
    op, sup = world["op-a1"], world["sup-a"]
    events = [world.event(priority=40) for _ in range(4)]
    for e in events:
        world.store.upsert(e.to_record())
    claimed, escalated, closed, new = (e.event_id for e in events)
    ok(op.act(claimed, "claim"))
    ok(op.act(escalated, "escalate", {}))
    ok(op.act(closed, "close", {"disposition": "no_action"}))
    before = {e.event_id: world.state(e.event_id) for e in events}

    for e in events:  # the incident persists: its priority steps up; then it ends
        world.store.upsert(dataclasses.replace(e, priority=90).to_record())
        world.store.upsert(dataclasses.replace(e, priority=90).closed(e.start_s + 30).to_record())
    for e in events:
        alert = world.store.get(e.event_id)
        assert alert is not None
        assert (alert.priority, alert.end_s, alert.end_reason) == (90, e.start_s + 30, "ended")
        assert world.state(e.event_id) == before[e.event_id]
    assert before[new] == ("new", None) and before[closed][0] == "closed"
    # Still acted on as before: an ended event's alert is claimed, closed, reopened.
    ok(sup.act(escalated, "close", {"disposition": "true_incident"}))
    ok(op.act(new, "claim"))
    ok(op.act(closed, "reopen"))


# ------------------------------------------------------------------------- older routes


def test_ack_and_false_positive_still_work_for_older_clients(world: World) -> None:
    op = world["op-a1"]
    acked = world.alert()
    a = ok(op.act(acked, "ack", {"note": "seen"}))
    assert (a["state"], a["disposition"], a["status"]) == ("closed", "no_action", "acknowledged")
    assert (a["acknowledged_by"], a["note"], a["owner"]) == ("op-a1", "seen", "op-a1")
    again = ok(world["sup-a"].act(acked, "ack", {"note": "seen twice"}))
    assert again == a  # a closed alert acked again stays as it was
    assert world.trail(acked) == [("alert.claim", "op-a1"), ("alert.close", "op-a1")]

    fp = world.alert()
    made = ok(op.act(fp, "false-positive", {"scope": "rule", "note": "shadow"}), 201)
    assert made["source_event_id"] == fp and made["rule_id"]
    assert made["suppression_id"] in world.worker.suppressions
    a = ok(op.get(f"/api/v1/alerts/{fp}"))
    assert (a["state"], a["disposition"], a["status"]) == (
        "closed",
        "false_alarm",
        "false_positive",
    )
    assert ok(op.act(fp, "ack", {})) == a  # a false alarm acked stays a false alarm

    # A closed alert marked false afterwards: the suppression, the alert as it was.
    before = ok(op.get(f"/api/v1/alerts/{acked}"))
    made = ok(op.act(acked, "false-positive", {"scope": "rule"}), 201)
    assert made["suppression_id"] in world.worker.suppressions
    assert ok(op.get(f"/api/v1/alerts/{acked}")) == before
    assert before["disposition"] == "no_action"


def test_the_api_key_with_by_names_the_operator(world: World) -> None:
    eid = world.alert()
    r = world.key.post(f"/api/v1/alerts/{eid}/ack", json={"by": "alice", "note": "ok"})
    a = ok(r)
    assert (a["state"], a["owner"], a["closed_by"], a["acknowledged_by"]) == (
        "closed", "alice", "alice", "alice",
    )  # fmt: skip
    assert world.trail(eid) == [("alert.claim", "alice"), ("alert.close", "alice")]


# ------------------------------------------------------------------ the list and groups


def test_the_list_filters_state_apart_from_ongoing(world: World) -> None:
    op, sup = world["op-a1"], world["sup-a"]
    ids = {name: world.alert("cam-a2") for name in ("new", "claimed", "escalated", "closed")}
    ended = world.event("cam-a2")
    world.store.upsert(ended.to_record())
    world.store.upsert(ended.closed(ended.start_s + 5).to_record())
    ids["ended"] = ended.event_id
    ok(op.act(ids["claimed"], "claim"))
    ok(op.act(ids["escalated"], "escalate", {}))
    ok(op.act(ids["closed"], "close", {"disposition": "no_action"}))

    def listed(query: str) -> set[str]:
        r = sup.client.get(f"/api/v1/alerts?camera_id=cam-a2&limit=500&{query}")
        page = ok(r)
        assert page["total"] == len(page["items"])
        return {next(k for k, v in ids.items() if v == x["event_id"]) for x in page["items"]}

    everything = set(ids)
    assert listed("") == everything
    assert listed("state=new") == {"new", "ended"}
    assert listed("state=claimed") == {"claimed"}
    assert listed("state=new&state=claimed&state=escalated") == everything - {"closed"}
    assert listed("state=closed") == {"closed"}
    assert listed("ongoing=true") == everything - {"ended"}
    assert listed("ongoing=false") == {"ended"}
    assert listed("open=false") == {"ended"}  # the older name of ongoing
    assert listed("open=true&ongoing=true") == everything - {"ended"}
    assert listed("open=true&ongoing=false") == set()  # both apply: ongoing and ended
    assert listed("state=new&ongoing=true") == {"new"}
    assert listed("state=closed&ongoing=false") == set()
    assert listed("status=acknowledged") == {"closed"}
    for bad in ("state=open", "state=CLOSED", "ongoing=maybe", "state="):
        r = sup.client.get(f"/api/v1/alerts?{bad}")
        assert r.status_code == 422, (bad, r.text)
    spec = world.key.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/alerts"]["get"]["parameters"]}
    assert "lifecycle" in params["state"]["description"]
    assert "going on" in params["ongoing"]["description"]
    assert "ongoing" in params["open"]["description"]


def test_an_operator_of_another_group_sees_nothing_of_it(world: World) -> None:
    op_b = world["op-b"]
    mine, theirs = world.alert("cam-b"), world.alert("cam-a")
    page = ok(op_b.get("/api/v1/alerts", limit=500))
    cameras = {x["camera_id"] for x in page["items"]}
    assert cameras == {"cam-b"} and page["total"] == len(page["items"])
    assert mine in {x["event_id"] for x in page["items"]}
    assert ok(op_b.get("/api/v1/alerts", camera_id="cam-a"))["total"] == 0
    assert op_b.get(f"/api/v1/alerts/{theirs}").status_code == 404
    assert op_b.get(f"/api/v1/alerts/{theirs}/audit").status_code == 404
    for action, body in (
        ("claim", None),
        ("release", None),
        ("escalate", {}),
        ("close", {"disposition": "no_action"}),
        ("reopen", None),
        ("ack", {}),
        ("false-positive", {}),
    ):
        r = op_b.act(theirs, action, body)
        assert r.status_code == 404 and r.json() == {"detail": "alert not found"}, action
    assert world.state(theirs) == ("new", None)
    ok(op_b.act(mine, "claim"))


# ------------------------------------------------------------------------------ audit


def _all_audit(world: World) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = world.key.get("/api/v1/audit", params={"limit": 500, "offset": len(out)})
        page = ok(r)
        out += page["items"]
        if len(out) >= page["total"]:
            return out


def test_every_change_is_in_the_audit_trail_which_no_route_changes(world: World) -> None:
    before = _all_audit(world)
    sup, adm, op = world["sup-a"], world["adm"], world["op-a1"]
    trail = world.key

    # Sign-in, a failed one, sign-out.
    tmp = Person(world.app, "op-a2")
    assert tmp.client.post("/api/v1/auth/logout").status_code == 204
    tmp.client.close()
    with TestClient(world.app, base_url="http://127.0.0.1") as anon:
        bad = {"username": "nobody-here", "password": "not it at all"}
        assert anon.post("/api/v1/auth/login", json=bad).status_code == 401
    # Users, tokens, rules, suppressions, a transition.
    ok(adm.client.post("/api/v1/users", json={
        "name": "audited", "role": "operator", "groups": ["a"], "password": PASSWORD,
    }), 201)  # fmt: skip
    ok(adm.client.patch("/api/v1/users/audited", json={"groups": ["a", "b"]}))
    r = adm.client.post("/api/v1/users/audited/password", json={"password": "another one 123"})
    assert r.status_code == 204
    made = ok(adm.client.post("/api/v1/tokens", json={"name": "vms", "role": "operator"}), 201)
    bearer = {"Authorization": f"Bearer {made['token']}"}
    with TestClient(world.app, base_url="http://127.0.0.1", headers=bearer) as integration:
        for _ in range(3):
            assert integration.get("/api/v1/alerts").status_code == 200
    rules = {"rules": [{"type": "intrusion", "camera": "cam-a", "zone": "z"}], "revision": None}
    ok(adm.client.put("/api/v1/rules", json=rules))
    eid = world.alert()
    sid = ok(op.act(eid, "false-positive", {"scope": "rule"}), 201)["suppression_id"]
    assert sup.client.delete(f"/api/v1/suppressions/{sid}").status_code == 204

    after = _all_audit(world)
    new = after[: len(after) - len(before)]
    assert after[len(new) :] == before  # nothing earlier changed or went
    seen = {(e["action"], e["actor"], e["target_id"]) for e in new}
    token_id = made["token_id"]
    for expected in (
        ("auth.login", "op-a2", "op-a2"),
        ("auth.logout", "op-a2", "op-a2"),
        ("auth.login_failed", "(unknown user)", None),  # the name tried is not kept
        ("user.create", "adm", "audited"),
        ("user.update", "adm", "audited"),
        ("user.password", "adm", "audited"),
        ("token.create", "adm", token_id),
        ("token.use", token_id, token_id),
        ("rules.put", "adm", str(ok(trail.get("/api/v1/rules"))["revision"])),
        ("alert.claim", "op-a1", eid),
        ("alert.close", "op-a1", eid),
        ("suppression.create", "op-a1", sid),
        ("suppression.delete", "sup-a", sid),
    ):
        assert expected in seen, expected
    assert [e["action"] for e in new].count("token.use") == 1  # its first use, not every one
    failed = next(e for e in new if e["action"] == "auth.login_failed")
    assert failed["actor_kind"] == "anonymous" and failed["client"] == "testclient"
    assert "not it at all" not in str(failed)
    assert all(e["client"] for e in new)

    # Filters: actor, an action prefix, target, since/until.
    # (the whole trail is the admin's; a supervisor reads their groups' alerts and
    # suppressions: tests/unit/test_api_scoping.py)
    by_adm = ok(trail.get("/api/v1/audit", params={"actor": "adm", "limit": 500}))["items"]
    assert by_adm and {e["actor"] for e in by_adm} == {"adm"}
    alert_only = ok(sup.get("/api/v1/audit", action="alert.", limit=500))["items"]
    assert alert_only and all(e["action"].startswith("alert.") for e in alert_only)
    assert ok(trail.get("/api/v1/audit", params={"action": "auth."}))["total"] >= 3
    assert ok(sup.get("/api/v1/audit", action="auth."))["total"] == 0
    target = ok(sup.get("/api/v1/audit", target_id=eid))["items"]
    assert [e["action"] for e in reversed(target)] == ["alert.claim", "alert.close"]
    assert ok(trail.get("/api/v1/alerts/" + eid + "/audit"))["items"] == target
    pinned = time.time() + 900.0  # within the sessions' idle time and lifetime
    world.clock.at = pinned
    try:
        late = world.alert()
        ok(op.act(late, "claim"))
    finally:
        world.clock.at = None
    window = ok(sup.get("/api/v1/audit", since=pinned - 1, until=pinned + 1))["items"]
    assert [(e["action"], e["target_id"]) for e in window] == [("alert.claim", late)]
    assert ok(sup.get("/api/v1/audit", since=pinned + 1))["total"] == 0
    everything_before = ok(trail.get("/api/v1/audit", params={"until": pinned - 1}))["total"]
    assert everything_before == len(_all_audit(world)) - 1
    assert sup.get("/api/v1/audit", action="alert.claim; drop").status_code == 422
    assert op.get("/api/v1/audit").status_code == 403


def test_no_route_can_change_the_audit_trail(world: World) -> None:
    for route in world.app.routes:
        if isinstance(route, APIRoute) and "audit" in route.path:
            assert route.methods <= {"GET", "HEAD"}, (route.path, route.methods)
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        r = world.key.request(method, "/api/v1/audit", json={})
        assert r.status_code == 405, (method, r.status_code)


# -------------------------------------------------------------------------------- SLA


def test_the_sla_escalates_an_unclaimed_urgent_alert_once(world: World) -> None:
    op, sup = world["op-a1"], world["sup-a"]
    overdue = world.alert(priority=SLA_PRIORITY + 1)
    claimed = world.alert(priority=SLA_PRIORITY + 1)
    minor = world.alert(priority=SLA_PRIORITY - 1)
    ok(op.act(claimed, "claim"))
    later = time.time() + 120.0
    job = SlaJob(world.store, min_priority=SLA_PRIORITY, claim_within_s=60, clock=lambda: later)
    soon = SlaJob(world.store, min_priority=SLA_PRIORITY, claim_within_s=600, clock=lambda: later)
    assert soon.run_once() == []  # not overdue yet
    assert job.run_once() == [overdue]
    assert job.run_once() == []
    assert world.state(overdue) == ("escalated", None)
    assert world.state(claimed) == ("claimed", "op-a1")
    assert world.state(minor) == ("new", None)
    a = ok(sup.get(f"/api/v1/alerts/{overdue}"))
    assert (a["escalated_by"], a["escalated_to"]) == ("sla", "supervisors")
    (entry,) = ok(sup.get(f"/api/v1/alerts/{overdue}/audit"))["items"]
    assert (entry["action"], entry["actor"], entry["actor_kind"]) == (
        "alert.escalate", "sla", "system",
    )  # fmt: skip
    assert "60" in entry["detail"]["reason"]
    assert op.act(overdue, "claim").status_code == 403
    assert ok(sup.act(overdue, "claim"))["owner"] == "sup-a"


def test_two_sla_jobs_over_two_store_objects_escalate_each_alert_once(world: World) -> None:
    overdue = {world.alert(priority=SLA_PRIORITY + 2) for _ in range(5)}
    later = time.time() + 120.0
    stores = [world.store, world.open_store()]
    jobs = [
        SlaJob(s, min_priority=SLA_PRIORITY, claim_within_s=60, clock=lambda: later) for s in stores
    ]
    barrier = threading.Barrier(len(jobs))
    got: list[list[str]] = [[] for _ in jobs]

    def run(i: int) -> None:
        barrier.wait()
        got[i] = jobs[i].run_once() + jobs[i].run_once()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stores[1].close()
    escalated = got[0] + got[1]
    assert sorted(escalated) == sorted(overdue)  # each once, by one job or the other
    for eid in overdue:
        assert world.trail(eid) == [("alert.escalate", "sla")]


# ---------------------------------------------------------------------------- figures


def test_disposition_figures_by_rule_and_camera(world: World) -> None:
    """A scripted shift: claims and closes at known seconds after each alert arrived."""
    op, sup = world["op-a1"], world["sup-f"]
    ops = Person(world.app, "adm")  # acts on every camera
    script: list[tuple[str, str, float | None, tuple[str, float] | None]] = [
        # camera, type, claimed after s, (disposition, closed after s)
        ("cam-f1", "fall", 10, ("false_alarm", 40)),
        ("cam-f1", "fall", 20, ("no_action", 80)),
        ("cam-f1", "loitering", 30, ("true_incident", 100)),
        ("cam-f2", "fall", 60, None),
        ("cam-f2", "fall", None, None),
        ("cam-f3", "fall", 5, ("false_alarm", 6)),  # another group's camera
    ]
    try:
        for camera, type_, claim_s, close in script:
            eid = world.alert(camera, type_=type_)
            alert = world.store.get(eid)
            assert alert is not None
            arrived = alert.received_at.timestamp()
            if claim_s is not None:
                world.clock.at = arrived + claim_s
                ok(ops.act(eid, "claim"))
            if close is not None:
                world.clock.at = arrived + close[1]
                body = {"disposition": close[0], "suppress": {"scope": "rule"}}
                ok(ops.act(eid, "close", body))
    finally:
        world.clock.at = None
        ops.client.close()

    by_rule = ok(sup.get("/api/v1/stats/dispositions", by="rule"))
    assert by_rule["by"] == "rule" and by_rule["until"] - by_rule["since"] == 7 * 86400
    rows = {x["key"]: x for x in by_rule["items"]}
    assert rows == {
        "fall:z": {
            "key": "fall:z", "alerts": 4, "closed": 2, "false_alarms": 1,
            "false_alarm_share": 0.5, "by_disposition": {"false_alarm": 1, "no_action": 1},
            "median_time_to_claim_s": pytest.approx(20),
            "median_time_to_close_s": pytest.approx(60),
        },
        "loitering:z": {
            "key": "loitering:z", "alerts": 1, "closed": 1, "false_alarms": 0,
            "false_alarm_share": 0.0, "by_disposition": {"true_incident": 1},
            "median_time_to_claim_s": pytest.approx(30),
            "median_time_to_close_s": pytest.approx(100),
        },
    }  # fmt: skip
    assert [x["key"] for x in by_rule["items"]] == ["fall:z", "loitering:z"]  # most alerts first

    by_camera = ok(sup.get("/api/v1/stats/dispositions", by="camera"))["items"]
    assert [x["key"] for x in by_camera] == ["cam-f1", "cam-f2"]  # not cam-f3
    f1, f2 = by_camera
    assert (f1["alerts"], f1["closed"], f1["false_alarms"]) == (3, 3, 1)
    assert f1["false_alarm_share"] == pytest.approx(1 / 3)
    assert (f1["median_time_to_claim_s"], f1["median_time_to_close_s"]) == (
        pytest.approx(20), pytest.approx(80),
    )  # fmt: skip
    assert (f2["alerts"], f2["closed"], f2["false_alarm_share"]) == (2, 0, None)
    assert (f2["median_time_to_claim_s"], f2["median_time_to_close_s"]) == (
        pytest.approx(60), None,
    )  # fmt: skip

    everything = ok(world["adm"].get("/api/v1/stats/dispositions", by="camera"))["items"]
    f3 = next(x for x in everything if x["key"] == "cam-f3")
    assert (f3["alerts"], f3["false_alarm_share"]) == (1, 1.0)
    of_a = ok(world["sup-a"].get("/api/v1/stats/dispositions", by="camera"))["items"]
    assert not {x["key"] for x in of_a} & {"cam-f1", "cam-f2", "cam-f3"}
    # A window that ends before they arrived holds none of them.
    old = ok(sup.get("/api/v1/stats/dispositions", by="camera", until=T0, since=T0 - 3600))
    assert old["items"] == []
    assert op.get("/api/v1/stats/dispositions").status_code == 403
    assert sup.get("/api/v1/stats/dispositions", by="zone").status_code == 422
