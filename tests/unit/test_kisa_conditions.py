"""KISA conditions: the 1280x720 framing, the time-of-day/weather looks, distance."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from benchmarks.accuracy.assets import FRAME_H, FRAME_W, Background
from benchmarks.accuracy.kisa_conditions import (
    CONDITIONS,
    OUT_H,
    OUT_W,
    Condition,
    at_distance,
    make_look,
    mean_luma,
    rms_contrast,
    to_output,
)
from benchmarks.accuracy.render import ActorTrack, Effects, Simulation, encode
from benchmarks.accuracy.scenarios import Scenario
from benchmarks.accuracy.truth import GTEvent

pytestmark = pytest.mark.unit

BY_NAME = {c.name: c for c in CONDITIONS}


def scene(seed: int = 0) -> np.ndarray:
    """A textured 768x576 BGR picture: a sky-to-ground gradient plus blocks."""
    rng = np.random.default_rng(seed)
    y = np.linspace(60, 200, FRAME_H)[:, None, None]
    img = np.broadcast_to(y, (FRAME_H, FRAME_W, 3)).astype(np.float32).copy()
    small = rng.uniform(-50, 50, (FRAME_H // 16, FRAME_W // 16, 3)).astype(np.float32)
    img += cv2.resize(small, (FRAME_W, FRAME_H), interpolation=cv2.INTER_NEAREST)
    return np.clip(img, 0, 255).astype(np.uint8)


def look_frames(name: str, n: int = 2, seed: int = 3) -> list[np.ndarray]:
    bg = scene()
    look = make_look(BY_NAME[name], bg, seed)
    return [look.frame(bg, k) for k in range(n)]


def test_every_look_keeps_shape_dtype_and_is_deterministic() -> None:
    for cond in CONDITIONS:
        a = look_frames(cond.name)
        b = look_frames(cond.name)
        assert a[0].shape == (OUT_H, OUT_W, 3) and a[0].dtype == np.uint8, cond.name
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), cond.name
    # Another clip seed draws other lamps / streaks / noise.
    assert not np.array_equal(look_frames("night", 1, 3)[0], look_frames("night", 1, 4)[0])


def test_time_of_day_darkens_and_night_is_dark_blue_and_noisy() -> None:
    day, dawn, dusk, night = (look_frames(n)[0] for n in ("base", "dawn", "dusk", "night"))
    luma = {n: mean_luma(f) for n, f in (("day", day), ("dawn", dawn), ("dusk", dusk))}
    luma["night"] = mean_luma(night)
    assert luma["night"] < luma["dusk"] < luma["dawn"] < luma["day"]
    assert luma["night"] < 0.45 * luma["day"]

    def blue_over_red(f: np.ndarray) -> float:
        return float(f[..., 0].mean() / max(f[..., 2].mean(), 1e-6))

    # Blue-shifted away from the lamps: the darkest tenth of the picture.
    dark = cv2.cvtColor(night, cv2.COLOR_BGR2GRAY) < np.percentile(night.mean(axis=2), 10)
    assert night[dark][:, 0].mean() > night[dark][:, 2].mean()
    assert blue_over_red(dawn) < blue_over_red(day)  # warm
    # Lamp pools: some of the night is lit to near-day levels.
    assert np.percentile(cv2.cvtColor(night, cv2.COLOR_BGR2GRAY), 99) > 0.6 * luma["day"]
    # Noisier: consecutive frames of a still scene differ more at night.
    d_day = np.abs(np.diff(np.stack(look_frames("base")).astype(np.int16), axis=0)).mean()
    d_night = np.abs(np.diff(np.stack(look_frames("night")).astype(np.int16), axis=0)).mean()
    assert d_night > 2.0 * d_day


def test_weather_fog_rain_snow() -> None:
    day, fog, rain, snow = (look_frames(n)[0] for n in ("base", "fog", "rain", "snow"))
    assert rms_contrast(fog) < 0.6 * rms_contrast(day)
    assert rms_contrast(rain) < 0.9 * rms_contrast(day)
    assert mean_luma(snow) > mean_luma(day) + 20
    # Fog grows with depth: the top (far ground) loses more contrast than the bottom.
    top, bottom = slice(0, OUT_H // 4), slice(3 * OUT_H // 4, OUT_H)
    ratio_top = rms_contrast(fog[top]) / rms_contrast(day[top])
    ratio_bottom = rms_contrast(fog[bottom]) / rms_contrast(day[bottom])
    assert ratio_top < ratio_bottom
    # Rain and snow fall: the overlay moves between frames of a still scene.
    for name in ("rain", "snow"):
        f0, f1 = look_frames(name)
        assert np.abs(f0.astype(np.int16) - f1.astype(np.int16)).mean() > 1.0, name


def test_framing_maps_the_frame_onto_1280x720_with_side_panels() -> None:
    assert to_output([[0, 0], [FRAME_W, FRAME_H]]) == [[160.0, 0.0], [1120.0, 720.0]]
    bg = scene()
    out = make_look(BY_NAME["base"], bg, 0).frame(bg, 0)
    scaled = cv2.resize(bg, (960, 720), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out[:, 160:1120].astype(int) - scaled).mean() < 2.0
    # The panels mirror the empty background's edge.
    assert np.abs(out[:, 159].astype(int) - scaled[:, 1]).mean() < 4.0


def test_output_encodes_as_h264_1280x720(tmp_path: Path) -> None:
    bg = scene()
    look = make_look(BY_NAME["rain"], bg, 0)
    path = tmp_path / "v.mp4"
    assert encode(look.frames(iter([bg] * 5)), path, size=(OUT_W, OUT_H)) == 5
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        sizes = {(f.width, f.height) for f in c.decode(st)}
    assert sizes == {(1280, 720)}


def one_walker(bg: Background) -> Scenario:
    """A person walking across at y 300..420 px, an intrusion at 1.0 s."""
    n = 20
    y = np.linspace(300.0, 420.0, n)
    xy = np.stack([np.linspace(300.0, 420.0, n), y], axis=1)
    h = np.array([bg.height_at(v) for v in y])
    box = np.stack([xy[:, 0] - 0.2 * h, y - h, xy[:, 0] + 0.2 * h, y], axis=1)
    tr = ActorTrack(
        np.ones(n, bool), xy, h, np.zeros(n), np.ones(n), np.ones(n, np.int8),
        np.zeros(n, np.int32), np.ones(n, bool), box, [0.0],
    )  # fmt: skip
    sim = Simulation(10.0, n, [tr], [])
    zone = [[250.0, 280.0], [450.0, 280.0], [450.0, 440.0], [250.0, 440.0]]
    gt = [GTEvent("intrusion", 1.0, 1.9, zone="area", note="a0")]
    return Scenario(
        "s", "intrusion", "v", bg.name, 2.0, 0, {"area": zone}, {}, [], [], [], Effects(), gt, sim
    )


def test_distance_scales_people_consistently_with_perspective() -> None:
    bg = Background("b", scene(), (21.2, 0.231), np.zeros((3, 2)), (), "synthetic")
    scn = one_walker(bg)
    assert scn.sim is not None
    assert at_distance(scn, bg, BY_NAME["base"]) == (scn, bg)
    far = at_distance(scn, bg, BY_NAME["30 m"])
    assert far is not None
    fscn, fbg = far
    assert fscn.sim is not None
    tr0, tr = scn.sim.actors[0], fscn.sim.actors[0]
    assert np.allclose(tr.height, 0.5 * tr0.height)
    # Farther up the picture, and exactly as tall as the background's perspective says.
    assert (tr.xy[:, 1] < tr0.xy[:, 1]).all()
    assert np.allclose([fbg.height_at(v) for v in tr.xy[:, 1]], tr.height)
    assert np.array_equal(fbg.image, bg.image)  # the background stays
    # The rule geometry moves with the people: the walker still enters the zone.
    assert fscn.zones["area"] != scn.zones["area"]
    assert fscn.gt == scn.gt

    near = at_distance(scn, bg, BY_NAME["10 m"])
    assert near is not None
    nscn, nbg = near
    assert nscn.sim is not None
    assert np.allclose(nscn.sim.actors[0].height, 1.5 * tr0.height)
    assert not np.array_equal(nbg.image, bg.image)  # zoomed with the people
    for k in (0, 10, 19):
        y0, y1 = float(tr0.xy[k, 1]), float(nscn.sim.actors[0].xy[k, 1])
        assert math.isclose(nbg.height_at(y1), 1.5 * bg.height_at(y0), rel_tol=1e-9)


def test_distance_refuses_a_protagonist_zoomed_out_of_the_picture() -> None:
    bg = Background("b", scene(), (21.2, 0.231), np.zeros((3, 2)), (), "synthetic")
    scn = one_walker(bg)
    # Geometry far to one side: the zoom window centres there and the walker leaves it.
    away = replace(scn, zones={"area": [[700.0, 20.0], [760.0, 20.0], [760.0, 60.0]]})
    assert at_distance(away, bg, Condition("5 m", "distance", distance_m=5.0)) is None
