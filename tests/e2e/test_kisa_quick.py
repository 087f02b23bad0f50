"""``python -m benchmarks.accuracy.kisa --quick`` for real: real people rendered under
four conditions as 1280x720 H.264, the real model through the real ``argus run``,
KISA-window scoring and the certification table (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from argus.paths import argus_home
from benchmarks.accuracy.kisa_conditions import CONDITIONS
from benchmarks.accuracy.scenarios import KINDS
from tests.e2e.conftest import env_for, make_home, require_prerequisites

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CACHE = argus_home() / "bench" / "accuracy"  # the sprite bank, shared with the accuracy tests


def test_kisa_quick_end_to_end(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    out = tmp_path / "kisa.json"
    cmd = [
        sys.executable, "-m", "benchmarks.accuracy.kisa", "--quick", "--seed", "1",
        "--work", str(tmp_path / "work"), "--out", str(out), "--cache", str(CACHE),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=env_for(home), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())

    # The table: a row per event type, a column per condition, every cell present.
    header = next(ln for ln in proc.stdout.splitlines() if ln.startswith("| event type |"))
    assert header.count("|") == len(CONDITIONS) + 2
    for kind in KINDS:
        assert f"| {kind} |" in proc.stdout
    assert set(res["cells"]) == set(KINDS)
    run = set(res["meta"]["conditions_run"])
    assert run == {"base", "night", "fog", "30 m"}
    for kind, row in res["cells"].items():
        assert set(row) == {c.name for c in CONDITIONS}
        for cond, cell in row.items():
            if kind != "intrusion" or cond not in run:
                assert cell["verdict"] == "not run"
                continue
            assert cell["clips"] == 1 and cell["gt"] >= 1
            assert cell["tp"] + cell["fn"] == cell["gt"] and cell["fp"] >= 0
            assert 0.0 <= cell["f1"] <= 1.0
            assert cell["verdict"] == ("PASS" if cell["f1"] >= 0.9 else "FAIL")
    # The base clip is the accuracy suite's reference rule in daylight: found on time.
    assert res["cells"]["intrusion"]["base"]["verdict"] == "PASS"

    # Every clip really was 1280x720 H.264 (read back with PyAV before it was deleted).
    clips = res["clips"]
    assert len(clips) == 4
    for c in clips:
        assert (c["video"]["codec"], c["video"]["width"], c["video"]["height"]) == (
            "h264",
            1280,
            720,
        )
        assert c["video"]["frames"] == round(c["duration_s"] * 10)
        assert c["returncode"] == 0
    assert not list((tmp_path / "work").rglob("video.mp4"))

    # Resumed: a second run finds every clip done and makes nothing.
    again = subprocess.run(
        cmd, cwd=REPO, env=env_for(home), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stdout[-2000:]
    assert "4 clips (4 done)" in again.stdout
    assert "argus run on" not in again.stdout
