"""Replay accuracy scenarios at real speed, every frame decoded against activity-driven
decoding, and compare the event starts and their frame-to-event latency.

The accuracy suite replays its videos as fast as possible, so it measures *when* in the
video an event starts, not how long after its frame arrived the event was raised.  Played
at real speed (as a live camera delivers), activity-driven decoding's look-back shows as
latency: a motion between two keyframes is seen at the second keyframe, and the frames
before it are analysed then.  This tool measures that, on scenarios kept by a run of
``python -m benchmarks.accuracy --keep`` (each scenario's folder, under the run folder it
prints, holds ``video.mp4`` and ``argus.yaml``)::

    .venv/bin/python -m benchmarks.accuracy --seed 1 --kinds line_crossing --keep --no-readme
    .venv/bin/python -m benchmarks.realtime_events RUN_FOLDER/*/argus.yaml

For each scenario and mode it prints the event starts (s of video) and, per start, the
latency from the arrival of the frame that started it to the event (s, wall clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from argus.app import build_pipeline
from argus.config import parse_config
from argus.paths import argus_home

MODES: dict[str, dict[str, Any]] = {
    "every frame": {"sparse_when_quiet": False},
    "activity-driven": {"sparse_when_quiet": True},
}


def replay(config: dict[str, Any], gating: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run ``config`` in this process at real speed with ``gating`` merged in; returns the
    event starts ``[(type, start_s)]``, their frame-to-event latencies (s), and the first
    camera's look-backs and thinned frames."""
    cfg = dict(config)
    cfg["gating"] = {**cfg.get("gating", {}), **gating}
    cfg["cameras"] = [{**cam, "realtime": True} for cam in cfg["cameras"]]
    cfg["sinks"] = [{"jsonl": str(work / "events.jsonl")}]
    cfg["storage"] = {"sqlite": str(work / "alerts.db"), "evidence_dir": str(work / "evidence")}
    pipe = build_pipeline(parse_config(cfg), home=argus_home(), source="realtime_events")
    try:
        pipe.runner.run()
    finally:
        pipe.close()
    records = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
    cam = pipe.runner.cameras[0]
    health = cam.health()
    return {
        "starts": [(r["type"], r["start_s"]) for r in records if r.get("end_s") is None],
        "latencies_s": [round(x, 3) for x in pipe.runner.latencies_s],
        "look_backs": health["look_backs"],
        "frames_thinned": health["frames_thinned"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="+", type=Path, help="scenario argus.yaml files")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    for path in args.configs:
        config = yaml.safe_load(path.read_text())
        name = str(config["cameras"][0]["id"])
        for mode, gating in MODES.items():
            with tempfile.TemporaryDirectory() as tmp:
                res = replay(config, gating, Path(tmp))
            results[f"{name} / {mode}"] = res
            starts = ", ".join(f"{t} {s:.2f} s" for t, s in res["starts"]) or "none"
            lat = ", ".join(f"{x:.2f}" for x in res["latencies_s"]) or "-"
            print(
                f"{name:24s} {mode:16s} starts: {starts}; latency s: {lat}; "
                f"look-backs {res['look_backs']}, thinned {res['frames_thinned']}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
