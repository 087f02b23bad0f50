"""Sign-in: ``POST /api/v1/auth/login`` (open), ``/logout``, ``GET /me``, ``POST /password``.

A sign-in answers the same, in the same time, whether the user exists or not (a wrong
name and a wrong password are one "wrong user name or password"), and is throttled per
user name and client address (429 with ``Retry-After``).  Every sign-in and failed
sign-in is audited; no password, hash or session id is ever logged or answered.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response

from alerts.api.auth import (
    CSRF_COOKIE,
    OPEN,
    SESSION_COOKIE,
    Who,
    client_of,
    needs,
    record,
)
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.errors import SafeJSONResponse
from alerts.api.models import unprocessable
from alerts.api.people_models import LoginRequest, Me, PasswordChange
from alerts.api.permissions import ROLE_PERMISSIONS, Permission, Principal, principal_groups
from alerts.api.security import digest, new_secret, password_problem
from alerts.metrics import SIGN_IN_FAILURES
from ingest.redact import escape_controls

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
WRONG = "wrong user name or password"


def me_of(who: Principal) -> Me:
    """What ``GET /auth/me`` says of ``who``."""
    return Me(
        name=who.name,
        kind=who.kind,
        role=who.role,
        groups=None if who.groups is None else sorted(who.groups),
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[who.role]),
    )


def _secure(ctx: ApiContext, request: Request) -> bool:
    return ctx.secure_cookies if ctx.secure_cookies is not None else request.url.scheme == "https"


@router.post(
    "/login",
    response_model=Me,
    dependencies=[OPEN],
    responses={
        401: {"description": "Wrong user name or password (the same for both)"},
        429: {"description": "Too many failed sign-ins from here: wait Retry-After s"},
        503: {"description": "This service keeps no users (sign in with a key)"},
    },
)
def login(ctx: Ctx, request: Request, body: LoginRequest) -> Response:
    """Sign in: sets the HttpOnly session cookie and answers the CSRF token to send."""
    people = ctx.people
    if people is None:
        raise HTTPException(status_code=503, detail="sign-in is not available here")
    client = client_of(request)
    wait = ctx.throttle.retry_after(body.username, client)
    if wait > 0:
        ctx.rejections.note("sign-in throttled", request.scope)
        SIGN_IN_FAILURES.labels("throttled").inc()
        raise HTTPException(
            status_code=429,
            detail="too many failed sign-ins: try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = people.get_user(body.username)
    stored = people.password_hash(body.username) if user is not None else None
    ok = ctx.passwords.verify(stored, body.password)  # the same cost without a user
    if not ok or user is None or user.disabled:
        ctx.throttle.failed(body.username, client)
        # The name tried goes to the trail only when such a user exists: people type their
        # password into the name field, and supervisors read the trail.
        record(
            ctx,
            request,
            None,
            "auth.login_failed",
            "user",
            user.name if user is not None else None,
            {"reason": "disabled" if ok and user is not None else "wrong name or password"},
            actor=user.name if user is not None else "(unknown user)",
        )
        ctx.rejections.note("sign-in failed", request.scope)
        SIGN_IN_FAILURES.labels("disabled" if ok and user is not None else "wrong_password").inc()
        raise HTTPException(status_code=401, detail=WRONG)
    ctx.throttle.succeeded(body.username, client)
    earlier = request.cookies.get(SESSION_COOKIE)
    if earlier:  # signing in again ends the session this browser had
        people.delete_session(digest(earlier))
    session_id, csrf = new_secret(), new_secret()
    now = ctx.clock()
    session = people.create_session(
        digest(session_id),
        user=user.name,
        csrf_hash=digest(csrf),
        now=now,
        lifetime_s=ctx.session_lifetime_s,
        idle_s=ctx.session_idle_s,
        client=client,
    )
    who = Principal(user.name, "user", user.role, principal_groups(user.role, user.groups))
    record(ctx, request, who, "auth.login", "user", user.name)
    logger.info("%s signed in from %s", escape_controls(user.name), client)
    me = me_of(who).model_copy(update={"csrf_token": csrf, "expires_at": session.expires_at})
    response = SafeJSONResponse(me.model_dump(mode="json"))
    secure = _secure(ctx, request)
    max_age = int(ctx.session_lifetime_s)
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite="strict",
        secure=secure, path="/",
    )  # fmt: skip
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict",
        secure=secure, path="/",
    )  # fmt: skip
    return response


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    dependencies=[needs(Permission.SIGNED_IN)],
    responses=UNAUTHORIZED,
)
def logout(ctx: Ctx, request: Request, who: Who) -> Response:
    """Sign out: the session ends here and now (a key or token: nothing to end)."""
    if who.session_hash is not None and ctx.people is not None:
        ctx.people.delete_session(who.session_hash)
        record(ctx, request, who, "auth.logout", "user", who.name)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get(
    "/me", response_model=Me, dependencies=[needs(Permission.SIGNED_IN)], responses=UNAUTHORIZED
)
def me(who: Who) -> Me:
    """Who is signed in, their role, groups and permissions."""
    return me_of(who)


@router.post(
    "/password",
    status_code=204,
    response_class=Response,
    dependencies=[needs(Permission.SIGNED_IN)],
    responses={
        **UNAUTHORIZED,
        422: {"description": "Wrong current password, or too short"},
        429: {"description": "Too many wrong passwords: wait Retry-After s"},
    },
)
def change_password(ctx: Ctx, request: Request, who: Who, body: PasswordChange) -> Response:
    """A signed-in user changes their own password; their other sessions end."""
    people = ctx.people
    if who.kind != "user" or people is None:
        raise HTTPException(status_code=403, detail="only a signed-in user has a password")
    client = client_of(request)
    wait = ctx.throttle.retry_after(who.name, client)  # guessing through a live session
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail="too many wrong passwords: try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    if not ctx.passwords.verify(people.password_hash(who.name), body.current_password):
        ctx.throttle.failed(who.name, client)
        record(ctx, request, who, "user.password_failed", "user", who.name)
        raise unprocessable(
            ["body", "current_password"], "the current password is wrong", "wrong_password"
        )
    problem = password_problem(body.new_password)
    if problem:
        raise unprocessable(["body", "new_password"], problem, "weak_password")
    people.update_user(
        who.name, now=ctx.clock(), password_hash=ctx.passwords.hash(body.new_password)
    )
    record(ctx, request, who, "user.password", "user", who.name, {"by": "self"})
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
