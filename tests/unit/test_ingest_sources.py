"""Unit tests of ingest: file sources on synthetic videos, URL redaction, back-off, routing."""

from __future__ import annotations

import math
import random
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from ingest import (
    FileSource,
    LiveSource,
    ReconnectPolicy,
    Source,
    SourceNotFoundError,
    SourceOpenError,
    SourceState,
    SourceUnavailableError,
    SourceUsageError,
    classify_source,
    open_source,
    redact_text,
    redact_url,
)
from ingest.frame import Frame
from tests.factories import write_clip

N_FRAMES = 20
FPS = 10


def _value(i: int) -> int:
    return (i * 40) % 256


def write_video(path: Path, n: int = N_FRAMES, fps: int = FPS, w: int = 64, h: int = 48) -> Path:
    """Write an mp4 (mpeg4 codec) whose frame i is uniformly grey (i * 40) % 256."""
    frames = (np.full((h, w, 3), _value(i), dtype=np.uint8) for i in range(n))
    return write_clip(path, frames, fps=fps, options={"qscale": "2"})


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "grey.mp4")


def _collect(src: Source) -> list[Frame]:
    return list(src.frames())


# ------------------------------------------------------------------ file source
@pytest.mark.unit
def test_file_fast_yields_every_frame_in_order(video: Path) -> None:
    states: list[SourceState] = []
    src = FileSource("cam1", video, realtime=False, on_state=lambda c, s, d: states.append(s))
    assert isinstance(src, Source)
    assert not src.live and src.finite
    frames = _collect(src)
    assert [f.seq for f in frames] == list(range(N_FRAMES))
    np.testing.assert_allclose([f.pts_s for f in frames], np.arange(N_FRAMES) / FPS, atol=1e-6)
    for i, f in enumerate(frames):
        assert f.camera_id == "cam1"
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert abs(float(f.image.mean()) - _value(i)) < 8, (i, float(f.image.mean()))
    assert states == [SourceState.STREAMING, SourceState.ENDED]
    st = src.stats()
    assert st.frames_decoded == N_FRAMES and st.state is SourceState.ENDED
    assert (st.width, st.height) == (64, 48) and st.fps > 0
    assert st.to_dict()["state"] == "ended"


@pytest.mark.unit
def test_file_realtime_paces_by_pts(video: Path) -> None:
    src = FileSource("cam1", video, realtime=True)
    assert src.live
    t0 = time.monotonic()
    arrivals: list[float] = []
    frames: list[Frame] = []
    for f in src.frames():
        arrivals.append(time.monotonic() - t0)
        frames.append(f)
    assert [f.seq for f in frames] == list(range(N_FRAMES))
    walls = np.array([f.wall_time for f in frames])
    np.testing.assert_allclose(np.diff(walls), 0.1, atol=1e-3)  # scheduled show times
    gaps = np.diff(arrivals)
    assert np.median(gaps) == pytest.approx(0.1, abs=0.03)
    assert arrivals[-1] - arrivals[0] > 1.5  # not delivered in a burst
    assert abs(frames[0].wall_time - time.time()) < 60


@pytest.mark.unit
def test_file_loop_keeps_seq_and_pts_monotonic(video: Path) -> None:
    src = FileSource("cam1", video, realtime=False, loop=True)
    assert not src.finite
    frames: list[Frame] = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 2 * N_FRAMES + 5:
            src.close()
    assert len(frames) == 2 * N_FRAMES + 5
    assert [f.seq for f in frames] == list(range(len(frames)))
    pts = np.array([f.pts_s for f in frames])
    assert np.all(np.diff(pts) > 0)
    assert pts[N_FRAMES] == pytest.approx(pts[N_FRAMES - 1] + 1 / FPS)
    # the second pass shows the first picture again
    assert abs(float(frames[N_FRAMES].image.mean()) - _value(0)) < 8
    assert src.stats().reconnects >= 2
    assert src.state is SourceState.ENDED


@pytest.mark.unit
def test_file_start_s_staggers_the_first_pass_and_max_frames_ends_it(video: Path) -> None:
    src = FileSource("cam1", video, realtime=False, loop=True, start_s=1.5, max_frames=N_FRAMES)
    assert src.finite  # a frame budget ends even a looping file
    frames = _collect(src)
    assert len(frames) == N_FRAMES
    assert [f.seq for f in frames] == list(range(N_FRAMES))
    # first pass from 1.5 s (file frame 15), then the loop starts at file frame 0
    assert frames[0].pts_s == pytest.approx(1.5)
    assert abs(float(frames[0].image.mean()) - _value(15)) < 8
    assert abs(float(frames[5].image.mean()) - _value(0)) < 8
    assert frames[5].pts_s == pytest.approx(2.0)
    assert src.state is SourceState.ENDED
    for bad in ({"start_s": -1.0}, {"start_s": math.inf}, {"max_frames": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FileSource("cam1", video, realtime=False, **bad)  # type: ignore[arg-type]


@pytest.mark.unit
def test_file_missing_raises_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    states: list[SourceState] = []
    src = FileSource("c", missing, realtime=False, on_state=lambda c, s, d: states.append(s))
    with pytest.raises(SourceNotFoundError, match=r"nope\.mp4") as ei:
        _collect(src)
    assert ei.value.path == str(missing)
    assert states == [SourceState.FAILED]
    assert src.stats().last_error is not None


@pytest.mark.unit
def test_file_garbage_raises_open_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(random.Random(0).randbytes(20_000))
    with pytest.raises(SourceOpenError, match=r"junk\.mp4") as ei:
        _collect(FileSource("c", junk, realtime=False))
    assert ei.value.reason
    assert isinstance(ei.value.__cause__, av.error.FFmpegError)


@pytest.mark.unit
def test_file_without_video_stream_raises_open_error(tmp_path: Path) -> None:
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        samples = np.zeros((1, 800), np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(SourceOpenError, match="no video stream"):
        _collect(FileSource("c", path, realtime=False))


@pytest.mark.unit
def test_file_corrupt_middle_keeps_going(tmp_path: Path) -> None:
    path = write_video(tmp_path / "long.mp4", n=60)
    data = bytearray(path.read_bytes())
    rng = random.Random(1)
    mid = len(data) // 2
    for k in range(mid, mid + 400):
        data[k] = rng.randrange(256)
    path.write_bytes(bytes(data))
    src = FileSource("c", path, realtime=False)
    frames = _collect(src)  # must not raise
    assert 20 <= len(frames) <= 60
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert np.all(np.diff([f.pts_s for f in frames]) > 0)
    assert src.state is SourceState.ENDED
    st = src.stats()  # this corruption (fixed seed) hits several mpeg4 packets
    assert st.decode_errors >= 1 and len(frames) + st.decode_errors <= 60
    assert st.last_error is not None and "bad packet" in st.last_error


@pytest.mark.unit
def test_close_from_other_thread_stops_realtime_promptly(tmp_path: Path) -> None:
    path = write_video(tmp_path / "slow.mp4", n=50, fps=2)  # 25 s long
    src = FileSource("c", path, realtime=True)
    got: list[Frame] = []
    done = threading.Event()

    def consume() -> None:
        got.extend(src.frames())
        done.set()

    th = threading.Thread(target=consume)
    th.start()
    time.sleep(0.8)  # first frame at once, the second is due at 0.5 s, the third at 1.0 s
    t_close = time.monotonic()
    src.close()
    assert done.wait(1.0), "frames() did not return after close()"
    assert time.monotonic() - t_close < 0.5
    th.join(1.0)
    assert 1 <= len(got) <= 3
    assert src.state is SourceState.ENDED


@pytest.mark.unit
def test_frames_twice_is_an_error(video: Path) -> None:
    src = FileSource("c", video, realtime=False)
    _collect(src)
    with pytest.raises(SourceUsageError):
        _collect(src)


@pytest.mark.unit
def test_close_before_start_yields_nothing(video: Path) -> None:
    states: list[SourceState] = []
    src = FileSource("c", video, realtime=False, on_state=lambda c, s, d: states.append(s))
    src.close()
    assert _collect(src) == []
    assert states == [SourceState.ENDED]


# ------------------------------------------------------------------- redaction
@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rtsp://admin:hunter2@10.0.0.5:554/Streaming/101",
            "rtsp://admin:***@10.0.0.5:554/Streaming/101",
        ),
        ("rtsps://u:p%40ss@cam.local/s", "rtsps://u:***@cam.local/s"),
        ("rtsp://admin:p@ss@10.0.0.5/x", "rtsp://admin:***@10.0.0.5/x"),
        ("http://user:secret@cam/video.mjpg", "http://user:***@cam/video.mjpg"),
        (
            "https://cam/live.m3u8?user=a&password=b&x=1",
            "https://cam/live.m3u8?user=a&password=***&x=1",
        ),
        ("http://cam/snap?token=abc123", "http://cam/snap?token=***"),
        ("rtsp://10.0.0.5:554/stream", "rtsp://10.0.0.5:554/stream"),
        ("/data/videos/a@b.mp4", "/data/videos/a@b.mp4"),
        # Shaped exactly like rtsp://user:pa/ss@host/s (a raw password with '/'):
        # over-redacting a rare '@' in a path beats leaking a password.
        ("http://host:8080/a@b", "http://host:***@b"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.unit
def test_redact_text_in_error_message() -> None:
    msg = "[Errno 111] Connection refused: 'rtsp://admin:hunter2@10.0.0.5/s'"
    out = redact_text(msg)
    assert "hunter2" not in out and "rtsp://admin:***@10.0.0.5/s" in out


# -------------------------------------------------------------------- back-off
@pytest.mark.unit
def test_reconnect_policy_backoff_and_jitter() -> None:
    p = ReconnectPolicy(initial_s=0.5, max_s=30, multiplier=2)
    assert [p.delay_s(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    rng = random.Random(3)
    delays = [p.delay_s(2, rng) for _ in range(200)]
    assert min(delays) >= 2 * 0.8 and max(delays) <= 2 * 1.2
    assert len(set(delays)) > 100  # actually jittered
    with pytest.raises(ValueError, match="initial_s"):
        ReconnectPolicy(initial_s=0)
    with pytest.raises(ValueError, match="max_s"):
        ReconnectPolicy(initial_s=5, max_s=1)


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.unit
def test_live_refused_gives_up_after_max_attempts() -> None:
    port = _refused_port()
    states: list[tuple[SourceState, str]] = []
    src = LiveSource(
        "door",
        f"rtsp://admin:hunter2@127.0.0.1:{port}/s",
        kind="rtsp",
        reconnect=ReconnectPolicy(initial_s=0.05, max_s=0.1, max_attempts=3),
        open_timeout_s=2,
        on_state=lambda c, s, d: states.append((s, d)),
        seed=0,
    )
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as ei:
        _collect(src)
    assert time.monotonic() - t0 < 5
    assert ei.value.attempts == 4
    assert "hunter2" not in str(ei.value) and "admin:***@" in str(ei.value)
    assert [s for s, _ in states] == [SourceState.RECONNECTING, SourceState.FAILED]
    assert all("hunter2" not in d for _, d in states)
    st = src.stats()
    assert st.frames_decoded == 0 and st.reconnects == 3 and st.state is SourceState.FAILED
    assert st.last_error is not None and "hunter2" not in st.last_error
    assert "hunter2" not in st.source


@pytest.mark.unit
def test_live_close_during_backoff_is_prompt() -> None:
    port = _refused_port()
    src = LiveSource(
        "door",
        f"http://127.0.0.1:{port}/x",
        kind="http",
        reconnect=ReconnectPolicy(initial_s=10, max_s=10),
        seed=0,
    )
    got: list[Frame] = []
    th = threading.Thread(target=lambda: got.extend(src.frames()))
    th.start()
    deadline = time.monotonic() + 5
    while src.stats().state is not SourceState.RECONNECTING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.stats().state is SourceState.RECONNECTING
    t0 = time.monotonic()
    src.close()
    th.join(2)
    assert not th.is_alive() and time.monotonic() - t0 < 1
    assert got == [] and src.state is SourceState.ENDED


@pytest.mark.unit
def test_missing_device_is_a_clear_error() -> None:
    src = open_source("usb", "device:97")
    with pytest.raises(SourceNotFoundError, match="/dev/video97"):
        _collect(src)


# --------------------------------------------------------------------- routing
@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "kind", "target"),
    [
        ("rtsp://a:b@h/s", "rtsp", "rtsp://a:b@h/s"),
        ("RTSPS://h/s", "rtsp", "RTSPS://h/s"),
        ("http://h/v.mjpg", "http", "http://h/v.mjpg"),
        ("https://h/l.m3u8", "http", "https://h/l.m3u8"),
        ("/dev/video0", "device", "/dev/video0"),
        ("device:2", "device", "/dev/video2"),
        ("rtmp://h/app", "stream", "rtmp://h/app"),
        ("file:///tmp/a.mp4", "file", "/tmp/a.mp4"),
        ("videos/a.mp4", "file", "videos/a.mp4"),
    ],
)
def test_classify_source(source: str, kind: str, target: str) -> None:
    assert classify_source(source) == (kind, target)


@pytest.mark.unit
def test_open_source_builds_the_right_class(video: Path) -> None:
    f = open_source("a", str(video), realtime=True, loop=True)
    assert isinstance(f, FileSource) and f.live and not f.finite
    r = open_source("b", "rtsp://u:pw@h/s", reconnect=ReconnectPolicy(max_attempts=1))
    assert isinstance(r, LiveSource) and r.live and not r.finite
    assert r.stats().source == "rtsp://u:***@h/s"
    assert r.state is SourceState.CONNECTING


@pytest.mark.unit
def test_live_timeline_continues_across_reconnects_and_missing_pts() -> None:
    from ingest.live_source import _Timeline

    tl = _Timeline()
    tl.new_connection(10.0)
    # RTSP: the first frame has no pts, the next ones do (90 kHz clock, arbitrary origin)
    outs = [tl.map(None, 100.0), tl.map(5.0, 100.1), tl.map(5.1, 100.2), tl.map(5.2, 100.3)]
    np.testing.assert_allclose(outs, [0.0, 0.1, 0.2, 0.3], atol=1e-9)
    # Reconnect after an outage: the new stream clock restarts anywhere, and the ~100 s
    # that passed (last frame at mono 100.3, next at 200.0) show as video time.
    tl.new_connection(10.0)
    outs += [tl.map(1000.0, 200.0), tl.map(1000.1, 200.1)]
    tl.map(3.0, 200.2)  # camera clock jumps backwards: continue one interval on
    outs.append(tl.last or 0.0)
    np.testing.assert_allclose(outs[4:], [100.0, 100.1, 100.2], atol=1e-9)
    tl.new_connection(None)  # no clock at all (MJPEG): arrival time
    outs += [tl.map(None, 300.0), tl.map(None, 300.25)]
    np.testing.assert_allclose(outs[7:], [200.0, 200.25], atol=1e-9)
    assert np.all(np.diff(outs) > 0)
    # A reconnect faster than one frame still moves on by at least one interval.
    tl.new_connection(4.0)
    assert tl.map(7.0, 300.26) == pytest.approx(200.5)


@pytest.mark.unit
def test_live_timeline_take_back_maps_the_replayed_frames_as_before() -> None:
    """A look-back takes the last frame back; the frames before it, replayed, map onto
    the same axis (no backwards-jump re-anchoring), then the frame itself again."""
    from ingest.live_source import _Timeline

    tl = _Timeline()
    tl.new_connection(10.0)
    assert [tl.map(50.0, 1.0), tl.map(52.0, 3.0)] == pytest.approx([0.0, 2.0])
    tl.take_back()
    replayed = [tl.map(50.0 + i / 10, 3.0) for i in range(1, 21)]
    assert replayed == pytest.approx([i / 10 for i in range(1, 21)])
    tl.take_back()
    tl.take_back()  # only the last map can be taken back: a second call does nothing
    assert tl.map(52.1, 3.1) == pytest.approx(2.1)
