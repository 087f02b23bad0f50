"""The runner as a fleet worker runs it: ``keep_running`` (no camera is no reason to end),
cameras added and removed at run time (run markers first, open events closed before the
removal is reported), with scripted sources and a scripted detector (no model, no video)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from alerts.schema import is_marker, validate_marker
from argus.runner import Runner, RunResult
from detectors.detections import Detections
from ingest import SourceState
from ingest.frame import Frame
from tests.unit.test_runner import ScriptedSource, camera, walker

pytestmark = pytest.mark.unit

W, H = 160, 120
RUN_ID = str(uuid.uuid4())
IN_ZONE = 15
"""A frame of this value has the walker's person standing inside the zone (feet at x 80)."""

Records = list[dict[str, Any]]


class HoldingSource:
    """An endless live camera: a person standing in the zone, a frame every ``period_s``."""

    def __init__(self, camera_id: str, *, period_s: float = 0.004) -> None:
        self.camera_id = camera_id
        self.live = True
        self.finite = False
        self.state = SourceState.CONNECTING
        self.closed = threading.Event()
        self.yielded = 0
        self.first_wall: float | None = None
        """Wall time of the first frame decoded."""
        self._period_s = period_s

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        i = 0
        while not self.closed.is_set():
            img = np.full((H, W, 3), IN_ZONE, np.uint8)
            now = time.time()
            if self.first_wall is None:
                self.first_wall = now
            self.yielded += 1
            yield Frame(self.camera_id, i, i / 10.0, now, img)
            i += 1
            time.sleep(self._period_s)
        self.state = SourceState.ENDED

    def close(self) -> None:
        self.closed.set()

    def stats(self) -> Any:
        return None


class Harness:
    """A runner on a thread, its bus records, and helpers to watch them."""

    def __init__(
        self,
        tmp_path: Path,
        sources: Sequence[Any] = (),
        *,
        keep_running: bool = True,
        detect: Callable[[Sequence[np.ndarray]], list[Detections]] = walker,
    ) -> None:
        self.ready = threading.Condition()
        bus = InProcessBus()
        self.records: Records = []
        bus.subscribe(self.records.append)
        self.runner = Runner(
            [camera(s.camera_id, s, self.ready) for s in sources],
            detect,
            bus,
            LocalEvidenceStore(tmp_path / "ev"),
            ready=self.ready,
            batch_size=3,
            run_id=RUN_ID,
            keep_running=keep_running,
        )
        self.result: list[RunResult] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(self.runner.run()), name="runner", daemon=True
        )

    def __enter__(self) -> Harness:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the run ends on stop()"

    def add(self, source: Any) -> None:
        self.runner.add_camera(camera(source.camera_id, source, self.ready))

    def of(self, cid: str) -> Records:
        return [r for r in list(self.records) if r.get("camera_id") == cid]

    def events(self, cid: str) -> Records:
        return [r for r in self.of(cid) if not is_marker(r)]

    def markers(self, cid: str) -> Records:
        return [r for r in self.of(cid) if is_marker(r)]

    def open_events(self, cid: str) -> set[str]:
        evs = self.events(cid)
        started = {r["event_id"] for r in evs if r["end_s"] is None}
        return started - {r["event_id"] for r in evs if r["end_s"] is not None}

    def processed(self, cid: str) -> int:
        n = self.runner.health()[cid]["frames_processed"]
        assert isinstance(n, int)
        return n

    def ids(self) -> list[str]:
        return [c.camera_id for c in list(self.runner.cameras)]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def marker_time(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["wall_time"]).timestamp()


# --------------------------------------------------------------------------- keep_running


def test_without_keep_running_a_run_without_cameras_ends_at_once(tmp_path: Path) -> None:
    """The contrast for the next test: the flag is what keeps an empty run going."""
    h = Harness(tmp_path, keep_running=False)
    with h:
        h.thread.join(5)
        assert not h.thread.is_alive()
    assert h.result[0].frames == 0 and not h.result[0].interrupted


def test_keep_running_with_no_cameras_runs_until_stop(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    with h:
        time.sleep(0.4)
        assert h.thread.is_alive(), "an empty fleet worker waits for cameras"
        assert h.runner.health() == {}
    result = h.result[0]
    assert result.interrupted and result.frames == 0 and result.ok


def test_keep_running_outlives_its_last_finished_camera(tmp_path: Path) -> None:
    h = Harness(tmp_path, [ScriptedSource("file", 30)])
    with h:
        assert wait_until(lambda: h.runner.health()["file"]["state"] == "ended")
        time.sleep(0.3)
        assert h.thread.is_alive()
        evs = h.events("file")
        assert [r["end_s"] is None for r in evs] == [True, False], "completed all the same"
    assert h.result[0].frames == 30


# --------------------------------------------------------------------------- add_camera


def test_an_added_camera_runs_and_its_marker_comes_first(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    with h:
        time.sleep(0.3)  # the run started well before the camera is added
        added_at = time.time()
        source = HoldingSource("gate")
        h.add(source)
        assert wait_until(lambda: bool(h.events("gate"))), "its frames reach the rules"
        assert h.processed("gate") > 0 and h.ids() == ["gate"]
        records = h.of("gate")
        markers = h.markers("gate")
        assert len(markers) == 1 and records[0] is markers[0], "the marker before its events"
        validate_marker(markers[0])
        assert markers[0]["run_id"] == RUN_ID
        assert all(r["run_id"] == RUN_ID for r in h.events("gate"))
        started = marker_time(markers[0])
        assert added_at - 0.002 <= started <= time.time(), (started, added_at)
        assert source.first_wall is not None
        assert started <= source.first_wall, "stamped before the camera's first frame"
        assert h.runner.health()["gate"]["state"] == "streaming"
    assert source.closed.is_set(), "stop() closes an added camera too"
    assert not h.open_events("gate"), "and closes its events"


def test_added_cameras_run_beside_the_first_ones(tmp_path: Path) -> None:
    first = HoldingSource("door")
    h = Harness(tmp_path, [first])
    with h:
        assert wait_until(lambda: bool(h.events("door")))
        h.add(HoldingSource("gate"))
        assert wait_until(lambda: bool(h.events("gate")))
        assert sorted(h.ids()) == ["door", "gate"]
        before = h.processed("door")
        assert wait_until(lambda: h.processed("door") > before + 5)
    door, gate = h.markers("door"), h.markers("gate")
    assert len(door) == len(gate) == 1
    assert marker_time(gate[0]) > marker_time(door[0]), "each marker stamped when it started"


def test_adding_a_camera_id_that_runs_is_refused(tmp_path: Path) -> None:
    first = HoldingSource("gate")
    h = Harness(tmp_path, [first])
    with h:
        assert wait_until(lambda: h.processed("gate") > 3)
        second = HoldingSource("gate")
        h.add(second)
        assert second.closed.wait(5), "the second source is closed"
        time.sleep(0.1)
        assert second.yielded == 0, "and never read"
        assert h.ids() == ["gate"]
        assert h.runner.cameras[0].source is first
        assert not first.closed.is_set()
        before = h.processed("gate")
        assert wait_until(lambda: h.processed("gate") > before + 5), "the first keeps running"
        assert len(h.markers("gate")) == 1, "no marker for a camera refused"


def test_adding_a_camera_after_stop_closes_its_source(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.runner.stop()
    source = HoldingSource("gate")
    h.add(source)
    assert source.closed.is_set() and source.yielded == 0


# --------------------------------------------------------------------------- remove_camera


def test_removing_a_camera_closes_its_events_first_and_the_others_run_on(tmp_path: Path) -> None:
    gate, door = HoldingSource("gate"), HoldingSource("door")
    h = Harness(tmp_path, [gate, door])
    with h:
        assert wait_until(lambda: bool(h.open_events("gate")) and bool(h.open_events("door")))
        opened = h.open_events("gate")
        done = h.runner.remove_camera("gate")
        assert isinstance(done, threading.Event)
        assert done.wait(5), "the removal is reported"
        # read at once: the end records were published before the event was set
        ends = {r["event_id"]: r for r in h.events("gate") if r["end_s"] is not None}
        assert opened <= set(ends), "an end record for each open event"
        assert not h.open_events("gate")
        for eid in opened:
            assert ends[eid]["end_s"] >= ends[eid]["start_s"]
        assert gate.closed.is_set()
        assert "gate" not in h.runner.health() and h.ids() == ["door"]
        # its up gauge is gone, not left at 0 (which an alerting rule reads as a camera lost)
        from prometheus_client import REGISTRY

        assert REGISTRY.get_sample_value("argus_camera_up", {"camera": "gate"}) is None
        assert REGISTRY.get_sample_value("argus_camera_up", {"camera": "door"}) == 1.0

        seen = len(h.of("gate"))
        before = h.processed("door")
        assert wait_until(lambda: h.processed("door") > before + 10), "door runs on"
        assert h.runner.health()["door"]["state"] == "streaming"
        assert h.open_events("door"), "door's event stays open"
        assert len(h.of("gate")) == seen, "nothing more of the removed camera"
        assert h.thread.is_alive()
    assert door.closed.is_set() and not h.open_events("door"), "stop() ends door as usual"


def test_removing_the_last_camera_keeps_the_run_going(tmp_path: Path) -> None:
    h = Harness(tmp_path, [HoldingSource("gate")])
    with h:
        assert wait_until(lambda: h.processed("gate") > 0)
        assert h.runner.remove_camera("gate").wait(5)
        assert h.ids() == [] and h.runner.health() == {}
        time.sleep(0.3)
        assert h.thread.is_alive()
    assert h.result[0].interrupted


def test_removing_an_unknown_camera_sets_the_event_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, [HoldingSource("gate")])
    with h:
        assert wait_until(lambda: h.processed("gate") > 0)
        t0 = time.monotonic()
        assert h.runner.remove_camera("nope").wait(2)
        assert time.monotonic() - t0 < 1.0
        assert h.ids() == ["gate"]
        before = h.processed("gate")
        assert wait_until(lambda: h.processed("gate") > before)


def test_a_camera_can_be_added_again_after_removal(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    with h:
        h.add(HoldingSource("gate"))
        assert wait_until(lambda: bool(h.open_events("gate")))
        first_events = {r["event_id"] for r in h.events("gate")}
        assert h.runner.remove_camera("gate").wait(5)

        again = HoldingSource("gate")
        h.add(again)
        assert wait_until(lambda: bool(h.open_events("gate"))), "it runs again"
        assert again.yielded > 0 and h.ids() == ["gate"]
        assert h.runner.cameras[0].source is again
        markers = h.markers("gate")
        assert len(markers) == 2
        records = h.of("gate")
        second_marker = records.index(markers[1])
        later = {r["event_id"] for r in records[second_marker + 1 :] if not is_marker(r)}
        assert later and later.isdisjoint(first_events), "new events, new ids"
        assert all(
            r["event_id"] in first_events for r in records[:second_marker] if not is_marker(r)
        ), "the first run's records all came before the second marker"


class Valve:
    """The walker, held while ``open`` is clear (the detector loop then waits on it)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.open.wait(10)
        return walker(images)


def test_every_caller_removing_a_camera_is_told_when_it_is_out(tmp_path: Path) -> None:
    valve = Valve()
    h = Harness(tmp_path, [HoldingSource("gate")], detect=valve)
    with h:
        assert wait_until(lambda: h.processed("gate") > 0)
        valve.open.clear()
        time.sleep(0.3)  # the loop now waits on the detector: both removals queue up
        first = h.runner.remove_camera("gate")
        second = h.runner.remove_camera("gate")
        valve.open.set()
        assert second.wait(5) and h.ids() == []
        assert first.wait(2), "the first caller is told too"
