"""``GET /api/v1/search`` and the track routes on a real SQLite store: what matches, in
what order, within whose cameras, what bad questions get, and what is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from alerts.api import AccessSettings, create_app
from alerts.api.routes import search as search_routes
from alerts.evidence import LocalEvidenceStore, clip_key, masked_key, thumbnail_key
from alerts.store import SqliteAlertStore
from tests.factories import T0, make_event, make_track_record

pytestmark = pytest.mark.unit

KEY = "search-test-api-key-0123456789"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
DAY = "since=2024-05-01T09:00:00Z&until=2024-05-01T12:00:00Z"


class World:
    def __init__(self, tmp: Path) -> None:
        self.store = SqliteAlertStore(tmp / "alerts.db")
        self.evidence = LocalEvidenceStore(tmp / "evidence")
        self.app = create_app(
            self.store,
            self.evidence,
            api_key=KEY,
            access=AccessSettings(
                camera_groups={"cam-a": ["a"], "cam-a2": ["a"], "cam-b": ["b"]},
                camera_zones={"cam-a": ["door", "gate"]},
                password_hasher=CHEAP,
            ),
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1")
        hasher = self.app.state.argus.passwords
        for name, role, groups in (("op-a", "operator", ["a"]), ("sup-a", "supervisor", ["a"])):
            self.store.add_user(
                name, role=role, groups=groups, password_hash=hasher.hash(PASSWORD), now=T0
            )  # type: ignore[arg-type]

    def sign_in(self, name: str) -> TestClient:
        client = TestClient(self.app, base_url="http://127.0.0.1")
        r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client

    def track(self, n: int, **kw: Any) -> str:
        record = make_track_record(n, **kw)
        camera = str(record["camera_id"])
        key = thumbnail_key(camera, T0 + n, str(record["track_uid"]))
        self.evidence.put(key, b"\xff\xd8original")
        self.evidence.put(masked_key(key), b"\xff\xd8masked")
        self.store.upsert(record | {"thumbnail": key})
        return str(record["track_uid"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.client.close()
    w.store.close()


def world_uid(n: int, camera: str = "cam-a") -> str:
    """The uid ``make_track_record`` gives track ``n`` of ``camera``."""
    return str(make_track_record(n, camera=camera)["track_uid"])


def _uids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [t["track_uid"] for t in r.json()["results"]]


def test_a_colour_search_finds_its_colour_best_first_on_the_users_cameras(world: World) -> None:
    strong = world.track(1, camera="cam-a", upper="red", shares={"upper": 0.9})
    weak = world.track(2, camera="cam-a2", upper="red", shares={"upper": 0.4})
    world.track(3, camera="cam-a", upper="blue")
    world.track(4, camera="cam-b", upper="red", shares={"upper": 0.95})  # group b
    world.track(5, camera="cam-a", upper="red", label="car", lower=None)
    op = world.sign_in("op-a")
    r = op.get(f"/api/v1/search?{DAY}&class=person&upper=red")
    assert _uids(r) == [strong, weak]
    body = r.json()
    assert body["matched"] == 2 and body["capped"] is False
    first = body["results"][0]
    assert first["colours"] == {"upper": "red", "lower": "black"}
    assert first["thumbnail_url"] == f"/api/v1/tracks/{strong}/thumbnail"
    assert 0 < body["results"][1]["score"] < first["score"] <= 1
    # every red thing, any part, any class
    red_car = world.track(6, camera="cam-a", label="car", upper=None, lower=None, body="red")
    found = set(_uids(op.get(f"/api/v1/search?{DAY}&colour=red")))
    assert found == {strong, weak, red_car, world_uid(5)}


def test_filters_by_camera_group_zone_direction_and_time(world: World) -> None:
    a = world.track(1, camera="cam-a", zones=["door"], direction="left")
    b = world.track(2, camera="cam-a2", zones=["gate"], direction="right")
    late = world.track(3, camera="cam-a", first=T0 + 5 * 3600)  # 15:00, outside the range
    op = world.sign_in("op-a")
    assert _uids(op.get(f"/api/v1/search?{DAY}&camera=cam-a")) == [a]
    assert set(_uids(op.get(f"/api/v1/search?{DAY}&group=a"))) == {a, b}
    assert _uids(op.get(f"/api/v1/search?{DAY}&zone=door")) == [a]
    assert _uids(op.get(f"/api/v1/search?{DAY}&direction=right")) == [b]
    wide = "since=2024-05-01T09:00:00%2B09:00&until=2024-05-02T00:00:00%2B09:00"
    assert late in _uids(op.get(f"/api/v1/search?{wide}"))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "give a time range"),
        ("since=2024-05-01T09:00:00Z", "give a time range"),
        ("since=2024-05-01T12:00:00Z&until=2024-05-01T09:00:00Z", "must be after"),
        ("since=2024-01-01T00:00:00Z&until=2024-05-01T00:00:00Z", "at most 31"),
        ("since=2024-05-01T09:00:00&until=2024-05-01T10:00:00", "UTC offset"),
        (f"{DAY}&upper=mauve", "upper"),
        (f"{DAY}&colour=RED", "colour"),
        (f"{DAY}&class=unicorn", "unknown class"),
        (f"{DAY}&direction=sideways", "direction"),
        (f"{DAY}&limit=1000", "limit"),
        (f"{DAY}&offset=-1", "offset"),
        (f"{DAY}&like=not-a-uuid", "like"),
        ("since=yesterday&until=today", "since"),
    ],
)
def test_bad_questions_get_a_clear_422(world: World, query: str, words: str) -> None:
    r = world.sign_in("op-a").get(f"/api/v1/search?{query}")
    assert r.status_code == 422, r.text
    assert words in r.text


def test_searching_outside_ones_groups_is_forbidden_not_empty(world: World) -> None:
    world.track(1, camera="cam-b")
    op = world.sign_in("op-a")
    r = op.get(f"/api/v1/search?{DAY}&camera=cam-b")
    assert r.status_code == 403 and "not in your groups" in r.json()["detail"]
    r = op.get(f"/api/v1/search?{DAY}&camera=cam-a&camera=cam-b")
    assert r.status_code == 403
    r = op.get(f"/api/v1/search?{DAY}&group=b")
    assert r.status_code == 403 and "not one of yours" in r.json()["detail"]
    assert op.get(f"/api/v1/search?{DAY}").json()["results"] == []  # cam-b's track unseen
    admin = world.client
    got = admin.get(f"/api/v1/search?{DAY}&camera=cam-b", headers={"X-API-Key": KEY})
    assert len(_uids(got)) == 1


def test_every_search_is_audited_with_its_filters(world: World) -> None:
    op = world.sign_in("op-a")
    op.get(f"/api/v1/search?{DAY}&class=person&upper=red&camera=cam-a")
    entries = [e for e in world.store.list_audit() if e.action == "search.tracks"]
    assert len(entries) == 1
    e = entries[0]
    assert e.actor == "op-a" and e.target_kind == "tracks"
    assert e.detail["class"] == "person" and e.detail["upper"] == "red"
    assert e.detail["camera"] == ["cam-a"]
    assert str(e.detail["since"]).startswith("2024-05-01T09:00")


def test_more_like_this_ranks_by_appearance(world: World) -> None:
    def vec(upper: int, lower: int) -> list[float]:
        v = [0.0] * 33
        v[upper], v[11 + lower] = 1.0, 1.0
        return v

    ref = world.track(1, camera="cam-a", appearance=vec(3, 0))  # red / black
    same = world.track(2, camera="cam-a2", appearance=vec(3, 0))
    half = world.track(3, camera="cam-a", appearance=vec(3, 7))  # red / blue
    other = world.track(4, camera="cam-a", appearance=vec(7, 7))  # blue / blue
    world.track(5, camera="cam-a", label="car", appearance=vec(3, 0))  # another class
    op = world.sign_in("op-a")
    r = op.get(f"/api/v1/search?{DAY}&like={ref}")
    assert _uids(r) == [same, half, other]
    scores = [t["score"] for t in r.json()["results"]]
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.5)
    foreign = world.track(9, camera="cam-b")
    assert op.get(f"/api/v1/search?{DAY}&like={foreign}").status_code == 404


def test_a_search_reads_at_most_the_scan_cap_and_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_routes, "SCAN_LIMIT", 3)
    uids = [world.track(n, camera="cam-a") for n in range(1, 6)]
    r = world.sign_in("op-a").get(f"/api/v1/search?{DAY}")
    body = r.json()
    assert body["capped"] is True and body["matched"] == 3
    assert set(_uids(r)) == set(uids[2:])  # the newest three


def test_a_track_opens_on_its_cameras_timeline_with_the_clip_that_covers_it(
    world: World,
) -> None:
    uid = world.track(10, camera="cam-a", first=T0 + 100, duration_s=6)
    neighbour = world.track(11, camera="cam-a", first=T0 + 200)
    world.track(12, camera="cam-a", first=T0 + 2000)  # beyond five minutes
    world.track(13, camera="cam-a2", first=T0 + 100)  # another camera
    event = make_event(10, camera="cam-a", wall=T0 + 102)  # track 10's own alert
    clip = clip_key("cam-a", event.wall_time, event.event_id)
    world.store.upsert(event.to_record() | {"clip": clip})
    op = world.sign_in("op-a")
    r = op.get(f"/api/v1/tracks/{uid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {t["track_uid"] for t in body["timeline"]["tracks"]} == {uid, neighbour}
    assert [a["event_id"] for a in body["timeline"]["alerts"]] == [event.event_id]
    assert body["clip"]["event_id"] == event.event_id and body["clip"]["own"] is True
    assert body["clip"]["url"] == f"/api/v1/alerts/{event.event_id}/clip"
    lone = op.get(f"/api/v1/tracks/{neighbour}").json()
    assert lone["clip"] is None  # no alert's clip covers 200-208 s


def test_thumbnails_are_masked_unless_a_supervisor_asks_and_is_audited(world: World) -> None:
    uid = world.track(1, camera="cam-a")
    op = world.sign_in("op-a")
    assert op.get(f"/api/v1/tracks/{uid}/thumbnail").content == b"\xff\xd8masked"
    assert op.get(f"/api/v1/tracks/{uid}/thumbnail?unmasked=true").status_code == 403
    sup = world.sign_in("sup-a")
    r = sup.get(f"/api/v1/tracks/{uid}/thumbnail?unmasked=true")
    assert r.status_code == 200 and r.content == b"\xff\xd8original"
    (entry,) = [e for e in world.store.list_audit() if e.action == "evidence.unmasked"]
    assert entry.actor == "sup-a" and entry.target_kind == "track" and entry.target_id == uid


def test_the_options_offer_only_the_users_cameras(world: World) -> None:
    body = world.sign_in("op-a").get("/api/v1/search/options").json()
    assert [c["camera_id"] for c in body["cameras"]] == ["cam-a", "cam-a2"]
    assert body["groups"] == ["a"]
    assert body["zones"] == {"cam-a": ["door", "gate"]}
    assert "red" in body["colours"] and "person" in body["classes"]
    assert body["max_span_days"] == 31


def test_an_unmasked_thumbnail_is_never_cached_so_every_view_is_audited(world: World) -> None:
    uid = world.track(1, camera="cam-a")
    sup = world.sign_in("sup-a")
    masked = sup.get(f"/api/v1/tracks/{uid}/thumbnail")
    assert "max-age" in masked.headers["cache-control"]
    for _ in range(2):
        r = sup.get(f"/api/v1/tracks/{uid}/thumbnail?unmasked=true")
        assert r.headers["cache-control"] == "no-store"
    views = [e for e in world.store.list_audit() if e.action == "evidence.unmasked"]
    assert len(views) == 2


def test_more_like_a_track_never_described_says_so(world: World) -> None:
    uid = world.track(1, camera="cam-a", appearance=[0.0] * 33)
    r = world.sign_in("op-a").get(f"/api/v1/search?{DAY}&like={uid}")
    assert r.status_code == 422 and "search by its colours" in r.json()["detail"]


@pytest.mark.parametrize("zone", [",", "a,b", '"door"', "%", "door zone"])
def test_a_zone_is_a_name_not_a_pattern(world: World, zone: str) -> None:
    r = world.sign_in("op-a").get(f"/api/v1/search?{DAY}", params={"zone": zone})
    assert r.status_code == 422, r.text


def test_the_options_offer_a_fleet_cameras_zones(tmp_path: Path) -> None:
    from alerts.control import InProcessControl
    from argus.fleet.admin import FleetAdmin
    from argus.fleet.view import FleetView

    fleet = FleetAdmin(FleetView(4), InProcessControl())
    fleet.put(
        "fleet-1",
        {
            "camera": {
                "id": "fleet-1",
                "source": "rtsp://cam/s",
                "zones": [{"name": "platform", "polygon": [[0, 0], [10, 0], [10, 10]]}],
            }
        },
    )
    store = SqliteAlertStore(tmp_path / "a.db")
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "ev"),
        api_key=KEY,
        access=AccessSettings(camera_groups={"fleet-1": ["a"]}, password_hasher=CHEAP),
        fleet=fleet,
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        body = client.get("/api/v1/search/options", headers={"X-API-Key": KEY}).json()
    store.close()
    assert body["zones"] == {"fleet-1": ["platform"]}


def test_a_model_of_ones_own_makes_its_classes_searchable(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.db")
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "ev"),
        api_key=KEY,
        access=AccessSettings(classes=("person", "Forklift", "pallet jack")),
    )
    store.upsert(make_track_record(1, camera="cam-x", label="forklift", upper=None, lower=None))
    auth = {"X-API-Key": KEY}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        got = client.get(f"/api/v1/search?{DAY}&class=forklift", headers=auth)
        assert len(_uids(got)) == 1
        assert client.get(f"/api/v1/search?{DAY}&class=unicorn", headers=auth).status_code == 422
        options = client.get("/api/v1/search/options", headers=auth).json()
    store.close()
    assert options["classes"][-2:] == ["forklift", "pallet jack"] and "car" in options["classes"]
