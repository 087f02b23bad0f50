"""``GET /api/v1/alerts`` and ``GET /api/v1/alerts/{event_id}``: reading the alert list."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from alerts.api.auth import Who, needs
from alerts.api.context import NOT_FOUND, UNAUTHORIZED, Ctx
from alerts.api.models import (
    EVENT_TYPE_PATTERN,
    MAX_EVENT_TYPE_LENGTH,
    MAX_OFFSET,
    AlertPage,
)
from alerts.api.permissions import Permission, Principal
from alerts.store import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Alert,
    AlertState,
    AlertStatus,
    ChangeFeedStore,
)

EventIdPath = Annotated[uuid.UUID, Path(description="Event id (uuid).")]

router = APIRouter(prefix="/api/v1", tags=["alerts"])
READ = [needs(Permission.ALERTS_READ)]


@router.get("/alerts", response_model=AlertPage, responses=UNAUTHORIZED, dependencies=READ)
def list_alerts(
    ctx: Ctx,
    who: Who,
    camera_id: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_EVENT_TYPE_LENGTH,
            pattern=EVENT_TYPE_PATTERN,
            description='Only this event type, e.g. "fall", "line_crossing", "covered".',
        ),
    ] = None,
    status: Annotated[
        AlertStatus | None,
        Query(description="The older operator state (new, acknowledged, false_positive)."),
    ] = None,
    state: Annotated[
        list[AlertState] | None,
        Query(
            description="Only alerts in one of these lifecycle states (repeat the parameter: "
            "state=new&state=claimed&state=escalated is every alert not closed yet). "
            "Whether the event is still going on is ongoing, not this."
        ),
    ] = None,
    ongoing: Annotated[
        bool | None,
        Query(
            description="Only alerts whose event is still going on (true: no end yet) or "
            "has ended (false), whatever their lifecycle state: an ongoing event's alert "
            "may be closed, an ended one's still new."
        ),
    ] = None,
    open: Annotated[
        bool | None,
        Query(
            description="Older name of ongoing (the event, not the alert's state); given "
            "with ongoing, both apply (true and false: nothing matches)."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    after_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Keyset paging: alerts whose event id sorts after this one, in "
            "event id order (each unchanged alert on exactly one page while others change; "
            "the last item's event_id is the next page's after_id).",
        ),
    ] = None,
) -> AlertPage:
    """Alerts of the cameras of your groups matching all filters, highest priority first,
    then most recent."""
    if open is not None and ongoing is not None and open != ongoing:
        return AlertPage(items=[], total=0, limit=limit, offset=offset)  # ongoing and ended
    filters: dict[str, Any] = {
        "camera_id": camera_id,
        "type": type,
        "status": status,
        "states": None if state is None else sorted(set(state)),
        "ongoing": ongoing if ongoing is not None else open,
        "camera_ids": ctx.cameras.cameras_of(who),
    }
    # the number first: a change after it may already show in the list (a page applies a
    # change only when newer than what it has), but none before it is missing
    head = ctx.store.change_head().seq if isinstance(ctx.store, ChangeFeedStore) else None
    if after_id is not None:
        items = ctx.store.list(**filters, limit=limit, offset=offset, after_event_id=after_id)
    else:  # stores without keyset paging still answer the plain list
        items = ctx.store.list(**filters, limit=limit, offset=offset)
    return AlertPage(
        items=items,
        total=ctx.store.count(**filters),
        limit=limit,
        offset=offset,
        change_seq=head,
    )


@router.get(
    "/alerts/{event_id}",
    response_model=Alert,
    responses={**UNAUTHORIZED, **NOT_FOUND},
    dependencies=READ,
)
def get_alert(ctx: Ctx, who: Who, event_id: EventIdPath) -> Alert:
    """One alert by event id."""
    return alert_or_404(ctx, who, event_id)


def alert_or_404(ctx: Ctx, who: Principal, event_id: uuid.UUID | str) -> Alert:
    """The alert ``event_id`` if ``who`` works on its camera, else an HTTP 404 (an alert
    of another group's camera is not even said to exist)."""
    alert = ctx.store.get(str(event_id))
    if alert is None or not ctx.cameras.visible(who, alert.camera_id):
        raise HTTPException(status_code=404, detail="alert not found")
    return alert
