"""The fall rule with and without the pose model, on the accuracy suite's fall scenes.

Usage::

    .venv/bin/python -m benchmarks.fall_pose [--seeds 1,2,3] [--out results.json]

Each fall scenario of each seed (one person falls and lies 6-14 s; others walk, bend or
sit) is rendered once and run twice through ``argus run``, interleaved: the fall rule as
configured by the suite, and the same with ``pose: true``.  Scored with the suite's
matcher (start within its tolerance); the CPU time of each ``argus run`` process (user +
system, from ``getrusage`` of the child) gives pose's cost per camera, as CPU seconds per
second of video.  Needs the pose model: ``argus models pull --pose``.

What it shows and does not: the suite's falls are real people's cut-outs rotated to the
floor over the fall's duration, so a lying body is a rotated standing one (the pose model
sees a plausible lying person, without a real fall's foreshortening, clothes folding or
occlusion by the body itself); sitting and bending are squashed and leaned cut-outs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argus.bench import machine_description
from argus.paths import argus_home
from benchmarks.accuracy.assets import backgrounds, object_patches
from benchmarks.accuracy.evaluate import DEFAULT_TOLERANCE_S, match, read_predictions
from benchmarks.accuracy.pipeline import config_for, run_argus, write_truth, write_video
from benchmarks.accuracy.scenarios import GenerationError, generate, suite_plan
from benchmarks.accuracy.sprites import sprite_bank
from detectors.pose import POSE_MODEL_NAME

MODES = ("without", "with")


def _child_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _with_pose(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with ``pose: true`` on its fall rules."""
    out = dict(cfg)
    out["rules"] = [{**r, "pose": True} if r.get("type") == "fall" else r for r in cfg["rules"]]
    return out


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return None if tp == 0 and (fp or fn) == 0 else 2 * tp / (2 * tp + fp + fn)


def main(argv: list[str] | None = None) -> int:
    """Run it; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.fall_pose", description=__doc__)
    p.add_argument("--seeds", default="1,2,3", help="suite seeds, comma-separated")
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    home = argus_home()
    if not (home / "models" / POSE_MODEL_NAME / "manifest.json").is_file():
        print(
            f"the pose model {POSE_MODEL_NAME!r} is not installed: run `argus models pull --pose`",
            file=sys.stderr,
        )
        return 2
    cache = home / "bench" / "accuracy"
    bank = sprite_bank(home, cache)
    bgs = backgrounds(bank)
    patches = object_patches(bank)
    totals = {m: {"tp": 0, "fp": 0, "fn": 0, "cpu_s": 0.0} for m in MODES}
    scenes: list[dict[str, Any]] = []
    video_s = 0.0
    for seed in seeds:
        for kind, index, kwargs in suite_plan(["fall"], False):
            try:
                scn = generate(kind, index, seed, bank, bgs, patches, False, **kwargs)
            except GenerationError as e:
                print(f"seed {seed} {kind} #{index}: not generated: {e}", flush=True)
                continue
            work = cache / "runs" / "fall-pose" / f"seed{seed}" / scn.name
            work.mkdir(parents=True, exist_ok=True)
            video = work / "video.mp4"
            write_video(scn, bank, bgs, patches, video)
            write_truth(scn, work / "truth.json")
            video_s += scn.duration_s
            row: dict[str, Any] = {"seed": seed, "scene": scn.name, "variant": scn.variant}
            for mode in MODES:
                cfg = config_for(scn, video, work / mode)
                if mode == "with":
                    cfg = _with_pose(cfg)
                cpu0 = _child_cpu_s()
                res = run_argus(cfg, work / mode, home, f"{scn.name}/{mode}", echo=False)
                cpu = _child_cpu_s() - cpu0
                if res.returncode != 0:
                    print(res.tail[-2000:], file=sys.stderr)
                    return 1
                m = match(
                    scn.gt, read_predictions(work / mode / "events.jsonl"), DEFAULT_TOLERANCE_S
                )
                got = {"tp": len(m.pairs), "fp": len(m.false), "fn": len(m.missed), "cpu_s": cpu}
                for k, v in got.items():
                    totals[mode][k] += v
                row[mode] = got
            video.unlink(missing_ok=True)
            scenes.append(row)
            print(
                f"seed {seed} {scn.name} ({scn.variant}): "
                + "; ".join(
                    f"{m} TP {row[m]['tp']} FP {row[m]['fp']} FN {row[m]['fn']} "
                    f"cpu {row[m]['cpu_s']:.1f} s"
                    for m in MODES
                ),
                flush=True,
            )
    summary: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "seeds": seeds,
            "scenes": len(scenes),
            "video_s": round(video_s, 1),
        },
        "totals": {
            m: {
                **{k: (round(v, 1) if k == "cpu_s" else v) for k, v in t.items()},
                "f1": _f1(int(t["tp"]), int(t["fp"]), int(t["fn"])),
                "cpu_per_video_s": round(t["cpu_s"] / video_s, 4) if video_s else None,
            }
            for m, t in totals.items()
        },
        "scenes": scenes,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
