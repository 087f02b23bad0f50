"""``argus cameras discover``: list the ONVIF cameras on this network and their RTSP streams.

The password is never an argument: it comes from the environment variable that
``--password-env`` names, or, at a terminal, from a prompt without echo. It is never logged
or printed. Also runnable on its own: ``python -m argus.site.discover_cli --help``.

Exit status: 0 when cameras were found and every one was described with its streams
verified; 1 when none was found or any camera or stream had a problem (each is said on
stdout); 2 when discovery could not run (bad arguments, an unset password variable, an
address that is not this machine's).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence

from argus.logs import setup_logging
from argus.site.discover import Credentials, DiscoveryError, discover
from argus.site.discover_report import as_json, render_table

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT = 0, 1, 2


class _BadInputError(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``argus cameras discover``'s options to ``p`` and make it run :func:`cmd_discover`."""
    p.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds to wait for cameras to answer the probe (default 3)",
    )
    p.add_argument("--user", help="ONVIF user to ask each camera with (e.g. admin)")
    p.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding the ONVIF password (else prompted at a terminal)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--interface",
        metavar="IP",
        help="this machine's IPv4 address on the cameras' network: probe from it only",
    )
    p.set_defaults(fn=cmd_discover)


def _credentials(args: argparse.Namespace) -> Credentials | None:
    env = getattr(args, "password_env", None)
    if args.user is None:
        if env:
            raise _BadInputError("--password-env needs --user")
        return None
    if env:
        password = os.environ.get(env)
        if password is None:
            raise _BadInputError(f"--password-env {env}: the variable ${env} is not set")
        return Credentials(args.user, password)
    if not sys.stdin.isatty():
        raise _BadInputError(
            "--user needs a password: name the environment variable holding it with "
            "--password-env VAR, or run at a terminal to be asked"
        )
    return Credentials(args.user, getpass.getpass(f"ONVIF password for {args.user}: "))


def cmd_discover(args: argparse.Namespace) -> int:
    """Run the discovery ``args`` describes; print a table (or JSON with ``--json``)."""
    setup_logging(
        getattr(args, "log_level", None) or "WARNING", getattr(args, "log_format", None) or "text"
    )
    try:
        if not args.timeout > 0:
            raise _BadInputError(f"--timeout must be > 0 seconds, not {args.timeout}")
        credentials = _credentials(args)
        result = discover(timeout_s=args.timeout, interface=args.interface, credentials=credentials)
    except (_BadInputError, DiscoveryError) as e:
        print(f"argus cameras discover: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(as_json(result), indent=2))
    else:
        sys.stdout.write(render_table(result))
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m argus.site.discover_cli``: the same command outside the ``argus`` CLI."""
    p = argparse.ArgumentParser(
        prog="argus cameras discover", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", choices=["text", "json"])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        code: int = args.fn(args)
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
