"""The measurements of ``argus bench``, each on the real pipeline's own components.

* :func:`decode_only` — N decode threads (the pipeline's ``FileSource``), nothing else.
* :func:`inference_only` — the detector alone on pre-decoded frames, in batches.
* :func:`throughput` — the whole pipeline (``Runner.run``: decode threads, cross-camera
  batches, tracker, rules, snapshots, store) as fast as it goes, or the naive baseline
  (``Runner.run_sequential``: one frame at a time, batch 1, no overlap).
* :func:`trial` — N cameras at real speed (looped, staggered), a window measured after a
  warm-up: per-camera analysis rate, drops, frame-to-event latency, CPU, memory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from argus.app import build_detector, build_pipeline, decode_threads_for
from argus.bench.footage import Footage
from argus.config import ArgusConfig, parse_config
from argus.runner import CameraRuntime
from ingest import ActivityControl, FileSource

log = logging.getLogger(__name__)

WALKWAY = ((330, 180), (560, 180), (640, 330), (380, 330))
"""A zone over vtest's walkway, in 768x576 px (scaled to other frame sizes): people cross
it all the time, so active cameras raise intrusion events (for the latency)."""

STAGGER_S = 7.3
"""Camera i starts ``i * STAGGER_S`` seconds into its clip (modulo the clip's length), so
cameras never show the same frame at once."""

ACTIVITY_DRIVEN = {"sparse_when_quiet": True, "heartbeat_s": 3.0}
"""The gating settings of the pipeline's real-speed trials: activity-driven decoding on,
and a quiet camera looked at by the detector every 3 s (1 s by default)."""

Progress = Callable[[str, float], None]
"""``progress(what, fraction 0..1)``."""


def _quiet(_: str, __: float) -> None:
    return None


@dataclass(frozen=True)
class Throughput:
    """A measured rate: ``frames`` in ``seconds`` of wall time, ``cpu_s`` of process CPU."""

    frames: int
    seconds: float
    cpu_s: float
    events: int = 0
    detected: int = 0
    index_s: float = 0.0
    """CPU seconds spent making track summaries for search (sampling colours, thumbnails)."""
    tracks: int = 0
    """Track summaries published."""

    @property
    def fps(self) -> float:
        """Frames per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Trial:
    """One real-speed run of ``cameras`` cameras (``active`` of them with people).

    Attributes:
        cameras: Cameras run.
        active: How many of them play the active clip.
        naive: Run by the naive baseline (``Runner.run_sequential``, no gating).
        window_s: Measured wall seconds (after the warm-up).
        active_rates: Frames analysed by the detector per second, per active camera.
        quiet_rates: The same, per quiet camera.
        drop_fraction: Per camera, frames lost (dropped by the newest-wins slot, or not
            delivered by a source that fell behind) over frames due, 0..1.
        thinned_fraction: Per quiet camera, frames skipped on purpose by activity-driven
            decoding over frames due, 0..1 (0 for the naive baseline).
        latencies_s: Frame-to-event latencies of the events started in the window, s.
        decision_latencies_s: Frame-to-decision latencies of the frames the detector ran
            on in the window (capture to tracks through the rules), s.
        cpu_cores: Process CPU seconds per wall second (2.0 = two cores busy).
        rss_mb: Resident memory at the end of the window, MiB.
        gpu_util: Mean GPU utilisation in the window, % (None without ``nvidia-smi``).
        ok: Held: every active camera at >= ``HOLD_RATE`` of the target analysis rate and
            every camera losing at most ``HOLD_DROPS`` of its frames.
    """

    cameras: int
    active: int
    naive: bool
    window_s: float
    active_rates: list[float]
    quiet_rates: list[float]
    drop_fraction: list[float]
    thinned_fraction: list[float]
    latencies_s: list[float]
    decision_latencies_s: list[float]
    cpu_cores: float
    rss_mb: float
    gpu_util: float | None
    ok: bool

    @property
    def analysed_fps(self) -> float:
        """Frames through the detector per second, all cameras."""
        return float(sum(self.active_rates) + sum(self.quiet_rates))

    def latency(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the frame-to-decision latencies, s (None without
        frames through the detector)."""
        d = self.decision_latencies_s
        return float(np.quantile(d, q)) if d else None

    def event_latency(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the latencies, s (None without events)."""
        return float(np.quantile(self.latencies_s, q)) if self.latencies_s else None


HOLD_RATE = 0.95
"""An active camera is held when analysed at >= this share of the target rate."""

HOLD_DROPS = 0.05
"""... and no camera loses more than this share of its frames."""


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class _GpuSampler:
    """Samples ``nvidia-smi`` utilisation every 0.5 s in a thread (nothing without it)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._exe = shutil.which("nvidia-smi")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._exe is not None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-sampler")
            self._thread.start()

    def _run(self) -> None:
        assert self._exe is not None
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(
                    [self._exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=True,
                ).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=6)
        return float(np.mean(self.samples)) if self.samples else None


def _counts(cam: CameraRuntime) -> tuple[int, int, int, int]:
    """A camera's (processed, detected, dropped, thinned) frame counts so far."""
    return (cam.processed, cam.detected, cam.slot.dropped, cam.source.stats().frames_thinned)


def bench_config(
    footage: Footage,
    kinds: Sequence[bool],
    tmp: Path,
    *,
    realtime: bool,
    gating: bool,
    detector: dict[str, Any],
) -> ArgusConfig:
    """A config of ``len(kinds)`` cameras (``True``: the active clip, ``False``: the quiet
    one), each with an intrusion rule on the walkway; store and snapshots under ``tmp``."""
    sx, sy = footage.size[0] / 768.0, footage.size[1] / 576.0
    zone = [[x * sx, y * sy] for x, y in WALKWAY]
    cameras = [
        {
            "id": f"cam{i:03d}",
            "source": str(footage.active if active else footage.quiet),
            "realtime": realtime,
            "loop": realtime,
            "zones": [{"name": "walkway", "polygon": zone}],
        }
        for i, active in enumerate(kinds)
    ]
    data = {
        "cameras": cameras,
        "rules": [
            {"type": "intrusion", "camera": c["id"], "zone": "walkway", "min_dwell_s": 0.5}
            for c in cameras
        ],
        "storage": {"sqlite": str(tmp / "alerts.db"), "evidence_dir": str(tmp / "evidence")},
        # the analysis alone (a clip's cost is measured by benchmarks/clip_cost.py)
        "evidence": {"clips": {"enabled": False}},
        "detector": detector,
        "gating": {"enabled": gating, **(ACTIVITY_DRIVEN if gating else {})},
        "log": {"progress_interval_s": 3600},
    }
    return parse_config(data, "<bench>")


def _sources(
    footage: Footage,
    kinds: Sequence[bool],
    *,
    realtime: bool,
    max_frames: int | None,
    activity: Sequence[ActivityControl | None] | None = None,
) -> list[FileSource]:
    out = []
    for i, active in enumerate(kinds):
        path = footage.active if active else footage.quiet
        length = footage.frames / footage.fps if active else 30.0
        out.append(
            FileSource(
                f"cam{i:03d}",
                path,
                realtime=realtime,
                loop=realtime or max_frames is not None,
                start_s=(i * STAGGER_S) % max(length - 1.0, 1.0),
                max_frames=max_frames,
                activity=None if activity is None else activity[i],
                decode_threads=decode_threads_for(len(kinds)),
            )
        )
    return out


def decode_only(
    footage: Footage, cameras: int, frames: int, progress: Progress = _quiet
) -> Throughput:
    """``cameras`` threads each decoding ``frames`` frames of the active clip to BGR."""
    sources = _sources(footage, [True] * cameras, realtime=False, max_frames=frames)
    counts = [0] * cameras

    def decode(i: int) -> None:
        for _ in sources[i].frames():
            counts[i] += 1

    threads = [threading.Thread(target=decode, args=(i,), daemon=True) for i in range(cameras)]
    c0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    total = cameras * frames
    while any(t.is_alive() for t in threads):
        progress("decode only", sum(counts) / total)
        time.sleep(0.2)
    for t in threads:
        t.join()
    progress("decode only", 1.0)
    return Throughput(sum(counts), time.perf_counter() - t0, time.process_time() - c0)


def decoded_sample(footage: Footage, n: int) -> list[npt.NDArray[np.uint8]]:
    """The first ``n`` frames of the active clip (for the inference-only stage)."""
    src = FileSource("sample", footage.active, realtime=False, max_frames=n)
    return [f.image for f in src.frames()]


def inference_only(
    cfg: ArgusConfig,
    images: Sequence[npt.NDArray[np.uint8]],
    total: int,
    home: Path,
    progress: Progress = _quiet,
) -> Throughput:
    """The configured detector alone, ``total`` frames in batches of ``batch_size``
    (cycling through ``images``)."""
    detector, _ = build_detector(cfg.detector, home / "models", "<bench>", home)
    batch = cfg.detector.batch_size
    done = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while done < total:
        k = min(batch, total - done)
        detector.detect([images[(done + j) % len(images)] for j in range(k)])
        done += k
        if done % (batch * 16) < batch:
            progress("inference only", done / total)
    progress("inference only", 1.0)
    return Throughput(done, time.perf_counter() - t0, time.process_time() - c0)


def throughput(
    footage: Footage,
    cameras: int,
    frames: int,
    home: Path,
    detector: dict[str, Any],
    *,
    naive: bool,
    progress: Progress = _quiet,
) -> Throughput:
    """The whole pipeline on ``cameras`` cameras x ``frames`` frames of the active clip,
    as fast as it goes, gating off (every frame through the detector).  ``naive``: the
    baseline, ``Runner.run_sequential`` with batch 1."""
    kinds = [True] * cameras
    det = dict(detector, batch_size=1) if naive else detector
    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
        cfg = bench_config(footage, kinds, Path(tmp), realtime=False, gating=False, detector=det)
        pipeline = build_pipeline(cfg, home=home, source="<bench>")
        runner = pipeline.runner
        for cam, src in zip(
            runner.cameras,
            _sources(footage, kinds, realtime=False, max_frames=frames),
            strict=True,
        ):
            cam.source = src
        what = "naive baseline" if naive else "pipeline"
        done = threading.Event()

        def report() -> None:
            total = cameras * frames
            while not done.wait(0.5):
                progress(what, sum(c.processed for c in runner.cameras) / total)

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        c0 = time.process_time()
        try:
            result = runner.run_sequential() if naive else runner.run()
        finally:
            done.set()
            reporter.join()
            pipeline.close()
        progress(what, 1.0)
        summaries = [c.summaries for c in runner.cameras if c.summaries is not None]
        return Throughput(
            result.frames,
            result.seconds,
            time.process_time() - c0,
            events=result.events,
            detected=result.detected,
            index_s=sum(s.seconds for s in summaries),
            tracks=sum(s.published for s in summaries),
        )


def trial(
    footage: Footage,
    cameras: int,
    home: Path,
    detector: dict[str, Any],
    *,
    active_every: int,
    target_fps: float,
    window_s: float,
    warmup_s: float,
    naive: bool = False,
    progress: Progress = _quiet,
) -> Trial:
    """Run ``cameras`` cameras at real speed, camera ``i`` active when ``i % active_every
    == 0``, and measure a ``window_s`` window after ``warmup_s``.

    The pipeline runs with motion gating (activity-driven analysis) on; the naive
    baseline runs ``Runner.run_sequential`` with batch 1 and gating off (every frame of
    every camera through the detector, one after another).
    """
    kinds = [i % active_every == 0 for i in range(cameras)]
    det = dict(detector, batch_size=1) if naive else detector
    what = f"{'naive' if naive else 'pipeline'} x{cameras}"
    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
        cfg = bench_config(footage, kinds, Path(tmp), realtime=True, gating=not naive, detector=det)
        pipeline = build_pipeline(cfg, home=home, source="<bench>")
        runner = pipeline.runner
        sources = _sources(
            footage,
            kinds,
            realtime=True,
            max_frames=None,
            activity=[c.activity for c in runner.cameras],
        )
        for cam, src in zip(runner.cameras, sources, strict=True):
            cam.source = src
        thread = threading.Thread(
            target=runner.run_sequential if naive else runner.run, daemon=True, name="bench-run"
        )
        thread.start()
        t_end = time.monotonic() + warmup_s
        while time.monotonic() < t_end:
            progress(what, 0.0)
            time.sleep(0.2)
        gpu = _GpuSampler()
        snap = [_counts(c) for c in runner.cameras]
        n_lat = len(runner.latencies_s)
        n_dec = len(runner.decision_latencies_s)
        c0, t0 = time.process_time(), time.monotonic()
        gpu.start()
        while (elapsed := time.monotonic() - t0) < window_s:
            progress(what, elapsed / window_s)
            time.sleep(0.2)
        window = time.monotonic() - t0
        cpu = time.process_time() - c0
        rss = _rss_mb()
        after = [_counts(c) for c in runner.cameras]
        latencies = list(runner.latencies_s)[n_lat:]
        decisions = list(runner.decision_latencies_s)[n_dec:]
        gpu_util = gpu.stop()
        runner.stop()
        thread.join(timeout=30)
        pipeline.close()
    due = footage.fps * window
    active_rates: list[float] = []
    quiet_rates: list[float] = []
    drops: list[float] = []
    thinned: list[float] = []
    for active, (p0, d0, x0, s0), (p1, d1, x1, s1) in zip(kinds, snap, after, strict=True):
        rate = (d1 - d0) / window
        (active_rates if active else quiet_rates).append(rate)
        if not active:
            thinned.append(min(1.0, (s1 - s0) / due))
        handled = (p1 - p0) + (x1 - x0) + (s1 - s0)  # analysed, dropped, thinned on purpose
        lost = (x1 - x0) + max(0.0, due - handled)  # dropped + behind
        drops.append(min(1.0, max(0.0, lost / due)))
    want = min(target_fps, footage.fps)
    ok = all(r >= HOLD_RATE * want for r in active_rates) and all(d <= HOLD_DROPS for d in drops)
    progress(what, 1.0)
    return Trial(
        cameras=cameras,
        active=sum(kinds),
        naive=naive,
        window_s=window,
        active_rates=active_rates,
        quiet_rates=quiet_rates,
        drop_fraction=drops,
        thinned_fraction=thinned,
        latencies_s=latencies,
        decision_latencies_s=decisions,
        cpu_cores=cpu / window,
        rss_mb=rss,
        gpu_util=gpu_util,
        ok=ok,
    )


@dataclass
class Search:
    """The largest camera count a trial holds: doubling, then bisection."""

    run: Callable[[int], Trial]
    step: int = 1
    limit: int = 64
    trials: list[Trial] = field(default_factory=list)

    def largest(self) -> int:
        """The largest ``n`` (a multiple of ``step``, at most ``limit``) whose trial held;
        0 when even ``step`` cameras did not."""
        good, bad = 0, None
        n = self.step
        while n <= self.limit:
            if self._ok(n):
                good, n = n, n * 2
            else:
                bad = n
                break
        if bad is None:
            if good < self.limit and self._ok(self.limit):
                return self.limit
            return good
        lo, hi = good, bad  # lo held (or 0), hi did not
        while hi - lo > self.step:
            mid = (lo + hi) // 2 // self.step * self.step
            if mid <= lo:
                break
            if self._ok(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def _ok(self, n: int) -> bool:
        t = self.run(n)
        self.trials.append(t)
        return t.ok
