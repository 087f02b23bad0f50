"""Where alerts live for operators: the ``AlertStore`` protocol and its SQLite implementation.

An *alert* is the stored form of one event (one ``event_id``): the event record
fields plus what operators do with it (``status``, acknowledgement).  The store is
fed by subscribing ``store.upsert`` to the event bus; the API reads it.  The bus also
carries *run markers*: a worker run announces itself per camera when it starts, and
the store closes that camera's alerts an earlier run left open (the earlier process
was killed or crashed before their end), with ``end_reason = "interrupted"``.  A
PostgreSQL store slots in behind the same protocol later (the SQL is plain and
parameterised; ``ON CONFLICT`` upserts exist there too).

The same database holds the control plane's source of truth (``ControlStore``):
operator *suppressions* (``selector.suppression.Suppression``) and the *rules*
document (a list of rule dicts with a revision number for optimistic concurrency).

Modules: ``models`` (``Alert``, users, sessions, tokens, audit entries, errors),
``protocols`` (``AlertStore``, ``ControlStore``, ``PeopleStore``, ``AuditStore``,
``LifecycleStore``), ``lifecycle`` (states and what each allows), ``migrations`` (the
SQLite schema, in order), ``sqlite`` (``SqliteAlertStore``, the base) and its mixins
``sqlite_control``, ``sqlite_people``, ``sqlite_audit``, ``sqlite_lifecycle``.  Everything
is importable from ``alerts.store``.
"""

from alerts.store.migrations import MIGRATIONS
from alerts.store.models import (
    ALERT_STATES,
    ALERT_STATUSES,
    DEFAULT_LIMIT,
    DISPOSITIONS,
    MAX_LIMIT,
    ROLES,
    ActorKind,
    Alert,
    AlertNotFoundError,
    AlertState,
    AlertStatus,
    AlertStoreError,
    AuditEntry,
    DetailValue,
    Disposition,
    DispositionStats,
    EndReason,
    Role,
    RulesRevisionConflictError,
    Session,
    Token,
    TransitionConflictError,
    User,
    UserExistsError,
    UserNotFoundError,
)
from alerts.store.protocols import (
    KEEP,
    AlertStore,
    AuditStore,
    ControlStore,
    Keep,
    LifecycleStore,
    PeopleStore,
)
from alerts.store.sqlite import SqliteAlertStore

_MIGRATIONS = MIGRATIONS  # the name tests and tools used before the split

__all__ = [
    "ALERT_STATES",
    "ALERT_STATUSES",
    "DEFAULT_LIMIT",
    "DISPOSITIONS",
    "KEEP",
    "MAX_LIMIT",
    "MIGRATIONS",
    "ROLES",
    "ActorKind",
    "Alert",
    "AlertNotFoundError",
    "AlertState",
    "AlertStatus",
    "AlertStore",
    "AlertStoreError",
    "AuditEntry",
    "AuditStore",
    "ControlStore",
    "DetailValue",
    "Disposition",
    "DispositionStats",
    "EndReason",
    "Keep",
    "LifecycleStore",
    "PeopleStore",
    "Role",
    "RulesRevisionConflictError",
    "Session",
    "SqliteAlertStore",
    "Token",
    "TransitionConflictError",
    "User",
    "UserExistsError",
    "UserNotFoundError",
]
