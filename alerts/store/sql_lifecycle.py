"""The alert lifecycle in ``SqliteAlertStore`` (``LifecycleStore``): atomic transitions
with their audit entry, the SLA escalation, disposition figures; and the older operator
actions (``acknowledge``, ``mark_false_positive``) as closes.

``state`` (new, claimed, escalated, closed) is apart from whether the event is ongoing;
records of the event (``upsert``) never change it.  ``status``, the older field, follows
every change: ``new`` unless closed, then ``false_positive`` for a false alarm, else
``acknowledged``; ``acknowledged_at``/``acknowledged_by``/``note`` follow
``closed_at``/``closed_by``/``close_note``.
"""

from __future__ import annotations

import builtins
import logging
import statistics
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from alerts.metrics import ALERTS_ACKNOWLEDGED
from alerts.store.models import (
    ALERT_STATES,
    DISPOSITIONS,
    Alert,
    AlertNotFoundError,
    AlertState,
    AuditEntry,
    DetailValue,
    Disposition,
    DispositionStats,
    TransitionConflictError,
)
from alerts.store.protocols import KEEP, Keep
from alerts.store.sql_audit import insert_audit
from alerts.store.sql_common import (
    ALERT_COLUMNS,
    StoreParts,
    db_errors,
    fetch_alert,
    in_clause,
    row_to_alert,
    write_transaction,
)

logger = logging.getLogger("alerts.store")

TRANSITION_FIELDS = frozenset(
    {"disposition", "close_note", "escalated_to", "escalated_by", "escalation_ref"}
)
"""The columns ``transition(fields=...)`` may set."""
ESCALATION_TARGETS = ("supervisors", "external")
_OPEN_STATES: tuple[AlertState, ...] = ("new", "claimed", "escalated")
_SYNC_STATUS = (
    "UPDATE alerts SET status = CASE WHEN state != 'closed' THEN 'new' "
    "WHEN disposition = 'false_alarm' THEN 'false_positive' ELSE 'acknowledged' END, "
    "acknowledged_at = closed_at, acknowledged_by = closed_by, note = close_note "
    "WHERE event_id = ?"
)


def _same_name(a: str | None, b: str) -> bool:
    return a is not None and a.casefold() == b.casefold()


def _check_transition(
    to_state: str, from_states: Collection[str], fields: Mapping[str, Any]
) -> None:
    """Refuse unknown states, fields or values (``ValueError``) before touching the store."""
    if to_state not in ALERT_STATES or not set(from_states) <= set(ALERT_STATES):
        raise ValueError(f"states must be among {ALERT_STATES}: {to_state!r}, {from_states!r}")
    unknown = set(fields) - TRANSITION_FIELDS
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} cannot be set by a transition")
    if fields.get("disposition") not in (None, *DISPOSITIONS):
        raise ValueError(f"disposition must be one of {DISPOSITIONS}: {fields['disposition']!r}")
    if fields.get("escalated_to") not in (None, *ESCALATION_TARGETS):
        raise ValueError(f"escalated_to must be one of {ESCALATION_TARGETS}")


def _median(values: builtins.list[float]) -> float | None:
    return statistics.median(values) if values else None


class LifecycleMixin(StoreParts):
    """Transitions, the SLA escalation and disposition figures (``LifecycleStore``)."""

    def transition(
        self,
        event_id: str,
        *,
        to_state: AlertState,
        from_states: Collection[AlertState],
        audit: AuditEntry,
        require_owner: str | None = None,
        set_owner: str | Keep | None = KEEP,
        fields: Mapping[str, Any] | None = None,
    ) -> Alert:
        """Move the alert to ``to_state`` if it is in one of ``from_states`` (and, with
        ``require_owner``, owned by them, ignoring case), with ``audit`` appended in the
        same transaction; the alert as it is then.

        Set by the move itself, at ``audit.at``: ``claimed_at`` (first claim only);
        ``escalated_at``, ``escalated_by`` (default ``audit.actor``), ``escalated_to``
        (default ``supervisors``) and ``escalation_ref`` (default none) on every move to
        escalated; ``closed_at``/``closed_by`` (``audit.actor``) when it becomes closed
        (a closed alert closed again keeps them: only what ``fields`` give changes);
        ``disposition``, ``closed_at``, ``closed_by``, ``close_note`` cleared when it
        leaves closed (reopen).  Then ``fields``, then ``status`` follows.  The audit
        entry's ``detail`` gets ``from``/``to`` (the states) unless it has them.

        Raises:
            AlertNotFoundError: No such alert.
            TransitionConflictError: Its state (or owner) does not allow the move now.
            ValueError: Unknown state, field or value; closing without a disposition.
        """
        given = dict(fields or {})
        _check_transition(to_state, from_states, given)
        at = audit.at.timestamp()
        with (
            self._lock,
            db_errors(f"cannot move alert {event_id} to {to_state}", self.path),
            write_transaction(self._conn) as conn,
        ):
            row = conn.execute(
                "SELECT state, owner, claimed_at, disposition FROM alerts WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                raise AlertNotFoundError(event_id)
            state, owner = row["state"], row["owner"]
            if state not in from_states or (
                require_owner is not None and not _same_name(owner, require_owner)
            ):
                raise TransitionConflictError(event_id, state, owner)
            sets: dict[str, Any] = {"state": to_state}
            if not isinstance(set_owner, Keep):
                sets["owner"] = set_owner
            if to_state == "claimed" and row["claimed_at"] is None:
                sets["claimed_at"] = at
            if to_state == "escalated":
                sets |= {"escalated_at": at, "escalated_by": audit.actor}
                sets |= {"escalated_to": "supervisors", "escalation_ref": None}
            if to_state == "closed" and state != "closed":
                sets |= {"closed_at": at, "closed_by": audit.actor}
            if state == "closed" and to_state != "closed":
                sets |= dict.fromkeys(("disposition", "closed_at", "closed_by", "close_note"))
            sets |= given
            if to_state == "closed" and sets.get("disposition", row["disposition"]) is None:
                raise ValueError("closing an alert needs a disposition")
            assignments = ", ".join(f"{column} = ?" for column in sets)  # names checked above
            changed = conn.execute(
                f"UPDATE alerts SET {assignments} "
                "WHERE event_id = ? AND state = ? AND owner IS NOT DISTINCT FROM ?",
                (*sets.values(), event_id, state, owner),
            ).rowcount
            if changed != 1:
                raise TransitionConflictError(event_id, state, owner)
            conn.execute(_SYNC_STATUS, (event_id,))
            detail: dict[str, DetailValue | builtins.list[str]] = {"from": state, "to": to_state}
            insert_audit(conn, audit, detail | audit.detail)
            fresh = conn.execute(
                f"SELECT {ALERT_COLUMNS} FROM alerts WHERE event_id = ?", (event_id,)
            ).fetchone()
            alert = row_to_alert(fresh)
        logger.info(
            "alert %s: %s -> %s by %s (%s)", event_id, state, to_state, audit.actor, audit.action
        )
        return alert

    def escalate_overdue(
        self, *, min_priority: int, claim_within_s: float, now: float
    ) -> builtins.list[str]:
        """Escalate to supervisors every alert still ``new`` with ``priority >=
        min_priority`` received ``claim_within_s`` or more before ``now``; each once, with
        an audit entry by ``sla`` (``alert.escalate``).  One conditional UPDATE in one
        transaction: several replicas calling at once escalate each alert once.

        Returns:
            The event ids escalated (sorted).
        """
        at = datetime.fromtimestamp(now, UTC)
        reason = f"not claimed within {claim_within_s:g} s"
        with (
            self._lock,
            db_errors("cannot escalate overdue alerts", self.path),
            write_transaction(self._conn) as conn,
        ):
            ids = sorted(
                r["event_id"]
                for r in conn.execute(
                    "UPDATE alerts SET state = 'escalated', escalated_at = ?, "
                    "escalated_by = 'sla', escalated_to = 'supervisors', escalation_ref = NULL "
                    "WHERE state = 'new' AND priority >= ? AND received_at <= ? "
                    "RETURNING event_id",
                    (now, min_priority, now - claim_within_s),
                ).fetchall()
            )
            for event_id in ids:
                entry = AuditEntry(
                    at=at,
                    actor="sla",
                    actor_kind="system",
                    action="alert.escalate",
                    target_kind="alert",
                    target_id=event_id,
                    detail={"reason": reason, "from": "new", "to": "escalated"},
                )
                insert_audit(conn, entry)
        if ids:
            logger.info("SLA: %d alerts escalated to supervisors (%s)", len(ids), reason)
        return ids

    def disposition_stats(
        self,
        *,
        by: Literal["rule", "camera"],
        since: float,
        until: float,
        camera_ids: Collection[str] | None = None,
    ) -> builtins.list[DispositionStats]:
        """Per rule id or camera id, the alerts received in ``[since, until)`` (UNIX s) of
        ``camera_ids`` (``None``: all; empty: none): how many, how many closed, as what,
        and the median seconds from receipt to first claim and to close (over the alerts
        that have them).  Most alerts first, then by key.

        Raises:
            ValueError: ``by`` is neither ``rule`` nor ``camera``.
        """
        if by not in ("rule", "camera"):
            raise ValueError(f"by must be 'rule' or 'camera', got {by!r}")
        key = "rule_id" if by == "rule" else "camera_id"
        where, params = "received_at >= ? AND received_at < ?", [since, until]
        if camera_ids is not None:
            clause, more = in_clause("camera_id", camera_ids, "camera_ids")
            where, params = f"{where} AND {clause}", params + more
        with self._lock, db_errors("cannot compute disposition figures", self.path):
            rows = self._conn.execute(
                f"SELECT {key} AS key, state, disposition, received_at, claimed_at, closed_at "
                f"FROM alerts WHERE {where}",
                params,
            ).fetchall()
        groups: dict[str, builtins.list[Any]] = {}
        for r in rows:
            groups.setdefault(r["key"], []).append(r)
        return sorted(
            (_stats(k, members) for k, members in groups.items()),
            key=lambda s: (-s.alerts, s.key),
        )

    # -- the older operator actions, as closes -------------------------------------

    def acknowledge(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Close the alert as ``no_action`` by ``by`` (a user) with an optional ``note``
        (``/ack``), audited as ``alert.close``.

        A closed alert (acknowledged or a false alarm) is returned unchanged: the first
        close's time, author and note are kept.

        Raises:
            AlertNotFoundError: No such alert.
        """
        try:
            alert = self._close(event_id, by, "no_action", note, _OPEN_STATES, alias="ack")
        except TransitionConflictError:
            with self._lock, db_errors(f"cannot read alert {event_id}", self.path):
                row = fetch_alert(self._conn, event_id)
            if row is None:  # deleted meanwhile
                raise AlertNotFoundError(event_id) from None
            return row_to_alert(row)
        ALERTS_ACKNOWLEDGED.inc()
        return alert

    def mark_false_positive(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Close the alert as a ``false_alarm`` by ``by`` (a user), from any state, again
        too (``/false-positive``), audited as ``alert.close``.  A closed alert keeps its
        close's time and author; ``note`` replaces the close note when given.

        Raises:
            AlertNotFoundError: No such alert.
        """
        return self._close(event_id, by, "false_alarm", note, ALERT_STATES, alias="false-positive")

    def _close(
        self,
        event_id: str,
        by: str,
        disposition: Disposition,
        note: str | None,
        from_states: Collection[AlertState],
        *,
        alias: str,
    ) -> Alert:
        fields: dict[str, Any] = {"disposition": disposition}
        if note is not None:
            fields["close_note"] = note
        entry = AuditEntry(
            at=datetime.now(UTC),
            actor=by,
            actor_kind="user",
            action="alert.close",
            target_kind="alert",
            target_id=event_id,
            detail={"disposition": disposition, "via": alias},
        )
        return self.transition(
            event_id, to_state="closed", from_states=from_states, audit=entry, fields=fields
        )


def _stats(key: str, rows: builtins.list[Any]) -> DispositionStats:
    """The figures of one rule's or camera's alert rows."""
    closed = [r for r in rows if r["state"] == "closed"]
    by_disposition: dict[str, int] = {}
    for r in closed:
        if r["disposition"] is not None:
            by_disposition[r["disposition"]] = by_disposition.get(r["disposition"], 0) + 1
    false_alarms = by_disposition.get("false_alarm", 0)
    return DispositionStats(
        key=key,
        alerts=len(rows),
        closed=len(closed),
        false_alarms=false_alarms,
        false_alarm_share=false_alarms / len(closed) if closed else None,
        by_disposition=dict(sorted(by_disposition.items())),
        median_time_to_claim_s=_median(
            [r["claimed_at"] - r["received_at"] for r in rows if r["claimed_at"] is not None]
        ),
        median_time_to_close_s=_median(
            [r["closed_at"] - r["received_at"] for r in closed if r["closed_at"] is not None]
        ),
    )
