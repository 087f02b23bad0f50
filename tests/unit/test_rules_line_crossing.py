"""LineCrossingRule on scripted tracks."""

from __future__ import annotations

from typing import Any

import pytest

from selector.event import Event, make_event_id
from selector.lines import Line
from selector.priority import priority
from selector.rules import FrameInfo, LineCrossingRule, RuleError
from selector.rules.common import TIME_EPS_S
from tests.unit.rule_scripts import CAM, NAMES, Row, feet, r6, row, run, tracks

pytestmark = pytest.mark.unit

RULE = "line_crossing:gate"
# Horizontal, p1 left of p2: the positive side is below (larger y); d = y - 300.
GATE = Line("gate", [(100, 300), (500, 300)])


def rule(**kw: object) -> LineCrossingRule:
    args: dict[str, object] = {"classes": {0}, "class_names": NAMES}
    args.update(kw)
    return LineCrossingRule(RULE, CAM, GATE, **args)  # type: ignore[arg-type]


def walk(
    tid: int, x0: float, y0: float, dx: float, dy: float, k0: int, k1: int, **kw: Any
) -> dict[int, list[Row]]:
    """Track ``tid`` at ``(x0, y0) + (k - k0) * (dx, dy)`` for frames ``k0..k1-1``."""
    return {k: [row(tid, x0 + (k - k0) * dx, y0 + (k - k0) * dy, **kw)] for k in range(k0, k1)}


def merge(*scripts: dict[int, list[Row]]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {}
    for s in scripts:
        for k, rows in s.items():
            out.setdefault(k, []).extend(rows)
    return out


def crossings(
    got: list[tuple[int, Event]],
) -> list[tuple[int, int | None, str | None, float, float | None]]:
    """``(frame, track, direction, start_s, end_s)`` of each record, times rounded."""
    return [(k, e.track_id, e.direction, round(e.start_s, 6), r6(e.end_s)) for k, e in got]


def test_walking_down_through_the_line_is_one_plus_crossing() -> None:
    r = rule()
    got = run(r, walk(7, 300, 205, 0, 10, 0, 30), 30)  # y 295 at 0.9 s, 305 at 1.0 s
    # Path meets the line at 0.95 s; the side is confirmed at y >= 310 (band 10 px) = 1.1 s.
    assert crossings(got) == [(11, 7, "+", 0.95, None), (11, 7, "+", 0.95, 0.95)]
    start, end = got[0][1], got[1][1]
    assert start.event_id == end.event_id == make_event_id(CAM, RULE, 7, 11)
    assert (start.type, start.line, start.zone, start.label) == (
        "line_crossing",
        "gate",
        None,
        "person",
    )
    assert start.details == {"count_plus": 1, "count_minus": 0}
    assert start.bbox == pytest.approx(feet(300, 315))
    assert start.start_seq == 11 and start.priority == priority(40, 0.9)
    assert r.counts() == {"+": 1, "-": 0}


def test_crossing_and_crossing_back_counts_twice_with_running_totals() -> None:
    r = rule()
    script = walk(7, 300, 205, 0, 10, 0, 20) | walk(7, 300, 395, 0, -10, 20, 40)
    got = run(r, script, 40)
    assert [(e.direction, e.details["count_plus"], e.details["count_minus"]) for _, e in got] == [
        ("+", 1, 0),
        ("+", 1, 0),
        ("-", 1, 1),
        ("-", 1, 1),
    ]
    assert r.counts() == {"+": 1, "-": 1}
    ids = [e.event_id for _, e in got]
    assert ids[0] == ids[1] != ids[2] == ids[3]


def test_jitter_on_the_line_is_not_counted_but_would_be_without_hysteresis() -> None:
    approach = walk(7, 300, 250, 0, 0, 0, 10)  # confirmed on the negative side
    jitter = {k: [row(7, 300, 300 + (6 if k % 2 else -6))] for k in range(10, 60)}
    script = approach | jitter
    r = rule()
    assert run(r, script, 60) == [] and r.counts() == {"+": 0, "-": 0}
    loose = rule(hysteresis=0.0)
    # Without the band every side change of frames 11..59 counts: what the band stops.
    assert len(run(loose, script, 60)) == 2 * 49


def test_walking_along_the_line_is_not_counted() -> None:
    script = {k: [row(7, 50 + 10 * k, 300 + (4 if k % 3 else -5))] for k in range(50)}
    r = rule()
    assert run(r, script, 50) == [] and r.counts() == {"+": 0, "-": 0}


def test_wobble_then_real_crossing_counts_once_at_the_last_meeting_with_the_line() -> None:
    script = walk(7, 300, 250, 0, 0, 0, 10)
    script |= {10: [row(7, 300, 303)], 11: [row(7, 300, 297)], 12: [row(7, 300, 302)]}
    script |= {13: [row(7, 300, 298)], 14: [row(7, 300, 302)], 15: [row(7, 300, 340)]}
    got = run(rule(), script, 16)
    # The path last met the line between 1.3 s (y 298) and 1.4 s (y 302): at 1.35 s.
    assert crossings(got)[0] == (15, 7, "+", 1.35, None)
    assert len(got) == 2


def test_crossing_beyond_the_segment_takes_the_side_uncounted() -> None:
    r = rule()
    script = walk(7, 600, 250, 0, 10, 0, 11)  # down at x = 600, right of p2: 250 -> 350
    script |= walk(7, 600, 350, -30, 0, 11, 21)  # along y = 350 to x = 300
    script |= walk(7, 300, 350, 0, -10, 21, 31)  # up through the segment
    got = run(r, script, 31)
    assert [e.direction for _, e in got] == ["-", "-"]
    assert r.counts() == {"+": 0, "-": 1}


def test_segment_margin_extends_the_ends() -> None:
    script = walk(7, 540, 250, 0, 10, 0, 12)  # projection 1.1
    assert run(rule(), script, 12) == []
    assert len(run(rule(segment_margin=0.15), script, 12)) == 2


def test_occluded_track_reappearing_on_the_other_side_counts() -> None:
    script = walk(7, 300, 250, 0, 0, 0, 6)  # seen at y 250 until 0.5 s
    script |= walk(7, 300, 350, 0, 0, 21, 25)  # missing 0.6 .. 2.0 s, back at y 350
    got = run(rule(), script, 25)
    assert crossings(got) == [(21, 7, "+", 1.3, None), (21, 7, "+", 1.3, 1.3)]
    # Back on the same side: nothing.
    script = walk(7, 300, 250, 0, 0, 0, 6) | walk(7, 300, 260, 0, 0, 21, 25)
    assert run(rule(), script, 25) == []


def test_undetected_frames_change_nothing() -> None:
    script = walk(7, 300, 250, 0, 0, 0, 6) | walk(7, 300, 350, 0, 0, 21, 25)
    got = run(rule(), script, 25, undetected=set(range(6, 21)))
    assert crossings(got)[0] == (21, 7, "+", 1.3, None)


def test_ended_track_is_forgotten() -> None:
    script = walk(7, 300, 250, 0, 0, 0, 6) | walk(7, 300, 350, 0, 0, 21, 25)
    assert run(rule(), script, 25, ended={10: {7}}) == []


def test_directions_filter_events_not_counts() -> None:
    r = rule(directions={"-"})
    script = walk(7, 300, 205, 0, 10, 0, 20) | walk(7, 300, 395, 0, -10, 20, 40)
    got = run(r, script, 40)
    assert [e.direction for _, e in got] == ["-", "-"]
    assert got[0][1].details == {"count_plus": 1, "count_minus": 1}
    assert r.counts() == {"+": 1, "-": 1}


def test_two_tracks_in_one_frame_ordered_by_id_with_running_counts() -> None:
    script = merge(walk(9, 200, 205, 0, 10, 0, 20), walk(4, 400, 205, 0, 10, 0, 20))
    got = run(rule(), script, 20)
    assert [(k, e.track_id, e.details["count_plus"]) for k, e in got] == [
        (11, 4, 1),
        (11, 4, 1),
        (11, 9, 2),
        (11, 9, 2),
    ]
    assert len({e.event_id for _, e in got}) == 2


def test_event_ids_unique_per_crossing_and_deterministic() -> None:
    script = (
        walk(7, 300, 205, 0, 10, 0, 20)
        | walk(7, 300, 395, 0, -10, 20, 40)
        | walk(7, 300, 205, 0, 10, 40, 60)
    )
    a = [e.event_id for _, e in run(rule(), script, 60)]
    b = [e.event_id for _, e in run(rule(), script, 60)]
    assert a == b and len(a) == 6 and len(set(a)) == 3


def test_class_filter_and_min_score() -> None:
    script = merge(
        walk(1, 200, 205, 0, 10, 0, 20, cls=2), walk(2, 300, 205, 0, 10, 0, 20, score=0.3)
    )
    assert run(rule(min_score=0.5), script, 20) == []
    got = run(rule(classes=None), script, 20)
    assert [e.label for _, e in got] == ["car", "car", "person", "person"]


def test_close_all_has_nothing_open_and_forgets_sides_but_keeps_counts() -> None:
    r = rule()
    run(r, walk(7, 300, 205, 0, 10, 0, 20), 20)
    assert r.close_all(1.9) == []
    assert r.counts() == {"+": 1, "-": 0}
    # Side forgotten: the next observation on the other side is a first sighting.
    assert r.update(tracks([row(7, 300, 250)]), FrameInfo(CAM, 20, 2.0, 0.0, 768, 576)) == []
    with pytest.raises(RuleError, match="end_s"):
        r.close_all(float("nan"))


def test_frame_of_other_camera_is_refused() -> None:
    with pytest.raises(RuleError, match="gate"):
        rule().update(tracks([]), FrameInfo("gate", 0, 0.0, 0.0, 768, 576))


def test_interpolated_time_never_after_the_frame() -> None:
    got = run(rule(), walk(7, 300, 200, 0, 100, 0, 3), 3)  # 200 -> 300 -> 400
    (k, e), _ = got
    assert k == 2 and e.start_s == pytest.approx(0.1) and e.start_s <= 0.2 + TIME_EPS_S


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"directions": set()}, "directions"),
        ({"directions": {"+", "up"}}, "directions"),
        ({"hysteresis": -0.1}, "hysteresis"),
        ({"segment_margin": float("nan")}, "segment_margin"),
        ({"min_score": -0.1}, "min_score"),
        ({"severity": -1}, "severity"),
        ({"zone_weight": float("inf")}, "zone_weight"),
        ({"classes": {3}}, "unknown class ids"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(RuleError, match=word) as info:
        rule(**kwargs)
    assert RULE in str(info.value)
