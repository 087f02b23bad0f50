"""The fleet's cameras over the API (issue 19): admins add, change and remove cameras; each
change is checked, published on the fleet channel and audited; refused ones say why and
never echo a password; the broker refusing a change leaves nothing changed; the cameras'
groups follow the fleet, so operators see the alerts of their groups' fleet cameras.

The channel is ``InProcessControl`` (the Kafka topic's stand-in); the real topic, with
workers applying the changes, is exercised by ``tests/e2e/test_fleet_e2e.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from alerts.api import AccessSettings, create_app
from alerts.control import ControlPublishError, ControlValue
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from argus.fleet.admin import FleetAdmin, follow_groups
from argus.fleet.view import FleetView
from tests.factories import T0, make_event

pytestmark = pytest.mark.unit

KEY = "fleet-test-api-key-0123456789"
ADMIN = {"X-API-Key": KEY}
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ZONE = [[10, 10], [200, 10], [200, 150], [10, 150]]


class Channel:
    """The fleet topic's stand-in: records what is published (key, value, partition) and
    hands it to the reader as the topic would; can refuse like a broker that is away."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ControlValue]] = []
        self.partitions: list[int | None] = []
        self.down = False
        self.reader: Any = None

    def publish(self, key: str, value: ControlValue, partition: int | None = None) -> None:
        if self.down:
            raise ControlPublishError(key, "broker unavailable")
        self.sent.append((key, value))
        self.partitions.append(partition)
        if self.reader is not None:
            self.reader(key, value, partition)


class Site:
    def __init__(self, tmp: Path) -> None:
        self.store = SqliteAlertStore(tmp / "alerts.db")
        self.channel = Channel()
        self.view = FleetView(8)
        self.admin = FleetAdmin(self.view, self.channel)
        self.app = create_app(
            self.store,
            LocalEvidenceStore(tmp / "evidence"),
            api_key=KEY,
            access=AccessSettings(camera_groups={"static-1": ["south"]}, password_hasher=CHEAP),
            fleet=self.admin,
        )
        # what the alert service does: the fleet reader's records update the groups
        self.follow = follow_groups(
            self.admin, {"static-1": ["south"]}, self.app.state.argus.cameras.update
        )
        self.channel.reader = self.follow
        self.client = TestClient(self.app, base_url="http://127.0.0.1")

    def put(self, camera_id: str, body: dict[str, Any], **kw: Any) -> Any:
        return self.client.put(f"/api/v1/fleet/cameras/{camera_id}", json=body, **kw)

    def sign_in(self, name: str, role: str, groups: list[str]) -> TestClient:
        hasher = self.app.state.argus.passwords
        self.store.add_user(
            name,
            role=role,  # type: ignore[arg-type]
            groups=groups,
            password_hash=hasher.hash(PASSWORD),
            now=T0,
        )
        client = TestClient(self.app, base_url="http://127.0.0.1")
        r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.client.close()
    s.store.close()


def camera(camera_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "camera": {
            "id": camera_id,
            "source": "rtsp://admin:${CAM_PW}@10.0.0.5/stream2",
            "groups": ["north"],
            "zones": [{"name": "gate", "polygon": ZONE}],
            **extra,
        },
        "rules": [{"type": "intrusion", "camera": camera_id, "zone": "gate"}],
    }


def test_an_admin_adds_changes_and_removes_a_camera(site: Site) -> None:
    r = site.put("gate-1", camera("gate-1"), headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["camera_id"] == "gate-1" and out["model"] is None
    # the reference is a name, not a secret: shown as written, so an edit sends it back
    assert out["camera"]["source"] == "rtsp://admin:${CAM_PW}@10.0.0.5/stream2"
    assert [k for k, _ in site.channel.sent] == ["camera/gate-1"]
    assert site.channel.partitions == [0] and out["partition"] == 0  # the first free one
    sent = site.channel.sent[0][1]
    assert sent is not None and sent["camera"]["source"].endswith("${CAM_PW}@10.0.0.5/stream2")
    assert sent["rules"][0]["zone"] == "gate" and sent["updated_at"] > 0

    listed = site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()
    assert [c["camera_id"] for c in listed["cameras"]] == ["gate-1"]
    assert listed["refused"] == {}

    changed = camera("gate-1")
    changed["rules"][0]["min_dwell_s"] = 4.0
    assert site.put("gate-1", changed, headers=ADMIN).status_code == 200
    assert site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()["cameras"][0]["rules"][0][
        "min_dwell_s"
    ] == pytest.approx(4.0)

    second = site.put("gate-9", camera("gate-9"), headers=ADMIN).json()
    assert second["partition"] == 1  # cameras get partitions of their own while there are
    assert site.client.delete("/api/v1/fleet/cameras/gate-1", headers=ADMIN).status_code == 204
    assert site.channel.sent[-1] == ("camera/gate-1", None)
    assert site.channel.partitions[-1] == 0
    remaining = site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()["cameras"]
    assert [c["camera_id"] for c in remaining] == ["gate-9"]
    assert site.client.delete("/api/v1/fleet/cameras/gate-1", headers=ADMIN).status_code == 404

    actions = [e.action for e in site.store.list_audit(target_kind="camera")]
    assert actions == [
        "fleet.camera.remove",
        "fleet.camera.add",
        "fleet.camera.change",
        "fleet.camera.add",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (camera("gate-2", source="rtsp://admin:hunter2secret@10.0.0.5/s"), "password"),
        (
            camera("gate-2", zones=[{"name": "gate", "polygon": [[0, 0], [9, 9], [9, 0], [0, 9]]}]),
            "camera.zones",
        ),
        (camera("other-id"), "camera.id"),
        (
            {
                **camera("gate-2"),
                "rules": [{"type": "intrusion", "camera": "gate-2", "zone": "no"}],
            },
            "zone",
        ),
        (
            {**camera("gate-2"), "rules": [{"type": "no-such-rule", "camera": "gate-2"}]},
            "no-such-rule",
        ),
    ],
)
def test_a_definition_that_does_not_validate_is_refused_with_its_reason(
    site: Site, body: dict[str, Any], problem: str
) -> None:
    r = site.put("gate-2", body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert any(problem in p for p in r.json()["problems"]), r.json()
    assert "hunter2secret" not in r.text
    assert site.channel.sent == []
    assert site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()["cameras"] == []


def test_a_refused_publish_changes_nothing(site: Site) -> None:
    assert site.put("gate-3", camera("gate-3"), headers=ADMIN).status_code == 200
    site.channel.down = True
    changed = camera("gate-3")
    changed["camera"]["groups"] = ["south"]
    assert site.put("gate-3", changed, headers=ADMIN).status_code == 503
    assert site.client.delete("/api/v1/fleet/cameras/gate-3", headers=ADMIN).status_code == 503
    listed = site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()["cameras"]
    assert listed[0]["camera"]["groups"] == ["north"]
    assert [e.action for e in site.store.list_audit(target_kind="camera")] == ["fleet.camera.add"]


def test_operators_see_the_alerts_of_their_groups_fleet_cameras(site: Site) -> None:
    north = site.sign_in("op-north", "operator", ["north"])
    south = site.sign_in("op-south", "operator", ["south"])
    event = make_event(1, camera="gate-4")
    site.store.upsert(event.to_record())

    def seen(client: TestClient) -> set[str]:
        return {a["camera_id"] for a in client.get("/api/v1/alerts").json()["items"]}

    assert seen(north) == set()  # not a camera of anyone's groups yet
    assert site.put("gate-4", camera("gate-4"), headers=ADMIN).status_code == 200
    assert seen(north) == {"gate-4"} and seen(south) == set()
    moved = camera("gate-4")
    moved["camera"]["groups"] = ["south"]
    assert site.put("gate-4", moved, headers=ADMIN).status_code == 200
    assert seen(north) == set() and seen(south) == {"gate-4"}
    assert north.put("/api/v1/fleet/cameras/x", json=camera("x")).status_code == 403


def test_without_a_fleet_the_routes_answer_503(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.db")
    app = create_app(store, LocalEvidenceStore(tmp_path / "e"), api_key=KEY)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/v1/fleet/cameras", headers=ADMIN).status_code == 503
        r = client.put("/api/v1/fleet/cameras/a", json=camera("a"), headers=ADMIN)
        assert r.status_code == 503
    store.close()


def test_a_listed_source_shows_references_and_would_redact_anything_else() -> None:
    from argus.fleet.admin import shown_source

    assert shown_source("rtsp://admin:${CAM_PW}@cam/s?token=${CAM_T}") == (
        "rtsp://admin:${CAM_PW}@cam/s?token=${CAM_T}"
    )
    # a literal secret never passes validation; were one there, it would not be shown
    assert shown_source("rtsp://admin:hunter22@cam/s") == "rtsp://admin:***@cam/s"
    assert shown_source("rtsp://admin:x${CAM_PW}@cam/s") == "rtsp://admin:***@cam/s"


def test_an_evidence_stream_is_kept_listed_by_reference_and_checked_as_the_source(
    site: Site,
) -> None:
    main = "rtsp://admin:${CAM_PW}@10.0.0.5/stream1"
    r = site.put("gate-5", camera("gate-5", evidence_source=main), headers=ADMIN)
    assert r.status_code == 200, r.text
    listed = site.client.get("/api/v1/fleet/cameras", headers=ADMIN).json()["cameras"]
    assert [c["camera"]["evidence_source"] for c in listed] == [main]
    literal = camera("gate-5", evidence_source="rtsp://admin:hunter22@10.0.0.5/stream1")
    r = site.put("gate-5", literal, headers=ADMIN)
    assert r.status_code == 422 and "hunter22" not in r.text
    assert "camera.evidence_source" in r.text
