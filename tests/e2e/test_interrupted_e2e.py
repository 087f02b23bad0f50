"""A worker killed with an alert open, restarted on the same data directory (issue 12).

``argus run --serve`` plays vtest.avi as a live camera (``realtime: true, loop: true``)
with an intrusion zone over the whole picture, so an alert opens within seconds and stays
open (people are always in view).  The process is SIGKILLed: nothing can close the alert.
The same command started again announces its run before any frame, and the alert the
first run left open is closed as ``interrupted`` (API), its status kept.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    API_KEY,
    VTEST,
    make_home,
    read_jsonl,
    require_prerequisites,
    write_config,
)

pytestmark = pytest.mark.e2e

WHOLE_FRAME = [[1, 1], [767, 1], [767, 575], [1, 575]]


def _until(what: str, timeout_s: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def test_alert_left_open_by_a_killed_worker_is_closed_as_interrupted(
    tmp_path: Path, serve_argus: Any
) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    cfg = write_config(
        tmp_path,
        {
            "cameras": [
                {
                    "id": "plaza",
                    "source": str(VTEST),
                    "realtime": True,
                    "loop": True,
                    "zones": [{"name": "anywhere", "polygon": WHOLE_FRAME}],
                }
            ],
            "rules": [
                {
                    "type": "intrusion",
                    "camera": "plaza",
                    "zone": "anywhere",
                    "classes": ["person"],
                    "min_dwell_s": 0.3,
                }
            ],
            "sinks": [{"jsonl": str(tmp_path / "events.jsonl")}],
            "storage": {
                "sqlite": str(tmp_path / "alerts.db"),
                "evidence_dir": str(tmp_path / "ev"),
            },
        },
    )
    args = ["run", str(cfg), "--serve"]
    first = serve_argus(args, home, tmp_path / "first.log")
    opened = _until(
        "an open alert from the first run",
        60,
        lambda: first.get("/api/v1/alerts", params={"open": "true"}).json()["items"],
    )[0]
    assert opened["end_reason"] is None and opened["run_id"]
    r = httpx.post(  # an operator acknowledges it before the crash
        f"{first.url}/api/v1/alerts/{opened['event_id']}/ack",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"by": "alice"},
        timeout=10.0,
    )
    assert r.status_code == 200, r.text
    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(30) == -signal.SIGKILL

    second = serve_argus(args, home, tmp_path / "second.log")

    def interrupted() -> dict[str, Any] | None:
        alert: dict[str, Any] = second.get(f"/api/v1/alerts/{opened['event_id']}").json()
        return alert if alert["end_reason"] == "interrupted" else None

    alert = _until("the first run's alert closed as interrupted", 30, interrupted)
    assert alert["end_s"] == alert["start_s"] and alert["run_id"] == opened["run_id"]
    assert alert["status"] == "acknowledged"
    assert "closed as interrupted: 1" in second.log.read_text()
    # the second run's own alerts carry its run id, and the event log has no markers
    newer = _until(
        "an alert from the second run",
        60,
        lambda: [
            a
            for a in second.get("/api/v1/alerts", params={"open": "true"}).json()["items"]
            if a["run_id"] != opened["run_id"]
        ],
    )
    assert newer[0]["run_id"] and newer[0]["end_reason"] is None
    records = read_jsonl(tmp_path / "events.jsonl")
    assert records and all("kind" not in r and r["run_id"] for r in records)
    assert {r["run_id"] for r in records} == {opened["run_id"], newer[0]["run_id"]}
