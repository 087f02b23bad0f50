"""A recording cut in half, end to end: its frames are analysed, then ``argus run`` exits 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import cv2
import pytest

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
from tests.factories import write_clip

pytestmark = pytest.mark.e2e

FRAMES = 40


def cut_recording(tmp: Path) -> tuple[Path, int]:
    """The first ``FRAMES`` frames of vtest as H.264 in MP4 with its index (``moov``) first,
    cut in half; and how many whole frames the cut file holds."""
    cap = cv2.VideoCapture(str(VTEST))
    images = []
    for _ in range(FRAMES):
        ok, image = cap.read()
        assert ok
        images.append(image)
    cap.release()
    recorded = write_clip(tmp / "recorded.mp4", images, codec="libx264", fps=10, gop=10)
    full = tmp / "full.mp4"
    with (
        av.open(str(recorded)) as i,
        av.open(str(full), "w", options={"movflags": "faststart"}) as o,
    ):
        stream = i.streams.video[0]
        out = o.add_stream_from_template(stream)
        for packet in i.demux(stream):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    cut = tmp / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as c:
        whole = sum(1 for p in c.demux(c.streams.video[0]) if p.size and not p.is_corrupt)
    return cut, whole


def test_cut_recording_is_analysed_then_fails_its_camera(tmp_path: Path) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    cut, whole = cut_recording(tmp_path)
    assert 0 < whole < FRAMES
    cfg = write_config(tmp_path, issue_config(tmp_path, source=str(cut)))
    proc = subprocess.run(
        [*ARGUS, "run", str(cfg)], env=env_for(home), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    # one clear line naming the file and how far it got, at WARNING/ERROR
    said = [
        line
        for line in proc.stderr.splitlines()
        if "recording ends early" in line and (" WARNING " in line or " ERROR " in line)
    ]
    assert said, proc.stderr[-3000:]
    assert f"{cut}: recording ends early: {whole} of {FRAMES} frames" in said[0]
    assert "truncated or damaged" in said[0] and "failed cameras" in proc.stderr
    # every whole frame was analysed; the camera's open events were closed, sinks flushed
    assert f"plaza: {whole} frames" in proc.stderr and "(FAILED)" in proc.stderr
    sink = tmp_path / "events.jsonl"
    records = read_jsonl(sink) if sink.exists() else []
    opened = {r["event_id"] for r in records if r["end_s"] is None}
    closed = {r["event_id"] for r in records if r["end_s"] is not None}
    assert opened == closed
