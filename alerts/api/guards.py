"""ASGI middleware that guards the API before any route runs.

* ``HostGuard``: the ``Host`` header must be one of ``allowed_hosts`` (DNS rebinding
  otherwise lets a web page reach the API through the operator's browser); health,
  readiness and metrics are exempt so that probes by pod address keep working.
* ``BodyGuard``: request bodies are bounded in size (413), and a JSON body must be UTF-8,
  nested at most ``max_depth`` deep and free of unpaired UTF-16 surrogates
  (``"\\ud800"``) - all refused with 422 before any route sees them.
* ``MetricsMiddleware``: counts and times requests by route template.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.api.errors import RejectionLog, SafeJSONResponse
from alerts.api.models import invalid
from alerts.metrics import API_LATENCY, API_REQUESTS

# --------------------------------------------------------------------------- hosts

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Hosts a local browser or script uses: always part of the default ``allowed_hosts``."""
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths answered whatever the ``Host`` header (Kubernetes probes use the pod address)."""
_WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def default_allowed_hosts(listen_host: str | None = None) -> list[str]:
    """Loopback names and addresses, plus ``listen_host`` unless it is a wildcard address."""
    hosts = list(LOOPBACK_HOSTS)
    if listen_host is not None:
        name = _normalise(listen_host)
        if name not in _WILDCARD_BINDS and name not in hosts:
            hosts.append(name)
    return hosts


def _normalise(host: str) -> str:
    """``host`` lower-cased, without brackets around an IPv6 address."""
    host = host.strip().lower()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def host_of(header: str) -> str:
    """The host part of a ``Host`` header value (port and IPv6 brackets removed).

    Examples: ``"example.org:8000"`` -> ``"example.org"``, ``"[::1]:8000"`` -> ``"::1"``,
    ``"::1"`` -> ``"::1"`` (an unbracketed IPv6 address has no port).
    """
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        return _normalise(header[: end + 1]) if end > 0 else ""
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return _normalise(header)


class HostGuard:
    """Refuses requests whose ``Host`` is not allowed, with 400 (probe paths exempt).

    ``allowed`` entries are host names or addresses (no port); ``"*"`` allows any host
    and ``"*.example.org"`` any subdomain of ``example.org``.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed: Iterable[str],
        rejections: RejectionLog,
        exempt: frozenset[str] = PROBE_PATHS,
    ) -> None:
        self.app = app
        names = [_normalise(h) for h in allowed]
        self.any = "*" in names
        self.exact = frozenset(n for n in names if not n.startswith("*."))
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.exempt = exempt
        self.rejections = rejections

    def allows(self, host: str) -> bool:
        """Whether a request with this ``Host`` header value is served."""
        if self.any:
            return True
        name = host_of(host)
        return bool(name) and (name in self.exact or name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"host", b"")
        host = raw.decode("latin-1")
        if not self.allows(host):
            self.rejections.note("host not allowed", scope, host=host)
            response = SafeJSONResponse(
                {"detail": "Host header not allowed (see api.allowed_hosts)"}, status_code=400
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------------- bodies


def parsed_as_json(content_type: str) -> bool:
    """Whether FastAPI parses a body of this ``Content-Type`` as JSON: none given,
    ``application/json`` or any ``application/*+json`` (parameters ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return not media or (main == "application" and (sub == "json" or sub.endswith("+json")))


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_problem(body: bytes, max_depth: int) -> tuple[str, str] | None:
    """Why a JSON request body must be refused before it is parsed for the route, as
    ``(message, kind)``, or ``None``.

    Refused: not UTF-8; arrays/objects nested deeper than ``max_depth`` (measured without
    recursion; the parser's own recursion guard catches absurd depths first); a string or
    key holding an unpaired UTF-16 surrogate (``"\\ud800"``), which UTF-8 cannot encode, so it
    could be neither stored nor echoed.  A body that is not JSON at all is left to the route
    (it answers 422 with the parser's reason).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "request body is not UTF-8", "utf8_invalid"
    deep = f"JSON nested deeper than {max_depth} levels", "json_too_deep"
    try:
        value = json.loads(text)
    except RecursionError:
        return deep
    except ValueError:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return (
                    "JSON string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)",
                    "json_lone_surrogate",
                )
        elif isinstance(item, list | dict):
            if depth + 1 > max_depth:
                return deep
            if isinstance(item, dict):
                stack.extend((k, depth + 1) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
    return None


class _BodyTooLargeError(Exception):
    """Internal: the streamed body passed its limit."""


class BodyGuard:
    """Bounds request bodies and checks JSON ones before the application reads them.

    ``per_path`` maps exact request paths to their own size limit (e.g. ``PUT /rules``).
    A body FastAPI would parse as JSON (``parsed_as_json``: no ``Content-Type``,
    ``application/json`` or ``application/*+json``)
    is buffered (it is small: bounded above) and refused with 422 when it is not UTF-8,
    nests deeper than ``max_depth`` or holds an unpaired surrogate escape.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_depth: int,
        per_path: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(str(scope.get("path", "")), self.max_bytes)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, 413, f"request body larger than {limit} bytes")
            return
        try:
            body = await self._read(receive, limit)
        except _BodyTooLargeError:
            await self._refuse(scope, receive, send, 413, f"request body larger than {limit} bytes")
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if body and parsed_as_json(content_type):
            problem = json_problem(body, self.max_depth)
            if problem is not None:
                answer = SafeJSONResponse(invalid(["body"], *problem), status_code=422)
                await answer(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _read(receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # http.disconnect: serve what came (the app sees an empty rest)
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        await SafeJSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands ``body`` over once, then passes on to the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# --------------------------------------------------------------------------- metrics


class MetricsMiddleware:
    """Counts requests by method, route template and status; times them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = str(scope.get("method", ""))
            if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                method = "other"  # a label per made-up method would grow without bound
            API_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            API_LATENCY.labels(method=method, route=template).observe(time.perf_counter() - start)
