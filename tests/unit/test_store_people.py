"""SqliteAlertStore as a PeopleStore: users (names case-insensitive), sessions (absolute and
idle expiry, ended by disabling or a new password), machine tokens (revoke, touch)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.store import (
    PeopleStore,
    SqlAlertStore,
    SqliteAlertStore,
    Token,
    UserExistsError,
    UserNotFoundError,
)
from tests.factories import T0
from tests.pg import StoreFactory

pytestmark = pytest.mark.unit

HOUR = 3600.0


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


def _alice(store: SqlAlertStore, name: str = "Alice") -> None:
    store.add_user(name, role="operator", groups=["lobby", "yard"], password_hash="h1", now=T0)


def _session(store: SqlAlertStore, sid: str = "s1", user: str = "alice") -> None:
    store.create_session(
        sid,
        user=user,
        csrf_hash="c1",
        now=T0,
        lifetime_s=8 * HOUR,
        idle_s=HOUR,
        client="10.0.0.1",
    )


def test_is_a_people_store(store: SqlAlertStore) -> None:
    assert isinstance(store, PeopleStore)


def test_users_are_found_whatever_the_case_and_kept_as_given(store: SqlAlertStore) -> None:
    _alice(store)
    store.add_user("bob", role="admin", groups=[], password_hash="h2", now=T0 + 1)
    for name in ("alice", "ALICE", "Alice"):
        user = store.get_user(name)
        assert user is not None and user.name == "Alice"
    user = store.get_user("alice")
    assert user is not None
    assert (user.role, user.groups, user.disabled) == ("operator", ["lobby", "yard"], False)
    assert user.created_at == user.updated_at == datetime.fromtimestamp(T0, UTC)
    assert user.password_changed_at is None
    assert "h1" not in user.model_dump_json()
    assert store.password_hash("aLiCe") == "h1" and store.password_hash("carol") is None
    assert store.get_user("carol") is None
    assert [u.name for u in store.list_users()] == ["Alice", "bob"]
    with pytest.raises(UserExistsError) as info:
        _alice(store, "ALICE")
    assert info.value.name == "ALICE"
    assert len(store.list_users()) == 2


def test_bad_role_or_groups_are_refused(store: SqlAlertStore) -> None:
    with pytest.raises(ValueError, match="role"):
        store.add_user("x", role="root", groups=[], password_hash="h", now=T0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="groups"):
        store.add_user("x", role="operator", groups="lobby", password_hash="h", now=T0)
    assert store.list_users() == []


def test_update_user_changes_what_is_given(store: SqlAlertStore) -> None:
    _alice(store)
    _session(store)
    user = store.update_user("ALICE", now=T0 + 10, role="supervisor", groups=["all"])
    assert (user.name, user.role, user.groups) == ("Alice", "supervisor", ["all"])
    assert user.updated_at == datetime.fromtimestamp(T0 + 10, UTC)
    assert user.created_at == datetime.fromtimestamp(T0, UTC)
    assert store.password_hash("alice") == "h1"
    assert store.get_session("s1", now=T0 + 20) is not None  # a role change keeps sessions
    with pytest.raises(UserNotFoundError):
        store.update_user("carol", now=T0, disabled=True)


@pytest.mark.parametrize("change", ["disable", "password"])
def test_disabling_or_a_new_password_ends_the_sessions(store: SqlAlertStore, change: str) -> None:
    _alice(store)
    store.add_user("bob", role="operator", groups=[], password_hash="h2", now=T0)
    _session(store, "s1")
    _session(store, "s2", user="ALICE")
    _session(store, "s3", user="bob")
    if change == "disable":
        user = store.update_user("alice", now=T0 + 5, disabled=True)
        assert user.disabled and user.password_changed_at is None
    else:
        user = store.update_user("alice", now=T0 + 5, password_hash="h9")
        assert user.password_changed_at == datetime.fromtimestamp(T0 + 5, UTC)
        assert store.password_hash("alice") == "h9"
    assert store.get_session("s1", now=T0 + 6) is None
    assert store.get_session("s2", now=T0 + 6) is None
    assert store.get_session("s3", now=T0 + 6) is not None
    assert store.delete_sessions_of("alice") == 0  # already gone
    if change == "disable":  # enabling again brings no session back, and new ones work
        assert not store.update_user("alice", now=T0 + 7, disabled=False).disabled
        _session(store, "s4")
        assert store.get_session("s4", now=T0 + 8) is not None


def test_sessions_end_at_their_absolute_end_and_when_idle(store: SqlAlertStore) -> None:
    _alice(store)
    created = store.create_session(
        "s1", user="ALICE", csrf_hash="c1", now=T0, lifetime_s=3 * HOUR, idle_s=HOUR, client=None
    )
    assert created.user == "Alice" and created.csrf_hash == "c1" and created.client is None
    assert created.expires_at == datetime.fromtimestamp(T0 + 3 * HOUR, UTC)
    # kept alive by use every 50 minutes, until its absolute end
    for k in range(1, 5):
        now = T0 + k * 3000
        got = store.get_session("s1", now=now)
        if now < T0 + 3 * HOUR:
            assert got is not None and got.last_seen_at == datetime.fromtimestamp(now, UTC)
        else:
            assert got is None
    assert store.get_session("s1", now=T0 + 1) is None  # deleted once expired
    # idle: one hour without a request ends it
    _session(store, "s2")
    assert store.get_session("s2", now=T0 + HOUR - 1) is not None
    assert store.get_session("s2", now=T0 + 2 * HOUR - 1) is None
    _session(store, "s3")
    assert store.get_session("s3", now=T0 + HOUR) is None  # exactly idle_s: ended


def test_last_seen_is_written_at_most_once_a_minute(store: SqlAlertStore) -> None:
    _alice(store)
    _session(store)
    seen = store.get_session("s1", now=T0 + 59)
    assert seen is not None and seen.last_seen_at == datetime.fromtimestamp(T0, UTC)
    seen = store.get_session("s1", now=T0 + 60)
    assert seen is not None and seen.last_seen_at == datetime.fromtimestamp(T0 + 60, UTC)
    seen = store.get_session("s1", now=T0 + 100)
    assert seen is not None and seen.last_seen_at == datetime.fromtimestamp(T0 + 60, UTC)


def test_sessions_of_unknown_or_deleted_users(sqlite_store: SqliteAlertStore) -> None:
    store = sqlite_store
    with pytest.raises(UserNotFoundError):
        _session(store, user="nobody")
    _alice(store)
    _session(store)
    assert store.get_session("unknown", now=T0) is None
    conn = sqlite3.connect(store.path)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        with conn:
            conn.execute("DELETE FROM users WHERE name = 'alice'")  # NOCASE: finds Alice
    finally:
        conn.close()
    assert store.get_session("s1", now=T0 + 1) is None


def test_delete_sessions(store: SqlAlertStore) -> None:
    _alice(store)
    for sid in ("s1", "s2", "s3"):
        _session(store, sid)
    assert store.delete_session("s1") and not store.delete_session("s1")
    assert store.get_session("s1", now=T0 + 1) is None
    assert store.delete_sessions_of("ALICE") == 2
    _session(store, "s4")
    assert store.delete_expired_sessions(now=T0 + HOUR - 1) == 0
    assert store.delete_expired_sessions(now=T0 + HOUR) == 1


def _token(n: int, **kw: object) -> Token:
    fields: dict[str, object] = {
        "token_id": f"tok{n}",
        "name": f"bridge-{n}",
        "role": "operator",
        "groups": ["lobby"],
        "created_by": "admin",
        "created_at": datetime.fromtimestamp(T0 + n, UTC),
    }
    return Token.model_validate(fields | kw)


def test_tokens_are_stored_listed_and_read_with_their_hash(store: SqlAlertStore) -> None:
    t1 = store.create_token(_token(1), secret_hash="sh1")
    assert t1 == _token(1)
    store.create_token(
        _token(2, expires_at=datetime.fromtimestamp(T0 + HOUR, UTC)), secret_hash="sh2"
    )
    got = store.get_token("tok1")
    assert got == (_token(1), "sh1")
    assert store.get_token("nope") is None
    assert [t.token_id for t in store.list_tokens()] == ["tok2", "tok1"]
    assert "sh1" not in store.list_tokens()[1].model_dump_json()
    with pytest.raises(ValueError, match="exists"):
        store.create_token(_token(1, name="other"), secret_hash="x")
    assert store.get_token("tok1") == (_token(1), "sh1")


def test_revoking_keeps_the_first_time(store: SqlAlertStore) -> None:
    store.create_token(_token(1), secret_hash="sh1")
    first = store.revoke_token("tok1", now=T0 + 10)
    assert first is not None and first.revoked_at == datetime.fromtimestamp(T0 + 10, UTC)
    again = store.revoke_token("tok1", now=T0 + 20)
    assert again == first
    got = store.get_token("tok1")
    assert got is not None and got[0].revoked_at == first.revoked_at  # still readable
    assert store.revoke_token("nope", now=T0) is None


def test_touch_token_writes_at_most_once_a_minute(store: SqlAlertStore) -> None:
    store.create_token(_token(1), secret_hash="sh1")

    def last_used() -> datetime | None:
        got = store.get_token("tok1")
        assert got is not None
        return got[0].last_used_at

    assert last_used() is None
    store.touch_token("tok1", now=T0 + 100)
    assert last_used() == datetime.fromtimestamp(T0 + 100, UTC)
    store.touch_token("tok1", now=T0 + 159)
    assert last_used() == datetime.fromtimestamp(T0 + 100, UTC)
    store.touch_token("tok1", now=T0 + 160)
    assert last_used() == datetime.fromtimestamp(T0 + 160, UTC)
    store.touch_token("nope", now=T0)  # unknown: nothing to record, no error
