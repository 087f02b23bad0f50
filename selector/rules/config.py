"""What every rule's configuration has: the bases a rule module's config model extends.

A rule module declares its own pydantic model (``type: Literal["<type>"]`` plus its
keys, with bounds and descriptions) on top of ``RuleConfigBase`` (keys every rule has:
id, camera, enabled, severity, cooldown, schedule, alert_per) or ``TrackRuleConfig``
(plus classes and min_score, for rules about tracked objects).  Unknown keys are
refused and models are frozen, like the rest of the config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selector.schedule import ScheduleError, Window

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Camera ids, zone, line and rule names: they become parts of storage keys and labels."""

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _all_days() -> list[Day]:
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class StrictModel(BaseModel):
    """Unknown keys refused, instances frozen (compared by value across reloads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowConfig(StrictModel):
    """One weekly arming window, in the camera's ``timezone``."""

    start: str = Field(pattern=r"^\d{2}:\d{2}$", description="Local start time 'HH:MM'.")
    end: str = Field(
        pattern=r"^\d{2}:\d{2}$",
        description="Local end time 'HH:MM' (not after start: runs over midnight).",
    )
    days: list[Day] = Field(
        default_factory=_all_days,
        min_length=1,
        description="Days the window starts on.",
    )
    weight: float = Field(
        1.0, ge=0.0, le=2.0, description="Priority weight of events raised in the window."
    )

    @model_validator(mode="after")
    def _times(self) -> WindowConfig:
        try:
            Window.parse(self.start, self.end, self.days, self.weight)
        except ScheduleError as e:
            raise ValueError(str(e)) from e
        return self


class RuleConfigBase(StrictModel):
    """Keys every rule has.  A rule's model adds ``type: Literal["<its type>"]``."""

    id: str | None = Field(
        None, pattern=ID_PATTERN, description="Rule id (default: '<type>:<zone or line>')."
    )
    camera: str = Field(description="Camera id the rule watches.")
    enabled: bool = Field(True, description="false: the rule runs but forwards nothing.")
    severity: int = Field(60, ge=0, le=100, description="Base priority of the rule's events.")
    cooldown_s: float = Field(
        5.0,
        ge=0.0,
        le=3600.0,
        description=(
            "An event of the same rule and zone starting within this many seconds after "
            "the previous incident ended joins it instead of raising a new alert."
        ),
    )
    schedule: list[WindowConfig] = Field(
        default_factory=list,
        description="Arming windows (empty: always armed).",
    )
    alert_per: Literal["incident", "object"] = Field(
        "incident",
        description=(
            "incident: events of the rule in one zone/line that overlap or follow within "
            "cooldown_s are one alert; object: one alert per tracked object."
        ),
    )

    @property
    def scope(self) -> str:
        """What the rule watches (zone, line or camera), for the default id."""
        for key in ("zone", "line"):
            value = getattr(self, key, None)
            if value:
                return str(value)
        return ""

    @property
    def rule_id(self) -> str:
        """Stable id of this rule instance (part of event ids)."""
        kind = str(getattr(self, "type", "rule"))
        return self.id or (f"{kind}:{self.scope}" if self.scope else kind)


class TrackRuleConfig(RuleConfigBase):
    """Keys of rules about tracked objects."""

    classes: list[str] = Field(
        default_factory=lambda: ["person"], min_length=1, description="Class names that count."
    )
    min_score: float = Field(0.0, ge=0.0, le=1.0, description="Ignore tracks scoring below this.")
