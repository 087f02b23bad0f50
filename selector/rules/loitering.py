"""Loitering: an object of a watched class stays in a zone for at least ``min_dwell_s``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar, Literal

from pydantic import Field

from selector.rules.config import TrackRuleConfig
from selector.rules.intrusion import Stay, ZoneStayRule
from selector.rules.registry import BuildContext, EventWords, RuleType, register
from selector.zones import PolygonZone

EVENT_TYPE = "loitering"

DEFAULT_MIN_DWELL_S = 10.0
"""KISA's definition of loitering: staying in the area for 10 s or more."""


class LoiteringRule(ZoneStayRule):
    """Raises one ``"loitering"`` event per stay of a track in a zone of ``min_dwell_s``.

    Same stay logic as :class:`selector.rules.intrusion.IntrusionRule` (see
    :class:`selector.rules.intrusion.ZoneStayRule`), all times in video seconds
    (``FrameInfo.pts_s``):

    * inside = ground point (bottom centre of the box) in ``zone``, class in
      ``classes``, score ``>= min_score``, ``tracker_id >= 1``;
    * seen outside for less than ``exit_grace_s`` (default 2.0 s) keeps the stay;
    * a track missing from a frame but not in ``ended_ids`` is occluded (held by the
      tracker), not gone: its stay goes on; a track in ``ended_ids`` ends its stay;
    * a frame with ``frame.detected == False`` (detector skipped by motion gating)
      never ends a stay: absent tracks count as occluded.

    Differences from intrusion: ``start_s`` is exactly ``entry + min_dwell_s`` (the
    moment the stay became loitering), even when the frame that reveals it comes
    later (frame granularity, occlusion at that moment); the event is still raised at
    that later frame, with its box, score, ``seq`` and wall time.  The ended event
    carries ``details={"dwell_s": end_s - entry}`` (seconds from entry to the last
    time the track was seen inside, or to ``close_all``'s ``end_s``).

    Args:
        rule_id: Stable id of this rule instance, e.g. ``"loitering:atm"``.
        camera_id: Camera the rule belongs to; frames of other cameras are refused.
        zone: The zone watched.
        classes: Class ids that count, or ``None`` for all.
        class_names: Class names of the model (index = class id), see
            :class:`selector.rules.intrusion.ZoneStayRule`.
        min_dwell_s: Seconds inside before the event starts (>= 0; default 10.0).
        severity: Base severity, 0..100 (see :func:`selector.priority.priority`).
        min_score: Detections below this score do not count as inside, [0, 1].
        exit_grace_s: Seconds away from the zone tolerated within one stay (>= 0).
        zone_weight: Priority multiplier of the zone (finite, >= 0); ``None`` uses
            ``zone.weight``.

    Raises:
        RuleError: For an invalid argument; the message names the rule and the value.
    """

    event_type: ClassVar[str] = EVENT_TYPE

    def __init__(
        self,
        rule_id: str,
        camera_id: str,
        zone: PolygonZone,
        classes: Collection[int] | None,
        class_names: Sequence[str] = (),
        min_dwell_s: float = DEFAULT_MIN_DWELL_S,
        severity: int = 50,
        min_score: float = 0.0,
        exit_grace_s: float = 2.0,
        zone_weight: float | None = None,
    ) -> None:
        super().__init__(
            rule_id,
            camera_id,
            zone,
            classes,
            class_names=class_names,
            min_dwell_s=min_dwell_s,
            severity=severity,
            min_score=min_score,
            exit_grace_s=exit_grace_s,
            zone_weight=zone_weight,
        )

    def _start_time(self, stay: Stay, t: float) -> float:
        """``entry + min_dwell_s``: when the stay became loitering (<= ``t``)."""
        return stay.entry_s + self.min_dwell_s

    def _end_details(self, stay: Stay, end_s: float) -> Mapping[str, float | int | str | bool]:
        """``{"dwell_s": end_s - entry}``, seconds."""
        return {"dwell_s": end_s - stay.entry_s}


# ------------------------------------------------------------------------ registration


class LoiteringRuleConfig(TrackRuleConfig):
    """Someone stays in a zone at least ``min_dwell_s`` (KISA: 10 s), moving or not."""

    type: Literal["loitering"]
    zone: str = Field(description="Zone name of that camera.")
    min_dwell_s: float = Field(
        DEFAULT_MIN_DWELL_S, ge=0.0, le=86400.0, description="Seconds in the zone."
    )
    exit_grace_s: float = Field(
        2.0, ge=0.0, le=60.0, description="Absence shorter than this continues the stay."
    )
    severity: int = Field(50, ge=0, le=100, description="Base priority of the rule's events.")


def build_loitering(cfg: LoiteringRuleConfig, ctx: BuildContext) -> LoiteringRule:
    """The rule of a validated config on the camera of ``ctx``."""
    return LoiteringRule(
        **ctx.track_args(cfg),
        zone=ctx.zone(cfg.zone),
        min_dwell_s=cfg.min_dwell_s,
        exit_grace_s=cfg.exit_grace_s,
    )


RULE = register(
    RuleType(
        type="loitering",
        config=LoiteringRuleConfig,
        build=build_loitering,
        events={
            EVENT_TYPE: EventWords("Loitering", "{object} loitering in {zone}[ for {duration}]")
        },
    )
)
