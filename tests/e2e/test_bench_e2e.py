"""``argus bench --quick`` end to end on the real footage and model: every stage runs,
every frame is accounted for, the JSON, table and plot are written (no timing asserted:
CI machines are shared; the figures go to benchmarks/RESULTS.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import pytest

from tests.e2e.conftest import ARGUS, env_for, make_home, require_prerequisites

pytestmark = pytest.mark.e2e

KEYS = (
    "decode_only_fps",
    "inference_only_fps",
    "pipeline_fps",
    "naive_fps",
    "cameras",
    "cameras_sustained",
    "naive_cameras_sustained",
    "latency_p95_s",
)


def test_bench_quick_measures_every_stage(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [*ARGUS, "bench", "--quick", "--json", str(out), "--plot", str(png)],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    r = json.loads(out.read_text())
    for key in KEYS:
        assert key in r, key
    cams, frames = r["cameras"], r["frames_per_camera"]
    assert (cams, frames) == (2, 30)
    # every frame of every camera went through the detector, in both runs
    assert r["pipeline_frames"] == r["pipeline_detected"] == cams * frames
    assert r["naive_frames"] == r["naive_detected"] == cams * frames
    for key in ("decode_only_fps", "inference_only_fps", "pipeline_fps", "naive_fps"):
        assert r[key] > 0, key
    ceiling = 1 / (1 / r["decode_only_fps"] + 1 / r["inference_only_fps"])
    assert r["ceiling_fps"] == pytest.approx(ceiling, rel=0.01)
    # the capacity search ran real-speed trials of both kinds
    assert isinstance(r["cameras_sustained"], int) and r["cameras_sustained"] >= 0
    assert isinstance(r["naive_cameras_sustained"], int)
    kinds = {t["naive"] for t in r["trials"]}
    assert kinds == {True, False}
    for t in r["trials"]:
        assert t["analysed_fps"] >= 0 and 0 <= (t["drop_fraction_max"] or 0) <= 1
        if t["naive"]:  # every frame of every camera, one after another
            assert t["quiet_thinned_mean"] in (None, 0.0)
        elif t["cameras"] > 1:  # activity-driven decoding: the quiet cameras are thinned
            assert t["quiet_thinned_mean"] > 0.3, t
        best = r["naive_cameras_sustained"] if t["naive"] else r["cameras_sustained"]
        if t["held"]:
            assert t["cameras"] <= best  # the search returns the largest count held
    assert r["quiet_vs_active_cost"] is None or r["quiet_vs_active_cost"] > 0
    if r["cameras_sustained"]:  # frames went through the detector at the count held
        assert r["latency_p95_s"] is not None and r["latency_p95_s"] >= r["latency_p50_s"] >= 0
    assert "decode only" in proc.stdout and "cameras sustained" in proc.stdout
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 100
    # the quiet twin of the footage is cached under ARGUS_HOME for the next run
    assert Path(r["footage"]["quiet"]).is_relative_to(home)
