"""Who is asking: the principal of a request, from its credentials.

In order:

1. ``X-API-Key: K`` or ``Authorization: Bearer K`` where K is the installation's API key
   (``ARGUS_API_KEY`` / ``$ARGUS_HOME/api-key``): an admin for every camera, as before
   users existed, so existing scripts keep working.
2. The same headers with a machine token (``argus_<id>_<secret>``): the token's role and
   groups, unless it is revoked or expired.
3. The ``argus_session`` cookie of a signed-in user: the user's role and groups, while the
   session lives and the user is enabled.  A state-changing request (not GET/HEAD/OPTIONS)
   made with the cookie must carry the session's CSRF token in ``X-CSRF-Token`` (the
   sign-in answer gives it, and the readable ``argus_csrf`` cookie holds it): a page of
   another site can make the browser send the cookie, never read the token.

No credential, or a wrong one: 401.  A credential whose role lacks the route's
permission: 403.  The principal is worked out once per request (``request.state``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import (
    APIKeyCookie,
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBearer,
)

from alerts.api.context import Ctx
from alerts.api.permissions import Need, Permission, Principal, open_access, principal_groups
from alerts.api.security import digest, parse_token, same_digest
from alerts.store import AuditEntry

logger = logging.getLogger("alerts.api")

SESSION_COOKIE = "argus_session"
CSRF_COOKIE = "argus_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_USE_AUDIT_S = 600.0
"""A machine token's use is written to the audit trail at most this often, seconds."""

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="argus"'}


def client_of(request: Request) -> str:
    """The client's address: the connection's, or ``X-Forwarded-For``'s when the connection
    comes from a proxy uvicorn trusts (its ``forwarded_allow_ips``, by default only
    127.0.0.1: a reverse proxy on this machine)."""
    return request.client.host if request.client else "unknown"


def _credential(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _unauthorized(ctx: Ctx, request: Request, why: str) -> HTTPException:
    ctx.rejections.note(why, request.scope)
    return HTTPException(status_code=401, detail=why, headers=_UNAUTHORIZED)


def _from_credential(request: Request, ctx: Ctx, credential: str) -> Principal:
    if same_digest(credential, ctx.api_key_digest):
        return Principal(name="api-key", kind="api_key", role="admin", groups=None)
    parsed = parse_token(credential)
    people = ctx.people
    found = people.get_token(parsed[0]) if parsed and people is not None else None
    if people is None or parsed is None or found is None or not same_digest(parsed[1], found[1]):
        raise _unauthorized(ctx, request, "missing or invalid API key or token")
    token, _ = found
    now = ctx.clock()
    if token.revoked_at is not None:
        raise _unauthorized(ctx, request, "token revoked")
    if token.expires_at is not None and token.expires_at.timestamp() <= now:
        raise _unauthorized(ctx, request, "token expired")
    people.touch_token(token.token_id, now=now)
    who = Principal(
        name=token.token_id,
        kind="token",
        role=token.role,
        groups=principal_groups(token.role, token.groups),
    )
    if ctx.token_use_due(token.token_id, time.monotonic(), TOKEN_USE_AUDIT_S):
        record(ctx, request, who, "token.use", "token", token.token_id, {"name": token.name})
    return who


def _from_session(request: Request, ctx: Ctx, cookie: str) -> Principal:
    if ctx.people is None:
        raise _unauthorized(ctx, request, "sign-in is not available here")
    session_hash = digest(cookie)
    session = ctx.people.get_session(session_hash, now=ctx.clock())
    user = None if session is None else ctx.people.get_user(session.user)
    if session is None or user is None or user.disabled:
        raise _unauthorized(ctx, request, "signed out or session expired: sign in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        if not sent or not same_digest(sent, session.csrf_hash):
            ctx.rejections.note("missing or wrong CSRF token", request.scope)
            raise HTTPException(
                status_code=403,
                detail=f"missing or wrong CSRF token: send the {CSRF_HEADER} header",
            )
    return Principal(
        name=user.name,
        kind="user",
        role=user.role,
        groups=principal_groups(user.role, user.groups),
        session_hash=session_hash,
    )


def authenticate(request: Request, ctx: Ctx) -> Principal:
    """The request's principal (once per request); 401 without a valid credential."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    credential = _credential(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if credential is not None:
        who = _from_credential(request, ctx, credential)
    elif cookie:
        who = _from_session(request, ctx, cookie)
    else:
        raise _unauthorized(ctx, request, "sign in, or send an API key or token")
    request.state.principal = who
    return who


def current_principal(request: Request, ctx: Ctx) -> Principal:
    """Dependency form of ``authenticate`` (for handlers that need to know who asks)."""
    return authenticate(request, ctx)


Who = Annotated[Principal, Depends(current_principal)]


# Declared for the OpenAPI document (Swagger's "Authorize"); ``authenticate`` reads the
# request itself, so each credential is checked once whatever declares it.
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The API key, or a machine token."
)
_BEARER = HTTPBearer(auto_error=False, description="The API key, or a machine token.")
_SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A signed-in session (POST /api/v1/auth/login); state-changing requests "
    f"also send its CSRF token as {CSRF_HEADER}.",
)
KeyHeader = Annotated[str | None, Security(_KEY_HEADER)]
BearerCredential = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
SessionCookie = Annotated[str | None, Security(_SESSION)]


class Require:
    """The dependency ``needs(permission)`` installs: authenticated, and allowed."""

    def __init__(self, need: Need) -> None:
        self.need = need

    def __call__(
        self,
        request: Request,
        ctx: Ctx,
        _key: KeyHeader = None,
        _bearer: BearerCredential = None,
        _session: SessionCookie = None,
    ) -> Principal:
        who = authenticate(request, ctx)
        if not who.can(self.need.permission):
            ctx.rejections.note(f"{who.role} lacks {self.need.permission.value}", request.scope)
            raise HTTPException(
                status_code=403,
                detail=f"a {who.role} may not do this (needs {self.need.permission.value})",
            )
        return who

    def __repr__(self) -> str:
        return f"Require({self.need!r})"


def require(need: Need) -> Require:
    """The dependency checking ``need`` (see ``alerts.api.permissions.needs``)."""
    return Require(need)


def record(
    ctx: Ctx,
    request: Request | None,
    who: Principal | None,
    action: str,
    target_kind: str | None = None,
    target_id: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> None:
    """Append an audit entry (no-op when the store keeps no audit trail)."""
    if ctx.audit is None:
        return
    ctx.audit.append_audit(
        audit_entry(ctx, request, who, action, target_kind, target_id, detail, actor=actor)
    )


def audit_entry(
    ctx: Ctx,
    request: Request | None,
    who: Principal | None,
    action: str,
    target_kind: str | None = None,
    target_id: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    """The audit entry of ``who`` doing ``action`` now (``actor`` overrides the name:
    the user name a failed sign-in tried)."""
    return AuditEntry(
        at=datetime.fromtimestamp(ctx.clock(), UTC),
        actor=(actor if actor is not None else who.name if who else "anonymous")[:200],
        actor_kind=who.kind if who else "anonymous",
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        client=client_of(request) if request is not None else None,
        detail=detail or {},
    )


def needs(permission: Permission) -> Any:
    """``dependencies=[needs(Permission.X)]``: the request's principal must hold X (401
    when nobody is signed in, 403 when the role lacks it)."""
    return Depends(Require(Need(permission)))


OPEN: Any = Depends(open_access)
"""``dependencies=[OPEN]``: a route anyone may use, signed in or not."""
