"""What keeping a camera's main stream for evidence costs (issue 20): a camera analysed on
its sub-stream, with and without its main stream read into a clip ring, and the camera
analysed on its main stream instead.

A real RTSP camera (``deploy/rtsp_server.py``: the footage at 10 fps, one picture served as a
1920x1080 main stream and a 640x360 sub-stream, keyframes every 2 s) is read by a
:class:`ingest.LiveSource` on the sub-stream, decoding every frame as a camera's worker
does (``sub``); in ``sub+main`` runs the source also has the main stream attached
(:meth:`ingest.LiveSource.attach_evidence`: packets only, never decoded); ``main`` runs
decode the main stream instead, as a camera configured with its main stream only.  Each run
lasts ``--seconds``.  This process's CPU time is measured (``time.process_time``: the RTSP
camera is another process), and the bytes the evidence ring holds at the end (its memory).
Runs alternate (sub, sub+main, main, main, sub+main, sub, ...) so all see the same load.

    .venv/bin/python -m benchmarks.evidence_stream_cost                # 2 rounds of 6 runs of 20 s
    .venv/bin/python -m benchmarks.evidence_stream_cost --seconds 10 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from argus.bench import machine_description
from deploy.localstack import free_port
from ingest import LiveSource
from ingest.packets import PacketRing

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "deploy" / "rtsp_server.py"
FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def camera() -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "/usr/bin/python3", str(SERVER), "--file", str(FOOTAGE), "--port", str(port),
            "--path", "/main", "--width", "1920", "--height", "1080", "--bitrate", "4096",
            "--sub-path", "/sub", "--sub-width", "640", "--sub-height", "360",
            "--keyint", "20", "--loop",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"the RTSP camera did not start: {line!r}")
    return proc, port


MODES = ("sub", "sub+main", "main")
"""Analyse the sub-stream; the same and keep the main stream; analyse the main stream."""


def run(port: int, seconds: float, mode: str) -> dict[str, Any]:
    analysed = "main" if mode == "main" else "sub"
    source = LiveSource("cam", f"rtsp://127.0.0.1:{port}/{analysed}", kind="rtsp", decode_threads=1)
    ring = PacketRing("cam", keep_s=16.0, max_bytes=32 * 2**20)
    evidence = None
    if mode == "sub+main":
        evidence = source.attach_evidence(f"rtsp://127.0.0.1:{port}/main", "rtsp", ring)
    frames = source.frames()
    next(frames)  # connected: the measure starts at the first frame
    cpu0, t0, n = time.process_time(), time.monotonic(), 0
    for _ in frames:
        n += 1
        if time.monotonic() - t0 >= seconds:
            break
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    out: dict[str, Any] = {
        "mode": mode,
        "seconds": round(wall, 1),
        "frames": n,
        "cores": round(cpu / wall, 4),
    }
    if evidence is not None:
        stats = evidence.stats()
        out.update(
            evidence_packets=stats.packets,
            evidence_size=[stats.width, stats.height],
            evidence_streaming=stats.streaming,
            ring_mib=round(ring.nbytes / 2**20, 2),
        )
    source.close()
    for _ in frames:  # returns at once: closed
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per run (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of 2+2 runs (default 2)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if not FOOTAGE.is_file():
        raise SystemExit(f"no footage at {FOOTAGE} (apt-get install opencv-doc)")
    proc, port = camera()
    try:
        time.sleep(2.0)  # the camera's picture runs
        runs = []
        for _ in range(args.rounds):
            for mode in (*MODES, *reversed(MODES)):
                r = run(port, args.seconds, mode)
                log(json.dumps(r))
                runs.append(r)
    finally:
        proc.kill()
        proc.wait(5)
    cores = {
        m: round(statistics.median(r["cores"] for r in runs if r["mode"] == m), 4) for m in MODES
    }
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_description(),
        "camera": "vtest.avi at 10 fps: main 1920x1080 4 Mbit/s, sub 640x360, keyframe 2 s",
        "cores_median": cores,
        "main_kept_extra_cores": round(cores["sub+main"] - cores["sub"], 4),
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
