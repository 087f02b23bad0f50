"""The operator page (``alerts/api/static``): its files, its JS run in Node, and in headless
Chromium.

Three levels, each skipped only where its tool is missing:

* string checks on the page's files (nothing inline, no HTML sinks, the false-alarm control);
* the page's script run in Node with a stub DOM, to check the type labels;
* the real page in headless Chromium against a live API (uvicorn): labels rendered,
  hostile record text shown as text, the "False alarm" button creating a suppression,
  and a failure shown in the page.
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
from dataclasses import replace
from html import unescape
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from alerts.api import AccessSettings, create_app
from alerts.api.routes.pages import PAGE_CSP
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from selector.rules.registry import reason_of
from tests.factories import T0, make_event

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
"""How long the page's *False alarm* suppression lasts (the constant in operator.js)."""


def _script() -> str:
    """The page's script."""
    return (STATIC / "operator.js").read_text(encoding="utf-8")


def _html() -> str:
    """The page's markup."""
    return (STATIC / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ markup checks


def test_page_is_self_contained_and_uses_no_html_sinks() -> None:
    html = _html()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/operator.js" defer>']
    assert "<style" not in html and " style=" not in html and " on" not in html.lower()
    assert "http://" not in html and "https://" not in html
    script = _script()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "textContent" in script
    assert "http://" not in script and "https://" not in script


def test_page_has_the_sign_in_form_and_the_lifecycle_controls() -> None:
    html = _html()
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert 'type="password" autocomplete="current-password"' in html
    script = _script()
    for control in ('"Claim"', '"Release"', '"Done"', '"False alarm"', '"Escalate"'):
        assert control in script, control
    assert 'disposition: "false_alarm"' in script and '"region"' in script
    assert '"X-CSRF-Token"' in script and "X-API-Key" not in script
    assert f"const FALSE_ALARM_EXPIRY_S = {FALSE_ALARM_EXPIRY_S};" in script
    assert 'showError(what + " failed: "' in script and 'act(a, button, "False alarm"' in script
    assert 'role="alert"' in _html()


# ------------------------------------------------------------- the script in Node

_NODE_STUBS = """
const el = () => ({ textContent: "", hidden: true, value: "", addEventListener() {},
  replaceChildren() {} });
const elements = new Map();
globalThis.document = { getElementById: (id) => elements.get(id) ??
  (elements.set(id, el()), elements.get(id)) };
globalThis.document.cookie = "";
globalThis.sessionStorage = { getItem: () => null, setItem() {}, removeItem() {} };
globalThis.setInterval = () => 0;
globalThis.fetch = async () => ({ ok: false, status: 401, json: async () => ({}) });
globalThis.window = globalThis;
"""


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
    js = (
        _NODE_STUBS
        + _script()
        + f"\nconst before = {json.dumps(cases)}.map((a) => typeLabel(a));"
        + f"\nsetRuleTypes({json.dumps(_rule_types_payload(tmp_path))});"
        + f"\nconst cases = {json.dumps(cases)};\n"
        + "const after = cases.map((a) => [typeLabel(a), reasonText(a)]);\n"
        + "console.log(JSON.stringify([before, after]));\n"
    )
    path = tmp_path / "page.js"
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


def _add_harness(app: FastAPI) -> None:
    """``/harness``: the operator page signed in as kim, the first "False alarm" clicked.

    A script of this origin runs before the page's (deferred) one: once the sign-in form
    shows, it types the name and password and submits the form as a person would; it
    accepts the confirmation and clicks the first row's button once.  The page's own
    Content-Security-Policy applies.
    """
    pre = (
        "window.confirm = () => true; let signed = false;"
        "const poll = setInterval(() => {"
        ' const form = document.getElementById("sign-in");'
        " if (!signed && form && !form.hidden) { signed = true;"
        f'  document.getElementById("username").value = "{USER}";'
        f'  document.getElementById("password").value = "{PASSWORD}";'
        "  form.requestSubmit(); }"
        ' const b = document.querySelector("#rows tr button.false-alarm");'
        " if (b) { clearInterval(poll); b.click(); } }, 50);"
    )

    @app.get("/harness.js")
    def harness_js() -> Response:
        return Response(pre, media_type="text/javascript")

    @app.get("/harness", response_class=HTMLResponse)
    def harness() -> HTMLResponse:
        page = _html().replace(
            '<script src="/static/operator.js"',
            '<script src="/harness.js"></script><script src="/static/operator.js"',
            1,
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP})


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


def _fill(store: SqliteAlertStore) -> str:
    """Alerts of several types; returns the event id of the top (hostile) one."""
    hostile = replace(make_event(1, priority=95), zone=HOSTILE_ZONE, label=HOSTILE_LABEL)
    crossing = replace(
        make_event(2, type_="line_crossing", priority=80),
        zone=None,
        line="gate",
        direction="+",
        details={"count_plus": 2, "count_minus": 5},
    )
    crowd = replace(make_event(3, type_="crowding", priority=70), details={"count": 7})
    covered = replace(
        make_event(4, type_="covered", priority=60), track_id=None, bbox=None, label=None
    )
    fall = make_event(5, type_="fall", priority=50)
    for ev in (hostile, crossing, crowd, covered):  # as the runner publishes them
        store.upsert(ev.to_record() | {"reason": reason_of(ev)})
    store.upsert(fall.to_record())  # a record from before reasons: none
    ended = replace(crowd, details={"count": 7, "members": 3}).closed(9.0)
    store.upsert(ended.to_record() | {"reason": reason_of(ended)})
    return hostile.event_id


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_page_in_chromium_labels_escapes_and_marks_a_false_alarm(
    store: SqliteAlertStore, tmp_path: Path
) -> None:
    top = _fill(store)
    app = _app(store, tmp_path, control=InProcessControl(), validate_rules=lambda rules: [])
    _add_harness(app)
    with _Server(app) as server:
        dom = _dump_dom(f"http://127.0.0.1:{server.port}/harness", tmp_path / "profile")
    assert "<title>Argus alerts</title>" in dom  # the hostile onerror never ran
    assert 'id="bold"' not in dom and "<img src=" not in dom  # record text stayed text
    cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", dom, re.S)]
    assert HOSTILE_ZONE in cells and HOSTILE_LABEL in cells
    # labels from GET /rule-types, reasons from the records (escaped like the rest)
    assert any(c.startswith("Line crossing") and "Person crossed gate (+)" in c for c in cells)
    assert any(c.startswith("Camera covered") and "lens is covered" in c for c in cells)
    assert "Fall" in cells  # no reason in that record: the label alone
    crowd = "7 people crowding in z for 6 s (3 events in one alert)"
    assert any(c.startswith("Crowding") and crowd in c for c in cells), cells
    assert any(c.startswith("Intrusion") and HOSTILE_ZONE in c for c in cells)
    # the first row's "False alarm" was clicked: suppression stored, status shown
    alert = store.get(top)
    assert alert is not None and alert.status == "false_positive"
    (suppression,) = store.list_suppressions()
    assert suppression.source_event_id == top and suppression.region is not None
    assert suppression.zone == HOSTILE_ZONE
    assert suppression.expires_at - suppression.created_at == pytest.approx(FALSE_ALARM_EXPIRY_S)
    assert '<tr class="closed">' in dom and "closed: false alarm" in cells
    assert re.search(r'<p id="error" role="alert" hidden="">', dom)  # no error shown
    with _Server(app) as server:  # what an operator sees (the next row gets marked too)
        shot = _screenshot_dir(tmp_path) / "operator-page.png"
        _screenshot(f"http://127.0.0.1:{server.port}/harness", tmp_path / "profile2", shot)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_page_in_chromium_shows_a_failed_false_alarm(
    store: SqliteAlertStore, tmp_path: Path
) -> None:
    top = _fill(store)
    app = _app(store, tmp_path)  # no control plane
    _add_harness(app)
    with _Server(app) as server:
        dom = _dump_dom(f"http://127.0.0.1:{server.port}/harness", tmp_path / "profile")
        signed_out = _dump_dom(f"http://127.0.0.1:{server.port}/", tmp_path / "profile3")
        shot = _screenshot_dir(tmp_path) / "sign-in.png"
        _screenshot(f"http://127.0.0.1:{server.port}/", tmp_path / "profile4", shot)
    # nobody signed in: the form shows, the queue does not
    assert '<form id="sign-in">' in signed_out and '<main id="queue" hidden="">' in signed_out
    error = re.search(r'<p id="error" role="alert">\s*<span id="error-text">(.*?)</span>', dom)
    assert error is not None, dom[:3000]
    assert unescape(error.group(1)).startswith(
        "False alarm failed: HTTP 503: control plane not configured"
    )
    alert = store.get(top)
    assert alert is not None and alert.status == "new"


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
