"""``python -m benchmarks.accuracy``: generate the scenario suite, run Argus on it, score it.

Usage::

    .venv/bin/python -m benchmarks.accuracy [--quick] [--kinds K1,K2] [--seed N]
        [--tolerance-s S] [--out results.json] [--no-run] [--keep] [--cache DIR]
        [--readme PATH | --no-readme]

See ``benchmarks/README.md`` (section "Accuracy") for what is generated and measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argus.bench import machine_description
from argus.paths import argus_home
from benchmarks.accuracy import report
from benchmarks.accuracy.assets import backgrounds, object_patches
from benchmarks.accuracy.evaluate import DEFAULT_TOLERANCE_S, match, read_predictions
from benchmarks.accuracy.pipeline import config_for, run_argus, write_truth, write_video
from benchmarks.accuracy.scenarios import ALL_KINDS, GenerationError, generate, suite_plan
from benchmarks.accuracy.sprites import ModelMissingError, model_paths, sprite_bank

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SEED = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.accuracy",
        description="Accuracy benchmark: real people composited on real backgrounds with "
        "exact ground truth, run through `argus run`, scored per rule.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="one scenario per kind and two 30 s quiet scenes (CI, ~3 min)",
    )
    p.add_argument(
        "--kinds",
        default=",".join(ALL_KINDS),
        help=f"comma-separated subset of {','.join(ALL_KINDS)}",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="suite seed; another seed gives different scenarios",
    )
    p.add_argument(
        "--tolerance-s",
        type=float,
        default=DEFAULT_TOLERANCE_S,
        help="start-time tolerance for a match, seconds",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/last-accuracy.json; quick: in the cache directory)",
    )
    p.add_argument(
        "--gating",
        type=json.loads,
        default=None,
        help="the runs' gating section as JSON, e.g. '{\"sparse_when_quiet\": true}'",
    )
    p.add_argument(
        "--camera",
        type=json.loads,
        default=None,
        help="more keys of every scenario's camera as JSON, e.g. "
        '\'{"ground": {"estimate": false}}\'',
    )
    p.add_argument("--no-run", action="store_true", help="generate videos and truth only")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep videos and run folders (default: deleted after scoring)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache directory (default $ARGUS_HOME/bench/accuracy)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="write the Markdown section here (default: benchmarks/README.md for "
        "a full run of every kind, nowhere otherwise)",
    )
    g.add_argument("--no-readme", action="store_true", help="do not write any README")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        p.error(f"unknown kinds {bad}; choose from {', '.join(ALL_KINDS)}")
    args.kinds = kinds
    if args.gating is not None and not isinstance(args.gating, dict):
        p.error("--gating must be a JSON object")
    if args.camera is not None and not isinstance(args.camera, dict):
        p.error("--camera must be a JSON object")
    if args.tolerance_s <= 0 or not math.isfinite(args.tolerance_s):
        p.error("--tolerance-s must be a positive number")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    home = argus_home()
    cache = args.cache or home / "bench" / "accuracy"
    mode = "quick" if args.quick else "full"
    runs = cache / "runs" / f"seed{args.seed}-{mode}"
    try:
        _, model_sha = model_paths(home)
        t = time.monotonic()
        bank = sprite_bank(home, cache)
        print(
            f"sprites: {len(bank.sequences)} walk cycles of real people "
            f"({sum(len(s) for s in bank.sequences)} cut-outs), perspective "
            f"h = {bank.persp[0]:.1f} + {bank.persp[1]:.3f}·y px "
            f"[{time.monotonic() - t:.1f} s]",
            flush=True,
        )
    except (ModelMissingError, FileNotFoundError) as e:
        print(f"accuracy benchmark: {e}", file=sys.stderr)
        return 2
    bgs = backgrounds(bank)
    patches = object_patches(bank)
    plan = suite_plan(args.kinds, args.quick)
    print(f"suite seed {args.seed} ({mode}): {len(plan)} scenarios -> {runs}", flush=True)

    results: list[report.ScenarioResult] = []
    gen_total = run_total = 0.0
    failed = 0
    t_start = time.monotonic()
    for n, (kind, index, kwargs) in enumerate(plan, 1):
        t = time.monotonic()
        try:
            scn = generate(kind, index, args.seed, bank, bgs, patches, args.quick, **kwargs)
        except GenerationError as e:
            failed += 1
            print(f"[{n}/{len(plan)}] {kind} #{index}: not generated: {e}", flush=True)
            continue
        work = runs / scn.name
        work.mkdir(parents=True, exist_ok=True)
        video = work / "video.mp4"
        frames = write_video(scn, bank, bgs, patches, video)
        write_truth(scn, work / "truth.json")
        gen_s = time.monotonic() - t
        gen_total += gen_s
        print(
            f"[{n}/{len(plan)}] {scn.name}: {scn.variant} on {scn.background}, "
            f"{scn.duration_s:.0f} s, {scn.n_people} people, {len(scn.gt)} GT "
            f"({frames} frames in {gen_s:.1f} s)",
            flush=True,
        )
        armed = sorted({str(r["type"]) for r in scn.rules} | {"camera_health"})
        if args.no_run:
            continue
        res = run_argus(
            config_for(scn, video, work, args.gating, args.camera), work, home, scn.name
        )
        run_total += res.wall_s
        preds = read_predictions(work / "events.jsonl")
        m = match(scn.gt, preds, args.tolerance_s)
        r = report.ScenarioResult(
            scn.name,
            scn.kind,
            scn.variant,
            scn.background,
            scn.duration_s,
            scn.n_people,
            armed,
            scn.gt,
            preds,
            m,
            res.returncode,
            gen_s,
            res.wall_s,
            "" if res.returncode == 0 else res.tail[-2000:],
        )
        results.append(r)
        if res.returncode != 0:
            failed += 1
            print(
                f"    argus run failed (exit {res.returncode}); log: {work / 'argus.log'}",
                flush=True,
            )
        print(
            f"    -> {len(preds)} events: TP {len(m.pairs)}, FP {len(m.false)}, "
            f"FN {len(m.missed)} [{res.wall_s:.1f} s]",
            flush=True,
        )
        if not args.keep:
            video.unlink(missing_ok=True)
            shutil.rmtree(work / "evidence", ignore_errors=True)
    if args.no_run:
        print(f"generated {len(plan)} scenarios in {gen_total:.0f} s under {runs}")
        return 0

    summary: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "python": platform.python_version(),
            "seed": args.seed,
            "quick": args.quick,
            "kinds": args.kinds,
            "tolerance_s": args.tolerance_s,
            "gating": args.gating,
            "camera": args.camera,
            "scenarios": len(results),
            "failed_runs": failed,
            "video_hours": round(sum(r.duration_s for r in results) / 3600.0, 4),
            "generation_s": round(gen_total, 1),
            "run_s": round(run_total, 1),
            "total_s": round(time.monotonic() - t_start, 1),
            "model": f"nanodet-g sha256:{model_sha[:12]}",
            "backgrounds": {b.name: b.source for b in bgs.values()},
            "objects": [p.name for p in patches],
            "sprites": {"sequences": len(bank.sequences), "cache_key": bank.key},
        },
        "per_rule": {t: c.to_dict() for t, c in report.per_rule(results).items()},
        "quiet": report.quiet_summary(results),
        "watch_load": report.watch_load(results),
        "scenarios": [r.to_dict() for r in results],
    }
    out = args.out or (
        cache / f"results-seed{args.seed}-quick.json"
        if args.quick
        else REPO / "benchmarks" / "last-accuracy.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    md = report.markdown(summary)
    print()
    print(md)
    print(f"\nresults: {out}")
    readme = args.readme
    if (
        readme is None
        and not args.no_readme
        and not args.quick
        and set(args.kinds) == set(ALL_KINDS)
    ):
        readme = REPO / "benchmarks" / "README.md"
    if readme is not None and not args.no_readme:
        report.update_readme(readme, md)
        print(f"README section updated: {readme}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
