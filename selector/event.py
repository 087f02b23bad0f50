"""What the selector decides to forward: an ``Event`` with a priority."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

# Namespace for deterministic event ids (uuid5): same footage + config -> same ids.
EVENT_NAMESPACE = uuid.UUID("5b0f3c9e-7a1d-4f6e-9c2a-0a4b1d2e3f40")


def make_event_id(
    camera_id: str, rule_id: str, track_id: int | None, start_seq: int, stream_id: str = ""
) -> str:
    """Deterministic event id from what identifies one occurrence.

    Args:
        camera_id: Camera the event belongs to.
        rule_id: Stable id of the rule instance that raised it (e.g. ``"intrusion:crossing"``).
        track_id: Track that caused it, or ``None`` for camera-level events.
        start_seq: ``Frame.seq`` of the frame at which the condition became true.
        stream_id: Identifies one run of a live stream (empty for a file replayed as fast
            as possible). A live camera's ``seq`` and track ids start again at every
            process start, so without it a restarted worker would re-issue the ids of
            the previous run and its new alerts would be taken for replays.
    """
    key = f"{camera_id}|{rule_id}|{track_id if track_id is not None else '-'}|{start_seq}"
    if stream_id:
        key += f"|{stream_id}"
    return str(uuid.uuid5(EVENT_NAMESPACE, key))


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence the selector forwards to operators.

    An event is emitted twice with the same ``event_id``: once when it starts
    (``end_s is None``) and once when it ends (``end_s`` set).

    Attributes:
        event_id: Unique, deterministic id (see ``make_event_id``).
        camera_id: Camera id.
        type: Event type, e.g. ``"intrusion"``.
        rule_id: Id of the rule instance that raised it.
        zone: Zone name, or ``None`` where no zone applies.
        track_id: Track id, or ``None`` for camera-level events.
        label: Class name of the object, or ``None``.
        score: Detector confidence in [0, 1] at the start frame, or ``None``.
        priority: 0-100, higher is more urgent.
        start_s: Video seconds since stream start at which the condition became true.
        end_s: Video seconds at which it ended, ``None`` while open.
        bbox: ``[x1, y1, x2, y2]`` in pixels at the start frame, or ``None``.
        start_seq: ``Frame.seq`` of the start frame.
        wall_time: Wall-clock time of the start frame, UNIX seconds (UTC).
        snapshot: Key of the evidence snapshot the API resolves, or ``None``.
        line: Name of the line crossed (``line_crossing`` events), else ``None``.
        direction: ``"+"`` or ``"-"`` (see ``selector.lines.Line``) for crossings, else
            ``None``.
        details: Small rule-specific facts, e.g. ``{"count": 7}`` for crowding or the
            measure behind a camera-health event; string keys, JSON scalar values.
    """

    event_id: str
    camera_id: str
    type: str
    rule_id: str
    zone: str | None
    track_id: int | None
    label: str | None
    score: float | None
    priority: int
    start_s: float
    end_s: float | None
    bbox: tuple[float, float, float, float] | None
    start_seq: int
    wall_time: float
    snapshot: str | None = None
    line: str | None = None
    direction: str | None = None
    details: Mapping[str, float | int | str | bool] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """True until the event has ended."""
        return self.end_s is None

    def closed(self, end_s: float) -> Event:
        """A copy of this event ended at ``end_s`` video seconds."""
        return replace(self, end_s=end_s)

    def with_snapshot(self, key: str) -> Event:
        """A copy carrying the evidence key."""
        return replace(self, snapshot=key)

    def to_record(self) -> dict[str, Any]:
        """The JSON event record (see ``alerts/event.schema.json``)."""
        return {
            "schema_version": 1,
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "type": self.type,
            "rule_id": self.rule_id,
            "zone": self.zone,
            "track_id": self.track_id,
            "label": self.label,
            "score": None if self.score is None else round(float(self.score), 4),
            "priority": int(self.priority),
            "start_s": round(float(self.start_s), 3),
            "end_s": None if self.end_s is None else round(float(self.end_s), 3),
            "bbox": None if self.bbox is None else [round(float(v), 1) for v in self.bbox],
            "start_seq": int(self.start_seq),
            "snapshot": self.snapshot,
            "line": self.line,
            "direction": self.direction,
            "details": {
                k: round(v, 4) if isinstance(v, float) else v for k, v in self.details.items()
            },
            "wall_time": datetime.fromtimestamp(self.wall_time, UTC).isoformat(
                timespec="milliseconds"
            ),
        }
