"""argus bench: capacity search, progress, report and footage preparation (no model)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from argus.bench import TextProgress
from argus.bench.footage import FootageError, prepare
from argus.bench.report import plot, table, trial_rows
from argus.bench.stages import Search, Trial
from tests.factories import write_clip

pytestmark = pytest.mark.unit


def fake_trial(n: int, ok: bool, naive: bool = False) -> Trial:
    return Trial(
        cameras=n,
        active=max(1, n // 4),
        naive=naive,
        window_s=10.0,
        active_rates=[10.0 if ok else 6.0] * max(1, n // 4),
        quiet_rates=[1.0] * (n - max(1, n // 4)),
        drop_fraction=[0.0] * n,
        thinned_fraction=[0.0 if naive else 0.9] * (n - max(1, n // 4)),
        latencies_s=[0.2, 0.3] if ok else [],
        decision_latencies_s=[0.1, 0.2, 0.3, 0.4] if ok else [],
        cpu_cores=1.5,
        rss_mb=400.0 + 10 * n,
        gpu_util=None,
        ok=ok,
    )


@pytest.mark.parametrize("capacity", [0, 1, 2, 3, 5, 7, 12, 31, 64])
def test_search_finds_the_largest_held_count(capacity: int) -> None:
    tried: list[int] = []

    def run(n: int) -> Trial:
        tried.append(n)
        return fake_trial(n, n <= capacity)

    search = Search(run, limit=64)
    assert search.largest() == capacity
    assert len(tried) == len(set(tried)) <= 14  # doubling then bisection, no repeats
    assert [t.cameras for t in search.trials] == tried


def test_search_respects_the_limit() -> None:
    search = Search(lambda n: fake_trial(n, True), limit=10)
    assert search.largest() == 10
    assert max(t.cameras for t in search.trials) == 10


def test_trial_latency_quantiles_and_rows() -> None:
    t = fake_trial(8, True)
    assert t.latency(0.5) == pytest.approx(0.25)
    assert t.latency(0.95) == pytest.approx(0.385)
    assert fake_trial(8, False).latency(0.95) is None
    assert t.event_latency(0.5) == pytest.approx(0.25)
    assert fake_trial(8, False).event_latency(0.5) is None
    assert t.analysed_fps == pytest.approx(2 * 10.0 + 6 * 1.0)
    (row,) = trial_rows([t])
    assert row["cameras"] == 8 and row["held"] and row["latency_p95_s"] == pytest.approx(0.385)
    assert row["event_latency_p95_s"] == pytest.approx(0.295) and row["events"] == 2


def test_progress_writes_one_line_per_stage_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = TextProgress(out)
    for f in (0.0, 0.3, 0.6, 1.0, 1.0):
        p("decode only", f)
    p("pipeline", 0.5)
    assert out.getvalue().splitlines() == ["decode only: 0%", "decode only: 100%", "pipeline: 50%"]


def test_plot_and_table(tmp_path: Path) -> None:
    trials = [fake_trial(n, n <= 8) for n in (1, 2, 4, 8, 16)]
    trials += [fake_trial(n, n <= 2, naive=True) for n in (1, 2, 4)]
    png = tmp_path / "plot.png"
    plot(trials, png, "test")
    img = cv2.imread(str(png))
    assert img is not None and img.shape == (520, 900, 3)
    assert (img != 255).any(axis=2).mean() > 0.01  # something was drawn
    result = {
        "machine": "m",
        "footage": {"path": "v", "size": "768x576", "fps": 10.0, "codec": "h264"},
        "cameras": 8,
        "decode_only_fps": 300.0,
        "inference_only_fps": 50.0,
        "ceiling_fps": 42.9,
        "pipeline_fps": 40.0,
        "pipeline_vs_ceiling": 0.93,
        "naive_fps": 30.0,
        "pipeline_vs_naive": 1.33,
        "sustained": None,
    }
    text = table(result)
    assert "0.93 of the ceiling" in text and "300 fps" in text


def _write(path: Path, n: int = 30, fps: int = 10) -> Path:
    rng = np.random.default_rng(1)
    bg = rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)

    def frame(i: int) -> np.ndarray:
        img = bg.copy()
        x = (i * 2) % 56
        img[10:30, x : x + 8] = 0  # a dark "walker"
        return img

    return write_clip(path, (frame(i) for i in range(n)), fps=fps)


def test_prepare_makes_a_quiet_twin_without_the_walker(tmp_path: Path) -> None:
    video = _write(tmp_path / "walk.mp4")
    ft = prepare(video, tmp_path / "cache")
    assert ft.active == video and ft.size == (64, 48) and ft.fps == pytest.approx(10.0)
    assert ft.frames == 30
    with av.open(str(ft.quiet)) as c:
        quiet = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(quiet) == 300  # QUIET_SECONDS at the footage's rate
    # nobody walks in the quiet clip: no dark 8x20 block anywhere on the walker's row
    with av.open(str(video)) as c:
        walk = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]

    def darkest(img: np.ndarray) -> float:
        grey = img.astype(float).mean(axis=2)[10:30]
        return min(float(grey[:, x : x + 8].mean()) for x in range(0, 57, 2))

    assert max(darkest(f) for f in walk) < 30  # the walker is there in the footage
    assert min(darkest(f) for f in quiet) > 60  # and in no quiet frame
    again = prepare(video, tmp_path / "cache")  # cached: the same file, not rewritten
    assert again.quiet == ft.quiet
    with pytest.raises(FootageError, match="not found"):
        prepare(tmp_path / "missing.mp4", tmp_path / "cache")
