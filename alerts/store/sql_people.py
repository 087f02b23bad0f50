"""People in ``SqliteAlertStore`` (``PeopleStore``): users, their browser sessions and
machine tokens.  Only hashes of passwords, session ids and token secrets are stored.

User names are unique case-insensitively (``COLLATE NOCASE``: ASCII letters) and stored
as first given; every lookup ignores case.  A session belongs to its user's row: it ends
with it (foreign key, ``ON DELETE CASCADE``), when the user is disabled or their password
changes (same transaction), at its absolute end and after ``idle_timeout_s`` without use.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from typing import Any

from alerts.store.models import (
    ROLES,
    Role,
    Session,
    Token,
    User,
    UserExistsError,
    UserNotFoundError,
)
from alerts.store.sql_common import (
    Row,
    StoreParts,
    db_errors,
    names_json,
    parse_names,
    ts,
    utc,
    write_transaction,
)

logger = logging.getLogger("alerts.store")

_USER_COLUMNS = "name, role, groups, disabled, created_at, updated_at, password_changed_at"
_SESSION_COLUMNS = '"user", csrf_hash, created_at, expires_at, last_seen_at, idle_timeout_s, client'
_TOKEN_COLUMNS = (
    "token_id, name, role, groups, secret_hash, created_by, created_at, expires_at, "
    "revoked_at, last_used_at"
)
TOUCH_EVERY_S = 60.0
"""``last_seen_at`` / ``last_used_at`` are written at most this often (s)."""


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")


def _row_to_user(row: Row) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        groups=parse_names(row["groups"]),
        disabled=bool(row["disabled"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        password_changed_at=ts(row["password_changed_at"]),
    )


def _row_to_session(row: Row, last_seen_at: float) -> Session:
    return Session(
        user=row["user"],
        created_at=utc(row["created_at"]),
        expires_at=utc(row["expires_at"]),
        last_seen_at=utc(last_seen_at),
        idle_timeout_s=row["idle_timeout_s"],
        client=row["client"],
        csrf_hash=row["csrf_hash"],
    )


def _row_to_token(row: Row) -> Token:
    return Token(
        token_id=row["token_id"],
        name=row["name"],
        role=row["role"],
        groups=parse_names(row["groups"]),
        created_by=row["created_by"],
        created_at=utc(row["created_at"]),
        expires_at=ts(row["expires_at"]),
        revoked_at=ts(row["revoked_at"]),
        last_used_at=ts(row["last_used_at"]),
    )


class PeopleMixin(StoreParts):
    """Users, sessions and tokens (``PeopleStore``)."""

    # -- users -------------------------------------------------------------------

    def add_user(
        self, name: str, *, role: Role, groups: Sequence[str], password_hash: str, now: float
    ) -> User:
        """Create a user (enabled; ``password_changed_at`` null until a change).

        Raises:
            UserExistsError: A user of that name exists, in any case.
            ValueError / TypeError: Unknown role; ``groups`` not a list of names.
        """
        _check_role(role)
        groups_json = names_json(groups, "groups")
        with self._lock, db_errors(f"cannot add user {name!r}", self.path):
            added = self._conn.execute(
                "INSERT INTO users (name, role, groups, password_hash, disabled, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, role, groups_json, password_hash, now, now),
            ).rowcount
            if not added:
                raise UserExistsError(name)
            row = self._conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)
            ).fetchone()
        logger.info("user %r added (%s)", name, role)
        return _row_to_user(row)

    def get_user(self, name: str) -> User | None:
        """The user ``name`` (any case), or ``None``."""
        with self._lock, db_errors(f"cannot read user {name!r}", self.path):
            row = self._conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _row_to_user(row)

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of ``name`` (any case), or ``None``."""
        with self._lock, db_errors(f"cannot read user {name!r}", self.path):
            row = self._conn.execute(
                "SELECT password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row["password_hash"])

    def list_users(self) -> builtins.list[User]:
        """Every user, by name (ignoring case)."""
        with self._lock, db_errors("cannot list users", self.path):
            rows = self._conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_row_to_user(r) for r in rows]

    def update_user(
        self,
        name: str,
        *,
        now: float,
        role: Role | None = None,
        groups: Sequence[str] | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> User:
        """Change what is given (``None``: unchanged); ``updated_at`` becomes ``now``.

        Disabling the user or giving a new ``password_hash`` (``password_changed_at``
        becomes ``now``) deletes their sessions in the same transaction.

        Raises:
            UserNotFoundError: No such user.
            ValueError / TypeError: Unknown role; ``groups`` not a list of names.
        """
        sets: dict[str, Any] = {"updated_at": now}
        if role is not None:
            _check_role(role)
            sets["role"] = role
        if groups is not None:
            sets["groups"] = names_json(groups, "groups")
        if disabled is not None:
            sets["disabled"] = int(disabled)
        if password_hash is not None:
            sets["password_hash"] = password_hash
            sets["password_changed_at"] = now
        assignments = ", ".join(f"{column} = ?" for column in sets)  # names from this code
        ends_sessions = bool(disabled) or password_hash is not None
        with (
            self._lock,
            db_errors(f"cannot update user {name!r}", self.path),
            write_transaction(self._conn) as conn,
        ):
            changed = conn.execute(
                f"UPDATE users SET {assignments} WHERE name = ?", (*sets.values(), name)
            ).rowcount
            if not changed:
                raise UserNotFoundError(name)
            ended = (
                conn.execute('DELETE FROM sessions WHERE "user" = ?', (name,)).rowcount
                if ends_sessions
                else 0
            )
            row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
            user = _row_to_user(row.fetchone())
        changes = sorted(set(sets) - {"updated_at", "password_hash"})
        logger.info("user %r updated (%s); sessions ended: %d", user.name, changes, ended)
        return user

    # -- sessions ----------------------------------------------------------------

    def create_session(
        self,
        session_hash: str,
        *,
        user: str,
        csrf_hash: str,
        now: float,
        lifetime_s: float,
        idle_s: float,
        client: str | None,
    ) -> Session:
        """Store a new session of ``user`` (any case; stored as the user's name) that ends
        at ``now + lifetime_s``, or after ``idle_s`` without use.

        Raises:
            UserNotFoundError: No such user.
        """
        with (
            self._lock,
            db_errors(f"cannot create a session of {user!r}", self.path),
            write_transaction(self._conn) as conn,
        ):
            found = conn.execute("SELECT name FROM users WHERE name = ?", (user,)).fetchone()
            if found is None:
                raise UserNotFoundError(user)
            conn.execute(
                f"INSERT INTO sessions (session_hash, {_SESSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_hash,
                    found["name"],
                    csrf_hash,
                    now,
                    now + lifetime_s,
                    now,
                    idle_s,
                    client,
                ),
            )
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_hash = ?", (session_hash,)
            ).fetchone()
        return _row_to_session(row, now)

    def get_session(self, session_hash: str, *, now: float, touch: bool = True) -> Session | None:
        """The live session of that id hash, or ``None``: unknown, ``now`` at or past its
        absolute end, idle for ``idle_timeout_s`` or more (an expired session is deleted),
        or its user disabled.  A use (unless ``touch`` is false: a check that is not the
        person's doing): ``last_seen_at`` moves to ``now`` when it is ``TOUCH_EVERY_S`` or
        more behind (so at most one write a minute per session)."""
        with self._lock, db_errors("cannot read a session", self.path):
            row = self._conn.execute(
                f"SELECT {_SESSION_COLUMNS}, "
                '(SELECT disabled FROM users WHERE name = sessions."user") AS disabled '
                "FROM sessions WHERE session_hash = ?",
                (session_hash,),
            ).fetchone()
            if row is None or row["disabled"] is None or row["disabled"]:
                return None  # unknown; its user gone (foreign keys off) or disabled
            last_seen = float(row["last_seen_at"])
            if now >= row["expires_at"] or now - last_seen >= row["idle_timeout_s"]:
                self._conn.execute("DELETE FROM sessions WHERE session_hash = ?", (session_hash,))
                return None
            if touch and now - last_seen >= TOUCH_EVERY_S:
                self._conn.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE session_hash = ?",
                    (now, session_hash),
                )
                last_seen = now
        return _row_to_session(row, last_seen)

    def delete_session(self, session_hash: str) -> bool:
        """End one session (sign-out); whether it existed."""
        with self._lock, db_errors("cannot delete a session", self.path):
            deleted = self._conn.execute(
                "DELETE FROM sessions WHERE session_hash = ?", (session_hash,)
            ).rowcount
        return bool(deleted)

    def delete_sessions_of(self, user: str) -> int:
        """End every session of ``user`` (any case); how many."""
        with self._lock, db_errors(f"cannot delete the sessions of {user!r}", self.path):
            deleted = self._conn.execute('DELETE FROM sessions WHERE "user" = ?', (user,)).rowcount
        return int(deleted)

    def delete_expired_sessions(self, *, now: float) -> int:
        """Delete the sessions past their absolute end or idle too long at ``now`` (sessions
        nobody uses again are otherwise kept); how many.  Not part of ``PeopleStore``."""
        with self._lock, db_errors("cannot delete expired sessions", self.path):
            deleted = self._conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR ? - last_seen_at >= idle_timeout_s",
                (now, now),
            ).rowcount
        return int(deleted)

    # -- tokens ------------------------------------------------------------------

    def create_token(self, token: Token, *, secret_hash: str) -> Token:
        """Store a new token with the hash of its secret.

        Raises:
            ValueError: A token with that ``token_id`` exists, or an unknown role.
        """
        t = token
        _check_role(t.role)
        row = (
            t.token_id,
            t.name,
            t.role,
            names_json(t.groups, "groups"),
            secret_hash,
            t.created_by,
            t.created_at.timestamp(),
            None if t.expires_at is None else t.expires_at.timestamp(),
            None if t.revoked_at is None else t.revoked_at.timestamp(),
            None if t.last_used_at is None else t.last_used_at.timestamp(),
        )
        with self._lock, db_errors(f"cannot store token {t.token_id}", self.path):
            added = self._conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (token_id) DO NOTHING",
                row,
            ).rowcount
            if not added:
                raise ValueError(f"token {t.token_id} exists already")
            stored = self._conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_id = ?", (t.token_id,)
            ).fetchone()
        logger.info("token %s (%r, %s) created by %r", t.token_id, t.name, t.role, t.created_by)
        return _row_to_token(stored)

    def get_token(self, token_id: str) -> tuple[Token, str] | None:
        """``(token, secret_hash)``, revoked or expired or not, or ``None``."""
        with self._lock, db_errors(f"cannot read token {token_id}", self.path):
            row = self._conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
        return None if row is None else (_row_to_token(row), str(row["secret_hash"]))

    def list_tokens(self) -> builtins.list[Token]:
        """Every token, newest first (then by id); no secrets."""
        with self._lock, db_errors("cannot list tokens", self.path):
            rows = self._conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at DESC, token_id"
            ).fetchall()
        return [_row_to_token(r) for r in rows]

    def revoke_token(self, token_id: str, *, now: float) -> Token | None:
        """Revoke at ``now`` (again: the first revocation time stays); ``None`` if unknown."""
        with self._lock, db_errors(f"cannot revoke token {token_id}", self.path):
            rows = self._conn.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE token_id = ? "
                f"RETURNING {_TOKEN_COLUMNS}",
                (now, token_id),
            ).fetchall()  # all: the statement completes (and commits) before the lock goes
        if not rows:
            return None
        logger.info("token %s revoked", token_id)
        return _row_to_token(rows[0])

    def touch_token(self, token_id: str, *, now: float) -> None:
        """Record a use at ``now`` (written only when ``last_used_at`` is null or
        ``TOUCH_EVERY_S`` or more behind)."""
        with self._lock, db_errors(f"cannot record a use of token {token_id}", self.path):
            self._conn.execute(
                "UPDATE tokens SET last_used_at = ? WHERE token_id = ? "
                "AND (last_used_at IS NULL OR ? - last_used_at >= ?)",
                (now, token_id, now, TOUCH_EVERY_S),
            )
