"""What only the PostgreSQL store has, against the real local server (``tests/pg.py``).

The store's behaviour (alerts, control, people, audit, lifecycle) is tested on both backends
by the store tests (fixture ``store_factory``); here: the dialect rewriting, rows, DSNs that
never show a password, the password from the environment (a role that needs one), the schema
kept in step with SQLite's, migrations applied once by replicas opening at once, a newer
database refused, a lost connection failing one call and the next reconnecting, and a
configuration that picks PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from alerts.store import AlertStoreError, SqliteAlertStore
from alerts.store.pg_migrations import PG_MIGRATIONS
from alerts.store.postgres import (
    PgConnection,
    PgRow,
    PostgresAlertStore,
    display_dsn,
    dsn_has_password,
    translate,
)
from argus.app import open_alert_store
from argus.config import ConfigError, load_config
from deploy.postgres import LocalPostgres
from tests.factories import make_event
from tests.pg import fresh_schema

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def schema(postgres: LocalPostgres) -> Iterator[str]:
    yield from fresh_schema(postgres)


def _admin(server: LocalPostgres) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn, autocommit=True)


# -- the dialect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlite", "pg"),
    [
        (
            "SELECT * FROM t WHERE a = ? AND b IN (?, ?)",
            "SELECT * FROM t WHERE a = %s AND b IN (%s, %s)",
        ),
        ("SELECT '?', \"we?ird\" FROM t WHERE a = ?", "SELECT '?', \"we?ird\" FROM t WHERE a = %s"),
        (
            "SELECT 'it''s ?' WHERE x LIKE 'a%' AND y = ?",
            "SELECT 'it''s ?' WHERE x LIKE 'a%%' AND y = %s",
        ),
        ("SELECT 5 % 2, ?", "SELECT 5 %% 2, %s"),
        ("owner = ? COLLATE NOCASE", "owner = %s"),
        ("SELECT ' COLLATE NOCASE'", "SELECT ' COLLATE NOCASE'"),
    ],
)
def test_translate_rewrites_placeholders_outside_literals(sqlite: str, pg: str) -> None:
    assert translate(sqlite) == pg


def test_translated_statements_run(pg_schema_store: PostgresAlertStore) -> None:
    store = pg_schema_store
    with store._lock:
        row = store._conn.execute(
            "SELECT '100%' AS a, ? AS b, 7 % 4 AS c, 'x?' AS d", ("it's",)
        ).fetchone()
    assert (row["a"], row["b"], row["c"], row["d"]) == ("100%", "it's", 3, "x?")


def test_rows_read_by_index_and_by_name() -> None:
    row = PgRow((1, "a"), {"n": 0, "s": 1})
    (n, s) = row
    assert (n, s) == (1, "a") and row["s"] == "a" and row[0] == 1 and row.keys() == ["n", "s"]
    with pytest.raises(KeyError):
        row["missing"]


def test_a_dsn_is_shown_without_its_password() -> None:
    dsn = "postgresql://app:s3cret-pw@db.example:6432/argus?sslmode=require"
    assert display_dsn(dsn) == "postgresql://app@db.example:6432/argus"
    assert dsn_has_password(dsn) and not dsn_has_password("host=db user=app dbname=argus")
    assert display_dsn("host=db user=app dbname=argus password=x") == "postgresql://app@db/argus"
    with pytest.raises(ValueError, match="not a PostgreSQL connection string"):
        dsn_has_password("postgresql://[::1")


# -- the schema ----------------------------------------------------------------------------


def test_the_schema_has_the_same_tables_columns_and_indexes_as_sqlite(
    postgres: LocalPostgres, schema: str, tmp_path: Path
) -> None:
    with PostgresAlertStore(postgres.dsn, schema=schema) as pg:
        pg_columns = {t: [c for tt, c in pg.tables() if tt == t] for t, _ in pg.tables()}
        with pg._lock:
            pg_indexes = {
                r[0]
                for r in pg._conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                )
                if not r[0].endswith("_pkey")
            }
    with SqliteAlertStore(tmp_path / "a.sqlite") as lite:
        conn = sqlite3.connect(lite.path)
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "sqlite_sequence"
        ]
        lite_columns = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
        lite_indexes = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not r[0].startswith("sqlite_autoindex_")
        }
        conn.close()
    assert pg_columns.pop("argus_schema_version") == ["singleton", "version"]
    assert {t: sorted(c) for t, c in pg_columns.items()} == {
        t: sorted(c) for t, c in lite_columns.items()
    }
    assert pg_indexes == lite_indexes and "alerts_queue" in pg_indexes


def test_replicas_opening_at_once_migrate_once(postgres: LocalPostgres, schema: str) -> None:
    versions: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        try:
            start.wait()
            with PostgresAlertStore(postgres.dsn, schema=schema) as s:
                versions.append(s.schema_version)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and versions == [len(PG_MIGRATIONS)] * 4


def test_a_newer_database_is_refused(postgres: LocalPostgres, schema: str) -> None:
    PostgresAlertStore(postgres.dsn, schema=schema).close()
    with _admin(postgres) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.argus_schema_version SET version = 99").format(
                sql.Identifier(schema)
            )
        )
    with pytest.raises(AlertStoreError, match="newer than this code"):
        PostgresAlertStore(postgres.dsn, schema=schema)


def test_a_bad_schema_name_is_refused(postgres: LocalPostgres) -> None:
    with pytest.raises(ValueError, match="schema must match"):
        PostgresAlertStore(postgres.dsn, schema='x"; DROP TABLE alerts; --')


# -- connections ---------------------------------------------------------------------------


def test_a_lost_connection_fails_one_call_and_the_next_reconnects(
    postgres: LocalPostgres, schema: str
) -> None:
    with PostgresAlertStore(postgres.dsn, schema=schema) as store:
        store.upsert(make_event(1).to_record())
        with _admin(postgres) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'argus' AND pid <> pg_backend_pid() "
                "AND query NOT LIKE '%%pg_stat_activity%%'"
            ).fetchall()
        assert killed and all(r[0] for r in killed)
        with pytest.raises(AlertStoreError) as info:
            store.count()
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        assert store.count() == 1  # a new connection
        store.upsert(make_event(2).to_record())
        assert store.count() == 2


def test_an_unreachable_server_is_a_store_error_naming_no_password() -> None:
    with pytest.raises(AlertStoreError) as info:
        PostgresAlertStore(
            "postgresql://argus@127.0.0.1:1/argus", password="pw-not-shown", connect_timeout_s=1
        )
    text = str(info.value)
    assert "cannot open alert store" in text and "pw-not-shown" not in text
    assert "postgresql://argus@127.0.0.1:1/argus" in text


@pytest.fixture
def password_role(postgres: LocalPostgres) -> Iterator[tuple[str, str]]:
    """A role that must give its password (scram-sha-256 on 127.0.0.1), and the password."""
    role, password = f"pw_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    hba = postgres.data_dir / "pg_hba.conf"
    before = hba.read_text()
    with _admin(postgres) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE argus TO {}").format(sql.Identifier(role)))
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + before)
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield role, password
    finally:
        hba.write_text(before)
        with _admin(postgres) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_the_password_comes_from_the_environment(
    postgres: LocalPostgres,
    password_role: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role, password = password_role
    schema = f"s_{role}"
    dsn = f"postgresql://{role}@127.0.0.1:{postgres.port}/argus"
    config = tmp_path / "argus.yaml"
    config.write_text(
        "cameras:\n  - id: c1\n    source: /dev/null\n"
        f"storage:\n  postgres:\n    dsn: {dsn}\n    schema: {schema}\n"
        "    password_env: SITE_DB_PASSWORD\n"
    )
    cfg = load_config(config)
    monkeypatch.delenv("SITE_DB_PASSWORD", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(AlertStoreError, match="password") as info:
        open_alert_store(cfg.storage, tmp_path)
    assert password not in str(info.value)
    monkeypatch.setenv("SITE_DB_PASSWORD", "wrong")
    with pytest.raises(AlertStoreError, match="password authentication failed"):
        open_alert_store(cfg.storage, tmp_path)
    monkeypatch.setenv("SITE_DB_PASSWORD", password)
    store = open_alert_store(cfg.storage, tmp_path)
    try:
        assert isinstance(store, PostgresAlertStore) and store.schema == schema
        store.upsert(make_event(1).to_record())
        assert store.count() == 1 and store.path == dsn
    finally:
        store.close()
        with _admin(postgres) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# -- configuration -------------------------------------------------------------------------


def test_a_config_with_the_password_in_the_dsn_is_refused_without_showing_it(
    tmp_path: Path,
) -> None:
    config = tmp_path / "argus.yaml"
    config.write_text(
        "cameras:\n  - id: c1\n    source: /dev/null\nstorage:\n  postgres:\n"
        "    dsn: postgresql://app:hunter2-secret@db.example/argus\n"
    )
    with pytest.raises(ConfigError, match="must not hold the password") as info:
        load_config(config)
    assert "hunter2-secret" not in str(info.value)


def test_a_config_naming_both_stores_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "argus.yaml"
    config.write_text(
        "cameras:\n  - id: c1\n    source: /dev/null\nstorage:\n  sqlite: /tmp/a.db\n  postgres:\n"
        "    dsn: postgresql://app@db.example/argus\n"
    )
    with pytest.raises(ConfigError, match="sqlite or postgres, not both"):
        load_config(config)


def test_after_a_failed_connect_calls_fail_at_once_for_a_moment() -> None:
    tries: list[float] = []
    now = [100.0]

    def connect() -> psycopg.Connection[Any]:
        tries.append(now[0])
        raise psycopg.OperationalError("connection refused")

    conn = PgConnection(connect, write_lock=1, retry_after_s=1.0, clock=lambda: now[0])
    with pytest.raises(psycopg.OperationalError, match="connection refused"):
        conn.execute("SELECT 1")
    now[0] += 0.5
    with pytest.raises(psycopg.OperationalError, match=r"not connected \(the last try, 0.5 s"):
        conn.execute("SELECT 1")
    assert tries == [100.0]
    now[0] += 0.6
    with pytest.raises(psycopg.OperationalError, match="connection refused"):
        conn.execute("SELECT 1")
    assert tries == [100.0, 101.1]


def test_a_transaction_whose_connection_is_lost_is_not_carried_on_elsewhere(
    postgres: LocalPostgres, schema: str
) -> None:
    with PostgresAlertStore(postgres.dsn, schema=schema) as store:
        conn = store._pg
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO jobs VALUES ('j', 'h', 1, 2)")
        conn.raw.close()  # as if the server had gone
        with pytest.raises(psycopg.OperationalError, match="lost inside a transaction"):
            conn.execute("INSERT INTO jobs VALUES ('k', 'h', 1, 2)")
        with pytest.raises(psycopg.OperationalError, match="ROLLBACK: the connection was lost"):
            conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0  # reconnected
