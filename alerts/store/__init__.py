"""Where alerts live for operators: the ``AlertStore`` protocol and its SQLite implementation.

An *alert* is the stored form of one event (one ``event_id``): the event record
fields plus what operators do with it (``status``, acknowledgement).  The store is
fed by subscribing ``store.upsert`` to the event bus; the API reads it.  The bus also
carries *run markers*: a worker run announces itself per camera when it starts, and
the store closes that camera's alerts an earlier run left open (the earlier process
was killed or crashed before their end), with ``end_reason = "interrupted"``.  Two
backends implement every protocol with the same SQL: SQLite (one machine, the default)
and PostgreSQL (several alert-service replicas sharing one database).

The same database holds the control plane's source of truth (``ControlStore``):
operator *suppressions* (``selector.suppression.Suppression``) and the *rules*
document (a list of rule dicts with a revision number for optimistic concurrency).

Modules: ``models`` (``Alert``, users, sessions, tokens, audit entries, errors),
``protocols`` (``AlertStore``, ``ControlStore``, ``PeopleStore``, ``AuditStore``,
``LifecycleStore``, ``RetentionStore``, ``ChangeFeedStore``; its answers in ``changes``),
``lifecycle`` (states and what each allows),
``tracks`` (``Track``, ``TrackQuery``, ``TrackStore``: track summaries for forensic search),
``sql_base`` (``SqlAlertStore``: the mixins ``sql_alerts``, ``sql_control``,
``sql_people``, ``sql_audit``, ``sql_lifecycle``, ``sql_retention``, ``sql_tracks`` on one
connection),
``sqlite`` (``SqliteAlertStore``; its schema in ``migrations``), ``postgres``
(``PostgresAlertStore``; its schema in ``pg_migrations``) and ``open`` (the store a
configuration names).  Everything is importable from ``alerts.store``.
"""

from alerts.store.changes import MAX_CHANGES, AlertChange, ChangeHead, ChangesPrunedError
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
    ChangeFeedStore,
    ControlStore,
    Keep,
    LifecycleStore,
    PeopleStore,
    WallStore,
)
from alerts.store.sql_base import SqlAlertStore
from alerts.store.sql_wall import CameraAlerts
from alerts.store.sqlite import SqliteAlertStore
from alerts.store.tracks import (
    DEFAULT_SCAN_LIMIT,
    DIRECTIONS,
    PARTS,
    Direction,
    ExpiredTrack,
    SearchTooBroadError,
    Track,
    TrackCandidates,
    TrackQuery,
    TrackStore,
)

_MIGRATIONS = MIGRATIONS  # the name tests and tools used before the split

__all__ = [
    "ALERT_STATES",
    "ALERT_STATUSES",
    "DEFAULT_LIMIT",
    "DEFAULT_SCAN_LIMIT",
    "DIRECTIONS",
    "DISPOSITIONS",
    "KEEP",
    "MAX_CHANGES",
    "MAX_LIMIT",
    "MIGRATIONS",
    "PARTS",
    "ROLES",
    "ActorKind",
    "Alert",
    "AlertChange",
    "AlertNotFoundError",
    "AlertState",
    "AlertStatus",
    "AlertStore",
    "AlertStoreError",
    "AuditEntry",
    "AuditStore",
    "CameraAlerts",
    "ChangeFeedStore",
    "ChangeHead",
    "ChangesPrunedError",
    "ControlStore",
    "DetailValue",
    "Direction",
    "Disposition",
    "DispositionStats",
    "EndReason",
    "ExpiredTrack",
    "Keep",
    "LifecycleStore",
    "PeopleStore",
    "Role",
    "RulesRevisionConflictError",
    "SearchTooBroadError",
    "Session",
    "SqlAlertStore",
    "SqliteAlertStore",
    "Token",
    "Track",
    "TrackCandidates",
    "TrackQuery",
    "TrackStore",
    "TransitionConflictError",
    "User",
    "UserExistsError",
    "UserNotFoundError",
    "WallStore",
]
