"""Bad input end to end: dead cameras, broken configs, missing models, misplaced zones; the demo."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from alerts.evidence import masked_key
from tests.demo_room import DemoRoom, seed_demo
from tests.e2e.conftest import (
    ARGUS,
    VTEST,
    env_for,
    issue_config,
    make_home,
    read_jsonl,
    require_prerequisites,
    write_config,
)

pytestmark = pytest.mark.e2e


def clip(tmp: Path, frames: int = 120) -> Path:
    """The first ``frames`` frames of vtest.avi as a small MPEG-4 file (real footage, short run)."""
    cap = cv2.VideoCapture(str(VTEST))
    out_path = tmp / "clip.avi"
    out = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        out.write(frame)
    out.release()
    cap.release()
    return out_path


def run(
    cfg: Path, home: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARGUS, "run", str(cfg), *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_dead_camera_fails_alone_and_the_others_keep_running(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    data = issue_config(tmp_path, source=str(clip(tmp_path)))
    missing = tmp_path / "no-such-camera.mp4"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video\xff" * 500)
    data["cameras"] += [
        {"id": "gate", "source": str(missing), "realtime": False},
        {"id": "lobby", "source": str(garbage), "realtime": False},
    ]
    proc = run(write_config(tmp_path, data), home)
    assert proc.returncode == 1, proc.stderr[-3000:]
    # One clear error naming each bad source; the good camera ran to the end with events.
    assert str(missing) in proc.stderr and str(garbage) in proc.stderr
    assert "failed cameras" in proc.stderr
    records = read_jsonl(tmp_path / "events.jsonl")
    assert records and {r["camera_id"] for r in records} == {"plaza"}
    opened = {r["event_id"] for r in records if r["end_s"] is None}
    closed = {r["event_id"] for r in records if r["end_s"] is not None}
    assert opened == closed, "the good camera's events are all closed at its end"
    assert "plaza: 120 frames" in proc.stderr


def test_broken_config_is_refused_with_file_key_and_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"  # the config is refused before any model is needed
    home.mkdir()
    data = issue_config(tmp_path)
    data["rules"][0]["zone"] = "lawn"
    data["cameras"][0]["fps"] = 5
    cfg = write_config(tmp_path, data)
    proc = run(cfg, home, timeout=60)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr
    assert "cameras.0.fps: unknown key" in proc.stderr
    assert "rules.0.zone" in proc.stderr and "'lawn'" in proc.stderr


def test_unknown_class_for_the_model_is_refused(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    data = issue_config(tmp_path)
    data["rules"][0]["classes"] = ["person", "unicorn"]
    cfg = write_config(tmp_path, data)
    proc = run(cfg, home, timeout=120)
    assert proc.returncode == 2
    assert "rules.0.classes" in proc.stderr and "unicorn" in proc.stderr


def test_missing_model_gives_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    data = issue_config(tmp_path)
    cfg = write_config(tmp_path, data)
    proc = run(cfg, home, timeout=60)
    assert proc.returncode == 2
    assert "nanodet-g" in proc.stderr and "argus models pull" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_model_gives_one_clear_error(tmp_path: Path) -> None:
    require_prerequisites()
    home = tmp_path / "home"
    (home / "models" / "nanodet-g").mkdir(parents=True)
    from argus.paths import models_dir

    src = models_dir() / "nanodet-g"
    (home / "models" / "nanodet-g" / "manifest.json").write_bytes(
        (src / "manifest.json").read_bytes()
    )
    onnx = (src / "model.onnx").read_bytes()
    (home / "models" / "nanodet-g" / "model.onnx").write_bytes(onnx[: len(onnx) // 2])
    proc = run(write_config(tmp_path, issue_config(tmp_path)), home, timeout=60)
    assert proc.returncode == 2
    assert "model.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_zone_outside_the_frame_is_reported_for_that_camera(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    data = issue_config(tmp_path, source=str(clip(tmp_path, 20)))
    data["cameras"][0]["zones"].append(
        {"name": "roof", "polygon": [[900, 700], [1000, 700], [1000, 800], [900, 800]]}
    )
    proc = run(write_config(tmp_path, data), home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "zone 'roof' of camera 'plaza'" in proc.stderr
    assert "768x576" in proc.stderr


def test_demo_serves_alerts_from_the_looping_footage(
    tmp_path: Path, serve_argus: Any, demo_room: DemoRoom
) -> None:
    """`argus demo`: footage looped at real speed as a live camera; alerts readable in the API.

    Its videos were made once for the session (``tests/unit/test_demo.py`` checks the
    making); here they are reused, as at every start after the first."""
    require_prerequisites()
    home = make_home(tmp_path)
    seed_demo(demo_room, home)
    t0 = time.monotonic()
    served = serve_argus(["demo"], home, tmp_path / "demo.log")
    deadline = time.monotonic() + 90
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not items:
        items = served.get("/api/v1/alerts").json()["items"]
        time.sleep(0.5)
    assert items, f"no alert within 90 s:\n{served.log.read_text()[-3000:]}"
    first_alert_s = time.monotonic() - t0
    assert items[0]["camera_id"] == "plaza" and items[0]["type"] == "intrusion"
    snap = served.get(f"/api/v1/alerts/{items[0]['event_id']}/snapshot")
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    # the masked copy (people blurred); the original only with ?unmasked=true (key: admin)
    key = items[0]["snapshot"]
    assert snap.content == (home / "evidence" / masked_key(key)).read_bytes()
    raw = served.get(f"/api/v1/alerts/{items[0]['event_id']}/snapshot", params={"unmasked": "true"})
    assert raw.status_code == 200 and raw.content == (home / "evidence" / key).read_bytes()
    assert raw.content != snap.content
    ready = served.get("/readyz", auth=False).json()
    assert ready["cameras"]["plaza"]["state"] == "streaming"
    out = served.log.read_text()
    assert "API key:" in out and "http://127.0.0.1:" in out
    # the printed user signs in and works the queue, as the page does
    found = re.search(r"Sign in as:\s+(\S+) / (\S+)", out)
    assert found, out[-2000:]
    with httpx.Client(base_url=served.url, timeout=10.0) as browser:
        login = {"username": found.group(1), "password": found.group(2)}
        who = browser.post("/api/v1/auth/login", json=login)
        assert who.status_code == 200 and who.json()["role"] == "admin", who.text
        claim = browser.post(
            f"/api/v1/alerts/{items[0]['event_id']}/claim",
            headers={"X-CSRF-Token": who.json()["csrf_token"]},
        )
        assert claim.status_code == 200 and claim.json()["owner"] == found.group(1), claim.text
    assert found.group(2) not in out.replace(f"/ {found.group(2)}", ""), "password logged"
    assert served.stop() in (0, 130)
    print(f"demo: first alert readable after {first_alert_s:.1f} s")


@pytest.mark.parametrize("where", ["sink", "store", "evidence"])
def test_unwritable_output_path_gives_one_clear_error(tmp_path: Path, where: str) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    data = issue_config(tmp_path)
    bad = blocker / "sub" / "out"
    if where == "sink":
        data["sinks"] = [{"jsonl": str(bad)}]
    elif where == "store":
        data["storage"]["sqlite"] = str(bad)
    else:
        data["storage"]["evidence_dir"] = str(bad)
    proc = run(write_config(tmp_path, data), home, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(blocker) in proc.stderr and "Traceback" not in proc.stderr
