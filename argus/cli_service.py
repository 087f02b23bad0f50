"""``argus service install``: run Argus as a systemd service (argus.site.service)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from argus.site.service import (
    DEFAULT_UNIT_DIR,
    DEFAULT_USER,
    DEFAULT_WATCHDOG_S,
    ServiceError,
    UnitSpec,
    check_config,
    check_watchdog,
    command,
    default_home,
    describe,
    install_unit,
    next_steps,
    parse_cpu_quota,
    parse_memory,
    render_unit,
    unit_name,
)

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a number of seconds, got {text}")
    return value


def cmd_service_install(args: argparse.Namespace) -> int:
    """``argus service install``: validate the config, write (or print) the unit."""

    default_config = "/etc/argus/worker.yaml" if args.worker else "/etc/argus/argus.yaml"
    try:
        name = unit_name(args.name, worker=args.worker)
        home = Path(args.home).expanduser().absolute() if args.home else None
        home = home or default_home(args.name, worker=args.worker)
        checked = check_config(Path(args.config or default_config), worker=args.worker, home=home)
        stem = name.removesuffix(".service")
        spec = UnitSpec(
            config=checked.path,
            worker=args.worker,
            name=args.name,
            user=args.user,
            group=args.group,
            home=home,
            env_file=Path(args.env_file or f"/etc/argus/{stem}.env").expanduser().absolute(),
            watchdog_s=check_watchdog(args.watchdog_s),
            memory_max=parse_memory(args.memory_max) if args.memory_max else None,
            cpu_quota=parse_cpu_quota(args.cpu_quota) if args.cpu_quota else None,
            writable=checked.writable,
            video_group=checked.video_group,
        )
        text = render_unit(spec)
        if args.print:
            sys.stdout.write(text)
            return EXIT_OK
        installed = install_unit(text, Path(args.unit_dir), name, force=args.force)
    except ServiceError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    verb = "wrote" if installed.changed else "unchanged:"
    shown = " ".join(["argus", *command(spec)[3:]])
    print(f"argus: {verb} {installed.path} ({shown} as {spec.user})")
    print(describe(next_steps(spec, checked)))
    return EXIT_OK


def add_service_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``service install`` to the ``argus`` subcommands."""
    s = sub.add_parser("service", help="run Argus as a systemd service on this machine")
    ssub = s.add_subparsers(dest="service_cmd", required=True)
    i = ssub.add_parser(
        "install",
        help="write a systemd unit for argus run (or argus worker)",
        description="Validate the config, then write /etc/systemd/system/argus[-NAME].service: "
        "Type=notify with a watchdog the pipeline pings only while it progresses, "
        "Restart=always, camera secrets from an EnvironmentFile, hardening, optional "
        "resource bounds. Prints the systemctl commands to run; runs none. Exit 0 ok, "
        "2 bad input (config, values, unit folder, a different unit already there).",
    )
    i.add_argument("--config", help="the config (default /etc/argus/argus.yaml, worker.yaml)")
    i.add_argument("--worker", action="store_true", help="a fleet worker: argus worker --config")
    i.add_argument("--name", help="unit argus-NAME.service (several pipelines on one box)")
    i.add_argument("--user", default=DEFAULT_USER, help="user it runs as (default %(default)s)")
    i.add_argument("--group", help="its group (default: the user's name)")
    i.add_argument("--home", help="ARGUS_HOME of the service (default /var/lib/argus[-NAME])")
    i.add_argument("--env-file", help="camera secrets, CAM_*=... (default /etc/argus/UNIT.env)")
    i.add_argument(
        "--unit-dir", default=str(DEFAULT_UNIT_DIR), help="where it goes (default %(default)s)"
    )
    i.add_argument(
        "--watchdog-s",
        type=_seconds,
        default=DEFAULT_WATCHDOG_S,
        help="WatchdogSec: 0 off, else 20-3600 (default %(default)s)",
    )
    i.add_argument("--memory-max", metavar="SIZE", help="MemoryMax, e.g. 1500M, 2G or 75%%")
    i.add_argument("--cpu-quota", metavar="PCT", help="CPUQuota, e.g. 150%% (1.5 cores)")
    i.add_argument("--print", action="store_true", help="print the unit; write nothing")
    i.add_argument("--force", action="store_true", help="replace a different existing unit")
    i.set_defaults(fn=cmd_service_install)
