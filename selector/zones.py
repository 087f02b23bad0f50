"""Polygon zones drawn on a camera image, judged by where objects touch the floor."""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt

from detectors.detections import Detections

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Distance (px) within which a point counts as lying on the polygon's boundary.
BOUNDARY_TOL_PX = 1e-6


class ZoneError(ValueError):
    """An invalid zone definition; the message names the zone and the problem."""

    def __init__(self, zone: str, problem: str) -> None:
        super().__init__(f"zone {zone!r}: {problem}")
        self.zone = zone
        self.problem = problem


def _cross(o: F64, a: F64, b: F64) -> F64:
    """z of ``(a - o) x (b - o)`` for broadcastable ``(..., 2)`` arrays."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (
        b[..., 0] - o[..., 0]
    )


def _segments_intersect(p1: F64, p2: F64, q1: F64, q2: F64) -> bool:
    """Whether closed segments ``p1p2`` and ``q1q2`` (each ``(2,)``) share a point."""
    d1, d2 = float(_cross(q1, q2, p1)), float(_cross(q1, q2, p2))
    d3, d4 = float(_cross(p1, p2, q1)), float(_cross(p1, p2, q2))
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_seg(a: F64, b: F64, p: F64, d: float) -> bool:
        return d == 0 and bool(np.all(np.minimum(a, b) <= p) and np.all(p <= np.maximum(a, b)))

    return (
        on_seg(q1, q2, p1, d1)
        or on_seg(q1, q2, p2, d2)
        or on_seg(p1, p2, q1, d3)
        or on_seg(p1, p2, q2, d4)
    )


def _shoelace(poly: F64) -> float:
    """Signed area of a ``(k, 2)`` polygon (px²; positive = counter-clockwise in y-up axes)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _clip_to_rect(poly: F64, width: float, height: float) -> F64:
    """Sutherland-Hodgman clip of ``poly`` ``(k, 2)`` to ``[0, width] x [0, height]``.

    Valid for concave subjects as far as the *area* of the result is concerned
    (degenerate connecting edges along the rectangle have no area).
    """
    out = [(float(x), float(y)) for x, y in poly.tolist()]
    # Half-planes as (axis, bound, sign): keep points with sign * (p[axis] - bound) >= 0.
    for axis, bound, sign in ((0, 0.0, 1.0), (0, width, -1.0), (1, 0.0, 1.0), (1, height, -1.0)):
        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            cur_in = sign * (cur[axis] - bound) >= 0
            prev_in = sign * (prev[axis] - bound) >= 0
            if cur_in != prev_in:  # the edge prev -> cur crosses the bound
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
    return np.array(out, np.float64).reshape(-1, 2)


class PolygonZone:
    """A named polygon in the pixel coordinates of one camera's frames.

    Args:
        name: Zone name (used in events and messages).
        polygon: Vertices, shape ``(k, 2)`` with ``k >= 3``, pixels ``(x, y)`` with x
            right and y down, in drawing order (either orientation).  A closing vertex
            equal to the first is dropped.
        weight: Importance of the zone, a multiplier for the event priority
            (see :func:`selector.priority.priority`), finite and >= 0.

    Raises:
        ZoneError: If the polygon is not a finite ``(k, 2)`` array with ``k >= 3``
            distinct consecutive vertices, has zero area or intersects itself, or
            ``weight`` is negative or not finite.
    """

    def __init__(self, name: str, polygon: npt.ArrayLike, weight: float = 1.0) -> None:
        self.name = name
        try:
            poly = np.array(polygon, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ZoneError(name, f"polygon is not an array of numbers: {polygon!r}") from e
        if poly.ndim != 2 or poly.shape[1] != 2:
            raise ZoneError(name, f"polygon must have shape (k, 2), got {poly.shape}")
        if not np.all(np.isfinite(poly)):
            raise ZoneError(name, f"polygon has non-finite coordinates: {poly.tolist()}")
        if len(poly) >= 2 and np.array_equal(poly[0], poly[-1]):
            poly = poly[:-1]
        if len(poly) < 3:
            raise ZoneError(name, f"polygon needs at least 3 vertices, got {len(poly)}")
        repeated = np.flatnonzero(np.all(poly == np.roll(poly, -1, axis=0), axis=1))
        if repeated.size:
            raise ZoneError(
                name, f"vertex {int(repeated[0])} {poly[repeated[0]].tolist()} is repeated"
            )
        k = len(poly)
        for i in range(k):
            for j in range(i + 2, k):
                if i == 0 and j == k - 1:
                    continue  # adjacent through the closing edge
                if _segments_intersect(poly[i], poly[(i + 1) % k], poly[j], poly[(j + 1) % k]):
                    raise ZoneError(
                        name, f"polygon intersects itself (edges {i} and {j}): {poly.tolist()}"
                    )
        if abs(_shoelace(poly)) == 0.0:
            raise ZoneError(name, f"polygon has zero area: {poly.tolist()}")
        if not (math.isfinite(weight) and weight >= 0.0):
            raise ZoneError(name, f"weight must be finite and >= 0, got {weight!r}")
        self.polygon: F64 = poly
        self.weight = float(weight)

    def __repr__(self) -> str:
        return f"PolygonZone({self.name!r}, {self.polygon.tolist()!r}, weight={self.weight})"

    def contains(self, points: npt.ArrayLike) -> BoolArray:
        """Which points lie in the zone.

        Even-odd ray casting, vectorised over points x edges.  Points on the boundary
        (within ``BOUNDARY_TOL_PX``), vertices included, count as *inside*.

        Args:
            points: ``(n, 2)`` pixel coordinates ``(x, y)``.

        Returns:
            ``(n,)`` bool.
        """
        p = np.asarray(points, np.float64).reshape(-1, 2)[:, None, :]  # (n, 1, 2)
        a = self.polygon[None, :, :]  # (1, k, 2) edge starts
        b = np.roll(self.polygon, -1, axis=0)[None, :, :]  # edge ends
        px, py = p[..., 0], p[..., 1]
        ax, ay, bx, by = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
        # Crossing test: edge straddles the horizontal line through p (half-open in y),
        # and the crossing lies to the right of p.
        straddles = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = ax + (py - ay) * (bx - ax) / (by - ay)
        crossings = np.count_nonzero(straddles & (px < x_cross), axis=1)
        inside: BoolArray = (crossings % 2) == 1
        # Boundary: distance to some edge below the tolerance.
        ex, ey = bx - ax, by - ay
        t = np.clip(((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist2 = (ax + t * ex - px) ** 2 + (ay + t * ey - py) ** 2
        on_edge = np.any(dist2 <= BOUNDARY_TOL_PX**2, axis=1)
        result: BoolArray = inside | on_edge
        return result

    def trigger(self, dets: Detections) -> BoolArray:
        """Which detections stand in the zone, judged by their ground point.

        The ground point is the bottom centre of the box (``dets.ground_points``): a
        box whose top reaches into the zone while its feet are outside is *outside*.

        Returns:
            ``(n,)`` bool, aligned with the rows of ``dets``.
        """
        if len(dets) == 0:
            return np.zeros((0,), np.bool_)
        return self.contains(dets.ground_points)

    def check_within_frame(self, width: int, height: int) -> list[str]:
        """Human-readable problems of this zone on a ``width`` x ``height`` frame.

        Reports a zone lying entirely outside the frame (one message), or else the
        vertices outside ``[0, width] x [0, height]`` and the share of the zone's area
        they take out of the frame.  Empty list when all is well.  Messages do not
        repeat the zone's name; they read on after a prefix such as
        ``f"zone {name!r} of camera {camera_id!r}: "``, e.g. ``"lies entirely outside
        the 768x576 frame; it can never trigger"``.

        Raises:
            ValueError: If ``width`` or ``height`` is not positive.
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        size = f"{width}x{height}"
        clipped = _clip_to_rect(self.polygon, float(width), float(height))
        if len(clipped) < 3 or abs(_shoelace(clipped)) == 0.0:
            return [f"lies entirely outside the {size} frame; it can never trigger"]
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        outside = np.flatnonzero((x < 0) | (x > width) | (y < 0) | (y > height))
        if outside.size == 0:
            return []
        pts = ", ".join(f"({x[i]:g}, {y[i]:g})" for i in outside.tolist())
        share = 1.0 - abs(_shoelace(clipped)) / abs(_shoelace(self.polygon))
        return [
            f"{outside.size} of {len(self.polygon)} vertices lie outside the {size} frame: "
            f"{pts}; {share:.0%} of its area is outside"
        ]
