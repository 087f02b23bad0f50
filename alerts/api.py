"""The operator HTTP API (FastAPI): list, inspect and acknowledge alerts, fetch snapshots.

Routes (``create_app``):

* ``GET  /api/v1/alerts`` - filtered (camera, type, status, open), paginated list, most
  urgent then most recent first
* ``GET  /api/v1/alerts/{event_id}`` - one alert
* ``POST /api/v1/alerts/{event_id}/ack`` - acknowledge (idempotent)
* ``GET  /api/v1/alerts/{event_id}/snapshot`` - the evidence JPEG
* ``POST /api/v1/alerts/{event_id}/false-positive`` - mark a false alarm: creates a
  suppression, sets the status ``false_positive`` (201)
* ``GET  /api/v1/rules``, ``PUT /api/v1/rules`` - the hot-reloadable rule set override
  (revision numbers: a stale ``revision`` is refused with 409)
* ``GET  /api/v1/suppressions``, ``GET|DELETE /api/v1/suppressions/{id}``
* ``GET  /healthz`` (liveness), ``GET /readyz`` (readiness), ``GET /metrics`` (Prometheus)
* ``GET  /`` - the operator page; ``/docs`` - OpenAPI UI with an Authorize button

Every ``/api/v1`` route needs the API key, as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``; the key is compared in constant time and never logged or
echoed.  Health, readiness, metrics and the page itself are open (they carry no
alert data and no secrets).

Control plane (rules and suppressions, see ``alerts.control``): enabled by passing
``control`` (a ``ControlPublisher``) and ``validate_rules`` to ``create_app``; the store
must then also be a ``ControlStore``.  Without ``control`` those routes answer 503
("control plane not configured") and everything else behaves as before.  Every change
is first published on the control channel, then stored: when the channel does not
acknowledge it the answer is 503 and nothing was stored; when the store then fails,
the previous value is published again (best effort) and the answer is 503.  Changes
are serialised within the process.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.control import (
    RULES_KEY,
    ControlPublisher,
    ControlPublishError,
    ControlValue,
    encode_value,
    rules_message,
    suppression_key,
)
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
    ControlStore,
    RulesRevisionConflictError,
)
from alerts.ui import operator_page
from ingest.redact import redact_text
from selector.suppression import Suppression, region_around

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted, except on ``PUT /rules`` (ack and false-positive bodies)."""
MAX_RULES_BODY_BYTES = 256 * 1024
"""Largest ``PUT /rules`` body accepted (the rule set travels as one control message)."""
MAX_RULES = 1000
"""Most rules in one rule set."""
MAX_NOTE_LENGTH = 1000
MAX_SUPPRESSION_NOTE_LENGTH = 500
MIN_SUPPRESSION_S = 60
MAX_SUPPRESSION_S = 30 * 86400
DEFAULT_SUPPRESSION_S = 86400
MAX_PROBLEMS = 100
"""Most rule problems returned in a 422 answer (each cut to 500 characters)."""
MAX_OFFSET = 1_000_000_000
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
"""What the ``type`` filter accepts: an identifier-like event type (``fall``, ``line_crossing``)."""
MAX_EVENT_TYPE_LENGTH = 64
"""Longest event type (as in the event schema)."""

HealthFn = Callable[[], dict[str, Any]]
RulesValidator = Callable[[list[dict[str, Any]]], list[str]]
"""Returns the problems of a rule set (empty: valid), e.g. unknown types or classes."""


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


class RulesDocument(BaseModel):
    """The rule set override: ``GET /rules`` and the answer of ``PUT /rules``."""

    revision: int = Field(description="Revision; 0: the initial (configured) rules.")
    rules: list[dict[str, Any]] = Field(description="The rules (opaque to the API).")


class RulesUpdate(BaseModel):
    """Body of ``PUT /rules``."""

    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]] = Field(max_length=MAX_RULES)
    revision: int | None = Field(
        ge=0,
        strict=True,
        description="The revision this change is based on (409 if it is no longer the "
        "current one; 0: nothing stored yet); null replaces whatever is stored.",
    )


class FalsePositiveRequest(BaseModel):
    """Body of ``POST /alerts/{event_id}/false-positive`` (all optional; ``{}`` is fine)."""

    model_config = ConfigDict(extra="forbid")

    expires_in_s: int = Field(
        default=DEFAULT_SUPPRESSION_S,
        ge=MIN_SUPPRESSION_S,
        le=MAX_SUPPRESSION_S,
        strict=True,
        description="How long the suppression lasts, seconds (60 s to 30 days).",
    )
    note: str = Field(
        default="",
        max_length=MAX_SUPPRESSION_NOTE_LENGTH,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
        description="Why it is a false alarm (no control characters but tab/newline).",
    )
    scope: Literal["region", "rule", "camera"] = Field(
        default="region",
        description='"region": same camera, rule, zone and label, box centre near the '
        'alert\'s box; "rule": same camera and rule; "camera": the whole camera.',
    )
    by: str = Field(
        default="operator",
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who marks it (free text, no control characters).",
    )


class SuppressionOut(BaseModel):
    """One suppression (``Suppression.to_dict()`` plus ``active``)."""

    suppression_id: str
    camera_id: str
    rule_id: str | None
    zone: str | None
    label: str | None
    region: list[float] | None = Field(description="[x1, y1, x2, y2] pixels, or null.")
    expires_at: float = Field(description="UNIX seconds (UTC) when it stops applying.")
    created_at: float = Field(description="UNIX seconds (UTC) of creation.")
    source_event_id: str | None
    note: str
    active: bool = Field(description="Still in force now.")

    @classmethod
    def of(cls, s: Suppression, now: float) -> SuppressionOut:
        """The API form of ``s`` at UNIX time ``now``."""
        return cls(**s.to_dict(), active=s.active(now))


# ----------------------------------------------------------------------- middleware


class _BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


class _BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 (declared or streamed).

    ``per_path`` maps exact request paths to their own limit (e.g. ``PUT /rules``).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(str(scope.get("path", "")), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            response = JSONResponse(
                {"detail": f"request body larger than {limit} bytes"}, status_code=413
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLargeError(limit)
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
SuppressionIdPath = Annotated[uuid.UUID, Path(description="Suppression id (uuid).")]

# Module level (not inside create_app) so FastAPI can resolve the annotations.
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The Argus API key.")
_BEARER = HTTPBearer(auto_error=False, description="The Argus API key as a bearer token.")
HeaderKey = Annotated[str | None, Security(_KEY_HEADER)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def _previous_rules(cstore: ControlStore, now: float) -> dict[str, Any] | None:
    """The stored rules as a control value (``None``: a tombstone, no rules stored)."""
    stored = cstore.get_rules()
    return None if stored is None else rules_message(stored[0], stored[1], now)


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
    control: ControlPublisher | None = None,
    validate_rules: RulesValidator | None = None,
    initial_rules: Sequence[Mapping[str, Any]] | None = None,
    max_rules_body_bytes: int = MAX_RULES_BODY_BYTES,
    clock: Callable[[], float] = time.time,
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
        control: The control channel rules and suppression changes are published on
            (``alerts.control``); ``None`` turns the control routes off (503).
        validate_rules: Checks a rule set for ``PUT /rules`` (problems -> 422);
            required with ``control``.
        initial_rules: What ``GET /rules`` shows as revision 0 while none were
            stored (the configured rules); ``None``: 404 until the first ``PUT``.
        max_rules_body_bytes: Larger ``PUT /rules`` bodies are refused with 413.
        clock: UNIX time source (suppression creation and expiry).

    Raises:
        ValueError: ``api_key`` shorter than 16 characters (the key itself is not
            in the message), ``snapshot_url_expiry_s`` outside 1..7 days, or
            ``control`` without ``validate_rules`` or with a store that is not a
            ``ControlStore``.
    """
    if len(api_key) < 16:
        raise ValueError(f"api_key must be at least 16 characters (got {len(api_key)})")
    if not 1 <= snapshot_url_expiry_s <= MAX_URL_EXPIRY_S:
        raise ValueError(
            f"snapshot_url_expiry_s must be in 1..{MAX_URL_EXPIRY_S}, got {snapshot_url_expiry_s}"
        )
    control_store: ControlStore | None = None
    if control is not None:
        if validate_rules is None:
            raise ValueError("control needs validate_rules (rule sets are checked before use)")
        if not isinstance(store, ControlStore):
            raise ValueError(f"control needs a ControlStore, got {type(store).__name__}")
        control_store = store
    base_rules = None if initial_rules is None else [dict(r) for r in initial_rules]
    control_lock = threading.Lock()
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
    app.add_middleware(
        _BodyLimitMiddleware,
        max_bytes=max_body_bytes,
        per_path={f"{API_PREFIX}/rules": max(max_rules_body_bytes, max_body_bytes)},
    )
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

    # -- control plane: false positives, suppressions, rules ------------------------

    ctl = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_key)])
    unconfigured: dict[int | str, dict[str, Any]] = {
        503: {"description": "Control plane not configured, channel or store unavailable"}
    }

    def control_parts() -> tuple[ControlStore, ControlPublisher]:
        if control is None or control_store is None:
            raise HTTPException(
                status_code=503,
                detail="control plane not configured (rules and suppressions are disabled)",
            )
        return control_store, control

    def publish(key: str, value: ControlValue) -> None:
        _, channel = control_parts()
        try:
            channel.publish(key, value)
        except ControlPublishError as e:
            logger.warning("control change %s refused: %s", key, e.reason)
            raise HTTPException(
                status_code=503,
                detail="control channel unavailable: the change was not applied; retry later",
            ) from e

    def compensate(key: str, value: ControlValue) -> None:
        """After a store failure: publish the previous value again (best effort)."""
        try:
            control_parts()[1].publish(key, value)
        except Exception as e:  # the store error is what gets reported
            logger.error(
                "control %s published but not stored, and the previous value could not be "
                "published again (%s): workers disagree with the store until the next "
                "change of this key or republish_state",
                key,
                type(e).__name__,
            )

    @ctl.post(
        "/alerts/{event_id}/false-positive",
        response_model=SuppressionOut,
        status_code=201,
        tags=["alerts", "suppressions"],
        responses={
            **unauthorized,
            **not_found,
            413: {"description": "Body too large"},
            422: {"description": "Invalid body, or scope region for an alert without a box"},
            **unconfigured,
        },
    )
    def false_positive(
        event_id: EventIdPath, body: FalsePositiveRequest | None = None
    ) -> SuppressionOut:
        """Mark an alert a false alarm: suppress similar events for a while, on every worker.

        Creates a suppression from the alert (``scope``: ``region`` = same camera, rule,
        zone and label with the box centre in the alert's box grown by half its size;
        ``rule`` = same camera and rule; ``camera`` = the whole camera), publishes it to
        the workers and sets the alert's status to ``false_positive``.
        """
        cstore, _ = control_parts()
        req = body or FalsePositiveRequest()
        alert = store.get(str(event_id))
        if alert is None:
            raise HTTPException(status_code=404, detail="alert not found")
        region: tuple[float, float, float, float] | None = None
        if req.scope == "region":
            if alert.bbox is None or len(alert.bbox) != 4:
                raise HTTPException(
                    status_code=422,
                    detail='alert has no box: use scope "rule" or "camera"',
                )
            x1, y1, x2, y2 = alert.bbox
            region = region_around((x1, y1, x2, y2))
        now = clock()
        narrow = req.scope == "region"
        suppression = Suppression(
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
        key = suppression_key(suppression.suppression_id)
        with control_lock:
            publish(key, suppression.to_dict())
            try:
                cstore.add_suppression(suppression)
                cstore.mark_false_positive(alert.event_id, by=req.by, note=req.note or None)
            except AlertNotFoundError:  # deleted meanwhile: the suppression still stands
                logger.warning("alert %s vanished while marked false positive", alert.event_id)
            except AlertStoreError:
                compensate(key, None)
                with contextlib.suppress(AlertStoreError):
                    cstore.delete_suppression(suppression.suppression_id)
                raise
        logger.info(
            "alert %s marked false positive by %s: suppression %s (%s scope, %d s)",
            alert.event_id,
            req.by,
            suppression.suppression_id,
            req.scope,
            req.expires_in_s,
        )
        return SuppressionOut.of(suppression, now)

    @ctl.get(
        "/suppressions",
        response_model=list[SuppressionOut],
        tags=["suppressions"],
        responses={**unauthorized, **unconfigured},
    )
    def list_suppressions(
        include_expired: Annotated[
            bool, Query(description="Also list suppressions that no longer apply.")
        ] = False,
    ) -> list[SuppressionOut]:
        """Suppressions, newest first (only those still in force unless ``include_expired``)."""
        cstore, _ = control_parts()
        now = clock()
        items = cstore.list_suppressions(active_only=not include_expired, now=now)
        return [SuppressionOut.of(s, now) for s in items]

    no_suppression: dict[int | str, dict[str, Any]] = {404: {"description": "No such suppression"}}

    @ctl.get(
        "/suppressions/{suppression_id}",
        response_model=SuppressionOut,
        tags=["suppressions"],
        responses={**unauthorized, **no_suppression, **unconfigured},
    )
    def get_suppression(suppression_id: SuppressionIdPath) -> SuppressionOut:
        """One suppression (expired or not)."""
        cstore, _ = control_parts()
        found = cstore.get_suppression(str(suppression_id))
        if found is None:
            raise HTTPException(status_code=404, detail="suppression not found")
        return SuppressionOut.of(found, clock())

    @ctl.delete(
        "/suppressions/{suppression_id}",
        status_code=204,
        response_class=Response,
        tags=["suppressions"],
        responses={**unauthorized, **no_suppression, **unconfigured},
    )
    def delete_suppression(suppression_id: SuppressionIdPath) -> Response:
        """Lift a suppression on every worker (publishes a tombstone)."""
        cstore, _ = control_parts()
        sid = str(suppression_id)
        with control_lock:
            found = cstore.get_suppression(sid)
            if found is None:
                raise HTTPException(status_code=404, detail="suppression not found")
            key = suppression_key(sid)
            publish(key, None)
            try:
                cstore.delete_suppression(sid)
            except AlertStoreError:
                compensate(key, found.to_dict())
                raise
        logger.info("suppression %s lifted", sid)
        return Response(status_code=204)

    def current_rules(cstore: ControlStore) -> RulesDocument | None:
        stored = cstore.get_rules()
        if stored is not None:
            return RulesDocument(revision=stored[0], rules=stored[1])
        if base_rules is not None:
            return RulesDocument(revision=0, rules=base_rules)
        return None

    @ctl.get(
        "/rules",
        response_model=RulesDocument,
        tags=["rules"],
        responses={
            **unauthorized,
            404: {"description": "No rules stored and no initial rules"},
            **unconfigured,
        },
    )
    def get_rules() -> RulesDocument:
        """The current rule set and its revision (0: the configured rules, never changed)."""
        cstore, _ = control_parts()
        doc = current_rules(cstore)
        if doc is None:
            raise HTTPException(status_code=404, detail="no rules set")
        return doc

    @ctl.put(
        "/rules",
        response_model=RulesDocument,
        tags=["rules"],
        responses={
            **unauthorized,
            409: {"description": "revision is not the current one: reload and retry"},
            413: {"description": "Body too large"},
            422: {"description": "Invalid body, or the rules have problems (listed)"},
            **unconfigured,
        },
    )
    def put_rules(body: RulesUpdate) -> Any:
        """Replace the rule set; every worker applies it without a restart.

        The rules are checked first (``problems`` listed with 422); ``revision`` must be
        the current one (409 otherwise), or null to overwrite.
        """
        cstore, _ = control_parts()
        assert validate_rules is not None  # create_app enforces it with control
        try:  # NaN/Infinity parse from the body but are no JSON to send or store
            encode_value(RULES_KEY, rules_message(0, body.rules, 0.0))
        except ValueError as e:
            problems = [str(e)]
        else:
            try:
                problems = list(validate_rules(copy.deepcopy(body.rules)))
            except (ValueError, TypeError, KeyError) as e:
                problems = [f"{type(e).__name__}: {e}"]
        if problems:
            return JSONResponse(
                {
                    "detail": "invalid rules",
                    "problems": [str(p)[:500] for p in problems[:MAX_PROBLEMS]],
                },
                status_code=422,
            )
        with control_lock:
            stored = cstore.get_rules()
            current = 0 if stored is None else stored[0]
            if body.revision is not None and body.revision != current:
                raise HTTPException(
                    status_code=409,
                    detail=f"rules revision is {current}, not {body.revision}: reload and retry",
                )
            publish(RULES_KEY, rules_message(current + 1, body.rules, clock()))
            try:
                revision = cstore.put_rules(body.rules, current)
            except RulesRevisionConflictError as e:  # another process changed them
                compensate(RULES_KEY, _previous_rules(cstore, clock()))
                raise HTTPException(
                    status_code=409,
                    detail=f"rules revision is {e.current}, not {body.revision}: reload and retry",
                ) from e
            except AlertStoreError:
                prev = None if stored is None else rules_message(stored[0], stored[1], clock())
                compensate(RULES_KEY, prev)
                raise
        logger.info("rules revision %d stored and published (%d rules)", revision, len(body.rules))
        return RulesDocument(revision=revision, rules=body.rules)

    app.include_router(ctl)

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
