"""The store-wide change sequence (``ChangeFeedStore``): what changed after a number.

Every write of an alert row takes the next number of the one-row ``change_counter`` into
``alerts.change_seq``, and a deleted alert leaves its number in ``alert_removals``: triggers
do it (SQLite migration 10, PostgreSQL migration 3), so no write path can forget.  Numbers
are handed out inside the writing transaction, in commit order, so once a reader sees
number ``N`` committed it sees every change numbered below it: ``changes_since(after,
through=N)`` misses nothing and, followed by ``after = N``, repeats nothing.  An alert
changed twice is sent once, as it is now, under its latest number.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection

from alerts.store.changes import (
    MAX_CHANGES,
    AlertChange,
    ChangeHead,
    ChangesPrunedError,
)
from alerts.store.sql_common import ALERT_COLUMNS, StoreParts, db_errors, in_clause, row_to_alert


class ChangesMixin(StoreParts):
    """The change sequence's reads and the removal log's pruning (``ChangeFeedStore``)."""

    def change_head(self) -> ChangeHead:
        """The last change number handed out, and how far removals were pruned.

        Raises:
            AlertStoreError: The database failed.
        """
        with self._lock, db_errors("cannot read the change sequence", self.path):
            row = self._conn.execute(
                "SELECT seq, pruned_through FROM change_counter WHERE id = 1"
            ).fetchone()
        return ChangeHead(0, 0) if row is None else ChangeHead(int(row[0]), int(row[1]))

    def changes_since(
        self,
        after: int,
        *,
        through: int,
        camera_ids: Collection[str] | None = None,
        limit: int = MAX_CHANGES,
    ) -> builtins.list[AlertChange]:
        """Changes numbered in ``(after, through]``, oldest first, at most ``limit``.

        Args:
            after: The last number the reader has (0: from the start).
            through: The highest number to return: a ``change_head().seq`` read before
                this call (every change up to it is committed).
            camera_ids: Only alerts of these cameras (``None``: every camera).
            limit: At most this many (1..``MAX_CHANGES``); when it is reached, the reader
                asks again after the last one returned.

        Raises:
            ValueError: ``limit`` outside 1..``MAX_CHANGES`` or a negative ``after``.
            ChangesPrunedError: Removals after ``after`` were forgotten.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_CHANGES:
            raise ValueError(f"limit must be in 1..{MAX_CHANGES}, got {limit}")
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        if through <= after:
            return []
        cameras, params = (
            ("1 = 1", [])
            if camera_ids is None
            else in_clause("camera_id", camera_ids, "camera_ids")
        )
        window = [after, through, *params, limit]
        with self._lock, db_errors("cannot read changes", self.path):
            rows = self._conn.execute(
                f"SELECT {ALERT_COLUMNS} FROM alerts "
                f"WHERE change_seq > ? AND change_seq <= ? AND {cameras} "
                "ORDER BY change_seq LIMIT ?",
                window,
            ).fetchall()
            removed = self._conn.execute(
                "SELECT change_seq, event_id, camera_id FROM alert_removals "
                f"WHERE change_seq > ? AND change_seq <= ? AND {cameras} "
                "ORDER BY change_seq LIMIT ?",
                window,
            ).fetchall()
            # read after the removals: pruning moves the mark before it deletes
            pruned = self._conn.execute(
                "SELECT pruned_through FROM change_counter WHERE id = 1"
            ).fetchone()
        if pruned is not None and int(pruned[0]) > after:
            raise ChangesPrunedError(after, int(pruned[0]))
        changes = [
            AlertChange(int(r["change_seq"]), r["event_id"], r["camera_id"], row_to_alert(r))
            for r in rows
        ] + [AlertChange(int(r[0]), r[1], r[2], None) for r in removed]
        changes.sort(key=lambda c: c.seq)
        return changes[:limit]

    def prune_removals(self, *, before: float) -> int:
        """Forget removals made before ``before`` (UNIX seconds); how many were forgotten.
        A reader that resumes from before the last one forgotten reloads its list.

        Raises:
            AlertStoreError: The database failed.
        """
        with self._lock, db_errors("cannot prune the removal log", self.path):
            row = self._conn.execute(
                "SELECT MAX(change_seq) FROM alert_removals WHERE removed_at < ?", (before,)
            ).fetchone()
            through = None if row is None else row[0]
            if through is None:
                return 0
            self._conn.execute(
                "UPDATE change_counter SET pruned_through = ? WHERE id = 1 AND pruned_through < ?",
                (through, through),
            )
            return int(
                self._conn.execute(
                    "DELETE FROM alert_removals WHERE change_seq <= ?", (through,)
                ).rowcount
            )
