"""Per-camera selection: tracker, then every rule, isolating rule failures."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from detectors.detections import Detections
from selector.event import Event
from selector.rules.base import FrameInfo, Rule
from selector.tracker import ByteTracker

logger = logging.getLogger(__name__)


class CameraSelector:
    """Runs one camera's tracker and rules.  Single-threaded; one instance per camera.

    Args:
        camera_id: Camera id; frames of other cameras are refused.
        tracker: The camera's tracker (owned by this selector from now on).
        rules: The camera's rules, run in this order on every frame.

    Raises:
        ValueError: If two rules share a ``rule_id`` (events would collide).
    """

    def __init__(self, camera_id: str, tracker: ByteTracker, rules: Sequence[Rule]) -> None:
        ids = [r.rule_id for r in rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera {camera_id!r}: duplicate rule ids {dupes}")
        self.camera_id = camera_id
        self.tracker = tracker
        self.rules = tuple(rules)

    def update(self, dets: Detections, frame: FrameInfo) -> tuple[Detections, list[Event]]:
        """Track one frame's detections and run every rule on the tracks.

        A rule that raises is logged (with camera id and rule id) and skipped for this
        frame; the other rules still run.

        Args:
            dets: Detections of the frame (pixels of the original frame).
            frame: The frame they come from.

        Returns:
            ``(tracks, events)``: the tracker's output for this frame (see
            :meth:`ByteTracker.update`) and the events of all rules, rule by rule.

        Raises:
            ValueError: If ``frame.camera_id`` is not this selector's camera.
            selector.tracker.TrackerError: If the frame time goes backwards.
        """
        if frame.camera_id != self.camera_id:
            raise ValueError(
                f"selector of camera {self.camera_id!r} got a frame of camera {frame.camera_id!r}"
            )
        tracks = self.tracker.update(dets, frame.pts_s)
        ended = frozenset(self.tracker.pop_ended_ids())
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
        return tracks, events

    def close_all(self, end_s: float) -> list[Event]:
        """Close every rule's open events at end of stream (``end_s``: last frame's time).

        A rule that raises is logged and skipped, as in :meth:`update`.
        """
        events: list[Event] = []
        for rule in self.rules:
            try:
                events.extend(rule.close_all(end_s))
            except Exception:  # isolation boundary, as in update()
                logger.exception(
                    "rule failed to close: camera=%s rule=%s", self.camera_id, rule.rule_id
                )
        return events
