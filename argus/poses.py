"""The pose model, loaded when a rule first asks, and its answers as rules read them.

Rules never see pixels: a rule asks about boxes (``selector.rules.base.POSE_HOOK``), the
runner gives this service the next frame's picture, and the rule gets back
:class:`selector.rules.base.PoseSighting` numbers.  The model (``movenet-multipose``, an
optional model: ``argus models pull --pose``) is loaded at the first question, once.  A
missing or corrupt model is logged once, naming the model and how to install it, and the
rules go on deciding without poses; so does a pose call that fails.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from argus import metrics
from detectors.pose import PoseEstimator, is_lying, torso_angle_deg
from selector.rules.base import PoseSighting

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


class PoseService:
    """Answers the rules' pose questions for every camera of a run (thread-safe).

    Args:
        models_dir: Where the model registry is.
        threads: onnxruntime intra-op threads of the pose session (None: its default).
        load: Makes the estimator (default: :class:`detectors.pose.PoseEstimator` on
            ``models_dir``); tests give their own.
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        threads: int | None = 1,
        load: Callable[[], PoseEstimator] | None = None,
    ) -> None:
        self._load = load or (lambda: PoseEstimator(models_dir, intra_op_threads=threads))
        self._lock = threading.Lock()
        self._estimator: PoseEstimator | None = None
        self.problem: str | None = None
        """Why there are no poses (the model could not be loaded), or ``None``."""

    def _get(self) -> PoseEstimator | None:
        with self._lock:
            if self._estimator is None and self.problem is None:
                try:
                    self._estimator = self._load()
                    log.info("pose model loaded: %s", self._estimator.name)
                except Exception as e:  # ModelError and onnxruntime's: said once, then none
                    self.problem = str(e)
                    log.error(
                        "pose model not available, rules decide without poses: %s", self.problem
                    )
            return self._estimator

    def preload(self) -> None:
        """Load the model now, on a thread of its own, so that the first question does
        not hold the detector loop up (a run whose rules ask for poses calls it)."""
        threading.Thread(target=self._get, name="pose-load", daemon=True).start()

    def sightings(
        self, camera_id: str, image: npt.NDArray[np.uint8], boxes: Sequence[Box]
    ) -> tuple[PoseSighting, ...]:
        """The poses of the people in ``boxes`` (px) of ``image`` (``(H, W, 3)`` BGR), one
        per box in order (a box under 2 px wide or high, or not finite, gets none); ``()``
        when there is no model or the call failed (logged)."""
        asked = [b for b in boxes if _usable(b)]  # a degenerate box gets no answer
        if not asked:
            return ()
        estimator = self._get()
        if estimator is None:
            return ()
        t0 = time.perf_counter()
        try:
            poses = estimator.estimate(image, boxes_xyxy=np.asarray(asked, np.float64))
        except Exception:  # a failed call costs this frame's answers, not the camera
            log.exception("pose call failed", extra={"camera_id": camera_id})
            return ()
        metrics.POSE_SECONDS.observe(time.perf_counter() - t0)
        metrics.POSE_BOXES.labels(camera_id).inc(len(asked))
        out: list[PoseSighting] = []
        for box, kp, score in zip(asked, poses.keypoints, poses.scores.tolist(), strict=True):
            found = score > 0.0
            out.append(
                PoseSighting(
                    box=box,
                    lying=is_lying(kp) if found else None,
                    torso_deg=torso_angle_deg(kp) if found else float("nan"),
                    score=float(score),
                )
            )
        return tuple(out)


def _usable(box: Box) -> bool:
    """Whether a box can be cut out: finite, at least 2 px wide and high."""
    x1, y1, x2, y2 = box
    return all(math.isfinite(v) for v in box) and x2 - x1 >= 2.0 and y2 - y1 >= 2.0
