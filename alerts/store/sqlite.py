"""``SqliteAlertStore``: the alert store in one SQLite file (WAL, one connection guarded by
a lock, migrations applied at open); the single-machine default.

Everything but the connection and the schema is plain SQL shared with PostgreSQL
(``sql_base.SqlAlertStore``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import suppress
from pathlib import Path

from alerts.store.migrations import ADD_COLUMN, MIGRATIONS, split_statements
from alerts.store.models import AlertStoreError
from alerts.store.sql_base import SqlAlertStore
from alerts.store.sql_common import db_errors as _db_errors
from ingest.retry import Backoff

logger = logging.getLogger("alerts.store")


class SqliteAlertStore(SqlAlertStore):
    """The alert store (every store protocol) on one SQLite file in WAL mode, safe to share
    between threads; several processes may open the same file (writes wait up to
    ``timeout_s`` for each other).
    """

    backend = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 10.0) -> None:
        """
        Args:
            path: Database file (parent directories are created) or ``":memory:"``.
            timeout_s: How long a write waits for another process's lock, seconds.

        Raises:
            AlertStoreError: The database cannot be opened or migrated.
        """
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            _private(Path(self.path))
        self._lock = threading.Lock()
        try:
            self._sqlite = self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._sqlite.row_factory = sqlite3.Row
            self._use_wal(timeout_s)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            raise AlertStoreError(f"cannot open alert store: {e}", path=self.path) from e

    def _use_wal(self, timeout_s: float) -> None:
        """Switch the database to write-ahead logging (a no-op once it is).

        Converting a database that is still in rollback-journal mode needs it to itself,
        and SQLite answers "database is locked" at once, without waiting, while another
        connection opens it: retried with back-off for up to ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        backoff = Backoff(0.005, 0.25)
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(backoff.next_delay())

    def _migrate(self) -> None:
        """Apply the migrations the database lacks, each in its own write transaction.

        The version is read again under the write lock, so two processes opening an old
        database at once apply each migration once.  An up-to-date database is only read.
        """
        (current,) = self._conn.execute("PRAGMA user_version").fetchone()
        if current == len(MIGRATIONS):
            return
        while True:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = self._conn.execute("PRAGMA user_version").fetchone()
                if version > len(MIGRATIONS):
                    raise AlertStoreError(
                        f"database schema version {version} is newer than this code "
                        f"({len(MIGRATIONS)})",
                        path=self.path,
                    )
                if version == len(MIGRATIONS):
                    self._conn.execute("COMMIT")
                    return
                for statement in split_statements(MIGRATIONS[version]):
                    self._apply_statement(statement)
                # PRAGMA takes no parameters; the value is an int read from the database.
                self._conn.execute(f"PRAGMA user_version = {int(version) + 1:d}")
                self._conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                raise
            logger.info("alert store %s migrated to schema version %d", self.path, version + 1)

    def _apply_statement(self, statement: str) -> None:
        """Run one migration statement; ``ADD COLUMN`` of an existing column is skipped."""
        added = ADD_COLUMN.match(statement)
        if added is not None:
            table, column = added.groups()
            # table is a \w+ name from this module's migration text, not user input
            have = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column in have:
                logger.info("alert store %s: %s.%s already exists", self.path, table, column)
                return
        self._conn.execute(statement)

    @property
    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the database (number of migrations applied)."""
        with self._lock, _db_errors("cannot read schema version", self.path):
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        return int(version)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._sqlite.close()


def _private(path: Path) -> None:
    """Create the database file readable and writable by this account only (it holds the
    password hashes); SQLite gives its -wal and -shm files the same mode.  An existing
    file keeps the mode its owner chose."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
