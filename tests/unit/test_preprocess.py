"""Letterbox / resize geometry and tensor conversion of ``detectors.preprocess``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.preprocess import (
    LetterboxMeta,
    PreprocessError,
    compute_meta,
    letterbox_batch,
    preprocess,
)
from detectors.spec import ModelSpec

pytestmark = pytest.mark.unit


def make_spec(**kw: object) -> ModelSpec:
    base: dict[str, object] = dict(
        name="t", path=Path("x.onnx"), layout="yolov8", class_names=("a",), input_size=(320, 256)
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("letterbox", [True, False])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("size", [(640, 480), (480, 640), (333, 777), (320, 256), (100, 50)])
def test_box_round_trip(size: tuple[int, int], center: bool, letterbox: bool) -> None:
    w, h = size
    meta = compute_meta(w, h, make_spec(letterbox=letterbox), center=center)
    rng = np.random.default_rng(0)
    xy1 = rng.uniform(0, [w * 0.5, h * 0.5], size=(20, 2))
    xy2 = xy1 + rng.uniform(1, [w * 0.5, h * 0.5], size=(20, 2))
    boxes = np.concatenate([xy1, xy2], axis=1).astype(np.float32)
    net = meta.to_network(boxes)
    # Network boxes lie inside the network input.
    assert net[:, 0::2].min() >= -1e-3 and net[:, 0::2].max() <= 320 + 1e-3
    assert net[:, 1::2].min() >= -1e-3 and net[:, 1::2].max() <= 256 + 1e-3
    np.testing.assert_allclose(meta.to_original(net), boxes, atol=1e-3)


def test_letterbox_geometry_centred_and_top_left() -> None:
    spec = make_spec(input_size=(320, 320), pad_value=114)
    meta = compute_meta(640, 480, spec, center=True)
    assert (meta.scale_x, meta.scale_y, meta.pad_x, meta.pad_y) == (0.5, 0.5, 0, 40)
    meta_tl = compute_meta(640, 480, spec, center=False)
    assert (meta_tl.pad_x, meta_tl.pad_y) == (0, 0)
    plain = compute_meta(640, 480, make_spec(input_size=(320, 320), letterbox=False))
    assert (plain.scale_x, plain.scale_y, plain.pad_x, plain.pad_y) == (0.5, 320 / 480, 0, 0)


def test_letterbox_places_content_where_meta_says() -> None:
    """A white rectangle drawn on a black frame lands at meta.to_network(rect)."""
    spec = make_spec(input_size=(320, 320), pad_value=114)
    img = np.zeros((300, 500, 3), np.uint8)
    rect = np.array([[100, 60, 300, 200]], np.float32)
    img[60:200, 100:300] = 255
    canvas, metas = letterbox_batch([img], spec, center=True)
    assert canvas.shape == (1, 320, 320, 3)
    expected = metas[0].to_network(rect)[0]
    ys, xs = np.nonzero(canvas[0, :, :, 0] > 200)
    found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    np.testing.assert_allclose(found, expected, atol=1.5)
    # Padding rows (top and bottom) have the pad value, the image rows are black/white.
    pad_y = metas[0].pad_y
    assert pad_y > 0
    assert np.all(canvas[0, :pad_y] == 114) and np.all(canvas[0, -pad_y:] == 114)
    assert canvas[0, pad_y, 0, 0] == 0


def test_channel_order_scale_mean_std_and_layouts() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    img[..., 0] = 255  # pure blue in BGR
    spec_rgb = make_spec(input_size=(10, 10), channel_order="RGB")
    t, _ = preprocess([img], spec_rgb)
    assert t.shape == (1, 3, 10, 10) and t.dtype == np.float32
    np.testing.assert_allclose(t[0, :, 0, 0], [0.0, 0.0, 1.0], atol=1e-6)

    spec_bgr = make_spec(
        input_size=(10, 10),
        channel_order="BGR",
        input_layout="NHWC",
        scale=1.0,
        mean=(100.0, 50.0, 0.0),
        std=(2.0, 1.0, 4.0),
    )
    t2, _ = preprocess([img, img], spec_bgr)
    assert t2.shape == (2, 10, 10, 3)
    np.testing.assert_allclose(t2[1, 3, 3], [(255 - 100) / 2, -50.0, 0.0], atol=1e-4)


def test_batch_of_different_sizes_and_meta_per_image() -> None:
    spec = make_spec(input_size=(64, 64))
    imgs = [np.full((h, w, 3), 7, np.uint8) for (w, h) in [(128, 64), (64, 128), (64, 64)]]
    t, metas = preprocess(imgs, spec)
    assert t.shape == (3, 3, 64, 64)
    assert [(m.src_width, m.src_height) for m in metas] == [(128, 64), (64, 128), (64, 64)]
    assert [(m.pad_x, m.pad_y) for m in metas] == [(0, 16), (16, 0), (0, 0)]


def test_to_original_clips_to_frame() -> None:
    meta = LetterboxMeta(0.5, 0.5, 0, 40, 640, 480)
    out = meta.to_original(np.array([[-10, 0, 400, 300]], np.float32))
    np.testing.assert_allclose(out, [[0, 0, 640, 480]])
    unclipped = meta.to_original(np.array([[-10, 0, 400, 300]], np.float32), clip=False)
    np.testing.assert_allclose(unclipped, [[-20, -80, 800, 520]])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_bad_images_rejected(bad: np.ndarray) -> None:
    with pytest.raises(PreprocessError) as info:
        preprocess([np.zeros((5, 5, 3), np.uint8), bad], make_spec())
    assert info.value.index == 1


def test_empty_batch_rejected() -> None:
    with pytest.raises(PreprocessError):
        preprocess([], make_spec())
