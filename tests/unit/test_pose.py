"""Unit tests of ``detectors.pose``: keypoint geometry on synthetic skeletons, the frame <->
network placement through a stand-in ONNX with MoveNet's signature, and the errors for a
missing, corrupt or mismatched pose model.  The real model: tests/integration/test_pose_model.py.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from detectors.pose import (
    L_HIP,
    L_SHOULDER,
    NUM_KEYPOINTS,
    POSE_MODEL_NAME,
    R_HIP,
    R_SHOULDER,
    PoseEstimator,
    PoseInputError,
    is_lying,
    torso_angle_deg,
)
from models.pose import pose_manifest
from models.registry import (
    ModelCorruptError,
    ModelNotFoundError,
    ModelTaskError,
    install_model,
    load_manifest,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------- synthetic skeletons
def standing(x0: float = 100.0, y0: float = 50.0, h: float = 170.0) -> np.ndarray:
    """A standing person, head at the top: (17, 3) x, y, score=0.9."""
    # fractions of the body height below the head top, and x offsets (person's left = +x)
    rows = [
        (0.05, 0.0),  # nose
        (0.04, 0.02),
        (0.04, -0.02),
        (0.05, 0.04),
        (0.05, -0.04),
        (0.18, 0.12),  # left shoulder
        (0.18, -0.12),
        (0.35, 0.15),
        (0.35, -0.15),
        (0.50, 0.15),
        (0.50, -0.15),
        (0.52, 0.08),  # left hip
        (0.52, -0.08),
        (0.75, 0.08),
        (0.75, -0.08),
        (0.98, 0.08),
        (0.98, -0.08),
    ]
    kp = np.array([[x0 + dx * h, y0 + dy * h, 0.9] for dy, dx in rows], np.float32)
    return kp


def rotate(kp: np.ndarray, deg: float) -> np.ndarray:
    """Rotate the skeleton about its hip centre by ``deg`` (image coordinates)."""
    c = kp[[L_HIP, R_HIP], :2].mean(axis=0)
    t = math.radians(deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], np.float32)
    out = kp.copy()
    out[:, :2] = (kp[:, :2] - c) @ rot.T + c
    return out


def test_standing_torso_is_vertical_and_not_lying() -> None:
    kp = standing()
    assert torso_angle_deg(kp) == pytest.approx(0.0, abs=1e-6)
    assert is_lying(kp) is False


@pytest.mark.parametrize(
    ("deg", "lying"), [(30.0, False), (-45.0, False), (90.0, True), (-80.0, True), (180.0, True)]
)
def test_rotated_skeleton_angle_and_lying(deg: float, lying: bool) -> None:
    kp = rotate(standing(), deg)
    assert torso_angle_deg(kp) == pytest.approx(abs(deg), abs=1e-3)
    assert is_lying(kp) is lying


def test_one_shoulder_and_one_hip_are_enough_and_none_is_nan() -> None:
    kp = rotate(standing(), 90.0)
    kp[R_SHOULDER, 2] = 0.1
    kp[R_HIP, 2] = 0.1
    # the left side only: still near horizontal (the shoulder sits wider than the hip)
    assert torso_angle_deg(kp) == pytest.approx(90.0, abs=10.0)
    kp[L_SHOULDER, 2] = 0.1
    assert math.isnan(torso_angle_deg(kp))
    kp_nan = standing()
    kp_nan[[L_HIP, R_HIP], :2] = np.nan
    assert math.isnan(torso_angle_deg(kp_nan))


def test_without_torso_the_keypoint_spread_decides() -> None:
    up = standing()
    up[[L_SHOULDER, R_SHOULDER], 2] = 0.0
    assert math.isnan(torso_angle_deg(up))
    assert is_lying(up) is False
    down = rotate(standing(), 90.0)
    down[[L_HIP, R_HIP], 2] = 0.0
    assert is_lying(down) is True
    few = standing()
    few[4:, 2] = 0.0  # only the face
    assert is_lying(few) is None


def test_keypoints_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(PoseInputError, match=r"\(17, 3\)"):
        torso_angle_deg(np.zeros((17, 2)))


# ---------------------------------------------------------------------- stand-in model
def fake_output() -> np.ndarray:
    """[1, 6, 56]: person 0 (score 0.9) with keypoint k at (y=0.1+0.04k, x=0.5) and box
    (ymin, xmin, ymax, xmax) = (0.2, 0.3, 0.8, 0.7); person 1 scores 0.1; the rest 0."""
    out = np.zeros((1, 6, 56), np.float32)
    for k in range(NUM_KEYPOINTS):
        out[0, 0, 3 * k : 3 * k + 3] = (0.1 + 0.04 * k, 0.5, 0.8)
    out[0, 0, 51:] = (0.2, 0.3, 0.8, 0.7, 0.9)
    out[0, 1, 51:] = (0.0, 0.0, 0.5, 0.5, 0.1)
    return out


def fake_model(in_type: int = TensorProto.INT32, size: int = 256) -> bytes:
    """MoveNet's signature; output = the constant above (+ 0 * max(input))."""
    nodes = [
        helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["xf"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["poses"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_movenet",
        [helper.make_tensor_value_info("input", in_type, [1, size, size, 3])],
        [helper.make_tensor_value_info("poses", TensorProto.FLOAT, [1, 6, 56])],
        initializer=[
            numpy_helper.from_array(fake_output(), "const"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def install_pose(models_dir: Path, data: bytes) -> Path:
    manifest = pose_manifest(hashlib.sha256(data).hexdigest())
    install_model(models_dir, manifest, data)
    return manifest.onnx_path(models_dir)


@pytest.fixture
def estimator(tmp_path: Path) -> PoseEstimator:
    install_pose(tmp_path, fake_model())
    return PoseEstimator(tmp_path, providers=["CPUExecutionProvider"])


def test_whole_frame_maps_network_coordinates_to_frame_pixels(estimator: PoseEstimator) -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    poses = estimator.estimate(image)
    assert len(poses) == 1  # person 1 (0.1) is under min_score
    scale = 256 / 640  # letterbox: the longer side fills the input, top-left placement
    np.testing.assert_allclose(poses.keypoints[0, :, 0], 0.5 * 256 / scale)
    np.testing.assert_allclose(
        poses.keypoints[0, :, 1], (0.1 + 0.04 * np.arange(17)) * 256 / scale, rtol=1e-5
    )
    np.testing.assert_allclose(poses.keypoints[0, :, 2], 0.8)
    np.testing.assert_allclose(poses.boxes[0], np.array([0.3, 0.2, 0.7, 0.8]) * 256 / scale)
    assert poses.scores.tolist() == pytest.approx([0.9])


def test_by_box_crops_a_square_around_each_box(estimator: PoseEstimator) -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    boxes = np.array([[100.0, 50.0, 200.0, 250.0], [500.0, 400.0, 540.0, 420.0]])
    poses = estimator.estimate(image, boxes, margin=0.25)
    assert len(poses) == 2
    # box 0: side 200 * 1.5 = 300 centred on (150, 150): the crop spans [0, 300] x [0, 300]
    np.testing.assert_allclose(poses.keypoints[0, :, 0], 150.0, atol=1e-3)
    np.testing.assert_allclose(
        poses.keypoints[0, :, 1], (0.1 + 0.04 * np.arange(17)) * 300, atol=1e-3
    )
    np.testing.assert_allclose(poses.boxes[0], [90.0, 60.0, 210.0, 240.0], atol=1e-3)
    # box 1: side 40 * 1.5 = 60 centred on (520, 410), partly outside the frame
    np.testing.assert_allclose(poses.keypoints[1, 0, :2], [520.0, 380.0 + 0.1 * 60], atol=1e-3)
    none = estimator.estimate(image, boxes, min_score=0.95)
    assert none.scores.tolist() == [0.0, 0.0]
    assert np.all(np.isnan(none.keypoints[:, :, :2])) and np.all(none.keypoints[:, :, 2] == 0)


def test_bad_images_and_boxes_are_refused(estimator: PoseEstimator) -> None:
    with pytest.raises(PoseInputError, match="uint8"):
        estimator.estimate(np.zeros((10, 10, 3), np.float32))  # type: ignore[arg-type]
    with pytest.raises(PoseInputError, match="uint8"):
        estimator.estimate(np.zeros((10, 10), np.uint8))
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(PoseInputError, match=r"\(N, 4\)"):
        estimator.estimate(image, np.zeros((2, 3)))
    with pytest.raises(PoseInputError, match="x2 > x1"):
        estimator.estimate(image, [[5.0, 5.0, 5.0, 8.0]])


# ---------------------------------------------------------------------- bad models
def test_missing_model_names_it_and_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        PoseEstimator(tmp_path)
    msg = str(info.value)
    assert POSE_MODEL_NAME in msg and "argus models pull --pose" in msg


def test_model_with_a_bad_sha256_is_corrupt(tmp_path: Path) -> None:
    path = install_pose(tmp_path, fake_model())
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelCorruptError) as info:
        PoseEstimator(tmp_path)
    msg = str(info.value)
    assert POSE_MODEL_NAME in msg and "sha256" in msg and "--pose --force" in msg


def test_model_that_is_not_onnx_is_corrupt(tmp_path: Path) -> None:
    install_pose(tmp_path, b"this is not an ONNX model")
    with pytest.raises(ModelCorruptError, match=r"movenet-multipose.*not a loadable ONNX"):
        PoseEstimator(tmp_path)


@pytest.mark.parametrize(("in_type", "size"), [(TensorProto.FLOAT, 256), (TensorProto.INT32, 250)])
def test_model_with_another_input_is_corrupt(tmp_path: Path, in_type: int, size: int) -> None:
    install_pose(tmp_path, fake_model(in_type, size))
    with pytest.raises(ModelCorruptError, match=r"movenet-multipose.*input .* is not MoveNet"):
        PoseEstimator(tmp_path)


def test_pose_model_is_no_detector_and_a_detector_no_pose_model(tmp_path: Path) -> None:
    install_pose(tmp_path, fake_model())
    with pytest.raises(ModelTaskError, match="is a pose model, not a detector"):
        load_manifest(tmp_path, POSE_MODEL_NAME)  # what `detector.model: ...` does
    manifest = load_manifest(tmp_path, POSE_MODEL_NAME, task="pose")
    with pytest.raises(ValueError, match="not a detector"):
        manifest.to_spec(tmp_path)
    detector = manifest.model_copy(update={"name": "det", "task": "detect", "layout": "nanodet"})
    install_model(tmp_path, detector, manifest.onnx_path(tmp_path).read_bytes())
    with pytest.raises(ModelTaskError, match="is a detector, not a pose model"):
        PoseEstimator(tmp_path, name="det")
