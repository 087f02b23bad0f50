"""How much later (or earlier) events start in one accuracy run than in another.

Both runs score the same generated suite (same seed): for every ground-truth event that both
runs matched, the difference of the predicted start times, ``new - baseline`` in seconds of
video, per rule.  Used to measure what activity-driven decoding (a quiet camera decoded at
its keyframes or every ``quiet_interval_s``) costs an event's start::

    .venv/bin/python -m benchmarks.start_delay BASELINE.json NEW.json

``BASELINE.json`` / ``NEW.json``: results of ``python -m benchmarks.accuracy`` (``--out``),
for example the committed ``benchmarks/last-accuracy.json`` of an earlier commit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def starts(result: dict[str, Any]) -> dict[tuple[str, int], tuple[str, float]]:
    """``(scenario, gt index) -> (rule, predicted start s)`` for every matched GT event."""
    out: dict[tuple[str, int], tuple[str, float]] = {}
    for scn in result["scenarios"]:
        for gt_i, pred_i, _ in scn["matched"]:
            rule = scn["gt"][gt_i]["type"]
            out[(scn["name"], gt_i)] = (rule, float(scn["predictions"][pred_i]["start_s"]))
    return out


def compare(baseline: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per rule (and ``all``): events matched in both, only in one, and the start
    differences ``new - baseline`` (s): mean, p95, max, min."""
    a, b = starts(baseline), starts(new)
    deltas: dict[str, list[float]] = defaultdict(list)
    only: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key in a.keys() | b.keys():
        rule = (a.get(key) or b[key])[0]
        if key in a and key in b:
            delta = b[key][1] - a[key][1]
            deltas[rule].append(delta)
            deltas["all"].append(delta)
        else:
            slot = 0 if key in a else 1
            only[rule][slot] += 1
            only["all"][slot] += 1
    table: dict[str, dict[str, Any]] = {}
    for rule in sorted(deltas.keys() | only.keys(), key=lambda r: (r == "all", r)):
        d = np.asarray(deltas.get(rule, []), float)
        table[rule] = {
            "both": int(d.size),
            "only_baseline": only[rule][0],
            "only_new": only[rule][1],
            "mean_s": round(float(d.mean()), 2) if d.size else None,
            "p95_s": round(float(np.quantile(d, 0.95)), 2) if d.size else None,
            "max_s": round(float(d.max()), 2) if d.size else None,
            "min_s": round(float(d.min()), 2) if d.size else None,
        }
    return table


def markdown(table: dict[str, dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| rule | matched in both | only baseline | only new | mean Δstart s | p95 | max | min |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rule, r in table.items():
        cells = [r[k] if r[k] is not None else "–" for k in ("mean_s", "p95_s", "max_s", "min_s")]
        lines.append(
            f"| {rule} | {r['both']} | {r['only_baseline']} | {r['only_new']} | "
            + " | ".join(str(c) for c in cells)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the comparison of two accuracy results; exit 2 on unreadable input."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.start_delay", description=__doc__)
    p.add_argument("baseline", type=Path)
    p.add_argument("new", type=Path)
    args = p.parse_args(argv)
    try:
        base = json.loads(args.baseline.read_text())
        new = json.loads(args.new.read_text())
        if base["meta"]["seed"] != new["meta"]["seed"]:
            print("the two runs scored different suites (seeds differ)", file=sys.stderr)
            return 2
        table = compare(base, new)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        print(f"cannot compare: {e}", file=sys.stderr)
        return 2
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
