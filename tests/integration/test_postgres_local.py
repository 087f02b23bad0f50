"""The local PostgreSQL server (deploy/postgres.py) against Debian's real ``postgresql``.

Checks: a cluster made in a fresh directory on a free port answers psycopg (table created,
row written and read back); ``status()`` says what runs and holds no password; a second start
while it runs reuses the server; it listens on 127.0.0.1 only; stopped and started again on the
same data directory the row is still there; the CLI's ``up --with-postgres``/``status``/``down``.
When PostgreSQL is not installed the tests skip (a failure under ``ARGUS_NO_SKIP=1``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from deploy.localstack import PortInUseError, free_port
from deploy.postgres import LocalPostgres, PostgresNotFoundError, find_pg_bin

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _require_postgres() -> None:
    try:
        find_pg_bin()
    except PostgresNotFoundError as e:
        pytest.skip(f"PostgreSQL not installed (make postgres-deps): {e}")


@pytest.fixture
def pg_home(tmp_path: Path) -> Iterator[Path]:
    """A home for a LocalPostgres: ``tmp_path``, or as root one the ``postgres`` user can enter.

    (As root the server runs as ``postgres``, and pytest's base directory is mode 0700.)
    """
    _require_postgres()
    if os.geteuid() != 0:
        yield tmp_path
        return
    home = Path(tempfile.mkdtemp(prefix="argus-pg-"))
    home.chmod(0o711)
    try:
        yield home
    finally:
        LocalPostgres(home).stop()
        shutil.rmtree(home, ignore_errors=True)


def _listeners(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(addr) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_start_query_restart_durable(pg_home: Path) -> None:
    port = free_port()
    pg = LocalPostgres(pg_home, port)
    try:
        pg.start(timeout_s=30)
        assert pg.dsn == f"postgresql://argus@127.0.0.1:{port}/argus"
        with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                "argus",
                "argus",
            )
            conn.execute("CREATE TABLE alerts (id text PRIMARY KEY, score real NOT NULL)")
            conn.execute("INSERT INTO alerts VALUES (%s, %s)", ("evt-1", 0.75))
            conn.commit()
            assert conn.execute("SELECT score FROM alerts WHERE id = 'evt-1'").fetchone() == (0.75,)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)

        st = pg.status()
        assert st["running"] and st["port"] == port and st["pid"] == pg.pid()
        assert st["data_dir"] == str(pg_home.resolve() / "postgres" / "data")
        assert str(st["version"]).startswith(find_pg_bin().parent.name)
        assert "password" not in str(st).lower()
        assert _listeners(port) == {"127.0.0.1"}, "listens beyond loopback"
        assert (pg.socket_dir / f".s.PGSQL.{port}").is_socket()

        pid = pg.pid()
        again = LocalPostgres(pg_home)  # no port given: finds the running one
        again.start()
        assert again.port == port and again.pid() == pid, "a second start did not reuse it"

        pg.stop()
        assert not pg.running() and not pg.status()["running"]
        assert not port_open(port)

        reopened = LocalPostgres(pg_home)  # same data dir; port remembered from state.json
        assert reopened.port == port
        reopened.start()
        assert reopened.pid() != pid
        with psycopg.connect(reopened.dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT id, score FROM alerts").fetchall() == [("evt-1", 0.75)]
    finally:
        pg.stop()
    assert not pg.running()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_busy_port_is_refused(pg_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pg = LocalPostgres(pg_home, port)
        with pytest.raises(PortInUseError, match=str(port)):
            pg.start()
    assert not pg.running()


def test_missing_binaries_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGUS_PG_BIN", str(tmp_path / "nowhere"))
    monkeypatch.setattr("deploy.postgres.PG_LIB", tmp_path / "no-postgresql")
    with pytest.raises(PostgresNotFoundError, match="apt-get install postgresql"):
        LocalPostgres(tmp_path).start()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.localstack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_status_and_down_include_postgres(pg_home: Path) -> None:
    """``status`` lists PostgreSQL, ``down`` stops it (Kafka and S3 are not started here)."""
    home = pg_home / "infra"
    st = _cli("status", "--home", str(home))
    assert "postgresql" in st.stdout and "not set up" in st.stdout, st.stdout
    pg = LocalPostgres(home)
    try:
        pg.start()
        st = _cli("status", "--home", str(home))
        assert f"postgresql      running  pid {pg.pid()}  {pg.dsn}" in st.stdout, st.stdout
        down = _cli("down", "--home", str(home))
        assert down.returncode == 0, down.stderr
        assert not pg.running()
        st = _cli("status", "--home", str(home))
        assert "postgresql      stopped" in st.stdout and st.returncode == 3, st.stdout
    finally:
        pg.stop()
