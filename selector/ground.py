"""Where a camera's picture lies on the ground: image pixels to metres on a flat floor.

Rules that measure a distance or a speed in the picture (an owner's distance from a
bag, a walker's speed, a band around a line) measure differently along the picture and
across it: a step toward the camera moves the feet a few pixels, a step across many.  A
:class:`GroundModel` maps a ground point of the picture (the bottom centre of a box, in
pixels of the full frame) to metres on the floor, so that both steps measure the same.

Two ways to get one:

* **Calibrated** (:func:`calibrate`): four or more image points whose positions on the
  ground the user measured (metres, any origin and axes).  A plane homography is fitted
  to them; points that lie on one line, or do not fit one plane, are refused.
* **Estimated** (:class:`GroundEstimator`): from the people the camera sees.  On a flat
  floor, the box height of a standing person depends on the row of their feet in a way
  set by the camera's height and pitch; with people :data:`PERSON_HEIGHT_M` tall and an
  assumed horizontal field of view, the heights seen at different rows give both
  (:func:`fit_people`), and so the floor (:func:`pinhole`).  The field of view sets the
  scale along the picture more than across it.  Until enough people were seen at
  different rows there is no model, and rules measure in the picture as before.

Units: image points are pixels of the full frame (x right, y down); ground points are
metres.  Rules keep their existing keys in *body heights*; one body height is
:data:`PERSON_HEIGHT_M` on the ground.  A point on or above the horizon has no ground
position (``NaN``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from detectors.detections import Detections

F64 = npt.NDArray[np.float64]

PERSON_HEIGHT_M = 1.7
"""Height of a standing person, metres: what one *body height* means on the ground."""
DEFAULT_HFOV_DEG = 70.0
"""Horizontal field of view assumed by the estimated model (a common CCTV lens, 4 mm on
a 1/2.8" sensor); it sets the scale along the picture, not across it."""
MAX_FIT_ERROR_M = 0.5
"""Largest RMS distance (metres) between the measured ground points of a calibration
and where the fitted model puts them; more means the points are not on one plane or
were mistyped."""
MIN_SPREAD = 0.02
"""Smallest triangle a calibration's points may form, as a fraction of the square of
their spread: below that, three of them are (nearly) on one line."""


class GroundError(ValueError):
    """A ground calibration that cannot be used; the message names the camera."""

    def __init__(self, camera_id: str, problem: str) -> None:
        super().__init__(f"camera {camera_id!r}: ground calibration: {problem}")
        self.camera_id = camera_id
        self.problem = problem


@dataclass(frozen=True, eq=False)
class GroundModel:
    """Image pixels to ground metres by a plane homography.

    Attributes:
        homography: ``(3, 3)`` matrix, ``[X, Y, 1] ~ H @ [x, y, 1]`` (pixels to metres).
        source: ``"calibrated"`` (the user's points) or ``"estimated"`` (from people).
        points: The calibration's image points ``(n, 2)`` px (empty when estimated),
            to check against the picture's size.
    """

    homography: F64
    source: Literal["calibrated", "estimated"]
    points: F64 = field(default_factory=lambda: np.zeros((0, 2)))
    _rows: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", tuple(float(v) for v in self.homography.ravel()))

    @property
    def calibrated(self) -> bool:
        """Whether the user gave this model (``*_m`` rule keys need one)."""
        return self.source == "calibrated"

    def to_ground(self, points: npt.ArrayLike) -> F64:
        """Ground positions ``(n, 2)`` metres of image points ``(n, 2)`` px.

        A point on or above the horizon (or behind the camera) gives ``NaN``.
        """
        q = np.asarray(points, np.float64).reshape(-1, 2)
        h = self.homography
        w = h[2, 0] * q[:, 0] + h[2, 1] * q[:, 1] + h[2, 2]
        x = h[0, 0] * q[:, 0] + h[0, 1] * q[:, 1] + h[0, 2]
        y = h[1, 0] * q[:, 0] + h[1, 1] * q[:, 1] + h[1, 2]
        ok = w > 1e-12
        safe = np.where(ok, w, 1.0)
        out = np.stack([x / safe, y / safe], axis=1)
        out[~ok] = np.nan
        return out

    def point(self, x: float, y: float) -> tuple[float, float] | None:
        """Ground position (metres) of one image point (px), or ``None`` on or above the
        horizon (plain floats: rules call it per person per frame)."""
        h = self._rows
        w = h[6] * x + h[7] * y + h[8]
        if w <= 1e-12:
            return None
        return ((h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w)

    def distance_m(self, p: Sequence[float], q: Sequence[float]) -> float:
        """Ground distance, metres, between image points ``p`` and ``q`` (px); ``NaN``
        when either is on or above the horizon."""
        a, b = self.point(float(p[0]), float(p[1])), self.point(float(q[0]), float(q[1]))
        if a is None or b is None:
            return math.nan
        return math.hypot(b[0] - a[0], b[1] - a[1])

    def outside(self, width: int, height: int) -> list[tuple[float, float]]:
        """The calibration's image points outside a ``width`` x ``height`` picture."""
        return [
            (float(x), float(y))
            for x, y in self.points
            if not (0.0 <= x <= width and 0.0 <= y <= height)
        ]


def _cross(u: F64, v: F64) -> float:
    """The z component of ``u x v`` for 2-vectors."""
    return float(u[0] * v[1] - u[1] * v[0])


def _normalised_area(p: F64) -> float:
    """Smallest triangle of any three of ``p`` ``(n, 2)``, over the spread squared."""
    spread = float(np.ptp(p, axis=0).max()) ** 2
    if spread <= 0.0:
        return 0.0
    smallest = min(
        abs(_cross(p[b] - p[a], p[c] - p[a])) / 2.0 for a, b, c in combinations(range(len(p)), 3)
    )
    return smallest / spread


def _check_spread(camera_id: str, p: F64, what: str, unit: str) -> None:
    """Refuse points of which three lie on one line (any three when four are given,
    all of them when more: more may include collinear triples, as along a kerb)."""
    if len(p) == 4:
        if _normalised_area(p) < MIN_SPREAD:
            raise GroundError(
                camera_id,
                f"three of the {what} points are on one line ({p.tolist()} {unit}): "
                "choose four points with no three in a row, such as the corners of a "
                "floor tile or a parking bay",
            )
        return
    centred = p - p.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    if s[0] <= 0.0 or s[1] / s[0] < MIN_SPREAD:
        raise GroundError(camera_id, f"the {what} points are all on one line ({unit})")


def calibrate(
    camera_id: str,
    image_points: Sequence[Sequence[float]],
    ground_points: Sequence[Sequence[float]],
) -> GroundModel:
    """The model of a user's calibration.

    Args:
        camera_id: The camera (for messages).
        image_points: ``(n, 2)`` pixels of the full frame, ``n >= 4``, non-negative.
        ground_points: ``(n, 2)`` metres on the floor, the same points in the same order.

    Raises:
        GroundError: Fewer than four points, counts that differ, a point not finite or
            at a negative pixel, three image or ground points on one line (of four), all
            on one line (of more), a point the fit puts at or above the horizon, or a
            fit off by more than :data:`MAX_FIT_ERROR_M` (RMS).
    """
    img = np.asarray(image_points, np.float64).reshape(-1, 2)
    gnd = np.asarray(ground_points, np.float64).reshape(-1, 2)
    if len(img) != len(gnd):
        raise GroundError(
            camera_id, f"{len(img)} image points but {len(gnd)} ground points: give pairs"
        )
    if len(img) < 4:
        raise GroundError(camera_id, f"needs four or more points, got {len(img)}")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(gnd))):
        raise GroundError(camera_id, "every coordinate must be a finite number")
    if np.any(img < 0.0):
        bad = [p for p in img.tolist() if min(p) < 0.0]
        raise GroundError(camera_id, f"image points {bad} are outside the picture")
    if len({tuple(p) for p in img.tolist()}) < len(img):
        raise GroundError(camera_id, "an image point is given twice")
    _check_spread(camera_id, img, "image", "px")
    _check_spread(camera_id, gnd, "ground", "m")
    hom, _ = cv2.findHomography(img, gnd, 0)
    if hom is None or not np.all(np.isfinite(hom)):
        raise GroundError(camera_id, "no plane fits these points")
    hom = np.asarray(hom, dtype=np.float64).reshape(3, 3)
    w = hom[2] @ np.vstack([img.T, np.ones(len(img))])
    if np.all(w < 0.0):
        hom = -hom  # the same map: keep points in front of the camera at w > 0
    elif np.any(w <= 0.0):
        raise GroundError(
            camera_id,
            "the fit puts some points beyond the horizon: they do not lie on one flat "
            "floor seen by the camera (check the pairs)",
        )
    model = GroundModel(np.asarray(hom, np.float64), "calibrated", img)
    err = float(np.sqrt(np.mean(np.sum((model.to_ground(img) - gnd) ** 2, axis=1))))
    if not math.isfinite(err) or err > MAX_FIT_ERROR_M:
        raise GroundError(
            camera_id,
            f"the points do not fit one flat floor (off by {err:.2f} m RMS, at most "
            f"{MAX_FIT_ERROR_M} m): check that each image point is paired with its own "
            "ground position",
        )
    return model


def pinhole(
    tilt_deg: float,
    camera_h: float,
    width: int,
    height: int,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> GroundModel:
    """The model of a level-rolled pinhole camera ``camera_h`` metres above the floor,
    pitched ``tilt_deg`` down, with ``hfov_deg`` of view on a ``width`` x ``height``
    picture (principal point at its centre).

    The ray through pixel ``(u, v)`` meets the floor at ``X = Hc (u - cx) / d`` (right)
    and ``Z = Hc (f cos t - (v - cy) sin t) / d`` (ahead), ``d = (v - cy) cos t + f sin t``;
    ``d <= 0`` is on or above the horizon.
    """
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    cx, cy = width / 2.0, height / 2.0
    st, ct = math.sin(math.radians(tilt_deg)), math.cos(math.radians(tilt_deg))
    hom = np.array(
        [
            [camera_h, 0.0, -camera_h * cx],
            [0.0, -camera_h * st, camera_h * (f * ct + cy * st)],
            [0.0, ct, f * st - cy * ct],
        ],
        np.float64,
    )
    return GroundModel(hom, "estimated")


def person_heights(
    foot_y: npt.ArrayLike,
    tilt_deg: npt.ArrayLike,
    camera_h: npt.ArrayLike,
    height: int,
    f: float,
    person_height_m: float = PERSON_HEIGHT_M,
) -> F64:
    """Box heights (px) of people ``person_height_m`` tall standing with their feet at
    rows ``foot_y`` (px), seen by pinhole cameras as in :func:`pinhole` (focal ``f`` px;
    the arguments broadcast); ``NaN`` where the feet are on or above the horizon."""
    v = np.asarray(foot_y, np.float64) - height / 2.0
    t = np.radians(np.asarray(tilt_deg, np.float64))
    hc = np.asarray(camera_h, np.float64)
    st, ct = np.sin(t), np.cos(t)
    d = v * ct + f * st
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d > 0.0, hc * (f * ct - v * st) / d, np.nan)
        ry = hc - person_height_m  # the head's height below the camera
        head = f * (ry * ct - z * st) / (ry * st + z * ct)
    return np.asarray(v - head, np.float64)


@dataclass(frozen=True, slots=True)
class PeopleFit:
    """The camera the people's box heights along the picture fit best (see
    :class:`GroundEstimator`).

    Attributes:
        tilt_deg: Pitch below the horizontal, degrees.
        camera_h: Height above the floor, metres.
        horizon_y: Row of the horizon, px (may be above the picture: negative).
        samples: Sightings it was fitted on.
        rows: Row bands it spans.
        error: Relative difference between a sighting's height and the fit that three
            sightings in four are within.
    """

    tilt_deg: float
    camera_h: float
    horizon_y: float
    samples: int
    rows: int
    error: float


TILTS_DEG = np.arange(-10.0, 81.0, 1.0)
"""Camera pitches the estimator tries first, degrees below the horizontal (then refined
to 0.1 degree around the best)."""
CAMERA_HEIGHTS_M = np.geomspace(0.8, 60.0, 64)
"""Camera heights it tries first, metres (then refined to 0.5 % around the best)."""


def _search(
    ys: F64, hs: F64, tilts: F64, heights: F64, height: int, f: float, person_height_m: float
) -> tuple[float, float, float]:
    """The best ``(tilt, camera height, median relative error)`` on a grid."""
    pred = person_heights(
        ys[None, None, :], tilts[:, None, None], heights[None, :, None], height, f, person_height_m
    )
    with np.errstate(invalid="ignore"):
        err = np.median(np.abs(pred - hs) / hs, axis=2)
    err = np.where(np.all(np.isfinite(pred) & (pred > 0.0), axis=2), err, np.inf)
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(tilts[i]), float(heights[j]), float(err[i, j])


def fit_people(
    foot_y: npt.ArrayLike,
    box_h: npt.ArrayLike,
    width: int,
    height: int,
    hfov_deg: float,
    person_height_m: float = PERSON_HEIGHT_M,
) -> tuple[float, float, float] | None:
    """The pinhole camera (``(tilt_deg, camera_h, median relative error)``) under which
    people standing at rows ``foot_y`` (px) are ``box_h`` (px) tall: a search over
    :data:`TILTS_DEG` x :data:`CAMERA_HEIGHTS_M`, refined around the best (about 10 ms
    for 16 rows); ``None`` when no camera puts every foot below its horizon."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    ys = np.asarray(foot_y, np.float64)
    hs = np.asarray(box_h, np.float64)
    tilt, cam_h, err = _search(ys, hs, TILTS_DEG, CAMERA_HEIGHTS_M, height, f, person_height_m)
    if not math.isfinite(err):
        return None
    step = float(CAMERA_HEIGHTS_M[1] / CAMERA_HEIGHTS_M[0])
    return _search(
        ys,
        hs,
        np.arange(tilt - 1.0, tilt + 1.05, 0.1),
        np.geomspace(cam_h / step, cam_h * step, 41),
        height,
        f,
        person_height_m,
    )


class GroundEstimator:
    """Learns a camera's ground from the standing people it sees.

    Each sighting of a person (a tracked row of ``person_classes`` with score >=
    ``min_score``, a box whose height is at least ``MIN_ASPECT`` times its width, not
    touching the top or bottom edge; a track at most once per ``SAMPLE_S``, so someone
    standing still does not fill a band) adds ``(foot row, box height)`` to one of
    ``BINS`` bands of rows (each keeps its latest ``PER_BIN``).  Every ``REFIT_S`` of
    video (``KEEP_S`` once there is a model: the bands keep changing slowly) the
    pinhole camera (pitch and height, with ``hfov_deg`` of view) under which
    people :data:`PERSON_HEIGHT_M` tall would have the bands' median heights is fitted
    (:func:`fit_people`); it is kept when the bands span at least ``MIN_BINS`` bands
    over ``MIN_SPAN`` of the picture's height and three sightings in four are within
    ``MAX_ERROR`` (relative) of the fit.  The
    model is then exact for such a camera: a steep one (looking down at 45 degrees) as
    well as a level one.

    Args:
        person_classes: Class ids of people.
        person_height_m: Height of a standing person, metres.
        hfov_deg: The camera's horizontal field of view, degrees (0 < x < 180).
        min_score: Least detector score of a sighting.
    """

    BINS = 16
    PER_BIN = 64
    MIN_PER_BIN = 6
    MIN_BINS = 4
    MIN_SPAN = 0.25
    MIN_ASPECT = 1.6
    MAX_ERROR = 0.2
    REFIT_S = 5.0
    KEEP_S = 60.0
    SAMPLE_S = 0.5
    EDGE_PX = 2.0

    def __init__(
        self,
        person_classes: Collection[int],
        *,
        person_height_m: float = PERSON_HEIGHT_M,
        hfov_deg: float = DEFAULT_HFOV_DEG,
        min_score: float = 0.4,
    ) -> None:
        self.person_classes = np.array(sorted(person_classes), np.int64)
        self.person_height_m = person_height_m
        self.hfov_deg = hfov_deg
        self.min_score = min_score
        self._bins: list[deque[tuple[float, float]]] = [
            deque(maxlen=self.PER_BIN) for _ in range(self.BINS)
        ]
        self._last_sample: dict[int, float] = {}  # track id -> time of its last sample
        self._size: tuple[int, int] | None = None
        self._next_fit_s = -math.inf
        self.fit: PeopleFit | None = None
        self.model: GroundModel | None = None

    def observe(self, tracks: Detections, t: float, width: int, height: int) -> None:
        """Take this frame's standing people (``tracks``: the tracker's output, px) at
        video time ``t`` (seconds); refit when due.  A new picture size starts over."""
        if width <= 0 or height <= 0:
            return
        if self._size != (width, height):
            self._size = (width, height)
            for b in self._bins:
                b.clear()
            self._last_sample.clear()
            self.fit, self.model, self._next_fit_s = None, None, -math.inf
        if len(tracks) and self.person_classes.size:
            xyxy = tracks.xyxy.astype(np.float64)
            w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
            ok = (
                np.isin(tracks.class_id, self.person_classes)
                & (tracks.tracker_id >= 1)
                & (tracks.score >= self.min_score)
                & (w > 0.0)
                & (h >= self.MIN_ASPECT * w)
                & (xyxy[:, 1] > self.EDGE_PX)
                & (xyxy[:, 3] < height - self.EDGE_PX)
            )
            for i in np.flatnonzero(ok).tolist():
                tid = int(tracks.tracker_id[i])
                if t - self._last_sample.get(tid, -math.inf) < self.SAMPLE_S:
                    continue
                self._last_sample[tid] = t
                y = float(xyxy[i, 3])
                self._bins[min(self.BINS - 1, int(y * self.BINS / height))].append((y, float(h[i])))
        if t >= self._next_fit_s:
            self._next_fit_s = t + (self.REFIT_S if self.model is None else self.KEEP_S)
            stale = [k for k, ts in self._last_sample.items() if t - ts > 10 * self.REFIT_S]
            for k in stale:
                del self._last_sample[k]
            self._refit(width, height)

    def _refit(self, width: int, height: int) -> None:
        full = [b for b in self._bins if len(b) >= self.MIN_PER_BIN]
        if len(full) < self.MIN_BINS:
            return
        med = np.array([np.median(np.array(b), axis=0) for b in full])  # (m, 2): y, h
        ys, hs = med[:, 0], med[:, 1]
        if float(ys.max() - ys.min()) < self.MIN_SPAN * height:
            return
        found = fit_people(ys, hs, width, height, self.hfov_deg, self.person_height_m)
        if found is None:
            return
        tilt, cam_h, _ = found
        f = (width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)
        every = np.array([s for b in full for s in b])  # (n, 2): each sighting's y, h
        pred = person_heights(every[:, 0], tilt, cam_h, height, f, self.person_height_m)
        error = float(np.percentile(np.abs(pred - every[:, 1]) / every[:, 1], 75))
        if not error <= self.MAX_ERROR:  # NaN too: the people fit no camera
            return
        horizon = height / 2.0 - f * math.tan(math.radians(tilt))
        self.fit = PeopleFit(
            round(tilt, 2),
            round(cam_h, 2),
            round(horizon, 1),
            sum(len(b) for b in full),
            len(full),
            round(error, 4),
        )
        self.model = pinhole(tilt, cam_h, width, height, self.hfov_deg)


class CameraGround:
    """The ground a camera's rules measure on: the user's calibration, else an estimate.

    Args:
        camera_id: The camera (for messages).
        calibrated: The user's model, or ``None``.
        estimator: Learns one from people while there is no calibration (none given, or
            dropped because its points are outside the picture); ``None``: rules then
            measure in the picture.
    """

    def __init__(
        self,
        camera_id: str,
        calibrated: GroundModel | None = None,
        estimator: GroundEstimator | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.calibrated = calibrated
        self.estimator = estimator  # learns only while there is no calibration
        self.problem: str | None = None  # why the calibration was dropped, if it was
        self._checked: tuple[int, int] | None = None

    def check_picture(self, width: int, height: int) -> str | None:
        """Check the calibration against the picture's size (once per size); a point
        outside it drops the calibration and returns the problem (else ``None``)."""
        if self.calibrated is None or self._checked == (width, height):
            return None
        self._checked = (width, height)
        bad = self.calibrated.outside(width, height)
        if not bad:
            return None
        self.problem = (
            f"camera {self.camera_id!r}: ground calibration: image points {bad} are outside "
            f"the {width}x{height} picture; the camera's rules measure without it (on "
            "the ground estimated from people, if on, else in the picture) until it is fixed"
        )
        self.calibrated = None
        return self.problem

    def update(self, tracks: Detections, t: float, width: int, height: int) -> None:
        """Feed the estimator (if any, and while there is no calibration) one frame's
        tracks (see :meth:`GroundEstimator.observe`)."""
        if self.estimator is not None and self.calibrated is None:
            self.estimator.observe(tracks, t, width, height)

    @property
    def model(self) -> GroundModel | None:
        """The model rules measure with now, or ``None`` (measure in the picture)."""
        if self.calibrated is not None:
            return self.calibrated
        return self.estimator.model if self.estimator is not None else None

    def describe(self) -> dict[str, object]:
        """What ``/readyz`` says of it: the source and, when estimated, the fit."""
        model = self.model
        out: dict[str, object] = {"source": model.source if model is not None else "none"}
        if self.problem:
            out["problem"] = self.problem
        fit = self.estimator.fit if self.estimator is not None else None
        if model is not None and not model.calibrated and fit is not None:
            out["tilt_deg"] = fit.tilt_deg
            out["camera_height_m"] = fit.camera_h
            out["horizon_y"] = fit.horizon_y
            out["people_seen"] = fit.samples
        return out


@dataclass(frozen=True, slots=True)
class Reach:
    """A distance a rule compares with (or a distance per second, for a speed): in body
    heights, the unit of its existing keys, or in metres (its ``*_m`` key, on a
    calibrated camera).

    Attributes:
        body_heights: The value in body heights (> 0 or >= 0, as the rule says).
        metres: The value in metres when the rule was given one, else ``None``.
    """

    body_heights: float
    metres: float | None = None

    @property
    def ground_m(self) -> float:
        """The value in metres on the ground (a body height is :data:`PERSON_HEIGHT_M`)."""
        return self.metres if self.metres is not None else self.body_heights * PERSON_HEIGHT_M

    def image_px(self, body_px: float) -> float:
        """The value in pixels, in the picture, for a person ``body_px`` pixels tall
        (how rules measure where there is no ground model)."""
        heights = self.metres / PERSON_HEIGHT_M if self.metres is not None else self.body_heights
        return heights * body_px


def ground_distance(
    model: GroundModel | None, p: Sequence[float], q: Sequence[float]
) -> float | None:
    """Metres on the ground between image points ``p`` and ``q`` (px), or ``None`` when
    there is no model or either point has no ground position (at or above the horizon)."""
    if model is None:
        return None
    d = model.distance_m(p, q)
    return d if math.isfinite(d) else None
