"""Camera health: frozen picture, covered lens, blur, camera moved, signal lost.

Reads only :attr:`selector.rules.base.FrameInfo.scene` (the numbers of
:class:`detectors.scene.SceneAnalyzer`); tracks are ignored.  Frames without scene
stats are skipped (they still count as frames for ``signal_lost``).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from detectors.detections import Detections
from detectors.scene import SceneStats
from selector.event import Event
from selector.rules.base import FrameInfo, RuleError
from selector.rules.common import (
    TIME_EPS_S,
    RuleBase,
    check_camera,
    check_end_s,
    check_fraction,
    check_priority_inputs,
    check_seconds,
    make_event,
)
from selector.rules.config import RuleConfigBase
from selector.rules.registry import BuildContext, EventWords, RuleType, register

logger = logging.getLogger(__name__)

SIGNAL_LOST = "signal_lost"
COVERED = "covered"
FROZEN = "frozen"
MOVED = "moved"
BLUR = "blur"

KINDS: tuple[str, ...] = (SIGNAL_LOST, COVERED, FROZEN, MOVED, BLUR)
"""Event types of the rule, in the order events of one frame are reported."""

KEYS: Mapping[str, int] = {SIGNAL_LOST: 1, COVERED: 2, FROZEN: 3, MOVED: 4, BLUR: 5}
"""``make_event`` key per kind: events of several kinds starting at one frame get
distinct ids."""

DEFAULT_SEVERITIES: Mapping[str, int] = {
    SIGNAL_LOST: 70,
    COVERED: 70,
    MOVED: 60,
    FROZEN: 60,
    BLUR: 40,
}

SHARPNESS_LEVEL_FLOOR = 16.0
"""Brightness (grey level) below which the normalised sharpness divides by this."""

BLUR_MIN_SAMPLES = 5
"""Frames the sharpness baseline needs at least (besides ``blur_learn_s``)."""

Details = dict[str, float | int | str | bool]


@dataclass(slots=True)
class _State:
    """One kind's condition and event (video seconds)."""

    onset: float | None = None  # condition true without a break since then (no event yet)
    event: Event | None = None  # the open event
    clear_since: float | None = None  # open event: condition false since then


class CameraHealthRule(RuleBase):
    """Raises camera-health events from the per-frame scene measures.

    Conditions, evaluated on every frame with ``scene`` (``t`` = ``frame.pts_s``):

    * ``covered``: the lens is covered or blinded: ``blank_fraction >= covered_blank``
      (most of the reference's texture went flat: a hand, a cap, spray, a flashlight)
      or ``contrast < covered_contrast`` (a uniform picture, whatever its brightness).
      A darker picture of the same scene (dusk, lights dimmed, night) is not covered:
      ``blank_fraction`` compares texture relative to the light level; but a picture
      gone uniform (a room with the lights off and no infrared) is: it is blind.
    * ``frozen``: ``frame_diff <= frozen_diff`` (no change at all since the previous
      frame: a real camera's sensor noise always changes a little, about 0.2 grey
      levels on the thumbnail even for a clean sensor) and not covered (a capped lens
      is also still).  An encoder that repeats static regions exactly still sends a
      fresh key frame every GOP, so ``frozen_s`` must exceed the key-frame interval.
    * ``moved``: not covered, and ``shift_px >= moved_shift * frame.width`` or
      ``reference_similarity < moved_similarity`` (the view changed: bumped, turned,
      or mostly blocked).
    * ``blur``: not covered, and the normalised sharpness ``sharpness / brightness**2``
      (unchanged when the light level changes; brightness floored at
      ``SHARPNESS_LEVEL_FLOOR``) is below ``blur_ratio`` times the baseline:
      the median of that measure over the first ``blur_learn_s`` seconds of frames
      that were neither covered nor moved (at least ``BLUR_MIN_SAMPLES`` frames).
      Until the baseline exists ``blur`` cannot start.
    * ``signal_lost``: no frame for ``signal_lost_s``; checked by :meth:`no_signal`,
      which the runner calls while the source delivers nothing.

    Each kind raises one event per occurrence.  It starts at the first frame at which
    its condition has held on every frame for its hold time (``frozen_s``,
    ``covered_s``, ``moved_s``, ``blur_s``); ``start_s`` is the onset (the first
    frame of that run), ``start_seq``/``wall_time`` those of the raising frame.  It
    ends at the first frame at which the condition has been false on every frame for
    ``clear_s``; ``end_s`` is the first of those normal frames.  A gap of more than
    ``signal_lost_s`` between frames restarts the hold of conditions not yet raised.
    ``signal_lost`` starts when :meth:`no_signal` is called ``signal_lost_s`` or more
    after the last frame, with ``start_s`` = when the next frame was due (last frame
    time + the last frame interval, at most ``signal_lost_s``), and ends at the next
    frame (``end_s`` = its time).

    Events: ``zone``, ``track_id``, ``label``, ``score``, ``bbox`` are ``None``;
    priority from the kind's severity; ``details`` carry the measures at the raising
    frame (``frozen``: ``frame_diff``; ``covered``: ``brightness``, ``contrast``,
    ``blank_fraction``; ``moved``: ``shift_px``, ``reference_similarity``; ``blur``:
    ``sharpness`` (normalised), ``baseline``, ``ratio``; ``signal_lost``:
    ``silent_s``, ``last_frame_s``).

    Args:
        rule_id: Stable id, e.g. ``"camera_health"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        frozen_s: Hold time of ``frozen``, s (> 0).
        covered_s: Hold time of ``covered``, s (> 0).
        moved_s: Hold time of ``moved``, s (> 0).
        blur_s: Hold time of ``blur``, s (> 0).
        signal_lost_s: Silence before ``signal_lost``, s (> 0).
        clear_s: Time a condition must be false to end its event, s (>= 0).
        frozen_diff: Largest ``frame_diff`` (grey levels, 0..255) that counts as no
            change (>= 0).
        covered_contrast: Contrast (grey std) below which the picture is uniform (>= 0).
        covered_blank: ``blank_fraction`` from which the lens counts as covered, [0, 1].
        moved_shift: Shift from which the camera moved, fraction of the frame width,
            [0, 1].
        moved_similarity: Reference similarity below which the view changed, [0, 1].
        blur_ratio: Normalised sharpness below this fraction of the baseline is blur,
            [0, 1].
        blur_learn_s: Time over which the sharpness baseline is learnt, s (> 0).
        severities: Severity (0..100) per kind, overriding ``DEFAULT_SEVERITIES``.
        checks: Kinds that raise events (``None``: all of ``KINDS``).  The others are
            still evaluated where they matter to the rest (a covered lens is never
            reported as frozen, even when ``covered`` is not checked).

    Raises:
        RuleError: For an invalid argument; the message names the rule and the value.
    """

    uses_scene = True
    """Reads ``FrameInfo.scene`` (see :func:`selector.rules.base.needs_scene`)."""

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        *,
        frozen_s: float = 10.0,
        covered_s: float = 4.0,
        moved_s: float = 5.0,
        blur_s: float = 10.0,
        signal_lost_s: float = 5.0,
        clear_s: float = 3.0,
        frozen_diff: float = 0.05,
        covered_contrast: float = 3.0,
        covered_blank: float = 0.5,
        moved_shift: float = 0.02,
        moved_similarity: float = 0.4,
        blur_ratio: float = 0.3,
        blur_learn_s: float = 30.0,
        severities: Mapping[str, int] | None = None,
        checks: Collection[str] | None = None,
    ) -> None:
        super().__init__(rule_id, camera_id)
        r = rule_id
        self.hold_s: dict[str, float] = {
            COVERED: check_seconds(r, "covered_s", covered_s, positive=True),
            FROZEN: check_seconds(r, "frozen_s", frozen_s, positive=True),
            MOVED: check_seconds(r, "moved_s", moved_s, positive=True),
            BLUR: check_seconds(r, "blur_s", blur_s, positive=True),
        }
        self.signal_lost_s = check_seconds(r, "signal_lost_s", signal_lost_s, positive=True)
        self.clear_s = check_seconds(r, "clear_s", clear_s)
        self.frozen_diff = check_seconds(r, "frozen_diff", frozen_diff)
        self.covered_contrast = check_seconds(r, "covered_contrast", covered_contrast)
        self.covered_blank = check_fraction(r, "covered_blank", covered_blank)
        self.moved_shift = check_fraction(r, "moved_shift", moved_shift)
        self.moved_similarity = check_fraction(r, "moved_similarity", moved_similarity)
        self.blur_ratio = check_fraction(r, "blur_ratio", blur_ratio)
        self.blur_learn_s = check_seconds(r, "blur_learn_s", blur_learn_s, positive=True)
        unknown = sorted(set(severities or {}) - set(KINDS))
        if unknown:
            raise RuleError(f"rule {r!r}: unknown kinds in severities: {unknown}")
        self.severities = {**DEFAULT_SEVERITIES, **(severities or {})}
        if checks is not None:
            bad = sorted(set(checks) - set(KINDS))
            if bad or not checks:
                raise RuleError(
                    f"rule {r!r}: checks must be a non-empty subset of {list(KINDS)}, "
                    f"got {sorted(checks)!r}"
                )
        self.checks = frozenset(KINDS if checks is None else checks)
        for kind in KINDS:
            check_priority_inputs(r, self.severities[kind], 1.0)
        self._states = {kind: _State() for kind in KINDS}
        self._last_t: float | None = None  # time of the last real frame
        self._last_interval: float | None = None
        self._blur_samples: list[float] = []
        self._blur_learn_start: float | None = None
        self.blur_baseline: float | None = None
        """Median normalised sharpness of the learning period, once learnt."""

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, in ``KINDS`` order."""
        return [s.event for s in self._states.values() if s.event is not None]

    # ------------------------------------------------------------------ frames

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame (its ``scene``; ``tracks`` and ``ended_ids`` are ignored).

        Returns:
            Ended events, then started ones, each in ``KINDS`` order.

        Raises:
            RuleError: For a frame of another camera.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        events: list[Event] = []
        lost = self._states[SIGNAL_LOST]
        if lost.event is not None:  # the signal is back
            events.append(self._end(SIGNAL_LOST, max(lost.event.start_s, t)))
        if self._last_t is not None:
            gap = t - self._last_t
            if gap > self.signal_lost_s:  # holds do not run across an outage
                for state in self._states.values():
                    state.onset = None
            elif gap > 0.0:
                self._last_interval = gap
        self._last_t = t if self._last_t is None else max(self._last_t, t)
        scene = frame.scene
        if scene is None:
            return events
        now = self._conditions(scene, frame)
        started: list[Event] = []
        for kind in KINDS[1:]:
            cond, details = now[kind]
            ended, start = self._step(kind, cond, details, frame)
            events.extend(ended)
            started.extend(start)
        return events + started

    def no_signal(self, frame: FrameInfo) -> list[Event]:
        """Check for a lost signal while the source delivers nothing.

        Args:
            frame: The camera's last frame description, with ``pts_s`` / ``wall_time``
                set to the current estimated stream time (``seq`` stays the last one).
                Before any frame arrived, the silence counts from ``pts_s`` 0.

        Returns:
            The started ``signal_lost`` event, or nothing (already open, or silent for
            less than ``signal_lost_s``).

        Raises:
            RuleError: For a frame of another camera.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        state = self._states[SIGNAL_LOST]
        if SIGNAL_LOST not in self.checks:
            return []
        last = 0.0 if self._last_t is None else self._last_t
        silent = frame.pts_s - last
        if state.event is not None or silent < self.signal_lost_s - TIME_EPS_S:
            return []
        due = last + min(self._last_interval or 0.0, self.signal_lost_s)
        details: Details = {"silent_s": round(silent, 3), "last_frame_s": round(last, 3)}
        state.event = self._start(SIGNAL_LOST, frame, due, details)
        return [state.event]

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at ``end_s`` (the last frame's time) and reset.

        The learnt sharpness baseline is kept.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        events = [
            self._end(kind, max(state.event.start_s, end_s))
            for kind, state in self._states.items()
            if state.event is not None
        ]
        self._states = {kind: _State() for kind in KINDS}
        self._last_t = None
        self._last_interval = None
        return events

    # ------------------------------------------------------------------ internals

    def _conditions(self, s: SceneStats, frame: FrameInfo) -> dict[str, tuple[bool, Details]]:
        """Each kind's instantaneous condition and the measures behind it."""
        covered = s.blank_fraction >= self.covered_blank or s.contrast < self.covered_contrast
        moved = not covered and (
            s.shift_px >= self.moved_shift * frame.width
            or s.reference_similarity < self.moved_similarity
        )
        level = max(s.brightness, SHARPNESS_LEVEL_FLOOR)
        sharp = s.sharpness / (level * level)
        if not covered and not moved:
            self._learn_blur(sharp, frame.pts_s)
        base = self.blur_baseline
        blur = not covered and base is not None and sharp < self.blur_ratio * base
        ratio = sharp / base if base else 0.0
        return {
            COVERED: (
                covered,
                {
                    "brightness": round(s.brightness, 2),
                    "contrast": round(s.contrast, 2),
                    "blank_fraction": round(s.blank_fraction, 3),
                },
            ),
            FROZEN: (
                not covered and s.frame_diff <= self.frozen_diff,
                {"frame_diff": round(s.frame_diff, 4)},
            ),
            MOVED: (
                moved,
                {
                    "shift_px": round(s.shift_px, 1),
                    "reference_similarity": round(s.reference_similarity, 3),
                },
            ),
            BLUR: (
                blur,
                {
                    "sharpness": round(sharp, 4),
                    "baseline": round(base or 0.0, 4),
                    "ratio": round(ratio, 3),
                },
            ),
        }

    def _learn_blur(self, sharp: float, t: float) -> None:
        """Collect the sharpness baseline over the first ``blur_learn_s`` seconds."""
        if self.blur_baseline is not None:
            return
        if self._blur_learn_start is None:
            self._blur_learn_start = t
        self._blur_samples.append(sharp)
        done = t - self._blur_learn_start >= self.blur_learn_s - TIME_EPS_S
        if done and len(self._blur_samples) >= BLUR_MIN_SAMPLES:
            self.blur_baseline = statistics.median(self._blur_samples)
            self._blur_samples = []

    def _step(
        self, kind: str, cond: bool, details: Details, frame: FrameInfo
    ) -> tuple[list[Event], list[Event]]:
        """Advance one kind's state machine; (ended, started) events."""
        state = self._states[kind]
        t = frame.pts_s
        if kind not in self.checks:
            return [], []
        if state.event is None:
            if not cond:
                state.onset = None
                return [], []
            if state.onset is None:
                state.onset = t
            if t - state.onset < self.hold_s[kind] - TIME_EPS_S:
                return [], []
            state.event = self._start(kind, frame, state.onset, details)
            state.onset = state.clear_since = None
            return [], [state.event]
        if cond:
            state.clear_since = None
            return [], []
        if state.clear_since is None:
            state.clear_since = t
        if t - state.clear_since < self.clear_s - TIME_EPS_S:
            return [], []
        return [self._end(kind, state.clear_since)], []

    def _start(self, kind: str, frame: FrameInfo, start_s: float, details: Details) -> Event:
        event = make_event(
            rule_id=self._rule_id,
            event_type=kind,
            frame=frame,
            severity=self.severities[kind],
            zone=None,
            start_s=start_s,
            details=details,
            key=KEYS[kind],
        )
        logger.info(
            "camera health: %s started: camera=%s rule=%s t=%.3f details=%s",
            kind,
            self.camera_id,
            self._rule_id,
            event.start_s,
            details,
        )
        return event

    def _end(self, kind: str, end_s: float) -> Event:
        state = self._states[kind]
        assert state.event is not None
        event = state.event.closed(max(state.event.start_s, end_s))
        state.event = None
        state.onset = state.clear_since = None
        logger.info(
            "camera health: %s ended: camera=%s rule=%s t=%.3f..%.3f",
            kind,
            self.camera_id,
            self._rule_id,
            event.start_s,
            event.end_s,
        )
        return event


# ------------------------------------------------------------------------ registration

HealthCheck = Literal["signal_lost", "frozen", "covered", "blur", "moved"]


def _all_checks() -> list[HealthCheck]:
    return ["signal_lost", "frozen", "covered", "blur", "moved"]


def _hold(default: float, what: str) -> float:
    return Field(
        default,
        gt=0.0,
        le=3600.0,
        description=f"Seconds {what} before the event is raised.",
    )


class CameraHealthRuleConfig(RuleConfigBase):
    """Signal lost, frozen picture, lens covered, camera moved, picture out of focus."""

    type: Literal["camera_health"]
    checks: list[HealthCheck] = Field(
        default_factory=_all_checks,
        min_length=1,
        description="Which conditions raise events.",
    )
    severity: int | None = Field(  # type: ignore[assignment]
        None,
        ge=0,
        le=100,
        description="Base priority of all its events (default: per condition, 40-70).",
    )
    cooldown_s: float = Field(30.0, ge=0.0, le=3600.0, description="See other rules.")
    signal_lost_s: float = Field(
        5.0,
        ge=1.0,  # the runner checks for silence once a second (NO_SIGNAL_TICK_S)
        le=3600.0,
        description=(
            "Seconds without any frame before signal_lost is raised (at least 1 s, and "
            "more than the stream's frame interval: a longer gap between frames also "
            "restarts the hold of the other checks)."
        ),
    )
    frozen_s: float = _hold(10.0, "of a picture that does not change at all")
    covered_s: float = _hold(4.0, "of a covered or blinded lens")
    blur_s: float = _hold(10.0, "of a picture out of focus")
    moved_s: float = _hold(5.0, "of a changed view (camera bumped or turned)")


def build_camera_health(cfg: CameraHealthRuleConfig, ctx: BuildContext) -> CameraHealthRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return CameraHealthRule(
        rule_id=cfg.rule_id,
        camera_id=ctx.camera_id,
        checks=frozenset(cfg.checks),
        severities=None if cfg.severity is None else dict.fromkeys(cfg.checks, cfg.severity),
        signal_lost_s=cfg.signal_lost_s,
        frozen_s=cfg.frozen_s,
        covered_s=cfg.covered_s,
        blur_s=cfg.blur_s,
        moved_s=cfg.moved_s,
    )


RULE = register(
    RuleType(
        type="camera_health",
        config=CameraHealthRuleConfig,
        build=build_camera_health,
        events={
            SIGNAL_LOST: EventWords(
                "Camera signal lost", "No picture from the camera[ for {duration}]"
            ),
            FROZEN: EventWords("Camera frozen", "The picture stopped changing[ for {duration}]"),
            COVERED: EventWords(
                "Camera covered", "The lens is covered or blinded[ for {duration}]"
            ),
            BLUR: EventWords("Camera blurred", "The picture is out of focus[ for {duration}]"),
            MOVED: EventWords("Camera moved", "The camera's view has changed[ for {duration}]"),
        },
    )
)
