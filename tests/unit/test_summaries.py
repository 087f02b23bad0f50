"""Track summaries (``argus.summaries``): one record per track when it ends, with what it
was, where it went and what it looked like; scripted tracks on painted frames."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from alerts.evidence import masked_key
from alerts.schema import validate_bus_record
from argus.summaries import TrackSummarizer, _direction, _label, track_uid
from detectors.detections import Detections
from selector.zones import PolygonZone

pytestmark = pytest.mark.unit

NAMES = ("person", "bicycle", "car")
W, H = 640, 480
RED, BLACK, BLUE, WHITE = (30, 30, 200), (20, 20, 20), (200, 60, 30), (235, 235, 235)
T0 = 1_714_557_600.0


def _frame(
    boxes: list[
        tuple[tuple[float, float, float, float], tuple[int, int, int], tuple[int, int, int]]
    ],
) -> np.ndarray:
    """A grey picture with each box painted: its top half one colour, its bottom another."""
    img = np.full((H, W, 3), 128, np.uint8)
    for (x1, y1, x2, y2), top, bottom in boxes:
        mid = int(y1 + 0.52 * (y2 - y1))
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), mid), top, -1)
        cv2.rectangle(img, (int(x1), mid), (int(x2), int(y2)), bottom, -1)
    return img


def _dets(rows: list[tuple[int, int, tuple[float, float, float, float]]]) -> Detections:
    """Tracks ``(tracker_id, class_id, box)``."""
    if not rows:
        return Detections.empty(NAMES)
    return Detections(
        xyxy=np.array([r[2] for r in rows], np.float32),
        score=np.full(len(rows), 0.8, np.float32),
        class_id=np.array([r[1] for r in rows], np.int64),
        tracker_id=np.array([r[0] for r in rows], np.int64),
        names=NAMES,
    )


class _Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}

    def publish(self, record: dict[str, Any]) -> None:
        validate_bus_record(record, allow_unknown=False)
        self.records.append(record)

    def put(self, key: str, data: bytes) -> None:
        self.files[key] = data


def _summarizer(sink: _Sink, **kw: Any) -> TrackSummarizer:
    s = TrackSummarizer(
        "cam-1",
        publish=sink.publish,
        store_thumbnail=sink.put,
        zones={"door": PolygonZone("door", [[400, 300], [640, 300], [640, 480], [400, 480]])},
        person_ids=frozenset({0}),
        run_id="12345678-1234-4234-8234-123456789abc",
        **kw,
    )
    s.stream_id = "s1"
    s.set_frame_size(W, H)
    return s


def _walk(
    s: TrackSummarizer,
    frames: int,
    box_at: Any,
    top: Any,
    bottom: Any,
    cls: int = 0,
    tid: int = 7,
    t0: float = 0.0,
) -> float:
    t = t0
    for k in range(frames):
        t = t0 + k * 0.1
        box = box_at(k)
        s.observe(_frame([(box, top, bottom)]), _dets([(tid, cls, box)]), t, T0 + t)
    return t


def test_a_person_walking_right_gets_one_summary_when_the_track_ends() -> None:
    sink = _Sink()
    s = _summarizer(sink)
    t = _walk(s, 40, lambda k: (50 + 10 * k, 200, 110 + 10 * k, 380), RED, BLACK)
    assert sink.records == []  # still being followed
    s.tick(t + 5.0)
    assert sink.records == []  # within the tracker's buffer
    s.tick(t + 7.0)
    assert len(sink.records) == 1
    r = sink.records[0]
    assert r["track_uid"] == track_uid("cam-1", "s1", 7)
    assert r["label"] == "person" and r["direction"] == "right"
    assert r["colours"] == {"upper": "red", "lower": "black"}
    assert r["shares"]["upper"] > 0.8 and r["shares"]["lower"] > 0.8
    assert r["zones"] == ["door"]  # the feet reached x >= 400 at the bottom
    assert r["first_seen"].startswith("2024-05-01T10:00:00")
    assert r["last_s"] == pytest.approx(3.9)
    assert r["samples"] == 8  # every 0.5 s over 4 s
    assert r["size"]["height_px"] == pytest.approx(180.0)
    assert r["size"]["height_frac"] == pytest.approx(180 / H, abs=1e-3)
    assert r["run_id"].startswith("12345678")
    vec = r["appearance"]
    assert len(vec) == 33 and sum(vec[:11]) == pytest.approx(1.0, abs=0.01)
    assert sum(vec[22:]) == 0.0  # no body part for a person
    key = r["thumbnail"]
    assert key.startswith("cam-1/2024-05-01/track-") and key in sink.files
    assert masked_key(key) in sink.files
    original = cv2.imdecode(np.frombuffer(sink.files[key], np.uint8), cv2.IMREAD_COLOR)
    masked = cv2.imdecode(np.frombuffer(sink.files[masked_key(key)], np.uint8), cv2.IMREAD_COLOR)
    assert original.shape == masked.shape and original.shape[0] <= 160
    # the masked copy blurs it all: the sharp edge between red top and black trousers is
    # gone
    edge = lambda img: float(np.abs(np.diff(img.astype(np.int16), axis=0)).max())  # noqa: E731
    assert edge(masked) < 0.5 * edge(original)


@pytest.mark.parametrize(
    ("start", "end", "height", "want"),
    [
        ((100, 300), (400, 320), 100, "right"),
        ((400, 300), (100, 280), 100, "left"),
        ((300, 400), (310, 150), 100, "up"),
        ((300, 150), (290, 400), 100, "down"),
        ((300, 300), (350, 330), 100, "still"),
    ],
)
def test_the_direction_is_the_dominant_axis_of_the_net_move(
    start: tuple[float, float], end: tuple[float, float], height: float, want: str
) -> None:
    assert _direction(start, end, height) == want


def test_a_vehicle_gets_a_body_colour_and_no_upper_or_lower() -> None:
    sink = _Sink()
    s = _summarizer(sink)
    _walk(s, 20, lambda k: (300 - 5 * k, 100, 420 - 5 * k, 180), BLUE, BLUE, cls=2)
    s.finish()
    (r,) = sink.records
    assert r["label"] == "car" and r["colours"] == {"body": "blue"}
    assert sum(r["appearance"][:22]) == 0.0 and sum(r["appearance"][22:]) == pytest.approx(
        1.0, abs=0.01
    )


def test_flickers_are_dropped_and_finish_publishes_the_rest() -> None:
    sink = _Sink()
    s = _summarizer(sink)
    _walk(s, 2, lambda k: (10, 10, 60, 120), WHITE, BLUE, tid=1)
    _walk(s, 10, lambda k: (200, 100, 260, 260), WHITE, BLUE, tid=2, t0=0.5)
    s.finish()
    assert [r["track_id"] for r in sink.records] == [2]
    assert s.dropped == 1 and s.published == 1 and s.open_tracks == 0
    assert sink.records[0]["colours"] == {"upper": "white", "lower": "blue"}
    assert sink.records[0]["direction"] == "still"


def test_boxes_cut_by_the_edge_or_too_small_give_no_colours_or_thumbnail() -> None:
    sink = _Sink()
    s = _summarizer(sink)
    _walk(s, 10, lambda k: (0, 100, 60, 300), RED, BLACK, tid=3)  # touches the left edge
    _walk(s, 10, lambda k: (300, 100, 310, 115), RED, BLACK, tid=4)  # 15 px tall
    s.finish()
    for r in sink.records:
        assert r["colours"] == {} and r["samples"] == 0 and "thumbnail" not in r


def test_the_masked_thumbnail_of_anything_is_blurred_all_over() -> None:
    """A car's thumbnail may hold people the detector did not see as people: its masked
    copy is blurred as a whole, not only where tracked people are."""
    sink = _Sink()
    s = _summarizer(sink)
    chequer = (np.indices((H, W)).sum(axis=0) // 4 % 2 * 255).astype(np.uint8)
    base = np.dstack([chequer] * 3)
    box = (200.0, 100.0, 400.0, 220.0)
    for k in range(5):
        s.observe(base, _dets([(9, 2, box)]), k * 0.1, T0 + k * 0.1)
    s.finish()
    (r,) = sink.records
    masked = cv2.imdecode(np.frombuffer(sink.files[masked_key(r["thumbnail"])], np.uint8), 1)
    original = cv2.imdecode(np.frombuffer(sink.files[r["thumbnail"]], np.uint8), 1)
    assert float(original.std()) > 80  # the chequer's fine detail ...
    assert float(masked.std()) < 20  # ... is gone everywhere in the masked copy


def test_a_failing_bus_or_evidence_store_never_reaches_the_camera() -> None:
    def refuse(record: dict[str, Any]) -> None:
        raise RuntimeError("bus down")

    def broken_put(key: str, data: bytes) -> None:
        raise OSError("disk full")

    s = TrackSummarizer("cam-1", publish=refuse, store_thumbnail=broken_put)
    s.set_frame_size(W, H)
    _walk(s, 10, lambda k: (200, 100, 260, 260), RED, BLACK)
    s.finish()  # logged, not raised
    assert s.published == 0

    sink = _Sink()
    s = TrackSummarizer("cam-1", publish=sink.publish, store_thumbnail=broken_put)
    s.set_frame_size(W, H)
    _walk(s, 10, lambda k: (200, 100, 260, 260), RED, BLACK)
    s.finish()
    assert len(sink.records) == 1 and "thumbnail" not in sink.records[0]


def test_labels_become_what_the_schema_accepts() -> None:
    assert _label(("Person", "traffic light", "über!", "9lives"), 0) == "person"
    assert _label(("Person", "traffic light"), 1) == "traffic light"
    assert _label(("über!",), 0) == "ber"
    assert _label(("9lives",), 0) == "class-0"
    assert _label((), 5) == "class-5"


def _sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey picture (fine detail)."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_a_large_persons_masked_thumbnail_is_as_blurred_as_a_small_ones() -> None:
    """The crop is scaled down before it is blurred: a blur made at full size and scaled
    down with the crop would leave a 1600 px person legible."""
    detail = []
    for height in (150, 1600):
        sink = _Sink()
        s = TrackSummarizer("cam-1", publish=sink.publish, store_thumbnail=sink.put)
        h, w = height + 200, height
        s.set_frame_size(w, h)
        img = np.full((h, w, 3), 128, np.uint8)
        for y in range(100, 100 + height, max(4, height // 40)):  # fine stripes: a face's detail
            img[y : y + max(2, height // 80), w // 4 : 3 * w // 4] = 250
        box = (w / 4, 100.0, 3 * w / 4, 100.0 + height)
        for k in range(4):
            s.observe(img, _dets([(1, 0, box)]), k * 0.1, T0 + k * 0.1)
        s.finish()
        key = sink.records[0]["thumbnail"]
        masked = cv2.imdecode(np.frombuffer(sink.files[masked_key(key)], np.uint8), 1)
        original = cv2.imdecode(np.frombuffer(sink.files[key], np.uint8), 1)
        detail.append(_sharpness(masked) / max(_sharpness(original), 1e-6))
    assert max(detail) < 0.1, detail


def test_broken_boxes_are_skipped_and_zones_are_capped() -> None:
    sink = _Sink()
    zones = {f"z{i}": PolygonZone(f"z{i}", [[0, 0], [W, 0], [W, H], [0, H]]) for i in range(70)}
    s = TrackSummarizer("cam-1", publish=sink.publish, store_thumbnail=sink.put, zones=zones)
    s.set_frame_size(W, H)
    nan = float("nan")
    for k in range(5):
        img = _frame([((200, 100, 260, 260), RED, BLACK)])
        dets = Detections(
            xyxy=np.array([[200, 100, 260, 260], [nan, 1, 2, 3], [50, 50, 40, 60]], np.float32),
            score=np.full(3, 0.8, np.float32),
            class_id=np.zeros(3, np.int64),
            tracker_id=np.array([1, 2, 3], np.int64),
            names=NAMES,
        )
        s.observe(img, dets, k * 0.1, T0 + k * 0.1)
    s.finish()
    assert [r["track_id"] for r in sink.records] == [1]  # validated on publish (_Sink)
    assert len(sink.records[0]["zones"]) == 64


def test_a_long_track_is_searchable_while_it_lasts() -> None:
    """Someone waiting for a long time is published as they stand every interim period; the
    final summary, with the same uid, replaces those."""
    sink = _Sink()
    s = _summarizer(sink, interim_every_s=2.0)
    _walk(s, 45, lambda k: (200, 100, 260, 260), WHITE, BLUE)  # 4.4 s, standing
    assert len(sink.records) == 2  # at 2 s and at 4 s
    assert sink.records[0]["last_s"] == pytest.approx(2.0)
    assert sink.records[1]["last_s"] == pytest.approx(4.0)
    s.finish()
    assert len(sink.records) == 3 and s.published == 1
    assert len({r["track_uid"] for r in sink.records}) == 1
    assert sink.records[-1]["last_s"] == pytest.approx(4.4)
    assert sink.records[-1]["thumbnail"] == sink.records[0]["thumbnail"]  # replaced in place


def test_what_is_summarised_is_counted_in_the_metrics() -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    cam = "cam-metrics"
    before = {
        o: value("argus_track_summaries_total", camera=cam, outcome=o)
        for o in ("published", "flicker")
    }
    cpu = value("argus_index_cpu_seconds_total", camera=cam)
    sink = _Sink()
    s = TrackSummarizer(cam, publish=sink.publish, store_thumbnail=sink.put)
    s.set_frame_size(W, H)
    _walk(s, 2, lambda k: (10, 10, 60, 120), WHITE, BLUE, tid=1)
    _walk(s, 10, lambda k: (200, 100, 260, 260), RED, BLACK, tid=2, t0=0.5)
    s.finish()
    assert value("argus_track_summaries_total", camera=cam, outcome="published") == (
        before["published"] + 1
    )
    assert value("argus_track_summaries_total", camera=cam, outcome="flicker") == (
        before["flicker"] + 1
    )
    assert value("argus_index_cpu_seconds_total", camera=cam) > cpu
