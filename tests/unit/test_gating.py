"""MotionGate: when the detector runs (motion, hold, tracks, heartbeat), and on real footage."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from detectors.gating import MotionGate

FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def run(gate: MotionGate, motions: list[float], fps: float, tracks: bool = False) -> list[bool]:
    return [gate.decide(m, k / fps, tracks) for k, m in enumerate(motions)]


@pytest.mark.unit
def test_quiet_scene_runs_first_frame_then_on_the_heartbeat() -> None:
    gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=2.0)
    runs = run(gate, [0.0] * 100, fps=10.0)  # 10 s
    assert [k for k, r in enumerate(runs) if r] == list(range(0, 100, 10))
    assert gate.frames_seen == 100 and gate.frames_detected == 10
    assert gate.detector_fraction == pytest.approx(0.1)


@pytest.mark.unit
def test_motion_runs_and_hold_keeps_running_after_it() -> None:
    gate = MotionGate(min_motion=0.01, heartbeat_s=10.0, hold_s=2.0)
    motions = [0.0] * 10 + [0.05] * 10 + [0.0] * 50  # motion from 1.0 s to 1.9 s
    runs = run(gate, motions, fps=10.0)
    assert runs[0]  # first frame
    assert not any(runs[1:10])  # quiet, heartbeat far
    assert all(runs[10:20])  # moving
    assert all(runs[20:40])  # hold: last motion at 1.9 s, held through 3.9 s
    assert not any(runs[40:])  # hold over, heartbeat (10 s) not due yet


@pytest.mark.unit
def test_motion_just_below_threshold_does_not_run() -> None:
    gate = MotionGate(min_motion=0.01, heartbeat_s=5.0, hold_s=0.0)
    assert run(gate, [0.0, 0.0099, 0.01, 0.0099], fps=10.0) == [True, False, True, False]


@pytest.mark.unit
def test_live_tracks_run_every_frame() -> None:
    gate = MotionGate(min_motion=0.5, heartbeat_s=10.0, hold_s=0.0)
    assert all(run(gate, [0.0] * 30, fps=10.0, tracks=True))
    assert gate.detector_fraction == 1.0


@pytest.mark.unit
@pytest.mark.parametrize("fps", [5.0, 10.0, 30.0])
def test_timing_is_in_seconds_whatever_the_frame_rate(fps: float) -> None:
    gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=1.0)
    n = int(10 * fps)  # 10 s
    runs = run(gate, [0.0] * n, fps)
    assert sum(runs) == 10  # one per second
    # motion at 5 s: frames within 1 s after it run (hold)
    gate = MotionGate(min_motion=0.01, heartbeat_s=100.0, hold_s=1.0)
    motions = [0.1 if k == int(5 * fps) else 0.0 for k in range(n)]
    times = [k / fps for k, r in enumerate(run(gate, motions, fps)) if r]
    assert times[0] == 0.0
    assert times[1] == pytest.approx(5.0)
    assert times[-1] == pytest.approx(6.0)


@pytest.mark.unit
def test_an_object_appearing_without_motion_is_seen_within_one_heartbeat() -> None:
    """The documented latency bound: the next run is at most heartbeat_s away."""
    fps, heartbeat = 25.0, 1.0
    gate = MotionGate(min_motion=0.01, heartbeat_s=heartbeat, hold_s=0.0)
    runs = run(gate, [0.0] * 500, fps)  # 20 s, never any motion
    run_times = [k / fps for k, r in enumerate(runs) if r]
    gaps = np.diff(run_times)
    assert gaps.max() <= heartbeat + 1.0 / fps + 1e-9
    for appear_k in range(500 - int(2 * fps)):  # whenever it appears...
        t = appear_k / fps
        seen = min(rt for rt in run_times if rt >= t)
        assert seen - t <= heartbeat + 1e-9


@pytest.mark.unit
def test_nan_motion_runs_and_time_going_back_restarts() -> None:
    gate = MotionGate(min_motion=0.01, heartbeat_s=5.0, hold_s=0.0)
    assert gate.decide(0.0, 0.0, False)
    assert not gate.decide(0.0, 0.1, False)
    assert gate.decide(math.nan, 0.2, False)
    assert gate.decide(0.0, 0.05, False)  # stream restarted: look at once
    assert not gate.decide(0.0, 0.15, False)


@pytest.mark.unit
def test_detector_fraction_before_any_frame_is_zero() -> None:
    assert MotionGate().detector_fraction == 0.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_motion": -0.1}, "min_motion"),
        ({"min_motion": 1.5}, "min_motion"),
        ({"min_motion": math.nan}, "min_motion"),
        ({"heartbeat_s": 0.0}, "heartbeat_s"),
        ({"heartbeat_s": math.inf}, "heartbeat_s"),
        ({"hold_s": -1.0}, "hold_s"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MotionGate(**kwargs)


@pytest.mark.unit
def test_bad_inputs_are_refused() -> None:
    gate = MotionGate()
    with pytest.raises(ValueError, match="t_s"):
        gate.decide(0.0, math.inf, False)
    with pytest.raises(ValueError, match="motion"):
        gate.decide(1.5, 0.0, False)
    assert gate.frames_seen == 0


# --------------------------------------------------------------------------- real footage


@pytest.mark.integration
def test_real_footage_busy_plaza_runs_often_still_picture_rarely() -> None:
    """On vtest (people walking all the time) nearly every frame runs; on a still
    picture of the same plaza (its median, with sensor noise) only the heartbeat."""
    cv2 = pytest.importorskip("cv2")
    if not FOOTAGE.exists():
        pytest.skip(f"footage not installed: {FOOTAGE}")
    from detectors.scene import SceneAnalyzer

    cap = cv2.VideoCapture(str(FOOTAGE))
    frames = []
    try:
        for _ in range(200):
            ok, img = cap.read()
            assert ok, "could not decode vtest.avi"
            frames.append(img)
    finally:
        cap.release()
    busy_gate, scene = MotionGate(), SceneAnalyzer()
    for k, img in enumerate(frames):
        busy_gate.decide(scene.analyze(img, k / 10.0).motion, k / 10.0, has_tracks=False)
    assert busy_gate.detector_fraction > 0.95

    still = np.median(np.stack(frames[::10]), axis=0).astype(np.int16)
    rng = np.random.default_rng(0)
    noise = [rng.normal(0.0, 2.0, still.shape).astype(np.int16) for _ in range(7)]
    quiet_gate, scene = MotionGate(), SceneAnalyzer()
    for k in range(100):
        noisy = np.clip(still + noise[k % 7], 0, 255).astype(np.uint8)
        quiet_gate.decide(scene.analyze(noisy, k / 10.0).motion, k / 10.0, has_tracks=False)
    assert quiet_gate.frames_detected == 10  # 10 s at one heartbeat per second


def test_certain_says_whether_decide_runs_whatever_the_tracks() -> None:
    """``certain`` (the runner's test for gating a frame before the camera's previous frame
    has been through the tracker) agrees with ``decide`` and changes nothing."""
    rng = np.random.default_rng(3)
    gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=0.5)
    t, certain_runs = 0.0, 0
    for _ in range(2000):
        t += 0.1 if rng.random() > 0.01 else -3.0  # now and then a restart
        motion = 0.05 if rng.random() < 0.1 else 0.0
        sure = gate.certain(motion, t)
        assert copy.deepcopy(gate).decide(motion, t, has_tracks=False) == sure
        tracks = bool(rng.random() < 0.3)
        assert gate.decide(motion, t, has_tracks=tracks) == (sure or tracks)
        certain_runs += sure
    assert 200 < certain_runs < 1800  # both answers were exercised
