"""``argus run --serve`` on a real live RTSP camera (GStreamer RTSP server playing vtest.avi).

Checks what only a live source exercises in the composition root: the newest-frame slot,
alerts arriving while the stream runs, credentials kept out of logs and health, and a
clean shutdown on SIGINT that closes every open event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ZONE,
    free_port,
    make_home,
    read_jsonl,
    require_prerequisites,
    write_config,
)
from tests.integration.test_ingest_live import (
    GST_PACKAGES,
    RtspServer,
    _gst_missing,
)

pytestmark = pytest.mark.e2e

PASSWORD = "Sup3r-s3cret-pw"


@pytest.fixture
def camera() -> Iterator[RtspServer]:
    require_prerequisites()
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(f"{reason}; apt-get install {GST_PACKAGES} (make rtsp-deps)")
    server = RtspServer(free_port(), "/plaza")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_live_rtsp_camera_alerts_and_clean_shutdown(
    camera: RtspServer, tmp_path: Path, serve_argus: Any
) -> None:
    home = make_home(tmp_path)
    url = f"rtsp://operator:{PASSWORD}@127.0.0.1:{camera.port}{camera.path}"
    cfg = write_config(
        tmp_path,
        {
            "cameras": [
                {"id": "plaza", "source": url, "zones": [{"name": "crossing", "polygon": ZONE}]}
            ],
            "rules": [
                {"type": "intrusion", "camera": "plaza", "zone": "crossing", "min_dwell_s": 0.5}
            ],
            "sinks": [{"jsonl": str(tmp_path / "events.jsonl")}],
            "storage": {
                "sqlite": str(tmp_path / "alerts.db"),
                "evidence_dir": str(tmp_path / "ev"),
            },
        },
    )
    served = serve_argus(["run", str(cfg), "--serve"], home, tmp_path / "argus.log")
    deadline = time.monotonic() + 90
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not items:
        items = served.get("/api/v1/alerts").json()["items"]
        time.sleep(0.5)
    assert items, f"no alert from the live camera in 90 s:\n{served.log.read_text()[-3000:]}"
    assert items[0]["camera_id"] == "plaza" and items[0]["snapshot"]

    ready = served.get("/readyz", auth=False)
    assert ready.json()["cameras"]["plaza"]["state"] == "streaming"
    metrics = served.get("/metrics", auth=False).text
    decoded = [ln for ln in metrics.splitlines() if ln.startswith("argus_frames_decoded_total{")]
    dropped = [ln for ln in metrics.splitlines() if ln.startswith("argus_frames_dropped_total{")]
    assert decoded and float(decoded[0].split()[-1]) > 0
    assert dropped, "drops of the newest-frame slot are exported (even when 0)"

    code = served.stop()
    assert code == 0, served.log.read_text()[-3000:]
    log = served.log.read_text()
    assert PASSWORD not in log and PASSWORD not in ready.text, "credentials leaked"
    records = read_jsonl(tmp_path / "events.jsonl")
    opened = {r["event_id"] for r in records if r["end_s"] is None}
    closed = {r["event_id"] for r in records if r["end_s"] is not None}
    assert opened and opened == closed, "every event still open at shutdown is closed"
