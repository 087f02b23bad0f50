"""PolygonZone: point-in-polygon by ground point, validation, frame checks."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.detections import Detections
from selector.zones import PolygonZone, ZoneError

pytestmark = pytest.mark.unit

SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]
# A "U" (concave): the notch x in (150, 250), y < 250 is outside.
U_SHAPE = [
    (100, 100),
    (150, 100),
    (150, 250),
    (250, 250),
    (250, 100),
    (300, 100),
    (300, 300),
    (100, 300),
]


def boxes(xyxy: list[tuple[float, float, float, float]]) -> Detections:
    n = len(xyxy)
    return Detections(
        xyxy=np.array(xyxy, np.float32).reshape(n, 4),
        score=np.full((n,), 0.9, np.float32),
        class_id=np.zeros((n,), np.int64),
    )


def test_inside_outside_and_boundary() -> None:
    z = PolygonZone("sq", SQUARE)
    inside = [(200, 200), (101, 101), (299, 299)]
    outside = [(50, 200), (350, 200), (200, 50), (200, 350), (99.999, 200), (300.001, 200)]
    on_edges = [(100, 200), (300, 250), (200, 100), (150, 300)]
    vertices = SQUARE
    assert z.contains(inside).all()
    assert not z.contains(outside).any()
    assert z.contains(on_edges).all()  # boundary counts as inside
    assert z.contains(vertices).all()
    assert z.contains(np.empty((0, 2))).shape == (0,)


def test_orientation_and_closing_vertex_do_not_matter() -> None:
    pts = np.random.default_rng(0).uniform(0, 400, size=(200, 2))
    ref = PolygonZone("a", SQUARE).contains(pts)
    assert np.array_equal(PolygonZone("b", SQUARE[::-1]).contains(pts), ref)
    assert np.array_equal(PolygonZone("c", [*SQUARE, SQUARE[0]]).contains(pts), ref)
    expected = (pts[:, 0] >= 100) & (pts[:, 0] <= 300) & (pts[:, 1] >= 100) & (pts[:, 1] <= 300)
    assert np.array_equal(ref, expected)


def test_concave_polygon() -> None:
    z = PolygonZone("u", U_SHAPE)
    got = z.contains(
        [(200, 150), (200, 275), (125, 150), (275, 150), (200, 250), (200, 249.5)]
    ).tolist()
    assert got == [False, True, True, True, True, False]


def test_concave_matches_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    z = PolygonZone("u", U_SHAPE)
    pts = np.random.default_rng(1).uniform(50, 350, size=(500, 2))
    contour = np.array(U_SHAPE, np.float32).reshape(-1, 1, 2)
    ref = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in pts]
    assert z.contains(pts).tolist() == ref


def test_trigger_uses_ground_point() -> None:
    z = PolygonZone("sq", SQUARE)
    d = boxes(
        [
            (180, 150, 220, 250),  # fully inside
            (180, 150, 220, 350),  # head inside, feet below the zone -> outside
            (180, 20, 220, 150),  # head above the zone, feet inside -> inside
            (400, 150, 440, 250),  # elsewhere
        ]
    )
    assert z.trigger(d).tolist() == [True, False, True, False]
    assert z.trigger(Detections.empty()).shape == (0,)


@pytest.mark.parametrize(
    ("polygon", "problem"),
    [
        ([(0, 0), (10, 0)], "at least 3"),
        ([(0, 0), (10, 0), (float("nan"), 5)], "non-finite"),
        ([(0, 0, 1), (10, 0, 1), (5, 5, 1)], "shape"),
        ([(0, 0), (10, 0), (20, 0)], "zero area"),
        ([(0, 0), (10, 0), (10, 0), (5, 5)], "repeated"),
        ([(0, 0), (10, 10), (10, 0), (0, 10)], "intersects itself"),  # bow tie
        ([(0, 0), (30, 10), (30, 0), (0, 10)], "intersects itself"),  # lopsided bow tie
        ([(0, 0), (10, 0), (10, 10), (5, 0), (0, 10)], "intersects itself"),  # touches edge
        ([[0, 0], [1, "a"], [2, 2]], "not an array of numbers"),
    ],
)
def test_validation_errors_name_zone_and_problem(polygon: object, problem: str) -> None:
    with pytest.raises(ZoneError, match=problem) as info:
        PolygonZone("crossing", polygon)  # type: ignore[arg-type]
    assert "'crossing'" in str(info.value)
    assert info.value.zone == "crossing"


def test_negative_weight_rejected() -> None:
    with pytest.raises(ZoneError, match="weight"):
        PolygonZone("z", SQUARE, weight=-1.0)


def test_check_within_frame() -> None:
    assert PolygonZone("ok", SQUARE).check_within_frame(768, 576) == []
    edge = PolygonZone("edge", [(0, 0), (768, 0), (768, 576), (0, 576)])
    assert edge.check_within_frame(768, 576) == []

    partly = PolygonZone("partly", [(700, 100), (900, 100), (900, 300), (700, 300)])
    (msg,) = partly.check_within_frame(768, 576)
    assert msg.startswith("2 of 4 vertices lie outside the 768x576 frame")
    assert "(900, 100)" in msg and "66%" in msg  # (900-768)/200 of the area

    away = PolygonZone("crossing", [(1000, 100), (1100, 100), (1100, 200)])
    assert away.check_within_frame(768, 576) == [
        "lies entirely outside the 768x576 frame; it can never trigger"
    ]
    # Bounding box overlaps the frame's corner, the triangle itself does not.
    corner = PolygonZone("corner", [(-100, 50), (50, -100), (-100, -100)])
    assert corner.check_within_frame(768, 576) == [
        "lies entirely outside the 768x576 frame; it can never trigger"
    ]
    # Vertices all outside but the polygon covers the frame: not "entirely outside".
    cover = PolygonZone("cover", [(-10, -10), (800, -10), (800, 600), (-10, 600)])
    (msg,) = cover.check_within_frame(768, 576)
    assert "4 of 4 vertices" in msg
    with pytest.raises(ValueError, match="0x576"):
        cover.check_within_frame(0, 576)
