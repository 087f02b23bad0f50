"""The real default detector's int8 and fp16 variants on the real footage.

``nanodet-g`` (registered by ``make model``) is copied into a temporary registry,
quantized to int8 with a handful of ``vtest.avi`` frames and converted to fp16 (both pass
the known-photo check before they are registered); then each variant, loaded through
``argus.app.build_detector`` like ``argus run`` does, must find the people that float32
finds in other ``vtest.avi`` frames (matching boxes, IoU >= 0.5).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from argus.app import build_detector
from argus.config import DetectorConfig
from argus.paths import models_dir
from detectors.detections import Detections
from models.registry import load_manifest
from models.variants import export_fp16, quantize_int8, read_frames
from models.verify import KNOWN_PHOTO, iou_matrix

pytestmark = pytest.mark.integration

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SOURCE = "nanodet-g"
CALIBRATION = {"count": 16, "start": 0, "step": 50}  # frames 0, 50, ..., 750
SCORED = {"count": 6, "start": 25, "step": 130}  # frames 25, 155, ..., 675: none calibrated


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary registry with a copy of nanodet-g and its two variants."""
    for path, why in [
        (models_dir() / SOURCE / "manifest.json", "default model not pulled (`make model`)"),
        (VTEST, "footage missing (Debian opencv-doc; `make footage`)"),
        (KNOWN_PHOTO, "known photo missing (Debian opencv-doc; `make footage`)"),
    ]:
        if not path.is_file():
            pytest.skip(f"{path}: {why}")
    home = tmp_path_factory.mktemp("home")
    mdir = home / "models"
    shutil.copytree(models_dir() / SOURCE, mdir / SOURCE)
    quantize_int8(mdir, SOURCE, read_frames(VTEST, **CALIBRATION))
    export_fp16(mdir, SOURCE)
    return mdir


def people(mdir: Path, name: str, frames: list[np.ndarray]) -> list[Detections]:
    cfg = DetectorConfig(model=name, providers="cpu", batch_size=2)
    detector, _ = build_detector(cfg, mdir, "<test>", mdir.parent)
    return [d[d.class_id == 0] for d in detector.detect(frames)]


def test_variants_are_registered_with_provenance(registry: Path) -> None:
    src = load_manifest(registry, SOURCE)
    int8 = load_manifest(registry, f"{SOURCE}-int8")
    fp16 = load_manifest(registry, f"{SOURCE}-fp16")
    for m in (int8, fp16):
        assert (m.classes, m.input_size, m.layout, m.mean, m.std) == (
            src.classes,
            src.input_size,
            src.layout,
            src.mean,
            src.std,
        )
        assert src.sha256[:12] in m.source and m.upstream == src.upstream
    assert "int8" in int8.source and "16 frames" in int8.source
    assert "float16" in fp16.source
    size = src.onnx_path(registry).stat().st_size
    assert int8.onnx_path(registry).stat().st_size < 0.4 * size
    assert fp16.onnx_path(registry).stat().st_size < 0.6 * size


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_variant_finds_the_people_fp32_finds(registry: Path, variant: str) -> None:
    frames = read_frames(VTEST, **SCORED)
    ref = people(registry, SOURCE, frames)
    got = people(registry, f"{SOURCE}-{variant}", frames)
    n_ref = sum(len(r) for r in ref)
    assert n_ref >= 12, "vtest frames with people expected"
    matched = 0
    score_diffs: list[float] = []
    for r, g in zip(ref, got, strict=True):
        if not len(r) or not len(g):
            continue
        iou = iou_matrix(r.xyxy, g.xyxy)
        best = iou.argmax(axis=1)
        ok = iou.max(axis=1) >= 0.5
        matched += int(ok.sum())
        score_diffs += list(np.abs(g.score[best[ok]] - r.score[ok]))
    n_got = sum(len(g) for g in got)
    # fp16 is float32 up to rounding; int8 may lose the odd borderline person.
    need = 0.97 if variant == "fp16" else 0.8
    assert matched >= need * n_ref, f"{variant}: {matched}/{n_ref} fp32 people matched"
    assert abs(n_got - n_ref) <= max(2, 0.15 * n_ref), f"{variant}: {n_got} vs {n_ref} people"
    assert float(np.mean(score_diffs)) < (0.01 if variant == "fp16" else 0.06)
