"""``argus cameras discover``'s output: a table for a terminal, or JSON for scripts.
Everything shown was scrubbed of passwords when the result was made
(:mod:`argus.site.discover`)."""

from __future__ import annotations

import textwrap
from typing import Any

from argus.site.discover import NO_CAMERAS_HINT, Camera, DiscoveryResult, MediaProfile


def _maker_model(c: Camera) -> tuple[str, str, bool]:
    """(manufacturer, model, from_scopes)."""
    if c.manufacturer or c.model:
        return c.manufacturer or "?", c.model or "?", False
    if c.scope_name or c.scope_hardware:
        return c.scope_name or "?", c.scope_hardware or "?", True
    return "?", "?", False


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def render_table(result: DiscoveryResult) -> str:
    """The result as text for a terminal: one row per camera profile, then the problems."""
    where = f"from {result.interface}" if result.interface else "on every interface"
    if not result.cameras:
        return (
            f"No cameras found (WS-Discovery probe {where}, {result.timeout_s:g} s).\n"
            + textwrap.fill(f"Hint: {NO_CAMERAS_HINT}", width=100, subsequent_indent="  ")
            + "\n"
        )
    n = len(result.cameras)
    head = ["ADDRESS", "MANUFACTURER", "MODEL", "PROFILE", "ENCODING", "RESOLUTION", "FPS"]
    head += ["STREAM", "CHECK"]
    rows: list[list[str]] = []
    problems: list[str] = []
    scoped = False
    for c in result.cameras:
        maker, model, from_scopes = _maker_model(c)
        if from_scopes:
            maker, model, scoped = maker + "*", model + "*", True
        if c.problem is not None:
            rows.append([c.address, maker, model, "-", "-", "-", "-", "-", "ERROR"])
            problems.append(f"{c.address}: {c.error}")
            continue
        if not c.profiles:
            rows.append([c.address, maker, model, "-", "-", "-", "-", "-", "NO PROFILES"])
            problems.append(f"{c.address}: the camera reports no media profiles")
        for p in c.profiles:
            res = f"{p.width}x{p.height}" if p.width and p.height else "-"
            if p.error is not None:
                check = "ERROR"
                problems.append(f"{c.address} profile {p.name}: {p.error}")
            elif p.stream is None:
                check = "not checked"
            elif p.stream.verified:
                check = "ok"
            else:
                check = "UNVERIFIED"
                problems.append(
                    f"{c.address} profile {p.name}: stream not verified: {p.stream.detail}"
                )
            row = [c.address, maker, model, p.name, p.encoding or "-", res, _num(p.fps)]
            rows.append([*row, p.stream_url or "-", check])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"Found {n} ONVIF device{'s' if n != 1 else ''} (WS-Discovery probe {where}, "]
    lines[0] += f"{result.timeout_s:g} s)."
    for r in [head, *rows]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    if scoped:
        lines.append("* from the device's discovery scopes, not confirmed over ONVIF")
    if problems:
        lines.append("Problems:")
        lines += [f"  {p}" for p in problems]
    return "\n".join(lines) + "\n"


def as_json(result: DiscoveryResult) -> dict[str, Any]:
    """The result as JSON-ready data (what ``--json`` prints)."""

    def profile(p: MediaProfile) -> dict[str, Any]:
        return {
            "token": p.token,
            "name": p.name,
            "encoding": p.encoding,
            "width": p.width,
            "height": p.height,
            "fps": p.fps,
            "stream_url": p.stream_url,
            "stream_verified": None if p.stream is None else p.stream.verified,
            "stream_detail": None if p.stream is None else p.stream.detail,
            "error": p.error,
        }

    def camera(c: Camera) -> dict[str, Any]:
        return {
            "address": c.address,
            "endpoint": c.endpoint,
            "xaddr": c.xaddr,
            "manufacturer": c.manufacturer,
            "model": c.model,
            "firmware": c.firmware,
            "serial": c.serial,
            "scope_name": c.scope_name,
            "scope_hardware": c.scope_hardware,
            "clock_offset_s": c.clock_offset_s,
            "ok": c.ok,
            "problem": c.problem,
            "error": c.error,
            "profiles": [profile(p) for p in c.profiles],
        }

    return {
        "interface": result.interface,
        "timeout_s": result.timeout_s,
        "elapsed_s": result.elapsed_s,
        "found": len(result.cameras),
        "ok": result.ok,
        "hint": None if result.cameras else NO_CAMERAS_HINT,
        "cameras": [camera(c) for c in result.cameras],
    }
