"""Crowding: at least ``min_count`` objects in a zone for at least ``min_duration_s``."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
from selector.priority import priority
from selector.rules.base import FrameInfo, RuleError
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
    zone_weight_of,
)
from selector.rules.config import TrackRuleConfig
from selector.rules.registry import BuildContext, EventWords, RuleType, plural_of, register
from selector.watch import (
    Watch,
    clamp_progress,
    clip_reason,
    quoted,
    seconds_of,
    watch_priority,
)
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

EVENT_TYPE = "crowding"

CONFIRM_S = 0.5
"""An onset whose count falls below ``min_count`` (on a detected frame) before it has
held this long is a blip, forgotten at once (no ``grace_s``): one person counted twice
for a frame or two must not date a crowd that gathers later."""

REACQUIRED_OVERLAP = 0.6
"""A held (missing) member whose last box overlaps a member seen in the frame by at
least this share of the smaller box's area is that same person under a new track id
(seen: a box of 40x76 px re-acquired as 22x75 px inside it), and stops counting."""


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, k)`` intersection area over the smaller box's area, boxes ``(n, 4)`` and
    ``(k, 4)`` ``[x1, y1, x2, y2]`` px; 0 where a box has no area."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0.0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(axis=1)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0.0, inter / np.where(smaller > 0.0, smaller, 1.0), 0.0)


@dataclass(frozen=True, slots=True)
class _Member:
    """A track counted in the zone: its last box (px) and label."""

    box: tuple[float, float, float, float]
    label: str


class CrowdingRule(TrackRule):
    """Raises one ``"crowding"`` event per occurrence of a crowd in a zone.

    Semantics, all times in video seconds (``FrameInfo.pts_s``):

    * A track is *in* the zone while its latest observation put it there: a row
      (``tracker_id >= 1``) of a class in ``classes`` (any if ``None``), scoring
      ``>= min_score``, whose ground point (bottom centre of the box) is in ``zone``.
      It stops being in when it is seen outside the zone or filtered out (class,
      score), or when the tracker removes it (``ended_ids``).  A track *missing* from
      a frame (occluded, held by the tracker) still counts: occlusion is not leaving,
      for as long as the tracker holds it (its ``track_buffer_s``), unless, on a
      detected frame, its last box overlaps a track seen in the zone by
      ``REACQUIRED_OVERLAP`` of the smaller box: the tracker took the same person up
      again under a new id (or they are hidden behind that one), and the old id stops
      counting.  The *count* is the number of tracks in.
    * The occurrence begins (*onset*) at the first frame with ``count >= min_count``.
      A dip below ``min_count`` that lasts less than ``grace_s`` (measured from the
      last frame with ``count >= min_count``) neither ends an occurrence nor resets
      its onset (detections flicker, people step over the edge), once the count has
      held from the onset for ``CONFIRM_S``; a dip (on a detected frame) before
      that, and before the event started, forgets the onset (a blip).
    * ONE event starts at the first frame with ``count >= min_count`` and
      ``t - onset >= min_duration_s``; ``start_s = onset + min_duration_s`` (the
      moment "``min_count`` for ``min_duration_s``" became true).  ``track_id`` and
      ``score`` are ``None``; ``bbox`` is the union of the boxes of the tracks in at
      that frame (their last known boxes); ``label`` is their class name when they
      all share one, else ``None``; ``details={"count": count at the start}``.
    * It ends at the first frame (with ``detected``) at which the count is below
      ``min_count`` and the last frame with ``count >= min_count`` is ``>= grace_s``
      ago; ``end_s`` = that last time.  The ended record adds ``"max_count"``, the
      highest count of the occurrence, to ``details``.
    * A frame with ``frame.detected == False`` (the detector did not run: motion
      gating) says nothing through absent tracks: absent tracks keep counting as
      occluded anyway, so the count holds (nothing moved) and a crowd held through
      such frames is still crowded at their times (``end_s`` may fall on them).  Such
      a frame never ends an occurrence: the end waits for the next detected frame.
      It may still start one: time alone can complete ``min_duration_s`` with the
      tracks last seen in the zone.

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"crowding:platform"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: The zone watched.
        min_count: Number of tracks that make a crowd (int >= 1).
        classes: Class ids that count, or ``None`` for all.
        class_names: Class names of the model (index = class id); labels come from it
            when given, else from ``Detections.labels``.
        min_duration_s: Seconds the crowd must last before the event starts (>= 0).
        grace_s: Seconds below ``min_count`` tolerated within one occurrence (>= 0).
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
        min_count: int,
        classes: Collection[int] | None,
        class_names: Sequence[str] = (),
        min_duration_s: float = 5.0,
        grace_s: float = 2.0,
        severity: int = 50,
        min_score: float = 0.0,
        zone_weight: float | None = None,
    ) -> None:
        super().__init__(rule_id, camera_id)
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise RuleError(f"rule {rule_id!r}: min_count must be an int >= 1, got {min_count!r}")
        self.min_duration_s = check_seconds(rule_id, "min_duration_s", min_duration_s)
        self.grace_s = check_seconds(rule_id, "grace_s", grace_s)
        self._init_scoring(severity, zone_weight_of(zone, zone_weight), min_score, class_names)
        self.classes = check_classes(rule_id, classes, class_names)
        self.zone = zone
        self.min_count = min_count
        self._in: dict[int, _Member] = {}
        self._onset_s: float | None = None  # None: no occurrence under way
        self._last_ge_s = 0.0  # last time count >= min_count (valid with an onset)
        self._dipped = False  # count < min_count seen since _last_ge_s
        self._max_count = 0
        self._event: Event | None = None

    def count(self) -> int:
        """Number of tracks in the zone after the last frame."""
        return len(self._in)

    def open_events(self) -> list[Event]:
        """The open event, if any."""
        return [] if self._event is None else [self._event]

    def watching(self, now_s: float) -> list[Watch]:
        """A crowd building or holding without its event yet, at video time ``now_s``.

        The optional hook of :data:`selector.rules.base.WATCHING_HOOK`.  With no open
        event and a count of at least ``max(2, ceil(min_count / 2))`` (``min_count``
        itself when that is smaller), one :class:`selector.watch.Watch` (no track id;
        ``bbox`` the union of the members' last boxes, px):

        * ``progress``: half for the count (``count / min_count``, at most 1), half
          for the time the count has held (seconds since the onset, to ``now_s``, over
          ``min_duration_s``; 0 before the count is reached, or once a dip below it has
          lasted ``grace_s``); all of it for the count when ``min_duration_s`` is 0;
        * ``priority``: from the event's priority (:func:`selector.watch.watch_priority`);
        * reason ``"2 people in 'square' (crowding at 3)"`` while building,
          ``"3 people crowding in 'square' for 1 s of 5"`` once the count is reached.

        Reads the rule's state only.
        """
        n = len(self._in)
        low = min(self.min_count, max(2, math.ceil(self.min_count / 2)))
        if self._event is not None or n < low or not math.isfinite(now_s):
            return []
        count_part = min(1.0, n / self.min_count)
        held_s = 0.0
        if self._onset_s is not None and not (self._dipped and self._grace_over(now_s)):
            held_s = max(0.0, now_s - self._onset_s)
        if self.min_duration_s > 0.0:
            time_part = held_s / self.min_duration_s if self._onset_s is not None else 0.0
            progress = clamp_progress(0.5 * count_part + 0.5 * clamp_progress(time_part))
        else:
            progress = clamp_progress(count_part)
        bbox, labels = self._members_box()
        label = labels.pop() if len(labels) == 1 else "object"
        objects = label if n == 1 else plural_of(label)
        where = quoted(self.zone.name)
        if n >= self.min_count:
            so_far = seconds_of(held_s, self.min_duration_s)
            reason = f"{n} {objects} crowding in {where} for {so_far}"
        else:
            reason = f"{n} {objects} in {where} (crowding at {self.min_count})"
        event_priority = priority(self.severity, None, self.zone_weight)
        return [
            Watch(
                rule_id=self._rule_id,
                type=EVENT_TYPE,
                reason=clip_reason(reason),
                priority=watch_priority(event_priority, progress),
                progress=progress,
                bbox=bbox,
                zone=self.zone.name,
            )
        ]

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame's tracks; return events started or ended in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`.

        Returns:
            At most one ended event then at most one started event.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        for tid in ended_ids:
            self._in.pop(int(tid), None)
        inside = eligible(tracks, self.classes, self.min_score) & self.zone.trigger(tracks)
        seen: list[int] = []
        for i in np.flatnonzero(tracks.tracker_id >= 1).tolist():
            tid = int(tracks.tracker_id[i])
            if inside[i]:
                self._in[tid] = _Member(box_of(tracks, i), label_of(tracks, i, self.class_names))
                seen.append(tid)
            else:
                self._in.pop(tid, None)
        if frame.detected and seen:
            self._drop_reacquired(seen)
        n = len(self._in)
        events: list[Event] = []
        if n >= self.min_count:
            if self._onset_s is not None and self._dipped and self._grace_over(t):
                events.extend(self._finish())  # a long dip no detected frame concluded
            if self._onset_s is None:
                self._onset_s, self._max_count = t, 0
            self._last_ge_s, self._dipped = t, False
            self._max_count = max(self._max_count, n)
            if self._event is None and t - self._onset_s >= self.min_duration_s - TIME_EPS_S:
                self._event = self._start(frame, self._onset_s + self.min_duration_s, n)
                events.append(self._event)
        elif self._onset_s is not None:
            self._dipped = True
            if frame.detected and self._event is None and not self._confirmed():
                self._onset_s = None  # a blip (a person counted twice for a moment)
            if frame.detected and self._grace_over(t):
                events.extend(self._finish())
        return events

    def close_all(self, end_s: float) -> list[Event]:
        """Close the open event at end of stream and forget all state.

        The event ends at ``min(end_s, last time count >= min_count)``.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        self._last_ge_s = min(self._last_ge_s, end_s)
        events = self._finish()
        self._in.clear()
        return events

    def _drop_reacquired(self, seen: list[int]) -> None:
        """Forget held members (missing from this detected frame) whose last box
        overlaps a member seen in it by ``REACQUIRED_OVERLAP`` of the smaller box: the
        tracker lost that person and took them up again under a new id (one person,
        not two).  A person fully hidden behind another one stops counting too, until
        seen again: a dip the ``grace_s`` rides out, where counting one person twice
        would start a crowd early."""
        held = [tid for tid in self._in if tid not in set(seen)]
        if not held:
            return
        now = np.array([self._in[tid].box for tid in seen], np.float64)
        old = np.array([self._in[tid].box for tid in held], np.float64)
        for tid, overlap in zip(held, _overlap_of_smaller(old, now).max(axis=1), strict=True):
            if float(overlap) >= REACQUIRED_OVERLAP:
                del self._in[tid]

    def _confirmed(self) -> bool:
        """Whether the count reached ``min_count`` at the onset and held it for
        ``CONFIRM_S`` (measured to the last frame with the count reached)."""
        return self._onset_s is not None and self._last_ge_s - self._onset_s >= (
            CONFIRM_S - TIME_EPS_S
        )

    def _grace_over(self, t: float) -> bool:
        return t - self._last_ge_s >= self.grace_s - TIME_EPS_S

    def _members_box(self) -> tuple[tuple[float, float, float, float], set[str]]:
        """The union of the members' last boxes (px) and their labels (members needed)."""
        members = [m for _, m in sorted(self._in.items())]
        boxes = np.array([m.box for m in members], np.float64)
        bbox = (
            float(boxes[:, 0].min()),
            float(boxes[:, 1].min()),
            float(boxes[:, 2].max()),
            float(boxes[:, 3].max()),
        )
        return bbox, {m.label for m in members}

    def _start(self, frame: FrameInfo, start_s: float, n: int) -> Event:
        bbox, labels = self._members_box()
        event = self._new_event(
            EVENT_TYPE,
            frame,
            self.zone.name,
            label=labels.pop() if len(labels) == 1 else None,
            bbox=bbox,
            start_s=start_s,
            details={"count": n},
        )
        logger.debug(
            "crowding started: camera=%s rule=%s count=%d t=%.3f",
            self.camera_id,
            self._rule_id,
            n,
            event.start_s,
        )
        return event

    def _finish(self) -> list[Event]:
        """End the current occurrence; its event (if started) ends at ``_last_ge_s``."""
        event, self._event, self._onset_s, self._dipped = self._event, None, None, False
        if event is None:
            return []
        details = {**event.details, "max_count": self._max_count}
        closed = replace(event, end_s=max(event.start_s, self._last_ge_s), details=details)
        logger.debug(
            "crowding ended: camera=%s rule=%s max_count=%d t=%.3f..%.3f",
            self.camera_id,
            self._rule_id,
            self._max_count,
            closed.start_s,
            closed.end_s,
        )
        return [closed]


# ------------------------------------------------------------------------ registration


class CrowdingRuleConfig(TrackRuleConfig):
    """At least ``min_count`` objects in a zone for ``min_duration_s``."""

    type: Literal["crowding"]
    zone: str = Field(description="Zone name of that camera.")
    min_count: int = Field(ge=2, le=10000, description="Objects in the zone at once.")
    min_duration_s: float = Field(
        5.0, ge=0.0, le=86400.0, description="Seconds the count must hold."
    )
    severity: int = Field(55, ge=0, le=100, description="Base priority of the rule's events.")


def build_crowding(cfg: CrowdingRuleConfig, ctx: BuildContext) -> CrowdingRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return CrowdingRule(
        **ctx.track_args(cfg),
        zone=ctx.zone(cfg.zone),
        min_count=cfg.min_count,
        min_duration_s=cfg.min_duration_s,
    )


RULE = register(
    RuleType(
        type="crowding",
        config=CrowdingRuleConfig,
        build=build_crowding,
        events={
            EVENT_TYPE: EventWords(
                "Crowding",
                "[{count} {people} ]crowding in {zone}[ for {duration}][, up to {max_count}]",
            )
        },
    )
)
