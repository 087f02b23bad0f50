"""`argus models add`: a user's own Ultralytics YOLO export registered and run end to end.

The export is the genuine YOLOv8n ``320n.onnx`` from PyPI ``nudenet`` (AGPL-3.0, body-part
classes; a test dependency only, never shipped).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.onnx_detector import OnnxDetector
from models.registry import load_manifest

pytestmark = pytest.mark.integration

PHOTO = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")


def test_add_registers_yolov8_export_that_then_detects(tmp_path: Path) -> None:
    nudenet = pytest.importorskip("nudenet")
    onnx_path = Path(nudenet.__file__).parent / "320n.onnx"
    if not PHOTO.is_file():
        pytest.skip(f"{PHOTO} missing (Debian opencv-doc)")
    labels = list(nudenet.nudenet.__labels)  # type: ignore[attr-defined]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(labels) + "\n")
    env = dict(os.environ, ARGUS_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "argus",
            "models",
            "add",
            "bodyparts",
            str(onnx_path),
            "--classes",
            str(classes),
            "--input-size",  # the export has a dynamic H x W: say what it was trained at
            "320x320",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "yolov8" in proc.stdout and f"{len(labels)} classes" in proc.stdout

    mdir = tmp_path / "home" / "models"
    manifest = load_manifest(mdir, "bodyparts")
    assert manifest.layout == "yolov8" and tuple(manifest.input_size) == (320, 320)
    assert list(manifest.classes) == labels
    det = OnnxDetector(manifest.to_spec(mdir), conf_threshold=0.25)
    dets = det.detect([cv2.imread(str(PHOTO))])[0]
    faces = [i for i, name in enumerate(dets.labels) if name.startswith("FACE_")]
    assert faces, dets.labels
    # The left player's head (by inspection: x 60..118, y 85..145 in the 640x480 photo).
    x1, y1, x2, y2 = dets.xyxy[faces[0]]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert 60 <= cx <= 118 and 85 <= cy <= 145, dets.xyxy[faces[0]]
    assert np.all(dets.score >= 0.25)


def test_add_refuses_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"definitely not protobuf" * 10)
    env = dict(os.environ, ARGUS_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-m", "argus", "models", "add", "junk", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
