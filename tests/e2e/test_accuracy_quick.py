"""The accuracy benchmark end to end: one generated scenario checked against an independent
reading of its script, and ``python -m benchmarks.accuracy --quick`` run for real.

Both need the real footage (people are cut out of it) and the registered detector (it
finds them); the sprite bank is cached under ``$ARGUS_HOME/bench/accuracy`` and shared
with the benchmark itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from argus.paths import argus_home
from benchmarks.accuracy.assets import (
    FRAME_H,
    FRAME_W,
    Background,
    ObjectPatch,
    backgrounds,
    object_patches,
)
from benchmarks.accuracy.pipeline import config_for, write_video
from benchmarks.accuracy.render import GOP_FRAMES
from benchmarks.accuracy.scenarios import KINDS, generate
from benchmarks.accuracy.sprites import SpriteBank, sprite_bank
from selector.zones import PolygonZone
from tests.e2e.conftest import env_for, make_home, require_prerequisites

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CACHE = argus_home() / "bench" / "accuracy"


Assets = tuple[SpriteBank, dict[str, Background], list[ObjectPatch]]


@pytest.fixture(scope="module")
def assets() -> Assets:
    require_prerequisites()
    bank = sprite_bank(argus_home(), CACHE)
    return bank, backgrounds(bank), object_patches(bank)


def test_intrusion_scenario_truth_and_video(assets: Assets, tmp_path: Path) -> None:
    bank, bgs, patches = assets
    scn = generate("intrusion", 1, 7, bank, bgs, patches, quick=True)
    assert scn.sim is not None
    (rule,) = scn.rules
    dwell = float(rule["min_dwell_s"])
    zone = PolygonZone("area", scn.zones["area"])

    # Ground truth, read independently of benchmarks.accuracy.truth: the first frame at
    # which an actor's foot is in the zone (the pipeline's own point-in-zone test) plus
    # the dwell, for each actor who stays that long.
    expected = []
    for tr in scn.sim.actors:
        inside = np.zeros(len(tr.xy), bool)
        ok = tr.present
        inside[ok] = zone.contains(tr.xy[ok])
        if inside.any():
            k = int(np.argmax(inside))
            run = np.argmin(inside[k:]) if not inside[k:].all() else len(inside) - k
            if run / 10.0 >= dwell:
                expected.append(k / 10.0 + dwell)
                # The person is drawn inside the picture at the alert time.
                kk = k + round(dwell * 10)
                x1, y1, x2, y2 = tr.box[kk]
                assert 0 <= x1 < x2 <= FRAME_W and 0 <= y1 < y2 <= FRAME_H
                assert 40 < y2 - y1 < 250  # a person-sized figure
    assert len(expected) == 1
    assert [g.type for g in scn.gt] == ["intrusion"]
    assert scn.gt[0].zone == "area"
    assert scn.gt[0].start_s == pytest.approx(expected[0], abs=1e-6)

    # Deterministic from the seed; another seed tells another story.
    again = generate("intrusion", 1, 7, bank, bgs, patches, quick=True)
    assert again.describe() == scn.describe()
    other = generate("intrusion", 1, 8, bank, bgs, patches, quick=True)
    assert other.describe() != scn.describe()

    # The video: H.264, 768x576, 10 fps timestamps, a keyframe every 2 s, sensor noise.
    video = tmp_path / "v.mp4"
    n = write_video(scn, bank, bgs, patches, video)
    assert n == round(scn.duration_s * 10)
    frames: list[np.ndarray] = []
    keys: list[bool] = []
    pts: list[float] = []
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        assert st.time_base is not None
        for f in c.decode(st):
            assert (f.width, f.height) == (FRAME_W, FRAME_H)
            assert f.pts is not None
            pts.append(float(f.pts * st.time_base))
            keys.append(f.key_frame)
            if len(frames) < 3:
                frames.append(f.to_ndarray(format="bgr24").astype(np.int16))
    assert len(pts) == n
    assert np.allclose(np.diff(pts), float(Fraction(1, 10)))
    key_idx = np.flatnonzero(keys)
    assert key_idx[0] == 0 and set(np.diff(key_idx)) == {GOP_FRAMES}
    # Nobody in the first frames (people walk in after the warm-up): the picture still
    # changes from frame to frame, by a small amount, like a real sensor's.
    diff = np.abs(frames[1] - frames[0])
    assert 0.3 < diff.mean() < 4.0
    assert not np.array_equal(frames[1], frames[2])

    # Its config names the zone, the rule and camera health, and writes a JSONL sink.
    cfg = config_for(scn, video, tmp_path)
    assert cfg["cameras"][0]["zones"][0]["name"] == "area"
    assert [r["type"] for r in cfg["rules"]] == ["intrusion", "camera_health"]
    assert cfg["sinks"] == [{"jsonl": str(tmp_path / "events.jsonl")}]


def test_quick_benchmark_end_to_end(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.accuracy",
            "--quick",
            "--no-readme",
            "--out",
            str(out),
            "--cache",
            str(CACHE),
        ],
        cwd=REPO,
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    scenarios = res["scenarios"]
    assert [s["kind"] for s in scenarios] == [*KINDS, "quiet", "quiet"]
    assert all(s["returncode"] == 0 for s in scenarios)
    assert all(len(s["gt"]) >= 1 for s in scenarios if s["kind"] != "quiet")
    assert res["quiet"]["camera_hours"] == pytest.approx(60.0 / 3600.0, abs=1e-4)
    assert set(res["per_rule"]) >= {*KINDS, "camera_health"}
    # Intrusion is the reference rule: its one event is found on time.
    intr = res["per_rule"]["intrusion"]
    assert (intr["tp"], intr["fn"]) == (1, 0)
    assert intr["mean_abs_start_error_s"] <= 1.0
    assert "| intrusion |" in proc.stdout
    # Videos are deleted after scoring (they live in the cache, never in the repo).
    run_dir = CACHE / "runs" / "seed1-quick"
    assert not list(run_dir.glob("*/video.mp4"))
