"""Unit tests of the converter ops added for MoveNet MultiPose, on tiny synthetic graphs.

Each graph is converted, run with onnxruntime, and compared with (a) the converter's numpy
reference interpreter and (b) an independent numpy expression of TF's semantics written
here (TopK ties, FloorDiv of negatives, StridedSlice masks, depthwise channel order...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.tfjs_to_onnx import (
    TfjsConversionError,
    UnsupportedOpError,
    convert_tfjs_to_onnx,
    load_tfjs_graph,
    run_tfjs_graph,
)
from tests.unit.test_tfjs_convert import GraphWriter, _ints, _s

pytestmark = pytest.mark.unit


def _type(name: str) -> dict[str, str]:
    return {"type": name}


def _i(v: int) -> dict[str, str]:
    return {"i": str(v)}


def _strs(values: list[str]) -> dict[str, Any]:
    return {"list": {"s": [_s(v)["s"] for v in values]}}


class Writer(GraphWriter):
    """GraphWriter with typed placeholders and signature keys that differ from names."""

    def typed_placeholder(self, name: str, shape: list[int], dtype: str) -> str:
        self.placeholder(name, shape)
        self.nodes[-1]["attr"]["dtype"] = _type(dtype)
        return name

    def write_refs(self, directory: Path, inputs: dict[str, list[int]], refs: list[str]) -> Path:
        """Like ``write``, with signature outputs given as tensor refs (``node:i``)."""
        path = self.write(directory, inputs, [])
        doc = json.loads(path.read_text())
        doc["signature"]["outputs"] = {r: {"name": r} for r in refs}
        path.write_text(json.dumps(doc))
        return path


def _run(
    path: Path, feeds: dict[str, np.ndarray], outs: list[str], **kw: Any
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(ONNX outputs, reference outputs) by TF output name (``node:i``)."""
    names = {o: f"o{i}" for i, o in enumerate(outs)}
    model = convert_tfjs_to_onnx(path, output_names=names, dynamic_batch=False, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (feed,) = feeds.values()
    got = sess.run(list(names.values()), {"images": feed})
    ref = run_tfjs_graph(load_tfjs_graph(path), feeds)
    values = dict(zip(outs, got, strict=True))
    return values, {o: ref[o] for o in outs}


def _check(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], want: dict[str, Any]) -> None:
    for k, expected in want.items():
        expected = np.asarray(expected)
        assert got[k].shape == expected.shape, k
        assert ref[k].shape == expected.shape, k
        np.testing.assert_allclose(got[k], expected, rtol=1e-5, atol=1e-5, err_msg=f"onnx {k}")
        np.testing.assert_allclose(ref[k], expected, rtol=1e-5, atol=1e-5, err_msg=f"ref {k}")


def _depthwise_loops(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """SAME-padded depthwise conv by explicit loops; output channel c * M + m."""
    n, h, wd, c = x.shape
    kh, kw, _, m = w.shape
    ho, wo = -(-h // stride), -(-wd // stride)
    ph = max((ho - 1) * stride + kh - h, 0)
    pw = max((wo - 1) * stride + kw - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, ho, wo, c * m), np.float64)
    for i in range(ho):
        for j in range(wo):
            for ci in range(c):
                for mi in range(m):
                    patch = xp[0, i * stride : i * stride + kh, j * stride : j * stride + kw, ci]
                    out[0, i, j, ci * m + mi] = np.sum(patch * w[:, :, ci, mi])
    return out.astype(np.float32)


def test_fused_conv_and_depthwise_convs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    g = Writer()
    x = g.placeholder("x", [1, 7, 6, 3])
    w1 = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b1 = rng.standard_normal(4).astype(np.float32)
    conv_attr = {"padding": _s("SAME"), "data_format": _s("NHWC"), "num_args": _i(1)}
    c1 = g.op(
        "c1",
        "_FusedConv2D",
        [x, g.const("w1", w1), g.const("b1", b1)],
        strides=_ints([1, 2, 2, 1]),
        dilations=_ints([1, 1, 1, 1]),
        fused_ops=_strs(["BiasAdd", "Relu6"]),
        **conv_attr,
    )
    wd = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    bd = rng.standard_normal(8).astype(np.float32)
    d1 = g.op(
        "d1",
        "FusedDepthwiseConv2dNative",
        [c1, g.const("wd", wd), g.const("bd", bd)],
        strides=_ints([1, 1, 1, 1]),
        dilations=_ints([1, 1, 1, 1]),
        fused_ops=_strs(["BiasAdd", "Relu"]),
        **conv_attr,
    )
    wd2 = rng.standard_normal((3, 3, 8, 1)).astype(np.float32)
    d2 = g.op(
        "d2",
        "DepthwiseConv2dNative",
        [d1, g.const("wd2", wd2)],
        strides=_ints([1, 2, 2, 1]),
        dilations=_ints([1, 1, 1, 1]),
        padding=_s("SAME"),
        data_format=_s("NHWC"),
    )
    path = g.write_refs(tmp_path / "m", {"x": [1, 7, 6, 3]}, [f"{c1}:0", f"{d1}:0", f"{d2}:0"])
    feed = rng.standard_normal((1, 7, 6, 3)).astype(np.float32) * 3
    got, ref = _run(path, {"x": feed}, ["c1:0", "d1:0", "d2:0"])
    # independent: the 3x3 conv is a depthwise conv summed over input channels
    conv = np.stack(
        [_depthwise_loops(feed, w1[:, :, :, o : o + 1], 2).sum(axis=3) for o in range(w1.shape[3])],
        axis=3,
    )
    c1_want = np.clip(conv + b1, 0, 6)
    d1_want = np.maximum(_depthwise_loops(c1_want, wd, 1) + bd, 0)
    d2_want = _depthwise_loops(d1_want, wd2, 2)
    _check(got, ref, {"c1:0": c1_want, "d1:0": d1_want, "d2:0": d2_want})
    assert got["d2:0"].shape == (1, 2, 2, 8)


def test_cast_arithmetic_comparisons_and_select(tmp_path: Path) -> None:
    g = Writer()
    x = g.typed_placeholder("x", [1, 6], "DT_INT32")
    xf = g.op("xf", "Cast", [x], SrcT=_type("DT_INT32"), DstT=_type("DT_FLOAT"))
    three = g.const("three", np.array(3, np.int32))
    fdi = g.op("fdi", "FloorDiv", [x, three])
    two5 = g.const("two5", np.array(2.5, np.float32))
    fdf = g.op("fdf", "FloorDiv", [xf, two5])
    sub = g.op("sub", "Sub", [xf, two5])
    mul = g.op("mul", "Mul", [sub, sub])
    div = g.op("div", "RealDiv", [mul, two5])
    mx = g.op("mx", "Maximum", [sub, g.const("zero", np.array(0.0, np.float32))])
    mn = g.op("mn", "Minimum", [x, three])
    sq = g.op("sq", "SquaredDifference", [xf, two5])
    addn = g.op("addn", "AddN", [sub, mul, div], N=_i(3))
    ab = g.op("ab", "Abs", [sub])
    ex = g.op("ex", "Exp", [g.op("neg_ab", "Mul", [ab, g.const("m1", np.array(-1.0, np.float32))])])
    rc = g.op(
        "rc", "Reciprocal", [g.op("ab1", "AddV2", [ab, g.const("one", np.ones(1, np.float32))])]
    )
    lt = g.op("lt", "Less", [xf, two5])
    ge = g.op("ge", "GreaterEqual", [xf, g.const("m2", np.array(-2.0, np.float32))])
    both = g.op("both", "LogicalAnd", [lt, ge])
    eq = g.op("eq", "Equal", [x, three])
    gt = g.op("gt", "Greater", [x, three])
    sel = g.op("sel", "Select", [both, xf, g.const("z6", np.full((1, 6), -9.0, np.float32))])
    eqf = g.op("eqf", "Cast", [eq], SrcT=_type("DT_BOOL"), DstT=_type("DT_FLOAT"))
    gtf = g.op("gtf", "Cast", [gt], SrcT=_type("DT_BOOL"), DstT=_type("DT_FLOAT"))
    outs = [fdi, fdf, mn, div, mx, sq, addn, ex, rc, sel, eqf, gtf]
    path = g.write_refs(tmp_path / "m", {"x": [1, 6]}, [f"{o}:0" for o in outs])
    feed = np.array([[-7, -3, 0, 2, 3, 8]], np.int32)
    got, ref = _run(path, {"x": feed}, [f"{o}:0" for o in outs])
    f = feed.astype(np.float64)
    s = f - 2.5
    want = {
        "fdi:0": np.array([[-3, -1, 0, 0, 1, 2]]),  # floor, not truncation
        "fdf:0": np.floor(f / 2.5),
        "mn:0": np.minimum(feed, 3),
        "div:0": s * s / 2.5,
        "mx:0": np.maximum(s, 0),
        "sq:0": s * s,
        "addn:0": s + s * s + s * s / 2.5,
        "ex:0": np.exp(-np.abs(s)),
        "rc:0": 1 / (np.abs(s) + 1),
        "sel:0": np.where((f < 2.5) & (f >= -2), f, -9),
        "eqf:0": (feed == 3).astype(np.float32),
        "gtf:0": (feed > 3).astype(np.float32),
    }
    _check(got, ref, want)
    assert got["fdi:0"].dtype == np.int32 and got["mn:0"].dtype == np.int32


def test_strided_slice_masks_pack_unpack_squeeze_tile_split(tmp_path: Path) -> None:
    g = Writer()
    x = g.placeholder("x", [1, 4, 5, 3])

    def ss(name: str, b: list[int], e: list[int], s: list[int], **masks: int) -> str:
        consts = [
            g.const(f"{name}/{k}", np.array(v, np.int32)) for k, v in (("b", b), ("e", e), ("s", s))
        ]
        return g.op(name, "StridedSlice", [x, *consts], **{k: _i(v) for k, v in masks.items()})

    ss("a", [0, 1, 0, 0], [0, 3, 0, 2], [1, 1, 1, 1], begin_mask=0b101, end_mask=0b101)
    ss(
        "b",
        [0, -1, 0],
        [0, 0, 0],
        [1, -2, 1],
        begin_mask=0b101,
        end_mask=0b111,
        shrink_axis_mask=0b1,
    )
    c = ss("c", [0, 2], [0, 3], [1, 1], ellipsis_mask=0b1, new_axis_mask=0)
    ss(
        "d",
        [0, 0, 1],
        [0, 0, 2],
        [1, 1, 1],
        new_axis_mask=0b10,
        begin_mask=0b1,
        end_mask=0b1,
        shrink_axis_mask=0b100,
    )
    g.op("pk", "Pack", [c, c], axis=_i(-1), N=_i(2))
    up = g.op("up", "Unpack", [x], axis=_i(3), num=_i(3))
    sqz = g.op("sqz", "Squeeze", [x], squeeze_dims=_ints([0]))
    g.op("exd", "ExpandDims", [up, g.const("dim", np.array(-1, np.int32))])
    g.op("til", "Tile", [sqz, g.const("reps", np.array([1, 2, 1], np.int32))])
    g.op("spl", "Split", [g.const("sd", np.array(1, np.int32)), x], num_split=_i(2))
    outs = ["a:0", "b:0", "c:0", "d:0", "pk:0", "up:2", "exd:0", "til:0", "spl:1"]
    path = g.write_refs(tmp_path / "m", {"x": [1, 4, 5, 3]}, outs)
    feed = np.arange(60, dtype=np.float32).reshape(1, 4, 5, 3)
    got, ref = _run(path, {"x": feed}, outs)
    want = {
        "a:0": feed[:, 1:3, :, 0:2],
        "b:0": feed[0, -1::-2, :],
        "c:0": feed[..., 2:3],
        "d:0": feed[:, None, 1],
        "pk:0": np.stack([feed[..., 2:3]] * 2, axis=-1),
        "up:2": feed[..., 2],
        "exd:0": feed[..., 0][..., None],
        "til:0": np.tile(feed[0], (1, 2, 1)),
        "spl:1": feed[:, 2:],
    }
    _check(got, ref, want)


def test_top_k_gather_nd_argmax_and_reductions(tmp_path: Path) -> None:
    g = Writer()
    x = g.placeholder("x", [1, 8])
    g.op("tk", "TopKV2", [x, g.const("k", np.array(4, np.int32))], sorted={"b": True})
    g.op("am", "ArgMax", [x, g.const("ax", np.array(1, np.int32))], output_type=_type("DT_INT32"))
    grid = g.op("grid", "Reshape", [x, g.const("shp", np.array([2, 4], np.int32))])
    zeros = g.const("zeros", np.zeros((1, 4), np.int32))
    idx = g.op("idx", "Pack", [zeros, "tk:1"], axis=_i(2), N=_i(2))  # (0, top-k index)
    g.op("gnd", "GatherNd", [x, idx])
    g.op("mx", "Max", [grid, g.const("r1", np.array(1, np.int32))], keep_dims={"b": False})
    g.op("sm", "Sum", [grid, g.const("r0", np.array([0, 1], np.int32))], keep_dims={"b": True})
    g.op("tkf", "Cast", ["tk:1"], SrcT=_type("DT_INT32"), DstT=_type("DT_FLOAT"))
    outs = ["tk:0", "tk:1", "am:0", "gnd:0", "mx:0", "sm:0", "tkf:0"]
    path = g.write_refs(tmp_path / "m", {"x": [1, 8]}, outs)
    feed = np.array([[0.5, 2.0, 0.0, 2.0, 0.0, -1.0, 0.0, 2.0]], np.float32)
    got, ref = _run(path, {"x": feed}, outs)
    # TF: ties in the lower index first
    want = {
        "tk:0": [[2.0, 2.0, 2.0, 0.5]],
        "tk:1": [[1, 3, 7, 0]],
        "am:0": [1],
        "gnd:0": [[2.0, 2.0, 2.0, 0.5]],
        "mx:0": [2.0, 2.0],
        "sm:0": [[5.5]],
        "tkf:0": [[1.0, 3.0, 7.0, 0.0]],
    }
    _check(got, ref, want)
    assert got["tk:1"].dtype == np.int32 and got["am:0"].dtype == np.int32


def test_shape_size_range_fill_fold_on_static_shapes(tmp_path: Path) -> None:
    g = Writer()
    x = g.placeholder("x", [1, -1, -1, 2])
    shp = g.op("shp", "Shape", [x], out_type=_type("DT_INT32"))
    hw = g.op(
        "hw",
        "StridedSlice",
        [
            shp,
            *(
                g.const(f"hw/{k}", np.array([v], np.int32))
                for k, v in (("b", 1), ("e", 2), ("s", 1))
            ),
        ],
        shrink_axis_mask=_i(1),
    )
    hwf = g.op("hwf", "Cast", [hw], SrcT=_type("DT_INT32"), DstT=_type("DT_FLOAT"))
    rng_ = g.op(
        "rng",
        "Range",
        [g.const("r0", np.array(0.0, np.float32)), hwf, g.const("r1", np.array(1.0, np.float32))],
        Tidx=_type("DT_FLOAT"),
    )
    size = g.op("size", "Size", [x], out_type=_type("DT_INT32"))
    dims = g.op("dims", "Pack", [hw, g.const("two", np.array(2, np.int32))], axis=_i(0), N=_i(2))
    fill = g.op("fill", "Fill", [dims, g.const("v", np.array(0.5, np.float32))])
    ys = g.op("ys", "Reshape", [rng_, g.const("col", np.array([-1, 1], np.int32))])
    grid = g.op("grid", "Mul", [fill, ys])
    sizef = g.op("sizef", "Cast", [size], SrcT=_type("DT_INT32"), DstT=_type("DT_FLOAT"))
    tot = g.op(
        "tot", "Sum", [x, g.const("all", np.array([0, 1, 2, 3], np.int32))], keep_dims={"b": False}
    )
    mean = g.op("mean", "RealDiv", [tot, sizef])
    shifted = g.op("shifted", "AddV2", [grid, mean])  # the grid alone folds to a constant
    path = g.write_refs(tmp_path / "m", {"x": [1, 3, 4, 2]}, [f"{shifted}:0", f"{mean}:0"])
    feed = np.arange(24, dtype=np.float32).reshape(1, 3, 4, 2)
    got, ref = _run(path, {"x": feed}, ["shifted:0", "mean:0"])
    grid_want = np.arange(3)[:, None] * 0.5 * np.ones((3, 2))
    _check(got, ref, {"shifted:0": grid_want + 11.5, "mean:0": 11.5})
    # the same graph at another static size (input_shape overrides the signature)
    model = convert_tfjs_to_onnx(
        path, output_names={"shifted:0": "g"}, dynamic_batch=False, input_shape=(1, 5, 4, 2)
    )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"images": np.zeros((1, 5, 4, 2), np.float32)})
    assert out.shape == (5, 2)
    with pytest.raises(TfjsConversionError, match="input_shape"):
        convert_tfjs_to_onnx(path, dynamic_batch=False, input_shape=(1, 5, 4, 3))
    with pytest.raises(UnsupportedOpError, match=r"Shape.*dynamic_batch=False"):
        convert_tfjs_to_onnx(path, dynamic_batch=True)


def test_signature_key_differs_from_tensor_name_and_int_input(tmp_path: Path) -> None:
    g = Writer()
    x = g.typed_placeholder("input", [1, 2, 2, 3], "DT_INT32")
    y = g.op("y", "Cast", [x], SrcT=_type("DT_INT32"), DstT=_type("DT_FLOAT"))
    path = g.write(tmp_path / "m", {"input": [1, 2, 2, 3]}, [y])
    doc = path.read_text().replace('"y:0": {"name": "y:0"}', '"output_0": {"name": "y:0"}')
    path.write_text(doc)
    graph = load_tfjs_graph(path)
    assert graph.outputs == ("y:0",)
    model = convert_tfjs_to_onnx(path, dynamic_batch=False)
    assert model.graph.input[0].type.tensor_type.elem_type == 6  # INT32
    feed = np.arange(12, dtype=np.int32).reshape(1, 2, 2, 3)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"images": feed})[0], feed.astype(np.float32))


def test_unsupported_fused_op_is_named(tmp_path: Path) -> None:
    g = Writer()
    x = g.placeholder("x", [1, 4, 4, 1])
    w = g.const("w", np.ones((1, 1, 1, 1), np.float32))
    y = g.op(
        "bn_conv",
        "_FusedConv2D",
        [x, w, g.const("b", np.ones(1, np.float32))],
        fused_ops=_strs(["FusedBatchNorm", "Relu"]),
        padding=_s("VALID"),
        num_args=_i(1),
    )
    path = g.write(tmp_path / "m", {"x": [1, 4, 4, 1]}, [y])
    with pytest.raises(UnsupportedOpError, match=r"_FusedConv2D.*bn_conv.*FusedBatchNorm"):
        convert_tfjs_to_onnx(path, dynamic_batch=False)
