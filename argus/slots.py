"""Bounded hand-over between a camera's decode thread and the detector loop.

Two overflow policies, chosen per camera by the runner:

* ``drop_oldest`` (live cameras, files at real speed): the slot holds the newest
  ``capacity`` frames; a put into a full slot discards the oldest frame and counts it.
  The detector always works on the freshest picture and latency never builds up.
* ``block`` (files with ``realtime: false``): a put into a full slot waits until the
  detector has taken a frame, so no frame is ever lost and memory stays bounded.

All slots of a run share one ``threading.Condition`` so the detector loop sleeps until
*any* camera has a frame, instead of polling.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

Policy = Literal["drop_oldest", "block"]

T = TypeVar("T")


class FrameSlot(Generic[T]):
    """A bounded FIFO of frames (or frames with what was measured on them) for one camera.

    Args:
        capacity: Most frames held (>= 1).
        policy: ``"drop_oldest"`` or ``"block"`` (see module docstring).
        ready: Condition shared by all slots of the run; notified on every put and close.
    """

    def __init__(self, capacity: int, policy: Policy, ready: threading.Condition) -> None:
        if capacity < 1:
            raise ValueError(f"slot capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.policy: Policy = policy
        self._ready = ready
        self._frames: deque[T] = deque()
        self._closed = False
        self.dropped = 0
        """Frames discarded by the drop-oldest policy (0 for ``block``)."""
        self.put_count = 0

    def put(self, frame: T, capacity: int | None = None) -> bool:
        """Hand a frame over; returns False if the slot was closed (the frame is discarded).

        ``capacity``: hold at most this many for this put (at most ``self.capacity``); a
        ``block`` slot then waits until fewer are held (a quiet camera's decoder stays at
        most one sparse frame ahead, so a wake reaches it in time).
        """
        cap = self.capacity if capacity is None else max(1, min(capacity, self.capacity))
        with self._ready:
            if self.policy == "block":
                while len(self._frames) >= cap and not self._closed:
                    self._ready.wait(0.5)
            if self._closed:
                return False
            if len(self._frames) >= self.capacity:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self.put_count += 1
            self._ready.notify_all()
            return True

    def take(self) -> T | None:
        """The oldest frame held, or None when empty (never blocks)."""
        with self._ready:
            if not self._frames:
                return None
            frame = self._frames.popleft()
            if self.policy == "block":
                self._ready.notify_all()  # a blocked producer may go on
            return frame

    def take_if(self, accept: Callable[[T], bool]) -> T | None:
        """The oldest frame held if ``accept(frame)``, else None (it stays; never blocks)."""
        with self._ready:
            if not self._frames or not accept(self._frames[0]):
                return None
            frame = self._frames.popleft()
            if self.policy == "block":
                self._ready.notify_all()
            return frame

    def close(self) -> None:
        """No more frames will come (source ended, failed or stopped); wakes every waiter."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def discard(self) -> None:
        """Close and drop what is held (used on stop)."""
        with self._ready:
            self._closed = True
            self._frames.clear()
            self._ready.notify_all()

    @property
    def exhausted(self) -> bool:
        """Closed and empty: nothing more will ever come out."""
        with self._ready:
            return self._closed and not self._frames

    def __len__(self) -> int:
        with self._ready:
            return len(self._frames)
