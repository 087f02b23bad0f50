"""The run's pose service when the model is missing or a call fails: said once, no poses."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from argus.poses import PoseService
from detectors.pose import Poses

pytestmark = pytest.mark.unit

IMAGE = np.zeros((120, 160, 3), np.uint8)
BOX = (10.0, 10.0, 50.0, 100.0)


def test_a_missing_pose_model_is_said_once_naming_it_and_rules_get_no_poses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = PoseService(tmp_path / "models")
    with caplog.at_level(logging.ERROR, logger="argus.poses"):
        for _ in range(3):
            assert service.sightings("cam", IMAGE, [BOX]) == ()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "movenet-multipose" in errors[0] and "argus models pull --pose" in errors[0]
    assert service.problem is not None and "movenet-multipose" in service.problem
    assert service.sightings("cam", IMAGE, []) == ()


class _Failing:
    name = "fake"

    def estimate(self, image: object, boxes_xyxy: object = None) -> Poses:
        raise RuntimeError("onnxruntime fell over")


class _Nobody:
    name = "fake"

    def estimate(self, image: object, boxes_xyxy: object = None) -> Poses:
        return Poses.empty(len(np.asarray(boxes_xyxy)))


def test_a_failed_call_costs_that_frame_only_and_nobody_found_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = PoseService(Path("/nonexistent"), load=lambda: _Failing())  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.ERROR, logger="argus.poses"):
        assert failing.sightings("cam", IMAGE, [BOX]) == ()
    assert "pose call failed" in caplog.text and failing.problem is None
    nobody = PoseService(Path("/nonexistent"), load=lambda: _Nobody())  # type: ignore[arg-type,return-value]
    (answer,) = nobody.sightings("cam", IMAGE, [BOX])
    assert answer.box == BOX and answer.lying is None and answer.score == 0.0
    assert np.isnan(answer.torso_deg)


def test_a_degenerate_box_gets_no_answer_and_the_others_still_do() -> None:
    seen: list[int] = []

    class Counting(_Nobody):
        def estimate(self, image: object, boxes_xyxy: object = None) -> Poses:
            seen.append(len(np.asarray(boxes_xyxy)))
            return super().estimate(image, boxes_xyxy)

    service = PoseService(Path("/nonexistent"), load=lambda: Counting())  # type: ignore[arg-type,return-value]
    flat, nan = (10.0, 10.0, 50.0, 11.0), (float("nan"), 0.0, 5.0, 5.0)
    answers = service.sightings("cam", IMAGE, [flat, BOX, nan])
    assert [a.box for a in answers] == [BOX] and seen == [1]
    assert service.sightings("cam", IMAGE, [flat]) == () and seen == [1]
