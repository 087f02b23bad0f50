"""CameraSelector: tracker then rules, with rule failures isolated."""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import pytest

from detectors.detections import Detections
from selector.camera import CameraSelector
from selector.event import Event
from selector.rules import FrameInfo, IntrusionRule
from selector.tracker import ByteTracker
from selector.zones import PolygonZone

pytestmark = pytest.mark.unit

CAM = "plaza"
ZONE = PolygonZone("crossing", [(100, 100), (300, 100), (300, 300), (100, 300)])


class BrokenRule:
    """A rule that fails on every call (a fake, to test isolation)."""

    rule_id = "broken:1"

    def __init__(self) -> None:
        self.calls = 0

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        self.calls += 1
        raise KeyError("boom")

    def close_all(self, end_s: float) -> list[Event]:
        raise RuntimeError("boom at close")


def frame(k: int) -> FrameInfo:
    return FrameInfo(CAM, k, k / 10, 1_700_000_000.0 + k / 10, 768, 576)


def walker_in_zone(k: int) -> Detections:
    """One person walking slowly inside the zone (ground point inside)."""
    x = 150 + 2 * k
    return Detections(
        xyxy=np.array([[x, 150, x + 40, 250]], np.float32),
        score=np.array([0.9], np.float32),
        class_id=np.array([0], np.int64),
        names=("person",),
    )


def intrusion(**kw: float) -> IntrusionRule:
    return IntrusionRule(
        "intrusion:crossing",
        CAM,
        ZONE,
        classes={0},
        class_names=("person",),
        min_dwell_s=kw.get("min_dwell_s", 1.0),
        exit_grace_s=kw.get("exit_grace_s", 1.0),
    )


def test_raising_rule_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    broken = BrokenRule()
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [broken, intrusion()])
    events: list[Event] = []
    with caplog.at_level(logging.ERROR, logger="selector.camera"):
        for k in range(20):
            tracks, evs = sel.update(walker_in_zone(k), frame(k))
            events += evs
    assert broken.calls == 20
    assert tracks.tracker_id.tolist() == [1]
    # Confirmed at frame 1 (min_hits=2), dwell of 1.0 s met at frame 11.
    assert [(e.track_id, e.start_seq, e.end_s) for e in events] == [(1, 11, None)]
    failures = [r for r in caplog.records if "rule failed" in r.getMessage()]
    assert len(failures) == 20
    assert "camera=plaza" in failures[0].getMessage()
    assert "rule=broken:1" in failures[0].getMessage()
    assert failures[0].exc_info is not None

    with caplog.at_level(logging.ERROR, logger="selector.camera"):
        closed = sel.close_all(1.9)
    assert [e.event_id for e in closed] == [events[0].event_id]
    assert closed[0].end_s is not None and round(closed[0].end_s, 6) == 1.9
    assert any(
        "rule=broken:1" in r.getMessage() for r in caplog.records if "close" in r.getMessage()
    )


def test_tracker_removal_reaches_rules() -> None:
    # The tracker forgets after 0.5 s, before the rule's 5 s grace would end the stay.
    sel = CameraSelector(
        CAM, ByteTracker(frame_rate=10.0, track_buffer_s=0.5), [intrusion(exit_grace_s=5.0)]
    )
    got: list[tuple[int, Event]] = []
    for k in range(40):
        dets = walker_in_zone(k) if k < 20 else Detections.empty(("person",))
        got += [(k, e) for e in sel.update(dets, frame(k))[1]]
    # Last seen at 1.9 s; removed at the first frame more than 0.5 s later: 2.5 s (seq 25).
    ends = [None if e.end_s is None else round(e.end_s, 6) for _, e in got]
    assert [(k, e.start_seq) for k, e in got] == [(11, 11), (25, 11)]
    assert ends == [None, 1.9]
    assert sel.tracker.lost_ids == []


def test_frame_of_other_camera_and_duplicate_rule_ids_refused() -> None:
    sel = CameraSelector(CAM, ByteTracker(), [intrusion()])
    with pytest.raises(ValueError, match="gate"):
        sel.update(Detections.empty(), FrameInfo("gate", 0, 0.0, 0.0, 768, 576))
    with pytest.raises(ValueError, match="duplicate rule ids"):
        CameraSelector(CAM, ByteTracker(), [intrusion(), intrusion()])
