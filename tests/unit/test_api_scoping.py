"""What a security review of issue 14 found, each pinned: suppressions and the audit trail
kept to the caller's camera groups, suppressions from others' closed alerts, reopening
others' alerts, password guessing through a live session, one address locking everyone
out, the trail's INSERT OR REPLACE, names tried at sign-in in the trail, earlier sessions
on a new sign-in, and the database file's mode."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from alerts.api.security import SignInThrottle
from alerts.store import SqliteAlertStore
from tests.unit.test_api_access import KEY, PASSWORD, Who, World

pytestmark = pytest.mark.unit


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, SqliteAlertStore(tmp_path / "alerts.sqlite"))
    yield w
    w.client.close()
    w.store.close()


def _who(world: World, name: str) -> Who:
    return next(w for w in world.who if w.name == name)


def _close(world: World, who: Who, eid: str, disposition: str) -> int:
    body = {"disposition": disposition, "suppress": {"scope": "rule"}}
    return int(world.call(who, "POST", f"/api/v1/alerts/{eid}/close", body).status_code)


def test_suppressions_are_kept_to_the_callers_groups(world: World) -> None:
    sup_a, op_a, adm = _who(world, "sup-a"), _who(world, "op-a"), _who(world, "adm")
    b_alert = world.alert("cam-b")
    assert _close(world, adm, b_alert, "false_alarm") == 200
    (b_sup,) = [s for s in world.store.list_suppressions() if s.camera_id == "cam-b"]
    sid = b_sup.suppression_id
    listed = world.call(op_a, "GET", "/api/v1/suppressions", None).json()
    assert sid not in {s["suppression_id"] for s in listed}
    assert world.call(op_a, "GET", f"/api/v1/suppressions/{sid}", None).status_code == 404
    assert world.call(sup_a, "DELETE", f"/api/v1/suppressions/{sid}", None).status_code == 404
    assert world.store.get_suppression(sid) is not None
    assert world.call(adm, "GET", f"/api/v1/suppressions/{sid}", None).status_code == 200


def test_the_audit_trail_is_kept_to_the_callers_groups(world: World) -> None:
    sup_a, adm = _who(world, "sup-a"), _who(world, "adm")
    a_alert, b_alert = world.alert("cam-a"), world.alert("cam-b")
    for eid in (a_alert, b_alert):
        assert world.call(adm, "POST", f"/api/v1/alerts/{eid}/claim", None).status_code == 200
    seen = world.call(sup_a, "GET", "/api/v1/audit?limit=500", None).json()["items"]
    targets = {e["target_id"] for e in seen}
    assert a_alert in targets and b_alert not in targets
    assert {e["target_kind"] for e in seen} <= {"alert", "suppression"}  # no sign-ins, users
    everything = world.call(adm, "GET", "/api/v1/audit?limit=500", None).json()["items"]
    assert b_alert in {e["target_id"] for e in everything}
    assert "auth.login" in {e["action"] for e in everything}
    only_b = world.call(sup_a, "GET", f"/api/v1/audit?target_id={b_alert}", None).json()
    assert only_b["total"] == 0 and only_b["items"] == []


def test_no_suppression_from_someone_elses_closed_alert(world: World) -> None:
    op_a, sup_a = _who(world, "op-a"), _who(world, "sup-a")
    real = world.alert()
    assert _close(world, sup_a, real, "true_incident") == 200
    before = len(world.store.list_suppressions())
    r = world.call(op_a, "POST", f"/api/v1/alerts/{real}/false-positive", {"scope": "rule"})
    assert r.status_code == 409 and len(world.store.list_suppressions()) == before
    # who closed it may add one; a supervisor may
    mine = world.alert()
    assert _close(world, op_a, mine, "false_alarm") == 200
    r = world.call(op_a, "POST", f"/api/v1/alerts/{mine}/false-positive", {"scope": "rule"})
    assert r.status_code == 201
    r = world.call(sup_a, "POST", f"/api/v1/alerts/{real}/false-positive", {"scope": "rule"})
    assert r.status_code == 201


def test_operators_reopen_only_what_they_closed(world: World) -> None:
    op_a, sup_a = _who(world, "op-a"), _who(world, "sup-a")
    theirs = world.alert()
    assert _close(world, sup_a, theirs, "true_incident") == 200
    r = world.call(op_a, "POST", f"/api/v1/alerts/{theirs}/reopen", None)
    assert r.status_code == 409 and r.json()["owner"] == "sup-a"
    mine = world.alert()
    assert _close(world, op_a, mine, "no_action") == 200
    assert world.call(op_a, "POST", f"/api/v1/alerts/{mine}/reopen", None).status_code == 200
    assert world.call(sup_a, "POST", f"/api/v1/alerts/{theirs}/reopen", None).status_code == 200


def test_guessing_the_password_through_a_live_session_is_throttled_and_audited(
    world: World,
) -> None:
    op_a = _who(world, "op-a")
    wrong = {"current_password": "not my password", "new_password": "a new long password"}
    codes = [world.call(op_a, "POST", "/api/v1/auth/password", wrong).status_code for _ in range(7)]
    assert codes[:5] == [422] * 5 and codes[5:] == [429, 429]
    trail = world.call(_who(world, "adm"), "GET", "/api/v1/audit?action=user.", None).json()
    assert sum(e["action"] == "user.password_failed" for e in trail["items"]) == 5


def test_an_address_spraying_names_does_not_lock_out_who_signed_in_from_there() -> None:
    now = [0.0]
    throttle = SignInThrottle(per_pair=5, per_client=10, clock=lambda: now[0])
    throttle.succeeded("kim", "10.0.0.1")  # kim works from this address
    for i in range(12):
        throttle.failed(f"guess{i}", "10.0.0.1")
    assert throttle.retry_after("someone-new", "10.0.0.1") > 0  # the address is held
    assert throttle.retry_after("KIM", "10.0.0.1") == 0  # kim is not
    for _ in range(5):
        throttle.failed("kim", "10.0.0.1")
    assert throttle.retry_after("kim", "10.0.0.1") > 0  # kim's own pair still counts
    now[0] += 31 * 86400.0  # trust ends with time
    assert throttle.retry_after("someone-new", "10.0.0.9") == 0


def test_a_name_tried_at_sign_in_reaches_the_trail_only_when_it_is_a_user(
    world: World,
) -> None:
    typed_password = "Tr0ub4dor&3-secret"
    for name in (typed_password, "op-a"):
        r = world.client.post(
            "/api/v1/auth/login", json={"username": name, "password": "wrong password"}
        )
        assert r.status_code == 401
    trail = world.client.get("/api/v1/audit?action=auth.login_failed", headers={"X-API-Key": KEY})
    assert typed_password not in trail.text
    actors = {e["actor"] for e in trail.json()["items"]}
    assert actors == {"(unknown user)", "op-a"}


def test_signing_in_again_ends_the_earlier_session(world: World) -> None:
    first = world._sign_in("op-b", "operator", "b")
    world.client.cookies.clear()
    world.client.cookies.set("argus_session", first.cookies["argus_session"])
    again = world.client.post("/api/v1/auth/login", json={"username": "op-b", "password": PASSWORD})
    assert again.status_code == 200
    old = replace(first, csrf=None)
    assert world.call(old, "GET", "/api/v1/auth/me", None).status_code == 401


def test_the_audit_trail_refuses_insert_or_replace_over_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    store = SqliteAlertStore(path)
    store.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "INSERT INTO audit (at, actor, actor_kind, action) VALUES (1, 'op', 'user', 'x')"
        )
        conn.commit()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(
                "INSERT OR REPLACE INTO audit (seq, at, actor, actor_kind, action) "
                "VALUES (1, 2, 'forged', 'user', 'x')"
            )
        assert conn.execute("SELECT actor FROM audit").fetchall() == [("op",)]
    finally:
        conn.close()


def test_the_database_is_readable_by_its_account_only(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.db")
    store.close()
    mode = stat.S_IMODE(os.stat(tmp_path / "alerts.db").st_mode)
    assert mode == 0o600, oct(mode)
