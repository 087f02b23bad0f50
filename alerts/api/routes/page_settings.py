"""``GET /api/v1/page-settings``: what the operators' page needs to know of the config."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from alerts.api.auth import Who, needs
from alerts.api.context import UNAUTHORIZED, Ctx
from alerts.api.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class CameraOut(BaseModel):
    """A camera you work on and its groups (the page's camera and group filters)."""

    id: str
    groups: list[str]


class PageSettingsOut(BaseModel):
    """The settings of the operators' page."""

    cue_min_priority: int = Field(
        description="A new alert at or above this priority gets a visual and an audible cue "
        "(101: never)."
    )
    sla_min_priority: int | None = Field(
        description="Alerts at or above this priority are escalated to supervisors when "
        "nobody claims them in time (null: no claim SLA)."
    )
    sla_claim_within_s: float | None = Field(
        description="... when still new this long after they arrived, seconds."
    )
    suppressions: bool = Field(
        description="Whether false alarms can be marked here (they suppress similar events "
        "through the control channel; a server without one cannot)."
    )
    cameras: list[CameraOut] = Field(
        description="The cameras of your groups that the config names, with their groups "
        "(admins: every camera the config names)."
    )


@router.get(
    "/page-settings",
    response_model=PageSettingsOut,
    dependencies=[needs(Permission.ALERTS_READ)],
    responses=UNAUTHORIZED,
)
def page_settings(ctx: Ctx, who: Who) -> PageSettingsOut:
    """The cue priority, the claim SLA and your cameras, for the page's timers, sounds and
    filters."""
    mine = ctx.cameras.cameras_of(who)
    cameras = [  # only your groups' names: the others are none of your business
        CameraOut(id=cam, groups=sorted(groups if who.groups is None else groups & who.groups))
        for cam, groups in sorted(ctx.cameras.configured().items())
        if mine is None or cam in mine
    ]
    page = {"cue_min_priority": 70, "sla_min_priority": None, "sla_claim_within_s": None}
    return PageSettingsOut(
        **(page | ctx.page_settings), suppressions=ctx.control is not None, cameras=cameras
    )
