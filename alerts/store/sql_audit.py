"""The audit trail in ``SqliteAlertStore`` (``AuditStore``): who did what to what, when,
from where.  Append-only: the ``audit`` table's triggers (migration 6) refuse any UPDATE
or DELETE of a row (and on SQLite an INSERT OR REPLACE over one, on PostgreSQL a TRUNCATE),
from this code or any other connection.  (Whoever owns the database can still drop the
triggers: a SQLite file is the installation's, readable and writable by its account only; on
PostgreSQL, give the service a role that does not own the tables to take that away too.)"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Collection
from typing import Any

from alerts.store.models import DEFAULT_LIMIT, AuditEntry, DetailValue
from alerts.store.sql_common import (
    Connection,
    Row,
    StoreParts,
    check_page,
    db_errors,
    json_text,
    parse_object,
    utc,
)

logger = logging.getLogger("alerts.store")

_AUDIT_COLUMNS = "seq, at, actor, actor_kind, action, target_kind, target_id, client, detail"


def insert_audit(
    conn: Connection,
    entry: AuditEntry,
    detail: dict[str, DetailValue | builtins.list[str]] | None = None,
) -> int:
    """Insert ``entry`` (with ``detail`` instead of its own when given); its ``seq``.

    The caller holds the lock (and, to make it part of a change, its transaction).

    Raises:
        ValueError: The detail holds a non-finite number.
    """
    rows = conn.execute(
        "INSERT INTO audit (at, actor, actor_kind, action, target_kind, target_id, client, "
        "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (
            entry.at.timestamp(),
            entry.actor,
            entry.actor_kind,
            entry.action,
            entry.target_kind,
            entry.target_id,
            entry.client,
            json_text(entry.detail if detail is None else detail),
        ),
    ).fetchall()
    return int(rows[0][0])


def _row_to_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=utc(row["at"]),
        actor=row["actor"],
        actor_kind=row["actor_kind"],
        action=row["action"],
        target_kind=row["target_kind"],
        target_id=row["target_id"],
        client=row["client"],
        detail=parse_object(row["detail"], f"audit entry {row['seq']}"),
    )


def _audit_where(
    *,
    actor: str | None,
    action: str | None,
    target_kind: str | None,
    target_id: str | None,
    since: float | None,
    until: float | None,
    alert_cameras: Collection[str] | None = None,
) -> tuple[str, builtins.list[Any]]:
    """The WHERE clause of the audit filters (AND-ed) and its parameters."""
    clauses: builtins.list[str] = []
    params: builtins.list[Any] = []
    if alert_cameras is not None:  # entries about these cameras' alerts and suppressions
        cams = sorted(alert_cameras)
        marks = ", ".join("?" * len(cams)) or "NULL"
        clauses.append(
            "((target_kind = 'alert' AND target_id IN "
            f"(SELECT event_id FROM alerts WHERE camera_id IN ({marks}))) OR "
            "(target_kind = 'suppression' AND target_id IN "
            f"(SELECT suppression_id FROM suppressions WHERE camera_id IN ({marks}))))"
        )
        params.extend(cams + cams)
    for column, value in (("actor", actor), ("target_kind", target_kind), ("target_id", target_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if action is not None:
        if action.endswith("."):  # a prefix: the range [prefix, prefix with "." -> "/")
            clauses.append("action >= ? AND action < ?")
            params.extend((action, action[:-1] + "/"))
        else:
            clauses.append("action = ?")
            params.append(action)
    if since is not None:
        clauses.append("at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class AuditMixin(StoreParts):
    """The append-only audit trail (``AuditStore``)."""

    def append_audit(self, entry: AuditEntry) -> int:
        """Add one entry (its own ``seq`` is ignored); the ``seq`` it was given.

        Raises:
            ValueError: The detail holds a non-finite number.
            AlertStoreError: The database failed.
        """
        json_text(entry.detail)  # refuse a bad detail before taking the lock
        with self._lock, db_errors(f"cannot append audit entry {entry.action}", self.path):
            return insert_audit(self._conn, entry)

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        alert_cameras: Collection[str] | None = None,
    ) -> builtins.list[AuditEntry]:
        """Entries matching every filter, newest (highest ``seq``) first.

        Args:
            actor: Exactly this actor.
            action: A whole action (``alert.claim``) or a prefix ending in a dot
                (``alert.``: every ``alert.*``).
            target_kind: e.g. ``alert``.
            target_id: e.g. an event id.
            since: ``at`` at or after (UNIX s).
            until: ``at`` before (UNIX s, exclusive).
            limit: Page size, 1..``MAX_LIMIT``.
            alert_cameras: Only entries about the alerts and suppressions of these
                cameras (``None``: all entries; empty: none) - what a user of some camera
                groups may read.
            offset: Entries to skip, >= 0.

        Raises:
            ValueError: ``limit``/``offset`` out of range.
        """
        check_page(limit, offset)
        where, params = _audit_where(
            actor=actor,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            since=since,
            until=until,
            alert_cameras=alert_cameras,
        )
        with self._lock, db_errors("cannot list audit entries", self.path):
            rows = self._conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit{where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def count_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        alert_cameras: Collection[str] | None = None,
    ) -> int:
        """How many entries ``list_audit`` would give without paging."""
        where, params = _audit_where(
            actor=actor,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            since=since,
            until=until,
            alert_cameras=alert_cameras,
        )
        with self._lock, db_errors("cannot count audit entries", self.path):
            (n,) = self._conn.execute(f"SELECT COUNT(*) FROM audit{where}", params).fetchone()
        return int(n)
