"""The audit trail, the disposition figures and the operators' workload.

* ``GET /api/v1/alerts/{id}/audit``: everything done to one alert (whoever may see it).
* ``GET /api/v1/audit``: the whole trail, filterable (supervisors, admins).
* ``GET /api/v1/stats/dispositions``: per rule or camera over a window, the alerts raised,
  the share closed as false alarms, the median times to claim and to close (supervisors,
  admins; their groups' cameras).
* ``GET /api/v1/stats/operators``: per operator, the alerts they hold claimed now, and over
  a window how many they claimed and closed (false alarms among them), the median times to
  claim and to close (supervisors, admins; their groups' cameras).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from alerts.api.auth import Who, needs
from alerts.api.context import NOT_FOUND, UNAUTHORIZED, ApiContext, Ctx
from alerts.api.lifecycle_models import AuditPage, DispositionFigures, OperatorFiguresPage
from alerts.api.models import MAX_OFFSET
from alerts.api.permissions import Permission
from alerts.api.routes.alerts import EventIdPath, alert_or_404
from alerts.store import DEFAULT_LIMIT, MAX_LIMIT, AuditStore, LifecycleStore

router = APIRouter(prefix="/api/v1", tags=["audit"])
WEEK_S = 7 * 86400.0

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Since = Annotated[float | None, Query(ge=0, le=1e10, description="From (UNIX s).")]
Until = Annotated[float | None, Query(ge=0, le=1e10, description="Before (UNIX s).")]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def _trail(ctx: ApiContext) -> AuditStore:
    if ctx.audit is None:
        raise HTTPException(status_code=503, detail="this store keeps no audit trail")
    return ctx.audit


@router.get(
    "/alerts/{event_id}/audit",
    response_model=AuditPage,
    dependencies=[needs(Permission.ALERTS_READ)],
    responses={**UNAUTHORIZED, **NOT_FOUND},
)
def alert_audit(
    ctx: Ctx, who: Who, event_id: EventIdPath, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> AuditPage:
    """Everything done to one alert, newest first: claims, escalations, closes."""
    alert = alert_or_404(ctx, who, event_id)
    trail = _trail(ctx)
    eid = alert.event_id
    return AuditPage(
        items=trail.list_audit(target_kind="alert", target_id=eid, limit=limit, offset=offset),
        total=trail.count_audit(target_kind="alert", target_id=eid),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    dependencies=[needs(Permission.AUDIT_READ)],
    responses=UNAUTHORIZED,
)
def audit(
    ctx: Ctx,
    who: Who,
    actor: Text = None,
    action: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[a-z_]+(\.[a-z_]*)?$",
            description='An action ("alert.claim") or a prefix ending in a dot ("auth.").',
        ),
    ] = None,
    target_kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    target_id: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> AuditPage:
    """The audit trail, newest first: every transition, sign-in and failed sign-in, token
    creation and use, rule change, suppression and user change, with who, when and from
    where.  A supervisor reads what was done to the alerts of their groups' cameras; an
    admin, everything."""
    trail = _trail(ctx)
    cameras = ctx.cameras.cameras_of(who)  # None: every entry

    def count() -> int:
        return trail.count_audit(
            actor=actor,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            since=since,
            until=until,
            alert_cameras=cameras,
        )

    items = trail.list_audit(
        actor=actor,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        alert_cameras=cameras,
    )
    return AuditPage(items=items, total=count(), limit=limit, offset=offset)


@router.get(
    "/stats/dispositions",
    response_model=DispositionFigures,
    dependencies=[needs(Permission.STATS_READ)],
    responses=UNAUTHORIZED,
)
def dispositions(
    ctx: Ctx,
    who: Who,
    by: Annotated[Literal["rule", "camera"], Query()] = "rule",
    since: Since = None,
    until: Until = None,
) -> DispositionFigures:
    """Per rule (or camera) over a window (default: the last 7 days), of your groups'
    cameras: alerts, how they were closed, the false-alarm share, the median times from
    raised to claimed and to closed."""
    lifecycle: LifecycleStore | None = ctx.lifecycle
    if lifecycle is None:
        raise HTTPException(status_code=503, detail="this store keeps no alert lifecycle")
    end = ctx.clock() if until is None else until
    start = end - WEEK_S if since is None else since
    items = (
        lifecycle.disposition_stats(
            by=by, since=start, until=end, camera_ids=ctx.cameras.cameras_of(who)
        )
        if start < end
        else []  # an empty window holds no alerts
    )
    return DispositionFigures(by=by, since=start, until=end, items=items)


@router.get(
    "/stats/operators",
    response_model=OperatorFiguresPage,
    dependencies=[needs(Permission.STATS_READ)],
    responses=UNAUTHORIZED,
)
def operators(ctx: Ctx, who: Who, since: Since = None, until: Until = None) -> OperatorFiguresPage:
    """Per operator, of your groups' cameras: the alerts they hold claimed now (whenever
    raised), and of the alerts raised over a window (default: the last 7 days) how many they
    claimed, closed and closed as false alarms, the median times from raised to their claim
    and from claimed to closed.  Most open claims first."""
    lifecycle: LifecycleStore | None = ctx.lifecycle
    if lifecycle is None:
        raise HTTPException(status_code=503, detail="this store keeps no alert lifecycle")
    end = ctx.clock() if until is None else until
    start = end - WEEK_S if since is None else since
    items = lifecycle.operator_stats(
        since=start, until=end, camera_ids=ctx.cameras.cameras_of(who)
    )  # an empty window (start >= end) still has the open claims
    return OperatorFiguresPage(since=start, until=end, items=items)
