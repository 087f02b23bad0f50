"""Unit tests of the TF.js graph -> ONNX converter on tiny synthetic graphs written to tmp_path.

Converted graphs are run with onnxruntime and compared against (a) the converter's own
numpy reference interpreter and (b) independent hand computations (explicit convolution
loops, TF ResizeBilinear values worked out by hand).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.tfjs_to_onnx import (
    TfjsFormatError,
    UnsupportedOpError,
    convert_tfjs_to_onnx,
    load_tfjs_graph,
    run_tfjs_graph,
    save_onnx,
)

pytestmark = pytest.mark.unit


class GraphWriter:
    """Builds a TF.js graph model (model.json + one weight shard) in a directory."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.weights: list[dict[str, Any]] = []
        self.blob = bytearray()

    def placeholder(self, name: str, shape: list[int]) -> str:
        dims = [{"size": str(d)} for d in shape]
        self.nodes.append(
            {
                "name": name,
                "op": "Placeholder",
                "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}},
            }
        )
        return name

    def const(self, name: str, value: np.ndarray, quant: str | None = None) -> str:
        value = np.asarray(value)
        dtype = "float32" if value.dtype.kind == "f" else "int32"
        entry: dict[str, Any] = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quant == "float16":
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            self.blob += value.astype(np.float16).tobytes()
        elif quant == "uint8":
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255.0
            q = np.round((value - lo) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            self.blob += q.tobytes()
        else:
            self.blob += value.astype(np.float32 if dtype == "float32" else np.int32).tobytes()
        self.weights.append(entry)
        tf_type = "DT_FLOAT" if dtype == "float32" else "DT_INT32"
        self.nodes.append(
            {"name": name, "op": "Const", "attr": {"dtype": {"type": tf_type}}, "input": []}
        )
        return name

    def op(self, name: str, op: str, inputs: list[str], **attr: Any) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs, "attr": attr})
        return name

    def write(self, directory: Path, inputs: dict[str, list[int]], outputs: list[str]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "w.bin").write_bytes(bytes(self.blob))
        doc = {
            "format": "graph-model",
            "signature": {
                "inputs": {
                    f"{k}:0": {
                        "name": f"{k}:0",
                        "tensorShape": {"dim": [{"size": str(d)} for d in v]},
                    }
                    for k, v in inputs.items()
                },
                "outputs": {f"{o}:0": {"name": f"{o}:0"} for o in outputs},
            },
            "modelTopology": {"node": self.nodes},
            "weightsManifest": [{"paths": ["w.bin"], "weights": self.weights}],
        }
        path = directory / "model.json"
        path.write_text(json.dumps(doc))
        return path


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def _conv_attrs(strides: int = 1) -> dict[str, Any]:
    return {
        "padding": _s("VALID"),
        "data_format": _s("NHWC"),
        "strides": _ints([1, strides, strides, 1]),
        "dilations": _ints([1, 1, 1, 1]),
    }


def build_mixed_graph(
    directory: Path, rng: np.random.Generator
) -> tuple[Path, dict[str, np.ndarray]]:
    """NCHW input -> onnx-tf style graph using every supported op. Returns path + weights."""
    g = GraphWriter()
    w1 = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b1 = rng.standard_normal(4).astype(np.float32)
    w2 = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    x = g.placeholder("x", [1, 3, 8, 8])
    pad = g.op("pad", "Pad", [x, g.const("pads", np.array([[0, 0], [0, 0], [1, 1], [1, 1]]))])
    t1 = g.op("t1", "Transpose", [pad, g.const("p_nhwc", np.array([0, 2, 3, 1]))])
    c1 = g.op("conv1", "Conv2D", [t1, g.const("w1", w1, "float16")], **_conv_attrs())
    a1 = g.op("bias1", "Add", [c1, g.const("b1", b1)])
    t2 = g.op("t2", "Transpose", [a1, g.const("p_nchw", np.array([0, 3, 1, 2]))])
    r1 = g.op("lrelu", "LeakyRelu", [t2], alpha={"f": 0.1})
    t3 = g.op("t3", "Transpose", [r1, "p_nhwc"])
    c2 = g.op("conv2", "Conv2D", [t3, g.const("w2", w2, "uint8")], **_conv_attrs())
    t4 = g.op("t4", "Transpose", [c2, "p_nchw"])
    cat = g.op("cat", "ConcatV2", [r1, t4, g.const("axis1", np.array(1))], N={"i": "2"})
    t5 = g.op("t5", "Transpose", [cat, "p_nhwc"])
    up = g.op(
        "up",
        "ResizeBilinear",
        [t5, g.const("size16", np.array([16, 16]))],
        half_pixel_centers={"b": True},
        align_corners={"b": False},
    )
    ac = g.op(
        "ac",
        "ResizeBilinear",
        [t5, g.const("size5", np.array([5, 5]))],
        half_pixel_centers={"b": False},
        align_corners={"b": True},
    )
    neg = g.const("neg_inf", np.array(-np.inf, np.float32))
    # onnx-tf style: pads happen in NCHW between transposes
    up_nchw = g.op("t_up", "Transpose", [up, "p_nchw"])
    mp_pads = g.const("mp_pads", np.array([[0, 0], [0, 0], [0, 1], [0, 1]]))
    ppad = g.op("ppad", "PadV2", [up_nchw, mp_pads, neg])
    ppad_nhwc = g.op("t_pp", "Transpose", [ppad, "p_nhwc"])
    mp = g.op(
        "pool",
        "MaxPool",
        [ppad_nhwc],
        ksize=_ints([1, 3, 3, 1]),
        strides=_ints([1, 2, 2, 1]),
        padding=_s("VALID"),
        data_format=_s("NHWC"),
    )
    t6 = g.op("t6", "Transpose", [mp, "p_nchw"])
    sp = g.op(
        "split",
        "SplitV",
        [t6, g.const("sizes", np.array([3, 5])), g.const("sdim", np.array(1))],
        num_split={"i": "2"},
    )
    sig = g.op("sig", "Sigmoid", [sp])
    # reshape target computed like onnx-tf does: base + SparseToDense(empty) (constant-folded)
    std = g.op(
        "s2d",
        "SparseToDense",
        [
            g.const("where", np.zeros((0, 1), np.int32)),
            g.const("shape3", np.array([3])),
            g.const("gather", np.zeros((0,), np.int32)),
            g.const("zero", np.array(0)),
        ],
    )
    target = g.op("target", "AddV2", [g.const("base", np.array([1, 3, -1])), std])
    rs = g.op("reshape", "Reshape", [sig, target])
    out_a = g.op("out_a", "Identity", [rs])
    rs2 = g.op("reshape2", "Reshape", ["split:1", "base2"])
    g.const("base2", np.array([1, 5, -1]))
    out_b = g.op("out_b", "Identity", [rs2])
    out_c = g.op("out_c", "Identity", [ac])
    path = g.write(directory, {"x": [1, 3, 8, 8]}, [out_a, out_b, out_c])
    return path, {"w1": w1, "b1": b1, "w2": w2}


def _session(model_path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])


def _conv_loops(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Independent VALID NHWC convolution with explicit loops (x (1,H,W,C), w HWIO)."""
    kh, kw, _, co = w.shape
    _, h, wd, _ = x.shape
    out = np.zeros((1, h - kh + 1, wd - kw + 1, co), np.float64)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[0, i : i + kh, j : j + kw, :].astype(np.float64)
            out[0, i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return out


def test_converted_graph_matches_reference_and_hand_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path, weights = build_mixed_graph(tmp_path / "m", rng)
    names = {"out_a:0": "a", "out_b:0": "b", "out_c:0": "c"}
    model = convert_tfjs_to_onnx(path, output_names=names)
    onnx_path = tmp_path / "m.onnx"
    save_onnx(model, onnx_path)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = dict(
        zip(["a", "b", "c"], _session(onnx_path).run(["a", "b", "c"], {"images": x}), strict=True)
    )
    ref = run_tfjs_graph(load_tfjs_graph(path), {"x": x})
    for tf_name, onnx_name in names.items():
        assert got[onnx_name].shape == ref[tf_name].shape
        np.testing.assert_allclose(got[onnx_name], ref[tf_name], rtol=1e-4, atol=1e-5)
    assert got["a"].shape == (1, 3, 64)  # 16x16 -> pool 3/2 with -inf pad -> 8x8
    assert got["c"].shape == (1, 5, 5, 8)

    # Independent check of the conv branch: align-corners resize of the corners equals
    # the corner pixels of concat(leaky(conv1 + b1), conv2(...)).
    x_nhwc = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).transpose(0, 2, 3, 1)
    w1 = weights["w1"].astype(np.float16).astype(np.float32)  # stored as float16
    y1 = _conv_loops(x_nhwc, w1) + weights["b1"]
    y1 = np.where(y1 >= 0, y1, 0.1 * y1)
    c_corner = got["c"][0, 0, 0, :4]
    np.testing.assert_allclose(c_corner, y1[0, 0, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["c"][0, 4, 4, :4], y1[0, 7, 7], rtol=1e-4, atol=1e-4)
    # uint8 quantized 1x1 conv: dequantized weights are within one quantization step
    w2 = weights["w2"]
    step = (w2.max() - w2.min()) / 255.0
    y2 = np.tensordot(y1[0, 0, 0], w2[0, 0], axes=1)
    bound = np.abs(y1[0, 0, 0]).sum() * step
    assert np.all(np.abs(got["c"][0, 0, 0, 4:] - y2) <= bound + 1e-4)


def test_transpose_pairs_bias_and_pads_are_folded(tmp_path: Path) -> None:
    path, _ = build_mixed_graph(tmp_path / "m", np.random.default_rng(2))
    model = convert_tfjs_to_onnx(
        path, output_names={"out_a:0": "a", "out_b:0": "b", "out_c:0": "c"}
    )
    ops = [n.op_type for n in model.graph.node]
    assert "Pad" not in ops  # zero pad folded into Conv, -inf pad into MaxPool
    assert "Add" not in ops  # bias fused into Conv
    assert "SparseToDense" not in ops and "AddV2" not in ops  # constant-folded
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and len(n.input) == 3)
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [1, 1, 1, 1]
    # NCHW graph: the only transposes left are around the NHWC-only resize branch outputs
    assert ops.count("Transpose") <= 2
    assert model.opset_import[0].version == 17


@pytest.mark.parametrize(
    ("align", "half", "size", "expected"),
    [
        (False, True, 4, [0.0, 0.25, 0.75, 1.0]),  # TF2 half_pixel_centers
        (True, False, 3, [0.0, 0.5, 1.0]),  # align_corners
        (False, False, 4, [0.0, 0.5, 1.0, 1.0]),  # legacy asymmetric
        (False, True, 1, [0.5]),  # downscale 2 -> 1 samples the middle
    ],
)
def test_resize_bilinear_modes_match_tf(
    tmp_path: Path, align: bool, half: bool, size: int, expected: list[float]
) -> None:
    g = GraphWriter()
    x = g.placeholder("x", [1, 1, 2, 1])
    r = g.op(
        "r",
        "ResizeBilinear",
        [x, g.const("size", np.array([1, size]))],
        align_corners={"b": align},
        half_pixel_centers={"b": half},
    )
    path = g.write(tmp_path / "m", {"x": [1, 1, 2, 1]}, [r])
    model = convert_tfjs_to_onnx(path, output_names={"r:0": "y"}, dynamic_batch=False)
    save_onnx(model, tmp_path / "r.onnx")
    inp = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    (y,) = _session(tmp_path / "r.onnx").run(None, {"images": inp})
    np.testing.assert_allclose(y.reshape(-1), expected, atol=1e-6)
    ref = run_tfjs_graph(load_tfjs_graph(path), {"x": inp})["r:0"]
    np.testing.assert_allclose(ref.reshape(-1), expected, atol=1e-6)


def test_dynamic_batch_runs_several_images_in_one_call(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path, _ = build_mixed_graph(tmp_path / "m", rng)
    names = {"out_a:0": "a", "out_b:0": "b", "out_c:0": "c"}
    save_onnx(convert_tfjs_to_onnx(path, output_names=names), tmp_path / "m.onnx")
    sess = _session(tmp_path / "m.onnx")
    assert sess.get_inputs()[0].shape[0] == "batch"
    assert [o.shape[0] for o in sess.get_outputs()] == ["batch"] * 3
    xs = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    batched = sess.run(None, {"images": xs})
    for i in range(3):
        single = sess.run(None, {"images": xs[i : i + 1]})
        for bo, so in zip(batched, single, strict=True):
            np.testing.assert_allclose(bo[i : i + 1], so, rtol=1e-5, atol=1e-6)


def test_output_bytes_are_deterministic(tmp_path: Path) -> None:
    path, _ = build_mixed_graph(tmp_path / "m", np.random.default_rng(4))
    names = {"out_a:0": "a", "out_b:0": "b", "out_c:0": "c"}
    h1 = save_onnx(convert_tfjs_to_onnx(path, output_names=names), tmp_path / "1.onnx")
    h2 = save_onnx(convert_tfjs_to_onnx(path, output_names=names), tmp_path / "2.onnx")
    assert h1 == h2 == hashlib.sha256((tmp_path / "1.onnx").read_bytes()).hexdigest()


def test_unsupported_op_names_op_and_node(tmp_path: Path) -> None:
    g = GraphWriter()
    x = g.placeholder("x", [1, 4])
    y = g.op("my_relu6", "Relu6", [x])
    path = g.write(tmp_path / "m", {"x": [1, 4]}, [y])
    with pytest.raises(UnsupportedOpError, match=r"Relu6.*my_relu6") as info:
        convert_tfjs_to_onnx(path)
    assert info.value.op == "Relu6"
    assert info.value.node == "my_relu6"


def test_weight_shard_path_traversal_is_rejected(tmp_path: Path) -> None:
    g = GraphWriter()
    x = g.placeholder("x", [1, 4])
    y = g.op("y", "Add", [x, g.const("c", np.ones(4, np.float32))])
    path = g.write(tmp_path / "m", {"x": [1, 4]}, [y])
    doc = json.loads(path.read_text())
    doc["weightsManifest"][0]["paths"] = ["../w.bin"]
    path.write_text(json.dumps(doc))
    with pytest.raises(TfjsFormatError, match="escapes"):
        load_tfjs_graph(path)


def test_truncated_weight_shard_is_reported(tmp_path: Path) -> None:
    g = GraphWriter()
    x = g.placeholder("x", [1, 4])
    y = g.op("y", "Add", [x, g.const("c", np.ones(4, np.float32))])
    path = g.write(tmp_path / "m", {"x": [1, 4]}, [y])
    (path.parent / "w.bin").write_bytes(b"\0" * 8)
    with pytest.raises(TfjsFormatError, match="needs bytes"):
        load_tfjs_graph(path)
