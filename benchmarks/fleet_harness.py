"""A fleet on one machine, as real processes: the local broker, ``argus worker``s and their
cameras played live from pre-encoded H.264 files (for ``tests/e2e/test_fleet_e2e.py`` and
``benchmarks/fleet_failover.py``).

Videos: ``busy.mp4`` is the bundled footage (people crossing) re-encoded to H.264;
``quiet.mp4`` is its empty background with sensor noise (nothing moves: the motion gate
keeps the detector off and activity-driven decoding reads keyframes only).  Every camera
loops its file in real time like a live camera.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from argus.paths import models_dir
from deploy.localstack import LocalStack, free_port

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
ZONE = [[330, 180], [560, 180], [640, 330], [380, 330]]
ARGUS = [sys.executable, "-m", "argus"]
FPS = 10
GOP = 20


def _encode(path: Path, frames: Iterable[np.ndarray]) -> Path:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream: Any = None
        for i, img in enumerate(frames):
            if stream is None:
                stream = out.add_stream("libx264", rate=Fraction(FPS, 1))
                stream.height, stream.width = int(img.shape[0]), int(img.shape[1])
                stream.pix_fmt = "yuv420p"
                stream.options = {
                    "preset": "veryfast",
                    "crf": "28",
                    "g": str(GOP),
                    "keyint_min": str(GOP),
                    "sc_threshold": "0",
                }
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(vf):
                out.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames")
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_videos(folder: Path, seconds: float = 30.0) -> tuple[Path, Path]:
    """``(busy.mp4, quiet.mp4)`` in ``folder`` (made once)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    busy, quiet = folder / "busy.mp4", folder / "quiet.mp4"
    if busy.is_file() and quiet.is_file():
        return busy, quiet
    cap = cv2.VideoCapture(str(VTEST))
    frames: list[np.ndarray] = []
    while len(frames) < int(seconds * FPS):
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    if not frames:
        raise FileNotFoundError(f"footage {VTEST} unreadable")
    _encode(busy, frames)
    background = np.median(np.stack(frames[::25]), axis=0).astype(np.uint8)
    rng = np.random.default_rng(7)

    def noisy() -> Iterator[np.ndarray]:
        for _ in range(int(seconds * FPS)):
            noise = rng.integers(-2, 3, background.shape, dtype=np.int16)
            yield np.clip(background.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    _encode(quiet, noisy())
    return busy, quiet


def site(busy: Path, quiet: Path, n_busy: int, n_quiet: int) -> dict[str, Any]:
    """A site file: ``busy-i`` and ``quiet-i`` cameras, each with an intrusion rule on the
    crossing (the busy ones raise alerts; the quiet ones never do)."""
    cameras: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for kind, video, n in (("busy", busy, n_busy), ("quiet", quiet, n_quiet)):
        for i in range(1, n + 1):
            cid = f"{kind}-{i}"
            cameras.append(
                {
                    "id": cid,
                    "source": str(video),
                    "realtime": True,
                    "loop": True,
                    "groups": ["north" if i % 2 else "south"],
                    "zones": [{"name": "crossing", "polygon": ZONE}],
                }
            )
            rules.append(
                {
                    "type": "intrusion",
                    "camera": cid,
                    "zone": "crossing",
                    "classes": ["person"],
                    "min_dwell_s": 0.5,
                    "alert_per": "object",  # one alert per person: alerts keep coming
                    "cooldown_s": 3.0,
                }
            )
    return {"cameras": cameras, "rules": rules}


@dataclass
class Worker:
    """One ``argus worker`` process."""

    name: str
    capacity: int
    port: int
    home: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readyz(self) -> dict[str, Any] | None:
        """The worker's readiness document, or ``None`` (not answering)."""
        try:
            r = httpx.get(self.url + "/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        return dict(r.json()) if r.status_code in (200, 503) else None

    def cameras(self) -> dict[str, dict[str, Any]]:
        """Cameras it runs now with their health (empty when it does not answer)."""
        doc = self.readyz()
        return dict(doc.get("cameras") or {}) if doc else {}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Fleet:
    """Workers of one site on one broker (``stack``), in ``folder``."""

    stack: LocalStack
    folder: Path
    topic_prefix: str = "argus.fleet-test"
    session_timeout_s: float = 6.0
    threads: int = 1
    workers: dict[str, Worker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def kafka(self) -> dict[str, Any]:
        p = self.topic_prefix
        return {
            "bootstrap": self.stack.bootstrap,
            "topic": f"{p}.events",
            "idempotent": False,
            "group_id": f"{p}.alerts",
            "status_topic": f"{p}.cameras",
            "preview_topic": f"{p}.previews",
        }

    def home(self, name: str) -> Path:
        home = self.folder / f"home-{name}"
        home.mkdir(exist_ok=True)
        link = home / "models"
        if not link.exists():
            link.symlink_to(models_dir(), target_is_directory=True)
        return home

    def worker_config(self, name: str, capacity: int, port: int, **fleet: Any) -> Path:
        data = {
            "fleet": {
                "name": name,
                "capacity": capacity,
                "group": f"{self.topic_prefix}.workers",
                "topic": f"{self.topic_prefix}.fleet",
                "partitions": 32,
                "session_timeout_s": self.session_timeout_s,
                **fleet,
            },
            "bus": {"kafka": self.kafka},
            "detector": {"threads": self.threads, "batch_size": 2},
            "metrics": {"port": port},
            "log": {"format": "json"},
            "evidence": {"clips": {"enabled": False}},
        }
        path = self.folder / f"worker-{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def env(self, home: Path) -> dict[str, str]:
        return dict(os.environ, ARGUS_HOME=str(home), PYTHONUNBUFFERED="1")

    def argus(self, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ARGUS, *args],
            env=self.env(home or self.home("cli")),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def publish(self, data: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        """``argus fleet publish`` of a site (written to a file)."""
        path = self.folder / "site.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        cfg = self.worker_config("cli", 1, free_port())
        return self.argus("fleet", "publish", str(path), "--config", str(cfg), *extra)

    def start(self, name: str, capacity: int, **fleet: Any) -> Worker:
        """Start ``argus worker`` ``name`` (a new process; its own ARGUS_HOME)."""
        port = free_port()
        home = self.home(name)
        w = Worker(
            name=name,
            capacity=capacity,
            port=port,
            home=home,
            config=self.worker_config(name, capacity, port, **fleet),
            log=self.folder / f"worker-{name}.log",
        )
        with w.log.open("ab") as out:
            w.proc = subprocess.Popen(
                [*ARGUS, "worker", "--config", str(w.config)],
                env=self.env(home),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers[name] = w
        return w

    def kill(self, name: str, sig: int = signal.SIGKILL, wait_s: float = 30.0) -> float:
        """Send ``sig`` to a worker; the UNIX time it was sent.  Waits for it to end."""
        w = self.workers[name]
        assert w.proc is not None
        sent = time.time()
        w.proc.send_signal(sig)
        try:
            w.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(10)
        return sent

    def stop_all(self) -> None:
        for w in self.workers.values():
            if w.alive and w.proc is not None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers.values():
            if w.proc is not None:
                try:
                    w.proc.wait(30)
                except subprocess.TimeoutExpired:
                    w.proc.kill()
                    w.proc.wait(10)

    def placement(self) -> dict[str, list[str]]:
        """camera id -> the live workers that report running it now (a camera a stopping
        worker has ended or that failed is listed by it, and runs nowhere)."""
        out: dict[str, list[str]] = {}
        for w in list(self.workers.values()):
            if not w.alive:
                continue
            for camera_id, health in w.cameras().items():
                if health.get("state") not in ("ended", "failed"):
                    out.setdefault(camera_id, []).append(w.name)
        return out

    def first_frame_at(self, name: str, camera_id: str, after: float) -> float | None:
        """UNIX time worker ``name`` analysed its first frame of ``camera_id`` after
        ``after`` (its JSON log's "camera streaming" line), or ``None``."""
        w = self.workers[name]
        try:
            lines = w.log.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            if "camera streaming" not in line or camera_id not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("camera_id") != camera_id:
                continue
            t = _log_time(rec)
            if t is not None and t >= after:
                return t
        return None


def _log_time(rec: dict[str, Any]) -> float | None:
    for key in ("ts", "time", "timestamp"):
        value = rec.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, step_s: float = 0.3) -> Any:
    """``check()``'s first truthy result, polling; ``AssertionError`` naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(step_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")
