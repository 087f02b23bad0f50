"""``argus cameras ...``: tools for the engineer at the site (``argus cameras discover``,
``argus cameras probe``).

``cameras_subparsers(sub)`` returns the ``cameras`` group's subcommands, made once, so
other site commands (``discover``...) add themselves beside ``probe``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from argus.logs import setup_logging
from argus.paths import argus_home
from argus.site import discover_cli

EXIT_OK, EXIT_BAD_ARGUMENTS, EXIT_UNREACHABLE = 0, 2, 3

_CAMERAS_SUB = "_argus_cameras_subparsers"


def cameras_subparsers(sub: argparse._SubParsersAction[Any]) -> argparse._SubParsersAction[Any]:
    """The subcommands of ``argus cameras`` (the group is added to ``sub`` on first use)."""
    existing = getattr(sub, _CAMERAS_SUB, None)
    if isinstance(existing, argparse._SubParsersAction):
        return existing
    cameras = sub.add_parser("cameras", help="probe (and find) cameras at the site")
    csub: argparse._SubParsersAction[Any] = cameras.add_subparsers(
        dest="cameras_cmd", required=True
    )
    setattr(sub, _CAMERAS_SUB, csub)
    return csub


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 600):
        raise argparse.ArgumentTypeError(f"must be > 0 and at most 600 seconds, got {text}")
    return value


def add_site_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``cameras probe`` and ``cameras discover`` to the ``argus`` subcommands."""
    p = cameras_subparsers(sub).add_parser(
        "probe",
        help="what a camera streams, which stream to analyse, how many this machine holds",
        description="Measure a camera's stream(s) (codec, resolution, fps, keyframe "
        "interval, bitrate), recommend the smaller stream for analysis and the larger for "
        "evidence, and bench the detector on the analysis stream. Exit 0 ok, 2 bad "
        "arguments, 3 a stream unreachable or unreadable.",
    )
    p.add_argument("main_url", metavar="MAIN_URL", help="rtsp://, http(s):// or a file path")
    p.add_argument("sub_url", metavar="SUB_URL", nargs="?", help="the camera's sub-stream")
    p.add_argument("--sub", dest="sub_flag", metavar="URL", help="the sub-stream (as SUB_URL)")
    p.add_argument(
        "--seconds", type=_seconds, default=5.0, help="probe window per stream (default 5 s)"
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        help="give up connecting, or on a silent stream, after this long (default 10 s)",
    )
    p.add_argument(
        "--bench-seconds",
        type=_seconds,
        default=5.0,
        help="how long the capacity bench runs the detector (default 5 s)",
    )
    p.add_argument("--no-bench", action="store_true", help="skip the capacity bench")
    p.add_argument("--model", help="registered model (default: the config default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(fn=cmd_cameras_probe)
    d = cameras_subparsers(sub).add_parser(
        "discover",
        help="find the ONVIF cameras on this network (WS-Discovery) and list their streams",
        description="Probe for ONVIF cameras (WS-Discovery), ask each for its maker, model, "
        "media profiles and RTSP URLs, and check each URL answers. The password comes from "
        "--password-env or a prompt, never an argument. Exit 0 all found and checked, 1 none "
        "found or a problem with one, 2 bad input.",
    )
    discover_cli.add_arguments(d)


def cmd_cameras_probe(args: argparse.Namespace) -> int:
    """``argus cameras probe MAIN_URL [SUB_URL]``."""
    from argus.site.probe import error_json, probe_site, table, to_json
    from ingest.probe import ProbeError
    from ingest.redact import redact_url

    if args.sub_url and args.sub_flag:
        print("argus: give the sub-stream once: SUB_URL or --sub URL", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    sub_url = args.sub_url or args.sub_flag
    if sub_url is not None and sub_url.strip() == args.main_url.strip():
        print(
            f"argus: the same URL twice ({redact_url(sub_url)}): give the main and the sub-stream",
            file=sys.stderr,
        )
        return EXIT_BAD_ARGUMENTS
    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    detector = {"model": args.model} if args.model else None
    try:
        report = probe_site(
            args.main_url,
            sub_url,
            seconds=args.seconds,
            timeout_s=args.timeout,
            bench_seconds=None if args.no_bench else args.bench_seconds,
            home=argus_home(),
            detector=detector,
        )
    except ProbeError as e:
        if args.json:
            print(json.dumps(error_json(e), indent=2, ensure_ascii=False))
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(to_json(report), indent=2, ensure_ascii=False))
    else:
        print(table(report))
    if report.capacity_error is not None:
        print(f"argus: capacity not measured: {report.capacity_error}", file=sys.stderr)
    return EXIT_OK
