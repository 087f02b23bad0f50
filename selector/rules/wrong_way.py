"""Wrong way: a tracked object moves against a zone's allowed direction of travel."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from detectors.detections import Detections
from selector.event import Event
from selector.ground import PERSON_HEIGHT_M, GroundModel, Reach
from selector.rules.base import FrameInfo, RuleError
from selector.rules.common import (
    TIME_EPS_S,
    TrackRule,
    check_camera,
    check_classes,
    check_end_s,
    check_seconds,
    eligible,
    open_events_of,
    zone_weight_of,
)
from selector.rules.config import TrackRuleConfig
from selector.rules.registry import BuildContext, EventWords, RuleType, register
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

EVENT_TYPE = "wrong_way"

MIN_SPAN = 0.5
"""Share of ``window_s`` the samples must span before a velocity is estimated."""

MIN_PICTURE_SPEED_PX = 2.0
"""Slowest motion of the feet in the picture, pixels per second, that counts as moving:
slower is within a detector's jitter.  Far from the camera a pixel along the picture is
a metre or more on the floor, so without it a ground model would turn jitter into speed."""


@dataclass(frozen=True, slots=True)
class _Motion:
    """A track's motion over the velocity window.

    Attributes:
        speed: Body heights per second (on the ground where there is a ground model,
            else box heights per second in the picture).
        angle: Degrees between the heading and the wrong way (0: straight against the
            allowed direction, 180: along it).
        speed_m_s: Metres per second on the ground, or ``None`` without a ground model.
    """

    speed: float
    angle: float
    speed_m_s: float | None = None

    def fast_enough(self, reach: Reach) -> bool:
        """Whether it moves at least ``reach`` (per second)."""
        if self.speed_m_s is not None:
            return self.speed_m_s >= reach.ground_m
        return self.speed >= reach.image_px(1.0)


_STILL = _Motion(0.0, 180.0)


def _angle(v: tuple[float, float], allowed: npt.ArrayLike) -> float:
    """Degrees between ``v`` and the opposite of ``allowed`` (any non-zero lengths)."""
    a = np.asarray(allowed, np.float64)
    n = math.hypot(*v) * float(np.hypot(a[0], a[1]))
    if n == 0.0:
        return 180.0
    cos = -(v[0] * float(a[0]) + v[1] * float(a[1])) / n
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


@dataclass(slots=True)
class _Mover:
    """One track: recent ground points and its current wrong-way run (video seconds)."""

    samples: deque[tuple[float, float, float, float]] = field(default_factory=deque)  # t,x,y,h
    onset_s: float | None = None  # first wrong-way frame of the run; None: no run
    last_wrong_s: float = 0.0  # last wrong-way frame of the run
    broken: bool = False  # seen not going the wrong way since last_wrong_s
    event: Event | None = None


class WrongWayRule(TrackRule):
    """Raises one ``"wrong_way"`` event per run of a track against the allowed direction.

    Semantics, times in video seconds (``FrameInfo.pts_s``), positions in pixels:

    * Velocity: each tracked row (``tracker_id >= 1``) adds its ground point (bottom
      centre of the box) to the track's samples; the velocity is the least-squares
      slope of the samples of the last ``window_s`` seconds (smoothing detector
      jitter), estimated once they span at least ``MIN_SPAN * window_s``.  Where the
      camera has a ground model (``FrameInfo.ground``) the samples are carried to the
      floor, and so is the allowed direction at the track's place: the speed is in
      metres per second, and in *body heights per second* (over
      :data:`selector.ground.PERSON_HEIGHT_M`); a step toward the camera then counts
      as much as one across.  Without one, speed is in *box heights per second*
      (pixel speed / median box height of the window), so one threshold fits near
      and far people.  A walker does about 0.8 heights/s (1.3 m/s); the default
      ``min_speed`` 0.2 is a slow shuffle.
    * A row is *going the wrong way* when its class is in ``classes`` (any if
      ``None``), its score ``>= min_score``, its ground point in ``zone``, its speed
      ``>= min_speed`` and its velocity within ``max_angle_deg`` of the opposite of
      ``direction`` (the allowed direction of travel, image axes x right y down).  A
      row seen standing still, moving another way, outside the zone or filtered out is
      *not* going the wrong way.  A row whose velocity cannot be estimated yet (new
      track, back from a long occlusion) tells nothing.
    * A run begins (*onset*) at the first frame going the wrong way.  Frames not going
      the wrong way for less than ``grace_s`` (from the last wrong-way frame) do not
      break it.  ONE event starts at the first wrong-way frame with ``t - onset >=
      min_duration_s``; ``start_s = onset + min_duration_s``, with that frame's box,
      score, label, ``seq`` and wall time; ``details={"speed": body heights/s,
      "speed_m_s": metres/s (with a ground model only),
      "angle_deg": angle from the opposite of the allowed direction}``.
    * The run ends at the first frame not going the wrong way ``>= grace_s`` after the
      last wrong-way frame (stopped, turned round, left the zone), or when the
      tracker removes the track (``ended_ids``); the event ends with ``end_s`` = the
      last wrong-way frame's time.
    * A track missing from a frame (occluded, held by the tracker) keeps its run.  A
      frame with ``frame.detected == False`` (detector skipped by motion gating)
      carries no information through absent tracks and so never ends a run (rows it
      does carry are used as usual).

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"wrong_way:exit"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: The zone watched.
        direction: ``(dx, dy)`` allowed direction of travel in image axes (any finite
            non-zero vector; normalised).
        classes: Class ids that count, or ``None`` for all.
        class_names: Class names of the model (index = class id); labels come from it
            when given, else from ``Detections.labels``.
        min_duration_s: Seconds of wrong-way travel before the event starts (>= 0).
        max_angle_deg: Largest angle between the velocity and the opposite of
            ``direction`` that counts as wrong way, degrees in (0, 90).
        min_speed: Slowest wrong-way speed, body heights per second (> 0).
        min_speed_m: The same in metres per second (> 0), for a calibrated camera; it
            replaces ``min_speed``.
        window_s: Length of the velocity window, seconds (> 0).
        grace_s: Seconds not going the wrong way tolerated within one run (>= 0).
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Detections below this score do not count, [0, 1].
        zone_weight: Priority multiplier of the zone (finite, >= 0); ``None`` uses
            ``zone.weight``.

    Raises:
        RuleError: For an invalid argument; the message names the rule and the value.
    """

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        zone: PolygonZone,
        direction: tuple[float, float],
        classes: Collection[int] | None,
        class_names: Sequence[str] = (),
        min_duration_s: float = 2.0,
        max_angle_deg: float = 60.0,
        min_speed: float = 0.2,
        min_speed_m: float | None = None,
        window_s: float = 1.0,
        grace_s: float = 1.0,
        severity: int = 60,
        min_score: float = 0.0,
        zone_weight: float | None = None,
    ) -> None:
        super().__init__(rule_id, camera_id)
        try:
            dx, dy = (float(v) for v in direction)
        except (TypeError, ValueError) as e:
            raise RuleError(
                f"rule {rule_id!r}: direction must be two numbers (dx, dy), got {direction!r}"
            ) from e
        norm = math.hypot(dx, dy)
        if not (math.isfinite(norm) and norm > 0.0):
            raise RuleError(
                f"rule {rule_id!r}: direction must be finite and non-zero, got {direction!r}"
            )
        if not (math.isfinite(max_angle_deg) and 0.0 < max_angle_deg < 90.0):
            raise RuleError(
                f"rule {rule_id!r}: max_angle_deg must be in (0, 90), got {max_angle_deg!r}"
            )
        self.min_duration_s = check_seconds(rule_id, "min_duration_s", min_duration_s)
        self.min_speed = check_seconds(rule_id, "min_speed", min_speed, positive=True)
        self.reach = Reach(
            self.min_speed,
            None
            if min_speed_m is None
            else check_seconds(rule_id, "min_speed_m", min_speed_m, positive=True),
        )
        self._ground: GroundModel | None = None  # this frame's (FrameInfo.ground)
        self.window_s = check_seconds(rule_id, "window_s", window_s, positive=True)
        self.grace_s = check_seconds(rule_id, "grace_s", grace_s)
        self._init_scoring(severity, zone_weight_of(zone, zone_weight), min_score, class_names)
        self.classes = check_classes(rule_id, classes, class_names)
        self.zone = zone
        self.direction = (dx / norm, dy / norm)
        self.max_angle_deg = float(max_angle_deg)
        self._cos_max = math.cos(math.radians(max_angle_deg))
        self._movers: dict[int, _Mover] = {}

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, by track id."""
        return open_events_of(self._movers)

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame's tracks; return events started or ended in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`.

        Returns:
            Ended and started events ordered by track id, a track's end before its start.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        self._ground = frame.ground
        events: list[Event] = []
        for tid in sorted({int(v) for v in ended_ids}):
            mover = self._movers.pop(tid, None)
            if mover is not None:
                events.extend(self._finish(mover))
        ok = eligible(tracks, self.classes, self.min_score) & self.zone.trigger(tracks)
        ground = tracks.ground_points.astype(np.float64)
        tracked = np.flatnonzero(tracks.tracker_id >= 1).tolist()
        for i in sorted(tracked, key=lambda i: int(tracks.tracker_id[i])):
            tid = int(tracks.tracker_id[i])
            mover = self._movers.setdefault(tid, _Mover())
            height = float(tracks.xyxy[i, 3] - tracks.xyxy[i, 1])
            mover.samples.append((t, float(ground[i, 0]), float(ground[i, 1]), height))
            while mover.samples and mover.samples[0][0] < t - self.window_s - TIME_EPS_S:
                mover.samples.popleft()
            motion = self._motion(mover) if ok[i] else _STILL
            if motion is None:
                continue  # velocity unknown yet: no information
            wrong = motion.fast_enough(self.reach) and motion.angle <= self.max_angle_deg + 1e-9
            if wrong:
                if mover.onset_s is not None and mover.broken and self._grace_over(mover, t):
                    events.extend(self._finish(mover))  # a long break nobody concluded
                if mover.onset_s is None:
                    mover.onset_s = t
                mover.last_wrong_s, mover.broken = t, False
                if mover.event is None and t - mover.onset_s >= self.min_duration_s - TIME_EPS_S:
                    mover.event = self._start(
                        tracks, i, frame, mover.onset_s + self.min_duration_s, motion
                    )
                    events.append(mover.event)
            elif mover.onset_s is not None:
                mover.broken = True
                if self._grace_over(mover, t):
                    events.extend(self._finish(mover))
        events.sort(key=lambda e: e.track_id or 0)  # stable: a track's end stays first
        return events

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream and forget all tracks.

        Each event ends at ``min(end_s, its track's last wrong-way frame)``.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        events: list[Event] = []
        for _, mover in sorted(self._movers.items()):
            mover.last_wrong_s = min(mover.last_wrong_s, end_s)
            events.extend(self._finish(mover))
        self._movers.clear()
        return events

    def _motion(self, mover: _Mover) -> _Motion | None:
        """The track's speed and heading from its samples, or ``None`` while they span
        less than ``MIN_SPAN * window_s``; a still track gives :data:`_STILL`.

        On the ground where the camera has a ground model (the allowed direction is
        carried to the floor at the track's place), else in the picture.  Feet moving
        less than ``MIN_PICTURE_SPEED_PX`` in the picture are still.
        """
        s = np.array(mover.samples, np.float64)  # (n, 4): t, x, y, h
        ts = s[:, 0] - s[:, 0].mean()
        if ts[-1] - ts[0] < MIN_SPAN * self.window_s - TIME_EPS_S:
            return None
        h = float(np.median(s[:, 3]))
        if h <= 0.0:
            return _STILL
        var = float(ts @ ts)
        vx = float(ts @ (s[:, 1] - s[:, 1].mean())) / var
        vy = float(ts @ (s[:, 2] - s[:, 2].mean())) / var
        if math.hypot(vx, vy) < MIN_PICTURE_SPEED_PX:
            return _STILL  # within the detector's jitter, whatever it is on the floor
        model = self._ground
        if model is not None:
            here = s[-1, 1:3]
            g = model.to_ground(np.vstack([s[:, 1:3], here + np.array(self.direction) * h]))
            if np.all(np.isfinite(g)):
                gx = float(ts @ (g[:-1, 0] - g[:-1, 0].mean())) / var
                gy = float(ts @ (g[:-1, 1] - g[:-1, 1].mean())) / var
                allowed = g[-1] - g[-2]
                v = math.hypot(gx, gy)
                if v == 0.0:
                    return _STILL
                return _Motion(v / PERSON_HEIGHT_M, _angle((gx, gy), allowed), v)
        return _Motion(math.hypot(vx, vy) / h, _angle((vx, vy), self.direction))

    def _grace_over(self, mover: _Mover, t: float) -> bool:
        return t - mover.last_wrong_s >= self.grace_s - TIME_EPS_S

    def _start(
        self,
        tracks: Detections,
        i: int,
        frame: FrameInfo,
        start_s: float,
        motion: _Motion,
    ) -> Event:
        details: dict[str, float | int | str | bool] = {
            "speed": motion.speed,
            "angle_deg": motion.angle,
        }
        if motion.speed_m_s is not None:
            details["speed_m_s"] = round(motion.speed_m_s, 3)
        event = self._new_row_event(
            tracks,
            i,
            frame,
            event_type=EVENT_TYPE,
            zone=self.zone.name,
            start_s=start_s,
            details=details,
        )
        logger.debug(
            "wrong way started: camera=%s rule=%s track=%d speed=%.2f angle=%.0f t=%.3f",
            self.camera_id,
            self._rule_id,
            event.track_id,
            motion.speed,
            motion.angle,
            event.start_s,
        )
        return event

    def _finish(self, mover: _Mover) -> list[Event]:
        """End ``mover``'s run; its event (if started) ends at its last wrong-way frame."""
        event, mover.event, mover.onset_s, mover.broken = mover.event, None, None, False
        if event is None:
            return []
        closed = event.closed(max(event.start_s, mover.last_wrong_s))
        logger.debug(
            "wrong way ended: camera=%s rule=%s track=%s t=%.3f..%.3f",
            self.camera_id,
            self._rule_id,
            closed.track_id,
            closed.start_s,
            closed.end_s,
        )
        return [closed]


# ------------------------------------------------------------------------ registration


class WrongWayRuleConfig(TrackRuleConfig):
    """Movement in a zone against its allowed ``direction`` for ``min_duration_s``."""

    type: Literal["wrong_way"]
    zone: str = Field(description="Zone name of that camera.")
    direction: tuple[float, float] = Field(
        description="Allowed direction of travel [dx, dy] in image coordinates (x right, y down)."
    )
    min_duration_s: float = Field(
        2.0, ge=0.0, le=3600.0, description="Seconds of wrong-way movement before raising."
    )
    min_speed: float = Field(
        0.2,
        gt=0.0,
        le=10.0,
        description="Slowest wrong-way speed, body heights per second (0.2 is about 0.34 "
        "m/s, a slow shuffle; walking is about 0.8).",
    )
    min_speed_m: float | None = Field(
        None,
        gt=0.0,
        le=20.0,
        description="The same in metres per second; needs the camera's ground calibration "
        "(`ground.points`). Replaces min_speed.",
    )
    severity: int = Field(60, ge=0, le=100, description="Base priority of the rule's events.")

    @field_validator("direction")
    @classmethod
    def _nonzero(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(c) for c in v) or math.hypot(*v) == 0.0:
            raise ValueError(f"direction must be a finite non-zero vector, got {list(v)}")
        return v


def build_wrong_way(cfg: WrongWayRuleConfig, ctx: BuildContext) -> WrongWayRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return WrongWayRule(
        **ctx.track_args(cfg),
        zone=ctx.zone(cfg.zone),
        direction=cfg.direction,
        min_duration_s=cfg.min_duration_s,
        min_speed=cfg.min_speed,
        min_speed_m=ctx.metres(cfg, "min_speed"),
    )


RULE = register(
    RuleType(
        type="wrong_way",
        config=WrongWayRuleConfig,
        build=build_wrong_way,
        events={
            EVENT_TYPE: EventWords(
                "Wrong way", "{object} going the wrong way in {zone}[ for {duration}]"
            )
        },
    )
)
