"""Line crossing: a tracked object's ground point passes through a counting line."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
from selector.ground import GroundModel, Reach
from selector.lines import Line
from selector.rules.base import FrameInfo, RuleError
from selector.rules.common import (
    TrackRule,
    check_camera,
    check_classes,
    check_end_s,
    check_seconds,
    eligible,
)
from selector.rules.config import TrackRuleConfig
from selector.rules.registry import BuildContext, EventWords, RuleType, register

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

EVENT_TYPE = "line_crossing"
DIRECTIONS = ("+", "-")


@dataclass(slots=True)
class _Side:
    """What the rule remembers of one track (pixels, video seconds)."""

    side: int  # last confirmed side: +1 / -1, 0 while none was confirmed yet
    last_t: float  # last observation: time,
    last_d: float  # signed distance of the ground point to the line,
    last_x: float  # and the ground point
    last_y: float
    # Latest place (t, x, y) where the path between two observations met the (infinite)
    # line since ``side`` was last confirmed; the crossing, when a side change comes.
    zero: tuple[float, float, float] | None = None


class LineCrossingRule(TrackRule):
    """Counts crossings of a line by tracks and raises an event for each one.

    Semantics, times in video seconds (``FrameInfo.pts_s``), distances in pixels:

    * A track is observed in a frame when it has a row (``tracker_id >= 1``) whose
      class is in ``classes`` (any if ``None``) and score is ``>= min_score``; its
      position is its ground point (bottom centre of the box).
    * Hysteresis: a side of the line (see :class:`selector.lines.Line`: positive when
      ``cross(p2 - p1, q - p1) > 0``) is *confirmed* only when the ground point is at
      least ``hysteresis`` body heights from the line (0.1 = a tenth of a person's
      height, ~17 cm).  Where the camera has a ground model (``FrameInfo.ground``)
      that is measured on the floor (a body height is
      :data:`selector.ground.PERSON_HEIGHT_M`), so a line across the picture gets
      the same band as one along it; else in the picture, in the track's box
      heights.  Inside that band nothing changes, so a track wobbling on the line is
      not counted.
    * A crossing is a change of confirmed side: ``-1 -> +1`` is direction ``"+"``,
      ``+1 -> -1`` is ``"-"``.  A track's first confirmed side is no crossing.
      Crossing, then really crossing back, counts twice.
    * It counts only when it went through the *segment*: the point where the track's
      path (straight between consecutive observations) last met the line before the
      new side was confirmed must have a projection in
      ``[-segment_margin, 1 + segment_margin]`` (0 at ``p1``, 1 at ``p2``).  A track
      passing beyond an end still takes the new side, uncounted.
    * ``start_s`` is the interpolated time at which the path met the line (between
      the two observations around it), ``end_s`` the same instant; both records come
      from the ``update`` call of the frame that confirmed the new side (the start
      then the end, same ``event_id``), with that frame's box, score, ``seq`` and wall
      time.  ``details`` holds ``count_plus`` / ``count_minus``: the running totals of
      this rule including this crossing.  ``zone`` is ``None``, ``line`` the line's
      name, ``direction`` ``"+"`` or ``"-"``.
    * Both directions are always counted (:meth:`counts`); only those in
      ``directions`` raise events.
    * A track missing from a frame (occluded, held by the tracker) keeps its confirmed
      side and last position: reappearing on the other side counts as a crossing.  A
      track in ``ended_ids`` is forgotten.  A frame with ``frame.detected == False``
      (detector skipped by motion gating) carries no information through absent
      tracks; it changes nothing by itself (rows it does carry are used as usual).

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"line_crossing:gate"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        line: The counting line.
        classes: Class ids that count, or ``None`` for all.
        class_names: Class names of the model (index = class id); labels come from it
            when given, else from ``Detections.labels``.
        directions: Directions that raise events, a non-empty subset of
            ``{"+", "-"}``.
        hysteresis: Band half-width around the line, in body heights (finite, >= 0;
            0 = no band).
        hysteresis_m: The same in metres (finite, >= 0), for a calibrated camera; it
            replaces ``hysteresis``.
        segment_margin: Extension of the segment at each end, as a fraction of the
            line's length (finite, >= 0).
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Detections below this score are ignored, [0, 1].
        zone_weight: Priority multiplier (finite, >= 0).

    Raises:
        RuleError: For an invalid argument; the message names the rule and the value.
    """

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        line: Line,
        classes: Collection[int] | None,
        class_names: Sequence[str] = (),
        directions: Collection[str] = DIRECTIONS,
        hysteresis: float = 0.1,
        hysteresis_m: float | None = None,
        segment_margin: float = 0.0,
        severity: int = 40,
        min_score: float = 0.0,
        zone_weight: float = 1.0,
    ) -> None:
        super().__init__(rule_id, camera_id)
        dirs = list(directions)
        if not dirs or any(d not in DIRECTIONS for d in dirs):
            raise RuleError(
                f"rule {rule_id!r}: directions must be a non-empty subset of "
                f"{{'+', '-'}}, got {directions!r}"
            )
        self.hysteresis = check_seconds(rule_id, "hysteresis", hysteresis)
        self.reach = Reach(
            self.hysteresis,
            None if hysteresis_m is None else check_seconds(rule_id, "hysteresis_m", hysteresis_m),
        )
        self.segment_margin = check_seconds(rule_id, "segment_margin", segment_margin)
        self._init_scoring(severity, zone_weight, min_score, class_names)
        self.classes = check_classes(rule_id, classes, class_names)
        self.line = line
        self.directions = frozenset(dirs)
        self._tracks: dict[int, _Side] = {}
        self._counts = {"+": 0, "-": 0}

    def counts(self) -> dict[str, int]:
        """Crossings counted so far, ``{"+": n, "-": m}`` (both directions, always)."""
        return dict(self._counts)

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame's tracks; return the crossings confirmed in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`.

        Returns:
            For each crossing, by track id: its start record then its end record.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        for tid in ended_ids:
            self._tracks.pop(int(tid), None)
        rows = np.flatnonzero(eligible(tracks, self.classes, self.min_score))
        if rows.size == 0:
            return []
        ground = tracks.ground_points[rows].astype(np.float64)
        dist = self.line.signed_distance(ground)
        height = (tracks.xyxy[rows, 3] - tracks.xyxy[rows, 1]).astype(np.float64)
        outside = self._outside_band(ground, dist, height, frame.ground)
        t = frame.pts_s
        events: list[Event] = []
        for j in sorted(range(rows.size), key=lambda j: int(tracks.tracker_id[rows[j]])):
            i = int(rows[j])
            tid = int(tracks.tracker_id[i])
            d = float(dist[j])
            x, y = float(ground[j, 0]), float(ground[j, 1])
            side = (1 if d > 0 else -1 if d < 0 else 0) if outside[j] else 0
            st = self._tracks.get(tid)
            if st is None:
                self._tracks[tid] = _Side(side, t, d, x, y)
                continue
            if (st.last_d < 0.0 < d) or (st.last_d > 0.0 > d):
                f = st.last_d / (st.last_d - d)
                st.zero = (
                    st.last_t + f * (t - st.last_t),
                    st.last_x + f * (x - st.last_x),
                    st.last_y + f * (y - st.last_y),
                )
            elif d == 0.0:
                st.zero = (t, x, y)
            st.last_t, st.last_d, st.last_x, st.last_y = t, d, x, y
            if side == 0:
                continue
            if st.side in (0, side):
                st.side, st.zero = side, None
                continue
            t_cross, cx, cy = st.zero if st.zero is not None else (t, x, y)
            st.side, st.zero = side, None
            pos = float(self.line.projection([cx, cy])[0])
            if not -self.segment_margin <= pos <= 1.0 + self.segment_margin:
                continue  # went round an end of the line
            direction = "+" if side > 0 else "-"
            self._counts[direction] += 1
            logger.debug(
                "line crossed: camera=%s rule=%s line=%s track=%d direction=%s t=%.3f",
                self.camera_id,
                self._rule_id,
                self.line.name,
                tid,
                direction,
                t_cross,
            )
            if direction not in self.directions:
                continue
            start = self._new_row_event(
                tracks,
                i,
                frame,
                event_type=EVENT_TYPE,
                zone=None,
                start_s=t_cross,
                line=self.line.name,
                direction=direction,
                details={"count_plus": self._counts["+"], "count_minus": self._counts["-"]},
            )
            events += [start, start.closed(start.start_s)]
        return events

    def _outside_band(
        self, points: F64, dist: F64, height: F64, model: GroundModel | None
    ) -> npt.NDArray[np.bool_]:
        """Which ground points ``(n, 2)`` px (signed distances ``dist`` px to the line,
        box heights ``height`` px) are outside the hysteresis band: measured on the
        floor where ``model`` places both the point and the line, else in the picture."""
        outside: npt.NDArray[np.bool_] = (
            np.abs(dist) >= self.reach.image_px(1.0) * np.maximum(height, 0.0)
        ) & (dist != 0.0)
        if model is None:
            return outside
        ends = model.to_ground(np.vstack([self.line.p1, self.line.p2]))
        span = ends[1] - ends[0]
        length = float(np.hypot(span[0], span[1]))
        if not (np.all(np.isfinite(ends)) and length > 0.0):
            return outside
        g = model.to_ground(points) - ends[0]
        metres = np.abs(span[0] * g[:, 1] - span[1] * g[:, 0]) / length
        known = np.isfinite(metres)
        on_floor = (np.where(known, metres, 0.0) >= self.reach.ground_m) & (dist != 0.0)
        chosen: npt.NDArray[np.bool_] = np.where(known, on_floor, outside)
        return chosen

    def close_all(self, end_s: float) -> list[Event]:
        """End of stream: forget every track's side (crossings have no open events).

        The counts are kept (totals over the rule's life).

        Returns:
            Always ``[]``.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        self._tracks.clear()
        return []


# ------------------------------------------------------------------------ registration

Direction = Literal["+", "-"]


def _both_directions() -> list[Direction]:
    return ["+", "-"]


class LineCrossingRuleConfig(TrackRuleConfig):
    """An object crosses a line; direction "+" from the cross<0 side to the cross>0 side."""

    type: Literal["line_crossing"]
    line: str = Field(description="Line name of that camera.")
    directions: list[Direction] = Field(
        default_factory=_both_directions,
        min_length=1,
        description="Directions that raise events (both are counted).",
    )
    cooldown_s: float = Field(
        0.0, ge=0.0, le=3600.0, description="0: every crossing is its own alert."
    )
    alert_per: Literal["incident", "object"] = Field(
        "object", description="object: one alert per crossing object (counting)."
    )
    severity: int = Field(40, ge=0, le=100, description="Base priority of the rule's events.")
    hysteresis: float = Field(
        0.1,
        ge=0.0,
        le=2.0,
        description="Half-width of the band around the line inside which a side is not "
        "yet taken, in body heights (0.1 is about 17 cm), on the ground where the camera "
        "has one.",
    )
    hysteresis_m: float | None = Field(
        None,
        ge=0.0,
        le=5.0,
        description="The same in metres; needs the camera's ground calibration "
        "(`ground.points`). Replaces hysteresis.",
    )


def build_line_crossing(cfg: LineCrossingRuleConfig, ctx: BuildContext) -> LineCrossingRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return LineCrossingRule(
        **ctx.track_args(cfg),
        line=ctx.line(cfg.line),
        directions=cfg.directions,
        hysteresis=cfg.hysteresis,
        hysteresis_m=ctx.metres(cfg, "hysteresis"),
    )


RULE = register(
    RuleType(
        type="line_crossing",
        config=LineCrossingRuleConfig,
        build=build_line_crossing,
        events={EVENT_TYPE: EventWords("Line crossing", "{object} crossed {line}[ ({direction})]")},
    )
)
