"""The operator HTTP API (FastAPI): list, inspect and acknowledge alerts, fetch snapshots.

Routes (``create_app``):

* ``GET  /api/v1/alerts`` - filtered, paginated list, most urgent then most recent first
* ``GET  /api/v1/alerts/{event_id}`` - one alert
* ``POST /api/v1/alerts/{event_id}/ack`` - acknowledge (idempotent)
* ``GET  /api/v1/alerts/{event_id}/snapshot`` - the evidence JPEG
* ``GET  /healthz`` (liveness), ``GET /readyz`` (readiness), ``GET /metrics`` (Prometheus)
* ``GET  /`` - the operator page; ``/docs`` - OpenAPI UI with an Authorize button

Every ``/api/v1`` route needs the API key, as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``; the key is compared in constant time and never logged or
echoed.  Health, readiness, metrics and the page itself are open (they carry no
alert data and no secrets).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.evidence import (
    MAX_URL_EXPIRY_S,
    EvidenceNotFoundError,
    EvidenceStore,
    InvalidEvidenceKeyError,
    UrlEvidenceStore,
)
from alerts.metrics import API_LATENCY, API_REQUESTS
from alerts.store import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Alert,
    AlertNotFoundError,
    AlertStatus,
    AlertStore,
    AlertStoreError,
)
from alerts.ui import operator_page
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted (the only body is the small ack request)."""
MAX_NOTE_LENGTH = 1000
MAX_OFFSET = 1_000_000_000

HealthFn = Callable[[], dict[str, Any]]


# --------------------------------------------------------------------------- models


class AlertPage(BaseModel):
    """One page of ``GET /alerts``."""

    items: list[Alert]
    total: int = Field(description="Alerts matching the filters, all pages together.")
    limit: int
    offset: int


class AckRequest(BaseModel):
    """Body of ``POST /alerts/{event_id}/ack`` (all optional; ``{}`` is fine)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)
    by: str = Field(
        default="operator",
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who acknowledges (free text, no control characters).",
    )


class SnapshotUrl(BaseModel):
    """Body of ``GET /alerts/{event_id}/snapshot-url``."""

    url: str = Field(description="Presigned GET URL of the snapshot JPEG; needs no API key.")
    expires_in_s: int = Field(description="Seconds from now until the URL stops working.")


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """Readiness: the store answers; ``cameras`` is the pipeline's per-camera state."""

    status: Literal["ready", "not_ready"]
    version: str
    store: bool = Field(description="The alert store answered a query.")
    cameras: dict[str, Any] = Field(description="Per-camera state from the runner.")
    components: dict[str, Any] = Field(
        default_factory=dict,
        description="State of other parts: Kafka bus, alert service, evidence uploader.",
    )
    error: str | None = Field(default=None, description="Why not ready (no details).")


# ----------------------------------------------------------------------- middleware


class _BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


class _BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = JSONResponse(
                {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class _MetricsMiddleware:
    """Counts requests by method, route template and status; times them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = str(scope.get("method", ""))
            API_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            API_LATENCY.labels(method=method, route=template).observe(time.perf_counter() - start)


# ------------------------------------------------------------------------ helpers

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authori[sz]ation", re.I)


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


def redact(value: Any, _depth: int = 0) -> Any:
    """Copy of a health structure with secrets removed.

    Values under keys that look secret (password, token, api_key, ...) become
    ``"***"``; URL passwords and secret query values become ``***`` (the same redaction
    ingest applies to its logs); nesting deeper than 8 is cut.
    """
    if _depth > 8:
        return "..."
    if isinstance(value, dict):
        return {
            str(k): "***" if _SECRET_KEY.search(str(k)) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


EventIdPath = Annotated[uuid.UUID, Path(description="Event id (uuid).")]

# Module level (not inside create_app) so FastAPI can resolve the annotations.
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The Argus API key.")
_BEARER = HTTPBearer(auto_error=False, description="The Argus API key as a bearer token.")
HeaderKey = Annotated[str | None, Security(_KEY_HEADER)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


# ---------------------------------------------------------------------------- app


def create_app(
    store: AlertStore,
    evidence: EvidenceStore,
    *,
    api_key: str,
    health: HealthFn | None = None,
    version: str = "0.0.0",
    max_body_bytes: int = MAX_BODY_BYTES,
    snapshot_url_expiry_s: int = 300,
    components: HealthFn | None = None,
) -> FastAPI:
    """Build the alerts API.

    Args:
        store: Where alerts are read and acknowledged.
        evidence: Where snapshot JPEGs are read.
        api_key: The shared secret every ``/api/v1`` request must present
            (at least 16 characters).
        health: Returns per-camera pipeline state for ``/readyz`` (secrets are
            redacted anyway); ``None`` reports no cameras.
        version: Reported by ``/healthz``, ``/readyz`` and the OpenAPI document.
        max_body_bytes: Larger request bodies are refused with 413.
        components: Returns the state of other parts (bus, alert service, evidence
            uploader) for ``/readyz`` (redacted like ``health``).
        snapshot_url_expiry_s: Lifetime in seconds of the URLs ``/snapshot-url`` hands
            out (only stores satisfying ``UrlEvidenceStore`` give URLs).

    Raises:
        ValueError: ``api_key`` shorter than 16 characters (the key itself is not
            in the message), or ``snapshot_url_expiry_s`` outside 1..7 days.
    """
    if len(api_key) < 16:
        raise ValueError(f"api_key must be at least 16 characters (got {len(api_key)})")
    if not 1 <= snapshot_url_expiry_s <= MAX_URL_EXPIRY_S:
        raise ValueError(
            f"snapshot_url_expiry_s must be in 1..{MAX_URL_EXPIRY_S}, got {snapshot_url_expiry_s}"
        )
    expected = api_key.encode("utf-8")

    def require_key(request: Request, header_key: HeaderKey, bearer_cred: BearerKey) -> None:
        presented = [header_key, bearer_cred.credentials if bearer_cred else None]
        ok = False
        for candidate in presented:
            if candidate is not None:
                ok |= hmac.compare_digest(candidate.encode("utf-8"), expected)
        if not ok:
            why = "invalid" if any(c is not None for c in presented) else "missing"
            logger.info("%s API key for %s %s", why, request.method, request.url.path)
            raise HTTPException(
                status_code=401,
                detail="missing or invalid API key",
                headers={"WWW-Authenticate": 'Bearer realm="argus"'},
            )

    app = FastAPI(
        title="Argus alerts API",
        version=version,
        description="Prioritised CCTV alerts: list, acknowledge, view evidence.",
    )
    app.add_middleware(_BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(_MetricsMiddleware)

    @app.exception_handler(AlertStoreError)
    async def _store_failed(request: Request, exc: AlertStoreError) -> JSONResponse:
        logger.error("alert store failed on %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "alert store unavailable"}, status_code=503)

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_key)], tags=["alerts"])
    unauthorized: dict[int | str, dict[str, Any]] = {401: {"description": "Missing or bad key"}}
    not_found: dict[int | str, dict[str, Any]] = {404: {"description": "No such alert"}}

    @api.get("/alerts", response_model=AlertPage, responses=unauthorized)
    def list_alerts(
        camera_id: Annotated[str | None, Query(max_length=128)] = None,
        type: Annotated[str | None, Query(max_length=64)] = None,
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
        items = store.list(**filters, limit=limit, offset=offset)
        return AlertPage(items=items, total=store.count(**filters), limit=limit, offset=offset)

    @api.get("/alerts/{event_id}", response_model=Alert, responses={**unauthorized, **not_found})
    def get_alert(event_id: EventIdPath) -> Alert:
        """One alert by event id."""
        alert = store.get(str(event_id))
        if alert is None:
            raise HTTPException(status_code=404, detail="alert not found")
        return alert

    @api.post(
        "/alerts/{event_id}/ack",
        response_model=Alert,
        responses={**unauthorized, **not_found, 413: {"description": "Body too large"}},
    )
    def acknowledge(event_id: EventIdPath, body: AckRequest | None = None) -> Alert:
        """Acknowledge an alert (again is harmless: the first acknowledgement is kept)."""
        req = body or AckRequest()
        try:
            return store.acknowledge(str(event_id), by=req.by, note=req.note)
        except AlertNotFoundError as e:
            raise HTTPException(status_code=404, detail="alert not found") from e

    def snapshot_key_of(event_id: uuid.UUID) -> str:
        alert = store.get(str(event_id))
        if alert is None:
            raise HTTPException(status_code=404, detail="alert not found")
        if alert.snapshot is None:
            raise HTTPException(status_code=404, detail="alert has no snapshot")
        return alert.snapshot

    @api.get(
        "/alerts/{event_id}/snapshot",
        response_class=Response,
        responses={
            **unauthorized,
            404: {"description": "No such alert or no snapshot"},
            200: {"content": {"image/jpeg": {}}, "description": "The snapshot JPEG."},
        },
    )
    def snapshot(event_id: EventIdPath) -> Response:
        """The alert's evidence snapshot (JPEG), from whichever evidence store is used."""
        key = snapshot_key_of(event_id)
        with evidence_errors(key, event_id, "reading"):
            jpeg = evidence.get(key)
        return Response(
            content=jpeg,
            media_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @api.get(
        "/alerts/{event_id}/snapshot-url",
        response_model=SnapshotUrl,
        responses={
            **unauthorized,
            404: {
                "description": "No such alert, no snapshot, or no URL for it (the store "
                "serves bytes only, or the snapshot is not uploaded yet: use /snapshot)"
            },
            503: {"description": "Evidence store unreachable"},
        },
    )
    def snapshot_url(event_id: EventIdPath) -> JSONResponse:
        """A short-lived direct URL (presigned S3 GET) to the alert's snapshot JPEG."""
        key = snapshot_key_of(event_id)
        no_url = (
            "no URL for this snapshot (store serves bytes only or upload pending); use /snapshot"
        )
        if not isinstance(evidence, UrlEvidenceStore):
            raise HTTPException(status_code=404, detail=no_url)
        with evidence_errors(key, event_id, "presigning"):
            url = evidence.url_for(key, snapshot_url_expiry_s)
        if url is None:
            raise HTTPException(status_code=404, detail=no_url)
        body = SnapshotUrl(url=url, expires_in_s=snapshot_url_expiry_s)
        return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})

    app.include_router(api)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """Liveness: the process serves HTTP."""
        return Health(status="ok", version=version)

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["ops"],
        responses={503: {"model": Readiness, "description": "Not ready"}},
    )
    def readyz() -> JSONResponse:
        """Readiness: the alert store answers; includes per-camera state."""
        error: str | None = None
        store_ok = True
        try:
            store.ping()
        except AlertStoreError as e:
            store_ok, error = False, "alert store unavailable"
            logger.warning("not ready: %s", e)
        cameras: dict[str, Any] = {}
        parts: dict[str, Any] = {}
        if components is not None:
            try:
                parts = redact(dict(components()))
            except Exception as e:  # a component's callback; report, don't crash
                logger.warning("components callback failed: %s", type(e).__name__)
            stopped = sorted(
                name
                for name, part in parts.items()
                if isinstance(part, dict) and part.get("running") is False
            )
            if stopped:  # e.g. the alert service's consumer is not running: not ready
                error = error or f"not running: {', '.join(stopped)}"
        if health is not None:
            try:
                cameras = redact(dict(health()))
            except Exception as e:  # health is the runner's callback; report, don't crash
                logger.warning("health callback failed: %s", type(e).__name__)
                error = error or "health callback failed"
        ready = store_ok and error is None
        body = Readiness(
            status="ready" if ready else "not_ready",
            version=version,
            store=store_ok,
            cameras=cameras,
            components=parts,
            error=error,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text exposition of this process's metrics."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it on every page load; answer "nothing" rather than 404 noise.
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        html, csp = operator_page()
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    return app
