"""``argus users`` and ``argus tokens`` (``argus.cli_people``), through ``argus.cli.main``.

The store is the one ``argus serve`` would use (``$ARGUS_HOME/alerts.db``, or a config's
``storage.sqlite``); what the CLI makes is checked against the API over that same store:
a created token authenticates (and no longer once revoked), a user added here signs in.
Passwords are hashed with cheap Argon2 parameters (the API verifies any parameters).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

import argus.cli_people
from alerts.api import AccessSettings, create_app
from alerts.api.security import Passwords
from alerts.evidence import LocalEvidenceStore
from alerts.store import ROLES, SqliteAlertStore
from argus.cli import main

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long pass phrase"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
KEY = "cli-people-test-api-key-0123456789"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back as it was after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARGUS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(argus.cli_people, "make_passwords", lambda: Passwords(CHEAP))
    return tmp_path / "home"


class Cli:
    """Runs ``argus ...`` with a given stdin; keeps everything it wrote."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.seen = ""

    def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        self.seen += out + err
        return code, out, err


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


def open_store(home: Path) -> SqliteAlertStore:
    return SqliteAlertStore(home / "alerts.db")


def api(store: SqliteAlertStore, tmp_path: Path) -> TestClient:
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(password_hasher=CHEAP),
    )
    return TestClient(app, base_url="http://127.0.0.1")


def login(client: TestClient, name: str, password: str) -> int:
    r = client.post("/api/v1/auth/login", json={"username": name, "password": password})
    return int(r.status_code)


def test_role_names_in_the_help_are_the_stores() -> None:
    assert argus.cli_people.ROLE_NAMES == ROLES


def test_users_add_list_disable_enable_set_reset(cli: Cli, home: Path) -> None:
    code, out, err = cli(
        "users",
        "add",
        "kim",
        "--role",
        "operator",
        "--groups",
        "north,south",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert (code, out) == (0, "")
    assert "kim" in err and "operator" in err
    assert cli("users", "add", "lee", "--role", "admin", "--password-stdin", stdin=PASSWORD)[0] == 0

    code, out, _ = cli("users", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "GROUPS", "DISABLED", "CREATED"]
    assert lines[1].split()[:4] == ["kim", "operator", "north,south", "no"]
    assert lines[2].split()[:4] == ["lee", "admin", "default", "no"]  # no --groups: default

    assert cli("users", "disable", "kim")[0] == 0
    users = {u["name"]: u for u in json.loads(cli("users", "list", "--json")[1])}
    assert users["kim"]["disabled"] is True
    assert set(users["kim"]) >= {"name", "role", "groups", "disabled", "created_at"}
    assert not {"password", "password_hash", "hash"} & set(users["kim"])
    assert cli("users", "enable", "KIM")[0] == 0  # names ignore case
    code, _, err = cli("users", "set", "kim", "--role", "supervisor", "--groups", "east")
    assert code == 0 and "supervisor" in err
    assert cli("users", "reset-password", "kim", "--password-stdin", stdin=NEW_PASSWORD)[0] == 0

    store = open_store(home)
    try:
        kim = store.get_user("kim")
        assert kim is not None
        assert (kim.role, kim.groups, kim.disabled) == ("supervisor", ["east"], False)
        assert kim.password_changed_at is not None
        assert Passwords(CHEAP).verify(store.password_hash("kim"), NEW_PASSWORD)
        trail = [(e.action, e.target_id, e.detail) for e in reversed(store.list_audit(limit=50))]
        entries = store.list_audit(limit=50)
    finally:
        store.close()
    assert [(a, t) for a, t, _ in trail] == [
        ("user.create", "kim"),
        ("user.create", "lee"),
        ("user.update", "kim"),
        ("user.update", "kim"),
        ("user.update", "kim"),
        ("user.password", "kim"),
    ]
    assert trail[0][2]["role"] == "operator" and trail[0][2]["groups"] == ["north", "south"]
    assert trail[2][2]["disabled"] == "True" and trail[3][2]["disabled"] == "False"
    assert trail[4][2]["role"] == "supervisor" and trail[4][2]["groups"] == ["east"]
    assert all(e.actor == "cli" and e.actor_kind == "system" for e in entries)
    assert all(e.target_kind == "user" for e in entries)
    assert PASSWORD not in cli.seen and NEW_PASSWORD not in cli.seen


def test_bad_input_exits_2_with_one_line(cli: Cli, home: Path) -> None:
    add = ("users", "add", "kim", "--role", "operator", "--password-stdin")
    assert cli(*add, stdin=PASSWORD)[0] == 0
    cases: list[tuple[tuple[str, ...], str, str]] = [
        (add, PASSWORD, "exists"),  # duplicate
        (("users", "add", "Kim", *add[3:]), PASSWORD, "exists"),  # in another case
        (("users", "add", "ann", "--role", "operator", "--password-stdin"), "short", "password"),
        (("users", "add", "ann", "--role", "operator", "--password-stdin"), "", "no password"),
        (("users", "add", "ann", "--role", "operator"), PASSWORD, "--password-stdin"),
        (("users", "add", "ann", "--role", "root", "--password-stdin"), PASSWORD, "role"),
        (("users", "add", "_ann", "--role", "operator", "--password-stdin"), PASSWORD, "name"),
        (("users", "add", "a b", "--role", "operator", "--password-stdin"), PASSWORD, "name"),
        (("users", "add", "ann", "--role", "admin", "--groups", "a,b c"), PASSWORD, "group"),
        (("users", "add", "ann", "--role", "admin", "--groups", ","), PASSWORD, "group"),
        (("users", "disable", "nobody"), "", "no user"),
        (("users", "enable", "nobody"), "", "no user"),
        (("users", "set", "nobody", "--role", "admin"), "", "no user"),
        (("users", "set", "kim"), "", "nothing to change"),
        (("users", "set", "kim", "--role", "god"), "", "role"),
        (("users", "reset-password", "nobody", "--password-stdin"), PASSWORD, "no user"),
        (("users", "reset-password", "kim", "--password-stdin"), "too short", "password"),
        (("tokens", "create", "vms", "--role", "boss"), "", "role"),
        (("tokens", "create", "vms", "--role", "operator", "--groups", "a/b"), "", "group"),
        (("tokens", "create", "vms", "--role", "admin", "--expires-in-days", "0"), "", "days"),
        (("tokens", "create", "a\x07b", "--role", "admin"), "", "token name"),
        (("tokens", "revoke", "abcdefghjkmn"), "", "no token"),
        (("tokens", "revoke", "argus_x"), "", "token id"),
    ]
    for argv, stdin, says in cases:
        code, out, err = cli(*argv, stdin=stdin)
        assert code == 2, (argv, err)
        assert out == "", argv
        assert len(err.strip().splitlines()) == 1 and says in err, (argv, err)
    store = open_store(home)
    try:
        assert [u.name for u in store.list_users()] == ["kim"]
        assert store.list_tokens() == []
        assert [e.action for e in store.list_audit()] == ["user.create"]  # only what was done
    finally:
        store.close()
    assert PASSWORD not in cli.seen


def test_created_token_authenticates_until_revoked(cli: Cli, home: Path, tmp_path: Path) -> None:
    code, out, err = cli(
        "tokens", "create", "vms-bridge", "--role", "operator", "--groups", "north"
    )
    assert code == 0
    token = out.strip()
    assert out == token + "\n"  # the token alone on stdout: TOKEN=$(argus tokens create ...)
    assert token.startswith("argus_") and token not in err
    token_id = token.split("_")[1]
    assert token_id in err and "once" in err

    code, out, _ = cli("tokens", "list")
    assert code == 0 and token_id in out and "vms-bridge" in out and token not in out
    listed = json.loads(cli("tokens", "list", "--json")[1])
    assert [(t["token_id"], t["role"], t["groups"], t["revoked_at"]) for t in listed] == [
        (token_id, "operator", ["north"], None)
    ]
    assert listed[0]["created_by"] == "cli" and listed[0]["expires_at"] is None
    assert not any("secret" in k or "hash" in k for k in listed[0])

    store = open_store(home)
    try:
        client = api(store, tmp_path)
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/alerts", headers=bearer).status_code == 200
        me = client.get("/api/v1/auth/me", headers=bearer).json()
        assert (me["kind"], me["role"], me["groups"]) == ("token", "operator", ["north"])

        code, out, err = cli("tokens", "revoke", token_id)
        assert (code, out) == (0, "") and "revoked" in err
        assert client.get("/api/v1/alerts", headers=bearer).status_code == 401
        code, _, err = cli("tokens", "revoke", token_id)  # again: nothing changes
        assert code == 0 and "already" in err

        revoked = json.loads(cli("tokens", "list", "--json")[1])[0]
        assert revoked["revoked_at"] is not None
        mine = [e for e in store.list_audit(limit=50) if e.actor == "cli"]
    finally:
        store.close()
    assert [(e.action, e.target_kind, e.target_id) for e in reversed(mine)] == [
        ("token.create", "token", token_id),
        ("token.revoke", "token", token_id),
    ]
    assert mine[-1].detail["role"] == "operator" and mine[-1].detail["groups"] == ["north"]
    secret = token.split("_", 2)[2]
    assert cli.seen.count(secret) == 1  # printed once, at creation


def test_token_expiry(cli: Cli, home: Path) -> None:
    code, _, err = cli(
        "tokens", "create", "nightly report", "--role", "supervisor", "--expires-in-days", "30"
    )
    assert code == 0 and "until 20" in err
    store = open_store(home)
    try:
        (token,) = store.list_tokens()
    finally:
        store.close()
    assert token.name == "nightly report" and token.groups == ["default"]
    assert token.expires_at is not None
    days = (token.expires_at - token.created_at).total_seconds() / 86400
    assert days == pytest.approx(30)


def test_cli_user_signs_in_through_the_api(cli: Cli, home: Path, tmp_path: Path) -> None:
    assert (
        cli(
            "users",
            "add",
            "kim",
            "--role",
            "operator",
            "--groups",
            "north",
            "--password-stdin",
            stdin=PASSWORD + "\r\n",
        )[0]
        == 0
    )
    store = open_store(home)
    try:
        client = api(store, tmp_path)
        r = client.post("/api/v1/auth/login", json={"username": "kim", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["role"], r.json()["groups"]) == (
            "kim",
            "operator",
            ["north"],
        )
        assert cli("users", "disable", "kim")[0] == 0
        assert login(client, "kim", PASSWORD) == 401
        assert cli("users", "enable", "kim")[0] == 0
        cmd = ("users", "reset-password", "kim", "--password-stdin")
        assert cli(*cmd, stdin=NEW_PASSWORD + "\n")[0] == 0
        assert login(client, "kim", PASSWORD) == 401
        assert login(api(store, tmp_path), "kim", NEW_PASSWORD) == 200
    finally:
        store.close()


def test_no_secret_in_output_or_logs(cli: Cli, home: Path) -> None:
    debug = ("--log-level", "DEBUG")
    add = ("users", "add", "kim", "--role", "admin", "--password-stdin")
    assert cli(*debug, *add, stdin=PASSWORD)[0] == 0
    assert (
        cli(*debug, "users", "reset-password", "kim", "--password-stdin", stdin=NEW_PASSWORD)[0]
        == 0
    )
    assert cli(*debug, *add, stdin=PASSWORD)[0] == 2  # refused: nothing of it shown either
    assert cli(*debug, "users", "list", "--json")[0] == 0
    assert "user 'kim' added" in cli.seen  # the logs were captured (stderr, DEBUG)
    store = open_store(home)
    try:
        stored_hash = store.password_hash("kim")
        trail = json.dumps([e.model_dump(mode="json") for e in store.list_audit()])
    finally:
        store.close()
    assert stored_hash and stored_hash.startswith("$argon2")
    for secret in (PASSWORD, NEW_PASSWORD, stored_hash, "$argon2"):
        assert secret not in cli.seen
        assert secret not in trail


def test_config_names_the_store(cli: Cli, home: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "alerts.sqlite"
    cfg = tmp_path / "argus.yaml"
    cfg.write_text(
        f"cameras:\n  - id: c1\n    source: /dev/null\nstorage:\n  sqlite: {db}\n",
        encoding="utf-8",
    )
    add = ("users", "add", "kim", "--role", "operator", "--password-stdin", "--config", str(cfg))
    assert cli(*add, stdin=PASSWORD)[0] == 0
    code, out, _ = cli("users", "list", "--config", str(cfg))
    assert code == 0 and "kim" in out
    assert "kim" not in cli("users", "list")[1]  # $ARGUS_HOME/alerts.db has nobody
    store = SqliteAlertStore(db)
    try:
        assert store.get_user("kim") is not None
    finally:
        store.close()

    code, out, err = cli("users", "list", "--config", str(tmp_path / "missing.yaml"))
    assert (code, out) == (2, "") and "not found" in err


def test_password_from_a_terminal_is_not_echoed(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def getpass(prompt: str = "", stream: object = None) -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr("getpass.getpass", getpass)
    monkeypatch.setattr("sys.stdin", Tty())
    code = main(["users", "add", "kim", "--role", "operator"])  # asks twice without the flag
    assert code == 0 and prompts == ["Password: ", "Again: "]
