"""IntrusionRule on scripted tracks (and the priority formula it uses)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from detectors.detections import Detections
from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules import FrameInfo, IntrusionRule, RuleError
from selector.zones import PolygonZone

pytestmark = pytest.mark.unit

CAM = "plaza"
RULE = "intrusion:crossing"
FPS = 10
ZONE = PolygonZone("crossing", [(100, 100), (300, 100), (300, 300), (100, 300)])
NAMES = ("person", "bicycle", "car")

# (track_id, where, score, class_id); where: "in" / "out" / "head-in" (feet outside)
Row = tuple[int, str, float, int]


def box(where: str, k: int) -> tuple[float, float, float, float]:
    x = 150 + (k % 7)  # jitter a little so boxes differ from frame to frame
    if where == "in":
        return (x, 120, x + 40, 220)
    if where == "head-in":
        return (x, 250, x + 40, 350)
    return (x, 400, x + 40, 500)


def r6(t: float | None) -> float | None:
    """A time rounded to the microsecond, for exact comparison with decimal literals."""
    return None if t is None else round(t, 6)


def frame(k: int) -> FrameInfo:
    return FrameInfo(
        CAM, seq=k, pts_s=k / FPS, wall_time=1_700_000_000.0 + k / FPS, width=768, height=576
    )


def tracks(rows: Iterable[Row], k: int) -> Detections:
    rows = list(rows)
    n = len(rows)
    return Detections(
        xyxy=np.array([box(w, k) for _, w, _, _ in rows], np.float32).reshape(n, 4),
        score=np.array([s for _, _, s, _ in rows], np.float32),
        class_id=np.array([c for _, _, _, c in rows], np.int64),
        tracker_id=np.array([t for t, _, _, _ in rows], np.int64),
        names=NAMES,
    )


def rule(**kw: object) -> IntrusionRule:
    args: dict[str, object] = {
        "classes": {0},
        "class_names": NAMES,
        "min_dwell_s": 2.0,
        "exit_grace_s": 1.0,
    }
    args.update(kw)
    return IntrusionRule(RULE, CAM, ZONE, **args)  # type: ignore[arg-type]


def run(
    r: IntrusionRule,
    script: dict[int, list[Row]],
    n_frames: int,
    ended: dict[int, set[int]] | None = None,
) -> list[tuple[int, Event]]:
    """Feed frames 0..n_frames-1 (script[k] = rows of frame k, default none)."""
    out: list[tuple[int, Event]] = []
    for k in range(n_frames):
        evs = r.update(tracks(script.get(k, []), k), frame(k), (ended or {}).get(k, set()))
        out.extend((k, e) for e in evs)
    return out


def person(where: str, tid: int = 7, score: float = 0.9, cls: int = 0) -> list[Row]:
    return [(tid, where, score, cls)]


def test_dwell_not_met_gives_no_event() -> None:
    r = rule()
    script = {k: person("in") for k in range(5, 24)}  # inside 0.5 .. 2.3 s = 1.8 s
    script |= {k: person("out") for k in range(24, 60)}
    assert run(r, script, 60) == []
    assert r.open_events() == []


def test_dwell_met_starts_one_event_then_leaving_ends_it() -> None:
    r = rule()
    script = {k: person("in") for k in range(5, 41)}  # inside 0.5 .. 4.0 s
    script |= {k: person("out") for k in range(41, 80)}
    got = run(r, script, 80)
    assert [k for k, _ in got] == [25, 50]  # dwell met at 2.5 s; grace over at 5.0 s
    (_, start), (_, end) = got
    assert start.end_s is None and start.is_open
    assert start.start_s == pytest.approx(2.5)  # entry 0.5 + min_dwell 2.0
    assert start.start_seq == 25
    assert start.bbox == pytest.approx(box("in", 25))
    assert start.wall_time == pytest.approx(1_700_000_002.5)
    assert (start.type, start.rule_id, start.zone, start.track_id, start.label) == (
        "intrusion",
        RULE,
        "crossing",
        7,
        "person",
    )
    assert start.score == pytest.approx(0.9)
    assert start.priority == priority(60, 0.9) == 59
    assert start.event_id == make_event_id(CAM, RULE, 7, 25)
    assert end.event_id == start.event_id
    assert end.end_s == pytest.approx(4.0)  # last time seen inside, not the grace expiry
    assert end.start_s == start.start_s and end.bbox == start.bbox
    assert r.open_events() == []


def test_zone_weight_scales_priority() -> None:
    heavy = PolygonZone("crossing", ZONE.polygon, weight=1.5)
    script = {k: person("in", score=1.0) for k in range(30)}
    r = IntrusionRule(RULE, CAM, heavy, classes=None, min_dwell_s=0.0, severity=60)
    assert [e.priority for _, e in run(r, script, 30)] == [90]
    r = IntrusionRule(RULE, CAM, heavy, classes=None, min_dwell_s=0.0, zone_weight=0.5)
    assert [e.priority for _, e in run(r, script, 30)] == [30]


def test_zero_dwell_starts_on_entry_frame() -> None:
    r = rule(min_dwell_s=0.0)
    got = run(r, {3: person("in")}, 4)
    assert [(k, r6(e.start_s)) for k, e in got] == [(3, 0.3)]


def test_flicker_within_grace_is_one_event() -> None:
    r = rule()
    script = {k: person("in") for k in range(0, 30)}
    script |= {k: person("out") for k in range(30, 35)}  # 0.6 s outside the edge
    script |= {k: person("in") for k in range(35, 40)}
    # 40..47 missing altogether (occluded, tracker lost it): 0.9 s < grace
    script |= {k: person("in") for k in range(48, 60)}
    script |= {k: person("head-in") for k in range(60, 80)}  # feet out: outside
    got = run(r, script, 80)
    assert [(k, r6(e.end_s)) for k, e in got] == [(20, None), (69, 5.9)]


def test_occlusion_longer_than_grace_is_still_one_event() -> None:
    """Missing (held by the tracker as lost) is not leaving: behind a pole for 2.5 s."""
    r = rule(exit_grace_s=1.0)
    script = {k: person("in") for k in range(0, 30)}
    # 30..54 missing: the tracker still holds track 7 (no ended id), 2.5 s > grace
    script |= {k: person("in") for k in range(55, 70)}
    script |= {k: person("out") for k in range(70, 90)}
    got = run(r, script, 90)
    assert [(k, r6(e.start_s), r6(e.end_s)) for k, e in got] == [(20, 2.0, None), (79, 2.0, 6.9)]


def test_short_gap_before_dwell_keeps_dwell_long_gap_resets_it() -> None:
    r = rule()
    script = {k: person("in") for k in range(0, 10)}
    script |= {k: person("out") for k in range(10, 15)}  # 0.6 s gap < grace
    script |= {k: person("in") for k in range(15, 30)}
    got = run(r, script, 30)
    assert [(k, r6(e.start_s)) for k, e in got] == [(20, 2.0)]  # from entry 0.0

    r = rule()
    script = {k: person("in") for k in range(0, 10)}
    script |= {k: person("out") for k in range(10, 20)}  # last in 0.9, back at 2.0: gap 1.1 s
    script |= {k: person("in") for k in range(20, 45)}
    got = run(r, script, 45)
    assert [(k, r6(e.start_s)) for k, e in got] == [(40, 4.0)]  # dwell restarted


def test_grace_over_across_dropped_frames_starts_new_stay() -> None:
    r = rule(min_dwell_s=0.0)
    script = {0: person("in"), 1: person("out"), 30: person("in")}  # frames 2..29 never came
    got = []
    for k in (0, 1, 30):
        got += r.update(tracks(script[k], k), frame(k))
    assert [(r6(e.start_s), r6(e.end_s)) for e in got] == [(0.0, None), (0.0, 0.0), (3.0, None)]
    assert got[2].event_id != got[0].event_id


def test_class_filter_min_score_and_labels() -> None:
    script = {k: [(1, "in", 0.9, 2), (2, "in", 0.3, 0), (3, "in", 0.8, 0)] for k in range(30)}
    got = run(rule(min_score=0.5), script, 30)
    assert [(e.track_id, e.label) for _, e in got] == [(3, "person")]

    got = run(rule(classes=None, min_score=0.5), script, 30)
    assert [(e.track_id, e.label) for _, e in got] == [(1, "car"), (3, "person")]

    got = run(rule(classes=None, class_names=()), script, 30)  # labels from Detections
    assert [e.label for _, e in got] == ["car", "person", "person"]


def test_untracked_rows_are_ignored() -> None:
    script = {k: person("in", tid=-1) for k in range(30)}
    assert run(rule(min_dwell_s=0.0), script, 30) == []


def test_lost_track_closes_at_last_time_inside() -> None:
    r = rule(exit_grace_s=5.0)
    script = {k: person("in") for k in range(0, 30)}  # last inside at 2.9 s
    got = run(r, script, 40, ended={35: {7}})  # tracker removed track 7 at frame 35
    assert [(k, r6(e.end_s)) for k, e in got] == [(20, None), (35, 2.9)]


def test_close_all_closes_open_events_once() -> None:
    r = rule()
    script = {k: person("in", tid=1) + person("in", tid=2) for k in range(0, 30)}
    script |= {  # 3 enters, its dwell not met: no event
        k: person("in", tid=1) + person("out", tid=2) + person("in", tid=3) for k in range(30, 35)
    }
    got = run(r, script, 35)
    assert [(k, e.track_id) for k, e in got] == [(20, 1), (20, 2)]
    closed = r.close_all(3.4)
    # Track 2 was in its grace period: it ends when it was last seen inside.
    assert [(e.track_id, r6(e.end_s)) for e in closed] == [(1, 3.4), (2, 2.9)]
    assert r.close_all(3.4) == []
    assert r.open_events() == []


def test_event_ids_are_deterministic() -> None:
    script = {k: person("in", tid=k // 20 + 1) for k in range(0, 80)}
    ended = {20: {1}, 40: {2}, 60: {3}}  # the tracker drops each id as the next appears
    a = [e.event_id for _, e in run(rule(min_dwell_s=0.5), script, 80, ended)]
    b = [e.event_id for _, e in run(rule(min_dwell_s=0.5), script, 80, ended)]
    assert a == b
    assert len(a) == 7 and len(set(a)) == 4  # 3 start+end pairs; the 4th track is still in
    assert a[0] == make_event_id(CAM, RULE, 1, 5)


def test_frame_of_other_camera_is_refused() -> None:
    other = FrameInfo("gate", 0, 0.0, 0.0, 768, 576)
    with pytest.raises(RuleError, match="gate"):
        rule().update(Detections.empty(), other)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"min_dwell_s": -1.0}, "min_dwell_s"),
        ({"exit_grace_s": float("inf")}, "exit_grace_s"),
        ({"min_score": 1.5}, "min_score"),
        ({"severity": 101}, "severity"),
        ({"zone_weight": -2.0}, "zone_weight"),
        ({"classes": set()}, "empty"),
        ({"classes": {5}}, "unknown class ids \\[5\\]"),
        ({"classes": {-1}, "class_names": ()}, "unknown class ids"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(RuleError, match=word) as info:
        rule(**kwargs)
    assert RULE in str(info.value)


@pytest.mark.parametrize(
    ("severity", "score", "weight", "expected"),
    [
        (60, 1.0, 1.0, 60),
        (60, 0.0, 1.0, 48),
        (60, 0.5, 1.0, 54),
        (60, None, 1.0, 60),
        (80, 1.0, 2.0, 100),  # clamped
        (60, 1.0, 0.0, 0),
        (0, 1.0, 1.0, 0),
        (100, 0.9, 0.5, 49),
    ],
)
def test_priority_formula(severity: int, score: float | None, weight: float, expected: int) -> None:
    assert priority(severity, score, weight) == expected


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((101, 0.5), "severity"),
        ((50, 1.2), "score"),
        ((50, 0.5, -1.0), "zone_weight"),
        ((50, float("nan")), "score"),
    ],
)
def test_priority_rejects_out_of_range(args: tuple[float, ...], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        priority(*args)  # type: ignore[arg-type]
