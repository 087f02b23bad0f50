"""The evidence stream's clock tie, its states, and which stream a clip is cut from (the
real RTSP camera is in ``tests/integration/test_evidence_stream.py``)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from argus.runner import Runner
from ingest.evidence_stream import JUMP_S, EvidenceStream, WallTie
from ingest.packets import PacketRing
from tests.unit.test_runner import ScriptedSource, camera

pytestmark = pytest.mark.unit


class Anchors:
    """Stands for the evidence ring: records what it is told."""

    def __init__(self) -> None:
        self.anchors: list[tuple[float, float]] = []
        self.ended: list[str] = []

    def anchor(self, raw_s: float, pts_s: float) -> None:
        self.anchors.append((raw_s, pts_s))

    def end_segment(self, reason: str) -> None:
        self.ended.append(reason)


def stream(
    ring: Any, camera_offset: float | None = 100.0, url: str = "rtsp://u:pw@127.0.0.1:1/x"
) -> EvidenceStream:
    offsets = {"camera": camera_offset}
    ev = EvidenceStream(
        "cam",
        url,
        cast(PacketRing, ring),
        camera_offset=lambda: offsets["camera"],
        options={"rtsp_transport": "tcp"},
        backoff=lambda attempt, rng: 0.01,
        open_timeout_s=1.0,
        read_timeout_s=1.0,
    )
    ev.offsets = offsets  # type: ignore[attr-defined]
    return ev


def test_wall_tie_keeps_the_smallest_delay_of_its_window() -> None:
    tie = WallTie(window_s=10.0)
    assert tie.offset() is None
    tie.observe(0.0, 1000.30)  # wall - t: 1000.30
    tie.observe(1.0, 1001.05)  # 1000.05: the soonest arrival so far
    tie.observe(2.0, 1002.40)  # a late one (a burst) does not move it
    assert tie.offset() == pytest.approx(1000.05)
    tie.observe(12.0, 1012.20)  # 1000.20; the 1000.05 of t=1 is now out of the window
    assert tie.offset() == pytest.approx(1000.20)
    tie.reset()
    assert tie.offset() is None
    with pytest.raises(ValueError):
        WallTie(window_s=0)


def test_the_tie_moves_by_small_steps_and_jumps_only_past_a_second() -> None:
    ring = Anchors()
    ev = stream(ring, camera_offset=100.0)
    tie = WallTie()
    tie.observe(5.0, 205.0)  # evidence: wall - raw = 200; camera: wall - pts = 100
    ev._tie_to_camera(5.0, tie, 0.01)
    assert ev.stats().tie_s == pytest.approx(100.0)  # camera time = raw + 100
    assert ring.anchors[-1] == pytest.approx((5.0, 105.0))
    ev.offsets["camera"] = 99.9  # type: ignore[attr-defined]  # drifted by 0.1 s
    for _ in range(5):
        ev._tie_to_camera(5.0, tie, 0.01)
    assert ev.stats().tie_s == pytest.approx(100.05)  # 5 steps of 0.01 s, not one jump
    for _ in range(20):
        ev._tie_to_camera(5.0, tie, 0.01)
    assert ev.stats().tie_s == pytest.approx(100.1)  # there, and no further
    ev.offsets["camera"] = 99.9 - JUMP_S - 0.5  # the camera's clock jumped
    ev._tie_to_camera(5.0, tie, 0.01)
    assert ev.stats().tie_s == pytest.approx(100.1 + JUMP_S + 0.5)
    ev.offsets["camera"] = None  # the analysed stream has no frame: nothing is tied
    n = len(ring.anchors)
    ev._tie_to_camera(5.0, tie, 0.01)
    assert len(ring.anchors) == n


def test_a_stream_that_cannot_connect_retries_says_why_and_stops_when_closed() -> None:
    ring = Anchors()
    ev = stream(ring, url="rtsp://admin:Pw-0f-cam@127.0.0.1:9/main")  # nothing listens
    assert not ev.streaming and ev.why_not() == "the evidence stream has not connected"
    ev.start()
    deadline = time.monotonic() + 10.0
    while ev.stats().reconnects < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = ev.stats()
    assert stats.reconnects >= 2 and not stats.streaming and stats.packets == 0
    assert stats.last_error and "Pw-0f-cam" not in stats.last_error
    assert stats.source == "rtsp://admin:***@127.0.0.1:9/main"
    assert ev.why_not().startswith("the evidence stream has not connected: ")
    ev.close(timeout_s=5.0)
    assert ev._thread is not None and not ev._thread.is_alive()
    assert ring.ended[-1] == "the camera stopped"
    assert ev.why_not() == "the evidence stream is closed"
    ev.start()  # closed: nothing starts again
    assert ev._thread is not None and not ev._thread.is_alive()


class Clips:
    """Stands for the clip maker: records each request."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def request(self, ring: Any, **kw: Any) -> None:
        self.asked.append({"ring": ring, **kw})


def test_a_clip_comes_from_the_evidence_stream_while_it_streams(tmp_path: Path) -> None:
    ready = threading.Condition()
    cam = camera("cam", ScriptedSource("cam", 1), ready)
    analysed = SimpleNamespace(usable=True, keep_s=16.0)
    main = SimpleNamespace(usable=True, keep_s=16.0)
    evidence = SimpleNamespace(streaming=True, ring=main, why_not=lambda: "")
    cam.packets = cast(PacketRing, analysed)
    cam.evidence = cast(EvidenceStream, evidence)
    clips = Clips()
    runner = Runner(
        [cam],
        lambda images: [],
        InProcessBus(),
        LocalEvidenceStore(tmp_path / "ev"),
        ready=ready,
        clips=cast(Any, clips),
    )
    event = SimpleNamespace(
        wall_time=1.7e9, event_id=f"e{random.randrange(10**6)}", start_s=12.0, priority=50
    )
    assert runner._clip(cam, cast(Any, event)) is not None
    assert clips.asked[-1]["ring"] is main and clips.asked[-1]["stream"] == "evidence"
    assert clips.asked[-1]["stream_note"] is None
    # the main stream is down: the analysed stream's clip, saying why
    evidence.streaming = False
    evidence.why_not = lambda: "the evidence stream stopped: read timed out (no data)"
    assert runner._clip(cam, cast(Any, event)) is not None
    asked = clips.asked[-1]
    assert asked["ring"] is analysed and asked["stream"] == "analysed"
    assert asked["stream_note"] == (
        "the evidence stream stopped: read timed out (no data): the clip is of the analysed stream"
    )
