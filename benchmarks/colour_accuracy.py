"""Named clothing colours against hand labels: the people of the accuracy suite.

Usage::

    .venv/bin/python -m benchmarks.colour_accuracy [--out results.json]

Each of the 67 people of the sprite bank (real people cut out of ``vtest.avi``) was
labelled by hand first (``benchmarks/accuracy/colour_labels.json``: upper and lower
colour, one or two acceptable names).  Three cut-outs of each walk cycle are pasted back
on the footage's own background where they stood, and ``detectors.appearance.body_colours``
names the colours of the box around each (as the worker sees it: a box, no mask), with and
without the background picture.  Reported: accuracy per labelled colour (the first name),
a prediction counting when it is any of the acceptable names.

Mode ``track`` is what search stores: each person's whole walk cycle, pasted frame by
frame, goes through ``argus.summaries.TrackSummarizer`` as one track (the worker's own
code: colours sampled every 0.5 s of a 10 fps stream, averaged over the track), and the
track summary's colours are scored, one decision per person.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from argus.bench import machine_description
from argus.paths import argus_home
from argus.summaries import TrackSummarizer
from benchmarks.accuracy.sprites import SpriteBank, sprite_bank
from detectors.appearance import body_colours
from detectors.detections import Detections

LABELS = Path(__file__).resolve().parent / "accuracy" / "colour_labels.json"
PICKS = (0.2, 0.5, 0.8)  # cut-outs of each walk cycle, as fractions of its length


def pasted(bank: SpriteBank, k: int, j: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """The background with cut-out ``j`` of sequence ``k`` pasted where it stood, and
    the person's box (px)."""
    seq = bank.sequences[k]
    crop = seq.rgba[j]
    fx, fy = seq.foot[j]
    sx, sy = seq.src_foot[j]
    frame = bank.background.copy()
    h, w = crop.shape[:2]
    x0, y0 = round(sx - fx), round(sy - fy)
    fh, fw = frame.shape[:2]
    cx0, cy0 = max(0, -x0), max(0, -y0)
    cx1, cy1 = min(w, fw - x0), min(h, fh - y0)
    part = crop[cy0:cy1, cx0:cx1]
    a = part[:, :, 3:4].astype(np.float32) / 255.0
    region = frame[y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1]
    region[:] = (part[:, :, :3] * a + region * (1.0 - a)).astype(np.uint8)
    ys, xs = np.nonzero(part[:, :, 3] > 128)
    box = (
        float(x0 + cx0 + xs.min()),
        float(y0 + cy0 + ys.min()),
        float(x0 + cx0 + xs.max() + 1),
        float(y0 + cy0 + ys.max() + 1),
    )
    return frame, box


def track_colours(bank: SpriteBank, k: int) -> dict[str, str]:
    """The colours the worker's track summary gives person ``k``'s walk cycle."""
    records: list[dict[str, Any]] = []
    s = TrackSummarizer("bench", publish=records.append, store_thumbnail=None)
    height, width = bank.background.shape[:2]
    s.set_frame_size(width, height)
    for j in range(len(bank.sequences[k].rgba)):
        frame, box = pasted(bank, k, j)
        dets = Detections(
            xyxy=np.array([box], np.float32),
            score=np.array([0.8], np.float32),
            class_id=np.array([0], np.int64),
            tracker_id=np.array([1], np.int64),
            names=("person",),
        )
        s.observe(frame, dets, j / 10.0, 1.7e9 + j / 10.0)
    s.finish()
    return dict(records[0]["colours"]) if records else {}


def main(argv: list[str] | None = None) -> int:
    """Run it; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.colour_accuracy", description=__doc__)
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    args = p.parse_args(argv)
    home = argus_home()
    bank = sprite_bank(home, home / "bench" / "accuracy")
    labels = json.loads(LABELS.read_text())
    by_src = {(p["track_id"], p["start_frame"]): p for p in labels["people"]}
    tally: dict[str, dict[str, dict[str, int]]] = {
        mode: {part: defaultdict(int) for part in ("upper", "lower")}
        for mode in ("box", "box+background", "track")
    }
    totals: dict[str, dict[str, dict[str, int]]] = {
        mode: {part: defaultdict(int) for part in ("upper", "lower")} for mode in tally
    }
    confusions: dict[str, dict[str, dict[str, int]]] = {
        mode: defaultdict(lambda: defaultdict(int)) for mode in tally
    }
    for k, seq in enumerate(bank.sequences):
        label = by_src.get((seq.track_id, seq.start_frame))
        if label is None:
            print(f"sequence {k} has no label (another sprite bank?)", file=sys.stderr)
            return 2
        for f in PICKS:
            frame, box = pasted(bank, k, int(f * (len(seq.rgba) - 1)))
            for mode, bg in (("box", None), ("box+background", bank.background)):
                got = body_colours(frame, box, bg)
                for part in ("upper", "lower"):
                    truth = label[part]
                    name = None if got is None else getattr(got, part)
                    totals[mode][part][truth[0]] += 1
                    tally[mode][part][truth[0]] += int(name in truth)
                    confusions[mode][f"{part}:{truth[0]}"][str(name)] += 1
        colours = track_colours(bank, k)
        for part in ("upper", "lower"):
            truth = label[part]
            name = colours.get(part)
            totals["track"][part][truth[0]] += 1
            tally["track"][part][truth[0]] += int(name in truth)
            confusions["track"][f"{part}:{truth[0]}"][str(name)] += 1
    result: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine_description(),
            "people": len(bank.sequences),
            "cut_outs_each": len(PICKS),
            "labels": str(LABELS.name),
        },
        "accuracy": {
            mode: {
                part: {
                    colour: {
                        "n": totals[mode][part][colour],
                        "correct": tally[mode][part][colour],
                        "accuracy": round(
                            tally[mode][part][colour] / totals[mode][part][colour], 3
                        ),
                    }
                    for colour in sorted(totals[mode][part])
                }
                | {
                    "all": {
                        "n": sum(totals[mode][part].values()),
                        "accuracy": round(
                            sum(tally[mode][part].values()) / sum(totals[mode][part].values()), 3
                        ),
                    }
                }
                for part in ("upper", "lower")
            }
            for mode in tally
        },
        "confusions": {m: {k: dict(v) for k, v in c.items()} for m, c in confusions.items()},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
