"""The runner's issue-4 duties: motion gating, run-time rule and suppression changes,
signal-lost ticks.  Scripted sources, a scripted detector and scripted scene measures."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from detectors.detections import Detections
from detectors.gating import MotionGate
from detectors.scene import SceneStats
from ingest import ActivityControl
from ingest.frame import Frame
from selector.event import Event
from selector.rules.base import FrameInfo
from selector.suppression import Suppression
from tests.unit.test_runner import NAMES, ScriptedSource, make_runner, walker

pytestmark = pytest.mark.unit


class ScriptedScene:
    """Motion 0.05 on frames whose seq is in ``moving``, else 0 (seq = pixel value)."""

    def __init__(self, moving: Collection[int]) -> None:
        self.moving = set(moving)

    def analyze(self, image: np.ndarray, t_s: float) -> SceneStats:
        seq = int(image[0, 0, 0])
        return SceneStats(
            motion=0.05 if seq in self.moving else 0.0,
            brightness=100.0,
            contrast=30.0,
            sharpness=50.0,
            frame_diff=2.0,
        )


def walker_between(first: int, last: int, calls: list[int]) -> Any:
    """The walker, seen only on frames first..last; records which frames it was asked about."""

    def detect(images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for img, dets in zip(images, walker(images), strict=True):
            seq = int(img[0, 0, 0])
            calls.append(seq)
            out.append(dets if first <= seq <= last else Detections.empty(NAMES))
        return out

    return detect


def test_quiet_frames_skip_the_detector_and_events_are_unchanged(tmp_path: Path) -> None:
    calls: list[int] = []
    runner, records = make_runner(tmp_path, [ScriptedSource("a", 80)], walker_between(8, 22, calls))
    cam = runner.cameras[0]
    cam.scene = ScriptedScene(moving=range(8, 23))  # type: ignore[assignment]
    cam.gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=0.5)
    result = runner.run()
    assert result.ok and result.frames == 80
    # quiet start: only the first frame (heartbeat) before the motion at 8
    assert [s for s in calls if s < 8] == [0]
    # the track is followed until the tracker drops it (3 s buffer), then quiet again:
    # heartbeats once a second only
    tail = [s for s in calls if s > 60]
    assert tail and all(b - a >= 10 for a, b in itertools.pairwise(tail)), tail
    assert result.detected == len(calls) < 80
    assert result.detector_fraction == pytest.approx(len(calls) / 80)
    starts = [r for r in records if r["end_s"] is None]
    assert len(starts) == 1 and starts[0]["start_s"] == pytest.approx(1.3, abs=0.11)


def test_rules_swapped_at_run_time_apply_between_batches(tmp_path: Path) -> None:
    runner, records = make_runner(tmp_path, [ScriptedSource("a", 30)])
    runner.reconfigure("a", [], {})  # queued before the run: applied at its first pass
    result = runner.run()
    assert result.ok and records == []
    with pytest.raises(KeyError):
        runner.reconfigure("nope", [], {})


def test_suppressions_applied_at_run_time_silence_matching_events(tmp_path: Path) -> None:
    runner, records = make_runner(tmp_path, [ScriptedSource("a", 30), ScriptedSource("b", 30)])
    now = time.time()
    runner.set_suppressions(
        [Suppression("s", "a", "intrusion:middle", "middle", "person", None, now + 60, now)]
    )
    runner.run()
    assert {r["camera_id"] for r in records} == {"b"}
    assert runner.cameras[0].selector.gate.counts.suppressed == 1


class StallingSource(ScriptedSource):
    """A live source that delivers ``n`` frames, then nothing for ``stall_s``, then ends."""

    def __init__(self, camera_id: str, n: int, stall_s: float) -> None:
        super().__init__(camera_id, n, live=True)
        self.stall_s = stall_s

    def frames(self) -> Iterator[Frame]:
        yield from super().frames()
        self._closed.wait(self.stall_s)


class SignalWatcher:
    """A rule that records no-signal calls."""

    rule_id = "health"

    def __init__(self) -> None:
        self.calls: list[FrameInfo] = []

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        return []

    def no_signal(self, frame: FrameInfo) -> list[Event]:
        self.calls.append(frame)
        return []

    def close_all(self, end_s: float) -> list[Event]:
        return []


def test_a_silent_live_camera_is_told_so_about_once_a_second(tmp_path: Path) -> None:
    runner, _ = make_runner(tmp_path, [StallingSource("a", 5, stall_s=3.5)])
    watcher = SignalWatcher()
    cam = runner.cameras[0]
    cam.selector.rules = (*cam.selector.rules, watcher)
    t = threading.Thread(target=runner.run)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive()
    assert 2 <= len(watcher.calls) <= 4, watcher.calls
    assert all(c.seq == 4 and not c.detected for c in watcher.calls)
    pts = [c.pts_s for c in watcher.calls]
    assert pts == sorted(pts) and pts[0] >= 0.4 + 1.0 - 0.05  # last frame at 0.4 s + 1 s silence


class SparseSource(ScriptedSource):
    """A scripted source that honours an ``ActivityControl``: while quiet, only every
    ``every``-th frame is delivered (the others are counted as thinned), 5 ms apart."""

    def __init__(self, camera_id: str, n: int, activity: ActivityControl, every: int) -> None:
        super().__init__(camera_id, n)
        self.activity = activity
        self.every = every
        self.thinned = 0

    def frames(self) -> Iterator[Frame]:
        for frame in super().frames():
            if self.activity.quiet and frame.seq % self.every:
                self.thinned += 1
                self.activity.frames_thinned += 1  # as ingest's Thinner counts
                continue
            time.sleep(0.005)  # a camera's pace: the detector loop keeps up with it
            yield frame

    def stats(self) -> Any:
        return SimpleNamespace(frames_thinned=self.thinned)


def test_a_quiet_camera_is_decoded_sparsely_and_motion_wakes_it(tmp_path: Path) -> None:
    """Activity-driven decoding: the quiet start is thinned; the motion at frame 8 is seen
    on the next sparse frame (10), so the event starts at most one sparse interval late."""
    calls: list[int] = []
    activity = ActivityControl(interval_s=0.5)
    source = SparseSource("a", 80, activity, every=5)
    runner, records = make_runner(tmp_path, [source], walker_between(8, 22, calls))
    cam = runner.cameras[0]
    cam.scene = ScriptedScene(moving=range(8, 23))  # type: ignore[assignment]
    cam.gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=0.5)
    cam.activity = activity
    metric = ("argus_frames_thinned_total", {"camera": "a"})
    before = REGISTRY.get_sample_value(*metric) or 0.0
    result = runner.run()
    assert result.ok
    assert result.frames + source.thinned == 80 and source.thinned > 20
    assert REGISTRY.get_sample_value(*metric) == before + source.thinned
    assert activity.rests >= 2 and activity.wakes >= 1  # quiet, woken, quiet again
    seen = [s for s in calls if s < 23]
    assert seen[0] == 0 and 10 in seen and not [s for s in seen if 0 < s < 10]
    assert all(s % 5 == 0 for s in calls if s > 60)  # quiet again: sparse frames only
    starts = [r for r in records if r["end_s"] is None]
    # unthinned, the event starts at 1.3 s; the camera woke 0.2 s after the motion began
    assert len(starts) == 1 and 1.3 <= starts[0]["start_s"] <= 1.3 + 0.5 + 1e-6
    assert cam.health()["frames_thinned"] == source.thinned and cam.health()["quiet"] is True


class AheadSource(SparseSource):
    """Records, at each sparse frame it delivers while quiet, whether the verdict on the
    frame it delivered before had come (no sleep: a file read as fast as possible)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.unjudged: list[int] = []
        self.quiet_frames = 0

    def frames(self) -> Iterator[Frame]:
        last: float | None = None
        for frame in ScriptedSource.frames(self):
            if self.activity.quiet:
                if frame.seq % self.every:
                    self.thinned += 1
                    self.activity.frames_thinned += 1
                    continue
                self.quiet_frames += 1
                if last is not None and self.activity.judged_s < last:
                    self.unjudged.append(frame.seq)
                last = frame.pts_s
            else:
                last = None
            yield frame


def test_a_quiet_camera_waits_for_the_verdict_on_each_sparse_frame(tmp_path: Path) -> None:
    """Read faster than real time, a quiet camera's decoder still decodes the next sparse
    frame only once the selector judged the last one: a wake it sends (something found on
    a heartbeat) then reaches the source before the frames after it are skipped."""
    activity = ActivityControl(interval_s=0.5)
    source = AheadSource("a", 200, activity, every=5)
    runner, _ = make_runner(tmp_path, [source], walker_between(1000, 1000, []))
    cam = runner.cameras[0]
    cam.scene = ScriptedScene(moving=())  # type: ignore[assignment]
    cam.gate = MotionGate(min_motion=0.01, heartbeat_s=1.0, hold_s=0.5)
    cam.activity = activity
    assert runner.run().ok
    assert source.quiet_frames > 30 and source.unjudged == []
