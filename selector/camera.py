"""Per-camera selection: tracker, then every rule (isolating failures), then the gate."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from detectors.detections import Detections
from selector.event import Event
from selector.incidents import IncidentGate, RulePolicy
from selector.rules.base import FrameInfo, Rule
from selector.suppression import Suppression
from selector.tracker import ByteTracker

logger = logging.getLogger(__name__)


class CameraSelector:
    """Runs one camera's tracker, rules and incident gate.  Single-threaded.

    Args:
        camera_id: Camera id; frames of other cameras are refused.
        tracker: The camera's tracker (owned by this selector from now on).
        rules: The camera's rules, run in this order on every frame.
        policies: Arming, schedule and cooldown per ``rule_id`` (see
            :class:`selector.incidents.RulePolicy`); default: always armed, no cooldown.
        suppressions: Operator suppressions (other cameras' are ignored).

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
    ) -> None:
        _check_unique(camera_id, rules)
        self.camera_id = camera_id
        self.tracker = tracker
        self.rules = tuple(rules)
        self.gate = IncidentGate(camera_id, policies, suppressions)

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
        if frame.detected:
            tracks = self.tracker.update(dets, frame.pts_s)
            ended = frozenset(self.tracker.pop_ended_ids())
        else:
            tracks, ended = Detections.empty(dets.names), frozenset()
        events: list[Event] = []
        for rule in self.rules:
            try:
                events.extend(rule.update(tracks, frame, ended))
            except Exception:  # isolation boundary: one faulty rule must not stop the others
                logger.exception(
                    "rule failed: camera=%s rule=%s seq=%d",
                    self.camera_id,
                    rule.rule_id,
                    frame.seq,
                )
        return tracks, self.gate.process(events, frame.pts_s)

    def no_signal(self, frame: FrameInfo) -> list[Event]:
        """Tell the rules that watch the signal (camera health) that no frame is coming.

        ``frame`` describes *now*: the last frame's ``seq`` and the estimated current
        ``pts_s`` and wall time; it has no tracks.  Rules without a ``no_signal`` method
        are not called.
        """
        events: list[Event] = []
        for rule in self.rules:
            hook = getattr(rule, "no_signal", None)
            if hook is None:
                continue
            try:
                events.extend(hook(frame))
            except Exception:  # isolation boundary, as in update()
                logger.exception(
                    "rule failed on no-signal: camera=%s rule=%s", self.camera_id, rule.rule_id
                )
        return self.gate.process(events, frame.pts_s)

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
        return self.gate.process(events, end_s) + self.gate.close_all(end_s)

    def _close_rule(self, rule: Rule, end_s: float) -> list[Event]:
        try:
            return rule.close_all(end_s)
        except Exception:  # isolation boundary, as in update()
            logger.exception(
                "rule failed to close: camera=%s rule=%s", self.camera_id, rule.rule_id
            )
            return []


def _check_unique(camera_id: str, rules: Sequence[Rule]) -> None:
    ids = [r.rule_id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"camera {camera_id!r}: duplicate rule ids {dupes}")
