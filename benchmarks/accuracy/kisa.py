"""``python -m benchmarks.accuracy.kisa``: KISA-style evaluation of the accuracy scenarios.

Usage::

    .venv/bin/python -m benchmarks.accuracy.kisa [--quick] [--seed N] [--kinds K1,K2]
        [--conditions base,night,...] [--per-kind N] [--work DIR] [--out results.json]
        [--results-md PATH] [--report-only]

Every clip is a scenario of :mod:`benchmarks.accuracy.scenarios` (real people on real
backgrounds, exact ground truth) under one condition of
:mod:`benchmarks.accuracy.kisa_conditions` (the base: day, clear, 15 m; or one factor
varied: dawn, dusk, night, rain, snow, fog, 10/20/30 m), rendered as 1280x720 H.264 and
run through the real ``argus run`` (the clips of a condition as the cameras of one run).
Alerts are scored with KISA's window (:mod:`benchmarks.accuracy.kisa_report`) and a
certification-style table (F1, PASS at 0.90) is printed and written.

Resumable: each clip's outcome is stored as ``result.json`` in its folder under
``--work`` (default ``$ARGUS_HOME/bench/kisa``), named by a hash of what makes it (the
condition, seed, scenario, the generator's and the pipeline's source code, the model
and the sprite bank); a clip whose result exists is not made again, so an interrupted
run continues where it stopped.  Videos are deleted once their clip is scored.

Seeds: effect strengths were looked at on :data:`TUNING_SEEDS`; the reported table is
on :data:`HELD_OUT_SEED`, never looked at while choosing them.  The rules' settings are
the accuracy suite's, unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

from argus.bench import machine_description
from argus.paths import argus_home
from benchmarks.accuracy import report
from benchmarks.accuracy.assets import Background, ObjectPatch, backgrounds, object_patches
from benchmarks.accuracy.evaluate import Prediction, read_predictions
from benchmarks.accuracy.kisa_conditions import (
    CONDITIONS,
    OUT_H,
    OUT_W,
    Condition,
    at_distance,
    describe,
    make_look,
    to_output,
)
from benchmarks.accuracy.kisa_report import (
    KISA_WINDOW,
    MARKERS,
    PASS_F1,
    cells,
    counts_table,
    kisa_match,
    other_alerts,
    table,
)
from benchmarks.accuracy.pipeline import config_for, run_argus, write_truth, write_video
from benchmarks.accuracy.scenarios import (
    KINDS,
    GenerationError,
    Scenario,
    generate,
    suite_plan,
)
from benchmarks.accuracy.sprites import ModelMissingError, SpriteBank, model_paths, sprite_bank
from benchmarks.accuracy.truth import GTEvent

logger = logging.getLogger(__name__)

KISA_VERSION = "kisa-v1"
"""Bump when the clips' making changes in a way the source hash would not see."""
TUNING_SEEDS = (1, 2)
HELD_OUT_SEED = 7
PER_KIND = 2
"""Scenarios per event type and condition in a full run (the 2 h budget's choice)."""
QUICK_CONDITIONS = ("base", "night", "fog", "30 m")
"""``--quick``: the base and one condition of each factor, one intrusion clip each."""
DISTANCE_REDRAWS = 6
"""Other scenarios tried when a distance leaves a protagonist out of the picture."""
_SOURCES = ("assets", "render", "scenarios", "truth", "sprites", "pipeline", "kisa_conditions")


@dataclass(frozen=True, slots=True)
class Clip:
    """One planned clip: a scenario of the suite under one condition.

    Attributes:
        cond: The condition.
        kind: Event type of the scenario.
        index: Its number in the suite plan.
        kwargs: Generator keyword arguments (story), as sorted items.
        quick: Quick (shorter) scenario.
        folder: Its folder: ``result.json`` there means done.
    """

    cond: Condition
    kind: str
    index: int
    kwargs: tuple[tuple[str, Any], ...]
    quick: bool
    folder: Path

    @property
    def camera_id(self) -> str:
        """Camera id in the run: condition and scenario, e.g. ``"30m-fall-02"``."""
        return f"{_slug(self.cond.name)}-{self.kind.replace('_', '-')}-{self.index:02d}"

    @property
    def result_path(self) -> Path:
        """``result.json`` of the clip."""
        return self.folder / "result.json"


@dataclass
class Assets:
    """What every clip is made from (loaded once)."""

    bank: SpriteBank
    bgs: dict[str, Background]
    patches: list[ObjectPatch]
    base: dict[tuple[str, int], Scenario] = field(default_factory=dict)


def _slug(name: str) -> str:
    return name.replace(" ", "")


def source_version(model_sha: str, sprites_key: str) -> str:
    """Hash of everything a clip's result depends on besides its own parameters: the
    generator's modules, the pipeline's packages (as imported here, which is what
    ``argus run`` imports from this working directory), the model and the sprite bank."""
    h = hashlib.sha256(f"{KISA_VERSION}:{model_sha}:{sprites_key}".encode())
    here = Path(__file__).resolve().parent
    files = [here / f"{m}.py" for m in _SOURCES]
    for pkg in ("argus", "selector", "detectors", "ingest"):
        spec = importlib.util.find_spec(pkg)  # located, not imported
        for loc in (spec.submodule_search_locations or []) if spec else []:
            files += sorted(Path(loc).resolve().rglob("*.py"))
    for f in files:
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def plan(
    conditions: Sequence[Condition],
    kinds: Sequence[str],
    per_kind: int,
    quick: bool,
    seed: int,
    work: Path,
    version: str,
) -> list[Clip]:
    """Every clip of the run, condition by condition (same scenarios in each)."""
    scenarios = [
        (k, i, tuple(sorted(kw.items())))
        for k, i, kw in suite_plan(kinds, quick)
        if i <= (1 if quick else per_kind)
    ]
    clips = []
    for cond in conditions:
        for kind, index, kwargs in scenarios:
            key = hashlib.sha256(
                json.dumps([cond.key(), seed, kind, index, kwargs, quick, version]).encode()
            ).hexdigest()[:16]
            folder = work / f"seed{seed}" / _slug(cond.name) / f"{kind}-{index:02d}-{key}"
            clips.append(Clip(cond, kind, index, kwargs, quick, folder))
    return clips


def _base_scenario(assets: Assets, clip: Clip, index: int, seed: int) -> Scenario:
    hit = assets.base.get((clip.kind, index))
    if hit is None:
        hit = generate(
            clip.kind, index, seed, assets.bank, assets.bgs, assets.patches, clip.quick,
            **dict(clip.kwargs),
        )  # fmt: skip
        assets.base[(clip.kind, index)] = hit
    return hit


def realise(assets: Assets, clip: Clip, seed: int) -> tuple[Scenario, Background]:
    """The clip's scenario (rendered-frame pixels) and background, at its distance.

    A scenario whose protagonist a distance puts out of the picture is replaced by the
    next of the same kind and story (suite index ``index + 100·j``).

    Raises:
        GenerationError: No scenario fits.
    """
    for j in range(DISTANCE_REDRAWS):
        scn = _base_scenario(assets, clip, clip.index + 100 * j, seed)
        placed = at_distance(scn, assets.bgs[scn.background], clip.cond)
        if placed is not None:
            return placed
    raise GenerationError(f"{clip.camera_id}: no scenario fits at {clip.cond.distance_m} m")


def output_scenario(scn: Scenario, camera_id: str) -> Scenario:
    """``scn`` as its config sees it: camera ``camera_id``, geometry on the 1280x720
    output."""
    return replace(
        scn,
        name=camera_id,
        zones={k: to_output(v) for k, v in scn.zones.items()},
        lines={k: to_output(v) for k, v in scn.lines.items()},
    )


def make_clip(assets: Assets, clip: Clip, seed: int) -> tuple[Scenario, float]:
    """Render and encode the clip's video (``video.mp4`` in its folder, 1280x720 H.264)
    and its truth; returns its output scenario and the seconds it took."""
    t0 = time.monotonic()
    scn, bg = realise(assets, clip, seed)
    clip.folder.mkdir(parents=True, exist_ok=True)
    look = make_look(clip.cond, bg.image, scn.seed)
    write_video(
        scn, assets.bank, {bg.name: bg}, assets.patches, clip.folder / "video.mp4",
        post=look.frames, size=(OUT_W, OUT_H),
    )  # fmt: skip
    out = output_scenario(scn, clip.camera_id)
    write_truth(out, clip.folder / "truth.json")
    return out, time.monotonic() - t0


def probe(video: Path) -> dict[str, Any]:
    """Codec, size and frame count of a video, read back with PyAV."""
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        return {
            "codec": st.codec_context.name,
            "width": st.codec_context.width,
            "height": st.codec_context.height,
            "frames": st.frames,
        }


def batch_config(items: Sequence[tuple[Clip, Scenario]], run_dir: Path) -> dict[str, Any]:
    """One ``argus run`` config whose cameras are the clips' videos (each with its own
    rules and camera health), one JSON-lines sink and store under ``run_dir``."""
    cfg: dict[str, Any] = {}
    cameras: list[Any] = []
    rules: list[Any] = []
    for clip, scn in items:
        cfg = config_for(scn, clip.folder / "video.mp4", run_dir)
        cameras += cfg["cameras"]
        rules += cfg["rules"]
    return {**cfg, "cameras": cameras, "rules": rules}


def run_batch(
    items: Sequence[tuple[Clip, Scenario, float]], run_dir: Path, home: Path
) -> tuple[int, float]:
    """Run ``argus run`` on the clips at once; on success write each clip's
    ``result.json`` and delete its video.  Returns the exit status and wall seconds."""
    shutil.rmtree(run_dir, ignore_errors=True)
    res = run_argus(
        batch_config([(c, s) for c, s, _ in items], run_dir), run_dir, home, "argus", echo=False
    )
    if res.returncode != 0:
        print(f"    argus run failed (exit {res.returncode}):\n{res.tail[-1500:]}", flush=True)
        return res.returncode, res.wall_s
    preds = read_predictions(run_dir / "events.jsonl")
    video_s = sum(s.duration_s for _, s, _ in items)
    for clip, scn, gen_s in items:
        mine = [p for p in preds if p.camera_id == clip.camera_id]
        result = {
            "camera_id": clip.camera_id,
            "condition": clip.cond.name,
            "kind": clip.kind,
            "index": clip.index,
            "scenario": scn.describe(),
            "video": probe(clip.folder / "video.mp4"),
            "predictions": [p.to_dict() for p in mine],
            "returncode": res.returncode,
            "gen_s": round(gen_s, 2),
            "run_s": round(res.wall_s * scn.duration_s / max(video_s, 1e-9), 2),
        }
        clip.result_path.write_text(json.dumps(result, indent=1) + "\n")
        (clip.folder / "video.mp4").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "evidence", ignore_errors=True)
    return res.returncode, res.wall_s


def load_result(clip: Clip) -> report.ScenarioResult | None:
    """The scored result of a done clip (``None``: not done)."""
    if not clip.result_path.is_file():
        return None
    d = json.loads(clip.result_path.read_text())
    s = d["scenario"]
    gt = [GTEvent(**g) for g in s["gt"]]
    preds = [Prediction(**p, camera_id=d["camera_id"]) for p in d["predictions"]]
    armed = sorted({str(r["type"]) for r in s["rules"]} | {"camera_health"})
    r = report.ScenarioResult(
        d["camera_id"], s["kind"], s["variant"], s["background"], s["duration_s"],
        s["people"], armed, gt, preds, kisa_match(gt, preds), d["returncode"],
        d["gen_s"], d["run_s"],
    )  # fmt: skip
    r.extra = {"video": d["video"], "condition": d["condition"]}
    return r


@dataclass
class Progress:
    """Run-time bookkeeping for progress lines and the budget estimate."""

    todo: int
    done: int = 0
    gen_s: float = 0.0
    run_s: float = 0.0
    video_s: float = 0.0
    t0: float = field(default_factory=time.monotonic)

    def line(self, what: str) -> str:
        """``[done/todo] what (elapsed, ETA)``."""
        el = time.monotonic() - self.t0
        left = el / self.done * (self.todo - self.done) if self.done else None
        eta = "" if left is None else f", ETA {left / 60:.0f} min"
        return f"[{self.done}/{self.todo}] {what} ({el / 60:.1f} min{eta})"


def run_condition(
    clips: Sequence[Clip], assets: Assets, seed: int, home: Path, prog: Progress
) -> int:
    """Make and run the not-yet-done clips of one condition; returns failures."""
    items: list[tuple[Clip, Scenario, float]] = []
    failed = 0
    for clip in clips:
        try:
            scn, gen_s = make_clip(assets, clip, seed)
        except GenerationError as e:
            print(f"    {clip.camera_id}: not generated: {e}", flush=True)
            failed += 1
            continue
        items.append((clip, scn, gen_s))
        prog.gen_s += gen_s
        print(
            "  " + prog.line(f"{clip.camera_id}: {scn.variant} on {scn.background}, "
            f"{scn.duration_s:.0f} s, {len(scn.gt)} GT, made in {gen_s:.0f} s"),
            flush=True,
        )  # fmt: skip
    if not items:
        return failed
    rc, wall = run_batch(items, clips[0].folder.parent / "run", home)
    prog.run_s += wall
    prog.video_s += sum(s.duration_s for _, s, _ in items)
    prog.done += len(items)
    print(
        "  " + prog.line(f"{clips[0].cond.name}: argus run on {len(items)} clips, exit {rc}, "
        f"{wall:.0f} s"),
        flush=True,
    )  # fmt: skip
    return failed + (len(items) if rc != 0 else 0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.accuracy.kisa", description=__doc__)
    p.add_argument("--quick", action="store_true", help="4 conditions x 1 intrusion clip")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="suite seed")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated event types")
    p.add_argument(
        "--conditions",
        default=None,
        help=f"comma-separated subset of {','.join(c.name for c in CONDITIONS)}",
    )
    p.add_argument("--per-kind", type=int, default=PER_KIND, help="scenarios per type")
    p.add_argument("--work", type=Path, default=None, help="clip cache (resumable)")
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    p.add_argument(
        "--cache", type=Path, default=None, help="sprite cache (default $ARGUS_HOME/bench/accuracy)"
    )
    p.add_argument("--results-md", type=Path, default=None, help="update its KISA section")
    p.add_argument("--report-only", action="store_true", help="score the done clips only")
    args = p.parse_args(argv)
    args.kinds = [k for k in args.kinds.split(",") if k]
    if not args.kinds or any(k not in KINDS for k in args.kinds):
        p.error(f"--kinds: choose from {','.join(KINDS)}")
    names = {c.name: c for c in CONDITIONS}
    wanted = args.conditions.split(",") if args.conditions else None
    if wanted is None:
        wanted = list(QUICK_CONDITIONS) if args.quick else list(names)
    if any(w not in names for w in wanted):
        p.error(f"--conditions: choose from {','.join(names)}")
    args.conditions = [names[w] for w in wanted]
    if args.quick and args.kinds == list(KINDS):
        args.kinds = ["intrusion"]
    if args.per_kind < 1:
        p.error("--per-kind must be at least 1")
    return args


def summary(
    args: argparse.Namespace, clips: Sequence[Clip], version: str, model_sha: str, wall_s: float
) -> dict[str, Any]:
    """The results JSON: meta, the table's cells, and every clip."""
    by_cond: dict[str, list[report.ScenarioResult]] = {c.name: [] for c in CONDITIONS}
    for clip in clips:
        r = load_result(clip)
        if r is not None:
            by_cond[clip.cond.name].append(r)
    done = [r for rs in by_cond.values() for r in rs]
    argv = " ".join(sys.argv[1:]) if sys.argv[0].endswith("kisa.py") else ""
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "python": platform.python_version(),
            "command": f"python -m benchmarks.accuracy.kisa {argv}".strip(),
            "seed": args.seed,
            "tuning_seeds": list(TUNING_SEEDS),
            "held_out_seed": HELD_OUT_SEED,
            "quick": args.quick,
            "per_kind": 1 if args.quick else args.per_kind,
            "window_s": list(KISA_WINDOW),
            "pass_f1": PASS_F1,
            "clips_planned": len(clips),
            "clips_done": len(done),
            "video_s": round(sum(r.duration_s for r in done), 1),
            "generation_s": round(sum(r.gen_s for r in done), 1),
            "run_s": round(sum(r.run_s for r in done), 1),
            "this_invocation_wall_s": round(wall_s, 1),
            "model": f"nanodet-g sha256:{model_sha[:12]}",
            "source_version": version[:16],
            "conditions": {c.name: describe(c) for c in CONDITIONS},
            "conditions_run": [c.name for c in args.conditions],
            "kinds_run": args.kinds,
            "video": sorted({json.dumps(r.extra["video"], sort_keys=True) for r in done})[:3],
        },
        "cells": cells(by_cond, KINDS),
        "other_alerts": other_alerts(by_cond),
        "clips": [{**r.to_dict(), **r.extra} for r in done],
    }


def markdown(res: dict[str, Any]) -> str:
    """The certification-style table with its counts, for the console and RESULTS.md."""
    m = res["meta"]
    conds = list(m["conditions"])
    heads = {"base": f"base ({m['conditions']['base']})"} if "base" in conds else None
    return "\n".join(
        [
            f"Seed {m['seed']} (tuning seeds {m['tuning_seeds']}, held out "
            f"{m['held_out_seed']}); {m['clips_done']} of {m['clips_planned']} clips, "
            f"{m['video_s'] / 60:.1f} min of 1280x720 H.264 video; KISA window "
            f"[-{m['window_s'][0]:g} s, +{m['window_s'][1]:g} s], PASS at F1 >= {m['pass_f1']}.",
            "",
            table(res["cells"], conds, heads),
            "",
            counts_table(res["cells"], conds),
            "",
            "Other alerts (camera health) per condition: "
            + ", ".join(f"{k} {v}" for k, v in res["other_alerts"].items()),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the evaluation; returns the process exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    home = argus_home()
    work = args.work or home / "bench" / "kisa"
    t0 = time.monotonic()
    try:
        _, model_sha = model_paths(home)
        bank = sprite_bank(home, args.cache or home / "bench" / "accuracy")
    except (ModelMissingError, FileNotFoundError) as e:
        print(f"kisa: {e}", file=sys.stderr)
        return 2
    version = source_version(model_sha, bank.key)
    clips = plan(args.conditions, args.kinds, args.per_kind, args.quick, args.seed, work, version)
    todo = [c for c in clips if not c.result_path.is_file()]
    print(
        f"kisa: seed {args.seed}, {len(clips)} clips ({len(clips) - len(todo)} done), work {work}",
        flush=True,
    )
    failed = 0
    if todo and not args.report_only:
        assets = Assets(bank, backgrounds(bank), object_patches(bank))
        prog = Progress(len(todo))
        for cond in args.conditions:
            mine = [c for c in todo if c.cond == cond]
            if mine:
                failed += run_condition(mine, assets, args.seed, home, prog)
    res = summary(args, clips, version, model_sha, time.monotonic() - t0)
    out = args.out or work / f"results-seed{args.seed}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    print("\n" + md + f"\n\nresults: {out}", flush=True)
    if args.results_md is not None:
        report.update_readme(args.results_md, md, MARKERS, "KISA-style evaluation")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
