"""The store protocols: what the API and the alert service need of a store (SQLite now,
PostgreSQL later behind the same methods)."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from alerts.store.changes import MAX_CHANGES, AlertChange, ChangeHead
from alerts.store.models import (
    DEFAULT_LIMIT,
    Alert,
    AlertState,
    AlertStatus,
    AuditEntry,
    DispositionStats,
    OperatorFigures,
    Role,
    Session,
    Token,
    User,
)
from alerts.store.sql_wall import CameraAlerts
from selector.suppression import Suppression


@runtime_checkable
class AlertStore(Protocol):
    """Persistent alerts, fed from the bus and read by the API (thread-safe)."""

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Store one event record (start or end), idempotent by ``event_id``, or apply a
        run marker (close the camera's alerts left open by earlier runs).

        Raises:
            InvalidEventError: The record is neither a valid event record nor a valid run
                marker (every store validates: the alert service relies on it).
            AlertStoreError: The database failed.
        """
        ...

    def get(self, event_id: str) -> Alert | None:
        """The alert, or ``None``."""
        ...

    def list(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        states: Collection[AlertState] | None = None,
        ongoing: bool | None = None,
        camera_ids: Collection[str] | None = None,
        owner: str | None = None,
        after_event_id: str | None = None,
    ) -> builtins.list[Alert]:
        """Alerts matching all given filters, most urgent then most recent first (with
        ``after_event_id``: event ids after it, in id order, for keyset pages).

        ``states``: lifecycle states (not closed: ``new``, ``claimed``, ``escalated``);
        ``ongoing``: whether the event is still going on (``open`` is its older name);
        ``camera_ids``: these cameras only (empty: none); ``owner``: claimed by them."""
        ...

    def count(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
        states: Collection[AlertState] | None = None,
        ongoing: bool | None = None,
        camera_ids: Collection[str] | None = None,
        owner: str | None = None,
    ) -> int:
        """Number of alerts matching the filters."""
        ...

    def acknowledge(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Mark an alert acknowledged (idempotent); raises ``AlertNotFoundError``."""
        ...

    def ping(self) -> None:
        """Raise ``AlertStoreError`` if the store is not usable (readiness)."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


@runtime_checkable
class ControlStore(Protocol):
    """The control plane's source of truth: suppressions, the rules document, false positives.

    Implemented by ``SqliteAlertStore``; the API needs it when the control plane is on.
    """

    def add_suppression(self, suppression: Suppression) -> None:
        """Store ``suppression`` (replacing one with the same id)."""
        ...

    def get_suppression(self, suppression_id: str) -> Suppression | None:
        """The suppression, or ``None``."""
        ...

    def list_suppressions(
        self, *, active_only: bool = True, now: float | None = None
    ) -> builtins.list[Suppression]:
        """Suppressions, newest first; only those not expired at ``now`` if ``active_only``."""
        ...

    def delete_suppression(self, suppression_id: str) -> bool:
        """Delete it; ``False`` if there was none."""
        ...

    def get_rules(self) -> tuple[int, builtins.list[dict[str, Any]]] | None:
        """``(revision, rules)``, or ``None`` when no rules were stored yet."""
        ...

    def put_rules(self, rules: Sequence[Mapping[str, Any]], expected_revision: int | None) -> int:
        """Replace the rules; returns the new revision (``RulesRevisionConflictError``)."""
        ...

    def mark_false_positive(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Set the alert's status to ``false_positive``; raises ``AlertNotFoundError``."""
        ...


class Keep:
    """Marker: leave a field as it is (``transition(set_owner=KEEP)``)."""


KEEP = Keep()


@runtime_checkable
class PeopleStore(Protocol):
    """Users, their browser sessions and machine tokens (shared by every API replica).

    Passwords, session ids and token secrets never reach the store: only their hashes.
    User names are unique case-insensitively; lookups ignore case.
    """

    def add_user(
        self, name: str, *, role: Role, groups: Sequence[str], password_hash: str, now: float
    ) -> User:
        """Create a user; raises ``UserExistsError``."""
        ...

    def get_user(self, name: str) -> User | None:
        """The user ``name`` (any case), or ``None``."""
        ...

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of ``name``, or ``None`` (no such user)."""
        ...

    def list_users(self) -> builtins.list[User]:
        """Every user, by name."""
        ...

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
        """Change what is given (``None``: unchanged); raises ``UserNotFoundError``.

        Disabling a user or changing their password ends their sessions.
        """
        ...

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
        """Store a new session (its id's hash) of ``user``; raises ``UserNotFoundError``."""
        ...

    def get_session(self, session_hash: str, *, now: float, touch: bool = True) -> Session | None:
        """The live session of that id hash, or ``None`` (unknown, past its absolute end or
        idle too long, or its user disabled or gone).  Counts as activity unless ``touch``
        is false: ``last_seen_at`` moves to ``now`` (written at most once a minute)."""
        ...

    def delete_session(self, session_hash: str) -> bool:
        """End one session (sign-out); whether it existed."""
        ...

    def delete_sessions_of(self, user: str) -> int:
        """End every session of ``user``; how many."""
        ...

    def create_token(self, token: Token, *, secret_hash: str) -> Token:
        """Store a new token (``token.token_id`` unique)."""
        ...

    def get_token(self, token_id: str) -> tuple[Token, str] | None:
        """``(token, secret_hash)``, revoked or not, or ``None``."""
        ...

    def list_tokens(self) -> builtins.list[Token]:
        """Every token, newest first (no secrets)."""
        ...

    def revoke_token(self, token_id: str, *, now: float) -> Token | None:
        """Revoke (idempotent: the first revocation time stays); ``None`` if unknown."""
        ...

    def touch_token(self, token_id: str, *, now: float) -> None:
        """Record a use (``last_used_at``; written at most once a minute)."""
        ...


@runtime_checkable
class AuditStore(Protocol):
    """The append-only audit trail."""

    def append_audit(self, entry: AuditEntry) -> int:
        """Add one entry; its ``seq``."""
        ...

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
        """Entries matching every filter, newest first.  ``action`` matches a whole
        action (``alert.claim``) or a prefix ending in a dot (``alert.``);
        ``alert_cameras``: only entries about the alerts and suppressions of these
        cameras."""
        ...

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
        ...


@runtime_checkable
class LifecycleStore(Protocol):
    """The alert lifecycle: atomic transitions, the SLA escalation, disposition figures."""

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
        """Move an alert to ``to_state`` if it is in one of ``from_states`` (and, with
        ``require_owner``, owned by them), in one transaction with its audit entry.

        ``fields``: lifecycle columns to set with it (``disposition``, ``close_note``,
        ``escalated_to``, ``escalation_ref``, ``escalated_by``); ``claimed_at``,
        ``escalated_at``, ``closed_at``/``closed_by`` are set by the transition itself
        (``claimed_at`` only the first time).  ``status`` (the older field) follows.
        Concurrent callers: exactly one wins, the others get the conflict.

        Raises:
            AlertNotFoundError: No such alert.
            TransitionConflictError: Its state (or owner) does not allow it now.
        """
        ...

    def escalate_overdue(
        self, *, min_priority: int, claim_within_s: float, now: float
    ) -> builtins.list[str]:
        """Escalate to supervisors every alert still ``new`` at ``min_priority`` or above
        that was received more than ``claim_within_s`` ago, once (a conditional update:
        several service replicas may call this at once), each with an audit entry by
        ``sla``.  Returns their event ids."""
        ...

    def disposition_stats(
        self,
        *,
        by: Literal["rule", "camera"],
        since: float,
        until: float,
        camera_ids: Collection[str] | None = None,
    ) -> builtins.list[DispositionStats]:
        """Per rule id or camera id, the alerts received in ``[since, until)`` (UNIX s)
        of ``camera_ids`` (``None``: all) and what was made of them."""
        ...

    def operator_stats(
        self,
        *,
        since: float,
        until: float,
        camera_ids: Collection[str] | None = None,
    ) -> builtins.list[OperatorFigures]:
        """Per operator, of the alerts of ``camera_ids`` (``None``: all): their open claims
        now, and of the alerts received in ``[since, until)`` (UNIX s) how many they
        claimed, closed, closed as false alarms, and the median times to claim and to
        close.  Most open claims first, then by name."""
        ...


class ExpiredAlert(NamedTuple):
    """An alert past its retention: what deleting it takes (``RetentionStore``)."""

    event_id: str
    snapshot: str | None
    """Its snapshot's evidence key, if any."""
    clip: str | None
    """Its clip's evidence key, if any."""


@runtime_checkable
class RetentionStore(Protocol):
    """Deleting old alerts, and jobs that run once per period across replicas.

    Audit entries are never deleted (append-only); they keep naming alerts that are gone.
    """

    def claim_job(self, name: str, *, holder: str, now: float, every_s: float) -> bool:
        """Claim the run of job ``name`` due at ``now`` (UNIX s) for ``holder``: ``True``
        for exactly one caller until ``now + every_s``, whatever the number of processes
        sharing the store; ``False`` for everyone else (a conditional write)."""
        ...

    def alert_cameras(self) -> builtins.list[str]:
        """Every camera id that has alerts, sorted."""
        ...

    def expired_alerts(
        self, camera_id: str, *, before: float, limit: int, offset: int = 0
    ) -> builtins.list[ExpiredAlert]:
        """Alerts of ``camera_id`` whose event started (``wall_time``) before ``before``
        (UNIX s), oldest first, at most ``limit`` after skipping ``offset``."""
        ...

    def delete_alerts(self, event_ids: Collection[str]) -> int:
        """Delete these alerts (unknown ids are ignored); how many were deleted."""
        ...


@runtime_checkable
class ChangeFeedStore(Protocol):
    """The store-wide change sequence: every change of an alert numbered in commit order,
    so a reader can follow what changed after the last number it has (the operators'
    live queue, ``GET /api/v1/alerts/changes``)."""

    def change_head(self) -> ChangeHead:
        """The last change number handed out, and how far removals were pruned."""
        ...

    def changes_since(
        self,
        after: int,
        *,
        through: int,
        camera_ids: Collection[str] | None = None,
        limit: int = MAX_CHANGES,
    ) -> list[AlertChange]:
        """Changes numbered in ``(after, through]``, oldest first, at most ``limit``, each
        alert once as it is now (``ChangesPrunedError``: reload, the removals after
        ``after`` were forgotten)."""
        ...

    def prune_removals(self, *, before: float) -> int:
        """Forget removals made before ``before`` (UNIX seconds); how many."""
        ...


@runtime_checkable
class WallStore(Protocol):
    """Each camera's most urgent open alert, for the operators' wall."""

    def wall_alerts(
        self,
        states: Collection[AlertState],
        *,
        camera_ids: Collection[str] | None = None,
        limit: int = ...,
    ) -> list[CameraAlerts]:
        """Per camera with alerts in ``states``: its top alert and their count, most
        urgent camera first."""
        ...
