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
  floor, the box height ``h`` of a standing person grows linearly with the image row
  ``y`` of their feet, ``h = k * (y - y0)`` (``y0``: the horizon); with a person height
  of :data:`PERSON_HEIGHT_M`, this gives metres across the picture exactly and, with an
  assumed horizontal field of view, along it.  Until enough people were seen at
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

    def distance_m(self, p: Sequence[float], q: Sequence[float]) -> float:
        """Ground distance, metres, between image points ``p`` and ``q`` (px); ``NaN``
        when either is on or above the horizon."""
        g = self.to_ground([p, q])
        return float(math.hypot(*(g[1] - g[0])))

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


def from_people(
    slope: float,
    horizon_y: float,
    width: int,
    *,
    person_height_m: float = PERSON_HEIGHT_M,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> GroundModel:
    """The model of a flat floor on which standing people measure ``h = slope * (y -
    horizon_y)`` pixels tall with their feet at row ``y``.

    Across the picture a pixel at row ``y`` is ``person_height_m / h`` metres; along it,
    the distance from the camera is ``f * person_height_m / h`` with ``f`` the focal
    length in pixels of a ``width``-pixel picture with ``hfov_deg`` of view.
    """
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    cx, hp = width / 2.0, person_height_m
    hom = np.array(
        [[hp, 0.0, -cx * hp], [0.0, 0.0, f * hp], [0.0, slope, -slope * horizon_y]],
        np.float64,
    )
    return GroundModel(hom, "estimated")


@dataclass(frozen=True, slots=True)
class PeopleFit:
    """A fit of people's box heights along the picture: ``h = slope * (y - horizon_y)``.

    Attributes:
        slope: Pixels of height per pixel of row (> 0).
        horizon_y: Row of the horizon, px (above every person seen).
        samples: Sightings it was fitted on.
        rows: Rows bins it spans.
        error: Median relative difference between a bin's height and the fit.
    """

    slope: float
    horizon_y: float
    samples: int
    rows: int
    error: float


class GroundEstimator:
    """Learns a camera's ground from the standing people it sees.

    Each sighting of a person (a tracked row of ``person_classes`` with score >=
    ``min_score``, a box whose height is at least ``MIN_ASPECT`` times its width, not
    touching the top or bottom edge) adds ``(foot row, box height)`` to one of
    ``BINS`` bands of rows (each keeps its latest ``PER_BIN``).  Every ``REFIT_S`` of
    video a line is fitted through the bands' medians; it is kept when it spans at least
    ``MIN_BINS`` bands over ``MIN_SPAN`` of the picture's height, grows downward, puts
    the horizon above every band, and fits within ``MAX_ERROR``.

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
            for y, hh in zip(xyxy[ok, 3].tolist(), h[ok].tolist(), strict=True):
                self._bins[min(self.BINS - 1, int(y * self.BINS / height))].append((y, hh))
        if t >= self._next_fit_s:
            self._next_fit_s = t + self.REFIT_S
            self._refit(width, height)

    def _refit(self, width: int, height: int) -> None:
        full = [b for b in self._bins if len(b) >= self.MIN_PER_BIN]
        if len(full) < self.MIN_BINS:
            return
        med = np.array([np.median(np.array(b), axis=0) for b in full])  # (m, 2): y, h
        ys, hs = med[:, 0], med[:, 1]
        if float(ys.max() - ys.min()) < self.MIN_SPAN * height:
            return
        slope, icept = (float(v) for v in np.polyfit(ys, hs, 1))
        if slope <= 0.0:
            return  # people do not grow downward: not a floor seen from above the crowd
        horizon = -icept / slope
        if horizon >= float(ys.min()):
            return
        error = float(np.median(np.abs(slope * ys + icept - hs) / hs))
        if error > self.MAX_ERROR:
            return
        self.fit = PeopleFit(slope, horizon, sum(len(b) for b in full), len(full), round(error, 4))
        self.model = from_people(
            slope,
            horizon,
            width,
            person_height_m=self.person_height_m,
            hfov_deg=self.hfov_deg,
        )


class CameraGround:
    """The ground a camera's rules measure on: the user's calibration, else an estimate.

    Args:
        camera_id: The camera (for messages).
        calibrated: The user's model, or ``None``.
        estimator: Learns one from people when there is no calibration (``None``:
            rules measure in the picture).
    """

    def __init__(
        self,
        camera_id: str,
        calibrated: GroundModel | None = None,
        estimator: GroundEstimator | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.calibrated = calibrated
        self.estimator = estimator if calibrated is None else None
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
            f"the {width}x{height} picture; the camera's rules measure in the picture "
            "until it is fixed"
        )
        self.calibrated = None
        return self.problem

    def update(self, tracks: Detections, t: float, width: int, height: int) -> None:
        """Feed the estimator (if any) one frame's tracks (see
        :meth:`GroundEstimator.observe`)."""
        if self.estimator is not None:
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
        if model is not None and fit is not None:
            out["horizon_y"] = round(fit.horizon_y, 1)
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
