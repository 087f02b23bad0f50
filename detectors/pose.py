"""Human pose (17 COCO keypoints) with MoveNet MultiPose, run only where a rule needs it.

The model is the optional ``movenet-multipose`` of the model registry (``argus models pull
--pose``; see ``models.pose``): Google's MoveNet MultiPose Lightning (Apache-2.0), converted
to ONNX by our own converter.  Its input is one ``1 x 256 x 256 x 3`` int32 RGB image with
pixel values 0-255 (the graph normalises inside); its output is ``[1, 6, 56]``: up to six
people, each 17 x (y, x, score) then (ymin, xmin, ymax, xmax, score), coordinates
normalised to the network input.

How a frame is fed (``PoseEstimator.estimate``):

* whole frame (``boxes_xyxy=None``): the frame is scaled by ``256 / max(width, height)``
  and placed in the *top-left* corner of a black 256 x 256 canvas (letterbox, padding
  right/bottom only).  People far from the camera are small at this size; it suits
  frames where people are large, or a quick look.
* around given boxes (the cheap, bounded use a rule makes of it): for each box, a square
  centred on the box with side ``max(box w, box h) * (1 + 2 * margin)`` is cut out
  (black outside the frame) and scaled to 256 x 256, so a person standing or lying
  fills the network input whatever their size.  One inference per box; the pose whose
  own box best covers the query box is kept, so the result has one row per box.

Every coordinate returned is in pixels of the frame given.  Cost on a 2-core CPU is about
one 256 x 256 inference per call or per box (``python -m models.pose --bench`` measures it).

Keypoint geometry for rules (pure functions on one ``(17, 3)`` array):
``torso_angle_deg`` (shoulder-mid -> hip-mid vector against image vertical) and
``is_lying``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from detectors.onnx_detector import _ORT_ERRORS
from detectors.providers import (
    ProviderPreference,
    log_loaded_providers,
    provider_configs,
    select_providers,
    session_options,
)
from models.registry import ModelCorruptError, ModelNotFoundError, list_models, load_manifest

logger = logging.getLogger(__name__)

POSE_MODEL_NAME = "movenet-multipose"
"""Registry name of the pose model."""
POSE_INSTALL_HINT = "run `argus models pull --pose` to install it"
POSE_REBUILD_HINT = "re-run `argus models pull --pose --force`"

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
"""The 17 COCO keypoints, in the order of ``Poses.keypoints[:, k]``."""
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 5, 6, 11, 12

MAX_PEOPLE = 6
_OUT_WIDTH = NUM_KEYPOINTS * 3 + 5

FloatArray = npt.NDArray[np.float32]


class PoseInputError(ValueError):
    """An image or boxes that cannot be fed to the pose model (shape, dtype)."""


@dataclass(frozen=True, slots=True)
class Poses:
    """People found by ``PoseEstimator.estimate``.

    Attributes:
        keypoints: ``(P, 17, 3)`` float32: x, y in frame pixels, and score in [0, 1] for
            each keypoint of ``KEYPOINT_NAMES``.  A row with no person found (asked for by
            box) has NaN coordinates and score 0.
        scores: ``(P,)`` float32 person scores in [0, 1] (0: no person found).
        boxes: ``(P, 4)`` float32 person boxes ``[x1, y1, x2, y2]`` in frame pixels, as the
            model estimates them (NaN when no person was found).
    """

    keypoints: FloatArray
    scores: FloatArray
    boxes: FloatArray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty(n: int = 0) -> Poses:
        """``n`` rows of "no person found"."""
        kp = np.full((n, NUM_KEYPOINTS, 3), np.nan, np.float32)
        kp[:, :, 2] = 0.0
        return Poses(kp, np.zeros(n, np.float32), np.full((n, 4), np.nan, np.float32))


@dataclass(frozen=True, slots=True)
class _Placement:
    """Frame -> network input: ``input = frame * scale - (x0, y0) * scale``."""

    x0: float
    y0: float
    scale: float


class PoseEstimator:
    """MoveNet MultiPose from the model registry, run with onnxruntime.

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``, see ``argus.paths.models_dir``).
        name: Registered pose model (default ``movenet-multipose``).
        providers: ``"auto"`` or a list of execution providers, chosen as the detector
            does (``detectors.providers.select_providers``: TensorRT > CUDA > CPU).
        intra_op_threads: CPU threads per operator (``None``: all cores).
        check_hash: Check the ONNX sha256 against the manifest when loading (~30 ms).

    Raises:
        ModelNotFoundError: The model is not installed (the message says how to install it).
        ModelCorruptError: Bad sha256, not a loadable ONNX, or input/output shapes that are
            not MoveNet MultiPose's (``[1, H, W, 3]`` int32 in, ``[1, 6, 56]`` out).
        models.registry.ModelTaskError: ``name`` is a detector, not a pose model.
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        name: str = POSE_MODEL_NAME,
        providers: ProviderPreference = "auto",
        intra_op_threads: int | None = None,
        check_hash: bool = True,
    ) -> None:
        try:
            manifest = load_manifest(models_dir, name, check_hash=check_hash, task="pose")
        except ModelNotFoundError:
            known = _known(models_dir) if models_dir.is_dir() else []
            raise ModelNotFoundError(models_dir, name, known, POSE_INSTALL_HINT) from None
        except ModelCorruptError as e:
            raise ModelCorruptError(e.path, e.reason, POSE_REBUILD_HINT) from None
        self.name = name
        self.path = manifest.onnx_path(models_dir)
        requested = select_providers(providers)
        try:
            self._session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(intra_op_threads),
                providers=provider_configs(requested),
            )
        except _ORT_ERRORS as e:
            raise ModelCorruptError(
                self.path, f"not a loadable ONNX model ({e})", POSE_REBUILD_HINT
            ) from e
        self.providers: list[str] = log_loaded_providers(requested, self._session)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        in_shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if (
            len(in_shape) != 4
            or in_shape[0] != 1
            or in_shape[3] != 3
            or not all(isinstance(d, int) and d > 0 and d % 32 == 0 for d in in_shape[1:3])
            or inputs[0].type != "tensor(int32)"
        ):
            got = [(i.name, i.shape, i.type) for i in inputs]
            raise ModelCorruptError(
                self.path,
                f"input {got} is not MoveNet MultiPose's [1, H, W, 3] int32 (H, W multiples of 32)",
                POSE_REBUILD_HINT,
            )
        out_shape = list(outputs[0].shape) if len(outputs) == 1 else []
        if out_shape != [1, MAX_PEOPLE, _OUT_WIDTH]:
            got_out = [(o.name, o.shape) for o in outputs]
            raise ModelCorruptError(
                self.path,
                f"output {got_out} is not MoveNet MultiPose's [1, 6, 56]",
                POSE_REBUILD_HINT,
            )
        self._input_name = inputs[0].name
        self.input_height, self.input_width = int(in_shape[1]), int(in_shape[2])
        logger.info(
            "loaded pose model %s (%s, input %dx%d) on %s",
            name,
            self.path,
            self.input_width,
            self.input_height,
            ", ".join(self.providers),
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(width, height)``, pixels (256 x 256 for the registered model)."""
        return self.input_width, self.input_height

    # ------------------------------------------------------------------ inference
    def run_network(self, canvas_rgb: npt.NDArray[np.uint8]) -> FloatArray:
        """One inference on an already placed ``(H, W, 3)`` uint8 RGB network input.

        Returns:
            The raw ``(6, 56)`` float32 output (see the module docstring).
        """
        if canvas_rgb.shape != (self.input_height, self.input_width, 3):
            raise PoseInputError(
                f"network input must be {(self.input_height, self.input_width, 3)}, "
                f"got {canvas_rgb.shape}"
            )
        x = canvas_rgb[None].astype(np.int32)
        out = self._session.run(None, {self._input_name: x})[0]
        result: FloatArray = np.asarray(out, np.float32).reshape(MAX_PEOPLE, _OUT_WIDTH)
        return result

    def _place(self, image_bgr: npt.NDArray[np.uint8], p: _Placement) -> npt.NDArray[np.uint8]:
        m = np.array([[p.scale, 0.0, -p.x0 * p.scale], [0.0, p.scale, -p.y0 * p.scale]])
        interp = cv2.INTER_AREA if p.scale < 1.0 else cv2.INTER_LINEAR
        canvas = cv2.warpAffine(
            image_bgr,
            m,
            (self.input_width, self.input_height),
            flags=interp,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(canvas[:, :, ::-1])
        return rgb

    def _decode(self, raw: FloatArray, p: _Placement) -> Poses:
        """Raw ``(6, 56)`` -> ``Poses`` of all six slots in frame pixels."""
        kp = raw[:, : NUM_KEYPOINTS * 3].reshape(MAX_PEOPLE, NUM_KEYPOINTS, 3)
        out = np.empty_like(kp)
        out[:, :, 0] = kp[:, :, 1] * self.input_width / p.scale + p.x0
        out[:, :, 1] = kp[:, :, 0] * self.input_height / p.scale + p.y0
        out[:, :, 2] = kp[:, :, 2]
        box = raw[:, NUM_KEYPOINTS * 3 : NUM_KEYPOINTS * 3 + 4]  # ymin, xmin, ymax, xmax
        boxes = np.stack(
            [
                box[:, 1] * self.input_width / p.scale + p.x0,
                box[:, 0] * self.input_height / p.scale + p.y0,
                box[:, 3] * self.input_width / p.scale + p.x0,
                box[:, 2] * self.input_height / p.scale + p.y0,
            ],
            axis=1,
        ).astype(np.float32)
        return Poses(out.astype(np.float32), raw[:, -1].astype(np.float32).copy(), boxes)

    def estimate(
        self,
        image_bgr: npt.NDArray[np.uint8],
        boxes_xyxy: npt.ArrayLike | None = None,
        *,
        min_score: float = 0.2,
        margin: float = 0.25,
    ) -> Poses:
        """Keypoints of the people in a frame, or of the person in each given box.

        Args:
            image_bgr: The frame, ``(H, W, 3)`` uint8 BGR (as decoded by OpenCV).
            boxes_xyxy: ``None`` for the whole frame, else ``(N, 4)`` person boxes
                ``[x1, y1, x2, y2]`` in frame pixels (e.g. a track that may be down): one
                inference per box on a square crop around it (see the module docstring).
            min_score: Whole frame: keep people with a person score >= this.  By box: a
                best match below this is reported as "no person found" (NaN, score 0).
            margin: By box: context added on each side of the crop, as a fraction of the
                box's longer side (0.25: the crop is 1.5 x the longer side).

        Returns:
            Whole frame: the people found, best first (at most 6).  By box: exactly N rows,
            row i for box i.

        Raises:
            PoseInputError: Not an ``(H, W, 3)`` uint8 image, or boxes not ``(N, 4)``
                finite with positive width and height.
        """
        image = _check_image(image_bgr)
        h, w = image.shape[:2]
        if boxes_xyxy is None:
            p = _Placement(0.0, 0.0, min(self.input_width / w, self.input_height / h))
            poses = self._decode(self.run_network(self._place(image, p)), p)
            keep = np.flatnonzero(poses.scores >= min_score)
            keep = keep[np.argsort(-poses.scores[keep], kind="stable")]
            return Poses(poses.keypoints[keep], poses.scores[keep], poses.boxes[keep])
        boxes = _check_boxes(boxes_xyxy)
        result = Poses.empty(len(boxes))
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
            cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
            scale = min(self.input_width, self.input_height) / side
            # centre the box in the (possibly non-square) network input
            p = _Placement(
                cx - self.input_width / scale / 2.0, cy - self.input_height / scale / 2.0, scale
            )
            poses = self._decode(self.run_network(self._place(image, p)), p)
            j = _best_match(poses, (x1, y1, x2, y2), min_score)
            if j is not None:
                result.keypoints[i] = poses.keypoints[j]
                result.scores[i] = poses.scores[j]
                result.boxes[i] = poses.boxes[j]
        return result


def _known(models_dir: Path) -> list[str]:
    return [m.name for m in list_models(models_dir)]


def _check_image(image: Any) -> npt.NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise PoseInputError(f"image must be (H, W, 3) uint8 BGR, got {arr.shape} {arr.dtype}")
    return arr


def _check_boxes(boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(boxes, np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr.reshape(1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise PoseInputError(f"boxes must be (N, 4) [x1, y1, x2, y2], got shape {arr.shape}")
    if (
        not np.all(np.isfinite(arr))
        or np.any(arr[:, 2] <= arr[:, 0])
        or np.any(arr[:, 3] <= arr[:, 1])
    ):
        raise PoseInputError(f"boxes must be finite with x2 > x1 and y2 > y1: {arr.tolist()}")
    return arr


def _best_match(
    poses: Poses, box: tuple[float, float, float, float], min_score: float
) -> int | None:
    """The slot whose own box covers most of ``box`` (ties: higher score); ``None`` if no
    slot reaches ``min_score`` or none overlaps."""
    x1, y1, x2, y2 = box
    ix = np.clip(np.minimum(poses.boxes[:, 2], x2) - np.maximum(poses.boxes[:, 0], x1), 0, None)
    iy = np.clip(np.minimum(poses.boxes[:, 3], y2) - np.maximum(poses.boxes[:, 1], y1), 0, None)
    area_b = (poses.boxes[:, 2] - poses.boxes[:, 0]) * (poses.boxes[:, 3] - poses.boxes[:, 1])
    inter = ix * iy
    union = (x2 - x1) * (y2 - y1) + area_b - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    ok = (poses.scores >= min_score) & (iou > 0.0)
    if not np.any(ok):
        return None
    rank = np.where(ok, iou + 1e-3 * poses.scores, -1.0)
    return int(np.argmax(rank))


# ---------------------------------------------------------------------- keypoint geometry
def _mid(kp: FloatArray, a: int, b: int, min_score: float) -> tuple[float, float] | None:
    pts = [kp[i, :2] for i in (a, b) if kp[i, 2] >= min_score and np.all(np.isfinite(kp[i, :2]))]
    if not pts:
        return None
    m = np.mean(pts, axis=0)
    return float(m[0]), float(m[1])


def torso_angle_deg(kp: npt.ArrayLike, min_score: float = 0.3) -> float:
    """Angle of the torso (shoulder-mid -> hip-mid) from the image vertical, degrees.

    Args:
        kp: ``(17, 3)`` keypoints of one person: x, y (pixels, any frame) and score.
        min_score: Keypoints scoring below this are not used.  A mid-point is the mean of
            the confident keypoints of its pair (one shoulder is enough).

    Returns:
        0 for an upright torso (hips straight below shoulders), 90 for a horizontal one,
        180 for head-down; NaN when no shoulder or no hip is confident, or both mid-points
        coincide.
    """
    arr = _check_kp(kp)
    shoulders = _mid(arr, L_SHOULDER, R_SHOULDER, min_score)
    hips = _mid(arr, L_HIP, R_HIP, min_score)
    if shoulders is None or hips is None:
        return math.nan
    dx, dy = hips[0] - shoulders[0], hips[1] - shoulders[1]
    if dx == 0.0 and dy == 0.0:
        return math.nan
    return math.degrees(math.atan2(abs(dx), dy))


def is_lying(
    kp: npt.ArrayLike,
    *,
    min_angle_deg: float = 60.0,
    min_score: float = 0.3,
    min_keypoints: int = 6,
    min_aspect: float = 1.5,
) -> bool | None:
    """Whether a person's keypoints read as lying down.

    The torso angle decides when it is known (``torso_angle_deg >= min_angle_deg``, in
    [60, 180] by default: lying or head-down).  Without a torso (no confident shoulder or
    hip) the spread of the confident keypoints decides: at least ``min_keypoints`` of them
    spanning ``min_aspect`` times wider than tall is lying, taller than wide is not.

    Args:
        kp: ``(17, 3)`` keypoints: x, y pixels and score.
        min_angle_deg: Torso angle from vertical from which a person is lying, degrees.
        min_score: Keypoints scoring below this are ignored.
        min_keypoints: Fewest confident keypoints for the spread test.
        min_aspect: Width / height of the keypoints' extent from which they read as lying.

    Returns:
        True (lying), False (upright) or None (too few confident keypoints to tell).
    """
    arr = _check_kp(kp)
    angle = torso_angle_deg(arr, min_score)
    if not math.isnan(angle):
        return angle >= min_angle_deg
    pts = arr[(arr[:, 2] >= min_score) & np.all(np.isfinite(arr[:, :2]), axis=1), :2]
    if len(pts) < min_keypoints:
        return None
    width = float(pts[:, 0].max() - pts[:, 0].min())
    height = float(pts[:, 1].max() - pts[:, 1].min())
    if width >= min_aspect * height:
        return True
    if height >= width:
        return False
    return None


def _check_kp(kp: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(kp, np.float32)
    if arr.shape != (NUM_KEYPOINTS, 3):
        raise PoseInputError(f"keypoints must be ({NUM_KEYPOINTS}, 3), got {arr.shape}")
    return arr


__all__ = [
    "KEYPOINT_NAMES",
    "L_HIP",
    "L_SHOULDER",
    "MAX_PEOPLE",
    "NUM_KEYPOINTS",
    "POSE_INSTALL_HINT",
    "POSE_MODEL_NAME",
    "R_HIP",
    "R_SHOULDER",
    "PoseEstimator",
    "PoseInputError",
    "Poses",
    "is_lying",
    "torso_angle_deg",
]
