"""Who may call what: every route of the app, against every kind of principal.

The routes are read off the app itself: each must declare its decision (``needs(...)``
or ``OPEN``, see ``alerts/api/permissions.py``) and have an example request here, so a
route added later without a decision, or without a row in this matrix, fails the test.

Principals: nobody; operators of group a (a session, and a machine token) and of group
b; a supervisor and an admin (sessions); the installation's API key.  Expected: nobody
gets 401 on every route but the open ones; a role without the permission gets 403; one
with it gets neither (200, 201, 204, 404, 409 or 422 as the route says); an operator of
group b does not even see an alert of group a's camera (404).  Evidence unmasked
(``?unmasked=true``), a decision inside the evidence routes, has its own walk.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Route

from alerts.api import AccessSettings, create_app
from alerts.api.auth import CSRF_HEADER, Require
from alerts.api.permissions import ROLE_PERMISSIONS, Permission, open_access
from alerts.control import InProcessControl
from alerts.evidence import (
    LocalEvidenceStore,
    clip_info_key,
    clip_key,
    masked_key,
    snapshot_key,
    thumbnail_key,
)
from alerts.live import CameraStatus, LiveBoard, Preview, Want
from alerts.store import SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from argus.fleet.admin import FleetAdmin
from argus.fleet.view import FleetView
from selector.suppression import Suppression
from tests.factories import T0, make_event, make_track_record
from tests.pg import fresh_schema

pytestmark = pytest.mark.unit

KEY = "access-test-api-key-0123456789"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FRAMEWORK_OPEN = {"/openapi.json"}
"""Routes FastAPI adds itself: open (the OpenAPI document describes, it holds no data)."""
CLIP_INFO = {
    "asked_start_s": 0.0,
    "asked_end_s": 15.0,
    "start_s": 0.0,
    "end_s": 15.0,
    "original_start_s": 0.0,
    "original_end_s": 15.0,
    "complete": True,
    "note": None,
    "frames": 150,
    "codec": "h264",
    "remuxed": True,
    "stream": "evidence",
    "width": 1920,
    "height": 1080,
    "masking": {"frames_detected": 150, "boxes": 12, "seconds": 0.4},
}
"""A clip's description as the worker writes it (less its event and camera ids)."""


@dataclass(frozen=True)
class Who:
    """A principal of the matrix and how it calls."""

    name: str
    role: str | None  # None: nobody signed in
    headers: dict[str, str]
    cookies: dict[str, str]
    csrf: str | None = None
    group: str | None = "a"


class World:
    """The app, its store, and one principal of each kind."""

    def __init__(self, tmp_path: Path, store: SqlAlertStore) -> None:
        self.store = store
        self.evidence = LocalEvidenceStore(tmp_path / "evidence")
        self.fleet = FleetAdmin(FleetView(8), InProcessControl())
        self.live = LiveBoard()
        self.app = create_app(
            self.store,
            self.evidence,
            api_key=KEY,
            control=InProcessControl(),
            validate_rules=lambda rules: [],
            initial_rules=[{"type": "intrusion", "camera": "cam-a", "zone": "z"}],
            access=AccessSettings(
                camera_groups={"cam-a": ["a"], "cam-b": ["b"]}, password_hasher=CHEAP
            ),
            fleet=self.fleet,
            live=self.live,
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1")
        hasher = self.app.state.argus.passwords
        users = [
            ("op-a", "operator", ["a"]),
            ("op-b", "operator", ["b"]),
            ("sup-a", "supervisor", ["a"]),
            ("adm", "admin", ["default"]),
        ]
        for name, role, groups in users:
            self.store.add_user(
                name, role=role, groups=groups, password_hash=hasher.hash(PASSWORD), now=T0
            )  # type: ignore[arg-type]
        self.who = [Who("nobody", None, {}, {}, group=None)]
        for name, role, groups in users:
            self.who.append(self._sign_in(name, role, groups[0]))
        made = self.client.post(
            "/api/v1/tokens",
            headers={"X-API-Key": KEY},
            json={"name": "vms", "role": "operator", "groups": ["a"]},
        )
        assert made.status_code == 201, made.text
        self.who.append(
            Who("token-op-a", "operator", {"Authorization": f"Bearer {made.json()['token']}"}, {})
        )
        self.who.append(Who("api-key", "admin", {"X-API-Key": KEY}, {}, group=None))
        self._n = itertools.count(1000)

    def _sign_in(self, name: str, role: str, group: str) -> Who:
        with TestClient(self.app, base_url="http://127.0.0.1") as fresh:
            r = fresh.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            session = fresh.cookies.get("argus_session")
        assert session
        return Who(name, role, {}, {"argus_session": session}, r.json()["csrf_token"], group)

    # -- things the requests refer to (fresh for every request) ----------------------

    def alert(self, camera: str = "cam-a") -> str:
        n = next(self._n)
        event = make_event(n, camera=camera)
        key = snapshot_key(camera, event.wall_time, event.event_id)
        clip = clip_key(camera, event.wall_time, event.event_id)
        for k in (key, masked_key(key)):
            self.evidence.put(k, b"\xff\xd8\xff\xe0jpeg")
        for k in (clip, masked_key(clip)):
            self.evidence.put(k, b"\x00\x00\x00\x18ftypmp42")
        info = {"event_id": event.event_id, "camera_id": camera, **CLIP_INFO}
        self.evidence.put(clip_info_key(clip), json.dumps(info).encode())
        self.store.upsert(event.with_snapshot(key).to_record() | {"clip": clip})
        return event.event_id

    def track(self, camera: str = "cam-a") -> str:
        """A fresh track summary of ``camera`` with its thumbnail and masked copy."""
        n = next(self._n)
        record = make_track_record(n, camera=camera, first=T0 + n)
        key = thumbnail_key(camera, T0 + n, str(record["track_uid"]))
        for k in (key, masked_key(key)):
            self.evidence.put(k, b"\xff\xd8\xff\xe0jpeg")
        self.store.upsert(record | {"thumbnail": key})
        return str(record["track_uid"])

    def suppression(self) -> str:
        sid = str(uuid.uuid4())
        self.store.add_suppression(Suppression(sid, "cam-a", None, None, None, None, T0 + 1e9, T0))
        return sid

    def fleet_camera(self) -> str:
        camera_id = f"fleet-{next(self._n)}"
        self.fleet.put(camera_id, {"camera": {"id": camera_id, "source": "rtsp://cam/s"}})
        return camera_id

    def picture(self, camera: str = "cam-a") -> str:
        """A fresh live picture of ``camera`` on the board, and its frame size reported."""
        now = time.time()
        status = CameraStatus(
            camera_id=camera, state="streaming", since=now, reported_at=now, frame_size=(640, 360)
        )
        self.live.report([status])
        self.live.demand.hold("access-test", {camera: Want(640, 1.0)})
        self.live.picture(Preview(camera, 1, now, 640, 360, b"\xff\xd8\xff\xe0jpeg"))
        return f"/api/v1/cameras/{camera}/picture"

    def user(self, password: str | None = None) -> str:
        name = f"u{next(self._n)}"
        hashed = "x" if password is None else self.app.state.argus.passwords.hash(password)
        self.store.add_user(name, role="operator", groups=["a"], password_hash=hashed, now=T0)
        return name

    def token(self) -> str:
        r = self.client.post(
            "/api/v1/tokens", headers={"X-API-Key": KEY}, json={"name": "t", "role": "operator"}
        )
        return str(r.json()["token_id"])

    def call(self, who: Who, method: str, path: str, body: Any) -> Any:
        """One request as ``who``; a sign-out (or a sign-in over its session, which ends
        that session) is followed by a fresh sign-in of ``who``."""
        r = self._call(who, method, path, body)
        signs_out = path in ("/api/v1/auth/logout", "/api/v1/auth/login")  # ends the session
        if signs_out and who.cookies and who.role:
            fresh = self._sign_in(who.name, who.role, who.group or "a")
            self.who[self.who.index(who)] = fresh
        return r

    def _call(self, who: Who, method: str, path: str, body: Any) -> Any:
        headers = dict(who.headers)
        if who.csrf and method not in ("GET", "HEAD"):
            headers[CSRF_HEADER] = who.csrf
        self.client.cookies.clear()
        for k, v in who.cookies.items():
            self.client.cookies.set(k, v)
        return self.client.request(method, path, headers=headers, json=body)


Example = Callable[[World], tuple[str, Any]]
"""(path, JSON body or None) of one request to a route, made fresh for each call."""


def _alert_route(suffix: str, body: Any = None) -> Example:
    return lambda w: (f"/api/v1/alerts/{w.alert()}{suffix}", body)


SINCE = "2024-05-01T09:00:00Z"
UNTIL = "2024-05-02T09:00:00Z"


EXAMPLES: dict[tuple[str, str], Example] = {
    ("GET", "/api/v1/search"): lambda w: (
        f"/api/v1/search?since={SINCE}&until={UNTIL}&class=person&upper=red",
        None,
    ),
    ("GET", "/api/v1/search/options"): lambda w: ("/api/v1/search/options", None),
    ("GET", "/api/v1/tracks/{track_uid}"): lambda w: (f"/api/v1/tracks/{w.track()}", None),
    ("GET", "/api/v1/tracks/{track_uid}/thumbnail"): lambda w: (
        f"/api/v1/tracks/{w.track()}/thumbnail",
        None,
    ),
    ("GET", "/api/v1/alerts"): lambda w: ("/api/v1/alerts", None),
    ("GET", "/api/v1/alerts/{event_id}"): _alert_route(""),
    ("POST", "/api/v1/alerts/{event_id}/claim"): _alert_route("/claim"),
    ("POST", "/api/v1/alerts/{event_id}/release"): _alert_route("/release"),
    ("POST", "/api/v1/alerts/{event_id}/escalate"): _alert_route("/escalate", {}),
    ("POST", "/api/v1/alerts/{event_id}/close"): _alert_route(
        "/close", {"disposition": "no_action"}
    ),
    ("POST", "/api/v1/alerts/{event_id}/reopen"): _alert_route("/reopen"),
    ("POST", "/api/v1/alerts/{event_id}/ack"): _alert_route("/ack", {}),
    ("POST", "/api/v1/alerts/{event_id}/false-positive"): _alert_route(
        "/false-positive", {"scope": "rule"}
    ),
    ("GET", "/api/v1/alerts/{event_id}/snapshot"): _alert_route("/snapshot"),
    ("GET", "/api/v1/alerts/{event_id}/snapshot-url"): _alert_route("/snapshot-url"),
    ("GET", "/api/v1/alerts/{event_id}/clip"): _alert_route("/clip"),
    ("GET", "/api/v1/alerts/{event_id}/clip-info"): _alert_route("/clip-info"),
    ("GET", "/api/v1/alerts/{event_id}/clip-url"): _alert_route("/clip-url"),
    ("GET", "/api/v1/alerts/{event_id}/audit"): _alert_route("/audit"),
    ("GET", "/api/v1/suppressions"): lambda w: ("/api/v1/suppressions", None),
    ("GET", "/api/v1/suppressions/{suppression_id}"): lambda w: (
        f"/api/v1/suppressions/{w.suppression()}",
        None,
    ),
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): lambda w: (
        f"/api/v1/suppressions/{w.suppression()}",
        None,
    ),
    ("GET", "/api/v1/rules"): lambda w: ("/api/v1/rules", None),
    ("PUT", "/api/v1/rules"): lambda w: (
        "/api/v1/rules",
        {"rules": [{"type": "intrusion", "camera": "cam-a", "zone": "z"}], "revision": None},
    ),
    ("GET", "/api/v1/rule-types"): lambda w: ("/api/v1/rule-types", None),
    ("GET", "/api/v1/status"): lambda w: ("/api/v1/status", None),
    ("GET", "/api/v1/audit"): lambda w: ("/api/v1/audit", None),
    ("GET", "/api/v1/stats/dispositions"): lambda w: ("/api/v1/stats/dispositions", None),
    ("GET", "/api/v1/stats/operators"): lambda w: ("/api/v1/stats/operators", None),
    ("GET", "/api/v1/changes"): lambda w: ("/api/v1/changes?after=0&for_s=0.05", None),
    ("GET", "/api/v1/page-settings"): lambda w: ("/api/v1/page-settings", None),
    ("GET", "/api/v1/wall"): lambda w: ("/api/v1/wall", None),
    ("GET", "/api/v1/cameras/status"): lambda w: ("/api/v1/cameras/status", None),
    ("GET", "/api/v1/live"): lambda w: ("/api/v1/live?view=wall&for_s=0.05", None),
    ("POST", "/api/v1/auth/login"): lambda w: (
        "/api/v1/auth/login",
        {"username": w.user(password=PASSWORD), "password": PASSWORD},
    ),
    ("POST", "/api/v1/auth/logout"): lambda w: ("/api/v1/auth/logout", None),
    ("GET", "/api/v1/auth/me"): lambda w: ("/api/v1/auth/me", None),
    ("POST", "/api/v1/auth/password"): lambda w: (
        "/api/v1/auth/password",
        {"current_password": "not it", "new_password": "a long new password"},
    ),
    ("GET", "/api/v1/users"): lambda w: ("/api/v1/users", None),
    ("POST", "/api/v1/users"): lambda w: (
        "/api/v1/users",
        {"name": f"new{next(w._n)}", "role": "operator", "password": "a long password 1"},
    ),
    ("PATCH", "/api/v1/users/{name}"): lambda w: (f"/api/v1/users/{w.user()}", {"groups": ["a"]}),
    ("POST", "/api/v1/users/{name}/password"): lambda w: (
        f"/api/v1/users/{w.user()}/password",
        {"password": "another long password"},
    ),
    ("GET", "/api/v1/tokens"): lambda w: ("/api/v1/tokens", None),
    ("POST", "/api/v1/tokens"): lambda w: ("/api/v1/tokens", {"name": "x", "role": "operator"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda w: (f"/api/v1/tokens/{w.token()}", None),
    ("GET", "/api/v1/cameras/{camera_id}/picture"): lambda w: (w.picture(), None),
    ("GET", "/api/v1/fleet/cameras"): lambda w: ("/api/v1/fleet/cameras", None),
    ("PUT", "/api/v1/fleet/cameras/{camera_id}"): lambda w: (
        f"/api/v1/fleet/cameras/{(cid := f'fleet-{next(w._n)}')}",
        {"camera": {"id": cid, "source": "rtsp://cam/s"}, "rules": []},
    ),
    ("DELETE", "/api/v1/fleet/cameras/{camera_id}"): lambda w: (
        f"/api/v1/fleet/cameras/{w.fleet_camera()}",
        None,
    ),
    ("GET", "/healthz"): lambda w: ("/healthz", None),
    ("GET", "/readyz"): lambda w: ("/readyz", None),
    ("GET", "/metrics"): lambda w: ("/metrics", None),
    ("GET", "/"): lambda w: ("/", None),
    ("GET", "/static/{name}"): lambda w: ("/static/app.js", None),
    ("GET", "/docs"): lambda w: ("/docs", None),
    ("GET", "/docs/assets/{name}"): lambda w: ("/docs/assets/docs.js", None),
    ("GET", "/favicon.ico"): lambda w: ("/favicon.ico", None),
}


def decision(route: APIRoute) -> Permission | None:
    """The permission a route needs (``None``: open); fails for a route with neither."""
    found: list[Any] = []

    def walk(dependant: Any) -> None:
        for dep in dependant.dependencies:
            if isinstance(dep.call, Require) or dep.call is open_access:
                found.append(dep.call)
            walk(dep)

    walk(route.dependant)
    assert found, f"{route.methods} {route.path} declares no access decision (needs/OPEN)"
    needs = {d.need.permission for d in found if isinstance(d, Require)}
    assert len(needs) <= 1 and not (needs and open_access in found), route.path
    return next(iter(needs), None)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Every route and principal on a SQLite store, then on a PostgreSQL one."""
    tmp = tmp_path_factory.mktemp("access")
    if request.param == "sqlite":
        yield from _world(World(tmp, SqliteAlertStore(tmp / "alerts.sqlite")))
        return
    server = request.getfixturevalue("postgres")
    for schema in fresh_schema(server):
        yield from _world(World(tmp, PostgresAlertStore(server.dsn, schema=schema)))


def _world(w: World) -> Iterator[World]:
    yield w
    w.client.close()
    w.store.close()


def _routes(world: World) -> list[tuple[str, str, Permission | None]]:
    out = []
    for context in iter_route_contexts(world.app.routes):  # included routers flattened
        route = context.original_route
        if isinstance(route, APIRoute):
            permission = decision(route)
            for method in sorted(route.methods - {"HEAD"}):
                out.append((method, str(context.path), permission))
        else:
            assert isinstance(route, Route) and route.path in FRAMEWORK_OPEN, route
    return out


def test_every_route_declares_a_decision_and_has_an_example(world: World) -> None:
    routes = {(m, p) for m, p, _ in _routes(world)}
    assert routes == set(EXAMPLES), (
        f"routes without an example: {sorted(routes - set(EXAMPLES))}; "
        f"examples without a route: {sorted(set(EXAMPLES) - routes)}"
    )


SESSION_ONLY = {("POST", "/api/v1/auth/password")}
"""Routes only a signed-in person can use: a token or the API key has no password (403)."""


def test_roles_by_routes(world: World) -> None:
    failures = []
    for method, path, permission in _routes(world):
        for who in list(world.who):
            url, body = EXAMPLES[(method, path)](world)
            r = world.call(who, method, url, body)
            if (method, path) in SESSION_ONLY and who.role and not who.cookies:
                ok, want = r.status_code == 403, "403 (no password to change)"
            elif permission is None:
                ok = r.status_code not in (401, 403)
                want = "neither 401 nor 403"
            elif who.role is None:
                ok, want = r.status_code == 401, "401"
            elif permission not in ROLE_PERMISSIONS[who.role]:  # type: ignore[index]
                ok, want = r.status_code == 403, "403"
            elif ("{event_id}" in path or "{track_uid}" in path) and who.group == "b":
                ok, want = r.status_code == 404, "404 (another group's camera)"
            else:
                ok = r.status_code not in (401, 403) and r.status_code < 500
                want = "allowed (not 401/403/5xx)"
            if not ok:
                failures.append(f"{method} {path} as {who.name}: {r.status_code}, want {want}")
    assert not failures, "\n".join(failures)


def test_a_session_without_its_csrf_token_may_read_but_not_change(world: World) -> None:
    op = next(w for w in world.who if w.name == "op-a")
    no_csrf = replace(op, csrf=None)
    eid = world.alert()
    assert world.call(no_csrf, "GET", f"/api/v1/alerts/{eid}", None).status_code == 200
    r = world.call(no_csrf, "POST", f"/api/v1/alerts/{eid}/claim", None)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    wrong = replace(op, csrf="not-the-token")
    assert world.call(wrong, "POST", f"/api/v1/alerts/{eid}/claim", None).status_code == 403
    assert world.store.get(eid).state == "new"  # type: ignore[union-attr]
    assert world.call(op, "POST", f"/api/v1/alerts/{eid}/claim", None).status_code == 200


@pytest.mark.parametrize("evidence", ["snapshot", "clip"])
def test_unmasked_evidence_by_role(world: World, evidence: str) -> None:
    """``?unmasked=true`` is a decision inside the evidence routes (their route-level one
    is reading alerts): only roles holding VIEW_UNMASKED get the original."""
    failures = []
    for who in list(world.who):
        url = f"/api/v1/alerts/{world.alert()}/{evidence}?unmasked=true"
        r = world.call(who, "GET", url, None)
        if who.role is None:
            want = 401
        elif Permission.VIEW_UNMASKED not in ROLE_PERMISSIONS[who.role]:  # type: ignore[index]
            want = 403
        else:
            want = 200
        if r.status_code != want:
            failures.append(f"{evidence} unmasked as {who.name}: {r.status_code}, want {want}")
    assert not failures, "\n".join(failures)


def test_unmasked_thumbnails_by_role(world: World) -> None:
    """A track's thumbnail, like an alert's evidence: the original only to roles holding
    VIEW_UNMASKED (and audited), the masked copy to every role that may search."""
    failures = []
    for who in list(world.who):
        for unmasked in (False, True):
            url = f"/api/v1/tracks/{world.track()}/thumbnail" + (
                "?unmasked=true" if unmasked else ""
            )
            r = world.call(who, "GET", url, None)
            if who.role is None:
                want = 401
            elif who.group == "b":
                want = 404
            elif unmasked and Permission.VIEW_UNMASKED not in ROLE_PERMISSIONS[who.role]:  # type: ignore[index]
                want = 403
            else:
                want = 200
            if r.status_code != want:
                failures.append(
                    f"thumbnail unmasked={unmasked} as {who.name}: {r.status_code}, want {want}"
                )
    assert not failures, "\n".join(failures)
