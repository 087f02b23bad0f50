"""Turn BGR frames into the input tensor of a detector, and map boxes back.

The hot path of the detector: one ``uint8`` canvas and one ``float32`` tensor are
allocated per batch, each image is resized with ``cv2.resize`` straight into its slot,
and the colour swap, scaling and normalisation are done in two vectorised passes.

Geometry (``ModelSpec.letterbox``):

* letterbox (True): the image is scaled by one factor so that it fits inside
  ``input_size`` while keeping its aspect ratio, and the remaining border is filled
  with ``spec.pad_value``.  By default the image is *centred* (Ultralytics and
  NanoDet style); pass ``center=False`` to put it in the *top-left* corner
  (padding only right and bottom).
* plain resize (False): the image is stretched to ``input_size``; x and y have
  different scale factors and there is no padding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from detectors.spec import ModelSpec

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


class PreprocessError(ValueError):
    """An input image cannot be fed to the network (wrong shape/dtype, empty batch)."""

    def __init__(self, message: str, *, index: int | None = None, shape: tuple[int, ...] = ()):
        super().__init__(message)
        self.index = index
        self.shape = shape


@dataclass(frozen=True, slots=True)
class LetterboxMeta:
    """How one original image was placed into the network input.

    A point ``(x, y)`` of the original image lands at
    ``(x * scale_x + pad_x, y * scale_y + pad_y)`` in network-input pixels.

    Attributes:
        scale_x: Horizontal scale factor original -> network (resized width / width).
        scale_y: Vertical scale factor original -> network (equal to ``scale_x`` up to
            rounding of the resized size when letterboxing).
        pad_x: Left padding in network-input pixels (0 for top-left or plain resize).
        pad_y: Top padding in network-input pixels.
        src_width: Width of the original image, pixels.
        src_height: Height of the original image, pixels.
    """

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    src_width: int
    src_height: int

    @property
    def scale(self) -> float:
        """The mean of the two scale factors (they are equal when letterboxing)."""
        return 0.5 * (self.scale_x + self.scale_y)

    def to_original(self, xyxy: npt.ArrayLike, *, clip: bool = True) -> FloatArray:
        """Map boxes from network-input pixels to original-image pixels.

        Args:
            xyxy: Boxes ``(n, 4)`` ``[x1, y1, x2, y2]`` in network-input pixels.
            clip: Clip the result to ``[0, src_width] x [0, src_height]``.

        Returns:
            New float32 array ``(n, 4)`` in original-image pixels.
        """
        boxes = np.array(xyxy, dtype=np.float32, copy=True).reshape(-1, 4)
        boxes[:, 0::2] -= self.pad_x
        boxes[:, 1::2] -= self.pad_y
        boxes[:, 0::2] /= self.scale_x
        boxes[:, 1::2] /= self.scale_y
        if clip:
            np.clip(boxes[:, 0::2], 0.0, float(self.src_width), out=boxes[:, 0::2])
            np.clip(boxes[:, 1::2], 0.0, float(self.src_height), out=boxes[:, 1::2])
        return boxes

    def to_network(self, xyxy: npt.ArrayLike) -> FloatArray:
        """Map boxes ``(n, 4)`` from original-image pixels to network-input pixels (float32)."""
        boxes = np.array(xyxy, dtype=np.float32, copy=True).reshape(-1, 4)
        boxes[:, 0::2] *= self.scale_x
        boxes[:, 1::2] *= self.scale_y
        boxes[:, 0::2] += self.pad_x
        boxes[:, 1::2] += self.pad_y
        return boxes


def compute_meta(
    src_width: int, src_height: int, spec: ModelSpec, *, center: bool = True
) -> LetterboxMeta:
    """Placement of a ``src_width`` x ``src_height`` image in ``spec.input_size``.

    The resized size is ``round(side * r)`` with ``r = min(W / w, H / h)``; the scale
    factors stored are the exact ratios resized/original so the inverse mapping is exact.
    """
    net_w, net_h = spec.input_size
    if not spec.letterbox:
        return LetterboxMeta(net_w / src_width, net_h / src_height, 0, 0, src_width, src_height)
    r = min(net_w / src_width, net_h / src_height)
    new_w = min(net_w, max(1, round(src_width * r)))
    new_h = min(net_h, max(1, round(src_height * r)))
    pad_x = (net_w - new_w) // 2 if center else 0
    pad_y = (net_h - new_h) // 2 if center else 0
    return LetterboxMeta(new_w / src_width, new_h / src_height, pad_x, pad_y, src_width, src_height)


def _check_image(i: int, img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise PreprocessError(
            f"image {i} must be HxWx3 uint8 BGR, got shape {img.shape} dtype {img.dtype}",
            index=i,
            shape=tuple(img.shape),
        )
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise PreprocessError(f"image {i} is empty: shape {img.shape}", index=i, shape=img.shape)


def letterbox_batch(
    images: Sequence[npt.NDArray[np.uint8]], spec: ModelSpec, *, center: bool = True
) -> tuple[npt.NDArray[np.uint8], list[LetterboxMeta]]:
    """Resize/letterbox a batch into one ``uint8`` canvas, channels still BGR.

    Args:
        images: ``B`` images, each ``(h, w, 3)`` uint8 BGR, sizes may differ.
        spec: Gives ``input_size``, ``letterbox`` and ``pad_value``.
        center: Centre the letterboxed image (True) or put it top-left (False).

    Returns:
        ``(canvas, metas)``: canvas of shape ``(B, H, W, 3)`` uint8 BGR and one
        ``LetterboxMeta`` per image.
    """
    if len(images) == 0:
        raise PreprocessError("empty batch: at least one image is needed")
    net_w, net_h = spec.input_size
    canvas = np.empty((len(images), net_h, net_w, 3), np.uint8)
    metas: list[LetterboxMeta] = []
    for i, img in enumerate(images):
        _check_image(i, img)
        h, w = img.shape[:2]
        meta = compute_meta(w, h, spec, center=center)
        new_w = round(w * meta.scale_x)
        new_h = round(h * meta.scale_y)
        slot = canvas[i]
        if new_w != net_w or new_h != net_h:
            slot.fill(spec.pad_value)
        resized: np.ndarray
        if (new_w, new_h) == (w, h):
            resized = img
        else:
            resized = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        slot[meta.pad_y : meta.pad_y + new_h, meta.pad_x : meta.pad_x + new_w] = resized
        metas.append(meta)
    return canvas, metas


def to_tensor(canvas: npt.NDArray[np.uint8], spec: ModelSpec) -> FloatArray:
    """Convert a ``(B, H, W, 3)`` uint8 BGR canvas to the network's float32 tensor.

    ``value = (pixel * spec.scale - mean) / std`` per channel, channels in
    ``spec.channel_order`` (mean/std given in that order), layout ``spec.input_layout``:
    ``(B, 3, H, W)`` for NCHW, ``(B, H, W, 3)`` for NHWC.  Two passes over the data.
    """
    src = canvas[..., ::-1] if spec.channel_order == "RGB" else canvas
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    mul = (np.float32(spec.scale) / std).astype(np.float32)
    add = (-mean / std).astype(np.float32)
    b, h, w, _ = canvas.shape
    if spec.input_layout == "NCHW":
        out = np.empty((b, 3, h, w), np.float32)
        np.multiply(src.transpose(0, 3, 1, 2), mul.reshape(1, 3, 1, 1), out=out)
        out += add.reshape(1, 3, 1, 1)
    else:
        out = np.empty((b, h, w, 3), np.float32)
        np.multiply(src, mul, out=out)
        out += add
    return out


def preprocess(
    images: Sequence[npt.NDArray[np.uint8]], spec: ModelSpec, *, center: bool = True
) -> tuple[FloatArray, list[LetterboxMeta]]:
    """Build the input tensor for a batch of BGR images.

    Args:
        images: ``B >= 1`` images, each ``(h, w, 3)`` uint8 BGR, any sizes.
        spec: Model input description (size, letterbox, colour order, normalisation, layout).
        center: Letterbox placement, centred (True) or top-left (False); ignored for
            plain resize.

    Returns:
        ``(tensor, metas)``: float32 ``(B, 3, H, W)`` (NCHW) or ``(B, H, W, 3)`` (NHWC)
        with ``(W, H) = spec.input_size``, and one ``LetterboxMeta`` per image to map
        network-space boxes back with ``LetterboxMeta.to_original``.

    Raises:
        PreprocessError: empty batch, or an image that is not HxWx3 uint8.
    """
    canvas, metas = letterbox_batch(images, spec, center=center)
    return to_tensor(canvas, spec), metas


__all__ = [
    "LetterboxMeta",
    "PreprocessError",
    "compute_meta",
    "letterbox_batch",
    "preprocess",
    "to_tensor",
]
