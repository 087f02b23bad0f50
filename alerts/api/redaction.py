"""What the API may show of the pipeline's state: all of it to a key holder, secrets
removed (``redact``); states and counters only on open endpoints (``public_view``)."""

from __future__ import annotations

import re
from typing import Any

from ingest.redact import redact_text

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authori[sz]ation", re.I)
_MAX_DEPTH = 8

PUBLIC_TEXT_KEYS = frozenset({"state", "backend", "status"})
"""Keys whose text values an open endpoint may show (state names, not free text)."""
_STATE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def redact(value: Any, _depth: int = 0) -> Any:
    """Copy of a health structure with secrets removed.

    Values under keys that look secret (password, token, api_key, ...) become
    ``"***"``; URL passwords and secret query values become ``***`` (the same redaction
    ingest applies to its logs); nesting deeper than 8 is cut.
    """
    if _depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {
            str(k): "***" if _SECRET_KEY.search(str(k)) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def public_view(value: dict[str, Any], _depth: int = 0) -> dict[str, Any]:
    """The part of a health structure an unauthenticated probe may see.

    Kept: numbers, booleans and nulls; lists of numbers (a frame size); text only under
    ``PUBLIC_TEXT_KEYS`` and only when it looks like a state name (``streaming``).  Left
    out: every other text and list (error messages, endpoints, buckets, paths, user
    names), secret-looking keys and anything nested deeper than 8.
    """
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key)
        if _SECRET_KEY.search(name):
            continue
        if item is None or isinstance(item, bool | int | float):
            out[name] = item
        elif isinstance(item, dict):
            if _depth < _MAX_DEPTH:
                out[name] = public_view(item, _depth + 1)
        elif isinstance(item, list | tuple):
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in item):
                out[name] = list(item)
        elif isinstance(item, str) and name in PUBLIC_TEXT_KEYS and _STATE_NAME.fullmatch(item):
            out[name] = item
    return out
