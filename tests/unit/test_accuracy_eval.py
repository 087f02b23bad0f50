"""Scoring of the accuracy benchmark: grouping, matching, Poisson bound, watch load, truth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.accuracy import report, truth
from benchmarks.accuracy.evaluate import (
    Prediction,
    WatchLoad,
    flagged_seconds,
    match,
    mixed_share,
    poisson_cdf,
    poisson_upper,
    predictions_from_records,
)
from benchmarks.accuracy.render import ActorTrack, Simulation
from benchmarks.accuracy.truth import GTEvent

pytestmark = pytest.mark.unit


def rec(
    eid: str, start: float, end: float | None, typ: str = "intrusion", **kw: object
) -> dict[str, object]:
    return {
        "event_id": eid,
        "type": typ,
        "start_s": start,
        "end_s": end,
        "zone": "z",
        "camera_id": "c",
        **kw,
    }


def pred(start: float, typ: str = "intrusion", eid: str | None = None, **kw: object) -> Prediction:
    return Prediction(eid or f"e{start}", typ, start, start + 1.0, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ predictions


def test_records_grouped_by_event_id_once() -> None:
    # A start, a re-sent start (priority bump), an end: one prediction.
    records = [
        rec("a", 5.0, None),
        rec("b", 9.0, None),
        rec("a", 5.0, None),
        rec("a", 5.0, 12.5),
        rec("b", 9.0, 9.0),
    ]
    preds = predictions_from_records(records)
    assert [(p.event_id, p.start_s, p.end_s) for p in preds] == [("a", 5.0, 12.5), ("b", 9.0, 9.0)]


def test_open_event_has_no_end() -> None:
    (p,) = predictions_from_records([rec("a", 3.0, None)])
    assert p.end_s is None


# ------------------------------------------------------------------ matching


def test_match_within_tolerance_only() -> None:
    gts = [GTEvent("intrusion", 10.0, 20.0, zone="z")]
    assert len(match(gts, [pred(11.9)], 2.0).pairs) == 1
    m = match(gts, [pred(12.1)], 2.0)
    assert m.pairs == [] and m.missed == [0] and m.false == [0]
    # A configurable tolerance.
    assert len(match(gts, [pred(12.1)], 2.5).pairs) == 1


def test_match_is_one_to_one_nearest_first() -> None:
    gts = [GTEvent("intrusion", 10.0, 11.0), GTEvent("intrusion", 13.0, 14.0)]
    preds = [pred(11.8), pred(12.6), pred(12.9)]
    m = match(gts, preds, 2.0)
    # 12.9 is nearest to 13.0; then 11.8 to 10.0 (1.8 s); 12.6 is left over.
    assert m.pairs == [(0, 0), (1, 2)]
    assert m.false == [1] and m.missed == []


def test_duplicate_prediction_is_a_false_positive() -> None:
    gts = [GTEvent("fall", 30.0, 40.0)]
    m = match(gts, [pred(30.2, "fall", "x"), pred(30.4, "fall", "y")], 2.0)
    assert len(m.pairs) == 1 and len(m.false) == 1


def test_type_line_direction_and_zone_must_agree() -> None:
    g = GTEvent("line_crossing", 5.0, 5.0, line="gate", direction="+")
    assert match([g], [pred(5.0, "intrusion")]).pairs == []
    assert match([g], [pred(5.0, "line_crossing", line="gate", direction="-")]).pairs == []
    assert match([g], [pred(5.0, "line_crossing", line="other", direction="+")]).pairs == []
    assert len(match([g], [pred(5.0, "line_crossing", line="gate", direction="+")]).pairs) == 1
    z = GTEvent("intrusion", 5.0, 6.0, zone="a")
    assert match([z], [pred(5.0, zone="b")]).pairs == []
    assert len(match([z], [pred(5.0, zone="a")]).pairs) == 1


def test_counts_per_rule_and_ratios() -> None:
    gts = [GTEvent("intrusion", 10.0, 20.0, zone="z"), GTEvent("intrusion", 40.0, 50.0, zone="z")]
    preds = [pred(10.5, zone="z"), pred(70.0, zone="z"), pred(3.0, "camera_health")]
    r = report.ScenarioResult(
        "s",
        "intrusion",
        "",
        "plaza",
        80.0,
        2,
        ["camera_health", "intrusion"],
        gts,
        preds,
        match(gts, preds),
    )
    rules = report.per_rule([r])
    c = rules["intrusion"]
    assert (c.tp, c.fp, c.fn, c.gt) == (1, 1, 1, 2)
    assert c.precision == 0.5 and c.recall == 0.5 and c.f1 == 0.5
    assert c.mean_abs_error_s == pytest.approx(0.5)
    h = rules["camera_health"]
    assert (h.tp, h.fp, h.fn) == (0, 1, 0) and h.recall is None and h.precision == 0.0
    assert list(rules) == ["intrusion", "camera_health"]


# ------------------------------------------------------------------ Poisson bound


@pytest.mark.parametrize(
    ("k", "expected"),
    # chi2.ppf(0.95, 2k + 2) / 2 (Garwood 1936; standard tables).
    [(0, 2.995732), (1, 4.743865), (2, 6.295794), (5, 10.513035), (10, 16.962219)],
)
def test_poisson_upper_matches_known_values(k: int, expected: float) -> None:
    assert poisson_upper(k) == pytest.approx(expected, abs=1e-5)


def test_poisson_upper_zero_is_minus_log_alpha() -> None:
    assert poisson_upper(0) == pytest.approx(-math.log(0.05), rel=1e-9)
    assert poisson_upper(0, 0.99) == pytest.approx(-math.log(0.01), rel=1e-9)


def test_poisson_upper_agrees_with_scipy_when_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k in (0, 3, 17, 150):
        assert poisson_upper(k) == pytest.approx(stats.chi2.ppf(0.95, 2 * k + 2) / 2, rel=1e-7)


def test_poisson_cdf_and_bad_input() -> None:
    assert poisson_cdf(0, 0.0) == 1.0
    assert poisson_cdf(2, 1.5) == pytest.approx(math.exp(-1.5) * (1 + 1.5 + 1.125))
    with pytest.raises(ValueError):
        poisson_upper(-1)


def test_quiet_rate_and_bound_per_camera_hour() -> None:
    scenes = [
        report.ScenarioResult(
            f"q{i}", "quiet", "empty", "plaza", 1800.0, 0, ["fall"], [], [], match([], [])
        )
        for i in range(2)
    ]
    q = report.quiet_summary(scenes)
    assert q["camera_hours"] == 1.0 and q["false_alerts"] == 0
    assert q["per_camera_hour"] == 0.0 and q["upper95_per_camera_hour"] == pytest.approx(2.996)
    scenes[0].preds = [pred(100.0, "camera_health")]
    q = report.quiet_summary(scenes)
    assert q["false_alerts"] == 1 and q["by_type"] == {"camera_health": 1}
    assert q["upper95_per_camera_hour"] == pytest.approx(4.744)


# ------------------------------------------------------------------ watch load


def test_flagged_seconds_union_minimum_review_and_clipping() -> None:
    # Short alert padded to 10 s; overlapping alerts counted once; open end runs to the end.
    assert flagged_seconds([(5.0, 6.0)], 100.0) == pytest.approx(10.0)
    assert flagged_seconds([(5.0, 30.0), (20.0, 40.0)], 100.0) == pytest.approx(35.0)
    assert flagged_seconds([(95.0, 96.0)], 100.0) == pytest.approx(5.0)
    assert flagged_seconds([(50.0, None)], 100.0) == pytest.approx(50.0)
    assert flagged_seconds([(0.0, 1.0), (30.0, 31.0)], 100.0, min_review_s=2.0) == 4.0
    assert flagged_seconds([], 100.0) == 0.0


def test_watch_load_share_reduction_and_mix() -> None:
    quiet = WatchLoad(flagged_s=36.0, total_s=3600.0)
    inc = WatchLoad(flagged_s=300.0, total_s=1000.0)
    assert quiet.share == pytest.approx(0.01) and quiet.reduction == pytest.approx(100.0)
    assert WatchLoad(0.0, 10.0).reduction == math.inf
    assert mixed_share(quiet, inc, 0.95) == pytest.approx(0.95 * 0.01 + 0.05 * 0.3)


def test_report_watch_load_over_scenarios() -> None:
    q = report.ScenarioResult(
        "q", "quiet", "empty", "plaza", 300.0, 0, [], [], [pred(100.0)], match([], [pred(100.0)])
    )
    i = report.ScenarioResult(
        "i", "intrusion", "", "plaza", 100.0, 1, [], [], [pred(10.0)], match([], [pred(10.0)])
    )
    w = report.watch_load([q, i])
    assert w["suite"]["flagged_s"] == pytest.approx(20.0)
    assert w["suite"]["share"] == pytest.approx(20.0 / 400.0)
    assert w["control_room_mix"]["share"] == pytest.approx(
        0.95 * 10 / 300 + 0.05 * 10 / 100, rel=1e-3
    )


def test_readme_section_replaced_between_markers(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    report.update_readme(path, "first")
    report.update_readme(path, "second")
    text = path.read_text()
    assert text.count(report.BEGIN) == 1 and "second" in text and "first" not in text
    path.write_text("# B\n\nintro\n")
    report.update_readme(path, "x")
    assert path.read_text().startswith("# B\n\nintro\n") and "x\n" + report.END in path.read_text()


# ------------------------------------------------------------------ ground truth


def track(xy: list[tuple[float, float]], height: float = 100.0) -> ActorTrack:
    n = len(xy)
    arr = np.array(xy, np.float64)
    box = np.stack([arr[:, 0] - 20, arr[:, 1] - height, arr[:, 0] + 20, arr[:, 1]], axis=1)
    return ActorTrack(
        present=np.ones(n, bool),
        xy=arr,
        height=np.full(n, height),
        angle=np.zeros(n),
        squash=np.ones(n),
        facing=np.ones(n, np.int8),
        gait=np.zeros(n, np.int32),
        walking=np.ones(n, bool),
        box=box,
        step_start_s=[],
    )


def walk(x0: float, x1: float, y: float, n: int) -> list[tuple[float, float]]:
    return [(x0 + (x1 - x0) * k / (n - 1), y) for k in range(n)]


SQUARE = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]]


def test_zone_stay_start_is_entry_plus_dwell() -> None:
    # Enter at x=100 (frame 10 -> 1.0 s), stay 50 frames, leave.
    xy = walk(0, 100, 200, 11) + [(200.0, 200.0)] * 50 + walk(200, 400, 200, 11)[1:]
    sim = Simulation(10.0, len(xy), [track(xy)], [])
    (ev,) = truth.zone_stay_gt(sim, "intrusion", "z", SQUARE, 2.0, 1.0)
    assert ev.start_s == pytest.approx(1.0 + 2.0)
    short = walk(0, 400, 200, 41)  # 10 px per frame: 20 frames inside = 2.0 s > 1.9 s
    sim2 = Simulation(10.0, len(short), [track(short)], [])
    assert truth.zone_stay_gt(sim2, "intrusion", "z", SQUARE, 2.5, 1.0) == []


def test_crossing_direction_follows_the_schema_convention() -> None:
    # Horizontal line p1 (left) -> p2 (right): positive side is below (larger y).
    down = [(200.0, 100.0 + 10 * k) for k in range(21)]  # y 100 -> 300, crosses y=200
    sim = Simulation(10.0, 21, [track(down), track(down[::-1])], [])
    evs = truth.crossing_gt(sim, "gate", [100.0, 200.0], [300.0, 200.0])
    assert sorted((e.note, e.direction) for e in evs) == [("a0", "+"), ("a1", "-")]
    assert evs[0].start_s == pytest.approx(1.0)
    # Walking beside the line within the segment but never across it: nothing.
    along = [(100.0 + 10 * k, 170.0) for k in range(21)]
    assert (
        truth.crossing_gt(
            Simulation(10.0, 21, [track(along)], []), "gate", [100.0, 200.0], [300.0, 200.0]
        )
        == []
    )
    # Crossing the infinite line beyond the segment's end: nothing.
    beyond = [(400.0, 100.0 + 10 * k) for k in range(21)]
    assert (
        truth.crossing_gt(
            Simulation(10.0, 21, [track(beyond)], []), "gate", [100.0, 200.0], [300.0, 200.0]
        )
        == []
    )


def test_crowding_needs_the_count_for_the_duration() -> None:
    n = 100
    inside = [(200.0, 200.0)] * n
    late = [(500.0, 500.0)] * 30 + [(210.0, 210.0)] * (n - 30)
    sim = Simulation(10.0, n, [track(inside), track(late)], [])
    (ev,) = truth.crowding_gt(sim, "z", SQUARE, 2, 5.0)
    assert ev.start_s == pytest.approx(3.0 + 5.0)
    assert truth.crowding_gt(sim, "z", SQUARE, 3, 5.0) == []


def test_wrong_way_start_is_onset_plus_duration() -> None:
    # Leftward at 80 px/s (0.8 heights/s) through the square; allowed direction is +x.
    xy = [(400.0 - 8.0 * k, 200.0) for k in range(50)]
    sim = Simulation(10.0, 50, [track(xy)], [])
    (ev,) = truth.wrong_way_gt(sim, "z", SQUARE, [1.0, 0.0], 2.0)
    onset = 13 / 10.0  # first frame inside: x = 400 - 8k <= 300 -> k = 13
    assert ev.start_s == pytest.approx(onset + 2.0)
    assert truth.wrong_way_gt(sim, "z", SQUARE, [-1.0, 0.0], 2.0) == []


def test_incidents_merge_within_cooldown() -> None:
    a = GTEvent("intrusion", 10.0, 20.0, zone="z")
    b = GTEvent("intrusion", 24.0, 30.0, zone="z")  # 4 s after a ended: merged (5 s)
    c = GTEvent("intrusion", 40.0, 45.0, zone="z")
    d = GTEvent("intrusion", 24.0, 30.0, zone="other")
    merged = truth.merge_incidents([c, b, a, d])
    assert [(m.start_s, m.end_s, m.zone) for m in merged] == [
        (10.0, 30.0, "z"),
        (24.0, 30.0, "other"),
        (40.0, 45.0, "z"),
    ]
    x1 = GTEvent("line_crossing", 5.0, 5.0, line="g", direction="+")
    x2 = GTEvent("line_crossing", 5.5, 5.5, line="g", direction="-")
    assert len(truth.merge_incidents([x1, x2])) == 2  # crossings: cooldown 0


def test_inside_agrees_with_the_pipeline_zone_test() -> None:
    from selector.zones import PolygonZone

    rng = np.random.default_rng(3)
    poly = [[100.0, 120.0], [400.0, 90.0], [460.0, 300.0], [250.0, 200.0], [80.0, 330.0]]
    pts = rng.uniform(50, 500, (4000, 2))
    pts[:5] = poly  # vertices are on the boundary: inside for both
    assert np.array_equal(truth.inside(poly, pts), PolygonZone("z", poly).contains(pts))
    assert not truth.inside(poly, np.array([[np.nan, np.nan]]))[0]


def test_visible_share_counts_frame_and_occluders_in_front() -> None:
    from benchmarks.accuracy.assets import Background
    from benchmarks.accuracy.scenarios import visible_share

    ys, xs = np.mgrid[100:200, 300:310]  # a 10 px wide post standing at y = 400
    bg = Background(
        "t",
        np.zeros((576, 768, 3), np.uint8),
        (0.0, 1.0),
        np.array([[0, 0], [768, 0], [768, 576], [0, 576]], float),
        (),
        "test",
        occluders=((ys.ravel(), xs.ravel(), 400.0),),
    )
    box = [300.0, 100.0, 320.0, 200.0]  # half of it behind the post's pixels
    assert visible_share(bg, box, foot_y=200.0) == pytest.approx(0.5)  # behind the post
    assert visible_share(bg, box, foot_y=450.0) == pytest.approx(1.0)  # in front of it
    assert visible_share(bg, [-10.0, 0.0, 10.0, 10.0], foot_y=10.0) == pytest.approx(0.5)
    assert visible_share(bg, [800.0, 0.0, 900.0, 10.0], foot_y=10.0) == 0.0


def test_start_delay_compares_the_events_both_runs_matched() -> None:
    from benchmarks.start_delay import compare, markdown

    def run(starts: list[float | None]) -> dict[str, Any]:
        gt = [{"type": "intrusion" if i < 2 else "fall"} for i in range(len(starts))]
        preds = [{"start_s": s} for s in starts if s is not None]
        matched, k = [], 0
        for i, s in enumerate(starts):
            if s is not None:
                matched.append([i, k, 0.0])
                k += 1
        return {"scenarios": [{"name": "s1", "gt": gt, "predictions": preds, "matched": matched}]}

    table = compare(run([10.0, 20.0, 30.0]), run([10.5, 20.0, None]))
    assert table["intrusion"] == {
        "both": 2,
        "only_baseline": 0,
        "only_new": 0,
        "mean_s": 0.25,
        "p95_s": 0.47,  # 0.475 (linear interpolation) is 0.4749... in binary
        "max_s": 0.5,
        "min_s": 0.0,
    }
    assert table["fall"]["both"] == 0 and table["fall"]["only_baseline"] == 1
    assert list(table)[-1] == "all" and table["all"]["both"] == 2
    assert "| fall | 0 | 1 | 0 | – |" in markdown(table)
