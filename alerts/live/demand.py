"""Who watches which camera, so workers make live pictures only for those (``Demand``).

Every open wall or board holds what it wants (cameras, picture width, rate) for a short
lease and renews it while it is open; a worker reads ``wanted()`` and makes pictures only
of those cameras, so a camera nobody watches costs no picture at all.

Across processes an API replica publishes its holders' union on the control channel under
``DEMAND_PREFIX + replica`` (``demand_message``), renewed every ``RENEW_S`` with a lease of
``LEASE_S``, and a tombstone when nobody watches any more; workers fold those messages into
their own ``Demand`` (``Demand.apply``), one holder per replica.  A replica that dies stops
renewing, so its lease ends by itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.live.preview import MAX_WIDTH, MIN_WIDTH

DEMAND_PREFIX = "live-demand/"
LEASE_S = 15.0
"""How long a holder's wants last without renewal, seconds."""
RENEW_S = 5.0
"""How often an API replica publishes its wants while anybody watches, seconds."""
MAX_FPS = 10.0
MIN_FPS = 0.05
MAX_CAMERAS = 10_000


@dataclass(frozen=True, slots=True)
class Want:
    """What a watcher wants of one camera: pictures at most ``width`` pixels wide, at
    most ``fps`` a second."""

    width: int
    fps: float

    def __post_init__(self) -> None:
        if not MIN_WIDTH <= self.width <= MAX_WIDTH:
            raise ValueError(f"width must be in {MIN_WIDTH}..{MAX_WIDTH}, got {self.width}")
        if not (math.isfinite(self.fps) and MIN_FPS <= self.fps <= MAX_FPS):
            raise ValueError(f"fps must be in {MIN_FPS}..{MAX_FPS}, got {self.fps}")

    def merge(self, other: Want) -> Want:
        """The larger of both, field by field."""
        return Want(max(self.width, other.width), max(self.fps, other.fps))


class Demand:
    """The live pictures wanted now, held by holders with leases (thread-safe).

    Args:
        clock: UNIX time (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._holders: dict[str, tuple[float, dict[str, Want]]] = {}
        self.version = 0
        """Moves whenever a holder's wants change (not on mere renewal)."""

    def hold(self, holder: str, wants: Mapping[str, Want], lease_s: float = LEASE_S) -> None:
        """``holder`` wants ``wants`` (camera id -> want) until ``lease_s`` from now (replacing
        what it held); empty ``wants`` releases it."""
        if not wants:
            self.release(holder)
            return
        until = self._clock() + lease_s
        with self._lock:
            before = self._holders.get(holder)
            self._holders[holder] = (until, dict(wants))
            if before is None or before[1] != wants:
                self.version += 1

    def release(self, holder: str) -> None:
        """``holder`` wants nothing any more."""
        with self._lock:
            if self._holders.pop(holder, None) is not None:
                self.version += 1

    def wanted(self) -> dict[str, Want]:
        """Camera id -> the largest want of the holders whose lease runs (expired holders
        are forgotten)."""
        now = self._clock()
        out: dict[str, Want] = {}
        with self._lock:
            for holder, (until, wants) in list(self._holders.items()):
                if until < now:
                    del self._holders[holder]
                    self.version += 1
                    continue
                for cam, want in wants.items():
                    have = out.get(cam)
                    out[cam] = want if have is None else have.merge(want)
        return out

    def holders(self) -> int:
        """Holders whose lease runs."""
        now = self._clock()
        with self._lock:
            return sum(1 for until, _ in self._holders.values() if until >= now)

    # -- the control channel -----------------------------------------------------------

    def apply(self, key: str, value: Any) -> bool:
        """Fold a control message ``DEMAND_PREFIX + replica`` in (see ``demand_message``);
        returns whether it was understood.  Never raises: a malformed value is ignored.

        The lease runs from when the message is applied (the clocks of the API replica and
        the worker need not agree), for the lease the message gives (at most ``LEASE_S``
        x 2).
        """
        if not key.startswith(DEMAND_PREFIX):
            return False
        holder = "replica:" + key[len(DEMAND_PREFIX) :]
        if value is None:
            self.release(holder)
            return True
        try:
            wants, lease_s = parse_demand(value)
        except (ValueError, TypeError):
            return False
        self.hold(holder, wants, lease_s)
        return True


def demand_message(wants: Mapping[str, Want], lease_s: float = LEASE_S) -> dict[str, Any]:
    """The control value a replica publishes for its watchers' ``wants``."""
    return {
        "lease_s": lease_s,
        "cameras": {cam: {"width": w.width, "fps": w.fps} for cam, w in sorted(wants.items())},
    }


def parse_demand(value: Any) -> tuple[dict[str, Want], float]:
    """``(wants, lease_s)`` of a control value made by ``demand_message``.

    Raises:
        ValueError: A malformed value.
    """
    if not isinstance(value, Mapping):
        raise ValueError("demand must be an object")
    lease = value.get("lease_s")
    cameras = value.get("cameras")
    if isinstance(lease, bool) or not isinstance(lease, int | float):
        raise ValueError("demand lease_s must be a positive number")
    if not (math.isfinite(lease) and lease > 0):
        raise ValueError("demand lease_s must be a positive number")
    if not isinstance(cameras, Mapping) or len(cameras) > MAX_CAMERAS:
        raise ValueError("demand cameras must be an object of at most 10000 cameras")
    wants = {}
    for cam, want in cameras.items():
        if not isinstance(cam, str) or not 0 < len(cam) <= 128 or not isinstance(want, Mapping):
            raise ValueError("demand camera entries must be id -> {width, fps}")
        width, fps = want.get("width"), want.get("fps")
        if isinstance(width, bool) or not isinstance(width, int):
            raise ValueError("demand width must be an integer")
        if isinstance(fps, bool) or not isinstance(fps, int | float):
            raise ValueError("demand fps must be a number")
        wants[cam] = Want(width, float(fps))
    return wants, min(float(lease), 2 * LEASE_S)
