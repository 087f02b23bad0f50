"""Object detection: ONNX models run with onnxruntime, decoded into ``Detections``.

Public API::

    from detectors import ModelSpec, OnnxDetector, Detections
    det = OnnxDetector(spec, providers="auto", conf_threshold=0.35)
    det.warmup()
    per_image: list[Detections] = det.detect([frame.image, ...])
"""

from detectors.decoders.raw import Decoder, RawDetections
from detectors.decoders.registry import UnknownLayoutError, get_decoder, register_decoder
from detectors.decoders.yolo import YoloDecodeError, infer_yolo_layout
from detectors.detections import Detections
from detectors.nms import NmsError, nms
from detectors.onnx_detector import (
    DetectTimings,
    InferenceError,
    ModelLoadError,
    ModelSpecMismatchError,
    OnnxDetector,
)
from detectors.preprocess import LetterboxMeta, PreprocessError, preprocess
from detectors.providers import ProviderError, select_providers
from detectors.spec import ModelSpec

__all__ = [
    "Decoder",
    "DetectTimings",
    "Detections",
    "InferenceError",
    "LetterboxMeta",
    "ModelLoadError",
    "ModelSpec",
    "ModelSpecMismatchError",
    "NmsError",
    "OnnxDetector",
    "PreprocessError",
    "ProviderError",
    "RawDetections",
    "UnknownLayoutError",
    "YoloDecodeError",
    "get_decoder",
    "infer_yolo_layout",
    "nms",
    "preprocess",
    "register_decoder",
    "select_providers",
]
