"""Request and response bodies of sign-in, users and machine tokens.

No answer ever carries a password, a hash, a session id or a token secret, except the
one answer that creates a token (``TokenCreated``), which shows it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from alerts.api.models import ACTOR_PATTERN, _Request, json_int
from alerts.api.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from alerts.store import Role

USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
"""A user name: letters, digits and ``_ . @ -``, 1-64 characters."""
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""A camera group name (as ``cameras[].groups`` in the config)."""
MAX_GROUPS = 100

UserName = Annotated[str, Field(pattern=USER_NAME_PATTERN, description="User name.")]
Group = Annotated[str, Field(pattern=GROUP_PATTERN)]
Password = Annotated[
    str, Field(min_length=1, max_length=1024, description="Password (never stored or shown).")
]
NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"A new password: at least {MIN_PASSWORD_LENGTH} characters.",
    ),
]


class LoginRequest(_Request):
    """Body of ``POST /auth/login``."""

    username: str = Field(min_length=1, max_length=200, pattern=ACTOR_PATTERN)
    password: Password


class Me(BaseModel):
    """Who is signed in (``GET /auth/me``, and the answer of a sign-in)."""

    name: str = Field(description="User name, token id, or 'api-key'.")
    kind: str = Field(description="user, token or api_key.")
    role: Role
    groups: list[str] | None = Field(description="Camera groups; null: every camera.")
    permissions: list[str] = Field(description="What this role may do.")
    csrf_token: str | None = Field(
        None,
        description="Send it as X-CSRF-Token with every state-changing request made with "
        "the session cookie (only in the sign-in answer; also in the argus_csrf cookie).",
    )
    expires_at: datetime | None = Field(None, description="The session's absolute end.")


class PasswordChange(_Request):
    """Body of ``POST /auth/password``: a signed-in user changes their own password."""

    current_password: Password
    new_password: NewPassword


class UserCreate(_Request):
    """Body of ``POST /users``."""

    name: UserName
    role: Role
    groups: list[Group] = Field(default_factory=lambda: ["default"], max_length=MAX_GROUPS)
    password: NewPassword


class UserPatch(_Request):
    """Body of ``PATCH /users/{name}``: what is given changes."""

    role: Role | None = None
    groups: list[Group] | None = Field(None, max_length=MAX_GROUPS)
    disabled: bool | None = Field(None, description="true: cannot sign in; sessions end.")


class PasswordSet(_Request):
    """Body of ``POST /users/{name}/password`` (an admin resets a password)."""

    password: NewPassword


class TokenCreate(_Request):
    """Body of ``POST /tokens``."""

    name: str = Field(min_length=1, max_length=100, pattern=ACTOR_PATTERN)
    role: Role
    groups: list[Group] = Field(default_factory=lambda: ["default"], max_length=MAX_GROUPS)
    expires_in_s: json_int(ge=60, le=5 * 365 * 86400) | None = Field(  # type: ignore[valid-type]
        None, description="Lifetime, seconds (60 s to 5 years); null: until revoked."
    )


class TokenCreated(BaseModel):
    """The answer of ``POST /tokens``: the token itself, shown this once."""

    token: str = Field(description="Send as 'Authorization: Bearer <token>'. Shown once.")
    token_id: str
    name: str
    role: Role
    groups: list[str]
    expires_at: datetime | None
