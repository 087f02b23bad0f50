"""Schemathesis over the alerts API's own OpenAPI document, with the key.

Every operation gets generated requests (valid and invalid, bounded by ``MAX_EXAMPLES``
so the whole module costs well under 2 minutes on 2 cores); every answer is checked by
schemathesis' built-in checks: no server error, status code, content type, headers and
body as documented.  The app is the real one: SQLite store with alerts in it, evidence
on disk, the in-process control channel, and the rule checker of the demo's config.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from alerts.api import create_app
from alerts.control import InProcessControl
from alerts.evidence import LocalEvidenceStore, snapshot_key
from alerts.store import SqliteAlertStore
from argus.app import rules_validator
from argus.cli import demo_config
from tests.factories import make_event

pytestmark = pytest.mark.fuzz

KEY = "fuzz-key-0123456789abcdef"
MAX_EXAMPLES = 100
"""Generated requests per operation and phase (the API has 15 operations)."""


def _app(home: Path) -> Any:
    store = SqliteAlertStore(home / "alerts.sqlite")
    evidence = LocalEvidenceStore(home / "evidence")
    for n in range(1, 4):
        event = make_event(n, priority=30 * n)
        key = snapshot_key(event.camera_id, event.wall_time, event.event_id)
        evidence.put(key, b"\xff\xd8\xff\xe0jpeg")
        store.upsert(event.with_snapshot(key).to_record())
    cfg = demo_config(Path("/nonexistent/footage.avi"), home)
    return create_app(
        store,
        evidence,
        api_key=KEY,
        version="fuzz",
        health=lambda: {"plaza": {"state": "streaming", "frames_processed": 1}},
        control=InProcessControl(),
        validate_rules=rules_validator(cfg, ("person", "car")),
        initial_rules=[r.model_dump(mode="json", exclude_none=True) for r in cfg.rules],
        allowed_hosts=["testserver", "localhost"],  # the names schemathesis' client uses
    )


# Built at import: schemathesis parametrizes by the operations of a loaded schema (its
# fixture-based loader does not work with pytest 9).
_HOME = Path(tempfile.mkdtemp(prefix="argus-fuzz-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)  # also when deselected (-m unit)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_HOME))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_no_schema_violation(case: Any) -> None:
    excluded = []
    if (case.method, case.operation.path) == ("PUT", "/api/v1/rules"):
        # A rule set is also checked against the cameras, zones and model classes, which no
        # schema can say: a well-formed but wrong set is a documented 422 with its problems.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"X-API-Key": KEY}, excluded_checks=excluded)
