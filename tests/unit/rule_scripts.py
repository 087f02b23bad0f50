"""Scripted tracks for rule tests: frames at a fixed rate, boxes placed by their feet."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import numpy as np

from detectors.detections import Detections
from selector.event import Event
from selector.rules import FrameInfo, Rule

CAM = "plaza"
FPS = 10
NAMES = ("person", "bicycle", "car")
WALL0 = 1_700_000_000.0

Box = tuple[float, float, float, float]
# (track_id, box, score, class_id)
Row = tuple[int, Box, float, int]


def feet(x: float, y: float, h: float = 100.0, w: float = 40.0) -> Box:
    """A box whose ground point (bottom centre) is ``(x, y)``, ``h`` px tall, ``w`` wide."""
    return (x - w / 2, y - h, x + w / 2, y)


def row(tid: int, x: float, y: float, h: float = 100.0, score: float = 0.9, cls: int = 0) -> Row:
    """One track standing at ``(x, y)`` (ground point, px)."""
    return (tid, feet(x, y, h), score, cls)


def frame(k: int, *, detected: bool = True, cam: str = CAM) -> FrameInfo:
    """Frame ``k`` of a ``FPS`` fps stream: ``pts_s = k / FPS``."""
    return FrameInfo(
        cam,
        seq=k,
        pts_s=k / FPS,
        wall_time=WALL0 + k / FPS,
        width=768,
        height=576,
        detected=detected,
    )


def tracks(rows: Iterable[Row]) -> Detections:
    """The rows as tracker output."""
    rows = list(rows)
    n = len(rows)
    return Detections(
        xyxy=np.array([b for _, b, _, _ in rows], np.float32).reshape(n, 4),
        score=np.array([s for _, _, s, _ in rows], np.float32),
        class_id=np.array([c for _, _, _, c in rows], np.int64),
        tracker_id=np.array([t for t, _, _, _ in rows], np.int64),
        names=NAMES,
    )


def run(
    rule: Rule,
    script: Mapping[int, list[Row]],
    n_frames: int,
    ended: Mapping[int, Collection[int]] | None = None,
    undetected: Collection[int] = (),
) -> list[tuple[int, Event]]:
    """Feed frames ``0..n_frames-1``; ``script[k]``: rows of frame k (default none).

    Frames in ``undetected`` have ``detected=False`` and, as in
    :class:`selector.camera.CameraSelector`, empty tracks and no ended ids.
    """
    out: list[tuple[int, Event]] = []
    for k in range(n_frames):
        if k in undetected:
            evs = rule.update(tracks([]), frame(k, detected=False))
        else:
            evs = rule.update(tracks(script.get(k, [])), frame(k), (ended or {}).get(k, ()))
        out.extend((k, e) for e in evs)
    return out


def r6(t: float | None) -> float | None:
    """A time rounded to the microsecond, for exact comparison with decimal literals."""
    return None if t is None else round(t, 6)


def spans(got: list[tuple[int, Event]]) -> list[tuple[int, int | None, float, float | None]]:
    """``(frame, track_id, start_s, end_s)`` of each emitted record, times rounded."""
    return [(k, e.track_id, round(e.start_s, 6), r6(e.end_s)) for k, e in got]
