"""``GET /api/v1/changes`` (issue 17): the alerts of a user's cameras pushed as they change.

A real uvicorn server (``argus.app.ApiServer``) on SQLite, then on PostgreSQL; alerts are
written by a second store on the same database, as a separate alert service would.  Read
with httpx's streaming client: a new alert arrives as an ``alert`` event numbered above the list's
``change_seq``; reconnecting with ``Last-Event-ID`` sends what came after it and nothing
before; another group's camera is never sent; a number the store never handed out gives a
``reset``; a session that ends ends the stream with ``signed-out``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from alerts.api import AccessSettings, PageSettings, create_app
from alerts.api.routes import changes as changes_route
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqlAlertStore, SqliteAlertStore
from argus.app import ApiServer
from tests.factories import T0, make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit

KEY = "changes-test-api-key-0123456789"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GROUPS = {"cam-a": ["a", "secret"], "cam-b": ["b"]}


@dataclass
class Sse:
    """One received event."""

    event: str | None
    id: int | None
    data: Any


class Stream:
    """Reads Server-Sent Events from an httpx streaming response in a thread."""

    def __init__(self, client: httpx.Client, path: str, headers: dict[str, str]) -> None:
        self.events: list[Sse] = []
        self.status: int | None = None
        self._cond = threading.Condition()
        self._client = client
        self._thread = threading.Thread(target=self._read, args=(path, headers), daemon=True)
        self._stop = False
        self._thread.start()

    def _read(self, path: str, headers: dict[str, str]) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server stopped (the test's end)
            self._read_events(path, headers)
        with self._cond:
            self._cond.notify_all()

    def _read_events(self, path: str, headers: dict[str, str]) -> None:
        with self._client.stream("GET", path, headers=headers, timeout=30) as r:
            self.status = r.status_code
            event: str | None = None
            ident: int | None = None
            data: Any = None
            for line in r.iter_lines():
                if self._stop:
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    ident = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "":
                    if event is not None or ident is not None or data is not None:
                        with self._cond:
                            self.events.append(Sse(event, ident, data))
                            self._cond.notify_all()
                    event, ident, data = None, None, None

    def wait_for(self, pred: Any, timeout: float = 5.0) -> Sse:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                assert left > 0, f"no matching event within {timeout} s: {self.events}"
                self._cond.wait(left)

    def close(self) -> None:
        self._stop = True


@pytest.fixture
def world(
    store_factory: StoreFactory, tmp_path: Path
) -> Iterator[tuple[ApiServer, SqlAlertStore, Path]]:
    """The API on SQLite, then on PostgreSQL, and a second store on the same database."""
    store = store_factory()
    hashed = CHEAP.hash(PASSWORD)
    store.add_user("op-a", role="operator", groups=["a"], password_hash=hashed, now=T0)
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP),
    )
    server = ApiServer(app, "127.0.0.1", 0)
    server.start()
    writer = store_factory()  # the "alert service": another connection, same database
    try:
        yield server, writer, tmp_path
    finally:
        server.stop()


def _signed_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url)
    r = client.post("/api/v1/auth/login", json={"username": "op-a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def test_a_new_alert_is_pushed_and_a_reconnect_resumes_after_its_last_id(
    world: tuple[ApiServer, SqlAlertStore, Path],
) -> None:
    server, writer, _ = world
    first = make_event(1, camera="cam-a")
    writer.upsert(first.to_record())
    client = _signed_in(server.url)
    page = client.get("/api/v1/alerts").json()
    assert [a["event_id"] for a in page["items"]] == [first.event_id]
    after = page["change_seq"]
    assert after >= 1

    stream = Stream(client, f"/api/v1/changes?after={after}", {})
    second = make_event(2, camera="cam-a")
    other = make_event(3, camera="cam-b")  # group b: op-a never sees it
    writer.upsert(other.to_record())
    t0 = time.monotonic()
    writer.upsert(second.to_record())
    got = stream.wait_for(lambda e: e.event == "alert")
    assert time.monotonic() - t0 < 1.5  # pushed, not polled by the page
    assert got.data["event_id"] == second.event_id and got.id == got.data["change_seq"] > after
    stream.close()

    # the page was away: an end record and a new alert came meanwhile
    writer.upsert(replace(second, end_s=8.0).to_record())
    third = make_event(4, camera="cam-a")
    writer.upsert(third.to_record())
    again = Stream(client, "/api/v1/changes", {"Last-Event-ID": str(got.id)})
    last = again.wait_for(lambda e: e.event == "alert" and e.data["event_id"] == third.event_id)
    alerts = [e for e in again.events if e.event == "alert"]
    assert [e.data["event_id"] for e in alerts] == [second.event_id, third.event_id]
    assert alerts[0].data["end_s"] == 8.0  # as it is now, once
    assert all(e.id is not None and e.id > got.id for e in alerts) and last.id is not None
    assert all(e.data["camera_id"] == "cam-a" for e in alerts)
    again.close()


def test_unknown_number_resets_and_no_credentials_is_401(
    world: tuple[ApiServer, SqlAlertStore, Path],
) -> None:
    server, _, _ = world
    assert httpx.get(f"{server.url}/api/v1/changes").status_code == 401
    client = _signed_in(server.url)
    stream = Stream(client, "/api/v1/changes", {"Last-Event-ID": "999999"})
    reset = stream.wait_for(lambda e: e.event == "reset")
    assert reset.id == client.get("/api/v1/alerts").json()["change_seq"]
    stream.close()
    r = client.get("/api/v1/changes", headers={"Last-Event-ID": "seven"})
    assert r.status_code == 422


def test_a_session_that_ends_ends_the_stream(
    world: tuple[ApiServer, SqlAlertStore, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes_route, "RECHECK_S", 0.3)
    server, _, _ = world
    client = _signed_in(server.url)
    stream = Stream(client, "/api/v1/changes", {})
    time.sleep(0.2)
    # signed out elsewhere (another tab): the stream's cookie is no longer a session
    other = httpx.Client(base_url=server.url, cookies=client.cookies)
    other.headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]
    assert other.post("/api/v1/auth/logout").status_code in (200, 204)
    ended = stream.wait_for(lambda e: e.event == "signed-out", timeout=5)
    assert "sign in" in ended.data["reason"]


def test_page_settings_name_the_cue_the_sla_and_only_your_cameras(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    store.add_user(
        "op-a", role="operator", groups=["a"], password_hash=CHEAP.hash(PASSWORD), now=T0
    )
    page = PageSettings(cue_min_priority=80, sla_min_priority=70, sla_claim_within_s=120.0)
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP, page=page),
    )
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/api/v1/page-settings").status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "op-a", "password": PASSWORD})
    assert r.status_code == 200
    got = client.get("/api/v1/page-settings").json()
    assert got == {
        "cue_min_priority": 80,
        "sla_min_priority": 70,
        "sla_claim_within_s": 120.0,
        "suppressions": False,
        "cameras": [{"id": "cam-a", "groups": ["a"]}],
    }
    admin = client.get("/api/v1/page-settings", headers={"X-API-Key": KEY}).json()
    assert [c["id"] for c in admin["cameras"]] == ["cam-a", "cam-b"]
    store.close()


def test_an_open_stream_does_not_keep_an_idle_session_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream re-checks its session without counting as a use: a desk left with the
    page open is signed out after ``session_idle_s`` like any other."""
    monkeypatch.setattr(changes_route, "RECHECK_S", 0.2)
    now = [time.time()]
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    store.add_user(
        "op-a", role="operator", groups=["a"], password_hash=CHEAP.hash(PASSWORD), now=T0
    )
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP, session_idle_s=120),
        clock=lambda: now[0],
    )
    server = ApiServer(app, "127.0.0.1", 0)
    server.start()
    try:
        client = _signed_in(server.url)
        stream = Stream(client, "/api/v1/changes", {})
        time.sleep(0.3)
        now[0] += 100  # quiet for 100 s: the stream's checks would touch the session here
        time.sleep(0.6)
        assert not [e for e in stream.events if e.event == "signed-out"]
        now[0] += 100  # 200 s without a use by the person: past the 120 s idle limit
        ended = stream.wait_for(lambda e: e.event == "signed-out", timeout=5)
        assert "sign in" in ended.data["reason"]
    finally:
        server.stop()
        store.close()
