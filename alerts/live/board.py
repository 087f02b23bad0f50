"""``LiveBoard``: the API's view of every camera's latest status and live picture.

Workers feed it (``report``, ``picture``): directly when they run in the API's process,
through the camera status and preview topics otherwise (``alerts.live.kafka``).  Streams
of the wall and the board read it (``statuses``, ``preview``) and follow ``version``.
It also holds the ``Demand`` of this process's watchers (``demand``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from alerts.live.demand import Demand, Want
from alerts.live.preview import Preview
from alerts.live.status import CameraStatus

STALE_AFTER_S = 10.0
"""A camera whose last report arrived longer ago than this is shown ``lost`` (unless it
ended or failed: a worker that stopped reports nothing more), seconds."""
MAX_CAMERAS = 50_000
"""Most cameras whose status the board keeps (those not heard of the longest go first)."""


class LiveSink(Protocol):
    """Where a worker sends its cameras' statuses and pictures, and asks what is wanted."""

    def report(self, statuses: Iterable[CameraStatus]) -> None:
        """The latest status of some cameras (never raises)."""
        ...

    def picture(self, preview: Preview) -> None:
        """A live picture of a watched camera (never raises)."""
        ...

    def wanted(self) -> dict[str, Want]:
        """Camera id -> the pictures wanted of it now."""
        ...


class LiveBoard:
    """Latest status and picture per camera (thread-safe); a ``LiveSink`` in-process.

    Args:
        demand: The watchers' demand of this process (a new one by default).
        clock: UNIX time.
        stale_after_s: Age after which a camera's report is shown as ``lost``.
    """

    def __init__(
        self,
        demand: Demand | None = None,
        *,
        clock: Callable[[], float] = time.time,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.demand = demand if demand is not None else Demand(clock)
        self._clock = clock
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._status: dict[str, tuple[CameraStatus, float]] = {}  # with its arrival (clock)
        self._pictures: dict[str, tuple[Preview, float]] = {}  # with its monotonic arrival
        self.version = 0
        """Moves on every status change and picture (streams compare it)."""
        self.status_version = 0
        """Moves on every status change (not on pictures)."""
        self.pictures_received = 0
        self.reports_refused = 0

    # -- LiveSink -----------------------------------------------------------------------

    def report(self, statuses: Iterable[CameraStatus]) -> None:
        """Keep each camera's newest report, stamped with this process's clock on arrival
        (a worker's clock may be off: only its own reports are compared by it)."""
        now = self._clock()
        with self._lock:
            for s in statuses:
                have = self._status.get(s.camera_id)
                if (
                    have is not None
                    and have[0].run_id == s.run_id
                    and have[0].reported_at > s.reported_at
                ):
                    continue  # an older report of the same worker run that arrived late
                self._status.pop(s.camera_id, None)  # re-inserted last: oldest first
                self._status[s.camera_id] = (s, now)
                self.version += 1
                self.status_version += 1
            while len(self._status) > MAX_CAMERAS:
                del self._status[next(iter(self._status))]

    def picture(self, preview: Preview) -> None:
        """Keep a camera's newest picture, if this process's watchers want that camera (a
        picture nobody here asked for, e.g. for another replica's page, is not kept)."""
        if preview.camera_id not in self.demand.wanted():
            return
        with self._lock:
            have = self._pictures.get(preview.camera_id)
            if have is not None and have[0].taken_at > preview.taken_at:
                return
            self._pictures[preview.camera_id] = (preview, time.monotonic())
            self.pictures_received += 1
            self.version += 1

    def wanted(self) -> dict[str, Want]:
        return self.demand.wanted()

    def prune_pictures(self) -> int:
        """Drop the pictures of cameras nobody here watches any more; how many."""
        wanted = self.demand.wanted()
        with self._lock:
            gone = [cam for cam in self._pictures if cam not in wanted]
            for cam in gone:
                del self._pictures[cam]
        return len(gone)

    # -- readers ------------------------------------------------------------------------

    def statuses(self) -> dict[str, CameraStatus]:
        """Camera id -> its latest status (those whose worker went silent: ``lost``; a camera
        that ended or failed keeps that state)."""
        now = self._clock()
        with self._lock:
            items = dict(self._status)
        out = {}
        for cam, (s, arrived) in items.items():
            silent = now - arrived
            stale = silent > self.stale_after_s and s.state not in ("ended", "failed")
            out[cam] = s.as_lost(now, silent) if stale else s
        return out

    def preview(self, camera_id: str, since: float | None = None) -> Preview | None:
        """The camera's latest picture, or ``None`` (also when it arrived before the
        monotonic time ``since``: a stream that just began to watch a camera shows only
        pictures made for it, never one left from an earlier watcher)."""
        with self._lock:
            got = self._pictures.get(camera_id)
        if got is None or (since is not None and got[1] < since):
            return None
        return got[0]

    def forget(self, camera_id: str) -> None:
        """Drop a camera (its status was deleted upstream)."""
        with self._lock:
            gone = self._status.pop(camera_id, None), self._pictures.pop(camera_id, None)
            if any(g is not None for g in gone):
                self.version += 1
                self.status_version += 1


class FanOut:
    """Several sinks as one (e.g. the API's own board and the topic other replicas read):
    reports and pictures go to each; what is wanted is the union."""

    def __init__(self, sinks: Iterable[LiveSink]) -> None:
        self._sinks = list(sinks)

    def report(self, statuses: Iterable[CameraStatus]) -> None:
        items = list(statuses)
        for sink in self._sinks:
            sink.report(items)

    def picture(self, preview: Preview) -> None:
        for sink in self._sinks:
            sink.picture(preview)

    def wanted(self) -> dict[str, Want]:
        out: dict[str, Want] = {}
        for sink in self._sinks:
            for cam, want in sink.wanted().items():
                have = out.get(cam)
                out[cam] = want if have is None else have.merge(want)
        return out
