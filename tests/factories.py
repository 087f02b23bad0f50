"""Builders of test inputs shared by several test modules."""

from __future__ import annotations

from selector.event import Event, make_event_id

T0 = 1_714_557_600.0
"""A fixed wall-clock origin (2024-05-01T10:00:00Z) for scripted events."""

BBOX = (1.0, 2.0, 30.0, 40.0)
SCORE = 0.75


def make_event(
    n: int,
    *,
    camera: str = "cam-1",
    type_: str = "intrusion",
    priority: int = 50,
    wall: float | None = None,
    snapshot: str | None = None,
) -> Event:
    """The n-th scripted start event: track n, frame n, ``start_s = n``, wall ``T0 + n``."""
    rule_id = f"{type_}:z"
    return Event(
        event_id=make_event_id(camera, rule_id, n, n),
        camera_id=camera,
        type=type_,
        rule_id=rule_id,
        zone="z",
        track_id=n,
        label="person",
        score=SCORE,
        priority=priority,
        start_s=float(n),
        end_s=None,
        bbox=BBOX,
        start_seq=n,
        wall_time=T0 + n if wall is None else wall,
        snapshot=snapshot,
    )
