"""CrowdingRule on scripted tracks."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

import pytest

from selector.event import make_event_id
from selector.priority import priority
from selector.rules import CrowdingRule, FrameInfo, RuleError
from selector.zones import PolygonZone
from tests.unit.rule_scripts import CAM, NAMES, Row, row, run, spans, tracks

pytestmark = pytest.mark.unit

RULE = "crowding:platform"
ZONE = PolygonZone("platform", [(100, 100), (300, 100), (300, 300), (100, 300)])
SPOTS = {1: 150.0, 2: 200.0, 3: 250.0, 4: 175.0, 5: 225.0}  # x of each track's feet


def rule(**kw: object) -> CrowdingRule:
    args: dict[str, object] = {
        "min_count": 3,
        "classes": {0},
        "class_names": NAMES,
        "min_duration_s": 2.0,
    }
    args.update(kw)
    return CrowdingRule(RULE, CAM, ZONE, **args)  # type: ignore[arg-type]


def scene(
    n_frames: int,
    presence: Mapping[int, Container[int]],
    away: Mapping[int, Container[int]] | None = None,
    **kw: Any,
) -> dict[int, list[Row]]:
    """Track ``tid`` in the zone during ``presence[tid]``, seen outside during ``away[tid]``."""
    script: dict[int, list[Row]] = {}
    for k in range(n_frames):
        rows = [row(tid, SPOTS[tid], 200, **kw) for tid, ks in presence.items() if k in ks]
        rows += [row(tid, SPOTS[tid], 400, **kw) for tid, ks in (away or {}).items() if k in ks]
        if rows:
            script[k] = sorted(rows)
    return script


def test_crowd_for_min_duration_starts_and_ends_after_grace() -> None:
    r = rule()
    script = scene(
        100,
        {1: range(0, 100), 2: range(5, 100), 3: range(10, 61), 4: range(40, 46)},
        {3: range(61, 100), 4: range(46, 100)},
    )
    got = run(r, script, 100)
    # Three from 1.0 s; "3 for 2 s" true at 3.0 s; below 3 from 6.1 s, grace 2.0 s.
    assert spans(got) == [(30, None, 3.0, None), (80, None, 3.0, 6.0)]
    start, end = got[0][1], got[1][1]
    assert start.event_id == end.event_id == make_event_id(CAM, RULE, None, 30)
    assert (start.type, start.zone, start.label, start.score) == (
        "crowding",
        "platform",
        "person",
        None,
    )
    assert start.priority == priority(50, None) == 50
    assert start.bbox == pytest.approx((130.0, 100.0, 270.0, 200.0))  # union of the three
    assert start.details == {"count": 3}
    assert end.details == {"count": 3, "max_count": 4}
    assert r.open_events() == []


def test_one_short_of_the_count_gives_nothing() -> None:
    script = scene(200, {1: range(0, 200), 2: range(0, 200)}, {3: range(0, 200)})
    assert run(rule(), script, 200) == []


def test_short_dip_keeps_one_event() -> None:
    script = scene(
        120,
        {1: range(0, 80), 2: range(0, 80), 3: [*range(0, 40), *range(55, 80)]},
        {1: range(80, 120), 2: range(80, 120), 3: [*range(40, 55), *range(80, 120)]},
    )
    got = run(rule(), script, 120)
    assert spans(got) == [(20, None, 2.0, None), (99, None, 2.0, 7.9)]


def test_long_dip_ends_and_a_new_occurrence_gets_a_new_id() -> None:
    script = scene(
        120,
        {1: range(0, 120), 2: range(0, 120), 3: [*range(0, 40), *range(70, 120)]},
        {3: range(40, 70)},
    )
    r = rule()
    got = run(r, script, 120)
    assert spans(got) == [(20, None, 2.0, None), (59, None, 2.0, 3.9), (90, None, 9.0, None)]
    assert got[0][1].event_id != got[2][1].event_id
    assert [e.event_id for _, e in got] == [e.event_id for _, e in run(rule(), script, 120)]
    (closed,) = r.close_all(11.9)
    assert closed.event_id == got[2][1].event_id and closed.end_s == pytest.approx(11.9)
    assert r.close_all(11.9) == []


def test_short_dip_before_the_start_keeps_the_onset() -> None:
    script = scene(
        60, {1: range(60), 2: range(60), 3: [*range(0, 8), *range(15, 60)]}, {3: range(8, 15)}
    )
    assert spans(run(rule(), script, 60)) == [(20, None, 2.0, None)]
    # With a grace shorter than the dip, the onset restarts at 1.5 s.
    assert spans(run(rule(grace_s=0.5), script, 60)) == [(35, None, 3.5, None)]


def test_a_blip_of_the_count_does_not_date_the_crowd() -> None:
    # Three for 0.3 s (< CONFIRM_S) at 0.5 s, then from 3.0 s for good: the crowd
    # dates from 3.0 s, not from the blip, though the gap is within grace_s.
    script = scene(
        80, {1: range(80), 2: range(80), 3: [*range(5, 8), *range(30, 80)]}, {3: range(8, 30)}
    )
    assert spans(run(rule(), script, 80)) == [(50, None, 5.0, None)]


def test_occluded_track_still_counts_until_the_tracker_drops_it() -> None:
    script = scene(120, {1: range(120), 2: range(0, 10), 3: range(120)})  # 2 missing from 1.0 s
    got = run(rule(), script, 120, ended={71: {2}})
    assert spans(got) == [(20, None, 2.0, None), (90, None, 2.0, 7.0)]


@pytest.mark.parametrize(("x6", "crowd"), [(150.0, False), (155.0, False), (280.0, True)])
def test_a_person_taken_up_again_under_a_new_id_counts_once(x6: float, crowd: bool) -> None:
    # Track 1 is lost at 1.0 s and held by the tracker until 7.1 s; track 6 appears at
    # 1.0 s: at the same spot it is the same person (seen on generated footage, where
    # this started a crowd of 4 with 3 people), elsewhere a fourth person.
    script = scene(120, {1: range(0, 10), 2: range(120), 3: range(120)})
    for k in range(10, 120):
        script[k] = sorted([*script[k], row(6, x6, 200)])
    got = run(rule(min_count=4), script, 120, ended={71: {1}})
    assert bool(got) == crowd
    if crowd:
        assert spans(got)[0] == (30, None, 3.0, None)


def test_undetected_frames_never_end_it() -> None:
    script = scene(100, {1: range(100), 2: range(100), 3: range(0, 30)}, {3: range(80, 100)})
    undetected = set(range(30, 80))
    got = run(rule(), script, 100, undetected=undetected)
    # Nobody looked from 3.0 to 7.9 s: the count holds; the dip is seen at 8.0 s.
    assert spans(got) == [(20, None, 2.0, None), (99, None, 2.0, 7.9)]
    # A dip seen just before a gated stretch ends only at the next detected frame.
    script = scene(100, {1: range(100), 2: range(100), 3: range(0, 30)}, {3: range(30, 100)})
    got = run(rule(), script, 100, undetected=set(range(31, 70)))
    assert spans(got) == [(20, None, 2.0, None), (70, None, 2.0, 2.9)]


def test_time_alone_can_complete_the_duration_on_undetected_frames() -> None:
    script = scene(10, {1: range(10), 2: range(10), 3: range(10)})
    r = rule()
    got = run(r, script, 30, undetected=set(range(10, 30)))
    assert spans(got) == [(20, None, 2.0, None)]
    assert got[0][1].bbox == pytest.approx((130.0, 100.0, 270.0, 200.0))
    assert r.count() == 3


def test_class_and_score_filter_and_mixed_labels() -> None:
    script = scene(40, {1: range(40), 2: range(40)})
    script = {k: [*rows, (3, row(3, 250, 200)[1], 0.9, 2)] for k, rows in script.items()}
    assert run(rule(), script, 40) == []  # the car does not count
    got = run(rule(classes=None), script, 40)
    assert [(e.label, e.details["count"]) for _, e in got] == [(None, 3)]
    low = scene(40, {1: range(40), 2: range(40), 3: range(40)}, score=0.3)
    assert run(rule(min_score=0.5), low, 40) == []


def test_close_all_ends_at_the_last_crowded_time_and_forgets_pending() -> None:
    r = rule()
    run(r, scene(40, {1: range(40), 2: range(40), 3: range(0, 30)}, {3: range(30, 40)}), 40)
    (closed,) = r.close_all(3.9)
    assert closed.end_s == pytest.approx(2.9) and closed.details == {"count": 3, "max_count": 3}
    r = rule()
    run(r, scene(10, {1: range(10), 2: range(10), 3: range(10)}), 10)  # pending, not started
    assert r.close_all(0.9) == [] and r.count() == 0
    with pytest.raises(RuleError, match="end_s"):
        r.close_all(float("inf"))


def test_min_count_one_and_zero_duration_start_at_once() -> None:
    got = run(rule(min_count=1, min_duration_s=0.0), scene(5, {1: range(3, 5)}), 5)
    assert spans(got) == [(3, None, 0.3, None)]


def test_frame_of_other_camera_is_refused() -> None:
    with pytest.raises(RuleError, match="gate"):
        rule().update(tracks([]), FrameInfo("gate", 0, 0.0, 0.0, 768, 576))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"min_count": 0}, "min_count"),
        ({"min_count": 2.5}, "min_count"),
        ({"min_count": True}, "min_count"),
        ({"min_duration_s": float("nan")}, "min_duration_s"),
        ({"grace_s": -1.0}, "grace_s"),
        ({"min_score": 2.0}, "min_score"),
        ({"severity": 200}, "severity"),
        ({"zone_weight": -1.0}, "zone_weight"),
        ({"classes": set()}, "empty"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(RuleError, match=word) as info:
        rule(**kwargs)
    assert RULE in str(info.value)
