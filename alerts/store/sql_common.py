"""What the parts of the SQL alert stores share: the attributes the mixins use, the
connection and row they expect, the alert row's columns and conversion, JSON helpers, error
translation and the write transaction.

``SqlAlertStore`` (``sql_base``) is one mixin per concern: ``sql_alerts`` (alerts, run
markers), ``sql_control`` (suppressions, rules), ``sql_people`` (users, sessions, tokens),
``sql_audit`` (the audit trail), ``sql_lifecycle`` (transitions, the SLA, disposition
figures), ``sql_retention``.  ``SqliteAlertStore`` (``sqlite``) and ``PostgresAlertStore``
(``postgres``) give it a connection and a schema.  Every use of the connection holds
``_lock``; a write of several statements runs in ``write_transaction``.

The mixins write SQLite's SQL, restricted to what PostgreSQL also runs once
``postgres.PgConnection`` has rewritten ``?`` placeholders, ``BEGIN IMMEDIATE`` and
``COLLATE NOCASE`` (see there); ``"user"`` is quoted (a reserved word in PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from alerts.store.models import MAX_LIMIT, Alert, AlertStoreError, DetailValue

logger = logging.getLogger("alerts.store")

ALERT_COLUMNS = (
    "event_id, schema_version, camera_id, type, rule_id, zone, track_id, label, score, "
    "priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, bbox_y2, start_seq, snapshot, "
    "wall_time, status, acknowledged_at, acknowledged_by, note, received_at, line, direction, "
    "details, end_reason, run_id, reason, state, owner, claimed_at, escalated_at, "
    "escalated_by, escalated_to, escalation_ref, closed_at, closed_by, disposition, close_note, "
    "clip, change_seq, geometry"
)


DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
"""What a database (SQLite or PostgreSQL) raises when it fails."""


class Row(Protocol):
    """A result row: by column index or by column name (``sqlite3.Row``, ``postgres.PgRow``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Cursor(Protocol):
    """What the mixins use of a cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the mixins use of a connection: autocommit, ``execute`` with ``?`` parameters,
    explicit ``BEGIN IMMEDIATE``/``COMMIT``/``ROLLBACK``."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...


class StoreParts:
    """The attributes a SQL store gives its mixins (declared for the type checker)."""

    path: str
    """Database location (``":memory:"``, a file, or a PostgreSQL DSN without password)."""
    _conn: Connection
    """The one connection (autocommit; rows are ``Row``)."""
    _lock: threading.Lock
    """Held around every use of ``_conn``."""


def ts(value: float | None) -> datetime | None:
    """UNIX seconds as a UTC datetime (``None`` stays ``None``)."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def utc(value: float) -> datetime:
    """UNIX seconds as a UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def parse_object(text: str | None, what: str) -> dict[str, Any]:
    """Stored JSON object text as a dict; NULL, or anything but an object, is ``{}`` (the
    latter logged, naming ``what``)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        logger.warning("%s: stored text is not a JSON object; shown as {}", what)
        return {}
    return value


def parse_details(text: str | None, event_id: str) -> dict[str, DetailValue]:
    """Stored ``details`` text as a dict; NULL (rows from before migration 3) is ``{}``."""
    return parse_object(text, f"alert {event_id} details")


def row_to_alert(row: Row) -> Alert:
    """An ``alerts`` row (``ALERT_COLUMNS``) as an ``Alert``."""
    x1, y1, x2, y2 = row["bbox_x1"], row["bbox_y1"], row["bbox_x2"], row["bbox_y2"]
    return Alert(
        schema_version=row["schema_version"],
        event_id=row["event_id"],
        camera_id=row["camera_id"],
        type=row["type"],
        rule_id=row["rule_id"],
        zone=row["zone"],
        track_id=row["track_id"],
        label=row["label"],
        score=row["score"],
        priority=row["priority"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        bbox=None if x1 is None else [x1, y1, x2, y2],
        start_seq=row["start_seq"],
        snapshot=row["snapshot"],
        clip=row["clip"],
        wall_time=utc(row["wall_time"]),
        status=row["status"],
        acknowledged_at=ts(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        note=row["note"],
        received_at=utc(row["received_at"]),
        line=row["line"],
        direction=row["direction"],
        details=parse_details(row["details"], row["event_id"]),
        end_reason=row["end_reason"],
        run_id=row["run_id"],
        reason=row["reason"],
        state=row["state"],
        owner=row["owner"],
        claimed_at=ts(row["claimed_at"]),
        escalated_at=ts(row["escalated_at"]),
        escalated_by=row["escalated_by"],
        escalated_to=row["escalated_to"],
        escalation_ref=row["escalation_ref"],
        closed_at=ts(row["closed_at"]),
        closed_by=row["closed_by"],
        disposition=row["disposition"],
        close_note=row["close_note"],
        change_seq=row["change_seq"],
        geometry=parse_geometry(row["geometry"]),
    )


def parse_geometry(text: str | None) -> dict[str, Any] | None:
    """The ``geometry`` column (JSON text) as a dict; ``None`` when absent or unreadable (a
    drawing aid: a bad value must not make the alert unreadable)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def fetch_alert(conn: Connection, event_id: str) -> Row | None:
    """The alert's row (``ALERT_COLUMNS``), or ``None``; the caller holds the lock."""
    row: Row | None = conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE event_id = ?", (event_id,)
    ).fetchone()
    return row


def json_text(value: Any) -> str:
    """Compact JSON text (keys sorted; NaN and infinities refused with ``ValueError``)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def names_json(names: Sequence[str], what: str) -> str:
    """A list of names (camera groups) as JSON text; a bare string is refused."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must be a sequence of strings, got {names!r}")
    return json.dumps(list(names), separators=(",", ":"))


def parse_names(text: str) -> list[str]:
    """Stored JSON list of names; anything else reads as ``[]`` (logged)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        logger.warning("alert store: stored group list %r is not a JSON list of names", text)
        return []
    return value


def in_clause(column: str, values: Collection[str], what: str) -> tuple[str, list[Any]]:
    """``column IN (?, ...)`` and its parameters; an empty collection matches nothing."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of strings, not a string")
    items = list(values)
    if not items:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' * len(items))})", items


def check_page(limit: int, offset: int) -> None:
    """Refuse a page size outside 1..``MAX_LIMIT`` or a negative offset (``ValueError``)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


@contextmanager
def db_errors(what: str, path: str) -> Iterator[None]:
    """Turn a database error (``DB_ERRORS``) into ``AlertStoreError`` (cause chained)."""
    try:
        yield
    except DB_ERRORS as e:
        raise AlertStoreError(f"{what}: {e}", path=path) from e


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back when the body raises (anything).

    Use inside ``with self._lock, db_errors(...)``: the lock serialises this process's
    threads, ``IMMEDIATE`` takes the database's write lock at once (other processes wait
    up to the connection's timeout; on PostgreSQL, every replica's write transactions take
    one advisory lock), so what the body reads stays true until it commits.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        with suppress(*DB_ERRORS):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        raise
