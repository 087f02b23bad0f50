"""Decoder for NanoDet heads (``layout="nanodet"``): per-stride class scores + box distributions.

For every stride ``s`` in ``spec.strides`` the network gives two tensors:

* class scores ``[B, N_s, C]`` float32, already passed through a sigmoid,
* box distributions ``[B, N_s, 4 * (reg_max + 1)]`` float32 logits, sides in the order
  left, top, right, bottom, ``reg_max + 1`` bins each (Generalized Focal Loss / DFL).

``N_s = ceil(H / s) * ceil(W / s)`` anchors in row-major order (index ``y * w_s + x``),
whose centres are at ``((x + 0.5) * s, (y + 0.5) * s)`` network-input pixels (the convention
the default model was verified with: mirror-consistent boxes on flipped images).  A side's
distance is ``s * sum_k(k * softmax(logits)_k)``.

The two tensors of a stride are recognised by shape (``N_s`` and the last dimension), so the
order of the outputs does not matter unless ``C == 4 * (reg_max + 1)``, in which case the
class tensor must come first within each stride.

Scoring is single-label: every anchor keeps only its best class, and is kept when that
score is ``>= conf_threshold``.  Boxes are clipped to the network input.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from detectors.decoders.raw import RawDetections
from detectors.spec import ModelSpec


class NanodetOutputError(ValueError):
    """The session outputs do not match the NanoDet layout described by the spec."""

    def __init__(self, message: str, shapes: list[tuple[int, ...]]) -> None:
        super().__init__(f"{message}; output shapes: {shapes}")
        self.shapes = shapes


def anchor_centres(
    input_size: tuple[int, int], strides: tuple[int, ...]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Anchor centres and strides of all levels, concatenated in ``strides`` order.

    Args:
        input_size: Network input ``(width, height)`` in pixels.
        strides: Feature strides in pixels.

    Returns:
        ``centres`` of shape ``(N, 2)`` float32 ``(cx, cy)`` pixels and ``stride`` of shape
        ``(N,)`` float32, ``N = sum_s ceil(H/s) * ceil(W/s)``.
    """
    width, height = input_size
    centres, per_anchor = [], []
    for s in strides:
        w, h = math.ceil(width / s), math.ceil(height / s)
        ys, xs = np.mgrid[0:h, 0:w]
        c = np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], axis=1)
        centres.append(c.astype(np.float32))
        per_anchor.append(np.full((h * w,), s, np.float32))
    return np.concatenate(centres), np.concatenate(per_anchor)


def _pick_outputs(
    outputs: list[np.ndarray], spec: ModelSpec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Concatenate class ``(B, N, C)`` and distribution ``(B, N, 4*(reg_max+1))`` tensors."""
    shapes = [tuple(o.shape) for o in outputs]
    n_cls, n_box = len(spec.class_names), 4 * (spec.reg_max + 1)
    width, height = spec.input_size
    if len(outputs) != 2 * len(spec.strides):
        raise NanodetOutputError(f"expected {2 * len(spec.strides)} outputs", shapes)
    free = list(range(len(outputs)))
    cls_parts, box_parts = [], []
    for s in spec.strides:
        n = math.ceil(width / s) * math.ceil(height / s)
        picked: list[int] = []
        for want in (n_cls, n_box):  # first free match in output order
            idx = next(
                (i for i in free if shapes[i][1:] == (n, want) and len(shapes[i]) == 3), None
            )
            if idx is None:
                raise NanodetOutputError(
                    f"no output of shape [B, {n}, {want}] for stride {s}", shapes
                )
            free.remove(idx)
            picked.append(idx)
        cls_idx, box_idx = picked
        cls_parts.append(np.asarray(outputs[cls_idx], np.float32))
        box_parts.append(np.asarray(outputs[box_idx], np.float32))
    batch = {p.shape[0] for p in cls_parts + box_parts}
    if len(batch) != 1:
        raise NanodetOutputError("outputs disagree on the batch size", shapes)
    return np.concatenate(cls_parts, axis=1), np.concatenate(box_parts, axis=1)


def decode_nanodet(
    outputs: list[np.ndarray], spec: ModelSpec, conf_threshold: float
) -> list[RawDetections]:
    """Decode NanoDet outputs into boxes in network-input pixels (before NMS).

    Args:
        outputs: Session outputs, ``2 * len(spec.strides)`` float32 arrays
            ``[B, N_s, C]`` and ``[B, N_s, 4 * (spec.reg_max + 1)]`` (see module doc).
        spec: Model description (``input_size``, ``strides``, ``reg_max``, ``class_names``).
        conf_threshold: Keep anchors whose best class score is ``>=`` this, in [0, 1].

    Returns:
        One ``RawDetections`` per batch item: ``xyxy (n, 4)`` float32 pixels of the network
        input, clipped to it; ``score (n,)`` float32; ``class_id (n,)`` int64.

    Raises:
        NanodetOutputError: The outputs do not fit the spec.
    """
    cls, box = _pick_outputs(outputs, spec)
    centres, strides = anchor_centres(spec.input_size, tuple(spec.strides))
    bins = spec.reg_max + 1
    proj = np.arange(bins, dtype=np.float32)
    width, height = spec.input_size
    results: list[RawDetections] = []
    for b in range(cls.shape[0]):
        class_id = np.argmax(cls[b], axis=1)
        score = np.take_along_axis(cls[b], class_id[:, None], axis=1)[:, 0]
        keep = np.flatnonzero(score >= conf_threshold)
        if keep.size == 0:
            results.append(RawDetections.empty())
            continue
        logits = box[b, keep].reshape(-1, 4, bins)
        logits = logits - logits.max(axis=2, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=2, keepdims=True)
        dist = (prob @ proj) * strides[keep, None]  # (n, 4): left, top, right, bottom
        c = centres[keep]
        xyxy = np.concatenate([c - dist[:, :2], c + dist[:, 2:]], axis=1)
        np.clip(xyxy[:, 0::2], 0.0, float(width), out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0.0, float(height), out=xyxy[:, 1::2])
        results.append(
            RawDetections(
                xyxy=xyxy.astype(np.float32),
                score=score[keep].astype(np.float32),
                class_id=class_id[keep].astype(np.int64),
            )
        )
    return results


__all__ = ["NanodetOutputError", "anchor_centres", "decode_nanodet"]
