"""ByteTrack multi-object tracker (Zhang et al., "ByteTrack: Multi-Object Tracking by
Associating Every Detection Box", ECCV 2022), written for Argus.

Per frame, after predicting every track with a constant-velocity Kalman filter:

1. First association: high-confidence boxes (``score >= high_thresh``) with all
   confirmed tracks, tracked and lost, by IoU.
2. Second association: low-confidence boxes (``low_thresh <= score < high_thresh``)
   with the confirmed tracks that were tracked in the previous frame and are still
   unmatched.  Tracked tracks left unmatched become *lost*.
3. Tentative tracks (seen in fewer than ``min_hits`` consecutive frames) with the
   high boxes still unmatched; an unmatched tentative track is discarded.
4. High boxes still unmatched with ``score >= new_track_thresh`` start new tentative
   tracks; a track is confirmed (and gets its id) after ``min_hits`` consecutive hits.
5. Lost tracks not seen for more than ``track_buffer_s`` seconds are removed.

Time, not frame count, drives the filter and the buffer: live sources drop frames,
so the filter predicts over ``dt = t_s - t_prev`` (expressed in nominal frames,
``dt * frame_rate``, so the paper's per-frame noise tuning still applies) and a lost
track survives ``track_buffer_s`` video seconds however many frames arrive.

Matching is class-agnostic, as in the paper; each returned row carries the class and
score of the detection it matched in this frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from detectors.detections import Detections

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class TrackerError(ValueError):
    """Invalid tracker configuration or input (e.g. time going backwards)."""


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """Pairwise intersection-over-union of two box sets.

    Args:
        a: Boxes ``(n, 4)`` ``[x1, y1, x2, y2]`` in pixels (any float dtype).
        b: Boxes ``(k, 4)`` in the same layout.

    Returns:
        ``(n, k)`` float64 in [0, 1]; 0 where a box has no area.
    """
    a64 = np.asarray(a, np.float64).reshape(-1, 4)
    b64 = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a64[:, None, :2], b64[None, :, :2])
    rb = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a64[:, 2:] - a64[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b64[:, 2:] - b64[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def _assign(cost: F64, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost one-to-one assignment, rejecting pairs with ``cost > max_cost``.

    Args:
        cost: ``(n_tracks, n_dets)`` float64 cost matrix (here ``1 - IoU``).
        max_cost: Largest admissible cost of a matched pair.

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``; matches are ``(row, col)`` pairs.
    """
    n, k = cost.shape
    if n == 0 or k == 0:
        return [], list(range(n)), list(range(k))
    # Inadmissible pairs get a cost above any admissible assignment so the solver
    # never trades an admissible pair for them; they are filtered out afterwards.
    gated = np.where(cost > max_cost, max_cost + 1.0 + float(n + k), cost)
    rows, cols = linear_sum_assignment(gated)
    matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_cost]
    used_r = {r for r, _ in matches}
    used_c = {c for _, c in matches}
    return (
        matches,
        [r for r in range(n) if r not in used_r],
        [c for c in range(k) if c not in used_c],
    )


class _KalmanFilter:
    """Constant-velocity Kalman filter on ``(cx, cy, a, h)`` (ByteTrack / DeepSORT tuning).

    State ``(8,)``: centre x, centre y (px), aspect ratio ``w / h``, height (px) and
    their velocities per nominal frame.  Noise is proportional to the box height.
    """

    _W_POS = 1.0 / 20.0
    _W_VEL = 1.0 / 160.0

    @staticmethod
    def initiate(z: F64) -> tuple[F64, F64]:
        """New state from a measurement ``z`` ``(4,)``; returns ``(mean (8,), cov (8, 8))``."""
        h = z[3]
        std = np.array(
            [
                2 * _KalmanFilter._W_POS * h,
                2 * _KalmanFilter._W_POS * h,
                1e-2,
                2 * _KalmanFilter._W_POS * h,
                10 * _KalmanFilter._W_VEL * h,
                10 * _KalmanFilter._W_VEL * h,
                1e-5,
                10 * _KalmanFilter._W_VEL * h,
            ]
        )
        return np.concatenate([z, np.zeros(4)]), np.diag(std**2)

    @staticmethod
    def predict(mean: F64, cov: F64, dt: float) -> tuple[F64, F64]:
        """Propagate ``dt`` nominal frames (``dt >= 0``, may be fractional)."""
        h = mean[3]
        std = np.array(
            [_KalmanFilter._W_POS * h] * 2
            + [1e-2, _KalmanFilter._W_POS * h]
            + [_KalmanFilter._W_VEL * h] * 2
            + [1e-5, _KalmanFilter._W_VEL * h]
        )
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        q = np.diag(std**2) * dt  # random-walk noise grows linearly with elapsed time
        return f @ mean, f @ cov @ f.T + q

    @staticmethod
    def update(mean: F64, cov: F64, z: F64) -> tuple[F64, F64]:
        """Correct with measurement ``z`` ``(4,)`` (``cx, cy, a, h``)."""
        h = mean[3]
        r = np.diag(
            np.array(
                [_KalmanFilter._W_POS * h, _KalmanFilter._W_POS * h, 1e-1, _KalmanFilter._W_POS * h]
            )
            ** 2
        )
        hm = np.eye(4, 8)
        s = hm @ cov @ hm.T + r
        gain = np.linalg.solve(s, hm @ cov).T  # (8, 4); s is symmetric
        mean = mean + gain @ (z - hm @ mean)
        cov = cov - gain @ s @ gain.T
        return mean, cov


def _xyxy_to_z(box: npt.NDArray[np.floating]) -> F64:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, w / h, h])


def _mean_to_xyxy(mean: F64) -> F64:
    cx, cy, a, h = mean[:4]
    h = max(h, 1e-3)
    w = max(a, 1e-6) * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class _State(Enum):
    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"


@dataclass(eq=False)
class _Track:
    """One object hypothesis.  ``track_id`` is 0 until the track is confirmed."""

    mean: F64
    cov: F64
    last_seen_s: float
    hits: int = 1
    state: _State = _State.TENTATIVE
    track_id: int = 0
    det_index: int = -1  # detection matched in the current frame, -1 if none

    @property
    def box(self) -> F64:
        return _mean_to_xyxy(self.mean)

    def predict(self, dt: float) -> None:
        if self.state is not _State.TRACKED:
            self.mean = self.mean.copy()
            self.mean[7] = 0.0  # do not let the height drift while unseen
        self.mean, self.cov = _KalmanFilter.predict(self.mean, self.cov, dt)

    def hit(self, box: npt.NDArray[np.floating], det_index: int, t_s: float) -> None:
        self.mean, self.cov = _KalmanFilter.update(self.mean, self.cov, _xyxy_to_z(box))
        self.last_seen_s = t_s
        self.det_index = det_index
        self.hits += 1


class ByteTracker:
    """ByteTrack over :class:`Detections`, one instance per camera (not thread-safe).

    Args:
        high_thresh: Boxes with ``score >= high_thresh`` take part in the first
            association (and may start tracks).
        low_thresh: Boxes with ``low_thresh <= score < high_thresh`` only take part in
            the second association (they keep existing tracks alive through partial
            occlusion, never start tracks).  Lower scores are ignored.
        new_track_thresh: An unmatched high box starts a new track only if its score is
            at least this (``>= high_thresh``).
        match_iou: Maximum matching *cost* ``1 - IoU`` of the first association: a
            track and a box may be paired only if ``1 - IoU <= match_iou``, i.e.
            ``IoU >= 1 - match_iou`` (default 0.8 -> IoU >= 0.2).  This is the
            paper's ``match_thresh``; despite the name, larger is more permissive.
        low_match_iou: Same, for the second association (paper: 0.5 -> IoU >= 0.5).
        tentative_match_iou: Same, for tentative tracks (paper: 0.7 -> IoU >= 0.3).
        track_buffer_s: Video seconds a lost track is kept for re-identification.
        frame_rate: Nominal frames per second of the source; converts elapsed seconds
            to the filter's per-frame units.
        min_hits: Consecutive frames a new track must be matched before it is
            confirmed, assigned an id and reported (1 = immediately).

    Raises:
        TrackerError: For an out-of-range argument; the message names it and its value.
    """

    def __init__(
        self,
        *,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_iou: float = 0.8,
        low_match_iou: float = 0.5,
        tentative_match_iou: float = 0.7,
        track_buffer_s: float = 3.0,
        frame_rate: float = 10.0,
        min_hits: int = 2,
    ) -> None:
        for name, value in (
            ("high_thresh", high_thresh),
            ("low_thresh", low_thresh),
            ("new_track_thresh", new_track_thresh),
            ("match_iou", match_iou),
            ("low_match_iou", low_match_iou),
            ("tentative_match_iou", tentative_match_iou),
        ):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise TrackerError(f"{name} must be in [0, 1], got {value!r}")
        if low_thresh > high_thresh:
            raise TrackerError(
                f"low_thresh ({low_thresh!r}) must not exceed high_thresh ({high_thresh!r})"
            )
        if new_track_thresh < high_thresh:
            raise TrackerError(
                f"new_track_thresh ({new_track_thresh!r}) must be >= high_thresh ({high_thresh!r})"
            )
        if not (math.isfinite(track_buffer_s) and track_buffer_s >= 0.0):
            raise TrackerError(f"track_buffer_s must be finite and >= 0, got {track_buffer_s!r}")
        if not (math.isfinite(frame_rate) and frame_rate > 0.0):
            raise TrackerError(f"frame_rate must be finite and > 0, got {frame_rate!r}")
        if isinstance(min_hits, bool) or not isinstance(min_hits, int) or min_hits < 1:
            raise TrackerError(f"min_hits must be an int >= 1, got {min_hits!r}")
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh
        self.new_track_thresh = new_track_thresh
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.tentative_match_iou = tentative_match_iou
        self.track_buffer_s = track_buffer_s
        self.frame_rate = frame_rate
        self.min_hits = min_hits
        self._next_id = 1
        self._tracks: list[_Track] = []  # confirmed: TRACKED or LOST, ordered by id
        self._tentative: list[_Track] = []
        self._ended: list[int] = []
        self._last_t: float | None = None

    # ------------------------------------------------------------------ public API

    def reset(self) -> None:
        """Forget every track and the clock (e.g. a new stream).

        The id counter is kept so ids are never reused by this instance; build a new
        tracker for numbering from 1 again.  Ids of confirmed tracks alive at reset
        are reported by the next :meth:`pop_ended_ids`.
        """
        self._ended.extend(t.track_id for t in self._tracks)
        self._tracks = []
        self._tentative = []
        self._last_t = None

    @property
    def active_ids(self) -> list[int]:
        """Ids of confirmed tracks matched in the last frame, ascending."""
        return [t.track_id for t in self._tracks if t.state is _State.TRACKED]

    @property
    def idle(self) -> bool:
        """True when the tracker holds nothing: no confirmed, lost or tentative track."""
        return not (self._tracks or self._tentative)

    def needs_every_frame(self, min_speed: float = 0.1) -> bool:
        """Whether the tracker should see every frame rather than an occasional one.

        True while a track is tentative (being confirmed), lost (being looked for) or
        moving: its centre's filtered speed is at least ``min_speed`` box heights per
        second.  Confirmed tracks standing still (a parked car, a bench the detector
        takes for something, a person waiting) do not need every frame: matched again a
        second later they are still there, well within the track buffer.
        """
        if self._tentative:
            return True
        for t in self._tracks:
            if t.state is not _State.TRACKED:
                return True
            speed = math.hypot(t.mean[4], t.mean[5]) * self.frame_rate  # px/s
            if speed >= min_speed * max(t.mean[3], 1.0):
                return True
        return False

    @property
    def lost_ids(self) -> list[int]:
        """Ids of confirmed tracks currently lost (unseen, still in the buffer), ascending."""
        return [t.track_id for t in self._tracks if t.state is _State.LOST]

    def pop_ended_ids(self) -> list[int]:
        """Ids of confirmed tracks removed since the last call (ascending); clears the list.

        A removed id never comes back, so rules may close whatever they hold for it.
        """
        ended, self._ended = sorted(self._ended), []
        return ended

    def update(self, dets: Detections, t_s: float) -> Detections:
        """Advance the tracker by one frame.

        Args:
            dets: Detections of this frame (``tracker_id`` ignored).
            t_s: Time of this frame in video seconds (``Frame.pts_s``); non-decreasing.

        Returns:
            The confirmed tracks matched to a detection in this frame: one row per such
            track, with the matched detection's box, score and class and ``tracker_id``
            set (>= 1), sorted by ``tracker_id``.  Rows are reordered relative to
            ``dets``; detections not matched to a confirmed track (below
            ``low_thresh``, unmatched low boxes, tentative tracks) are dropped, and lost
            tracks are not reported (see :attr:`lost_ids`).

        Raises:
            TrackerError: If ``t_s`` is not finite or is earlier than the previous frame's.
        """
        if not math.isfinite(t_s):
            raise TrackerError(f"t_s must be finite, got {t_s!r}")
        if self._last_t is not None and t_s < self._last_t:
            raise TrackerError(f"t_s went backwards: {t_s!r} < previous {self._last_t!r}")
        dt = 0.0 if self._last_t is None else (t_s - self._last_t) * self.frame_rate
        self._last_t = t_s

        for track in (*self._tracks, *self._tentative):
            track.predict(dt)
            track.det_index = -1

        boxes = dets.xyxy.astype(np.float64)
        high = np.flatnonzero(dets.score >= self.high_thresh)
        low = np.flatnonzero((dets.score >= self.low_thresh) & (dets.score < self.high_thresh))

        # First association: high boxes with all confirmed tracks (tracked + lost).
        pool = self._tracks
        matches, u_pool, u_high = _assign(self._cost(pool, boxes[high]), self.match_iou)
        for r, c in matches:
            pool[r].hit(boxes[high[c]], int(high[c]), t_s)
            pool[r].state = _State.TRACKED
        # Second association: low boxes with the still-unmatched *tracked* tracks.
        remaining = [pool[r] for r in u_pool if pool[r].state is _State.TRACKED]
        matches, u_rem, _ = _assign(self._cost(remaining, boxes[low]), self.low_match_iou)
        for r, c in matches:
            remaining[r].hit(boxes[low[c]], int(low[c]), t_s)
        for r in u_rem:
            remaining[r].state = _State.LOST
        # Tentative tracks with the high boxes left over; unmatched tentatives die.
        left = high[u_high]
        matches, _, u_left = _assign(
            self._cost(self._tentative, boxes[left]), self.tentative_match_iou
        )
        still_tentative: list[_Track] = []
        for r, c in matches:
            track = self._tentative[r]
            track.hit(boxes[left[c]], int(left[c]), t_s)
            self._confirm_or_keep(track, still_tentative)
        # Unmatched confident high boxes start new tracks (in detection order).
        for c in u_left:
            i = int(left[c])
            if dets.score[i] >= self.new_track_thresh:
                mean, cov = _KalmanFilter.initiate(_xyxy_to_z(boxes[i]))
                track = _Track(mean=mean, cov=cov, last_seen_s=t_s, det_index=i)
                self._confirm_or_keep(track, still_tentative)
        self._tentative = still_tentative
        # Lost tracks past the buffer are removed for good.
        kept: list[_Track] = []
        for track in self._tracks:
            if track.state is _State.LOST and t_s - track.last_seen_s > self.track_buffer_s:
                logger.debug(
                    "track %d removed (unseen since %.3f s)", track.track_id, track.last_seen_s
                )
                self._ended.append(track.track_id)
            else:
                kept.append(track)
        self._tracks = sorted(kept, key=lambda t: t.track_id)

        out = [t for t in self._tracks if t.state is _State.TRACKED and t.det_index >= 0]
        idx = np.array([t.det_index for t in out], np.int64)
        return dets[idx].with_tracker_id(np.array([t.track_id for t in out], np.int64))

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _cost(tracks: list[_Track], boxes: F64) -> F64:
        """``1 - IoU`` between predicted track boxes and ``boxes``, shape ``(len(tracks), k)``."""
        pred = np.array([t.box for t in tracks], np.float64).reshape(-1, 4)
        return 1.0 - iou_matrix(pred, boxes)

    def _confirm_or_keep(self, track: _Track, tentative: list[_Track]) -> None:
        if track.hits >= self.min_hits:
            track.state = _State.TRACKED
            track.track_id = self._next_id
            self._next_id += 1
            self._tracks.append(track)
        else:
            tentative.append(track)
