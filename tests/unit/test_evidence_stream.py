"""The evidence stream's clock tie, its states, and which stream a clip is cut from (the
real RTSP camera is in ``tests/integration/test_evidence_stream.py``)."""

from __future__ import annotations

import random
import threading
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from argus.runner import Runner
from ingest.evidence_stream import EvidenceStream, WallTie
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
    frame = 0.04  # 25 fps: steps of 0.01 s; three frames (0.12 s) or more re-tie at once
    ev._tie_to_camera(5.0, tie, frame)
    assert ev.stats().tie_s == pytest.approx(100.0)  # camera time = raw + 100
    assert ring.anchors[-1] == pytest.approx((5.0, 105.0))
    ev.offsets["camera"] = 99.9  # type: ignore[attr-defined]  # drifted by 0.1 s
    for _ in range(5):
        ev._tie_to_camera(5.0, tie, frame)
    assert ev.stats().tie_s == pytest.approx(100.05)  # 5 steps of 0.01 s, not one jump
    for _ in range(20):
        ev._tie_to_camera(5.0, tie, frame)
    assert ev.stats().tie_s == pytest.approx(100.1)  # there, and no further
    ev.offsets["camera"] = 99.9 - 0.5  # the analysed stream reconnected: half a second
    ev._tie_to_camera(5.0, tie, frame)
    assert ev.stats().tie_s == pytest.approx(100.6)  # at once: the ring splits there
    ev.offsets["camera"] = None  # the analysed stream has no frame: nothing is tied
    n = len(ring.anchors)
    ev._tie_to_camera(5.0, tie, frame)
    assert len(ring.anchors) == n


class Ring(Anchors):
    """Stands for the evidence ring: records every call, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def open_segment(self, stream: Any) -> None:
        self.calls.append(("open", None))

    def add(self, packet: Any) -> None:
        self.calls.append(("add", packet.pts))

    def anchor(self, raw_s: float, pts_s: float) -> None:
        super().anchor(raw_s, pts_s)
        self.calls.append(("anchor", raw_s))

    def end_segment(self, reason: str) -> None:
        super().end_segment(reason)
        self.calls.append(("end", reason))


def fake_stream() -> Any:
    codec = SimpleNamespace(name="h264", width=1920, height=1080, extradata=None, pix_fmt=None)
    rate = Fraction(25)
    return SimpleNamespace(
        codec_context=codec, time_base=Fraction(1, 1000), average_rate=rate, guessed_rate=rate
    )


def test_a_clock_that_steps_back_starts_a_new_segment_before_the_packet_and_ties_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Packets at 25 fps arriving as they are made; after 2 s the camera's stream clock
    restarts at 5 s.  The jumped packet goes into a new segment, and the new clock is tied
    to the camera clock again (wall time runs on: camera time runs on)."""
    from ingest import evidence_stream as es

    clock = {"now": 1000.0}
    monkeypatch.setattr(es.time, "time", lambda: clock["now"])
    ring = Ring()
    ev = stream(ring, camera_offset=900.0)  # camera time = wall - 900
    raws = [50.0 + i * 0.04 for i in range(50)] + [5.0 + i * 0.04 for i in range(50)]

    def packets() -> Any:
        for raw in raws:
            clock["now"] += 0.04
            yield SimpleNamespace(size=100, pts=round(raw * 1000), dts=None)

    container = SimpleNamespace(demux=lambda s: packets())
    ev._read(cast(Any, container), fake_stream(), es.Tied())
    jumped = [i for i, (what, arg) in enumerate(ring.calls) if what == "add" and arg == 5000]
    assert jumped and ring.calls[jumped[0] - 2 : jumped[0]] == [
        ("end", "the evidence stream's clock jumped back"),
        ("open", None),
    ]
    # tied before and after: camera time of a packet = its arrival - 900
    before = [a for a in ring.anchors if a[0] >= 50.0]
    after = [a for a in ring.anchors if a[0] < 50.0]
    assert before and after
    for raw, pts in before + after:
        k = min(range(len(raws)), key=lambda j: abs(raws[j] - raw))
        arrived = 1000.0 + 0.04 * (1 + k)
        assert pts == pytest.approx(arrived - 900.0, abs=1e-6)


def test_reconnects_are_counted_and_back_off_unless_the_connection_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = Anchors()
    ev = stream(ring)
    attempts: list[int] = []
    ev._backoff = lambda attempt, rng: attempts.append(attempt) or 0.0  # type: ignore[assignment]
    # never connected, a good connection (tied 60 s), two that dropped at once
    results = iter([0.0, 60.0, 0.5, 0.0])

    def connection() -> float:
        value = next(results, None)
        if value is None:
            ev._stop.set()
            return 0.0
        return value

    monkeypatch.setattr(ev, "_connection", connection)
    ev._run()
    assert attempts[:4] == [0, 0, 1, 2]  # the good one starts the back-off over
    assert ev.stats().reconnects == 4 and ring.ended[-1] == "the camera stopped"


def test_why_not_says_what_the_stream_did() -> None:
    ev = stream(Anchors())
    assert ev.why_not() == "the evidence stream has not connected"
    ev._fail("the camera refused the credentials (401 Unauthorized)")
    assert ev.why_not() == (
        "the evidence stream has not connected: the camera refused the credentials "
        "(401 Unauthorized)"
    )
    ev._phase = "tying"
    assert ev.why_not() == "the evidence stream is not yet tied to the camera's clock"
    ev._fail("read timed out (no data)")  # lost after it had connected
    assert ev.why_not() == "the evidence stream stopped: read timed out (no data)"


def test_a_failure_never_names_the_url() -> None:
    from ingest.evidence_stream import _failure

    text = _failure(ConnectionRefusedError(111, "Connection refused", "rtsp://admin:pw@10.0.0.5/m"))
    assert "10.0.0.5" not in text and "pw" not in text and "Connection refused" in text


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
    main = SimpleNamespace(usable=True, keep_s=16.0, oldest_s=lambda: 3.0)
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
    assert clips.asked[-1]["fallback"] is analysed  # should it stop inside the window
    # reconnected since the event began (at 12 s): the start is in the analysed ring only
    main.oldest_s = lambda: 13.0
    assert runner._clip(cam, cast(Any, event)) is not None
    assert clips.asked[-1]["ring"] is analysed and clips.asked[-1]["stream"] == "analysed"
    assert "holds no video of the event's start" in clips.asked[-1]["stream_note"]
    main.oldest_s = lambda: 3.0
    # the main stream is down: the analysed stream's clip, saying why
    evidence.streaming = False
    evidence.why_not = lambda: "the evidence stream stopped: read timed out (no data)"
    assert runner._clip(cam, cast(Any, event)) is not None
    asked = clips.asked[-1]
    assert asked["ring"] is analysed and asked["stream"] == "analysed"
    assert asked["stream_note"] == (
        "the evidence stream stopped: read timed out (no data): the clip is of the analysed stream"
    )


def test_the_analysed_streams_arrivals_start_again_when_its_clock_steps_back() -> None:
    from ingest import LiveSource

    source = LiveSource("cam", "rtsp://127.0.0.1:9/sub", kind="rtsp")
    source.note_arrival(100.0, 1000.00)
    source.note_arrival(100.04, 1000.04)
    assert source.arrivals.offset() == pytest.approx(900.0)
    source.note_arrival(5.0, 1000.08)  # the camera restarted its clock
    assert source.arrivals.offset() == pytest.approx(995.08)  # not the old clock's 900
    source.note_arrival(5.04, 1000.12)
    assert source.arrivals.offset() == pytest.approx(995.08)
