"""The alerts HTTP API (FastAPI TestClient against a real SQLite store and evidence dir)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerts.api import create_app, redact
from alerts.evidence import (
    EvidenceNotFoundError,
    LocalEvidenceStore,
    masked_key,
    render_snapshot,
    snapshot_key,
)
from alerts.store import SqliteAlertStore
from selector.event import Event
from tests.factories import BBOX, T0, make_event

pytestmark = pytest.mark.unit

KEY = "test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}


class Env:
    def __init__(self, tmp_path: Path, health: Any = None) -> None:
        self.store = SqliteAlertStore(tmp_path / "alerts.sqlite")
        self.evidence = LocalEvidenceStore(tmp_path / "evidence")
        self.app: FastAPI = create_app(
            self.store, self.evidence, api_key=KEY, health=health, version="9.9.9"
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1")

    def add(self, event: Event, *, jpeg: bytes | None = None) -> Event:
        if jpeg is not None:
            key = snapshot_key(event.camera_id, event.wall_time, event.event_id)
            self.evidence.put(key, jpeg)
            self.evidence.put(masked_key(key), jpeg)  # served by default
            event = event.with_snapshot(key)
        self.store.upsert(event.to_record())
        return event


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.client.close()
    e.store.close()


EID = make_event(1).event_id
ROUTES = [
    ("GET", "/api/v1/alerts"),
    ("GET", f"/api/v1/alerts/{EID}"),
    ("POST", f"/api/v1/alerts/{EID}/ack"),
    ("GET", f"/api/v1/alerts/{EID}/snapshot"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/rule-types"),
]
WRONG = [
    {},
    {"X-API-Key": "wrong-key-0123456789abcdef"},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": f"Bearer {KEY}x"},
    {"X-API-Key": KEY[:-1]},
    {"X-API-Key": "ünïcode".encode("latin-1")},
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", WRONG)
def test_every_api_route_requires_the_key(
    env: Env, method: str, path: str, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    with caplog.at_level(logging.DEBUG):
        r = env.client.request(method, path, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert KEY not in r.text
    assert all(KEY not in rec.getMessage() for rec in caplog.records)
    assert env.store.get(EID).status == "new"  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers", [AUTH, {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"bearer {KEY}"}]
)
def test_key_accepted_in_either_header_and_never_echoed_or_logged(
    env: Env, method: str, path: str, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    with caplog.at_level(logging.DEBUG):
        r = env.client.request(method, path, headers=headers)
    assert r.status_code == 200
    assert KEY.encode() not in r.content
    assert all(KEY not in rec.getMessage() for rec in caplog.records)


def test_short_api_key_is_refused(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="16") as info:
        create_app(store, LocalEvidenceStore(tmp_path / "e"), api_key="short-secret")
    assert "short-secret" not in str(info.value)
    store.close()


def test_list_is_ordered_by_priority_then_recency_with_total(env: Env) -> None:
    specs = [(1, 10, T0 + 100), (2, 90, T0 + 1), (3, 90, T0 + 50), (4, 50, T0 + 200)]
    for n, prio, wall in specs:
        env.add(make_event(n, priority=prio, wall=wall))
    r = env.client.get("/api/v1/alerts", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert [a["track_id"] for a in body["items"]] == [3, 2, 4, 1]
    assert body["total"] == 4 and body["limit"] == 50 and body["offset"] == 0
    item = body["items"][0]
    assert item["status"] == "new" and item["end_s"] is None
    assert item["wall_time"].startswith("2024-05-01T10:00:50")
    page = env.client.get("/api/v1/alerts?limit=2&offset=2", headers=AUTH).json()
    assert [a["track_id"] for a in page["items"]] == [4, 1] and page["total"] == 4


def test_filters(env: Env) -> None:
    env.add(make_event(1, camera="cam-1"))
    env.add(make_event(2, camera="cam-2"))
    env.add(make_event(3, camera="cam-2", type_="loitering").closed(9.0))
    env.store.acknowledge(make_event(2, camera="cam-2").event_id, by="ops")

    def ids(query: str) -> list[int]:
        r = env.client.get(f"/api/v1/alerts?{query}", headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return sorted(a["track_id"] for a in body["items"])

    assert ids("") == [1, 2, 3]
    assert ids("camera_id=cam-2") == [2, 3]
    assert ids("type=loitering") == [3]
    assert ids("status=acknowledged") == [2]
    assert ids("status=new") == [1, 3]
    assert ids("open=true") == [1, 2]
    assert ids("open=false") == [3]
    assert ids("camera_id=cam-2&open=true&status=acknowledged") == [2]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "offset=-1",
        "status=closed",
        "status=NEW",
        "open=maybe",
        "limit=abc",
        "camera_id=" + "x" * 200,
        "type=",
        "type=" + "x" * 65,
        "type=line%20crossing",
        "type=%3Cscript%3E",
        "type=fall'%20OR%20'1'='1",
        "type=_fall",
    ],
)
def test_bad_query_params_are_422(env: Env, query: str) -> None:
    r = env.client.get(f"/api/v1/alerts?{query}", headers=AUTH)
    assert r.status_code == 422, r.text


def test_new_record_fields_and_type_filter(env: Env) -> None:
    crossing = replace(
        make_event(1, type_="line_crossing", priority=40),
        line="gate",
        direction="+",
        details={"count_plus": 2, "count_minus": 5},
    )
    crowd = replace(make_event(2, type_="crowding", priority=60), details={"count": 7})
    fall = make_event(3, type_="fall", priority=80)
    for ev in (crossing, crowd, fall):
        env.add(ev)
    # the crowding incident persists (escalated start) and ends with 3 members merged
    env.add(replace(crowd, priority=90))
    env.add(replace(crowd, details={"count": 7, "members": 3}).closed(30.0))
    body = env.client.get("/api/v1/alerts", headers=AUTH).json()
    assert [a["type"] for a in body["items"]] == ["crowding", "fall", "line_crossing"]
    by_type = {a["type"]: a for a in body["items"]}
    assert by_type["line_crossing"]["line"] == "gate"
    assert by_type["line_crossing"]["direction"] == "+"
    assert by_type["line_crossing"]["details"] == {"count_plus": 2, "count_minus": 5}
    assert by_type["crowding"]["priority"] == 90
    assert by_type["crowding"]["details"] == {"count": 7, "members": 3}
    assert by_type["fall"]["line"] is None and by_type["fall"]["direction"] is None
    assert by_type["fall"]["details"] == {}
    one = env.client.get(f"/api/v1/alerts/{crossing.event_id}", headers=AUTH).json()
    assert one["line"] == "gate" and one["details"]["count_minus"] == 5
    falls = env.client.get("/api/v1/alerts?type=fall", headers=AUTH).json()
    assert falls["total"] == 1 and [a["event_id"] for a in falls["items"]] == [fall.event_id]
    lc = env.client.get("/api/v1/alerts?type=line_crossing&open=true", headers=AUTH).json()
    assert [a["event_id"] for a in lc["items"]] == [crossing.event_id]
    none = env.client.get("/api/v1/alerts?type=covered", headers=AUTH).json()
    assert none == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "change_seq": none["change_seq"],
    }
    props = env.client.get("/openapi.json").json()["components"]["schemas"]["Alert"]["properties"]
    assert {"line", "direction", "details"} <= set(props)


def test_limit_bounds_inclusive(env: Env) -> None:
    for q in ("limit=1", "limit=500"):
        assert env.client.get(f"/api/v1/alerts?{q}", headers=AUTH).status_code == 200


def test_get_one_unknown_and_malformed(env: Env) -> None:
    ev = env.add(make_event(1))
    r = env.client.get(f"/api/v1/alerts/{ev.event_id}", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["event_id"] == ev.event_id and r.json()["bbox"] == list(BBOX)
    # uppercase form of the same uuid is normalised
    assert env.client.get(f"/api/v1/alerts/{ev.event_id.upper()}", headers=AUTH).status_code == 200
    assert env.client.get(f"/api/v1/alerts/{uuid.uuid4()}", headers=AUTH).status_code == 404
    for bad in ("not-a-uuid", "1234", ev.event_id[:-1] + "z", ev.event_id + "0"):
        assert env.client.get(f"/api/v1/alerts/{bad}", headers=AUTH).status_code == 422
    r = env.client.get("/api/v1/alerts/..%2F..%2Fetc%2Fpasswd", headers=AUTH)
    assert r.status_code in (404, 422)


def test_acknowledge(env: Env) -> None:
    ev = env.add(make_event(1))
    url = f"/api/v1/alerts/{ev.event_id}/ack"
    r = env.client.post(url, headers=AUTH, json={"note": "guard sent", "by": "alice"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "alice"
    assert body["note"] == "guard sent" and body["acknowledged_at"] is not None
    r2 = env.client.post(url, headers=AUTH)  # no body, twice: fine, first kept
    assert r2.status_code == 200 and r2.json() == body
    listed = env.client.get("/api/v1/alerts?status=acknowledged", headers=AUTH).json()
    assert [a["event_id"] for a in listed["items"]] == [ev.event_id]
    assert env.client.post(f"/api/v1/alerts/{uuid.uuid4()}/ack", headers=AUTH).status_code == 404
    assert env.client.post("/api/v1/alerts/nope/ack", headers=AUTH).status_code == 422


@pytest.mark.parametrize(
    "body",
    [{"note": "x" * 1001}, {"by": ""}, {"by": "a\nb"}, {"unknown": 1}, {"note": 5}],
)
def test_ack_body_validation(env: Env, body: dict[str, Any]) -> None:
    ev = env.add(make_event(1))
    r = env.client.post(f"/api/v1/alerts/{ev.event_id}/ack", headers=AUTH, json=body)
    assert r.status_code == 422
    assert env.store.get(ev.event_id).status == "new"  # type: ignore[union-attr]


def test_ack_body_size_is_limited(env: Env) -> None:
    ev = env.add(make_event(1))
    url = f"/api/v1/alerts/{ev.event_id}/ack"
    big = b'{"note": "' + b"x" * 20_000 + b'"}'
    r = env.client.post(url, headers={**AUTH, "Content-Type": "application/json"}, content=big)
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed body
        yield b'{"note": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    r = env.client.post(url, headers={**AUTH, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413
    assert env.store.get(ev.event_id).status == "new"  # type: ignore[union-attr]


def test_snapshot_served_as_jpeg(env: Env) -> None:
    jpeg = render_snapshot(np.full((60, 80, 3), 100, np.uint8), (5, 5, 40, 50), "person")
    ev = env.add(make_event(1), jpeg=jpeg)
    r = env.client.get(f"/api/v1/alerts/{ev.event_id}/snapshot", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == jpeg


def test_snapshot_missing_cases_are_404(env: Env) -> None:
    no_shot = env.add(make_event(1))
    url = "/api/v1/alerts/{}/snapshot"
    assert env.client.get(url.format(no_shot.event_id), headers=AUTH).status_code == 404
    assert env.client.get(url.format(uuid.uuid4()), headers=AUTH).status_code == 404
    # record points at a key that was never written
    lost = make_event(2).with_snapshot("cam-1/2024-05-01/lost.jpg")
    env.store.upsert(lost.to_record())
    assert env.client.get(url.format(lost.event_id), headers=AUTH).status_code == 404
    # a record carrying a hostile key cannot read outside the evidence root
    hostile = make_event(3).with_snapshot("../alerts.sqlite")
    env.store.upsert(hostile.to_record())
    r = env.client.get(url.format(hostile.event_id), headers=AUTH)
    assert r.status_code == 404 and b"SQLite" not in r.content


def test_health_ready_metrics_need_no_auth(tmp_path: Path) -> None:
    def health() -> dict[str, Any]:
        return {
            "cam-1": {
                "state": "running",
                "fps": 9.8,
                "url": "rtsp://admin:hunter2@10.0.0.5/stream",
                "password": "hunter2",
            }
        }

    env = Env(tmp_path, health=health)
    with env.client as c:
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "version": "9.9.9"}
        r = c.get("/readyz")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ready" and body["store"] is True
        assert body["cameras"]["cam-1"]["state"] == "running"
        assert "hunter2" not in r.text and KEY not in r.text
        env.add(make_event(1))
        c.get("/api/v1/alerts", headers=AUTH)
        c.get("/api/v1/alerts")
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert 'argus_api_requests_total{method="GET",route="/api/v1/alerts",status="200"}' in text
        assert 'argus_api_requests_total{method="GET",route="/api/v1/alerts",status="401"}' in text
        assert "argus_alerts_stored_total" in text
        assert "argus_alerts_acknowledged_total" in text
    env.store.close()


def test_readyz_reports_store_failure_as_503(tmp_path: Path) -> None:
    env = Env(tmp_path, health=lambda: {"cam-1": {"state": "reconnecting"}})
    env.store.close()  # store unusable
    r = env.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready" and r.json()["store"] is False
    # and an API call hitting the broken store answers 503, not a stack trace
    r = env.client.get(f"/api/v1/alerts/{EID}", headers=AUTH)
    assert r.status_code == 503 and r.json() == {"detail": "alert store unavailable"}


def test_readyz_survives_broken_health_callback(tmp_path: Path) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("runner gone")

    env = Env(tmp_path, health=broken)
    r = env.client.get("/readyz")
    assert r.status_code == 503 and r.json()["error"] == "health callback failed"
    env.store.close()


def test_redact() -> None:
    assert redact({"API_KEY": "x", "nested": [{"token": 1, "u": "http://u:p@h/x"}]}) == {
        "API_KEY": "***",
        "nested": [{"token": "***", "u": "http://u:***@h/x"}],
    }


def test_openapi_lists_routes_and_security(env: Env) -> None:
    spec = env.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/alerts",
        "/api/v1/alerts/{event_id}",
        "/api/v1/alerts/{event_id}/ack",
        "/api/v1/alerts/{event_id}/snapshot",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"apiKey", "http"}
    assert paths["/api/v1/alerts"]["get"]["security"]
    assert "security" not in paths["/healthz"]["get"]
    assert spec["info"]["version"] == "9.9.9"
    assert env.client.get("/docs").status_code == 200


def test_operator_page(env: Env) -> None:
    r = env.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert '<script type="module" src="/static/app.js"></script>' in r.text
    assert "<script>" not in r.text and "<style>" not in r.text  # nothing inline
    js = env.client.get("/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    api_js = env.client.get("/static/api.js")
    assert "sessionStorage" in api_js.text and "innerHTML" not in js.text
    assert "/api/v1/alerts" in env.client.get("/static/queue.js").text
    css = env.client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for text in (r.text, js.text, css.text):
        assert "http://" not in text and "https://" not in text  # no external assets
        assert KEY not in text


@pytest.mark.parametrize(
    "path",
    [
        "/static/index.html",
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/app.js%00.css",
        "/docs/assets/redoc.standalone.js",
        "/docs/assets/..%2f..%2fcore.py",
    ],
)
def test_only_listed_static_files_are_served(env: Env, path: str) -> None:
    assert env.client.get(path).status_code == 404


# ------------------------------------------------------------- snapshot URLs (S3 evidence)


class UrlStore:
    """An evidence store that can presign (like the S3 store), scripted."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.url: str | None = "http://s3.test/argus-evidence/k.jpg?X-Amz-Signature=abc"
        self.error: Exception | None = None
        self.calls: list[tuple[str, int | None]] = []

    def put(self, key: str, jpeg: bytes) -> None:
        self.blobs[key] = jpeg

    def get(self, key: str) -> bytes:
        if self.error is not None:
            raise self.error
        if key not in self.blobs:
            raise EvidenceNotFoundError(key)
        return self.blobs[key]

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def delete(self, key: str) -> bool:
        return self.blobs.pop(key, None) is not None

    def url_for(self, key: str, expires_s: int | None = None) -> str | None:
        self.calls.append((key, expires_s))
        if self.error is not None:
            raise self.error
        if key not in self.blobs:
            raise EvidenceNotFoundError(key)
        return self.url


class UrlEnv(Env):
    def __init__(self, tmp_path: Path, expiry: int = 120) -> None:
        self.store = SqliteAlertStore(tmp_path / "alerts.sqlite")
        self.evidence = UrlStore()  # type: ignore[assignment]
        self.app = create_app(self.store, self.evidence, api_key=KEY, snapshot_url_expiry_s=expiry)
        self.client = TestClient(self.app, base_url="http://127.0.0.1")


@pytest.fixture
def url_env(tmp_path: Path) -> Iterator[UrlEnv]:
    e = UrlEnv(tmp_path)
    yield e
    e.client.close()
    e.store.close()


def test_snapshot_url_from_a_presigning_store(url_env: UrlEnv) -> None:
    ev = url_env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    r = url_env.client.get(f"/api/v1/alerts/{ev.event_id}/snapshot-url", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"url": url_env.evidence.url, "expires_in_s": 120}  # type: ignore[attr-defined]
    assert r.headers["Cache-Control"] == "no-store"
    assert url_env.evidence.calls == [(masked_key(ev.snapshot), 120)]  # type: ignore[attr-defined]
    # the bytes route serves the same store's get()
    r = url_env.client.get(f"/api/v1/alerts/{ev.event_id}/snapshot", headers=AUTH)
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"


def test_snapshot_url_needs_the_key(url_env: UrlEnv) -> None:
    ev = url_env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    for headers in WRONG:
        r = url_env.client.get(f"/api/v1/alerts/{ev.event_id}/snapshot-url", headers=headers)
        assert r.status_code == 401
        assert "s3.test" not in r.text
    assert url_env.evidence.calls == []  # type: ignore[attr-defined]


def test_snapshot_url_not_available_cases(url_env: UrlEnv, tmp_path: Path) -> None:
    url = "/api/v1/alerts/{}/snapshot-url"
    ev = url_env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    url_env.evidence.url = None  # type: ignore[attr-defined]  # still only in the spool
    r = url_env.client.get(url.format(ev.event_id), headers=AUTH)
    assert r.status_code == 404 and "/snapshot" in r.json()["detail"]
    no_shot = url_env.add(make_event(2))
    r = url_env.client.get(url.format(no_shot.event_id), headers=AUTH)
    assert r.status_code == 404 and r.json()["detail"] == "alert has no snapshot"
    assert url_env.client.get(url.format(uuid.uuid4()), headers=AUTH).status_code == 404
    lost = make_event(3).with_snapshot("cam-1/2024-05-01/lost.jpg")
    url_env.store.upsert(lost.to_record())
    r = url_env.client.get(url.format(lost.event_id), headers=AUTH)
    assert r.status_code == 404 and r.json()["detail"] == "snapshot not found"
    # a store that serves bytes only (the local one): clear 404
    local = Env(tmp_path / "local")
    ev = local.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    r = local.client.get(url.format(ev.event_id), headers=AUTH)
    assert r.status_code == 404 and "use /snapshot" in r.json()["detail"]
    local.store.close()


def test_unreachable_evidence_store_is_503(url_env: UrlEnv) -> None:
    ev = url_env.add(make_event(1), jpeg=b"\xff\xd8jpeg")
    url_env.evidence.error = ConnectionRefusedError("s3 down")  # type: ignore[attr-defined]
    for route in ("snapshot", "snapshot-url"):
        r = url_env.client.get(f"/api/v1/alerts/{ev.event_id}/{route}", headers=AUTH)
        assert r.status_code == 503 and r.json() == {"detail": "evidence store unavailable"}


def test_snapshot_url_expiry_is_validated(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    for bad in (0, 8 * 86400):
        with pytest.raises(ValueError, match="snapshot_url_expiry_s"):
            create_app(store, UrlStore(), api_key=KEY, snapshot_url_expiry_s=bad)
    store.close()


def test_openapi_lists_snapshot_url(env: Env) -> None:
    spec = env.client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/alerts/{event_id}/snapshot-url"]["get"]
    assert op["security"]
