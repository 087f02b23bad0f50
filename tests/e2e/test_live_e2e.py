"""``argus run --serve`` on a real live RTSP camera (GStreamer RTSP server playing vtest.avi).

Checks what only a live source exercises in the composition root: the newest-frame slot,
alerts arriving while the stream runs, credentials kept out of logs and health, and a
clean shutdown on SIGINT that closes every open event.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
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
    # a camera's two streams of one picture: the main (1280x720) kept for evidence, the
    # sub-stream (the footage's own 768x576, where the zone is drawn) analysed
    server = RtspServer(
        free_port(), "/plaza", "--width", "1280", "--height", "720",
        "--sub-path", "/plaza_sub", "--sub-width", "768", "--sub-height", "576",
        "--sub-bitrate", "1024",
    )  # fmt: skip
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
                {
                    "id": "plaza",
                    "source": url + "_sub",
                    "evidence_source": url,
                    "zones": [{"name": "crossing", "polygon": ZONE}],
                }
            ],
            "rules": [
                {"type": "intrusion", "camera": "plaza", "zone": "crossing", "min_dwell_s": 3.0}
            ],
            "sinks": [{"jsonl": str(tmp_path / "events.jsonl")}],
            "storage": {
                "sqlite": str(tmp_path / "alerts.db"),
                "evidence_dir": str(tmp_path / "ev"),
            },
            "evidence": {"clips": {"pre_s": 2, "post_s": 3}},  # short: a few seconds to wait
        },
    )
    served = serve_argus(["run", str(cfg), "--serve"], home, tmp_path / "argus.log")
    deadline = time.monotonic() + 90
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not items:
        items = served.get("/api/v1/alerts").json()["items"]
        time.sleep(0.5)
    assert items, f"no alert from the live camera in 90 s:\n{served.log.read_text()[-3000:]}"
    assert items[0]["camera_id"] == "plaza" and items[0]["snapshot"] and items[0]["clip"]
    # the alert (raised once the main stream is up: the dwell is longer than the main
    # stream's start) has its clip from the main stream, at its size
    check_clip(served, items[0], "evidence")

    ready = served.get("/readyz", auth=False)
    assert ready.json()["cameras"]["plaza"]["state"] == "streaming"
    evidence = ready.json()["cameras"]["plaza"]["evidence"]
    assert evidence["streaming"] is True and evidence["frame_size"] == [1280, 720], evidence
    metrics = served.get("/metrics", auth=False).text
    assert 'argus_evidence_stream_up{camera="plaza"} 1.0' in metrics
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


def decode_mp4(data: bytes) -> tuple[str, int]:
    """The codec of an MP4's video and how many frames decode from it."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        return codec, len(list(container.decode(stream)))


def check_clip(served: Any, alert: dict[str, Any], stream: str | None) -> None:
    """The alert's clip of the live H.264 camera: 404 with Retry-After while it is made,
    then the masked MP4 (ranges too), its description, and the original as it came:
    of the main stream (``stream`` "evidence": 1280x720), of the analysed sub-stream
    with a note saying why (``"analysed"``: 768x576), or either (``None``)."""
    base = f"/api/v1/alerts/{alert['event_id']}"
    deadline = time.monotonic() + 60
    while True:
        r = served.get(f"{base}/clip")
        if r.status_code != 404:
            break
        # being made (Retry-After), not "no clip" or "not made" (no Retry-After)
        assert r.headers.get("retry-after", "").isdigit(), r.text
        assert time.monotonic() < deadline, f"no clip in 60 s:\n{served.log.read_text()[-3000:]}"
        time.sleep(0.5)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4", r.text[:200]
    masked = r.content
    codec, frames = decode_mp4(masked)
    assert codec == "h264" and frames > 0
    part = served.get(f"{base}/clip", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == masked[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(masked)}"
    info = served.get(f"{base}/clip-info")
    assert info.status_code == 200, info.text
    described = info.json()
    # the camera's H.264 packets were remuxed, not transcoded; the window is the one asked
    assert described["remuxed"] is True and described["codec"] == "h264"
    # of the main stream, at its size, while the sub-stream was analysed (or of the sub-
    # stream, saying why)
    size = {"evidence": (1280, 720), "analysed": (768, 576)}[described["stream"]]
    assert (described["width"], described["height"]) == size, described
    assert stream in (None, described["stream"]), described
    if described["stream"] == "analysed":
        assert "evidence stream" in described["note"], described
    assert described["frames"] == frames
    assert described["asked_start_s"] == pytest.approx(max(0.0, alert["start_s"] - 2))
    assert described["asked_end_s"] == pytest.approx(alert["start_s"] + 3)
    raw = served.get(f"{base}/clip", params={"unmasked": "true"})  # the API key: an admin
    assert raw.status_code == 200 and raw.headers["content-type"] == "video/mp4"
    assert raw.content != masked
    codec, frames = decode_mp4(raw.content)
    assert codec == "h264" and frames > 0
    with av.open(io.BytesIO(raw.content)) as original:
        assert (original.streams.video[0].width, original.streams.video[0].height) == size
