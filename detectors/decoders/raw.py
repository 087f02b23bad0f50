"""The per-image result of a decoder, before non-maximum suppression."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Decoded boxes of one image before NMS, in network-input pixels.

    Attributes:
        xyxy: Boxes, shape ``(n, 4)``, float32, ``[x1, y1, x2, y2]`` in pixels of the
            network input (letterboxed/resized image), x right, y down.
        score: Confidence, shape ``(n,)``, float32 in [0, 1].
        class_id: Class index into ``ModelSpec.class_names``, shape ``(n,)``, int64.
    """

    xyxy: npt.NDArray[np.float32]  # (n, 4)
    score: npt.NDArray[np.float32]  # (n,)
    class_id: npt.NDArray[np.int64]  # (n,)

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0] if self.xyxy.ndim == 2 else -1
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (n, 4), got {self.xyxy.shape}")
        if self.score.shape != (n,):
            raise ValueError(f"score must have shape ({n},), got {self.score.shape}")
        if self.class_id.shape != (n,):
            raise ValueError(f"class_id must have shape ({n},), got {self.class_id.shape}")

    @classmethod
    def empty(cls) -> RawDetections:
        """No detections: arrays of shape ``(0, 4)``, ``(0,)``, ``(0,)``."""
        return cls(
            xyxy=np.empty((0, 4), np.float32),
            score=np.empty((0,), np.float32),
            class_id=np.empty((0,), np.int64),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])


# A decoder turns the raw session outputs (graph order, each with a leading batch axis)
# into one RawDetections per batch item, keeping rows whose score >= the float threshold.
Decoder = Callable[[list[np.ndarray], ModelSpec, float], list[RawDetections]]

__all__ = ["Decoder", "RawDetections"]
