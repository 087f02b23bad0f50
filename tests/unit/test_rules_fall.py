"""FallRule on scripted person tracks and scripted foreground blobs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules import RuleError
from selector.rules.fall import FallRule
from selector.zones import PolygonZone
from tests.unit.object_scripts import (
    CAM,
    HEIGHT,
    NAMES,
    WIDTH,
    Box,
    Row,
    Step,
    end_tracks,
    frame_of,
    lerp,
    r6,
    run,
    tracks_of,
)

pytestmark = pytest.mark.unit

RULE = "fall:hall"
P = 1
UPRIGHT_H, UPRIGHT_W = 200.0, 60.0
LYING: Box = (230.0, 340.0, 430.0, 400.0)  # 200 x 60 px, on the floor where P stood
LYING_BLOB: Box = (240.0, 345.0, 420.0, 405.0)  # what the background subtractor sees


def body(cx: float, h: float, w: float, feet_y: float = 400.0) -> Box:
    return (cx - w / 2.0, feet_y - h, cx + w / 2.0, feet_y)


def upright(cx: float = 330.0, feet_y: float = 400.0) -> Box:
    return body(cx, UPRIGHT_H, UPRIGHT_W, feet_y)


BoxFn = Callable[[int], Box | None]


def going_down(k0: int = 20, frames: int = 8, final: tuple[float, float] = (60.0, 200.0)) -> BoxFn:
    """Upright at x=330 until ``k0``, then down to ``final`` (h, w) over ``frames`` frames,
    feet in place, then stays there."""
    h1, w1 = final

    def box(k: int) -> Box | None:
        if k < k0:
            return upright(330.0 + (k % 3))  # a little detector jitter
        f = min(1.0, (k - k0 + 1) / frames)
        return body(330.0, lerp(UPRIGHT_H, h1, f), lerp(UPRIGHT_W, w1, f))

    return box


def wide_fall(get_up_k: int | None = None) -> BoxFn:
    """Falls sideways at frame 20 (0.8 s): the box turns wide at frame 24 (2.4 s)."""
    down = going_down()

    def box(k: int) -> Box | None:
        if get_up_k is not None and k >= get_up_k:
            return upright()
        return down(k)

    return box


def build(
    n: int,
    people: dict[int, BoxFn],
    foreground: Callable[[int], list[Box] | None] | None = None,
    static: Callable[[int], list[Box] | None] | None = None,
    detected: Callable[[int], bool] | None = None,
    end: bool = True,
) -> list[Step]:
    steps: list[Step] = []
    for k in range(n):
        step = Step(detected=True if detected is None else detected(k))
        for tid, bf in sorted(people.items()):
            b = bf(k)
            if b is not None:
                step.rows.append(Row(tid, b))
        step.foreground = None if foreground is None else foreground(k)
        step.static = None if static is None else static(k)
        steps.append(step)
    return end_tracks(steps) if end else steps


def rule(**kw: object) -> FallRule:
    args: dict[str, object] = {"class_names": NAMES, "min_down_s": 3.0}
    args.update(kw)
    return FallRule(RULE, CAM, **args)  # type: ignore[arg-type]


def frames_of(got: list[tuple[int, Event]]) -> list[int]:
    return [k for k, _ in got]


# ---------------------------------------------------------------- falls


def test_sideways_fall_wide_box_starts_at_the_moment_down_and_ends_on_getting_up() -> None:
    r = rule()
    got = run(r, build(120, {P: wide_fall(get_up_k=80)}))
    assert frames_of(got) == [54, 80]  # down at 2.4 s, + 3 s; upright again at 8.0 s
    start, end = got[0][1], got[1][1]
    assert r6(start.start_s) == 2.4  # the moment the person went down, not + min_down_s
    assert start.end_s is None
    assert (start.type, start.rule_id, start.track_id, start.label, start.zone) == (
        "fall",
        RULE,
        P,
        "person",
        None,
    )
    assert start.bbox == pytest.approx(LYING)
    assert start.score == pytest.approx(0.9)
    assert start.priority == priority(80, 0.9)
    assert start.event_id == make_event_id(CAM, RULE, P, 54)
    assert start.details == {"signal": "wide", "fall_s": 0.5}
    assert (end.event_id, r6(end.end_s)) == (start.event_id, 8.0)
    assert r.open_events() == []


def test_down_shorter_than_min_down_s_gives_no_event() -> None:
    got = run(rule(), build(120, {P: wide_fall(get_up_k=53)}))  # down 2.4 .. 5.2 s
    assert got == []


def test_collapse_with_a_lying_blob_then_track_lost_is_a_fall() -> None:
    def person(k: int) -> Box | None:  # crumples in place (feet put), box never turns wide
        return going_down(final=(90.0, 60.0), frames=5)(k) if k < 30 else None

    def fg(k: int) -> list[Box]:
        if k < 22:
            b = person(k)
            return [] if b is None else [b]
        return [LYING_BLOB] if k < 100 else []

    got = run(rule(), build(150, {P: person}, foreground=fg))
    assert frames_of(got) == [53, 119]  # down at 2.3 s; blob gone after 9.9 s + 2 s grace
    start, end = got[0][1], got[1][1]
    assert r6(start.start_s) == 2.3
    assert start.details["signal"] == "collapse"
    assert start.bbox == pytest.approx(LYING_BLOB)
    assert start.track_id == P
    assert (end.event_id, r6(end.end_s)) == (start.event_id, 9.9)


def test_track_lost_on_the_spot_with_a_lying_blob_is_a_fall() -> None:
    def person(k: int) -> Box | None:
        return upright() if k < 20 else None  # the detector loses the lying person

    blobs = build(120, {P: person}, static=lambda k: [LYING_BLOB] if k >= 21 else [])
    got = run(rule(), blobs)
    assert frames_of(got) == [51]
    e = got[0][1]
    assert r6(e.start_s) == 2.1
    assert e.details["signal"] == "lost"
    assert e.track_id == P


def test_a_crouch_keeps_a_tall_blob_and_is_not_a_fall() -> None:
    crouch = going_down(final=(90.0, 75.0), frames=5)  # low, a bit wider, not wide

    def fg(k: int) -> list[Box]:
        b = crouch(k)
        return [] if b is None else [b]

    assert run(rule(), build(150, {P: crouch}, foreground=fg)) == []


def test_bending_briefly_is_not_a_fall_but_would_be_with_a_short_min_down() -> None:
    def bend(k: int) -> Box | None:
        return going_down(frames=5, final=(110.0, 120.0))(k) if k < 40 else upright()

    steps = build(100, {P: bend})
    assert run(rule(), steps) == []
    assert frames_of(run(rule(min_down_s=1.0), steps)) == [34, 40]  # down at 2.4 s


@pytest.mark.parametrize(("frames", "falls"), [(8, True), (30, False)])
def test_sitting_down_slowly_is_not_a_fall(frames: int, falls: bool) -> None:
    person = going_down(frames=frames, final=(100.0, 110.0))  # ends wide, 0.8 s vs 3 s
    got = run(rule(), build(150, {P: person}))
    assert bool(got) is falls


def test_walking_out_of_the_picture_at_the_side_is_not_a_fall() -> None:
    def walker(k: int) -> Box | None:
        b = upright(330.0 + 15.0 * k)
        return b if k <= 27 else None  # last box touches the right border

    def fg(k: int) -> list[Box]:  # a clipped blob at the border, looking low and wide
        return [(700.0, 345.0, float(WIDTH), 405.0)] if 28 <= k < 80 else []

    assert run(rule(), build(120, {P: walker}, foreground=fg)) == []


def test_stepping_out_of_the_picture_at_the_bottom_is_not_a_fall() -> None:
    def walker(k: int) -> Box | None:  # walks towards the camera and stays just below it
        feet = 400.0 + 20.0 * min(k, 16)
        return (300.0, feet - UPRIGHT_H, 360.0, min(feet, float(HEIGHT)))  # clipped: wide

    assert run(rule(), build(100, {P: walker})) == []


def test_walking_behind_an_obstacle_is_not_a_fall() -> None:
    def walker(k: int) -> Box | None:
        return upright(200.0 + 10.0 * k) if k < 20 else None

    assert run(rule(), build(120, {P: walker}, foreground=lambda k: [])) == []

    def moving_blob(k: int) -> list[Box]:  # low and wide, but moving on at 20 px/frame
        if k < 20:
            return []
        x = 300.0 + 20.0 * (k - 20)
        return [(x, 345.0, x + 180.0, 405.0)] if x < WIDTH else []

    assert run(rule(), build(120, {P: walker}, foreground=moving_blob)) == []

    def small_blob(k: int) -> list[Box]:  # a bag left where the person disappeared
        return [(385.0, 370.0, 430.0, 405.0)] if k >= 20 else []

    assert run(rule(), build(120, {P: walker}, static=small_blob)) == []


def test_a_track_born_lying_never_falls() -> None:
    assert run(rule(), build(100, {P: lambda k: LYING})) == []


def test_a_tall_glitch_of_a_lying_person_is_not_a_fall() -> None:
    def person(k: int) -> Box | None:
        return upright() if 20 <= k < 22 else LYING  # tall for 0.1 s only

    assert run(rule(), build(100, {P: person})) == []


# ---------------------------------------------------------------- detection gaps


def test_frames_without_detection_confirm_on_blobs_and_end_nothing() -> None:
    r = rule()
    steps = build(
        160,
        {P: wide_fall()},
        static=lambda k: [LYING] if k >= 30 else [],
        detected=lambda k: k < 30 or k >= 150,
    )
    for k in range(100, 150):
        steps[k].static, steps[k].scene = None, False  # no scene data at all
    got = run(r, steps)
    assert frames_of(got) == [54]  # confirmed by the blob on a skipped frame
    assert r6(got[0][1].start_s) == 2.4
    assert len(r.open_events()) == 1  # 5 s with nothing to look at: not ended
    assert [r6(e.end_s) for e in r.close_all(15.9)] == [15.9]


def test_empty_tracks_of_skipped_frames_do_not_mean_the_person_vanished() -> None:
    def person(k: int) -> Box | None:
        return upright()

    steps = build(
        100,
        {P: person},
        static=lambda k: [LYING_BLOB] if k >= 20 else [],  # e.g. a mat put down beside
        detected=lambda k: k < 20 or k >= 70,
    )
    assert run(rule(), steps) == []


# ---------------------------------------------------------------- ids, zones, close


def test_two_people_falling_together_get_distinct_events() -> None:
    def shifted(dx: float) -> BoxFn:
        def box(k: int) -> Box | None:
            b = wide_fall()(k)
            return None if b is None else (b[0] + dx, b[1], b[2] + dx, b[3])

        return box

    got = run(rule(), build(80, {1: shifted(-150.0), 2: shifted(200.0)}))
    assert frames_of(got) == [54, 54]
    assert [e.track_id for _, e in got] == [1, 2]
    assert len({e.event_id for _, e in got}) == 2


def test_falling_twice_gives_two_events() -> None:
    def person(k: int) -> Box | None:
        return wide_fall(get_up_k=80)(k) if k < 100 else wide_fall()(k - 80)

    got = run(rule(), build(200, {P: person}))
    assert frames_of(got) == [54, 80, 134]
    first, second = got[0][1], got[2][1]
    assert first.event_id != second.event_id
    assert r6(second.start_s) == 10.4


def test_getting_up_under_a_new_track_id_ends_the_fall() -> None:
    def first(k: int) -> Box | None:
        return wide_fall()(k) if k < 70 else None

    def second(k: int) -> Box | None:
        return upright() if k >= 80 else None

    got = run(rule(), build(120, {1: first, 2: second}))
    assert frames_of(got) == [54, 80]
    assert r6(got[1][1].end_s) == 8.0


def test_a_helper_walking_up_does_not_end_the_fall() -> None:
    def helper(k: int) -> Box | None:
        return upright(100.0 + 10.0 * min(k, 25))  # walks in, stands beside the lying person

    got = run(rule(), build(120, {P: wide_fall(), 2: helper}))
    assert frames_of(got) == [54]


def test_zone_filters_by_the_down_box_and_weights_priority() -> None:
    centre = PolygonZone("centre", [(250, 300), (450, 300), (450, 450), (250, 450)], 1.5)
    left = PolygonZone("left", [(0, 0), (200, 0), (200, 576), (0, 576)])
    steps = build(80, {P: wide_fall()})
    got = run(rule(zone=centre), steps)
    assert [(k, e.zone, e.priority) for k, e in got] == [(54, "centre", priority(80, 0.9, 1.5))]
    assert run(rule(zone=left), steps) == []


def test_close_all_ends_open_events_and_forgets_them() -> None:
    r = rule()
    run(r, build(70, {P: wide_fall()}))
    (opened,) = r.open_events()
    assert [(e.event_id, r6(e.end_s)) for e in r.close_all(6.9)] == [(opened.event_id, 6.9)]
    assert r.close_all(7.0) == []
    with pytest.raises(RuleError, match=RULE):
        r.close_all(math.inf)


def test_replay_is_deterministic() -> None:
    steps = build(150, {1: wide_fall(get_up_k=90), 2: lambda k: upright(600.0)})
    assert run(rule(), steps) == run(rule(), steps)


def test_frame_of_another_camera_is_refused() -> None:
    with pytest.raises(RuleError, match="other"):
        rule().update(tracks_of([]), frame_of(0, Step(), camera="other"))


@pytest.mark.parametrize(
    ("kw", "bad"),
    [
        ({"person_classes": []}, "empty"),
        ({"person_classes": [99]}, "99"),
        ({"min_down_s": -1.0}, "-1.0"),
        ({"upright_ratio": 0.0}, "upright_ratio"),
        ({"wide_ratio": 1.5}, "1.5"),
        ({"wide_ratio": math.nan}, "nan"),
        ({"max_fall_s": 0.0}, "max_fall_s"),
        ({"end_grace_s": math.nan}, "end_grace_s"),
        ({"min_score": -0.1}, "-0.1"),
        ({"severity": -1}, "-1"),
        ({"zone_weight": math.inf}, "inf"),
    ],
)
def test_invalid_arguments_are_refused_naming_rule_and_value(
    kw: dict[str, object], bad: str
) -> None:
    with pytest.raises(RuleError) as err:
        rule(**kw)
    assert RULE in str(err.value) and bad in str(err.value)


@pytest.mark.parametrize(("rule_id", "camera"), [("", CAM), (RULE, "")])
def test_empty_ids_are_refused(rule_id: str, camera: str) -> None:
    with pytest.raises(RuleError):
        FallRule(rule_id, camera)


def test_a_body_falling_sideways_lies_beside_where_it_stood() -> None:
    """Seen on generated footage: the person falls to the right, the lying blob begins
    ~20 px right of the upright box (no horizontal overlap), and the first blob, caught
    mid-fall, is higher than where the body settles."""

    def person(k: int) -> Box | None:
        return upright() if k < 20 else None

    mid_fall: Box = (380.0, 300.0, 520.0, 380.0)  # 140 x 80, not yet on the floor
    settled: Box = (380.0, 360.0, 560.0, 410.0)  # 180 x 50, beside the box (x2 = 360)

    def fg(k: int) -> list[Box]:
        return [] if k < 21 else [mid_fall] if k < 23 else [settled]

    got = run(rule(), build(120, {P: person}, foreground=fg))
    assert frames_of(got) == [51], got
    assert r6(got[0][1].start_s) == 2.1
    # a blob more than 0.4 upright heights (80 px) away is someone else's business
    far: Box = (460.0, 360.0, 640.0, 410.0)
    got = run(rule(), build(120, {P: person}, foreground=lambda k: [far] if k >= 21 else []))
    assert got == []
