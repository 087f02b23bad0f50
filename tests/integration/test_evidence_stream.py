"""A camera analysed on its sub-stream, its clips cut from its main stream, on a real RTSP
camera (GStreamer, ``deploy/rtsp_server.py``): both streams show the same moment, as a
camera's do, and the server sends each new client a burst of older frames first.

What must hold: the clip has the main stream's size, and its pictures line up with the
analysed pictures of the same camera time (the two clocks are tied through wall time);
wrong credentials on the evidence stream are said as such, never logged; a source that
closes takes its evidence stream with it.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from alerts.clips import decode
from ingest import LiveSource
from ingest.packets import ClipPackets, PacketRing
from tests.integration import test_site_probe
from tests.integration.test_site_probe import PASSWORD, USER, Camera

pytestmark = pytest.mark.integration

camera = test_site_probe.camera
"""The probe tests' camera: 1280x720 main stream at /main, 384x288 sub-stream at /sub (one
picture), 10 fps, a keyframe every 10 frames, basic auth."""

THUMB = (96, 72)
FPS = 10


def thumb(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def best_lag(
    clip: list[tuple[float, npt.NDArray[np.float32]]],
    analysed: list[tuple[float, npt.NDArray[np.float32]]],
) -> tuple[int, list[float]]:
    """The shift, in frames, that best matches the clip's pictures to the analysed ones of
    the same camera time (0: aligned), and the mean difference at each shift -5..5."""
    times = np.array([t for t, _ in analysed])
    errors = []
    for lag in range(-5, 6):
        diffs = []
        for t, picture in clip:
            i = int(np.argmin(np.abs(times - (t + lag / FPS))))
            if abs(times[i] - (t + lag / FPS)) < 0.5 / FPS:
                diffs.append(float(np.abs(analysed[i][1] - picture).mean()))
        errors.append(float(np.mean(diffs)) if diffs else float("inf"))
    return int(np.argmin(errors)) - 5, errors


def test_clip_from_the_main_stream_lines_up_with_the_analysed_sub_stream(
    camera: Camera,
) -> None:
    source = LiveSource("cam", camera.url("/sub", USER, PASSWORD), kind="rtsp")
    ring = PacketRing("cam", keep_s=30.0, max_bytes=64 * 2**20)
    evidence = source.attach_evidence(camera.url("/main", USER, PASSWORD), "rtsp", ring)
    analysed: list[tuple[float, npt.NDArray[np.float32]]] = []
    deadline = time.monotonic() + 9.0
    frames = source.frames()  # held: a generator dropped is closed, its evidence stream too
    for frame in frames:
        assert frame.image.shape[:2] == (288, 384)
        analysed.append((frame.pts_s, thumb(frame.image)))
        if time.monotonic() > deadline:
            break
    assert evidence.streaming, evidence.why_not()
    tie = evidence.stats().tie_s
    assert tie is not None
    end = analysed[-1][0] - 1.0
    oldest = ring.oldest_s()
    assert oldest is not None and oldest <= end - 4.0  # the ring holds the window's start
    got: list[ClipPackets | None] = []
    ring.request(end - 4.0, end, got.append)
    source.close()
    frames.close()
    assert len(got) == 1 and got[0] is not None
    clip = got[0]
    assert (clip.info.width, clip.info.height, clip.info.codec) == (1280, 720, "h264")
    assert clip.packets[0].keyframe and clip.ended is None
    pictures = [(t, thumb(image)) for t, image in decode(clip) if end - 4.0 <= t < end]
    assert len(pictures) >= 35  # ~40 frames of 4 s at 10 fps
    lag, errors = best_lag(pictures, analysed)
    assert lag == 0, (lag, errors)
    # where the minimum lies between frames (a parabola through the three around it)
    before, at, after = errors[4:7]
    shift_s = (before - after) / (2 * (before - 2 * at + after)) / FPS
    print(f"tie {tie:.3f} s; clip off by {shift_s * 1000:+.0f} ms; by shift: {np.round(errors, 2)}")
    assert errors[5] < 0.6 * min(errors[4], errors[6])  # a clear minimum, not a flat curve
    # the evidence stream ends with its camera
    evidence_thread = evidence._thread
    assert evidence_thread is not None
    evidence_thread.join(6.0)
    assert not evidence_thread.is_alive() and not evidence.streaming


def test_wrong_credentials_on_the_evidence_stream_are_said_and_never_logged(
    camera: Camera, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-" + PASSWORD
    source = LiveSource("cam", camera.url("/sub", USER, PASSWORD), kind="rtsp")
    ring = PacketRing("cam", keep_s=10.0, max_bytes=8 * 2**20)
    evidence = source.attach_evidence(camera.url("/main", USER, wrong), "rtsp", ring)
    caplog.set_level(logging.DEBUG)
    deadline = time.monotonic() + 4.0
    count = 0
    frames = source.frames()
    for _ in frames:  # the analysed stream runs on
        count += 1
        if time.monotonic() > deadline:
            break
    why = evidence.why_not()
    source.close()
    frames.close()
    assert count > 0
    stats = evidence.stats()
    assert not stats.streaming and stats.packets == 0
    assert stats.last_error == "the camera refused the credentials (401 Unauthorized)"
    assert why.startswith("the evidence stream has not connected: the camera refused the cred")
    assert wrong not in caplog.text and PASSWORD not in caplog.text
    assert wrong not in repr(stats) and "***" in stats.source
