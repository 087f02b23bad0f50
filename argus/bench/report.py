"""The output of ``argus bench``: a terminal table, a JSON document, a PNG plot."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from argus.bench.stages import Trial


def table(result: Mapping[str, Any]) -> str:
    """The headline figures as aligned text lines."""

    def f(v: Any, unit: str = "") -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.3g}{unit}" if abs(v) < 100 else f"{v:.0f}{unit}"
        return f"{v}{unit}"

    rows = [
        ("machine", result["machine"]),
        ("footage", f"{result['footage']['path']} ({result['footage']['size']}, "
         f"{result['footage']['fps']:.0f} fps, {result['footage']['codec']})"),
        ("cameras (throughput stages)", f(result["cameras"])),
        ("decode only", f(result["decode_only_fps"], " fps")),
        ("inference only", f(result["inference_only_fps"], " fps")),
        ("ceiling 1/(1/dec + 1/inf)", f(result["ceiling_fps"], " fps")),
        ("pipeline (every frame detected)", f(result["pipeline_fps"], " fps")
         + f"  = {f(result['pipeline_vs_ceiling'])} of the ceiling"),
        ("naive baseline", f(result["naive_fps"], " fps")
         + f"  (pipeline / naive = {f(result['pipeline_vs_naive'])})"),
    ]  # fmt: skip
    ix = result.get("indexing")
    if ix:
        rows.append(
            ("search indexing (CPU)", f"{f(ix['cpu_ms_per_camera_s'], ' ms')} per camera-second"
             f" = {f(ix['share_of_pipeline_cpu'])} of the pipeline's CPU "
             f"({ix['tracks']} tracks)")
        )  # fmt: skip
    s = result.get("sustained")
    if s:
        rows += [
            ("camera mix", s["mix"]),
            ("cameras sustained", f(result["cameras_sustained"])),
            ("naive cameras sustained", f(result["naive_cameras_sustained"])
             + f"  (ratio {f(result['sustained_ratio'])})"),
            ("frame-to-decision p50 / p95", f"{f(result['latency_p50_s'], ' s')} / "
             f"{f(result['latency_p95_s'], ' s')}"),
            ("frame-to-event p95 (events)", f"{f(result['event_latency_p95_s'], ' s')} "
             f"({result['events_at_sustained']})"),
            ("quiet / active camera cost", f(result["quiet_vs_active_cost"])),
            ("memory per camera", f(result["memory_per_camera_mb"], " MiB")),
            ("CPU cores busy at the sustained count", f(result["cpu_cores"])),
            ("GPU utilisation", f(result["gpu_util_percent"], " %")),
        ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def trial_rows(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """Each trial as a JSON row."""
    return [
        {
            "cameras": t.cameras,
            "active": t.active,
            "naive": t.naive,
            "held": t.ok,
            "window_s": round(t.window_s, 2),
            "analysed_fps": round(t.analysed_fps, 2),
            "active_rate_min": round(min(t.active_rates), 2) if t.active_rates else None,
            "quiet_rate_mean": round(float(np.mean(t.quiet_rates)), 3) if t.quiet_rates else None,
            "drop_fraction_max": round(max(t.drop_fraction), 4) if t.drop_fraction else None,
            "quiet_thinned_mean": (
                round(float(np.mean(t.thinned_fraction)), 3) if t.thinned_fraction else None
            ),
            "latency_p50_s": _r(t.latency(0.5)),
            "latency_p95_s": _r(t.latency(0.95)),
            "event_latency_p95_s": _r(t.event_latency(0.95)),
            "events": len(t.latencies_s),
            "cpu_cores": round(t.cpu_cores, 2),
            "rss_mb": round(t.rss_mb, 1),
            "gpu_util_percent": _r(t.gpu_util),
        }
        for t in trials
    ]


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def plot(trials: Sequence[Trial], path: Path, title: str) -> None:
    """PNG: analysed frames/s (left axis) and p95 frame-to-decision latency (right axis)
    against cameras,
    for the pipeline (blue) and the naive baseline (orange); held trials filled."""
    w, h, m = 900, 520, 70
    img = np.full((h, w, 3), 255, np.uint8)
    series = {
        False: sorted((t for t in trials if not t.naive), key=lambda t: t.cameras),
        True: sorted((t for t in trials if t.naive), key=lambda t: t.cameras),
    }
    xs = [t.cameras for t in trials] or [1]
    x_max = max(xs) * 1.1
    y_max = max([t.analysed_fps for t in trials] + [1.0]) * 1.15
    lat = [t.latency(0.95) for t in trials]
    l_max = max([v for v in lat if v is not None] + [0.1]) * 1.3

    def px(x: float, y: float, top: float) -> tuple[int, int]:
        return int(m + x / x_max * (w - 2 * m)), int(h - m - y / top * (h - 2 * m))

    black, grey = (0, 0, 0), (200, 200, 200)
    cv2.rectangle(img, (m, m), (w - m, h - m), black, 1)
    for k in range(1, 5):
        y = int(h - m - k / 5 * (h - 2 * m))
        cv2.line(img, (m, y), (w - m, y), grey, 1)
        cv2.putText(img, f"{k / 5 * y_max:.0f}", (8, y + 4), 0, 0.4, black, 1, cv2.LINE_AA)
        cv2.putText(img, f"{k / 5 * l_max:.2f}s", (w - m + 6, y + 4), 0, 0.4, black, 1, cv2.LINE_AA)
    step = max(1, math.ceil(x_max / 10))
    for x in range(0, int(x_max) + 1, step):
        p = px(x, 0, y_max)
        cv2.putText(img, str(x), (p[0] - 6, h - m + 18), 0, 0.4, black, 1, cv2.LINE_AA)
    colours = {False: (200, 90, 30), True: (30, 140, 240)}  # BGR: blue, orange
    for naive, ts in series.items():
        c = colours[naive]
        pts = [px(t.cameras, t.analysed_fps, y_max) for t in ts]
        for a, b in itertools.pairwise(pts):
            cv2.line(img, a, b, c, 2, cv2.LINE_AA)
        for t, p in zip(ts, pts, strict=True):
            cv2.circle(img, p, 5, c, -1 if t.ok else 1, cv2.LINE_AA)
        lpts = [px(t.cameras, v, l_max) for t in ts if (v := t.latency(0.95)) is not None]
        for a, b in itertools.pairwise(lpts):
            cv2.line(img, a, b, c, 1, cv2.LINE_AA)
        for p in lpts:
            cv2.drawMarker(img, p, c, cv2.MARKER_TRIANGLE_UP, 9, 1, cv2.LINE_AA)
    cv2.putText(img, title, (m, 30), 0, 0.55, black, 1, cv2.LINE_AA)
    cv2.putText(img, "cameras", (w // 2 - 30, h - 20), 0, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(img, "analysed fps (dots)", (8, m - 10), 0, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(img, "p95 latency (triangles)", (w - m - 150, m - 10), 0, 0.45, black, 1)
    cv2.putText(img, "pipeline", (m + 10, m + 20), 0, 0.5, colours[False], 1, cv2.LINE_AA)
    cv2.putText(img, "naive", (m + 10, m + 40), 0, 0.5, colours[True], 1, cv2.LINE_AA)
    cv2.putText(img, "filled: held", (m + 10, m + 60), 0, 0.45, black, 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")
