"""``GET /api/v1/stats/operators`` through HTTP: supervisors (and admins) read per-operator
workload figures of their groups' cameras, made by real claims and closes at pinned times;
operators may not; a store without the lifecycle answers 503.  On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx import Response

from alerts.api import AccessSettings, create_app
from alerts.api.auth import CSRF_HEADER
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqlAlertStore
from tests.factories import T0, make_event
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit

KEY = "operator-stats-test-api-key-0123"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GROUPS = {"cam-a": ["a"], "cam-b": ["b"]}
USERS = [
    ("op-a", "operator", ["a"]),
    ("op-b", "operator", ["b"]),
    ("sup-a", "supervisor", ["a"]),
    ("adm", "admin", ["default"]),
]
WEEK_S = 7 * 86400


class Clock:
    """The app's clock: real time, unless a test pins it (``at``)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


class Site:
    """The app on one store, with everyone signed in (their own client and CSRF token)."""

    def __init__(self, tmp_path: Path, store: SqlAlertStore) -> None:
        self.store = store
        self.clock = Clock()
        self.app = create_app(
            store,
            LocalEvidenceStore(tmp_path / "evidence"),
            api_key=KEY,
            control=InProcessControl(),
            validate_rules=lambda rules: [],
            access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP),
            clock=self.clock,
        )
        hashed = CHEAP.hash(PASSWORD)
        for name, role, groups in USERS:
            store.add_user(name, role=role, groups=groups, password_hash=hashed, now=T0)  # type: ignore[arg-type]
        self.clients = {name: self._sign_in(name) for name, _, _ in USERS}
        self._n = 0

    def _sign_in(self, name: str) -> TestClient:
        client = TestClient(self.app, base_url="http://127.0.0.1")
        r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers[CSRF_HEADER] = r.json()["csrf_token"]
        return client

    def alert(self, camera: str) -> tuple[str, float]:
        """A new alert of ``camera``: its event id and when it was received (UNIX s)."""
        self._n += 1
        event = make_event(self._n, camera=camera)
        self.store.upsert(event.to_record())
        alert = self.store.get(event.event_id)
        assert alert is not None
        return event.event_id, alert.received_at.timestamp()

    def act(self, who: str, event_id: str, action: str, at: float, body: Any = None) -> None:
        """``who`` does ``action`` to the alert with the app's clock at ``at``."""
        self.clock.at = at
        try:
            r = self.clients[who].post(f"/api/v1/alerts/{event_id}/{action}", json=body)
        finally:
            self.clock.at = None
        assert r.status_code == 200, r.text

    def figures(self, who: str, **params: Any) -> Response:
        return self.clients[who].get("/api/v1/stats/operators", params=params)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture
def site(store_factory: StoreFactory, tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, store_factory())
    yield s
    s.close()


def _ok(r: Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def _play(site: Site) -> None:
    a1, t = site.alert("cam-a")
    site.act("op-a", a1, "claim", t + 10)
    false_alarm = {"disposition": "false_alarm", "suppress": {"scope": "rule"}}
    site.act("op-a", a1, "close", t + 40, false_alarm)
    a2, t = site.alert("cam-a")
    site.act("op-a", a2, "claim", t + 20)  # still hers
    a3, t = site.alert("cam-a")
    site.act("sup-a", a3, "claim", t + 30)
    site.act("sup-a", a3, "close", t + 90, {"disposition": "no_action"})
    b1, t = site.alert("cam-b")  # group b's: not for sup-a
    site.act("op-b", b1, "claim", t + 5)
    site.act("op-b", b1, "close", t + 15, false_alarm)
    b2, t = site.alert("cam-b")
    site.act("op-b", b2, "claim", t + 7)


def test_a_supervisor_gets_the_figures_of_their_groups_cameras(site: Site) -> None:
    _play(site)
    page = _ok(site.figures("sup-a"))  # not op-b, on group b's camera
    assert set(page) == {"since", "until", "items"}
    assert page["until"] - page["since"] == pytest.approx(WEEK_S)
    assert page["items"] == [
        {
            "name": "op-a", "open_claims": 1, "claimed": 2, "closed": 1, "false_alarms": 1,
            "median_to_claim_s": pytest.approx(15), "median_to_close_s": pytest.approx(30),
        },
        {
            "name": "sup-a", "open_claims": 0, "claimed": 1, "closed": 1, "false_alarms": 0,
            "median_to_claim_s": pytest.approx(30), "median_to_close_s": pytest.approx(60),
        },
    ]  # fmt: skip
    everything = _ok(site.figures("adm"))["items"]
    assert [(x["name"], x["open_claims"]) for x in everything] == [
        ("op-a", 1),
        ("op-b", 1),
        ("sup-a", 0),
    ]
    op_b = everything[1]
    assert (op_b["claimed"], op_b["closed"], op_b["false_alarms"]) == (2, 1, 1)
    assert (op_b["median_to_claim_s"], op_b["median_to_close_s"]) == (
        pytest.approx(6), pytest.approx(10),
    )  # fmt: skip


def test_a_window_before_the_alerts_keeps_only_the_open_claims(site: Site) -> None:
    _play(site)
    old = _ok(site.figures("sup-a", since=T0 - 3600, until=T0))
    assert (old["since"], old["until"]) == (T0 - 3600, T0)
    assert old["items"] == [
        {
            "name": "op-a", "open_claims": 1, "claimed": 0, "closed": 0, "false_alarms": 0,
            "median_to_claim_s": None, "median_to_close_s": None,
        },
    ]  # fmt: skip
    assert site.figures("sup-a", since=-1).status_code == 422


def test_operators_may_not_read_the_figures(site: Site) -> None:
    assert site.figures("op-a").status_code == 403
    assert site.figures("op-b").status_code == 403
    with TestClient(site.app, base_url="http://127.0.0.1") as nobody:
        assert nobody.get("/api/v1/stats/operators").status_code == 401


def test_without_the_lifecycle_the_figures_are_503(tmp_path: Path, site: Site) -> None:
    store = site.store

    class NoLifecycle:  # an alert store that keeps no lifecycle
        def __getattr__(self, name: str) -> Any:
            if name == "operator_stats":
                raise AttributeError(name)
            return getattr(store, name)

    app = create_app(NoLifecycle(), LocalEvidenceStore(tmp_path / "e2"), api_key=KEY)
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-API-Key": KEY}) as key:
        r = key.get("/api/v1/stats/operators")
    assert r.status_code == 503, r.text
