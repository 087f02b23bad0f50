"""The ground model: calibration, the estimate from people, and the rules measuring on it.

A synthetic pinhole camera (6 m up, tilted 12 degrees down, 70 degrees of view, 1280x720)
gives exact image points of known floor positions, so every distance has a true value.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from argus.config import ConfigError, parse_config
from argus.rulebook import RuleBook, camera_ground
from detectors.detections import Detections
from selector.camera import CameraSelector
from selector.ground import (
    PERSON_HEIGHT_M,
    CameraGround,
    GroundError,
    GroundEstimator,
    GroundModel,
    calibrate,
)
from selector.lines import Line
from selector.rules.abandoned import AbandonedObjectRule
from selector.rules.base import FrameInfo
from selector.rules.line_crossing import LineCrossingRule
from selector.rules.wrong_way import WrongWayRule
from selector.tracker import ByteTracker
from selector.zones import PolygonZone

W, H = 1280, 720
NAMES = ("person", "bicycle", "car", "backpack", "handbag", "suitcase")


class Pinhole:
    """A camera ``cam_h`` metres above a flat floor, tilted ``tilt_deg`` down.

    Floor positions are ``(X, Z)`` metres: ``X`` to the right, ``Z`` ahead.
    """

    def __init__(self, hfov_deg: float = 70.0, cam_h: float = 6.0, tilt_deg: float = 12.0):
        self.f = (W / 2) / math.tan(math.radians(hfov_deg) / 2)
        self.cam_h = cam_h
        self.s, self.c = math.sin(math.radians(tilt_deg)), math.cos(math.radians(tilt_deg))

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel of the point ``x`` right, ``y`` up, ``z`` ahead (metres)."""
        ry = y - self.cam_h
        zc, yc = -ry * self.s + z * self.c, -ry * self.c - z * self.s
        return (W / 2 + self.f * x / zc, H / 2 + self.f * yc / zc)

    def floor(self, x: float, z: float) -> tuple[float, float]:
        return self.project(x, 0.0, z)

    def person(self, x: float, z: float, tall: float = PERSON_HEIGHT_M) -> list[float]:
        """The box (px) of a standing person ``tall`` metres, 0.5 m wide."""
        u, foot = self.floor(x, z)
        _, head = self.project(x, tall, z)
        half = self.floor(x + 0.25, z)[0] - u
        return [u - half, head, u + half, foot]

    def bag(self, x: float, z: float) -> list[float]:
        u, foot = self.floor(x, z)
        _, top = self.project(x, 0.5, z)
        half = self.floor(x + 0.2, z)[0] - u
        return [u - half, top, u + half, foot]


CAM = Pinhole()
CORNERS = [(-3.0, 10.0), (3.0, 10.0), (3.0, 25.0), (-3.0, 25.0)]


def calibrated(camera_id: str = "cam") -> GroundModel:
    return calibrate(camera_id, [CAM.floor(*p) for p in CORNERS], CORNERS)


def dets(boxes: list[list[float]], classes: list[int], ids: list[int]) -> Detections:
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        score=np.full(len(boxes), 0.9, np.float32),
        class_id=np.array(classes, np.int64),
        tracker_id=np.array(ids, np.int64),
        names=NAMES,
    )


def frame(t: float, seq: int, ground: GroundModel | None) -> FrameInfo:
    return FrameInfo("cam", seq, t, 1000.0 + t, W, H, ground=ground)


# ------------------------------------------------------------------ calibration


def test_a_calibration_measures_the_floor_in_metres_both_ways() -> None:
    model = calibrated()
    assert model.calibrated
    across = model.distance_m(CAM.floor(0, 12), CAM.floor(2, 12))
    along = model.distance_m(CAM.floor(0, 12), CAM.floor(0, 14))
    assert across == pytest.approx(2.0, abs=0.01)
    assert along == pytest.approx(2.0, abs=0.01)
    # ...where the picture sees them very differently
    px_across = math.dist(CAM.floor(0, 12), CAM.floor(2, 12))
    px_along = math.dist(CAM.floor(0, 12), CAM.floor(0, 14))
    assert px_across > 1.8 * px_along
    # above the horizon there is no floor
    assert np.isnan(model.to_ground([[640.0, 10.0]])).all()


def test_more_than_four_points_are_fitted_in_the_least_squares_sense() -> None:
    rng = np.random.default_rng(3)
    pts = [(x, z) for x in (-4.0, 0.0, 4.0) for z in (9.0, 15.0, 30.0)]
    img = [np.add(CAM.floor(*p), rng.normal(0, 0.7, 2)).tolist() for p in pts]
    model = calibrate("cam", img, pts)
    assert model.distance_m(CAM.floor(-4, 9), CAM.floor(4, 30)) == pytest.approx(
        math.dist((-4, 9), (4, 30)), rel=0.03
    )


@pytest.mark.parametrize(
    ("image", "ground", "words"),
    [
        ([(1, 1), (2, 2), (3, 3)], [(0, 0), (1, 0), (1, 1)], "four or more"),
        ([(100, 400), (200, 400), (300, 400), (200, 600)], CORNERS, "on one line"),
        (
            [CAM.floor(*p) for p in CORNERS],
            [(0, 0), (1, 0), (2, 0), (0, 5)],
            "three of the ground points are on one line",
        ),
        ([(-5, 400), (200, 400), (300, 500), (200, 600)], CORNERS, "outside the picture"),
        ([CAM.floor(*p) for p in CORNERS], CORNERS[:3], "give pairs"),
        ([(100, 400), (100, 400), (300, 500), (200, 600)], CORNERS, "given twice"),
    ],
)
def test_points_that_cannot_calibrate_are_refused_naming_the_camera(
    image: list[tuple[float, float]], ground: list[tuple[float, float]], words: str
) -> None:
    with pytest.raises(GroundError, match=words) as e:
        calibrate("gate-3", image, ground)
    assert "camera 'gate-3'" in str(e.value)


def test_points_paired_with_the_wrong_ground_positions_are_refused() -> None:
    pts = [(x, z) for x in (-4.0, 0.0, 4.0) for z in (9.0, 20.0)]
    img = [CAM.floor(*p) for p in pts]
    img[0], img[4] = img[4], img[0]  # two pairs swapped
    with pytest.raises(GroundError, match=r"(do not fit one flat floor|beyond the horizon)"):
        calibrate("cam", img, pts)


def test_a_calibration_outside_the_picture_is_dropped_and_said_once() -> None:
    model = calibrate("cam", [(10, 400), (1900, 400), (1900, 1000), (10, 1000)], CORNERS)
    ground = CameraGround("cam", model)
    problem = ground.check_picture(W, H)
    assert problem is not None and "camera 'cam'" in problem and "1280x720" in problem
    assert ground.model is None
    assert ground.check_picture(W, H) is None  # said once
    assert ground.describe()["source"] == "none"


# ------------------------------------------------------------------ estimated


def people_frames(seed: int, n: int, cam: Pinhole = CAM) -> list[Detections]:
    """``n`` frames of 5 people each, standing anywhere in view of ``cam``, each a new
    track (so every sighting counts)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        boxes = []
        while len(boxes) < 5:
            x, z = rng.uniform(-12, 12), rng.uniform(1, 60)
            b = cam.person(x, z, rng.normal(PERSON_HEIGHT_M, 0.07))
            ahead = z * cam.c + cam.cam_h * cam.s > 0
            if ahead and b[1] > 3 and b[3] < H - 3 and b[0] > 0 and b[2] < W:
                boxes.append(b)
        out.append(dets(boxes, [0] * 5, list(range(5 * k + 1, 5 * k + 6))))
    return out


@pytest.mark.parametrize(("cam_h", "tilt"), [(6.0, 12.0), (4.0, 30.0), (6.0, 45.0)])
def test_the_ground_is_estimated_from_the_people_seen(cam_h: float, tilt: float) -> None:
    cam = Pinhole(cam_h=cam_h, tilt_deg=tilt)
    est = GroundEstimator([0])
    for k, d in enumerate(people_frames(0, 120, cam)):
        est.observe(d, k * 0.6, W, H)
    model, fit = est.model, est.fit
    assert model is not None and model.source == "estimated" and not model.calibrated
    assert fit is not None and fit.rows >= GroundEstimator.MIN_BINS
    assert fit.tilt_deg == pytest.approx(tilt, abs=2.5)
    assert fit.camera_h == pytest.approx(cam_h, rel=0.1)
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 50:  # 1 m steps along and across the floor, wherever in view
        x, z = rng.uniform(-5, 5), rng.uniform(2, 40)
        here, along, across = cam.floor(x, z), cam.floor(x, z + 1), cam.floor(x + 1, z)
        if not all(0 < p[0] < W and 0 < p[1] < H for p in (here, along, across)):
            continue
        checked += 1
        assert model.distance_m(here, along) == pytest.approx(1.0, rel=0.15), (x, z)
        assert model.distance_m(here, across) == pytest.approx(1.0, rel=0.1), (x, z)


def test_no_estimate_from_too_few_rows_or_heights_no_camera_explains() -> None:
    one_row = GroundEstimator([0])
    for k in range(100):
        one_row.observe(
            dets([CAM.person(x, 15.0) for x in (-3, 0, 3)], [0] * 3, [1, 2, 3]), k, W, H
        )
    assert one_row.model is None
    no_camera = GroundEstimator([0])  # heights unrelated to the row: no floor explains them
    rng = np.random.default_rng(1)
    for k in range(400):
        foot, tall = rng.uniform(200, 700), rng.choice([40.0, 300.0])
        box = [600.0, foot - tall, 600.0 + tall / 3, foot]
        no_camera.observe(dets([box], [0], [k + 1]), k * 0.6, W, H)
    assert no_camera.model is None
    bags_only = GroundEstimator([0])
    for k, d in enumerate(people_frames(2, 100)):
        bags_only.observe(
            dets(d.xyxy.tolist(), [3] * len(d), list(range(1, len(d) + 1))), k * 0.2, W, H
        )
    assert bags_only.model is None


def test_a_new_picture_size_starts_the_estimate_over() -> None:
    est = GroundEstimator([0])
    for k, d in enumerate(people_frames(0, 200)):
        est.observe(d, k * 0.2, W, H)
    assert est.model is not None
    est.observe(dets([], [], []), 50.0, 640, 360)
    assert est.model is None and est.fit is None


# ------------------------------------------------------------------ config


def config(camera: dict[str, object], rules: list[dict[str, object]]) -> dict[str, object]:
    return {"cameras": [{"id": "cam", "source": "x.mp4", **camera}], "rules": rules}


GROUND = {"points": [{"image": list(CAM.floor(*p)), "ground": list(p)} for p in CORNERS]}


def build(camera: dict[str, object], rule: dict[str, object]) -> list[object]:
    cfg = parse_config(config(camera, [rule]), "test.yaml")
    book = RuleBook(cfg.cameras[0], NAMES, "test.yaml")
    return list(book.build(cfg.rules)[0])


def test_a_collinear_calibration_in_the_config_names_the_camera() -> None:
    bad = {"points": [{"image": [100 * k, 400], "ground": [k, 0]} for k in range(1, 5)]}
    with pytest.raises(ConfigError, match=r"cameras\.0.*camera 'cam'.*on one line"):
        parse_config(config({"ground": bad}, []), "test.yaml")


def test_metre_keys_need_a_calibrated_camera_and_replace_the_body_height_keys() -> None:
    rule = {"type": "wrong_way", "camera": "cam", "zone": "all", "direction": [1, 0]}
    zone = {"zones": [{"name": "all", "polygon": [[0, 0], [W, 0], [W, H], [0, H]]}]}
    with pytest.raises(ConfigError, match=r"rules\.0\.min_speed_m: metres need the ground"):
        build(zone, {**rule, "min_speed_m": 1.0})
    (built,) = build({**zone, "ground": GROUND}, {**rule, "min_speed_m": 1.0})
    assert isinstance(built, WrongWayRule) and built.reach.ground_m == 1.0
    # the metres win over the body heights (a rule written back with its defaults)
    (both,) = build({**zone, "ground": GROUND}, {**rule, "min_speed_m": 1.0, "min_speed": 0.3})
    assert isinstance(both, WrongWayRule) and both.reach.ground_m == 1.0
    crossing = {"type": "line_crossing", "camera": "cam", "line": "gate"}
    line = {"lines": [{"name": "gate", "points": [[0, 500], [W, 500]]}]}
    (lc,) = build({**line, "ground": GROUND}, {**crossing, "hysteresis_m": 0.5})
    assert isinstance(lc, LineCrossingRule) and lc.reach.ground_m == 0.5
    (ab,) = build(
        {"ground": GROUND}, {"type": "abandoned_object", "camera": "cam", "owner_distance_m": 3}
    )
    assert isinstance(ab, AbandonedObjectRule) and ab.reach.ground_m == 3.0


def test_the_composition_root_calibrates_estimates_or_measures_in_the_picture() -> None:
    cfg = parse_config(
        {
            "cameras": [
                {"id": "a", "source": "a.mp4", "ground": GROUND},
                {"id": "b", "source": "b.mp4"},
                {"id": "c", "source": "c.mp4", "ground": {"estimate": False}},
            ]
        },
        "test.yaml",
    )
    a, b, c = (camera_ground(cam, NAMES) for cam in cfg.cameras)
    assert a.model is not None and a.model.calibrated  # (its estimator waits unused)
    assert b.model is None and b.estimator is not None
    assert c.model is None and c.estimator is None


# ------------------------------------------------------------------ rules on the floor


def walk(
    rule: WrongWayRule | LineCrossingRule | AbandonedObjectRule,
    path: list[tuple[float, list[list[float]], list[int], list[int]]],
    ground: GroundModel | None,
) -> list[object]:
    events: list[object] = []
    for seq, (t, boxes, classes, ids) in enumerate(path):
        events += rule.update(dets(boxes, classes, ids), frame(t, seq, ground))
    return events


def toward_camera(speed_m_s: float) -> list[tuple[float, list[list[float]], list[int], list[int]]]:
    """A person walking straight toward the camera from 30 m, 10 frames a second."""
    return [(k / 10, [CAM.person(0.0, 30.0 - speed_m_s * k / 10)], [0], [1]) for k in range(60)]


def test_wrong_way_measures_speed_on_the_floor_and_reports_metres_per_second() -> None:
    zone = PolygonZone("all", [(0, 0), (W, 0), (W, H), (0, H)])

    def rule(**kw: float) -> WrongWayRule:
        return WrongWayRule("wrong_way:a", "cam", zone, (0.0, -1.0), None, min_duration_s=1.0, **kw)

    # 0.6 m/s toward the camera, far away: a crawl in the picture (under 0.2 box heights/s)
    # but 0.35 body heights/s on the floor.
    assert walk(rule(), toward_camera(0.6), None) == []
    (started,) = walk(rule(), toward_camera(0.6), calibrated())
    assert started.details["speed_m_s"] == pytest.approx(0.6, rel=0.05)
    assert started.details["speed"] == pytest.approx(0.6 / PERSON_HEIGHT_M, rel=0.05)
    assert walk(rule(min_speed_m=0.8), toward_camera(0.6), calibrated()) == []
    assert len(walk(rule(min_speed_m=0.5), toward_camera(0.6), calibrated())) == 1


def test_line_hysteresis_is_a_band_on_the_floor() -> None:
    line = Line("gate", [CAM.floor(-5, 20), CAM.floor(5, 20)])  # across the picture

    def rule(**kw: float) -> LineCrossingRule:
        return LineCrossingRule("line_crossing:gate", "cam", line, None, **kw)

    def hop(depth: float) -> list[tuple[float, list[list[float]], list[int], list[int]]]:
        """From ``depth`` m beyond the line to ``depth`` m before it."""
        return [
            (0.0, [CAM.person(0.0, 20.0 + depth)], [0], [1]),
            (0.5, [CAM.person(0.0, 20.0 - depth)], [0], [1]),
        ]

    # 0.3 m each side: outside a 0.1-body-height band (0.17 m) on the floor, but far
    # inside a tenth of the box height in the picture (a few pixels at 20 m).
    assert walk(rule(), hop(0.3), None) == []
    assert len(walk(rule(), hop(0.3), calibrated())) == 2  # start and end of one crossing
    assert walk(rule(hysteresis_m=0.5), hop(0.3), calibrated()) == []


def test_someone_behind_the_bag_along_the_picture_does_not_attend_it() -> None:
    """The owner stands 4 m behind the bag, straight back from the camera: in the
    picture their feet are within 1.5 box heights of it (near); on the floor 4 m is
    farther than 1.5 body heights (2.55 m), so the bag is unattended."""
    bag, person = CAM.bag(0.0, 10.0), CAM.person(0.0, 14.0)
    foot_gap = person[3] - bag[3]
    assert abs(foot_gap) < 1.5 * (person[3] - person[1])

    def run(ground: GroundModel | None) -> list[object]:
        rule = AbandonedObjectRule(
            "abandoned:a",
            "cam",
            object_classes={3},
            person_classes={0},
            class_names=NAMES,
            min_unattended_s=3.0,
            use_static_objects=False,
        )
        path = [(0.0, [CAM.bag(0.0, 10.0), CAM.person(0.3, 10.2)], [3, 0], [1, 2])]
        path += [
            (k / 5, [bag, CAM.person(0.0, min(14.0, 10.2 + k * 0.4))], [3, 0], [1, 2])
            for k in range(1, 60)
        ]
        return walk(rule, path, ground)

    assert run(None) == []
    (alert,) = run(calibrated())
    assert alert.type == "abandoned_object" and alert.start_s > 3.0


def test_a_selector_gives_rules_its_ground_and_survives_a_bad_calibration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[GroundModel | None] = []

    class Probe:
        rule_id = "probe"

        def update(self, tracks: Detections, info: FrameInfo, ended: object = ()) -> list[object]:
            seen.append(info.ground)
            return []

        def close_all(self, end_s: float) -> list[object]:
            return []

    outside = calibrate("cam", [(10, 400), (1900, 400), (1900, 1000), (10, 1000)], CORNERS)
    good = CameraSelector("cam", ByteTracker(), [Probe()], ground=CameraGround("cam", calibrated()))
    bad = CameraSelector("cam", ByteTracker(), [Probe()], ground=CameraGround("cam", outside))
    with caplog.at_level(logging.ERROR, logger="selector.camera"):
        for k in range(3):
            good.update(dets([], [], []), frame(k / 10, k, None))
            bad.update(dets([], [], []), frame(k / 10, k, None))
    assert all(g is not None and g.calibrated for g in seen[0::2])
    assert seen[1::2] == [None, None, None]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "camera 'cam'" in errors[0] and "outside" in errors[0]


def test_foot_jitter_far_away_is_no_speed_on_the_floor() -> None:
    """Standing still 60 m away with 1 px of detector jitter: a pixel along the picture is
    about a metre on the floor there, but the feet do not move in the picture."""
    zone = PolygonZone("all", [(0, 0), (W, 0), (W, H), (0, H)])
    rule = WrongWayRule("wrong_way:a", "cam", zone, (0.0, -1.0), None, min_duration_s=2.0)
    rng = np.random.default_rng(1)
    base = CAM.person(0.0, 60.0)
    events = []
    for k in range(600):
        box = [base[0], base[1] + rng.normal(0, 1.0), base[2], base[3] + rng.normal(0, 1.0)]
        events += rule.update(dets([box], [0], [1]), frame(k / 10, k, calibrated()))
    assert events == []


def test_metre_keys_survive_a_round_trip_and_are_refused_without_points_on_every_path() -> None:
    from argus.rulebook import validate_rules

    zone = {"zones": [{"name": "all", "polygon": [[0, 0], [W, 0], [W, H], [0, H]]}]}
    rule = {"type": "wrong_way", "camera": "cam", "zone": "all", "direction": [1, 0]}
    cfg = parse_config(config({**zone, "ground": GROUND}, [{**rule, "min_speed_m": 1.0}]), "t")
    dumped = [r.model_dump(mode="json") for r in cfg.rules]  # defaults written back
    assert dumped[0]["min_speed"] == 0.2 and dumped[0]["min_speed_m"] == 1.0
    assert validate_rules(dumped, cfg, NAMES) == []
    # without the model's class names (an API host without the model), and at parse time
    plain = parse_config(config(zone, []), "t")
    problems = validate_rules([{**rule, "min_speed_m": 1.0}], plain, None)
    assert any("min_speed_m" in p and "ground calibration" in p for p in problems), problems
    with pytest.raises(ConfigError, match=r"rules\.0\.min_speed_m: metres need"):
        parse_config(config(zone, [{**rule, "min_speed_m": 1.0}]), "t")
