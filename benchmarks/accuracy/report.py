"""Summaries of a suite run: per-rule scores, quiet-scene false alerts, watch load; Markdown."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.accuracy.evaluate import (
    CONTROL_ROOM_QUIET_SHARE,
    MIN_REVIEW_S,
    Counts,
    Matching,
    Prediction,
    WatchLoad,
    flagged_seconds,
    mixed_share,
    poisson_upper,
)
from benchmarks.accuracy.scenarios import KINDS
from benchmarks.accuracy.truth import GTEvent

BEGIN = "<!-- accuracy:begin -->"
END = "<!-- accuracy:end -->"
RULE_TYPES = (*KINDS, "camera_health")


@dataclass
class ScenarioResult:
    """What one scenario produced, scored.

    Attributes:
        name: Scenario (camera) name.
        kind: Scenario kind (``"quiet"`` for quiet scenes).
        variant: Story / quiet variant.
        background: Background name.
        duration_s: Video length, seconds.
        people: People in the script.
        armed: Rule types armed in its config (camera_health included).
        gt: Ground truth.
        preds: Predictions.
        matching: Matching of ``preds`` to ``gt``.
        returncode: ``argus run`` exit status (``None``: not run).
        gen_s: Generation wall time (simulate, render, encode), seconds.
        run_s: ``argus run`` wall time, seconds.
    """

    name: str
    kind: str
    variant: str
    background: str
    duration_s: float
    people: int
    armed: list[str]
    gt: list[GTEvent]
    preds: list[Prediction]
    matching: Matching
    returncode: int | None = None
    gen_s: float = 0.0
    run_s: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """``{type: (TP, FP, FN)}`` over the types armed here or predicted here."""
        out: dict[str, list[int]] = {t: [0, 0, 0] for t in self.armed}
        for i, _ in self.matching.pairs:
            out.setdefault(self.gt[i].type, [0, 0, 0])[0] += 1
        for j in self.matching.false:
            out.setdefault(self.preds[j].type, [0, 0, 0])[1] += 1
        for i in self.matching.missed:
            out.setdefault(self.gt[i].type, [0, 0, 0])[2] += 1
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "variant": self.variant,
            "background": self.background,
            "duration_s": self.duration_s,
            "people": self.people,
            "armed": self.armed,
            "returncode": self.returncode,
            "error": self.error,
            "gen_s": round(self.gen_s, 1),
            "run_s": round(self.run_s, 1),
            "gt": [g.to_dict() for g in self.gt],
            "predictions": [p.to_dict() for p in self.preds],
            "matched": [
                [i, j, round(self.preds[j].start_s - self.gt[i].start_s, 3)]
                for i, j in self.matching.pairs
            ],
            "false_positives": self.matching.false,
            "false_negatives": self.matching.missed,
        }


def per_rule(results: Sequence[ScenarioResult]) -> dict[str, Counts]:
    """TP/FP/FN per rule type over every scenario where the type is armed (incident
    scenarios of its kind and the quiet scenes, which arm every rule)."""
    out: dict[str, Counts] = {}
    for r in results:
        for typ, (tp, fp, fn) in r.counts().items():
            c = out.setdefault(typ, Counts(errors=[]))
            if typ in r.armed:
                c.scenarios += 1
            c.tp += tp
            c.fp += fp
            c.fn += fn
            c.gt += tp + fn
        for i, j in r.matching.pairs:
            c = out[r.gt[i].type]
            assert c.errors is not None
            c.errors.append(abs(r.preds[j].start_s - r.gt[i].start_s))
    return {t: out[t] for t in sorted(out, key=lambda t: ((*RULE_TYPES, t)).index(t))}


def quiet_summary(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """False alerts on the quiet scenes: count, by type, per camera-hour and its bound."""
    quiet = [r for r in results if r.kind == "quiet"]
    hours = sum(r.duration_s for r in quiet) / 3600.0
    k = sum(len(r.preds) for r in quiet)
    by_type: dict[str, int] = {}
    for r in quiet:
        for p in r.preds:
            by_type[p.type] = by_type.get(p.type, 0) + 1
    variants: dict[str, int] = {}
    for r in quiet:
        variants[r.variant] = variants.get(r.variant, 0) + 1
    return {
        "scenes": len(quiet),
        "variants": variants,
        "with_people": sum(1 for r in quiet if r.people > 0),
        "people": sum(r.people for r in quiet),
        "camera_hours": round(hours, 4),
        "false_alerts": k,
        "by_type": by_type,
        "per_camera_hour": None if hours == 0 else round(k / hours, 3),
        "upper95_per_camera_hour": None if hours == 0 else round(poisson_upper(k) / hours, 3),
    }


def watch_load(
    results: Sequence[ScenarioResult], min_review_s: float = MIN_REVIEW_S
) -> dict[str, Any]:
    """Flagged share and reduction: the suite as generated, its quiet and incident parts,
    and the control-room mix (``CONTROL_ROOM_QUIET_SHARE`` of camera-time quiet)."""

    def load(rs: Sequence[ScenarioResult]) -> WatchLoad:
        flagged = sum(
            flagged_seconds([(p.start_s, p.end_s) for p in r.preds], r.duration_s, min_review_s)
            for r in rs
        )
        return WatchLoad(flagged, sum(r.duration_s for r in rs))

    def js(w: WatchLoad) -> dict[str, Any]:
        return {
            "flagged_s": round(w.flagged_s, 1),
            "total_s": round(w.total_s, 1),
            "share": round(w.share, 5),
            "reduction": None if math.isinf(w.reduction) else round(w.reduction, 2),
        }

    allw = load(results)
    quiet = load([r for r in results if r.kind == "quiet"])
    inc = load([r for r in results if r.kind != "quiet"])
    mix = mixed_share(quiet, inc)
    return {
        "min_review_s": min_review_s,
        "suite": js(allw),
        "quiet": js(quiet),
        "incident": js(inc),
        "control_room_mix": {
            "quiet_share": CONTROL_ROOM_QUIET_SHARE,
            "share": round(mix, 5),
            "reduction": None if mix <= 0 else round(1.0 / mix, 2),
        },
    }


def _f(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    """The Markdown section (without the markers) for ``benchmarks/README.md``."""
    meta = summary["meta"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; `python -m benchmarks.accuracy"
        f"{' --quick' if meta['quick'] else ''} --seed {meta['seed']}` "
        f"({meta['scenarios']} scenarios, {meta['video_hours']:.2f} h of video; generation "
        f"{meta['generation_s'] / 60:.1f} min, `argus run` {meta['run_s'] / 60:.1f} min). "
        f"Model {meta['model']}. Start-time tolerance {meta['tolerance_s']} s.",
        "",
        "| rule | scenarios | GT events | TP | FP | FN | precision | recall | F1 "
        "| mean \\|Δstart\\| s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for typ, c in summary["per_rule"].items():
        lines.append(
            f"| {typ} | {c['scenarios']} | {c['gt']} | {c['tp']} | {c['fp']} | {c['fn']} "
            f"| {_f(c['precision'])} | {_f(c['recall'])} | {_f(c['f1'])} "
            f"| {_f(c['mean_abs_start_error_s'], 1)} |"
        )
    q = summary["quiet"]
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(q["by_type"].items())) or "none"
    lines += [
        "",
        "| quiet scenes | camera-hours | false alerts | per camera-hour | 95 % upper bound |",
        "|---:|---:|---:|---:|---:|",
        f"| {q['scenes']} ({q['with_people']} with {q['people']} people passing) "
        f"| {q['camera_hours']:.2f} | {q['false_alerts']} ({by_type}) "
        f"| {_f(q['per_camera_hour'])} | {_f(q['upper95_per_camera_hour'])} |",
        "",
    ]
    w = summary["watch_load"]
    mix = w["control_room_mix"]

    def red(v: float | None) -> str:
        return "∞ (nothing flagged)" if v is None else f"{v:.1f}×"

    lines += [
        f"Watch load (each alert counts at least {w['min_review_s']:.0f} s of review; "
        "union per camera): "
        f"suite as generated {100 * w['suite']['share']:.1f} % of camera-time flagged, "
        f"reduction {red(w['suite']['reduction'])}; quiet scenes "
        f"{100 * w['quiet']['share']:.2f} %; incident scenes "
        f"{100 * w['incident']['share']:.1f} %; control-room mix "
        f"({100 * mix['quiet_share']:.0f} % quiet camera-time: share = "
        f"{mix['quiet_share']:.2f}·quiet + {1 - mix['quiet_share']:.2f}·incident) "
        f"{100 * mix['share']:.2f} %, reduction {red(mix['reduction'])}.",
        "",
        "<details><summary>Per scenario</summary>",
        "",
        "| scenario | story | background | s | people | GT | TP | FP | FN | run |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary["scenarios"]:
        tp = len(s["matched"])
        status = "ok" if s["returncode"] == 0 else f"exit {s['returncode']}"
        lines.append(
            f"| {s['name']} | {s['variant']} | {s['background']} | {s['duration_s']:.0f} "
            f"| {s['people']} | {len(s['gt'])} | {tp} | {len(s['false_positives'])} "
            f"| {len(s['false_negatives'])} | {status} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines)


def update_readme(
    path: Path,
    section: str,
    markers: tuple[str, str] = (BEGIN, END),
    heading: str = "Accuracy",
) -> None:
    """Replace the text between ``markers`` (default the accuracy ones) of ``path``;
    missing markers: appended under ``## heading`` (file created if missing)."""
    begin, end = markers
    block = f"{begin}\n{section}\n{end}"
    if path.is_file():
        text = path.read_text()
        if begin in text and end in text:
            text = re.sub(
                re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S
            )
        else:
            text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    else:
        text = f"# Benchmarks\n\n## {heading}\n\n" + block + "\n"
    path.write_text(text)
