"""The runner and its slots, with scripted sources and a scripted detector (no model, no video)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from argus.runner import CameraRuntime, Runner
from argus.slots import FrameSlot
from detectors.detections import Detections
from ingest import SourceError, SourceState
from ingest.frame import Frame
from selector.camera import CameraSelector
from selector.rules.intrusion import IntrusionRule
from selector.tracker import ByteTracker
from selector.zones import PolygonZone

pytestmark = pytest.mark.unit

W, H = 160, 120
NAMES = ("person", "car")


class ScriptedSource:
    """A finite source of blank frames; optionally fails after ``fail_after`` frames."""

    def __init__(
        self, camera_id: str, n: int, *, fail_after: int | None = None, live: bool = False
    ) -> None:
        self.camera_id = camera_id
        self.live = live
        self.finite = True
        self.state = SourceState.CONNECTING
        self._n = n
        self._fail_after = fail_after
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        for i in range(self._n):
            if self._closed.is_set():
                return
            if self._fail_after is not None and i == self._fail_after:
                self.state = SourceState.FAILED
                raise SourceError(f"camera {self.camera_id} unplugged")
            # The frame's value encodes (camera, seq) for the scripted detector.
            img = np.full((H, W, 3), i % 256, np.uint8)
            yield Frame(self.camera_id, i, i / 10.0, time.time(), img)
        self.state = SourceState.ENDED

    def close(self) -> None:
        self._closed.set()

    def stats(self) -> Any:
        return None


def walker(images: Sequence[np.ndarray]) -> list[Detections]:
    """One person walking right 4 px per frame; frame i is recognised by its pixel value."""
    out = []
    for img in images:
        i = int(img[0, 0, 0])
        x = 10.0 + 4.0 * i
        out.append(
            Detections(
                xyxy=np.array([[x, 40.0, x + 20.0, 100.0]], np.float32),
                score=np.array([0.9], np.float32),
                class_id=np.array([0], np.int64),
                names=NAMES,
            )
        )
    return out


def camera(cid: str, source: Any, ready: threading.Condition) -> CameraRuntime:
    """One camera of any scripted source: an intrusion rule on the middle band of the frame."""
    zone = PolygonZone("middle", [[60, 0], [100, 0], [100, H], [60, H]])
    rule = IntrusionRule(
        rule_id="intrusion:middle",
        camera_id=cid,
        zone=zone,
        classes={0},
        class_names=NAMES,
        min_dwell_s=0.3,
    )
    sel = CameraSelector(cid, ByteTracker(frame_rate=10.0), [rule])
    return CameraRuntime(
        camera_id=cid,
        source=source,
        selector=sel,
        slot=FrameSlot(4, "block", ready),
        zones={"middle": zone},
    )


def make_runner(
    tmp_path: Path, sources: list[ScriptedSource], detect: Any = walker
) -> tuple[Runner, list[dict[str, Any]]]:
    ready = threading.Condition()
    bus = InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(records.append)
    cams = [camera(s.camera_id, s, ready) for s in sources]
    runner = Runner(
        cams, detect, bus, LocalEvidenceStore(tmp_path / "ev"), ready=ready, batch_size=3
    )
    return runner, records


def test_every_frame_processed_and_events_start_and_end(tmp_path: Path) -> None:
    runner, records = make_runner(tmp_path, [ScriptedSource("a", 30), ScriptedSource("b", 30)])
    result = runner.run()
    assert result.ok and result.frames == 60 and not result.interrupted
    for cid in ("a", "b"):
        mine = [r for r in records if r["camera_id"] == cid]
        # The walker's feet (x centre = 20 + 4i) are in [60, 100] for i = 10..20.
        assert len(mine) == 2, mine
        start, end = mine
        assert start["end_s"] is None and end["end_s"] is not None
        assert start["event_id"] == end["event_id"]
        assert start["start_s"] == pytest.approx(1.3, abs=0.11)  # entry 1.0 s + 0.3 s dwell
        assert end["end_s"] == pytest.approx(2.0, abs=0.11)
        assert start["snapshot"] and end["snapshot"] == start["snapshot"]
        assert (tmp_path / "ev" / start["snapshot"]).is_file()


def test_event_ids_repeat_for_file_replays_but_not_across_live_runs(tmp_path: Path) -> None:
    def ids(live: bool, sub: str) -> list[str]:
        runner, records = make_runner(tmp_path / sub, [ScriptedSource("a", 30, live=live)])
        runner.run()
        return [r["event_id"] for r in records]

    assert ids(False, "f1") == ids(False, "f2"), "same footage and config, same ids"
    first = ids(True, "l1")
    time.sleep(0.01)
    assert set(first).isdisjoint(ids(True, "l2")), "a restarted live camera gets new ids"


def test_failed_camera_does_not_stop_the_others(tmp_path: Path) -> None:
    runner, records = make_runner(
        tmp_path, [ScriptedSource("good", 30), ScriptedSource("bad", 30, fail_after=16)]
    )
    result = runner.run()
    assert not result.ok and set(result.failed) == {"bad"}
    assert "unplugged" in result.failed["bad"]
    assert result.frames == 30 + 16
    # The failed camera's event (started 1.3 s) is closed at its last frame's time (1.5 s).
    bad = [r for r in records if r["camera_id"] == "bad"]
    assert [r["end_s"] is None for r in bad] == [True, False]
    assert bad[1]["end_s"] == pytest.approx(1.5)
    assert len([r for r in records if r["camera_id"] == "good"]) == 2
    assert runner.health()["bad"]["state"] == "failed"


def test_stop_closes_open_events_and_reports_interrupted(tmp_path: Path) -> None:
    src = ScriptedSource("a", 10_000)
    runner, records = make_runner(tmp_path, [src])
    t = threading.Thread(target=runner.run)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not records:
        time.sleep(0.01)
    runner.stop()
    t.join(10)
    assert not t.is_alive()
    starts = {r["event_id"] for r in records if r["end_s"] is None}
    ends = {r["event_id"] for r in records if r["end_s"] is not None}
    assert starts and starts == ends


def test_drop_oldest_slot_keeps_newest_and_counts() -> None:
    ready = threading.Condition()
    slot = FrameSlot(1, "drop_oldest", ready)
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        assert slot.put(Frame("c", i, i / 10, 0.0, img))
    assert slot.dropped == 4
    got = slot.take()
    assert got is not None and got.seq == 4
    assert slot.take() is None


def test_block_slot_never_drops_and_waits_for_the_consumer() -> None:
    ready = threading.Condition()
    slot = FrameSlot(2, "block", ready)
    img = np.zeros((2, 2, 3), np.uint8)
    produced: list[int] = []

    def produce() -> None:
        for i in range(6):
            slot.put(Frame("c", i, i / 10, 0.0, img))
            produced.append(i)
        slot.close()

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.2)
    assert produced == [0, 1], "the producer waits while the slot is full"
    seen = []
    while not slot.exhausted:
        f = slot.take()
        if f is None:
            time.sleep(0.01)
            continue
        seen.append(f.seq)
    t.join(5)
    assert seen == [0, 1, 2, 3, 4, 5] and slot.dropped == 0


def test_closed_slot_refuses_frames() -> None:
    slot = FrameSlot(1, "block", threading.Condition())
    slot.close()
    assert not slot.put(Frame("c", 0, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8)))
    assert slot.exhausted
    with pytest.raises(ValueError, match="capacity"):
        FrameSlot(0, "block", threading.Condition())


def test_a_finished_camera_is_completed_while_others_keep_streaming(tmp_path: Path) -> None:
    """A file that ends beside an endless camera gets its events closed at once."""
    endless = ScriptedSource("cam", 10**9, live=True)
    runner, records = make_runner(tmp_path, [ScriptedSource("file", 30), endless])
    t = threading.Thread(target=runner.run)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and runner.health()["file"]["state"] != "ended":
            time.sleep(0.02)
        assert runner.health()["file"]["state"] == "ended"
        mine = [r for r in records if r["camera_id"] == "file"]
        assert [r["end_s"] is None for r in mine] == [True, False], "closed while cam streams"
        assert runner.health()["cam"]["state"] == "streaming"
    finally:
        runner.stop()
        t.join(10)
    assert not t.is_alive()


def test_detector_errors_are_survived_then_give_up(tmp_path: Path) -> None:
    sizes: list[int] = []

    def flaky(images: Sequence[np.ndarray]) -> list[Detections]:
        sizes.append(len(images))
        if len(sizes) == 2:
            raise RuntimeError("CUDA out of memory (once)")
        return walker(images)

    runner, records = make_runner(tmp_path, [ScriptedSource("a", 30)], flaky)
    result = runner.run()
    # the batch grows while inference is busy, so its size depends on timing: whatever it
    # held is lost, every other frame goes on
    assert result.ok and result.frames == 30 - sizes[1], "one failed batch, then on"
    assert records

    def broken(images: Sequence[np.ndarray]) -> list[Detections]:
        raise RuntimeError("model file vanished")

    runner, _ = make_runner(tmp_path / "b", [ScriptedSource("a", 10**6)], broken)
    result = runner.run()
    assert not result.ok and result.fatal and "vanished" in result.fatal


def test_different_recordings_under_one_camera_id_get_different_ids(tmp_path: Path) -> None:
    """Monday's and Tuesday's files of camera 'gate' must not collide in the store."""
    from ingest import source_fingerprint

    monday, tuesday = tmp_path / "mon.avi", tmp_path / "tue.avi"
    monday.write_bytes(b"recording one" * 1000)
    tuesday.write_bytes(b"recording two" * 1000)

    def ids(path: Path, sub: str) -> list[str]:
        runner, records = make_runner(tmp_path / sub, [ScriptedSource("gate", 30)])
        runner.cameras[0].stream_id = source_fingerprint(str(path))  # as app.py does
        runner.run()
        return [r["event_id"] for r in records]

    assert ids(monday, "a") == ids(monday, "b")
    assert set(ids(monday, "c")).isdisjoint(ids(tuesday, "d"))


def test_take_if_takes_the_oldest_frame_only_when_accepted() -> None:
    slot: FrameSlot[int] = FrameSlot(3, "block", threading.Condition())
    for i in (1, 2):
        slot.put(i)
    assert slot.take_if(lambda v: v > 1) is None and len(slot) == 2  # 1 stays, first
    assert slot.take_if(lambda v: v == 1) == 1 and slot.take() == 2
    assert slot.take_if(lambda v: True) is None


class StagedWalker:
    """The walker as detector stages; records which thread ran each stage."""

    def __init__(self) -> None:
        self.threads: dict[str, set[str]] = {"prepare": set(), "infer": set(), "finish": set()}
        self.batches: list[int] = []

    def _seen(self, stage: str) -> None:
        self.threads[stage].add(threading.current_thread().name)

    def prepare(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._seen("prepare")
        self.batches.append(len(images))
        return list(images)

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        self._seen("infer")
        time.sleep(0.002)  # the network: another batch is prepared meanwhile
        return walker(images)

    def finish(self, dets: list[Detections]) -> list[Detections]:
        self._seen("finish")
        return dets


def test_staged_detector_infers_on_its_own_thread_with_the_same_events(tmp_path: Path) -> None:
    """Stage 2 runs on the inference thread while the loop prepares the next batch and
    finishes the last: the events are those of the plain callable, frame for frame."""

    def records_of(detect: Any, sub: str) -> list[tuple[str, str, float, float]]:
        sources = [ScriptedSource(c, 40) for c in ("a", "b", "c")]
        runner, records = make_runner(tmp_path / sub, sources, detect)
        result = runner.run()
        assert result.ok and result.frames == 120 and result.detected == 120
        return sorted(
            (r["camera_id"], r["event_id"], r["start_s"], r["end_s"] or -1.0) for r in records
        )

    staged = StagedWalker()
    loop = threading.Thread(target=lambda: out.append(records_of(staged, "s")), name="loop")
    out: list[list[tuple[str, str, float, float]]] = []
    loop.start()
    loop.join()
    assert out[0] == records_of(walker, "p") and len(out[0]) == 6
    assert staged.threads["prepare"] == staged.threads["finish"] == {"loop"}
    assert len(staged.threads["infer"]) == 1
    assert staged.threads["infer"].pop().startswith("inference")
    assert sum(staged.batches) == 120 and max(staged.batches) <= 3


def test_a_put_may_hold_fewer_than_the_capacity() -> None:
    """A quiet camera's decoder stays one frame ahead: ``put(frame, 1)`` into a block slot
    waits until the slot is empty."""
    slot: FrameSlot[int] = FrameSlot(4, "block", threading.Condition())
    assert slot.put(1, 1)
    done = threading.Event()
    t = threading.Thread(target=lambda: (slot.put(2, 1), done.set()), daemon=True)
    t.start()
    assert not done.wait(0.2) and len(slot) == 1  # blocked: one frame held already
    assert slot.take() == 1
    assert done.wait(2.0) and slot.take() == 2
    assert slot.put(3) and slot.put(4) and len(slot) == 2  # the full capacity otherwise
