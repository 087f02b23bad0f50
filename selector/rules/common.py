"""Helpers every rule shares: base classes, argument checks, track filtering, events."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from detectors.detections import Detections
from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules.base import FrameInfo, RuleError
from selector.zones import PolygonZone

TIME_EPS_S = 1e-6
"""Tolerance (s) on time comparisons, so that e.g. 20 frames at 10 fps meet a 2.0 s
threshold despite float rounding of the timestamps."""


def check_rule_id(rule_id: str, camera_id: str) -> None:
    """Refuse an empty rule or camera id."""
    if not rule_id:
        raise RuleError(f"rule_id must be non-empty, got {rule_id!r}")
    if not camera_id:
        raise RuleError(f"rule {rule_id!r}: camera_id must be non-empty, got {camera_id!r}")


def check_seconds(rule_id: str, name: str, value: float, *, positive: bool = False) -> float:
    """``value`` as a float if finite and >= 0 (> 0 with ``positive``), else ``RuleError``."""
    ok = math.isfinite(value) and (value > 0.0 if positive else value >= 0.0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise RuleError(f"rule {rule_id!r}: {name} must be {bound}, got {value!r}")
    return float(value)


def check_fraction(rule_id: str, name: str, value: float) -> float:
    """``value`` as a float if in [0, 1], else ``RuleError``."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise RuleError(f"rule {rule_id!r}: {name} must be in [0, 1], got {value!r}")
    return float(value)


def check_priority_inputs(rule_id: str, severity: int, weight: float) -> None:
    """Refuse a severity or zone weight the priority formula would refuse."""
    try:
        priority(severity, None, weight)
    except ValueError as e:
        raise RuleError(f"rule {rule_id!r}: {e}") from e


def check_classes(
    rule_id: str, classes: Collection[int] | None, class_names: Sequence[str]
) -> frozenset[int] | None:
    """Validated class ids (``None``: every class).

    Raises:
        RuleError: ``classes`` is empty, or holds ids that are not ints >= 0 or not in
            ``class_names`` (when that is given).
    """
    if classes is None:
        return None
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
    return frozenset(int(c) for c in classes)


def check_camera(rule_id: str, camera_id: str, frame: FrameInfo) -> None:
    """Refuse a frame of another camera."""
    if frame.camera_id != camera_id:
        raise RuleError(
            f"rule {rule_id!r} of camera {camera_id!r} got a frame of camera {frame.camera_id!r}"
        )


def check_end_s(rule_id: str, end_s: float) -> None:
    """Refuse a non-finite end of stream time (``close_all``'s ``end_s``, seconds)."""
    if not math.isfinite(end_s):
        raise RuleError(f"rule {rule_id!r}: end_s must be finite, got {end_s!r}")


def zone_weight_of(zone: PolygonZone | None, zone_weight: float | None) -> float:
    """``zone_weight``; when ``None``, ``zone.weight`` (1.0 without a zone)."""
    if zone_weight is not None:
        return zone_weight
    return 1.0 if zone is None else zone.weight


def eligible(
    tracks: Detections, classes: frozenset[int] | None, min_score: float = 0.0
) -> npt.NDArray[np.bool_]:
    """Rows that are tracked (``tracker_id >= 1``), of a watched class, scoring >= min_score."""
    ok: npt.NDArray[np.bool_] = (tracks.tracker_id >= 1) & (tracks.score >= min_score)
    if classes is not None:
        ok &= np.isin(tracks.class_id, list(classes))
    return ok


def label_of(tracks: Detections, i: int, class_names: Sequence[str]) -> str:
    """Class name of row ``i``: from ``class_names`` when given, else ``tracks.labels``."""
    cid = int(tracks.class_id[i])
    if class_names:
        return class_names[cid] if 0 <= cid < len(class_names) else str(cid)
    return tracks.labels[i]


def make_event(
    *,
    rule_id: str,
    event_type: str,
    frame: FrameInfo,
    severity: int,
    zone: str | None,
    zone_weight: float = 1.0,
    track_id: int | None = None,
    label: str | None = None,
    score: float | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    start_s: float | None = None,
    line: str | None = None,
    direction: str | None = None,
    details: Mapping[str, float | int | str | bool] | None = None,
    key: int | None = None,
) -> Event:
    """A started event raised at ``frame``.

    Args:
        rule_id: Id of the rule raising it.
        event_type: Event ``type`` (``"loitering"``, ``"fall"``, ...).
        frame: Frame at which the rule raised it (id, ``seq``, wall time).
        severity: Base severity 0..100 (priority: :func:`selector.priority.priority`).
        zone: Zone name or ``None``.
        zone_weight: Priority multiplier of the zone.
        track_id: Track that caused it, or ``None`` (camera-level events).
        label: Class name of the object, or ``None``.
        score: Detector confidence in [0, 1], or ``None``.
        bbox: ``(x1, y1, x2, y2)`` pixels, or ``None``.
        start_s: Video seconds at which the condition became true, when earlier than
            ``frame.pts_s`` (e.g. the moment a person went down); default
            ``frame.pts_s``.
        line: Line name (crossings).
        direction: ``"+"``/``"-"`` (crossings).
        details: Rule-specific facts.
        key: Integer that tells apart events of one rule starting at one frame when
            ``track_id`` is ``None`` (e.g. several camera-health kinds); goes into the
            event id in place of the track id.
    """
    s = None if score is None else min(max(float(score), 0.0), 1.0)
    return Event(
        event_id=make_event_id(
            frame.camera_id,
            rule_id,
            track_id if track_id is not None else key,
            frame.seq,
            frame.stream_id,
        ),
        camera_id=frame.camera_id,
        type=event_type,
        rule_id=rule_id,
        zone=zone,
        track_id=track_id,
        label=label,
        score=s,
        priority=priority(severity, s, zone_weight),
        start_s=frame.pts_s if start_s is None else max(0.0, min(start_s, frame.pts_s)),
        end_s=None,
        bbox=bbox,
        start_seq=frame.seq,
        wall_time=frame.wall_time,
        line=line,
        direction=direction,
        details=dict(details or {}),
    )


def box_of(tracks: Detections, i: int) -> tuple[float, float, float, float]:
    """Row ``i``'s box as a tuple of floats."""
    x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
    return (x1, y1, x2, y2)


class EventFields(TypedDict, total=False):
    """Optional arguments of :func:`make_event` (see there for their meaning and units)."""

    track_id: int | None
    label: str | None
    score: float | None
    bbox: tuple[float, float, float, float] | None
    start_s: float | None
    line: str | None
    direction: str | None
    details: Mapping[str, float | int | str | bool] | None
    key: int | None


class RuleBase:
    """What every rule has: its id (see :class:`selector.rules.base.Rule`) and camera.

    Args:
        rule_id: Stable id of the rule instance (non-empty).
        camera_id: Camera the rule belongs to (non-empty).

    Raises:
        RuleError: For an empty id.
    """

    def __init__(self, rule_id: str, camera_id: str) -> None:
        check_rule_id(rule_id, camera_id)
        self._rule_id = rule_id
        self.camera_id = camera_id

    @property
    def rule_id(self) -> str:
        """Stable id of the rule instance."""
        return self._rule_id


class TrackRule(RuleBase):
    """A rule on tracks: adds the score floor, class names and priority inputs.

    Subclasses call :meth:`_init_scoring` from their constructor once their own
    arguments are checked, and build their events with :meth:`_new_event` or
    :meth:`_new_row_event`.
    """

    severity: int
    zone_weight: float
    min_score: float
    class_names: tuple[str, ...]

    def _init_scoring(
        self, severity: int, zone_weight: float, min_score: float, class_names: Sequence[str]
    ) -> None:
        """Check and store the settings every track rule has.

        Args:
            severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
            zone_weight: Priority multiplier (finite, >= 0).
            min_score: Detections below this score do not count, [0, 1].
            class_names: Class names of the model (index = class id), possibly empty.

        Raises:
            RuleError: ``min_score`` out of [0, 1], or a severity or weight the priority
                formula refuses.
        """
        self.min_score = check_fraction(self._rule_id, "min_score", min_score)
        check_priority_inputs(self._rule_id, severity, zone_weight)
        self.class_names = tuple(class_names)
        self.severity = severity
        self.zone_weight = float(zone_weight)

    def _new_event(
        self, event_type: str, frame: FrameInfo, zone: str | None, **fields: Unpack[EventFields]
    ) -> Event:
        """:func:`make_event` with this rule's id, severity and zone weight."""
        return make_event(
            rule_id=self._rule_id,
            event_type=event_type,
            frame=frame,
            severity=self.severity,
            zone=zone,
            zone_weight=self.zone_weight,
            **fields,
        )

    def _new_row_event(
        self,
        tracks: Detections,
        i: int,
        frame: FrameInfo,
        *,
        event_type: str,
        zone: str | None,
        start_s: float,
        line: str | None = None,
        direction: str | None = None,
        details: Mapping[str, float | int | str | bool] | None = None,
    ) -> Event:
        """:meth:`_new_event` about row ``i`` of ``tracks``: its track id, label, score, box.

        The label comes from :func:`label_of`; the other arguments are those of
        :func:`make_event` (``start_s`` in video seconds).
        """
        return self._new_event(
            event_type,
            frame,
            zone,
            track_id=int(tracks.tracker_id[i]),
            label=label_of(tracks, i, self.class_names),
            score=float(tracks.score[i]),
            bbox=box_of(tracks, i),
            start_s=start_s,
            line=line,
            direction=direction,
            details=details,
        )


class _HoldsEvent(Protocol):
    """Per-track state that may hold an open event."""

    @property
    def event(self) -> Event | None: ...


def open_events_of(states: Mapping[int, _HoldsEvent]) -> list[Event]:
    """The open events held in ``states`` (per-track states), by track id."""
    return [s.event for _, s in sorted(states.items()) if s.event is not None]
