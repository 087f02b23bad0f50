"""The KISA run resumes: a clip with a stored result is neither made nor run again.

The clip making and ``argus run`` are replaced by fakes that count their calls (the
real ones are exercised by ``tests/e2e/test_kisa_quick.py``); the plan, cache keys,
result files, scoring and summary are the real code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.accuracy import kisa
from benchmarks.accuracy.pipeline import RunResult
from benchmarks.accuracy.render import Effects
from benchmarks.accuracy.scenarios import Scenario
from benchmarks.accuracy.truth import GTEvent

pytestmark = pytest.mark.unit


class Fakes:
    def __init__(self) -> None:
        self.made: list[str] = []
        self.runs = 0

    def make_clip(self, assets: Any, clip: kisa.Clip, seed: int) -> tuple[Scenario, float]:
        self.made.append(clip.camera_id)
        clip.folder.mkdir(parents=True, exist_ok=True)
        (clip.folder / "video.mp4").write_bytes(b"")
        gt = [GTEvent("intrusion", 10.0, 15.0, zone="area", note="a0")]
        rules = [{"type": "intrusion", "zone": "area", "min_dwell_s": 2.0}]
        zones = {"area": [[0.0, 0.0], [9.0, 0.0], [9.0, 9.0]]}
        scn = Scenario(
            clip.camera_id, clip.kind, "v", "bg", 30.0, 0, zones, {}, rules, [], [],
            Effects(), gt,
        )  # fmt: skip
        return scn, 0.5

    def run_argus(self, config: dict[str, Any], work: Path, *args: Any, **kw: Any) -> RunResult:
        self.runs += 1
        work.mkdir(parents=True, exist_ok=True)
        # On time in every condition but night, where the alert is 10.5 s late (a miss).
        lines = [
            json.dumps(
                {
                    "event_id": cam["id"],
                    "type": "intrusion",
                    "start_s": 20.5 if cam["id"].startswith("night") else 11.0,
                    "end_s": 14.0,
                    "zone": "area",
                    "camera_id": cam["id"],
                }
            )
            for cam in config["cameras"]
        ]
        (work / "events.jsonl").write_text("\n".join(lines) + "\n")
        return RunResult(0, 1.0, "")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    f = Fakes()
    bank = type("Bank", (), {"key": "bank-key"})()
    monkeypatch.setattr(kisa, "model_paths", lambda home: (Path("m"), "0" * 64))
    monkeypatch.setattr(kisa, "sprite_bank", lambda home, cache: bank)
    monkeypatch.setattr(kisa, "backgrounds", lambda b: {})
    monkeypatch.setattr(kisa, "object_patches", lambda b: [])
    monkeypatch.setattr(kisa, "make_clip", f.make_clip)
    monkeypatch.setattr(kisa, "run_argus", f.run_argus)
    monkeypatch.setattr(kisa, "probe", lambda v: {"codec": "h264", "width": 1280})
    return f


def test_second_run_does_no_work(fakes: Fakes, tmp_path: Path) -> None:
    argv = ["--quick", "--seed", "1", "--work", str(tmp_path), "--out", str(tmp_path / "r.json")]
    assert kisa.main(argv) == 0
    assert len(fakes.made) == 4 and fakes.runs == 4  # 4 conditions, one argus run each
    first = json.loads((tmp_path / "r.json").read_text())
    assert not list(tmp_path.rglob("video.mp4"))  # deleted once scored

    assert kisa.main(argv) == 0
    assert len(fakes.made) == 4 and fakes.runs == 4  # nothing made or run again
    again = json.loads((tmp_path / "r.json").read_text())
    assert again["cells"] == first["cells"]
    cell = again["cells"]["intrusion"]
    assert (cell["base"]["tp"], cell["base"]["verdict"]) == (1, "PASS")
    assert (cell["night"]["fn"], cell["night"]["fp"], cell["night"]["verdict"]) == (1, 1, "FAIL")
    assert cell["rain"]["verdict"] == "not run"
    assert again["meta"]["clips_done"] == 4


def test_a_changed_pipeline_is_run_again(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--quick", "--seed", "1", "--work", str(tmp_path), "--conditions", "base"]
    assert kisa.main(argv) == 0
    assert kisa.main(argv) == 0
    assert fakes.runs == 1
    monkeypatch.setattr(kisa, "source_version", lambda sha, key: "another version")
    assert kisa.main(argv) == 0
    assert fakes.runs == 2
