"""What the operators' wall needs of the store: each camera's most urgent open alert.

One query with window functions (SQLite >= 3.25, PostgreSQL): every camera with an alert
in one of the given lifecycle states, its top alert by the queue's order (priority, then
the most recent, then event id) and how many such alerts it has.  The cost grows with the
open alerts of the cameras asked for, not with the store.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass

from alerts.store.models import Alert, AlertState
from alerts.store.sql_common import ALERT_COLUMNS, StoreParts, db_errors, in_clause, row_to_alert

MAX_WALL_CAMERAS = 1000
"""Most cameras one wall query returns (the most urgent first)."""


@dataclass(frozen=True, slots=True)
class CameraAlerts:
    """A camera's open alerts as the wall sees them.

    Attributes:
        top: Its most urgent alert (priority, then most recent).
        count: How many alerts of the asked states it has.
    """

    top: Alert
    count: int


class WallMixin(StoreParts):
    """``wall_alerts`` (``WallStore``)."""

    def wall_alerts(
        self,
        states: Collection[AlertState],
        *,
        camera_ids: Collection[str] | None = None,
        limit: int = MAX_WALL_CAMERAS,
    ) -> builtins.list[CameraAlerts]:
        """Per camera with alerts in ``states``: its top alert and their count, most urgent
        camera first (its top alert's priority, then time), at most ``limit`` cameras.

        Args:
            states: Lifecycle states that count as open (e.g. new, claimed, escalated).
            camera_ids: Only these cameras (``None``: every camera; empty: none).
            limit: 1..``MAX_WALL_CAMERAS``.

        Raises:
            ValueError: ``limit`` out of range.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_WALL_CAMERAS:
            raise ValueError(f"limit must be in 1..{MAX_WALL_CAMERAS}, got {limit}")
        state_sql, state_params = in_clause("state", states, "states")
        cams_sql, cams_params = (
            ("1 = 1", []) if camera_ids is None else in_clause("camera_id", camera_ids, "cameras")
        )
        sql = (
            "SELECT * FROM ("
            f"SELECT {ALERT_COLUMNS}, "
            "ROW_NUMBER() OVER (PARTITION BY camera_id "
            "ORDER BY priority DESC, wall_time DESC, event_id ASC) AS wall_rank, "
            "COUNT(*) OVER (PARTITION BY camera_id) AS wall_count "
            f"FROM alerts WHERE {state_sql} AND {cams_sql}"
            ") ranked WHERE wall_rank = 1 "
            "ORDER BY priority DESC, wall_time DESC, event_id ASC LIMIT ?"
        )
        with self._lock, db_errors("cannot read the wall's alerts", self.path):
            rows = self._conn.execute(sql, [*state_params, *cams_params, limit]).fetchall()
        return [CameraAlerts(row_to_alert(r), int(r["wall_count"])) for r in rows]
