"""Privacy masks: people in evidence pictures blurred beyond recognition.

Evidence shows people, and personal-information law (Korea's PIPA among others) expects
them protected: Argus serves every snapshot and clip masked by default and keeps the
original for the roles allowed to lift the mask (see the API's ``?unmasked=true``).

A masked region is the person's box grown by ``GROW`` of its size on every side (boxes
from a detector or a tracker are a little tight, and a person moves between the frames a
mask is computed from), then blurred by shrinking it ``SHRINK`` times and scaling it back
up: what is left are colours and a silhouette, no face, no text, no gait detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from detectors.detections import Detections

GROW = 0.12
"""Each side of a box grows by this share of the box's width (x) or height (y)."""
MIN_GROW_PX = 4.0
"""... and by at least this many pixels."""
SHRINK = 16
"""The region is shrunk this many times (at least to 1 pixel) and scaled back up."""

Boxes = npt.NDArray[np.float32]
"""``(n, 4)`` float32 boxes ``[x1, y1, x2, y2]`` in pixels."""


def person_boxes(dets: Detections, person_ids: Iterable[int]) -> Boxes:
    """The boxes of the detections whose class is a person, ``(n, 4)`` float32 pixels."""
    ids = np.asarray(sorted(set(person_ids)), np.int64)
    if len(dets) == 0 or ids.size == 0:
        return np.empty((0, 4), np.float32)
    keep = np.isin(dets.class_id, ids)
    return np.asarray(dets.xyxy[keep], np.float32).reshape(-1, 4)


def grown(boxes: Boxes, width: int, height: int) -> npt.NDArray[np.int32]:
    """``boxes`` grown by ``GROW`` (at least ``MIN_GROW_PX``) on every side, clipped to a
    ``width`` x ``height`` picture, as int32 ``[x1, y1, x2, y2]`` (empty boxes dropped)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if b.size == 0:
        return np.empty((0, 4), np.int32)
    w = np.maximum(b[:, 2] - b[:, 0], 0.0)
    h = np.maximum(b[:, 3] - b[:, 1], 0.0)
    gx = np.maximum(w * GROW, MIN_GROW_PX)
    gy = np.maximum(h * GROW, MIN_GROW_PX)
    out = np.stack(
        [
            np.floor(b[:, 0] - gx),
            np.floor(b[:, 1] - gy),
            np.ceil(b[:, 2] + gx),
            np.ceil(b[:, 3] + gy),
        ],
        axis=1,
    )
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return out[keep].astype(np.int32)


def mask_people(image: npt.NDArray[np.uint8], boxes: Boxes) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` (``(H, W, 3)`` uint8) with every box's grown region blurred.

    Overlapping regions are blurred once each, in turn (the result is as blurred).
    """
    out = image.copy()
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in grown(boxes, w, h).tolist():
        roi = out[y1:y2, x1:x2]
        rh, rw = roi.shape[:2]
        small = cv2.resize(
            roi, (max(1, rw // SHRINK), max(1, rh // SHRINK)), interpolation=cv2.INTER_AREA
        )
        out[y1:y2, x1:x2] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return out


def union(boxes: Sequence[Boxes]) -> Boxes:
    """All the boxes of several lists, ``(n, 4)`` float32."""
    parts = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
    return np.concatenate(parts) if parts else np.empty((0, 4), np.float32)


def sharpness(gray: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of a grey picture: high for detail, ~0 for a smooth one
    (what the masking tests and ``argus bench`` compare)."""
    if gray.size == 0:
        return 0.0
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
