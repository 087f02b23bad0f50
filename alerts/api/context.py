"""What the routes share: the stores, the control channel and the settings of one app.

``create_app`` builds one ``ApiContext`` and keeps it in ``app.state.argus``; routes take
it with the ``Ctx`` dependency; who may call what is ``alerts.api.auth``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from alerts.api.errors import RejectionLog
from alerts.api.fleet_admin import FleetAdmin
from alerts.api.permissions import CameraGroups
from alerts.api.security import Passwords, SignInThrottle
from alerts.control import ControlPublisher, ControlPublishError, ControlValue
from alerts.evidence import EvidenceStore
from alerts.live import LiveBoard
from alerts.store import AlertStore, AuditStore, ControlStore, LifecycleStore, PeopleStore

logger = logging.getLogger("alerts.api")

HealthFn = Callable[[], dict[str, Any]]
RulesValidator = Callable[[list[dict[str, Any]]], list[str]]
"""Returns the problems of a rule set (empty: valid), e.g. unknown types or classes."""


@dataclass
class ApiContext:
    """Everything a route needs; one per app (see ``create_app`` for the fields' meaning)."""

    store: AlertStore
    evidence: EvidenceStore
    api_key_digest: str
    """SHA-256 of the installation's API key (an admin token for every camera)."""
    version: str
    health: HealthFn | None = None
    components: HealthFn | None = None
    control: ControlPublisher | None = None
    control_store: ControlStore | None = None
    validate_rules: RulesValidator | None = None
    base_rules: list[dict[str, Any]] | None = None
    snapshot_url_expiry_s: int = 300
    clock: Callable[[], float] = time.time
    rejections: RejectionLog = field(default_factory=RejectionLog)
    control_lock: threading.Lock = field(default_factory=threading.Lock)
    """Serialises control changes within the process (read, publish, store)."""
    people: PeopleStore | None = None
    """Users, sessions and tokens (the store, when it keeps them)."""
    audit: AuditStore | None = None
    """The audit trail (the store, when it keeps one)."""
    lifecycle: LifecycleStore | None = None
    """Claims, escalations, closes (the store, when it keeps the lifecycle)."""
    cameras: CameraGroups = field(default_factory=CameraGroups)
    camera_zones: dict[str, list[str]] = field(default_factory=dict)
    """Each camera's zone names (the search page's zone filter)."""
    search_classes: tuple[str, ...] = ()
    """Classes a search may name (empty: the 80 COCO classes)."""
    passwords: Passwords = field(default_factory=Passwords)
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    session_lifetime_s: float = 12 * 3600.0
    session_idle_s: float = 1800.0
    secure_cookies: bool | None = None
    """Mark cookies Secure: ``True``/``False``, or ``None``: when the request is HTTPS."""
    live: LiveBoard | None = None
    fleet: FleetAdmin | None = None
    """The fleet's camera definitions (``None``: cameras come from the config file)."""
    """Camera statuses and live pictures from the workers (None: none report here)."""
    wall_cache: object | None = None
    """The wall streams' shared answers of the store (``routes.live``)."""
    page_settings: dict[str, Any] = field(default_factory=dict)
    """What the operators' page is told (``alerts.api.app.PageSettings`` as a dict)."""
    _token_uses: dict[str, float] = field(default_factory=dict)

    def token_use_due(self, token_id: str, now: float, every_s: float) -> bool:
        """Whether a use of ``token_id`` at monotonic ``now`` should be audited (at most
        once per ``every_s`` per token and process)."""
        last = self._token_uses.get(token_id)
        if last is not None and now - last < every_s:
            return False
        self._token_uses[token_id] = now
        return True

    # -- control plane ----------------------------------------------------------------

    def control_parts(self) -> tuple[ControlStore, ControlPublisher]:
        """The control store and channel; 503 when the control plane is not configured."""
        if self.control is None or self.control_store is None:
            raise HTTPException(
                status_code=503,
                detail="control plane not configured (rules and suppressions are disabled)",
            )
        return self.control_store, self.control

    def publish(self, key: str, value: ControlValue) -> None:
        """Publish one control change; 503 (nothing applied) when the channel refuses it."""
        _, channel = self.control_parts()
        try:
            channel.publish(key, value)
        except ControlPublishError as e:
            logger.warning("control change %s refused: %s", key, e.reason)
            raise HTTPException(
                status_code=503,
                detail="control channel unavailable: the change was not applied; retry later",
            ) from e

    def compensate(self, key: str, value: ControlValue) -> None:
        """After a store failure: publish the previous value again (best effort)."""
        try:
            self.control_parts()[1].publish(key, value)
        except Exception as e:  # the store error is what gets reported
            logger.error(
                "control %s published but not stored, and the previous value could not be "
                "published again (%s): workers disagree with the store until the next "
                "change of this key or republish_state",
                key,
                type(e).__name__,
            )


def get_context(request: Request) -> ApiContext:
    """The app's ``ApiContext`` (a FastAPI dependency)."""
    ctx = request.app.state.argus
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in, or a wrong key or token"},
    403: {"description": "Signed in, but the role may not do this (or no CSRF token)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such alert"}}
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"description": "Body too large"}}
UNCONFIGURED: dict[int | str, dict[str, Any]] = {
    503: {"description": "Control plane not configured, channel or store unavailable"}
}
