"""``GET /api/v1/cameras/{camera_id}/picture`` (issue 20): the admins' setup view draws zones
over a camera's current picture.  A fresh picture at hand is answered at once; otherwise
the route asks the workers for one (the demand they read) and waits a bounded time; the
frame size the zones are measured in comes with it; unknown cameras are 404, no picture
or no frame size a 503 that says why.  A thread here plays the worker: it answers the
demand as a worker does, so the test sees that the route really asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.api import AccessSettings, create_app
from alerts.api.routes import pictures
from alerts.evidence import LocalEvidenceStore
from alerts.live import CameraStatus, LiveBoard, Preview, Want
from alerts.live.preview import MAX_WIDTH
from alerts.store import SqliteAlertStore

pytestmark = pytest.mark.unit

KEY = "picture-test-api-key-0123456789"
AUTH = {"X-API-Key": KEY}
URL = "/api/v1/cameras/{}/picture"


def _jpeg(w: int = 64, h: int = 36) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    assert ok
    return bytes(buf.tobytes())


def _status(camera: str, frame_size: tuple[int, int] | None = (1920, 1080)) -> CameraStatus:
    now = time.time()
    return CameraStatus(
        camera_id=camera, state="streaming", since=now, reported_at=now, frame_size=frame_size
    )


class FakeWorker:
    """Answers the board's demand as a worker does: a picture of each wanted camera, as
    wide as wanted (at most the frame's 1920), while it runs."""

    def __init__(self, board: LiveBoard, delay_s: float = 0.3) -> None:
        self.board, self.delay_s = board, delay_s
        self.asked: dict[str, Want] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for cam, want in self.board.wanted().items():
                self.asked.setdefault(cam, want)
                if self._stop.wait(self.delay_s):
                    return
                w = min(want.width, 1920)
                self.board.picture(Preview(cam, 7, time.time(), w, w * 9 // 16, _jpeg()))

    def __enter__(self) -> FakeWorker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def board() -> LiveBoard:
    return LiveBoard()


@pytest.fixture
def client(tmp_path: Path, board: LiveBoard) -> Iterator[TestClient]:
    store = SqliteAlertStore(tmp_path / "alerts.db")
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups={"gate": ["north"], "yard": ["south"]}),
        live=board,
    )
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def test_a_fresh_picture_is_answered_at_once_with_the_frame_size(
    client: TestClient, board: LiveBoard
) -> None:
    board.report([_status("gate")])
    board.demand.hold("a wall", {"gate": Want(640, 2.0)})
    jpeg = _jpeg(640, 360)
    board.picture(Preview("gate", 3, 1_700_000_000.25, 640, 360, jpeg))
    t0 = time.monotonic()
    r = client.get(URL.format("gate"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 1.0
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == jpeg
    # zones are in frame pixels: the frame's size, not the scaled picture's
    assert (r.headers["x-frame-width"], r.headers["x-frame-height"]) == ("1920", "1080")
    assert r.headers["x-picture-taken-at"] == "1700000000.250"
    assert r.headers["cache-control"] == "no-store"


def test_without_a_picture_the_workers_are_asked_for_one(
    client: TestClient, board: LiveBoard
) -> None:
    board.report([_status("yard")])
    assert board.wanted() == {}
    with FakeWorker(board) as worker:
        r = client.get(URL.format("yard"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"\xff\xd8")
    assert worker.asked == {"yard": Want(MAX_WIDTH, 1.0)}  # as wide as pictures go
    assert board.wanted() == {}  # asked only while waiting


def test_an_old_picture_is_not_answered(
    client: TestClient, board: LiveBoard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture received before ``FRESH_S`` is stale: a new one is asked for, and without
    a worker to answer, none comes (503, saying why, within the bounded wait)."""
    monkeypatch.setattr(pictures, "FRESH_S", 0.0)
    monkeypatch.setattr(pictures, "WAIT_S", 0.4)
    board.report([_status("gate")])
    board.demand.hold("a wall", {"gate": Want(640, 2.0)})
    board.picture(Preview("gate", 3, time.time(), 640, 360, _jpeg()))
    board.demand.release("a wall")
    t0 = time.monotonic()
    r = client.get(URL.format("gate"), headers=AUTH)
    took = time.monotonic() - t0
    assert r.status_code == 503
    assert "no picture of gate came within 0.4 s" in r.json()["detail"]
    assert 0.35 < took < 2.0
    assert board.wanted() == {}


def test_unknown_cameras_are_404_and_reported_ones_are_known(
    client: TestClient, board: LiveBoard
) -> None:
    r = client.get(URL.format("nowhere"), headers=AUTH)
    assert r.status_code == 404 and r.json()["detail"] == "no such camera"
    # a camera no config names but a worker reports (admins see every camera)
    board.report([_status("roaming-7")])
    board.demand.hold("a wall", {"roaming-7": Want(640, 2.0)})
    board.picture(Preview("roaming-7", 1, time.time(), 640, 360, _jpeg()))
    assert client.get(URL.format("roaming-7"), headers=AUTH).status_code == 200


def test_no_frame_size_yet_is_a_503_that_says_so(client: TestClient, board: LiveBoard) -> None:
    board.report([_status("gate", frame_size=None)])
    board.demand.hold("a wall", {"gate": Want(640, 2.0)})
    board.picture(Preview("gate", 3, time.time(), 640, 360, _jpeg()))
    r = client.get(URL.format("gate"), headers=AUTH)
    assert r.status_code == 503
    assert r.json()["detail"] == "the worker of gate has not reported its frame size"


def test_a_service_without_workers_says_it_has_no_pictures(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.db")
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups={"gate": ["north"]}),
    )
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.get(URL.format("gate"), headers=AUTH)
        assert r.status_code == 503 and "no worker reports" in r.json()["detail"]
        assert c.get(URL.format("bad id!"), headers=AUTH).status_code == 422
    store.close()
