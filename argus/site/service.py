"""``argus service install``: run the pipeline as a systemd service on the edge box.

:func:`render_unit` writes the unit for ``argus run CONFIG`` (or ``argus worker --config
CONFIG``), :func:`install_unit` puts it in place; nothing here runs ``systemctl``.

What the unit asks of systemd, and why:

* ``Type=notify``, ``NotifyAccess=main``: the pipeline says ``READY=1`` once its cameras
  are started (after the model is loaded and warmed up: ``TimeoutStartSec`` leaves time for
  that) and ``STOPPING=1`` when it stops (:mod:`argus.notify`).
* ``WatchdogSec``: the pipeline pings only while it progresses (frames analysed, or a
  camera's reconnect loop ticking: ``argus.runner.Runner.progress_marks``); a hung pipeline
  stops pinging and systemd kills it (``SIGABRT``: with ``PYTHONFAULTHANDLER`` every
  thread's stack goes to the journal first) and ``Restart=always`` starts it again.
* ``RestartSec``, ``StartLimit*``: no tight loop; a config that cannot start is given up
  on after ``START_LIMIT_BURST`` starts in ``START_LIMIT_INTERVAL_S`` (``systemctl
  reset-failed`` once fixed), a pipeline that hangs now and then is restarted every time.
* ``TimeoutStopSec``: longer than the pipeline's graceful stop (events closed, the bus
  flushed, the clip being made finished, spools left for the next start).
* ``Environment=ARGUS_HOME``, ``EnvironmentFile=-...``: the data directory, and the camera
  secrets (``CAM_*`` variables the config's ``${CAM_*}`` references name), kept in a root-
  only file, never in the unit (which anyone may read) nor in the config.
* Hardening that leaves the pipeline working: ``NoNewPrivileges``, ``ProtectSystem=strict``
  with ``ReadWritePaths`` for ``ARGUS_HOME`` and the config's own output paths,
  ``PrivateTmp``, kernel tunables and modules protected.  Not ``PrivateDevices`` (USB/V4L2
  cameras and GPUs are devices) nor ``MemoryDenyWriteExecute`` (ONNX Runtime's kernels).
* Optional bounds for a small box: ``MemoryMax``, ``CPUQuota``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import argus
from argus.config import ArgusConfig, ConfigError, WorkerConfig, load_config, load_worker_config

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_USER = "argus"
DEFAULT_WATCHDOG_S = 30.0
MIN_WATCHDOG_S = 20.0
"""Shortest watchdog allowed, seconds: a camera's first connection attempt may stay silent
for its open and read time limits (10 s + 5 s) before it streams or starts reconnecting."""
MAX_WATCHDOG_S = 3600.0
RESTART_S = 10
START_TIMEOUT_S = 300
"""Loading and warming up the model, joining the fleet (up to 30 s), on a slow box."""
STOP_TIMEOUT_S = 90
"""Above the graceful stop's own bounds, all together: decoders joined (5 s), events
flushed (2 s), the clip being made (``argus.app.CLIP_STOP_S``, 10 s), the bus flushed
(``CLOSE_FLUSH_S``, 10 s) and the evidence uploaded (10 s), Kafka closed (2 s)."""
START_LIMIT_INTERVAL_S = 900
START_LIMIT_BURST = 20

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SIZE_RE = re.compile(r"^(?:\d+(?:\.\d+)?[KMGT]?|\d+(?:\.\d+)?%|infinity)$")
_QUOTA_RE = re.compile(r"^(\d+(?:\.\d+)?)%?$")
_SECRET_REF_RE = re.compile(r"\$\{(CAM_[A-Za-z0-9_]*)\}")


class ServiceError(ValueError):
    """The service cannot be installed as asked (the message names the bad value)."""


@dataclass(frozen=True)
class UnitSpec:
    """Everything a unit is made of.

    Attributes:
        config: The config file, absolute.
        worker: ``argus worker --config`` (a fleet worker) rather than ``argus run``.
        name: The unit is ``argus-NAME.service`` (None: ``argus.service``, or
            ``argus-worker.service`` for a worker).
        user: The user it runs as (its group: ``group``, default the same name).
        home: ``ARGUS_HOME`` of the service: models, stores, spools.
        env_file: The root-only file with the camera secrets (``CAM_*=...``), optional.
        watchdog_s: ``WatchdogSec`` (0: no watchdog).
        memory_max: ``MemoryMax`` (e.g. ``1500M``; None: unbounded).
        cpu_quota: ``CPUQuota`` in percent of one core (e.g. 150.0; None: unbounded).
        python: The interpreter that has Argus installed (this one by default).
        writable: Further paths the config writes to (its sinks, stores, spools).
        video_group: Add the ``video`` group (the config has V4L2 cameras).
    """

    config: Path
    worker: bool = False
    name: str | None = None
    user: str = DEFAULT_USER
    group: str | None = None
    home: Path = Path("/var/lib/argus")
    env_file: Path = Path("/etc/argus/argus.env")
    watchdog_s: float = DEFAULT_WATCHDOG_S
    memory_max: str | None = None
    cpu_quota: float | None = None
    python: str = field(default_factory=lambda: sys.executable)
    writable: tuple[Path, ...] = ()
    video_group: bool = False

    @property
    def unit_name(self) -> str:
        """``argus[-NAME].service``."""
        return unit_name(self.name, worker=self.worker)


def unit_name(name: str | None, *, worker: bool = False) -> str:
    """The unit file's name for ``name`` (checked: letters, digits, ``_.-``).

    Raises:
        ServiceError: A name systemd would not take.
    """
    if name is None:
        return "argus-worker.service" if worker else "argus.service"
    if not _NAME_RE.match(name):
        raise ServiceError(
            f"service name {name!r}: use 1-64 letters, digits, '_', '.' or '-' "
            "(it becomes argus-NAME.service)"
        )
    return f"argus-{name}.service"


def default_home(name: str | None, *, worker: bool = False) -> Path:
    """``$ARGUS_HOME`` when set, else ``/var/lib/argus[-NAME]`` (each service its own home:
    two pipelines must not share stores and spools)."""
    env = os.environ.get("ARGUS_HOME")
    if env:
        return Path(env).expanduser().absolute()
    stem = unit_name(name, worker=worker).removesuffix(".service")
    return Path("/var/lib") / stem


def parse_memory(text: str) -> str:
    """A ``MemoryMax`` value: bytes with K/M/G/T, a percentage of RAM, or ``infinity``.

    Raises:
        ServiceError: Anything else.
    """
    value = text.strip()
    if not _SIZE_RE.match(value):
        raise ServiceError(
            f"memory bound {text!r}: give a size like 1500M or 2G, a percentage like 75%, "
            "or infinity"
        )
    return value


def parse_cpu_quota(text: str) -> float:
    """A ``CPUQuota`` in percent of one core (``150`` or ``150%``: one and a half cores).

    Raises:
        ServiceError: Not a positive number of percent.
    """
    m = _QUOTA_RE.match(text.strip())
    value = float(m.group(1)) if m else 0.0
    if value <= 0:
        raise ServiceError(
            f"CPU quota {text!r}: give percent of one core, e.g. 150% for one and a half cores"
        )
    return value


def check_watchdog(seconds: float) -> float:
    """The watchdog interval (0 turns it off).

    Raises:
        ServiceError: Below ``MIN_WATCHDOG_S`` (a camera connecting would be taken for
            hung) or above ``MAX_WATCHDOG_S``.
    """
    if seconds == 0:
        return 0.0
    if not (MIN_WATCHDOG_S <= seconds <= MAX_WATCHDOG_S):
        raise ServiceError(
            f"watchdog {seconds:g} s: give 0 (off) or {MIN_WATCHDOG_S:g} to "
            f"{MAX_WATCHDOG_S:g} s (a camera's first connection may be silent for 15 s)"
        )
    return seconds


@dataclass(frozen=True)
class CheckedConfig:
    """What the unit needs to know of a valid config."""

    path: Path
    writable: tuple[Path, ...]
    """Where the config writes outside ``ARGUS_HOME`` (relative paths are under it)."""
    secrets: tuple[str, ...]
    """The ``CAM_*`` variables its camera sources reference."""
    video_group: bool
    model: str


def check_config(path: Path, *, worker: bool, home: Path) -> CheckedConfig:
    """Validate the config as ``argus check`` does (``argus worker``'s loader for a worker)
    and read what the unit needs from it.

    Raises:
        ServiceError: Missing, invalid, or not runnable by the command the unit starts.
    """
    from ingest.factory import classify_source

    config = path.expanduser().absolute()
    cfg: ArgusConfig | WorkerConfig
    try:
        cfg = load_worker_config(config) if worker else load_config(config)
    except ConfigError as e:
        raise ServiceError(str(e)) from e
    sources: list[str] = []
    if isinstance(cfg, ArgusConfig):
        if not cfg.cameras:
            raise ServiceError(
                f"{config} has no cameras (they come from the fleet topic): install the "
                "worker's service instead (--worker, with the worker's config)"
            )
        sources = [c.source for c in cfg.cameras]
    outputs: list[Path] = [s.jsonl.parent for s in cfg.sinks]
    if cfg.storage.sqlite is not None:
        outputs.append(cfg.storage.sqlite.parent)
    if cfg.storage.evidence_dir is not None:
        outputs.append(cfg.storage.evidence_dir)
    if cfg.evidence.s3 is not None and cfg.evidence.s3.spool_dir is not None:
        outputs.append(cfg.evidence.s3.spool_dir)
    writable: list[Path] = []
    for out in outputs:
        full = out if out.is_absolute() else home / out  # the unit's working directory
        if not full.is_relative_to(home) and full not in writable:
            writable.append(full)
    secrets = sorted({ref for s in sources for ref in _SECRET_REF_RE.findall(s)})
    return CheckedConfig(
        path=config,
        writable=tuple(writable),
        secrets=tuple(secrets),
        video_group=any(classify_source(s)[0] == "device" for s in sources),
        model=cfg.detector.model,
    )


def _path(value: Path, what: str) -> str:
    """A path as a unit setting takes it (specifiers escaped); refused when systemd would
    split or misread it."""
    text = str(value)
    if not value.is_absolute():
        raise ServiceError(f"{what} {text!r} must be an absolute path")
    if any(c.isspace() or ord(c) < 32 or c in "\"'\\" for c in text):
        raise ServiceError(f"{what} {text!r}: a path with spaces or quotes; choose another")
    return text.replace("%", "%%")


def _exec_arg(text: str) -> str:
    """One ``ExecStart`` word: specifiers and variables escaped, quoted when needed."""
    if any(ord(c) < 32 for c in text):
        raise ServiceError(f"command argument {text!r} has control characters")
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{out}"' if not out or any(c.isspace() or c == "'" for c in out) else out


def command(spec: UnitSpec) -> list[str]:
    """The command the unit starts."""
    if spec.worker:
        return [spec.python, "-m", "argus", "worker", "--config", str(spec.config)]
    return [spec.python, "-m", "argus", "run", str(spec.config)]


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text for ``spec``.

    Raises:
        ServiceError: A value systemd would misread (a name, user, path, bound).
    """
    user = spec.user
    group = spec.group or spec.user
    for who, what in ((user, "user"), (group, "group")):
        if not _USER_RE.match(who):
            raise ServiceError(f"{what} {who!r}: not a valid user or group name")
    home = _path(spec.home, "ARGUS_HOME")
    env_file = _path(spec.env_file, "environment file")
    _path(spec.config, "config")
    watchdog = check_watchdog(spec.watchdog_s)
    if not Path(spec.python).is_absolute():
        raise ServiceError(f"python {spec.python!r} must be an absolute path")
    what = "fleet worker" if spec.worker else "pipeline"
    lines = [
        f"# {spec.unit_name}: the Argus {what}, written by `argus service install`",
        f"# (Argus {argus.__version__}). Camera secrets: {spec.env_file} (CAM_*=..., mode 0600).",
        "[Unit]",
        f"Description=Argus CCTV analytics: {' '.join(command(spec)[3:])}",
        "Wants=network-online.target",
        "After=network-online.target",
        "# a config that cannot start is given up on; a pipeline that hangs now and then is not",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_S}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join(_exec_arg(a) for a in command(spec)),
        f"User={user}",
        f"Group={group}",
    ]
    if spec.video_group:
        lines.append("SupplementaryGroups=video")
    lines += [
        f"Environment=ARGUS_HOME={home}",
        "Environment=PYTHONUNBUFFERED=1",
        "# a watchdog kill (SIGABRT) first writes every thread's stack to the journal",
        "Environment=PYTHONFAULTHANDLER=1",
        f"EnvironmentFile=-{env_file}",
        f"WorkingDirectory={home}",
    ]
    if spec.home.parent == Path("/var/lib"):  # systemd makes it, owned by the user
        lines += [f"StateDirectory={spec.home.name}", "StateDirectoryMode=0750"]
    lines += [
        "Restart=always",
        f"RestartSec={RESTART_S}",
        f"TimeoutStartSec={START_TIMEOUT_S}",
        f"TimeoutStopSec={STOP_TIMEOUT_S}",
    ]
    if watchdog:
        lines += [
            "# pinged only while frames are analysed or cameras retry (argus.notify)",
            f"WatchdogSec={watchdog:g}",
        ]
    if spec.memory_max is not None:
        lines.append(f"MemoryMax={parse_memory(spec.memory_max)}")
    if spec.cpu_quota is not None:
        lines.append(f"CPUQuota={spec.cpu_quota:g}%")
    rw = [home] + [f"-{_path(p, 'output path')}" for p in spec.writable]
    lines += [
        "# hardening; not PrivateDevices (cameras, GPUs) nor MemoryDenyWriteExecute (ONNX)",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={' '.join(rw)}",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Installed:
    """Where the unit went, and whether anything changed."""

    path: Path
    changed: bool


def install_unit(text: str, unit_dir: Path, name: str, *, force: bool = False) -> Installed:
    """Write the unit ``name`` with ``text`` into ``unit_dir`` (atomically, mode 0644).

    The same text already there: nothing is written.  A different unit there is replaced
    only with ``force``.

    Raises:
        ServiceError: No such folder, a different unit without ``force``, or not writable.
    """
    if not unit_dir.is_dir():
        raise ServiceError(f"unit folder {unit_dir} does not exist (or is not a folder)")
    target = unit_dir / name
    if target.exists() or target.is_symlink():
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ServiceError(f"cannot read the existing {target}: {e}") from e
        if current == text:
            return Installed(target, changed=False)
        if not force:
            raise ServiceError(
                f"{target} exists and differs from the unit this would write; "
                "compare with --print, and replace it with --force"
            )
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=unit_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        raise ServiceError(
            f"cannot write {target}: {e.strerror or e} (run as root, or give --unit-dir)"
        ) from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return Installed(target, changed=True)


def next_steps(spec: UnitSpec, checked: CheckedConfig) -> list[str]:
    """The commands left to the engineer (as root), in order."""
    group = spec.group or spec.user
    unit = spec.unit_name
    secrets = " ".join(f"{s}=..." for s in checked.secrets) or "CAM_...=... (camera secrets)"
    steps = [
        f"id -u {spec.user} >/dev/null 2>&1 || useradd --system --user-group "
        f"--home-dir {spec.home} --shell /usr/sbin/nologin {spec.user}",
        f"install -d -o {spec.user} -g {group} -m 0750 {spec.home}",
        f"install -d -m 0755 {spec.env_file.parent} && install -m 0600 /dev/null "
        f"{spec.env_file}   # then write in it: {secrets}",
    ]
    models = spec.home / "models" / checked.model / "manifest.json"
    if not models.is_file():
        steps.append(
            f"sudo -u {spec.user} ARGUS_HOME={spec.home} {spec.python} -m argus models pull"
            f"   # the model {checked.model!r} is not in {spec.home}/models yet"
        )
    steps += [
        f"systemctl daemon-reload && systemctl enable --now {unit}",
        f"systemctl status {unit}; journalctl -u {unit} -f",
    ]
    return steps


def describe(steps: Sequence[str]) -> str:
    """The steps as the text printed after installing."""
    return "Next steps (as root; this command does not call systemctl):\n" + "\n".join(
        f"  {s}" for s in steps
    )
