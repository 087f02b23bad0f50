"""Abandoned object: a bag (or an unclassified new stationary object) left unattended."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
from selector.ground import PERSON_HEIGHT_M, GroundModel, Reach, ground_distance
from selector.priority import priority
from selector.rules.base import FrameInfo, RuleError
from selector.rules.common import (
    TIME_EPS_S,
    TrackRule,
    box_of,
    check_camera,
    check_classes,
    check_end_s,
    check_fraction,
    check_seconds,
    eligible,
    label_of,
    zone_weight_of,
)
from selector.rules.config import RuleConfigBase
from selector.rules.registry import BuildContext, EventWords, RuleType, register
from selector.tracker import iou_matrix
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

EVENT_TYPE = "abandoned_object"

BAG_CLASSES = frozenset({24, 26, 28})
"""COCO backpack, handbag, suitcase: the default ``object_classes``."""

PERSON_CLASSES = frozenset({0})
"""COCO person: the default ``person_classes``."""

BLOB_LABEL = "object"
"""Label of events raised for unclassified static blobs."""

MIN_STILL_PX = 3.0
"""Floor (px) of the stationarity tolerance, so a tiny box may jitter by a few pixels."""

PERSON_OVERLAP = 0.25
"""A box counts as covered by a person box when that share of its area lies in it."""

PERSON_AREA_FRAC = 0.3
"""A static blob lying where a person was last seen (the person no longer seen) is that
person (standing still, sitting, lying) rather than an object when its area is at least
this share of the person's last box."""

SETTLE_S = 1.0
"""Seconds an object must stay at rest before its owner is looked for: a carried bag,
coming to rest anew every few frames, costs no history scans."""

LINGER_S = 1.0
"""Seconds of a person's sightings that tell whether they stay near an object or pass."""

LINGER_SPEED = 0.25
"""Most a person near an object moves while staying there, in body heights per second
(walking is about 0.8 heights/s; 0.25 is about 0.4 m/s for a 1.7 m person)."""

VANISHED_MEMORY_S = 120.0
"""Seconds a person's last box is remembered after the track was last seen, to tell a
person who stayed there (a static blob at that spot) from a new object."""

Box = tuple[float, float, float, float]

SOURCE_TRACK = "track"
SOURCE_BLOB = "blob"


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inter(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _covered(b: Box, by: Box) -> bool:
    """Whether at least ``PERSON_OVERLAP`` of ``b``'s area lies in ``by``."""
    a = _area(b)
    return a > 0.0 and _inter(b, by) >= PERSON_OVERLAP * a


def _iou(a: Box, b: Box) -> float:
    return float(iou_matrix(a, b)[0, 0])


def _ground(b: Box) -> tuple[float, float]:
    """Bottom centre (px): where the object or person touches the floor."""
    return ((b[0] + b[2]) / 2.0, b[3])


@dataclass(slots=True)
class _Person:
    """The last sighting of a person track (boxes in px, times in video seconds)."""

    box: Box
    last_seen_s: float
    ended: bool = False


@dataclass(slots=True)
class _Candidate:
    """One object the rule follows: a tracked bag or a static blob."""

    number: int  # creation order (1, 2, ...); -number keys events without a track id
    source: str  # SOURCE_TRACK or SOURCE_BLOB
    box: Box  # last observed box
    anchor: Box  # box when it came to rest; stationarity is judged against it
    still_since_s: float
    last_seen_s: float
    last_evidence_s: float  # last time seen, or hidden behind a person box
    track_id: int | None  # the tracker id bound to it (None for blobs, or once ended)
    label: str
    score: float | None
    in_zone: bool
    owner: int | None = None  # the owner's track while it may still attend the object
    owner_id: int | None = None  # the owner found when it came to rest (kept for details)
    unattended_since_s: float | None = None
    person_like: bool = False  # a person who stayed still, not an object
    person_h: float = 0.0  # that person's box height (px), for attendance distances
    resolved: bool = False  # owner looked for (after SETTLE_S at rest)
    seen_now: bool = False
    event: Event | None = None


class AbandonedObjectRule(TrackRule):
    """Raises one ``"abandoned_object"`` event per object left unattended.

    Objects come from two sources: tracks of ``object_classes`` (bags the detector
    knows), and, with ``use_static_objects``, the unclassified static blobs of
    ``FrameInfo.scene.static_objects`` (a box, a bag the detector does not know).

    Semantics (boxes in full-frame pixels, times in video seconds ``FrameInfo.pts_s``):

    * **Distance.**  A person is *near* an object when the distance between their
      ground points (bottom centres of the boxes) is at most ``owner_distance`` body
      heights (1.5 is about 2.5 m).  Where the camera has a ground model
      (``FrameInfo.ground``: a calibration, or the estimate learned from its people)
      it is measured on the floor, so a step toward the camera counts as much as a
      step across; else in the picture, in the person's box heights (scale-free, but
      short along the picture).
    * **Stationary.**  An object *comes to rest* when first seen (or when it moved):
      that box is its *anchor*.  It stays at rest while its box centre stays within
      ``max(MIN_STILL_PX, still_tolerance * max(anchor width, anchor height))`` of the
      anchor's; beyond that it *moved* (carried, picked up) and comes to rest anew.
    * **Identity.**  A tracked object is followed by its track id; a track the rule
      does not know yet, or a static blob, takes over the held object whose last box
      it overlaps most with IoU ``>= match_iou`` (so a bag re-detected under a new
      track id, or seen only as a blob in some frames, stays one object).  A static
      blob that matches any track's box with that IoU is that track, not a new
      object; one covered by a person box (``PERSON_OVERLAP`` of its area) is that
      person standing still and is not taken as an object.  A blob at the spot where a
      person track was last seen, no longer seen, and at least ``PERSON_AREA_FRAC`` of
      that person's size, is that person (standing, sitting or lying still: a fallen
      person's blob never raises this event); it is kept as *person-like*, never
      raises an event, and counts as a person near other objects.
    * **Owner.**  Once an object has been at rest for ``SETTLE_S`` (at time ``T'``),
      its *owner* is the person most recently near it during ``[T' -
      owner_lookback_s, T']``: the scene analyser reports a static blob only about
      ``static_after_s + 2 * motion_tau_s`` (12 s by default) after it was put down,
      when its owner may be long gone, so the look-back must exceed that.  The owner
      *walked away* at their first sighting after that at more than
      ``owner_distance``: a track that vanishes next to the object (occluded, sat
      down, fell) has not walked away.  When the owner's track ends (``ended_ids``)
      before walking away, the object becomes ownerless, unattended since that
      person was last seen.
    * **Attended.**  The unattended clock starts when the owner walked away and
      restarts whenever another person *stays* near it (or a person-like blob is near);
      the owner coming back near stops it.  A person stays when their ground point
      moved at most ``LINGER_SPEED`` body heights per second over their last
      ``LINGER_S`` of sightings (half of it seen at least): a passer-by who walks by,
      even close, does not restart the clock.  An object without an owner is
      unattended since it came to rest, or since a person last stayed near it.  A
      static blob that never had an owner raises nothing when ``require_blob_owner``
      (default): a new static blob that
      appeared with nobody around is far more often a lighting change, a shadow or a
      parked vehicle than a dropped object.
    * **Event.**  At the first frame where the object has been unattended for
      ``min_unattended_s``, and its anchor's ground point is in ``zone`` (anywhere when
      ``None``), ONE event starts: ``start_s`` = start of the unattended clock +
      ``min_unattended_s`` (the owner's walk-away moment + ``min_unattended_s``),
      ``bbox`` = the object's box, ``label`` = its class name (``"object"`` for a
      blob), ``track_id`` = its track id (``None`` for a blob; the event id then uses
      ``key=-n``, ``n`` the rule's own object number), ``score`` = the detector's
      (``None`` for a blob), ``details`` = ``{"source": "track"|"blob",
      "owner_track_id": id}`` (owner when known).
    * **End.**  The event ends, ``end_s`` = the last time the object was seen at rest,
      when the object *moved* (someone picked it up) or was *removed*: not seen for
      ``removed_grace_s`` while not hidden behind a person box.  A person merely
      standing by it again does not end it.  A static blob also stops being reported
      when the analyser absorbs it into the background (its ``absorb_after_s``,
      default 60 s still): an event on an unclassified blob then ends too.
    * **Frames without detection** (``frame.detected`` false, motion gating): tracks
      are empty because nobody looked, so nothing is observed, moved or removed; the
      unattended clocks still run and may start events.

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"abandoned:hall"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: Zone watched, or ``None`` for the whole frame.
        object_classes: Class ids of objects that can be abandoned (default COCO bags).
        person_classes: Class ids of people (default COCO person); disjoint from
            ``object_classes``.
        class_names: Class names of the model (index = class id).  When given, class
            ids are checked against it and labels are taken from it.
        min_unattended_s: Seconds unattended before the event starts (>= 0).
        owner_distance: Near/far threshold, in body heights (> 0): on the ground
            where the camera has a ground model (one body height is
            :data:`selector.ground.PERSON_HEIGHT_M`), else the person's box height.
        owner_distance_m: The same in metres (> 0), for a calibrated camera; it
            replaces ``owner_distance`` (without a ground model: over 1.7 m per
            body height of the person's box).
        still_tolerance: Movement tolerated at rest, as a fraction of the object's
            larger box side (> 0).
        removed_grace_s: Seconds unseen before an object counts as removed (>= 0).
        owner_lookback_s: Seconds of person sightings searched for an object's owner
            (>= 0); keep it above the analyser's static-object delay.
        match_iou: IoU that makes a blob or new track the same object (0 < x <= 1).
        use_static_objects: Also watch the scene's unclassified static blobs.
        require_blob_owner: Raise nothing for a static blob that never had an owner.
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Tracks below this score are ignored, [0, 1].
        zone_weight: Priority multiplier (finite, >= 0); ``None`` uses ``zone.weight``
            (1.0 without a zone).

    Raises:
        RuleError: For an invalid argument; the message names the rule and the value.
    """

    uses_scene = True
    """Reads ``FrameInfo.scene`` (see :func:`selector.rules.base.needs_scene`)."""

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        zone: PolygonZone | None = None,
        object_classes: Collection[int] = BAG_CLASSES,
        person_classes: Collection[int] = PERSON_CLASSES,
        class_names: Sequence[str] = (),
        min_unattended_s: float = 30.0,
        owner_distance: float = 1.5,
        owner_distance_m: float | None = None,
        still_tolerance: float = 0.5,
        removed_grace_s: float = 3.0,
        owner_lookback_s: float = 30.0,
        match_iou: float = 0.3,
        use_static_objects: bool = True,
        require_blob_owner: bool = True,
        severity: int = 70,
        min_score: float = 0.0,
        zone_weight: float | None = None,
    ) -> None:
        super().__init__(rule_id, camera_id)
        objects = check_classes(rule_id, object_classes, class_names)
        persons = check_classes(rule_id, person_classes, class_names)
        if objects is None or persons is None:  # pragma: no cover - check_classes(None)
            raise RuleError(f"rule {rule_id!r}: object_classes and person_classes are required")
        if objects & persons:
            raise RuleError(
                f"rule {rule_id!r}: object_classes and person_classes overlap: "
                f"{sorted(objects & persons)}"
            )
        self.min_unattended_s = check_seconds(rule_id, "min_unattended_s", min_unattended_s)
        self.owner_distance = check_seconds(
            rule_id, "owner_distance", owner_distance, positive=True
        )
        self.reach = Reach(
            self.owner_distance,
            None
            if owner_distance_m is None
            else check_seconds(rule_id, "owner_distance_m", owner_distance_m, positive=True),
        )
        self._ground: GroundModel | None = None  # this frame's (FrameInfo.ground)
        self.still_tolerance = check_seconds(
            rule_id, "still_tolerance", still_tolerance, positive=True
        )
        self.removed_grace_s = check_seconds(rule_id, "removed_grace_s", removed_grace_s)
        self.owner_lookback_s = check_seconds(rule_id, "owner_lookback_s", owner_lookback_s)
        self.match_iou = check_fraction(rule_id, "match_iou", match_iou)
        if self.match_iou <= 0.0:
            raise RuleError(f"rule {rule_id!r}: match_iou must be > 0, got {match_iou!r}")
        self._init_scoring(severity, zone_weight_of(zone, zone_weight), min_score, class_names)
        self.zone = zone
        self.object_classes = objects
        self.person_classes = persons
        self.use_static_objects = bool(use_static_objects)
        self.require_blob_owner = bool(require_blob_owner)
        self._persons: dict[int, _Person] = {}
        # Person sightings within owner_lookback_s: (t, track id, box), oldest first.
        self._history: deque[tuple[float, int, Box]] = deque()
        self._candidates: dict[int, _Candidate] = {}
        self._next_number = 1
        self._last_detected_s = -math.inf

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, in object order."""
        return [c.event for c in self._candidates.values() if c.event is not None]

    def watching(self, now_s: float) -> list[Watch]:
        """Objects left alone whose event has not started yet, at video time ``now_s``.

        The optional hook of :data:`selector.rules.base.WATCHING_HOOK`: one
        :class:`selector.watch.Watch` per object, in object order, whose unattended
        clock is running and that would raise the event once it ran long enough (in
        the zone, not a person-like blob, not an ownerless blob the rule ignores), with
        no event yet.  ``progress`` = seconds unattended (to ``now_s``) /
        ``min_unattended_s``; ``priority`` from the priority its event would get now
        (:func:`selector.watch.watch_priority`); ``bbox`` its last box (px);
        ``track_id`` its track (``None`` for a blob).  Nothing when
        ``min_unattended_s`` is 0 (the event starts at once).  Reason:
        ``"suitcase left unattended in 'hall' for 12 s of 30"`` (``"object ..."`` for
        an unclassified blob, no zone words without a zone).  Reads the rule's state
        only.
        """
        if self.min_unattended_s <= 0.0 or not math.isfinite(now_s):
            return []
        zone = None if self.zone is None else self.zone.name
        where = "" if zone is None else f" in {quoted(zone)}"
        watches: list[Watch] = []
        for c in self._candidates.values():
            since = c.unattended_since_s
            if since is None or not self._may_raise(c):
                continue
            elapsed = max(0.0, now_s - since)
            progress = clamp_progress(elapsed / self.min_unattended_s)
            score = None if c.score is None else min(max(c.score, 0.0), 1.0)
            event_priority = priority(self.severity, score, self.zone_weight)
            so_far = seconds_of(elapsed, self.min_unattended_s)
            watches.append(
                Watch(
                    rule_id=self._rule_id,
                    type=EVENT_TYPE,
                    reason=clip_reason(f"{c.label} left unattended{where} for {so_far}"),
                    priority=watch_priority(event_priority, progress),
                    progress=progress,
                    bbox=c.box,
                    zone=zone,
                    track_id=c.track_id,
                )
            )
        return watches

    # ------------------------------------------------------------------ update

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame; return the events started or ended in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`;
        ``frame.scene.static_objects`` (when present) feeds the unclassified objects.

        Returns:
            Ended events (``end_s`` set) then started ones (``end_s is None``), each in
            the order the rule first saw their objects.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        self._ground = frame.ground
        ended: list[Event] = []
        self._forget_ended(set(ended_ids))
        if frame.detected:
            ended.extend(self._observe(tracks, frame))
        started: list[Event] = []
        for c in self._candidates.values():
            if self._due(c, t):
                c.event = self._start(c, frame)
                started.append(c.event)
        return ended + started

    def _forget_ended(self, ended_ids: set[int]) -> None:
        """Apply the tracker's removals: persons are marked gone, objects unbound."""
        for tid in sorted(ended_ids):
            person = self._persons.get(tid)
            if person is not None:
                person.ended = True
            for c in self._candidates.values():
                if c.track_id == tid:
                    c.track_id = None  # a new track may take the object over
                if c.owner == tid:
                    # Vanished next to it without walking away: ownerless from then.
                    if c.unattended_since_s is None:
                        c.unattended_since_s = (
                            person.last_seen_s if person is not None else c.still_since_s
                        )
                    c.owner = None

    def _observe(self, tracks: Detections, frame: FrameInfo) -> list[Event]:
        """Everything a detected frame tells: persons, objects, attendance, removals."""
        t = frame.pts_s
        self._last_detected_s = t
        people = [
            (int(tracks.tracker_id[i]), box_of(tracks, i))
            for i in np.flatnonzero(eligible(tracks, self.person_classes, self.min_score)).tolist()
        ]
        for tid, b in people:
            self._persons[tid] = _Person(b, t)
            self._history.append((t, tid, b))
        while self._history and self._history[0][0] < t - self.owner_lookback_s - TIME_EPS_S:
            self._history.popleft()
        for tid in [k for k, p in self._persons.items() if t - p.last_seen_s > VANISHED_MEMORY_S]:
            del self._persons[tid]

        for c in self._candidates.values():
            c.seen_now = False
        events: list[Event] = []
        events.extend(self._observe_tracks(tracks, frame))
        events.extend(self._observe_blobs(tracks, frame, [b for _, b in people]))

        for number in list(self._candidates):
            c = self._candidates[number]
            if not c.seen_now:
                if any(_covered(c.box, b) for _, b in people):
                    c.last_evidence_s = t  # hidden behind a person: not removed
                elif t - c.last_evidence_s >= self.removed_grace_s - TIME_EPS_S:
                    del self._candidates[number]
                    if c.event is not None:
                        events.append(self._end(c, c.last_seen_s, "removed"))
                    continue
            if c.person_like:
                continue
            if not c.resolved and t - c.still_since_s >= SETTLE_S - TIME_EPS_S:
                self._resolve_owner(c, t)
            if c.resolved:
                self._attend(c, people, t)
        return events

    def _observe_tracks(self, tracks: Detections, frame: FrameInfo) -> list[Event]:
        """Tracked objects of ``object_classes``: follow by id, else take over, else new."""
        ok = eligible(tracks, self.object_classes, self.min_score)
        rows: list[int] = np.flatnonzero(ok).tolist()
        by_tid = {c.track_id: c for c in self._candidates.values() if c.track_id is not None}
        present = {int(v) for v in tracks.tracker_id.tolist()}
        events: list[Event] = []
        unmatched: list[int] = []
        for i in rows:
            c = by_tid.get(int(tracks.tracker_id[i]))
            if c is None:
                unmatched.append(int(i))
                continue
            events.extend(self._seen(c, box_of(tracks, i), frame, float(tracks.score[i])))
        free = [
            c
            for c in self._candidates.values()
            if not c.seen_now
            and not c.person_like
            and (c.track_id is None or c.track_id not in present)
        ]
        boxes = [box_of(tracks, i) for i in unmatched]
        for j, c in self._match(boxes, free):
            i = unmatched[j]
            c.track_id = int(tracks.tracker_id[i])
            if c.event is None:  # before the event, the object takes the track's identity
                c.source = SOURCE_TRACK
                c.label = label_of(tracks, i, self.class_names)
            events.extend(self._seen(c, boxes[j], frame, float(tracks.score[i])))
        for j, i in enumerate(unmatched):
            tid = int(tracks.tracker_id[i])
            if any(c.track_id == tid for c in self._candidates.values()):
                continue
            c = self._new(
                SOURCE_TRACK, boxes[j], frame.pts_s, tid, label_of(tracks, i, self.class_names)
            )
            c.score = float(tracks.score[i])
        return events

    def _observe_blobs(
        self, tracks: Detections, frame: FrameInfo, person_boxes: list[Box]
    ) -> list[Event]:
        """Unclassified static blobs: match held objects, else new objects."""
        scene = frame.scene
        if not self.use_static_objects or scene is None or scene.static_objects is None:
            return []
        statics = scene.static_objects
        tracked = tracks.xyxy[tracks.tracker_id >= 1]
        blobs: list[Box] = []
        for k in range(len(statics)):
            b = box_of(statics, k)
            if _area(b) <= 0.0:
                continue
            if len(tracked) and float(iou_matrix(b, tracked).max()) >= self.match_iou:
                continue  # the blob of a tracked object (a bag, a parked car, a person)
            if any(_covered(b, p) for p in person_boxes):
                continue  # a person standing still, or something under their feet
            blobs.append(b)
        free = [c for c in self._candidates.values() if not c.seen_now]
        events: list[Event] = []
        taken: set[int] = set()
        for j, c in self._match(blobs, free):
            taken.add(j)
            events.extend(self._seen(c, blobs[j], frame, c.score))
        for j, b in enumerate(blobs):
            if j in taken:
                continue
            c = self._new(SOURCE_BLOB, b, frame.pts_s, None, BLOB_LABEL)
            ghost = self._vanished_person_at(b, frame.pts_s)
            if ghost is not None:
                c.person_like, c.person_h = True, ghost.box[3] - ghost.box[1]
        return events

    def _vanished_person_at(self, b: Box, t: float) -> _Person | None:
        """A person no longer seen whose last box is where ``b`` is, and of its size."""
        for tid in sorted(self._persons):
            p = self._persons[tid]
            if p.last_seen_s >= t - TIME_EPS_S:
                continue  # seen in this frame
            if _inter(b, p.box) > 0.0 and _area(b) >= PERSON_AREA_FRAC * _area(p.box):
                return p
        return None

    def _match(self, boxes: list[Box], free: list[_Candidate]) -> list[tuple[int, _Candidate]]:
        """Greedy one-to-one matching by IoU ``>= match_iou`` (best pairs first)."""
        if not boxes or not free:
            return []
        iou = iou_matrix(np.array(boxes), np.array([c.box for c in free]))
        pairs = sorted(
            (-float(iou[j, k]), free[k].number, j, k)
            for j in range(len(boxes))
            for k in range(len(free))
            if iou[j, k] >= self.match_iou
        )
        used_j: set[int] = set()
        used_k: set[int] = set()
        out: list[tuple[int, _Candidate]] = []
        for _, _, j, k in pairs:
            if j in used_j or k in used_k:
                continue
            used_j.add(j)
            used_k.add(k)
            out.append((j, free[k]))
        return out

    def _new(self, source: str, b: Box, t: float, track_id: int | None, label: str) -> _Candidate:
        c = _Candidate(
            number=self._next_number,
            source=source,
            box=b,
            anchor=b,
            still_since_s=t,
            last_seen_s=t,
            last_evidence_s=t,
            track_id=track_id,
            label=label,
            score=None,
            in_zone=self._in_zone(b),
            seen_now=True,
        )
        self._next_number += 1
        self._candidates[c.number] = c
        return c

    def _seen(self, c: _Candidate, b: Box, frame: FrameInfo, score: float | None) -> list[Event]:
        """Object ``c`` observed with box ``b``: at rest still, or moved."""
        t = frame.pts_s
        events: list[Event] = []
        ax, ay = (c.anchor[0] + c.anchor[2]) / 2.0, (c.anchor[1] + c.anchor[3]) / 2.0
        bx, by = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
        side = max(c.anchor[2] - c.anchor[0], c.anchor[3] - c.anchor[1])
        if math.hypot(bx - ax, by - ay) > max(MIN_STILL_PX, self.still_tolerance * side):
            if c.event is not None:
                events.append(self._end(c, c.last_seen_s, "moved"))
                c.event = None
            c.anchor, c.still_since_s, c.in_zone = b, t, self._in_zone(b)
            c.owner, c.owner_id, c.unattended_since_s, c.resolved = None, None, None, False
        c.box, c.last_seen_s, c.last_evidence_s, c.seen_now = b, t, t, True
        c.score = score
        return events

    def _in_zone(self, b: Box) -> bool:
        return self.zone is None or bool(self.zone.contains([_ground(b)])[0])

    def _near(self, person: Box, obj: Box) -> bool:
        return self._near_at(_ground(person), _ground(obj), person[3] - person[1])

    def _near_at(
        self, person: tuple[float, float], obj: tuple[float, float], person_h: float
    ) -> bool:
        """Whether a person whose ground point is ``person`` (``person_h`` px tall) is
        within ``owner_distance`` of an object's ground point ``obj``: on the ground
        where the camera has a ground model, else in the picture."""
        metres = ground_distance(self._ground, person, obj)
        if metres is not None:
            return metres <= self.reach.ground_m
        dist = math.hypot(person[0] - obj[0], person[1] - obj[1])
        return person_h > 0.0 and dist <= self.reach.image_px(person_h)

    def _resolve_owner(self, c: _Candidate, t: float) -> None:
        """Find the owner of ``c`` (at rest since ``c.still_since_s``) at time ``t``.

        The owner is the person most recently near it in the history (which reaches
        ``owner_lookback_s`` back); the clock starts at their first sighting far from
        it after that, if any.  Without an owner the clock starts when it came to rest.
        """
        c.resolved = True
        best: tuple[float, float, int] | None = None  # (time, -closeness, -tid)
        for ts, tid, b in self._history:
            if ts <= t + TIME_EPS_S and self._near(b, c.anchor):
                h = b[3] - b[1]
                (px, py), (ox, oy) = _ground(b), _ground(c.anchor)
                key = (ts, -math.hypot(px - ox, py - oy) / h, -tid)
                if best is None or key > best:
                    best = key
        if best is None:
            c.unattended_since_s = c.still_since_s
            return
        owner, last_near = -best[2], best[0]
        c.owner, c.owner_id, c.unattended_since_s = owner, owner, None
        for ts, tid, _ in self._history:  # after last_near every sighting is far
            if tid == owner and last_near < ts <= t + TIME_EPS_S:
                c.unattended_since_s = ts
                break
        person = self._persons.get(owner)
        if c.unattended_since_s is None and (person is None or person.ended):
            # Their track already ended next to it: ownerless since last seen.
            c.owner, c.unattended_since_s = None, last_near

    def _attend(self, c: _Candidate, people: list[tuple[int, Box]], t: float) -> None:
        """Update the unattended clock of ``c`` from this frame's people."""
        owner_near = owner_far = other_near = False
        for tid, b in people:
            if self._near(b, c.anchor):
                owner_near |= tid == c.owner
                other_near |= tid != c.owner and self._stays(tid, b, t)
            elif tid == c.owner:
                owner_far = True
        for o in self._candidates.values():
            if o.person_like and o.person_h > 0.0:
                other_near |= self._near_at(_ground(o.box), _ground(c.anchor), o.person_h)
        if c.owner is None:
            if owner_near or other_near:
                c.unattended_since_s = t
        elif owner_near:
            c.unattended_since_s = None
        elif other_near and c.unattended_since_s is not None:
            c.unattended_since_s = t
        elif owner_far and c.unattended_since_s is None:
            c.unattended_since_s = t  # the owner walked away

    def _stays(self, tid: int, b: Box, t: float) -> bool:
        """Whether person ``tid`` (box ``b`` at ``t``) stays where they are rather than
        passing: over their sightings of the last ``LINGER_S`` (at least half of it
        seen), their ground point moved at most ``LINGER_SPEED`` body heights per second
        (on the ground where the camera has a ground model)."""
        h = b[3] - b[1]
        first = next(
            (
                (ts, pb)
                for ts, pid, pb in self._history
                if pid == tid and ts >= t - LINGER_S - TIME_EPS_S
            ),
            None,
        )
        if first is None or h <= 0.0:
            return False
        span = t - first[0]
        if span < LINGER_S / 2.0 - TIME_EPS_S:
            return False  # seen too briefly to tell
        (x0, y0), (x1, y1) = _ground(first[1]), _ground(b)
        metres = ground_distance(self._ground, (x0, y0), (x1, y1))
        if metres is not None:
            return metres <= LINGER_SPEED * PERSON_HEIGHT_M * span
        return math.hypot(x1 - x0, y1 - y0) / h <= LINGER_SPEED * span

    def _may_raise(self, c: _Candidate) -> bool:
        """Whether ``c``'s unattended clock is running toward an event it has not raised."""
        return (
            c.event is None
            and not c.person_like
            and c.in_zone
            and c.unattended_since_s is not None
            and (c.source == SOURCE_TRACK or c.owner_id is not None or not self.require_blob_owner)
        )

    def _due(self, c: _Candidate, t: float) -> bool:
        """Whether ``c``'s event starts now."""
        return (
            self._may_raise(c)
            and c.unattended_since_s is not None
            and t - c.unattended_since_s >= self.min_unattended_s - TIME_EPS_S
        )

    # ------------------------------------------------------------------ events

    def _start(self, c: _Candidate, frame: FrameInfo) -> Event:
        assert c.unattended_since_s is not None
        details: dict[str, float | int | str | bool] = {"source": c.source}
        if c.owner_id is not None:
            details["owner_track_id"] = c.owner_id
        event = self._new_event(
            EVENT_TYPE,
            frame,
            None if self.zone is None else self.zone.name,
            track_id=c.track_id,
            label=c.label,
            score=c.score,
            bbox=c.box,
            start_s=c.unattended_since_s + self.min_unattended_s,
            details=details,
            key=-c.number,
        )
        logger.debug(
            "abandoned object started: camera=%s rule=%s object=%d source=%s t=%.3f",
            self.camera_id,
            self._rule_id,
            c.number,
            c.source,
            event.start_s,
        )
        return event

    def _end(self, c: _Candidate, end_s: float, why: str) -> Event:
        assert c.event is not None
        event = c.event.closed(max(c.event.start_s, end_s))
        logger.debug(
            "abandoned object ended (%s): camera=%s rule=%s object=%d t=%.3f..%.3f",
            why,
            self.camera_id,
            self._rule_id,
            c.number,
            event.start_s,
            event.end_s,
        )
        return event

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream and forget all state.

        Objects seen on the last detected frame end at ``end_s`` (pass the last
        frame's time); others at ``min(end_s, last time seen)``.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        events: list[Event] = []
        for c in self._candidates.values():
            if c.event is not None:
                still_there = c.last_seen_s >= self._last_detected_s - TIME_EPS_S
                end = end_s if still_there else min(end_s, c.last_seen_s)
                events.append(self._end(c, end, "close"))
        self._candidates.clear()
        self._persons.clear()
        self._history.clear()
        return events


# ------------------------------------------------------------------------ registration


class AbandonedObjectRuleConfig(RuleConfigBase):
    """An object left unattended ``min_unattended_s`` after its owner walked away."""

    type: Literal["abandoned_object"]
    zone: str | None = Field(None, description="Zone name (default: the whole picture).")
    classes: list[str] = Field(
        default_factory=lambda: ["backpack", "handbag", "suitcase"],
        min_length=1,
        description="Object classes the detector knows.",
    )
    unclassified: bool = Field(
        True, description="Also new stationary objects the detector does not classify."
    )
    min_unattended_s: float = Field(
        30.0, ge=0.0, le=86400.0, description="Seconds unattended before raising."
    )
    owner_distance: float = Field(
        1.5,
        gt=0.0,
        le=20.0,
        description="How far the owner may be from the object and still attend it, in body "
        "heights (1.5 is about 2.5 m), measured on the ground where the camera has one.",
    )
    owner_distance_m: float | None = Field(
        None,
        gt=0.0,
        le=50.0,
        description="The same in metres; needs the camera's ground calibration "
        "(`ground.points`). Replaces owner_distance.",
    )
    severity: int = Field(70, ge=0, le=100, description="Base priority of the rule's events.")


def build_abandoned_object(
    cfg: AbandonedObjectRuleConfig, ctx: BuildContext
) -> AbandonedObjectRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return AbandonedObjectRule(
        rule_id=cfg.rule_id,
        camera_id=ctx.camera_id,
        zone=ctx.optional_zone(cfg.zone),
        object_classes=ctx.class_ids(cfg.classes),
        person_classes=ctx.class_ids(["person"], key=None),
        class_names=ctx.class_names,
        use_static_objects=cfg.unclassified,
        min_unattended_s=cfg.min_unattended_s,
        owner_distance=cfg.owner_distance,
        owner_distance_m=ctx.metres(cfg, "owner_distance"),
        severity=cfg.severity,
    )


RULE = register(
    RuleType(
        type="abandoned_object",
        config=AbandonedObjectRuleConfig,
        build=build_abandoned_object,
        events={
            EVENT_TYPE: EventWords(
                "Abandoned object", "{object} left unattended {where}[ for {duration}]"
            )
        },
    )
)
