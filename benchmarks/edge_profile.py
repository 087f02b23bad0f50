"""The edge box's figures (issue 20): CPU cores and memory for one 1080p camera analysed at
5 fps, the int8 model against fp32, with the edge profile (``examples/edge.yaml``).

A 1080p, 5 fps H.264 clip is made from the real footage (Debian's ``vtest.avi``, 768x576 at
10 fps: every second frame, scaled up to 1920x1080, keyframes every 2 s), and played at
camera speed by ``argus run`` with the edge profile's detector and gating settings (2
threads, batch 2, activity-driven decoding), events to a JSONL file (the profile's Kafka and
S3 uplink are left out: they cost little CPU and need servers).  While it runs, the
process's CPU time and resident memory are read from ``/proc`` twice a second; the first
``--warmup`` seconds (model loading, the first frames) are left out.  The models alternate
run by run (int8, fp32, fp32, int8, ...), so both see the same machine load.

    .venv/bin/python -m benchmarks.edge_profile                       # 2 rounds of 60 s
    .venv/bin/python -m benchmarks.edge_profile --seconds 30 --rounds 1 --out edge.json

The int8 model is made in a scratch model folder, as ``argus models quantize`` makes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from argus.bench import machine_description
from argus.paths import BUNDLED_FOOTAGE, models_dir

PROFILE = Path(__file__).resolve().parents[1] / "examples" / "edge.yaml"
FPS = 5
SIZE = (1920, 1080)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_clip(path: Path, seconds: float) -> Path:
    """A 1080p, 5 fps H.264 clip of the footage (looped when longer than it)."""
    import av
    import cv2

    from models.variants import read_frames

    frames = read_frames(BUNDLED_FOOTAGE, 100_000, step=2)  # 10 fps -> 5 fps
    n = int(seconds * FPS)
    with av.open(str(path), "w", format="mp4") as out:
        stream: Any = out.add_stream("libx264", rate=Fraction(FPS, 1))
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "26", "g": str(2 * FPS)}
        for i in range(n):
            k = i % (2 * len(frames) - 2)  # back and forth: no jump at the loop
            img = frames[k if k < len(frames) else 2 * len(frames) - 2 - k]
            big = np.ascontiguousarray(
                cv2.resize(img, SIZE, interpolation=cv2.INTER_LINEAR), dtype=np.uint8
            )
            vf = av.VideoFrame.from_ndarray(big, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_models(folder: Path) -> Path:
    """A model folder with ``nanodet-g`` and its int8 variant (as ``argus models
    quantize`` makes it)."""
    from models.variants import quantize_int8, read_frames

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(models_dir() / "nanodet-g", folder / "nanodet-g")
    t0 = time.monotonic()
    quantize_int8(folder, "nanodet-g", read_frames(BUNDLED_FOOTAGE, 100, step=7))
    log(f"int8 model made in {time.monotonic() - t0:.0f} s")
    return folder


def config(folder: Path, clip: Path, model: str) -> Path:
    """The edge profile with ``clip`` as its camera and no uplink."""
    data: dict[str, Any] = yaml.safe_load(PROFILE.read_text())
    camera = data["cameras"][0]
    camera.update({"source": str(clip), "realtime": True})
    camera["zones"] = [
        {"name": "entrance", "polygon": [[660, 300], [1400, 300], [1600, 620], [760, 620]]}
    ]
    data["detector"]["model"] = model
    for key in ("bus", "metrics"):
        data.pop(key, None)
    data["evidence"] = {"clips": {"enabled": False}}
    data["storage"] = {"sqlite": str(folder / "alerts.db"), "evidence_dir": str(folder / "ev")}
    data["sinks"] = [{"jsonl": str(folder / "events.jsonl")}]
    data["log"] = {"level": "INFO", "format": "text", "progress_interval_s": 10}
    path = folder / f"{model}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sample(pid: int) -> tuple[float, int] | None:
    """``(cpu seconds, resident bytes)`` of process ``pid``, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return cpu, rss_kb * 1024


def run_once(home: Path, cfg: Path, warmup_s: float) -> dict[str, Any]:
    env = dict(os.environ, ARGUS_HOME=str(home), PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "argus", "run", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    points: list[tuple[float, float, int]] = []
    while proc.poll() is None:
        got = sample(proc.pid)
        if got is not None:
            points.append((time.monotonic() - t0, *got))
        time.sleep(0.5)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"argus run failed ({proc.returncode}): {err[-2000:]}")
    steady = [p for p in points if p[0] >= warmup_s]
    if len(steady) < 4:
        raise RuntimeError("the run was shorter than the warm-up: use more --seconds")
    steady = steady[:-2]  # the last second: stopping
    (t_a, c_a, _), (t_b, c_b, _) = steady[0], steady[-1]
    rss = [p[2] for p in steady]
    finished = next((line for line in err.splitlines() if "finished:" in line), "")
    return {
        "cores": round((c_b - c_a) / (t_b - t_a), 3),
        "rss_mib_p50": round(statistics.median(rss) / 2**20, 1),
        "rss_mib_max": round(max(rss) / 2**20, 1),
        "peak_rss_mib_all": round(max(p[2] for p in points) / 2**20, 1),
        "measured_s": round(t_b - t_a, 1),
        "finished": finished.split("finished:", 1)[-1].strip()[:300],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--seconds", type=float, default=60.0, help="clip length (default 60 s)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each model (default 2)")
    p.add_argument("--warmup", type=float, default=12.0, help="seconds left out at the start")
    p.add_argument("--out", help="write the results (JSON) here")
    args = p.parse_args(argv)
    results: dict[str, Any] = {
        "machine": machine_description(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": list(os.getloadavg()),
        "clip": f"{SIZE[0]}x{SIZE[1]} H.264 at {FPS} fps, {args.seconds:g} s (vtest.avi scaled up)",
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        make_models(home / "models")
        clip = make_clip(folder / "clip-1080p.mp4", args.seconds)
        order = ["nanodet-g-int8", "nanodet-g"]
        for r in range(args.rounds):
            for model in order if r % 2 == 0 else order[::-1]:
                run_dir = folder / f"run-{r}-{model}"
                run_dir.mkdir()
                got = run_once(home, config(run_dir, clip, model), args.warmup)
                got.update({"model": model, "round": r})
                results["runs"].append(got)
                log(
                    f"{model}: {got['cores']} cores, RSS p50 {got['rss_mib_p50']} MiB, max "
                    f"{got['rss_mib_max']} MiB ({got['finished'][:80]})"
                )
    results["load_average_at_end"] = list(os.getloadavg())
    for model in ("nanodet-g-int8", "nanodet-g"):
        mine = [r for r in results["runs"] if r["model"] == model]
        results[model] = {
            "cores_mean": round(statistics.mean(r["cores"] for r in mine), 3),
            "rss_mib_max": max(r["rss_mib_max"] for r in mine),
        }
        got = results[model]
        log(f"{model}: {got['cores_mean']} cores, at most {got['rss_mib_max']} MiB")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
