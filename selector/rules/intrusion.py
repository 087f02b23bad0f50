"""Intrusion: an object of a watched class stays in a zone for at least ``min_dwell_s``."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.detections import Detections
from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules.base import FrameInfo, RuleError
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

EVENT_TYPE = "intrusion"

# Tolerance (s) on time comparisons, so that e.g. 20 frames at 10 fps meet a 2.0 s dwell
# despite float rounding of the timestamps.
TIME_EPS_S = 1e-6


@dataclass(slots=True)
class _Stay:
    """One track's current stay in the zone (video seconds)."""

    entry_s: float  # first time seen inside in this stay: dwell counts from here
    last_inside_s: float  # last time seen inside
    missed: bool = False  # seen outside (not merely occluded) since last_inside_s
    event: Event | None = None  # the open event, once the dwell was met


class IntrusionRule:
    """Raises one ``"intrusion"`` event per stay of a track in a zone.

    Semantics, all times in video seconds (``FrameInfo.pts_s``):

    * A track counts as *inside* in a frame when its ground point (bottom centre of
      the box) is in ``zone`` (boundary included), its class is in ``classes`` (any
      class if ``None``) and its score is ``>= min_score``.  Rows with
      ``tracker_id < 1`` (untracked) are ignored.
    * Dwell accumulates from the entry time of the stay.  At the first frame where
      ``t - entry >= min_dwell_s`` ONE event starts: ``start_s`` is that frame's time
      (``entry + min_dwell_s`` up to frame granularity), with that frame's box, score,
      label, ``seq`` and wall time, and ``priority(severity, score, zone_weight)``.
    * A track *seen* outside the zone (or filtered out) for less than ``exit_grace_s``
      that comes back continues the same stay: same dwell, same event (no flicker at
      the zone's edge).  At the first frame at which it is seen away and was last
      inside ``>= exit_grace_s`` ago, the stay ends; an open event is emitted again
      with ``end_s`` = the last time the track was seen inside.  A stay whose dwell
      was not yet met just ends (the dwell restarts on the next entry).
    * A track *missing* from a frame (the tracker holds it as lost: occluded by a
      pole, a passer-by, a missed detection) keeps its stay: occlusion is not
      leaving.  How long that can last is bounded by the tracker's buffer: a track
      the tracker removed (``ended_ids``) ends its stay at once, with ``end_s`` = the
      last time it was seen inside.

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"intrusion:crossing"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: The zone watched.
        classes: Class ids that may intrude, or ``None`` for all.
        class_names: Class names of the model (index = class id).  When given, class
            ids are checked against it and labels are taken from it; otherwise labels
            come from ``Detections.labels``.
        min_dwell_s: Seconds inside before the event starts (>= 0).
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Detections below this score do not count as inside, [0, 1].
        exit_grace_s: Seconds away from the zone tolerated within one stay (>= 0).
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
        classes: Collection[int] | None,
        class_names: Sequence[str] = (),
        min_dwell_s: float = 0.0,
        severity: int = 60,
        min_score: float = 0.0,
        exit_grace_s: float = 1.0,
        zone_weight: float | None = None,
    ) -> None:
        if not rule_id:
            raise RuleError(f"rule_id must be non-empty, got {rule_id!r}")
        if not camera_id:
            raise RuleError(f"rule {rule_id!r}: camera_id must be non-empty, got {camera_id!r}")
        if not (math.isfinite(min_dwell_s) and min_dwell_s >= 0.0):
            raise RuleError(f"rule {rule_id!r}: min_dwell_s must be >= 0, got {min_dwell_s!r}")
        if not (math.isfinite(exit_grace_s) and exit_grace_s >= 0.0):
            raise RuleError(f"rule {rule_id!r}: exit_grace_s must be >= 0, got {exit_grace_s!r}")
        if not (math.isfinite(min_score) and 0.0 <= min_score <= 1.0):
            raise RuleError(f"rule {rule_id!r}: min_score must be in [0, 1], got {min_score!r}")
        weight = zone.weight if zone_weight is None else zone_weight
        try:
            priority(severity, None, weight)
        except ValueError as e:
            raise RuleError(f"rule {rule_id!r}: {e}") from e
        if classes is not None:
            if not classes:
                raise RuleError(f"rule {rule_id!r}: classes is empty; use None for all classes")
            bad = sorted(
                c
                for c in classes
                if isinstance(c, bool)
                or not isinstance(c, int | np.integer)
                or c < 0
                or (class_names and c >= len(class_names))
            )
            if bad:
                raise RuleError(
                    f"rule {rule_id!r}: unknown class ids {bad} "
                    f"(model has {len(class_names) or 'unknown'} classes)"
                )
        self._rule_id = rule_id
        self.camera_id = camera_id
        self.zone = zone
        self.classes = None if classes is None else frozenset(int(c) for c in classes)
        self.class_names = tuple(class_names)
        self.min_dwell_s = float(min_dwell_s)
        self.severity = severity
        self.min_score = float(min_score)
        self.exit_grace_s = float(exit_grace_s)
        self.zone_weight = float(weight)
        self._stays: dict[int, _Stay] = {}

    @property
    def rule_id(self) -> str:
        """Stable id of the rule instance."""
        return self._rule_id

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, by track id."""
        return [s.event for _, s in sorted(self._stays.items()) if s.event is not None]

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame's tracks; return events started or ended in it.

        Args:
            tracks: Tracked objects of this frame (see :class:`selector.rules.base.Rule`).
            frame: The frame; ``frame.camera_id`` must be this rule's camera and
                ``frame.pts_s`` must not go backwards.
            ended_ids: Track ids the tracker removed since the previous call.

        Returns:
            Ended events (``end_s`` set) and started events (``end_s is None``), ordered
            by track id; a track ending one stay and starting another in the same frame
            yields the end first.

        Raises:
            RuleError: For a frame of another camera.
        """
        if frame.camera_id != self.camera_id:
            raise RuleError(
                f"rule {self._rule_id!r} of camera {self.camera_id!r} got a frame of camera "
                f"{frame.camera_id!r}"
            )
        t = frame.pts_s
        ok = (tracks.tracker_id >= 1) & (tracks.score >= self.min_score)
        if self.classes is not None:
            ok &= np.isin(tracks.class_id, list(self.classes))
        rows = np.flatnonzero(ok & self.zone.trigger(tracks))
        inside = {int(tracks.tracker_id[i]): int(i) for i in rows}
        seen = {int(v) for v in tracks.tracker_id.tolist()}
        ended = set(ended_ids)

        events: list[Event] = []
        for tid in sorted(self._stays.keys() | inside.keys()):
            stay = self._stays.get(tid)
            if tid not in inside:  # then it has a stay
                if tid in ended or (tid in seen and self._grace_over(self._stays[tid], t)):
                    events.extend(self._end(tid))
                elif tid in seen:
                    self._stays[tid].missed = True
                # else: occluded (lost but held by the tracker): the stay goes on
                continue
            if stay is not None and stay.missed and self._grace_over(stay, t):
                events.extend(self._end(tid))  # was seen away too long before coming back
                stay = None
            if stay is None:
                stay = self._stays[tid] = _Stay(entry_s=t, last_inside_s=t)
            stay.last_inside_s, stay.missed = t, False
            if stay.event is None and t - stay.entry_s >= self.min_dwell_s - TIME_EPS_S:
                stay.event = self._start(tracks, inside[tid], frame)
                events.append(stay.event)
        return events

    def _grace_over(self, stay: _Stay, t: float) -> bool:
        """Whether a track last seen inside at ``stay.last_inside_s`` has been away too long."""
        return t - stay.last_inside_s >= self.exit_grace_s - TIME_EPS_S

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream and forget all stays.

        Each event ends at ``min(end_s, last time its track was seen inside)``: tracks
        inside on the last frame end at ``end_s`` (pass the last frame's time).

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        if not math.isfinite(end_s):
            raise RuleError(f"rule {self._rule_id!r}: end_s must be finite, got {end_s!r}")
        events: list[Event] = []
        for _, stay in sorted(self._stays.items()):
            if stay.event is not None:
                end = max(stay.event.start_s, min(end_s, stay.last_inside_s))
                events.append(self._log_end(stay.event.closed(end)))
        self._stays.clear()
        return events

    def _start(self, tracks: Detections, i: int, frame: FrameInfo) -> Event:
        tid = int(tracks.tracker_id[i])
        cid = int(tracks.class_id[i])
        if self.class_names:
            label = self.class_names[cid] if 0 <= cid < len(self.class_names) else str(cid)
        else:
            label = tracks.labels[i]
        score = float(tracks.score[i])
        x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
        event = Event(
            event_id=make_event_id(self.camera_id, self._rule_id, tid, frame.seq, frame.stream_id),
            camera_id=self.camera_id,
            type=EVENT_TYPE,
            rule_id=self._rule_id,
            zone=self.zone.name,
            track_id=tid,
            label=label,
            score=score,
            priority=priority(self.severity, min(max(score, 0.0), 1.0), self.zone_weight),
            start_s=frame.pts_s,
            end_s=None,
            bbox=(x1, y1, x2, y2),
            start_seq=frame.seq,
            wall_time=frame.wall_time,
        )
        logger.debug(
            "intrusion started: camera=%s rule=%s track=%d label=%s t=%.3f",
            self.camera_id,
            self._rule_id,
            tid,
            label,
            frame.pts_s,
        )
        return event

    def _end(self, tid: int) -> list[Event]:
        stay = self._stays.pop(tid)
        if stay.event is None:
            return []
        return [self._log_end(stay.event.closed(stay.last_inside_s))]

    def _log_end(self, event: Event) -> Event:
        logger.debug(
            "intrusion ended: camera=%s rule=%s track=%s t=%.3f..%.3f",
            self.camera_id,
            self._rule_id,
            event.track_id,
            event.start_s,
            event.end_s,
        )
        return event
