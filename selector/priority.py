"""Event priority: one small, documented formula."""

from __future__ import annotations

import math

PERSISTENCE_STEP_S = 30.0
"""Persistence doubling unit (s): a condition lasting 30 s adds 5, 90 s adds 10, 210 s 15."""
PERSISTENCE_MAX = 15
"""Most priority points persistence can add."""


def priority(
    severity: int, score: float | None, zone_weight: float = 1.0, schedule_weight: float = 1.0
) -> int:
    """Priority of an event, an integer in 0..100 (higher is more urgent).

    Formula::

        priority = clamp(round(severity * (0.8 + 0.2 * score) * zone_weight
                               * schedule_weight), 0, 100)

    so detector confidence moves a rule's severity by at most 20 % (a sure detection
    keeps it, a score-0 one loses a fifth), a zone weight scales it (2.0 doubles it,
    saturating at 100) and so does the weight of the schedule window the event falls
    in (e.g. 1.3 at night).  ``score=None`` (no detector confidence, e.g. camera-level
    events) counts as 1.0.  Rounding is half-to-even (Python's ``round``).  How long
    the condition lasts adds to this (see :func:`with_persistence`).

    Args:
        severity: Base severity of the rule, 0..100.
        score: Detector confidence in [0, 1], or ``None``.
        zone_weight: Importance of the zone, finite and >= 0.
        schedule_weight: Weight of the schedule window, finite and >= 0.

    Raises:
        ValueError: If an argument is out of range (the message names it).
    """
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 100:
        raise ValueError(f"severity must be an int in 0..100, got {severity!r}")
    if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"score must be in [0, 1] or None, got {score!r}")
    if not (math.isfinite(zone_weight) and zone_weight >= 0.0):
        raise ValueError(f"zone_weight must be finite and >= 0, got {zone_weight!r}")
    if not (math.isfinite(schedule_weight) and schedule_weight >= 0.0):
        raise ValueError(f"schedule_weight must be finite and >= 0, got {schedule_weight!r}")
    confidence = 1.0 if score is None else 0.8 + 0.2 * score
    return max(0, min(100, round(severity * confidence * zone_weight * schedule_weight)))


def persistence_bonus(duration_s: float) -> int:
    """Priority points for a condition that has lasted ``duration_s`` seconds.

    ``5 * floor(log2(1 + duration_s / 30))``, capped at ``PERSISTENCE_MAX`` (15): 0 for
    the first 30 s, 5 from 30 s, 10 from 90 s, 15 from 210 s.  A person loitering for
    minutes or a bag left for ten rises in the queue over one that just happened; the
    steps are coarse so an open incident is re-sent at most three times.
    """
    if not math.isfinite(duration_s) or duration_s <= 0.0:
        return 0
    steps = math.floor(math.log2(1.0 + duration_s / PERSISTENCE_STEP_S) + 1e-9)
    return min(PERSISTENCE_MAX, 5 * steps)


def with_persistence(base: int, duration_s: float) -> int:
    """``base`` priority plus :func:`persistence_bonus`, clamped to 0..100."""
    return max(0, min(100, base + persistence_bonus(duration_s)))
