"""Users and machine tokens, for admins: ``/api/v1/users``, ``/api/v1/tokens``.

Every change is audited; answers never carry a password or hash, and a token's secret
only in the answer that creates it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response

from alerts.api.auth import Who, needs, record
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.models import unprocessable
from alerts.api.people_models import (
    USER_NAME_PATTERN,
    PasswordSet,
    TokenCreate,
    TokenCreated,
    UserCreate,
    UserPatch,
)
from alerts.api.permissions import Permission
from alerts.api.security import digest, new_token, password_problem
from alerts.store import PeopleStore, Token, User, UserExistsError, UserNotFoundError

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["people"])
USERS = [needs(Permission.USERS_MANAGE)]
TOKENS = [needs(Permission.TOKENS_MANAGE)]
NameInPath = Annotated[str, Path(pattern=USER_NAME_PATTERN, description="User name.")]
TokenIdPath = Annotated[str, Path(pattern=r"^[a-z2-9]{12}$", description="Token id.")]
NO_USER: dict[int | str, dict[str, Any]] = {404: {"description": "No such user"}}


def _people(ctx: ApiContext) -> PeopleStore:
    if ctx.people is None:
        raise HTTPException(status_code=503, detail="this service keeps no users")
    return ctx.people


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise unprocessable(["body", "password"], problem, "weak_password")


@router.get("/users", response_model=list[User], dependencies=USERS, responses=UNAUTHORIZED)
def list_users(ctx: Ctx) -> list[User]:
    """Every user, by name."""
    return _people(ctx).list_users()


@router.post(
    "/users",
    response_model=User,
    status_code=201,
    dependencies=USERS,
    responses={**UNAUTHORIZED, 409: {"description": "A user of that name exists"}},
)
def create_user(ctx: Ctx, request: Request, who: Who, body: UserCreate) -> User:
    """Create a user with a role, camera groups and an initial password."""
    _check_password(body.password)
    try:
        user = _people(ctx).add_user(
            body.name,
            role=body.role,
            groups=body.groups,
            password_hash=ctx.passwords.hash(body.password),
            now=ctx.clock(),
        )
    except UserExistsError as e:
        raise HTTPException(status_code=409, detail=str(e)) from e
    record(ctx, request, who, "user.create", "user", user.name, _facts(user))
    return user


@router.patch(
    "/users/{name}",
    response_model=User,
    dependencies=USERS,
    responses={**UNAUTHORIZED, **NO_USER},
)
def update_user(ctx: Ctx, request: Request, who: Who, name: NameInPath, body: UserPatch) -> User:
    """Change a user's role, groups or whether they may sign in (disabling ends their
    sessions)."""
    try:
        user = _people(ctx).update_user(
            name, now=ctx.clock(), role=body.role, groups=body.groups, disabled=body.disabled
        )
    except UserNotFoundError as e:
        raise HTTPException(status_code=404, detail="no such user") from e
    changed = body.model_dump(exclude_none=True)
    record(ctx, request, who, "user.update", "user", user.name, _strings(changed))
    return user


@router.post(
    "/users/{name}/password",
    status_code=204,
    response_class=Response,
    dependencies=USERS,
    responses={**UNAUTHORIZED, **NO_USER},
)
def reset_password(
    ctx: Ctx, request: Request, who: Who, name: NameInPath, body: PasswordSet
) -> Response:
    """Set a user's password (their sessions end)."""
    _check_password(body.password)
    try:
        _people(ctx).update_user(
            name, now=ctx.clock(), password_hash=ctx.passwords.hash(body.password)
        )
    except UserNotFoundError as e:
        raise HTTPException(status_code=404, detail="no such user") from e
    record(ctx, request, who, "user.password", "user", name, {"by": "admin"})
    return Response(status_code=204)


@router.get("/tokens", response_model=list[Token], dependencies=TOKENS, responses=UNAUTHORIZED)
def list_tokens(ctx: Ctx) -> list[Token]:
    """Every machine token, newest first (never their secrets)."""
    return _people(ctx).list_tokens()


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    dependencies=TOKENS,
    responses=UNAUTHORIZED,
)
def create_token(ctx: Ctx, request: Request, who: Who, body: TokenCreate) -> TokenCreated:
    """Create a machine token for an integration: a role within camera groups.  The token
    is in this answer only; the service keeps a hash of it."""
    token_id, secret, token = new_token()
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    expires = None if body.expires_in_s is None else now + timedelta(seconds=body.expires_in_s)
    stored = _people(ctx).create_token(
        Token(
            token_id=token_id,
            name=body.name,
            role=body.role,
            groups=list(body.groups),
            created_by=who.name,
            created_at=now,
            expires_at=expires,
        ),
        secret_hash=digest(secret),
    )
    record(ctx, request, who, "token.create", "token", token_id, _facts(stored))
    return TokenCreated(
        token=token,
        token_id=token_id,
        name=stored.name,
        role=stored.role,
        groups=stored.groups,
        expires_at=stored.expires_at,
    )


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    dependencies=TOKENS,
    responses={**UNAUTHORIZED, 404: {"description": "No such token"}},
)
def revoke_token(ctx: Ctx, request: Request, who: Who, token_id: TokenIdPath) -> Response:
    """Revoke a token: from now on it is refused (401)."""
    if _people(ctx).revoke_token(token_id, now=ctx.clock()) is None:
        raise HTTPException(status_code=404, detail="no such token")
    record(ctx, request, who, "token.revoke", "token", token_id)
    return Response(status_code=204)


def _facts(item: User | Token) -> dict[str, str | list[str]]:
    return {"role": item.role, "groups": list(item.groups)}


def _strings(values: dict[str, object]) -> dict[str, str | list[str]]:
    return {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in values.items()}
