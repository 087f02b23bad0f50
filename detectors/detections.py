"""The one vectorized detections type every stage after the detector speaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Detections:
    """Detected objects of one frame, column-wise.

    Attributes:
        xyxy: Boxes, shape ``(n, 4)``, float32, pixels of the *original* frame,
            ``[x1, y1, x2, y2]`` with x right and y down.
        score: Confidence, shape ``(n,)``, float32 in [0, 1].
        class_id: Class index into ``names``, shape ``(n,)``, int64.
        tracker_id: Track id, shape ``(n,)``, int64; ``-1`` means "not tracked".
        names: Class names of the model, indexed by ``class_id`` (shared, not copied).

    Index with a boolean mask or an integer array to select rows:
    ``dets[dets.score > 0.5]``.  Instances are immutable; methods return new ones.
    """

    xyxy: FloatArray
    score: FloatArray
    class_id: IntArray
    tracker_id: IntArray = field(default_factory=lambda: np.empty((0,), np.int64))
    names: Sequence[str] = ()

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (n, 4), got {self.xyxy.shape}")
        if self.score.shape != (n,):
            raise ValueError(f"score must have shape ({n},), got {self.score.shape}")
        if self.class_id.shape != (n,):
            raise ValueError(f"class_id must have shape ({n},), got {self.class_id.shape}")
        if self.tracker_id.shape == (0,) and n:
            object.__setattr__(self, "tracker_id", np.full((n,), -1, np.int64))
        if self.tracker_id.shape != (n,):
            raise ValueError(f"tracker_id must have shape ({n},), got {self.tracker_id.shape}")

    @classmethod
    def empty(cls, names: Sequence[str] = ()) -> Detections:
        """No detections."""
        return cls(
            xyxy=np.empty((0, 4), np.float32),
            score=np.empty((0,), np.float32),
            class_id=np.empty((0,), np.int64),
            tracker_id=np.empty((0,), np.int64),
            names=names,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(
        self, index: npt.NDArray[np.bool_] | npt.NDArray[np.integer] | slice
    ) -> Detections:
        return Detections(
            xyxy=self.xyxy[index],
            score=self.score[index],
            class_id=self.class_id[index],
            tracker_id=self.tracker_id[index],
            names=self.names,
        )

    def with_tracker_id(self, tracker_id: IntArray) -> Detections:
        """A copy whose ``tracker_id`` column is replaced (shape ``(n,)``)."""
        return Detections(self.xyxy, self.score, self.class_id, tracker_id, self.names)

    @property
    def labels(self) -> list[str]:
        """Class name of each row (``str(class_id)`` when the name is unknown)."""
        return [
            self.names[c] if 0 <= c < len(self.names) else str(c) for c in self.class_id.tolist()
        ]

    @property
    def ground_points(self) -> FloatArray:
        """Bottom-centre of each box, shape ``(n, 2)``, px: where the object touches the floor."""
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2.0, self.xyxy[:, 3]], axis=1
        ).astype(np.float32)

    @classmethod
    def concatenate(cls, parts: Sequence[Detections]) -> Detections:
        """Stack several detections (same ``names``) into one."""
        if not parts:
            return cls.empty()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            score=np.concatenate([p.score for p in parts]).astype(np.float32, copy=False),
            class_id=np.concatenate([p.class_id for p in parts]).astype(np.int64, copy=False),
            tracker_id=np.concatenate([p.tracker_id for p in parts]).astype(np.int64, copy=False),
            names=parts[0].names,
        )
