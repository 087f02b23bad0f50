"""What the routes share: the stores, the control channel and the settings of one app.

``create_app`` builds one ``ApiContext`` and keeps it in ``app.state.argus``; routes take
it with the ``Ctx`` dependency, and every ``/api/v1`` router depends on ``require_key``.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from alerts.api.errors import RejectionLog
from alerts.control import ControlPublisher, ControlPublishError, ControlValue
from alerts.evidence import EvidenceStore
from alerts.store import AlertStore, ControlStore

logger = logging.getLogger("alerts.api")

HealthFn = Callable[[], dict[str, Any]]
RulesValidator = Callable[[list[dict[str, Any]]], list[str]]
"""Returns the problems of a rule set (empty: valid), e.g. unknown types or classes."""


@dataclass
class ApiContext:
    """Everything a route needs; one per app (see ``create_app`` for the fields' meaning)."""

    store: AlertStore
    evidence: EvidenceStore
    api_key: bytes
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

_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The Argus API key.")
_BEARER = HTTPBearer(auto_error=False, description="The Argus API key as a bearer token.")
HeaderKey = Annotated[str | None, Security(_KEY_HEADER)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def require_key(request: Request, ctx: Ctx, header_key: HeaderKey, bearer_cred: BearerKey) -> None:
    """Let the request through only with the API key (compared in constant time), else 401.

    The key is never logged or echoed; rejections are logged through ``ctx.rejections``.
    """
    presented = [header_key, bearer_cred.credentials if bearer_cred else None]
    ok = False
    for candidate in presented:
        if candidate is not None:
            ok |= hmac.compare_digest(candidate.encode("utf-8", "replace"), ctx.api_key)
    if not ok:
        why = "invalid" if any(c is not None for c in presented) else "missing"
        ctx.rejections.note(f"{why} API key", request.scope)
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key",
            headers={"WWW-Authenticate": 'Bearer realm="argus"'},
        )


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Missing or bad key"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such alert"}}
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"description": "Body too large"}}
UNCONFIGURED: dict[int | str, dict[str, Any]] = {
    503: {"description": "Control plane not configured, channel or store unavailable"}
}
