"""models.variants on a tiny convolutional ONNX model built here: int8 and fp16 variants
registered next to it, compared with it through onnxruntime, and the error cases.

The model: ``images [B, 3, 16, 16]`` -> 3x3 conv (8 channels) -> LeakyReLU -> two 1x1
convolutions: ``scores = sigmoid(conv)`` ``[B, 4, 16, 16]`` and ``raw = conv``
``[B, 2, 16, 16]`` (a "head" of two outputs, like a detector's class and box branches).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from detectors.preprocess import preprocess
from models.manifest import ModelManifest
from models.registry import (
    ModelError,
    ModelNotFoundError,
    install_model,
    load_manifest,
)
from models.variants import (
    CalibrationError,
    FrameCalibrationReader,
    VariantError,
    VariantExistsError,
    calibration_batches,
    export_fp16,
    head_nodes,
    quantize_int8,
    read_frames,
)

pytestmark = pytest.mark.unit

NET = 16
NAME = "tiny"


def tiny_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)

    inits = [
        init("w1", 8, 3, 3, 3),
        init("b1", 8, scale=0.1),
        init("w2", 4, 8, 1, 1),
        init("b2", 4, scale=0.1),
        init("w3", 2, 8, 1, 1),
        init("b3", 2, scale=0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["a1"], name="act1", alpha=0.1),
        helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], name="cls_conv"),
        helper.make_node("Sigmoid", ["c2"], ["scores"], name="cls_sigmoid"),
        helper.make_node("Conv", ["a1", "w3", "b3"], ["raw"], name="box_conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, NET, NET])],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 4, NET, NET]),
            helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["batch", 2, NET, NET]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A registry holding the tiny float32 model as ``tiny``."""
    data = tiny_model().SerializeToString()
    manifest = ModelManifest(
        name=NAME,
        classes=["a", "b", "c", "d"],
        input_size=(NET, NET),
        layout="nanodet",
        licence="Apache-2.0",
        source="built by the test",
        upstream="tests/unit/test_variants.py",
        sha256=hashlib.sha256(data).hexdigest(),
        created_at=datetime.now(UTC),
    )
    mdir = tmp_path / "models"
    install_model(mdir, manifest, data)
    return mdir


def images(n: int, seed: int) -> list[np.ndarray]:
    """Smooth colour gradients with noise, ``(24, 32, 3)`` uint8 BGR (letterboxed to 16)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:24, 0:32].astype(np.float32)
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(-4, 4, 3)
        base = 128 + 60 * np.sin(a * xx / 32 + b * yy / 24 + c)
        img = np.stack([base, 255 - base, base * rng.uniform(0.3, 1)], axis=2)
        img += rng.normal(0, 8, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def run(mdir: Path, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(
        str(load_manifest(mdir, name).onnx_path(mdir)), providers=["CPUExecutionProvider"]
    )
    return dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x}), strict=True)
    )


def held_out(mdir: Path) -> np.ndarray:
    spec = load_manifest(mdir, NAME).to_spec(mdir)
    tensor, _ = preprocess(images(6, seed=99), spec)
    return tensor


# ------------------------------------------------------------------------------- int8


def test_int8_variant_is_registered_and_close_to_float(models_dir: Path) -> None:
    manifest = quantize_int8(models_dir, NAME, images(24, seed=1), verify=False)
    assert manifest.name == "tiny-int8"
    loaded = load_manifest(models_dir, "tiny-int8")  # hash checked
    assert loaded == manifest
    src = load_manifest(models_dir, NAME)
    for same in ("classes", "input_size", "layout", "mean", "std", "scale", "licence"):
        assert getattr(loaded, same) == getattr(src, same)
    assert (
        "int8" in loaded.source and "24 frames" in loaded.source and "per-tensor" in loaded.source
    )
    assert loaded.upstream == src.upstream

    graph = onnx.load(str(loaded.onnx_path(models_dir))).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    assert [i.type.tensor_type.elem_type for i in graph.input] == [TensorProto.FLOAT]
    assert {o.type.tensor_type.elem_type for o in graph.output} == {TensorProto.FLOAT}

    x = held_out(models_dir)
    ref, q = run(models_dir, NAME, x), run(models_dir, "tiny-int8", x)
    for out in ("scores", "raw"):
        span = float(ref[out].max() - ref[out].min())
        err = np.abs(q[out] - ref[out])
        assert float(err.max()) < 0.05 * span, (out, float(err.max()), span)
        assert float(err.mean()) < 0.01 * span, (out, float(err.mean()), span)


def _weight_is_float(graph: onnx.GraphProto, conv: str) -> bool:
    """Whether node ``conv``'s weight is a float initializer (not a DequantizeLinear)."""
    node = next(n for n in graph.node if n.name == conv)
    return node.input[1] in {i.name for i in graph.initializer if i.data_type == TensorProto.FLOAT}


def test_head_is_kept_float_unless_asked(models_dir: Path) -> None:
    assert set(head_nodes(tiny_model())) == {"cls_sigmoid", "cls_conv", "box_conv"}
    frames = images(16, seed=2)
    kept = quantize_int8(models_dir, NAME, frames, verify=False)
    graph = onnx.load(str(kept.onnx_path(models_dir))).graph
    assert _weight_is_float(graph, "cls_conv") and _weight_is_float(graph, "box_conv")
    assert not _weight_is_float(graph, "conv1")

    full = quantize_int8(
        models_dir, NAME, frames, out_name="tiny-int8-all", keep_head_float=False, verify=False
    )
    graph = onnx.load(str(full.onnx_path(models_dir))).graph
    assert not any(_weight_is_float(graph, c) for c in ("conv1", "cls_conv", "box_conv"))


@pytest.mark.parametrize(
    "options",
    [
        {"per_channel": True},
        {"per_channel": True, "reduce_range": True},
        {"calibrate_method": "percentile"},
        {"activation_type": "int8"},
    ],
)
def test_other_settings_quantize_and_stay_close(
    models_dir: Path, options: dict[str, object]
) -> None:
    # 9 frames: with a histogram calibration the last batch would be shorter (the
    # calibrator needs equal batches, so it gets one frame per batch).
    m = quantize_int8(models_dir, NAME, images(9, seed=3), verify=False, **options)  # type: ignore[arg-type]
    x = held_out(models_dir)
    ref, q = run(models_dir, NAME, x), run(models_dir, m.name, x)
    span = float(ref["scores"].max() - ref["scores"].min())
    assert float(np.abs(q["scores"] - ref["scores"]).max()) < 0.08 * span


def test_calibration_tensors_are_the_detector_preprocessing(models_dir: Path) -> None:
    spec = load_manifest(models_dir, NAME).to_spec(models_dir)
    frames = images(5, seed=4)
    batches = list(calibration_batches(iter(frames), spec, batch=2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    expected, _ = preprocess(frames, spec)
    np.testing.assert_array_equal(np.concatenate(batches), expected)

    reader = FrameCalibrationReader("images", batches)
    assert len(reader) == 3
    fed = [reader.get_next() for _ in range(4)]
    assert fed[3] is None and fed[0] is not None and fed[0]["images"] is batches[0]
    reader.rewind()
    assert [f["images"].shape[0] for f in reader] == [2, 2, 1]


# ------------------------------------------------------------------------------- fp16


def test_fp16_variant_keeps_float32_io_and_is_close(models_dir: Path) -> None:
    manifest = export_fp16(models_dir, NAME, verify=False)
    assert manifest.name == "tiny-fp16" and "float16" in manifest.source
    path = load_manifest(models_dir, "tiny-fp16").onnx_path(models_dir)
    model = onnx.load(str(path))
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.FLOAT]
    assert {o.type.tensor_type.elem_type for o in model.graph.output} == {TensorProto.FLOAT}
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.FLOAT16}

    x = held_out(models_dir)
    ref, half = run(models_dir, NAME, x), run(models_dir, "tiny-fp16", x)  # CPU provider
    for out in ("scores", "raw"):
        assert half[out].dtype == np.float32
        np.testing.assert_allclose(half[out], ref[out], atol=5e-3, rtol=5e-3)


# ------------------------------------------------------------------------------ errors


def test_missing_source_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="nope"):
        quantize_int8(tmp_path / "models", "nope", images(2, seed=5), verify=False)
    with pytest.raises(ModelError, match="nope"):
        export_fp16(tmp_path / "models", "nope", verify=False)


def test_no_or_bad_calibration_frames(models_dir: Path) -> None:
    with pytest.raises(CalibrationError, match="no calibration frames"):
        quantize_int8(models_dir, NAME, [], verify=False)
    grey = np.zeros((24, 32), np.uint8)
    with pytest.raises(CalibrationError, match="image 2"):
        quantize_int8(models_dir, NAME, [*images(2, seed=6), grey], verify=False)
    assert not (models_dir / "tiny-int8").exists()


def test_bad_target_names_and_existing_target(models_dir: Path) -> None:
    with pytest.raises(VariantError, match="other than its source"):
        export_fp16(models_dir, NAME, out_name=NAME, verify=False)
    with pytest.raises(VariantError, match="invalid model name"):
        export_fp16(models_dir, NAME, out_name="Tiny FP16", verify=False)
    export_fp16(models_dir, NAME, verify=False)
    with pytest.raises(VariantExistsError, match="already registered"):
        export_fp16(models_dir, NAME, verify=False)
    export_fp16(models_dir, NAME, verify=False, force=True)
    with pytest.raises(VariantError, match="calibrate_method"):
        quantize_int8(models_dir, NAME, images(2, 7), calibrate_method="mse", verify=False)  # type: ignore[arg-type]


def test_read_frames(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="not found"):
        read_frames(tmp_path / "missing.avi", 4)
    with pytest.raises(ValueError):
        read_frames(tmp_path / "missing.avi", 0)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (32, 24))
    for k in range(10):
        writer.write(np.full((24, 32, 3), 20 * k, np.uint8))
    writer.release()
    frames = read_frames(video, 3, start=1, step=4)  # frames 1, 5, 9
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3)
    assert [round(float(f.mean()) / 20) for f in frames] == [1, 5, 9]
    assert len(read_frames(video, 100, step=3)) == 4  # 0, 3, 6, 9
    with pytest.raises(CalibrationError, match="no frame 50"):
        read_frames(video, 2, start=50)
