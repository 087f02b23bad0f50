"""CameraHealthRule: scripted scene measures (state machine) and real footage with faults."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from detectors.detections import Detections
from detectors.scene import SceneAnalyzer, SceneStats
from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules.base import FrameInfo, RuleError
from selector.rules.camera_health import KEYS, CameraHealthRule

CAM = "plaza"
RULE = "camera_health"
NONE = Detections.empty()
FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
Image = npt.NDArray[np.uint8]


def u8(a: object) -> Image:
    """``a`` as a uint8 image (no copy when it already is one)."""
    return np.asarray(a, dtype=np.uint8)


def healthy(**changes: float) -> SceneStats:
    """Measures of a normal frame of a 768x576 camera, with ``changes`` applied."""
    values: dict[str, float] = {
        "motion": 0.01,
        "brightness": 120.0,
        "contrast": 50.0,
        "sharpness": 0.12 * 120.0**2,
        "frame_diff": 1.0,
        "shift_px": 1.0,
        "reference_similarity": 0.9,
        "blank_fraction": 0.0,
    }
    values.update(changes)
    return SceneStats(**values)  # type: ignore[arg-type]


def info(seq: int, t: float, scene: SceneStats | None, stream_id: str = "") -> FrameInfo:
    return FrameInfo(CAM, seq, t, 1.7e9 + t, 768, 576, stream_id=stream_id, scene=scene)


def play(
    rule: CameraHealthRule,
    script: Callable[[float], SceneStats | None],
    seconds: float,
    fps: float = 10.0,
    start_seq: int = 0,
) -> list[Event]:
    """Feed ``seconds`` of frames whose measures ``script(t)`` gives; the events."""
    events: list[Event] = []
    for k in range(round(seconds * fps)):
        t = k / fps
        events += rule.update(NONE, info(start_seq + k, t, script(t)))
    return events


def summary(events: list[Event]) -> list[tuple[str, float, float | None]]:
    return [
        (e.type, round(e.start_s, 1), None if e.end_s is None else round(e.end_s, 1))
        for e in events
    ]


# --------------------------------------------------------------------------- scripted


@pytest.mark.unit
def test_healthy_frames_raise_nothing() -> None:
    rule = CameraHealthRule(RULE, CAM)
    assert play(rule, lambda t: healthy(), 120.0) == []
    assert rule.blur_baseline == pytest.approx(0.12)
    assert rule.close_all(120.0) == []


@pytest.mark.unit
def test_frozen_starts_after_frozen_s_with_its_onset_and_ends_after_clear_s() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=10.0, clear_s=3.0)

    def script(t: float) -> SceneStats:
        return healthy(frame_diff=0.0 if 5.0 <= t < 25.0 else 1.0)

    events = play(rule, script, 40.0)
    assert summary(events) == [("frozen", 5.0, None), ("frozen", 5.0, 25.0)]
    start, end = events
    assert start.start_seq == 150  # raised at 15 s, the onset is in start_s
    assert start.event_id == end.event_id == make_event_id(CAM, RULE, KEYS["frozen"], 150)
    assert start.priority == priority(60, None, 1.0)
    assert start.details == {"frame_diff": 0.0}
    assert (start.zone, start.track_id, start.bbox, start.label) == (None, None, None, None)
    assert end.start_seq == 150 and end.details == start.details
    # the end is emitted once clear_s of normal frames passed: at 28 s
    rule2 = CameraHealthRule(RULE, CAM, frozen_s=10.0, clear_s=3.0)
    assert len(play(rule2, script, 27.9)) == 1


@pytest.mark.unit
def test_sensor_noise_level_changes_are_not_frozen() -> None:
    rule = CameraHealthRule(RULE, CAM)
    assert play(rule, lambda t: healthy(frame_diff=0.06), 60.0) == []  # just above 0.05


@pytest.mark.unit
def test_one_changed_frame_restarts_the_hold() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=10.0)
    # frozen except one changed frame every 9 s (e.g. a key frame): never 10 s in a row
    events = play(rule, lambda t: healthy(frame_diff=1.0 if round(t * 10) % 90 == 0 else 0.0), 60)
    assert events == []


@pytest.mark.unit
def test_short_recovery_does_not_end_an_open_event() -> None:
    rule = CameraHealthRule(RULE, CAM, covered_s=2.0, clear_s=3.0)

    def script(t: float) -> SceneStats:
        covered = 1.0 <= t < 10.0 or 11.0 <= t < 20.0  # 1 s of picture in the middle
        return healthy(blank_fraction=0.9 if covered else 0.0)

    assert summary(play(rule, script, 30.0)) == [("covered", 1.0, None), ("covered", 1.0, 20.0)]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"blank_fraction": 0.6}, "covered"),  # a hand over most of the view
        ({"contrast": 1.0, "brightness": 250.0, "blank_fraction": 0.0}, "covered"),  # blinded
        ({"contrast": 2.0, "brightness": 3.0, "frame_diff": 0.0}, "covered"),  # capped: not frozen
        ({"shift_px": 16.0}, "moved"),  # >= 2 % of 768 px
        ({"reference_similarity": 0.3}, "moved"),  # turned away
        ({"frame_diff": 0.0}, "frozen"),
        ({"sharpness": 0.02 * 120.0**2}, "blur"),
    ],
)
def test_each_condition_raises_its_kind(changes: dict[str, float], expected: str) -> None:
    rule = CameraHealthRule(RULE, CAM, blur_learn_s=10.0)
    play(rule, lambda t: healthy(), 20.0)  # learns the sharpness baseline
    events = play(rule, lambda t: healthy(**changes), 30.0, start_seq=200)
    assert [e.type for e in events] == [expected]
    assert events[0].start_s == 0.0


@pytest.mark.unit
@pytest.mark.parametrize(
    "changes",
    [
        {"brightness": 12.0, "contrast": 5.0, "sharpness": 0.12 * 16.0**2 * 0.5},  # night
        {"brightness": 240.0, "contrast": 20.0, "sharpness": 0.12 * 240.0**2},  # bright
        {"shift_px": 10.0, "reference_similarity": 0.5},  # swaying a little, shadows
        {"frame_diff": 0.2, "motion": 0.0},  # empty scene, sensor noise only
    ],
)
def test_quiet_variations_raise_nothing(changes: dict[str, float]) -> None:
    rule = CameraHealthRule(RULE, CAM, blur_learn_s=10.0)
    play(rule, lambda t: healthy(), 20.0)
    assert play(rule, lambda t: healthy(**changes), 60.0, start_seq=200) == []


@pytest.mark.unit
def test_covered_hides_frozen_moved_and_blur() -> None:
    rule = CameraHealthRule(RULE, CAM, blur_learn_s=5.0)
    play(rule, lambda t: healthy(), 10.0)
    black = healthy(
        brightness=0.0, contrast=0.0, sharpness=0.0, frame_diff=0.0, shift_px=0.0,
        reference_similarity=0.0, blank_fraction=1.0,
    )  # fmt: skip
    events = play(rule, lambda t: black, 30.0, start_seq=100)
    assert [e.type for e in events] == ["covered"]
    assert events[0].details == {"brightness": 0.0, "contrast": 0.0, "blank_fraction": 1.0}
    assert events[0].priority == priority(70, None, 1.0)


@pytest.mark.unit
def test_blur_needs_a_baseline_and_ignores_the_light_level() -> None:
    rule = CameraHealthRule(RULE, CAM, blur_s=5.0, blur_learn_s=30.0)
    blurred = healthy(sharpness=0.01 * 120.0**2)
    # blurred from the start: no baseline yet, nothing to compare with
    assert play(rule, lambda t: blurred if t < 10.0 else healthy(), 10.0) == []
    # dusk: brightness / 4 and sharpness / 16 keep the normalised sharpness
    dusk = healthy(brightness=30.0, contrast=12.5, sharpness=0.12 * 30.0**2)
    rule = CameraHealthRule(RULE, CAM, blur_s=5.0, blur_learn_s=30.0)
    assert play(rule, lambda t: healthy() if t < 40.0 else dusk, 80.0) == []
    rule = CameraHealthRule(RULE, CAM, blur_s=5.0, blur_learn_s=30.0)
    events = play(rule, lambda t: healthy() if t < 40.0 else blurred, 60.0)
    assert summary(events) == [("blur", 40.0, None)]
    assert events[0].details == {"sharpness": 0.01, "baseline": 0.12, "ratio": 0.083}


@pytest.mark.unit
def test_kinds_starting_together_get_distinct_ids() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=2.0, moved_s=2.0)
    events = play(rule, lambda t: healthy(frame_diff=0.0, shift_px=50.0), 5.0)
    assert [e.type for e in events] == ["frozen", "moved"]
    assert events[0].start_seq == events[1].start_seq
    assert events[0].event_id != events[1].event_id


@pytest.mark.unit
def test_signal_lost_starts_after_signal_lost_s_and_ends_at_the_next_frame() -> None:
    rule = CameraHealthRule(RULE, CAM, signal_lost_s=5.0)
    play(rule, lambda t: healthy(), 10.0)  # frames at 0.0 .. 9.9 s, seq 0..99
    last = info(99, 9.9, None)

    def silence(t: float, seq: int = last.seq) -> FrameInfo:
        return FrameInfo(CAM, seq, t, 1.7e9 + t, 768, 576)

    assert rule.no_signal(silence(12.0)) == []
    assert rule.no_signal(silence(14.8)) == []
    (lost,) = rule.no_signal(silence(14.9))
    assert lost.type == "signal_lost" and lost.end_s is None
    assert lost.start_s == pytest.approx(10.0)  # when the next frame was due
    assert lost.start_seq == 99
    assert lost.event_id == make_event_id(CAM, RULE, KEYS["signal_lost"], 99)
    assert lost.details == {"silent_s": 5.0, "last_frame_s": 9.9}
    assert lost.priority == priority(70, None, 1.0)
    assert rule.no_signal(silence(20.0)) == []  # one event per outage
    (back,) = rule.update(NONE, info(100, 31.0, healthy()))
    assert back.event_id == lost.event_id and back.end_s == 31.0
    # frames flow again (seq 101..110, up to 32.0 s): a new outage is a new event
    for k in range(101, 111):
        assert rule.update(NONE, info(k, 31.0 + (k - 100) / 10, healthy())) == []
    (again,) = rule.no_signal(silence(40.0, seq=110))
    assert again.event_id == make_event_id(CAM, RULE, KEYS["signal_lost"], 110)
    assert again.start_s == pytest.approx(32.1)


@pytest.mark.unit
def test_signal_lost_before_any_frame_counts_from_zero() -> None:
    rule = CameraHealthRule(RULE, CAM, signal_lost_s=5.0)
    nothing = FrameInfo(CAM, 0, 4.0, 1.7e9, 768, 576)
    assert rule.no_signal(nothing) == []
    (lost,) = rule.no_signal(FrameInfo(CAM, 0, 5.0, 1.7e9, 768, 576))
    assert lost.start_s == 0.0


@pytest.mark.unit
def test_an_outage_restarts_pending_holds() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=10.0, signal_lost_s=5.0)
    frozen = healthy(frame_diff=0.0)
    events = play(rule, lambda t: frozen, 6.0)  # 6 s frozen, then 30 s without frames
    for seq, t in enumerate([36.0, 40.0, 44.0, 45.9], start=60):  # gaps < signal_lost_s
        events += rule.update(NONE, info(seq, t, frozen))
    assert events == []  # the 6 s before the outage do not count
    events += rule.update(NONE, info(64, 46.0, frozen))
    assert summary(events) == [("frozen", 36.0, None)]


@pytest.mark.unit
def test_close_all_ends_open_events_and_frames_without_scene_are_skipped() -> None:
    rule = CameraHealthRule(RULE, CAM, covered_s=1.0, moved_s=1.0)
    events = play(rule, lambda t: None if t < 5.0 else healthy(blank_fraction=1.0), 10.0)
    assert summary(events) == [("covered", 5.0, None)]
    assert rule.open_events() == events
    closed = rule.close_all(9.9)
    assert summary(closed) == [("covered", 5.0, 9.9)]
    assert rule.open_events() == [] and rule.close_all(10.0) == []
    with pytest.raises(RuleError, match="end_s"):
        rule.close_all(math.nan)


@pytest.mark.unit
def test_stream_id_goes_into_event_ids() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=1.0)
    events: list[Event] = []
    for k in range(20):
        events += rule.update(NONE, info(k, k / 10, healthy(frame_diff=0.0), stream_id="run-7"))
    assert events[0].event_id == make_event_id(CAM, RULE, KEYS["frozen"], 10, "run-7")


@pytest.mark.unit
def test_frames_of_another_camera_are_refused() -> None:
    rule = CameraHealthRule(RULE, CAM)
    other = FrameInfo("gate", 0, 0.0, 1.7e9, 768, 576, scene=healthy())
    with pytest.raises(RuleError, match="gate"):
        rule.update(NONE, other)
    with pytest.raises(RuleError, match="gate"):
        rule.no_signal(other)


@pytest.mark.unit
def test_severities_can_be_overridden() -> None:
    rule = CameraHealthRule(RULE, CAM, frozen_s=1.0, severities={"frozen": 90})
    (event,) = play(rule, lambda t: healthy(frame_diff=0.0), 2.0)
    assert event.priority == priority(90, None, 1.0)
    assert rule.severities["covered"] == 70


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"frozen_s": 0.0}, "frozen_s"),
        ({"covered_s": -1.0}, "covered_s"),
        ({"moved_s": math.nan}, "moved_s"),
        ({"blur_s": math.inf}, "blur_s"),
        ({"signal_lost_s": 0.0}, "signal_lost_s"),
        ({"clear_s": -0.1}, "clear_s"),
        ({"frozen_diff": -1.0}, "frozen_diff"),
        ({"covered_contrast": math.nan}, "covered_contrast"),
        ({"covered_blank": 1.5}, "covered_blank"),
        ({"moved_shift": -0.1}, "moved_shift"),
        ({"moved_similarity": 2.0}, "moved_similarity"),
        ({"blur_ratio": -0.5}, "blur_ratio"),
        ({"blur_learn_s": 0.0}, "blur_learn_s"),
        ({"severities": {"smoke": 50}}, "smoke"),
        ({"severities": {"blur": 150}}, "severity"),
        ({"checks": []}, "checks"),
        ({"checks": ["frozen", "smoke"]}, "checks"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(RuleError, match=name):
        CameraHealthRule(RULE, CAM, **kwargs)  # type: ignore[arg-type]


@pytest.mark.unit
def test_only_the_chosen_checks_raise_events() -> None:
    rule = CameraHealthRule(RULE, CAM, checks={"moved", "frozen"}, covered_s=1.0, frozen_s=1.0)
    black = healthy(contrast=0.0, blank_fraction=1.0, frame_diff=0.0)
    assert play(rule, lambda t: black, 10.0) == []  # covered unchecked, and not frozen
    assert rule.no_signal(FrameInfo(CAM, 99, 60.0, 1.7e9, 768, 576)) == []
    events = play(rule, lambda t: healthy(frame_diff=0.0), 3.0, start_seq=100)
    assert [e.type for e in events] == ["frozen"]


@pytest.mark.unit
def test_empty_ids_are_refused() -> None:
    with pytest.raises(RuleError, match="rule_id"):
        CameraHealthRule("", CAM)
    with pytest.raises(RuleError, match="camera_id"):
        CameraHealthRule(RULE, "")


# --------------------------------------------------------------------------- real footage

FPS = 5.0


@pytest.fixture(scope="module")
def vtest() -> list[Image]:
    """All of vtest.avi at 5 fps (every other frame, 398 frames, 79.4 s)."""
    if not FOOTAGE.exists():
        pytest.skip(f"footage not installed: {FOOTAGE}")
    cap = cv2.VideoCapture(str(FOOTAGE))
    frames: list[Image] = []
    try:
        k = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if k % 2 == 0:
                frames.append(u8(img))
            k += 1
    finally:
        cap.release()
    assert len(frames) == 398, "could not decode vtest.avi"
    return frames


def footage(frames: list[Image], k: int) -> Image:
    """Frame ``k`` of the footage played forwards then backwards, endlessly."""
    period = 2 * len(frames) - 2
    k %= period
    return frames[k] if k < len(frames) else frames[period - k]


def watch(
    frames: list[Image], seconds: float, picture: Callable[[int, float], Image], **rule_args: float
) -> list[Event]:
    scene, rule = SceneAnalyzer(), CameraHealthRule(RULE, CAM, **rule_args)  # type: ignore[arg-type]
    events: list[Event] = []
    n = round(seconds * FPS)
    for k in range(n):
        t = k / FPS
        img = picture(k, t)
        events += rule.update(
            NONE, FrameInfo(CAM, k, t, 1.7e9 + t, 768, 576, scene=scene.analyze(img, t))
        )
    return events + rule.close_all((n - 1) / FPS)


class Noise:
    """Cheap deterministic sensor noise: a few precomputed patterns, cycled."""

    def __init__(self, sigma: float, n: int = 7) -> None:
        rng = np.random.default_rng(7)
        self.patterns = [rng.normal(0.0, sigma, (576, 768, 3)).astype(np.int16) for _ in range(n)]
        self.k = 0

    def __call__(self, img: Image) -> Image:
        self.k += 1
        out = img.astype(np.int16) + self.patterns[self.k % len(self.patterns)]
        return u8(np.clip(out, 0, 255))


def scaled(img: Image, gain: float) -> Image:
    return u8(np.clip(img * gain, 0, 255))


@pytest.mark.integration
def test_real_footage_raises_no_health_event(vtest: list[Image]) -> None:
    assert watch(vtest, len(vtest) / FPS, lambda k, t: vtest[k]) == []


@pytest.mark.integration
def test_real_footage_lighting_changes_raise_no_health_event(vtest: list[Image]) -> None:
    """Dusk (-70 % over 20 s), a light switched on, lights off to a noisy night, dawn."""
    noise = Noise(3.0)

    def lighting(k: int, t: float) -> Image:
        img = footage(vtest, k)
        if t < 20.0:
            return img
        if t < 40.0:
            return scaled(img, 1.0 - 0.7 * (t - 20.0) / 20.0)
        if t < 55.0:
            return img  # switched on
        if t < 75.0:
            return noise(scaled(img, 0.15))  # night: dark and noisy
        return noise(scaled(img, 0.15 + 0.85 * min((t - 75.0) / 10.0, 1.0)))

    assert watch(vtest, 95.0, lighting) == []


@pytest.mark.integration
def test_real_footage_faults_each_raise_one_event(vtest: list[Image]) -> None:
    """Default settings; faults separated by normal footage:
    black cap, a hand over the lens, a frozen picture, a frozen noisy picture (not
    frozen: a live static scene), blur, a camera knocked 40 px sideways."""
    noise = Noise(1.0)
    still = vtest[200]
    disc = np.zeros((576, 768), np.float32)
    cv2.ellipse(disc, (384, 346), (461, 380), 15, 0, 360, 1.0, -1)
    hand_mask = np.asarray(cv2.GaussianBlur(disc, (0, 0), 25), np.float32)[..., None]
    shift = np.array([[1, 0, 40], [0, 1, 10]], np.float32)

    def faults(k: int, t: float) -> Image:
        img = footage(vtest, k)
        if 30.0 <= t < 40.0:
            return np.zeros_like(img)
        if 46.0 <= t < 58.0:
            return u8(img * (1 - hand_mask) + np.array((40, 50, 70)) * hand_mask)
        if 64.0 <= t < 80.0:
            return still
        if 86.0 <= t < 100.0:
            return noise(still)
        if 106.0 <= t < 120.0:
            return u8(cv2.GaussianBlur(img, (0, 0), 3))
        if 126.0 <= t < 140.0:
            return u8(cv2.warpAffine(img, shift, (768, 576), borderMode=cv2.BORDER_REFLECT))
        return img

    events = watch(vtest, 146.0, faults)
    got = summary([e for e in events if e.end_s is not None])
    assert got == [
        ("covered", 30.0, 40.0),
        ("covered", 46.0, 58.0),
        ("frozen", 64.2, 80.0),
        ("blur", 106.0, 120.0),
        ("moved", 126.0, 140.0),
    ], got
    assert len(events) == 2 * len(got)  # each started once and ended once
