"""``GET /api/v1/alerts`` and ``GET /api/v1/alerts/{event_id}``: reading the alert list."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from alerts.api.context import NOT_FOUND, UNAUTHORIZED, Ctx, require_key
from alerts.api.models import (
    EVENT_TYPE_PATTERN,
    MAX_EVENT_TYPE_LENGTH,
    MAX_OFFSET,
    AlertPage,
)
from alerts.store import DEFAULT_LIMIT, MAX_LIMIT, Alert, AlertStatus

EventIdPath = Annotated[uuid.UUID, Path(description="Event id (uuid).")]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_key)], tags=["alerts"])


@router.get("/alerts", response_model=AlertPage, responses=UNAUTHORIZED)
def list_alerts(
    ctx: Ctx,
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
    status: Annotated[AlertStatus | None, Query()] = None,
    open: Annotated[bool | None, Query(description="Only open (true) / ended (false).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AlertPage:
    """Alerts matching all filters, highest priority first, then most recent."""
    filters: dict[str, Any] = {
        "camera_id": camera_id,
        "type": type,
        "status": status,
        "open": open,
    }
    items = ctx.store.list(**filters, limit=limit, offset=offset)
    return AlertPage(items=items, total=ctx.store.count(**filters), limit=limit, offset=offset)


@router.get("/alerts/{event_id}", response_model=Alert, responses={**UNAUTHORIZED, **NOT_FOUND})
def get_alert(ctx: Ctx, event_id: EventIdPath) -> Alert:
    """One alert by event id."""
    return alert_or_404(ctx, event_id)


def alert_or_404(ctx: Ctx, event_id: uuid.UUID) -> Alert:
    """The alert ``event_id``, or an HTTP 404."""
    alert = ctx.store.get(str(event_id))
    if alert is None:
        raise HTTPException(status_code=404, detail="alert not found")
    return alert
