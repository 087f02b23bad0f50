"""The runner's evidence: each new event's snapshot comes with a copy whose people are
blurred, and (with a clip maker and the camera's packet ring) a clip asked for and its key
on the record.  Scripted source and detector, as in test_runner.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from alerts.bus import InProcessBus
from alerts.clips import ClipMaker
from alerts.evidence import LocalEvidenceStore, masked_key
from alerts.masking import WHOLE_PICTURE, sharpness
from argus.app import clip_maker
from argus.config import parse_config
from argus.runner import Runner
from ingest import SourceState
from ingest.frame import Frame
from ingest.packets import PacketRing
from tests.unit.test_runner import H, W, camera, walker

pytestmark = pytest.mark.unit


class TexturedSource:
    """Frames of a fine checkerboard (sharp everywhere); frame i's first pixel says i (the
    scripted ``walker`` detector reads it)."""

    def __init__(self, camera_id: str, n: int) -> None:
        self.camera_id, self.live, self.finite = camera_id, False, True
        self.state = SourceState.CONNECTING
        self._n = n

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        yy, xx = np.mgrid[0:H, 0:W]
        board = np.where(((yy // 2 + xx // 2) % 2)[..., None] == 0, 40, 220).astype(np.uint8)
        for i in range(self._n):
            img = np.repeat(board, 3, axis=2).copy()
            img[0, 0] = i
            yield Frame(self.camera_id, i, i / 10.0, time.time(), img)
        self.state = SourceState.ENDED

    def close(self) -> None:
        pass

    def stats(self) -> Any:
        return None


def gray_jpeg(data: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return np.asarray(image, np.uint8)


def run(tmp_path: Path, **kw: Any) -> tuple[list[dict[str, Any]], LocalEvidenceStore]:
    ready = threading.Condition()
    bus = InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(records.append)
    cam = camera("a", TexturedSource("a", 30), ready)  # type: ignore[arg-type]
    cam.packets = kw.pop("packets", None)
    store = LocalEvidenceStore(tmp_path / "ev")
    kw.setdefault("person_ids", [0])
    runner = Runner([cam], walker, bus, store, ready=ready, **kw)
    assert runner.run().ok
    return records, store


def test_the_masked_snapshot_blurs_the_person_and_the_original_keeps_them(tmp_path: Path) -> None:
    records, store = run(tmp_path)
    start = records[0]
    assert start["end_s"] is None and "clip" not in start  # no clip maker: no clip
    key = start["snapshot"]
    original, masked = (gray_jpeg(store.get(k)) for k in (key, masked_key(key)))
    i = round(start["start_s"] * 10)  # the walker's box in the start frame, inside its frame
    x1, y1, x2, y2 = 10 + 4 * i + 3, 43, 10 + 4 * i + 17, 97
    inside = (slice(y1, y2), slice(x1, x2))
    assert sharpness(masked[inside]) < 0.2 * sharpness(original[inside])
    far = (slice(5, 30), slice(0, 8)) if x1 > 40 else (slice(5, 30), slice(W - 8, W))
    assert sharpness(masked[far]) == pytest.approx(sharpness(original[far]), rel=0.05)


def test_a_new_event_asks_for_its_clip_and_carries_its_key(tmp_path: Path) -> None:
    asked: list[dict[str, Any]] = []

    class Recorder(ClipMaker):
        def request(self, ring: PacketRing, **kw: Any) -> None:
            asked.append(kw)

    class Usable(PacketRing):  # as a real stream's ring is (the scripted source has none)
        @property
        def usable(self) -> bool:
            return True

    ring = Usable("a", keep_s=16, max_bytes=1 << 20)
    maker = Recorder(LocalEvidenceStore(tmp_path / "c"), detector=None, person_ids=[0])
    records, _ = run(tmp_path, packets=ring, clips=maker)
    start, end = records
    assert start["clip"] == start["snapshot"][: -len(".jpg")] + ".mp4"
    assert "clip" not in end  # the store keeps the start record's
    (only,) = asked  # one clip per event, asked when it starts
    assert only["event_id"] == start["event_id"] and only["key"] == start["clip"]
    assert only["start_s"] == start["start_s"] and only["raised_s"] == pytest.approx(1.3)


def test_no_clip_is_asked_for_a_stream_clips_cannot_be_cut_from(tmp_path: Path) -> None:
    asked: list[dict[str, Any]] = []

    class Recorder(ClipMaker):
        def request(self, ring: PacketRing, **kw: Any) -> None:
            asked.append(kw)

    ring = PacketRing("a", keep_s=16, max_bytes=1 << 20)  # never a packet: no timestamps
    maker = Recorder(LocalEvidenceStore(tmp_path / "c"), detector=None, person_ids=[0])
    records, _ = run(tmp_path, packets=ring, clips=maker)
    assert records and all("clip" not in r for r in records) and asked == []


def test_who_is_blurred_on_a_frame_the_live_detector_skipped(tmp_path: Path) -> None:
    frame = next(TexturedSource("a", 1).frames())
    none = walker([frame.image])[0][:0]
    seen = np.array([[5, 5, 25, 45]], np.float32)

    class Masking(ClipMaker):  # the clip maker's own detector, asked for the snapshot
        def people(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
            return seen

    maker = Masking(LocalEvidenceStore(tmp_path / "c"), detector=None, person_ids=[0])
    store = LocalEvidenceStore(tmp_path / "ev")
    with_maker = Runner(
        [], walker, InProcessBus(), store, ready=threading.Condition(), person_ids=[0], clips=maker
    )
    without = Runner([], walker, InProcessBus(), store, ready=threading.Condition(), person_ids=[0])
    # the frame went through the detector: its people (none here) are all there is
    assert len(with_maker._people(frame, none, none, detected=True)) == 0
    # skipped: the masking detector is asked; with none to ask, the whole picture goes
    assert np.array_equal(with_maker._people(frame, none, none, detected=False), seen)
    assert np.array_equal(without._people(frame, none, none, detected=False), WHOLE_PICTURE)


def test_a_model_without_people_makes_no_masked_copy_nor_clips(tmp_path: Path) -> None:
    # nothing could be blurred: a "masked" copy would show everyone, so there is none
    # (operators get a 404 that says so; supervisors see the original)
    records, store = run(tmp_path, person_ids=[])
    key = records[0]["snapshot"]
    assert store.exists(key) and not store.exists(masked_key(key))
    cfg = parse_config({"cameras": [{"id": "a", "source": "x.mp4"}], "rules": []})
    assert clip_maker(cfg, store, ["car", "truck"], tmp_path, "<test>") is None
