"""The operators' web app (``alerts/api/static``): its files, its modules run in Node, and
the API documentation in headless Chromium.

* string checks on the files: one module script, nothing inline, no HTML sinks, no other
  origin, every module it imports served; the sign-in labels and the buttons' names;
* ``text.js`` run in Node: type labels from the rule types, reasons from the records;
* the API documentation rendered by Chromium from this server alone.

The app in a real browser (sign-in, push, actions, supervisors' views) is tested with
Playwright in ``tests/browser``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from html import unescape
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from alerts.api import AccessSettings, create_app
from alerts.api.routes.pages import PAGE_CSP
from alerts.api.routes.pages import STATIC as STATIC_FILES
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from tests.factories import T0

pytestmark = pytest.mark.unit

KEY = "test-key-0123456789abcdef"
NODE = shutil.which("node")
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
)
"""Chromium's flags for a quiet headless run in a container (every browser test uses them)."""
CHROMIUM = next(
    (
        p
        for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
        if p and Path(p).exists()
    ),
    None,
)
HOSTILE_ZONE = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_LABEL = "<b id=bold>bold</b>"


STATIC = resources.files("alerts.api") / "static"
FALSE_ALARM_EXPIRY_S = 24 * 3600
"""How long a *False alarm* suppression lasts (the constant in actions.js)."""


def _modules() -> dict[str, str]:
    """The app's JavaScript modules by file name."""
    return {
        f.name: f.read_text(encoding="utf-8") for f in STATIC.iterdir() if f.name.endswith(".js")
    }


def _html() -> str:
    """The page's markup."""
    return (STATIC / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ markup checks


def test_page_is_self_contained_and_uses_no_html_sinks() -> None:
    html = _html()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="/static/app.js">']
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html, re.IGNORECASE)  # no inline handlers
    assert "http://" not in html and "https://" not in html
    modules = _modules()
    for name, script in modules.items():
        if name == "docs.js":
            continue
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
        fetched = script.replace('"http://www.w3.org/2000/svg"', "")  # a name, not fetched
        assert "http://" not in fetched and "https://" not in fetched, name
        assert "X-API-Key" not in script, name
        for imported in re.findall(r'from "\./([a-z]+\.js)"', script):
            assert imported in STATIC_FILES, (name, imported)  # served, so it loads
    for href in re.findall(r'(?:href|src)="/static/([^"]+)"', html):
        assert href in STATIC_FILES, href
    assert {n for n in modules if n != "docs.js"} == {n for n in STATIC_FILES if n.endswith(".js")}
    assert "'unsafe-inline'" not in PAGE_CSP and "media-src 'self'" in PAGE_CSP


def test_page_has_the_sign_in_form_the_buttons_and_the_keys() -> None:
    html = _html()
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert 'type="password" autocomplete="current-password"' in html
    modules = _modules()
    actions = modules["actions.js"]
    for name in ("Claim", "Release", "Escalate", "Close", "False alarm", "Reopen"):
        assert f'add("{name}"' in actions, name
    assert (
        '"Show unmasked"' in modules["detail.js"]
        and 'may("evidence.unmasked")' in modules["detail.js"]
    )
    assert 'disposition: "false_alarm"' in actions and '"region"' in actions
    assert f"export const FALSE_ALARM_EXPIRY_S = {FALSE_ALARM_EXPIRY_S};" in actions
    assert '"X-CSRF-Token"' in modules["api.js"]
    for key in ("j", "k", "Enter", "c", "e", "x", "f", "?"):
        assert f"<kbd>{key}</kbd>" in html, key
    assert 'role="alert"' in html


# ------------------------------------------------------------- the modules in Node


def _rule_types_payload(tmp_path: Path) -> Any:
    """What ``GET /api/v1/rule-types`` answers (the registry's words, through the API)."""
    from fastapi.testclient import TestClient

    store = SqliteAlertStore(tmp_path / "rt.sqlite")
    try:
        app = create_app(store, LocalEvidenceStore(tmp_path / "ev"), api_key=KEY)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            r = client.get("/api/v1/rule-types", headers={"X-API-Key": KEY})
        assert r.status_code == 200
        return r.json()
    finally:
        store.close()


@pytest.mark.skipif(NODE is None, reason="node not installed")
def test_labels_come_from_the_rule_types_and_reasons_from_the_records(tmp_path: Path) -> None:
    cases: list[dict[str, Any]] = [
        {"type": "line_crossing", "reason": "Person crossed gate (+)"},
        {"type": "crowding", "reason": "7 people crowding in crossing (3 events in one alert)"},
        {"type": "crowding", "details": {"members": 3, "count": 7}},  # older: no reason
        {"type": "line_crossing", "line": "gate", "direction": "+", "details": {}},
        {"type": "fall", "details": {"members": 2.0}},
        {"type": "covered"},
        {"type": "signal_lost", "reason": ""},
        {"type": "new_kind_of_thing"},
        {"type": "constructor"},  # no prototype lookups
        {"type": "intrusion", "details": {"members": "9"}},
    ]
    text_js = (STATIC / "text.js").read_text(encoding="utf-8")
    js = (
        text_js
        + f"\nconst cases = {json.dumps(cases)};"
        + "\nconst before = cases.map((a) => typeLabel(a.type));"
        + f"\nsetRuleTypes({json.dumps(_rule_types_payload(tmp_path))});"
        + "\nconst after = cases.map((a) => [typeLabel(a.type), reasonText(a)]);\n"
        + "console.log(JSON.stringify([before, after]));\n"
    )
    path = tmp_path / "text.mjs"
    path.write_text(js)
    assert NODE is not None
    out = subprocess.run([NODE, str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    # nothing of its own: before the service answered, only the type's own words
    assert before[:2] == ["Line crossing", "Crowding"] and before[5] == "Covered"
    assert after == [
        ["Line crossing", "Person crossed gate (+)"],
        ["Crowding", "7 people crowding in crossing (3 events in one alert)"],
        ["Crowding", "7 counted, 3 events merged"],
        ["Line crossing", "gate (+)"],
        ["Fall", "2 events merged"],
        ["Camera covered", ""],
        ["Camera signal lost", ""],
        ["New kind of thing", ""],
        ["Constructor", ""],
        ["Intrusion", ""],
    ]


# ------------------------------------------------------- the page in headless Chromium


class _Server:
    """The API (plus a test-only ``/harness`` page) served by uvicorn on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> _Server:
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return self
            self._thread.join(0.01)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


USER, PASSWORD = "kim", "a long operator password"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _app(store: SqliteAlertStore, tmp_path: Path, **kw: Any) -> FastAPI:
    """The API with one operator (``kim``) who may sign in."""
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=KEY,
        access=AccessSettings(camera_groups={"cam-1": ["default"]}, password_hasher=CHEAP),
        **kw,
    )
    store.add_user(
        USER, role="operator", groups=["default"], password_hash=CHEAP.hash(PASSWORD), now=T0
    )
    return app


def _dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=6000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    s = SqliteAlertStore(tmp_path / "alerts.sqlite")
    yield s
    s.close()


def _screenshot(url: str, profile: Path, out: Path) -> None:
    """A 1280x1000 PNG of ``url`` (look at it: the tests write it for a person to check)."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            *HEADLESS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            "--window-size=1280,1000",
            f"--screenshot={out}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0 and out.stat().st_size > 10_000, done.stderr[-2000:]


def _screenshot_dir(tmp_path: Path) -> Path:
    """``$ARGUS_SCREENSHOTS`` (kept for people to look at) or the test's own folder."""
    folder = Path(os.environ.get("ARGUS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_docs_render_in_chromium_from_this_server_alone(
    store: SqliteAlertStore, tmp_path: Path
) -> None:
    """Swagger UI runs under its strict CSP with nothing but this server's files."""
    app = create_app(store, LocalEvidenceStore(tmp_path / "evidence"), api_key=KEY)
    with _Server(app) as server:
        url = f"http://127.0.0.1:{server.port}/docs"
        dom = _dump_dom(url, tmp_path / "profile")
        _screenshot(url, tmp_path / "profile2", _screenshot_dir(tmp_path) / "api-docs.png")
    # rendered by the bundle (the page itself holds only an empty <div id="swagger-ui">)
    assert 'class="swagger-ui' in dom and "Argus alerts API" in dom
    assert "/api/v1/alerts/{event_id}/ack" in unescape(dom)
    assert "/api/v1/rules" in unescape(dom)
