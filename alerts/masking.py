"""Privacy masks: people in evidence pictures blurred beyond recognition.

Evidence shows people, and personal-information law (Korea's PIPA among others) expects
them protected: Argus serves every snapshot and clip masked by default and keeps the
original for the roles allowed to lift the mask (see the API's ``?unmasked=true``).

A masked region is the person's box grown by ``GROW`` of its height on every side (boxes
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

GROW = 0.15
"""Each side of a box grows by this share of the box's larger side (a person's height)..."""
MIN_GROW_PX = 4.0
"""... and by at least this many pixels."""
FEATHER = 0.15
"""The blur fades out over this share of the grown box's larger side beyond it..."""
MIN_FEATHER_PX = 4
"""... and over at least this many pixels."""
SHRINK = 16
"""The region is shrunk this many times (at least to 1 pixel) and scaled back up."""

Boxes = npt.NDArray[np.float32]
"""``(n, 4)`` float32 boxes ``[x1, y1, x2, y2]`` in pixels."""

WHOLE_PICTURE: Boxes = np.array([[-1e6, -1e6, 1e6, 1e6]], np.float32)
"""A box over any picture (clipped to it when grown): blur everything."""


def person_boxes(dets: Detections, person_ids: Iterable[int]) -> Boxes:
    """The boxes of the detections whose class is a person, ``(n, 4)`` float32 pixels."""
    ids = np.asarray(sorted(set(person_ids)), np.int64)
    if len(dets) == 0 or ids.size == 0:
        return np.empty((0, 4), np.float32)
    keep = np.isin(dets.class_id, ids)
    return np.asarray(dets.xyxy[keep], np.float32).reshape(-1, 4)


def grown(boxes: Boxes, width: int, height: int) -> npt.NDArray[np.int32]:
    """``boxes`` grown by ``GROW`` of their larger side (at least ``MIN_GROW_PX``) on every
    side, clipped to a
    ``width`` x ``height`` picture, as int32 ``[x1, y1, x2, y2]`` (empty boxes dropped)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if b.size == 0:
        return np.empty((0, 4), np.int32)
    w = np.maximum(b[:, 2] - b[:, 0], 0.0)
    h = np.maximum(b[:, 3] - b[:, 1], 0.0)
    g = np.maximum(np.maximum(w, h) * GROW, MIN_GROW_PX)  # a standing person's arms, a step
    gx = gy = g
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

    The blur fades out over ``FEATHER`` of the box's size beyond the grown box (a smooth
    step, no seam: a hard edge would itself be a sharp line across whoever is near it).
    Overlapping regions are blurred once each, in turn.
    """
    out = image.copy()
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in grown(merged(boxes), w, h).tolist():
        f = max(MIN_FEATHER_PX, int(FEATHER * max(x2 - x1, y2 - y1)))
        rx1, ry1, rx2, ry2 = max(x1 - f, 0), max(y1 - f, 0), min(x2 + f, w), min(y2 + f, h)
        roi = out[ry1:ry2, rx1:rx2]
        rh, rw = roi.shape[:2]
        small = cv2.resize(
            roi, (max(1, rw // SHRINK), max(1, rh // SHRINK)), interpolation=cv2.INTER_AREA
        )
        blurred = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        xs = np.arange(rx1, rx2, dtype=np.float32) + 0.5
        ys = np.arange(ry1, ry2, dtype=np.float32) + 0.5
        dx = np.maximum(np.maximum(x1 - xs, xs - x2), 0.0)
        dy = np.maximum(np.maximum(y1 - ys, ys - y2), 0.0)
        d = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2) / f
        ramp = np.clip(1.0 - d, 0.0, 1.0)
        alpha = (ramp * ramp * (3.0 - 2.0 * ramp))[..., None]  # smoothstep: 1 inside, 0 at f
        mixed = blurred * alpha + roi.astype(np.float32) * (1.0 - alpha)
        out[ry1:ry2, rx1:rx2] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out


MERGE_OVERLAP = 0.6
"""Boxes that overlap this much (intersection over the smaller) are blurred as one."""


def merged(boxes: Boxes) -> Boxes:
    """``boxes`` with those that overlap by ``MERGE_OVERLAP`` or more replaced by the box
    holding them (the many faint boxes around one person become one), ``(m, 4)`` float32."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(b) < 2:
        return b
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    kept: list[npt.NDArray[np.float32]] = []
    for box in b[np.argsort(-areas)]:
        for i, k in enumerate(kept):
            if _overlap_smaller(k, box) >= MERGE_OVERLAP:
                kept[i] = np.concatenate([np.minimum(k[:2], box[:2]), np.maximum(k[2:], box[2:])])
                break
        else:
            kept.append(box.copy())
    return np.asarray(kept, np.float32).reshape(-1, 4)


def _overlap_smaller(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller) if smaller > 0 else 1.0


def union(boxes: Sequence[Boxes]) -> Boxes:
    """All the boxes of several lists, ``(n, 4)`` float32."""
    parts = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
    return np.concatenate(parts) if parts else np.empty((0, 4), np.float32)


def sharpness(gray: npt.NDArray[np.uint8], where: npt.NDArray[np.bool_] | None = None) -> float:
    """Variance of the Laplacian of a grey picture (over the pixels ``where`` is true, all
    by default): high for detail, ~0 for a smooth one (what the masking tests compare)."""
    if gray.size == 0:
        return 0.0
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    values = lap if where is None else lap[where]
    return float(values.var()) if values.size else 0.0


def _widened(box: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``box`` grown by ``GROW`` of its larger side on every side (not clipped)."""
    g = max(float(max(box[2] - box[0], box[3] - box[1])) * GROW, MIN_GROW_PX)
    return np.asarray(box + np.array([-g, -g, g, g], np.float32), np.float32)


def _inside(box: npt.NDArray[np.float32], other: npt.NDArray[np.float32]) -> float:
    """The share of ``box``'s area that lies within ``other``."""
    w = min(box[2], other[2]) - max(box[0], other[0])
    h = min(box[3], other[3]) - max(box[1], other[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    if w <= 0 or h <= 0 or area <= 0:
        return 0.0
    return float(w * h / area)


def _carried(extent: npt.NDArray[np.float32], box: npt.NDArray[np.float32]) -> Boxes:
    """A whole person's box (``extent``: its size and height in the picture) carried across
    to a faint sighting ``box`` of them (centred on it), joined with it.  The size does not
    grow along a chain of faint sightings: a walking person leaves no smear."""
    dx = (box[0] + box[2]) / 2 - (extent[0] + extent[2]) / 2
    moved = extent + np.array([dx, 0.0, dx, 0.0], np.float32)
    lo, hi = np.minimum(moved[:2], box[:2]), np.maximum(moved[2:], box[2:])
    return np.asarray(np.concatenate([lo, hi]), np.float32)


def held_masks(
    boxes: Sequence[Boxes],
    scores: Sequence[npt.NDArray[np.float32]],
    *,
    strong: float,
    weak: float,
    hold: int,
    link: float = 0.5,
    gap: int = 5,
) -> list[Boxes]:
    """The boxes to blur in each frame of a clip, from its person detections.

    A detection at or above ``strong`` is a person.  One below it but at or above ``weak``
    is a person when it continues one: at least ``link`` of it lies within a person's box
    grown by ``GROW`` in one of the ``gap`` frames before or after it -- hysteresis in
    time, followed forwards and
    backwards, so a person half hidden behind a post, turning, or entering the picture
    stays masked for as long as the detector still sees a trace of them, and the frames
    before their first sure detection (the pre-roll) are covered too.  A faint sighting
    is masked over the whole person's size it continues (the part that shows may be a
    sliver: the box of that person, carried across to it).  A frame's mask is what
    was found within ``hold`` frames of it (a detector that misses one frame leaves no
    gap).

    Args:
        boxes: Per frame, ``(n, 4)`` float32 person boxes in pixels.
        scores: Per frame, ``(n,)`` their scores.
        strong: Score of a sure detection.
        weak: Lowest score of a faint one.
        hold: Frames on either side whose masks a frame also takes.
        link: Share of a faint sighting inside a person's grown box for it to continue
            them.
        gap: Frames apart a faint sighting may be from the person it continues.

    Returns:
        Per frame, the boxes to blur (``(m, 4)`` float32).
    """
    n = len(boxes)
    bx = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
    sc = [np.asarray(s, np.float32).reshape(-1) for s in scores]
    person = [s >= strong for s in sc]
    extent = [b.copy() for b in bx]  # the whole person each box stands for
    for order in (range(n), range(n - 1, -1, -1)) * 2:
        step = 1 if order.step > 0 else -1
        for i in order:
            for a in np.flatnonzero(~person[i] & (sc[i] >= weak)):
                for j in range(i - step, i - step * (gap + 1), -step):
                    if not 0 <= j < n:
                        break
                    hit = next(
                        (
                            c
                            for c in np.flatnonzero(person[j])
                            if _inside(bx[i][a], _widened(bx[j][c])) >= link
                        ),
                        None,
                    )
                    if hit is not None:
                        person[i][a] = True
                        extent[i][a] = _carried(extent[j][hit], bx[i][a])
                        break
    found = [np.concatenate([bx[i][person[i]], extent[i][person[i]]]) for i in range(n)]
    return [union(found[max(0, i - hold) : i + hold + 1]) for i in range(n)]
