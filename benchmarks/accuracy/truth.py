"""Ground-truth events from a scenario's simulated truth, by the rules' documented semantics.

Each function applies one rule's definition (``selector/rules/*.py`` docstrings, default
parameters) to the *true* per-frame positions and poses of :class:`Simulation` — what
a perfect detector and tracker would feed the rule.  The pipeline's events are then
compared with these (``benchmarks.accuracy.evaluate``).

Ground points are the true foot points (a detector's box bottom centre), heights the
true upright person heights, times video seconds with frame ``k`` at ``k / fps``.

Start times, as the rules define them:

* intrusion, loitering: entry + ``min_dwell_s``;
* line_crossing: the interpolated instant the path met the line, direction ``"+"`` from
  the side where ``cross(p2 - p1, q - p1) < 0`` to ``> 0``;
* abandoned_object: the owner walked away (beyond ``OWNER_DISTANCE`` heights) +
  ``min_unattended_s``;
* fall: the moment the person went down (the drawn box first at most ``COLLAPSE_FRAC``
  of the upright height and wider than tall);
* crowding: ``min_count`` reached + ``min_duration_s``;
* wrong_way: onset + ``min_duration_s``.

Events of one rule and zone/line that overlap or follow within the rule's cooldown are
one alert (``selector.incidents``); :func:`merge_incidents` applies the same to the
truth, keeping the first member's start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from benchmarks.accuracy.render import Simulation

F64 = npt.NDArray[np.float64]

# Defaults of the rules and of argus.config (kept in step with them by hand).
INTRUSION_EXIT_GRACE_S = 1.0
LOITERING_EXIT_GRACE_S = 2.0
LINE_HYSTERESIS = 0.1
CROWDING_GRACE_S = 2.0
WRONG_WAY_GRACE_S = 1.0
WRONG_WAY_WINDOW_S = 1.0
WRONG_WAY_MAX_ANGLE_DEG = 60.0
WRONG_WAY_MIN_SPEED = 0.2
OWNER_DISTANCE = 1.5
COLLAPSE_FRAC = 0.6
COOLDOWN_S = {
    "intrusion": 5.0,
    "loitering": 5.0,
    "line_crossing": 0.0,
    "abandoned_object": 5.0,
    "fall": 5.0,
    "crowding": 5.0,
    "wrong_way": 5.0,
    "camera_health": 30.0,
}


@dataclass(frozen=True, slots=True)
class GTEvent:
    """One expected alert.

    Attributes:
        type: Event type (rule type).
        start_s: When the rule's condition became true, video seconds.
        end_s: When it ended (last member's end), video seconds.
        zone: Zone name, or ``None``.
        line: Line name (line crossings), or ``None``.
        direction: ``"+"`` / ``"-"`` for line crossings, else ``None``.
        note: Who/what (actor indexes), for the truth file.
    """

    type: str
    start_s: float
    end_s: float
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "type": self.type,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "zone": self.zone,
            "line": self.line,
            "direction": self.direction,
            "note": self.note,
        }


def inside(poly: Sequence[Sequence[float]], xy: F64) -> npt.NDArray[np.bool_]:
    """Whether each point of ``xy`` ``(n, 2)`` (NaN: absent) is in ``poly`` (edge counts).

    Even-odd ray casting, vectorised; points within 1e-9 px of an edge are inside.
    """
    pts = np.asarray(xy, np.float64).reshape(-1, 2)
    v = np.asarray(poly, np.float64).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = v[:, 0][None, :], v[:, 1][None, :]
    x2, y2 = np.roll(v[:, 0], -1)[None, :], np.roll(v[:, 1], -1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        straddle = (y1 > y) != (y2 > y)
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        odd = (straddle & (x < x_cross)).sum(axis=1) % 2 == 1
        # On an edge: collinear with it and between its ends.
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        dot = (x - x1) * (x2 - x1) + (y - y1) * (y2 - y1)
        seg2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
        on_edge = ((np.abs(cross) <= 1e-9 * np.sqrt(seg2)) & (dot >= 0) & (dot <= seg2)).any(axis=1)
    out: npt.NDArray[np.bool_] = (odd | on_edge) & ~np.isnan(pts).any(axis=1)
    return out


def _stays(
    flags: npt.NDArray[np.bool_], present: npt.NDArray[np.bool_], t: F64, grace_s: float
) -> list[tuple[float, float]]:
    """``(entry_s, last_inside_s)`` of each stay: inside runs joined across short absences.

    A stay ends at the first frame *seen* outside (present, not inside) at least
    ``grace_s`` after the last inside frame, or when the actor is gone.
    """
    out: list[tuple[float, float]] = []
    entry: float | None = None
    last = -math.inf
    for k in range(len(t)):
        if flags[k]:
            if entry is None:
                entry = float(t[k])
            last = float(t[k])
        elif entry is not None and (not present[k] or t[k] - last >= grace_s - 1e-9):
            out.append((entry, last))
            entry = None
    if entry is not None:
        out.append((entry, last))
    return out


def zone_stay_gt(
    sim: Simulation,
    kind: str,
    zone: str,
    poly: Sequence[Sequence[float]],
    min_dwell_s: float,
    grace_s: float,
) -> list[GTEvent]:
    """Intrusion / loitering: one event per stay lasting ``min_dwell_s``."""
    out = []
    t = sim.t
    for i, tr in enumerate(sim.actors):
        for entry, last in _stays(inside(poly, tr.xy), tr.present, t, grace_s):
            if last - entry >= min_dwell_s - 1e-9:
                out.append(GTEvent(kind, entry + min_dwell_s, last, zone=zone, note=f"a{i}"))
    return out


def crossing_gt(
    sim: Simulation,
    line: str,
    p1: Sequence[float],
    p2: Sequence[float],
    hysteresis: float = LINE_HYSTERESIS,
) -> list[GTEvent]:
    """Line crossings (confirmed side changes through the segment), interpolated times."""
    a = np.asarray(p1, np.float64)
    d = np.asarray(p2, np.float64) - a
    length = float(np.hypot(*d))
    out = []
    t = sim.t
    for i, tr in enumerate(sim.actors):
        side = 0
        prev: tuple[float, F64, float] | None = None  # t, point, signed distance
        last_meet: tuple[float, float] | None = None  # (t, projection) of the last meeting
        for k in np.flatnonzero(tr.present):
            q = tr.xy[k]
            sd = float(d[0] * (q[1] - a[1]) - d[1] * (q[0] - a[0])) / length
            if prev is not None and (prev[2] < 0 <= sd or prev[2] > 0 >= sd) and prev[2] != sd:
                u = prev[2] / (prev[2] - sd)
                meet = prev[1] + (q - prev[1]) * u
                proj = float((meet - a) @ d) / length**2
                last_meet = (prev[0] + (float(t[k]) - prev[0]) * u, proj)
            band = hysteresis * float(tr.height[k])
            new = 1 if sd >= band else -1 if sd <= -band else 0
            if new and new != side:
                if side and last_meet is not None and 0.0 <= last_meet[1] <= 1.0:
                    out.append(
                        GTEvent(
                            "line_crossing",
                            last_meet[0],
                            last_meet[0],
                            line=line,
                            direction="+" if new > 0 else "-",
                            note=f"a{i}",
                        )
                    )
                side = new
            prev = (float(t[k]), q, sd)
    return out


def crowding_gt(
    sim: Simulation,
    zone: str,
    poly: Sequence[Sequence[float]],
    min_count: int,
    min_duration_s: float,
    grace_s: float = CROWDING_GRACE_S,
) -> list[GTEvent]:
    """Crowds: ``count >= min_count`` held ``min_duration_s`` (dips < ``grace_s`` ignored)."""
    count = np.zeros(sim.n_frames, int)
    for tr in sim.actors:
        count += inside(poly, tr.xy) & tr.present
    t = sim.t
    out = []
    onset: float | None = None
    last_full = -math.inf
    started = False
    for k in range(sim.n_frames):
        full = count[k] >= min_count
        if full:
            if onset is None:
                onset, started = float(t[k]), False
            last_full = float(t[k])
            if not started and t[k] - onset >= min_duration_s - 1e-9:
                started = True
        elif onset is not None and t[k] - last_full >= grace_s - 1e-9:
            if started:
                out.append(GTEvent("crowding", onset + min_duration_s, last_full, zone=zone))
            onset = None
    if onset is not None and started:
        out.append(GTEvent("crowding", onset + min_duration_s, last_full, zone=zone))
    return out


def _window_velocity(
    t: F64, xy: F64, present: npt.NDArray[np.bool_], window_s: float, fps: float
) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
    """Least-squares velocity (px/s) over the samples of the last ``window_s`` seconds at
    each frame, and whether it could be estimated (samples spanning half the window)."""
    n = len(t)
    w = round(window_s * fps)
    m = present.astype(np.float64)
    tt = np.where(present, t, 0.0)
    xx = np.where(present, xy[:, 0], 0.0)
    yy = np.where(present, xy[:, 1], 0.0)

    def wsum(a: F64) -> F64:
        c = np.concatenate([[0.0], np.cumsum(a)])
        idx = np.arange(n)
        lo = np.maximum(idx - w, 0)
        out: F64 = c[idx + 1] - c[lo]
        return out

    s0, st, stt = wsum(m), wsum(tt), wsum(tt * tt)
    sx, stx, sy, sty = wsum(xx), wsum(tt * xx), wsum(yy), wsum(tt * yy)
    den = s0 * stt - st * st
    with np.errstate(invalid="ignore", divide="ignore"):
        vx = (s0 * stx - st * sx) / den
        vy = (s0 * sty - st * sy) / den
    # Span of the samples in the window: first present index within it to the current one.
    first = np.full(n, -1)
    pres_idx = np.flatnonzero(present)
    if len(pres_idx):
        first[pres_idx] = pres_idx[np.searchsorted(pres_idx, pres_idx - w)]
    span = np.where(first >= 0, t - t[np.maximum(first, 0)], 0.0)
    ok = present & (s0 >= 2) & (span >= 0.5 * window_s - 1e-9) & (np.abs(den) > 1e-12)
    return np.where(ok, vx, 0.0), np.where(ok, vy, 0.0), ok


def wrong_way_gt(
    sim: Simulation,
    zone: str,
    poly: Sequence[Sequence[float]],
    direction: Sequence[float],
    min_duration_s: float,
) -> list[GTEvent]:
    """Wrong-way runs: velocity (1 s least squares, in heights/s) against ``direction``."""
    dvec = np.asarray(direction, np.float64)
    dvec = dvec / np.hypot(*dvec)
    cos_max = math.cos(math.radians(WRONG_WAY_MAX_ANGLE_DEG))
    t = sim.t
    out = []
    for i, tr in enumerate(sim.actors):
        ins = inside(poly, tr.xy) & tr.present
        if not ins.any():
            continue
        vx, vy, ok = _window_velocity(t, tr.xy, tr.present, WRONG_WAY_WINDOW_S, sim.fps)
        speed_px = np.hypot(vx, vy)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            speed_h = speed_px / tr.height
            cos = -(vx * dvec[0] + vy * dvec[1]) / speed_px
        wrong_all = ok & ins & (speed_h >= WRONG_WAY_MIN_SPEED) & (cos >= cos_max - 1e-9)
        onset: float | None = None
        last_wrong = -math.inf
        started = False
        for k in np.flatnonzero(tr.present):
            if wrong_all[k]:
                if onset is None:
                    onset, started = float(t[k]), False
                last_wrong = float(t[k])
                if not started and t[k] - onset >= min_duration_s - 1e-9:
                    started = True
            elif onset is not None and t[k] - last_wrong >= WRONG_WAY_GRACE_S - 1e-9:
                if started:
                    out.append(
                        GTEvent(
                            "wrong_way", onset + min_duration_s, last_wrong, zone=zone, note=f"a{i}"
                        )
                    )
                onset = None
        if onset is not None and started:
            out.append(
                GTEvent("wrong_way", onset + min_duration_s, last_wrong, zone=zone, note=f"a{i}")
            )
    return out


def fall_gt(
    sim: Simulation,
    min_down_s: float,
    zone: str | None = None,
    poly: Sequence[Sequence[float]] | None = None,
) -> list[GTEvent]:
    """Falls: down (box <= ``COLLAPSE_FRAC`` of upright height, wider than tall) and
    still down ``min_down_s`` later; start = the moment down."""
    t = sim.t
    out = []
    for i, tr in enumerate(sim.actors):
        k_down = None
        for k in np.flatnonzero(tr.present):
            bx = tr.box[k]
            bw, bh = bx[2] - bx[0], bx[3] - bx[1]
            if bh <= COLLAPSE_FRAC * tr.height[k] and bw > bh:
                k_down = int(k)
                break
        if k_down is None:
            continue
        down = float(t[k_down])
        up = tr.up_s if not math.isnan(tr.up_s) else math.inf
        gone = t[np.flatnonzero(tr.present)[-1]]
        end = min(up, float(gone))
        if end - down < min_down_s - 1e-9:
            continue
        if poly is not None and not inside(poly, tr.xy[k_down : k_down + 1])[0]:
            continue
        out.append(GTEvent("fall", down, end, zone=zone, note=f"a{i}"))
    return out


def abandoned_gt(
    sim: Simulation,
    zone: str | None,
    poly: Sequence[Sequence[float]] | None,
    min_unattended_s: float,
) -> list[GTEvent]:
    """Objects left: unattended clock from the owner walking away (beyond
    ``OWNER_DISTANCE`` heights), restarted by anyone near; picked up: no event."""
    t = sim.t
    out = []
    for j, ob in enumerate(sim.objects):
        if math.isnan(ob.drop_s):
            continue
        k0 = round(ob.drop_s * sim.fps)
        spot = ob.xy[k0]
        if poly is not None and not inside(poly, spot[None, :])[0]:
            continue
        owner_away = False
        since: float | None = None
        for k in range(k0, sim.n_frames):
            if not ob.on_ground[k]:
                break
            near = False
            owner_far = False
            for i, tr in enumerate(sim.actors):
                if not tr.present[k]:
                    continue
                dist = float(np.hypot(*(tr.xy[k] - spot)))
                if dist <= OWNER_DISTANCE * tr.height[k]:
                    near = True
                elif i == ob.carrier:
                    owner_far = True
            if not owner_away:
                if owner_far:
                    owner_away = True
                    since = float(t[k])
                continue
            if near:
                since = None
            elif since is None:
                since = float(t[k])
            if since is not None and t[k] - since >= min_unattended_s - 1e-9:
                end = ob.pick_s if not math.isnan(ob.pick_s) else float(t[-1])
                out.append(
                    GTEvent(
                        "abandoned_object", since + min_unattended_s, end, zone=zone, note=f"o{j}"
                    )
                )
                break
    return out


def merge_incidents(events: Sequence[GTEvent]) -> list[GTEvent]:
    """One alert per incident: same type/zone/line events within the cooldown merge.

    Sorted by start; an event starting no later than the open incident's end plus the
    type's cooldown joins it (the incident keeps its first start, its end grows).
    """
    out: list[GTEvent] = []
    open_: dict[tuple[str, str | None, str | None], int] = {}
    for ev in sorted(events, key=lambda e: (e.start_s, e.type)):
        key = (ev.type, ev.zone, ev.line)
        cool = COOLDOWN_S.get(ev.type, 5.0)
        idx = open_.get(key)
        if idx is not None:
            cur = out[idx]
            if ev.start_s <= cur.end_s + cool + 1e-9 and not (
                ev.type == "line_crossing" and ev.start_s > cur.end_s + 1e-9
            ):
                out[idx] = replace(
                    cur, end_s=max(cur.end_s, ev.end_s), note=f"{cur.note}+{ev.note}"
                )
                continue
        open_[key] = len(out)
        out.append(ev)
    return out
