"""Per-frame cost of ``SceneAnalyzer.analyze`` (and ``MotionGate.decide``) on real footage.

Decodes the footage first (decoding is not measured), then feeds every frame, in order
and with its real timestamp, to one analyser, timing each call with
``time.perf_counter``.  The same frames are run ``--repeat`` times through a fresh
analyser; the reported figures pool all runs.  Also reports how many frames a default
:class:`detectors.gating.MotionGate` would have sent to the detector.

Absolute numbers depend on the machine (quote them with the machine and the date).

Usage::

    .venv/bin/python -m benchmarks.scene_cost [--video PATH] [--frames N] [--repeat R] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detectors.gating import MotionGate
from detectors.scene import SceneAnalyzer

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def load(video: Path, frames: int) -> tuple[list[npt.NDArray[np.uint8]], float]:
    """Up to ``frames`` decoded BGR frames of ``video`` and its frame rate (fps)."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 10.0
    images: list[npt.NDArray[np.uint8]] = []
    try:
        while len(images) < frames:
            ok, img = cap.read()
            if not ok:
                break
            images.append(np.ascontiguousarray(img, dtype=np.uint8))
    finally:
        cap.release()
    if not images:
        raise SystemExit(f"no frame decoded from {video}")
    return images, fps


def measure(images: list[npt.NDArray[np.uint8]], fps: float, repeat: int) -> dict[str, Any]:
    """Time ``analyze`` on every frame, ``repeat`` times; summary in milliseconds."""
    times_ms: list[float] = []
    gate = MotionGate()
    gate_ms: list[float] = []
    for r in range(repeat):
        scene = SceneAnalyzer()
        for k, img in enumerate(images):
            t_s = k / fps
            t0 = time.perf_counter()
            stats = scene.analyze(img, t_s)
            times_ms.append((time.perf_counter() - t0) * 1e3)
            if r == 0:
                t0 = time.perf_counter()
                gate.decide(stats.motion, t_s, has_tracks=False)
                gate_ms.append((time.perf_counter() - t0) * 1e3)
    a = np.asarray(times_ms)
    h, w = images[0].shape[:2]
    return {
        "frames": len(images),
        "repeat": repeat,
        "frame_size": [int(w), int(h)],
        "fps": fps,
        "analyze_ms": {
            "mean": round(float(a.mean()), 3),
            "median": round(float(np.median(a)), 3),
            "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3),
        },
        "gate_us_mean": round(float(np.mean(gate_ms)) * 1e3, 2),
        "gate_detector_fraction_no_tracks": round(gate.detector_fraction, 3),
        "opencv_threads": cv2.getNumThreads(),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--video", type=Path, default=VTEST, help="footage (default: vtest.avi)")
    p.add_argument("--frames", type=int, default=795, help="frames to use (default: 795)")
    p.add_argument("--repeat", type=int, default=3, help="passes over the frames (default: 3)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        p.error("--frames and --repeat must be >= 1")
    images, fps = load(args.video, args.frames)
    result = measure(images, fps, args.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
