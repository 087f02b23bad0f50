"""Named clothing colours: pixel naming and a person's upper and lower colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.appearance import COLOUR_NAMES, body_colours, name_pixels

pytestmark = pytest.mark.unit

BGR = {
    "black": (10, 10, 10),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "red": (30, 30, 220),
    "orange": (0, 140, 255),
    "yellow": (0, 230, 230),
    "green": (40, 180, 40),
    "blue": (200, 90, 30),
    "purple": (160, 40, 120),
    "pink": (180, 105, 255),
    "brown": (30, 60, 110),
}


@pytest.mark.parametrize("name", COLOUR_NAMES)
def test_each_named_colour_is_named_so(name: str) -> None:
    px = np.array([[BGR[name]]], np.uint8)
    got = name_pixels(np.asarray(cv2.cvtColor(px, cv2.COLOR_BGR2HSV), np.uint8))
    assert COLOUR_NAMES[int(got[0, 0])] == name


def person_on(background: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    frame = np.full((200, 200, 3), background, np.uint8)
    bg = frame.copy()
    frame[40:60, 90:110] = BGR["white"]  # head
    frame[60:120, 80:120] = BGR["red"]  # top
    frame[120:180, 85:115] = BGR["blue"]  # trousers
    frame[150:180, 98:102] = background  # the ground seen between the legs
    return frame, bg


def test_a_red_top_and_blue_trousers() -> None:
    frame, bg = person_on((128, 128, 128))
    got = body_colours(frame, (80, 40, 120, 180))
    assert got is not None and (got.upper, got.lower) == ("red", "blue")
    assert got.upper_share > 0.9 and got.lower_share > 0.5
    with_bg = body_colours(frame, (80, 40, 120, 180), bg)
    assert with_bg is not None and with_bg.lower_share > got.lower_share


def test_the_background_showing_through_is_not_counted_when_known() -> None:
    frame, bg = person_on((40, 200, 40))
    frame[120:180, 85:115] = BGR["black"]
    frame[120:180, 94:106] = (40, 200, 40)  # a wide gap between the legs: green grass
    plain = body_colours(frame, (80, 40, 120, 180))
    known = body_colours(frame, (80, 40, 120, 180), bg)
    assert plain is not None and known is not None
    assert known.lower == "black"
    assert plain.lower_share < 1.0


def test_a_box_too_small_or_outside_tells_nothing() -> None:
    frame, _ = person_on((128, 128, 128))
    assert body_colours(frame, (10, 10, 12, 13)) is None
    assert body_colours(frame, (300, 300, 340, 380)) is None
