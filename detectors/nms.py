"""Class-wise non-maximum suppression with per-class confidence thresholds.

Uses OpenCV's ``cv2.dnn.NMSBoxesBatched`` (class-aware NMS: boxes of different class
ids never suppress each other).  Verified behaviour (OpenCV 4.x):

* boxes are ``(x, y, w, h)`` rectangles (``Rect2d``), not ``xyxy``; IoU is the plain
  continuous area ratio (no "+1" pixel convention);
* a box is suppressed when its IoU with a kept higher-scoring box of the same class is
  *strictly greater* than ``nms_threshold``;
* it keeps boxes whose score is *strictly greater* than ``score_threshold`` (which
  must be >= 0: 0 is passed, so rows with score <= 0 are never kept) and returns the
  kept indices sorted by decreasing score;
* it is greedy O(n * kept) over *all* classes at once; measured on 2 cores: 100 boxes
  0.1 ms, 500 boxes 1.5 ms, 2000 boxes 18 ms, 8400 boxes (all anchors of a 640 YOLO,
  80 classes) 0.46 s, hence the ``max_candidates`` cap;
* it separates classes by shifting every box by ``class_id * (max_coordinate + 1)``,
  which is only correct for non-negative coordinates, so boxes are first translated
  so that the smallest coordinate is 0 (IoU is translation invariant).

Score thresholds are applied here (``>=``), before NMS, not by OpenCV.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import cv2
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class NmsError(ValueError):
    """Inconsistent inputs to ``nms`` (shapes or threshold values)."""


def score_thresholds(
    class_id: IntArray, default: float, class_thresholds: Mapping[int, float] | None = None
) -> FloatArray:
    """Per-row confidence threshold, shape ``(n,)`` float32.

    ``class_thresholds[c]`` overrides ``default`` for rows of class ``c``.
    """
    thr = np.full(class_id.shape, default, np.float32)
    if class_thresholds:
        for cls, value in class_thresholds.items():
            thr[class_id == cls] = value
    return thr


def nms(
    xyxy: FloatArray,
    score: FloatArray,
    class_id: IntArray,
    *,
    iou_threshold: float = 0.5,
    conf_threshold: float = 0.0,
    class_thresholds: Mapping[int, float] | None = None,
    max_detections: int | None = None,
    max_candidates: int | None = None,
) -> IntArray:
    """Class-wise NMS; returns indices of the kept rows, highest score first.

    Args:
        xyxy: Boxes ``(n, 4)`` float32 ``[x1, y1, x2, y2]`` in any pixel frame.
        score: Confidences ``(n,)`` float32.
        class_id: Class ids ``(n,)`` int64; only boxes of equal class suppress each other.
        iou_threshold: A box whose IoU with a kept box of its class is greater than this
            is dropped, in [0, 1].
        conf_threshold: Rows with ``score < conf_threshold`` are dropped before NMS.
        class_thresholds: Per-class override of ``conf_threshold`` (class id -> threshold).
        max_detections: Keep at most this many rows (the best ones); ``None`` = no cap.
        max_candidates: Only this many best-scoring rows above threshold enter NMS
            (bounds the quadratic cost); ``None`` = all.

    Returns:
        int64 indices into the inputs, shape ``(k,)``, sorted by decreasing score.

    Raises:
        NmsError: shapes disagree, or ``iou_threshold``/``max_detections`` out of range.
    """
    n = xyxy.shape[0] if xyxy.ndim == 2 else -1
    if xyxy.ndim != 2 or xyxy.shape[1] != 4 or score.shape != (n,) or class_id.shape != (n,):
        raise NmsError(
            f"need xyxy (n, 4), score (n,), class_id (n,); got {xyxy.shape}, "
            f"{score.shape}, {class_id.shape}"
        )
    if not 0.0 <= iou_threshold <= 1.0:
        raise NmsError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if max_detections is not None and max_detections < 0:
        raise NmsError(f"max_detections must be >= 0, got {max_detections}")
    if max_candidates is not None and max_candidates < 1:
        raise NmsError(f"max_candidates must be >= 1, got {max_candidates}")
    thresholds = score_thresholds(class_id, conf_threshold, class_thresholds)
    candidates = np.flatnonzero(score >= thresholds)
    if candidates.size == 0 or max_detections == 0:
        return np.empty((0,), np.int64)
    if max_candidates is not None and candidates.size > max_candidates:
        best = np.argpartition(-score[candidates], max_candidates - 1)[:max_candidates]
        candidates = np.sort(candidates[best])
    boxes = xyxy[candidates].astype(np.float64)
    # xyxy -> xywh, translated so every coordinate is >= 0 (see module docstring).
    boxes[:, 2:] -= boxes[:, :2]
    boxes[:, :2] -= boxes[:, :2].min()
    np.maximum(boxes[:, 2:], 0.0, out=boxes[:, 2:])
    kept = cv2.dnn.NMSBoxesBatched(
        boxes.tolist(),
        score[candidates].tolist(),
        class_id[candidates].tolist(),
        0.0,
        float(iou_threshold),
    )
    order = candidates[np.asarray(kept, np.int64).reshape(-1)]
    if max_detections is not None:
        order = order[:max_detections]
    return order.astype(np.int64, copy=False)


__all__ = ["NmsError", "nms", "score_thresholds"]
