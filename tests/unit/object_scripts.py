"""Scripted tracks and scene blobs for rule tests (no model, no pixels).

A script is a list of :class:`Step`, one per frame at ``FPS`` frames per second: frame
``k`` has ``seq = k`` and ``pts_s = k / FPS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.detections import Detections
from detectors.scene import SceneStats
from selector.event import Event
from selector.rules import FrameInfo, Rule

CAM = "hall"
FPS = 10
WIDTH, HEIGHT = 768, 576
WALL0 = 1_700_000_000.0

PERSON, CAR, BACKPACK, HANDBAG, SUITCASE = 0, 2, 24, 26, 28
NAMES: tuple[str, ...] = tuple(
    {
        PERSON: "person",
        CAR: "car",
        BACKPACK: "backpack",
        HANDBAG: "handbag",
        SUITCASE: "suitcase",
    }.get(i, f"class{i}")
    for i in range(80)
)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Row:
    """One tracked object of a frame."""

    tid: int
    box: Box
    cls: int = PERSON
    score: float = 0.9


@dataclass
class Step:
    """What the rule gets in one frame.

    ``foreground``/``static``: blob boxes of ``SceneStats``; both ``None`` and
    ``scene=False`` gives ``FrameInfo.scene = None``.
    """

    rows: list[Row] = field(default_factory=list)
    foreground: list[Box] | None = None
    static: list[Box] | None = None
    ended: set[int] = field(default_factory=set)
    detected: bool = True
    scene: bool = True


def t_of(k: int) -> float:
    """Video seconds of frame ``k``."""
    return k / FPS


def r6(t: float | None) -> float | None:
    """A time rounded to the microsecond, to compare with decimal literals."""
    return None if t is None else round(t, 6)


def tracks_of(rows: Sequence[Row]) -> Detections:
    n = len(rows)
    return Detections(
        xyxy=np.array([r.box for r in rows], np.float32).reshape(n, 4),
        score=np.array([r.score for r in rows], np.float32),
        class_id=np.array([r.cls for r in rows], np.int64),
        tracker_id=np.array([r.tid for r in rows], np.int64),
        names=NAMES,
    )


def blobs_of(boxes: Sequence[Box]) -> Detections:
    """Unclassified blobs: ``class_id = -1``, untracked."""
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(n, 4),
        score=np.ones((n,), np.float32),
        class_id=np.full((n,), -1, np.int64),
    )


def scene_of(step: Step) -> SceneStats | None:
    if not step.scene and step.foreground is None and step.static is None:
        return None
    return SceneStats(
        motion=0.0,
        brightness=120.0,
        contrast=40.0,
        sharpness=100.0,
        frame_diff=1.0,
        foreground=None if step.foreground is None else blobs_of(step.foreground),
        static_objects=None if step.static is None else blobs_of(step.static),
    )


def frame_of(k: int, step: Step, camera: str = CAM) -> FrameInfo:
    return FrameInfo(
        camera,
        seq=k,
        pts_s=t_of(k),
        wall_time=WALL0 + t_of(k),
        width=WIDTH,
        height=HEIGHT,
        scene=scene_of(step),
        detected=step.detected,
    )


def run(rule: Rule, steps: Sequence[Step]) -> list[tuple[int, Event]]:
    """Feed ``steps`` as frames 0, 1, ...; return ``(frame index, event)`` pairs."""
    out: list[tuple[int, Event]] = []
    for k, step in enumerate(steps):
        tracks = tracks_of(step.rows) if step.detected else tracks_of([])
        evs = rule.update(tracks, frame_of(k, step), sorted(step.ended))
        out.extend((k, e) for e in evs)
    return out


def person_box(cx: float, feet_y: float = 400.0, h: float = 170.0, w: float = 60.0) -> Box:
    """An upright person's box: centred at ``cx``, feet at ``feet_y`` (px)."""
    return (cx - w / 2.0, feet_y - h, cx + w / 2.0, feet_y)


def lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def end_tracks(steps: list[Step], buffer_frames: int = 30) -> list[Step]:
    """Report each track id as ended ``buffer_frames + 1`` frames after its last row.

    Mimics the tracker holding a lost track for ``buffer_frames`` frames (3 s at
    ``FPS``); ids whose end would fall after the script are never reported.
    """
    last: dict[int, int] = {}
    for k, step in enumerate(steps):
        for r in step.rows:
            last[r.tid] = k
    for tid, k in last.items():
        if k + buffer_frames + 1 < len(steps):
            steps[k + buffer_frames + 1].ended.add(tid)
    return steps
