"""SqliteAlertStore as an AuditStore: append, filters, paging, and the triggers that keep the
trail append-only whoever asks (the store's connection or any other)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.store import AlertStoreError, AuditEntry, AuditStore, SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from alerts.store.sql_common import DB_ERRORS
from tests.factories import T0
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlAlertStore:
    """A store on a fresh database, SQLite and PostgreSQL in turn."""
    return store_factory()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    """A SQLite store (for what only SQLite has: its file, its migrations, its pragmas)."""
    s = SqliteAlertStore(tmp_path / "db" / "alerts.sqlite")
    yield s
    s.close()


def _entry(n: int, action: str, actor: str = "alice", **kw: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "at": datetime.fromtimestamp(T0 + n, UTC),
        "actor": actor,
        "actor_kind": "user",
        "action": action,
    }
    return AuditEntry.model_validate(fields | kw)


@pytest.fixture
def trail(store: SqlAlertStore) -> list[int]:
    """Seven entries at T0+1..T0+7; their seqs."""
    return [
        store.append_audit(e)
        for e in (
            _entry(1, "auth.login", client="10.0.0.1"),
            _entry(2, "alert.claim", target_kind="alert", target_id="e1"),
            _entry(3, "alert.close", target_kind="alert", target_id="e1"),
            _entry(4, "alerts.export", actor="bob"),  # not under the "alert." prefix
            _entry(5, "auth.login_failed", actor="mallory", actor_kind="anonymous"),
            _entry(6, "alert.claim", actor="bob", target_kind="alert", target_id="e2"),
            _entry(7, "token.create", actor="api-key", actor_kind="api_key", target_kind="token"),
        )
    ]


def test_is_an_audit_store(store: SqlAlertStore) -> None:
    assert isinstance(store, AuditStore)


def test_append_gives_increasing_seqs_and_list_is_newest_first(
    store: SqlAlertStore, trail: list[int]
) -> None:
    assert trail == sorted(trail) and len(set(trail)) == 7
    listed = store.list_audit()
    assert [e.seq for e in listed] == trail[::-1]
    first = listed[-1]
    assert first == _entry(1, "auth.login", client="10.0.0.1").model_copy(update={"seq": trail[0]})
    assert store.count_audit() == 7


@pytest.mark.parametrize(
    ("filters", "ats"),
    [
        ({"actor": "bob"}, [6, 4]),
        ({"action": "alert.claim"}, [6, 2]),
        ({"action": "alert."}, [6, 3, 2]),
        ({"action": "auth."}, [5, 1]),
        ({"action": "auth.login"}, [1]),
        ({"action": "alert"}, []),
        ({"target_kind": "alert"}, [6, 3, 2]),
        ({"target_kind": "alert", "target_id": "e1"}, [3, 2]),
        ({"since": T0 + 3}, [7, 6, 5, 4, 3]),
        ({"until": T0 + 3}, [2, 1]),
        ({"since": T0 + 2, "until": T0 + 6, "action": "alert."}, [3, 2]),
        ({"actor": "bob", "action": "alert."}, [6]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters_are_anded(
    store: SqlAlertStore, trail: list[int], filters: dict[str, Any], ats: list[int]
) -> None:
    got = store.list_audit(**filters)
    assert [round(e.at.timestamp() - T0) for e in got] == ats
    assert store.count_audit(**filters) == len(ats)


def test_paging_and_bounds(store: SqlAlertStore, trail: list[int]) -> None:
    assert [e.seq for e in store.list_audit(limit=3)] == trail[::-1][:3]
    assert [e.seq for e in store.list_audit(limit=3, offset=6)] == [trail[0]]
    assert store.list_audit(offset=7) == []
    for kw in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        with pytest.raises(ValueError):
            store.list_audit(**kw)


def test_detail_round_trips(store: SqlAlertStore) -> None:
    detail: dict[str, Any] = {
        "groups": ["lobby", "yard"],
        "n": 3,
        "share": 0.25,
        "ok": True,
        "none": None,
        "note": "비 ; '",
    }
    seq = store.append_audit(_entry(1, "user.update", detail=detail))
    (got,) = store.list_audit()
    assert got.seq == seq and got.detail == detail
    with pytest.raises(ValueError):
        store.append_audit(_entry(2, "x", detail={"v": float("nan")}))
    assert store.count_audit() == 1


def test_the_store_refuses_an_unknown_actor_kind(store: SqlAlertStore) -> None:
    entry = _entry(1, "x").model_copy(update={"actor_kind": "robot"})
    with pytest.raises(AlertStoreError):
        store.append_audit(entry)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit SET actor = 'someone else'",
        "UPDATE audit SET detail = '{}' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 1",
        "DELETE FROM audit",
    ],
)
def test_audit_rows_cannot_be_changed_or_deleted(
    store: SqlAlertStore, trail: list[int], sql: str, request: pytest.FixtureRequest
) -> None:
    """Refused on the store's own connection and on any other (SQLite: another connection to
    the file; PostgreSQL: another session on the schema, where TRUNCATE is refused too)."""
    before = store.list_audit()
    if isinstance(store, PostgresAlertStore):
        server = request.getfixturevalue("postgres")
        with psycopg.connect(
            server.dsn, autocommit=True, options=f"-c search_path={store.schema}"
        ) as pg:
            for statement in (sql, "TRUNCATE audit"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    pg.execute(statement)
    else:
        other = sqlite3.connect(store.path)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                other.execute(sql)
            other.rollback()
        finally:
            other.close()
    with store._lock, pytest.raises(DB_ERRORS, match="append-only"):
        store._conn.execute(sql)
    assert store.list_audit() == before


def test_the_filters_use_their_indexes(sqlite_store: SqliteAlertStore, trail: list[int]) -> None:
    store = sqlite_store
    conn = sqlite3.connect(store.path)
    try:
        for where, index in (
            ("target_kind = 'alert' AND target_id = 'e1'", "audit_by_target"),
            ("actor = 'bob'", "audit_by_actor"),
            ("action >= 'alert.' AND action < 'alert/'", "audit_by_action"),
        ):
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT * FROM audit WHERE {where} "
                    "ORDER BY seq DESC LIMIT 50"
                )
            )
            assert index in plan, (where, plan)
    finally:
        conn.close()
