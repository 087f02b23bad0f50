"""``create_app``: the alerts API assembled from its routers, guards and error handlers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI

from alerts.api.context import ApiContext, HealthFn, RulesValidator
from alerts.api.errors import RejectionLog, SafeJSONResponse, install_handlers
from alerts.api.fleet_admin import FleetAdmin
from alerts.api.guards import BodyGuard, HostGuard, MetricsMiddleware, default_allowed_hosts
from alerts.api.models import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_RULES_BODY_BYTES
from alerts.api.permissions import CameraGroups
from alerts.api.routes import alerts as alert_routes
from alerts.api.routes import (
    audit,
    auth,
    changes,
    lifecycle,
    ops,
    page_settings,
    pages,
    people,
    pictures,
    rule_types,
    search,
)
from alerts.api.routes import control as control_routes
from alerts.api.routes import evidence as evidence_routes
from alerts.api.routes import fleet as fleet_routes
from alerts.api.routes import live as live_routes
from alerts.api.routes.search import search_classes
from alerts.api.security import Passwords, digest
from alerts.control import ControlPublisher
from alerts.evidence import MAX_URL_EXPIRY_S, EvidenceStore
from alerts.live import LiveBoard
from alerts.store import AlertStore, AuditStore, ControlStore, LifecycleStore, PeopleStore

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class PageSettings:
    """What the operators' page is told (``GET /api/v1/page-settings``).

    Attributes:
        cue_min_priority: A new alert at or above this priority gets a visual and an
            audible cue (0-100; 101: never).
        sla_min_priority: Alerts at or above this priority are escalated when nobody
            claims them in time (``None``: no claim SLA).
        sla_claim_within_s: ... when still new this long after they arrived, seconds.
    """

    cue_min_priority: int = 70
    sla_min_priority: int | None = None
    sla_claim_within_s: float | None = None


@dataclass(frozen=True)
class AccessSettings:
    """Who sees what, and how sign-in works.

    Attributes:
        camera_groups: Each camera's groups (``cameras[].groups``); a camera not named
            here is seen only by admins.
        camera_zones: Each camera's zone names (what the search page offers as filters).
        classes: The detector's class names, searchable besides the 80 COCO classes (a
            model of one's own).
        session_lifetime_s: A session's absolute lifetime, seconds.
        session_idle_s: A session ends after this long without a request, seconds.
        secure_cookies: Mark cookies Secure (``None``: when the request came over HTTPS).
        password_hasher: Argon2 parameters (``None``: RFC 9106's); tests pass cheap ones.
        page: What the operators' page is told (cue priority, the claim SLA).
    """

    camera_groups: Mapping[str, list[str]] = field(default_factory=dict)
    camera_zones: Mapping[str, list[str]] = field(default_factory=dict)
    classes: Sequence[str] = ()
    session_lifetime_s: float = 12 * 3600.0
    session_idle_s: float = 1800.0
    secure_cookies: bool | None = None
    password_hasher: PasswordHasher | None = None
    page: PageSettings = field(default_factory=PageSettings)


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
    allowed_hosts: Sequence[str] | None = None,
    access: AccessSettings | None = None,
    clock: Callable[[], float] = time.time,
    live: LiveBoard | None = None,
    fleet: FleetAdmin | None = None,
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
        snapshot_url_expiry_s: Lifetime in seconds of the URLs ``/snapshot-url`` hands
            out (only stores satisfying ``UrlEvidenceStore`` give URLs).
        components: Returns the state of other parts (bus, alert service, evidence
            uploader) for ``/readyz`` (redacted like ``health``).
        control: The control channel rules and suppression changes are published on
            (``alerts.control``); ``None`` turns the control routes off (503).
        validate_rules: Checks a rule set for ``PUT /rules`` (problems -> 422);
            required with ``control``.
        initial_rules: What ``GET /rules`` shows as revision 0 while none were
            stored (the configured rules); ``None``: 404 until the first ``PUT``.
        max_rules_body_bytes: Larger ``PUT /rules`` bodies are refused with 413.
        allowed_hosts: ``Host`` header values served (``"*"``: any; ``"*.example.org"``:
            its subdomains); others get 400, except on ``/healthz``, ``/readyz`` and
            ``/metrics``.  ``None``: the loopback names and addresses.
        access: Camera groups, sessions and password hashing (``AccessSettings``);
            users, sessions, tokens, the audit trail and the lifecycle are the store's
            when it keeps them (``PeopleStore``, ``AuditStore``, ``LifecycleStore``).
        clock: UNIX time source (suppression creation and expiry, sessions, audit).
        live: The cameras' statuses and live pictures from the workers, for the wall
            and the health board (``None``: no worker reports here; the wall shows
            alerts without pictures).
        fleet: The fleet's camera definitions, edited by admins (``/fleet/cameras``);
            ``None``: cameras come from the config file (those routes answer 503).

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
    rejections = RejectionLog()
    settings = access or AccessSettings()
    ctx = ApiContext(
        store=store,
        evidence=evidence,
        api_key_digest=digest(api_key),
        version=version,
        health=health,
        components=components,
        control=control,
        control_store=control_store,
        validate_rules=validate_rules,
        base_rules=None if initial_rules is None else [dict(r) for r in initial_rules],
        snapshot_url_expiry_s=snapshot_url_expiry_s,
        clock=clock,
        rejections=rejections,
        people=store if isinstance(store, PeopleStore) else None,
        audit=store if isinstance(store, AuditStore) else None,
        lifecycle=store if isinstance(store, LifecycleStore) else None,
        cameras=CameraGroups(settings.camera_groups),
        camera_zones={cam: list(z) for cam, z in settings.camera_zones.items()},
        search_classes=search_classes(settings.classes),
        passwords=Passwords(settings.password_hasher),
        session_lifetime_s=settings.session_lifetime_s,
        session_idle_s=settings.session_idle_s,
        secure_cookies=settings.secure_cookies,
        page_settings=dataclasses.asdict(settings.page),
        live=live,
        fleet=fleet,
    )

    app = FastAPI(
        title="Argus alerts API",
        version=version,
        description="Prioritised CCTV alerts: list, acknowledge, view evidence.",
        docs_url=None,  # served by the pages router from package files, not a CDN
        redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.argus = ctx
    install_handlers(app)
    # Added innermost first: a request meets HostGuard, then BodyGuard, then the routes.
    app.add_middleware(
        BodyGuard,
        max_bytes=max_body_bytes,
        max_depth=MAX_JSON_DEPTH,
        per_path={f"{API_PREFIX}/rules": max(max_rules_body_bytes, max_body_bytes)},
    )
    app.add_middleware(
        HostGuard,
        allowed=default_allowed_hosts() if allowed_hosts is None else list(allowed_hosts),
        rejections=rejections,
    )
    app.add_middleware(MetricsMiddleware)
    routers = (
        alert_routes, changes, lifecycle, evidence_routes, control_routes, rule_types, auth,
        people, audit, page_settings, live_routes, pictures, fleet_routes, search, ops, pages,
    )  # fmt: skip
    for module in routers:
        app.include_router(module.router)
    app.include_router(ops.status_router)
    _document_body_limit(app)
    return app


def _document_body_limit(app: FastAPI) -> None:
    """Say in the OpenAPI document that every operation taking a body may answer 413: the
    body guard refuses an oversized one before any route sees it."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict) and "requestBody" in operation:
                        responses = operation.setdefault("responses", {})
                        responses.setdefault("413", {"description": "Body too large"})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
