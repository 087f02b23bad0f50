"""What an outside probe of the alerts API found (issue 12), each pinned by a test.

The tests speak HTTP to ``create_app`` only (no internals), so each fails against the
API as it was before its fix: deep JSON (500), unpaired surrogates (500), raw control
characters and one log line per rejected request, an empty rule set taken silently and
``"60"``/``true`` stored as a severity, ``/readyz`` ready with every camera down and
showing hosts, user names and paths, ``/docs`` from a CDN, and no ``Host`` check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerts.api import create_app
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from argus.app import rules_validator
from argus.cli import demo_config
from tests.factories import make_event

pytestmark = pytest.mark.unit

KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}
JSON = {**AUTH, "Content-Type": "application/json"}
LOCAL = "http://127.0.0.1"
EID = make_event(1).event_id


class Env:
    """A real API over a real store, with the real rule checker of the demo's config."""

    def __init__(self, tmp_path: Path, **kw: Any) -> None:
        self.store = SqliteAlertStore(tmp_path / "alerts.sqlite")
        self.store.upsert(make_event(1).to_record())
        cfg = demo_config(Path("/nonexistent/footage.avi"), tmp_path)
        self.initial = [r.model_dump(mode="json", exclude_none=True) for r in cfg.rules]
        kw.setdefault("control", InProcessControl())
        kw.setdefault("validate_rules", rules_validator(cfg, ("person", "car")))
        kw.setdefault("initial_rules", self.initial)
        self.app: FastAPI = create_app(
            self.store, LocalEvidenceStore(tmp_path / "evidence"), api_key=KEY, **kw
        )
        self.client = TestClient(self.app, base_url=LOCAL, raise_server_exceptions=False)

    def close(self) -> None:
        self.client.close()
        self.store.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def _encodable(r: Any) -> Any:
    """The answer's JSON body (it must be valid UTF-8 JSON whatever was sent)."""
    r.content.decode("utf-8")  # strict: raises on a surrogate encoded raw
    return r.json()


# ------------------------------------------------------------- 1. deeply nested JSON

JSON_BODY_ROUTES = [
    ("POST", f"/api/v1/alerts/{EID}/ack", "note"),
    ("POST", f"/api/v1/alerts/{EID}/false-positive", "note"),
    ("PUT", "/api/v1/rules", "rules"),
]


JSON_TYPES = [
    "application/json",
    "application/problem+json",  # FastAPI parses any application/*+json as JSON
    "application/vnd.argus+json; charset=utf-8",
    None,  # no Content-Type: FastAPI parses the body as JSON too
]


@pytest.mark.parametrize("content_type", JSON_TYPES)
@pytest.mark.parametrize("depth", [40, 500, 900, 5000])
@pytest.mark.parametrize(("method", "path", "field"), JSON_BODY_ROUTES)
def test_deeply_nested_json_is_refused_early_on_every_body(
    env: Env, method: str, path: str, field: str, depth: int, content_type: str | None
) -> None:
    nested = "[" * depth + "]" * depth
    if field == "rules":
        body = f'{{"rules": [{{"type": "intrusion", "camera": "plaza", "x": {nested}}}], '
        body += '"revision": null}'
    else:
        body = f'{{"{field}": {nested}}}'
    headers = AUTH if content_type is None else {**AUTH, "Content-Type": content_type}
    r = env.client.request(method, path, headers=headers, content=body.encode())
    assert r.status_code == 422, r.text[:300]
    (problem,) = _encodable(r)["detail"]
    assert problem["type"] == "json_too_deep" and "deeper than 32 levels" in problem["msg"]
    assert env.store.get(EID).status == "new"  # type: ignore[union-attr]
    assert env.store.get_rules() is None


def test_nesting_a_real_rule_set_needs_is_accepted(env: Env) -> None:
    rules = [
        env.initial[0] | {"schedule": [{"start": "22:00", "end": "06:00", "days": ["fri", "sat"]}]},
        *env.initial[1:],
    ]
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": rules, "revision": 0})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 2. lone surrogates

SURROGATE_BODIES = [
    ("POST", f"/api/v1/alerts/{EID}/ack", '{"note": "\\ud800"}'),
    ("POST", f"/api/v1/alerts/{EID}/ack", '{"by": "kim \\udfff"}'),
    ("POST", f"/api/v1/alerts/{EID}/ack", '{"\\ud800": 1}'),
    ("POST", f"/api/v1/alerts/{EID}/false-positive", '{"note": "x\\ud83d"}'),
    ("POST", f"/api/v1/alerts/{EID}/false-positive", '{"by": "\\ud800", "scope": "rule"}'),
    ("PUT", "/api/v1/rules", '{"rules": [{"type": "\\ud800"}], "revision": null}'),
    ("PUT", "/api/v1/rules", '{"rules": [], "revision": "\\ud800"}'),
]


@pytest.mark.parametrize("content_type", JSON_TYPES)
@pytest.mark.parametrize(("method", "path", "body"), SURROGATE_BODIES)
def test_an_unpaired_surrogate_is_a_clean_422(
    env: Env, method: str, path: str, body: str, content_type: str | None
) -> None:
    headers = AUTH if content_type is None else {**AUTH, "Content-Type": content_type}
    r = env.client.request(method, path, headers=headers, content=body.encode())
    assert r.status_code == 422, r.text[:300]
    (problem,) = _encodable(r)["detail"]
    assert problem["type"] == "json_lone_surrogate" and problem["loc"] == ["body"]
    assert env.store.get(EID).status == "new"  # type: ignore[union-attr]


def test_a_valid_surrogate_pair_is_text_like_any_other(env: Env) -> None:
    r = env.client.post(
        f"/api/v1/alerts/{EID}/ack",
        headers=JSON,
        content='{"note": "\\ud83d\\udc4d ok", "by": "김 operator"}'.encode(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["note"] == "\U0001f44d ok" and r.json()["acknowledged_by"] == "김 operator"


@pytest.mark.parametrize(
    "body",
    [
        {"note": 5},
        {"by": ""},
        {"by": "a\x1bb"},
        {"by": "x" * 5000},
        {"note": ["\x1b[31m"] * 3},
        {"unknown": "\u2028"},
    ],
)
def test_every_422_is_encodable_and_echoes_only_short_printable_input(
    env: Env, body: dict[str, Any]
) -> None:
    r = env.client.post(f"/api/v1/alerts/{EID}/ack", headers=AUTH, json=body)
    assert r.status_code == 422
    text = r.content.decode("utf-8")
    assert "\x1b" not in text and "x" * 100 not in text
    assert _encodable(r)["detail"]


# --------------------------------------------------- 5. what is logged of rejections


def test_control_characters_in_a_path_are_escaped_in_the_log(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        r = env.client.get("/api/v1/alerts/x%1b%5b31mRED%0aforged%20line")
    assert r.status_code == 401
    lines = [rec.getMessage() for rec in caplog.records]
    assert lines and all("\x1b" not in m and "\n" not in m for m in lines)
    assert any("\\x1b[31mRED\\x0aforged line" in m for m in lines), lines


def test_rejected_requests_are_logged_at_a_bounded_rate(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for i in range(200):
            env.client.get(f"/api/v1/alerts?n={i}")
            env.client.get("/api/v1/alerts", headers={"Host": "evil.example"})
    rejected = [r for r in caplog.records if "reject" in r.getMessage()]
    assert 1 <= len(rejected) <= 10, len(rejected)


# ----------------------------------------------------- 6. rule sets, strictly typed


def test_an_empty_rule_set_needs_an_explicit_confirmation(env: Env) -> None:
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": [], "revision": 0})
    assert r.status_code == 422
    assert "confirm_empty" in r.json()["problems"][0]
    assert env.store.get_rules() is None
    r = env.client.put(
        "/api/v1/rules", headers=AUTH, json={"rules": [], "revision": 0, "confirm_empty": True}
    )
    assert r.status_code == 200 and r.json() == {"revision": 1, "rules": []}
    r = env.client.put(
        "/api/v1/rules", headers=AUTH, json={"rules": [], "revision": 1, "confirm_empty": 1}
    )
    assert r.status_code == 422  # a 1 is no confirmation


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("severity", "60"),
        ("severity", True),
        ("severity", 60.5),
        ("enabled", "yes"),
        ("enabled", 1),
        ("min_dwell_s", "0.5"),
        ("cooldown_s", False),
        ("classes", "person"),
    ],
)
def test_rule_values_of_the_wrong_json_type_are_refused_not_coerced(
    env: Env, key: str, value: Any
) -> None:
    rules = [env.initial[0] | {key: value}, *env.initial[1:]]
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": rules, "revision": 0})
    assert r.status_code == 422, r.text
    assert any(key in p for p in r.json()["problems"]), r.json()
    assert env.store.get_rules() is None


def test_well_typed_rules_are_stored_exactly_as_validated(env: Env) -> None:
    rules = [env.initial[0] | {"severity": 75, "cooldown_s": 5}, *env.initial[1:]]
    r = env.client.put("/api/v1/rules", headers=AUTH, json={"rules": rules, "revision": 0})
    assert r.status_code == 200, r.text
    assert env.store.get_rules() == (1, rules)


# ----------------------------------------- 7. readiness, and what open endpoints show

HOSTILE_HEALTH: dict[str, Any] = {
    "gate": {
        "state": "failed",
        "error": "rtsp://admin:hunter2@10.20.30.40:554/Streaming/101 refused (operator kim)",
        "source": "/srv/cctv/recordings/gate-2026-12-06.mp4",
        "frames_processed": 120,
        "frame_size": [768, 576],
        "zone_problems": ["zone 'door' outside /srv/cctv/frame"],
    },
    "lobby": {"state": "reconnecting", "error": "timeout to cam-lobby.city.local:554"},
}
HOSTILE_COMPONENTS: dict[str, Any] = {
    "evidence": {
        "backend": "s3",
        "endpoint": "minio.city.local:9000",
        "bucket": "argus-evidence-kim",
        "reachable": False,
        "spool_depth": 3,
        "last_error": "S3 at minio.city.local:9000: access denied for user kim",
    },
    "alert_service": {"running": True, "assigned": ["argus.events:0"], "lag": 0},
}
LEAKS = (
    "10.20.30.40",
    "hunter2",
    "admin",
    "kim",
    "/srv",
    "city.local",
    "Streaming",
    "evidence-kim",
)


def test_readyz_is_not_ready_when_every_camera_is_down(tmp_path: Path) -> None:
    e = Env(tmp_path, health=lambda: HOSTILE_HEALTH)
    try:
        r = e.client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        assert "every camera is down" in r.json()["error"]
    finally:
        e.close()


def test_readyz_is_ready_while_one_camera_streams(tmp_path: Path) -> None:
    health = HOSTILE_HEALTH | {"yard": {"state": "streaming", "frames_processed": 9}}
    e = Env(tmp_path, health=lambda: health)
    try:
        r = e.client.get("/readyz")
        assert r.status_code == 200 and r.json()["cameras"]["gate"]["state"] == "failed"
        assert r.json()["cameras"]["yard"]["frames_processed"] == 9
    finally:
        e.close()


def test_open_endpoints_carry_no_host_user_name_or_path(tmp_path: Path) -> None:
    e = Env(tmp_path, health=lambda: HOSTILE_HEALTH, components=lambda: HOSTILE_COMPONENTS)
    try:
        e.client.post(f"/api/v1/alerts/{EID}/ack", headers=AUTH, json={"by": "kim"})
        for path in ("/readyz", "/metrics", "/healthz"):
            text = e.client.get(path).text
            for leak in LEAKS:
                assert leak not in text, (path, leak)
        ready = e.client.get("/readyz").json()
        assert ready["cameras"]["gate"] == {
            "state": "failed",
            "frames_processed": 120,
            "frame_size": [768, 576],
        }
        assert ready["components"]["evidence"] == {
            "backend": "s3",
            "reachable": False,
            "spool_depth": 3,
        }
        # the details are there for a key holder, passwords still redacted
        assert e.client.get("/api/v1/status").status_code == 401
        status = e.client.get("/api/v1/status", headers=AUTH)
        assert status.status_code == 200, status.text
        detail = status.json()
        assert detail["ready"] is False
        assert "10.20.30.40" in detail["cameras"]["gate"]["error"]
        assert "hunter2" not in status.text
        assert detail["components"]["evidence"]["endpoint"] == "minio.city.local:9000"
    finally:
        e.close()


# ------------------------------------------------------------- 8. /docs from the package


def test_docs_are_served_from_the_package_under_a_csp(env: Env) -> None:
    r = env.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "http://" not in r.text and "https://" not in r.text and "cdn" not in r.text
    srcs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert srcs and all(s.startswith("/docs/assets/") for s in srcs), srcs
    for src in srcs:
        asset = env.client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    bundle = env.client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle
    assert env.client.get("/openapi.json").json()["paths"]["/api/v1/alerts"]


# ----------------------------------------------------------------- 9. the Host header


@pytest.mark.parametrize(
    "path", ["/api/v1/alerts", "/", "/docs", "/openapi.json", "/static/app.js"]
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_a_foreign_host_header_is_refused(env: Env, path: str, host: str) -> None:
    r = env.client.get(path, headers={**AUTH, "Host": host})
    assert r.status_code == 400 and "allowed_hosts" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_whatever_the_host(env: Env, path: str) -> None:
    assert env.client.get(path, headers={"Host": "10.244.1.17:8000"}).status_code == 200


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"]
)
def test_loopback_hosts_are_served_by_default(env: Env, host: str) -> None:
    assert env.client.get("/api/v1/alerts", headers={**AUTH, "Host": host}).status_code == 200


def test_allowed_hosts_can_be_configured(tmp_path: Path) -> None:
    e = Env(tmp_path, allowed_hosts=["argus.city.example", "*.cctv.example"])
    try:
        for host, code in [
            ("argus.city.example", 200),
            ("argus.city.example:443", 200),
            ("ops.cctv.example", 200),
            ("cctv.example", 400),
            ("127.0.0.1", 400),
            ("argus.city.example.evil", 400),
        ]:
            r = e.client.get("/api/v1/alerts", headers={**AUTH, "Host": host})
            assert r.status_code == code, host
    finally:
        e.close()
