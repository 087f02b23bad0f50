"""The ground estimated from the people of real footage (vtest.avi, an elevated camera over
a plaza), with the real detector and tracker: it is found, it is plausible, and the
people's walking speeds it gives are people's walking speeds."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from argus.app import build_detector
from argus.config import DetectorConfig
from argus.paths import models_dir
from selector.ground import GroundEstimator
from selector.tracker import ByteTracker

pytestmark = pytest.mark.integration

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FRAMES = 300  # 30 s at 10 fps: the estimate is ready after about 15 s


def test_the_ground_of_real_footage_is_estimated_from_its_people() -> None:
    if not (models_dir() / "nanodet-g" / "manifest.json").is_file():
        pytest.skip("default model not pulled (`make model`)")
    if not VTEST.is_file():
        pytest.skip("footage missing (Debian opencv-doc; `make footage`)")
    detector, _ = build_detector(
        DetectorConfig(providers="cpu", batch_size=4), models_dir(), "<test>", models_dir().parent
    )
    cap = cv2.VideoCapture(str(VTEST))
    frames = [np.asarray(cap.read()[1], np.uint8) for _ in range(FRAMES)]
    cap.release()
    tracker, est = ByteTracker(), GroundEstimator([0])
    paths: dict[int, list[tuple[float, float, float]]] = {}
    ready_s: float | None = None
    for k in range(0, FRAMES, 4):
        for j, dets in enumerate(detector.detect(frames[k : k + 4])):
            t = (k + j) / 10.0
            tracks = tracker.update(dets, t)
            est.observe(tracks, t, 768, 576)
            if est.model is not None and ready_s is None:
                ready_s = t
            for i in np.flatnonzero(tracks.class_id == 0):
                x1, _, x2, y2 = (float(v) for v in tracks.xyxy[i])
                paths.setdefault(int(tracks.tracker_id[i]), []).append((t, (x1 + x2) / 2, y2))
    model, fit = est.model, est.fit
    assert model is not None and fit is not None and ready_s is not None
    assert ready_s <= 20.0
    assert fit.error < 0.2 and fit.rows >= 8  # three in four people within 20 % of the fit
    assert fit.horizon_y < 100.0  # the horizon is at or above the picture's top
    speeds = []
    for path in paths.values():
        (t0, x0, y0), (t1, x1, y1) = path[0], path[-1]
        if t1 - t0 >= 5.0:
            speed = model.distance_m((x0, y0), (x1, y1)) / (t1 - t0)
            if speed > 0.3:  # walking, not standing
                speeds.append(speed)
    assert len(speeds) >= 5
    median = float(np.median(speeds))
    assert 0.6 <= median <= 1.8, speeds  # people walk at about 1.0-1.5 m/s
    assert all(math.isfinite(s) and s < 3.0 for s in speeds), speeds
