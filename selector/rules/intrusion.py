"""Stays of tracks in a zone: the shared machinery, and the intrusion rule built on it.

:class:`ZoneStayRule` follows each track's *stay* in a zone (entry, flicker at the
edge, occlusion, leaving) and raises one event per stay once it lasted long enough;
:class:`IntrusionRule` (here) and :class:`selector.rules.loitering.LoiteringRule` are
its two flavours.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
from selector.priority import priority
from selector.rules.base import FrameInfo
from selector.rules.common import (
    TIME_EPS_S,
    TrackRule,
    box_of,
    check_camera,
    check_classes,
    check_end_s,
    check_seconds,
    eligible,
    label_of,
    open_events_of,
    zone_weight_of,
)
from selector.rules.config import TrackRuleConfig
from selector.rules.registry import BuildContext, EventWords, RuleType, register
from selector.watch import (
    MIN_WATCH_DURATION_S,
    Watch,
    clamp_progress,
    clip_reason,
    quoted,
    seconds_of,
    watch_priority,
)
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

EVENT_TYPE = "intrusion"

__all__ = ["EVENT_TYPE", "TIME_EPS_S", "IntrusionRule", "Stay", "ZoneStayRule"]


@dataclass(slots=True)
class Stay:
    """One track's current stay in the zone (video seconds)."""

    entry_s: float  # first time seen inside in this stay: dwell counts from here
    last_inside_s: float  # last time seen inside
    missed: bool = False  # seen outside (not merely occluded) since last_inside_s
    event: Event | None = None  # the open event, once the dwell was met
    # The last row seen inside (for ``watching``): box (px), class name, score.
    box: tuple[float, float, float, float] | None = None
    label: str = ""
    score: float | None = None


class ZoneStayRule(TrackRule):
    """Raises one event of type :attr:`event_type` per long enough stay of a track in a zone.

    Subclasses set :attr:`event_type` and may override :meth:`_start_time` (when the
    event is said to start) and :meth:`_end_details` (facts added when it ends).

    Semantics, all times in video seconds (``FrameInfo.pts_s``):

    * A track counts as *inside* in a frame when its ground point (bottom centre of
      the box) is in ``zone`` (boundary included), its class is in ``classes`` (any
      class if ``None``) and its score is ``>= min_score``.  Rows with
      ``tracker_id < 1`` (untracked) are ignored.
    * Dwell accumulates from the entry time of the stay.  At the first frame where the
      track is seen inside and ``t - entry >= min_dwell_s``, ONE event starts, with
      that frame's box, score, label, ``seq`` and wall time, and
      ``priority(severity, score, zone_weight)``; its ``start_s`` is given by
      :meth:`_start_time`.
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
      last time it was seen inside.  ``ended_ids`` are honoured on every frame.
    * A frame with ``frame.detected == False`` (the detector did not run, e.g. motion
      gating) carries no information through the *absence* of tracks: as every
      missing track counts as occluded, such a frame never ends a stay (rows it does
      carry are used like any others).

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"intrusion:crossing"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: The zone watched.
        classes: Class ids that count, or ``None`` for all.
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

    event_type: ClassVar[str] = EVENT_TYPE

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
        super().__init__(rule_id, camera_id)
        self.min_dwell_s = check_seconds(rule_id, "min_dwell_s", min_dwell_s)
        self.exit_grace_s = check_seconds(rule_id, "exit_grace_s", exit_grace_s)
        self._init_scoring(severity, zone_weight_of(zone, zone_weight), min_score, class_names)
        self.classes = check_classes(rule_id, classes, class_names)
        self.zone = zone
        self._stays: dict[int, Stay] = {}

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, by track id."""
        return open_events_of(self._stays)

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame's tracks; return events started or ended in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`.

        Returns:
            Ended events (``end_s`` set) and started events (``end_s is None``), ordered
            by track id; a track ending one stay and starting another in the same frame
            yields the end first.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        ok = eligible(tracks, self.classes, self.min_score)
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
                stay = self._stays[tid] = Stay(entry_s=t, last_inside_s=t)
            stay.last_inside_s, stay.missed = t, False
            if stay.event is None:  # what watching() shows until the event starts
                i = inside[tid]
                stay.box, stay.label = box_of(tracks, i), label_of(tracks, i, self.class_names)
                stay.score = float(tracks.score[i])
            if stay.event is None and t - stay.entry_s >= self.min_dwell_s - TIME_EPS_S:
                stay.event = self._start(tracks, inside[tid], frame, stay)
                events.append(stay.event)
        return events

    def watching(self, now_s: float) -> list[Watch]:
        """Stays whose event has not started yet, at video time ``now_s`` (seconds).

        The optional hook of :data:`selector.rules.base.WATCHING_HOOK`: one
        :class:`selector.watch.Watch` per track in a stay without its event, by track
        id, ``progress = dwell so far / min_dwell_s`` (dwell from the stay's entry to
        ``now_s``), ``priority`` from the event priority its last row inside would
        get (:func:`selector.watch.watch_priority`), ``bbox`` its last box inside
        (px).  Nothing when ``min_dwell_s < MIN_WATCH_DURATION_S`` (2 s: such events
        fire too fast to be worth a tile).  A track seen away from the zone for its
        ``exit_grace_s`` by ``now_s`` is left out (its stay is over).  Reason:
        ``"person in 'atm' for 6 s of 10"``.  Reads the rule's state only.
        """
        if self.min_dwell_s < MIN_WATCH_DURATION_S or not math.isfinite(now_s):
            return []
        watches: list[Watch] = []
        for tid, stay in sorted(self._stays.items()):
            if stay.event is not None or (stay.missed and self._grace_over(stay, now_s)):
                continue
            dwell = max(0.0, now_s - stay.entry_s)
            progress = clamp_progress(dwell / self.min_dwell_s)
            score = None if stay.score is None else min(max(stay.score, 0.0), 1.0)
            event_priority = priority(self.severity, score, self.zone_weight)
            label = stay.label or "object"
            so_far = seconds_of(dwell, self.min_dwell_s)
            reason = f"{label} in {quoted(self.zone.name)} for {so_far}"
            watches.append(
                Watch(
                    rule_id=self._rule_id,
                    type=self.event_type,
                    reason=clip_reason(reason),
                    priority=watch_priority(event_priority, progress),
                    progress=progress,
                    bbox=stay.box,
                    zone=self.zone.name,
                    track_id=tid,
                )
            )
        return watches

    def _grace_over(self, stay: Stay, t: float) -> bool:
        """Whether a track last seen inside at ``stay.last_inside_s`` has been away too long."""
        return t - stay.last_inside_s >= self.exit_grace_s - TIME_EPS_S

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream and forget all stays.

        Each event ends at ``min(end_s, last time its track was seen inside)``: tracks
        inside on the last frame end at ``end_s`` (pass the last frame's time).

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        events: list[Event] = []
        for _, stay in sorted(self._stays.items()):
            if stay.event is not None:
                end = max(stay.event.start_s, min(end_s, stay.last_inside_s))
                events.append(self._closed(stay, end))
        self._stays.clear()
        return events

    def _start_time(self, stay: Stay, t: float) -> float:
        """``start_s`` of the event of ``stay``, which met its dwell at frame time ``t``.

        Here the frame time: ``entry + min_dwell_s`` up to frame granularity (and later
        when the track was occluded as the dwell was met).
        """
        return t

    def _end_details(self, stay: Stay, end_s: float) -> Mapping[str, float | int | str | bool]:
        """``details`` of the ended event (``end_s``: its end time); here unchanged."""
        assert stay.event is not None
        return stay.event.details

    def _start(self, tracks: Detections, i: int, frame: FrameInfo, stay: Stay) -> Event:
        event = self._new_row_event(
            tracks,
            i,
            frame,
            event_type=self.event_type,
            zone=self.zone.name,
            start_s=self._start_time(stay, frame.pts_s),
        )
        logger.debug(
            "%s started: camera=%s rule=%s track=%d label=%s t=%.3f",
            self.event_type,
            self.camera_id,
            self._rule_id,
            event.track_id,
            event.label,
            event.start_s,
        )
        return event

    def _end(self, tid: int) -> list[Event]:
        stay = self._stays.pop(tid)
        if stay.event is None:
            return []
        return [self._closed(stay, stay.last_inside_s)]

    def _closed(self, stay: Stay, end_s: float) -> Event:
        assert stay.event is not None
        event = replace(stay.event, end_s=end_s, details=dict(self._end_details(stay, end_s)))
        logger.debug(
            "%s ended: camera=%s rule=%s track=%s t=%.3f..%.3f",
            self.event_type,
            self.camera_id,
            self._rule_id,
            event.track_id,
            event.start_s,
            event.end_s,
        )
        return event


class IntrusionRule(ZoneStayRule):
    """Raises one ``"intrusion"`` event per stay of a track in a zone.

    See :class:`ZoneStayRule` for the semantics (ground point, dwell, exit grace,
    occlusion is not leaving, ``ended_ids``, frames with ``detected == False``) and
    the arguments; the defaults here are ``min_dwell_s=0.0`` and ``exit_grace_s=1.0``.
    ``start_s`` is the time of the frame at which the dwell was met (``entry +
    min_dwell_s`` up to frame granularity).  Events carry no ``details``.
    """

    event_type: ClassVar[str] = EVENT_TYPE


# ------------------------------------------------------------------------ registration


class IntrusionRuleConfig(TrackRuleConfig):
    """An object of given classes stays in a zone ``min_dwell_s`` seconds."""

    type: Literal["intrusion"]
    zone: str = Field(description="Zone name of that camera.")
    min_dwell_s: float = Field(
        0.0, ge=0.0, le=86400.0, description="Dwell before raising, seconds."
    )
    exit_grace_s: float = Field(
        1.0,
        ge=0.0,
        le=60.0,
        description="Absence shorter than this does not end the event, seconds.",
    )


def build_intrusion(cfg: IntrusionRuleConfig, ctx: BuildContext) -> IntrusionRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return IntrusionRule(
        **ctx.track_args(cfg),
        zone=ctx.zone(cfg.zone),
        min_dwell_s=cfg.min_dwell_s,
        exit_grace_s=cfg.exit_grace_s,
    )


RULE = register(
    RuleType(
        type="intrusion",
        config=IntrusionRuleConfig,
        build=build_intrusion,
        events={EVENT_TYPE: EventWords("Intrusion", "{object} in {zone}[ for {duration}]")},
    )
)
