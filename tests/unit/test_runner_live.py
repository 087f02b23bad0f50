"""The runner's live reports (issue 18): every camera's status about once a second, live
pictures only of the cameras someone watches, the state camera-health events put a camera
in, and the last word (ended, failed) when the run ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from alerts.live import CameraStatus, LiveBoard, Preview, Want, state_of
from argus import runner as runner_module
from tests.unit.test_runner import ScriptedSource, make_runner

pytestmark = pytest.mark.unit


class Recorder(LiveBoard):
    """A board that also keeps every report and picture, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[CameraStatus] = []
        self.pictures: list[Preview] = []

    def report(self, statuses: Any) -> None:
        items = list(statuses)
        self.reports.extend(items)
        super().report(items)

    def picture(self, preview: Preview) -> None:
        self.pictures.append(preview)
        super().picture(preview)


class SlowSource(ScriptedSource):
    """Frames at about ``fps`` a second (so a run lasts long enough to be watched)."""

    def __init__(self, camera_id: str, n: int, fps: float, **kw: Any) -> None:
        super().__init__(camera_id, n, **kw)
        self._period = 1.0 / fps

    def frames(self) -> Any:
        for f in super().frames():
            time.sleep(self._period)
            yield f


def test_statuses_are_reported_and_pictures_only_of_watched_cameras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "LIVE_REPORT_S", 0.2)
    monkeypatch.setattr(runner_module, "LIVE_WANTED_S", 0.05)
    live = Recorder()
    live.demand.hold("wall", {"cam-a": Want(320, 10.0)})
    runner, _ = make_runner(
        tmp_path, [SlowSource("cam-a", 30, 25.0), SlowSource("cam-b", 30, 25.0, fail_after=20)]
    )
    runner.live = live
    result = runner.run()
    assert result.frames >= 50

    by_cam = {c: [s for s in live.reports if s.camera_id == c] for c in ("cam-a", "cam-b")}
    assert all(len(v) >= 3 for v in by_cam.values()), by_cam
    assert any(s.state == "streaming" and s.fps > 5 for s in by_cam["cam-a"])
    last_a, last_b = by_cam["cam-a"][-1], by_cam["cam-b"][-1]
    assert last_a.state == "ended" and last_a.frames_processed == 30
    assert last_b.state == "failed" and "unplugged" in (last_b.detail or "")
    assert last_a.frame_size == (160, 120) and last_a.run_id == runner.run_id

    assert live.pictures and {p.camera_id for p in live.pictures} == {"cam-a"}  # b: nobody
    p = live.pictures[-1]
    assert p.width == 160  # never enlarged past the frame (asked 320)
    picture = cv2.imdecode(np.frombuffer(p.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (120, 160, 3)
    stamps = [p.taken_at for p in live.pictures]
    assert stamps == sorted(stamps)
    # 10 a second at most, over a run of about 1.2 s of cam-a's frames
    assert len(live.pictures) <= 10 * (stamps[-1] - stamps[0]) + 2


def test_nobody_watching_costs_no_picture(tmp_path: Path) -> None:
    live = Recorder()
    runner, _ = make_runner(tmp_path, [ScriptedSource("cam-a", 40)])
    runner.live = live
    runner.run()
    assert live.pictures == []
    assert live.reports and live.reports[-1].state == "ended"


def test_watches_reach_the_report_and_a_rule_failure_does_not_stop_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "LIVE_REPORT_S", 0.05)
    live = Recorder()
    runner, _ = make_runner(tmp_path, [SlowSource("cam-a", 25, 25.0)])
    cam = runner.cameras[0]

    def broken(now_s: float | None = None) -> list[Any]:
        raise RuntimeError("boom")

    cam.selector.watching = broken  # type: ignore[method-assign]
    runner.live = live
    runner.run()
    assert live.reports and all(s.watches == () for s in live.reports)


def test_health_events_put_the_camera_in_their_state() -> None:
    assert state_of("streaming", False, set()) == "streaming"
    assert state_of("streaming", False, {"frozen"}) == "frozen"
    assert state_of("streaming", False, {"blur", "covered"}) == "covered"
    assert state_of("streaming", False, {"signal_lost", "covered"}) == "lost"
    assert state_of("reconnecting", False, {"signal_lost"}) == "reconnecting"
    assert state_of("draining", False, {"frozen"}) == "ended"
    assert state_of("streaming", True, set()) == "failed"


def test_a_sink_that_raises_does_not_stop_the_cameras(tmp_path: Path) -> None:
    class Broken(LiveBoard):
        def report(self, statuses: Any) -> None:
            raise RuntimeError("down")

        def wanted(self) -> dict[str, Want]:
            raise RuntimeError("down")

    runner, records = make_runner(tmp_path, [ScriptedSource("cam-a", 30)])
    runner.live = Broken()
    result = runner.run()
    assert result.frames == 30 and result.ok
    assert records  # events still flowed
    assert threading.active_count() >= 1


class TexturedSource(ScriptedSource):
    """Textured frames (noise of seed i); pixel (0, 0) still says the frame number."""

    def frames(self) -> Any:
        for f in super().frames():
            img = np.random.default_rng(f.seq).integers(0, 256, f.image.shape, np.uint8)
            img[0, 0, 0] = f.seq % 256
            yield f.__class__(f.camera_id, f.seq, f.pts_s, f.wall_time, img)


def _frame(seq: int) -> np.ndarray:
    return np.random.default_rng(seq).integers(0, 256, (120, 160, 3), np.uint8)


def _pictures_of(tmp_path: Path, person_ids: frozenset[int]) -> list[Preview]:
    live = Recorder()
    live.demand.hold("wall", {"cam-a": Want(320, 10.0)})
    runner, _ = make_runner(tmp_path, [TexturedSource("cam-a", 20)])
    runner._person_ids = person_ids  # the scripted detector's class 0 is a person
    runner.live = live
    runner.run()
    assert live.pictures
    return live.pictures


def _decoded(p: Preview) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(p.jpeg, np.uint8), cv2.IMREAD_COLOR).astype(np.float64)


def test_people_are_masked_on_live_pictures_and_the_rest_stays_sharp(tmp_path: Path) -> None:
    p = _pictures_of(tmp_path, frozenset({0}))[-1]
    out, frame = _decoded(p), _frame(p.seq).astype(np.float64)
    x = 10 + 4 * p.seq  # the walker's box of that frame: [x, 40, x + 20, 100]
    inside = (slice(45, 95), slice(x + 3, x + 17))
    assert out[inside].var() < frame[inside].var() / 4  # blurred
    far = slice(0, max(1, x - 20)) if x > 60 else slice(x + 50, 160)
    sharp = (slice(0, 120), far)
    assert out[sharp].var() > frame[sharp].var() / 2  # clear of the person: untouched


def test_a_model_without_a_person_class_gets_every_picture_blurred(tmp_path: Path) -> None:
    for p in _pictures_of(tmp_path, frozenset()):
        assert _decoded(p).var() < _frame(p.seq).astype(np.float64).var() / 4


def test_a_long_failure_reason_is_cut_and_stops_no_other_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "LIVE_REPORT_S", 0.1)

    class Verbose(SlowSource):
        def frames(self) -> Any:
            from ingest import SourceError

            yield from list(super().frames())[:3]
            raise SourceError("the camera said: " + "x" * 2000)

    live = Recorder()
    runner, _ = make_runner(tmp_path, [SlowSource("cam-a", 20, 25.0), Verbose("cam-b", 20, 25.0)])
    runner.live = live
    runner.run()
    last = {s.camera_id: s for s in live.reports}
    assert last["cam-b"].state == "failed" and len(last["cam-b"].detail or "") == 300
    assert last["cam-a"].state == "ended"  # still reported to the end
