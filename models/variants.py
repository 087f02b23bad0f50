"""Derived variants of a registered detector: int8 (CPU / edge) and fp16 (GPU).

Both read ``<models_dir>/<name>/{model.onnx, manifest.json}`` (hash-checked) and register
the result as a new model next to it (default names ``<name>-int8`` / ``<name>-fp16``)
with a manifest copied from the source (classes, input size, normalisation, layout,
licence, upstream) whose ``source`` says how it was made.  Select one with
``detector.model: nanodet-g-int8`` in the config.

* :func:`quantize_int8` - static post-training quantization (onnxruntime
  ``quantize_static``, QDQ format) calibrated on real frames fed through the detector's
  own preprocessing (:func:`detectors.preprocess.preprocess`), so the activation ranges
  are those inference sees.  Input and outputs stay float32.
* :func:`export_fp16` - weights and arithmetic in float16 (onnxruntime's
  ``convert_float_to_float16``) with the float32 input/outputs kept, so the detector feeds
  and decodes it unchanged.  Meant for CUDA / TensorRT; it also runs on the CPU provider
  (about as fast as float32 there).

Before it is registered the result must load in onnxruntime's CPU provider and, for a
model with a ``person`` class, find the people of the known photo
(:func:`models.verify.verify_detects_people`), as ``argus models pull`` requires.

How much accuracy int8 costs is measured by ``python -m benchmarks.int8_recall`` (person
recall and precision against float32 on composited real footage with exact boxes).
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader

from detectors.preprocess import PreprocessError, preprocess
from detectors.spec import ModelSpec
from models.manifest import MANIFEST_FILE, ModelManifest
from models.registry import ModelError, install_model, load_manifest

logger = logging.getLogger(__name__)

IntType = Literal["uint8", "int8"]
CalibrationMethodName = Literal["minmax", "percentile", "entropy"]

CALIBRATION_BATCH = 8
"""Frames per calibration ``session.run`` with min/max calibration (dynamic batch axis)."""

COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
"""Where :func:`head_nodes` stops walking back from the graph outputs."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class VariantError(ModelError):
    """A variant of a registered model cannot be made (bad arguments, conversion failure).

    Attributes:
        name: The source model's name.
        reason: What went wrong.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot make a variant of model {name!r}: {reason}")
        self.name = name
        self.reason = reason


class CalibrationError(VariantError):
    """No usable calibration frames: none given, an unreadable video, or an image that
    is not ``(h, w, 3)`` uint8."""

    def __init__(self, reason: str, name: str = "") -> None:
        ModelError.__init__(self, f"cannot calibrate{f' model {name!r}' if name else ''}: {reason}")
        self.name = name
        self.reason = reason


class VariantExistsError(VariantError):
    """The target name is already registered and ``force`` was not given."""


# --------------------------------------------------------------------------- calibration


def read_frames(
    video: Path, count: int, *, start: int = 0, step: int = 1
) -> list[npt.NDArray[np.uint8]]:
    """Up to ``count`` frames of a video file: frames ``start``, ``start + step``, ...

    Args:
        video: Any file OpenCV can read (e.g. ``vtest.avi``).
        count: Most frames to return (>= 1).
        start: Index of the first frame returned (>= 0).
        step: Take every ``step``-th frame (>= 1).

    Returns:
        BGR frames, each ``(h, w, 3)`` uint8 (fewer than ``count`` if the video ends).

    Raises:
        ValueError: ``count``, ``start`` or ``step`` out of range.
        CalibrationError: The file is missing or unreadable, or has no frame ``start``.
    """
    if count < 1 or step < 1 or start < 0:
        raise ValueError(f"need count >= 1, start >= 0, step >= 1; got {count}, {start}, {step}")
    if not video.is_file():
        raise CalibrationError(f"video {video} not found")
    cap = cv2.VideoCapture(str(video))
    frames: list[npt.NDArray[np.uint8]] = []
    try:
        index = 0
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index >= start and (index - start) % step == 0:
                frames.append(np.asarray(frame, np.uint8))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise CalibrationError(f"no frame {start} could be read from {video}")
    return frames


def calibration_batches(
    images: Iterable[npt.NDArray[np.uint8]],
    spec: ModelSpec,
    *,
    batch: int = CALIBRATION_BATCH,
    center: bool = True,
) -> Iterator[npt.NDArray[np.float32]]:
    """The network input tensors of ``images``, exactly as ``OnnxDetector.detect`` makes
    them (letterbox/resize, colour order, normalisation, layout of ``spec``).

    Args:
        images: BGR frames, each ``(h, w, 3)`` uint8, any sizes.
        spec: The model's input description.
        batch: Most images per tensor (>= 1).
        center: Letterbox placement (the detector's default: centred).

    Yields:
        float32 tensors ``(b, 3, H, W)`` (NCHW) or ``(b, H, W, 3)`` (NHWC) with
        ``(W, H) = spec.input_size`` and ``1 <= b <= batch``.

    Raises:
        CalibrationError: An image is not ``(h, w, 3)`` uint8.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    chunk: list[npt.NDArray[np.uint8]] = []
    seen = 0

    def flush() -> npt.NDArray[np.float32]:
        try:
            tensor, _ = preprocess(chunk, spec, center=center)
        except PreprocessError as e:
            index = seen - len(chunk) + (e.index or 0)
            raise CalibrationError(f"image {index}: {e}", spec.name) from e
        chunk.clear()
        return tensor

    for img in images:
        chunk.append(img)
        seen += 1
        if len(chunk) == batch:
            yield flush()
    if chunk:
        yield flush()


class FrameCalibrationReader(CalibrationDataReader):  # type: ignore[misc]
    """``onnxruntime.quantization.CalibrationDataReader`` over preprocessed frames.

    Args:
        input_name: The graph input's name.
        tensors: Input tensors (see :func:`calibration_batches`), held in memory (about
            2 MB per 416x416 frame) so the reader can be rewound.
    """

    def __init__(self, input_name: str, tensors: Sequence[npt.NDArray[np.float32]]) -> None:
        super().__init__()
        self.input_name = input_name
        self.tensors = list(tensors)
        self._pos = 0

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        """The next ``{input_name: tensor}`` feed, or ``None`` at the end."""
        if self._pos >= len(self.tensors):
            return None
        feed = {self.input_name: self.tensors[self._pos]}
        self._pos += 1
        return feed

    def rewind(self) -> None:
        """Start again from the first tensor."""
        self._pos = 0

    def __len__(self) -> int:
        return len(self.tensors)


# --------------------------------------------------------------------------- helpers


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the detection head's last layers: every node on a path from a graph
    output back to, and including, the first ``Conv``/``Gemm``/``MatMul`` of that path.

    For NanoDet these are, per stride, the final 1x1 convolution (class logits and box
    distributions in one tensor), its ``Split``, the ``Sigmoid`` and the
    ``Reshape``/``Transpose`` layout ops.
    """
    producer: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        for out in node.output:
            producer[out] = node
    found: dict[str, None] = {}  # ordered set
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in found:
            continue
        found[node.name] = None
        if node.op_type not in COMPUTE_OPS:
            stack.extend(i for i in node.input if i)
    return list(found)


def _source(models_dir: Path, name: str, out_name: str, force: bool) -> ModelManifest:
    """The source's manifest (ONNX hash checked), after checking ``out_name``."""
    manifest = load_manifest(models_dir, name)
    if out_name == name:
        raise VariantError(name, "the variant needs a name other than its source's")
    if not _NAME_RE.fullmatch(out_name) or len(out_name) > 64:
        raise VariantError(
            name,
            f"invalid model name {out_name!r} (lowercase letters, digits, '.', '_', '-'; "
            "at most 64)",
        )
    if (models_dir / out_name / MANIFEST_FILE).exists() and not force:
        raise VariantExistsError(
            name, f"model {out_name!r} is already registered in {models_dir} (use force)"
        )
    return manifest


def _graph_input(model: onnx.ModelProto, name: str) -> str:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise VariantError(name, f"expected one graph input, found {inputs}")
    return str(inputs[0])


def _register(
    models_dir: Path,
    source: ModelManifest,
    out_name: str,
    data: bytes,
    how: str,
    *,
    verify: bool,
) -> ModelManifest:
    """Check ``data`` (loads; known photo) and install it as ``out_name``."""
    try:
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise VariantError(source.name, f"the result does not load in onnxruntime ({e})") from e
    manifest = ModelManifest.model_validate(
        {
            **source.model_dump(),
            "name": out_name,
            "source": how,
            "sha256": hashlib.sha256(data).hexdigest(),
            "created_at": datetime.now(UTC),
        }
    )
    if verify and "person" in manifest.classes:
        from models.verify import verify_detects_people

        with tempfile.TemporaryDirectory(prefix="argus-variant-") as tmp:
            path = Path(tmp) / manifest.onnx_file
            path.write_bytes(data)
            result = verify_detects_people(manifest.spec_for(path))
        logger.info(
            "%s: known-photo check passed (best IoU %s)",
            out_name,
            ", ".join(f"{v:.2f}" for v in result.best_iou),
        )
    install_model(models_dir, manifest, data)
    logger.info("registered %s: %s", out_name, how)
    return manifest


# --------------------------------------------------------------------------- int8


def quantize_int8(
    models_dir: Path,
    name: str,
    calibration_images: Iterable[npt.NDArray[np.uint8]],
    *,
    out_name: str | None = None,
    per_channel: bool = False,
    reduce_range: bool = False,
    activation_type: IntType = "uint8",
    weight_type: IntType = "int8",
    calibrate_method: CalibrationMethodName = "minmax",
    keep_head_float: bool = True,
    exclude_nodes: Sequence[str] = (),
    pre_process: bool = True,
    verify: bool = True,
    force: bool = False,
) -> ModelManifest:
    """Register an int8 static (QDQ) quantization of model ``name``.

    Weights are quantized once; activation ranges are calibrated on
    ``calibration_images`` run through the model's own preprocessing, then fixed.  The
    graph keeps its float32 input and outputs (quantize/dequantize pairs inside), so
    ``OnnxDetector`` runs it unchanged.

    The defaults are what kept ``nanodet-g`` closest to float32, measured with
    ``benchmarks.int8_recall`` (on other scenes than it reports, 2-core AMD EPYC, AVX2
    without VNNI):

    * per-tensor weights: per-channel ones lost precision (more false detections) on
      this CPU, where onnxruntime's u8 x s8 kernels can saturate their 16-bit
      intermediate sums with full-range per-channel weights (``reduce_range`` avoids
      that but was not better than per-tensor);
    * uint8 activations (int8 ones: same accuracy, half the speed) and int8 weights
      (uint8 ones: no better overall, half the speed);
    * min/max calibration (percentile and entropy: no better, 4x slower to calibrate);
    * the head kept in float32 (``keep_head_float``): quantized, the class logits get
      the ranges seen in calibration, and for people larger than any in the calibration
      frames the stride-16/32 scores clip (0.80 -> 0.13 on the known photo, which then
      fails its check).

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``).
        name: Registered float32 source model, e.g. ``nanodet-g``.
        calibration_images: Real BGR frames, each ``(h, w, 3)`` uint8, any sizes, of the
            scenes the model will watch: a few dozen to a few hundred (20 and 300 gave
            the same accuracy as 100 for nanodet-g); each costs about one inference and
            ~2 MB of memory while calibrating.
        out_name: Name to register the result under (default ``<name>-int8``).
        per_channel: One weight scale per output channel (else one per tensor).
        reduce_range: 7-bit weights (avoids the saturation above, costs resolution).
        activation_type: ``"uint8"`` (asymmetric) or ``"int8"`` activations.
        weight_type: ``"int8"`` (symmetric) or ``"uint8"`` weights.
        calibrate_method: How activation ranges are chosen: ``"minmax"`` (the observed
            range), ``"percentile"`` (99.999 % of values) or ``"entropy"`` (KL).
        keep_head_float: Leave :func:`head_nodes` (the last convolution of each output
            and what follows it) in float32.
        exclude_nodes: More node names to leave in float32.
        pre_process: Run onnxruntime's ``quant_pre_process`` (shape inference, graph
            optimisation) on the source first.
        verify: Check the result finds the people of the known photo before registering
            (models with a ``person`` class; needs Debian's opencv-doc).
        force: Replace an already registered ``out_name``.

    Returns:
        The registered manifest; its ``source`` records the settings and frame count.

    Raises:
        ModelNotFoundError / ModelCorruptError: The source is not (validly) registered.
        CalibrationError: No calibration image, or one that is not ``(h, w, 3)`` uint8.
        VariantExistsError: ``out_name`` is registered and ``force`` is not set.
        VariantError: Bad name or option, or onnxruntime failed.
        models.verify.ModelVerificationError: The result misses the known photo's people.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = out_name or f"{name}-int8"
    source = _source(models_dir, name, target, force)
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if activation_type not in types or weight_type not in types:
        raise VariantError(name, "activation_type and weight_type must be 'uint8' or 'int8'")
    if calibrate_method not in methods:
        raise VariantError(name, f"calibrate_method must be one of {', '.join(methods)}")
    spec = source.to_spec(models_dir)
    src_path = source.onnx_path(models_dir)
    # The histogram calibrators stack all batches of a tensor into one array, which
    # needs equal batch sizes: they get one frame per batch.
    batch = CALIBRATION_BATCH if calibrate_method == "minmax" else 1
    tensors = list(calibration_batches(calibration_images, spec, batch=batch))
    n_frames = sum(int(t.shape[0]) for t in tensors)
    if n_frames == 0:
        raise CalibrationError("no calibration frames were given", name)

    with tempfile.TemporaryDirectory(prefix="argus-quant-") as tmp:
        model_in = src_path
        if pre_process:
            pre = Path(tmp) / "pre.onnx"
            try:
                # Symbolic shape inference needs sympy and buys nothing here (only the
                # batch axis is dynamic); ONNX shape inference + ORT optimisation run.
                quant_pre_process(str(src_path), str(pre), skip_symbolic_shape=True)
                model_in = pre
            except Exception as e:  # best effort: quantize the graph as it is
                logger.warning("%s: quant_pre_process failed (%s); quantizing as is", name, e)
        graph = onnx.load(str(model_in), load_external_data=False)
        reader = FrameCalibrationReader(_graph_input(graph, name), tensors)
        excluded = list(exclude_nodes)
        if keep_head_float:
            excluded += [n for n in head_nodes(graph) if n not in excluded]
        del graph
        out = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                str(model_in),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=types[activation_type],
                weight_type=types[weight_type],
                nodes_to_exclude=excluded or None,
                calibrate_method=methods[calibrate_method],
                calibration_providers=["CPUExecutionProvider"],
                extra_options={
                    "ActivationSymmetric": False,
                    "WeightSymmetric": weight_type == "int8",
                },
            )
        except Exception as e:  # onnxruntime / numpy errors of many kinds
            raise VariantError(name, f"onnxruntime quantize_static failed ({e})") from e
        data = out.read_bytes()
    how = (
        f"int8 static quantization (QDQ) of {name} (sha256 {source.sha256[:12]}) with "
        f"onnxruntime {ort.__version__}: weights {weight_type} "
        f"{'per-channel' if per_channel else 'per-tensor'}"
        f"{' reduced-range' if reduce_range else ''}, activations {activation_type} "
        f"({calibrate_method} calibration on {n_frames} frames)"
        + (f", {len(excluded)} head/excluded nodes float32" if excluded else "")
        + f"; source model: {source.source}"
    )
    return _register(models_dir, source, target, data, how, verify=verify)


# --------------------------------------------------------------------------- fp16


def export_fp16(
    models_dir: Path,
    name: str,
    *,
    out_name: str | None = None,
    verify: bool = True,
    force: bool = False,
) -> ModelManifest:
    """Register a float16 copy of model ``name`` with float32 input and outputs.

    Weights are stored as float16 (half the file) and the graph computes in float16
    between a ``Cast`` after the input and ``Cast``s before the outputs
    (``convert_float_to_float16(keep_io_types=True)``), so the detector feeds it float32
    ``(B, 3, H, W)`` tensors and decodes float32 outputs as for the source.  Weights
    beyond the float16 range (+-65504) are clamped, below 6e-8 flushed to zero.

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``).
        name: Registered float32 source model, e.g. ``nanodet-g``.
        out_name: Name to register the result under (default ``<name>-fp16``).
        verify: Check the result finds the people of the known photo before registering.
        force: Replace an already registered ``out_name``.

    Returns:
        The registered manifest.

    Raises:
        ModelNotFoundError / ModelCorruptError: The source is not (validly) registered.
        VariantExistsError: ``out_name`` is registered and ``force`` is not set.
        VariantError: Bad name, or the conversion failed or does not load.
        models.verify.ModelVerificationError: The result misses the known photo's people.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    target = out_name or f"{name}-fp16"
    source = _source(models_dir, name, target, force)
    model = onnx.load(str(source.onnx_path(models_dir)))
    try:
        half = convert_float_to_float16(model, keep_io_types=True)
    except Exception as e:  # onnx / onnxruntime errors of many kinds
        raise VariantError(name, f"float16 conversion failed ({e})") from e
    data = half.SerializeToString()
    how = (
        f"float16 conversion of {name} (sha256 {source.sha256[:12]}) with onnxruntime "
        f"{ort.__version__} convert_float_to_float16, float32 input/outputs kept; "
        f"source model: {source.source}"
    )
    return _register(models_dir, source, target, data, how, verify=verify)


__all__ = [
    "CalibrationError",
    "FrameCalibrationReader",
    "VariantError",
    "VariantExistsError",
    "calibration_batches",
    "export_fp16",
    "head_nodes",
    "quantize_int8",
    "read_frames",
]
