"""The wall and the camera health board (issue 18): ``GET /api/v1/wall``,
``GET /api/v1/cameras/status`` and their stream ``GET /api/v1/live``.

A real uvicorn server on SQLite, then on PostgreSQL, with a ``LiveBoard`` fed as a worker
would feed it; alerts written by a second store on the same database.  The wall has only
the cameras with an open alert or watched activity, most urgent first, of the user's groups;
a closed alert takes its camera off; a silent worker's camera turns ``lost``; the stream
sends the wall and pictures only of the cameras on it, holds them in the demand while open
and releases them when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from argon2 import PasswordHasher

from alerts.api import AccessSettings, create_app
from alerts.api.wall import compose_wall
from alerts.evidence import LocalEvidenceStore
from alerts.live import CameraStatus, LiveBoard, Overlay, Preview, WatchOut, render_preview
from alerts.store import SqlAlertStore
from argus.app import ApiServer
from tests.factories import make_event
from tests.pg import StoreFactory
from tests.unit.test_api_changes import Stream

pytestmark = pytest.mark.unit

KEY = "wall-test-api-key-0123456789"
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GROUPS = {"cam-a": ["a"], "cam-b": ["a"], "cam-c": ["a"], "cam-x": ["x"]}


def status(
    cam: str, *, state: str = "streaming", watches: tuple[WatchOut, ...] = ()
) -> CameraStatus:
    now = time.time()
    return CameraStatus(
        camera_id=cam,
        state=state,  # type: ignore[arg-type]
        since=now - 5,
        reported_at=now,
        last_frame_at=now,
        fps=9.5,
        frames_processed=100,
        frames_dropped=2,
        quiet=not watches,
        frame_size=(640, 360),
        watches=watches,
    )


def watch(priority: int, reason: str = "person in 'z' for 4 s of 10") -> WatchOut:
    return WatchOut(
        rule_id="loitering:z",
        type="loitering",
        reason=reason,
        priority=priority,
        progress=0.4,
        bbox=(10.0, 10.0, 50.0, 90.0),
        zone="z",
        track_id=3,
    )


def picture(cam: str, taken_at: float) -> Preview:
    image = np.full((360, 640, 3), 90, np.uint8)
    overlay = Overlay(np.empty((0, 4)), [], np.empty((0, 4)))
    jpeg, w, h = render_preview(image, overlay, 320)
    return Preview(cam, 1, taken_at, w, h, jpeg)


@pytest.fixture
def world(
    store_factory: StoreFactory, tmp_path: Path
) -> Iterator[tuple[ApiServer, SqlAlertStore, LiveBoard]]:
    store = store_factory()
    hashed = CHEAP.hash(PASSWORD)
    store.add_user("op-a", role="operator", groups=["a"], password_hash=hashed, now=time.time())
    board = LiveBoard()
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups=GROUPS, password_hasher=CHEAP),
        live=board,
    )
    server = ApiServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield server, store_factory(), board
    finally:
        server.stop()


def _operator(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url)
    r = client.post("/api/v1/auth/login", json={"username": "op-a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def test_the_wall_shows_only_what_matters_most_urgent_first(
    world: tuple[ApiServer, SqlAlertStore, LiveBoard],
) -> None:
    server, writer, board = world
    board.report([status("cam-a"), status("cam-b", watches=(watch(30),)), status("cam-c")])
    board.report([status("cam-x", watches=(watch(90),))])  # another group's camera
    low = make_event(1, camera="cam-a", priority=40)
    high = make_event(2, camera="cam-a", priority=80)
    secret = make_event(3, camera="cam-x", priority=99)
    for e in (low, high, secret):
        writer.upsert(e.to_record())
    client = _operator(server.url)

    wall = client.get("/api/v1/wall").json()
    assert [t["camera_id"] for t in wall["tiles"]] == ["cam-a", "cam-b"]
    a, b = wall["tiles"]
    assert a["kind"] == "alert" and a["priority"] == 80 and a["open_alerts"] == 2
    assert a["alert"]["event_id"] == high.event_id and a["state"] == "streaming"
    assert b["kind"] == "activity" and b["priority"] == 30 and b["alert"] is None
    assert b["reason"] == "person in 'z' for 4 s of 10"
    assert (wall["quiet"], wall["cameras"], wall["more"], wall["live"]) == (1, 3, 0, True)

    # closed alerts leave the wall; the camera is quiet again
    for e in (low, high):
        r = client.post(f"/api/v1/alerts/{e.event_id}/close", json={"disposition": "no_action"})
        assert r.status_code == 200, r.text
    wall = client.get("/api/v1/wall").json()
    assert [t["camera_id"] for t in wall["tiles"]] == ["cam-b"]
    assert wall["quiet"] == 2

    # an admin key sees every camera, the other group's too
    admin = httpx.get(f"{server.url}/api/v1/wall", headers={"X-API-Key": KEY}).json()
    assert [t["camera_id"] for t in admin["tiles"]] == ["cam-x", "cam-b"]


def test_the_board_lists_every_camera_worst_first_and_a_silent_one_is_lost(
    world: tuple[ApiServer, SqlAlertStore, LiveBoard],
) -> None:
    server, writer, board = world
    board.stale_after_s = 1.0
    # a worker's clock 60 s behind is no sign of silence: arrival times count
    skewed = status("cam-c")
    board.report([skewed.model_copy(update={"reported_at": time.time() - 60})])
    assert board.statuses()["cam-c"].state == "streaming"
    ended = status("cam-x", state="ended")  # a finished camera stays ended, never 'lost'
    board.report([ended])
    time.sleep(1.2)  # cam-c's worker goes silent
    board.report([status("cam-a"), status("cam-b", state="reconnecting")])
    writer.upsert(make_event(1, camera="cam-a").to_record())
    client = _operator(server.url)
    assert board.statuses()["cam-x"].state == "ended"

    rows = client.get("/api/v1/cameras/status").json()["cameras"]
    assert [(r["camera_id"], r["state"]) for r in rows] == [
        ("cam-c", "lost"),
        ("cam-b", "reconnecting"),
        ("cam-a", "streaming"),
    ]
    lost = rows[0]
    assert "no report from its worker" in lost["detail"] and lost["fps"] == 0.0
    a = rows[2]
    assert (a["open_alerts"], a["fps"], a["frames_dropped"], a["groups"]) == (1, 9.5, 2, ["a"])
    assert all(r["camera_id"] != "cam-x" for r in rows)  # not this operator's group
    assert httpx.get(f"{server.url}/api/v1/cameras/status").status_code == 401


def test_the_stream_sends_the_wall_and_its_pictures_and_holds_the_demand(
    world: tuple[ApiServer, SqlAlertStore, LiveBoard],
) -> None:
    server, writer, board = world
    board.report([status("cam-a"), status("cam-b"), status("cam-x")])
    client = _operator(server.url)
    stream = Stream(client, "/api/v1/live?view=wall&fps=5&for_s=4", {})
    first = stream.wait_for(lambda e: e.event == "wall")
    assert first.data["tiles"] == [] and first.data["quiet"] == 3
    assert board.demand.wanted() == {}  # an empty wall wants no picture

    t0 = time.monotonic()
    alert = make_event(1, camera="cam-a", priority=75)
    writer.upsert(alert.to_record())
    got = stream.wait_for(lambda e: e.event == "wall" and e.data["tiles"])
    assert time.monotonic() - t0 < 2.0  # pushed within the store poll + a composition step
    assert got.data["tiles"][0]["camera_id"] == "cam-a"
    deadline = time.monotonic() + 3
    while "cam-a" not in board.demand.wanted():
        assert time.monotonic() < deadline, "the stream did not ask for cam-a's pictures"
        time.sleep(0.05)
    assert set(board.demand.wanted()) == {"cam-a"}  # not the quiet ones
    assert board.demand.wanted()["cam-a"].fps == 5.0

    # cam-x (group x) has an alert: on an admin's wall (who holds it), never on op-a's
    writer.upsert(make_event(9, camera="cam-x", priority=99).to_record())
    admin = httpx.Client(base_url=server.url, headers={"X-API-Key": KEY})
    admin_stream = Stream(admin, "/api/v1/live?view=wall&for_s=3", {})
    admin_stream.wait_for(
        lambda e: e.event == "wall" and any(t["camera_id"] == "cam-x" for t in e.data["tiles"])
    )
    deadline = time.monotonic() + 3
    while "cam-x" not in board.demand.wanted():
        assert time.monotonic() < deadline, "the admin's stream did not ask for cam-x"
        time.sleep(0.05)
    board.picture(picture("cam-b", time.time()))  # not on any wall: not even kept
    assert board.preview("cam-b") is None
    board.picture(picture("cam-x", time.time()))
    board.picture(picture("cam-a", time.time()))
    admin_stream.wait_for(lambda e: e.event == "picture" and e.data["camera_id"] == "cam-x")
    pic = stream.wait_for(lambda e: e.event == "picture")
    assert pic.data["camera_id"] == "cam-a" and pic.data["width"] == 320
    import base64

    assert base64.b64decode(pic.data["jpeg"]).startswith(b"\xff\xd8")
    time.sleep(0.4)
    assert {e.data["camera_id"] for e in stream.events if e.event == "picture"} == {"cam-a"}
    assert all(  # nor is cam-x on op-a's wall
        t["camera_id"] != "cam-x"
        for e in stream.events
        if e.event == "wall"
        for t in e.data["tiles"]
    )
    admin_stream.close()
    deadline = time.monotonic() + 6
    while board.demand.wanted():  # the stream ended: nothing is wanted any more
        assert time.monotonic() < deadline, "the stream's demand was not released"
        time.sleep(0.1)
    stream.close()


def test_the_board_stream_asks_for_thumbnails_of_every_camera(
    world: tuple[ApiServer, SqlAlertStore, LiveBoard],
) -> None:
    server, _, board = world
    board.report([status("cam-a"), status("cam-b")])
    client = _operator(server.url)
    stream = Stream(client, "/api/v1/live?view=board&for_s=3", {})
    doc = stream.wait_for(lambda e: e.event == "board")
    cams = [(c["camera_id"], c["state"]) for c in doc.data["cameras"]]
    assert cams == [("cam-c", None), ("cam-a", "streaming"), ("cam-b", "streaming")]
    deadline = time.monotonic() + 3
    while set(board.demand.wanted()) != {"cam-a", "cam-b", "cam-c"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert {w.width for w in board.demand.wanted().values()} == {240}
    stream.close()


def test_bad_parameters_are_refused(world: tuple[ApiServer, SqlAlertStore, LiveBoard]) -> None:
    server, _, _ = world
    client = _operator(server.url)
    for query in ("view=ceiling", "view=wall&fps=50", "view=wall&width=5000", "view=wall&fps=0"):
        assert client.get(f"/api/v1/live?{query}").status_code == 422, query
    assert client.get("/api/v1/live").status_code == 422


def test_compose_wall_caps_tiles_and_puts_alerts_before_activity_at_equal_priority() -> None:
    statuses = {f"c{i}": status(f"c{i}", watches=(watch(50),)) for i in range(20)}
    wall = compose_wall(sorted(statuses), [], statuses, live=True, max_tiles=16)
    assert len(wall.tiles) == 16 and wall.more == 4 and wall.quiet == 0

    store_alert = make_event(1, camera="c19", priority=50)
    from alerts.store import CameraAlerts, SqliteAlertStore

    s = SqliteAlertStore(":memory:")
    s.upsert(store_alert.to_record())
    alerts = [CameraAlerts(a.top, a.count) for a in s.wall_alerts(("new",))]
    wall = compose_wall(sorted(statuses), alerts, statuses, live=True)
    assert wall.tiles[0].camera_id == "c19" and wall.tiles[0].kind == "alert"


def test_a_picture_from_before_the_camera_came_on_the_wall_is_never_sent(
    world: tuple[ApiServer, SqlAlertStore, LiveBoard],
) -> None:
    server, writer, board = world
    board.report([status("cam-a")])
    writer.upsert(make_event(1, camera="cam-a", priority=75).to_record())
    board.picture(picture("cam-a", time.time() - 30))  # made for an earlier watcher
    client = _operator(server.url)
    stream = Stream(client, "/api/v1/live?view=wall&fps=5&for_s=3", {})
    stream.wait_for(lambda e: e.event == "wall" and e.data["tiles"])
    time.sleep(0.6)
    assert not [e for e in stream.events if e.event == "picture"]
    board.picture(picture("cam-a", time.time()))  # made now, for this wall
    got = stream.wait_for(lambda e: e.event == "picture")
    assert got.data["taken_at"] > time.time() - 5
    stream.close()
