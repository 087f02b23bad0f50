"""Helpers for end-to-end tests: run the real ``argus`` CLI as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from argus.paths import models_dir
from deploy.localstack import free_port

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
ZONE = [[330, 180], [560, 180], [640, 330], [380, 330]]
API_KEY = "e2e-test-key-0123456789abcdef"
ARGUS = [sys.executable, "-m", "argus"]


def require_prerequisites() -> None:
    """Skip (a failure under ``make test``) when the footage or the model is missing."""
    if not VTEST.is_file():
        pytest.skip(f"footage {VTEST} missing (Debian opencv-doc; `make footage`)")
    if not (models_dir() / "nanodet-g" / "manifest.json").is_file():
        pytest.skip("default model not pulled (`make model`)")


def make_home(tmp: Path) -> Path:
    """A fresh ``ARGUS_HOME`` that shares the already-pulled models (read-only use)."""
    home = tmp / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir(), target_is_directory=True)
    return home


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ARGUS_HOME": str(home), "ARGUS_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"})
    return env


def write_config(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / "argus.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def issue_config(tmp: Path, **camera: Any) -> dict[str, Any]:
    """The config of issue #2, with output paths moved into ``tmp``."""
    cam = {
        "id": "plaza",
        "source": str(VTEST),
        "realtime": False,
        "zones": [{"name": "crossing", "polygon": ZONE}],
    }
    cam.update(camera)
    return {
        "cameras": [cam],
        "rules": [
            {
                "type": "intrusion",
                "camera": "plaza",
                "zone": "crossing",
                "classes": ["person"],
                "min_dwell_s": 0.5,
                # the ground truth counts people's visits: one alert per person, and a
                # person stepping out and back within 3 s stays one alert
                "alert_per": "object",
                "cooldown_s": 3.0,
            }
        ],
        "sinks": [{"jsonl": str(tmp / "events.jsonl")}],
        "storage": {"sqlite": str(tmp / "alerts.db"), "evidence_dir": str(tmp / "evidence")},
        # clips cost seconds of CPU each: tests that check them turn them on
        "evidence": {"clips": {"enabled": False}},
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Served:
    """An ``argus`` process serving the API."""

    proc: subprocess.Popen[str]
    url: str
    log: Path

    def get(
        self, path: str, *, auth: bool = True, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
        return httpx.get(self.url + path, headers=sent | (headers or {}), timeout=10.0, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return int(self.proc.returncode)


@pytest.fixture
def serve_argus() -> Iterator[Any]:
    """Start ``argus <args> --port P`` in the background; stopped at the end of the test."""
    started: list[Served] = []

    def start(args: list[str], home: Path, log: Path, ready_timeout_s: float = 120.0) -> Served:
        port = free_port()
        logf = log.open("w")
        proc = subprocess.Popen(
            [*ARGUS, *args, "--port", str(port)],
            env=env_for(home),
            stdout=logf,
            stderr=subprocess.STDOUT,
            text=True,
        )
        served = Served(proc, f"http://127.0.0.1:{port}", log)
        started.append(served)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"argus exited early ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(served.url + "/healthz", timeout=1.0).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"API did not come up in {ready_timeout_s}s:\n{log.read_text()}")

    yield start
    for s in started:
        s.stop()


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None
