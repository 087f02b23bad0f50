"""A local PostgreSQL server (Debian's ``postgresql``) for tests and single-machine use.

One real ``postgres`` process on loopback, in a data directory of its own::

    HOME/postgres/
        data/          the cluster (initdb -U argus -A trust), mode 0700
        run/           its Unix socket (``.s.PGSQL.PORT``)
        postgres.log   server log (and initdb's output)
        state.json     the port of the last start (so a later start reuses the same DSN)

It listens on 127.0.0.1 only, trusts connections from 127.0.0.1 and the Unix socket only
(``pg_hba.conf`` is written by us: nothing else), and holds database ``argus`` owned by role
``argus``: ``dsn`` is ``postgresql://argus@127.0.0.1:PORT/argus`` (no password).

Binaries: ``$ARGUS_PG_BIN`` (a directory holding ``initdb``, ``pg_ctl``, ``psql``), else the
highest ``/usr/lib/postgresql/*/bin``.  ``initdb`` and the server refuse to run as root: run as
root, the data directory is owned by the ``postgres`` user and ``initdb``/``pg_ctl`` are run
through ``runuser -u postgres --`` (that user must be able to enter every directory above
``HOME/postgres``; a clear error names the one it cannot).  Run as any other user, they are
run directly, as that user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import re
import shlex
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from deploy.localstack import (
    LocalStackError,
    PortInUseError,
    ServerStartError,
    _pid_alive,
    _pid_cmdline,
    _tail,
    free_port,
    port_accepts,
)

log = logging.getLogger(__name__)

PG_ROLE: Final = "argus"
PG_DATABASE: Final = "argus"
PG_OS_USER: Final = "postgres"
"""The system user the server runs as when we are root."""
PG_LIB: Final = Path("/usr/lib/postgresql")
SOCKET_PATH_MAX: Final = 107
"""``sun_path`` limit of a Unix socket path on Linux (bytes, without the final NUL)."""
DEFAULT_START_TIMEOUT_S: Final = 30.0
DEFAULT_STOP_TIMEOUT_S: Final = 30.0

PG_HBA: Final = """\
# Written by deploy/postgres.py: trust on the Unix socket and 127.0.0.1 only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
"""


class PostgresNotFoundError(LocalStackError):
    """PostgreSQL's server binaries (``initdb``, ``pg_ctl``) are not installed."""

    def __init__(self, tried: Sequence[str]) -> None:
        self.tried = list(tried)
        super().__init__(
            "PostgreSQL server binaries not found (apt-get install postgresql); tried: "
            + ", ".join(self.tried)
        )


def find_pg_bin() -> Path:
    """Directory of ``initdb``/``pg_ctl``/``psql``: ``$ARGUS_PG_BIN`` or the highest version."""
    tried: list[str] = []
    override = os.environ.get("ARGUS_PG_BIN")
    if override:
        if os.access(Path(override) / "initdb", os.X_OK):
            return Path(override)
        tried.append(f"$ARGUS_PG_BIN={override}")
    versions: list[tuple[tuple[int, ...], Path]] = []
    for candidate in PG_LIB.glob("*/bin"):
        if not os.access(candidate / "initdb", os.X_OK):
            continue
        key = tuple(int(p) for p in re.findall(r"\d+", candidate.parent.name))
        versions.append((key, candidate))
    if versions:
        return max(versions)[1]
    tried.append(f"{PG_LIB}/*/bin/initdb")
    raise PostgresNotFoundError(tried)


def _pg_ids() -> tuple[int, int, set[int]]:
    """uid, gid and all group ids of the ``postgres`` user."""
    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError as e:
        raise LocalStackError(
            f"running as root, the server must run as user {PG_OS_USER!r}, which does not "
            "exist (apt-get install postgresql creates it)"
        ) from e
    return pw.pw_uid, pw.pw_gid, set(os.getgrouplist(PG_OS_USER, pw.pw_gid))


def _blocking_ancestor(path: Path, uid: int, groups: set[int]) -> Path | None:
    """The first directory above ``path`` that user ``uid`` cannot enter, or None."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return parent
    return None


class LocalPostgres:
    """A PostgreSQL cluster in ``HOME/postgres`` run as a local server on 127.0.0.1.

    Args:
        home: the directory to keep ``postgres/`` in (created).
        port: TCP port on 127.0.0.1; None: the port of the last start in this home, else a
            free one.
        stop_timeout_s: how long ``stop()`` waits for a fast shutdown, in seconds.

    ``start()`` is idempotent (a running server in this data directory is reused, on its own
    port) and the process outlives this object (``pg_ctl`` detaches it): ``stop()`` works from
    any process.  Also a context manager: ``with LocalPostgres(d) as pg: connect(pg.dsn)``.
    """

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        *,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
    ) -> None:
        self.home = Path(home).expanduser().resolve()
        self.stop_timeout_s = stop_timeout_s
        self.startup_s: float | None = None
        """Seconds the last ``start()`` took (initdb included), None before one."""
        running = self._running_port()
        if port is None:
            port = running if running is not None else self._remembered_port()
        self.port: int = port if port is not None else free_port()
        self._as_root = os.geteuid() == 0

    # ----------------------------------------------------------------- paths

    @property
    def root(self) -> Path:
        """``HOME/postgres``."""
        return self.home / "postgres"

    @property
    def data_dir(self) -> Path:
        """``HOME/postgres/data``: the cluster."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """``HOME/postgres/run``: the Unix socket's directory."""
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        """``HOME/postgres/postgres.log``: initdb's output and the server log."""
        return self.root / "postgres.log"

    @property
    def state_path(self) -> Path:
        """``HOME/postgres/state.json``: the port of the last start."""
        return self.root / "state.json"

    @property
    def dsn(self) -> str:
        """``postgresql://argus@127.0.0.1:PORT/argus`` (trust on loopback: no password)."""
        return f"postgresql://{PG_ROLE}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def initialised(self) -> bool:
        """True when ``initdb`` has made the cluster in ``data_dir``."""
        return (self.data_dir / "PG_VERSION").exists()

    def __repr__(self) -> str:
        return f"LocalPostgres(home={str(self.home)!r}, port={self.port})"

    # ----------------------------------------------------------------- state

    def _remembered_port(self) -> int | None:
        try:
            return int(json.loads(self.state_path.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _postmaster(self) -> tuple[int, int] | None:
        """(pid, port) of the server running in ``data_dir``, from ``postmaster.pid``."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        cmd = _pid_cmdline(pid)
        if not cmd or Path(cmd[0]).name not in ("postgres", "postmaster"):
            return None  # stale file, PID reused by something else
        return pid, port

    def _running_port(self) -> int | None:
        pm = self._postmaster()
        return None if pm is None else pm[1]

    def pid(self) -> int | None:
        """PID of the server running in this data directory, or None."""
        pm = self._postmaster()
        return None if pm is None else pm[0]

    def running(self) -> bool:
        """True when a server runs in this data directory."""
        return self._postmaster() is not None

    # ----------------------------------------------------------------- commands

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", PG_OS_USER, "--", *cmd] if self._as_root else cmd

    def _run(self, cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd="/",  # runuser: the postgres user may not be able to enter our cwd
        )

    def _fail(self, reason: str, output: str = "") -> ServerStartError:
        tail = _tail(self.log_path)
        if output.strip():
            tail = (tail + "\n" + output.strip()).strip()
        return ServerStartError("postgresql", self.port, self.log_path, reason, tail)

    def psql(self, sql: str, *, database: str = PG_DATABASE, timeout_s: float = 10.0) -> str:
        """Run ``sql`` with ``psql`` as role ``argus`` over TCP; its unaligned output."""
        cmd = [
            str(find_pg_bin() / "psql"),
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_ROLE,
            "-d",
            database,
            "-c",
            sql,
        ]
        res = self._run(cmd, timeout_s)
        if res.returncode != 0:
            raise LocalStackError(f"psql on 127.0.0.1:{self.port} failed: {res.stderr.strip()}")
        return res.stdout.strip()

    # ----------------------------------------------------------------- lifecycle

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.socket_dir.chmod(0o700)  # the socket trusts whoever reaches it
        self.log_path.touch()
        sock = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(sock)) > SOCKET_PATH_MAX:
            raise LocalStackError(
                f"postgresql: the socket path {sock} is longer than {SOCKET_PATH_MAX} bytes; "
                "choose a shorter home directory"
            )
        if not self._as_root:
            return
        uid, gid, groups = _pg_ids()
        blocked = _blocking_ancestor(self.root, uid, groups)
        if blocked is not None:
            raise LocalStackError(
                f"running as root, PostgreSQL runs as user {PG_OS_USER!r}, which cannot enter "
                f"{blocked} (mode {stat.S_IMODE(blocked.stat().st_mode):o}): choose a home it "
                f"can reach (e.g. --home /var/lib/argus/infra) or allow it in (chmod o+x "
                f"{blocked})"
            )
        for path in (self.root, self.socket_dir, self.log_path):
            os.chown(path, uid, gid)
        if self.data_dir.exists():
            os.chown(self.data_dir, uid, gid)

    def _initdb(self, bin_dir: Path, timeout_s: float) -> None:
        cmd = self._as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                PG_ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        res = self._run(cmd, timeout_s)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} initdb\n{res.stdout}{res.stderr}")
        if res.returncode != 0:
            raise self._fail(f"initdb failed with status {res.returncode}", res.stderr)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA)  # same owner and mode as initdb's (overwritten in place)
        log.info("initialised a PostgreSQL cluster in %s", self.data_dir)

    def start(self, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        """Start the server (initdb and database ``argus`` first, when new) and wait for it.

        A server already running in this data directory is reused (on its own port).

        Raises:
            PostgresNotFoundError: the binaries are not installed.
            PortInUseError: another process accepts connections on the port.
            ServerStartError: initdb failed, or the server exited or was not ready in time
                (with the log's last lines).
            LocalStackError: root without a usable ``postgres`` user, or a path problem.
        """
        running = self._running_port()
        if running is not None:
            if running != self.port:
                log.info("postgresql already runs on port %d (not %d): reusing", running, self.port)
            self.port = running
            log.info("postgresql already running (pid %s)", self.pid())
            return
        t0 = time.monotonic()
        bin_dir = find_pg_bin()
        if port_accepts(self.port):
            raise PortInUseError("postgresql", self.port)
        self._prepare_dirs()
        if not self.initialised:
            self._initdb(bin_dir, timeout_s)
        options = " ".join(
            shlex.quote(o)
            for o in (
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
            )
        )
        cmd = self._as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(max(1, round(timeout_s))),
            ]
        )
        try:
            res = self._run(cmd, timeout_s + 10)
        except subprocess.TimeoutExpired as e:
            raise self._fail(f"not ready after {timeout_s:.0f} s") from e
        if res.returncode != 0:
            raise self._fail(f"pg_ctl start failed with status {res.returncode}", res.stderr)
        self.state_path.write_text(json.dumps({"port": self.port}) + "\n")
        self._wait_query(timeout_s)
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"
        if self.psql(exists, database="postgres") != "1":
            self.psql(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_ROLE}", database="postgres")
            log.info("created database %s", PG_DATABASE)
        self.startup_s = time.monotonic() - t0
        log.info("postgresql ready on 127.0.0.1:%d in %.2f s", self.port, self.startup_s)

    def _wait_query(self, timeout_s: float) -> None:
        """Until a real query answers over TCP (pg_ctl -w has normally waited already)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.psql("SELECT 1", database="postgres", timeout_s=5.0)
                return
            except (LocalStackError, subprocess.TimeoutExpired) as e:
                if time.monotonic() > deadline:
                    raise self._fail(f"not answering queries after {timeout_s:.0f} s: {e}") from e
            time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``); no-op when it does not run."""
        if not self.running():
            return
        cmd = self._as_server_user(
            [
                str(find_pg_bin() / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(max(1, round(self.stop_timeout_s))),
            ]
        )
        res = self._run(cmd, self.stop_timeout_s + 10)
        if res.returncode != 0 and self.running():
            raise LocalStackError(
                f"postgresql (pid {self.pid()}) did not stop: {res.stderr.strip()}; "
                f"see {self.log_path}"
            )
        log.info("postgresql stopped (data kept in %s)", self.data_dir)

    def version(self) -> str | None:
        """The server's version (``server_version``) when it runs, else the cluster's major."""
        if self.running():
            with contextlib.suppress(LocalStackError, subprocess.TimeoutExpired):
                return self.psql("SHOW server_version", database="postgres", timeout_s=5.0)
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return None

    def status(self) -> dict[str, Any]:
        """``running``, ``initialised``, ``pid``, ``port``, ``dsn``, ``data_dir``, ``version``,
        ``log`` (there is no password to leave out: trust on loopback)."""
        pm = self._postmaster()
        return {
            "running": pm is not None,
            "initialised": self.initialised,
            "pid": None if pm is None else pm[0],
            "port": self.port if pm is None else pm[1],
            "dsn": self.dsn,
            "data_dir": str(self.data_dir),
            "version": self.version(),
            "log": str(self.log_path),
        }

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
