"""Class-wise NMS (OpenCV backed) against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.nms import NmsError, nms

pytestmark = pytest.mark.unit


def f32(x: object) -> np.ndarray:
    return np.asarray(x, np.float32)


def i64(x: object) -> np.ndarray:
    return np.asarray(x, np.int64)


def reference_nms(xyxy: np.ndarray, score: np.ndarray, cls: np.ndarray, iou: float) -> list[int]:
    order = sorted(range(len(score)), key=lambda i: -score[i])
    kept: list[int] = []
    for i in order:
        ok = True
        for k in kept:
            if cls[k] != cls[i]:
                continue
            ix = max(0.0, min(xyxy[i, 2], xyxy[k, 2]) - max(xyxy[i, 0], xyxy[k, 0]))
            iy = max(0.0, min(xyxy[i, 3], xyxy[k, 3]) - max(xyxy[i, 1], xyxy[k, 1]))
            inter = ix * iy
            area_i = (xyxy[i, 2] - xyxy[i, 0]) * (xyxy[i, 3] - xyxy[i, 1])
            area_k = (xyxy[k, 2] - xyxy[k, 0]) * (xyxy[k, 3] - xyxy[k, 1])
            if inter / (area_i + area_k - inter) > iou:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


def test_same_class_suppressed_other_class_kept() -> None:
    boxes = f32([[0, 0, 100, 100], [5, 5, 105, 105], [5, 5, 105, 105]])
    keep = nms(boxes, f32([0.9, 0.8, 0.7]), i64([0, 0, 1]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert keep.dtype == np.int64


def test_iou_threshold_is_exact_on_xyxy() -> None:
    # IoU of these two boxes is 50 / 150 = 1/3 (xyxy, no +1 pixel convention).
    boxes = f32([[0, 0, 10, 10], [5, 0, 15, 10]])
    s, c = f32([0.9, 0.8]), i64([3, 3])
    assert nms(boxes, s, c, iou_threshold=0.32).tolist() == [0]
    assert nms(boxes, s, c, iou_threshold=0.34).tolist() == [0, 1]


def test_negative_coordinates_do_not_mix_classes() -> None:
    # Raw cv2.dnn.NMSBoxesBatched suppresses across classes here (class offset trick
    # assumes coordinates >= 0); nms() must not.
    boxes = f32([[-100, -100, -50, -50], [-99, -99, -49, -49]])
    keep = nms(boxes, f32([0.9, 0.8]), i64([0, 1]), iou_threshold=0.5)
    assert sorted(keep.tolist()) == [0, 1]


def test_per_class_thresholds_and_cap() -> None:
    boxes = f32([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]])
    score = f32([0.5, 0.6, 0.3, 0.95])
    cls = i64([0, 1, 1, 2])
    keep = nms(boxes, score, cls, conf_threshold=0.4, class_thresholds={1: 0.7, 2: 0.2})
    assert keep.tolist() == [3, 0]
    keep = nms(boxes, score, cls, conf_threshold=0.25, class_thresholds={0: 0.55})
    assert keep.tolist() == [3, 1, 2]
    assert nms(boxes, score, cls, max_detections=2).tolist() == [3, 1]
    assert nms(boxes, score, cls, max_detections=0).tolist() == []


def test_max_candidates_keeps_only_the_best() -> None:
    boxes = f32([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]])
    score = f32([0.5, 0.6, 0.3, 0.95])
    cls = i64([0, 1, 1, 2])
    assert nms(boxes, score, cls, max_candidates=2).tolist() == [3, 1]
    assert nms(boxes, score, cls, max_candidates=3).tolist() == [3, 1, 0]
    # Boxes that would suppress each other: the winner survives the cap.
    over = f32([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    assert nms(over, f32([0.9, 0.8, 0.1]), i64([0, 0, 0]), max_candidates=2).tolist() == [0]


def test_matches_reference_on_random_boxes() -> None:
    rng = np.random.default_rng(42)
    for trial in range(20):
        n = int(rng.integers(1, 80))
        xy = rng.uniform(-50, 300, size=(n, 2))
        wh = rng.uniform(5, 80, size=(n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        score = (rng.permutation(n).astype(np.float32) / n + 0.01).astype(np.float32)
        cls = rng.integers(0, 3, size=n).astype(np.int64)
        iou = float(rng.uniform(0.2, 0.8))
        got = nms(boxes, score, cls, iou_threshold=iou).tolist()
        want = reference_nms(boxes, score, cls, iou)
        assert got == want, f"trial {trial}"


def test_empty_and_bad_shapes() -> None:
    assert nms(np.empty((0, 4), np.float32), f32([]), i64([])).tolist() == []
    with pytest.raises(NmsError):
        nms(f32([[0, 0, 1, 1]]), f32([0.5, 0.4]), i64([0]))
    with pytest.raises(NmsError):
        nms(f32([[0, 0, 1, 1]]), f32([0.5]), i64([0]), iou_threshold=1.5)
