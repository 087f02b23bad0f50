"""Decoders for Ultralytics YOLO ONNX exports (boxes in network-input pixels).

* ``yolov5``: one output ``[B, N, 5 + C]``, rows ``(cx, cy, w, h, obj, cls_0..cls_C-1)``;
  the confidence of class ``c`` is ``obj * cls_c``.
* ``yolov8`` (also YOLO11): one output ``[B, 4 + C, N]``, columns
  ``(cx, cy, w, h, cls_0..cls_C-1)``, no objectness.

Both are single-label: each anchor keeps its best class.  Scores are already
probabilities in the exported graphs (sigmoid inside), so no activation is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectors.decoders.raw import RawDetections
from detectors.spec import ModelSpec

logger = logging.getLogger(__name__)

YoloLayout = Literal["yolov5", "yolov8"]


class YoloDecodeError(ValueError):
    """A YOLO output tensor whose shape does not fit the layout / class count."""

    def __init__(self, message: str, shape: tuple[int, ...]):
        super().__init__(f"{message} (output shape {shape})")
        self.shape = shape


def infer_yolo_layout(output_shape: Sequence[int | str | None], num_classes: int) -> YoloLayout:
    """Tell a YOLOv5 output ``[B, N, 5+C]`` from a YOLOv8/11 output ``[B, 4+C, N]``.

    Args:
        output_shape: Shape of the (single) output, 3 entries; symbolic/unknown
            dimensions (str or None, e.g. a dynamic batch) are allowed except where needed.
        num_classes: Number of classes ``C`` of the model.

    Returns:
        ``"yolov5"`` or ``"yolov8"``.

    Raises:
        YoloDecodeError: not 3-D, neither layout matches, or both do (ambiguous, only
            possible when ``N`` equals ``5 + C``).
    """
    shape = tuple(output_shape)
    norm = tuple(d if isinstance(d, int) else -1 for d in shape)
    if len(norm) != 3:
        raise YoloDecodeError("YOLO output must be 3-D [B, N, 5+C] or [B, 4+C, N]", norm)
    v5 = norm[2] == 5 + num_classes
    v8 = norm[1] == 4 + num_classes
    if v5 and v8:
        raise YoloDecodeError(
            f"ambiguous YOLO layout for {num_classes} classes: matches both yolov5 "
            f"[B, N, {5 + num_classes}] and yolov8 [B, {4 + num_classes}, N]; set the layout",
            norm,
        )
    if v5:
        return "yolov5"
    if v8:
        return "yolov8"
    raise YoloDecodeError(
        f"unknown YOLO layout for {num_classes} classes: expected [B, N, {5 + num_classes}] "
        f"(yolov5) or [B, {4 + num_classes}, N] (yolov8)",
        norm,
    )


def _cxcywh_to_xyxy(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(n, 4)`` centre/size boxes -> ``(n, 4)`` corner boxes, float32."""
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1).astype(
        np.float32, copy=False
    )


def _single_output(outputs: list[np.ndarray], layout: str) -> npt.NDArray[np.float32]:
    if len(outputs) < 1:
        raise YoloDecodeError(f"{layout} decoder needs one output, got none", ())
    out = np.asarray(outputs[0])
    if out.ndim != 3:
        raise YoloDecodeError(f"{layout} output must be 3-D", tuple(out.shape))
    return out.astype(np.float32, copy=False)


def decode_yolov8(
    outputs: list[np.ndarray], spec: ModelSpec, conf_threshold: float
) -> list[RawDetections]:
    """Decode a YOLOv8/YOLO11 export.

    Args:
        outputs: Session outputs; ``outputs[0]`` is float ``[B, 4 + C, N]`` with
            ``C = len(spec.class_names)``, boxes ``(cx, cy, w, h)`` in input pixels.
        spec: Gives the class count.
        conf_threshold: Keep anchors whose best class score is ``>=`` this.

    Returns:
        ``B`` ``RawDetections`` (xyxy in network-input pixels), unsorted, before NMS.

    Raises:
        YoloDecodeError: the output does not have ``4 + C`` channels.
    """
    out = _single_output(outputs, "yolov8")
    num_classes = len(spec.class_names)
    if out.shape[1] != 4 + num_classes:
        raise YoloDecodeError(
            f"yolov8 output must be [B, {4 + num_classes}, N] for {num_classes} classes",
            tuple(out.shape),
        )
    results: list[RawDetections] = []
    for item in out:  # (4 + C, N)
        cls_scores = item[4:]
        class_id = cls_scores.argmax(axis=0)
        score = np.take_along_axis(cls_scores, class_id[None, :], axis=0)[0]
        keep = np.flatnonzero(score >= conf_threshold)
        results.append(
            RawDetections(
                xyxy=_cxcywh_to_xyxy(item[:4, keep].T),
                score=score[keep].astype(np.float32, copy=False),
                class_id=class_id[keep].astype(np.int64),
            )
        )
    return results


def decode_yolov5(
    outputs: list[np.ndarray], spec: ModelSpec, conf_threshold: float
) -> list[RawDetections]:
    """Decode a YOLOv5 export.

    Args:
        outputs: Session outputs; ``outputs[0]`` is float ``[B, N, 5 + C]`` with
            ``C = len(spec.class_names)``, rows ``(cx, cy, w, h, obj, cls...)`` in input pixels.
        spec: Gives the class count.
        conf_threshold: Keep anchors whose best ``obj * cls`` is ``>=`` this.

    Returns:
        ``B`` ``RawDetections`` (xyxy in network-input pixels), unsorted, before NMS.

    Raises:
        YoloDecodeError: the output does not have ``5 + C`` columns.
    """
    out = _single_output(outputs, "yolov5")
    num_classes = len(spec.class_names)
    if out.shape[2] != 5 + num_classes:
        raise YoloDecodeError(
            f"yolov5 output must be [B, N, {5 + num_classes}] for {num_classes} classes",
            tuple(out.shape),
        )
    results: list[RawDetections] = []
    for item in out:  # (N, 5 + C)
        # Cheap pre-filter: obj * cls <= obj, so rows with obj below the threshold can go.
        rows = item[item[:, 4] >= conf_threshold]
        cls_scores = rows[:, 5:] * rows[:, 4:5]
        class_id = cls_scores.argmax(axis=1) if len(rows) else np.empty((0,), np.int64)
        score = np.take_along_axis(cls_scores, class_id[:, None], axis=1)[:, 0]
        keep = np.flatnonzero(score >= conf_threshold)
        results.append(
            RawDetections(
                xyxy=_cxcywh_to_xyxy(rows[keep, :4]),
                score=score[keep].astype(np.float32, copy=False),
                class_id=class_id[keep].astype(np.int64),
            )
        )
    return results


__all__ = ["YoloDecodeError", "YoloLayout", "decode_yolov5", "decode_yolov8", "infer_yolo_layout"]
