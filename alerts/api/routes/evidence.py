"""Evidence of an alert: its snapshot JPEG, or a short-lived direct URL to it."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse

from alerts.api.auth import Who, needs
from alerts.api.context import UNAUTHORIZED, Ctx
from alerts.api.models import SnapshotUrl
from alerts.api.permissions import Permission, Principal
from alerts.api.routes.alerts import EventIdPath, alert_or_404
from alerts.evidence import EvidenceNotFoundError, InvalidEvidenceKeyError, UrlEvidenceStore

logger = logging.getLogger("alerts.api")

router = APIRouter(
    prefix="/api/v1", tags=["alerts"], dependencies=[needs(Permission.ALERTS_READ)]
)

NO_URL = "no URL for this snapshot (store serves bytes only or upload pending); use /snapshot"


@contextlib.contextmanager
def evidence_errors(key: str, event_id: uuid.UUID | str, action: str) -> Iterator[None]:
    """Map evidence-store failures to HTTP answers: missing or bad key 404, store down 503."""
    try:
        yield
    except EvidenceNotFoundError as e:
        logger.warning("snapshot %s of alert %s is missing", key, event_id)
        raise HTTPException(status_code=404, detail="snapshot not found") from e
    except InvalidEvidenceKeyError as e:
        logger.warning("alert %s has an invalid snapshot key: %s", event_id, e.reason)
        raise HTTPException(status_code=404, detail="snapshot not found") from e
    except OSError as e:
        logger.warning("evidence store failed %s %s: %s", action, key, type(e).__name__)
        raise HTTPException(status_code=503, detail="evidence store unavailable") from e


def _snapshot_key(ctx: Ctx, who: Principal, event_id: uuid.UUID) -> str:
    alert = alert_or_404(ctx, who, event_id)
    if alert.snapshot is None:
        raise HTTPException(status_code=404, detail="alert has no snapshot")
    return alert.snapshot


@router.get(
    "/alerts/{event_id}/snapshot",
    response_class=Response,
    responses={
        **UNAUTHORIZED,
        404: {"description": "No such alert or no snapshot"},
        200: {"content": {"image/jpeg": {}}, "description": "The snapshot JPEG."},
        503: {"description": "Evidence store unreachable"},
    },
)
def snapshot(ctx: Ctx, who: Who, event_id: EventIdPath) -> Response:
    """The alert's evidence snapshot (JPEG), from whichever evidence store is used."""
    key = _snapshot_key(ctx, who, event_id)
    with evidence_errors(key, event_id, "reading"):
        jpeg = ctx.evidence.get(key)
    return Response(
        content=jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/alerts/{event_id}/snapshot-url",
    response_model=SnapshotUrl,
    responses={
        **UNAUTHORIZED,
        404: {
            "description": "No such alert, no snapshot, or no URL for it (the store "
            "serves bytes only, or the snapshot is not uploaded yet: use /snapshot)"
        },
        503: {"description": "Evidence store unreachable"},
    },
)
def snapshot_url(ctx: Ctx, who: Who, event_id: EventIdPath) -> JSONResponse:
    """A short-lived direct URL (presigned S3 GET) to the alert's snapshot JPEG."""
    key = _snapshot_key(ctx, who, event_id)
    if not isinstance(ctx.evidence, UrlEvidenceStore):
        raise HTTPException(status_code=404, detail=NO_URL)
    with evidence_errors(key, event_id, "presigning"):
        url = ctx.evidence.url_for(key, ctx.snapshot_url_expiry_s)
    if url is None:
        raise HTTPException(status_code=404, detail=NO_URL)
    body = SnapshotUrl(url=url, expires_in_s=ctx.snapshot_url_expiry_s)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
