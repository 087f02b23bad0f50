"""Numerical acceptance check of a converted detector: does it find the people in a known photo?

The photo is ``basketball1.png`` from Debian's ``opencv-doc`` package (640x480, grey):
two men playing catch, one on the left (full body) and one on the right edge (cut off).
Their boxes below were annotated by hand on that photo (pixels of the original image).
A model passes when, through the real detector stack (``detectors.onnx_detector``),
each annotated person is matched by a ``person`` detection with IoU >= ``MIN_IOU``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from detectors.detections import Detections
from detectors.onnx_detector import ModelLoadError, OnnxDetector
from detectors.spec import ModelSpec
from models.registry import ModelError

logger = logging.getLogger(__name__)

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
KNOWN_PHOTO = OPENCV_DATA / "basketball1.png"
# Hand-annotated person boxes [x1, y1, x2, y2] in basketball1.png pixels.
KNOWN_PEOPLE: tuple[tuple[float, float, float, float], ...] = (
    (35.0, 85.0, 165.0, 478.0),  # left: full body, holding a ball
    (430.0, 20.0, 640.0, 480.0),  # right: cut off by the image edge
)
MIN_IOU = 0.5
CONF_THRESHOLD = 0.3


class ModelVerificationError(ModelError):
    """The converted model failed the known-photo check (or the photo is missing)."""

    def __init__(self, reason: str, photo: Path) -> None:
        super().__init__(f"model verification failed on {photo}: {reason}")
        self.reason = reason
        self.photo = photo


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Outcome of ``verify_detects_people``.

    Attributes:
        photo: The photo used.
        people: Person boxes found, ``(n, 4)`` float32 original-image pixels.
        scores: Their confidences, ``(n,)`` float32.
        best_iou: For each annotated person, the best IoU of any person detection.
    """

    photo: Path
    people: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    best_iou: tuple[float, ...]


def iou_matrix(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of ``a (n, 4)`` and ``b (m, 4)`` xyxy boxes -> ``(n, m)`` float32."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: npt.NDArray[np.float32] = (inter / np.maximum(union, 1e-9)).astype(np.float32)
    return result


def verify_detects_people(
    spec: ModelSpec,
    photo: Path = KNOWN_PHOTO,
    expected: tuple[tuple[float, float, float, float], ...] = KNOWN_PEOPLE,
) -> VerificationResult:
    """Run ``spec``'s model on the known photo and check every annotated person is found.

    Args:
        spec: The model to check (CPU execution provider is used, deterministic).
        photo: Photo to use (default: opencv-doc's ``basketball1.png``).
        expected: Annotated person boxes in ``photo`` pixels.

    Returns:
        The person detections and per-person best IoU.

    Raises:
        ModelVerificationError: Photo missing/unreadable, model not loadable, or a person
            not matched with IoU >= ``MIN_IOU``.
    """
    if not photo.is_file():
        raise ModelVerificationError(
            "the known photo is missing; install Debian's opencv-doc package "
            "(`make footage` / `apt-get install opencv-doc`) or pull with verify=False",
            photo,
        )
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelVerificationError("the photo cannot be decoded", photo)
    person_ids = [i for i, n in enumerate(spec.class_names) if n == "person"]
    if not person_ids:
        raise ModelVerificationError(f"model {spec.name!r} has no 'person' class", photo)
    try:
        detector = OnnxDetector(
            spec,
            providers=["CPUExecutionProvider"],
            conf_threshold=CONF_THRESHOLD,
            classes=person_ids,
            max_batch=1,
        )
        dets: Detections = detector.detect([np.asarray(image, np.uint8)])[0]
    except ModelLoadError as e:
        raise ModelVerificationError(f"model cannot be loaded ({e})", photo) from e
    boxes = dets.xyxy.astype(np.float32)
    truth = np.asarray(expected, np.float32).reshape(-1, 4)
    ious = iou_matrix(truth, boxes) if len(boxes) else np.zeros((len(truth), 0), np.float32)
    best = tuple(float(r.max()) if r.size else 0.0 for r in ious)
    result = VerificationResult(photo, boxes, dets.score.astype(np.float32), best)
    logger.info(
        "verification on %s: %d people found, best IoU per annotated person %s",
        photo.name,
        len(boxes),
        [round(b, 3) for b in best],
    )
    missed = [i for i, b in enumerate(best) if b < MIN_IOU]
    if missed:
        raise ModelVerificationError(
            f"annotated people {[expected[i] for i in missed]} not found "
            f"(best IoU {[round(best[i], 3) for i in missed]} < {MIN_IOU}); "
            f"detections: {np.round(boxes).astype(int).tolist()}",
            photo,
        )
    return result


__all__ = [
    "KNOWN_PEOPLE",
    "KNOWN_PHOTO",
    "ModelVerificationError",
    "VerificationResult",
    "iou_matrix",
    "verify_detects_people",
]
