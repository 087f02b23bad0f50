"""Per-camera selection: tracker, then every rule (isolating failures), then the gate."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from detectors.detections import Detections
from selector.event import ZONE_MAX_POINTS, Event, Geometry, Point, evenly_spaced
from selector.ground import CameraGround
from selector.incidents import IncidentGate, RulePolicy
from selector.lines import Line
from selector.paths import TrackPaths
from selector.rules.base import POSE_HOOK, WATCHING_HOOK, FrameInfo, Rule
from selector.suppression import Suppression
from selector.tracker import ByteTracker
from selector.watch import MAX_WATCHES, Watch, rank_watches
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

MAX_OPEN_EVENTS = 4096
"""Most open track events whose start the selector remembers (for their end's path); a
bound against the ends a failing rule never sends."""


class CameraSelector:
    """Runs one camera's tracker, rules and incident gate.  Single-threaded.

    It also gives each rule event its ``geometry`` (see :class:`selector.event.Geometry`):
    the frame size (the last frame's with a known size; none known: no geometry), the
    zone the rule holds as ``zone`` (a :class:`selector.zones.PolygonZone` named like
    the event's zone), the line it holds as ``line`` (a :class:`selector.lines.Line`
    named like the event's line), and for track events the track's path from
    :attr:`paths`: up to the start frame for a start, up to the event's ``end_s`` (the
    last time the track was seen in it; not before the start frame) for an end.  An
    event a rule gave its own geometry keeps it.

    Args:
        camera_id: Camera id; frames of other cameras are refused.
        tracker: The camera's tracker (owned by this selector from now on).
        rules: The camera's rules, run in this order on every frame.
        policies: Arming, schedule and cooldown per ``rule_id`` (see
            :class:`selector.incidents.RulePolicy`); default: always armed, no cooldown.
        suppressions: Operator suppressions (other cameras' are ignored).
        ground: The camera's ground (a calibration, or an estimate learned from the
            people it tracks; see :mod:`selector.ground`); the rules get its model as
            ``FrameInfo.ground``.  ``None``: rules measure in the picture.

    Raises:
        ValueError: If two rules share a ``rule_id`` (events would collide).
    """

    def __init__(
        self,
        camera_id: str,
        tracker: ByteTracker,
        rules: Sequence[Rule],
        policies: Mapping[str, RulePolicy] | None = None,
        suppressions: Iterable[Suppression] = (),
        ground: CameraGround | None = None,
    ) -> None:
        _check_unique(camera_id, rules)
        self.camera_id = camera_id
        self.ground = ground
        self.tracker = tracker
        self.rules = tuple(rules)
        self.gate = IncidentGate(camera_id, policies, suppressions)
        self.paths = TrackPaths()
        self._frame_size: tuple[int, int] | None = None
        # open track events: event id -> (track id, video time of the start frame)
        self._open: dict[str, tuple[int, float]] = {}
        self._last_s: float | None = None  # video time of the last frame (for watching)
        self._last_wall: float | None = None  # its wall time (the schedules' clock)

    @property
    def has_tracks(self) -> bool:
        """Whether the detector must keep looking at every frame of this camera: the
        tracker holds a tentative, lost or moving track (see
        :meth:`ByteTracker.needs_every_frame`).  Tracks standing still are looked at
        by the motion gate's heartbeat."""
        return self.tracker.needs_every_frame()

    def update(self, dets: Detections, frame: FrameInfo) -> tuple[Detections, list[Event]]:
        """Track one frame's detections, run every rule, and gate their events.

        A rule that raises is logged (with camera id and rule id) and skipped for this
        frame; the other rules still run.  On a frame the detector skipped
        (``frame.detected`` false) the tracker is not updated: nobody looked, so no
        track may age or end because of it.

        Args:
            dets: Detections of the frame (pixels of the original frame).
            frame: The frame they come from.

        Returns:
            ``(tracks, records)``: the tracker's output for this frame (see
            :meth:`ByteTracker.update`) and the records to forward (see
            :meth:`IncidentGate.process`).

        Raises:
            ValueError: If ``frame.camera_id`` is not this selector's camera.
            selector.tracker.TrackerError: If the frame time goes backwards.
        """
        if frame.camera_id != self.camera_id:
            raise ValueError(
                f"selector of camera {self.camera_id!r} got a frame of camera {frame.camera_id!r}"
            )
        self._note_size(frame)
        if frame.detected:
            tracks = self.tracker.update(dets, frame.pts_s)
            ended = frozenset(self.tracker.pop_ended_ids())
            self.paths.add(tracks, frame.pts_s)
        else:
            tracks, ended = Detections.empty(dets.names), frozenset()
        frame = self._on_ground(tracks, frame)
        self._last_s = frame.pts_s
        self._last_wall = frame.wall_time
        events: list[Event] = []
        for rule in self.rules:
            try:
                got = rule.update(tracks, frame, ended)
            except Exception:  # isolation boundary: one faulty rule must not stop the others
                logger.exception(
                    "rule failed: camera=%s rule=%s seq=%d",
                    self.camera_id,
                    rule.rule_id,
                    frame.seq,
                )
                continue
            events.extend(self._with_geometry(rule, e, frame.pts_s) for e in got)
        if ended:
            self.paths.end(ended, frame.pts_s)
        if self.paths.holds_ended:
            self.paths.prune(frame.pts_s, {tid for tid, _ in self._open.values()})
        return tracks, self.gate.process(events, frame.pts_s)

    def _on_ground(self, tracks: Detections, frame: FrameInfo) -> FrameInfo:
        """``frame`` with the camera's ground model, after the ground learned from
        ``tracks`` (a calibration outside the picture is dropped and logged once)."""
        if self.ground is None or frame.width <= 0 or frame.height <= 0:
            return frame
        problem = self.ground.check_picture(frame.width, frame.height)
        if problem is not None:
            logger.error("%s", problem)
        if frame.detected:
            self.ground.update(tracks, frame.pts_s, frame.width, frame.height)
        model = self.ground.model
        return frame if model is None else replace(frame, ground=model)

    def pose_wanted(self) -> list[tuple[float, float, float, float]]:
        """The boxes (px) the rules want poses of on the next frame (see
        :data:`selector.rules.base.POSE_HOOK`), duplicates removed; a rule whose hook
        raises is logged and skipped."""
        boxes: dict[tuple[float, float, float, float], None] = {}
        for rule in self.rules:
            hook = getattr(rule, POSE_HOOK, None)
            if hook is None:
                continue
            try:
                for b in hook():
                    boxes[(float(b[0]), float(b[1]), float(b[2]), float(b[3]))] = None
            except Exception:  # isolation boundary, as in update()
                logger.exception(
                    "rule failed on pose_wanted: camera=%s rule=%s", self.camera_id, rule.rule_id
                )
        return list(boxes)

    def no_signal(self, frame: FrameInfo) -> list[Event]:
        """Tell the rules that watch the signal (camera health) that no frame is coming.

        ``frame`` describes *now*: the last frame's ``seq`` and the estimated current
        ``pts_s`` and wall time; it has no tracks.  Rules without a ``no_signal`` method
        are not called.
        """
        self._note_size(frame)
        self._last_s = frame.pts_s
        self._last_wall = frame.wall_time
        events: list[Event] = []
        for rule in self.rules:
            hook = getattr(rule, "no_signal", None)
            if hook is None:
                continue
            try:
                events.extend(self._with_geometry(rule, e, frame.pts_s) for e in hook(frame))
            except Exception:  # isolation boundary, as in update()
                logger.exception(
                    "rule failed on no-signal: camera=%s rule=%s", self.camera_id, rule.rule_id
                )
        return self.gate.process(events, frame.pts_s)

    def watching(self, now_s: float | None = None) -> list[Watch]:
        """What the rules are watching that may become an event, most urgent first.

        Asks every rule with the optional ``watching`` hook (see
        :data:`selector.rules.base.WATCHING_HOOK`; rules without it are not asked) at
        video time ``now_s`` (seconds; ``None``: the time of the last frame
        :meth:`update` or :meth:`no_signal` saw, and nothing before any frame).  A rule
        whose hook raises or returns something else than watches is logged (camera and
        rule id) and skipped; the others still answer.  Ranked by
        :func:`selector.watch.rank_watches`, at most :data:`selector.watch.MAX_WATCHES`.

        Rules whose events the incident gate would not forward now (disabled, or disarmed
        by their schedule at the last frame's wall time) are not asked: their activity
        could never become an alert.  Suppressions match each event's own fields and are
        not looked at.  Cheap (meant for about once a second), and changes no rule's
        state.
        """
        at_s = self._last_s if now_s is None else now_s
        if at_s is None:
            return []
        watches: list[Watch] = []
        for rule in self.rules:
            hook = getattr(rule, WATCHING_HOOK, None)
            if hook is None:
                continue
            if self._last_wall is not None and not self.gate.forwards(
                rule.rule_id, self._last_wall
            ):
                continue
            try:
                got = list(hook(at_s))
                if not all(isinstance(w, Watch) for w in got):
                    raise TypeError(f"watching() must return Watch values, got {got!r:.200}")
            except Exception:  # isolation boundary, as in update()
                logger.exception(
                    "rule failed on watching: camera=%s rule=%s", self.camera_id, rule.rule_id
                )
                continue
            watches.extend(got)
        return rank_watches(watches, MAX_WATCHES)

    def set_rules(
        self, rules: Sequence[Rule], policies: Mapping[str, RulePolicy], now_s: float | None
    ) -> list[Event]:
        """Swap in a new rule set (hot reload) at video time ``now_s``.

        Rules present in both sets (the same objects) keep their state; removed rules
        are closed at ``now_s`` (their open events end there; ``None``: no frame seen
        yet, nothing to close).

        Returns:
            The records of the events this closed.

        Raises:
            ValueError: Duplicate rule ids in ``rules``; the old set stays in force.
        """
        _check_unique(self.camera_id, rules)
        keep = {id(r) for r in rules}
        events: list[Event] = []
        if now_s is not None:
            for rule in self.rules:
                if id(rule) not in keep:
                    events.extend(self._close_rule(rule, now_s))
        self.rules = tuple(rules)
        self.gate.set_policies(policies)
        return self.gate.process(events, now_s) if now_s is not None else []

    def set_suppressions(self, suppressions: Iterable[Suppression]) -> None:
        """Replace the operator suppressions."""
        self.gate.set_suppressions(suppressions)

    def close_all(self, end_s: float) -> list[Event]:
        """Close every rule's open events and every incident at end of stream.

        ``end_s`` is the last frame's time.  A rule that raises is logged and skipped,
        as in :meth:`update`.
        """
        events: list[Event] = []
        for rule in self.rules:
            events.extend(self._close_rule(rule, end_s))
        self._open.clear()
        return self.gate.process(events, end_s) + self.gate.close_all(end_s)

    def _close_rule(self, rule: Rule, end_s: float) -> list[Event]:
        try:
            return [self._with_geometry(rule, e, end_s) for e in rule.close_all(end_s)]
        except Exception:  # isolation boundary, as in update()
            logger.exception(
                "rule failed to close: camera=%s rule=%s", self.camera_id, rule.rule_id
            )
            return []

    def _note_size(self, frame: FrameInfo) -> None:
        if frame.width > 0 and frame.height > 0:
            self._frame_size = (frame.width, frame.height)

    def _with_geometry(self, rule: Rule, event: Event, now_s: float) -> Event:
        """``event`` with its geometry (see the class doc); ``now_s``: the frame's time."""
        until_s = now_s
        if event.track_id is not None:
            if event.is_open:
                self._open[event.event_id] = (event.track_id, now_s)
                if len(self._open) > MAX_OPEN_EVENTS:  # ends lost to a failing rule
                    del self._open[next(iter(self._open))]
            else:
                _, start_frame_s = self._open.pop(event.event_id, (0, event.start_s))
                end_s = event.end_s if event.end_s is not None else now_s
                until_s = max(end_s, start_frame_s)
        if event.geometry is not None or self._frame_size is None:
            return event
        zone = getattr(rule, "zone", None)
        line = getattr(rule, "line", None)
        try:
            geometry = Geometry(
                frame=self._frame_size,
                zone=_zone_points(zone)
                if isinstance(zone, PolygonZone) and zone.name == event.zone
                else None,
                line=_line_points(line)
                if isinstance(line, Line) and line.name == event.line
                else None,
                path=None if event.track_id is None else self.paths.path(event.track_id, until_s),
            )
        except Exception:  # a drawing aid: the event goes out without it
            logger.exception(
                "no geometry for event: camera=%s rule=%s event=%s",
                self.camera_id,
                rule.rule_id,
                event.event_id,
            )
            return event
        return replace(event, geometry=geometry)


def _zone_points(zone: PolygonZone) -> tuple[Point, ...]:
    """The zone's vertices, evenly thinned to ``ZONE_MAX_POINTS``."""
    vertices = zone.polygon.tolist()
    return tuple(
        (float(vertices[i][0]), float(vertices[i][1]))
        for i in evenly_spaced(len(vertices), ZONE_MAX_POINTS)
    )


def _check_unique(camera_id: str, rules: Sequence[Rule]) -> None:
    ids = [r.rule_id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"camera {camera_id!r}: duplicate rule ids {dupes}")


def _line_points(line: Line) -> tuple[Point, Point]:
    """The line's end points ``p1``, ``p2``."""
    return (float(line.p1[0]), float(line.p1[1])), (float(line.p2[0]), float(line.p2[1]))
