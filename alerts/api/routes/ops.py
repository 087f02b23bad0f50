"""Operations: liveness, readiness, Prometheus metrics (open, for probes and scrapers) and
the detailed status (key holders only).

The open endpoints carry states and counters, never a host, a path, a user name or an
error text (``alerts.api.redaction.public_view``); ``GET /api/v1/status`` has those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from alerts.api.auth import OPEN, needs
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.models import Health, Readiness, Status
from alerts.api.permissions import Permission
from alerts.api.redaction import public_view, redact
from alerts.store import AlertStoreError

logger = logging.getLogger("alerts.api")

DOWN_STATES = frozenset({"failed", "reconnecting"})
"""Camera states in which a camera delivers nothing: when every camera is in one, the
process is not ready."""

router = APIRouter(tags=["ops"], dependencies=[OPEN])
status_router = APIRouter(
    prefix="/api/v1", tags=["ops"], dependencies=[needs(Permission.STATUS_READ)]
)


@dataclass(frozen=True)
class _State:
    """What readiness and status report, before redaction."""

    store: bool
    cameras: dict[str, Any]
    components: dict[str, Any]
    error: str | None

    @property
    def ready(self) -> bool:
        return self.store and self.error is None


def gather(ctx: ApiContext) -> _State:
    """Ask the store, the runner and the other components how they are (never raises)."""
    error: str | None = None
    store_ok = True
    try:
        ctx.store.ping()
    except AlertStoreError as e:
        store_ok, error = False, "alert store unavailable"
        logger.warning("not ready: %s", e)
    parts: dict[str, Any] = {}
    if ctx.components is not None:
        try:
            parts = redact(dict(ctx.components()))
        except Exception as e:  # a component's callback; report, don't crash
            logger.warning("components callback failed: %s", type(e).__name__)
        stopped = sorted(
            name
            for name, part in parts.items()
            if isinstance(part, dict) and part.get("running") is False
        )
        if stopped:  # e.g. the alert service's consumer is not running: not ready
            error = error or f"not running: {', '.join(stopped)}"
    cameras: dict[str, Any] = {}
    if ctx.health is not None:
        try:
            cameras = redact(dict(ctx.health()))
        except Exception as e:  # health is the runner's callback; report, don't crash
            logger.warning("health callback failed: %s", type(e).__name__)
            error = error or "health callback failed"
    states = [c.get("state") for c in cameras.values() if isinstance(c, dict)]
    if states and all(s in DOWN_STATES for s in states):
        error = error or "every camera is down (failed or reconnecting)"
    return _State(store=store_ok, cameras=cameras, components=parts, error=error)


@router.get("/healthz", response_model=Health)
def healthz(ctx: Ctx) -> Health:
    """Liveness: the process serves HTTP."""
    return Health(status="ok", version=ctx.version)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def readyz(ctx: Ctx) -> JSONResponse:
    """Readiness: the alert store answers, and some camera (if any) is not down.

    Open (probes carry no key), so it shows states and counters only; the same with
    error texts is ``GET /api/v1/status``.
    """
    state = gather(ctx)
    cams = state.cameras
    body = Readiness(
        status="ready" if state.ready else "not_ready",
        version=ctx.version,
        store=state.store,
        cameras={k: public_view(v) if isinstance(v, dict) else {} for k, v in cams.items()},
        components=public_view(state.components),
        error=state.error,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if state.ready else 503)


@status_router.get("/status", response_model=Status, responses=UNAUTHORIZED)
def status(ctx: Ctx) -> Status:
    """Everything ``/readyz`` reports, with error texts and endpoints (secrets redacted)."""
    state = gather(ctx)
    return Status(
        ready=state.ready,
        version=ctx.version,
        store=state.store,
        cameras=state.cameras,
        components=state.components,
        error=state.error,
    )


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
