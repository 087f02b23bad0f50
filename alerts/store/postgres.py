"""``PostgresAlertStore``: the alert store in PostgreSQL, shared by several alert-service
replicas (users, sessions, alerts, the lifecycle and the audit trail in one database).

Everything but the connection and the schema is the SQL the SQLite store runs
(``sql_base.SqlAlertStore``).  ``PgConnection`` gives that SQL a connection that behaves as
the SQLite one does (autocommit, explicit transactions, rows by index or by name) and
rewrites the little of it that PostgreSQL spells differently:

* ``?`` placeholders become ``%s`` outside string literals and quoted names (and every
  ``%`` becomes ``%%``);
* ``BEGIN IMMEDIATE`` (SQLite: take the database's write lock now) becomes ``BEGIN`` plus a
  transaction-level advisory lock that every replica's write transactions take: what a
  transaction reads stays true until it commits, as on SQLite, so a read-then-write (a
  claim, the rules' revision check) cannot interleave with another replica's;
* ``COLLATE NOCASE`` is dropped: the columns it was applied to (``alerts.owner``, user
  names) carry a case-insensitive collation here (``pg_migrations``).

Single statements (reads, one-statement writes) run without the advisory lock: each is
atomic on its own, and a conditional ``UPDATE`` (the SLA job, a job claim) re-checks its
condition on the rows another replica changed meanwhile.

A lost connection (the server restarted, the network dropped) fails the call in hand with
``AlertStoreError`` (the API answers 503, the Kafka consumer retries without committing);
the next call connects again.  While connecting fails, calls fail at once with that failure
for ``RECONNECT_AFTER_S`` after each try, so API requests do not queue behind connection
timeouts to a server that is away.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from alerts.store.models import AlertStoreError
from alerts.store.pg_migrations import PG_MIGRATIONS
from alerts.store.sql_base import SqlAlertStore
from alerts.store.sql_common import Cursor
from alerts.store.sql_common import db_errors as _db_errors

logger = logging.getLogger("alerts.store")

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A schema name the store accepts (lower case, no quoting needed)."""
DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_STATEMENT_TIMEOUT_S: Final = 30.0
RECONNECT_AFTER_S: Final = 1.0
"""After a failed connect, calls fail at once for this long (s) rather than each waiting."""
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%| COLLATE NOCASE")


@lru_cache(maxsize=512)
def translate(statement: str) -> str:
    """The SQLite-dialect ``statement`` as psycopg takes it with parameters: ``?`` -> ``%s``
    and `` COLLATE NOCASE`` dropped outside string literals and quoted names; every ``%``
    doubled (psycopg reads ``%`` everywhere, literals included)."""

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "?":
            return "%s"
        if token == " COLLATE NOCASE":
            return ""
        return token.replace("%", "%%")  # "%", a literal or a quoted name

    return _TOKEN.sub(swap, statement)


class PgRow(tuple[Any, ...]):
    """A result row read by index (``row[0]``, unpacking) or by column name (``row["x"]``),
    as ``sqlite3.Row`` is."""

    _names: Mapping[str, int]

    def __new__(cls, values: Sequence[Any], names: Mapping[str, int]) -> PgRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:  # int, slice or column name
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)


def _pg_row(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    """psycopg row factory making ``PgRow``s."""
    names = {d.name: i for i, d in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, names)


class PgConnection:
    """A psycopg connection that speaks the SQLite dialect of the shared SQL (see the module
    docstring); reconnects on the next call after the server went away.  Not thread-safe:
    the store holds its lock around every use."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        write_lock: int,
        *,
        retry_after_s: float = RECONNECT_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            connect: Opens a new connection (autocommit).
            write_lock: Key of the advisory lock every write transaction takes.
            retry_after_s: After a failed connect, calls fail at once (with that failure)
                for this long, seconds, instead of each waiting on a server that is away.
            clock: Monotonic seconds (tests).
        """
        self._connect = connect
        self._write_lock = write_lock
        self._raw: psycopg.Connection[Any] | None = None
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._failed: tuple[float, psycopg.OperationalError] | None = None
        self._begun = False
        """``BEGIN IMMEDIATE`` given, its ``COMMIT``/``ROLLBACK`` not yet."""

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection, (re)connected when there is none usable.

        Raises:
            psycopg.OperationalError: Cannot connect (now, or less than ``retry_after_s``
                ago: the same failure again, without trying).
        """
        if self._raw is None or self._raw.closed or self._raw.broken:
            if self._raw is not None:
                with suppress(psycopg.Error):
                    self._raw.close()
                logger.warning("alert store: connection to PostgreSQL lost; reconnecting")
                self._raw = None
            if self._failed is not None and self._clock() - self._failed[0] < self._retry_after_s:
                since, error = self._failed
                raise psycopg.OperationalError(
                    f"not connected (the last try, {self._clock() - since:.1f} s ago: {error})"
                )
            try:
                self._raw = self._connect()
            except psycopg.OperationalError as e:
                self._failed = (self._clock(), e)
                raise
            if self._failed is not None:
                logger.warning("alert store: connected to PostgreSQL again")
            self._failed = None
        return self._raw

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (``BEGIN`` given, no ``COMMIT``/``ROLLBACK`` yet)."""
        if self._raw is None or self._raw.closed:
            return False
        status = self._raw.info.transaction_status
        return status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """Run one statement of the shared SQL; its cursor (``fetchone``/``fetchall``/
        iteration give ``PgRow``s, ``rowcount`` the rows changed)."""
        if statement == "BEGIN IMMEDIATE":
            raw = self.raw
            raw.execute("BEGIN")
            self._begun = True
            return raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_lock,))
        if statement in ("COMMIT", "ROLLBACK"):
            self._begun = False
            if self._raw is None or self._raw.closed or self._raw.broken:
                raise psycopg.OperationalError(f"{statement}: the connection was lost")
            return self._raw.execute(statement)
        if self._begun and (self._raw is None or self._raw.closed or self._raw.broken):
            # never carry on a transaction's statements on a new connection, outside it
            raise psycopg.OperationalError("the connection was lost inside a transaction")
        return self.raw.execute(translate(statement), tuple(parameters))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._raw is not None:
            self._raw.close()


def display_dsn(dsn: str) -> str:
    """``dsn`` as ``postgresql://user@host:port/dbname`` for logs and errors: never the
    password, nor any other option.

    Raises:
        ValueError: ``dsn`` is not a connection string or URI.
    """
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as e:
        raise ValueError("not a PostgreSQL connection string") from e
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def dsn_has_password(dsn: str) -> bool:
    """Whether ``dsn`` carries a password (refused in a config file).

    Raises:
        ValueError: ``dsn`` is not a connection string or URI.
    """
    try:
        return bool(conninfo_to_dict(dsn).get("password"))
    except psycopg.ProgrammingError as e:
        raise ValueError("not a PostgreSQL connection string") from e


class PostgresAlertStore(SqlAlertStore):
    """The alert store (every store protocol) in a PostgreSQL database, shared by any number
    of processes.  One connection per store, guarded by a lock (as the SQLite store);
    migrations applied at open, once, however many replicas open it at once.
    """

    backend = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        password: str | None = None,
        schema: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
        application_name: str = "argus",
    ) -> None:
        """
        Args:
            dsn: libpq connection string or URI (``postgresql://argus@db:5432/argus``);
                without the password.
            password: The password (from the environment; ``None``: libpq's own means,
                ``PGPASSWORD``, ``~/.pgpass``, or none needed).
            schema: Keep the tables in this schema (created if missing; lower-case
                letters, digits, ``_``); ``None``: the role's default (``public``).
            connect_timeout_s: Give up connecting after this long, seconds.
            statement_timeout_s: The server cancels a statement running longer, seconds.
            application_name: Shown in ``pg_stat_activity``.

        Raises:
            ValueError: ``dsn`` is not a connection string, or ``schema`` not a plain name.
            AlertStoreError: The database cannot be reached or migrated.
        """
        self.path = display_dsn(dsn)
        if schema is not None and not SCHEMA_NAME.match(schema):
            raise ValueError(f"schema must match {SCHEMA_NAME.pattern}, got {schema!r}")
        self.schema = schema
        options = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
        if schema is not None:
            options += f" -c search_path={schema}"
        params: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(connect_timeout_s)),
            "application_name": application_name,
            "options": options,
            "row_factory": _pg_row,
        }
        if password is not None:
            params["password"] = password

        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(dsn, **params)

        self._lock = threading.Lock()
        key = zlib.crc32(f"argus:{schema or 'public'}:write".encode())
        self._pg = PgConnection(connect, write_lock=key)
        self._conn = self._pg
        self._migrate_key = zlib.crc32(f"argus:{schema or 'public'}:migrate".encode())
        with self._lock, _db_errors("cannot open alert store", self.path):
            self._migrate()

    def _migrate(self) -> None:
        """Create the schema if asked for, then apply the migrations the database lacks, all
        in one transaction under an advisory lock (a replica opening at the same time waits,
        then finds them applied)."""
        raw = self._pg.raw
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._migrate_key,))
            if self.schema is not None:
                raw.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            raw.execute(
                "CREATE TABLE IF NOT EXISTS argus_schema_version ("
                "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
                "version integer NOT NULL)"
            )
            row = raw.execute("SELECT version FROM argus_schema_version").fetchone()
            version = 0 if row is None else int(row[0])
            if version > len(PG_MIGRATIONS):
                raise AlertStoreError(
                    f"database schema version {version} is newer than this code "
                    f"({len(PG_MIGRATIONS)})",
                    path=self.path,
                )
            for number in range(version, len(PG_MIGRATIONS)):
                raw.execute(PG_MIGRATIONS[number])  # no parameters: several statements
                logger.info("alert store %s migrated to schema version %d", self.path, number + 1)
            if version < len(PG_MIGRATIONS):
                raw.execute(
                    "INSERT INTO argus_schema_version (version) VALUES (%s) "
                    "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
                    (len(PG_MIGRATIONS),),
                )

    @property
    def schema_version(self) -> int:
        """Number of PostgreSQL migrations applied (``argus_schema_version``)."""
        with self._lock, _db_errors("cannot read schema version", self.path):
            (version,) = self._conn.execute("SELECT version FROM argus_schema_version").fetchone()
        return int(version)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._pg.close()

    def tables(self) -> Iterator[tuple[str, str]]:
        """``(table, column)`` of every column of the store's tables (for schema checks)."""
        with self._lock, _db_errors("cannot read the schema", self.path):
            rows = self._conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
            ).fetchall()
        for r in rows:
            yield str(r[0]), str(r[1])
