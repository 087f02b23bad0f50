"""The YOLOv8 path on a genuine Ultralytics export: NudeNet's ``320n.onnx``.

``nudenet`` (PyPI, test-only) ships a YOLOv8n export: input ``images [B, 3, H, W]``
(RGB / 255), output ``[B, 22, 2100]`` at 320x320, 18 body-part classes.  On
``basketball1.png`` (640x480, two men playing catch) the left player's face is at about
x 65-112, y 88-140 (found by inspection).  NudeNet's own pipeline pads right/bottom
(top-left letterbox, black) and uses conf 0.25 / NMS 0.45, so the same settings must
give the same boxes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import Detections, ModelSpec, OnnxDetector

pytestmark = pytest.mark.integration

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
FACE_REGION = (60.0, 85.0, 118.0, 145.0)  # x1, y1, x2, y2 around the left player's head


@pytest.fixture(scope="module")
def nudenet_spec() -> ModelSpec:
    nudenet = pytest.importorskip("nudenet")
    import nudenet.nudenet as nn_mod

    names = list(vars(nn_mod)["__labels"])
    assert len(names) == 18
    return ModelSpec(
        name="nudenet-320n",
        path=Path(nudenet.__file__).parent / "320n.onnx",
        layout="yolov8",
        class_names=names,
        input_size=(320, 320),
        pad_value=0,
    )


@pytest.fixture(scope="module")
def basketball() -> np.ndarray:
    img = cv2.imread(str(DATA / "basketball1.png"))
    if img is None:
        pytest.skip("basketball1.png not available")
    return img


def faces(d: Detections) -> Detections:
    return d[np.array([lbl.startswith("FACE_") for lbl in d.labels], bool)]


def inside(box: np.ndarray, region: tuple[float, float, float, float]) -> bool:
    return bool(
        box[0] >= region[0] and box[1] >= region[1] and box[2] <= region[2] and box[3] <= region[3]
    )


def test_face_found_on_the_face(nudenet_spec: ModelSpec, basketball: np.ndarray) -> None:
    det = OnnxDetector(nudenet_spec, conf_threshold=0.25, iou_threshold=0.45)
    (d,) = det.detect([basketball])
    f = faces(d)
    assert len(f) == 1, d.labels
    box = f.xyxy[0]
    assert inside(box, FACE_REGION), box
    assert 25 <= box[2] - box[0] <= 60 and 25 <= box[3] - box[1] <= 60, box
    # Nothing is a face on the right-hand player's back or the empty wall.
    assert not np.any(f.xyxy[:, 0] > 200)


def test_matches_nudenet_reference(nudenet_spec: ModelSpec, basketball: np.ndarray) -> None:
    from nudenet import NudeDetector

    ref = NudeDetector().detect(basketball)
    assert ref, "reference found nothing; test image changed?"
    det = OnnxDetector(
        nudenet_spec, conf_threshold=0.25, iou_threshold=0.45, letterbox_center=False
    )
    (d,) = det.detect([basketball])
    assert sorted(d.labels) == sorted(r["class"] for r in ref)
    for r in ref:
        x, y, w, h = r["box"]  # int-truncated xywh in original pixels
        rows = [i for i, lbl in enumerate(d.labels) if lbl == r["class"]]
        best = min(rows, key=lambda i: float(np.abs(d.xyxy[i] - [x, y, x + w, y + h]).sum()))
        np.testing.assert_allclose(d.xyxy[best], [x, y, x + w, y + h], atol=3.0)
        assert float(d.score[best]) == pytest.approx(r["score"], abs=0.03)


def test_batch_equals_single(nudenet_spec: ModelSpec, basketball: np.ndarray) -> None:
    messi = cv2.imread(str(DATA / "messi5.jpg"))
    frame = basketball if messi is None else messi
    small = cv2.resize(basketball, (320, 240))
    det = OnnxDetector(nudenet_spec, conf_threshold=0.25, max_batch=4)
    images: list[np.ndarray] = [basketball, frame, small, basketball, frame]
    batched = det.detect(images)
    single = [det.detect([img])[0] for img in images]
    for b, s in zip(batched, single, strict=True):
        assert b.labels == s.labels
        np.testing.assert_allclose(b.xyxy, s.xyxy, atol=0.05)
        np.testing.assert_allclose(b.score, s.score, atol=1e-4)
    # The down-scaled copy still finds the face, at half the coordinates.
    f_small = faces(batched[2])
    assert len(f_small) == 1
    assert inside(f_small.xyxy[0] * 2, FACE_REGION)
