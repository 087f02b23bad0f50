"""A real PostgreSQL for tests, and the store tests run on both backends.

* ``postgres`` (session scope): one ``deploy.postgres.LocalPostgres`` (Debian's server, its own
  data directory, a free loopback port) for the whole run, stopped at the end.  Skips when
  PostgreSQL is not installed (a failure under ``ARGUS_NO_SKIP=1``; ``make test`` installs it).
* ``store_factory`` (function scope, parametrised ``sqlite`` / ``postgres``): a callable
  opening a store on one fresh database per test (SQLite: a file under ``tmp_path``;
  PostgreSQL: a schema of its own, dropped afterwards).  Calling it again opens another store
  on the same database (another replica).  Every store it opened is closed at the end.
* ``pg_schema_store``: ``PostgresAlertStore`` on a fresh schema (for PostgreSQL-only tests).
* ``running_postgres()``: a server of a test's own (to stop and start it: fault trials).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from alerts.store import SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from deploy.postgres import LocalPostgres, PostgresNotFoundError, find_pg_bin

StoreFactory = Callable[[], SqlAlertStore]

__all__ = [
    "StoreFactory",
    "fresh_schema",
    "pg_home",
    "postgres",
    "running_postgres",
    "store_factory",
]


def pg_home() -> Path:
    """A fresh directory a ``LocalPostgres`` can live in: as root, one the ``postgres`` user
    can enter (pytest's base directory is mode 0700).  The caller removes it."""
    home = Path(tempfile.mkdtemp(prefix="argus-pg-"))
    home.chmod(0o711)
    return home


def running_postgres() -> Iterator[LocalPostgres]:
    """A local PostgreSQL server in a fresh home, stopped and removed afterwards; skips the
    test when PostgreSQL is not installed."""
    try:
        find_pg_bin()
    except PostgresNotFoundError as e:
        pytest.skip(f"PostgreSQL not installed (make postgres-deps): {e}")
    home = pg_home()
    server = LocalPostgres(home)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One local PostgreSQL server for the whole test session."""
    yield from running_postgres()


def fresh_schema(server: LocalPostgres) -> Iterator[str]:
    """A schema name no other test uses; the schema (if made) is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one fresh database of the parametrised backend (see the module)."""
    opened: list[SqlAlertStore] = []
    if request.param == "sqlite":
        path = tmp_path / "db" / "alerts.sqlite"

        def sqlite_store() -> SqlAlertStore:
            s = SqliteAlertStore(path)
            opened.append(s)
            return s

        yield sqlite_store
    else:
        server: LocalPostgres = request.getfixturevalue("postgres")
        schemas = fresh_schema(server)
        schema = next(schemas)

        def pg_store() -> SqlAlertStore:
            s = PostgresAlertStore(server.dsn, schema=schema)
            opened.append(s)
            return s

        try:
            yield pg_store
        finally:
            for s in opened:
                s.close()
            opened.clear()
            next(schemas, None)
    for s in opened:
        s.close()


@pytest.fixture
def pg_schema_store(postgres: LocalPostgres) -> Iterator[PostgresAlertStore]:
    """``PostgresAlertStore`` on a schema of its own."""
    schemas = fresh_schema(postgres)
    store = PostgresAlertStore(postgres.dsn, schema=next(schemas))
    try:
        yield store
    finally:
        store.close()
        next(schemas, None)
