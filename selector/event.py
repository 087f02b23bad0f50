"""What the selector decides to forward: an ``Event`` with a priority."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
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


Point = tuple[float, float]
"""``(x, y)`` in pixels of the analysed frame (x right, y down)."""

PATH_MAX_POINTS = 32
"""Most points a ``Geometry.path`` holds (``alerts/event.schema.json`` says the same)."""
ZONE_MAX_POINTS = 256
"""Most vertices a ``Geometry.zone`` holds; a longer polygon is thinned (schema: the same)."""
FRAME_MAX_PX = 65536
"""Largest frame width or height a record may state (schema: the same)."""


def evenly_spaced(count: int, limit: int) -> list[int]:
    """Indices of at most ``limit`` items spread evenly over ``count``, first and last kept.

    Args:
        count: Number of items (>= 0).
        limit: Most indices wanted (>= 2).

    Returns:
        ``range(count)`` when ``count <= limit``, else ``limit`` ascending indices from 0
        to ``count - 1``.
    """
    if count <= limit:
        return list(range(count))
    step = (count - 1) / (limit - 1)
    return [round(i * step) for i in range(limit)]


def _points(name: str, points: Sequence[Point], low: int, high: int) -> None:
    if not low <= len(points) <= high:
        raise ValueError(f"geometry {name} needs {low}..{high} points, got {len(points)}")
    for p in points:
        if len(p) != 2 or not all(math.isfinite(v) for v in p):
            raise ValueError(f"geometry {name}: {p!r} is not a finite (x, y) point")


@dataclass(frozen=True, slots=True)
class Geometry:
    """What an operator's screen draws over an event's snapshot.

    Every coordinate is in pixels of the analysed frame, the space of ``Event.bbox``
    (x right, y down); records round them to 0.1 px.

    Attributes:
        frame: ``(width, height)`` of the analysed frame, pixels, 1..``FRAME_MAX_PX``.
        zone: The rule's zone polygon, 3..``ZONE_MAX_POINTS`` vertices ``(x, y)`` in
            drawing order (they may lie outside the frame), or ``None`` when the event
            has no zone.
        line: The crossed line's end points ``((x1, y1), (x2, y2))`` (``p1``, ``p2`` of
            :class:`selector.lines.Line`, which give ``direction`` its sense) for line
            events, else ``None``.
        path: The track's positions, its ground point (bottom centre of its box) at the
            frames it was seen, oldest first, 1..``PATH_MAX_POINTS`` points (thinned
            evenly in time when it was seen more often), up to the frame of the record
            (start: the start frame; end: the last frame the track was seen in the
            event); ``None`` for events without a track, or when the track's history
            is no longer known.

    Raises:
        ValueError: A frame size out of range, a wrong number of points, or a
            coordinate that is not finite.
    """

    frame: tuple[int, int]
    zone: tuple[Point, ...] | None = None
    line: tuple[Point, Point] | None = None
    path: tuple[Point, ...] | None = None

    def __post_init__(self) -> None:
        w, h = self.frame
        ok = all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= FRAME_MAX_PX
            for v in (w, h)
        )
        if not ok:
            raise ValueError(f"geometry frame must be 1..{FRAME_MAX_PX} px ints, got {w}x{h}")
        if self.zone is not None:
            _points("zone", self.zone, 3, ZONE_MAX_POINTS)
        if self.line is not None:
            _points("line", self.line, 2, 2)
        if self.path is not None:
            _points("path", self.path, 1, PATH_MAX_POINTS)

    def to_record(self) -> dict[str, Any]:
        """The record's ``geometry`` object: keys that do not apply are left out."""
        out: dict[str, Any] = {"frame": [self.frame[0], self.frame[1]]}
        for key, points in (("zone", self.zone), ("line", self.line), ("path", self.path)):
            if points is not None:
                out[key] = [[round(float(x), 1), round(float(y), 1)] for x, y in points]
        return out


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
        geometry: What the operator's screen draws over the snapshot (frame size, the
            rule's zone or line, the track's path; see :class:`Geometry`), or ``None``
            when unknown.  Rules normally leave it ``None`` and
            :class:`selector.camera.CameraSelector` fills it in (it keeps one a rule set).
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
    geometry: Geometry | None = None

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
            "geometry": None if self.geometry is None else self.geometry.to_record(),
        }
