"""Scripted actors on real backgrounds: simulation (ground truth) and rendering (video).

A scenario's people are :class:`Actor` scripts: a start point and time, a sprite
sequence, and steps (walk to a point at a pace in body heights per second, stand, fall,
bend or sit briefly, get up, put an object down, pick it up).  :func:`simulate` plays
the scripts frame by frame at the scenario's frame rate; its per-frame positions,
poses and boxes are the exact ground truth the events are derived from
(:mod:`benchmarks.accuracy.truth`) and what :func:`render_video` draws.

Rendering, per frame: the background (with the foliage effect, if any) -> objects and
people painted far to near (sprite scaled to the background's perspective at its foot
point, mirrored to face its way, rotated about the feet when falling, squashed when
sitting; soft alpha) -> illumination (global gain and tint, cloud shadows) ->
additive headlight sweeps -> Gaussian sensor noise (a fresh, shifted draw each frame;
stronger when the picture is darker, like a camera's gain) -> H.264 (libx264 via PyAV,
yuv420p, CRF 23, a keyframe every 2 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.accuracy.assets import FRAME_H, FRAME_W, Background, ObjectPatch
from benchmarks.accuracy.sprites import SpriteBank, SpriteSequence

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

FPS = 10.0
GOP_FRAMES = 20  # keyframe every 2 s at 10 fps
CRF = 23

# Where a carried object hangs, in body heights from the feet: beside (x, facing side)
# and up (knee height, the bottom of the object).
CARRY_SIDE_H = 0.2
CARRY_UP_H = 0.22
# Where a put-down object lies: beside the feet, a little nearer the camera.
DROP_SIDE_H = 0.3
DROP_DOWN_H = 0.04


@dataclass(frozen=True, slots=True)
class Walk:
    """Walk straight to ``to`` (pixels) at ``pace_h`` body heights per second."""

    to: tuple[float, float]
    pace_h: float = 0.8


@dataclass(frozen=True, slots=True)
class Stand:
    """Stay where one is (upright, or lying after a :class:`Fall`) ``duration_s`` s."""

    duration_s: float


@dataclass(frozen=True, slots=True)
class Fall:
    """Collapse to lying, pivoting about the feet (``side`` +1: head to the right)."""

    duration_s: float = 0.7
    side: int = 1


@dataclass(frozen=True, slots=True)
class GetUp:
    """From lying back to upright over ``duration_s`` s."""

    duration_s: float = 1.5


@dataclass(frozen=True, slots=True)
class Bend:
    """Go down (lean ``angle_deg``, squash the height to ``squash``), hold, come back.

    A bend is a lean with little squash; a sit is a squash with no lean.
    """

    down_s: float
    hold_s: float
    up_s: float
    angle_deg: float = 0.0
    squash: float = 1.0


@dataclass(frozen=True, slots=True)
class Drop:
    """Put the carried object ``obj`` down beside the feet over ``duration_s`` s."""

    obj: int
    duration_s: float = 0.8


@dataclass(frozen=True, slots=True)
class PickUp:
    """Pick object ``obj`` up (it must lie within reach) over ``duration_s`` s."""

    obj: int
    duration_s: float = 0.8


Step = Walk | Stand | Fall | GetUp | Bend | Drop | PickUp


@dataclass(slots=True)
class Actor:
    """One scripted person.

    Attributes:
        seq: Index of the sprite sequence in the bank.
        start: Foot point at ``t0_s``, pixels (may be outside the frame: walks in).
        t0_s: Time the actor appears, video seconds.
        steps: The script, played in order.
        carries: Index of the object carried from the start, if any.
        role: Free text for the truth file, e.g. ``"intruder"``, ``"passer-by"``.
        stay: After the last step, stay where one is (``False``: vanish, as if gone
            round a corner or out of the picture).
    """

    seq: int
    start: tuple[float, float]
    t0_s: float
    steps: list[Step]
    carries: int | None = None
    role: str = ""
    stay: bool = False


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """An object of the scene: a real patch, carried from the start by an actor."""

    patch: int
    carrier: int


@dataclass(slots=True)
class ActorTrack:
    """Per-frame truth of one actor (arrays of length ``n_frames``).

    Attributes:
        present: The actor exists this frame (has appeared, not walked off-screen).
        xy: ``(n, 2)`` foot point, pixels.
        height: Upright height at the foot's y, pixels.
        angle: Lean/fall angle, degrees (0 upright, +-90 lying).
        squash: Vertical scale of the pose (1 standing, < 1 sitting/crouching).
        facing: +1 facing right, -1 facing left (mirror of the sprite).
        gait: Sprite frame index.
        walking: Moving this frame.
        box: ``(n, 4)`` drawn box ``[x1, y1, x2, y2]`` pixels (NaN when absent).
        step_start_s: Start time of each step of the script, video seconds (NaN for
            steps not reached before the end of the scenario).
        down_s: Time the fall passed 45 degrees (the box became wider than tall),
            or NaN: "the moment the person went down".
        up_s: Time the person started to get up again, or NaN.
    """

    present: npt.NDArray[np.bool_]
    xy: F64
    height: F64
    angle: F64
    squash: F64
    facing: npt.NDArray[np.int8]
    gait: npt.NDArray[np.int32]
    walking: npt.NDArray[np.bool_]
    box: F64
    step_start_s: list[float]
    down_s: float = math.nan
    up_s: float = math.nan


@dataclass(slots=True)
class ObjectTrack:
    """Per-frame truth of one object: where it is and who holds it.

    Attributes:
        xy: ``(n, 2)`` bottom-centre point, pixels (NaN when absent).
        scale_y: The foot y used for its perspective size, pixels.
        carried: Held by its carrier this frame (moves with them).
        on_ground: Lying on the ground (put down, not yet picked up).
        drop_s: Time it was put down (reached the ground), or NaN.
        pick_s: Time it was picked up again (left the ground), or NaN.
        carrier: Actor index.
    """

    xy: F64
    scale_y: F64
    carried: npt.NDArray[np.bool_]
    on_ground: npt.NDArray[np.bool_]
    drop_s: float
    pick_s: float
    carrier: int


@dataclass(slots=True)
class Simulation:
    """Everything :func:`simulate` computed: the ground truth of a scenario."""

    fps: float
    n_frames: int
    actors: list[ActorTrack]
    objects: list[ObjectTrack]

    @property
    def t(self) -> F64:
        """Frame times, ``(n_frames,)`` video seconds (frame k at k / fps)."""
        times: F64 = np.arange(self.n_frames, dtype=np.float64) / self.fps
        return times


@dataclass(frozen=True, slots=True)
class CloudField:
    """Soft dark blobs drifting over the scene (cloud shadows).

    ``blobs``: rows ``(cx, cy, vx, vy, sx, sy, depth)``: centre (px) at t = 0, velocity
    (px/s), Gaussian sigmas (px) and darkening depth (0..1).
    """

    blobs: tuple[tuple[float, float, float, float, float, float, float], ...]


@dataclass(frozen=True, slots=True)
class Sweep:
    """One headlight sweep: a pair of bright soft ellipses moving in a straight line.

    Attributes:
        t0_s: Start time, s.
        duration_s: Time to travel from ``p0`` to ``p1``, s.
        p0: Start centre, px.
        p1: End centre, px.
        sx: Horizontal sigma, px.
        sy: Vertical sigma, px.
        amp: Peak added brightness, grey levels.
        gap: Distance between the two lamps, px (0: one lamp).
    """

    t0_s: float
    duration_s: float
    p0: tuple[float, float]
    p1: tuple[float, float]
    sx: float
    sy: float
    amp: float
    gap: float


@dataclass(frozen=True, slots=True)
class Effects:
    """Picture effects of a scenario (all optional except the noise).

    Attributes:
        noise_sigma: Sensor noise standard deviation at full light, grey levels.
        ramp: ``(t0_s, t1_s, end_gain)``: smooth global light change (dusk) from gain 1
            at ``t0_s`` to ``end_gain`` at ``t1_s``, with a slight blue tint.
        switch: ``(t_s, gain)``: sudden light change at ``t_s`` to ``gain``, then the
            camera's auto-exposure recovers 70 % of the way back with tau = 1.5 s.
        clouds: Cloud shadows.
        foliage: Amplitude (px) of the swaying of the background's vegetation
            rectangles (0: none); their brightness flickers too.
        sweeps: Headlight sweeps.
    """

    noise_sigma: float = 2.5
    ramp: tuple[float, float, float] | None = None
    switch: tuple[float, float] | None = None
    clouds: CloudField | None = None
    foliage: float = 0.0
    sweeps: tuple[Sweep, ...] = ()


def _seq_scale(bank: SpriteBank, seq: SpriteSequence) -> float:
    """How tall this person is relative to the average person (clipped to 0.88..1.12)."""
    expected = np.array([bank.height_at(y) for y in seq.src_foot[:, 1]])
    return float(np.clip(np.mean(seq.height / expected), 0.88, 1.12))


def simulate(
    actors: Sequence[Actor],
    objects: Sequence[ObjectSpec],
    bank: SpriteBank,
    bg: Background,
    patches: Sequence[ObjectPatch],
    duration_s: float,
    fps: float = FPS,
) -> Simulation:
    """Play the scripts frame by frame; returns the per-frame truth.

    Positions advance by ``pace_h * height_at(y) / fps`` pixels per frame (perspective-
    correct walking speed).  An actor is present from its ``t0_s`` until it has walked
    entirely out of the frame after its last step.
    """
    n = round(duration_s * fps)
    tracks = [_simulate_actor(a, bank, bg, n, fps) for a in actors]
    del patches  # object sizes only matter when drawing
    objs = [_simulate_object(o, k, actors, tracks, n, fps) for k, o in enumerate(objects)]
    return Simulation(fps, n, tracks, objs)


def _simulate_actor(a: Actor, bank: SpriteBank, bg: Background, n: int, fps: float) -> ActorTrack:
    seq = bank.sequences[a.seq]
    rel = _seq_scale(bank, seq)
    present = np.zeros(n, bool)
    xy = np.full((n, 2), np.nan)
    height = np.full(n, np.nan)
    angle = np.zeros(n)
    squash = np.ones(n)
    facing = np.ones(n, np.int8)
    still, _ = _still(seq)
    gait = np.full(n, still, np.int32)
    walking = np.zeros(n, bool)
    box = np.full((n, 4), np.nan)
    src_dir = 1 if seq.velocity[0] >= 0 else -1
    pos = np.array(a.start, np.float64)
    cur_angle, cur_squash, face = 0.0, 1.0, 1
    st_angle0 = 0.0
    walked_h = 0.0
    step_i, step_t = 0, 0.0  # current step, time spent in it
    starts = [math.nan] * len(a.steps)
    first_step = a.steps[0] if a.steps else None
    if isinstance(first_step, Walk):
        face = 1 if first_step.to[0] >= pos[0] else -1
    done_outside = False
    for k in range(n):
        t = k / fps
        if t < a.t0_s - 1e-9 or done_outside:
            continue
        budget = 0.0 if t - a.t0_s < 0.5 / fps else 1.0 / fps
        if budget == 0.0 and a.steps:
            starts[0] = t
        moved = False
        while budget > 1e-12 and step_i < len(a.steps):
            st = a.steps[step_i]
            if math.isnan(starts[step_i]):
                starts[step_i] = t - budget
            if isinstance(st, Walk):
                target = np.array(st.to, np.float64)
                d = target - pos
                dist = float(np.hypot(*d))
                speed = st.pace_h * bg.height_at(float(pos[1])) * rel
                if dist < 1e-6:
                    step_i, step_t = step_i + 1, 0.0
                    continue
                if abs(d[0]) > 0.2 * dist:
                    face = 1 if d[0] > 0 else -1
                need = dist / speed
                use = min(need, budget)
                pos = pos + d * (use / need)
                walked_h += use * st.pace_h
                budget -= use
                moved = True
                if use >= need - 1e-12:
                    pos = target
                    step_i, step_t = step_i + 1, 0.0
                continue
            dur = _duration(st)
            if step_t == 0.0:
                st_angle0 = cur_angle
            use = min(dur - step_t, budget)
            step_t += use
            budget -= use
            u = 1.0 if dur <= 0 else min(step_t / dur, 1.0)
            if isinstance(st, Fall):
                cur_angle = st.side * 90.0 * u * u  # accelerating collapse
            elif isinstance(st, GetUp):
                cur_angle = st_angle0 * (1.0 - u)
            elif isinstance(st, Bend):
                frac = _bend_profile(st, step_t)
                cur_angle = st.angle_deg * frac
                cur_squash = 1.0 - (1.0 - st.squash) * frac
            if step_t >= dur - 1e-12:
                if isinstance(st, GetUp):
                    cur_angle = 0.0
                step_i, step_t = step_i + 1, 0.0
        h = bg.height_at(float(pos[1])) * rel
        bx = _pose_box(seq, pos, h, face * src_dir, cur_angle, cur_squash)
        in_frame = bx[2] > 0 and bx[0] < FRAME_W and bx[3] > 0 and bx[1] < FRAME_H
        if step_i >= len(a.steps) and (not a.stay or not in_frame) and t > a.t0_s + 1.0:
            done_outside = True
            continue
        present[k] = True
        xy[k] = pos
        height[k] = h
        angle[k] = cur_angle
        squash[k] = cur_squash
        facing[k] = face
        walking[k] = moved
        gait[k] = int(walked_h / seq.stride_h) % len(seq) if moved else still
        box[k] = bx
    down_s = up_s = math.nan
    for st, t_st in zip(a.steps, starts, strict=True):
        if isinstance(st, Fall) and math.isnan(down_s) and not math.isnan(t_st):
            t_down = t_st + st.duration_s * math.sqrt(0.5)  # angle = 90 u^2 reaches 45 deg
            down_s = t_down if t_down < n / fps else math.nan
        if isinstance(st, GetUp) and math.isnan(up_s) and not math.isnan(t_st):
            up_s = t_st
    return ActorTrack(
        present, xy, height, angle, squash, facing, gait, walking, box, starts, down_s, up_s
    )


def _duration(st: Step) -> float:
    if isinstance(st, Stand):
        return st.duration_s
    if isinstance(st, Bend):
        return st.down_s + st.hold_s + st.up_s
    if isinstance(st, Fall | GetUp | Drop | PickUp):
        return st.duration_s
    return 0.0


def _bend_profile(st: Bend, t: float) -> float:
    """0..1 depth of a bend at ``t`` seconds into it (down, hold, up; smooth)."""
    if t < st.down_s:
        u = t / st.down_s
    elif t < st.down_s + st.hold_s:
        u = 1.0
    else:
        u = max(0.0, 1.0 - (t - st.down_s - st.hold_s) / max(st.up_s, 1e-6))
    return u * u * (3 - 2 * u)


def _affine(
    seq: SpriteSequence,
    idx: int,
    foot_to: F64,
    h: float,
    flip: int,
    angle: float,
    squash: float,
) -> tuple[F64, tuple[int, int]]:
    """2x3 matrix taking crop pixels of frame ``idx`` to frame pixels, and the crop size."""
    s = h / float(np.mean(seq.height))
    fx, fy = seq.foot[idx]
    # crop -> foot-centred -> mirror -> scale (squash y) -> rotate about the feet -> place
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    sxf = s * flip
    syf = s * squash
    m = np.array(
        [
            [ca * sxf, -sa * syf, 0.0],
            [sa * sxf, ca * syf, 0.0],
        ]
    )
    m[:, 2] = foot_to - m[:, :2] @ np.array([fx, fy])
    hh, ww = seq.rgba.shape[1:3]
    return m, (ww, hh)


_STILL: dict[int, tuple[U8, int, F64]] = {}
"""Per sequence (keyed by the id of its pixel array, which the entry keeps alive): the
still-pose frame index and that frame's mask corners ``(4, 2)`` crop px."""


def _still(seq: SpriteSequence) -> tuple[int, F64]:
    """The still-pose frame of ``seq`` and its mask corners (cached)."""
    hit = _STILL.get(id(seq.rgba))
    if hit is None or hit[0] is not seq.rgba:
        idx = seq.still_index
        ys, xs = np.nonzero(seq.rgba[idx, ..., 3] > 127)
        corners = np.array(
            [
                [xs.min(), ys.min()],
                [xs.max() + 1, ys.min()],
                [xs.min(), ys.max() + 1],
                [xs.max() + 1, ys.max() + 1],
            ],
            np.float64,
        )
        hit = (seq.rgba, idx, corners)
        _STILL[id(seq.rgba)] = hit
    return hit[1], hit[2]


def _pose_box(
    seq: SpriteSequence, foot: F64, h: float, flip: int, angle: float, squash: float
) -> F64:
    """The drawn box ``[x1, y1, x2, y2]`` (px) of the person's still-pose mask scaled to
    height ``h`` px at ``foot``, mirrored by ``flip``, leaning ``angle`` degrees,
    squashed to ``squash`` of its height."""
    idx, corners = _still(seq)
    m, _ = _affine(seq, idx, foot, h, flip, angle, squash)
    p = corners @ m[:, :2].T + m[:, 2]
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()])


def _simulate_object(
    o: ObjectSpec,
    k: int,
    actors: Sequence[Actor],
    tracks: Sequence[ActorTrack],
    n: int,
    fps: float,
) -> ObjectTrack:
    """Where object ``k`` is in each of ``n`` frames: in its carrier's hand, moving to or
    from the ground during a Drop/PickUp step, or lying where it was put."""
    a, tr = actors[o.carrier], tracks[o.carrier]
    # Times of this object's Drop / PickUp steps, replayed from the actor's script.
    events = _step_times(a, tr)
    xy = np.full((n, 2), np.nan)
    scale_y = np.full(n, np.nan)
    carried = np.zeros(n, bool)
    on_ground = np.zeros(n, bool)
    drop_s, pick_s = math.nan, math.nan
    ground: F64 | None = None
    state = "carried"
    for f in range(n):
        t = f / fps
        if state == "carried" and not tr.present[f]:
            continue
        ev = next((e for e in events if e[1] == k and e[2] <= t + 1e-9 < e[3] + 1.0 / fps), None)
        if state == "carried":
            foot = tr.xy[f]
            h = tr.height[f]
            hand = foot + np.array([tr.facing[f] * CARRY_SIDE_H * h, -CARRY_UP_H * h])
            if ev is not None and ev[0] == "drop":
                spot = foot + np.array([tr.facing[f] * DROP_SIDE_H * h, DROP_DOWN_H * h])
                u = min(max((t - ev[2]) / max(ev[3] - ev[2], 1e-6), 0.0), 1.0)
                xy[f] = hand + (spot - hand) * u
                scale_y[f] = foot[1] + DROP_DOWN_H * h * u
                carried[f] = True
                if u >= 1.0:
                    state, ground, drop_s = "ground", spot, t
                    carried[f], on_ground[f] = False, True
                continue
            xy[f], scale_y[f], carried[f] = hand, foot[1], True
        elif state == "ground":
            assert ground is not None
            if ev is not None and ev[0] == "pick":
                foot = tr.xy[f]
                h = tr.height[f]
                hand = foot + np.array([tr.facing[f] * CARRY_SIDE_H * h, -CARRY_UP_H * h])
                u = min(max((t - ev[2]) / max(ev[3] - ev[2], 1e-6), 0.0), 1.0)
                xy[f] = ground + (hand - ground) * u
                scale_y[f] = ground[1]
                if math.isnan(pick_s):
                    pick_s = t
                carried[f] = True
                if u >= 1.0:
                    state = "carried"
                continue
            xy[f], scale_y[f], on_ground[f] = ground, ground[1], True
    return ObjectTrack(xy, scale_y, carried, on_ground, drop_s, pick_s, o.carrier)


def _step_times(a: Actor, tr: ActorTrack) -> list[tuple[str, int, float, float]]:
    """``(kind, obj, start_s, end_s)`` of the Drop/PickUp steps of ``a`` that happened."""
    out: list[tuple[str, int, float, float]] = []
    for st, t_st in zip(a.steps, tr.step_start_s, strict=True):
        if isinstance(st, Drop | PickUp) and not math.isnan(t_st):
            kind = "drop" if isinstance(st, Drop) else "pick"
            out.append((kind, st.obj, t_st, t_st + st.duration_s))
    return out


# ----------------------------------------------------------------------------- rendering


def _blend(frame: F32, rgba: U8, m: F64, size: tuple[int, int]) -> None:
    """Warp ``rgba`` (crop of ``size`` (w, h)) by ``m`` and alpha-blend into ``frame``."""
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ m[:, :2].T + m[:, 2]
    x1 = max(math.floor(corners[:, 0].min()) - 1, 0)
    y1 = max(math.floor(corners[:, 1].min()) - 1, 0)
    x2 = min(math.ceil(corners[:, 0].max()) + 1, FRAME_W)
    y2 = min(math.ceil(corners[:, 1].max()) + 1, FRAME_H)
    if x2 <= x1 or y2 <= y1:
        return
    mm = m.copy()
    mm[:, 2] -= (x1, y1)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    interp = cv2.INTER_AREA if scale < 0.8 else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:
        interp = cv2.INTER_LINEAR  # warpAffine has no area mode; pre-blur instead
        k = round(1.0 / max(scale, 1e-3)) | 1
        if k > 1:
            rgba = np.asarray(cv2.GaussianBlur(rgba, (k, k), 0), np.uint8)
    warped = cv2.warpAffine(
        rgba,
        mm.astype(np.float64),
        (x2 - x1, y2 - y1),
        flags=interp,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    alpha = warped[..., 3:4].astype(np.float32) * (1.0 / 255.0)
    roi = frame[y1:y2, x1:x2]
    roi += (warped[..., :3].astype(np.float32) - roi) * alpha


def _object_matrix(patch: ObjectPatch, xy: F64, bg: Background, scale_y: float) -> F64:
    h_obj = patch.height_h * bg.height_at(scale_y)
    s = h_obj / patch.rgba.shape[0]
    ph, pw = patch.rgba.shape[:2]
    return np.array([[s, 0.0, xy[0] - s * pw / 2.0], [0.0, s, xy[1] - s * ph]])


class _Noise:
    """Gaussian sensor noise: shifted windows of a few pre-drawn fields (cheap per frame).

    ``size``: ``(height, width)`` px of the frames it is drawn for.
    """

    PAD = 24

    def __init__(
        self, rng: np.random.Generator, sigma: float, size: tuple[int, int] = (FRAME_H, FRAME_W)
    ) -> None:
        self.rng = rng
        self.h, self.w = size
        shape = (3, self.h + self.PAD, self.w + self.PAD, 3)
        self.bank = (rng.standard_normal(shape, dtype=np.float32) * sigma).astype(np.float32)

    def draw(self) -> F32:
        """One ``(h, w, 3)`` float32 noise field (a view: do not write to it)."""
        i = int(self.rng.integers(0, len(self.bank)))
        dy, dx = (int(v) for v in self.rng.integers(0, self.PAD, 2))
        out: F32 = self.bank[i, dy : dy + self.h, dx : dx + self.w]
        return out


@dataclass
class _Foliage:
    """Swaying vegetation: per rectangle, a smooth phase field and remap grids."""

    rects: list[tuple[int, int, int, int]]
    amp: float
    phases: list[F32] = field(default_factory=list)

    def apply(self, image: F32, src: U8, t: float) -> None:
        for (x1, y1, x2, y2), ph in zip(self.rects, self.phases, strict=True):
            h, w = y2 - y1, x2 - x1
            gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
            sway = np.sin(2 * np.pi * 0.7 * t + ph) + 0.5 * np.sin(2 * np.pi * 1.9 * t + 2 * ph)
            mx = gx + self.amp * sway
            my = gy + 0.4 * self.amp * np.cos(2 * np.pi * 0.9 * t + ph)
            pad = math.ceil(2 * self.amp) + 1
            px1, py1 = max(x1 - pad, 0), max(y1 - pad, 0)
            px2, py2 = min(x2 + pad, FRAME_W), min(y2 + pad, FRAME_H)
            patch = src[py1:py2, px1:px2]
            warped = cv2.remap(
                patch,
                mx + (x1 - px1),
                my + (y1 - py1),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
            flicker = 1.0 + 0.06 * np.sin(2 * np.pi * 1.3 * t + 3.0 * ph)
            image[y1:y2, x1:x2] = warped.astype(np.float32) * flicker[..., None]


def _gain(fx: Effects, t: float) -> tuple[float, F32]:
    """Global light gain at ``t`` and the per-channel (B, G, R) tint multipliers."""
    g = 1.0
    tint = np.ones(3, np.float32)
    if fx.ramp is not None:
        t0, t1, end = fx.ramp
        u = min(max((t - t0) / max(t1 - t0, 1e-6), 0.0), 1.0)
        u = u * u * (3 - 2 * u)
        g *= 1.0 + (end - 1.0) * u
        tint = np.array([1.0 + 0.08 * u, 1.0, 1.0 - 0.1 * u], np.float32)
    if fx.switch is not None:
        ts, gs = fx.switch
        if t >= ts:
            # Step to gs within 0.2 s, then auto-exposure recovers 70 % of the way back.
            step = min((t - ts) / 0.2, 1.0)
            level = 1.0 + (gs - 1.0) * step
            rec = 1.0 - math.exp(-max(t - ts - 0.2, 0.0) / 1.5)
            g *= level + (1.0 - level) * 0.7 * rec
    return g, tint


def _clouds(cf: CloudField, t: float) -> F32:
    """Full-frame multiplicative shadow map at ``t`` (computed at 1/8 scale)."""
    gh, gw = FRAME_H // 8, FRAME_W // 8
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float32) * 8.0
    shade = np.zeros((gh, gw), np.float32)
    for cx, cy, vx, vy, sx, sy, depth in cf.blobs:
        x = cx + vx * t
        y = cy + vy * t
        shade += depth * np.exp(-0.5 * (((gx - x) / sx) ** 2 + ((gy - y) / sy) ** 2))
    small = 1.0 - np.clip(shade, 0.0, 0.6)
    out = np.asarray(
        cv2.resize(small, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR), np.float32
    )
    return out


def _sweeps(frame: F32, sweeps: Sequence[Sweep], t: float) -> None:
    for sw in sweeps:
        u = (t - sw.t0_s) / sw.duration_s
        if not 0.0 <= u <= 1.0:
            continue
        c = np.array(sw.p0) + (np.array(sw.p1) - np.array(sw.p0)) * u
        fade = math.sin(math.pi * u) ** 0.5
        lamps = [c] if sw.gap <= 0 else [c - (sw.gap / 2, 0), (*c, sw.gap / 2, 0)]
        for lc in lamps:
            x1 = max(int(lc[0] - 3 * sw.sx), 0)
            x2 = min(int(lc[0] + 3 * sw.sx) + 1, FRAME_W)
            y1 = max(int(lc[1] - 3 * sw.sy), 0)
            y2 = min(int(lc[1] + 3 * sw.sy) + 1, FRAME_H)
            if x2 <= x1 or y2 <= y1:
                continue
            gy, gx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
            g = np.exp(-0.5 * (((gx - lc[0]) / sw.sx) ** 2 + ((gy - lc[1]) / sw.sy) ** 2))
            add = (sw.amp * fade) * g
            frame[y1:y2, x1:x2] += add[..., None] * np.array([0.85, 0.95, 1.0], np.float32)


def render_frames(
    sim: Simulation,
    actors: Sequence[Actor],
    objects: Sequence[ObjectSpec],
    bank: SpriteBank,
    bg: Background,
    patches: Sequence[ObjectPatch],
    fx: Effects,
    seed: int,
) -> Iterator[U8]:
    """Yield the scenario's frames, ``(FRAME_H, FRAME_W, 3)`` uint8 BGR, in order."""
    rng = np.random.default_rng(seed)
    noise = _Noise(rng, fx.noise_sigma)
    base = bg.image.astype(np.float32)
    foliage: _Foliage | None = None
    if fx.foliage > 0 and bg.foliage:
        foliage = _Foliage(list(bg.foliage), fx.foliage)
        for x1, y1, x2, y2 in foliage.rects:
            small = rng.uniform(0, 2 * np.pi, (max((y2 - y1) // 12, 2), max((x2 - x1) // 12, 2)))
            phase = cv2.resize(
                small.astype(np.float32), (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC
            )
            foliage.phases.append(np.asarray(phase, np.float32))
    seqs = [bank.sequences[a.seq] for a in actors]
    src_dirs = [1 if s.velocity[0] >= 0 else -1 for s in seqs]
    for k in range(sim.n_frames):
        t = k / sim.fps
        frame = base.copy()
        if foliage is not None:
            foliage.apply(frame, bg.image, t)
        # Painter's order: far (small y) first.
        items: list[tuple[float, int, int]] = []
        for i, tr in enumerate(sim.actors):
            if tr.present[k]:
                items.append((float(tr.xy[k, 1]), 0, i))
        for j, ob in enumerate(sim.objects):
            if not np.isnan(ob.xy[k, 0]):
                # A carried object is drawn just after its carrier.
                yk = (
                    float(sim.actors[ob.carrier].xy[k, 1]) + 0.01
                    if ob.carried[k]
                    else float(ob.xy[k, 1])
                )
                items.append((yk, 1, j))
        for j, (_, _, base_y) in enumerate(bg.occluders):
            items.append((base_y, 2, j))
        for _, kind, i in sorted(items):
            if kind == 2:
                ys, xs, _ = bg.occluders[i]
                frame[ys, xs] = base[ys, xs]
            elif kind == 0:
                tr = sim.actors[i]
                m, size = _affine(
                    seqs[i],
                    int(tr.gait[k]),
                    tr.xy[k],
                    float(tr.height[k]),
                    int(tr.facing[k]) * src_dirs[i],
                    float(tr.angle[k]),
                    float(tr.squash[k]),
                )
                _blend(frame, seqs[i].rgba[int(tr.gait[k])], m, size)
            else:
                ob = sim.objects[i]
                patch = patches[objects[i].patch]
                m = _object_matrix(patch, ob.xy[k], bg, float(ob.scale_y[k]))
                _blend(frame, patch.rgba, m, (patch.rgba.shape[1], patch.rgba.shape[0]))
        g, tint = _gain(fx, t)
        if fx.clouds is not None:
            frame *= _clouds(fx.clouds, t)[..., None]
        if g != 1.0 or fx.ramp is not None:
            frame *= tint * g
        if fx.sweeps:
            _sweeps(frame, fx.sweeps, t)
        frame += noise.draw() * (1.0 / math.sqrt(max(g, 0.2)))
        yield np.clip(frame, 0, 255).astype(np.uint8)


def encode(
    frames: Iterator[U8], path: Path, fps: float = FPS, size: tuple[int, int] = (FRAME_W, FRAME_H)
) -> int:
    """Encode BGR frames, each ``(size[1], size[0], 3)`` uint8, to H.264 (``.mp4``) of
    ``size`` = ``(width, height)`` px; returns the number of frames written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    n = 0
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(round(fps), 1))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "crf": str(CRF),
            "preset": "veryfast",
            "g": str(GOP_FRAMES),
            "keyint_min": str(GOP_FRAMES),
            "sc_threshold": "0",
        }
        tb = Fraction(1, round(fps))
        for img in frames:
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = n
            vf.time_base = tb
            for packet in stream.encode(vf):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return n
