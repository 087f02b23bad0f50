"""Event records carry the geometry the operator's screen draws: frame, zone, line, path."""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from alerts.schema import InvalidEventError, load_schema, validate_record
from detectors.detections import Detections
from selector.camera import CameraSelector
from selector.event import (
    PATH_MAX_POINTS,
    ZONE_MAX_POINTS,
    Event,
    Geometry,
    evenly_spaced,
    make_event_id,
)
from selector.incidents import IncidentGate, RulePolicy
from selector.lines import Line
from selector.paths import OLDER_POINTS, RECENT_POINTS, TrackPath, TrackPaths, thin_in_time
from selector.rules import FrameInfo, IntrusionRule, LineCrossingRule
from selector.rules.common import make_event
from selector.tracker import ByteTracker
from selector.zones import PolygonZone

pytestmark = pytest.mark.unit

CAM = "plaza"
W, H = 768, 576
ZONE = PolygonZone("crossing", [(100, 100), (300, 100), (300, 300), (100, 300)])
ZONE_RECORD = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]]


def frame(k: int, width: int = W, height: int = H) -> FrameInfo:
    return FrameInfo(CAM, k, k / 10, 1_700_000_000.0 + k / 10, width, height)


def person(x1: float, y2: float = 250.0) -> Detections:
    """One person, 40 x 100 px, box left edge ``x1``, feet at ``y2``."""
    return Detections(
        xyxy=np.array([[x1, y2 - 100, x1 + 40, y2]], np.float32),
        score=np.array([0.9], np.float32),
        class_id=np.array([0], np.int64),
        names=("person",),
    )


def run(sel: CameraSelector, xs: list[float], y2: float = 250.0) -> list[tuple[int, Event]]:
    """Frame ``k`` shows the person at box left edge ``xs[k]``; records by frame."""
    out: list[tuple[int, Event]] = []
    for k, x in enumerate(xs):
        out += [(k, e) for e in sel.update(person(x, y2), frame(k))[1]]
    return out


def feet_at(x1: float, y2: float = 250.0) -> list[float]:
    return [x1 + 20.0, y2]


def strict(record: dict[str, Any]) -> dict[str, Any]:
    """The record after a JSON round trip, validated as producers are."""
    back: dict[str, Any] = json.loads(json.dumps(record, allow_nan=False))
    validate_record(back, allow_unknown=False)
    return back


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


# ------------------------------------------------------------------ selector: records


def test_intrusion_start_and_end_records_carry_zone_frame_and_path() -> None:
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [intrusion()])
    xs = [130.0 + 5 * k for k in range(50)]  # feet x = 150 + 5k: inside up to k = 30 (x 300)
    got = run(sel, xs)
    assert [(k, e.end_s is None) for k, e in got] == [(11, True), (40, False)]
    (_, start), (_, end) = got
    assert end.end_s is not None and round(end.end_s, 6) == 3.0  # last seen inside: frame 30

    s = strict(start.to_record())["geometry"]
    assert s["frame"] == [W, H] and s["zone"] == ZONE_RECORD and "line" not in s
    # confirmed at frame 1 (min_hits=2): the path runs from there to the start frame
    assert s["path"] == [feet_at(xs[k]) for k in range(1, 12)]
    assert s["path"][-1] == [(start.bbox[0] + start.bbox[2]) / 2, start.bbox[3]]  # type: ignore[index]

    e = strict(end.to_record())["geometry"]
    assert e["frame"] == [W, H] and e["zone"] == ZONE_RECORD
    # the whole walk up to the last frame seen in the zone (not the later frames outside)
    assert e["path"] == [feet_at(xs[k]) for k in range(1, 31)]
    assert e["path"][-1] == [300.0, 250.0]


def test_end_path_stops_at_the_last_inside_frame_even_when_thinned() -> None:
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [intrusion(exit_grace_s=2.0)])
    inside = [130.0 + abs(k % 100 - 50) for k in range(600)]  # a minute pacing in the zone
    xs = inside + [130.0 + 50 + 5 * k for k in range(1, 60)]  # then out to the right
    got = run(sel, xs)  # the start, its re-send at +5 priority after 30 s, the end
    assert [e.end_s is None for _, e in got] == [True, True, False]
    (k_end, end) = got[-1]
    last_in = max(k for k, x in enumerate(xs) if x + 20 <= 300)
    assert end.end_s is not None and round(end.end_s, 6) == round(last_in / 10, 6)
    assert k_end == last_in + 20  # made 2 s later, while the walk went on
    path = strict(end.to_record())["geometry"]["path"]
    assert len(path) == PATH_MAX_POINTS
    assert path[0] == feet_at(xs[1]) and path[-1] == feet_at(xs[last_in])


def test_line_crossing_records_carry_the_line_and_the_path_to_the_confirming_frame() -> None:
    door = Line("door", [(400, 0), (400, 576)])
    rule = LineCrossingRule("line_crossing:door", CAM, door, classes={0}, class_names=("person",))
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [rule])
    xs = [280.0 + 5 * k for k in range(40)]  # feet x = 300 + 5k: on the line at k = 20
    got = run(sel, xs)
    # band 10 px (0.1 x 100 px): the side is confirmed at feet x 410, frame 22
    assert [k for k, _ in got] == [22, 22]
    for _, e in got:
        g = strict(e.to_record())["geometry"]
        assert g["frame"] == [W, H]
        assert g["line"] == [[400.0, 0.0], [400.0, 576.0]] and "zone" not in g
        assert g["path"] == [feet_at(xs[k]) for k in range(1, 23)]
        assert e.line == "door" and e.direction in ("+", "-")


def test_path_of_a_long_track_is_thinned_evenly_to_32_points() -> None:
    paths = TrackPaths()
    for k in range(5000):  # 500 s at 10 fps
        dets = Detections(
            xyxy=np.array([[k - 20, 100, k + 20, 200]], np.float32),
            score=np.array([0.9], np.float32),
            class_id=np.array([0], np.int64),
            tracker_id=np.array([3], np.int64),
        )
        paths.add(dets, k / 10)
    path = paths.path(3, 499.9)
    assert path is not None and len(path) == PATH_MAX_POINTS
    xs = [x for x, _ in path]
    assert xs[0] == 0.0 and xs[-1] == 4999.0  # where it began, where it is
    gaps = np.diff(xs)
    even = 4999 / (PATH_MAX_POINTS - 1)
    assert 0.5 * even <= gaps.min() and gaps.max() <= 1.5 * even
    # a record of an earlier moment ends there: exactly within the last RECENT_POINTS,
    # else at the nearest point kept before it
    recent = paths.path(3, 490.0)
    assert recent is not None and recent[-1] == (4900.0, 200.0)
    earlier = paths.path(3, 100.0)
    assert earlier is not None and 1000.0 - 64 < earlier[-1][0] <= 1000.0
    assert paths.path(3, -1.0) is None and paths.path(99, 10.0) is None


def test_memory_per_track_stays_bounded() -> None:
    p = TrackPath()
    nbytes = p.nbytes
    assert nbytes == (RECENT_POINTS + OLDER_POINTS) * 3 * 8
    for k in range(200_000):  # 5.5 h at 10 fps
        p.add(k / 10, float(k), 1.0)
        assert len(p) <= RECENT_POINTS + OLDER_POINTS
    assert p.nbytes == nbytes
    pts = p.points()
    assert pts[0, 1] == 0.0 and pts[-1, 1] == 199_999.0  # still from start to now
    assert np.all(np.diff(pts[:, 0]) > 0)
    # the last RECENT_POINTS are exact, the older ones evenly spaced
    assert pts[-RECENT_POINTS:, 1].tolist() == list(range(200_000 - RECENT_POINTS, 200_000))
    older = np.diff(pts[:-RECENT_POINTS, 1])
    assert older.min() == older.max()


def test_histories_of_removed_tracks_are_forgotten_unless_an_open_event_needs_them() -> None:
    paths = TrackPaths(keep_ended_s=5.0, max_ended=3)
    for tid in range(1, 8):
        paths.add(
            Detections(
                xyxy=np.array([[0, 0, 10, 10]], np.float32),
                score=np.array([0.9], np.float32),
                class_id=np.array([0], np.int64),
                tracker_id=np.array([tid], np.int64),
            ),
            0.0,
        )
    paths.end([1, 2], 1.0)
    paths.prune(5.0, needed=())
    assert paths.get(1) is not None and paths.get(2) is not None  # within keep_ended_s
    paths.prune(6.5, needed={1})
    assert paths.get(1) is not None and paths.get(2) is None  # 1 is still needed
    paths.end([3, 4, 5, 6], 7.0)
    paths.prune(7.0, needed={1})
    assert {t for t in range(8) if paths.get(t)} == {1, 4, 5, 6, 7}
    # 1 (needed), 4-6 (the newest max_ended), 7 (alive)
    paths.prune(20.0, needed=())
    assert len(paths) == 1 and paths.get(7) is not None


def test_an_event_ending_after_its_track_was_removed_keeps_the_whole_path() -> None:
    # The tracker drops the track 0.5 s after it was last seen; the rule holds the stay
    # open 5 s; the history stays for the open event, then goes.
    sel = CameraSelector(
        CAM, ByteTracker(frame_rate=10.0, track_buffer_s=0.5), [intrusion(exit_grace_s=5.0)]
    )
    xs = [130.0 + 2 * k for k in range(20)]
    got: list[tuple[int, Event]] = []
    for k in range(400):
        dets = person(xs[k]) if k < 20 else Detections.empty(("person",))
        got += [(k, e) for e in sel.update(dets, frame(k))[1]]
    (_, start), (k_end, end) = got
    assert start.to_record()["geometry"]["path"][-1] == feet_at(xs[11])
    assert k_end == 25  # removed by the tracker at 2.5 s
    path = end.to_record()["geometry"]["path"]
    assert path == [feet_at(xs[k]) for k in range(1, 20)]
    assert sel.paths.get(1) is None  # 30 s later, nobody needs it


# ------------------------------------------------------------------ camera-level, fakes


class CameraLevelRule:
    """Raises one camera-level event (no track, no zone) on frame 0 and on no-signal."""

    rule_id = "camera_health:x"

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        return [self._event(frame)] if frame.seq == 0 else []

    def no_signal(self, frame: FrameInfo) -> list[Event]:
        return [self._event(frame, key=frame.seq + 1, event_type=f"lost{frame.pts_s}")]

    def close_all(self, end_s: float) -> list[Event]:
        return []

    def _event(self, frame: FrameInfo, key: int = 0, event_type: str = "camera_health") -> Event:
        return make_event(
            rule_id=self.rule_id,
            event_type=event_type,
            frame=frame,
            severity=50,
            zone=None,
            key=key,
        )


def test_camera_level_events_carry_the_frame_only_or_no_geometry_before_any_frame() -> None:
    sel = CameraSelector(CAM, ByteTracker(), [CameraLevelRule()])
    (lost,) = sel.no_signal(FrameInfo(CAM, 0, 5.0, 1.7e9, 0, 0, detected=False))
    assert lost.geometry is None and strict(lost.to_record())["geometry"] is None
    _, (first,) = sel.update(Detections.empty(("person",)), frame(0, 1280, 720))
    assert strict(first.to_record())["geometry"] == {"frame": [1280, 720]}
    # a no-signal tick (which does not know the size) gets the last frame's
    later = sel.no_signal(FrameInfo(CAM, 0, 60.0, 1.7e9, 0, 0, detected=False))
    (new,) = [e for e in later if e.type == "lost60.0"]  # (and priority re-sends)
    assert new.to_record()["geometry"] == {"frame": [1280, 720]}


class OwnGeometryRule(CameraLevelRule):
    rule_id = "custom:x"

    def _event(self, frame: FrameInfo, key: int = 0, event_type: str = "custom") -> Event:
        return replace(super()._event(frame, key, event_type), geometry=Geometry(frame=(10, 10)))


def test_a_rule_s_own_geometry_is_kept() -> None:
    sel = CameraSelector(CAM, ByteTracker(), [OwnGeometryRule()])
    _, (e,) = sel.update(Detections.empty(("person",)), frame(0))
    assert e.geometry == Geometry(frame=(10, 10))


def test_a_zone_of_many_vertices_is_thinned_to_the_schema_bound() -> None:
    n = 300
    circle = [
        (300 + 200 * math.cos(2 * math.pi * i / n), 300 + 200 * math.sin(2 * math.pi * i / n))
        for i in range(n)
    ]
    zone = PolygonZone("round", circle)
    rule = IntrusionRule("intrusion:round", CAM, zone, classes={0}, class_names=("person",))
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [rule])
    (_, start), *_ = run(sel, [280.0] * 5)
    g = strict(start.to_record())["geometry"]
    assert len(g["zone"]) == ZONE_MAX_POINTS
    assert g["zone"][0] == [500.0, 300.0] and g["zone"][-1] == [
        round(circle[-1][0], 1),
        round(circle[-1][1], 1),
    ]
    assert evenly_spaced(3, 5) == [0, 1, 2] and evenly_spaced(11, 3) == [0, 5, 10]


# ------------------------------------------------------------------ incidents


def ev(track: int, start: float, geometry: Geometry | None) -> Event:
    return Event(
        event_id=make_event_id(CAM, "intrusion:z", track, int(start * 10)),
        camera_id=CAM,
        type="intrusion",
        rule_id="intrusion:z",
        zone="z",
        track_id=track,
        label="person",
        score=0.9,
        priority=60,
        start_s=start,
        end_s=None,
        bbox=(100, 100, 140, 200),
        start_seq=int(start * 10),
        wall_time=1.7e9 + start,
        geometry=geometry,
    )


def geo(*xs: float) -> Geometry:
    return Geometry(frame=(W, H), path=tuple((x, 200.0) for x in xs))


def test_a_merged_incident_keeps_the_geometry_of_its_first_event_s_track() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=0.0)})
    a, b = ev(1, 1.0, geo(1, 2)), ev(2, 2.0, geo(50))
    assert g.process([a], 1.0) == [a]
    assert g.process([b], 2.0) == []
    g.process([replace(a, end_s=3.0, geometry=geo(1, 2, 3))], 3.0)
    (end,) = g.process([replace(b, end_s=5.0, geometry=geo(50, 51))], 5.0)
    assert end.event_id == a.event_id and end.track_id == 1 and end.end_s == 5.0
    assert end.geometry == geo(1, 2, 3)  # track 1's walk, not the last member's


def test_per_object_incident_end_path_covers_the_later_stay_of_the_same_track() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=5.0, per_object=True)})
    a, again = ev(1, 1.0, geo(1)), ev(1, 4.0, geo(1, 2, 4))
    g.process([a], 1.0)
    g.process([replace(a, end_s=2.0, geometry=geo(1, 2))], 2.0)
    g.process([again], 4.0)  # back within the cooldown: the same alert
    g.process([replace(again, end_s=6.0, geometry=geo(1, 2, 4, 6))], 6.0)
    (end,) = g.process([], 11.0)
    assert end.event_id == a.event_id and end.geometry == geo(1, 2, 4, 6)


def test_incident_without_an_end_geometry_keeps_the_start_s() -> None:
    g = IncidentGate(CAM)
    a = ev(1, 1.0, geo(1))
    g.process([a], 1.0)
    (end,) = g.process([a.closed(2.0)], 2.0)  # an end without geometry
    assert end.geometry == geo(1)


# ------------------------------------------------------------------ the contract


def record(geometry: Any) -> dict[str, Any]:
    r = ev(1, 1.0, None).to_record()
    r["geometry"] = geometry
    return r


def test_geometry_is_optional_and_may_be_null() -> None:
    r = record(None)
    validate_record(r, allow_unknown=False)
    del r["geometry"]
    validate_record(r, allow_unknown=False)
    assert "geometry" not in load_schema()["required"]


def test_schema_bounds_agree_with_the_producer() -> None:
    props = load_schema()["properties"]["geometry"]["properties"]
    assert props["path"]["maxItems"] == PATH_MAX_POINTS
    assert props["zone"]["maxItems"] == ZONE_MAX_POINTS


GOOD = {"frame": [768, 576], "path": [[1.0, 2.0]] * 32, "line": [[0, 0], [5, 5]]}

BAD: list[tuple[str, Any, str, str]] = [
    ("33 points", {"frame": [768, 576], "path": [[1.0, 2.0]] * 33}, "$.geometry.path", "33"),
    ("NaN", {"frame": [768, 576], "path": [[1.0, math.nan]]}, "$.geometry.path[0][1]", "nan"),
    ("inf", {"frame": [768, 576], "zone": [[0, 0], [math.inf, 0], [0, 5]]}, "[1][0]", "inf"),
    ("NaN size", {"frame": [math.nan, 576]}, "$.geometry.frame[0]", "finite"),
    ("3-number point", {"frame": [768, 576], "path": [[1, 2, 3]]}, "path[0]", "[x, y]"),
    ("no frame", {"path": [[1.0, 2.0]]}, "$.geometry", "frame"),
    ("zero size", {"frame": [0, 576]}, "$.geometry.frame[0]", "0"),
    ("float size", {"frame": [768.5, 576]}, "$.geometry.frame[0]", "integer"),
    ("unknown key", {"frame": [768, 576], "heatmap": []}, "$.geometry", "heatmap"),
    ("null key", {"frame": [768, 576], "zone": None}, "$.geometry.zone", "None"),
    ("2-vertex zone", {"frame": [768, 576], "zone": [[0, 0], [1, 1]]}, "zone", "short"),
    ("string coord", {"frame": [768, 576], "path": [["1", 2]]}, "path[0][0]", "number"),
    ("bool coord", {"frame": [768, 576], "path": [[True, 2]]}, "path[0][0]", "number"),
    ("not an object", [768, 576], "$.geometry", "object"),
]


def test_good_geometry_validates() -> None:
    validate_record(record(GOOD), allow_unknown=False)


@pytest.mark.parametrize(("case", "geometry", "path", "says"), BAD, ids=[b[0] for b in BAD])
def test_hostile_geometry_is_refused_with_a_clear_error(
    case: str, geometry: Any, path: str, says: str
) -> None:
    with pytest.raises(InvalidEventError) as info:
        validate_record(record(geometry))
    assert path in info.value.path and says in info.value.reason, (case, str(info.value))


def test_a_huge_path_is_refused_quickly_with_a_short_message() -> None:
    with pytest.raises(InvalidEventError) as info:
        validate_record(record({"frame": [768, 576], "path": [[1.0, 2.0]] * 1_000_000}))
    assert info.value.path == "$.geometry.path" and len(str(info.value)) < 200


def test_geometry_refuses_what_the_schema_would() -> None:
    Geometry(frame=(1, 1), path=((0.0, 0.0),) * PATH_MAX_POINTS)
    for bad in (
        {"frame": (0, 576)},
        {"frame": (768, 576), "path": ((0.0, 0.0),) * (PATH_MAX_POINTS + 1)},
        {"frame": (768, 576), "path": ((math.nan, 0.0),)},
        {"frame": (768, 576), "zone": ((0.0, 0.0), (1.0, 1.0))},
        {"frame": (768, 576), "path": ()},
    ):
        with pytest.raises(ValueError, match="geometry"):
            Geometry(**bad)


def test_thin_in_time_keeps_short_paths_and_the_ends() -> None:
    pts = np.array([[t, t, 0.0] for t in range(10)], np.float64)
    assert thin_in_time(pts, 32) is pts
    thinned = thin_in_time(pts, 4)
    assert thinned[:, 0].tolist() == [0.0, 3.0, 6.0, 9.0]
