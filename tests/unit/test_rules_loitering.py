"""LoiteringRule on scripted tracks (stay logic shared with IntrusionRule)."""

from __future__ import annotations

import pytest

from selector.event import make_event_id
from selector.priority import priority
from selector.rules import FrameInfo, IntrusionRule, LoiteringRule, RuleError
from selector.zones import PolygonZone
from tests.unit.rule_scripts import CAM, NAMES, Row, feet, r6, row, run, spans, tracks

pytestmark = pytest.mark.unit

RULE = "loitering:atm"
ZONE = PolygonZone("atm", [(100, 100), (300, 100), (300, 300), (100, 300)])


def rule(**kw: object) -> LoiteringRule:
    args: dict[str, object] = {"classes": {0}, "class_names": NAMES}
    args.update(kw)
    return LoiteringRule(RULE, CAM, ZONE, **args)  # type: ignore[arg-type]


def inside(tid: int = 7) -> list[Row]:
    return [row(tid, 200, 200)]


def outside(tid: int = 7) -> list[Row]:
    return [row(tid, 200, 400)]


def test_default_dwell_is_ten_seconds_and_start_is_entry_plus_dwell() -> None:
    r = rule()
    script = {k: inside() for k in range(5, 130)}  # inside 0.5 .. 12.9 s
    script |= {k: outside() for k in range(130, 200)}
    got = run(r, script, 200)
    # start at 0.5 + 10.0; default exit grace 2.0 s: over at 12.9 + 2.0 = 14.9 s
    assert spans(got) == [(105, 7, 10.5, None), (149, 7, 10.5, 12.9)]
    start, end = got[0][1], got[1][1]
    assert (start.type, start.rule_id, start.zone, start.label) == (
        "loitering",
        RULE,
        "atm",
        "person",
    )
    assert start.event_id == end.event_id == make_event_id(CAM, RULE, 7, 105)
    assert start.start_seq == 105 and start.bbox == pytest.approx(feet(200, 200))
    assert start.priority == priority(50, 0.9)
    assert start.details == {}
    assert end.details["dwell_s"] == pytest.approx(12.4)  # 0.5 .. 12.9
    assert r.open_events() == []


def test_stay_just_short_of_the_dwell_gives_nothing() -> None:
    script = {k: inside() for k in range(0, 100)}  # 0.0 .. 9.9 s
    script |= {k: outside() for k in range(100, 150)}
    assert run(rule(), script, 150) == []


def test_start_s_is_exact_when_the_dwell_is_met_during_occlusion() -> None:
    script = {k: inside() for k in range(0, 16)}  # seen inside 0.0 .. 1.5 s
    script |= {k: inside() for k in range(30, 40)}  # 1.6 .. 2.9 s missing (occluded)
    got = run(rule(min_dwell_s=2.0), script, 40)
    assert spans(got) == [(30, 7, 2.0, None)]  # raised at 3.0 s, started at 2.0 s
    # Intrusion (same stay logic) keeps its own convention: the frame time.
    intr = IntrusionRule("intrusion:atm", CAM, ZONE, classes={0}, min_dwell_s=2.0)
    assert spans(run(intr, script, 40)) == [(30, 7, 3.0, None)]


def test_exit_grace_default_two_seconds() -> None:
    script = {k: inside() for k in range(0, 120)}
    script |= {k: outside() for k in range(120, 135)}  # last in 11.9, out 1.5 s
    script |= {k: inside() for k in range(135, 150)}
    script |= {k: outside() for k in range(150, 190)}
    got = run(rule(), script, 190)
    assert spans(got) == [(100, 7, 10.0, None), (169, 7, 10.0, 14.9)]
    assert got[1][1].details["dwell_s"] == pytest.approx(14.9)


def test_undetected_frames_never_end_a_stay() -> None:
    script = {k: inside() for k in range(0, 120)}
    script |= {k: inside() for k in range(160, 170)}
    undetected = set(range(120, 160))  # motion gating: nobody looked for 4 s
    got = run(rule(), script, 170, undetected=undetected)
    assert spans(got) == [(100, 7, 10.0, None)]
    assert all(k not in undetected for k, _ in got)
    # Time alone does not end it either: the next detected frame seeing it away does.
    r = rule()
    run(r, {k: inside() for k in range(0, 120)}, 120)
    assert r.update(tracks([]), FrameInfo(CAM, 500, 50.0, 0.0, 768, 576, detected=False)) == []
    (end,) = r.update(tracks(outside()), FrameInfo(CAM, 501, 50.1, 0.0, 768, 576))
    assert r6(end.end_s) == 11.9


def test_ended_track_closes_and_close_all_closes_the_rest() -> None:
    r = rule(min_dwell_s=1.0)
    script = {k: inside(1) + inside(2) for k in range(0, 20)}
    script |= {k: inside(2) for k in range(20, 30)}
    got = run(r, script, 30, ended={25: {1}})
    assert spans(got) == [(10, 1, 1.0, None), (10, 2, 1.0, None), (25, 1, 1.0, 1.9)]
    closed = r.close_all(2.9)
    assert [(e.track_id, r6(e.end_s), r6(float(e.details["dwell_s"]))) for e in closed] == [
        (2, 2.9, 2.9)
    ]
    assert r.close_all(2.9) == []


def test_event_ids_unique_per_stay_and_deterministic() -> None:
    script = {k: inside() for k in range(0, 30)}
    script |= {k: outside() for k in range(30, 60)}  # leaves for 3 s > grace
    script |= {k: inside() for k in range(60, 90)}
    a = [e.event_id for _, e in run(rule(min_dwell_s=1.0), script, 90)]
    b = [e.event_id for _, e in run(rule(min_dwell_s=1.0), script, 90)]
    assert a == b and len(a) == 3 and len(set(a)) == 2
    assert a[2] == make_event_id(CAM, RULE, 7, 70)


def test_class_and_score_filter() -> None:
    script = {k: [row(1, 200, 200, cls=2), row(2, 200, 200, score=0.2)] for k in range(40)}
    assert run(rule(min_dwell_s=1.0, min_score=0.5), script, 40) == []
    got = run(rule(min_dwell_s=1.0, classes=None), script, 40)
    assert [e.track_id for _, e in got] == [1, 2]
    assert [e.label for _, e in got] == ["car", "person"]


def test_frame_of_other_camera_is_refused() -> None:
    with pytest.raises(RuleError, match="gate"):
        rule().update(tracks([]), FrameInfo("gate", 0, 0.0, 0.0, 768, 576))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"min_dwell_s": -1.0}, "min_dwell_s"),
        ({"min_dwell_s": float("nan")}, "min_dwell_s"),
        ({"exit_grace_s": float("inf")}, "exit_grace_s"),
        ({"min_score": 1.5}, "min_score"),
        ({"severity": 101}, "severity"),
        ({"zone_weight": -2.0}, "zone_weight"),
        ({"classes": set()}, "empty"),
        ({"classes": {5}}, "unknown class ids"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(RuleError, match=word) as info:
        rule(**kwargs)
    assert RULE in str(info.value)
