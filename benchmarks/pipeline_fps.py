"""Throughput of the whole pipeline on a file, against its own ceilings, in one run.

Measures, on the same machine and in the same process run:

* ``decode``   — PyAV decoding alone (``FileSource(realtime=False)``), frames/s;
* ``detect``   — the detector alone on pre-decoded frames (batch as configured), frames/s;
* ``pipeline`` — ``argus run`` end to end (decode thread + detector + tracker + rules +
  snapshots + sinks + SQLite store), frames/s;

and reports ``pipeline / min(decode, detect)``: how close the pipeline comes to its slowest
stage. Absolute numbers depend on the machine (quote them with machine and date); the
ratio is what to compare across changes.

Usage::

    .venv/bin/python -m benchmarks.pipeline_fps [--video PATH] [--frames N] [--batch B] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from argus.app import build_detector, build_pipeline
from argus.bench import machine_description
from argus.config import parse_config
from argus.paths import argus_home
from ingest import FileSource

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
ZONE = [[330, 180], [560, 180], [640, 330], [380, 330]]


def bench_decode(video: Path, frames: int) -> tuple[float, list[np.ndarray]]:
    """Decode up to ``frames`` frames; returns (frames/s, the images)."""
    src = FileSource("bench", video, realtime=False)
    images: list[np.ndarray] = []
    t = time.perf_counter()
    for frame in src.frames():
        images.append(frame.image)
        if len(images) >= frames:
            break
    dt = time.perf_counter() - t
    src.close()
    return len(images) / dt, images


def config(video: Path, tmp: Path, batch: int) -> dict[str, Any]:
    return {
        "cameras": [
            {
                "id": "plaza",
                "source": str(video),
                "realtime": False,
                "zones": [{"name": "crossing", "polygon": ZONE}],
            }
        ],
        "rules": [{"type": "intrusion", "camera": "plaza", "zone": "crossing", "min_dwell_s": 0.5}],
        "sinks": [{"jsonl": str(tmp / "events.jsonl")}],
        "storage": {"sqlite": str(tmp / "alerts.db"), "evidence_dir": str(tmp / "evidence")},
        "detector": {"batch_size": batch},
        "log": {"progress_interval_s": 3600},
    }


def bench_detect(cfg_data: dict[str, Any], images: list[np.ndarray], batch: int) -> float:
    """Detector alone over ``images`` in batches of ``batch``; frames/s."""
    cfg = parse_config(cfg_data, "<bench>")
    home = argus_home()
    detector, _ = build_detector(cfg.detector, home / "models", "<bench>", home)
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        detector.detect(images[i : i + batch])
    return len(images) / (time.perf_counter() - t)


def bench_pipeline(cfg_data: dict[str, Any]) -> tuple[float, int, int]:
    """The whole pipeline; returns (frames/s, frames, events)."""
    cfg = parse_config(cfg_data, "<bench>")
    pipeline = build_pipeline(cfg, home=argus_home(), source="<bench>")
    result = pipeline.runner.run()
    pipeline.close()
    return result.fps, result.frames, result.events


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--video", type=Path, default=VTEST)
    p.add_argument("--frames", type=int, default=795, help="frames for the decode/detect ceilings")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp_s:
        tmp = Path(tmp_s)
        data = config(args.video, tmp, args.batch)
        decode_fps, images = bench_decode(args.video, args.frames)
        detect_fps = bench_detect(data, images, args.batch)
        del images
        pipe_fps, frames, events = bench_pipeline(data)

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "python": platform.python_version(),
        "video": str(args.video),
        "batch": args.batch,
        "decode_fps": round(decode_fps, 1),
        "detect_fps": round(detect_fps, 1),
        "pipeline_fps": round(pipe_fps, 1),
        "pipeline_frames": frames,
        "events": events,
        "pipeline_vs_slowest_stage": round(pipe_fps / min(decode_fps, detect_fps), 3),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
