"""``argus bench``: how many cameras this machine watches, measured on real footage.

One command, one process, one run; every figure is measured in that run, on the same
model, threads and frames (see :mod:`argus.bench.stages` for each measurement):

* ``decode_only_fps`` — N decode threads, nothing else;
* ``inference_only_fps`` — the detector alone on pre-decoded frames, batched;
* ``pipeline_fps`` — the whole pipeline on N cameras as fast as it goes, activity-driven
  analysis off (every frame through the detector), against the ceiling
  ``1 / (1 / decode_only + 1 / inference_only)`` the two stages sharing the cores allow;
* ``naive_fps`` — the naive baseline: one frame at a time (decode, detect batch 1, track
  and rules) with nothing overlapped;
* ``cameras_sustained`` / ``naive_cameras_sustained`` — the most cameras held at real
  speed with the target analysis rate for every active camera (one camera in
  ``active_every`` plays footage with people, the others its empty twin), pipeline with
  activity-driven analysis on vs the naive baseline; with the p50/p95 frame-to-event
  frame-to-decision latency (capture to the frame's tracks through the rules: an event
  raised on the frame is published right after), the frame-to-event latency of the events
  the window saw, CPU, memory per camera and GPU utilisation at that count;
* ``quiet_vs_active_cost`` — CPU per quiet camera (``active_every`` of them, at most 4,
  alone) over the CPU of one active camera alone.

Usage: ``argus bench [--cameras 8] [--json FILE] [--plot FILE] [--hd] [--quick]``.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argus.bench import footage as footage_mod
from argus.bench import report, stages
from argus.paths import BUNDLED_FOOTAGE, argus_home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchOptions:
    """What ``argus bench`` measures and how long it takes.

    Attributes:
        video: Footage with people (default: the bundled vtest.avi, 768x576, 10 fps).
        hd: Re-encode it to 1920x1080 H.264 (keyframe every ``keyframe_s``) first.
        keyframe_s: Keyframe interval of the re-encoded clips, seconds.
        cameras: Cameras of the throughput stages.
        frames: Frames per camera in the throughput stages (None: the whole clip).
        target_fps: Analysis rate an active camera must get to be held, frames/s.
        active_every: One camera in this many is active (the rest quiet).
        trial_s: Measured window of each real-speed trial, seconds.
        warmup_s: Seconds each trial runs before its window starts.
        max_cameras: Largest camera count tried.
        sustained: Run the real-speed trials (the capacity search).
        detector: ``detector`` config keys (model, providers, batch_size, threads...).
    """

    video: Path = BUNDLED_FOOTAGE
    hd: bool = False
    keyframe_s: float = 1.5
    cameras: int = 8
    frames: int | None = None
    target_fps: float = 10.0
    active_every: int = 4
    trial_s: float = 12.0
    warmup_s: float = 3.0
    max_cameras: int = 64
    sustained: bool = True
    detector: tuple[tuple[str, Any], ...] = ()


def quick(opts: BenchOptions) -> BenchOptions:
    """A short run for CI (correctness, not timing): 2 cameras x 30 frames, trials of 2
    s, at most 8 cameras."""
    return BenchOptions(
        video=opts.video,
        hd=opts.hd,
        keyframe_s=opts.keyframe_s,
        cameras=2,
        frames=30,
        target_fps=opts.target_fps,
        active_every=opts.active_every,
        trial_s=2.0,
        warmup_s=1.5,
        max_cameras=min(opts.max_cameras, 8),
        sustained=opts.sustained,
        detector=opts.detector,
    )


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description() -> str:
    """``"<arch>, <n> cores, <CPU model>"``: the machine a figure was measured on."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}"


class TextProgress:
    """A one-line progress bar on stderr (a line per stage when not a terminal)."""

    def __init__(self, stream: Any = None) -> None:
        self._out = stream or sys.stderr
        self._tty = bool(getattr(self._out, "isatty", lambda: False)())
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, what: str, fraction: float) -> None:
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        if self._tty:
            bar = "#" * (pct // 4)
            self._out.write(f"\r{what:<22} [{bar:<25}] {pct:3d}%")
            if pct >= 100:
                self._out.write("\n")
            self._out.flush()
        elif what != self._last[0] or (pct >= 100 and self._last[1] < 100):
            self._out.write(f"{what}: {pct}%\n")
            self._out.flush()
        self._last = (what, pct)


def run_bench(
    opts: BenchOptions, progress: Callable[[str, float], None] | None = None
) -> tuple[dict[str, Any], list[stages.Trial]]:
    """Measure everything; returns (the JSON document, the real-speed trials).

    Raises:
        argus.bench.footage.FootageError: the footage cannot be read or prepared.
        models.registry.ModelError: the model is missing or unusable.
    """
    prog = progress or stages._quiet
    home = argus_home()
    detector = dict(opts.detector)
    t_start = time.monotonic()
    ft = footage_mod.prepare(
        opts.video, home / "bench" / "footage", hd=opts.hd, keyframe_s=opts.keyframe_s
    )
    frames = min(opts.frames or ft.frames, ft.frames * 4)
    cfg = stages.bench_config(
        ft, [True], home, realtime=False, gating=False, detector=detector
    )  # the detector settings every stage shares
    n = opts.cameras

    dec = stages.decode_only(ft, n, frames, prog)
    sample = stages.decoded_sample(ft, min(frames, 64))
    inf = stages.inference_only(cfg, sample, n * frames, home, prog)
    del sample
    pipe = stages.throughput(ft, n, frames, home, detector, naive=False, progress=prog)
    naive = stages.throughput(ft, n, frames, home, detector, naive=True, progress=prog)
    ceiling = 1.0 / (1.0 / dec.fps + 1.0 / inf.fps) if dec.fps and inf.fps else 0.0

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "python": platform.python_version(),
        "footage": {
            "path": str(ft.active),
            "quiet": str(ft.quiet),
            "size": f"{ft.size[0]}x{ft.size[1]}",
            "fps": ft.fps,
            "frames": ft.frames,
            "codec": ft.codec,
            "keyframe_s": None if ft.keyframe_s is None else round(ft.keyframe_s, 2),
        },
        "detector": {
            "model": cfg.detector.model,
            "providers": cfg.detector.providers,
            "batch_size": cfg.detector.batch_size,
            "threads": cfg.detector.threads,
        },
        "cameras": n,
        "frames_per_camera": frames,
        "decode_only_fps": round(dec.fps, 1),
        "inference_only_fps": round(inf.fps, 1),
        "ceiling_fps": round(ceiling, 1),
        "pipeline_fps": round(pipe.fps, 1),
        "pipeline_vs_ceiling": round(pipe.fps / ceiling, 3) if ceiling else None,
        "naive_fps": round(naive.fps, 1),
        "pipeline_vs_naive": round(pipe.fps / naive.fps, 3) if naive.fps else None,
        "pipeline_frames": pipe.frames,
        "pipeline_detected": pipe.detected,
        "naive_frames": naive.frames,
        "naive_detected": naive.detected,
        "pipeline_events": pipe.events,
        "indexing": _indexing(pipe, ft.fps),
        "naive_events": naive.events,
        "cameras_sustained": None,
        "naive_cameras_sustained": None,
        "sustained_ratio": None,
        "latency_p50_s": None,
        "latency_p95_s": None,
        "event_latency_p95_s": None,
        "events_at_sustained": None,
        "quiet_vs_active_cost": None,
        "memory_per_camera_mb": None,
        "cpu_cores": None,
        "gpu_util_percent": None,
        "target_fps": opts.target_fps,
        "sustained": None,
        "trials": [],
    }
    trials: list[stages.Trial] = []
    if opts.sustained:
        common = {
            "active_every": opts.active_every,
            "target_fps": opts.target_fps,
            "window_s": opts.trial_s,
            "warmup_s": opts.warmup_s,
            "progress": prog,
        }

        def pipeline_trial(k: int) -> stages.Trial:
            return stages.trial(ft, k, home, detector, **common)  # type: ignore[arg-type]

        def naive_trial(k: int) -> stages.Trial:
            return stages.trial(ft, k, home, detector, naive=True, **common)  # type: ignore[arg-type]

        search = stages.Search(pipeline_trial, step=1, limit=opts.max_cameras)
        sustained = search.largest()
        naive_search = stages.Search(naive_trial, step=1, limit=opts.max_cameras)
        naive_sustained = naive_search.largest()
        trials = search.trials + naive_search.trials
        at = max((t for t in search.trials if t.ok), key=lambda t: t.cameras, default=None)
        # cost of a camera by kind, each kind alone, gating on: one active camera (a count
        # the machine holds at full rate; more would cap its CPU and flatter the ratio)
        # against k quiet ones (the process's fixed cost counts against the quiet side)
        k = max(1, min(opts.active_every, 4))
        only_active = stages.trial(ft, 1, home, detector, **{**common, "active_every": 1})  # type: ignore[arg-type]
        only_quiet = _quiet_trial(ft, k, home, detector, common)
        cost_ratio = (
            (only_quiet.cpu_cores / k) / only_active.cpu_cores
            if only_active.cpu_cores > 0
            else None
        )
        base_rss = min((t.rss_mb for t in trials), default=0.0)
        result.update(
            {
                "cameras_sustained": sustained,
                "naive_cameras_sustained": naive_sustained,
                "sustained_ratio": (
                    round(sustained / naive_sustained, 2) if naive_sustained else None
                ),
                "latency_p50_s": None if at is None else report._r(at.latency(0.5)),
                "latency_p95_s": None if at is None else report._r(at.latency(0.95)),
                "event_latency_p95_s": None if at is None else report._r(at.event_latency(0.95)),
                "events_at_sustained": None if at is None else len(at.latencies_s),
                "quiet_vs_active_cost": None if cost_ratio is None else round(cost_ratio, 3),
                "memory_per_camera_mb": (
                    None
                    if at is None or at.cameras <= 1
                    else round(max(0.0, at.rss_mb - base_rss) / max(at.cameras - 1, 1), 1)
                ),
                "cpu_cores": None if at is None else round(at.cpu_cores, 2),
                "gpu_util_percent": None if at is None else report._r(at.gpu_util),
                "sustained": {
                    "mix": f"1 camera in {opts.active_every} active (people), the rest its "
                    f"empty twin; target {opts.target_fps:g} fps per active camera",
                    "held_when": f"every active camera analysed at >= "
                    f"{stages.HOLD_RATE:.0%} of the target and no camera losing more "
                    f"than {stages.HOLD_DROPS:.0%} of its frames",
                    "cost_trials": report.trial_rows([only_active, only_quiet]),
                },
                "trials": report.trial_rows(trials),
            }
        )
    result["seconds"] = round(time.monotonic() - t_start, 1)
    return result, trials


def _indexing(pipe: stages.Throughput, fps: float) -> dict[str, Any]:
    """The cost of the track summaries for search, from the pipeline stage (every frame
    through the detector: the busiest a camera gets): CPU per camera-second of video, the
    share of the pipeline's CPU, and the tracks summarised."""
    video_s = pipe.frames / fps if fps > 0 else 0.0
    return {
        "cpu_ms_per_camera_s": round(1000.0 * pipe.index_s / video_s, 2) if video_s else None,
        "cores_per_camera": round(pipe.index_s / video_s, 4) if video_s else None,
        "share_of_pipeline_cpu": round(pipe.index_s / pipe.cpu_s, 4) if pipe.cpu_s else None,
        "tracks": pipe.tracks,
        "tracks_per_camera_min": (round(60.0 * pipe.tracks / video_s, 1) if video_s else None),
    }


def _quiet_trial(
    ft: footage_mod.Footage, k: int, home: Path, detector: dict[str, Any], common: dict[str, Any]
) -> stages.Trial:
    """``k`` quiet cameras alone (every camera plays the quiet clip)."""
    quiet_only = footage_mod.Footage(
        ft.quiet, ft.quiet, ft.fps, ft.size, round(30.0 * ft.fps), ft.codec, ft.keyframe_s
    )
    return stages.trial(quiet_only, k, home, detector, **{**common, "active_every": k + 1})
