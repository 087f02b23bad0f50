"""Operators steer a running worker: false alarm -> suppression, rule set changed at run time.

The real CLI (``argus run --serve``) on vtest looped at real speed (a live camera), the
real detector, the in-process control channel.  Nothing is restarted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    API_KEY,
    VTEST,
    ZONE,
    make_home,
    require_prerequisites,
    write_config,
)

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
GATE = [[300, 250], [700, 250]]


def api(served: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, served.url + path, headers=HEADERS, timeout=10.0, **kw)


def alerts(served: Any, **params: Any) -> list[dict[str, Any]]:
    r = api(served, "GET", "/api/v1/alerts", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def wait_until(what: str, check: Callable[[], Any], timeout_s: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def received_after(items: list[dict[str, Any]], t: float) -> list[dict[str, Any]]:
    from datetime import datetime

    return [a for a in items if datetime.fromisoformat(a["received_at"]).timestamp() > t]


def test_false_alarm_and_rule_changes_reach_the_running_worker(
    tmp_path: Path, serve_argus: Any
) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    cfg = {
        "cameras": [
            {
                "id": "plaza",
                "source": str(VTEST),
                "realtime": True,
                "loop": True,
                "zones": [{"name": "crossing", "polygon": ZONE}],
                "lines": [{"name": "gate", "points": GATE}],
            }
        ],
        "rules": [
            {
                "type": "intrusion",
                "camera": "plaza",
                "zone": "crossing",
                "min_dwell_s": 0.5,
                "alert_per": "object",
                "cooldown_s": 0,
            },
            {"type": "line_crossing", "camera": "plaza", "line": "gate"},
        ],
        "storage": {"sqlite": str(tmp_path / "alerts.db"), "evidence_dir": str(tmp_path / "ev")},
    }
    log = tmp_path / "argus.log"
    served = serve_argus(["run", str(write_config(tmp_path, cfg)), "--serve"], home, log)

    # 1. Alerts of both rules flow.
    wait_until(
        "alerts of both rules",
        lambda: {"intrusion", "line_crossing"} <= {a["type"] for a in alerts(served)},
        120,
        log,
    )
    r = api(served, "GET", "/api/v1/rules")
    assert r.status_code == 200 and r.json()["revision"] == 0, r.text
    assert [x["type"] for x in r.json()["rules"]] == ["intrusion", "line_crossing"]

    # 2. An operator marks an intrusion alert false, for the whole rule on this camera.
    first = next(a for a in alerts(served, type="intrusion"))
    r = api(
        served,
        "POST",
        f"/api/v1/alerts/{first['event_id']}/false-positive",
        json={"scope": "rule", "expires_in_s": 600, "note": "staff walkway"},
    )
    assert r.status_code == 201, r.text
    sup = r.json()
    assert sup["camera_id"] == "plaza" and sup["rule_id"] == "intrusion:crossing"
    marked = api(served, "GET", f"/api/v1/alerts/{first['event_id']}").json()
    assert marked["status"] == "false_positive"
    t_sup = time.time() + 1.0  # records already in flight may still land
    # line crossings keep coming while intrusions stop
    wait_until(
        "new line crossings after the suppression",
        lambda: len(received_after(alerts(served, type="line_crossing"), t_sup + 10)) >= 2,
        120,
        log,
    )
    late = [
        a for a in received_after(alerts(served, type="intrusion"), t_sup) if a["end_s"] is None
    ]
    new_ids = {a["event_id"] for a in late} - {first["event_id"]}
    assert not new_ids, f"suppressed rule still raised {late}"
    ready = api(served, "GET", "/readyz").json()
    assert ready["components"]["live_config"]["suppressions"] == 1

    # 3. The operators drop the line-crossing rule at run time.
    rules = [x for x in api(served, "GET", "/api/v1/rules").json()["rules"]]
    bad = api(
        served, "PUT", "/api/v1/rules", json={"rules": [rules[0] | {"zone": "moon"}], "revision": 0}
    )
    assert bad.status_code == 422 and "moon" in bad.text
    r = api(served, "PUT", "/api/v1/rules", json={"rules": [rules[0]], "revision": 0})
    assert r.status_code == 200 and r.json()["revision"] == 1, r.text
    wait_until(
        "revision 1 in force",
        lambda: (
            api(served, "GET", "/readyz").json()["components"]["live_config"]["rules_revision"] == 1
        ),
        30,
        log,
    )
    t_rules = time.time() + 1.0

    # 4. The suppression is lifted: intrusions come back; crossings do not.
    assert api(served, "DELETE", f"/api/v1/suppressions/{sup['suppression_id']}").status_code == 204
    t_lift = time.time() + 1.0
    wait_until(
        "intrusions after the suppression was lifted",
        lambda: received_after(alerts(served, type="intrusion"), t_lift),
        120,
        log,
    )
    crossings = [
        a
        for a in received_after(alerts(served, type="line_crossing"), t_rules)
        if a["end_s"] is None
    ]
    assert not crossings, f"removed rule still raised {crossings}"
