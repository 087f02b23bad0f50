"""What a detector needs to know about an ONNX model to feed it and read its outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Output layouts the detectors package can decode (one decoder module each):
#   nanodet  - NanoDet(-m/-plus) head split per stride: for each stride s in ``strides``
#              two outputs, class scores [B, N_s, C] (already sigmoid) and box
#              distributions [B, N_s, 4 * (reg_max + 1)] (left, top, right, bottom).
#   yolov5   - Ultralytics YOLOv5 export: [B, N, 5 + C] rows (cx, cy, w, h, obj, cls...).
#   yolov8   - Ultralytics YOLOv8 / YOLO11 export: [B, 4 + C, N] (cx, cy, w, h, cls...).
Layout = Literal["nanodet", "yolov5", "yolov8"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How to run and decode one ONNX detector.

    Attributes:
        name: Model name as registered (e.g. ``nanodet-g``).
        path: Path of the ``.onnx`` file.
        layout: Output layout, chooses the decoder (see ``Layout``).
        class_names: Class names indexed by class id (COCO-80 for the default model).
        input_size: Network input ``(width, height)`` in pixels.
        input_layout: ``"NHWC"`` or ``"NCHW"`` for the input tensor.
        channel_order: ``"RGB"`` or ``"BGR"`` channel order the network expects.
        mean: Per-channel value subtracted after scaling by ``scale`` (network channel order).
        std: Per-channel divisor applied after ``mean``.
        scale: Pixel values are multiplied by this first (e.g. ``1/255``).
        letterbox: Keep aspect ratio and pad (True) or stretch to ``input_size`` (False).
        pad_value: Grey level of the letterbox padding, 0-255.
        strides: Feature strides of the head (nanodet layout only), pixels.
        reg_max: Largest bin index of the distribution head (nanodet: 10, i.e. 11 bins).
        dynamic_batch: The graph accepts any batch size (else batches run one by one).
    """

    name: str
    path: Path
    layout: Layout
    class_names: Sequence[str]
    input_size: tuple[int, int]
    input_layout: Literal["NHWC", "NCHW"] = "NCHW"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0 / 255.0
    letterbox: bool = True
    pad_value: int = 114
    strides: tuple[int, ...] = (8, 16, 32)
    reg_max: int = 10
    dynamic_batch: bool = True
