"""A camera's alerts over a time window (a track's timeline in forensic search), served by
the ``alerts_by_camera_time`` index."""

from __future__ import annotations

import builtins

from alerts.store.models import Alert
from alerts.store.sql_common import ALERT_COLUMNS, StoreParts, db_errors, row_to_alert

MAX_TIMELINE_ALERTS = 1000
"""Most alerts one timeline query returns."""
LONGEST_ALERT_S = 3600.0
"""Alerts that started this long before a window are looked at for overlapping it (an
event that lasts longer starts earlier and is not shown)."""


class TimelineMixin(StoreParts):
    """``alerts_between``."""

    def alerts_between(
        self,
        camera_id: str,
        *,
        since_ts: float,
        until_ts: float,
        limit: int = 200,
        started_within: bool = False,
    ) -> builtins.list[Alert]:
        """Alerts of ``camera_id`` whose event started within ``[since_ts - 1 h,
        until_ts]`` (UNIX s) and had not ended before ``since_ts`` (with
        ``started_within``: that started within ``[since_ts, until_ts]``), in order of
        start, at most ``limit`` (1..``MAX_TIMELINE_ALERTS``).

        Raises:
            ValueError: ``limit`` out of range.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_TIMELINE_ALERTS:
            raise ValueError(f"limit must be in 1..{MAX_TIMELINE_ALERTS}, got {limit}")
        with self._lock, db_errors("reading a camera's timeline failed", self.path):
            rows = self._conn.execute(
                f"SELECT {ALERT_COLUMNS} FROM alerts WHERE camera_id = ? "
                "AND wall_time >= ? AND wall_time <= ? "
                "AND (end_s IS NULL OR wall_time + (end_s - start_s) >= ?) "
                "ORDER BY wall_time ASC, event_id ASC LIMIT ?",
                (
                    camera_id,
                    since_ts if started_within else since_ts - LONGEST_ALERT_S,
                    until_ts,
                    since_ts,
                    limit,
                ),
            ).fetchall()
        return [row_to_alert(r) for r in rows]
