"""Frame-to-alert latency on the local stack: camera frame → worker → Kafka → alert service → API.

Starts the project's local servers (Tansu on SeaweedFS, on free ports in a temp dir), an
``argus alerts serve`` process and an ``argus run`` worker that plays the footage at real
speed (so a frame's ``wall_time`` is when a camera would have captured it).  For every alert
the API returns, latency = ``received_at`` (the alert service wrote it to the store, from
which moment the API serves it) − ``wall_time`` (the frame at which the rule fired).

Usage::

    .venv/bin/python -m benchmarks.alert_latency [--video PATH] [--frames N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import yaml

from argus.paths import models_dir
from deploy.localstack import LocalStack, free_port, free_ports, free_ports_base

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
ZONE = [[330, 180], [560, 180], [640, 330], [380, 330]]
KEY = "latency-bench-key-0123456789"
ARGUS = [sys.executable, "-m", "argus"]


def clip(video: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``video`` as MJPEG (10 fps)."""
    cap = cv2.VideoCapture(str(video))
    writer: Any = None
    for _ in range(frames):
        ok, img = cap.read()
        if not ok:
            break
        if writer is None:
            h, w = img.shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (w, h))
        writer.write(img)
    if writer is not None:
        writer.release()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--video", type=Path, default=VTEST)
    p.add_argument("--frames", type=int, default=600, help="frames played at real speed")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="argus-latency-") as tmp_s:
        tmp = Path(tmp_s)
        home = tmp / "home"
        home.mkdir()
        (home / "models").symlink_to(models_dir(), target_is_directory=True)
        kafka_port, s3_port = free_ports(2)
        stack = LocalStack(
            tmp / "infra", kafka_port=kafka_port, s3_port=s3_port, ports_base=free_ports_base()
        )
        stack.up()
        procs: list[subprocess.Popen[str]] = []
        try:
            cfg = {
                "cameras": [
                    {
                        "id": "plaza",
                        "source": str(clip(args.video, args.frames, tmp / "clip.avi")),
                        "realtime": True,
                        "zones": [{"name": "crossing", "polygon": ZONE}],
                    }
                ],
                "rules": [
                    {"type": "intrusion", "camera": "plaza", "zone": "crossing", "min_dwell_s": 0.5}
                ],
                "bus": {
                    "kafka": {
                        "bootstrap": stack.bootstrap,
                        "topic": "argus.events",
                        "idempotent": False,
                    }
                },
                "evidence": {"s3": {"endpoint": stack.s3_endpoint}},
                "storage": {"sqlite": str(tmp / "alerts.db")},
                "log": {"level": "WARNING"},
            }
            cfg_path = tmp / "argus.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
            env = dict(
                os.environ,
                ARGUS_HOME=str(home),
                ARGUS_API_KEY=KEY,
                ARGUS_S3_ACCESS_KEY=stack.access_key,
                ARGUS_S3_SECRET_KEY=stack.secret_key,
            )
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [*ARGUS, "alerts", "serve", "--config", str(cfg_path), "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
            # Steady state: the service has joined its consumer group before frames flow
            # (a cold group join takes about half the session timeout, ~5 s).
            t_join = time.monotonic()
            while time.monotonic() - t_join < 60:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
                    if ready.get("components", {}).get("alert_service", {}).get("connected"):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            join_s = time.monotonic() - t_join
            worker = subprocess.Popen(
                [*ARGUS, "run", str(cfg_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(worker)
            _, err = worker.communicate(timeout=args.frames / 10 + 300)
            if worker.returncode != 0:
                raise SystemExit(f"worker failed ({worker.returncode}):\n{err[-2000:]}")
            time.sleep(3.0)  # let the service drain the last records
            r = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/alerts",
                params={"limit": 500},
                headers={"X-API-Key": KEY},
                timeout=10,
            )
            items = r.json()["items"]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            stack.stop()

    lat = np.array(
        [
            (
                datetime.fromisoformat(a["received_at"]) - datetime.fromisoformat(a["wall_time"])
            ).total_seconds()
            for a in items
        ]
    )
    result = {
        "alerts": len(items),
        "latency_s_p50": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
        "latency_s_p95": round(float(np.percentile(lat, 95)), 3) if len(lat) else None,
        "latency_s_max": round(float(lat.max()), 3) if len(lat) else None,
        "frames": args.frames,
        "service_join_s": round(join_s, 2),
        "note": "received_at (stored, readable in the API) - wall_time of the triggering frame",
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
