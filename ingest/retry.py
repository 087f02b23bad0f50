"""Exponential back-off between retries: one formula for every retry loop of Argus.

``Backoff`` holds the formula (``delay_s``: attempt ``n`` waits ``min(max_s, initial_s *
multiplier**n)`` seconds, optionally jittered) and the state a retry loop keeps
(``next_delay`` / ``wait`` after a failure, ``reset`` after a success);
``ingest.live_source.ReconnectPolicy``, the configured back-off of live cameras, uses it.
This module imports nothing of ours, so every stage may use it.
"""

from __future__ import annotations

import random
import threading

MAX_EXPONENT = 64
"""Attempts beyond this one all wait as long as this one (no float overflow)."""

_RNG = random.Random()  # jitter of a Backoff given no rng


def check_backoff(
    owner: str, initial_s: float, max_s: float, multiplier: float, jitter: float
) -> None:
    """Validate back-off parameters (see ``Backoff``).

    Args:
        owner: Name used in the message (``"Backoff"``, ``"ReconnectPolicy"``).

    Raises:
        ValueError: ``initial_s`` not > 0, ``max_s`` not >= ``initial_s``, ``multiplier``
            not >= 1 or ``jitter`` not in [0, 1) (NaN fails every test); the message
            names the parameter and its value.
    """
    if not initial_s > 0:
        raise ValueError(f"{owner}.initial_s must be > 0, got {initial_s}")
    if not max_s >= initial_s:
        raise ValueError(f"{owner}.max_s ({max_s}) must be >= initial_s ({initial_s})")
    if not multiplier >= 1.0:
        raise ValueError(f"{owner}.multiplier must be >= 1, got {multiplier}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"{owner}.jitter must be in [0, 1), got {jitter}")


class Backoff:
    """The wait before each retry of one loop: grows after every failure, resets on success.

    ``next_delay()`` returns ``initial_s`` first, then ``multiplier`` times the previous
    delay, capped at ``max_s`` (each optionally jittered); ``reset()`` starts over::

        backoff = Backoff(0.1, 10.0)
        while not stop.is_set():
            try:
                work()
            except OSError:
                if backoff.wait(stop):  # 0.1 s, 0.2 s, 0.4 s, ... 10 s, 10 s
                    break
                continue
            backoff.reset()

    Not thread-safe: one loop owns it.
    """

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        multiplier: float = 2.0,
        jitter: float = 0.0,
        *,
        rng: random.Random | None = None,
    ) -> None:
        """Configure the back-off.

        Args:
            initial_s: First delay, seconds (> 0).
            max_s: Delay cap, seconds (>= ``initial_s``).
            multiplier: Growth factor per failure (>= 1).
            jitter: Relative jitter in [0, 1): each delay is multiplied by a random
                factor in ``[1 - jitter, 1 + jitter]`` (0: exact delays).
            rng: Source of the jitter of ``next_delay`` (a shared ``random.Random`` if
                ``None``).

        Raises:
            ValueError: A parameter out of range (the message names it and its value).
        """
        check_backoff("Backoff", initial_s, max_s, multiplier, jitter)
        self.initial_s = initial_s
        self.max_s = max_s
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng if rng is not None else _RNG
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the start or the last ``reset``."""
        return self._attempt

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before 0-based retry ``attempt`` (a negative one counts as 0).

        ``min(max_s, initial_s * multiplier**attempt)``, multiplied by a random factor in
        ``[1 - jitter, 1 + jitter]`` drawn from ``rng`` (no jitter when ``rng`` is
        ``None`` or ``jitter`` is 0).  Pure: the state (``attempts``) does not change.
        """
        try:
            exponent = min(max(attempt, 0), MAX_EXPONENT)
            base = min(self.max_s, self.initial_s * self.multiplier**exponent)
        except OverflowError:  # a huge multiplier: the cap applies
            base = self.max_s
        if rng is None or self.jitter == 0.0:
            return base
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def next_delay(self) -> float:
        """The delay before the next retry, seconds (jittered); the one after it grows."""
        delay = self.delay_s(self._attempt, self._rng)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """After a success: the next delay is ``initial_s`` again."""
        self._attempt = 0

    def wait(self, event: threading.Event) -> bool:
        """Wait ``next_delay()`` seconds on ``event``; whether it was set (the wait cut short)."""
        return event.wait(self.next_delay())

    def __repr__(self) -> str:
        return (
            f"Backoff(initial_s={self.initial_s}, max_s={self.max_s}, "
            f"multiplier={self.multiplier}, jitter={self.jitter}, attempts={self._attempt})"
        )
