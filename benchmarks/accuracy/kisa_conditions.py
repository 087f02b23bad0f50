"""KISA-style test conditions: the 1280x720 picture, time of day, weather and distance.

A scenario of :mod:`benchmarks.accuracy.scenarios` is rendered as it is for the accuracy
suite (768x576, real people on real backgrounds, with its own sensor noise), then:

1. **Distance** (before rendering, :func:`at_distance`): the base scenes put people
   70-190 px tall on the 1280x720 output (median about 125 px), what a 1.7 m person
   measures at about :data:`BASE_DISTANCE_M` = 15 m from a 1280x720 camera with a 60°
   horizontal field of view.  Distance ``d`` scales apparent sizes by ``k = 15 / d``:

   * farther (``k < 1``): people, objects, their paths (so their speed in pixels) and
     the rule geometry are scaled by ``k`` about the background's vanishing line (the
     ``y`` where its linear perspective ``a + b·y`` reaches 0, centre column), so they
     move up the picture and shrink exactly as the background's perspective says they
     should at their new foot point (consistent sizes, not giants);  the background is
     untouched.  In metres this is the same scene pushed back in depth (across the view
     unchanged, along it stretched by ``1/k``).
   * nearer (``k > 1``): a zoom by ``k`` (background included, upscaled) into the
     window around the rule geometry, like a closer or longer-lens camera; whoever
     walks outside that window is out of the picture.

2. **Framing** (:class:`Look`): the 768x576 frame is scaled by 1.25 to 960x720 and
   centred on 1280x720; the 160 px side panels are the mirrored *empty* background
   (static: people leave the picture at the panel edge, as they left the 768 px frame).
   Zones and lines are mapped the same way (:func:`to_output`).

3. **Time of day / weather** (:class:`Look`, on the composed 1280x720 frame, all
   vectorised, deterministic from the clip's seed): ``out = frame·M + A`` with per-pixel
   maps ``M``, ``A`` drawn once per clip, then a moving overlay (rain streaks, snow
   flakes), a blur, and sensor noise (a fresh shifted draw per frame):

   * dawn / dusk: dim (gain 0.45-0.65 / 0.33-0.48, brighter towards the sky at the
     top), warm (dawn) or orange-violet (dusk) tint, a faint warm haze, noise σ 3.5 / 4.5;
   * night under lamps: dark (gain 0.1), blue-shifted, 3-4 warm lamp pools on the
     ground (local gain up to about 0.7) with glowing lamp heads above them, blur
     σ 0.7, noise σ 7 (a camera's gain in the dark);
   * rain: overcast (contrast 0.75 towards mid-grey), slanted streaks falling about
     70 px per frame, blur σ 0.8, noise σ 2.5;
   * snow: whitened (0.8·frame + 45), flakes 1-3 px falling 6-12 px per frame, noise σ 2.5;
   * fog: blend towards light grey by depth along y (75 % at the top, the far ground,
     30 % at the bottom), blur σ 1.0, noise σ 2.5;
   * day, clear (base): noise σ 1.0 over the whole 1280x720 frame, nothing else.

What these do **not** emulate: real night optics (IR cut-off switch, monochrome IR
mode, headlight glare, motion blur from long exposures), rain on the lens, wet
reflections, snow on the ground or on people, fog's true depth from a 3-D scene,
shadows, the look of a real camera at 10 or 30 m (its resolution on the person is the
768x576 sprites' resampled, never sharper), and KISA's own footage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.accuracy.assets import FRAME_H, FRAME_W, Background
from benchmarks.accuracy.render import Simulation, _Noise
from benchmarks.accuracy.scenarios import Scenario, visible_enough

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

OUT_W, OUT_H = 1280, 720
"""KISA's clip size, px."""
OUT_SCALE = OUT_H / FRAME_H
"""The rendered 768x576 frame is scaled by this (1.25) onto the output."""
OUT_X0 = (OUT_W - round(FRAME_W * OUT_SCALE)) // 2
"""Left edge of the scaled frame on the output (160 px): pillar panels either side."""
BASE_DISTANCE_M = 15.0
"""The distance the base scenes stand for (see the module docstring)."""
TIMES = ("dawn", "day", "dusk", "night")
WEATHERS = ("clear", "rain", "snow", "fog")


@dataclass(frozen=True, slots=True)
class Condition:
    """One column of the certification table: a base condition with one factor varied.

    Attributes:
        name: Column name, e.g. ``"night"``, ``"30 m"``.
        factor: ``"base"``, ``"time"``, ``"weather"`` or ``"distance"``.
        time_of_day: One of :data:`TIMES`.
        weather: One of :data:`WEATHERS`.
        distance_m: Equivalent distance of the people from the camera, metres.
    """

    name: str
    factor: str = "base"
    time_of_day: str = "day"
    weather: str = "clear"
    distance_m: float = BASE_DISTANCE_M

    @property
    def scale(self) -> float:
        """Apparent size relative to the base, ``BASE_DISTANCE_M / distance_m``."""
        return BASE_DISTANCE_M / self.distance_m

    def key(self) -> str:
        """Stable text of every parameter (part of a clip's cache key)."""
        return f"{self.time_of_day}/{self.weather}/{self.distance_m:g}m"


CONDITIONS = (
    Condition("base"),
    Condition("dawn", "time", time_of_day="dawn"),
    Condition("dusk", "time", time_of_day="dusk"),
    Condition("night", "time", time_of_day="night"),
    Condition("rain", "weather", weather="rain"),
    Condition("snow", "weather", weather="snow"),
    Condition("fog", "weather", weather="fog"),
    Condition("10 m", "distance", distance_m=10.0),
    Condition("20 m", "distance", distance_m=20.0),
    Condition("30 m", "distance", distance_m=30.0),
)
"""The base (day, clear, 15 m) and nine one-factor variations of it."""


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True, slots=True)
class Similarity:
    """``p' = s·p + t``: a uniform scale ``s`` and a shift ``t`` ``(2,)`` px."""

    s: float
    t: tuple[float, float]

    def points(self, pts: Sequence[Sequence[float]]) -> list[list[float]]:
        """Map ``(n, 2)`` points (px); rounded to 0.1 px."""
        p = np.asarray(pts, np.float64) * self.s + np.asarray(self.t)
        return [[round(float(x), 1), round(float(y), 1)] for x, y in p]


def to_output(pts: Sequence[Sequence[float]]) -> list[list[float]]:
    """Map rendered-frame points ``(n, 2)`` px (768x576) to the 1280x720 output, px."""
    return Similarity(OUT_SCALE, (float(OUT_X0), 0.0)).points(pts)


def distance_map(scn: Scenario, bg: Background, scale: float) -> tuple[Similarity, bool]:
    """The similarity putting ``scn`` at ``scale`` times its apparent size, and whether
    the background is zoomed with it (``scale > 1``); see the module docstring.  Both
    keep the centre of the rule geometry's column (farther) or centre it (nearer)."""
    pts = [p for poly in (*scn.zones.values(), *scn.lines.values()) for p in poly]
    cx, cy = np.mean(np.asarray(pts, np.float64), axis=0) if pts else (FRAME_W / 2, FRAME_H / 2)
    if scale < 1.0:
        a, b = bg.persp
        vy = -a / b  # the vanishing line, where the perspective height a + b·y is 0
        return Similarity(scale, (cx * (1.0 - scale), vy * (1.0 - scale))), False
    hw, hh = FRAME_W / (2.0 * scale), FRAME_H / (2.0 * scale)
    cx = float(np.clip(cx, hw, FRAME_W - hw))
    cy = float(np.clip(cy, hh, FRAME_H - hh))
    return Similarity(scale, (FRAME_W / 2.0 - scale * cx, FRAME_H / 2.0 - scale * cy)), True


def _map_sim(sim: Simulation, m: Similarity) -> Simulation:
    t = np.asarray(m.t)
    actors = [
        replace(
            tr,
            xy=tr.xy * m.s + t,
            height=tr.height * m.s,
            box=tr.box * m.s + np.concatenate([t, t]),
        )
        for tr in sim.actors
    ]
    objects = [
        replace(ob, xy=ob.xy * m.s + t, scale_y=ob.scale_y * m.s + m.t[1]) for ob in sim.objects
    ]
    return Simulation(sim.fps, sim.n_frames, actors, objects)


def _map_background(bg: Background, m: Similarity, zoom: bool, name: str) -> Background:
    """``bg`` seen through ``m``: its perspective re-expressed in mapped pixels
    (``s·height(y)`` at ``y' = s·y + t_y``); with ``zoom``, its picture and occluders
    warped too."""
    a, b = bg.persp
    persp = (m.s * a - b * m.t[1], b)
    if not zoom:
        return replace(bg, name=name, persp=persp)
    mat = np.array([[m.s, 0.0, m.t[0]], [0.0, m.s, m.t[1]]])
    image = np.asarray(
        cv2.warpAffine(bg.image, mat, (FRAME_W, FRAME_H), flags=cv2.INTER_CUBIC), np.uint8
    )
    occluders = []
    for ys, xs, base_y in bg.occluders:
        mask = np.zeros((FRAME_H, FRAME_W), np.uint8)
        mask[ys, xs] = 255
        warped = cv2.warpAffine(mask, mat, (FRAME_W, FRAME_H), flags=cv2.INTER_NEAREST)
        wy, wx = np.nonzero(warped > 127)
        occluders.append((wy, wx, m.s * base_y + m.t[1]))
    return replace(
        bg,
        name=name,
        image=np.ascontiguousarray(image),
        persp=persp,
        walk=np.asarray(m.points(bg.walk.tolist()), np.float64),
        foliage=(),
        occluders=tuple(occluders),
    )


def at_distance(
    scn: Scenario, bg: Background, cond: Condition
) -> tuple[Scenario, Background] | None:
    """``scn`` (and its background) as seen at ``cond.distance_m``, in rendered-frame
    pixels; ``None`` when a protagonist would not be ``MIN_VISIBLE`` (75 %) visible in
    the picture just before an event (out of a zoomed picture): such a draw is replaced,
    not scored.  Farther away, someone who would stand behind the lamp post at their
    new place is drawn in front of it instead (the background keeps its post)."""
    if cond.scale == 1.0:
        return scn, bg
    if scn.sim is None:
        raise ValueError(f"{scn.name}: not simulated")
    m, zoom = distance_map(scn, bg, cond.scale)
    mbg = _map_background(bg, m, zoom, f"{bg.name}@{cond.distance_m:g}m")
    mscn = replace(
        scn,
        background=mbg.name,
        zones={k: m.points(v) for k, v in scn.zones.items()},
        lines={k: m.points(v) for k, v in scn.lines.items()},
        sim=_map_sim(scn.sim, m),
    )
    if visible_enough(mscn, mbg):
        return mscn, mbg
    if not zoom:  # behind the lamp post at its new place: drawn in front of it instead
        mbg = replace(mbg, name=f"{mbg.name}-unoccluded", occluders=())
        mscn = replace(mscn, background=mbg.name)
        if visible_enough(mscn, mbg):
            return mscn, mbg
    return None


# ----------------------------------------------------------------------------- looks


def clip_seed(seed: int, cond: Condition) -> int:
    """Seed of a clip's picture effects: its render seed and the condition."""
    digest = hashlib.sha256(f"{seed}:{cond.key()}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _column(top: float, bottom: float) -> F32:
    """``(OUT_H, 1, 1)`` float32 ramp from ``top`` (row 0) to ``bottom`` (last row)."""
    y = np.linspace(0.0, 1.0, OUT_H, dtype=np.float32)[:, None, None]
    out: F32 = (top + (bottom - top) * y).astype(np.float32)
    return out


def _blob(cx: float, cy: float, sx: float, sy: float) -> F32:
    """``(OUT_H, OUT_W, 1)`` float32 Gaussian bump (peak 1) at ``(cx, cy)`` px."""
    gy = np.arange(OUT_H, dtype=np.float32)[:, None]
    gx = np.arange(OUT_W, dtype=np.float32)[None, :]
    g = np.exp(-0.5 * (((gx - cx) / sx) ** 2 + ((gy - cy) / sy) ** 2))
    out: F32 = g[..., None].astype(np.float32)
    return out


def _bgr(b: float, g: float, r: float) -> F32:
    return np.array([b, g, r], np.float32)


def _lamps(rng: np.random.Generator) -> tuple[F32, F32]:
    """Night light ``(M, A)``: dark blue base, 3-4 warm pools on the ground and their
    glowing lamp heads."""
    m = np.broadcast_to(0.1 * _bgr(1.3, 1.0, 0.7), (OUT_H, OUT_W, 3)).astype(np.float32)
    a = np.zeros((OUT_H, OUT_W, 3), np.float32)
    n = int(rng.integers(3, 5))
    xs = (np.arange(n) + rng.uniform(0.25, 0.75, n)) * (OUT_W / n)
    for x in xs:
        y = float(rng.uniform(0.45, 0.8)) * OUT_H
        sx = float(rng.uniform(110.0, 170.0))
        pool = _blob(float(x), y, sx, 0.55 * sx)
        m += 0.6 * pool * _bgr(0.7, 0.9, 1.15)
        head = _blob(float(x), y - float(rng.uniform(170.0, 230.0)), 7.0, 7.0)
        a += 230.0 * head * _bgr(0.75, 0.95, 1.0)
    return m, a


def _streaks(rng: np.random.Generator, rain: bool) -> F32:
    """A ``(2·OUT_H, OUT_W)`` float32 alpha texture (0..1) of rain streaks or snow
    flakes, seamless vertically (rows ``OUT_H..`` repeat rows ``0..``)."""
    tex = np.zeros((OUT_H, OUT_W), np.float32)
    if rain:
        for _ in range(700):
            x, y = float(rng.uniform(0, OUT_W)), float(rng.uniform(0, OUT_H))
            length = float(rng.uniform(18.0, 40.0))
            p0 = (round(x), round(y))
            p1 = (round(x + 0.18 * length), round(y + length))
            cv2.line(tex, p0, p1, float(rng.uniform(0.2, 0.45)), 1, cv2.LINE_AA)
        tex = np.asarray(cv2.GaussianBlur(tex, (3, 3), 0.6), np.float32)
    else:
        for _ in range(1200):
            c = (round(float(rng.uniform(0, OUT_W))), round(float(rng.uniform(0, OUT_H))))
            cv2.circle(tex, c, int(rng.integers(1, 4)), float(rng.uniform(0.6, 0.95)), -1)
        tex = np.asarray(cv2.GaussianBlur(tex, (5, 5), 0.9), np.float32)
    out: F32 = np.clip(np.concatenate([tex, tex]), 0.0, 1.0)
    return out


@dataclass
class Look:
    """A condition's picture, drawn for one clip: framing onto 1280x720, then
    ``frame·M + A``, a falling overlay, a blur and noise (see the module docstring).

    Attributes:
        canvas: ``(OUT_H, OUT_W, 3)`` uint8 BGR empty background with its side panels.
        m: Per-pixel gain, broadcastable to ``(OUT_H, OUT_W, 3)`` float32, or ``None``.
        a: Per-pixel offset, grey levels, broadcastable likewise, or ``None``.
        overlay: ``(2·OUT_H, OUT_W)`` float32 alpha texture, or ``None``.
        overlay_bgr: Colour the overlay blends towards, ``(3,)`` float32.
        fall_px: Overlay rows moved per frame, px.
        blur_sigma: Gaussian blur sigma, px (0: none).
        noise: Sensor noise of the whole output frame.
    """

    canvas: U8
    m: F32 | None
    a: F32 | None
    overlay: F32 | None
    overlay_bgr: F32
    fall_px: int
    blur_sigma: float
    noise: _Noise

    def frame(self, native: U8, k: int) -> U8:
        """Output frame ``k``: ``native`` ``(FRAME_H, FRAME_W, 3)`` uint8 BGR ->
        ``(OUT_H, OUT_W, 3)`` uint8 BGR."""
        out = self.canvas.copy()
        w = OUT_W - 2 * OUT_X0
        out[:, OUT_X0 : OUT_X0 + w] = cv2.resize(native, (w, OUT_H), interpolation=cv2.INTER_LINEAR)
        f = out.astype(np.float32)
        if self.m is not None:
            f *= self.m
        if self.a is not None:
            f += self.a
        if self.overlay is not None:
            off = (k * self.fall_px) % OUT_H
            alpha = self.overlay[OUT_H - off : 2 * OUT_H - off, :, None]
            f += (self.overlay_bgr - f) * alpha
        if self.blur_sigma > 0:
            f = np.asarray(cv2.GaussianBlur(f, (0, 0), self.blur_sigma), np.float32)
        f += self.noise.draw()
        np.clip(f, 0.0, 255.0, out=f)
        return f.astype(np.uint8)

    def frames(self, natives: Iterator[U8]) -> Iterator[U8]:
        """:meth:`frame` over a clip's rendered frames, in order."""
        for k, native in enumerate(natives):
            yield self.frame(native, k)


def output_canvas(bg_image: U8) -> U8:
    """The empty background scaled onto 1280x720 with mirrored side panels."""
    w = OUT_W - 2 * OUT_X0
    mid = cv2.resize(bg_image, (w, OUT_H), interpolation=cv2.INTER_LINEAR)
    out = cv2.copyMakeBorder(mid, 0, 0, OUT_X0, OUT_W - OUT_X0 - w, cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(np.asarray(out, np.uint8))


def make_look(cond: Condition, bg_image: U8, seed: int) -> Look:
    """The :class:`Look` of ``cond`` for one clip (``seed``: see :func:`clip_seed`)."""
    rng = np.random.default_rng(clip_seed(seed, cond))
    m: F32 | None = None
    a: F32 | None = None
    overlay: F32 | None = None
    colour, fall, blur, sigma = _bgr(0, 0, 0), 0, 0.0, 1.0
    t, w = cond.time_of_day, cond.weather
    if t == "dawn":
        m = _column(0.65, 0.45) * _bgr(0.85, 0.95, 1.12)
        a = _column(14.0, 2.0) * _bgr(0.6, 0.8, 1.0)
        sigma = 3.5
    elif t == "dusk":
        m = _column(0.48, 0.33) * _bgr(1.0, 0.82, 1.05)
        a = _column(10.0, 1.0) * _bgr(0.9, 0.6, 1.0)
        sigma = 4.5
    elif t == "night":
        m, a = _lamps(rng)
        blur, sigma = 0.7, 7.0
    if w == "rain":
        m, a = np.full(1, 0.75, np.float32), np.full(1, 32.0, np.float32)
        overlay, colour, fall = _streaks(rng, rain=True), _bgr(205, 205, 205), 70
        blur, sigma = 0.8, 2.5
    elif w == "snow":
        m, a = np.full(1, 0.8, np.float32), np.full(1, 45.0, np.float32)
        overlay, colour = _streaks(rng, rain=False), _bgr(245, 245, 245)
        fall = int(rng.integers(6, 13))
        sigma = 2.5
    elif w == "fog":
        depth = _column(0.75, 0.3)
        m, a = 1.0 - depth, depth * _bgr(200, 196, 190)
        blur, sigma = 1.0, 2.5
    return Look(
        output_canvas(bg_image),
        None if m is None else np.asarray(m, np.float32),
        None if a is None else np.asarray(a, np.float32),
        overlay,
        colour,
        fall,
        blur,
        _Noise(rng, sigma, (OUT_H, OUT_W)),
    )


def mean_luma(frame: U8) -> float:
    """Mean grey level (0..255) of a BGR frame (for tests and progress lines)."""
    return float(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).mean())


def rms_contrast(frame: U8) -> float:
    """Standard deviation of the grey levels of a BGR frame."""
    return float(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).std())


def describe(cond: Condition) -> str:
    """One line on what ``cond`` varies, for the report."""
    if cond.factor == "base":
        return f"day, clear, {BASE_DISTANCE_M:g} m"
    if cond.factor == "distance":
        return f"people ×{cond.scale:.2f} ({cond.distance_m:g} m)"
    return cond.time_of_day if cond.factor == "time" else cond.weather
