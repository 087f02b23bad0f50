"""Counting lines drawn on a camera image."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class LineError(ValueError):
    """An invalid line definition; the message names the line and the problem."""

    def __init__(self, line: str, problem: str) -> None:
        super().__init__(f"line {line!r}: {problem}")
        self.line = line
        self.problem = problem


class Line:
    """A named segment ``p1 -> p2`` in the pixel coordinates of one camera's frames.

    Side convention (image coordinates, x right, y down): a point ``q`` lies on the
    *positive* side when ``cross(p2 - p1, q - p1) > 0`` and on the *negative* side when
    it is ``< 0``.  A crossing from negative to positive is direction ``"+"``, the other
    way ``"-"``.  With ``p1`` left of ``p2`` on a horizontal line, positive is *below*
    the line (larger y).

    Args:
        name: Line name (used in events).
        points: ``[[x1, y1], [x2, y2]]`` pixels, two distinct finite points.

    Raises:
        LineError: If ``points`` is not two distinct finite points.
    """

    def __init__(self, name: str, points: npt.ArrayLike) -> None:
        self.name = name
        try:
            p = np.array(points, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise LineError(name, f"points are not numbers: {points!r}") from e
        if p.shape != (2, 2):
            raise LineError(name, f"points must have shape (2, 2), got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise LineError(name, f"points must be finite: {p.tolist()}")
        if np.array_equal(p[0], p[1]):
            raise LineError(name, f"the two points are the same: {p.tolist()}")
        self.p1: F64 = p[0]
        self.p2: F64 = p[1]
        self.length = float(math.hypot(*(p[1] - p[0])))

    def __repr__(self) -> str:
        return f"Line({self.name!r}, {[self.p1.tolist(), self.p2.tolist()]!r})"

    def signed_distance(self, points: npt.ArrayLike) -> F64:
        """Signed distance (px) of ``(n, 2)`` points to the infinite line; > 0 positive side."""
        q = np.asarray(points, np.float64).reshape(-1, 2)
        d = self.p2 - self.p1
        cross = d[0] * (q[:, 1] - self.p1[1]) - d[1] * (q[:, 0] - self.p1[0])
        out: F64 = cross / self.length
        return out

    def projection(self, points: npt.ArrayLike) -> F64:
        """Position of the foot of each point along the segment: 0 at ``p1``, 1 at ``p2``."""
        q = np.asarray(points, np.float64).reshape(-1, 2)
        d = self.p2 - self.p1
        out: F64 = ((q - self.p1) @ d) / (self.length**2)
        return out
