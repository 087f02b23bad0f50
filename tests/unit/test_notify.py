"""The service notifications (sd_notify) and the runner's watchdog, on sockets the test owns.

No systemd runs here: each test binds an ``AF_UNIX`` datagram socket and reads what the
code sends to it, as the service manager would.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from argus.notify import (
    Mark,
    Notifier,
    ProgressClock,
    Watchdog,
    socket_address,
    watchdog_interval_s,
)
from argus.runner import CameraRuntime, Runner
from argus.slots import FrameSlot
from detectors.detections import Detections
from ingest import SourceState
from ingest.frame import Frame
from selector.camera import CameraSelector
from selector.tracker import ByteTracker

pytestmark = pytest.mark.unit


class Listener:
    """A notify socket the test owns: every datagram received, with its monotonic time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.got.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in list(self.got)]

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, m in list(self.got) if "WATCHDOG=1" in m.split("\n") and t >= since]

    def wait_for(self, text: str, timeout_s: float = 5.0) -> float:
        """Monotonic time the first message holding ``text`` arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, m in list(self.got):
                if text in m:
                    return t
            time.sleep(0.02)
        raise AssertionError(f"no message with {text!r} in {timeout_s} s: {self.messages()}")

    def close(self) -> None:
        self._done.set()
        self._thread.join(1.0)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener(f"\0argus-test-{uuid.uuid4().hex}")  # abstract: no path length limit
    yield lst
    lst.close()


def notifier_for(lst: Listener, watchdog_s: float | None = None) -> Notifier:
    return Notifier(lst.address, watchdog_s=watchdog_s)


# ------------------------------------------------------------------ the protocol


def test_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@argus/notify") == "\0argus/notify"
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None
    assert socket_address("relative/path") is None


def test_watchdog_interval_honours_watchdog_pid() -> None:
    assert watchdog_interval_s({}, 10) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}, 10) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "10"}, 10) == 2.0
    # another process's watchdog (the variables were inherited): not ours to ping
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "11"}, 10) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}, 10) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}, 10) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "x"}, 10) is None


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled and n.watchdog_s is None
    assert not n.ready("x") and not n.ping() and not n.stopping()


def test_from_env_reads_socket_and_watchdog(listener: Listener) -> None:
    raw = "@" + listener.address[1:]
    env = {"NOTIFY_SOCKET": raw, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    n = Notifier.from_env(env)
    assert n.enabled and n.watchdog_s == 4.0
    assert n.ready("cameras: 2 streaming")
    listener.wait_for("READY=1")
    assert listener.messages() == ["READY=1\nSTATUS=cameras: 2 streaming"]


def test_messages_reach_a_path_socket() -> None:
    with tempfile.TemporaryDirectory(prefix="nt", dir="/tmp") as d:  # short: sun_path limit
        lst = Listener(str(Path(d) / "notify"))
        try:
            n = Notifier.from_env({"NOTIFY_SOCKET": lst.address})
            assert n.ready() and n.ping() and n.status("two\nlines") and n.stopping("bye")
            lst.wait_for("STOPPING=1")
            assert lst.messages() == ["READY=1", "WATCHDOG=1", "STATUS=two lines", _stopping("bye")]
        finally:
            lst.close()


def _stopping(status: str) -> str:
    return f"STOPPING=1\nSTATUS={status}"


def test_a_socket_that_went_away_is_reported_not_raised(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "gone"), watchdog_s=1.0)
    assert n.enabled
    assert not n.ping()
    assert not n.ping()  # logged once, never raised


# ------------------------------------------------------------------ progress


def test_progress_clock_stalls_a_part_whose_mark_stays_put() -> None:
    clock = ProgressClock()
    assert clock.observe({"a": Mark(1), "b": Mark(1)}, 0.0, 2.0) == []
    assert clock.observe({"a": Mark(2), "b": Mark(1)}, 1.5, 2.0) == []
    stalls = clock.observe({"a": Mark(3), "b": Mark(1, what="streaming")}, 2.5, 2.0)
    assert [(s.part, s.silent_s, s.what) for s in stalls] == [("b", 2.5, "streaming")]
    assert str(stalls[0]) == "b (streaming): no progress for 2.5 s"


def test_progress_clock_patience_and_forgetting() -> None:
    clock = ProgressClock()
    clock.observe({"down": Mark("x", patience_s=10.0)}, 0.0, 2.0)
    assert clock.observe({"down": Mark("x", patience_s=10.0)}, 9.0, 2.0) == []
    assert [s.part for s in clock.observe({"down": Mark("x", 10.0)}, 10.5, 2.0)] == ["down"]
    # a part that left is forgotten: back later, it starts afresh
    clock.observe({}, 11.0, 2.0)
    assert clock.observe({"down": Mark("x")}, 12.0, 2.0) == []
    assert clock.observe({"down": Mark("x")}, 13.0, 2.0) == []


def test_watchdog_pings_only_while_marks_move(listener: Listener) -> None:
    counter = {"n": 0}
    wd = Watchdog(
        notifier_for(listener, watchdog_s=1000.0),  # the thread never checks in this test
        lambda: {"loop": Mark(counter["n"])},
        lambda: f"{counter['n']} passes",
    )
    wd.start()
    t0 = time.monotonic()
    for i in range(1, 4):
        counter["n"] = i
        assert wd.check(t0 + i * 400.0) == []
    assert wd.pings == 3
    stalls = wd.check(t0 + 3 * 400.0 + 1001.0)  # no move for longer than the interval
    assert [s.part for s in stalls] == ["loop"] and wd.pings == 3
    counter["n"] = 4
    assert wd.check(t0 + 3 * 400.0 + 1002.0) == [] and wd.pings == 4  # resumed
    wd.stopping()
    counter["n"] = 5
    wd.check(t0 + 5000.0)
    assert wd.pings == 4  # no ping once stopping
    wd.close()
    listener.wait_for("STOPPING=1")
    msgs = listener.messages()
    assert msgs[0] == "READY=1\nSTATUS=0 passes"
    assert "STATUS=stalled: loop: no progress for 1001.0 s" in msgs
    assert msgs.count("WATCHDOG=1") == 1 + 4  # one at READY, then one per good check
    assert msgs[-1] == _stopping("stopping")


# ------------------------------------------------------------------ the runner

W, H = 64, 48


class ControlledSource:
    """A live source the test steers: streams frames (20 fps) until ``hang`` is set, then
    blocks as a read that never returns would (no frame, no reconnect attempt)."""

    def __init__(self, camera_id: str, *, stream: bool = True) -> None:
        self.camera_id = camera_id
        self.live = True
        self.finite = False
        self.state = SourceState.CONNECTING
        self.hang = threading.Event()
        self.counters = SimpleNamespace(
            frames_decoded=0, frames_thinned=0, reconnects=0, decode_errors=0
        )
        self._stream = stream
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        if self.state == SourceState.CONNECTING:
            self.state = SourceState.STREAMING
        i = 0
        while not self._closed.is_set():
            if self.hang.is_set() or not self._stream:
                self._closed.wait(0.05)
                continue
            self.counters.frames_decoded += 1
            yield Frame(self.camera_id, i, i / 20.0, time.time(), np.zeros((H, W, 3), np.uint8))
            i += 1
            self._closed.wait(0.05)
        self.state = SourceState.ENDED

    def close(self) -> None:
        self._closed.set()

    def stats(self) -> Any:
        return SimpleNamespace(**vars(self.counters))


class Detector:
    """Finds nothing; blocks in inference while ``stuck`` is set (until released)."""

    def __init__(self) -> None:
        self.stuck = threading.Event()
        self.release = threading.Event()

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        if self.stuck.is_set():
            self.release.wait(30.0)
        return [Detections.empty() for _ in images]


def runner_with(
    tmp_path: Path, sources: list[ControlledSource], detect: Detector, notifier: Notifier
) -> Runner:
    ready = threading.Condition()
    cams = [
        CameraRuntime(
            camera_id=s.camera_id,
            source=s,
            selector=CameraSelector(s.camera_id, ByteTracker(frame_rate=20.0), []),
            slot=FrameSlot(1, "drop_oldest", ready),
        )
        for s in sources
    ]
    return Runner(
        cams,
        detect,
        InProcessBus(),
        LocalEvidenceStore(tmp_path / "ev"),
        ready=ready,
        notifier=notifier,
    )


WATCHDOG_S = 0.8
"""The watchdog interval of the runner tests (checks every 0.4 s)."""


def assert_regular_pings(lst: Listener, since: float, until: float) -> None:
    pings = [t for t in lst.pings(since) if t <= until]
    assert len(pings) >= 3, f"pings stopped: {lst.messages()[-6:]}"
    gaps = [b - a for a, b in zip([since, *pings], [*pings, until], strict=True)]
    assert max(gaps) < WATCHDOG_S * 1.5, f"a gap of {max(gaps):.2f} s: {lst.messages()[-6:]}"


def wait_until_stalled(lst: Listener, part: str) -> float:
    t = lst.wait_for(f"stalled: {part}", timeout_s=5 * WATCHDOG_S)
    time.sleep(3 * WATCHDOG_S)
    assert lst.pings(t) == [], "pings went on while the pipeline hung"
    return t


def test_runner_pings_while_frames_flow_and_stops_when_a_decoder_hangs(
    tmp_path: Path, listener: Listener
) -> None:
    """A camera reconnecting (nothing for longer than the interval) and a quiet camera that
    only skips frames keep the pings going; a decoder stuck in a read stops them."""
    cam = ControlledSource("a")
    down = ControlledSource("down", stream=False)
    down.state = SourceState.RECONNECTING  # its back-off waits are longer than the interval
    quiet = ControlledSource("quiet", stream=False)
    quiet.state = SourceState.STREAMING  # but decoding sparsely: skipped frames counted
    skipping = threading.Event()

    def skip() -> None:
        while not skipping.wait(0.1):
            quiet.counters.frames_thinned += 2

    threading.Thread(target=skip, daemon=True).start()
    runner = runner_with(
        tmp_path, [cam, down, quiet], Detector(), notifier_for(listener, WATCHDOG_S)
    )
    t = threading.Thread(target=runner.run)
    t.start()
    try:
        ready = listener.wait_for("READY=1")
        time.sleep(4 * WATCHDOG_S)
        assert_regular_pings(listener, ready, time.monotonic())
        cam.hang.set()
        wait_until_stalled(listener, "camera a (streaming)")
        assert t.is_alive()
        status = [m for m in listener.messages() if m.startswith("STATUS=stalled")]
        assert "down" not in status[-1] and "quiet" not in status[-1]
    finally:
        skipping.set()
        runner.stop()
        t.join(10)
    assert not t.is_alive()
    assert listener.messages()[0].startswith("READY=1\nSTATUS=cameras: ")
    assert _stopping("stopping") in listener.messages()


def test_a_stuck_detector_stops_the_pings(tmp_path: Path, listener: Listener) -> None:
    detect = Detector()
    runner = runner_with(
        tmp_path, [ControlledSource("a")], detect, notifier_for(listener, WATCHDOG_S)
    )
    t = threading.Thread(target=runner.run)
    t.start()
    try:
        ready = listener.wait_for("READY=1")
        time.sleep(3 * WATCHDOG_S)
        assert_regular_pings(listener, ready, time.monotonic())
        detect.stuck.set()
        wait_until_stalled(listener, "detector loop")
        # the camera itself kept decoding (its newest frame waits in the slot)
        status = [m for m in listener.messages() if m.startswith("STATUS=stalled")]
        assert "camera a" not in status[-1]
    finally:
        detect.release.set()
        runner.stop()
        t.join(10)
    assert not t.is_alive()


def test_a_quiet_camera_is_not_hung_but_a_silent_one_is(tmp_path: Path) -> None:
    """The counterfactual of the first test, without threads: the same camera with nothing
    skipped, or no longer reconnecting, stalls."""
    src = ControlledSource("c", stream=False)
    src.state = SourceState.STREAMING
    runner = runner_with(tmp_path, [src], Detector(), Notifier(None))
    clock = ProgressClock()
    marks = runner.progress_marks
    assert clock.observe(marks(), 0.0, 2.0) == []
    src.counters.frames_thinned += 1
    assert clock.observe(marks(), 1.9, 2.0) == []
    runner._passes += 1  # the detector loop moved; the camera did not
    assert clock.observe(marks(), 3.0, 2.0) == []
    runner._passes += 1
    assert [s.part for s in clock.observe(marks(), 4.0, 2.0)] == ["camera c"]
    src.state = SourceState.RECONNECTING  # a state change is a sign of life ...
    runner._passes += 1
    assert clock.observe(marks(), 4.1, 2.0) == []
    runner._passes += 1
    assert clock.observe(marks(), 600.0, 2.0) == []  # ... and back-off waits are long
    src.state = SourceState.ENDED
    assert set(marks()) == {"detector loop"}  # an ended camera is the loop's to finish


def test_runner_without_notify_socket_starts_no_watchdog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    src = ControlledSource("a")
    ready = threading.Condition()
    cam = CameraRuntime(
        camera_id="a",
        source=src,
        selector=CameraSelector("a", ByteTracker(frame_rate=20.0), []),
        slot=FrameSlot(1, "drop_oldest", ready),
    )
    runner = Runner([cam], Detector(), InProcessBus(), LocalEvidenceStore(tmp_path), ready=ready)
    assert not runner.watchdog.notifier.enabled
    t = threading.Thread(target=runner.run)
    t.start()
    time.sleep(0.3)
    runner.stop()
    t.join(10)
    assert not t.is_alive() and runner.watchdog.pings == 0
