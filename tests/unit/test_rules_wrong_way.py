"""WrongWayRule on scripted tracks."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from selector.event import make_event_id
from selector.priority import priority
from selector.rules import FrameInfo, RuleError, WrongWayRule
from selector.zones import PolygonZone
from tests.unit.rule_scripts import CAM, NAMES, Row, feet, row, run, spans, tracks

pytestmark = pytest.mark.unit

RULE = "wrong_way:corridor"
ZONE = PolygonZone("corridor", [(100, 100), (700, 100), (700, 500), (100, 500)])
ALLOWED = (1.0, 0.0)  # travel to the right; walking left is the wrong way


def rule(**kw: object) -> WrongWayRule:
    args: dict[str, object] = {"classes": {0}, "class_names": NAMES}
    args.update(kw)
    return WrongWayRule(RULE, CAM, ZONE, ALLOWED, **args)  # type: ignore[arg-type]


def path(
    tid: int, points: Mapping[int, tuple[float, float]], h: float = 100.0, cls: int = 0
) -> dict[int, list[Row]]:
    return {k: [row(tid, x, y, h=h, cls=cls)] for k, (x, y) in points.items()}


def line(
    k0: int, k1: int, x0: float, y0: float, vx: float, vy: float
) -> dict[int, tuple[float, float]]:
    """Positions ``(x0, y0) + (k - k0) * (vx, vy)`` (px per frame) for frames ``k0..k1-1``."""
    return {k: (x0 + (k - k0) * vx, y0 + (k - k0) * vy) for k in range(k0, k1)}


def test_walking_the_wrong_way_starts_after_min_duration_and_ends_on_leaving() -> None:
    r = rule()
    # 8 px/frame = 80 px/s = 0.8 box heights/s to the left; x < 100 (out) from frame 69.
    got = run(r, path(7, line(0, 90, 650, 300, -8, 0)), 90)
    # Velocity known from 0.5 s (half a window): onset 0.5, + 2.0 s; last inside 6.8 + 1.0.
    assert spans(got) == [(25, 7, 2.5, None), (78, 7, 2.5, 6.8)]
    start, end = got[0][1], got[1][1]
    assert start.event_id == end.event_id == make_event_id(CAM, RULE, 7, 25)
    assert (start.type, start.zone, start.label, start.start_seq) == (
        "wrong_way",
        "corridor",
        "person",
        25,
    )
    assert start.bbox == pytest.approx(feet(450, 300))
    assert start.priority == priority(60, 0.9)
    assert start.details["speed"] == pytest.approx(0.8)
    assert start.details["angle_deg"] == pytest.approx(0.0, abs=1e-6)
    assert r.open_events() == []


@pytest.mark.parametrize(
    ("label", "vx", "vy", "h"),
    [
        ("the right way", 8.0, 0.0, 100.0),
        ("across", 0.0, 3.0, 100.0),
        (
            "70 degrees off the wrong way",
            -8 * math.cos(math.radians(70)),
            8 * math.sin(math.radians(70)),
            100.0,
        ),
        ("too slow: 0.15 box heights/s", -1.5, 0.0, 100.0),
    ],
)
def test_not_the_wrong_way(label: str, vx: float, vy: float, h: float) -> None:
    pts = line(0, 50, 300, 110, vx, vy)
    assert all(ZONE.contains([p])[0] for p in pts.values())  # inside all along
    assert run(rule(), path(7, pts, h=h), 50) == [], label


def test_angle_and_speed_thresholds_are_met_just_inside() -> None:
    # 45 degrees off the wrong way (max 60): wrong.
    got = run(rule(), path(7, line(0, 40, 600, 150, -5, 5), h=100), 40)
    assert [k for k, _ in got] == [25]
    assert got[0][1].details["angle_deg"] == pytest.approx(45.0)
    # The same 1.5 px/frame is 0.75 heights/s for a far person 20 px tall: scale-free.
    got = run(rule(), path(7, line(0, 40, 600, 300, -1.5, 0), h=20), 40)
    assert [k for k, _ in got] == [25]


def test_standing_still_with_jitter_is_not_wrong_way() -> None:
    pts = {k: (400 + (5 if k % 2 else -5), 300 + 3 * ((k * 7) % 3 - 1)) for k in range(100)}
    assert run(rule(), path(7, pts), 100) == []


def test_wrong_way_shorter_than_min_duration_gives_nothing() -> None:
    left = line(0, 15, 650, 300, -8, 0)  # 1.5 s to the left, then back to the right
    right = line(15, 60, 650 - 8 * 14, 300, 8, 0)
    assert run(rule(), path(7, left | right), 60) == []


def test_short_pause_is_one_event_a_stop_ends_it() -> None:
    go = line(0, 30, 650, 300, -8, 0)
    pause = dict.fromkeys(range(30, 40), (650.0 - 8 * 29, 300.0))  # stands 1.0 s
    go_on = line(40, 70, 650 - 8 * 29, 300, -6, 0)
    script = path(7, go | pause | go_on)
    assert spans(run(rule(), script, 70)) == [(25, 7, 2.5, None)]
    # The window smooths part of the pause; a grace shorter than the rest splits the run.
    assert spans(run(rule(grace_s=0.3), script, 70)) == [
        (25, 7, 2.5, None),
        (38, 7, 2.5, 3.5),
        (64, 7, 6.4, None),
    ]

    stop = dict.fromkeys(range(40, 100), (650 - 8 * 39, 300.0))
    got = run(rule(), path(7, line(0, 40, 650, 300, -8, 0) | stop), 100)
    assert len(got) == 2
    (_, start), (k_end, end) = got
    assert start.start_s == pytest.approx(2.5)
    assert end.end_s is not None and 3.9 <= end.end_s <= 4.6  # velocity window lag
    assert k_end == round((end.end_s + 1.0) * 10)  # grace 1.0 s after the last wrong frame


def test_occlusion_then_reappearing_keeps_the_event() -> None:
    seen = line(0, 90, 650, 300, -8, 0)
    script = path(7, {k: p for k, p in seen.items() if not 30 <= k < 50})  # hidden 3.0..4.9 s
    got = run(rule(), script, 90)
    assert spans(got) == [(25, 7, 2.5, None), (78, 7, 2.5, 6.8)]


def test_undetected_frames_never_end_it() -> None:
    r = rule()
    got = run(r, path(7, line(0, 30, 650, 300, -8, 0)), 80, undetected=set(range(30, 80)))
    assert spans(got) == [(25, 7, 2.5, None)]
    (closed,) = r.close_all(7.9)
    assert closed.end_s == pytest.approx(2.9)
    assert r.close_all(7.9) == []


def test_ended_track_ends_its_event() -> None:
    got = run(rule(), path(7, line(0, 40, 650, 300, -8, 0)), 50, ended={45: {7}})
    assert spans(got) == [(25, 7, 2.5, None), (45, 7, 2.5, 3.9)]


def test_each_run_of_a_track_is_its_own_event_and_ids_are_deterministic() -> None:
    script = path(
        7,
        line(0, 40, 650, 300, -8, 0)
        | line(40, 80, 650 - 8 * 39, 300, 8, 0)
        | line(80, 120, 650, 300, -8, 0),
    )
    got = run(rule(), script, 120)
    starts = [e for _, e in got if e.end_s is None]
    assert len(starts) == 2 and len(got) == 3  # the second is still open
    assert starts[0].event_id == make_event_id(CAM, RULE, 7, 25)
    assert starts[0].event_id != starts[1].event_id
    assert [e.event_id for _, e in got] == [e.event_id for _, e in run(rule(), script, 120)]


def test_two_tracks_ordered_by_id_and_class_filter() -> None:
    script = {
        k: [*path(9, line(0, 40, 650, 300, -8, 0))[k], *path(4, line(0, 40, 650, 200, -8, 0))[k]]
        for k in range(40)
    }
    assert [e.track_id for _, e in run(rule(), script, 40)] == [4, 9]
    car = path(3, line(0, 40, 650, 300, -8, 0), cls=2)
    assert run(rule(), car, 40) == []
    assert [e.label for _, e in run(rule(classes=None), car, 40)] == ["car"]


def test_frame_of_other_camera_is_refused() -> None:
    with pytest.raises(RuleError, match="gate"):
        rule().update(tracks([]), FrameInfo("gate", 0, 0.0, 0.0, 768, 576))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"direction": (0.0, 0.0)}, "direction"),
        ({"direction": (float("nan"), 1.0)}, "direction"),
        ({"direction": (1.0,)}, "direction"),
        ({"max_angle_deg": 0.0}, "max_angle_deg"),
        ({"max_angle_deg": 90.0}, "max_angle_deg"),
        ({"min_speed": 0.0}, "min_speed"),
        ({"window_s": -1.0}, "window_s"),
        ({"grace_s": float("inf")}, "grace_s"),
        ({"min_duration_s": -0.5}, "min_duration_s"),
        ({"severity": 101}, "severity"),
        ({"classes": {9}}, "unknown class ids"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], word: str) -> None:
    args: dict[str, object] = {"direction": ALLOWED, "classes": {0}, "class_names": NAMES}
    args.update(kwargs)
    with pytest.raises(RuleError, match=word) as info:
        WrongWayRule(RULE, CAM, ZONE, **args)  # type: ignore[arg-type]
    assert RULE in str(info.value)
