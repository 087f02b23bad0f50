"""Fall: an upright person goes down within a moment and stays down."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
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
    open_events_of,
    zone_weight_of,
)
from selector.rules.config import RuleConfigBase
from selector.rules.registry import BuildContext, EventWords, RuleType, register
from selector.tracker import iou_matrix
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

EVENT_TYPE = "fall"

PERSON_CLASSES = frozenset({0})
"""COCO person: the default ``person_classes``."""

UPRIGHT_MIN_S = 0.5
"""Seconds a track must have been upright, without a break, to count as a standing
person (a track born lying or crouching never falls)."""

COLLAPSE_FRAC = 0.6
"""A fall takes the person's box (or blob) height down to at most this share of the
upright height; getting up takes it back above."""

BOTTOM_TOL = 0.25
"""How far (in upright box heights) the bottom of a collapsing box may move: the feet
stay put while the body goes down."""

LYING_BOTTOM_TOL = 0.5
"""How far (in upright box heights) the bottom of a lying blob may lie from where the
person stood (a body falling towards the camera ends lower in the picture)."""

LYING_GAP = 0.4
"""How far (in upright box heights) beside the upright box a lying blob may begin: a
person falling sideways ends up next to where they stood, not under it."""

SUPPORT_IOU = 0.3
"""IoU with the down box that makes a box or blob in a later frame "still there"."""

EDGE_FRAC = 0.01
"""Boxes within this share of the frame size from a border are clipped by it: no fall is
inferred from them (a person leaving the picture shrinks into a wide box, or vanishes)."""

HISTORY_MARGIN_S = 1.0
"""Seconds of track history kept beyond what the fall test looks at."""

Box = tuple[float, float, float, float]

SIGNAL_WIDE = "wide"  # the track's own box turned wide
SIGNAL_COLLAPSE = "collapse"  # the box shrank with the feet in place; a lying blob there
SIGNAL_LOST = "lost"  # the track vanished there; a lying blob there
SIGNAL_POSE = "pose"  # the box shrank with the feet in place; the pose model says lying

POSE_MAX_ASKS = 3
"""Most frames the rule asks the pose model about one candidate before deciding without."""
POSE_MIN_SCORE = 0.2
"""Least pose score an answer needs to count (a lying person scores lower than a
standing one: about 0.4 on the suite's people)."""
POSE_HOLD_S = 5.0
"""Seconds a track the pose model found upright is not asked about again."""

_UP = "up"
_SUPPORT = "support"


def _h(b: Box) -> float:
    return b[3] - b[1]


def _w(b: Box) -> float:
    return b[2] - b[0]


def _ratio(b: Box) -> float:
    """Height / width (inf for a zero-width box)."""
    w = _w(b)
    return _h(b) / w if w > 0.0 else math.inf


def _iou(a: Box, b: Box) -> float:
    return float(iou_matrix(a, b)[0, 0])


@dataclass(slots=True)
class _Track:
    """Recent sightings of one person track: ``(t, box)`` oldest first."""

    first_seen_s: float
    last_seen_s: float
    last_box: Box
    label: str
    score: float
    history: deque[tuple[float, Box]] = field(default_factory=deque)
    # Heights (px) of the last max_fall_s, decreasing: peaks[0] is their maximum.
    peaks: deque[tuple[float, float]] = field(default_factory=deque)


@dataclass(slots=True)
class _Down:
    """A person seen down: pending until ``min_down_s``, then an open event."""

    track_id: int
    down_s: float  # when the rule first saw the person down
    anchor: Box  # the down box (px): later boxes/blobs matching it keep it down
    upright_h: float  # height (px) of the upright box before the fall
    signal: str
    fall_s: float  # seconds from the upright reference to down
    label: str
    score: float
    box: Box  # latest supporting box
    last_support_s: float
    supported_now: bool = True
    event: Event | None = None
    pose: str | None = None  # "lying" once the pose model said so
    pose_asks: int = 0


@dataclass(slots=True)
class _Suspect:
    """A person whose box collapsed with the feet in place and no lying blob: the pose
    model is asked whether they lie there (only with ``use_pose``)."""

    box: Box
    upright_h: float
    since_s: float
    fall_s: float
    label: str
    score: float
    asks: int = 0


class FallRule(TrackRule):
    """Raises one ``"fall"`` event per person going down and staying down.

    The default detector rarely recognises a person lying on the ground, so the rule
    combines the person's track with the scene's foreground blobs
    (``FrameInfo.scene.foreground`` and ``static_objects``).  Boxes are full-frame
    pixels, times video seconds (``FrameInfo.pts_s``), ratios height / width.

    * **Upright reference.**  A person track is *upright* in a frame when its box
      ratio is ``>= upright_ratio``.  For a frame at time ``t``, the reference is the
      tallest upright box of the track seen in ``[t - max_fall_s, t)`` whose run of
      consecutive upright sightings lasted ``>= UPRIGHT_MIN_S``; its height is ``H``.
    * **Going down** (boxes touching a frame border, within ``EDGE_FRAC``, never count):

      - *wide*: the track's box is wide (ratio ``<= wide_ratio``) and at most
        ``COLLAPSE_FRAC * H`` high;
      - *collapse*: the box is at most ``COLLAPSE_FRAC * H`` high with its bottom
        within ``BOTTOM_TOL * H`` of the reference's (feet in place) and a *lying blob*
        is there;
      - *lost*: the track vanished (not in a detected frame) at most ``max_fall_s``
        ago, away from the borders, upright shortly before (reference taken before
        its last sighting), and a lying blob is there.

      A *lying blob* (foreground or static) is at most ``COLLAPSE_FRAC * H`` high,
      wide (ratio ``<= wide_ratio``), wider than the reference box, overlaps it
      horizontally, and its bottom is within ``[-BOTTOM_TOL, LYING_BOTTOM_TOL] * H``
      of the reference's bottom.  The *down box* is the wide track box or the blob.
      Because the height must drop within ``max_fall_s``, sitting or lying down slowly
      is not a fall; a crouch keeps a tall blob; a person walking behind an obstacle
      leaves no lying blob (or a moving one); one leaving the picture is at a border.
    * **Staying down.**  In each later detected frame the person is *still down* when
      their track, not upright, or another track that is not upright, or a foreground
      or static blob matches the down box with IoU ``>= SUPPORT_IOU``.  The person
      *got up* when their track is upright again and above ``COLLAPSE_FRAC * H`` high,
      or a new track (first seen after the fall) does so at that spot.
    * **Event.**  At the first frame still down at least ``min_down_s`` after going
      down, ONE event starts with ``start_s`` = the moment the rule first saw the
      person down (``frame.pts_s`` is ``min_down_s`` later or more), ``bbox`` = the
      current down box, ``label`` and ``score`` of the track, ``track_id`` = the
      person's track, ``details`` = ``{"signal": "wide"|"collapse"|"lost",
      "fall_s": seconds from the upright reference to down}``.  The down box's ground
      point must be in ``zone`` (anywhere when ``None``).
    * **End.**  When the person got up (``end_s`` = that frame's time), or nothing has
      shown them still down for ``end_grace_s`` (``end_s`` = the last time something
      did).  Before ``min_down_s`` the same conditions just drop the candidate (a
      person bending or crouching briefly).
    * **Pose** (``use_pose``, where the camera has the pose model): after each frame
      the rule asks (:meth:`pose_wanted`) about the people down but not yet alerted on,
      and about *suspects*: boxes that collapsed with the feet in place where no lying
      blob is (a person the picture alone cannot tell from one sitting).  The answers
      come with the next frame (``FrameInfo.poses``): a person down found *upright*
      (torso within 60 degrees of vertical), or a suspect found so, is dropped, and that
      track is not judged for a fall again for ``POSE_HOLD_S`` (nor asked about); a
      suspect found *lying* goes down (signal ``"pose"``, down
      since the collapse).  An event the pose model confirmed has
      ``details["pose"] = "lying"``.  No answer (no model, nobody found, too few
      keypoints): decided without pose, as above.
    * **Frames without detection** (``frame.detected`` false): tracks are empty because
      nobody looked; only blobs count, as support.  Nothing goes down, gets up or ends
      on such a frame; an event may start on a blob's support.

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"fall:platform"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: Zone watched, or ``None`` for the whole frame.
        person_classes: Class ids of people (default COCO person).
        class_names: Class names of the model (index = class id).  When given, class
            ids are checked against it and labels are taken from it.
        min_down_s: Seconds down before the event starts (>= 0).
        upright_ratio: Box height / width at or above which a person stands (> 0).
        wide_ratio: Box height / width at or below which a box is lying
            (0 < x < ``upright_ratio``).
        max_fall_s: Longest time (> 0) a fall takes from upright to down.
        end_grace_s: Seconds without any sign of the person down before it ends (>= 0).
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Tracks below this score are ignored, [0, 1].
        zone_weight: Priority multiplier (finite, >= 0); ``None`` uses ``zone.weight``
            (1.0 without a zone).
        use_pose: Ask the pose model (see **Pose** above).

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
        person_classes: Collection[int] = PERSON_CLASSES,
        class_names: Sequence[str] = (),
        min_down_s: float = 3.0,
        upright_ratio: float = 1.3,
        wide_ratio: float = 1.0,
        max_fall_s: float = 1.5,
        end_grace_s: float = 2.0,
        severity: int = 80,
        min_score: float = 0.0,
        zone_weight: float | None = None,
        use_pose: bool = False,
    ) -> None:
        super().__init__(rule_id, camera_id)
        self.uses_pose = bool(use_pose)
        persons = check_classes(rule_id, person_classes, class_names)
        if persons is None:  # pragma: no cover - check_classes(None)
            raise RuleError(f"rule {rule_id!r}: person_classes is required")
        self.min_down_s = check_seconds(rule_id, "min_down_s", min_down_s)
        self.upright_ratio = check_seconds(rule_id, "upright_ratio", upright_ratio, positive=True)
        self.wide_ratio = check_seconds(rule_id, "wide_ratio", wide_ratio, positive=True)
        if self.wide_ratio >= self.upright_ratio:
            raise RuleError(
                f"rule {rule_id!r}: wide_ratio must be < upright_ratio "
                f"({upright_ratio!r}), got {wide_ratio!r}"
            )
        self.max_fall_s = check_seconds(rule_id, "max_fall_s", max_fall_s, positive=True)
        self.end_grace_s = check_seconds(rule_id, "end_grace_s", end_grace_s)
        self._init_scoring(severity, zone_weight_of(zone, zone_weight), min_score, class_names)
        self.zone = zone
        self.person_classes = persons
        self._history_s = self.max_fall_s + UPRIGHT_MIN_S + HISTORY_MARGIN_S
        self._tracks: dict[int, _Track] = {}
        self._downs: dict[int, _Down] = {}
        self._last_s = -math.inf
        self._suspects: dict[int, _Suspect] = {}
        self._asked: dict[Box, int] = {}  # boxes asked about after the last frame
        self._upright_until: dict[int, float] = {}  # tracks the pose model found upright

    def open_events(self) -> list[Event]:
        """Events started and not yet ended, by track id."""
        return open_events_of(self._downs)

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume one frame; return the events started or ended in it.

        Arguments and errors: see :meth:`selector.rules.base.Rule.update`;
        ``frame.scene`` (when present) gives the foreground blobs.

        Returns:
            Ended events (``end_s`` set) then started ones, each ordered by track id.
        """
        check_camera(self._rule_id, self.camera_id, frame)
        t = frame.pts_s
        self._last_s = t
        blobs = self._blobs(frame)
        ended: list[Event] = []
        if self.uses_pose:
            self._read_poses(frame)
        if frame.detected:
            seen = self._see(tracks, t)
            ended.extend(self._judge_all(seen, blobs, t))
            for tid in sorted(self._tracks):
                if tid in self._downs or self._upright_until.get(tid, -math.inf) > t:
                    continue  # down already, or the pose model just found them upright
                if tid in seen:
                    down = self._went_down(tid, seen[tid], blobs, frame)
                else:
                    down = self._vanished_down(tid, blobs, frame)
                if down is not None:
                    self._downs[tid] = down
                    logger.debug(
                        "fall candidate: camera=%s rule=%s track=%d signal=%s t=%.3f",
                        self.camera_id,
                        self._rule_id,
                        tid,
                        down.signal,
                        t,
                    )
        else:
            for d in self._downs.values():
                best = self._matching_blob(d.anchor, d.upright_h, blobs)
                d.supported_now = best is not None
                if best is not None:
                    d.box, d.last_support_s = best, t
        for tid in set(ended_ids):
            self._tracks.pop(tid, None)
            self._suspects.pop(tid, None)
        started: list[Event] = []
        for _, d in sorted(self._downs.items()):
            if d.event is None and d.supported_now and t - d.down_s >= self.min_down_s - TIME_EPS_S:
                d.event = self._start(d, frame)
                started.append(d.event)
        return ended + started

    # ---------------------------------------------------------------- observing

    def _blobs(self, frame: FrameInfo) -> list[Box]:
        """Foreground then static blobs of the frame (px), empty without scene data."""
        scene = frame.scene
        if scene is None:
            return []
        out: list[Box] = []
        for dets in (scene.foreground, scene.static_objects):
            if dets is not None:
                out.extend(box_of(dets, k) for k in range(len(dets)))
        return out

    def _see(self, tracks: Detections, t: float) -> dict[int, Box]:
        """Record this frame's person tracks; return their boxes by track id."""
        seen: dict[int, Box] = {}
        rows: list[int] = np.flatnonzero(
            eligible(tracks, self.person_classes, self.min_score)
        ).tolist()
        for i in rows:
            tid, b = int(tracks.tracker_id[i]), box_of(tracks, i)
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track(t, t, b, "", 0.0)
            tr.last_seen_s, tr.last_box = t, b
            tr.label, tr.score = label_of(tracks, i, self.class_names), float(tracks.score[i])
            tr.history.append((t, b))
            while tr.history and tr.history[0][0] < t - self._history_s:
                tr.history.popleft()
            while tr.peaks and tr.peaks[-1][1] <= _h(b):
                tr.peaks.pop()
            tr.peaks.append((t, _h(b)))
            while tr.peaks[0][0] < t - self.max_fall_s - TIME_EPS_S:
                tr.peaks.popleft()
            seen[tid] = b
        for tid in [k for k, tr in self._tracks.items() if t - tr.last_seen_s > self._history_s]:
            del self._tracks[tid]  # long gone (its end was not reported)
        return seen

    def _at_border(self, b: Box, frame: FrameInfo) -> bool:
        mx, my = EDGE_FRAC * frame.width, EDGE_FRAC * frame.height
        return b[0] <= mx or b[1] <= my or b[2] >= frame.width - mx or b[3] >= frame.height - my

    def _reference(self, sightings: Sequence[tuple[float, Box]], t: float) -> Box | None:
        """Upright reference box among ``sightings`` (oldest first) for a fall at ``t``.

        The tallest upright box seen in ``[t - max_fall_s, t]`` whose run of
        consecutive upright sightings lasted ``>= UPRIGHT_MIN_S``; ``None`` if none.
        """
        lo = t - self.max_fall_s - TIME_EPS_S
        best: Box | None = None
        run_start: float | None = None  # first sighting of the current upright run
        for ts, b in sightings:  # one pass, oldest first
            if ts > t + TIME_EPS_S:
                break
            if _ratio(b) < self.upright_ratio:
                run_start = None
                continue
            if run_start is None:
                run_start = ts
            if (
                ts >= lo
                and ts - run_start >= UPRIGHT_MIN_S - TIME_EPS_S
                and (best is None or _h(b) >= _h(best))  # the latest of equally tall ones
            ):
                best = b
        return best

    def _lying_blob(self, ref: Box, blobs: list[Box]) -> Box | None:
        """The blob nearest ``ref`` that looks like that person lying there.

        A body falls sideways from where the feet were: the blob may start beside the
        upright box rather than under it, so it must come within ``LYING_GAP * H`` of the
        box horizontally (``H`` the upright height); the nearest such blob wins, the most
        overlapping among those touching it.
        """
        h = _h(ref)
        best: tuple[float, float, Box] | None = None
        for b in blobs:
            dy = b[3] - ref[3]
            gap = max(b[0] - ref[2], ref[0] - b[2], 0.0)
            if (
                _h(b) <= COLLAPSE_FRAC * h
                and _ratio(b) <= self.wide_ratio
                and _w(b) > _w(ref)
                and gap <= LYING_GAP * h
                and -BOTTOM_TOL * h <= dy <= LYING_BOTTOM_TOL * h
            ):
                key = (gap, -_iou(b, ref))
                if best is None or key < best[:2]:
                    best = (key[0], key[1], b)
        return None if best is None else best[2]

    def _went_down(self, tid: int, b: Box, blobs: list[Box], frame: FrameInfo) -> _Down | None:
        """A fall of a seen track whose box is ``b`` in this frame, or ``None``."""
        tr = self._tracks[tid]
        if _h(b) > COLLAPSE_FRAC * tr.peaks[0][1]:
            return None  # not much lower than lately: the common case, decided at once
        if self._at_border(b, frame):
            return None
        earlier = list(tr.history)[:-1]
        ref = self._reference(earlier, frame.pts_s)
        if ref is None or _h(b) > COLLAPSE_FRAC * _h(ref):
            return None
        if _ratio(b) <= self.wide_ratio:
            return self._down(tid, b, ref, SIGNAL_WIDE, earlier, frame)
        cx, rx = (b[0] + b[2]) / 2.0, (ref[0] + ref[2]) / 2.0
        if abs(b[3] - ref[3]) > BOTTOM_TOL * _h(ref) or abs(cx - rx) > 0.5 * _h(ref):
            return None
        blob = self._lying_blob(ref, blobs)
        if blob is None:
            self._suspect(tid, b, ref, earlier, frame.pts_s)
            return None
        return self._down(tid, blob, ref, SIGNAL_COLLAPSE, earlier, frame)

    def _vanished_down(self, tid: int, blobs: list[Box], frame: FrameInfo) -> _Down | None:
        """A fall of a track not seen in this detected frame, or ``None``."""
        tr = self._tracks[tid]
        if frame.pts_s - tr.last_seen_s > self.max_fall_s + TIME_EPS_S:
            return None
        if self._at_border(tr.last_box, frame):
            return None  # left the picture
        sightings = list(tr.history)
        ref = self._reference(sightings, tr.last_seen_s)
        if ref is None:
            return None
        blob = self._lying_blob(ref, blobs)
        if blob is None:
            return None  # behind an obstacle, or gone
        return self._down(tid, blob, ref, SIGNAL_LOST, sightings, frame)

    def _down(
        self,
        tid: int,
        box: Box,
        ref: Box,
        signal: str,
        sightings: list[tuple[float, Box]],
        frame: FrameInfo,
    ) -> _Down | None:
        ground = ((box[0] + box[2]) / 2.0, box[3])
        if self.zone is not None and not bool(self.zone.contains([ground])[0]):
            return None
        ref_s = max(ts for ts, b in sightings if b == ref)
        tr = self._tracks[tid]
        return _Down(
            track_id=tid,
            down_s=frame.pts_s,
            anchor=box,
            upright_h=_h(ref),
            signal=signal,
            fall_s=frame.pts_s - ref_s,
            label=tr.label,
            score=tr.score,
            box=box,
            last_support_s=frame.pts_s,
        )

    # ------------------------------------------------------------------ pose

    def pose_wanted(self) -> list[Box]:
        """The boxes (px) to measure poses of on the next frame (see
        :data:`selector.rules.base.POSE_HOOK`): people down but not yet alerted on whom
        the pose model has not spoken, and suspects; each asked ``POSE_MAX_ASKS``
        times at most.  Nothing without ``use_pose``."""
        self._asked.clear()
        if not self.uses_pose:
            return []
        for tid, d in sorted(self._downs.items()):
            if d.event is None and d.pose is None and d.pose_asks < POSE_MAX_ASKS:
                d.pose_asks += 1
                self._asked[d.anchor] = tid
        for tid, sus in sorted(self._suspects.items()):
            if sus.asks < POSE_MAX_ASKS:
                sus.asks += 1
                self._asked[sus.box] = tid
        return list(self._asked)

    def _suspect(
        self, tid: int, b: Box, ref: Box, sightings: list[tuple[float, Box]], t: float
    ) -> None:
        """Keep track ``tid`` (collapsed box ``b``, upright ``ref``) for the pose model."""
        if not self.uses_pose or tid in self._suspects:
            return
        ground = ((b[0] + b[2]) / 2.0, b[3])
        if self.zone is not None and not bool(self.zone.contains([ground])[0]):
            return
        tr = self._tracks[tid]
        ref_s = max(ts for ts, sb in sightings if sb == ref)
        self._suspects[tid] = _Suspect(b, _h(ref), t, t - ref_s, tr.label, tr.score)

    def _read_poses(self, frame: FrameInfo) -> None:
        """Apply the pose model's answers about the boxes asked after the last frame: a
        person it finds upright is no fall (yet to alert: dropped); a suspect it finds
        lying is down since their box collapsed."""
        t = frame.pts_s
        for pose in frame.poses:
            tid = self._asked.get(pose.box)
            if tid is None or pose.score < POSE_MIN_SCORE or pose.lying is None:
                continue
            d, sus = self._downs.get(tid), self._suspects.pop(tid, None)
            if d is not None and d.event is None:
                if pose.lying:
                    d.pose = "lying"
                else:
                    del self._downs[tid]
                    self._upright_until[tid] = t + POSE_HOLD_S
                    logger.debug(
                        "fall candidate cleared by pose: camera=%s rule=%s track=%d t=%.3f",
                        self.camera_id,
                        self._rule_id,
                        tid,
                        t,
                    )
            elif sus is not None and d is None and pose.lying:
                self._downs[tid] = _Down(
                    track_id=tid,
                    down_s=sus.since_s,
                    anchor=sus.box,
                    upright_h=sus.upright_h,
                    signal=SIGNAL_POSE,
                    fall_s=sus.fall_s,
                    label=sus.label,
                    score=sus.score,
                    box=sus.box,
                    last_support_s=t,
                    pose="lying",
                )
            elif sus is not None and not pose.lying:
                self._upright_until[tid] = t + POSE_HOLD_S
        self._asked.clear()
        for tid in [k for k, s in self._suspects.items() if t - s.since_s > self.max_fall_s]:
            del self._suspects[tid]  # the pose model never said: no fall found
        for tid in [k for k, until in self._upright_until.items() if until <= t]:
            del self._upright_until[tid]

    def _matching_blob(self, anchor: Box, upright_h: float, blobs: list[Box]) -> Box | None:
        """The blob showing the person still down at ``anchor``, or ``None``.

        Either it overlaps the anchor (IoU >= ``SUPPORT_IOU``), or it is a low blob on
        the same stretch of floor: at most ``COLLAPSE_FRAC`` of the upright height
        high, sharing at least half the narrower width with the anchor, its bottom
        within ``LYING_BOTTOM_TOL`` upright heights of the anchor's.  The second form
        follows a body that was caught mid-fall and settled a little lower.
        """
        best: tuple[float, Box] | None = None
        for b in blobs:
            overlap = _iou(b, anchor)
            shared = min(b[2], anchor[2]) - max(b[0], anchor[0])
            settled = (
                _h(b) <= COLLAPSE_FRAC * upright_h
                and shared >= 0.5 * min(_w(b), _w(anchor))
                and abs(b[3] - anchor[3]) <= LYING_BOTTOM_TOL * upright_h
            )
            if (overlap >= SUPPORT_IOU or settled) and (best is None or overlap > best[0]):
                best = (overlap, b)
        return None if best is None else best[1]

    def _judge_all(self, seen: dict[int, Box], blobs: list[Box], t: float) -> list[Event]:
        """Update every down person from a detected frame; return the ended events."""
        events: list[Event] = []
        for tid in sorted(self._downs):
            d = self._downs[tid]
            verdict, box = self._judge(d, seen, blobs)
            d.supported_now = verdict == _SUPPORT
            if verdict == _SUPPORT and box is not None:
                d.box, d.last_support_s = box, t
                continue
            if verdict == _UP:
                end_s = t
            elif t - d.last_support_s >= self.end_grace_s - TIME_EPS_S:
                end_s = d.last_support_s
            else:
                continue
            del self._downs[tid]
            if d.event is not None:
                events.append(self._end(d, end_s, verdict or "gone"))
        return events

    def _judge(
        self, d: _Down, seen: dict[int, Box], blobs: list[Box]
    ) -> tuple[str | None, Box | None]:
        """``(_UP, None)``, ``(_SUPPORT, box)`` or ``(None, None)`` for ``d`` now."""
        tall = COLLAPSE_FRAC * d.upright_h
        ax = (d.anchor[0] + d.anchor[2]) / 2.0
        support: tuple[float, Box] | None = None
        for tid in sorted(seen):
            b = seen[tid]
            upright = _ratio(b) >= self.upright_ratio and _h(b) > tall
            if upright and tid == d.track_id:
                return _UP, None
            if (
                upright
                and self._tracks[tid].first_seen_s >= d.down_s - TIME_EPS_S
                and abs((b[0] + b[2]) / 2.0 - ax) <= _w(d.anchor) / 2.0 + 0.5 * d.upright_h
                and abs(b[3] - d.anchor[3]) <= LYING_BOTTOM_TOL * d.upright_h
            ):
                return _UP, None  # re-detected under a new id, standing where they lay
            if not upright:
                overlap = _iou(b, d.anchor)
                if overlap >= SUPPORT_IOU and (support is None or overlap > support[0]):
                    support = (overlap, b)
        if support is not None:
            return _SUPPORT, support[1]
        blob = self._matching_blob(d.anchor, d.upright_h, blobs)
        return (_SUPPORT, blob) if blob is not None else (None, None)

    # ------------------------------------------------------------------ events

    def _start(self, d: _Down, frame: FrameInfo) -> Event:
        details: dict[str, float | int | str | bool] = {
            "signal": d.signal,
            "fall_s": round(d.fall_s, 3),
        }
        if d.pose is not None:
            details["pose"] = d.pose
        event = self._new_event(
            EVENT_TYPE,
            frame,
            None if self.zone is None else self.zone.name,
            track_id=d.track_id,
            label=d.label,
            score=d.score,
            bbox=d.box,
            start_s=d.down_s,
            details=details,
        )
        logger.debug(
            "fall started: camera=%s rule=%s track=%d signal=%s down at %.3f",
            self.camera_id,
            self._rule_id,
            d.track_id,
            d.signal,
            d.down_s,
        )
        return event

    def _end(self, d: _Down, end_s: float, why: str) -> Event:
        assert d.event is not None
        event = d.event.closed(max(d.event.start_s, end_s))
        logger.debug(
            "fall ended (%s): camera=%s rule=%s track=%d t=%.3f..%.3f",
            why,
            self.camera_id,
            self._rule_id,
            d.track_id,
            event.start_s,
            event.end_s,
        )
        return event

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream and forget all state.

        A person still down on the last frame ends at ``end_s`` (pass the last frame's
        time); others at ``min(end_s, last time seen down)``.

        Raises:
            RuleError: If ``end_s`` is not finite.
        """
        check_end_s(self._rule_id, end_s)
        events: list[Event] = []
        for _, d in sorted(self._downs.items()):
            if d.event is not None:
                still = d.last_support_s >= self._last_s - TIME_EPS_S
                events.append(
                    self._end(d, end_s if still else min(end_s, d.last_support_s), "close")
                )
        self._downs.clear()
        self._tracks.clear()
        self._suspects.clear()
        self._asked.clear()
        self._upright_until.clear()
        return events


# ------------------------------------------------------------------------ registration


class FallRuleConfig(RuleConfigBase):
    """A person goes from upright to lying and stays down ``min_down_s``."""

    type: Literal["fall"]
    zone: str | None = Field(None, description="Zone name (default: the whole picture).")
    min_down_s: float = Field(3.0, ge=0.0, le=3600.0, description="Seconds down before raising.")
    severity: int = Field(85, ge=0, le=100, description="Base priority of the rule's events.")
    pose: bool = Field(
        False,
        description="Ask the optional pose model (`argus models pull --pose`) about a person "
        "who may be down: it finds a lying person the picture alone misses, and clears one "
        "who only sat or crouched. About 40 ms of CPU per question, asked only about them.",
    )


def build_fall(cfg: FallRuleConfig, ctx: BuildContext) -> FallRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return FallRule(
        rule_id=cfg.rule_id,
        camera_id=ctx.camera_id,
        zone=ctx.optional_zone(cfg.zone),
        person_classes=ctx.class_ids(["person"], key=None),
        class_names=ctx.class_names,
        min_down_s=cfg.min_down_s,
        severity=cfg.severity,
        use_pose=cfg.pose,
    )


RULE = register(
    RuleType(
        type="fall",
        config=FallRuleConfig,
        build=build_fall,
        events={EVENT_TYPE: EventWords("Fall", "{object} fell {where}[, down for {duration}]")},
    )
)
