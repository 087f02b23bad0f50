"""Track summaries from real footage through the whole pipeline (``build_pipeline``: decode,
the real detector, ByteTrack, the runner): vtest.avi's pedestrians on a plaza each give one
valid summary when their track ends, with a thumbnail and its masked copy in the evidence
store, and the walkway zone named for those who crossed it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from alerts.evidence import masked_key
from alerts.schema import validate_track
from argus.app import build_pipeline
from argus.config import parse_config
from argus.paths import models_dir

pytestmark = pytest.mark.integration

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
WALKWAY = [[330, 180], [560, 180], [640, 330], [380, 330]]


def test_real_pedestrians_are_summarised_once_each(tmp_path: Path) -> None:
    if not (models_dir() / "nanodet-g" / "manifest.json").is_file():
        pytest.skip("default model not pulled (`make model`)")
    if not VTEST.is_file():
        pytest.skip("footage missing (Debian opencv-doc; `make footage`)")
    cfg = parse_config(
        {
            "cameras": [
                {
                    "id": "plaza",
                    "source": str(VTEST),
                    "realtime": False,
                    "zones": [{"name": "walkway", "polygon": WALKWAY}],
                }
            ],
            "rules": [],
            "storage": {
                "sqlite": str(tmp_path / "alerts.db"),
                "evidence_dir": str(tmp_path / "evidence"),
            },
            "evidence": {"clips": {"enabled": False}},
            "detector": {"providers": "cpu"},
            "gating": {"enabled": False},
        },
        "<test>",
    )
    pipeline = build_pipeline(cfg, home=models_dir().parent, source="<test>")
    records: list[dict[str, Any]] = []
    pipeline.bus.subscribe(lambda r: records.append(r) if r.get("kind") == "track" else None)
    try:
        result = pipeline.runner.run()
    finally:
        pipeline.close()
    assert result.frames >= 780  # the file's last frames may not decode
    tracks = [r for r in records]
    # vtest shows some 30-40 people over 80 s; flickers are dropped, re-identifications
    # after long occlusions give a person a second track
    assert 15 <= len(tracks) <= 120, len(tracks)
    assert len({r["track_uid"] for r in tracks}) == len(tracks)
    for r in tracks:
        validate_track(r, allow_unknown=False)
    people = [r for r in tracks if r["label"] == "person"]
    assert len(people) >= 0.8 * len(tracks)
    coloured = [r for r in people if "upper" in r["colours"] and "lower" in r["colours"]]
    assert len(coloured) >= 0.7 * len(people)
    moving = [r for r in people if r["direction"] in ("left", "right")]
    assert len(moving) >= 0.5 * len(people)  # the plaza's walkers cross it sideways
    assert {r["direction"] for r in moving} == {"left", "right"}
    assert any(r["zones"] == ["walkway"] for r in people)
    assert all(r["zones"] in ([], ["walkway"]) for r in tracks)
    # people are 50-130 px tall in this 576 px picture
    heights = [r["size"]["height_px"] for r in people]
    assert 40 <= float(np.median(heights)) <= 140, heights
    thumbs = [r["thumbnail"] for r in tracks if "thumbnail" in r]
    assert len(thumbs) >= 0.7 * len(tracks)
    evidence = tmp_path / "evidence"
    for key in [r["thumbnail"] for r in people if "thumbnail" in r]:
        original = cv2.imread(str(evidence / key))
        masked = cv2.imread(str(evidence / masked_key(key)))
        assert original is not None and masked is not None, key
        assert original.shape == masked.shape
        assert not np.array_equal(original, masked), key  # the person in it is blurred
