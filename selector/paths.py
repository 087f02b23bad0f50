"""Where each track has been: a bounded history of its ground points, for event records.

An alert's record carries the path of its track (``selector.event.Geometry.path``), so
the operator's screen can draw the walk over the snapshot.  :class:`TrackPaths` keeps,
per track of one camera, the ground point (bottom centre of the box, pixels) at each
frame the tracker matched it, in a fixed amount of memory however long the track lives:

* the last ``recent`` points exactly (a ring buffer), so the point of the frame a record
  refers to (the start frame, the last frame seen in the event) is still there when the
  record is made a little later (made later still, the path ends at the nearest point
  kept before that frame);
* older points in a buffer of ``older`` slots that keeps every ``stride``-th point
  leaving the ring; when it fills up, every other point is dropped and the stride
  doubles.  So the whole walk since the track began stays, evenly thinned.

Per frame it costs one row write per track (and, rarely, a halving of ``older``
slots); nothing grows with the path.  Building a record's path (only when an event
starts or ends) reads at most ``recent + older`` points.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import numpy.typing as npt

from detectors.detections import Detections
from selector.event import PATH_MAX_POINTS, Point

F64 = npt.NDArray[np.float64]

RECENT_POINTS = 128
"""Points kept exactly per track (12.8 s at 10 fps, 4.3 s at 30 fps)."""
OLDER_POINTS = 128
"""Slots for the evenly thinned points before those (after a halving at least 64: twice
the points of a record's path, so its thinning in time stays even)."""
KEEP_ENDED_S = 30.0
"""Video seconds the history of a track the tracker removed is kept (for an event that
starts or ends after its track ended, e.g. a fall seen only as a blob)."""
MAX_ENDED = 256
"""Most histories of removed tracks kept at once (oldest dropped first), open events'
tracks aside."""
TIME_EPS_S = 1e-6


class TrackPath:
    """One track's ground points ``(t, x, y)`` (video seconds, pixels), bounded in memory.

    Args:
        recent: Points kept exactly (>= 1).
        older: Slots for thinned older points (>= 2).
    """

    __slots__ = ("_head", "_n_older", "_offered", "_older", "_ring", "_size", "_stride")

    def __init__(self, recent: int = RECENT_POINTS, older: int = OLDER_POINTS) -> None:
        if recent < 1 or older < 2:
            raise ValueError(f"need recent >= 1 and older >= 2, got {recent}, {older}")
        self._ring: F64 = np.empty((recent, 3), np.float64)
        self._head = 0  # where the next point goes
        self._size = 0
        self._older: F64 = np.empty((older, 3), np.float64)
        self._n_older = 0
        self._stride = 1  # keep every stride-th point leaving the ring
        self._offered = 0  # points that left the ring so far

    @property
    def nbytes(self) -> int:
        """Bytes of point storage (fixed at construction)."""
        return int(self._ring.nbytes + self._older.nbytes)

    def __len__(self) -> int:
        """Points held now (at most ``recent + older``)."""
        return self._size + self._n_older

    def add(self, t_s: float, x: float, y: float) -> None:
        """Record the ground point ``(x, y)`` at video time ``t_s`` (non-decreasing)."""
        ring, i = self._ring, self._head
        if self._size == len(ring):
            self._retire(ring[i])  # the oldest point leaves the ring
        else:
            self._size += 1
        ring[i, 0] = t_s
        ring[i, 1] = x
        ring[i, 2] = y
        self._head = i + 1 if i + 1 < len(ring) else 0

    def _retire(self, row: F64) -> None:
        k, self._offered = self._offered, self._offered + 1
        if k % self._stride:
            return
        older = self._older
        older[self._n_older] = row
        self._n_older += 1
        if self._n_older == len(older):  # full: keep every other point, stride doubles
            kept = (self._n_older + 1) // 2
            older[:kept] = older[0 : self._n_older : 2].copy()
            self._n_older = kept
            self._stride *= 2

    def points(self, until_s: float | None = None) -> F64:
        """The points held, oldest first, ``(k, 3)`` rows ``(t, x, y)``; only those at or
        before ``until_s`` when given."""
        ring = self._ring
        if self._size < len(ring):
            recent = ring[: self._size]
        else:
            recent = np.concatenate([ring[self._head :], ring[: self._head]])
        pts: F64 = np.concatenate([self._older[: self._n_older], recent])
        if until_s is not None:
            pts = pts[: int(np.searchsorted(pts[:, 0], until_s + TIME_EPS_S, side="right"))]
        return pts


def thin_in_time(pts: F64, limit: int = PATH_MAX_POINTS) -> F64:
    """At most ``limit`` of ``pts`` (rows ``(t, x, y)``, ``t`` non-decreasing), spread
    evenly in time: for ``limit`` instants evenly spaced from the first to the last
    point, the nearest point (first and last kept, repeats dropped)."""
    k = len(pts)
    if k <= limit:
        return pts
    t = pts[:, 0]
    targets = np.linspace(t[0], t[-1], limit)
    right = np.clip(np.searchsorted(t, targets), 1, k - 1)
    left = right - 1
    nearest = np.where(targets - t[left] <= t[right] - targets, left, right)
    out: F64 = pts[np.unique(nearest)]
    return out


class TrackPaths:
    """The ground-point histories of one camera's tracks.  Single-threaded.

    Fed with the tracker's output of every detected frame (:meth:`add`); told which
    tracks the tracker removed (:meth:`end`); asked for a record's path (:meth:`path`).
    A removed track's history is kept ``keep_ended_s`` video seconds (at most
    ``max_ended`` of them), and as long as the caller says an open event needs it.

    Args:
        recent: Points kept exactly per track.
        older: Slots for thinned older points per track.
        keep_ended_s: Video seconds a removed track's history is kept.
        max_ended: Most removed tracks' histories kept (beyond the ones still needed).
    """

    def __init__(
        self,
        recent: int = RECENT_POINTS,
        older: int = OLDER_POINTS,
        keep_ended_s: float = KEEP_ENDED_S,
        max_ended: int = MAX_ENDED,
    ) -> None:
        TrackPath(recent, older)  # checks the sizes
        self.recent = recent
        self.older = older
        self.keep_ended_s = keep_ended_s
        self.max_ended = max_ended
        self._paths: dict[int, TrackPath] = {}
        self._ended: dict[int, float] = {}  # removed track -> when, oldest first

    def __len__(self) -> int:
        """Tracks whose history is held."""
        return len(self._paths)

    @property
    def holds_ended(self) -> bool:
        """Whether histories of removed tracks are held (:meth:`prune` has work)."""
        return bool(self._ended)

    def get(self, track_id: int) -> TrackPath | None:
        """The history of ``track_id``, or ``None``."""
        return self._paths.get(track_id)

    def add(self, tracks: Detections, t_s: float) -> None:
        """Record the ground point of every tracked row (``tracker_id >= 1``) at ``t_s``."""
        if len(tracks) == 0:
            return
        ground = tracks.ground_points.tolist()
        for tid, (x, y) in zip(tracks.tracker_id.tolist(), ground, strict=True):
            if tid < 1:
                continue
            path = self._paths.get(tid)
            if path is None:
                path = self._paths[tid] = TrackPath(self.recent, self.older)
            path.add(t_s, x, y)

    def end(self, track_ids: Iterable[int], t_s: float) -> None:
        """The tracker removed ``track_ids`` at ``t_s``: their histories may go soon."""
        for tid in track_ids:
            if tid in self._paths and tid not in self._ended:
                self._ended[tid] = t_s

    def prune(self, t_s: float, needed: Collection[int] = ()) -> None:
        """Forget removed tracks' histories older than ``keep_ended_s`` at ``t_s``, and
        the oldest beyond ``max_ended``; never those of ``needed`` (open events' tracks)."""
        excess = 0
        if len(self._ended) > self.max_ended:
            excess = sum(1 for tid in self._ended if tid not in needed) - self.max_ended
        gone: list[int] = []
        for tid, ended_s in self._ended.items():
            if tid in needed:
                continue
            if excess <= 0 and t_s - ended_s <= self.keep_ended_s:
                break  # the rest ended later
            gone.append(tid)
            excess -= 1
        for tid in gone:
            del self._ended[tid]
            del self._paths[tid]

    def path(self, track_id: int, until_s: float) -> tuple[Point, ...] | None:
        """The record path of ``track_id``: its ground points up to ``until_s`` (video
        seconds), oldest first, thinned to at most ``PATH_MAX_POINTS``; ``None`` when
        nothing is known of it up to then."""
        history = self._paths.get(track_id)
        if history is None:
            return None
        pts = thin_in_time(history.points(until_s))
        if len(pts) == 0:
            return None
        return tuple((x, y) for x, y in pts[:, 1:].tolist())

    def clear(self) -> None:
        """Forget everything."""
        self._paths.clear()
        self._ended.clear()
