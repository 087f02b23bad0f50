"""The control-plane routes of the alerts API: false positives, suppressions, rules.

FastAPI TestClient against a real SQLite store, with ``InProcessControl`` as the channel
and a ``ControlState`` subscribed to it standing in for a worker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.api import MAX_RULES, create_app
from alerts.control import (
    RULES_KEY,
    ControlPublishError,
    ControlState,
    ControlValue,
    InProcessControl,
    suppression_key,
)
from alerts.evidence import LocalEvidenceStore
from alerts.store import AlertStoreError, SqliteAlertStore
from selector.event import Event
from selector.suppression import Suppression, region_around
from tests.factories import BBOX, T0, make_event

pytestmark = pytest.mark.unit

KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}
NOW = T0 + 1000.0
INITIAL = [{"type": "intrusion", "zone": "z"}]


def validate(rules: list[dict[str, Any]]) -> list[str]:
    """A stand-in for the selector's checker: every rule needs a string ``type``."""
    problems = [f"rule {i}: needs a type" for i, r in enumerate(rules) if "type" not in r]
    problems += [
        f"rule {i}: type must be a string"
        for i, r in enumerate(rules)
        if "type" in r and not isinstance(r["type"], str)
    ]
    for r in rules:
        r["mutated_by_validator"] = True  # must not leak into what is stored
    return problems


class FlakyStore(SqliteAlertStore):
    """A real store whose control writes can be made to fail."""

    fail: bool = False

    def add_suppression(self, suppression: Any) -> None:
        if self.fail:
            raise AlertStoreError("disk full", path=self.path)
        super().add_suppression(suppression)

    def delete_suppression(self, suppression_id: str) -> bool:
        if self.fail:
            raise AlertStoreError("disk full", path=self.path)
        return super().delete_suppression(suppression_id)

    def put_rules(self, rules: Any, expected_revision: int | None) -> int:
        if self.fail:
            raise AlertStoreError("disk full", path=self.path)
        return super().put_rules(rules, expected_revision)


class BrokenChannel:
    """A control channel that is down (records what it was asked to publish)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def publish(self, key: str, value: ControlValue) -> None:
        self.calls.append(key)
        raise ControlPublishError(key, "KafkaTimeoutError: broker unreachable")


class Env:
    def __init__(self, tmp_path: Path, *, initial: list[dict[str, Any]] | None = None) -> None:
        self.now = NOW
        self.store = FlakyStore(tmp_path / "alerts.sqlite")
        self.control = InProcessControl()
        self.worker = ControlState()
        self.messages: list[tuple[str, Any]] = []
        self.control.subscribe(self.worker)
        self.control.subscribe(lambda k, v: self.messages.append((k, v)))
        self.app = create_app(
            self.store,
            LocalEvidenceStore(tmp_path / "evidence"),
            api_key=KEY,
            control=self.control,
            validate_rules=validate,
            initial_rules=initial,
            clock=lambda: self.now,
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1")

    def add(self, event: Event) -> Event:
        self.store.upsert(event.to_record())
        return event

    def mark(self, event_id: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(
            f"/api/v1/alerts/{event_id}/false-positive", headers=AUTH, json=body, **kw
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.client.close()
    e.store.close()


SID = str(uuid.uuid4())
EID = make_event(1).event_id
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", f"/api/v1/alerts/{EID}/false-positive", {}),
    ("GET", "/api/v1/suppressions", None),
    ("GET", f"/api/v1/suppressions/{SID}", None),
    ("DELETE", f"/api/v1/suppressions/{SID}", None),
    ("GET", "/api/v1/rules", None),
    ("PUT", "/api/v1/rules", {"rules": [], "revision": None}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong-key-0123456789abcdef"}, {"Authorization": "Bearer x"}]
)
def test_control_routes_require_the_key(
    env: Env,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.add(make_event(1))
    with caplog.at_level(logging.DEBUG):
        r = env.client.request(method, path, headers=headers, json=body)
    assert r.status_code == 401
    assert KEY not in r.text and all(KEY not in rec.getMessage() for rec in caplog.records)
    assert env.messages == [] and env.store.get(EID).status == "new"  # type: ignore[union-attr]
    assert env.store.get_rules() is None


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_without_control_the_routes_answer_503_and_the_rest_works(
    tmp_path: Path, method: str, path: str, body: Any
) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    try:
        app = create_app(store, LocalEvidenceStore(tmp_path / "e"), api_key=KEY)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            store.upsert(make_event(1).to_record())
            r = client.request(method, path, headers=AUTH, json=body)
            if (method, path) == ("GET", "/api/v1/rules"):  # read from the store
                assert r.status_code == 404 and r.json()["detail"] == "no rules set"
            else:
                assert r.status_code == 503
                assert r.json()["detail"] == (
                    "control plane not configured (rules and suppressions are disabled)"
                )
            assert client.get("/api/v1/alerts", headers=AUTH).json()["total"] == 1
        assert store.get(EID).status == "new"  # type: ignore[union-attr]
    finally:
        store.close()


def test_without_control_the_configured_rules_are_read_only(tmp_path: Path) -> None:
    """``argus serve`` (no control channel) shows the config's rules, changes none."""
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    rules = [{"type": "intrusion", "camera": "cam-1", "zone": "z"}]
    try:
        app = create_app(
            store, LocalEvidenceStore(tmp_path / "e"), api_key=KEY, initial_rules=rules
        )
        with TestClient(app, base_url="http://127.0.0.1") as client:
            got = client.get("/api/v1/rules", headers=AUTH)
            assert got.status_code == 200 and got.json() == {"revision": 0, "rules": rules}
            put = client.put("/api/v1/rules", headers=AUTH, json={"rules": [], "revision": 0})
            assert put.status_code == 503
        assert store.get_rules() is None
    finally:
        store.close()


def test_control_needs_a_validator_and_a_control_store(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    evidence = LocalEvidenceStore(tmp_path / "e")
    try:
        with pytest.raises(ValueError, match="validate_rules"):
            create_app(store, evidence, api_key=KEY, control=InProcessControl())

        class OnlyAlerts:  # an AlertStore that keeps no suppressions
            def __getattr__(self, name: str) -> Any:
                if name in ("add_suppression", "put_rules", "get_rules"):
                    raise AttributeError(name)
                return getattr(store, name)

        with pytest.raises(ValueError, match="ControlStore"):
            create_app(
                OnlyAlerts(),
                evidence,
                api_key=KEY,
                control=InProcessControl(),
                validate_rules=validate,
            )
    finally:
        store.close()


# ------------------------------------------------------------------- false positives


def test_false_positive_region_scope_end_to_end(env: Env) -> None:
    ev = env.add(make_event(1))
    r = env.mark(ev.event_id, {"note": "parked car", "expires_in_s": 3600, "by": "alice"})
    assert r.status_code == 201, r.text
    s = r.json()
    uuid.UUID(s["suppression_id"])
    assert s == {
        "suppression_id": s["suppression_id"],
        "camera_id": "cam-1",
        "rule_id": ev.rule_id,
        "zone": "z",
        "label": "person",
        "region": list(region_around(BBOX)),
        "expires_at": NOW + 3600,
        "created_at": NOW,
        "source_event_id": ev.event_id,
        "note": "parked car",
        "active": True,
    }
    alert = env.store.get(ev.event_id)
    assert alert is not None and alert.status == "false_positive"
    assert alert.acknowledged_by == "alice" and alert.note == "parked car"
    # the "worker" got it and would now silence the same event
    published = {k: v for k, v in s.items() if k != "active"}
    assert env.messages == [(suppression_key(s["suppression_id"]), published)]
    got = env.worker.suppressions[s["suppression_id"]]
    assert got == env.store.get_suppression(s["suppression_id"])
    assert got.matches(ev, NOW + 10) and not got.matches(ev, NOW + 3600)
    assert not got.matches(make_event(1, camera="cam-2"), NOW + 10)
    # listed, by status too
    listed = env.client.get("/api/v1/alerts?status=false_positive", headers=AUTH).json()
    assert [a["event_id"] for a in listed["items"]] == [ev.event_id]
    assert env.client.get("/api/v1/alerts?status=new", headers=AUTH).json()["total"] == 0


def test_false_positive_defaults_and_wider_scopes(env: Env) -> None:
    ev = env.add(make_event(1))
    r = env.mark(ev.event_id, None)  # no body: the defaults
    assert r.status_code == 201
    assert r.json()["expires_at"] == NOW + 86400 and r.json()["region"] is not None
    rule = env.mark(ev.event_id, {"scope": "rule"}).json()
    assert (rule["rule_id"], rule["zone"], rule["label"], rule["region"]) == (
        ev.rule_id,
        None,
        None,
        None,
    )
    cam = env.mark(ev.event_id, {"scope": "camera"}).json()
    assert (cam["rule_id"], cam["zone"], cam["label"], cam["region"]) == (None,) * 4
    assert cam["camera_id"] == "cam-1"
    assert len(env.worker.suppressions) == 3 and len(env.store.list_suppressions(now=NOW)) == 3
    far = dataclasses.replace(make_event(2), bbox=(500.0, 500.0, 540.0, 560.0))
    assert env.worker.suppressions[cam["suppression_id"]].matches(far, NOW)
    assert not env.worker.suppressions[r.json()["suppression_id"]].matches(far, NOW)


def test_false_positive_of_an_alert_without_a_box(env: Env) -> None:
    ev = env.add(dataclasses.replace(make_event(3), bbox=None))
    r = env.mark(ev.event_id, {})
    assert r.status_code == 422 and "no box" in r.json()["detail"][0]["msg"]
    assert env.messages == [] and env.store.get(ev.event_id).status == "new"  # type: ignore[union-attr]
    assert env.mark(ev.event_id, {"scope": "rule"}).status_code == 201


def test_false_positive_unknown_or_malformed_alert(env: Env) -> None:
    assert env.mark(str(uuid.uuid4()), {}).status_code == 404
    assert env.mark("not-a-uuid", {}).status_code == 422
    assert env.messages == [] and env.store.list_suppressions(active_only=False) == []


@pytest.mark.parametrize(
    "body",
    [
        {"unknown": 1},
        {"note": "x" * 501},
        {"note": "bell\x07"},
        {"expires_in_s": -5},
        {"expires_in_s": 0},
        {"expires_in_s": 59},
        {"expires_in_s": 30 * 86400 + 1},
        {"expires_in_s": "3600"},
        {"expires_in_s": True},
        {"expires_in_s": 3600.5},
        {"scope": "zone"},
        {"scope": None},
        {"by": ""},
        {"by": "a\nb"},
        [1, 2],
    ],
)
def test_false_positive_hostile_bodies_are_422_and_change_nothing(env: Env, body: Any) -> None:
    ev = env.add(make_event(1))
    r = env.mark(ev.event_id, body)
    assert r.status_code == 422, r.text
    assert env.messages == [] and env.store.list_suppressions(active_only=False) == []
    assert env.store.get(ev.event_id).status == "new"  # type: ignore[union-attr]


def test_false_positive_bounds_inclusive(env: Env) -> None:
    ev = env.add(make_event(1))
    for body in ({"expires_in_s": 60}, {"expires_in_s": 30 * 86400}, {"note": "n" * 500}):
        assert env.mark(ev.event_id, body).status_code == 201
    assert env.mark(ev.event_id, {"note": "line 1\nline 2\ttab"}).status_code == 201


def test_false_positive_body_size_is_limited(env: Env) -> None:
    ev = env.add(make_event(1))
    big = b'{"note": "' + b"x" * 20_000 + b'"}'
    r = env.mark(ev.event_id, None, content=big)
    assert r.status_code == 413 and env.messages == []


# ---------------------------------------------------------------------- suppressions


def test_list_get_delete_suppressions_with_expiry(env: Env) -> None:
    ev = env.add(make_event(1))
    short = env.mark(ev.event_id, {"expires_in_s": 60}).json()
    env.now += 30
    long = env.mark(ev.event_id, {"expires_in_s": 7200, "scope": "rule"}).json()
    items = env.client.get("/api/v1/suppressions", headers=AUTH).json()
    assert [s["suppression_id"] for s in items] == [long["suppression_id"], short["suppression_id"]]
    env.now += 60  # the short one expired
    items = env.client.get("/api/v1/suppressions", headers=AUTH).json()
    assert [s["suppression_id"] for s in items] == [long["suppression_id"]]
    every = env.client.get("/api/v1/suppressions?include_expired=true", headers=AUTH).json()
    assert [(s["suppression_id"], s["active"]) for s in every] == [
        (long["suppression_id"], True),
        (short["suppression_id"], False),
    ]
    one = env.client.get(f"/api/v1/suppressions/{short['suppression_id']}", headers=AUTH)
    assert one.status_code == 200 and one.json()["active"] is False
    assert one.json()["note"] == short["note"]

    r = env.client.delete(f"/api/v1/suppressions/{long['suppression_id']}", headers=AUTH)
    assert r.status_code == 204 and r.content == b""
    assert env.messages[-1] == (suppression_key(long["suppression_id"]), None)  # tombstone
    assert long["suppression_id"] not in env.worker.suppressions
    assert (
        env.client.get(f"/api/v1/suppressions/{long['suppression_id']}", headers=AUTH).status_code
        == 404
    )
    r = env.client.delete(f"/api/v1/suppressions/{long['suppression_id']}", headers=AUTH)
    assert r.status_code == 404
    n = len(env.messages)
    assert (
        env.client.delete(f"/api/v1/suppressions/{uuid.uuid4()}", headers=AUTH).status_code == 404
    )
    assert len(env.messages) == n  # nothing published for unknown ids
    for bad in ("nope", "1234", "..%2F..%2Fetc"):
        assert env.client.get(f"/api/v1/suppressions/{bad}", headers=AUTH).status_code in (404, 422)
        assert env.client.delete(f"/api/v1/suppressions/{bad}", headers=AUTH).status_code in (
            404,
            422,
        )
    assert (
        env.client.get("/api/v1/suppressions?include_expired=maybe", headers=AUTH).status_code
        == 422
    )


# ----------------------------------------------------------------------------- rules


def test_rules_lifecycle_with_optimistic_concurrency(env: Env) -> None:
    r = env.client.get("/api/v1/rules", headers=AUTH)
    assert r.status_code == 404 and r.json()["detail"] == "no rules set"
    v1 = [{"type": "intrusion", "zone": "z", "classes": ["person"]}]
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": v1, "revision": 0})
    assert r.status_code == 200, r.text
    assert r.json() == {"revision": 1, "rules": v1}
    assert env.client.get("/api/v1/rules", headers=AUTH).json() == {"revision": 1, "rules": v1}
    assert env.store.get_rules() == (1, v1)  # the validator's mutation did not leak
    key, value = env.messages[-1]
    assert key == RULES_KEY and value == {"revision": 1, "rules": v1, "updated_at": NOW}
    assert env.worker.rules == (1, v1)

    v2 = [{"type": "loitering"}]
    stale = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": v2, "revision": 0})
    assert stale.status_code == 409 and "revision is 1, not 0" in stale.json()["detail"]
    assert env.store.get_rules() == (1, v1) and env.worker.rules == (1, v1)
    assert len(env.messages) == 1

    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": v2, "revision": 1})
    assert r.json()["revision"] == 2 and env.worker.rules == (2, v2)
    empty = {"rules": [], "revision": None, "confirm_empty": True}
    r = env.client.put("/api/v1/rules", headers=AUTH, json=empty)
    assert r.json() == {"revision": 3, "rules": []} and env.worker.rules == (3, [])
    ahead = env.client.put("/api/v1/rules", headers=AUTH, json=empty | {"revision": 9})
    assert ahead.status_code == 409


def test_initial_rules_are_revision_0(tmp_path: Path) -> None:
    e = Env(tmp_path, initial=INITIAL)
    try:
        assert e.client.get("/api/v1/rules", headers=AUTH).json() == {
            "revision": 0,
            "rules": INITIAL,
        }
        new = [{"type": "intrusion", "zone": "y"}]
        r = e.client.put("/api/v1/rules", headers=AUTH, json={"rules": new, "revision": 0})
        assert r.json()["revision"] == 1
        assert e.client.get("/api/v1/rules", headers=AUTH).json()["rules"] == new
    finally:
        e.client.close()
        e.store.close()


def test_invalid_rules_are_422_with_the_problems(env: Env) -> None:
    bad = [{"type": "intrusion"}, {"zone": "z"}, {"type": 5}]
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": bad, "revision": None})
    assert r.status_code == 422
    assert r.json() == {
        "detail": "invalid rules",
        "problems": ["rule 1: needs a type", "rule 2: type must be a string"],
    }
    assert env.store.get_rules() is None and env.messages == []


@pytest.mark.parametrize(
    "body",
    [
        {"rules": [{"type": "x"}]},  # revision missing
        {"rules": [{"type": "x"}], "revision": "1"},
        {"rules": [{"type": "x"}], "revision": -1},
        {"rules": [{"type": "x"}], "revision": True},
        {"rules": [{"type": "x"}], "revision": None, "force": True},
        {"rules": {"type": "x"}, "revision": None},
        {"rules": ["intrusion"], "revision": None},
        {"rules": [[1]], "revision": None},
        {"rules": None, "revision": None},
        {"revision": None},
        {"rules": [{"type": "x"}] * (MAX_RULES + 1), "revision": None},
    ],
)
def test_rules_hostile_bodies_are_422(env: Env, body: Any) -> None:
    r = env.client.put("/api/v1/rules", headers=AUTH, json=body)
    assert r.status_code == 422, r.text
    assert env.store.get_rules() is None and env.messages == []


def test_rules_with_nan_or_absurd_nesting_are_refused(env: Env) -> None:
    raw = b'{"rules": [{"type": "x", "threshold": NaN}], "revision": null}'
    r = env.client.put(
        "/api/v1/rules", headers={**AUTH, "Content-Type": "application/json"}, content=raw
    )
    assert r.status_code == 422 and "not JSON" in r.json()["problems"][0]
    deep = (
        b'{"rules": [{"type": "x", "d": ' + b"[" * 50_000 + b"]" * 50_000 + b'}], "revision": null}'
    )
    r = env.client.put(
        "/api/v1/rules", headers={**AUTH, "Content-Type": "application/json"}, content=deep
    )
    assert r.status_code in (400, 422)
    assert env.store.get_rules() is None and env.messages == []


def test_rules_body_has_its_own_larger_limit(env: Env) -> None:
    rules = [{"type": "intrusion", "pad": "p" * 100} for _ in range(200)]  # ~25 KiB
    body = json.dumps({"rules": rules, "revision": None}).encode()
    assert 16 * 1024 < len(body) < 256 * 1024
    r = env.client.put(
        "/api/v1/rules", headers={**AUTH, "Content-Type": "application/json"}, content=body
    )
    assert r.status_code == 200 and r.json()["revision"] == 1
    huge = json.dumps({"rules": [{"type": "x", "pad": "p" * 300_000}], "revision": None}).encode()
    r = env.client.put(
        "/api/v1/rules", headers={**AUTH, "Content-Type": "application/json"}, content=huge
    )
    assert r.status_code == 413 and env.store.get_rules() is not None
    assert env.store.get_rules()[0] == 1  # type: ignore[index]


# ------------------------------------------------------------------------ failures


def test_channel_down_is_503_and_nothing_is_stored(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    channel = BrokenChannel()
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "e"),
        api_key=KEY,
        control=channel,
        validate_rules=validate,
    )
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            ev = make_event(1)
            store.upsert(ev.to_record())
            r = client.post(f"/api/v1/alerts/{ev.event_id}/false-positive", headers=AUTH, json={})
            assert r.status_code == 503 and "not applied" in r.json()["detail"]
            assert "broker unreachable" not in r.text
            assert store.get(ev.event_id).status == "new"  # type: ignore[union-attr]
            assert store.list_suppressions(active_only=False) == []
            r = client.put(
                "/api/v1/rules",
                headers=AUTH,
                json={"rules": [{"type": "intrusion"}], "revision": 0},
            )
            assert r.status_code == 503 and store.get_rules() is None
            s = Suppression(SID, "cam-1", None, None, None, None, NOW + 99, NOW)
            store.add_suppression(s)
            r = client.delete(f"/api/v1/suppressions/{SID}", headers=AUTH)
            assert r.status_code == 503 and store.get_suppression(SID) == s
            assert channel.calls == [channel.calls[0], RULES_KEY, suppression_key(SID)]
    finally:
        store.close()


def test_store_failure_after_publish_publishes_the_previous_value_again(env: Env) -> None:
    ev = env.add(make_event(1))
    env.store.fail = True
    r = env.mark(ev.event_id, {})
    assert r.status_code == 503 and r.json()["detail"] == "alert store unavailable"
    (k1, v1), (k2, v2) = env.messages
    assert k1 == k2 and v1 is not None and v2 is None  # created, then withdrawn
    assert env.worker.suppressions == {}

    env.store.fail = False
    rules = [{"type": "intrusion"}]
    env.client.put("/api/v1/rules", headers=AUTH, json={"rules": rules, "revision": 0})
    sid = env.mark(ev.event_id, {}).json()["suppression_id"]
    env.store.fail = True
    r = env.client.put(
        "/api/v1/rules", headers=AUTH, json={"rules": [{"type": "fall"}], "revision": 1}
    )
    assert r.status_code == 503
    assert env.worker.rules == (1, rules)  # the previous revision was published again
    r = env.client.delete(f"/api/v1/suppressions/{sid}", headers=AUTH)
    assert r.status_code == 503
    assert sid in env.worker.suppressions  # restored after the tombstone
    env.store.fail = False
    assert env.store.get_rules() == (1, rules) and env.store.get_suppression(sid) is not None


def test_openapi_lists_control_routes_with_tags_and_security(env: Env) -> None:
    spec = env.client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("/api/v1/alerts/{event_id}/false-positive", "post"): "suppressions",
        ("/api/v1/suppressions", "get"): "suppressions",
        ("/api/v1/suppressions/{suppression_id}", "get"): "suppressions",
        ("/api/v1/suppressions/{suppression_id}", "delete"): "suppressions",
        ("/api/v1/rules", "get"): "rules",
        ("/api/v1/rules", "put"): "rules",
    }
    for (path, method), tag in expected.items():
        op = paths[path][method]
        assert tag in op["tags"] and op["security"], (path, method)
        assert "401" in op["responses"] and "503" in op["responses"]
    assert "409" in paths["/api/v1/rules"]["put"]["responses"]
    assert "201" in paths["/api/v1/alerts/{event_id}/false-positive"]["post"]["responses"]
