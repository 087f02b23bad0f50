"""Error answers that can always be sent, and logging of rejected requests.

* ``SafeJSONResponse`` renders any text, an unpaired surrogate included, as valid
  UTF-8 JSON (such a character is written as its ``\\uXXXX`` escape), so a 4xx that
  echoes hostile input never turns into a 500.
* The exception handlers installed by ``install_handlers`` answer every ``HTTPException``,
  every validation error and every store failure with such a response; validation
  errors echo what was sent only as far as it is short and printable.
* ``RejectionLog`` writes the lines about rejected requests (bad key, bad host) with the
  request path escaped, and at most ``burst`` of them per ``window_s``; the rest are
  counted in one summary line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from alerts.store import AlertStoreError, TransitionConflictError
from alerts.store.lifecycle import ALLOWED
from ingest.redact import escape_controls

logger = logging.getLogger("alerts.api")

MAX_ECHO = 80
"""Longest piece of a rejected input echoed back in a 422 answer, characters."""


class SafeJSONResponse(JSONResponse):
    """A JSON response whose body is valid UTF-8 whatever strings ``content`` holds."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # An unpaired surrogate has no UTF-8 form: write it as the JSON escape it came as.
        return text.encode("utf-8", "backslashreplace")


def _echo(value: Any) -> Any:
    """A short, printable stand-in for a rejected input (numbers and booleans as they are)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = escape_controls(value)
        return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."
    return f"<{type(value).__name__}>"


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's error list with every ``input`` shortened and escaped, ``ctx`` as text."""
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        item: dict[str, Any] = {
            "type": str(err.get("type", "")),
            "loc": [
                p if isinstance(p, int) else escape_controls(str(p))[:MAX_ECHO]
                for p in err.get("loc", ())
            ],
            "msg": escape_controls(str(err.get("msg", ""))),
        }
        if "input" in err:
            item["input"] = _echo(err["input"])
        out.append(item)
    return out


def install_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, validation errors and store failures with ``SafeJSONResponse``."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return SafeJSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=headers
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return SafeJSONResponse({"detail": validation_errors(exc)}, status_code=422)

    async def store_failed(request: Request, exc: Exception) -> JSONResponse:
        logger.error("alert store failed on %s: %s", escape_controls(request.url.path)[:200], exc)
        return SafeJSONResponse({"detail": "alert store unavailable"}, status_code=503)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TransitionConflictError)
        owner = f", owned by {exc.owner}" if exc.owner else ""
        body = {
            "detail": f"the alert is {exc.state}{owner}: that is not possible now",
            "state": exc.state,
            "owner": exc.owner,
            "allowed": list(ALLOWED[exc.state]),
        }
        return SafeJSONResponse(body, status_code=409)

    app.add_exception_handler(StarletteHTTPException, http_error)  # FastAPI's is a subclass
    app.add_exception_handler(TransitionConflictError, conflict)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(AlertStoreError, store_failed)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of ``app`` answers on the request's path, sorted."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


class RejectionLog:
    """Rate-limited INFO lines about rejected requests.

    The first ``burst`` rejections of each ``window_s`` are logged, one line each, with
    method, escaped path and reason; later ones in the window are only counted, and the
    count is logged (one line) with the first rejection after the window.  Thread-safe.
    """

    def __init__(
        self,
        *,
        burst: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> None:
        if burst < 1 or window_s <= 0:
            raise ValueError(f"need burst >= 1 ({burst}) and window_s > 0 ({window_s})")
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._window_start = -float("inf")
        self._in_window = 0
        self._suppressed = 0

    def note(self, reason: str, scope: Scope, **fields: str) -> None:
        """Record one rejected request (``fields``: extra text, e.g. the host, escaped too)."""
        now = self._clock()
        with self._lock:
            if now - self._window_start >= self.window_s:
                suppressed, self._suppressed = self._suppressed, 0
                self._window_start, self._in_window = now, 0
                if suppressed:
                    self._log.info(
                        "%d more rejected requests were not logged in the last %.0f s",
                        suppressed,
                        self.window_s,
                    )
            if self._in_window >= self.burst:
                self._suppressed += 1
                return
            self._in_window += 1
        extra = "".join(f" {k}={escape_controls(v)[:100]!s}" for k, v in fields.items())
        self._log.info(
            "rejected %s %s: %s%s",
            escape_controls(str(scope.get("method", "")))[:10],
            escape_controls(str(scope.get("path", "")))[:200],
            reason,
            extra,
        )
