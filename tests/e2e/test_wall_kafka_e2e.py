"""The wall with the worker in another process (issue 18): camera state, watched activity and
live pictures reach the alert service over Kafka, and only while someone watches.

Real servers: the local stack's broker (Tansu), a worker (``argus run`` playing the footage at
real speed) and a separate ``argus alerts serve``.  The camera's status arrives on the status
topic; the wall's stream asks for pictures (the demand goes to the worker over the control
channel) and gets them from the preview topic; when the stream ends the worker stops making
them; a worker killed leaves its camera ``lost`` on the board.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.fleet_harness import wait_for
from deploy.localstack import LocalStack
from tests.e2e.conftest import (
    API_KEY,
    ARGUS,
    env_for,
    issue_config,
    make_home,
    require_prerequisites,
    write_config,
)
from tests.e2e.test_kafka_s3_e2e import start_service

pytestmark = pytest.mark.e2e

AUTH = {"X-API-Key": API_KEY}


def board(url: str) -> dict[str, Any]:
    try:
        r = httpx.get(f"{url}/api/v1/cameras/status", headers=AUTH, timeout=5)
    except httpx.HTTPError:
        return {}
    return {c["camera_id"]: c for c in r.json()["cameras"]} if r.status_code == 200 else {}


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_statuses_and_pictures_cross_kafka_only_while_watched(
    localstack: LocalStack, tmp_path: Path
) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    topic = f"argus.e2e.wall.{os.getpid()}"
    data = issue_config(tmp_path, realtime=True, loop=True)
    data["bus"] = {
        "kafka": {
            "bootstrap": localstack.bootstrap,
            "topic": topic,
            "idempotent": False,
            "group_id": f"{topic}-alerts",
            "status_topic": f"{topic}.cameras",
            "preview_topic": f"{topic}.previews",
        }
    }
    cfg = write_config(tmp_path, data)
    service, url = start_service(cfg, home, localstack, tmp_path / "service.log")
    worker = subprocess.Popen(
        [*ARGUS, "run", str(cfg)],
        env=env_for(home),
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        cam = wait_for(
            "the worker's camera on the board",
            lambda: (c := board(url).get("plaza")) and c["state"] == "streaming" and c,
            timeout_s=90,
        )
        assert cam["fps"] > 0 and cam["frame_size"] == [768, 576]

        # the wall shows plaza once an alert is open; its stream gets live pictures
        pictures: list[dict[str, Any]] = []
        with httpx.stream(
            "GET",
            f"{url}/api/v1/live",
            params={"view": "wall", "for_s": 40},
            headers=AUTH,
            timeout=60,
        ) as r:
            assert r.status_code == 200
            event = None
            t0 = time.monotonic()
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "picture":
                    pictures.append(json.loads(line[6:]))
                    if len(pictures) >= 3:
                        break
                assert time.monotonic() - t0 < 45, "no live picture over Kafka"
        assert {p["camera_id"] for p in pictures} == {"plaza"}
        assert base64.b64decode(pictures[-1]["jpeg"])[:2] == b"\xff\xd8"
        assert pictures[-1]["width"] == 640

        # nobody watches any more: within the demand's lease the worker stops making them
        time.sleep(2.0)
        seen = metric(url, 'argus_live_received_total{kind="picture"}')
        assert seen >= 3  # the service counted the pictures it received
        time.sleep(6.0)  # the stream's release -> a tombstone on the control channel
        later = metric(url, 'argus_live_received_total{kind="picture"}')
        assert later - seen <= 3, f"pictures kept coming with nobody watching: {later - seen}"

        # a worker that dies leaves its camera lost (no report any more)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        gone = wait_for(
            "the dead worker's camera turning lost",
            lambda: (c := board(url).get("plaza")) and c["state"] == "lost" and c,
            timeout_s=30,
        )
        assert "no report" in gone["detail"]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        service.terminate()
        service.wait(timeout=30)
