"""ingest.retry: the one back-off of every retry loop (formula, state, validation, waits)."""

from __future__ import annotations

import math
import random
import threading
import time

import pytest

from ingest import Backoff, ReconnectPolicy
from ingest.retry import check_backoff

pytestmark = pytest.mark.unit


def test_delays_double_up_to_the_cap_and_reset() -> None:
    b = Backoff(0.1, 1.0)
    assert [b.next_delay() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert b.attempts == 7
    b.reset()
    assert b.attempts == 0
    assert b.next_delay() == 0.1


def test_same_values_as_the_hand_rolled_loops() -> None:
    # the loops it replaced: backoff = lo; wait(backoff); backoff = min(backoff * 2, hi)
    for lo, hi in ((0.1, 10.0), (0.2, 10.0), (0.05, 0.1), (0.3, 0.3), (1e-3, 7.5)):
        b, manual = Backoff(lo, hi), lo
        for _ in range(80):
            assert b.next_delay() == manual
            manual = min(manual * 2, hi)


def test_other_multipliers_and_no_growth() -> None:
    b = Backoff(1.0, 100.0, multiplier=3.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 3.0, 9.0, 27.0, 81.0, 100.0]
    flat = Backoff(0.5, 0.5, multiplier=1.0)
    assert {flat.next_delay() for _ in range(10)} == {0.5}


def test_many_failures_and_a_huge_multiplier_stay_at_the_cap() -> None:
    b = Backoff(0.1, 10.0)
    for _ in range(10_000):
        d = b.next_delay()
    assert d == 10.0
    assert b.delay_s(10**9) == 10.0
    assert Backoff(1.0, 5.0, multiplier=1e300).delay_s(100) == 5.0  # 1e300**64 overflows
    assert b.delay_s(-3) == 0.1
    assert b.attempts == 10_000  # delay_s is pure


def test_delay_s_jitters_only_with_an_rng() -> None:
    b = Backoff(1.0, 8.0, jitter=0.5)
    assert [b.delay_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    rng = random.Random(11)
    assert {0.5 <= b.delay_s(0, rng) <= 1.5 for _ in range(100)} == {True}


def test_jitter_stays_in_bounds_and_is_random() -> None:
    b = Backoff(2.0, 2.0, jitter=0.25, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(300)]
    assert min(delays) >= 1.5 and max(delays) <= 2.5
    assert len(set(delays)) > 200
    # the same seed gives the same delays; no rng given: its own
    again = Backoff(2.0, 2.0, jitter=0.25, rng=random.Random(7))
    assert [again.next_delay() for _ in range(300)] == delays
    own = Backoff(2.0, 2.0, jitter=0.25)
    assert 1.5 <= own.next_delay() <= 2.5


def test_no_jitter_means_exact_delays_even_with_an_rng() -> None:
    b = Backoff(0.5, 4.0, rng=random.Random(1))
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_reconnect_policy_uses_the_same_formula() -> None:
    p = ReconnectPolicy(initial_s=0.5, max_s=30.0, multiplier=2.0, jitter=0.0)
    b = Backoff(0.5, 30.0)
    assert [p.delay_s(n) for n in range(12)] == [b.next_delay() for _ in range(12)]
    jittered = ReconnectPolicy(initial_s=0.5, max_s=30.0, jitter=0.2)
    assert jittered.delay_s(3, random.Random(5)) == Backoff(0.5, 30.0, jitter=0.2).delay_s(
        3, random.Random(5)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial_s": 0.0, "max_s": 1.0}, r"Backoff\.initial_s must be > 0, got 0\.0"),
        ({"initial_s": -1.0, "max_s": 1.0}, r"initial_s must be > 0, got -1\.0"),
        ({"initial_s": math.nan, "max_s": 1.0}, r"initial_s must be > 0, got nan"),
        ({"initial_s": 2.0, "max_s": 1.0}, r"Backoff\.max_s \(1\.0\) must be >= initial_s \(2"),
        ({"initial_s": 1.0, "max_s": math.nan}, r"max_s \(nan\)"),
        ({"initial_s": 1.0, "max_s": 2.0, "multiplier": 0.5}, r"multiplier must be >= 1, got 0\.5"),
        ({"initial_s": 1.0, "max_s": 2.0, "jitter": 1.0}, r"jitter must be in \[0, 1\), got 1\.0"),
        ({"initial_s": 1.0, "max_s": 2.0, "jitter": -0.1}, r"jitter must be in .*, got -0\.1"),
    ],
)
def test_validation_names_the_bad_value(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Backoff(**kwargs)


def test_check_backoff_names_its_owner() -> None:
    with pytest.raises(ValueError, match=r"^ReconnectPolicy\.initial_s must be > 0, got 0$"):
        check_backoff("ReconnectPolicy", 0, 1, 2, 0)
    with pytest.raises(ValueError, match=r"ReconnectPolicy\.multiplier must be >= 1, got 0\.5"):
        ReconnectPolicy(multiplier=0.5)
    with pytest.raises(ValueError, match=r"ReconnectPolicy\.max_attempts must be >= 0, got -1"):
        ReconnectPolicy(max_attempts=-1)
    check_backoff("x", 0.1, 0.1, 1.0, 0.0)  # the edges are valid


def test_wait_times_out_and_grows() -> None:
    b = Backoff(0.02, 1.0)
    event = threading.Event()
    t0 = time.monotonic()
    assert b.wait(event) is False
    assert time.monotonic() - t0 >= 0.015
    assert b.attempts == 1 and b.next_delay() == 0.04


def test_a_set_event_cuts_the_wait_short() -> None:
    b = Backoff(30.0, 60.0)
    event = threading.Event()
    timer = threading.Timer(0.05, event.set)
    t0 = time.monotonic()
    timer.start()
    try:
        assert b.wait(event) is True
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 5.0
    assert b.attempts == 1  # the delay was used up all the same
    assert b.wait(event) is True  # already set: returns at once


def test_repr_shows_the_parameters() -> None:
    b = Backoff(0.1, 10.0)
    b.next_delay()
    assert repr(b) == "Backoff(initial_s=0.1, max_s=10.0, multiplier=2.0, jitter=0.0, attempts=1)"
