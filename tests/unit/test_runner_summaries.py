"""Track summaries through the runner (``Runner(track_summaries=True)``): one per track,
published when the track ends, when the stream ends, when the camera is taken out, and when
a live camera falls silent (its no-signal ticks end the tracks it last saw)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from alerts.schema import validate_track
from argus.runner import Runner
from tests.unit.test_runner import ScriptedSource, camera, walker

pytestmark = pytest.mark.unit


class Stalling(ScriptedSource):
    """A live source that gives its frames, then nothing for ``stall_s`` (a cut cable)."""

    def __init__(self, camera_id: str, n: int, stall_s: float) -> None:
        super().__init__(camera_id, n, live=True)
        self.stall_s = stall_s

    def frames(self) -> Iterator[Any]:
        yield from super().frames()
        self._closed.wait(self.stall_s)


def _runner(tmp: Path, source: Any, **kw: Any) -> tuple[Runner, list[dict[str, Any]]]:
    ready = threading.Condition()
    bus = InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(lambda r: records.append(r) if r.get("kind") == "track" else None)
    cam = camera(source.camera_id, source, ready)
    cam.selector.tracker.track_buffer_s = 0.5  # type: ignore[attr-defined]  # ends at 3.5 s
    runner = Runner(
        [cam], walker, bus, LocalEvidenceStore(tmp / "ev"), ready=ready, batch_size=3,
        track_summaries=True, **kw,
    )  # fmt: skip
    return runner, records


def _wait(check: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_a_file_gives_one_summary_per_track_at_its_end(tmp_path: Path) -> None:
    runner, records = _runner(tmp_path, ScriptedSource("a", 20))
    runner.run()
    assert len(records) == 1
    validate_track(records[0], allow_unknown=False)
    assert records[0]["camera_id"] == "a" and records[0]["direction"] == "right"
    assert records[0]["zones"] == ["middle"]


def test_a_live_camera_that_falls_silent_publishes_what_it_last_saw(tmp_path: Path) -> None:
    runner, records = _runner(tmp_path, Stalling("a", 20, stall_s=20.0))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        # the walker's last frame is at 1.9 s; the track ends 3.5 s of silence later
        assert _wait(lambda: len(records) == 1, 10.0), "published while still silent"
        assert runner.cameras[0].state not in ("ended", "failed")
    finally:
        runner.stop()
        thread.join(20)
    assert len(records) == 1  # and not again when the run stops


def test_a_camera_taken_out_publishes_its_open_tracks(tmp_path: Path) -> None:
    runner, records = _runner(tmp_path, Stalling("a", 20, stall_s=30.0), keep_running=True)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert _wait(lambda: runner.cameras and runner.cameras[0].processed >= 20, 10.0)
        runner.remove_camera("a").wait(10)
        assert len(records) == 1
    finally:
        runner.stop()
        thread.join(20)
