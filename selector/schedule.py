"""When a rule is armed: weekly time windows in the camera's local time."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as written in configs, Monday first (``datetime.weekday()`` order)."""


class ScheduleError(ValueError):
    """An invalid schedule; the message names the problem."""


def _minutes(hhmm: str) -> int:
    """``"HH:MM"`` -> minutes after midnight (``"24:00"`` allowed as an end)."""
    try:
        h, m = hhmm.split(":")
        hours, minutes = int(h), int(m)
    except ValueError as e:
        raise ScheduleError(f"time must be 'HH:MM', got {hhmm!r}") from e
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ScheduleError(f"time must be between 00:00 and 24:00, got {hhmm!r}")
    return hours * 60 + minutes


@dataclass(frozen=True, slots=True)
class Window:
    """One weekly window: on ``days``, from ``start`` to ``end`` local time.

    A window whose end is not after its start runs over midnight: ``22:00``–``06:00``
    on ``fri`` covers Friday 22:00 to Saturday 06:00.  ``weight`` scales the priority
    of events raised in the window (e.g. 1.3 at night).
    """

    days: frozenset[int]
    start_min: int
    end_min: int
    weight: float = 1.0

    @classmethod
    def parse(
        cls, start: str, end: str, days: Collection[str] = DAYS, weight: float = 1.0
    ) -> Window:
        """A window from config strings (``"22:00"``, ``"06:00"``, ``["mon", ...]``)."""
        bad = sorted(set(days) - set(DAYS))
        if bad or not days:
            raise ScheduleError(f"days must be a non-empty subset of {list(DAYS)}, got {bad}")
        if not (math.isfinite(weight) and 0.0 <= weight <= 2.0):
            raise ScheduleError(f"weight must be in [0, 2], got {weight!r}")
        s, e = _minutes(start), _minutes(end)
        if s == 24 * 60:
            raise ScheduleError("start must be before 24:00")
        return cls(frozenset(DAYS.index(d) for d in days), s, e, float(weight))

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether local ``weekday`` (0 = Monday) at ``minute`` after midnight is inside."""
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        # over midnight: the evening part belongs to the listed day, the morning part
        # to the day after it
        if weekday in self.days and minute >= self.start_min:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end_min


class Schedule:
    """A rule's arming schedule: armed when the time is in any window.

    Args:
        windows: The windows; empty means *always armed* (weight 1).
        timezone: IANA zone name of the camera's local time, e.g. ``"Asia/Seoul"``.

    Raises:
        ScheduleError: Unknown time zone.
    """

    def __init__(self, windows: Sequence[Window], timezone: str = "UTC") -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ScheduleError(f"unknown time zone {timezone!r}") from e
        self.windows = tuple(windows)

    def weight(self, wall_time: float) -> float | None:
        """Priority weight at UNIX time ``wall_time``, or ``None`` when not armed.

        With several windows covering the moment, the largest weight applies.
        """
        if not self.windows:
            return 1.0
        local = datetime.fromtimestamp(wall_time, self.tz)
        minute = local.hour * 60 + local.minute
        weights = [w.weight for w in self.windows if w.contains(local.weekday(), minute)]
        return max(weights) if weights else None

    def armed(self, wall_time: float) -> bool:
        """Whether the rule is armed at UNIX time ``wall_time``."""
        return self.weight(wall_time) is not None


ALWAYS = Schedule(())
"""The schedule of a rule without one: always armed, weight 1."""
