"""Sign-in and bad input through HTTP (issue 14): sessions and their cookies, CSRF,
throttling, expired sessions, revoked and expired tokens, disabled users, password
changes, camera groups, and no secret in any answer or log line.

One app for the module (a real SQLite store, a cheap argon2 hasher, a settable clock), and
a second app on the same store with short session lifetimes; each test signs in on clients
of its own, from client addresses of its own where the throttle counts.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from alerts.api import AccessSettings, create_app
from alerts.api.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from alerts.api.security import SignInThrottle, digest
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from tests.factories import T0, make_event

pytestmark = pytest.mark.unit

KEY = "auth-test-api-key-0123456789abc"
PASSWORD = "correct horse battery staple"
WRONG = "wrong horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GROUPS = {"cam-a": ["a"], "cam-b": ["b"]}
SAME_401 = {"detail": "wrong user name or password"}
LOGIN = "/api/v1/auth/login"


class Clock:
    """An app's clock: real time, unless a test pins it (``at``)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteAlertStore(tmp_path / "alerts.sqlite")
        evidence = LocalEvidenceStore(tmp_path / "evidence")
        self.clock = Clock()
        self.app = create_app(
            self.store,
            evidence,
            api_key=KEY,
            control=InProcessControl(),
            validate_rules=lambda rules: [],
            access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP),
            clock=self.clock,
        )
        self.short_clock = Clock()
        self.short = create_app(
            self.store,
            evidence,
            api_key=KEY,
            access=AccessSettings(
                camera_groups=GROUPS,
                password_hasher=CHEAP,
                session_lifetime_s=300.0,
                session_idle_s=120.0,
            ),
            clock=self.short_clock,
        )
        self.admin = TestClient(self.app, base_url="http://127.0.0.1", headers={"X-API-Key": KEY})
        self._n = itertools.count(1)

    def user(self, role: str = "operator", groups: tuple[str, ...] = ("a",)) -> str:
        """A fresh user with ``PASSWORD``."""
        name = f"user{next(self._n)}"
        hashed = CHEAP.hash(PASSWORD)
        self.store.add_user(name, role=role, groups=list(groups), password_hash=hashed, now=T0)  # type: ignore[arg-type]
        return name

    def alert(self, camera: str = "cam-a") -> str:
        event = make_event(next(self._n), camera=camera)
        self.store.upsert(event.to_record())
        return event.event_id

    def client(self, address: str = "testclient", app: FastAPI | None = None) -> TestClient:
        return TestClient(app or self.app, base_url="http://127.0.0.1", client=(address, 50000))

    def sign_in(
        self, name: str, address: str = "testclient", app: FastAPI | None = None
    ) -> TestClient:
        """A client signed in as ``name``, sending its CSRF token."""
        c = self.client(address, app)
        r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers[CSRF_HEADER] = r.json()["csrf_token"]
        return c


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("auth"))
    yield w
    w.admin.close()
    w.store.close()


def cookies_set(r: Response) -> dict[str, set[str]]:
    """The cookies an answer sets: name -> its attributes, lower case (``value=...``
    included)."""
    out: dict[str, set[str]] = {}
    for header in r.headers.get_list("set-cookie"):
        first, *attrs = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        out[name] = {a.lower() for a in attrs} | {f"value={value}"}
    return out


def value_of(attrs: set[str]) -> str:
    return next(a for a in attrs if a.startswith("value="))[len("value=") :]


def audit(world: World, **filters: Any) -> list[dict[str, Any]]:
    r = world.admin.get("/api/v1/audit", params={"limit": 500, **filters})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# ------------------------------------------------------------------------------ sign-in


def test_sign_in_sets_an_httponly_strict_session_and_a_readable_csrf_cookie(
    world: World,
) -> None:
    name = world.user("supervisor", ("a", "b"))
    with world.client() as c:
        r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["name"], body["kind"], body["role"], body["groups"]) == (
            name, "user", "supervisor", ["a", "b"],
        )  # fmt: skip
        assert "audit.read" in body["permissions"] and "users.manage" not in body["permissions"]
        assert body["csrf_token"] and body["expires_at"]
        cookies = cookies_set(r)
        session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
        for attrs in (session, csrf):
            assert {"samesite=strict", "path=/"} <= attrs
            assert "secure" not in attrs  # plain HTTP, secure_cookies unset
        assert "httponly" in session
        assert "httponly" not in csrf and value_of(csrf) == body["csrf_token"]
        assert value_of(session) not in r.text  # the session id only in its cookie

        me = c.get("/api/v1/auth/me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == name and me.json()["csrf_token"] is None
    assert (name, "auth.login") in {(e["actor"], e["action"]) for e in audit(world, actor=name)}


@pytest.mark.parametrize(
    ("secure_cookies", "scheme", "secure"),
    [(True, "http", True), (None, "https", True), (False, "https", False), (None, "http", False)],
)
def test_cookies_are_secure_when_configured_or_over_https(
    world: World, secure_cookies: bool | None, scheme: str, secure: bool
) -> None:
    app = create_app(
        world.store,
        LocalEvidenceStore(Path(world.store.path).parent / "evidence"),
        api_key=KEY,
        access=AccessSettings(secure_cookies=secure_cookies, password_hasher=CHEAP),
    )
    name = world.user()
    with TestClient(app, base_url=f"{scheme}://127.0.0.1") as c:
        r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
    for attrs in cookies_set(r).values():
        assert ("secure" in attrs) is secure


def test_a_wrong_password_and_an_unknown_user_answer_the_same_after_the_same_work(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compared by the work done (one argon2 verification, of a hash with the same
    parameters), not by a wall clock."""
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        verified.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    known, disabled = world.user(), world.user()
    world.store.update_user(disabled, now=T0, disabled=True)
    tries = {
        "wrong password": (known, WRONG),
        "unknown user": ("nobody-of-that-name", WRONG),
        "unknown user, a real password": ("nobody-of-that-name", PASSWORD),
        "disabled user": (disabled, PASSWORD),
    }
    with world.client("10.1.0.1") as c:
        answers = {}
        for what, (user, password) in tries.items():
            verified.clear()
            r = c.post(LOGIN, json={"username": user, "password": password})
            answers[what] = (r.status_code, r.json(), r.headers.get("www-authenticate"))
            assert len(verified) == 1, what  # the unknown user costs one verification too
            assert verified[0].rsplit("$", 2)[0] == CHEAP.hash("x").rsplit("$", 2)[0], what
        assert all(a == (401, SAME_401, None) for a in answers.values()), answers
        verified.clear()
        assert c.post(LOGIN, json={"username": known, "password": PASSWORD}).status_code == 200
        assert len(verified) == 1
    failed = audit(world, action="auth.login_failed", actor="(unknown user)")
    assert len(failed) == 2 and all(e["actor_kind"] == "anonymous" for e in failed)
    assert "nobody-of-that-name" not in str(audit(world, action="auth."))  # not kept
    assert {e["client"] for e in failed} == {"10.1.0.1"}


def refused(reason: str) -> float:
    """``argus_sign_in_failures_total{reason}`` now."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("argus_sign_in_failures_total", {"reason": reason})
    return value or 0.0


def test_five_failures_throttle_that_name_from_that_address_only(world: World) -> None:
    name, bystander = world.user(), world.user()
    wrong, throttled = refused("wrong_password"), refused("throttled")
    with world.client("10.0.0.1") as attacker:
        for _ in range(5):
            r = attacker.post(LOGIN, json={"username": name, "password": WRONG})
            assert (r.status_code, r.json()) == (401, SAME_401)
        for password in (WRONG, PASSWORD):  # even the right password waits
            r = attacker.post(LOGIN, json={"username": name, "password": password})
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) >= 1
        # The same address may still sign in others (5 failures are far from its own limit).
        ok = attacker.post(LOGIN, json={"username": bystander, "password": PASSWORD})
        assert ok.status_code == 200
    # Nobody locks the operator out from elsewhere: their own machine signs in.
    with world.client("10.0.0.9") as own:
        r = own.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert own.get("/api/v1/auth/me").json()["name"] == name
    assert len(audit(world, action="auth.login_failed", actor=name)) == 5
    # counted for the alerting rule on sign-in failures (deploy/monitoring)
    assert refused("wrong_password") - wrong == 5 and refused("throttled") - throttled == 2


def test_a_throttled_pair_may_try_again_once_the_block_is_over(world: World) -> None:
    ctx = world.app.state.argus
    now = [1000.0]
    saved, ctx.throttle = ctx.throttle, SignInThrottle(clock=lambda: now[0])
    name = world.user()
    try:
        with world.client("10.0.0.2") as c:
            for _ in range(5):
                c.post(LOGIN, json={"username": name, "password": WRONG})
            r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
            assert r.status_code == 429
            now[0] += int(r.headers["retry-after"])
            assert c.post(LOGIN, json={"username": name, "password": PASSWORD}).status_code == 200
            # A success starts the pair afresh: one more failure is a 401, not a 429.
            r = c.post(LOGIN, json={"username": name, "password": WRONG})
            assert (r.status_code, r.json()) == (401, SAME_401)
    finally:
        ctx.throttle = saved


def test_one_address_trying_many_names_is_throttled_others_are_not(world: World) -> None:
    victim = world.user()
    with world.client("10.0.0.66") as sprayer:
        statuses = [
            sprayer.post(LOGIN, json={"username": f"guess{i}", "password": WRONG}).status_code
            for i in range(31)
        ]
        assert statuses[:30] == [401] * 30 and statuses[30] == 429
        assert (
            sprayer.post(LOGIN, json={"username": victim, "password": PASSWORD}).status_code == 429
        )
    with world.client("10.0.0.67") as own:
        assert own.post(LOGIN, json={"username": victim, "password": PASSWORD}).status_code == 200


# ---------------------------------------------------------------------------- sessions


def test_a_session_ends_when_idle_too_long_and_at_its_absolute_end(world: World) -> None:
    clock, t0 = world.short_clock, time.time()
    name = world.user()
    try:
        clock.at = t0
        with world.sign_in(name, app=world.short) as c:
            for dt in (100, 200, 299):  # active: every request within the idle time
                clock.at = t0 + dt
                assert c.get("/api/v1/auth/me").status_code == 200, dt
            clock.at = t0 + 300  # the absolute end, however active
            r = c.get("/api/v1/auth/me")
            assert r.status_code == 401 and "sign in again" in r.json()["detail"]
        clock.at = t0
        with world.sign_in(name, app=world.short) as c:
            clock.at = t0 + 119
            assert c.get("/api/v1/auth/me").status_code == 200
            clock.at = t0 + 119 + 120  # idle for the idle time
            assert c.get("/api/v1/auth/me").status_code == 401
            clock.at = t0 + 119  # and gone for good, not only too old
            assert c.get("/api/v1/auth/me").status_code == 401
    finally:
        clock.at = None


def test_sign_out_ends_the_session(world: World) -> None:
    name = world.user()
    with world.sign_in(name) as c:
        session = c.cookies[SESSION_COOKIE]
        r = c.post("/api/v1/auth/logout")
        assert r.status_code == 204
        cleared = cookies_set(r)
        assert value_of(cleared[SESSION_COOKIE]) in ("", '""')
        assert any(a.startswith("max-age=0") for a in cleared[SESSION_COOKIE])
    with world.client() as stolen:  # the old cookie, sent again, is worth nothing
        stolen.cookies.set(SESSION_COOKIE, session)
        assert stolen.get("/api/v1/auth/me").status_code == 401
    assert [e["action"] for e in audit(world, actor=name)][:2] == ["auth.logout", "auth.login"]


def test_a_change_with_the_cookie_needs_the_sessions_csrf_token(world: World) -> None:
    name, other = world.user(), world.user()
    eid = world.alert()
    with world.sign_in(name) as c, world.sign_in(other) as o:
        token, others = c.headers[CSRF_HEADER], o.headers[CSRF_HEADER]
        for sent in (None, "", "not-the-token", others, token + "x"):
            headers = {} if sent is None else {CSRF_HEADER: sent}
            del c.headers[CSRF_HEADER]
            r = c.post(f"/api/v1/alerts/{eid}/claim", headers=headers)
            assert r.status_code == 403 and "CSRF" in r.json()["detail"], sent
            r = c.post("/api/v1/auth/logout", headers=headers)
            assert r.status_code == 403, sent
            c.headers[CSRF_HEADER] = token
        assert world.store.get(eid).state == "new"  # type: ignore[union-attr]
        assert c.get("/api/v1/auth/me").status_code == 200  # reading needs none; still in
        assert c.cookies[CSRF_COOKIE] == token  # the page reads it from the cookie
        assert c.post(f"/api/v1/alerts/{eid}/claim").json()["owner"] == name


def test_a_disabled_user_cannot_sign_in_and_their_session_ends(world: World) -> None:
    name = world.user()
    with world.sign_in(name) as c:
        r = world.admin.patch(f"/api/v1/users/{name}", json={"disabled": True})
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert c.get("/api/v1/auth/me").status_code == 401
        r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert (r.status_code, r.json()) == (401, SAME_401)  # as for a wrong password
    (failed,) = audit(world, action="auth.login_failed", actor=name)
    assert failed["detail"]["reason"] == "disabled"
    assert world.admin.patch(f"/api/v1/users/{name}", json={"disabled": False}).status_code == 200
    with world.sign_in(name) as c:
        assert c.get("/api/v1/auth/me").status_code == 200


def test_changing_ones_password_ends_the_other_sessions(world: World) -> None:
    name = world.user()
    new = "a brand new password 1"
    with world.sign_in(name) as here, world.sign_in(name) as there:
        change = {"current_password": WRONG, "new_password": new}
        r = here.post("/api/v1/auth/password", json=change)
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "wrong_password"
        r = here.post("/api/v1/auth/password", json={**change, "current_password": PASSWORD})
        assert r.status_code == 204, r.text
        assert there.get("/api/v1/auth/me").status_code == 401
        assert "max-age=0" in "".join(cookies_set(r)[SESSION_COOKIE])  # and this one too
        assert here.get("/api/v1/auth/me").status_code == 401
    with world.client() as c:
        r = c.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert (r.status_code, r.json()) == (401, SAME_401)
        assert c.post(LOGIN, json={"username": name, "password": new}).status_code == 200
    (entry,) = audit(world, action="user.password", target_id=name)
    assert (entry["actor"], entry["detail"]) == (name, {"by": "self"})


# ------------------------------------------------------------------------------ tokens


def test_a_revoked_or_expired_token_is_refused(world: World) -> None:
    made = world.admin.post(
        "/api/v1/tokens", json={"name": "vms", "role": "operator", "expires_in_s": 60}
    )
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["token_id"]
    bearer = {"Authorization": f"Bearer {token}"}
    with world.client() as c:
        assert c.get("/api/v1/alerts", headers=bearer).status_code == 200
        assert c.get("/api/v1/alerts", headers={"X-API-Key": token}).status_code == 200
        world.clock.at = time.time() + 61
        try:
            r = c.get("/api/v1/alerts", headers=bearer)
        finally:
            world.clock.at = None
        assert r.status_code == 401 and r.json()["detail"] == "token expired"
        assert r.headers["www-authenticate"].startswith("Bearer")

        other = world.admin.post("/api/v1/tokens", json={"name": "vms2", "role": "operator"})
        token2, id2 = other.json()["token"], other.json()["token_id"]
        bearer2 = {"Authorization": f"Bearer {token2}"}
        assert c.get("/api/v1/alerts", headers=bearer2).status_code == 200
        assert world.admin.delete(f"/api/v1/tokens/{id2}").status_code == 204
        r = c.get("/api/v1/alerts", headers=bearer2)
        assert r.status_code == 401 and r.json()["detail"] == "token revoked"

        forged = token2[: len("argus_") + 13] + "A" * 43  # its id, not its secret
        for wrong in (forged, "argus_abcdefghijkm_" + "B" * 43, "not a token at all"):
            r = c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {wrong}"})
            assert r.status_code == 401, wrong
    assert world.admin.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    assert world.admin.delete("/api/v1/tokens/abcdefghijkm").status_code == 404


# ---------------------------------------------------------------------- camera groups


def test_an_operator_acting_outside_their_groups_gets_404(world: World) -> None:
    theirs = world.alert("cam-a")
    with world.sign_in(world.user(groups=("b",))) as c:
        assert c.get(f"/api/v1/alerts/{theirs}").status_code == 404
        for action in ("claim", "release", "escalate", "reopen"):
            r = c.post(f"/api/v1/alerts/{theirs}/{action}")
            assert (r.status_code, r.json()) == (404, {"detail": "alert not found"}), action
        r = c.post(f"/api/v1/alerts/{theirs}/close", json={"disposition": "false_alarm"})
        assert r.status_code == 404
        assert theirs not in c.get("/api/v1/alerts", params={"limit": 500}).text
    assert world.store.get(theirs).state == "new"  # type: ignore[union-attr]


# ------------------------------------------------------------------------ no secrets


def test_no_secret_in_any_answer_or_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole scenario logged at DEBUG: sign-ins (right and wrong), a token made and used,
    users made, changed and given passwords, a password changed, sign-outs.  No password,
    hash, session id, CSRF token or token secret (nor their SHA-256) is in a log line or
    an answer, except the CSRF token in its sign-in answer and a token in the answer
    that creates it."""
    answers: list[tuple[str, Response]] = []
    allowed: dict[int, set[str]] = {}  # index in answers -> secrets it may carry
    secrets: set[str] = set()
    passwords = {PASSWORD, WRONG, "user made by the admin 1", "set by the admin 22", "changed 333"}

    def keep(what: str, r: Response, *may_carry: str) -> Response:
        if may_carry:
            allowed[len(answers)] = set(may_carry)
        answers.append((what, r))
        return r

    def login(c: TestClient, name: str, password: str = PASSWORD) -> Response:
        r = keep("login", c.post(LOGIN, json={"username": name, "password": password}))
        if r.status_code == 200:
            csrf, session = r.json()["csrf_token"], c.cookies[SESSION_COOKIE]
            secrets.update({csrf, session, digest(csrf), digest(session)})
            allowed[len(answers) - 1] = {csrf}
            c.headers[CSRF_HEADER] = csrf
        return r

    caplog.set_level(logging.DEBUG)
    admin = world.user("admin", ("default",))
    with world.client("10.3.0.1") as adm, world.client("10.3.0.2") as op:
        login(adm, admin, WRONG)
        login(adm, admin)
        keep("me", adm.get("/api/v1/auth/me"))
        body = {"name": "secretive", "role": "operator", "password": "user made by the admin 1"}
        keep("user", adm.post("/api/v1/users", json=body))
        keep("user", adm.patch("/api/v1/users/secretive", json={"groups": ["a"]}))
        pw = {"password": "set by the admin 22"}
        keep("reset", adm.post("/api/v1/users/secretive/password", json=pw))
        made = adm.post("/api/v1/tokens", json={"name": "bridge", "role": "operator"})
        token = made.json()["token"]
        secret = token[len("argus_") + 13 :]  # argus_<12-character id>_<secret>
        keep("token", made, token, secret)
        secrets.update({token, secret, digest(secret)})
        keep("tokens", adm.get("/api/v1/tokens"))
        with world.client("10.3.0.3") as integration:
            bearer = {"Authorization": f"Bearer {token}"}
            keep("token use", integration.get("/api/v1/alerts", headers=bearer))
            keep("token me", integration.get("/api/v1/auth/me", headers=bearer))
        login(op, "secretive", "user made by the admin 1")
        login(op, "secretive", "set by the admin 22")
        change = {"current_password": "set by the admin 22", "new_password": "changed 333"}
        keep("password", op.post("/api/v1/auth/password", json=change))
        login(op, "secretive", "changed 333")
        keep("claim", op.post(f"/api/v1/alerts/{world.alert()}/claim"))
        keep("logout", op.post("/api/v1/auth/logout"))
        keep("users", adm.get("/api/v1/users"))
        keep("audit", adm.get("/api/v1/audit", params={"limit": 500}))
        keep("logout", adm.post("/api/v1/auth/logout"))
    hashes = {world.store.password_hash(n) for n in (admin, "secretive")}
    secrets |= {h for h in hashes if h} | passwords
    assert len(secrets) > 15

    for i, (what, r) in enumerate(answers):
        assert r.status_code < 500, (what, r.text)
        for secret in secrets - allowed.get(i, set()):
            assert secret not in r.text, (what, secret[:6])
    statuses = [r.status_code for _, r in answers]
    # the scenario ran: two failed sign-ins (a wrong password, the one the admin replaced)
    assert statuses.count(401) == 2 and statuses.count(200) >= 10, statuses

    lines = [caplog.text] + [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    assert any("signed in" in line for line in lines)  # the logging was captured
    for line in lines:
        for secret in secrets:
            assert secret not in line, secret[:6]
