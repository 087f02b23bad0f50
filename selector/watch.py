"""What a rule is watching that may become an event: the selective wall's input.

An operators' *selective wall* shows only the cameras where something matters now: an
open alert, or activity a rule is watching that may turn into one (a dwell timer
running, a crowd building, an object left alone).  Rules report the latter through
their optional ``watching(now_s)`` hook (see
:data:`selector.rules.base.WATCHING_HOOK`), as :class:`Watch` values; the camera's
selector gathers and ranks them (:meth:`selector.camera.CameraSelector.watching`).

This module imports nothing from :mod:`selector.rules`, so any rule may import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_WATCHES = 8
"""Most watches one camera reports (the highest ranked, see :func:`rank_watches`)."""

MAX_REASON_CHARS = 120
"""Longest ``Watch.reason``, characters (see :func:`clip_reason`)."""

MIN_WATCH_DURATION_S = 2.0
"""A timer shorter than this (seconds of video) fires too fast to be worth a tile: rules
report no watch for it."""

_ELLIPSIS = "..."


@dataclass(frozen=True, slots=True)
class Watch:
    """Activity a rule is watching that may become an event (not an event yet).

    Attributes:
        rule_id: Id of the rule watching it.
        type: The event type it would raise, e.g. ``"loitering"``.
        reason: Short words for an operator (at most :data:`MAX_REASON_CHARS`), e.g.
            ``"person in 'atm' for 6 s of 10"``.
        priority: How urgent now, 1..100 (higher is more urgent): below the priority
            the event would get if it started now (see :func:`watch_priority`).
        progress: How far toward the event, 0..1 (1: it starts at the next frame).
        bbox: ``(x1, y1, x2, y2)`` pixels of the frame (the object's last box, or
            the union of a crowd's boxes), or ``None``.
        zone: Name of the zone watched, or ``None`` (whole picture).
        track_id: Track of the object, or ``None`` (a crowd, an untracked object).

    Raises:
        ValueError: An empty ``rule_id`` or ``type``, a reason empty or too long, a
            priority outside 1..100, a progress outside [0, 1], or a box that is not
            four finite numbers.
    """

    rule_id: str
    type: str
    reason: str
    priority: int
    progress: float
    bbox: tuple[float, float, float, float] | None = None
    zone: str | None = None
    track_id: int | None = None

    def __post_init__(self) -> None:
        if not self.rule_id or not self.type:
            raise ValueError(f"watch needs a rule_id and a type, got {self.rule_id!r}")
        if not self.reason or len(self.reason) > MAX_REASON_CHARS:
            raise ValueError(
                f"watch reason must be 1..{MAX_REASON_CHARS} characters, got {self.reason!r}"
            )
        p = self.priority
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 100:
            raise ValueError(f"watch priority must be an int in 1..100, got {p!r}")
        if not (math.isfinite(self.progress) and 0.0 <= self.progress <= 1.0):
            raise ValueError(f"watch progress must be in [0, 1], got {self.progress!r}")
        if self.bbox is not None and (
            len(self.bbox) != 4 or not all(math.isfinite(v) for v in self.bbox)
        ):
            raise ValueError(f"watch bbox must be 4 finite numbers, got {self.bbox!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the wire to the API): finite numbers only, ``progress`` to 3
        decimals, ``bbox`` a list of 4 pixel coordinates to 0.1 px (or ``None``)."""
        return {
            "rule_id": self.rule_id,
            "type": self.type,
            "reason": self.reason,
            "priority": int(self.priority),
            "progress": round(float(self.progress), 3),
            "bbox": None if self.bbox is None else [round(float(v), 1) for v in self.bbox],
            "zone": self.zone,
            "track_id": None if self.track_id is None else int(self.track_id),
        }


def _rank_key(w: Watch) -> tuple[int, float, str, bool, int, str, str, str]:
    return (
        -w.priority,
        -w.progress,
        w.rule_id,
        w.track_id is None,
        w.track_id if w.track_id is not None else 0,
        w.type,
        w.zone or "",
        w.reason,
    )


def rank_watches(watches: Iterable[Watch], limit: int | None = None) -> list[Watch]:
    """``watches`` most urgent first: priority descending, then progress descending,
    then ``rule_id``, then ``track_id`` (``None`` last); the rest breaks ties so the
    order is total.  ``limit``: keep only the first ones (``None``: all)."""
    ranked = sorted(watches, key=_rank_key)
    return ranked if limit is None else ranked[: max(0, limit)]


def clamp_progress(value: float) -> float:
    """``value`` clamped to [0, 1] (0 for NaN)."""
    if not math.isfinite(value):
        return 1.0 if value > 0.0 else 0.0
    return min(1.0, max(0.0, float(value)))


def watch_priority(event_priority: int, progress: float) -> int:
    """Priority of a watch ``progress`` (0..1) of the way to an event that would get
    ``event_priority`` (0..100) if it started now.

    ``round(event_priority * progress)``, at least 1 and strictly below
    ``event_priority`` (1 when that is 0 or 1): activity never outranks the alert it
    may become.
    """
    ceiling = max(1, min(100, int(event_priority)) - 1)
    return max(1, min(ceiling, round(event_priority * clamp_progress(progress))))


def clip_reason(text: str) -> str:
    """``text`` on one line, shortened to :data:`MAX_REASON_CHARS` (ending ``...``)."""
    text = " ".join(text.split())
    if len(text) <= MAX_REASON_CHARS:
        return text
    return text[: MAX_REASON_CHARS - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def _duration_words(seconds: float) -> str:
    """``"45 s"``, ``"2 min 5 s"``, ``"1 h 3 min"`` (whole seconds, rounded down)."""
    s = max(0, math.floor(seconds + 1e-6))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, rest = divmod(s, 3600)
    m = rest // 60
    return f"{h} h {m} min" if m else f"{h} h"


def seconds_of(elapsed_s: float, threshold_s: float) -> str:
    """How far a timer is, in words: ``"6 s of 10"`` (``elapsed_s`` rounded down, so
    it never reads the threshold before the event), or for thresholds of a minute or
    more ``"2 min 5 s of 5 min"``.  Seconds of video."""
    if threshold_s < 60.0:
        return f"{_duration_words(elapsed_s)} of {threshold_s:g}"
    return f"{_duration_words(elapsed_s)} of {_duration_words(threshold_s)}"


def quoted(zone: str) -> str:
    """A zone name as operators read it in a watch reason: ``'atm'``."""
    return f"'{zone}'"
