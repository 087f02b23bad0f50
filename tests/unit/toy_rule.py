"""A rule defined outside ``selector/rules``, in this one module and nowhere else.

Issue 13's acceptance check: importing this module registers the rule type, and it is
then configurable, validated, listed by ``GET /api/v1/rule-types`` and raises events
(``tests/unit/test_rule_types.py``) without any other file knowing about it.

``toy_count``: at least ``min_tracks`` tracked objects of ``classes`` in view at once,
for one event until fewer are seen.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Literal

from pydantic import Field

from detectors.detections import Detections
from selector.event import Event
from selector.rules.base import FrameInfo
from selector.rules.common import TrackRule, eligible, make_event
from selector.rules.config import TrackRuleConfig
from selector.rules.registry import BuildContext, EventWords, RuleType, register

EVENT_TYPE = "toy_count"


class ToyCountRule(TrackRule):
    """One ``toy_count`` event while ``min_tracks`` or more tracks are in view."""

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        classes: Collection[int],
        class_names: Sequence[str],
        min_tracks: int,
        severity: int,
    ) -> None:
        super().__init__(rule_id, camera_id)
        self._init_scoring(severity, 1.0, 0.0, class_names)
        self.classes = frozenset(classes)
        self.min_tracks = min_tracks
        self._open: Event | None = None

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        n = int(eligible(tracks, self.classes).sum())
        if n >= self.min_tracks and self._open is None:
            self._open = make_event(
                rule_id=self.rule_id,
                event_type=EVENT_TYPE,
                frame=frame,
                severity=self.severity,
                zone=None,
                label=self.class_names[min(self.classes)],
                details={"count": n},
            )
            return [self._open]
        if n < self.min_tracks and self._open is not None:
            return self.close_all(frame.pts_s)
        return []

    def close_all(self, end_s: float) -> list[Event]:
        if self._open is None:
            return []
        closed, self._open = replace(self._open, end_s=end_s), None
        return [closed]


class ToyCountConfig(TrackRuleConfig):
    """At least ``min_tracks`` tracked objects in view at once."""

    type: Literal["toy_count"]
    min_tracks: int = Field(1, ge=1, le=100, description="Tracks in view at once.")


def build_toy_count(cfg: ToyCountConfig, ctx: BuildContext) -> ToyCountRule:
    return ToyCountRule(
        rule_id=cfg.rule_id,
        camera_id=ctx.camera_id,
        classes=ctx.class_ids(cfg.classes),
        class_names=ctx.class_names,
        min_tracks=cfg.min_tracks,
        severity=cfg.severity,
    )


RULE = register(
    RuleType(
        type="toy_count",
        config=ToyCountConfig,
        build=build_toy_count,
        events={EVENT_TYPE: EventWords("Toy count", "{count} {people} in view[ for {duration}]")},
    )
)
