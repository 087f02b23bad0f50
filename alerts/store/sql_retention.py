"""Retention in ``SqliteAlertStore`` (``RetentionStore``): finding and deleting old alerts,
and claiming a job's run once per period across every process sharing the file.

Deleting an alert breaks nothing: no table refers to ``alerts`` by foreign key; the audit
trail (append-only) keeps its entries about the alert, and a suppression made from it
keeps its ``source_event_id`` as a plain note of where it came from.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Collection

from alerts.store.models import MAX_LIMIT
from alerts.store.protocols import ExpiredAlert
from alerts.store.sql_common import StoreParts, db_errors, in_clause, write_transaction

logger = logging.getLogger("alerts.store")

DELETE_CHUNK = 500
"""Alerts deleted per statement (well under SQLite's limit on bound parameters)."""


def delete_keyed(
    store: StoreParts, table: str, column: str, keys: Collection[str], what: str
) -> int:
    """Delete the rows of ``table`` whose ``column`` is one of ``keys``, in one transaction,
    ``DELETE_CHUNK`` at a time; how many existed (unknown keys ignored, so two sweepers
    deleting the same rows count each once).  ``table`` and ``column`` are the store's own
    names, never a caller's input; ``what`` names the rows in messages.

    Raises:
        TypeError: ``keys`` is a bare string.
        AlertStoreError: The database failed (nothing is deleted).
    """
    if isinstance(keys, str):
        raise TypeError(f"{column}s must be a collection of strings, not a string")
    ids = list(dict.fromkeys(keys))
    if not ids:
        return 0
    deleted = 0
    with (
        store._lock,
        db_errors(f"cannot delete {len(ids)} {what}", store.path),
        write_transaction(store._conn) as conn,
    ):
        for i in range(0, len(ids), DELETE_CHUNK):
            clause, params = in_clause(column, ids[i : i + DELETE_CHUNK], f"{column}s")
            deleted += conn.execute(f"DELETE FROM {table} WHERE {clause}", params).rowcount
    logger.debug("deleted %d %s", deleted, what)
    return deleted


class RetentionMixin(StoreParts):
    """Old alerts out, and jobs claimed once per period (``RetentionStore``)."""

    def claim_job(self, name: str, *, holder: str, now: float, every_s: float) -> bool:
        """Claim the run of job ``name`` at ``now`` for ``holder``.

        One statement (an upsert whose update only applies once ``due_at <= now``), so it
        is atomic under SQLite's write lock: of any number of callers, in this process or
        others on the same file, exactly one gets ``True`` per period; the next claim
        succeeds from ``now + every_s`` on.

        Args:
            name: The job (e.g. ``"retention"``).
            holder: Who claims (host, process): recorded for operators, not compared.
            now: UNIX seconds.
            every_s: The period, seconds (> 0).

        Raises:
            ValueError: ``every_s`` is not positive, or ``name``/``holder`` empty.
            AlertStoreError: The database failed.
        """
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0, got {every_s}")
        if not name or not holder:
            raise ValueError(f"name and holder are required (got {name!r}, {holder!r})")
        with self._lock, db_errors(f"cannot claim job {name}", self.path):
            claimed = self._conn.execute(
                "INSERT INTO jobs (name, holder, claimed_at, due_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "claimed_at = excluded.claimed_at, due_at = excluded.due_at "
                "WHERE jobs.due_at <= excluded.claimed_at",
                (name, holder, now, now + every_s),
            ).rowcount
        return claimed == 1

    def alert_cameras(self) -> builtins.list[str]:
        """Every camera id that has alerts, sorted.

        Raises:
            AlertStoreError: The database failed.
        """
        with self._lock, db_errors("cannot list alert cameras", self.path):
            rows = self._conn.execute(
                "SELECT DISTINCT camera_id FROM alerts ORDER BY camera_id"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def expired_alerts(
        self, camera_id: str, *, before: float, limit: int, offset: int = 0
    ) -> builtins.list[ExpiredAlert]:
        """Alerts of ``camera_id`` whose event started before ``before``, oldest first.

        Args:
            camera_id: The camera.
            before: UNIX seconds; alerts with ``wall_time`` strictly earlier are expired.
            limit: At most this many, 1..``MAX_LIMIT``.
            offset: Skip this many first (those a sweep had to leave, >= 0).

        Raises:
            ValueError: ``limit`` or ``offset`` out of range.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        with self._lock, db_errors(f"cannot list expired alerts of {camera_id}", self.path):
            rows = self._conn.execute(
                # "wall_time IS NOT NULL" (always true) lets SQLite use the partial index
                # alerts_by_camera_time (migration 8)
                "SELECT event_id, snapshot, clip FROM alerts "
                "WHERE camera_id = ? AND wall_time < ? AND wall_time IS NOT NULL "
                "ORDER BY wall_time, event_id LIMIT ? OFFSET ?",
                (camera_id, before, limit, offset),
            ).fetchall()
        return [ExpiredAlert(r["event_id"], r["snapshot"], r["clip"]) for r in rows]

    def delete_alerts(self, event_ids: Collection[str]) -> int:
        """Delete these alerts in one transaction; how many existed (unknown ids are
        ignored, so two sweepers deleting the same alerts count each once).

        Raises:
            TypeError: ``event_ids`` is a bare string.
            AlertStoreError: The database failed (nothing is deleted).
        """
        return delete_keyed(self, "alerts", "event_id", event_ids, "alerts")
