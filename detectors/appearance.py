"""What a tracked object looks like, in words and numbers: named clothing colours.

For forensic search ("a man in a red top"), each person's box is split into an *upper*
band (torso: 18-50 % of the box height from the top) and a *lower* band (legs: 55-92 %),
each narrowed to the central half of the box width, where the body is and the background
is least.  Every pixel of a band is given one of :data:`COLOUR_NAMES` by its HSV value
(see :func:`name_pixels`), and the band's colour is the most frequent name among its
pixels, with the background's own colours discounted when a background picture is given.

The rules are simple on purpose: a CCTV picture's colours are those of its light, and
named colours with wide bins survive that better than fine distinctions.  They were set on
the people of the accuracy suite's sprite bank after those were hand-labelled
(``benchmarks/accuracy/colour_labels.json``); ``python -m benchmarks.colour_accuracy``
measures them per colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

COLOUR_NAMES: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
"""The colours a search may name (a witness's words, wide on purpose)."""

UPPER_BAND = (0.18, 0.50)
"""Rows of the upper body, as fractions of the box height from its top."""
LOWER_BAND = (0.55, 0.92)
"""Rows of the lower body."""
CENTRE = (0.25, 0.75)
"""Columns kept, as fractions of the box width (the body, not the background beside it)."""

DARK_V = 55
"""HSV value (0-255) below which a pixel is black, whatever its hue."""
GREY_S = 45
"""HSV saturation below which a pixel is grey, white or black by its value."""
WHITE_V = 185
"""Value from which an unsaturated pixel is white."""

# Hue bins, OpenCV hue 0-179 (degrees / 2): (upper bound exclusive, name).
_HUES: tuple[tuple[int, str], ...] = (
    (8, "red"),
    (20, "orange"),
    (34, "yellow"),
    (85, "green"),
    (128, "blue"),
    (148, "purple"),
    (168, "pink"),
    (180, "red"),
)


def name_pixels(hsv: U8) -> npt.NDArray[np.int8]:
    """The colour index (into :data:`COLOUR_NAMES`) of each pixel of ``hsv`` ``(..., 3)``
    (OpenCV HSV, uint8).

    Dark pixels (value < ``DARK_V``) are black; unsaturated ones (saturation <
    ``GREY_S``) grey, or white from ``WHITE_V``; the rest are named by hue, where an
    orange hue that is dim (value < 160), or a red one that is dim (< 110) and dull
    (saturation < 150), is brown.
    """
    h = hsv[..., 0].astype(np.int16)
    s = hsv[..., 1].astype(np.int16)
    v = hsv[..., 2].astype(np.int16)
    out = np.full(h.shape, COLOUR_NAMES.index("grey"), np.int8)
    lo = 0
    for hi, name in _HUES:
        out[(h >= lo) & (h < hi)] = COLOUR_NAMES.index(name)
        lo = hi
    out[(h >= 8) & (h < 20) & (v < 160)] = COLOUR_NAMES.index("brown")
    out[((h < 8) | (h >= 168)) & (v < 110) & (s < 150)] = COLOUR_NAMES.index("brown")
    grey = s < GREY_S
    out[grey] = COLOUR_NAMES.index("grey")
    out[grey & (v >= WHITE_V)] = COLOUR_NAMES.index("white")
    out[v < DARK_V] = COLOUR_NAMES.index("black")
    return out


@dataclass(frozen=True, slots=True)
class BodyColours:
    """A person's named colours.

    Attributes:
        upper: Dominant colour of the upper body (a :data:`COLOUR_NAMES` entry).
        lower: Dominant colour of the lower body.
        upper_share: Share of the upper band's counted pixels with that colour, [0, 1].
        lower_share: The same for the lower band.
    """

    upper: str
    lower: str
    upper_share: float
    lower_share: float


def _band(image: U8, box: Sequence[float], rows: tuple[float, float]) -> tuple[slice, slice] | None:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = image.shape[:2]
    r0, r1 = int(max(0.0, y1 + rows[0] * h)), int(min(height, y1 + rows[1] * h))
    c0, c1 = int(max(0.0, x1 + CENTRE[0] * w)), int(min(width, x1 + CENTRE[1] * w))
    if r1 - r0 < 2 or c1 - c0 < 2:
        return None
    return slice(r0, r1), slice(c0, c1)


def _dominant(names: npt.NDArray[np.int8], keep: npt.NDArray[np.bool_]) -> tuple[str, float]:
    counted = names[keep]
    if counted.size == 0:
        counted = names.ravel()
    counts = np.bincount(counted.astype(np.int64), minlength=len(COLOUR_NAMES))
    best = int(np.argmax(counts))
    return COLOUR_NAMES[best], float(counts[best] / max(1, counted.size))


def body_colours(
    image_bgr: U8, box: Sequence[float], background_bgr: U8 | None = None
) -> BodyColours | None:
    """The named upper and lower colours of the person in ``box`` of ``image_bgr``.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame.
        box: ``(x1, y1, x2, y2)`` pixels of the frame.
        background_bgr: The scene without people, same size as the frame, or ``None``.
            When given, pixels within 30 grey levels of it in every channel (the
            background showing through) are not counted.

    Returns:
        The colours, or ``None`` for a box too small to tell (a band under 2 x 2 px).
    """
    bands = [_band(image_bgr, box, UPPER_BAND), _band(image_bgr, box, LOWER_BAND)]
    if any(b is None for b in bands):
        return None
    out: list[tuple[str, float]] = []
    for band in bands:
        assert band is not None
        patch = image_bgr[band]
        names = name_pixels(np.asarray(cv2.cvtColor(patch, cv2.COLOR_BGR2HSV), np.uint8))
        if background_bgr is not None:
            diff = np.abs(patch.astype(np.int16) - background_bgr[band].astype(np.int16))
            keep = diff.max(axis=2) > 30
        else:
            keep = np.ones(names.shape, bool)
        out.append(_dominant(names, keep))
    (upper, us), (lower, ls) = out
    return BodyColours(upper, lower, round(us, 3), round(ls, 3))


BODY_BAND = (0.15, 0.85)
"""Rows (and columns) of a non-person object's body, as fractions of its box: its middle,
where the paint is and the road and the sky are least."""
MAX_BAND_PX = 2048
"""A band larger than this many pixels is subsampled to about this many (the colour shares
of a large box do not need every pixel)."""


def band_shares(
    image_bgr: U8, box: Sequence[float], rows: tuple[float, float], cols: tuple[float, float]
) -> npt.NDArray[np.float32] | None:
    """The share of each named colour among the pixels of one band of ``box``.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame.
        box: ``(x1, y1, x2, y2)`` pixels of the frame.
        rows: The band's rows, fractions of the box height from its top.
        cols: The band's columns, fractions of the box width from its left.

    Returns:
        ``(len(COLOUR_NAMES),)`` float32 shares summing to 1, or ``None`` for a band
        under 2 x 2 pixels.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = image_bgr.shape[:2]
    r0, r1 = int(max(0.0, y1 + rows[0] * h)), int(min(height, y1 + rows[1] * h))
    c0, c1 = int(max(0.0, x1 + cols[0] * w)), int(min(width, x1 + cols[1] * w))
    if r1 - r0 < 2 or c1 - c0 < 2:
        return None
    step = max(1, int(((r1 - r0) * (c1 - c0) / MAX_BAND_PX) ** 0.5))
    patch = np.ascontiguousarray(image_bgr[r0:r1:step, c0:c1:step])
    names = name_pixels(np.asarray(cv2.cvtColor(patch, cv2.COLOR_BGR2HSV), np.uint8))
    counts = np.bincount(names.ravel().astype(np.int64), minlength=len(COLOUR_NAMES))
    return (counts / max(1, names.size)).astype(np.float32)


def part_shares(
    image_bgr: U8, box: Sequence[float], *, person: bool
) -> dict[str, npt.NDArray[np.float32]]:
    """The colour shares of each part of the object in ``box``: ``upper`` and ``lower``
    for a person (the bands of :func:`body_colours`), ``body`` for anything else.

    Returns:
        Part name -> ``(len(COLOUR_NAMES),)`` float32 shares; a part whose band is too
        small is left out.
    """
    if person:
        bands = {"upper": (UPPER_BAND, CENTRE), "lower": (LOWER_BAND, CENTRE)}
    else:
        bands = {"body": (BODY_BAND, BODY_BAND)}
    out: dict[str, npt.NDArray[np.float32]] = {}
    for part, (rows, cols) in bands.items():
        shares = band_shares(image_bgr, box, rows, cols)
        if shares is not None:
            out[part] = shares
    return out


def dominant(shares: npt.NDArray[np.floating]) -> tuple[str, float]:
    """The most frequent colour of ``shares`` ``(len(COLOUR_NAMES),)`` and its share."""
    best = int(np.argmax(shares))
    total = float(np.sum(shares))
    return COLOUR_NAMES[best], float(shares[best] / total) if total > 0 else 0.0
