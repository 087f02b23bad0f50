"""Issue 13, part 3: camera_health's per-check durations, set through the config.

Each duration (``signal_lost_s``, ``frozen_s``, ``covered_s``, ``blur_s``, ``moved_s``)
is set in a rule dict that ``argus.config.parse_config`` parses and
``argus.rulebook.RuleBook`` builds (the path of a config file and of a rule set sent at
run time).  Real frames of the footage (384x288, 5 fps: frame ``k`` at ``k / 5`` s)
with a synthetic fault go through a real ``SceneAnalyzer`` into the rule, as the runner
feeds it.  The fault's measures are far from the thresholds (a black picture has
contrast 0, a repeated one frame_diff 0, the 20 px shift measures about 21 px against a
7.7 px threshold, the blurred picture keeps about 12 % of the baseline sharpness
against 30 %), so only the frame times decide: a fault seen on frames spanning one
frame (0.2 s) less than the setting raises nothing; seen on frames spanning one frame
more, the event is raised at the frame where the setting is reached, with ``start_s``
at the onset (the first faulty frame).

Each setting is tried below and above its default, so a setting that were ignored fails
one case or the other: below the default, the fault held just over the setting is
still shorter than the default (nothing raised); above it, the fault held just under
the setting is already longer than the default (raised).

Hot reload: a rule set that changes ``frozen_s`` reaches a running camera through the
control channel and ``argus.reload.LiveConfig``; an unchanged camera_health config keeps
its rule object; a bad value is refused, naming ``rules.N.<setting>``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import pytest

from alerts.bus import InProcessBus
from alerts.control import RULES_KEY, InProcessControl, rules_message
from alerts.evidence import LocalEvidenceStore
from argus.config import ArgusConfig, parse_config
from argus.reload import LiveConfig
from argus.rulebook import RuleBook, validate_rules
from argus.runner import CameraRuntime, Runner
from argus.slots import FrameSlot
from detectors.detections import Detections
from detectors.scene import SceneAnalyzer
from ingest import SourceState
from ingest.frame import Frame
from selector.camera import CameraSelector
from selector.event import Event
from selector.incidents import RulePolicy
from selector.rules.base import FrameInfo, Rule
from selector.rules.camera_health import BLUR, COVERED, FROZEN, MOVED, CameraHealthRule
from selector.tracker import ByteTracker
from tests.unit.test_camera_health import FOOTAGE, Image, footage, u8
from tests.unit.test_runner import ScriptedSource

CAM = "plaza"
NAMES = ("person",)
FPS = 5
W, H = 384, 288
FRAMES = 200
"""Footage frames decoded (40 s at 5 fps); later ones play it backwards (``footage``)."""
ONSET = 10
"""Frame at which a fault begins (2.0 s: the health reference is the first frame)."""
LEARN = 30 * FPS
"""Frames over which the blur baseline is learnt: ``blur_learn_s`` (30 s, not a setting)."""
BLUR_ONSET = LEARN + 2 * FPS
"""Frame at which the blur begins (32.0 s), once the baseline exists."""
TAIL = FPS
"""Normal frames after a fault (1 s)."""
DEFAULTS = {
    "signal_lost_s": 5.0,
    "frozen_s": 10.0,
    "covered_s": 4.0,
    "blur_s": 10.0,
    "moved_s": 5.0,
}
SHIFT = np.array([[1, 0, 20], [0, 1, 5]], np.float32)
"""The camera knocked 20 px sideways, 5 px down (5 % of the width; ``moved`` from 2 %)."""


@pytest.fixture(scope="module")
def plaza() -> list[Image]:
    """The first 40 s of vtest.avi at 5 fps (every other frame), shrunk to 384x288 (the
    analyser's thumbnail is 192x144 either way)."""
    if not FOOTAGE.exists():
        pytest.skip(f"footage not installed: {FOOTAGE}")
    cap = cv2.VideoCapture(str(FOOTAGE))
    frames: list[Image] = []
    try:
        k = 0
        while len(frames) < FRAMES:
            ok, img = cap.read()
            if not ok:
                break
            if k % 2 == 0:
                frames.append(u8(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)))
            k += 1
    finally:
        cap.release()
    assert len(frames) == FRAMES, "could not decode vtest.avi"
    return frames


def config(rules: Sequence[Mapping[str, Any]]) -> ArgusConfig:
    return parse_config({"cameras": [{"id": CAM, "source": str(FOOTAGE)}], "rules": rules}, "test")


def health_rule(**settings: float) -> CameraHealthRule:
    """The camera_health rule of a config with ``settings``, built as a worker builds it."""
    cfg = config([{"type": "camera_health", "camera": CAM, **settings}])
    rules, _ = RuleBook(cfg.cameras[0], NAMES, "test").build(cfg.rules)
    (rule,) = rules
    assert isinstance(rule, CameraHealthRule)
    return rule


def frame_info(k: int, t: float, scene: Any) -> FrameInfo:
    return FrameInfo(CAM, k, t, 1.7e9 + t, W, H, scene=scene)


def watch(
    rule: CameraHealthRule,
    frames: list[Image],
    faulty: Callable[[int, Image], Image],
    first: int,
    last: int,
    coarse_until: int = 0,
) -> list[Event]:
    """Play footage frame ``k`` at ``k / FPS`` s through a ``SceneAnalyzer`` into ``rule``:
    every 5th frame (1 fps) before ``coarse_until``, then every frame up to ``last +
    TAIL``; frames ``first..last`` show ``faulty(k, picture)``.  The events (seq = k)."""
    scene = SceneAnalyzer()
    events: list[Event] = []
    for k in [*range(0, coarse_until, FPS), *range(coarse_until, last + 1 + TAIL)]:
        t = k / FPS
        img = footage(frames, k)
        if first <= k <= last:
            img = faulty(k, img)
        events += rule.update(Detections.empty(NAMES), frame_info(k, t, scene.analyze(img, t)))
    return events


def cases(kind: str, setting: str, values: Sequence[float]) -> list[Any]:
    return [
        pytest.param(kind, setting, v, held, id=f"{setting}={v:g}-{held}")
        for v in values
        for held in ("under", "over")
    ]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("kind", "setting", "value", "held"),
    [
        *cases(FROZEN, "frozen_s", [3.0, 12.0]),
        *cases(COVERED, "covered_s", [2.0, 6.0]),
        *cases(MOVED, "moved_s", [2.0, 7.0]),
        *cases(BLUR, "blur_s", [4.0, 12.0]),
    ],
)
def test_each_hold_time_is_the_configured_one(
    plaza: list[Image], kind: str, setting: str, value: float, held: str
) -> None:
    """A fault seen on frames spanning ``value - 0.2`` s raises nothing; spanning
    ``value + 0.2`` s it raises one event at the frame ``value`` s after the onset, with
    ``start_s`` at the onset.  With the default instead of the setting this fails: for
    the values below the default (frozen 3 < 10, covered 2 < 4, moved 2 < 5, blur 4 <
    10) the "over" fault is still shorter than the default and raises nothing; for the
    values above it (frozen 12, covered 6, moved 7, blur 12) the "under" fault already
    outlasts the default and raises."""
    pictures: dict[str, Callable[[int, Image], Image]] = {
        FROZEN: lambda k, img: footage(plaza, ONSET - 1),  # the last live picture, repeated
        COVERED: lambda k, img: np.zeros_like(img),  # a black cap
        MOVED: lambda k, img: u8(cv2.warpAffine(img, SHIFT, (W, H), borderMode=cv2.BORDER_REFLECT)),
        BLUR: lambda k, img: u8(cv2.GaussianBlur(img, (0, 0), 1.5)),
    }
    assert value != DEFAULTS[setting]
    rule = health_rule(**{setting: value})
    first, coarse = (BLUR_ONSET, LEARN + 1) if kind == BLUR else (ONSET, 0)
    hold = round(value * FPS)  # frames after the onset until the event
    last = first + hold - 1 if held == "under" else first + hold + 1
    events = watch(rule, plaza, pictures[kind], first, last, coarse_until=coarse)
    if kind == BLUR:
        assert rule.blur_baseline is not None
    if held == "under":
        assert events == [], [(e.type, e.start_s) for e in events]
        return
    (event,) = events
    assert (event.type, event.start_s, event.start_seq, event.end_s) == (
        kind,
        first / FPS,
        first + hold,
        None,
    )


def silence(last_k: int, silent: float) -> FrameInfo:
    """What the runner's no-signal tick tells the rules ``silent`` s after frame ``last_k``."""
    t = last_k / FPS + silent
    return FrameInfo(CAM, last_k, t, 1.7e9 + t, W, H, scene=None, detected=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("value", "held"),
    [
        pytest.param(v, h, id=f"signal_lost_s={v:g}-{h}")
        for v in (2.0, 8.0)
        for h in ("under", "over")
    ],
)
def test_signal_lost_s_is_the_configured_one(plaza: list[Image], value: float, held: str) -> None:
    """Frames stop after 2 s; the runner's ticks (about once a second while silent) call
    ``no_signal``.  Silent ``value - 0.2`` s at the last tick raises nothing; silent
    ``value + 0.2`` s raises ``signal_lost`` with ``start_s`` when the next frame was due
    (0.2 s after the last), ended by the next frame.  With the default 5 s instead this
    fails: 2.2 s of silence would raise nothing, and 7.8 s would already have raised at
    the ticks at 5 s."""
    rule = health_rule(signal_lost_s=value)
    scene = SceneAnalyzer()
    events: list[Event] = []
    for k in range(ONSET + 1):
        t = k / FPS
        img = footage(plaza, k)
        events += rule.update(Detections.empty(NAMES), frame_info(k, t, scene.analyze(img, t)))
    assert events == []
    silent = value - 0.2 if held == "under" else value + 0.2
    for s in [*range(1, round(value)), silent]:
        events += rule.no_signal(silence(ONSET, s))
    back = ONSET / FPS + silent + 0.1  # the picture returns
    for j in range(TAIL):
        t = back + j / FPS
        img = footage(plaza, ONSET + 1 + j)
        events += rule.update(
            Detections.empty(NAMES), frame_info(ONSET + 1 + j, t, scene.analyze(img, t))
        )
    if held == "under":
        assert events == [], [(e.type, e.start_s) for e in events]
        return
    lost, ended = events
    assert (lost.type, lost.start_seq, lost.end_s) == ("signal_lost", ONSET, None)
    assert lost.start_s == pytest.approx((ONSET + 1) / FPS)
    assert lost.details["silent_s"] == pytest.approx(silent)
    assert ended.event_id == lost.event_id and ended.end_s == pytest.approx(back)


# --------------------------------------------------------------------------- hot reload

HEALTH: dict[str, Any] = {"type": "camera_health", "camera": CAM}
FALL: dict[str, Any] = {"type": "fall", "camera": CAM, "min_down_s": 3}


class Reconfigures:
    """Stands in for the runner: records the rule sets ``LiveConfig`` hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Rule], dict[str, RulePolicy]]] = []

    def reconfigure(
        self, camera_id: str, rules: Sequence[Rule], policies: Mapping[str, RulePolicy]
    ) -> None:
        self.calls.append((camera_id, list(rules), dict(policies)))

    def set_suppressions(self, suppressions: object) -> None:
        pass


def hold_times(rule: Rule) -> dict[str, float]:
    assert isinstance(rule, CameraHealthRule)
    return {**rule.hold_s, "signal_lost": rule.signal_lost_s}


@pytest.mark.unit
def test_a_changed_frozen_s_rebuilds_only_the_health_rule_and_bad_values_are_refused() -> None:
    cfg = config([HEALTH, FALL])
    book = RuleBook(cfg.cameras[0], NAMES, "test")
    (health, fall), _ = book.build(cfg.rules)  # as build_pipeline does at start
    runner = Reconfigures()
    live = LiveConfig(cfg, cast(Runner, runner), {CAM: book}, NAMES)

    live.on_change(RULES_KEY, rules_message(1, [HEALTH | {"frozen_s": 3}, FALL], 1.7e9))
    assert live.revision == 1 and live.rejected == []
    (cam, (health1, fall1), policies) = runner.calls[-1]
    assert cam == CAM and set(policies) == {"camera_health", "fall"}
    assert health1 is not health  # rebuilt with the new value ...
    assert hold_times(health1) == {
        FROZEN: 3.0, COVERED: 4.0, MOVED: 5.0, BLUR: 10.0, "signal_lost": 5.0
    }  # fmt: skip
    assert hold_times(health) == {
        FROZEN: 10.0, COVERED: 4.0, MOVED: 5.0, BLUR: 10.0, "signal_lost": 5.0
    }  # fmt: skip
    assert fall1 is fall  # ... the unchanged rule keeps its object (and state)

    # another rule changes, camera_health's config does not: it keeps its object
    live.on_change(
        RULES_KEY, rules_message(2, [HEALTH | {"frozen_s": 3}, FALL | {"min_down_s": 4}], 1.7e9)
    )
    assert live.revision == 2
    (_, (health2, fall2), _) = runner.calls[-1]
    assert health2 is health1 and fall2 is not fall1

    # refused: the rules in force stay, nothing reaches the runner
    calls = len(runner.calls)
    for revision, bad in enumerate([0, "3", -1, 3601, True], start=3):
        live.on_change(
            RULES_KEY, rules_message(revision, [FALL, HEALTH | {"frozen_s": bad}], 1.7e9)
        )
        assert [p for p in live.rejected if p.startswith("rules.1.frozen_s")], live.rejected
        assert live.revision == 2 and len(runner.calls) == calls


@pytest.mark.unit
@pytest.mark.parametrize("setting", sorted(DEFAULTS))
@pytest.mark.parametrize("bad", [0, -1, "3", True, 3601, None])
def test_api_validation_names_a_bad_duration(setting: str, bad: object) -> None:
    cfg = config([HEALTH])
    problems = validate_rules([FALL, HEALTH | {setting: bad}], cfg, NAMES)
    assert problems and all(p.startswith(f"rules.1.{setting}: ") for p in problems), problems
    assert validate_rules([FALL, HEALTH | {setting: 3}], cfg, NAMES) == []
    # signal_lost_s is checked once a second by the runner: at least 1 s
    short = validate_rules([FALL, HEALTH | {setting: 0.5}], cfg, NAMES)
    if setting == "signal_lost_s":
        assert short == [
            "rules.1.signal_lost_s: Input should be greater than or equal to 1 (got 0.5)"
        ]
    else:
        assert short == []


class Footage(ScriptedSource):
    """The footage as a file read as fast as possible, 5 fps, ``n`` frames; frames
    ``frozen[0]..frozen[1]`` repeat the picture before them; ``hooks[seq]()`` runs just
    before frame ``seq`` is delivered."""

    def __init__(
        self,
        frames: list[Image],
        n: int,
        frozen: tuple[int, int],
        hooks: Mapping[int, Callable[[], None]],
    ) -> None:
        super().__init__(CAM, n)
        self.pictures = frames
        self.n = n
        self.frozen = frozen
        self.hooks = hooks

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        for k in range(self.n):
            if k in self.hooks:
                self.hooks[k]()
            a, b = self.frozen
            img = footage(self.pictures, a - 1 if a <= k <= b else k)
            yield Frame(CAM, k, k / FPS, time.time(), img.copy())
        self.state = SourceState.ENDED


@pytest.mark.integration
def test_a_running_camera_applies_a_new_frozen_s(plaza: list[Image], tmp_path: Path) -> None:
    """The worker starts with the default ``frozen_s`` (10 s); at frame 2 an operator's
    rule set with ``frozen_s: 3`` arrives on the in-process control channel.  The
    picture then freezes for 5 s (frames 4.0..8.8 s): only the new setting raises it,
    3 s after the onset, with ``start_s`` at the onset."""
    cfg = config([HEALTH])
    book = RuleBook(cfg.cameras[0], NAMES, "test")
    rules, policies = book.build(cfg.rules)
    (configured,) = rules
    ready = threading.Condition()
    control = InProcessControl()
    update = rules_message(1, [HEALTH | {"frozen_s": 3}], time.time())
    source = Footage(plaza, 70, (20, 44), {2: lambda: control.publish(RULES_KEY, update)})
    cam = CameraRuntime(
        camera_id=CAM,
        source=source,
        selector=CameraSelector(CAM, ByteTracker(frame_rate=FPS), rules, policies),
        slot=FrameSlot(4, "block", ready),
        scene=SceneAnalyzer(),
    )
    bus = InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(records.append)
    runner = Runner(
        [cam],
        lambda images: [Detections.empty(NAMES) for _ in images],
        bus,
        LocalEvidenceStore(tmp_path / "ev"),
        ready=ready,
        batch_size=3,
    )
    live = LiveConfig(cfg, runner, {CAM: book}, NAMES)
    control.subscribe(live.on_change)
    assert runner.run().ok
    assert live.revision == 1 and live.rejected == []
    (rule,) = cam.selector.rules
    assert rule is not configured and hold_times(rule)[FROZEN] == 3.0
    got = [(r["type"], r["start_s"], r["start_seq"], r["end_s"]) for r in records]
    # started at 7.0 s (frame 35), ended after clear_s (3 s) of a live picture from 9.0 s
    assert got == [("frozen", 4.0, 35, None), ("frozen", 4.0, 35, 9.0)], got
