"""``SqlAlertStore``: every part of the alert store that is plain SQL, as one class.

The alerts (``sql_alerts``), the control plane (``sql_control``), people (``sql_people``),
the audit trail (``sql_audit``), the lifecycle (``sql_lifecycle``), retention
(``sql_retention``), the change sequence (``sql_changes``), the wall's query
(``sql_wall``) and the track summaries of forensic search (``sql_tracks``).  A backend
subclass opens the connection, applies its own migrations and says how to read the schema
version:
``sqlite.SqliteAlertStore`` (one machine, the default) and ``postgres.PostgresAlertStore``
(shared by several alert-service replicas).
"""

from __future__ import annotations

from types import TracebackType

from alerts.store.sql_alerts import AlertsMixin
from alerts.store.sql_audit import AuditMixin
from alerts.store.sql_changes import ChangesMixin
from alerts.store.sql_common import db_errors
from alerts.store.sql_control import ControlMixin
from alerts.store.sql_lifecycle import LifecycleMixin
from alerts.store.sql_people import PeopleMixin
from alerts.store.sql_retention import RetentionMixin
from alerts.store.sql_stats import SqlStatsMixin
from alerts.store.sql_timeline import TimelineMixin
from alerts.store.sql_tracks import TracksMixin
from alerts.store.sql_wall import WallMixin


class SqlAlertStore(
    AlertsMixin,
    ControlMixin,
    PeopleMixin,
    AuditMixin,
    LifecycleMixin,
    SqlStatsMixin,
    RetentionMixin,
    ChangesMixin,
    WallMixin,
    TracksMixin,
    TimelineMixin,
):
    """``AlertStore``, ``ControlStore``, ``PeopleStore``, ``AuditStore``, ``LifecycleStore``,
    ``RetentionStore`` and ``TrackStore`` on one SQL connection guarded by a lock (safe to
    share between threads: the consumer thread writes, API threads read and act).

    Subclasses set ``path``, ``_conn`` and ``_lock`` and implement ``schema_version``.
    """

    backend: str = "sql"
    """``"sqlite"`` or ``"postgres"`` (for health answers and logs)."""

    @property
    def schema_version(self) -> int:
        """Number of this backend's migrations applied to the database."""
        raise NotImplementedError

    def ping(self) -> None:
        """Run a trivial query; raise ``AlertStoreError`` if the database is unusable."""
        with self._lock, db_errors("alert store not usable", self.path):
            self._conn.execute("SELECT 1 FROM alerts LIMIT 1").fetchall()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> SqlAlertStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
