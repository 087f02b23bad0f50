"""OnnxDetector on tiny ONNX graphs built in tmp_path, and provider selection with fakes.

The test graph is a miniature YOLOv8-layout "detector" whose class scores are computed
from the input: the score of class c is the mean of network channel c (RGB, 0..1), for
two fixed anchors (the second at half score).  So a red frame yields class 0 "red", a
green one class 1, and the exact scores follow from the letterbox padding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from detectors.onnx_detector import (  # noqa: E402
    ModelLoadError,
    ModelSpecMismatchError,
    OnnxDetector,
)
from detectors.providers import (  # noqa: E402
    CPU,
    CUDA,
    TENSORRT,
    ProviderError,
    log_loaded_providers,
    provider_configs,
    select_providers,
    session_options,
)
from detectors.spec import ModelSpec  # noqa: E402

pytestmark = pytest.mark.unit

NET = 64
NAMES = ("red", "green", "blue")
# Anchor (cx, cy, w, h) in network pixels: [24, 24, 40, 40] and [4, 4, 12, 12] as xyxy.
ANCHORS = np.array([[32, 32, 16, 16], [8, 8, 8, 8]], np.float32)
PAD = 114


def build_graph(path: Path, batch: int | str = "batch") -> Path:
    """Write the colour-mean YOLOv8-layout graph: images [B,3,64,64] -> output0 [B,7,2]."""
    consts = [
        helper.make_tensor("unsq_axes", TensorProto.INT64, [1], [2]),
        helper.make_tensor("anchor_w", TensorProto.FLOAT, [1, 1, 2], [1.0, 0.5]),
        helper.make_tensor("boxes", TensorProto.FLOAT, [1, 4, 2], ANCHORS.T.flatten().tolist()),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),  # [B,3]
        helper.make_node("Unsqueeze", ["m", "unsq_axes"], ["m3"]),  # [B,3,1]
        helper.make_node("Mul", ["m3", "anchor_w"], ["scores"]),  # [B,3,2]
        helper.make_node("ReduceMean", ["m3"], ["mb"], axes=[1], keepdims=1),  # [B,1,1]
        helper.make_node("Mul", ["mb", "zero"], ["zb"]),
        helper.make_node("Add", ["boxes", "zb"], ["boxes_b"]),  # [B,4,2]
        helper.make_node("Concat", ["boxes_b", "scores"], ["output0"], axis=1),  # [B,7,2]
    ]
    graph = helper.make_graph(
        nodes,
        "colour_mean_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, NET, NET])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 7, 2])],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_spec(path: Path, **kw: object) -> ModelSpec:
    base: dict[str, object] = dict(
        name="colour",
        path=path,
        layout="yolov8",
        class_names=NAMES,
        input_size=(NET, NET),
        pad_value=PAD,
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


def solid(w: int, h: int, bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bgr
    return img


def mean_score(frac_image: float) -> float:
    """Mean of a 255 channel when ``frac_image`` of the canvas is image, rest padding."""
    return (frac_image * 255 + (1 - frac_image) * PAD) / 255


IMAGES = [
    solid(64, 32, (0, 0, 255)),  # red, 64x32: pad_y 16, half the canvas is padding
    solid(100, 100, (0, 255, 0)),  # green, square: scale 0.64, no padding
    solid(30, 60, (255, 0, 0)),  # blue, 30x60: scaled to 32x64, pad_x 16
]


def check_expected(dets: list) -> None:  # type: ignore[type-arg]
    assert len(dets) == 3
    red, green, blue = dets
    # red: anchor 0 -> [24, 24-16, 40, 40-16]; anchor 1 lies in the top padding -> dropped.
    assert red.class_id.tolist() == [0]
    np.testing.assert_allclose(red.score, [mean_score(0.5)], atol=1e-4)
    np.testing.assert_allclose(red.xyxy, [[24, 8, 40, 24]], atol=1e-3)
    # green: both anchors, divided by the scale 0.64, sorted by score.
    assert green.class_id.tolist() == [1, 1]
    np.testing.assert_allclose(green.score, [1.0, 0.5], atol=1e-4)
    np.testing.assert_allclose(
        green.xyxy, [[37.5, 37.5, 62.5, 62.5], [6.25, 6.25, 18.75, 18.75]], atol=1e-3
    )
    # blue: scale 32/30, pad_x 16 -> [(24-16)*30/32, 24*60/64, (40-16)*30/32, 40*60/64].
    assert blue.class_id.tolist() == [2]
    np.testing.assert_allclose(blue.score, [mean_score(0.5)], atol=1e-4)
    np.testing.assert_allclose(blue.xyxy, [[7.5, 22.5, 22.5, 37.5]], atol=1e-3)
    for d in dets:
        assert d.names == NAMES
        assert d.tracker_id.tolist() == [-1] * len(d)
        assert d.xyxy.dtype == np.float32 and d.score.dtype == np.float32


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_graph(tmp_path_factory.mktemp("m") / "dyn.onnx")


def test_detect_dynamic_batch(dynamic_model: Path) -> None:
    det = OnnxDetector(make_spec(dynamic_model), conf_threshold=0.3, max_batch=2)
    assert det.providers == [CPU]
    assert det.batch_size == 2
    check_expected(det.detect(IMAGES))
    assert det.last_timings is not None and det.last_timings.images == 3
    assert det.detect([]) == []


@pytest.mark.parametrize("fixed", [1, 2])
def test_detect_fixed_batch_graph(tmp_path: Path, fixed: int) -> None:
    path = build_graph(tmp_path / f"fixed{fixed}.onnx", batch=fixed)
    det = OnnxDetector(make_spec(path), conf_threshold=0.3, max_batch=8)
    assert det.batch_size == fixed  # read from the graph, not max_batch
    check_expected(det.detect(IMAGES))


def test_spec_without_dynamic_batch_runs_one_by_one(dynamic_model: Path) -> None:
    det = OnnxDetector(make_spec(dynamic_model, dynamic_batch=False), conf_threshold=0.3)
    assert det.batch_size == 1
    check_expected(det.detect(IMAGES))


def test_class_filter_thresholds_and_cap(dynamic_model: Path) -> None:
    spec = make_spec(dynamic_model)
    red, green, _ = OnnxDetector(spec, conf_threshold=0.3, classes=[1]).detect(IMAGES)
    assert len(red) == 0 and green.class_id.tolist() == [1, 1]
    # per-class threshold above the half-score anchor drops it
    green = OnnxDetector(spec, conf_threshold=0.3, class_thresholds={1: 0.6}).detect(IMAGES)[1]
    assert green.score.tolist() == pytest.approx([1.0])
    # a per-class threshold below the default lets more through (decoder uses the minimum)
    dets = OnnxDetector(spec, conf_threshold=0.9, class_thresholds={1: 0.4}).detect(IMAGES)
    assert [len(d) for d in dets] == [0, 2, 0]
    green = OnnxDetector(spec, conf_threshold=0.3, max_detections=1).detect(IMAGES)[1]
    assert green.score.tolist() == pytest.approx([1.0])


def test_tensorrt_profile_covers_batch_range(dynamic_model: Path) -> None:
    # The TensorRT branch cannot run here (no GPU); its profile builder can.
    det = OnnxDetector(make_spec(dynamic_model), max_batch=4)
    assert det._trt_profile() == ("images", [1, 3, 64, 64], [4, 3, 64, 64], [4, 3, 64, 64])


def test_warmup(dynamic_model: Path) -> None:
    det = OnnxDetector(make_spec(dynamic_model), max_batch=3)
    det.warmup()
    assert det.last_timings is not None and det.last_timings.images == 3


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError, match=r"nope\.onnx") as info:
        OnnxDetector(make_spec(missing))
    assert info.value.path == missing
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 50)
    with pytest.raises(ModelLoadError, match=r"garbage\.onnx") as info2:
        OnnxDetector(make_spec(garbage))
    assert info2.value.__cause__ is not None


def test_input_shape_mismatch_message(dynamic_model: Path) -> None:
    with pytest.raises(ModelSpecMismatchError) as info:
        OnnxDetector(make_spec(dynamic_model, input_size=(32, 32)))
    msg = str(info.value)
    assert "'batch', 3, 32, 32" in msg and "3, 64, 64" in msg
    with pytest.raises(ModelSpecMismatchError, match="NHWC"):
        OnnxDetector(make_spec(dynamic_model, input_layout="NHWC"))


def test_layout_and_class_count_mismatch(dynamic_model: Path) -> None:
    with pytest.raises(ModelSpecMismatchError):
        OnnxDetector(make_spec(dynamic_model, layout="yolov5"))
    with pytest.raises(ModelSpecMismatchError):
        OnnxDetector(make_spec(dynamic_model, class_names=("a", "b")))


def test_bad_arguments(dynamic_model: Path) -> None:
    with pytest.raises(ValueError, match="conf_threshold"):
        OnnxDetector(make_spec(dynamic_model), conf_threshold=1.5)
    with pytest.raises(ValueError, match="max_batch"):
        OnnxDetector(make_spec(dynamic_model), max_batch=0)


# --------------------------------------------------------------- providers
ALL = [TENSORRT, CUDA, CPU]


def test_auto_prefers_tensorrt_cuda_cpu() -> None:
    everything = [CPU, CUDA, TENSORRT, "AzureExecutionProvider"]
    assert select_providers("auto", available=everything) == ALL
    assert select_providers("auto", available=[CPU, CUDA]) == [CUDA, CPU]
    assert select_providers("auto", available=[CPU]) == [CPU]


def test_explicit_list_is_ordered_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    assert select_providers([CPU, CUDA, TENSORRT], available=ALL) == ALL
    assert select_providers(["cuda"], available=ALL) == [CUDA, CPU]
    with caplog.at_level(logging.WARNING, logger="detectors.providers"):
        chosen = select_providers(["tensorrt", "cuda", "cpu"], available=[CPU])
    assert chosen == [CPU]
    text = caplog.text
    assert "CUDA requested but not available" in text and "Tensorrt requested" in text
    assert "using CPU" in text


def test_bad_preference() -> None:
    with pytest.raises(ProviderError):
        select_providers([], available=ALL)


def test_provider_configs(tmp_path: Path) -> None:
    cache = tmp_path / "trt" / "cache"
    cfg = dict(
        provider_configs(
            ALL,
            trt_fp16=True,
            trt_cache_dir=cache,
            trt_profile=("images", [1, 3, 64, 64], [8, 3, 64, 64], [8, 3, 64, 64]),
        )
    )
    trt = cfg[TENSORRT]
    assert cache.is_dir()
    assert trt["trt_fp16_enable"] == "True"
    assert trt["trt_engine_cache_enable"] == "True"
    assert trt["trt_engine_cache_path"] == str(cache)
    assert trt["trt_profile_min_shapes"] == "images:1x3x64x64"
    assert trt["trt_profile_max_shapes"] == "images:8x3x64x64"
    assert cfg[CUDA]["device_id"] == "0"
    assert cfg[CPU] == {}


def test_silent_fallback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class FakeSession:
        def get_providers(self) -> list[str]:
            return [CPU]

    with caplog.at_level(logging.WARNING, logger="detectors.providers"):
        loaded = log_loaded_providers([CUDA, CPU], FakeSession())
    assert loaded == [CPU]
    assert "could not load CUDA" in caplog.text


def test_session_options_threads() -> None:
    assert session_options(3).intra_op_num_threads == 3
    with pytest.raises(ProviderError):
        session_options(0)


def test_io_binding_gives_the_same_detections(dynamic_model: Path) -> None:
    """The GPU feeding path (I/O binding), run on the CPU provider: same results as a plain
    run, for every batch size (one device buffer per shape on a GPU)."""
    plain = OnnxDetector(make_spec(dynamic_model), providers="cpu")
    bound = OnnxDetector(make_spec(dynamic_model), providers="cpu", io_binding=True)
    assert not plain.io_binding and bound.io_binding
    for n in (1, 3, 2, 3):
        a, b = plain.detect(IMAGES[:n]), bound.detect(IMAGES[:n])
        assert len(a) == len(b) == n
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.xyxy, y.xyxy)
            np.testing.assert_array_equal(x.score, y.score)
            np.testing.assert_array_equal(x.class_id, y.class_id)
    check_expected(bound.detect(IMAGES))
