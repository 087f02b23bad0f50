"""Live ingest against real servers on localhost: RTSP (GStreamer) and MJPEG over HTTP.

Each test kills its server mid-stream, checks the source goes RECONNECTING without yielding
anything, restarts the server on the same port and checks frames resume with ``seq`` and
``pts_s`` still increasing.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from deploy.localstack import free_port
from ingest import Frame, LiveSource, ReconnectPolicy, SourceState

REPO = Path(__file__).resolve().parents[2]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
RTSP_SERVER = REPO / "deploy" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
GST_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi"
)

pytestmark = pytest.mark.integration


def _wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Consumer:
    """Iterates a source in a thread, keeping frames and the state changes."""

    def __init__(self, make: Callable[[Callable[[str, SourceState, str], None]], LiveSource]):
        self.frames: list[Frame] = []
        self.states: list[SourceState] = []
        self.error: BaseException | None = None
        self.source = make(lambda cam, state, detail: self.states.append(state))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for f in self.source.frames():
                self.frames.append(f)
        except BaseException as e:  # surfaced by the test
            self.error = e

    def count(self) -> int:
        return len(self.frames)

    def stop(self, within_s: float) -> float:
        t0 = time.monotonic()
        self.source.close()
        self.thread.join(within_s)
        assert not self.thread.is_alive(), f"frames() still running {within_s} s after close()"
        assert self.error is None, self.error
        return time.monotonic() - t0


def _check_kill_and_resume(
    c: Consumer, kill: Callable[[], None], restart: Callable[[], None], n_before: int, n_after: int
) -> None:
    _wait_for(lambda: c.count() >= n_before, 30, f"{n_before} frames")
    assert c.source.state is SourceState.STREAMING
    kill()
    _wait_for(lambda: c.source.stats().state is SourceState.RECONNECTING, 15, "RECONNECTING")
    n_dead = c.count()
    time.sleep(1.5)  # the camera is down: nothing may come out
    assert c.count() == n_dead, "a dead camera yielded frames"
    assert c.source.stats().state is SourceState.RECONNECTING
    restart()
    _wait_for(lambda: c.count() >= n_dead + n_after, 30, "frames after the restart")
    assert c.source.stats().state is SourceState.STREAMING
    seqs = [f.seq for f in c.frames]
    assert seqs == list(range(len(seqs)))
    pts = np.array([f.pts_s for f in c.frames])
    assert np.all(np.diff(pts) > 0), "pts_s not strictly increasing across the reconnect"
    walls = np.array([f.wall_time for f in c.frames])
    assert walls[n_dead] - walls[n_dead - 1] >= 1.5  # the outage shows in wall time
    assert c.states[:2] == [SourceState.STREAMING, SourceState.RECONNECTING]
    assert c.states[-1] is SourceState.STREAMING
    assert c.source.stats().reconnects >= 1


# ------------------------------------------------------------------------ RTSP
def _gst_missing() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "missing=[e for e in ('x264enc','rtph264pay','decodebin','avidemux') "
        "if Gst.ElementFactory.find(e) is None]; print(','.join(missing))"
    )
    try:
        out = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30, check=True
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        return f"GStreamer RTSP server not importable ({e})"
    if out.stdout.strip():
        return f"GStreamer elements missing: {out.stdout.strip()}"
    return None


class RtspServer:
    def __init__(self, port: int, path: str = "/cam", *extra: str) -> None:
        """``extra``: more ``deploy/rtsp_server.py`` options (e.g. a sub-stream)."""
        self.port, self.path, self.extra = port, path, extra
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        for _ in range(20):  # the port may linger briefly after a kill
            proc = subprocess.Popen(
                [
                    SYSTEM_PYTHON,
                    str(RTSP_SERVER),
                    "--file",
                    str(VTEST),
                    "--port",
                    str(self.port),
                    "--path",
                    self.path,
                    "--loop",
                    *self.extra,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.startswith("READY"):
                self.proc = proc
                return
            proc.wait(5)
            time.sleep(0.25)
        raise AssertionError(f"RTSP server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def rtsp_server() -> Iterator[RtspServer]:
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(
            f"{reason}; install with: apt-get install -y --no-install-recommends {GST_PACKAGES}"
        )
    if not VTEST.exists():
        pytest.skip(f"footage {VTEST} not found (Debian package opencv-doc)")
    server = RtspServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_rtsp_stream_kill_and_reconnect(rtsp_server: RtspServer) -> None:
    url = f"rtsp://viewer:s3cret@127.0.0.1:{rtsp_server.port}{rtsp_server.path}"
    c = Consumer(
        lambda on_state: LiveSource(
            "gate",
            url,
            kind="rtsp",
            on_state=on_state,
            open_timeout_s=10,
            read_timeout_s=2,
            reconnect=ReconnectPolicy(initial_s=0.2, max_s=1.0),
            seed=0,
        )
    )
    _check_kill_and_resume(c, rtsp_server.kill, rtsp_server.start, n_before=15, n_after=15)
    first = c.frames[0]
    assert first.image.shape == (576, 768, 3)
    st = c.source.stats()
    assert st.first_frame_latency_s is not None and st.first_frame_latency_s < 10
    assert "s3cret" not in st.source and "s3cret" not in (st.last_error or "")
    # ~10 fps at the source: frames are spaced in pts by ~0.1 s
    assert np.median(np.diff([f.pts_s for f in c.frames[:15]])) == pytest.approx(0.1, abs=0.02)
    c.stop(within_s=3)
    assert c.source.state is SourceState.ENDED


def test_rtsp_silent_server_keeps_retrying_and_closes_promptly() -> None:
    # A socket that accepts connections (kernel backlog) but never says anything.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)
        port = black_hole.getsockname()[1]
        c = Consumer(
            lambda on_state: LiveSource(
                "void",
                f"rtsp://admin:pw@127.0.0.1:{port}/s",
                kind="rtsp",
                on_state=on_state,
                open_timeout_s=0.5,
                read_timeout_s=0.5,
                reconnect=ReconnectPolicy(initial_s=0.1, max_s=0.3),
                seed=0,
            )
        )
        _wait_for(lambda: c.source.stats().reconnects >= 3, 10, "3 reconnect attempts")
        st = c.source.stats()
        assert st.state is SourceState.RECONNECTING and st.frames_decoded == 0 and c.frames == []
        assert st.last_error and "pw@" not in st.last_error
        elapsed = c.stop(within_s=2)
        assert elapsed < 1.5
        assert c.states == [SourceState.RECONNECTING, SourceState.ENDED]


# ------------------------------------------------------------------ MJPEG/HTTP
class MjpegServer:
    """multipart/x-mixed-replace JPEG stream of real footage at ~10 fps (like an IP camera)."""

    def __init__(self, port: int, jpegs: list[bytes]) -> None:
        self.port, self.jpegs = port, jpegs
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self.stop_event = threading.Event()

    def start(self) -> None:
        jpegs, stop = self.jpegs, threading.Event()
        self.stop_event = stop

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not stop.is_set():
                        jpg = jpegs[i % len(jpegs)]
                        i += 1
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: %d\r\n\r\n%s\r\n" % (len(jpg), jpg)
                        )
                        stop.wait(0.1)
                except OSError:
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.httpd = httpd

    def kill(self) -> None:
        if self.httpd is not None:
            self.stop_event.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    if not VTEST.exists():
        pytest.skip(f"footage {VTEST} not found (Debian package opencv-doc)")
    cap = cv2.VideoCapture(str(VTEST))
    jpegs = []
    for _ in range(20):
        ok, img = cap.read()
        assert ok
        jpegs.append(cv2.imencode(".jpg", img)[1].tobytes())
    cap.release()
    server = MjpegServer(free_port(), jpegs)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_http_mjpeg_kill_and_reconnect(mjpeg_server: MjpegServer) -> None:
    url = f"http://127.0.0.1:{mjpeg_server.port}/video.mjpg?user=cam&password=topsecret"
    c = Consumer(
        lambda on_state: LiveSource(
            "lobby",
            url,
            kind="http",
            on_state=on_state,
            open_timeout_s=5,
            read_timeout_s=1,
            reconnect=ReconnectPolicy(initial_s=0.2, max_s=0.5),
            seed=0,
        )
    )
    _check_kill_and_resume(c, mjpeg_server.kill, mjpeg_server.start, n_before=10, n_after=10)
    assert c.frames[0].image.shape == (576, 768, 3)
    # MJPEG has no clock: pts_s follows arrival time, ~0.1 s apart
    assert np.median(np.diff([f.pts_s for f in c.frames[:10]])) == pytest.approx(0.1, abs=0.03)
    st = c.source.stats()
    assert "topsecret" not in st.source and st.source.endswith("password=***")
    c.stop(within_s=2)
