"""Unit tests of ``decode_nanodet`` on hand-built head tensors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from detectors.decoders.nanodet import NanodetOutputError, anchor_centres, decode_nanodet
from detectors.spec import ModelSpec

pytestmark = pytest.mark.unit

W, H = 64, 32
STRIDES = (8, 16, 32)
BINS = 11


def _spec() -> ModelSpec:
    return ModelSpec(
        name="t",
        path=Path("unused.onnx"),
        layout="nanodet",
        class_names=("person", "car", "dog"),
        input_size=(W, H),
        strides=STRIDES,
        reg_max=BINS - 1,
    )


def _empty(batch: int) -> list[np.ndarray]:
    outs: list[np.ndarray] = []
    for s in STRIDES:
        n = math.ceil(W / s) * math.ceil(H / s)
        outs.append(np.zeros((batch, n, 3), np.float32))
        outs.append(np.zeros((batch, n, 4 * BINS), np.float32))
    return outs


def _peak(outs: list[np.ndarray], b: int, level: int, x: int, y: int, sides: list[float]) -> None:
    """Put a one-hot (or two-bin) distribution for each side at anchor (x, y) of a level."""
    s = STRIDES[level]
    idx = y * math.ceil(W / s) + x
    logits = np.full((4, BINS), -60.0, np.float32)
    for k, d in enumerate(sides):
        lo = math.floor(d)
        if d == lo:
            logits[k, lo] = 60.0
        else:  # equal weight on two neighbouring bins -> expectation at the midpoint
            logits[k, lo] = logits[k, lo + 1] = 60.0
    outs[2 * level + 1][b, idx] = logits.reshape(-1)


def test_single_peaked_distribution_gives_expected_box() -> None:
    outs = _empty(1)
    outs[0][0, 1 * 8 + 3, 2] = 0.9  # stride 8, anchor x=3, y=1 (8 anchors per row), class 2
    _peak(outs, 0, 0, 3, 1, [2, 1, 3, 1.5])
    (res,) = decode_nanodet(outs, _spec(), 0.5)
    assert len(res) == 1
    cx, cy = 3.5 * 8, 1.5 * 8  # anchor centres at (i + 0.5) * stride
    np.testing.assert_allclose(res.xyxy[0], [cx - 16, cy - 8, cx + 24, cy + 12], atol=1e-3)
    assert res.class_id.tolist() == [2]
    np.testing.assert_allclose(res.score, [0.9])
    assert res.xyxy.dtype == np.float32 and res.class_id.dtype == np.int64


def test_boxes_are_clipped_and_stride_scales_distances() -> None:
    outs = _empty(1)
    n32 = math.ceil(W / 32)
    outs[4][0, 0 * n32 + 1, 0] = 0.8  # stride 32, anchor x=1, y=0: centre (48, 16)
    _peak(outs, 0, 2, 1, 0, [1, 1, 1, 1])  # 32 px each side
    (res,) = decode_nanodet(outs, _spec(), 0.5)
    np.testing.assert_allclose(res.xyxy[0], [16, 0, 64, 32], atol=1e-3)  # clipped to 64x32


def test_threshold_is_inclusive_and_best_class_only() -> None:
    outs = _empty(2)
    outs[0][0, 0] = [0.5, 0.2, 0.45]  # kept at 0.5 (>=), as class 0 only
    outs[0][0, 1] = [0.3, 0.49, 0.1]  # below threshold
    outs[2][1, 2] = [0.1, 0.7, 0.6]  # second image, stride 16, class 1
    res = decode_nanodet(outs, _spec(), 0.5)
    assert [len(r) for r in res] == [1, 1]
    assert res[0].class_id.tolist() == [0] and res[1].class_id.tolist() == [1]
    np.testing.assert_allclose(res[1].score, [0.7])
    assert len(decode_nanodet(outs, _spec(), 0.95)[0]) == 0


def test_output_order_does_not_matter() -> None:
    outs = _empty(1)
    outs[2][0, 3, 1] = 0.9
    _peak(outs, 0, 1, 3, 0, [1, 2, 3, 4])
    ref = decode_nanodet(outs, _spec(), 0.5)[0]
    shuffled = [outs[i] for i in (5, 3, 1, 4, 0, 2)]
    got = decode_nanodet(shuffled, _spec(), 0.5)[0]
    np.testing.assert_array_equal(got.xyxy, ref.xyxy)
    # stride 16, anchor x=3: centre (56, 8); sides 16, 32, 48, 64 px, clipped to 64x32
    np.testing.assert_allclose(ref.xyxy[0], [40, 0, 64, 32], atol=1e-3)


def test_anchor_centres_row_major() -> None:
    centres, strides = anchor_centres((W, H), (8,))
    assert centres.shape == (32, 2)
    np.testing.assert_allclose(centres[:2], [[4, 4], [12, 4]])
    np.testing.assert_allclose(centres[8], [4, 12])
    assert set(strides.tolist()) == {8.0}


def test_wrong_shapes_raise() -> None:
    outs = _empty(1)
    with pytest.raises(NanodetOutputError, match="expected 6 outputs"):
        decode_nanodet(outs[:4], _spec(), 0.5)
    outs[1] = np.zeros((1, 32, 40), np.float32)
    with pytest.raises(NanodetOutputError, match="stride 8"):
        decode_nanodet(outs, _spec(), 0.5)
