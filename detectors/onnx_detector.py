"""Run an ONNX object detector with onnxruntime on batches of BGR frames.

``OnnxDetector.detect`` does: letterbox/resize + normalise (``detectors.preprocess``) ->
``session.run`` in chunks of at most ``max_batch`` images -> layout decoder
(``detectors.decoders.registry``) -> class filter, per-class thresholds and class-wise NMS
(``detectors.nms``) -> boxes mapped back to original-frame pixels -> ``Detections``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from detectors.decoders.raw import Decoder, RawDetections
from detectors.decoders.registry import UnknownLayoutError, get_decoder
from detectors.detections import Detections
from detectors.nms import nms
from detectors.preprocess import LetterboxMeta, preprocess
from detectors.providers import (
    CUDA,
    TENSORRT,
    ProviderPreference,
    log_loaded_providers,
    provider_configs,
    select_providers,
    session_options,
)
from detectors.spec import ModelSpec

logger = logging.getLogger(__name__)

# onnxruntime's own exception classes (InvalidProtobuf, NoSuchFile, Fail, EPFail, ...):
# they derive straight from Exception, so they are collected here to be caught by name.
_ORT_ERRORS: tuple[type[Exception], ...] = (
    *(
        obj
        for obj in vars(_ort_state).values()
        if isinstance(obj, type) and issubclass(obj, Exception)
    ),
    RuntimeError,
    OSError,
)


class ModelLoadError(RuntimeError):
    """The model cannot be loaded or does not match its ``ModelSpec``.

    Attributes:
        path: The ``.onnx`` path concerned.
    """

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot load model {path}: {reason}")
        self.path = path
        self.reason = reason


class ModelSpecMismatchError(ModelLoadError):
    """The graph's input/output does not match the ``ModelSpec`` (expected vs actual)."""


class InferenceError(RuntimeError):
    """``session.run`` failed on a batch.

    Attributes:
        batch_shape: Shape of the input tensor that was fed.
    """

    def __init__(self, path: Path, batch_shape: tuple[int, ...], reason: str):
        super().__init__(f"inference with {path} failed on input {batch_shape}: {reason}")
        self.path = path
        self.batch_shape = batch_shape


@dataclass(frozen=True, slots=True)
class DetectTimings:
    """Wall time of the last ``detect`` call, split by stage, milliseconds."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    images: int

    @property
    def total_ms(self) -> float:
        """Sum of the stages, milliseconds."""
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass
class Staged:
    """A batch on its way through :meth:`OnnxDetector.prepare` / ``infer`` / ``finish``.

    Attributes:
        images: Images in the batch.
        chunks: ``(input tensor, letterbox metas)`` per chunk of ``batch_size`` images.
        outputs: The network's raw outputs per chunk (after ``infer``).
        preprocess_ms: Wall time of ``prepare``, ms (likewise the others).
    """

    images: int
    chunks: list[tuple[np.ndarray, list[LetterboxMeta]]] = field(default_factory=list)
    outputs: list[list[np.ndarray]] = field(default_factory=list)
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0


class OnnxDetector:
    """An ONNX detector described by a ``ModelSpec``, run with onnxruntime.

    Args:
        spec: How to feed and decode the model (path, layout, input size, ...).
        providers: ``"auto"`` or a list of execution providers (see
            ``detectors.providers.select_providers``).
        conf_threshold: Default minimum confidence, in [0, 1].
        class_thresholds: Per-class minimum confidence (class id -> threshold).
        iou_threshold: Class-wise NMS IoU threshold, in [0, 1].
        max_detections: Keep at most this many detections per image.
        classes: Keep only these class ids (``None`` = all).
        max_batch: Most images per ``session.run``.
        intra_op_threads: CPU threads per operator (``None`` = all cores).
        trt_cache_dir: TensorRT engine/timing cache directory (only used with TensorRT).
        trt_fp16: Allow FP16 TensorRT kernels.
        device_id: CUDA device index for CUDA/TensorRT.
        letterbox_center: Centre the letterboxed image (True) or place it top-left.
        io_binding: Feed the network through an onnxruntime I/O binding: on a GPU the
            input goes into a device buffer kept per batch shape (``OrtValue.update_inplace``:
            one host-to-device copy, no allocation per run) and the outputs come back to
            the host once; on CPU the bound input is used in place.  ``None``: on when the
            session's first provider is CUDA or TensorRT.  Not thread-safe: one thread
            calls ``detect`` (the runner's detector loop).

    Raises:
        ModelLoadError: missing/invalid file, unknown layout, bad arguments.
        ModelSpecMismatchError: graph input/output disagree with ``spec``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        providers: ProviderPreference = "auto",
        conf_threshold: float = 0.35,
        class_thresholds: Mapping[int, float] | None = None,
        iou_threshold: float = 0.5,
        max_detections: int = 300,
        classes: Collection[int] | None = None,
        max_batch: int = 8,
        intra_op_threads: int | None = None,
        trt_cache_dir: Path | None = None,
        trt_fp16: bool = True,
        device_id: int = 0,
        letterbox_center: bool = True,
        io_binding: bool | None = None,
    ) -> None:
        self.spec = spec
        self.path = Path(spec.path)
        self._check_arguments(
            conf_threshold, class_thresholds, iou_threshold, max_detections, classes, max_batch
        )
        self.conf_threshold = float(conf_threshold)
        self.class_thresholds: dict[int, float] = dict(class_thresholds or {})
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        # Bound on boxes entering NMS (its cost is quadratic; see detectors.nms).
        self.max_candidates = max(1000, 10 * self.max_detections)
        self.classes: frozenset[int] | None = None if classes is None else frozenset(classes)
        self.max_batch = int(max_batch)
        self.letterbox_center = letterbox_center
        self.last_timings: DetectTimings | None = None

        if not self.path.is_file():
            raise ModelLoadError(self.path, "file not found")
        try:
            self._decoder: Decoder = get_decoder(spec.layout)
        except UnknownLayoutError as e:
            raise ModelLoadError(self.path, str(e)) from e

        requested = select_providers(providers)
        trt_profile = None
        if TENSORRT in requested and spec.dynamic_batch and self.max_batch > 1:
            trt_profile = self._trt_profile()
        configs = provider_configs(
            requested,
            device_id=device_id,
            trt_fp16=trt_fp16,
            trt_cache_dir=trt_cache_dir,
            trt_profile=trt_profile,
        )
        try:
            self._session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(intra_op_threads),
                providers=configs,
            )
        except _ORT_ERRORS as e:
            raise ModelLoadError(self.path, f"not a loadable ONNX model ({e})") from e
        self.providers: list[str] = log_loaded_providers(requested, self._session)

        self._input_name, self._input_dtype, self._fixed_batch = self._validate_input()
        self._validate_outputs()
        on_gpu = bool(self.providers) and self.providers[0] in (CUDA, TENSORRT)
        self.io_binding = on_gpu if io_binding is None else bool(io_binding)
        self._device = ("cuda", device_id) if on_gpu else ("cpu", 0)
        self._bindings: dict[tuple[int, ...], tuple[Any, Any]] = {}
        logger.info(
            "loaded %s (%s, layout %s, input %s %dx%d, batch %s) on %s",
            spec.name,
            self.path,
            spec.layout,
            self._input_name,
            *spec.input_size,
            self._fixed_batch or f"1..{self.max_batch}",
            ", ".join(self.providers),
        )

    # ------------------------------------------------------------------ loading
    @staticmethod
    def _check_arguments(
        conf_threshold: float,
        class_thresholds: Mapping[int, float] | None,
        iou_threshold: float,
        max_detections: int,
        classes: Collection[int] | None,
        max_batch: int,
    ) -> None:
        for name, value in [("conf_threshold", conf_threshold), ("iou_threshold", iou_threshold)]:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for cls, thr in (class_thresholds or {}).items():
            if not 0.0 <= thr <= 1.0:
                raise ValueError(f"class_thresholds[{cls}] must be in [0, 1], got {thr}")
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if classes is not None and not classes:
            raise ValueError(f"classes must be None or non-empty, got {classes!r}")

    def _expected_input_shape(self, batch: int | str) -> list[int | str]:
        w, h = self.spec.input_size
        return [batch, 3, h, w] if self.spec.input_layout == "NCHW" else [batch, h, w, 3]

    def _trt_profile(self) -> tuple[str, list[int], list[int], list[int]] | None:
        """TensorRT optimisation profile covering batch 1..max_batch (needs the input name)."""
        import onnx  # only needed on the TensorRT path
        from google.protobuf.message import DecodeError

        try:
            model = onnx.load(str(self.path), load_external_data=False)
        except (OSError, ValueError, DecodeError) as e:
            raise ModelLoadError(self.path, f"not a valid ONNX file ({e})") from e
        initializers = {init.name for init in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        if not inputs:
            raise ModelSpecMismatchError(self.path, "graph has no input")
        lo = [int(d) for d in self._expected_input_shape(1)]
        hi = [int(d) for d in self._expected_input_shape(self.max_batch)]
        return inputs[0], lo, hi, hi

    def _validate_input(self) -> tuple[str, type[np.floating[Any]], int | None]:
        """Check the graph input against the spec; return name, dtype, fixed batch size."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelSpecMismatchError(
                self.path,
                f"expected 1 input, got {len(inputs)}: {[(i.name, i.shape) for i in inputs]}",
            )
        inp = inputs[0]
        actual = list(inp.shape)
        expected = self._expected_input_shape("batch")
        ok = len(actual) == 4 and all(
            not isinstance(a, int) or not isinstance(e, int) or a == e
            for a, e in zip(actual[1:], expected[1:], strict=True)
        )
        if not ok:
            raise ModelSpecMismatchError(
                self.path,
                f"input {inp.name!r} shape mismatch: spec ({self.spec.input_layout}, input_size "
                f"{self.spec.input_size}) expects {expected}, graph has {actual}",
            )
        if inp.type == "tensor(float)":
            dtype: type[np.floating[Any]] = np.float32
        elif inp.type == "tensor(float16)":
            dtype = np.float16
        else:
            raise ModelSpecMismatchError(
                self.path, f"input {inp.name!r} must be tensor(float), graph has {inp.type}"
            )
        batch_dim = actual[0]
        fixed: int | None = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        if fixed is not None and self.spec.dynamic_batch and fixed != 1:
            logger.warning(
                "%s: spec says dynamic batch but the graph's batch axis is fixed at %d",
                self.path,
                fixed,
            )
        elif fixed == 1 and self.spec.dynamic_batch:
            logger.info("%s: graph batch axis is fixed at 1; images run one by one", self.path)
        if fixed is None and not self.spec.dynamic_batch:
            fixed = 1  # the spec knows better (e.g. a graph that only claims to be dynamic)
        return inp.name, dtype, fixed

    def _validate_outputs(self) -> None:
        outputs = self._session.get_outputs()
        if not outputs:
            raise ModelSpecMismatchError(self.path, "graph has no output")
        if self.spec.layout in ("yolov5", "yolov8"):
            from detectors.decoders.yolo import YoloDecodeError, infer_yolo_layout

            shape = outputs[0].shape
            n_cls = len(self.spec.class_names)
            if all(isinstance(d, int) for d in shape[1:]):
                try:
                    layout = infer_yolo_layout(shape, n_cls)
                except YoloDecodeError as e:
                    raise ModelSpecMismatchError(self.path, str(e)) from e
                if layout != self.spec.layout:
                    raise ModelSpecMismatchError(
                        self.path,
                        f"spec layout {self.spec.layout!r} but output {outputs[0].name!r} "
                        f"shape {shape} is {layout!r} for {n_cls} classes",
                    )
            elif len(shape) != 3:
                raise ModelSpecMismatchError(
                    self.path, f"YOLO output must be 3-D, graph has {shape}"
                )
        elif self.spec.layout == "nanodet":
            expected = 2 * len(self.spec.strides)
            if len(outputs) != expected:
                raise ModelSpecMismatchError(
                    self.path,
                    f"nanodet with strides {self.spec.strides} expects {expected} outputs, "
                    f"graph has {len(outputs)}: {[o.name for o in outputs]}",
                )

    # ---------------------------------------------------------------- inference
    @property
    def batch_size(self) -> int:
        """Images per ``session.run``: the graph's fixed batch, else ``max_batch``."""
        return self._fixed_batch or self.max_batch

    def _run(self, tensor: npt.NDArray[np.float32]) -> list[np.ndarray]:
        n = tensor.shape[0]
        feed: np.ndarray = tensor
        if self._fixed_batch is not None and n < self._fixed_batch:
            # A graph with a fixed batch > 1: pad with zero images, drop their outputs.
            pad = np.zeros((self._fixed_batch - n, *tensor.shape[1:]), tensor.dtype)
            feed = np.concatenate([tensor, pad])
        if self._input_dtype is not np.float32:
            feed = feed.astype(self._input_dtype)
        try:
            if self.io_binding:
                outputs = self._run_bound(feed)
            else:
                outputs = self._session.run(None, {self._input_name: feed})
        except _ORT_ERRORS as e:
            raise InferenceError(self.path, tuple(feed.shape), str(e)) from e
        return [np.asarray(o)[:n] for o in outputs]

    def _run_bound(self, feed: np.ndarray) -> list[np.ndarray]:
        """One run through the I/O binding of ``feed``'s shape (see ``io_binding``): a
        binding per batch shape, since its outputs are allocated by the first run with
        their shape; outputs come back on the host."""
        device, device_id = self._device
        bound = self._bindings.get(feed.shape)
        if bound is None:
            binding = self._session.io_binding()
            for out in self._session.get_outputs():
                binding.bind_output(out.name, "cpu")
            value = None
            if device != "cpu":
                value = ort.OrtValue.ortvalue_from_numpy(feed, device, device_id)
                binding.bind_ortvalue_input(self._input_name, value)
            bound = self._bindings[feed.shape] = (binding, value)
        binding, value = bound
        if value is None:
            binding.bind_cpu_input(self._input_name, feed)
        else:
            value.update_inplace(feed)
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def _postprocess(self, raw: RawDetections, meta: LetterboxMeta) -> Detections:
        names = self.spec.class_names
        if len(raw) == 0:
            return Detections.empty(names)
        if self.classes is not None:
            mask = np.isin(raw.class_id, np.fromiter(self.classes, np.int64))
            raw = RawDetections(raw.xyxy[mask], raw.score[mask], raw.class_id[mask])
        keep = nms(
            raw.xyxy,
            raw.score,
            raw.class_id,
            iou_threshold=self.iou_threshold,
            conf_threshold=self.conf_threshold,
            class_thresholds=self.class_thresholds,
            max_detections=self.max_detections,
            max_candidates=self.max_candidates,
        )
        xyxy = meta.to_original(raw.xyxy[keep], clip=True)
        # Boxes lying wholly in the letterbox padding collapse to zero area when clipped.
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(
            xyxy=xyxy[valid],
            score=raw.score[keep][valid].astype(np.float32, copy=False),
            class_id=raw.class_id[keep][valid].astype(np.int64, copy=False),
            names=names,
        )

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect objects in each image (``finish(infer(prepare(images)))``).

        Args:
            images: BGR images, each ``(h, w, 3)`` uint8, any sizes (may differ).

        Returns:
            One ``Detections`` per image, in order: boxes in that image's pixels (clipped
            to it), highest score first, ``tracker_id`` all ``-1``,
            ``names = spec.class_names``.

        Raises:
            detectors.preprocess.PreprocessError: an image is not HxWx3 uint8.
            InferenceError: onnxruntime failed.
        """
        staged = self.infer(self.prepare(images))
        results = self.finish(staged)
        self.last_timings = DetectTimings(
            staged.preprocess_ms, staged.inference_ms, staged.postprocess_ms, len(images)
        )
        return results

    # The three stages of ``detect``, for a caller that overlaps them (the runner runs
    # ``infer`` on its own thread while it prepares the next batch and finishes the last).
    def prepare(self, images: Sequence[npt.NDArray[np.uint8]]) -> Staged:
        """Stage 1: letterbox and normalise ``images`` into input tensors, one per chunk of
        ``batch_size`` images.

        Raises:
            detectors.preprocess.PreprocessError: an image is not HxWx3 uint8.
        """
        t0 = time.perf_counter()
        staged = Staged(len(images))
        step = self.batch_size
        for start in range(0, len(images), step):
            tensor, metas = preprocess(
                images[start : start + step], self.spec, center=self.letterbox_center
            )
            staged.chunks.append((tensor, metas))
        staged.preprocess_ms = 1e3 * (time.perf_counter() - t0)
        return staged

    def infer(self, staged: Staged) -> Staged:
        """Stage 2: run the network on every prepared chunk (releases the GIL while
        onnxruntime runs); returns ``staged`` with the raw outputs.

        Raises:
            InferenceError: onnxruntime failed.
        """
        t0 = time.perf_counter()
        staged.outputs = [self._run(tensor) for tensor, _ in staged.chunks]
        staged.inference_ms = 1e3 * (time.perf_counter() - t0)
        return staged

    def finish(self, staged: Staged) -> list[Detections]:
        """Stage 3: decode the raw outputs, NMS, boxes back to each image's pixels."""
        t0 = time.perf_counter()
        results: list[Detections] = []
        decode_thr = min([self.conf_threshold, *self.class_thresholds.values()])
        for (_, metas), outputs in zip(staged.chunks, staged.outputs, strict=True):
            raws = self._decoder(outputs, self.spec, decode_thr)
            results.extend(self._postprocess(r, m) for r, m in zip(raws, metas, strict=True))
        staged.postprocess_ms = 1e3 * (time.perf_counter() - t0)
        return results

    def warmup(self, batch_sizes: Sequence[int] | None = None) -> None:
        """Run the network once per batch size on black frames and discard the result.

        The first ``session.run`` for a given input shape is slow: onnxruntime allocates
        its memory arena and picks kernels, CUDA initialises its context and cuDNN
        benchmarks convolution algorithms, TensorRT may even build its engine.  Doing that
        here, at start-up, keeps the first real frames from being late.

        Args:
            batch_sizes: Batch sizes to warm up; default ``1`` and ``batch_size``.
        """
        sizes = sorted(set(batch_sizes or (1, self.batch_size)))
        w, h = self.spec.input_size
        black = np.zeros((h, w, 3), np.uint8)
        for b in sizes:
            t0 = time.perf_counter()
            self.detect([black] * b)
            logger.info("warm-up batch %d: %.1f ms", b, 1e3 * (time.perf_counter() - t0))


__all__ = [
    "DetectTimings",
    "InferenceError",
    "ModelLoadError",
    "ModelSpecMismatchError",
    "OnnxDetector",
    "Staged",
]
