"""``argus cameras probe`` against a real RTSP camera (GStreamer, ``deploy/rtsp_server.py``)
serving the real footage, with the real default model: a main and a sub-stream behind
basic auth, a camera whose keyframes are 30 s apart, a silent socket, a web page.

No timing is asserted (shared machines); the figures must be the camera's own (its
size, 10 fps, a keyframe every 10 frames) and the password must appear nowhere.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from deploy.localstack import free_port
from ingest.probe import ProbeError, probe_stream
from tests.e2e.conftest import ARGUS, env_for, make_home, require_prerequisites

# the RTSP camera's prerequisites, checked as the live-ingest tests check them
from tests.integration.test_ingest_live import (
    GST_PACKAGES,
    RTSP_SERVER,
    SYSTEM_PYTHON,
    VTEST,
    _gst_missing,
)

pytestmark = pytest.mark.integration

USER, PASSWORD = "installer", "Zq9-s3cr3t"


class Camera:
    """``deploy/rtsp_server.py`` on a free port, with the given extra options."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(RTSP_SERVER),
                "--file",
                str(VTEST),
                "--port",
                str(self.port),
                "--loop",
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise AssertionError(f"RTSP camera did not start: {line!r}")

    def url(self, path: str, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture(scope="module")
def camera() -> Iterator[Camera]:
    """1280x720 main stream at /main, 384x288 sub-stream at /sub, keyframe every 10
    frames (1 s at 10 fps), basic auth."""
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(f"{reason}; apt-get install -y --no-install-recommends {GST_PACKAGES}")
    require_prerequisites()
    cam = Camera(
        "--path", "/main", "--width", "1280", "--height", "720", "--sub-path", "/sub",
        "--keyint", "10", "--user", USER, "--password", PASSWORD,
    )  # fmt: skip
    try:
        yield cam
    finally:
        cam.stop()


def _argus(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARGUS, "--log-level", "DEBUG", "cameras", "probe", *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_main_and_sub_stream_measured_recommended_and_benched(
    camera: Camera, tmp_path: Path
) -> None:
    home = make_home(tmp_path)
    main = camera.url("/main", USER, PASSWORD)
    sub = camera.url("/sub", USER, PASSWORD)
    proc = _argus(home, main, "--sub", sub, "--json", "--seconds", "3", "--bench-seconds", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert PASSWORD not in proc.stdout + proc.stderr  # nor in any DEBUG log line
    doc = json.loads(proc.stdout)
    streams = doc["streams"]
    assert (streams["main"]["width"], streams["main"]["height"]) == (1280, 720)
    assert (streams["sub"]["width"], streams["sub"]["height"]) == (384, 288)
    for s in streams.values():
        assert s["codec"] == "h264"
        assert s["fps"] == pytest.approx(10.0, abs=0.5)
        assert s["keyframe_interval_frames"] == pytest.approx(10.0, abs=0.5)
        assert s["keyframe_interval_s"] == pytest.approx(1.0, abs=0.1)
        assert s["window_s"] >= 3.0
        assert s["url"].startswith(f"rtsp://{USER}:***@127.0.0.1")
    # x264 at 512 kbit/s for the sub-stream, its default 2048 for the main one
    assert 0 < streams["sub"]["bitrate_kbps"] < streams["main"]["bitrate_kbps"]
    rec = doc["recommendation"]
    assert (rec["analysis"], rec["evidence"]) == ("sub", "main")
    assert "/sub" in rec["config"].split("# analysis")[0]
    cap = doc["capacity"]
    assert doc["capacity_error"] is None and cap is not None
    assert cap["model"] == "nanodet-g" and cap["analysis_fps"] == pytest.approx(10, abs=0.5)
    assert cap["decode_fps"] > 0 and cap["inference_fps"] > 0
    ceiling = 1 / (1 / cap["decode_fps"] + 1 / cap["inference_fps"])
    assert cap["ceiling_fps"] == pytest.approx(ceiling, rel=0.01)
    assert cap["cameras"] == int(cap["ceiling_fps"] / cap["analysis_fps"] + 1e-6)


def test_streams_given_the_other_way_round_as_a_table(camera: Camera, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    sub = camera.url("/sub", USER, PASSWORD)
    main = camera.url("/main", USER, PASSWORD)
    proc = _argus(home, sub, main, "--seconds", "1.5", "--no-bench")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "384x288" in out and "1280x720" in out and "10 frames = 1.00 s" in out
    assert "the second stream (1280x720) is the larger: analyse the first" in out
    assert PASSWORD not in out + proc.stderr


def test_wrong_password_is_said_as_such_and_never_printed(camera: Camera, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    wrong = "Wr0ng-pa55"
    proc = _argus(home, camera.url("/main", USER, wrong), "--json", "--no-bench")
    assert proc.returncode == 3
    assert "the camera refused the credentials" in proc.stderr
    assert json.loads(proc.stdout)["error"]["problem"] == "credentials"
    assert wrong not in proc.stdout + proc.stderr
    # and with none at all
    proc = _argus(home, camera.url("/main"), "--no-bench")
    assert proc.returncode == 3 and "asks for credentials" in proc.stderr


def test_a_camera_without_a_keyframe_in_the_window(tmp_path: Path) -> None:
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(reason)
    require_prerequisites()
    # keyframes 30 s apart, and the camera ignores requests for one when a client joins
    cam = Camera("--path", "/cam", "--keyint", "300", "--ignore-keyframe-requests")
    stop = threading.Event()
    streaming = threading.Event()

    def viewer() -> None:  # another client keeps the stream running past its keyframe
        with av.open(cam.url("/cam"), options={"rtsp_transport": "tcp"}, timeout=10) as c:
            for packet in c.demux(c.streams.video[0]):
                t = packet.pts * packet.time_base if packet.pts and packet.time_base else 0
                if t >= 1.5:  # 1.5 s in: the stream's first keyframe is long gone
                    streaming.set()
                if stop.is_set():
                    return

    t = threading.Thread(target=viewer, daemon=True)
    t.start()
    try:
        assert streaming.wait(20), "the viewer got no video"
        with pytest.raises(ProbeError) as ei:
            probe_stream(cam.url("/cam"), seconds=2.0, timeout_s=5.0)
        assert ei.value.problem == "no_keyframe"
        assert "no keyframe in 2 s: set the camera's I-frame interval (GOP) to ≤ 2 s" in str(
            ei.value
        )
    finally:
        stop.set()
        t.join(10)
        cam.stop()


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/silent":  # answers, then never sends a frame
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3)
            return
        body = b"<html><body>camera login</body></html>" * 20
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_no_video_not_a_stream_and_silence_are_told_apart() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        with pytest.raises(ProbeError) as ei:  # a web page is not a stream
            probe_stream(f"http://admin:{PASSWORD}@127.0.0.1:{port}/", seconds=1, timeout_s=2)
        assert ei.value.problem == "not_a_stream" and PASSWORD not in str(ei.value)
        with pytest.raises(ProbeError) as ei:  # answers, sends no video: bounded by the timeout
            probe_stream(f"http://127.0.0.1:{port}/silent", seconds=1, timeout_s=1)
        assert ei.value.problem == "no_video"
        assert "answered but sent no video in 1 s" in str(ei.value)
    finally:
        httpd.shutdown()
    with socket.socket() as black_hole:  # accepts (the kernel's backlog), never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(4)
        url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{black_hole.getsockname()[1]}/s"
        with pytest.raises(ProbeError) as ei:
            probe_stream(url, seconds=1, timeout_s=1)
        assert ei.value.problem in ("no_video", "not_a_stream")
        assert PASSWORD not in str(ei.value)
