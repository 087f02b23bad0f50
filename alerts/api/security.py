"""Secrets of the API: password hashes, session ids, CSRF and machine tokens, and the
throttle of failed sign-ins.

* Passwords are hashed with Argon2id (``argon2-cffi``, RFC 9106 parameters by default).
  Checking a password for a user that does not exist costs the same as for one that does
  (a dummy hash is verified), so the answer's timing tells nothing.
* Session ids, CSRF tokens and token secrets are 256-bit random strings; the store keeps
  only their SHA-256, so a copy of the database lets nobody in.
* Machine tokens read ``argus_<token_id>_<secret>``: the id names the token in lists and
  the audit trail, the secret is shown once.
* ``SignInThrottle`` slows down guessing: per user name *and* client address (so nobody
  can lock an operator out from another machine), and per client address across names
  (so one machine cannot try every name).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "argus_"
_TOKEN_RE = re.compile(r"argus_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def new_secret() -> str:
    """A 256-bit random URL-safe string (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 of ``secret``, hex: what the store keeps of a session id, CSRF or token."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def same_digest(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time."""
    return hmac.compare_digest(digest(secret), stored)


def new_token() -> tuple[str, str, str]:
    """A machine token: ``(token_id, secret, token)`` with ``token`` what the client sends."""
    token_id = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))
    secret = new_secret()
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a machine token, or ``None`` when it is not one."""
    m = _TOKEN_RE.fullmatch(text)
    return None if m is None else (m.group(1), m.group(2))


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or ``None``: at least 10 characters, at most 1024."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    return None


class Passwords:
    """Argon2id hashing and checking of passwords.

    Args:
        hasher: The ``argon2.PasswordHasher`` (default: RFC 9106 low-memory parameters,
            ~0.1 s per hash on a 2-core server); tests pass a cheap one.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(new_secret())

    def hash(self, password: str) -> str:
        """The hash to store."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; ``None`` (no such user) costs the same
        and is ``False``."""
        try:
            ok = self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored is not None


@dataclass
class _Window:
    failures: int = 0
    first_at: float = 0.0
    blocked_until: float = 0.0


class SignInThrottle:
    """Counts failed sign-ins and says when to stop answering for a while (thread-safe).

    After ``per_pair`` failures for one (user name, client address) within ``window_s``,
    that pair is blocked for ``block_s`` (doubling while failures continue, up to
    ``max_block_s``); after ``per_client`` failures from one address (any names), the
    address is, except for users who signed in from it before (``trust_s``).  A success
    clears its pair.  Only this process counts (each API replica throttles on its own);
    every table is bounded.
    """

    def __init__(
        self,
        *,
        per_pair: int = 5,
        per_client: int = 30,
        window_s: float = 900.0,
        block_s: float = 30.0,
        max_block_s: float = 900.0,
        trust_s: float = 30 * 86400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_pair = per_pair
        self.per_client = per_client
        self.window_s = window_s
        self.block_s = block_s
        self.max_block_s = max_block_s
        self.trust_s = trust_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], _Window] = {}
        self._clients: dict[str, _Window] = {}
        self._trusted: dict[tuple[str, str], float] = {}

    def retry_after(self, user: str, client: str) -> float:
        """Seconds until this pair may try again (0: now).

        A user who signed in from this address before (within ``trust_s``) is not held by
        the address's block: a machine spraying names from the same address (a NAT, a
        proxy) cannot lock out the operators who work there; their own pair still counts.
        """
        now = self._clock()
        pair = (user.lower(), client)
        with self._lock:
            windows = [self._pairs.get(pair)]
            trusted = self._trusted.get(pair)
            if trusted is None or now - trusted > self.trust_s:
                windows.append(self._clients.get(client))
            waits = [w.blocked_until - now for w in windows if w is not None]
        return max([0.0, *waits])

    def failed(self, user: str, client: str) -> None:
        """Count one failure of ``user`` from ``client``."""
        now = self._clock()
        with self._lock:
            self._count(self._pairs, (user.lower(), client), self.per_pair, now)
            self._count(self._clients, client, self.per_client, now)
            for table in (self._pairs, self._clients):
                _bound(table)

    def succeeded(self, user: str, client: str) -> None:
        """A sign-in succeeded: the pair starts afresh, and is trusted from this address."""
        with self._lock:
            pair = (user.lower(), client)
            self._pairs.pop(pair, None)
            self._trusted[pair] = self._clock()
            _bound(self._trusted)

    def _count(self, table: dict[Any, _Window], key: Any, limit: int, now: float) -> None:
        w = table.get(key)
        if w is None or now - w.first_at > self.window_s:
            w = table[key] = _Window(first_at=now)
        w.failures += 1
        if w.failures >= limit:
            over = w.failures - limit
            w.blocked_until = now + min(self.max_block_s, self.block_s * 2.0 ** min(over, 20))


_MAX_ENTRIES = 100_000


def _bound(table: dict[Any, Any]) -> None:
    """Forget the oldest half of a table that grew past ``_MAX_ENTRIES`` (insertion order)."""
    if len(table) > _MAX_ENTRIES:
        for key in list(table)[: _MAX_ENTRIES // 2]:
            del table[key]
