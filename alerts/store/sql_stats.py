"""Per-operator workload figures in the SQL alert stores (``LifecycleStore.operator_stats``).

Who holds what now is the alert rows' ``state``/``owner``; who closed what, ``closed_by``
and ``disposition``; who claimed what comes from the audit trail (``alert.claim`` entries:
an alert row keeps only its current owner and its first claim's time, and an alert may be
claimed, released or escalated and claimed again by someone else).  The SQL is the same on
SQLite and PostgreSQL (``?`` placeholders, no grouping on ``owner``, whose collation differs
between them: rows are grouped here, by the name exactly as stored); medians are Python's.
"""

from __future__ import annotations

import builtins
import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from alerts.store.models import OperatorFigures
from alerts.store.sql_common import StoreParts, db_errors, in_clause

CLAIM_ACTION = "alert.claim"
"""The audit action of a claim (the API's ``claim``, and acting on a new alert)."""


@dataclass
class _Tally:
    open_claims: int = 0
    to_claim: builtins.list[float] = field(default_factory=list)
    closed: int = 0
    false_alarms: int = 0
    to_close: builtins.list[float] = field(default_factory=list)


def _median(values: builtins.list[float]) -> float | None:
    return statistics.median(values) if values else None


class SqlStatsMixin(StoreParts):
    """Per-operator workload figures (``LifecycleStore.operator_stats``)."""

    def operator_stats(
        self,
        *,
        since: float,
        until: float,
        camera_ids: Collection[str] | None = None,
    ) -> builtins.list[OperatorFigures]:
        """Per operator (user name), of the alerts of ``camera_ids`` (``None``: all; empty:
        none): how many they have claimed now (``state = 'claimed'``, whenever raised); and
        of those received in ``[since, until)`` (UNIX s), how many they claimed (at least
        once), closed (closed now, by them) and closed as false alarms, the median seconds
        from receipt to their first claim of it and from the alert's first claim to its
        close (over the closed ones that were claimed).  Only operators with some figure;
        most open claims first, then by name.
        """
        cameras = ""
        camera_params: builtins.list[Any] = []
        if camera_ids is not None:
            clause, camera_params = in_clause("alerts.camera_id", camera_ids, "camera_ids")
            cameras = f" AND {clause}"
        window = "alerts.received_at >= ? AND alerts.received_at < ?"
        tallies: dict[str, _Tally] = {}
        with self._lock, db_errors("cannot compute operator figures", self.path):
            held = self._conn.execute(
                "SELECT alerts.owner AS name FROM alerts "
                f"WHERE alerts.state = 'claimed' AND alerts.owner IS NOT NULL{cameras}",
                camera_params,
            ).fetchall()
            claims = self._conn.execute(
                "SELECT audit.actor AS name, MIN(audit.at) - alerts.received_at AS wait "
                "FROM audit JOIN alerts ON alerts.event_id = audit.target_id "
                f"WHERE audit.target_kind = 'alert' AND audit.action = ? AND {window}{cameras} "
                "GROUP BY audit.actor, alerts.event_id, alerts.received_at",
                [CLAIM_ACTION, since, until, *camera_params],
            ).fetchall()
            closes = self._conn.execute(
                "SELECT alerts.closed_by AS name, alerts.disposition AS disposition, "
                "alerts.claimed_at AS claimed_at, alerts.closed_at AS closed_at FROM alerts "
                "WHERE alerts.state = 'closed' AND alerts.closed_by IS NOT NULL "
                f"AND {window}{cameras}",
                [since, until, *camera_params],
            ).fetchall()
        for r in held:
            tallies.setdefault(r["name"], _Tally()).open_claims += 1
        for r in claims:
            tallies.setdefault(r["name"], _Tally()).to_claim.append(float(r["wait"]))
        for r in closes:
            tally = tallies.setdefault(r["name"], _Tally())
            tally.closed += 1
            tally.false_alarms += r["disposition"] == "false_alarm"
            if r["claimed_at"] is not None and r["closed_at"] is not None:
                tally.to_close.append(float(r["closed_at"] - r["claimed_at"]))
        return sorted(
            (_figures(name, t) for name, t in tallies.items()),
            key=lambda f: (-f.open_claims, f.name),
        )


def _figures(name: str, t: _Tally) -> OperatorFigures:
    return OperatorFigures(
        name=name,
        open_claims=t.open_claims,
        claimed=len(t.to_claim),
        closed=t.closed,
        false_alarms=t.false_alarms,
        median_to_claim_s=_median(t.to_claim),
        median_to_close_s=_median(t.to_close),
    )
