"""The service watchdog end to end: a real ``argus run`` (real model, real footage) under a
notify socket the test owns, as systemd would give it (systemd itself does not run here).

One camera plays the footage from a FIFO the test writes; a second camera points at a port
nobody listens on and keeps reconnecting.  While the test feeds the FIFO, ``WATCHDOG=1``
pings must keep coming (never a gap longer than the watchdog interval), although the
reconnecting camera waits longer than that between attempts.  Then the test stops writing
without closing: the camera's decoder blocks in a read, with no frame and no reconnect
attempt, a hung pipeline, and the pings must stop while the process stays alive.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import pytest

from deploy.localstack import free_port
from tests.e2e.conftest import (
    ARGUS,
    VTEST,
    env_for,
    issue_config,
    make_home,
    require_prerequisites,
    write_config,
)
from tests.unit.test_notify import Listener

pytestmark = pytest.mark.e2e

WATCHDOG_S = 2.0
"""``WATCHDOG_USEC`` given to the process (systemd's ``WatchdogSec``), seconds."""
FEED_S = 10.0
"""How long the test feeds the FIFO after READY=1, seconds."""


def footage_ts(path: Path, frames: int = 300) -> Path:
    """The first ``frames`` frames of vtest.avi as H.264 in MPEG-TS (a streamable format:
    a FIFO cannot seek), a keyframe every second."""
    cap = cv2.VideoCapture(str(VTEST))
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"g": "10", "preset": "ultrafast", "tune": "zerolatency"}
        for _ in range(frames):
            ok, img = cap.read()
            assert ok
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cap.release()
    return path


class NotifySocket(Listener):
    """The socket a service manager would own (the unit tests' ``Listener``), read the way
    this test needs: arrival times bounded on both sides, and an ``argus`` that exits early
    failing at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    def first(
        self, field: str, timeout_s: float, proc: subprocess.Popen[str] | None = None
    ) -> float:
        """Arrival time of the first message with ``field``; fails early if ``proc`` exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, m in list(self.got):
                if field in m.split("\n"):
                    return t
            if proc is not None:
                assert proc.poll() is None, f"argus exited ({proc.returncode}) before {field}"
            time.sleep(0.05)
        raise AssertionError(f"no {field} in {timeout_s} s: {self.texts()[-5:]}")

    def pings(self, since: float = 0.0, until: float = math.inf) -> list[float]:
        return [t for t in super().pings(since) if t < until]

    def texts(self) -> list[str]:
        return self.messages()


class Feeder:
    """Writes a file into a FIFO (blocking when the reader lags, as a camera's network
    would) until told to stop; the write end stays open until ``close``."""

    def __init__(self, fifo: Path, data: Path) -> None:
        self.fd = os.open(fifo, os.O_RDWR)  # a writer at once, whether argus opened it or not
        self.stop = threading.Event()
        self._data = data
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        with self._data.open("rb") as f:
            while not self.stop.is_set() and (chunk := f.read(4096)):
                os.write(self.fd, chunk)

    def close(self) -> None:
        self.stop.set()
        os.close(self.fd)  # EOF for the reader


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path (an AF_UNIX socket path is at most 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="argus-wd-", dir="/tmp") as d:
        yield Path(d)


def test_watchdog_pings_while_frames_progress_and_stop_when_the_pipeline_hangs(
    short_tmp: Path,
) -> None:
    require_prerequisites()
    tmp = short_tmp
    home = make_home(tmp)
    fifo = tmp / "plaza.fifo"
    os.mkfifo(fifo)
    data = issue_config(tmp, source=str(fifo), realtime=True)
    # nobody listens there: refused at once, then back-off waits longer than the interval
    data["cameras"].append(
        {
            "id": "gate",
            "source": f"rtsp://127.0.0.1:{free_port()}/stream",
            "reconnect": {"initial_s": 3.0, "max_s": 5.0},
        }
    )
    cfg = write_config(tmp, data)
    ts = footage_ts(tmp / "plaza.ts")
    notify = NotifySocket(tmp / "notify")
    env = env_for(home) | {
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": str(int(WATCHDOG_S * 1_000_000)),
    }
    log = tmp / "argus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*ARGUS, "run", str(cfg)], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    feeder = Feeder(fifo, ts)
    try:
        ready = notify.first("READY=1", 120.0, proc)

        # fed: the pings never leave a gap longer than the watchdog interval
        time.sleep(FEED_S)
        fed_until = time.monotonic()
        pings = notify.pings(ready, fed_until)
        gaps = [b - a for a, b in zip([ready, *pings], [*pings, fed_until], strict=True)]
        assert len(pings) >= FEED_S / WATCHDOG_S, notify.texts()[-5:]
        assert max(gaps) < WATCHDOG_S, f"a gap of {max(gaps):.1f} s between pings"
        analysed = [
            int(m.group(1))
            for text in notify.texts()
            if (m := re.search(r"STATUS=cameras: .*; (\d+) frames analysed", text))
        ]
        assert analysed and analysed[-1] > 30, notify.texts()[-3:]
        # ... while the other camera was down, waiting longer than that between attempts
        waits = [
            float(w)
            for w in re.findall(r"camera gate: reconnecting .* in ([\d.]+) s", log.read_text())
        ]
        assert any(w > WATCHDOG_S for w in waits), log.read_text()[-2000:]
        assert any("reconnecting" in t for t in notify.texts())

        # hung: the decoder blocks in a read of the FIFO, no frame, no reconnect attempt
        feeder.stop.set()
        hung = time.monotonic()
        time.sleep(3 * WATCHDOG_S + 3.0)  # buffered video, the interval, one more check
        end = time.monotonic()
        assert proc.poll() is None, "the process must stay alive (systemd restarts it)"
        assert notify.pings(hung, hung + 1.5), "pings went on until the buffers ran dry"
        assert notify.pings(end - 2 * WATCHDOG_S, end) == [], "pings went on while it hung"
        stalled = [t for t in notify.texts() if t.startswith("STATUS=stalled")]
        assert stalled and "camera plaza (streaming)" in stalled[-1], notify.texts()[-3:]
        assert "gate" not in stalled[-1]

        # a graceful stop is announced
        proc.send_signal(signal.SIGTERM)
        notify.first("STOPPING=1", 10.0)
    finally:
        feeder.close()  # EOF: the blocked read returns
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        notify.close()
    assert "pipeline not progressing (camera plaza" in log.read_text()
