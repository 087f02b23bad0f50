"""The pages: the operators' web app at ``/`` and the API documentation at ``/docs``.

Everything a page needs is served from package files by this server (a control room has
no internet): ours from ``alerts/api/static``, Swagger UI's from the pinned
``fastapi-offline`` wheel.  Only names in an allow-list are served (no path from the
request reaches the file system), and each page runs under a strict
Content-Security-Policy that allows scripts and styles from this origin only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from alerts.api.auth import OPEN

_OURS = resources.files("alerts.api") / "static"
_SWAGGER = resources.files("fastapi_offline") / "static"

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The operators' web app: its own modules and style sheet, same-origin requests, event
streams, snapshots and clips, and live pictures (``blob:`` URLs the page makes from the
wall's stream); no inline script or style, nothing from another origin."""
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Swagger UI: the same, plus the ``data:`` icons of its style sheet."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


@dataclass(frozen=True)
class Asset:
    """One file a page needs: its bytes and media type."""

    body: bytes
    media_type: str


@cache
def _asset(folder: str, name: str) -> Asset:
    root = _OURS if folder == "ours" else _SWAGGER
    suffix = name[name.rfind(".") :]
    return Asset((root / name).read_bytes(), _TYPES[suffix])


STATIC = {
    name: "ours"
    for name in (
        "app.css",
        "app.js",
        "api.js",
        "actions.js",
        "cue.js",
        "detail.js",
        "queue.js",
        "ruleform.js",
        "search.js",
        "setup.js",
        "shapes.js",
        "supervisor.js",
        "text.js",
        "track.js",
        "wall.js",
    )
}
"""``/static/{name}``: the operators' web app's files (ES modules, no build step)."""
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "swagger",
    "swagger-ui.css": "swagger",
    "favicon.png": "swagger",
    "docs.js": "ours",
}
"""``/docs/assets/{name}``: Swagger UI's files and our start-up script."""


def _serve(asset: Asset, csp: str | None = None) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if csp is not None:
        headers |= {
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _lookup(table: dict[str, str], name: str) -> Asset:
    folder = table.get(name)
    if folder is None:
        raise HTTPException(status_code=404, detail="not found")
    return _asset(folder, name)


AssetName = Annotated[str, Path(max_length=64)]

router = APIRouter(include_in_schema=False, dependencies=[OPEN])


@router.get("/")
def index() -> Response:
    """The operator page."""
    return _serve(_asset("ours", "index.html"), PAGE_CSP)


@router.get("/static/{name}")
def static(name: AssetName) -> Response:
    """A file of the operator page."""
    return _serve(_lookup(STATIC, name))


@router.get("/docs")
def docs() -> Response:
    """Swagger UI over ``/openapi.json``, served from this server only."""
    return _serve(_asset("ours", "docs.html"), DOCS_CSP)


@router.get("/docs/assets/{name}")
def docs_asset(name: AssetName) -> Response:
    """A file of the documentation page."""
    return _serve(_lookup(DOCS_ASSETS, name))


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page load: answer "nothing" rather than 404 noise."""
    return Response(status_code=204)
