"""YOLOv5 / YOLOv8 decoders and layout inference on hand-built tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.decoders.raw import RawDetections
from detectors.decoders.registry import UnknownLayoutError, get_decoder, known_layouts
from detectors.decoders.yolo import (
    YoloDecodeError,
    decode_yolov5,
    decode_yolov8,
    infer_yolo_layout,
)
from detectors.spec import ModelSpec

pytestmark = pytest.mark.unit


def spec3(layout: str = "yolov8") -> ModelSpec:
    return ModelSpec(
        name="t",
        path=Path("x.onnx"),
        layout=layout,  # type: ignore[arg-type]
        class_names=("person", "car", "dog"),
        input_size=(64, 64),
    )


def v8_tensor() -> np.ndarray:
    """[2, 7, 4]: batch 0 has a 'car' at anchor 1 and a weak 'dog' at anchor 3."""
    out = np.zeros((2, 4 + 3, 4), np.float32)
    anchors = [[10, 10, 10, 10], [20, 20, 20, 20], [30, 30, 6, 6], [40, 40, 10, 10]]  # cx cy w h
    out[:, 0:4, :] = np.array(anchors, np.float32).T
    out[0, 4 + 1, 1] = 0.9  # car
    out[0, 4 + 0, 1] = 0.2  # lower person score on the same anchor
    out[0, 4 + 2, 3] = 0.3  # weak dog
    out[1, 4 + 0, 0] = 0.6  # batch 1: person at anchor 0
    return out


def test_yolov8_decodes_boxes_scores_classes_per_batch_item() -> None:
    res = decode_yolov8([v8_tensor()], spec3(), 0.25)
    assert len(res) == 2 and all(isinstance(r, RawDetections) for r in res)
    r0 = res[0]
    order = np.argsort(-r0.score)
    np.testing.assert_allclose(r0.score[order], [0.9, 0.3])
    assert r0.class_id[order].tolist() == [1, 2]
    # anchor 1: cx=20, cy=20, w=20, h=20 -> [10, 10, 30, 30]; anchor 3: cx=40,cy=40,w=10,h=10
    np.testing.assert_allclose(r0.xyxy[order], [[10, 10, 30, 30], [35, 35, 45, 45]])
    assert r0.xyxy.dtype == np.float32 and r0.class_id.dtype == np.int64
    r1 = res[1]
    assert r1.class_id.tolist() == [0]
    np.testing.assert_allclose(r1.xyxy, [[5, 5, 15, 15]])


def test_yolov8_threshold_is_inclusive_and_can_empty() -> None:
    res = decode_yolov8([v8_tensor()], spec3(), 0.3)
    assert sorted(res[0].score.tolist()) == pytest.approx([0.3, 0.9])
    res = decode_yolov8([v8_tensor()], spec3(), 0.95)
    assert [len(r) for r in res] == [0, 0]
    assert res[0].xyxy.shape == (0, 4)


def test_yolov5_score_is_obj_times_cls() -> None:
    out = np.zeros((1, 3, 5 + 3), np.float32)
    out[0, :, 0:4] = [[50, 50, 20, 10], [10, 10, 4, 4], [30, 30, 10, 10]]
    out[0, 0, 4], out[0, 0, 5:] = 0.8, [0.1, 0.9, 0.5]  # car 0.72
    out[0, 1, 4], out[0, 1, 5:] = 0.5, [0.9, 0.0, 0.0]  # person 0.45
    out[0, 2, 4], out[0, 2, 5:] = 0.2, [1.0, 1.0, 1.0]  # obj too low
    (r,) = decode_yolov5([out], spec3("yolov5"), 0.4)
    order = np.argsort(-r.score)
    np.testing.assert_allclose(r.score[order], [0.72, 0.45], rtol=1e-6)
    assert r.class_id[order].tolist() == [1, 0]
    np.testing.assert_allclose(r.xyxy[order], [[40, 45, 60, 55], [8, 8, 12, 12]])


def test_infer_layout() -> None:
    assert infer_yolo_layout((1, 84, 8400), 80) == "yolov8"
    assert infer_yolo_layout(("batch", 22, 2100), 18) == "yolov8"
    assert infer_yolo_layout([1, 25200, 85], 80) == "yolov5"
    assert infer_yolo_layout([None, 6300, 85], 80) == "yolov5"
    with pytest.raises(YoloDecodeError, match="ambiguous"):
        infer_yolo_layout((1, 84, 85), 80)
    with pytest.raises(YoloDecodeError, match="unknown"):
        infer_yolo_layout((1, 8400, 84), 80)  # transposed v8: not a known export
    with pytest.raises(YoloDecodeError):
        infer_yolo_layout((1, 84), 80)


def test_class_count_mismatch_is_reported_with_shape() -> None:
    with pytest.raises(YoloDecodeError, match=r"\(1, 84, 10\)"):
        decode_yolov8([np.zeros((1, 84, 10), np.float32)], spec3(), 0.1)
    with pytest.raises(YoloDecodeError):
        decode_yolov5([np.zeros((1, 10, 85), np.float32)], spec3("yolov5"), 0.1)


def test_registry() -> None:
    assert get_decoder("yolov8") is decode_yolov8
    assert get_decoder("yolov5") is decode_yolov5
    assert {"nanodet", "yolov5", "yolov8"} <= set(known_layouts())
    with pytest.raises(UnknownLayoutError, match="ssd"):
        get_decoder("ssd")


def test_registry_resolves_nanodet_lazily() -> None:
    pytest.importorskip("detectors.decoders.nanodet")
    from detectors.decoders.nanodet import decode_nanodet

    assert get_decoder("nanodet") is decode_nanodet
