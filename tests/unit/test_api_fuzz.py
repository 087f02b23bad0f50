"""Schemathesis over the alerts API's own OpenAPI document, as a signed-in admin.

Every operation gets generated requests (valid and invalid, bounded by ``MAX_EXAMPLES``
so the whole module costs about a minute on 2 cores), sent with the session cookie of an
admin who signed in through ``POST /api/v1/auth/login`` and the session's CSRF token in
``X-CSRF-Token``, as the web app sends them.  Every answer is checked by schemathesis'
built-in checks: no server error, status code, content type, headers and body as
documented.  The last test checks that the calls reached the handlers: most answers are
neither 401 nor 403.

The app is the real one: SQLite store with alerts, users and the lifecycle, evidence on
disk, the in-process control channel, and the rule checker of the demo's config.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
)

from alerts.api import AccessSettings, create_app
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore, snapshot_key
from alerts.store import SqliteAlertStore
from argus.app import rules_validator
from argus.cli import demo_config
from argus.fleet.admin import FleetAdmin
from argus.fleet.view import FleetView
from tests.factories import T0, make_event

pytestmark = pytest.mark.fuzz

KEY = "fuzz-key-0123456789abcdef"
ADMIN, PASSWORD = "fuzz-admin", "a long fuzzing password"
MAX_EXAMPLES = 60
"""Generated requests per operation and phase (the API has about 35 operations)."""
STREAM_S = 0.2
"""``GET /api/v1/changes`` is a stream: each generated call asks it to end after this long."""
SKIPPED = {("POST", "/api/v1/auth/logout")}
"""Operations not fuzzed: signing out would end the session the other calls use (the
access test covers it)."""
SEMANTIC = {
    ("PUT", "/api/v1/rules"),
    ("POST", "/api/v1/auth/password"),
    ("PUT", "/api/v1/fleet/cameras/{camera_id}"),
    ("GET", "/api/v1/search"),
}
"""Operations whose well-formed requests may still be refused for what no schema can say:
a rule set is checked against the cameras, zones and model classes; a password change
against the current password; a camera definition as a config file is; a search's time
range must be given, in order and at most 31 days long, and its class one the detector
knows (documented 422s)."""
STATUSES: Counter[int] = Counter()


def _app(home: Path) -> FastAPI:
    store = SqliteAlertStore(home / "alerts.sqlite")
    evidence = LocalEvidenceStore(home / "evidence")
    for n in range(1, 4):
        event = make_event(n, camera="plaza", priority=30 * n)
        key = snapshot_key(event.camera_id, event.wall_time, event.event_id)
        evidence.put(key, b"\xff\xd8\xff\xe0jpeg")
        store.upsert(event.with_snapshot(key).to_record())
    cfg = demo_config(Path("/nonexistent/footage.avi"), home)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    app = create_app(
        store,
        evidence,
        api_key=KEY,
        version="fuzz",
        health=lambda: {"plaza": {"state": "streaming", "frames_processed": 1}},
        control=InProcessControl(),
        validate_rules=rules_validator(cfg, ("person", "car")),
        initial_rules=[r.model_dump(mode="json", exclude_none=True) for r in cfg.rules],
        allowed_hosts=["testserver", "localhost"],  # the names schemathesis' client uses
        access=AccessSettings(camera_groups={"plaza": ["default"]}, password_hasher=hasher),
        fleet=FleetAdmin(FleetView(8), InProcessControl()),
    )
    store.add_user(
        ADMIN, role="admin", groups=["default"], password_hash=hasher.hash(PASSWORD), now=T0
    )
    return app


def _sign_in(app: FastAPI) -> tuple[str, str]:
    """The session cookie and CSRF token of the admin, from the sign-in route."""
    with TestClient(app, base_url="http://testserver") as client:
        r = client.post("/api/v1/auth/login", json={"username": ADMIN, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(client.cookies["argus_session"]), str(r.json()["csrf_token"])


# Built at import: schemathesis parametrizes by the operations of a loaded schema (its
# fixture-based loader does not work with pytest 9).
_HOME = Path(tempfile.mkdtemp(prefix="argus-fuzz-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)  # also when deselected (-m unit)
_APP = _app(_HOME)
SESSION, CSRF = _sign_in(_APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_no_schema_violation(case: Any) -> None:
    if (case.method, case.operation.path) in SKIPPED:
        return
    # The session is given to every call here, outside schemathesis' own auth: its check
    # that a call without credentials is refused does not apply (the access test walks
    # every route without them).
    excluded = [ignored_auth]
    if (case.method, case.operation.path) in SEMANTIC:
        excluded.append(positive_data_acceptance)
    # the generated request may carry credentials of its own (the documented schemes);
    # the session's are what the web app sends
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
    headers.pop("Authorization", None)
    case.headers = headers
    if case.operation.path in ("/api/v1/changes", "/api/v1/live"):  # streams end when asked
        query = dict(case.query or {})
        wait = query.get("for_s")
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait > STREAM_S:
            query["for_s"] = STREAM_S
        case.query = query
    case.cookies = {"argus_session": SESSION}
    response = case.call(headers={"X-CSRF-Token": CSRF})
    if response.status_code == 413:  # a body over the size limit is refused before parsing
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded, headers={"X-CSRF-Token": CSRF})
    STATUSES[response.status_code] += 1


def test_the_calls_reached_the_handlers() -> None:
    """Signed in with a CSRF token, most calls get past authentication and authorization."""
    total = sum(STATUSES.values())
    if total == 0:
        pytest.skip("run with the fuzz test (-m fuzz)")
    denied = STATUSES[401] + STATUSES[403]
    print(
        f"fuzz: {total} calls, {denied} denied (401/403), statuses {dict(sorted(STATUSES.items()))}"
    )
    assert denied / total < 0.5, dict(STATUSES)
    assert not [s for s in STATUSES if s >= 500], dict(STATUSES)
