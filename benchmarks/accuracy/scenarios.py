"""Scenario generators: randomised (from a seed) scripts with exact ground truth.

Every scenario is drawn from its own ``numpy`` generator seeded with ``(suite seed,
kind, index)``: the background, the zone/line geometry, which real people (sprite
sequences) appear, their paths, paces, timings and the picture effects all vary with
the seed within sensible ranges; the same seed always gives the same suite.

Per kind (GT = ground-truth alerts, computed from the simulation by
:mod:`benchmarks.accuracy.truth`; a draw whose truth does not come out as the story
intends is redrawn):

* ``intrusion`` — 1-2 people walk into a zone and stay ``min_dwell_s`` + 2..8 s
  (standing or wandering), passers-by walk past outside it, and one cuts across a
  corner for less than the dwell.
* ``loitering`` — someone wanders inside a zone 13..25 s (``min_dwell_s`` 10); a
  passer-by crosses the zone in a few seconds; another walks by outside.
* ``line_crossing`` — 3..5 people cross a line (both directions, several seconds
  apart) and one walks along it, 0.25..0.45 heights beside it, never crossing.
* ``abandoned_object`` — a person carries a real object in, puts it down and: walks
  away (positive), or stays beside it until picking it up again (negative), or walks
  away and comes back for it before ``min_unattended_s`` (negative).  A passer-by keeps
  well away.
* ``fall`` — one person walks then collapses (0.5..1.0 s, sprite rotated to lying about
  the feet), lies 6..14 s and gets up (positive); others walk normally, bend to pick
  something up (45..65 degrees, 0.5..1.5 s) or sit briefly (0.6 squash, 1..2 s).
* ``crowding`` — ``min_count`` people gather in a zone and stay (positive) or only
  ``min_count - 1`` do while a passer-by cuts across a corner (negative).
* ``wrong_way`` — people walk along a corridor zone the allowed way, one or two walk
  against it.
* ``quiet`` — nothing to report, 5 min each: empty scene with noise; dusk; a light
  switch; cloud shadows; swaying foliage; headlight sweeps; people walking past (busy
  but normal); mixes.  Every rule type is armed, with geometry that the passers-by do
  not trigger by construction (checked on the truth).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.accuracy import truth
from benchmarks.accuracy.assets import FRAME_H, FRAME_W, Background, ObjectPatch
from benchmarks.accuracy.render import (
    FPS,
    Actor,
    Bend,
    CloudField,
    Drop,
    Effects,
    Fall,
    GetUp,
    ObjectSpec,
    PickUp,
    Simulation,
    Stand,
    Step,
    Sweep,
    Walk,
    simulate,
)
from benchmarks.accuracy.sprites import SpriteBank
from benchmarks.accuracy.truth import GTEvent

F64 = npt.NDArray[np.float64]
Point = tuple[float, float]

KINDS = (
    "intrusion",
    "loitering",
    "line_crossing",
    "abandoned_object",
    "fall",
    "crowding",
    "wrong_way",
)
ALL_KINDS = (*KINDS, "quiet")

# Rule parameters written in the configs (the values).
INTRUSION_DWELL_S = (2.0, 3.0)
LOITERING_DWELL_S = 10.0
ABANDON_UNATTENDED_S = 10.0
FALL_MIN_DOWN_S = 3.0
CROWD_MIN_DURATION_S = 5.0
WRONG_WAY_MIN_S = 2.0

QUIET_VARIANTS_FULL = (
    "empty",
    "dusk",
    "switch",
    "clouds",
    "foliage",
    "headlights",
    "busy",
    "busy",
    "busy+clouds",
    "busy+foliage",
    "busy+headlights",
    "busy+dusk",
)
"""The full suite's 12 quiet scenes of 5 min: 6 without people, 6 with people passing."""
QUIET_VARIANTS_QUICK = ("busy+clouds", "switch+foliage")

WARMUP_S = 2.0
"""No one appears before this (the scene analyser learns the empty background)."""

MAX_DRAWS = 60


class GenerationError(RuntimeError):
    """No draw satisfied a scenario's story within ``MAX_DRAWS`` attempts."""


@dataclass
class Scenario:
    """One generated scenario: geometry, rules, script, effects and ground truth.

    Attributes:
        name: Unique name, e.g. ``"intrusion-02"`` (also the camera id).
        kind: One of :data:`ALL_KINDS`.
        variant: The story or quiet-scene variant.
        background: Background name (see :mod:`benchmarks.accuracy.assets`).
        duration_s: Length of the video, seconds.
        seed: Seed of the render (noise) generator.
        zones: Zone name -> polygon ``[[x, y], ...]`` pixels.
        lines: Line name -> ``[[x1, y1], [x2, y2]]`` pixels.
        rules: Rule configs without ``camera`` (added when the config is written).
        actors: People scripts.
        objects: Objects carried by the people.
        effects: Picture effects.
        gt: Ground-truth alerts (incidents).
        sim: The simulation the truth was computed from.
    """

    name: str
    kind: str
    variant: str
    background: str
    duration_s: float
    seed: int
    zones: dict[str, list[list[float]]]
    lines: dict[str, list[list[float]]]
    rules: list[dict[str, Any]]
    actors: list[Actor]
    objects: list[ObjectSpec]
    effects: Effects
    gt: list[GTEvent]
    sim: Simulation | None = field(default=None, repr=False)

    @property
    def n_people(self) -> int:
        """Number of people in the script."""
        return len(self.actors)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (the truth file next to the video)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "variant": self.variant,
            "background": self.background,
            "duration_s": self.duration_s,
            "fps": FPS,
            "people": self.n_people,
            "objects": len(self.objects),
            "zones": self.zones,
            "lines": self.lines,
            "rules": self.rules,
            "gt": [g.to_dict() for g in self.gt],
        }


def scenario_rng(seed: int, kind: str, index: int, draw: int = 0) -> np.random.Generator:
    """The generator of one scenario draw: independent streams per (seed, kind, index)."""
    digest = hashlib.sha256(f"{seed}:{kind}:{index}:{draw}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class Builder:
    """Geometry and script helpers on one background, driven by one generator."""

    def __init__(
        self,
        rng: np.random.Generator,
        bank: SpriteBank,
        bg: Background,
        patches: Sequence[ObjectPatch],
    ) -> None:
        self.rng = rng
        self.bank = bank
        self.bg = bg
        self.patches = patches
        self.walkers = [i for i, s in enumerate(bank.sequences) if s.stride_h >= 0.03]
        self.used: list[int] = []

    # -- geometry ---------------------------------------------------------------

    def h(self, y: float) -> float:
        """Person height (px) at foot ``y``."""
        return self.bg.height_at(y)

    def uniform(self, lo: float, hi: float) -> float:
        """A float in ``[lo, hi)``."""
        return float(self.rng.uniform(lo, hi))

    def point(
        self,
        min_h: float = 55.0,
        max_h: float = 175.0,
        margin_h: float = 0.6,
        poly: Sequence[Sequence[float]] | None = None,
    ) -> Point:
        """A random foot point in the walkable region (or ``poly``), with a person height
        in ``[min_h, max_h]`` px and at least ``margin_h`` heights inside the region."""
        ys = self.bg.walk[:, 1]
        for _ in range(2000):
            x = self.uniform(0, FRAME_W)
            y = self.uniform(float(ys.min()), float(ys.max()))
            hh = self.h(y)
            if not (min_h <= hh <= max_h):
                continue
            if not self.bg.inside_walk(x, y, margin_h * hh * self.bg.depth_scale):
                continue
            if not (0.4 * hh < x < FRAME_W - 0.4 * hh):
                continue
            if poly is not None and not truth.inside(poly, np.array([[x, y]]))[0]:
                continue
            return (x, y)
        raise GenerationError(f"no point with height in [{min_h}, {max_h}] on {self.bg.name}")

    def zone(
        self,
        name: str,
        width_h: tuple[float, float],
        depth_h: tuple[float, float],
        min_h: float = 60.0,
        max_h: float = 160.0,
    ) -> list[list[float]]:
        """A random convex quadrilateral on the ground, sized in person heights at its
        centre (``width_h`` across, ``depth_h`` deep: drawn at half that in y, the
        ground seen obliquely), inside the walkable region and the frame."""
        for _ in range(500):
            cx, cy = self.point(min_h, max_h, margin_h=1.0)
            hh = self.h(cy)
            w = self.uniform(*width_h) * hh
            d = self.uniform(*depth_h) * hh * self.bg.depth_scale
            skew = self.uniform(-0.25, 0.25) * w
            quad = [
                [cx - w / 2 + skew, cy - d / 2],
                [cx + w / 2 + skew, cy - d / 2],
                [cx + w / 2 - skew * 0.3, cy + d / 2],
                [cx - w / 2 - skew * 0.3, cy + d / 2],
            ]
            jitter = self.rng.uniform(-0.08, 0.08, (4, 2)) * np.array([w, d])
            poly = (np.array(quad) + jitter).round(1)
            if all(self.bg.inside_walk(float(x), float(y), 2.0) for x, y in poly) and all(
                8 <= x <= FRAME_W - 8 and 8 <= y <= FRAME_H - 8 for x, y in poly
            ):
                return [[float(x), float(y)] for x, y in poly]
        raise GenerationError(f"cannot place zone {name} on {self.bg.name}")

    def portal(self, exclude_near: Point | None = None) -> Point:
        """A point just outside the frame (or far in the distance) where people come and go.

        Left and right frame edges on the walkable region; on the street also the far end
        of the street (people appear small there).
        """
        cands: list[Point] = []
        walk = self.bg.walk
        for _ in range(200):
            side = int(self.rng.integers(0, 3))
            if side < 2:
                x_edge = 0.0 if side == 0 else float(FRAME_W - 1)
                ys = [
                    y
                    for y in np.linspace(walk[:, 1].min(), walk[:, 1].max(), 60)
                    if self.bg.inside_walk(x_edge + (4 if side == 0 else -4), y, 0.0)
                    and 50 <= self.h(y) <= 180
                ]
                if not ys:
                    continue
                y = float(self.rng.choice(ys))
                off = 0.35 * self.h(y)
                cands.append((-off if side == 0 else FRAME_W - 1 + off, y))
            else:
                # Far end: the smallest people the region allows (about 55 px tall).
                try:
                    p = self.point(50.0, 62.0, margin_h=0.2)
                except GenerationError:
                    continue
                cands.append(p)
            if exclude_near is None or math.dist(cands[-1], exclude_near) > 0.35 * FRAME_W:
                return cands[-1]
        if not cands:
            raise _RedrawError
        return cands[-1]

    def path_avoiding(
        self, poly: Sequence[Sequence[float]], margin_h: float = 0.8
    ) -> tuple[Point, Point]:
        """Two portals whose straight path keeps ``margin_h`` heights clear of ``poly``."""
        for _ in range(100):
            src = self.portal()
            dst = self.portal(exclude_near=src)
            ok = True
            for u in np.linspace(0.0, 1.0, 80):
                x = src[0] + (dst[0] - src[0]) * u
                y = src[1] + (dst[1] - src[1]) * u
                if _dist_to_poly(poly, (x, y)) > -margin_h * self.h(y):
                    ok = False
                    break
            if ok:
                return src, dst
        raise _RedrawError

    def image_step(self, u: F64, ground: float) -> F64:
        """Image vector along unit image direction ``u`` spanning ``ground`` px of ground
        (measured across the view at that depth): shorter when ``u`` runs into depth."""
        uu = np.asarray(u, np.float64) / float(np.hypot(*u))
        scale = math.hypot(float(uu[0]), float(uu[1]) / self.bg.depth_scale)
        out: F64 = uu * (ground / scale)
        return out

    def exit_along(self, p: Point, direction: F64) -> Point:
        """Where someone at ``p`` heading ``direction`` leaves: the last walkable point on
        that ray, nudged out of the picture when that is at the frame's edge."""
        u = np.asarray(direction, np.float64) / float(np.hypot(*direction))
        q = np.array(p, np.float64)
        last = q.copy()
        for _ in range(400):
            q = q + u * 5.0
            if not (0 <= q[0] < FRAME_W and 0 <= q[1] < FRAME_H) or not self.bg.inside_walk(
                float(q[0]), float(q[1])
            ):
                break
            last = q.copy()
        if not (8 <= last[0] < FRAME_W - 8):
            last = last + u * 0.4 * self.h(float(last[1]))
        return (float(last[0]), float(last[1]))

    # -- people -----------------------------------------------------------------

    def sequence(self, direction: Point | None, target_h: float) -> int:
        """A real walk cycle for someone heading ``direction`` at ``target_h`` px tall.

        Prefers people filmed walking the same way (up to mirroring) and not much smaller
        than the target (less up-scaling); avoids reusing the same person in a scene.
        """
        seqs = self.bank.sequences
        cands = [i for i in self.walkers if i not in self.used] or list(self.walkers)
        scores = []
        for i in cands:
            v = seqs[i].velocity
            sim = 1.0
            if direction is not None:
                a = np.array([abs(v[0]), v[1]])
                b = np.array([abs(direction[0]), direction[1]])
                na, nb = float(np.hypot(*a)), float(np.hypot(*b))
                sim = float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0
            size = min(float(np.mean(seqs[i].height)) / max(target_h, 1.0), 1.0)
            scores.append(sim + 0.6 * size)
        order = np.argsort(scores)[::-1][: max(4, len(cands) // 5)]
        pick = cands[int(self.rng.choice(order))]
        self.used.append(pick)
        return pick

    def actor(
        self, start: Point, t0: float, steps: list[Step], role: str, carries: int | None = None
    ) -> Actor:
        """An actor whose sprite suits its first walking direction."""
        first = next((s for s in steps if isinstance(s, Walk)), None)
        direction = None if first is None else (first.to[0] - start[0], first.to[1] - start[1])
        ref_y = start[1] if first is None else 0.5 * (start[1] + first.to[1])
        return Actor(self.sequence(direction, self.h(ref_y)), start, t0, steps, carries, role)

    def pace(self) -> float:
        """A normal walking pace, body heights per second."""
        return self.uniform(0.65, 0.95)

    def wander(
        self,
        poly: Sequence[Sequence[float]],
        start: Point,
        duration_s: float,
        pace: tuple[float, float] = (0.25, 0.55),
    ) -> list[Step]:
        """Slow random walk between points of ``poly`` with pauses, about ``duration_s``."""
        steps: list[Step] = []
        t, pos = 0.0, start
        while t < duration_s:
            if self.rng.random() < 0.4:
                d = min(self.uniform(1.0, 4.0), duration_s - t + 0.5)
                steps.append(Stand(d))
                t += d
                continue
            to = self.point(20, 400, margin_h=0.0, poly=_shrink(poly, 0.8))
            p = self.uniform(*pace)
            steps.append(Walk(to, p))
            t += math.dist(pos, to) / (p * self.h(0.5 * (pos[1] + to[1])))
            pos = to
        return steps


def _shrink(poly: Sequence[Sequence[float]], f: float) -> list[list[float]]:
    """``poly`` scaled by ``f`` about its centroid."""
    p = np.asarray(poly, np.float64)
    c = p.mean(axis=0)
    return ((p - c) * f + c).tolist()  # type: ignore[no-any-return]


def _dist_to_poly(poly: Sequence[Sequence[float]], p: Point) -> float:
    """Signed distance (px) of ``p`` to ``poly``: > 0 inside."""
    contour = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    return float(cv2.pointPolygonTest(contour, (float(p[0]), float(p[1])), True))


def _sim(
    b: Builder, actors: list[Actor], objects: list[ObjectSpec], duration_s: float
) -> Simulation:
    return simulate(actors, objects, b.bank, b.bg, b.patches, duration_s)


def _end_time(sim: Simulation, i: int) -> float:
    """Last time actor ``i`` is present, seconds (0 if never)."""
    idx = np.flatnonzero(sim.actors[i].present)
    return float(idx[-1]) / sim.fps if len(idx) else 0.0


def _last_inside(sim: Simulation, i: int, poly: Sequence[Sequence[float]], default: float) -> float:
    """Last time actor ``i`` is inside ``poly``, seconds (``default`` if never)."""
    idx = np.flatnonzero(truth.inside(poly, sim.actors[i].xy) & sim.actors[i].present)
    return float(idx[-1]) / sim.fps if len(idx) else default


def _effects_light(rng: np.random.Generator) -> Effects:
    """Incident scenes: noise only, sometimes slow cloud shadows (realistic daylight)."""
    sigma = float(rng.uniform(1.8, 3.2))
    if rng.random() < 0.25:
        return Effects(noise_sigma=sigma, clouds=_cloud_field(rng, 2, (0.15, 0.3)))
    return Effects(noise_sigma=sigma)


def _cloud_field(rng: np.random.Generator, n: int, depth: tuple[float, float]) -> CloudField:
    blobs = []
    for _ in range(n):
        vx = float(rng.uniform(4.0, 18.0)) * (1 if rng.random() < 0.5 else -1)
        blobs.append(
            (
                float(rng.uniform(-200, FRAME_W + 200)),
                float(rng.uniform(0, FRAME_H)),
                vx,
                float(rng.uniform(-4.0, 4.0)),
                float(rng.uniform(90, 220)),
                float(rng.uniform(60, 160)),
                float(rng.uniform(*depth)),
            )
        )
    return CloudField(tuple(blobs))


# ----------------------------------------------------------------------------- kinds

Generator = Callable[[Builder, str, bool], Scenario]


def gen_intrusion(b: Builder, name: str, quick: bool) -> Scenario:
    """Intruders stay in a zone; passers-by stay out or cut a corner briefly."""
    dwell = float(b.rng.choice(INTRUSION_DWELL_S))
    poly = b.zone("area", (2.5, 4.5), (2.0, 3.5))
    n_pos = 1 if quick else int(b.rng.integers(1, 3))
    actors: list[Actor] = []
    t = WARMUP_S + b.uniform(0.0, 3.0)
    plan = ["pos"] * n_pos + ["pass"] + ([] if quick else ["corner"])
    b.rng.shuffle(plan)
    for role in plan:
        src = b.portal()
        dst = b.portal(exclude_near=src)
        if role == "pos":
            spot = b.point(20, 400, margin_h=0.0, poly=_shrink(poly, 0.6))
            stay = dwell + b.uniform(2.0, 8.0)
            mid: list[Step] = (
                [Stand(stay)] if b.rng.random() < 0.5 else b.wander(poly, spot, stay, (0.2, 0.4))
            )
            steps: list[Step] = [Walk(spot, b.pace()), *mid, Walk(dst, b.pace())]
        elif role == "pass":
            src, dst = b.path_avoiding(poly)
            steps = [Walk(dst, b.pace())]
        else:  # corner: walk through a point just inside the zone's edge
            c = np.asarray(poly)[int(b.rng.integers(0, 4))]
            centre = np.asarray(poly).mean(axis=0)
            corner_pt = (c + 0.15 * (centre - c)).tolist()
            steps = [Walk((corner_pt[0], corner_pt[1]), b.pace() + 0.15), Walk(dst, b.pace())]
        a = b.actor(src, t, steps, role)
        actors.append(a)
        t = _last_inside(_sim(b, [a], [], 400.0), 0, poly, t + 3.0) + b.uniform(3.0, 6.0)
    duration = max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    duration = math.ceil(duration)
    sim = _sim(b, actors, [], duration)
    raw = truth.zone_stay_gt(sim, "intrusion", "area", poly, dwell, truth.INTRUSION_EXIT_GRACE_S)
    gt = truth.merge_incidents(raw)
    if len(raw) != n_pos or len(gt) != n_pos:
        raise _RedrawError
    rules = [{"type": "intrusion", "zone": "area", "classes": ["person"], "min_dwell_s": dwell}]
    return Scenario(
        name,
        "intrusion",
        f"{n_pos} intruder(s)",
        b.bg.name,
        duration,
        0,
        {"area": poly},
        {},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_loitering(b: Builder, name: str, quick: bool) -> Scenario:
    """Someone wanders in a zone >= 10 s; a passer-by crosses it quickly."""
    poly = b.zone("square", (3.0, 5.0), (2.5, 4.0))
    actors: list[Actor] = []
    plan = ["loiter", "cross"] + ([] if quick else ["outside"])
    b.rng.shuffle(plan)
    t = WARMUP_S + b.uniform(0.0, 3.0)
    for role in plan:
        src = b.portal()
        dst = b.portal(exclude_near=src)
        if role == "loiter":
            spot = b.point(20, 400, margin_h=0.0, poly=_shrink(poly, 0.6))
            stay = b.uniform(13.0, 18.0 if quick else 25.0)
            steps: list[Step] = [
                Walk(spot, b.pace()),
                *b.wander(poly, spot, stay),
                Walk(dst, b.pace()),
            ]
        elif role == "cross":
            c = np.asarray(poly).mean(axis=0)
            steps = [Walk((float(c[0]), float(c[1])), b.pace() + 0.1), Walk(dst, b.pace() + 0.1)]
        else:
            src, dst = b.path_avoiding(poly)
            steps = [Walk(dst, b.pace())]
        a = b.actor(src, t, steps, role)
        actors.append(a)
        t = _last_inside(_sim(b, [a], [], 400.0), 0, poly, t + 3.0) + b.uniform(3.0, 6.0)
    duration = math.ceil(
        max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    )
    sim = _sim(b, actors, [], duration)
    raw = truth.zone_stay_gt(
        sim, "loitering", "square", poly, LOITERING_DWELL_S, truth.LOITERING_EXIT_GRACE_S
    )
    gt = truth.merge_incidents(raw)
    if len(gt) != 1:
        raise _RedrawError
    rules = [
        {
            "type": "loitering",
            "zone": "square",
            "classes": ["person"],
            "min_dwell_s": LOITERING_DWELL_S,
        }
    ]
    return Scenario(
        name,
        "loitering",
        "loiterer + passers-by",
        b.bg.name,
        duration,
        0,
        {"square": poly},
        {},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_line_crossing(b: Builder, name: str, quick: bool) -> Scenario:
    """Several people cross a line both ways; one walks along it."""
    cx, cy = b.point(65, 150, margin_h=2.0)
    hh = b.h(cy)
    length = b.uniform(3.0, 5.5) * hh
    ang = b.uniform(-0.5, 0.5) + (math.pi / 2 if b.rng.random() < 0.5 else 0.0)
    d = np.array([math.cos(ang), math.sin(ang)])
    p1 = np.array([cx, cy]) - b.image_step(d, length / 2)
    p2 = np.array([cx, cy]) + b.image_step(d, length / 2)
    if not all(b.bg.inside_walk(float(p[0]), float(p[1]), 4.0) for p in (p1, p2)):
        raise _RedrawError
    if b.rng.random() < 0.5:
        p1, p2 = p2, p1
    normal = np.array([-(p2 - p1)[1], (p2 - p1)[0]])
    normal /= np.hypot(*normal)  # points to the positive side
    n_cross = 3 if quick else int(b.rng.integers(3, 6))
    dirs = ["+", "-"] + [str(b.rng.choice(["+", "-"])) for _ in range(n_cross - 2)]
    b.rng.shuffle(dirs)
    actors: list[Actor] = []
    t = WARMUP_S + b.uniform(0.0, 2.0)
    for sign in dirs:
        u = b.uniform(0.2, 0.8)
        on = p1 + (p2 - p1) * u
        hl = b.h(float(on[1]))
        s = -1.0 if sign == "+" else 1.0  # start on the negative side for "+"
        tilt = b.image_step(p2 - p1, b.uniform(-0.8, 0.8) * hl)
        start = on + b.image_step(normal * s, b.uniform(2.5, 4.0) * hl) + tilt
        end = on - b.image_step(normal * s, b.uniform(2.5, 4.0) * hl) - tilt
        steps: list[Step] = [Walk((float(end[0]), float(end[1])), b.pace())]
        exit_pt = b.portal()
        steps.append(Walk(exit_pt, b.pace()))
        actors.append(b.actor((float(start[0]), float(start[1])), t, steps, f"cross {sign}"))
        t += b.uniform(4.0, 8.0)
    # Along the line, on one side, never crossing.
    side = 1.0 if b.rng.random() < 0.5 else -1.0
    off = b.uniform(0.25, 0.45)
    a0 = p1 - (p2 - p1) * 0.3
    a1 = p2 + (p2 - p1) * 0.3
    ha0, ha1 = b.h(float(a0[1])), b.h(float(a1[1]))
    s0 = a0 + normal * side * off * ha0
    s1 = a1 + normal * side * off * ha1
    if b.rng.random() < 0.5:
        s0, s1 = s1, s0
    actors.append(
        b.actor(
            (float(s0[0]), float(s0[1])),
            t,
            [Walk((float(s1[0]), float(s1[1])), b.pace()), Walk(b.portal(), b.pace())],
            "along the line",
        )
    )
    duration = math.ceil(
        max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    )
    duration = min(duration, int(t + 25))
    sim = _sim(b, actors, [], duration)
    line = [
        [round(float(p1[0]), 1), round(float(p1[1]), 1)],
        [round(float(p2[0]), 1), round(float(p2[1]), 1)],
    ]
    gt = truth.merge_incidents(truth.crossing_gt(sim, "gate", line[0], line[1]))
    if len(gt) != n_cross or sorted(g.direction or "" for g in gt) != sorted(dirs):
        raise _RedrawError
    starts = sorted(g.start_s for g in gt)
    if any(b2 - a2 < 2.5 for a2, b2 in itertools.pairwise(starts)):
        raise _RedrawError
    rules = [{"type": "line_crossing", "line": "gate", "classes": ["person"]}]
    return Scenario(
        name,
        "line_crossing",
        f"{n_cross} crossings + 1 along",
        b.bg.name,
        duration,
        0,
        {},
        {"gate": line},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_abandoned(b: Builder, name: str, quick: bool, story: str | None = None) -> Scenario:
    """A person puts a real object down and leaves it / stays with it / comes back for it."""
    if story is None:
        story = str(b.rng.choice(["left", "left", "stays", "returns"]))
    poly = b.zone("hall", (3.5, 6.0), (3.0, 5.0), min_h=85.0, max_h=165.0)
    spot = b.point(85, 170, margin_h=0.0, poly=_shrink(poly, 0.5))
    src = b.portal()
    dst = b.portal(exclude_near=spot)
    hh = b.h(spot[1])
    t0 = WARMUP_S + b.uniform(1.0, 4.0)
    steps: list[Step] = [
        Walk(spot, b.pace()),
        Stand(b.uniform(0.5, 1.5)),
        Drop(0),
    ]
    steps.append(Stand(b.uniform(3.0, 5.0)))
    if story == "left":
        steps.append(Walk(dst, b.pace()))
    elif story == "stays":
        side = np.array([b.uniform(-0.4, 0.4) * hh, b.uniform(-0.1, 0.1) * hh])
        steps += [
            Walk((spot[0] + float(side[0]), spot[1] + float(side[1])), 0.3),
            Stand(b.uniform(18.0, 26.0)),
            Walk(spot, 0.3),
            PickUp(0),
            Stand(0.5),
            Walk(dst, b.pace()),
        ]
    else:  # returns before min_unattended_s
        away_dir = np.array(dst) - np.array(spot)
        away_dir /= np.hypot(*away_dir)
        far = np.array(spot) + away_dir * b.uniform(2.4, 3.2) * hh
        pace = b.pace()
        steps += [
            Walk((float(far[0]), float(far[1])), pace),
            Stand(b.uniform(0.5, 2.0)),
            Walk(spot, pace),
            PickUp(0),
            Stand(0.5),
            Walk(dst, b.pace()),
        ]
    patch = int(b.rng.integers(0, len(b.patches)))
    owner = b.actor(src, t0, steps, f"owner ({story})", carries=0)
    actors = [owner]
    # A passer-by far from the object.
    pa = b.portal()
    pb = b.portal(exclude_near=pa)
    mid = 0.5 * (np.array(pa) + np.array(pb))
    if math.dist((float(mid[0]), float(mid[1])), spot) > 4.0 * hh:
        actors.append(b.actor(pa, t0 + b.uniform(5.0, 20.0), [Walk(pb, b.pace())], "passer-by"))
    objects = [ObjectSpec(patch, 0)]
    sim0 = _sim(b, actors, objects, 400.0)
    ob = sim0.objects[0]
    if math.isnan(ob.drop_s) or ob.drop_s < 12.0:
        # The scene analyser needs its warm-up before the object lands; walk in later.
        owner.t0_s += 12.0 - (0.0 if math.isnan(ob.drop_s) else ob.drop_s) + b.uniform(0, 2)
        sim0 = _sim(b, actors, objects, 400.0)
    end = max(_end_time(sim0, i) for i in range(len(actors)))
    gt0 = truth.abandoned_gt(sim0, "hall", poly, ABANDON_UNATTENDED_S)
    if gt0:
        end = max(end, gt0[0].start_s + b.uniform(8.0, 12.0))
    duration = float(math.ceil(end + 2.0))
    sim = _sim(b, actors, objects, duration)
    gt = truth.merge_incidents(truth.abandoned_gt(sim, "hall", poly, ABANDON_UNATTENDED_S))
    if len(gt) != (1 if story == "left" else 0):
        raise _RedrawError
    rules = [{"type": "abandoned_object", "zone": "hall", "min_unattended_s": ABANDON_UNATTENDED_S}]
    return Scenario(
        name,
        "abandoned_object",
        f"{story} ({b.patches[patch].name})",
        b.bg.name,
        duration,
        0,
        {"hall": poly},
        {},
        rules,
        actors,
        objects,
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_fall(b: Builder, name: str, quick: bool) -> Scenario:
    """One person collapses and lies; others walk, bend or sit briefly."""
    plan = ["fall", "walk"] if quick else ["fall", "walk", str(b.rng.choice(["bend", "sit"]))]
    if not quick and b.rng.random() < 0.5:
        plan.append("sit" if plan[-1] == "bend" else "bend")
    b.rng.shuffle(plan)
    actors: list[Actor] = []
    t = WARMUP_S + b.uniform(0.0, 2.0)
    for role in plan:
        src = b.portal()
        dst = b.portal(exclude_near=src)
        spot = b.point(75, 165, margin_h=1.2)
        if role == "fall":
            # Fall after the scene analyser's warm-up (8 s) so the lying blob is seen.
            steps: list[Step] = [
                Walk(spot, b.pace()),
                Fall(b.uniform(0.5, 1.0), 1 if b.rng.random() < 0.5 else -1),
                Stand(b.uniform(6.0, 9.0 if quick else 14.0)),
                GetUp(b.uniform(1.2, 2.0)),
                Stand(b.uniform(0.5, 1.5)),
                Walk(dst, b.pace()),
            ]
        elif role == "bend":
            lean = b.uniform(45, 65) * float(b.rng.choice([-1, 1]))
            steps = [
                Walk(spot, b.pace()),
                Bend(0.5, b.uniform(0.5, 1.5), 0.6, angle_deg=lean, squash=0.92),
                Walk(dst, b.pace()),
            ]
        elif role == "sit":
            steps = [
                Walk(spot, b.pace()),
                Bend(0.6, b.uniform(1.0, 2.0), 0.7, squash=0.6),
                Walk(dst, b.pace()),
            ]
        else:
            steps = [Walk(spot, b.pace()), Walk(dst, b.pace())]
        a = b.actor(src, t, steps, role)
        sim1 = _sim(b, [a], [], 400.0)
        if role == "fall" and not (sim1.actors[0].down_s >= 12.0):
            a.t0_s += (
                12.0
                - (0.0 if math.isnan(sim1.actors[0].down_s) else sim1.actors[0].down_s)
                + b.uniform(0.0, 2.0)
            )
            sim1 = _sim(b, [a], [], 400.0)
        actors.append(a)
        if role == "fall":
            t = _end_time(sim1, 0) - b.uniform(2.0, 4.0)
        else:
            t = a.t0_s + b.uniform(7, 11)
        t = max(t, a.t0_s + 7.0)
    duration = math.ceil(
        max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    )
    sim = _sim(b, actors, [], duration)
    gt = truth.merge_incidents(truth.fall_gt(sim, FALL_MIN_DOWN_S))
    if len(gt) != 1:
        raise _RedrawError
    rules = [{"type": "fall", "min_down_s": FALL_MIN_DOWN_S}]
    return Scenario(
        name,
        "fall",
        "+".join(plan),
        b.bg.name,
        duration,
        0,
        {},
        {},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_crowding(b: Builder, name: str, quick: bool, story: str | None = None) -> Scenario:
    """``min_count`` people gather and stay (positive) or one short of it (negative)."""
    if story is None:
        story = str(b.rng.choice(["crowd", "crowd", "one short"]))
    min_count = int(b.rng.integers(3, 5))
    poly = b.zone("plaza", (4.5, 7.0), (3.5, 5.5), min_h=70.0, max_h=150.0)
    n = min_count if story == "crowd" else min_count - 1
    spots: list[Point] = []
    for _ in range(400):
        if len(spots) == n:
            break
        p = b.point(20, 400, margin_h=0.0, poly=_shrink(poly, 0.7))
        hp = b.h(p[1])
        if all(abs(p[0] - q[0]) > 0.55 * hp or abs(p[1] - q[1]) > 0.35 * hp for q in spots):
            spots.append(p)
    if len(spots) < n:
        raise _RedrawError
    actors: list[Actor] = []
    t = WARMUP_S + b.uniform(0.0, 2.0)
    arrivals = []
    for p in spots:
        src = b.portal()
        a = b.actor(src, t, [Walk(p, b.pace())], "member")
        s1 = _sim(b, [a], [], 400.0)
        arrivals.append(float(np.flatnonzero(s1.actors[0].present)[-1]) / FPS)
        actors.append(a)
        t += b.uniform(1.0, 4.0)
    last = max(arrivals)
    hold = b.uniform(8.0, 12.0 if quick else 16.0)
    for a, arr in zip(actors, arrivals, strict=True):
        a.steps += [Stand(last - arr + hold + b.uniform(-1.0, 1.5)), Walk(b.portal(), b.pace())]
    if story != "crowd":
        # A passer-by cuts across a corner of the zone while the group is there.
        c = np.asarray(poly)[int(b.rng.integers(0, 4))]
        centre = np.asarray(poly).mean(axis=0)
        via = c + 0.12 * (centre - c)
        src, dst = b.portal(), None
        dst = b.portal(exclude_near=src)
        actors.append(
            b.actor(
                src,
                last - b.uniform(2.0, 6.0),
                [Walk((float(via[0]), float(via[1])), 1.0), Walk(dst, 1.0)],
                "passer-by",
            )
        )
    duration = math.ceil(
        max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    )
    sim = _sim(b, actors, [], duration)
    gt = truth.merge_incidents(
        truth.crowding_gt(sim, "plaza", poly, min_count, CROWD_MIN_DURATION_S)
    )
    if len(gt) != (1 if story == "crowd" else 0):
        raise _RedrawError
    rules = [
        {
            "type": "crowding",
            "zone": "plaza",
            "classes": ["person"],
            "min_count": min_count,
            "min_duration_s": CROWD_MIN_DURATION_S,
        }
    ]
    return Scenario(
        name,
        "crowding",
        f"{story} (min_count {min_count})",
        b.bg.name,
        duration,
        0,
        {"plaza": poly},
        {},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


def gen_wrong_way(b: Builder, name: str, quick: bool) -> Scenario:
    """People walk a corridor the allowed way; one or two against it."""
    cx, cy = b.point(60, 130, margin_h=1.0)
    hh = b.h(cy)
    length = b.uniform(4.0, 5.5) * hh
    width = b.uniform(1.6, 2.4) * hh * b.bg.depth_scale
    ang = b.uniform(-0.35, 0.35)
    d = np.array([math.cos(ang), math.sin(ang)])
    n = np.array([-d[1], d[0]])
    c = np.array([cx, cy])
    poly_np = np.array(
        [
            c - d * length / 2 - n * width / 2,
            c + d * length / 2 - n * width / 2,
            c + d * length / 2 + n * width / 2,
            c - d * length / 2 + n * width / 2,
        ]
    )
    if not all(b.bg.inside_walk(float(x), float(y), 2.0) for x, y in poly_np):
        raise _RedrawError
    poly = poly_np.round(1).tolist()
    allowed = d if b.rng.random() < 0.5 else -d
    n_wrong = 1 if quick else int(b.rng.integers(1, 3))
    n_right = 2 if quick else int(b.rng.integers(2, 5))
    plan = ["wrong"] * n_wrong + ["right"] * n_right
    b.rng.shuffle(plan)
    actors: list[Actor] = []
    t = WARMUP_S + b.uniform(0.0, 2.0)
    for role in plan:
        go = allowed if role == "right" else -allowed
        lat = n * b.uniform(-0.3, 0.3) * width
        start = c - go * (length / 2 + b.uniform(1.5, 3.0) * hh) + lat
        end = c + go * (length / 2 + b.uniform(1.0, 2.0) * hh) + lat
        pace = b.pace()
        end_pt = (float(end[0]), float(end[1]))
        steps: list[Step] = [Walk(end_pt, pace), Walk(b.exit_along(end_pt, go), pace)]
        actors.append(b.actor((float(start[0]), float(start[1])), t, steps, role))
        t += b.uniform(4.0, 7.0) if role == "right" else b.uniform(9.0, 12.0)
    duration = math.ceil(
        max(_end_time(_sim(b, actors, [], 600.0), i) for i in range(len(actors))) + 2.0
    )
    duration = min(duration, int(t + 20))
    sim = _sim(b, actors, [], duration)
    direction = [round(float(allowed[0]), 3), round(float(allowed[1]), 3)]
    gt = truth.merge_incidents(
        truth.wrong_way_gt(sim, "corridor", poly, direction, WRONG_WAY_MIN_S)
    )
    if len(gt) != n_wrong:
        raise _RedrawError
    rules = [
        {
            "type": "wrong_way",
            "zone": "corridor",
            "classes": ["person"],
            "direction": direction,
            "min_duration_s": WRONG_WAY_MIN_S,
        }
    ]
    return Scenario(
        name,
        "wrong_way",
        f"{n_wrong} wrong / {n_right} right",
        b.bg.name,
        duration,
        0,
        {"corridor": poly},
        {},
        rules,
        actors,
        [],
        _effects_light(b.rng),
        gt,
        sim,
    )


# ----------------------------------------------------------------------------- quiet


def _quiet_effects(b: Builder, variant: str, duration: float) -> Effects:
    rng = b.rng
    parts = set(variant.split("+"))
    sigma = float(rng.uniform(1.8, 3.5))
    ramp = switch = None
    clouds = None
    foliage = 0.0
    sweeps: list[Sweep] = []
    if "dusk" in parts:
        ramp = (
            float(rng.uniform(0.0, 0.2)) * duration,
            float(rng.uniform(0.8, 1.0)) * duration,
            float(rng.uniform(0.3, 0.5)),
        )
    if "switch" in parts:
        switch = (float(rng.uniform(0.3, 0.7)) * duration, float(rng.uniform(0.5, 0.7)))
    if "clouds" in parts:
        clouds = _cloud_field(rng, int(rng.integers(3, 6)), (0.25, 0.45))
    if "foliage" in parts:
        foliage = float(rng.uniform(1.5, 3.5))
    if "headlights" in parts:
        t = float(rng.uniform(3.0, 15.0))
        while t < duration - 6.0:
            y = float(rng.uniform(0.35, 0.95)) * FRAME_H
            left = rng.random() < 0.5
            x0, x1 = (-150.0, FRAME_W + 150.0) if left else (FRAME_W + 150.0, -150.0)
            sweeps.append(
                Sweep(
                    t,
                    float(rng.uniform(2.0, 5.0)),
                    (x0, y),
                    (x1, y + float(rng.uniform(-80, 80))),
                    float(rng.uniform(45, 90)),
                    float(rng.uniform(18, 40)),
                    float(rng.uniform(50, 110)),
                    float(rng.uniform(0, 120)),
                )
            )
            t += float(rng.uniform(15.0, 45.0))
    return Effects(sigma, ramp, switch, clouds, foliage, tuple(sweeps))


def gen_quiet(b: Builder, name: str, quick: bool, variant: str = "empty") -> Scenario:
    """A scene with nothing to report: picture effects and/or people merely passing."""
    duration = 30.0 if quick else 300.0
    actors: list[Actor] = []
    if "busy" in variant.split("+"):
        # Two or three one-way paths between portals; people every 6..20 s.
        paths = []
        for _ in range(int(b.rng.integers(2, 4))):
            src = b.portal()
            paths.append((src, b.portal(exclude_near=src)))
        t = WARMUP_S + b.uniform(0.0, 4.0)
        while t < duration - 8.0:
            src, dst = paths[int(b.rng.integers(0, len(paths)))]
            jit = b.rng.uniform(-15, 15, 2)
            actors.append(
                b.actor(
                    (src[0], float(src[1] + jit[0])),
                    t,
                    [Walk((dst[0], float(dst[1] + jit[1])), b.pace())],
                    "passer-by",
                )
            )
            t += b.uniform(6.0, 20.0)
            b.used.clear()
    sim = _sim(b, actors, [], duration)
    # Geometry every rule watches, redrawn until the passers-by trigger none of it.
    f = 0.6 if b.bg.depth_scale < 0.4 else 1.0  # narrow eye-level views: smaller zones
    for _ in range(MAX_DRAWS):
        zones = {
            "area": b.zone("area", (2.0 * f, 3.5 * f), (2.0, 3.0)),
            "square": b.zone("square", (3.0 * f, 5.0 * f), (2.5, 4.0)),
        }
        lx, ly = b.point(60, 160, margin_h=1.5)
        hl = b.h(ly)
        ang = b.uniform(0, math.pi)
        dl = np.array([math.cos(ang), math.sin(ang)]) * b.uniform(1.5, 2.5) * hl
        lines = {
            "gate": [
                [round(lx - dl[0], 1), round(ly - dl[1], 1)],
                [round(lx + dl[0], 1), round(ly + dl[1], 1)],
            ]
        }
        zones["corridor"] = b.zone("corridor", (5.0 * f, 7.0 * f), (1.5, 2.2))
        direction = [1.0, 0.0] if b.rng.random() < 0.5 else [-1.0, 0.0]
        raw: list[GTEvent] = []
        raw += truth.zone_stay_gt(
            sim, "intrusion", "area", zones["area"], 2.0, truth.INTRUSION_EXIT_GRACE_S
        )
        raw += truth.zone_stay_gt(
            sim,
            "loitering",
            "square",
            zones["square"],
            LOITERING_DWELL_S,
            truth.LOITERING_EXIT_GRACE_S,
        )
        raw += truth.crossing_gt(sim, "gate", lines["gate"][0], lines["gate"][1])
        raw += truth.crowding_gt(sim, "square", zones["square"], 3, CROWD_MIN_DURATION_S)
        raw += truth.wrong_way_gt(sim, "corridor", zones["corridor"], direction, WRONG_WAY_MIN_S)
        raw += truth.fall_gt(sim, FALL_MIN_DOWN_S)
        if not raw:
            break
    else:
        raise GenerationError(f"{name}: no rule geometry free of the passers-by")
    rules: list[dict[str, Any]] = [
        {"type": "intrusion", "zone": "area", "classes": ["person"], "min_dwell_s": 2.0},
        {
            "type": "loitering",
            "zone": "square",
            "classes": ["person"],
            "min_dwell_s": LOITERING_DWELL_S,
        },
        {"type": "line_crossing", "line": "gate", "classes": ["person"]},
        {"type": "abandoned_object", "min_unattended_s": ABANDON_UNATTENDED_S},
        {"type": "fall", "min_down_s": FALL_MIN_DOWN_S},
        {
            "type": "crowding",
            "zone": "square",
            "classes": ["person"],
            "min_count": 3,
            "min_duration_s": CROWD_MIN_DURATION_S,
        },
        {
            "type": "wrong_way",
            "zone": "corridor",
            "classes": ["person"],
            "direction": direction,
            "min_duration_s": WRONG_WAY_MIN_S,
        },
    ]
    return Scenario(
        name,
        "quiet",
        variant,
        b.bg.name,
        duration,
        0,
        zones,
        lines,
        rules,
        actors,
        [],
        _quiet_effects(b, variant, duration),
        [],
        sim,
    )


class _RedrawError(Exception):
    """This draw does not tell the intended story; draw again."""


GENERATORS: dict[str, Callable[..., Scenario]] = {
    "intrusion": gen_intrusion,
    "loitering": gen_loitering,
    "line_crossing": gen_line_crossing,
    "abandoned_object": gen_abandoned,
    "fall": gen_fall,
    "crowding": gen_crowding,
    "wrong_way": gen_wrong_way,
}

BACKGROUND_WEIGHTS = {"plaza": 0.45, "plaza-reframed": 0.3, "street": 0.25}
STREET_KINDS = frozenset({"line_crossing", "fall", "quiet"})
"""The eye-level street is narrow and strongly foreshortened: big zones, corridors and
paths that avoid a zone do not fit; it hosts these kinds only."""


MIN_VISIBLE = 0.75
"""Share of a person's box that must be in the picture and not behind a fixed occluder
(lamp post, tripod) during the second before each ground-truth event starts; a draw
that hides its protagonist more is redrawn (no event only an oracle could see)."""

_OCCLUSION: dict[str, list[tuple[npt.NDArray[np.int64], float]]] = {}


def _occlusion_tables(bg: Background) -> list[tuple[npt.NDArray[np.int64], float]]:
    """Per occluder of ``bg``: summed-area table ``(H + 1, W + 1)`` of its pixels and
    the y (px) of its foot."""
    tables = _OCCLUSION.get(bg.name)
    if tables is None:
        tables = []
        for ys, xs, base_y in bg.occluders:
            mask = np.zeros((FRAME_H, FRAME_W), np.int64)
            mask[ys, xs] = 1
            table = np.zeros((FRAME_H + 1, FRAME_W + 1), np.int64)
            table[1:, 1:] = mask.cumsum(0).cumsum(1)
            tables.append((table, base_y))
        _OCCLUSION[bg.name] = tables
    return tables


def visible_share(bg: Background, box: Sequence[float], foot_y: float) -> float:
    """Share of ``box`` ``[x1, y1, x2, y2]`` (px) of someone standing at ``foot_y`` (px)
    that is in the frame and not behind one of the background's occluders (those whose
    foot is nearer the camera, below ``foot_y``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    area = max(x2 - x1, 1e-6) * max(y2 - y1, 1e-6)
    cx1, cy1 = int(max(x1, 0)), int(max(y1, 0))
    cx2, cy2 = int(min(x2, FRAME_W)), int(min(y2, FRAME_H))
    if cx2 <= cx1 or cy2 <= cy1:
        return 0.0
    seen = float((cx2 - cx1) * (cy2 - cy1))
    for t, base_y in _occlusion_tables(bg):
        if foot_y < base_y:
            seen -= float(t[cy2, cx2] - t[cy1, cx2] - t[cy2, cx1] + t[cy1, cx1])
    return max(seen, 0.0) / area


def visible_enough(scn: Scenario, bg: Background) -> bool:
    """Whether each ground-truth event's person(s) are at least :data:`MIN_VISIBLE`
    visible in every frame of the second before it starts (crowds: everyone in the zone
    then; events about objects are not checked)."""
    sim = scn.sim
    if sim is None:
        return True
    for g in scn.gt:
        k1 = min(round(g.start_s * sim.fps), sim.n_frames - 1)
        frames = range(max(k1 - round(sim.fps), 0), k1 + 1)
        if g.note.startswith("a"):
            who = [int(a) for a in g.note.replace("a", "").split("+")]
        elif g.type == "crowding" and g.zone is not None:
            poly = scn.zones[g.zone]
            who = [
                i
                for i, tr in enumerate(sim.actors)
                if tr.present[k1] and truth.inside(poly, tr.xy[k1 : k1 + 1])[0]
            ]
        else:
            continue
        for i in who:
            tr = sim.actors[i]
            for k in frames:
                if tr.present[k] and visible_share(bg, tr.box[k], tr.xy[k, 1]) < MIN_VISIBLE:
                    return False
    return True


def generate(
    kind: str,
    index: int,
    seed: int,
    bank: SpriteBank,
    bgs: dict[str, Background],
    patches: Sequence[ObjectPatch],
    quick: bool,
    **kwargs: Any,
) -> Scenario:
    """One scenario of ``kind`` (number ``index`` of the suite ``seed``).

    Raises:
        GenerationError: No draw told the story within :data:`MAX_DRAWS` attempts.
    """
    name = f"{kind.replace('_', '-')}-{index:02d}"
    for draw in range(MAX_DRAWS):
        rng = scenario_rng(seed, kind, index, draw)
        names = [n for n in BACKGROUND_WEIGHTS if n != "street" or kind in STREET_KINDS]
        weights = np.array([BACKGROUND_WEIGHTS[n] for n in names])
        bg = bgs[str(rng.choice(names, p=weights / weights.sum()))]
        b = Builder(rng, bank, bg, patches)
        try:
            scn = (
                gen_quiet(b, name, quick, **kwargs)
                if kind == "quiet"
                else GENERATORS[kind](b, name, quick, **kwargs)
            )
        except (_RedrawError, GenerationError):
            continue
        if not visible_enough(scn, bg):
            continue
        scn.seed = int(rng.integers(0, 2**31 - 1))
        return scn
    raise GenerationError(f"{name}: no draw told the story in {MAX_DRAWS} attempts")


FULL_COUNTS = {"intrusion": 4, "loitering": 5, "line_crossing": 4, "fall": 5, "wrong_way": 4}
ABANDON_STORIES = ("left", "left", "stays", "left", "returns", "left")
CROWD_STORIES = ("crowd", "crowd", "one short", "crowd", "crowd")


def suite_plan(kinds: Sequence[str], quick: bool) -> list[tuple[str, int, dict[str, Any]]]:
    """``(kind, index, generator kwargs)`` of every scenario of the suite.

    Full: intrusion 4, loitering 5, line crossing 4, fall 5, wrong way 4 scenarios;
    abandoned objects 6 (4 left, 1 stays beside it, 1 comes back for it); crowding 5 (4
    crowds, 1 one person short); and the 12 quiet scenes of 5 min.  Quick: one per kind
    (abandoned: left; crowding: crowd) and two quiet scenes of 30 s.
    """
    plan: list[tuple[str, int, dict[str, Any]]] = []
    stories: Sequence[str]
    for kind in kinds:
        if kind == "quiet":
            variants = QUIET_VARIANTS_QUICK if quick else QUIET_VARIANTS_FULL
            plan += [("quiet", i + 1, {"variant": v}) for i, v in enumerate(variants)]
        elif kind == "abandoned_object":
            stories = ABANDON_STORIES[:1] if quick else ABANDON_STORIES
            plan += [(kind, i + 1, {"story": s}) for i, s in enumerate(stories)]
        elif kind == "crowding":
            stories = CROWD_STORIES[:1] if quick else CROWD_STORIES
            plan += [(kind, i + 1, {"story": s}) for i, s in enumerate(stories)]
        else:
            plan += [(kind, i + 1, {}) for i in range(1 if quick else FULL_COUNTS[kind])]
    return plan
