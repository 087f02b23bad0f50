"""``manifest.json``: everything needed to feed, decode and trust one registered ONNX model.

A registered model lives in ``<models_dir>/<name>/`` as ``model.onnx`` + ``manifest.json``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field

from detectors.spec import Layout, ModelSpec

# Output layouts of pose models (``task: pose``):
#   movenet - MoveNet MultiPose: one output [1, 6, 56]; per person 17 x (y, x, score) then
#             (ymin, xmin, ymax, xmax, score), coordinates normalised to the network input.
PoseLayout = Literal["movenet"]
Task = Literal["detect", "pose"]

MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"

COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip


class ModelManifest(BaseModel):
    """Description of one registered model (saved as ``manifest.json`` next to the ONNX).

    Attributes:
        name: Registered name, also the folder name (``[a-z0-9][a-z0-9._-]*``).
        task: ``"detect"`` (an object detector: ``to_spec`` works) or ``"pose"`` (a pose
            model, e.g. ``movenet-multipose``, run by ``detectors.pose``; never a detector).
        classes: Class names indexed by class id (``["person"]`` for a pose model).
        input_size: Network input ``(width, height)``, pixels.
        input_layout: ``"NCHW"`` or ``"NHWC"``.
        channel_order: ``"RGB"`` or ``"BGR"`` order the network expects.
        mean / std / scale: Normalisation ``(pixel * scale - mean) / std`` per channel
            (network channel order), pixel values 0-255.
        letterbox: Keep aspect ratio and pad (True) or stretch (False).
        pad_value: Letterbox grey level 0-255.
        layout: Output layout, chooses the decoder (``nanodet``/``yolov5``/``yolov8``; a
            pose model: ``movenet``).
        strides: Head strides in pixels (nanodet layout).
        reg_max: Largest distribution bin index (nanodet layout).
        dynamic_batch: The graph accepts any batch size.
        licence: SPDX licence id of the weights.
        source: Where the files came from (package@version + file names, or a path).
        upstream: Human-readable pointer to the original project.
        onnx_file: File name of the ONNX inside the model folder.
        sha256: Hex sha256 of the ONNX file bytes.
        created_at: When the model was registered (timezone-aware).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    task: Task = "detect"
    classes: list[str] = Field(min_length=1)
    input_size: tuple[int, int]
    input_layout: Literal["NCHW", "NHWC"] = "NCHW"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0 / 255.0
    letterbox: bool = True
    pad_value: int = Field(default=114, ge=0, le=255)
    layout: Layout | PoseLayout
    strides: tuple[int, ...] = (8, 16, 32)
    reg_max: int = Field(default=10, ge=0)
    dynamic_batch: bool = True
    licence: str
    source: str
    upstream: str = ""
    onnx_file: str = Field(default=ONNX_FILE, pattern=r"^[A-Za-z0-9._-]+\.onnx$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime

    def model_dir(self, models_dir: Path) -> Path:
        """``<models_dir>/<name>``."""
        return models_dir / self.name

    def onnx_path(self, models_dir: Path) -> Path:
        """``<models_dir>/<name>/<onnx_file>``."""
        return self.model_dir(models_dir) / self.onnx_file

    def to_spec(self, models_dir: Path) -> ModelSpec:
        """The ``ModelSpec`` the detector needs, pointing at the ONNX under ``models_dir``."""
        return self.spec_for(self.onnx_path(models_dir))

    def spec_for(self, onnx_path: Path) -> ModelSpec:
        """The ``ModelSpec`` for this manifest with the ONNX at ``onnx_path``.

        Raises:
            ValueError: A pose model (``task != "detect"``): it is not a detector.
        """
        if self.task != "detect" or self.layout not in get_args(Layout):
            raise ValueError(f"model {self.name!r} is a {self.task} model, not a detector")
        return ModelSpec(
            name=self.name,
            path=onnx_path,
            layout=cast(Layout, self.layout),
            class_names=tuple(self.classes),
            input_size=self.input_size,
            input_layout=self.input_layout,
            channel_order=self.channel_order,
            mean=self.mean,
            std=self.std,
            scale=self.scale,
            letterbox=self.letterbox,
            pad_value=self.pad_value,
            strides=self.strides,
            reg_max=self.reg_max,
            dynamic_batch=self.dynamic_batch,
        )

    def to_json(self) -> str:
        """Pretty JSON text (stable key order) for ``manifest.json``."""
        return self.model_dump_json(indent=2) + "\n"


__all__ = ["COCO80", "MANIFEST_FILE", "ONNX_FILE", "ModelManifest", "PoseLayout", "Task"]
