"""Event priority: one small, documented formula."""

from __future__ import annotations

import math


def priority(severity: int, score: float | None, zone_weight: float = 1.0) -> int:
    """Priority of an event, an integer in 0..100 (higher is more urgent).

    Formula::

        priority = clamp(round(severity * (0.8 + 0.2 * score) * zone_weight), 0, 100)

    so detector confidence moves a rule's severity by at most 20 % (a sure detection
    keeps it, a score-0 one loses a fifth), and a zone weight scales it (2.0 doubles
    it, saturating at 100).  ``score=None`` (no detector confidence, e.g. camera-level
    events) counts as 1.0.  Rounding is half-to-even (Python's ``round``).

    Args:
        severity: Base severity of the rule, 0..100.
        score: Detector confidence in [0, 1], or ``None``.
        zone_weight: Importance of the zone, finite and >= 0.

    Raises:
        ValueError: If an argument is out of range (the message names it).
    """
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 100:
        raise ValueError(f"severity must be an int in 0..100, got {severity!r}")
    if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"score must be in [0, 1] or None, got {score!r}")
    if not (math.isfinite(zone_weight) and zone_weight >= 0.0):
        raise ValueError(f"zone_weight must be finite and >= 0, got {zone_weight!r}")
    confidence = 1.0 if score is None else 0.8 + 0.2 * score
    return max(0, min(100, round(severity * confidence * zone_weight)))
