"""What operators do to an alert: acknowledge it, or mark it a false alarm.

A false alarm also creates a suppression and publishes it on the control channel, so
every worker stops raising similar events (see ``alerts.control``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from fastapi import APIRouter, Depends, HTTPException

from alerts.api.context import (
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHORIZED,
    UNCONFIGURED,
    Ctx,
    require_key,
)
from alerts.api.models import (
    AckRequest,
    FalsePositiveRequest,
    InvalidRequest,
    SuppressionOut,
    invalid,
)
from alerts.api.routes.alerts import EventIdPath, alert_or_404
from alerts.control import suppression_key
from alerts.store import Alert, AlertNotFoundError, AlertStoreError
from ingest.redact import escape_controls
from selector.suppression import Suppression, region_around

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_key)], tags=["alerts"])


@router.post(
    "/alerts/{event_id}/ack",
    response_model=Alert,
    responses={**UNAUTHORIZED, **NOT_FOUND, **TOO_LARGE},
)
def acknowledge(ctx: Ctx, event_id: EventIdPath, body: AckRequest | None = None) -> Alert:
    """Acknowledge an alert (again is harmless: the first acknowledgement is kept)."""
    req = body or AckRequest()
    try:
        return ctx.store.acknowledge(str(event_id), by=req.by, note=req.note)
    except AlertNotFoundError as e:
        raise HTTPException(status_code=404, detail="alert not found") from e


@router.post(
    "/alerts/{event_id}/false-positive",
    response_model=SuppressionOut,
    status_code=201,
    tags=["suppressions"],
    responses={
        **UNAUTHORIZED,
        **NOT_FOUND,
        **TOO_LARGE,
        422: {
            "model": InvalidRequest,
            "description": "Invalid body, or scope region for an alert without a box",
        },
        **UNCONFIGURED,
    },
)
def false_positive(
    ctx: Ctx, event_id: EventIdPath, body: FalsePositiveRequest | None = None
) -> SuppressionOut:
    """Mark an alert a false alarm: suppress similar events for a while, on every worker.

    Creates a suppression from the alert (``scope``: ``region`` = same camera, rule,
    zone and label with the box centre in the alert's box grown by half its size;
    ``rule`` = same camera and rule; ``camera`` = the whole camera), publishes it to
    the workers and sets the alert's status to ``false_positive``.
    """
    cstore, _ = ctx.control_parts()
    req = body or FalsePositiveRequest()
    alert = alert_or_404(ctx, event_id)
    suppression = _suppression_for(alert, req, ctx.clock())
    key = suppression_key(suppression.suppression_id)
    with ctx.control_lock:
        ctx.publish(key, suppression.to_dict())
        try:
            cstore.add_suppression(suppression)
            cstore.mark_false_positive(alert.event_id, by=req.by, note=req.note or None)
        except AlertNotFoundError:  # deleted meanwhile: the suppression still stands
            logger.warning("alert %s vanished while marked false positive", alert.event_id)
        except AlertStoreError:
            ctx.compensate(key, None)
            with contextlib.suppress(AlertStoreError):
                cstore.delete_suppression(suppression.suppression_id)
            raise
    logger.info(
        "alert %s marked false positive by %s: suppression %s (%s scope, %d s)",
        alert.event_id,
        escape_controls(req.by),
        suppression.suppression_id,
        req.scope,
        req.expires_in_s,
    )
    return SuppressionOut.of(suppression, suppression.created_at)


def _suppression_for(alert: Alert, req: FalsePositiveRequest, now: float) -> Suppression:
    """The suppression a false alarm of ``alert`` creates at UNIX time ``now``.

    Raises:
        HTTPException: 422 for scope ``region`` on an alert without a box.
    """
    region: tuple[float, float, float, float] | None = None
    if req.scope == "region":
        if alert.bbox is None or len(alert.bbox) != 4:
            raise HTTPException(
                status_code=422,
                detail=invalid(
                    ["body", "scope"], 'alert has no box: use scope "rule" or "camera"', "no_box"
                )["detail"],
            )
        x1, y1, x2, y2 = alert.bbox
        region = region_around((x1, y1, x2, y2))
    narrow = req.scope == "region"
    return Suppression(
        suppression_id=str(uuid.uuid4()),
        camera_id=alert.camera_id,
        rule_id=alert.rule_id if req.scope in ("region", "rule") else None,
        zone=alert.zone if narrow else None,
        label=alert.label if narrow else None,
        region=region,
        expires_at=now + req.expires_in_s,
        created_at=now,
        source_event_id=alert.event_id,
        note=req.note,
    )
