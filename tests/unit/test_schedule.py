"""Rule schedules: weekly windows in the camera's local time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from selector.schedule import ALWAYS, Schedule, ScheduleError, Window

SEOUL = ZoneInfo("Asia/Seoul")


def at(y: int, mo: int, d: int, h: int, mi: int, tz: ZoneInfo = SEOUL) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def test_day_window_in_local_time() -> None:
    s = Schedule(
        [Window.parse("09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"])], "Asia/Seoul"
    )
    # 2026-11-23 is a Monday
    assert s.armed(at(2026, 11, 23, 9, 0))
    assert s.armed(at(2026, 11, 23, 17, 59))
    assert not s.armed(at(2026, 11, 23, 18, 0))  # end is exclusive
    assert not s.armed(at(2026, 11, 23, 8, 59))
    assert not s.armed(at(2026, 11, 22, 12, 0))  # Sunday
    # 09:30 in Seoul is 00:30 UTC: the zone matters
    assert s.armed(datetime(2026, 11, 23, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp())


def test_window_over_midnight_belongs_to_its_start_day() -> None:
    s = Schedule([Window.parse("22:00", "06:00", ["fri"], weight=1.5)], "Asia/Seoul")
    fri, sat = 27, 28  # 2026-11-27 is a Friday
    assert s.weight(at(2026, 11, fri, 23, 0)) == 1.5
    assert s.weight(at(2026, 11, sat, 5, 59)) == 1.5
    assert s.weight(at(2026, 11, sat, 6, 0)) is None
    assert s.weight(at(2026, 11, sat, 23, 0)) is None  # Saturday night is not listed
    assert s.weight(at(2026, 11, fri, 5, 0)) is None  # Friday morning belongs to Thursday


def test_largest_weight_wins_and_empty_means_always() -> None:
    s = Schedule(
        [Window.parse("00:00", "24:00", weight=1.0), Window.parse("20:00", "23:00", weight=1.4)]
    )
    assert s.weight(at(2026, 11, 23, 21, 0, ZoneInfo("UTC"))) == 1.4
    assert s.weight(at(2026, 11, 23, 10, 0, ZoneInfo("UTC"))) == 1.0
    assert ALWAYS.weight(0.0) == 1.0


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        ("25:00", "06:00", ["mon"]),
        ("10:61", "11:00", ["mon"]),
        ("ten", "11:00", ["mon"]),
        ("10:00", "11:00", ["moon"]),
        ("10:00", "11:00", []),
        ("24:00", "11:00", ["mon"]),
    ],
)
def test_bad_windows_are_refused(start: str, end: str, days: list[str]) -> None:
    with pytest.raises(ScheduleError):
        Window.parse(start, end, days)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        Schedule([], "Mars/Olympus")
