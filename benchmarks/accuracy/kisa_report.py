"""KISA-style scoring and the certification-style table.

KISA's intelligent-CCTV certification counts a true event as detected when an alert of
its type starts between :data:`KISA_WINDOW` ``[0]`` = 2 s before and ``[1]`` = 10 s after
the true start; unmatched alerts are false positives; an event type passes when its F1
is at least :data:`PASS_F1` = 0.90.  Here every (event type, condition) cell is scored
that way over the clips of that condition (:func:`cells`), with the matching of
:func:`benchmarks.accuracy.evaluate.match` and the counting of
:func:`benchmarks.accuracy.report.per_rule`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.accuracy.evaluate import Counts, Matching, Prediction, match
from benchmarks.accuracy.report import ScenarioResult, per_rule
from benchmarks.accuracy.scenarios import KINDS
from benchmarks.accuracy.truth import GTEvent

KISA_WINDOW = (2.0, 10.0)
"""``(before_s, after_s)``: an alert may start this much before / after the true start."""
PASS_F1 = 0.90
MARKERS = ("<!-- kisa:begin -->", "<!-- kisa:end -->")


def kisa_match(gt: Sequence[GTEvent], preds: Sequence[Prediction]) -> Matching:
    """One clip's alerts matched to its truth with KISA's window (edges included)."""
    return match(gt, preds, window=KISA_WINDOW)


def verdict(f1: float | None) -> str:
    """``"PASS"`` for F1 >= :data:`PASS_F1`, ``"FAIL"`` below, ``"n/a"`` undefined."""
    if f1 is None:
        return "n/a"
    return "PASS" if f1 >= PASS_F1 - 1e-12 else "FAIL"


def cells(
    results: Mapping[str, Sequence[ScenarioResult]], types: Sequence[str] = KINDS
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{type: {condition: counts}}`` for every type and every condition of ``results``
    (``{condition: its clips}``); counts are :meth:`Counts.to_dict` plus ``clips`` (of
    that type's own scenarios) and ``verdict``.  F1 is 0 where every event was missed
    or every alert was false (KISA fails it), ``None`` with neither."""
    out: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in types}
    for cond, rs in results.items():
        counts = per_rule(rs)
        for t in types:
            c = counts.get(t, Counts(errors=[]))
            d = c.to_dict()
            d["f1"] = None if d["f1"] is None and not (c.fn or c.fp) else (d["f1"] or 0.0)
            d["clips"] = sum(1 for r in rs if r.kind == t)
            d["verdict"] = verdict(d["f1"]) if d["clips"] else "not run"
            out[t][cond] = d
    return out


def other_alerts(results: Mapping[str, Sequence[ScenarioResult]]) -> dict[str, int]:
    """Alerts of types outside the table (camera health) per condition."""
    return {
        cond: sum(1 for r in rs for p in r.preds if p.type not in KINDS)
        for cond, rs in results.items()
    }


def _cell(d: Mapping[str, Any]) -> str:
    if d["verdict"] == "not run":
        return "–"
    f1 = d["f1"]
    return f"{'–' if f1 is None else f'{f1:.2f}'} {d['verdict']}"


def table(
    grid: Mapping[str, Mapping[str, Mapping[str, Any]]],
    conditions: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> str:
    """The certification-style Markdown table: a row per event type, a column per
    condition, cells ``F1 PASS|FAIL`` (``–``: no clip of that type there), and a last
    row counting the passing cells per condition."""
    heads = [headers.get(c, c) if headers else c for c in conditions]
    lines = [
        "| event type | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(conditions),
    ]
    for t, row in grid.items():
        lines.append(f"| {t} | " + " | ".join(_cell(row[c]) for c in conditions) + " |")
    passing = []
    for c in conditions:
        run = [row[c] for row in grid.values() if row[c]["verdict"] != "not run"]
        passing.append(f"{sum(1 for d in run if d['verdict'] == 'PASS')}/{len(run)}")
    lines.append("| **passing** | " + " | ".join(passing) + " |")
    return "\n".join(lines)


def counts_table(
    grid: Mapping[str, Mapping[str, Mapping[str, Any]]], conditions: Sequence[str]
) -> str:
    """A Markdown table of ``TP/FP/FN`` per cell (the numbers behind each F1)."""
    lines = [
        "| TP/FP/FN | " + " | ".join(conditions) + " |",
        "|---|" + "---:|" * len(conditions),
    ]
    for t, row in grid.items():
        vals = [
            "–" if d["verdict"] == "not run" else f"{d['tp']}/{d['fp']}/{d['fn']}"
            for d in (row[c] for c in conditions)
        ]
        lines.append(f"| {t} | " + " | ".join(vals) + " |")
    return "\n".join(lines)
