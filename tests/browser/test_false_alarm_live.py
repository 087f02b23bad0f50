"""A false alarm marked in the web app silences the next identical event (issue 17).

The real pipeline (``argus run --serve``: the real detector on real footage, the in-process
control channel) plays the first 3.5 s of the plaza footage in a loop at real speed, so the
same people enter the same zone at the same places every loop: each loop raises the same
alerts again.  An operator signs in through the page, opens the first intrusion alert the
queue is pushed, and marks it a false alarm there.  From then on no new alert of that rule
comes from its region (the box grown by half its size), while the other person's alerts,
elsewhere in the zone, keep coming: the pipeline runs, only that event is silenced.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from playwright.sync_api import Page, expect

from alerts.store import SqliteAlertStore
from selector.suppression import region_around
from tests.browser.harness import CHEAP_HASHER, OLGA, shot, sign_in
from tests.e2e.conftest import (
    API_KEY,
    VTEST,
    ZONE,
    make_home,
    require_prerequisites,
    serve_argus,  # noqa: F401  (the fixture, used by name)
    write_config,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LOOP_FRAMES = 35
"""The first 3.5 s of the footage (10 fps): two people enter the zone at frames 6 and 8."""
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def _clip(path: Path) -> Path:
    """The first ``LOOP_FRAMES`` frames of the plaza footage as an MJPEG AVI."""
    cap = cv2.VideoCapture(str(VTEST))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    ok, frame = cap.read()
    assert ok
    h, w = frame.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    for _ in range(LOOP_FRAMES):
        out.write(frame)
        ok, frame = cap.read()
        if not ok:
            break
    out.release()
    cap.release()
    return path


def _alerts(url: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/api/v1/alerts", params={"limit": 500}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _centre(a: dict[str, Any]) -> tuple[float, float]:
    x1, y1, x2, y2 = a["bbox"]
    return (x1 + x2) / 2, (y1 + y2) / 2


def _inside(point: tuple[float, float], region: tuple[float, float, float, float]) -> bool:
    return region[0] <= point[0] <= region[2] and region[1] <= point[1] <= region[3]


def test_a_false_alarm_marked_in_the_page_silences_the_next_identical_event(
    page: Page,
    tmp_path: Path,
    serve_argus: Any,  # noqa: F811
) -> None:
    require_prerequisites()
    home = make_home(tmp_path)
    db = tmp_path / "alerts.db"
    store = SqliteAlertStore(db)  # olga exists before the server starts
    store.add_user(
        OLGA.name, role="operator", groups=["default"],
        password_hash=CHEAP_HASHER.hash(OLGA.password), now=time.time(),
    )  # fmt: skip
    store.close()
    cfg = {
        "cameras": [
            {
                "id": "plaza",
                "source": str(_clip(tmp_path / "loop.avi")),
                "realtime": True,
                "loop": True,
                "zones": [{"name": "crossing", "polygon": ZONE}],
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
            }
        ],
        "storage": {"sqlite": str(db), "evidence_dir": str(tmp_path / "evidence")},
    }
    log = tmp_path / "argus.log"
    served = serve_argus(["run", str(write_config(tmp_path, cfg)), "--serve"], home, log)
    page.set_viewport_size({"width": 1920, "height": 1080})
    sign_in(page, served.url, OLGA)
    first = page.locator("#queue-rows tr").first
    expect(first).to_be_visible(timeout=90_000)  # pushed once the worker raises it
    event_id = first.get_attribute("data-id")
    assert event_id
    first.click()
    expect(page.get_by_role("heading", name="Intrusion — priority", exact=False)).to_be_visible()
    settings = page.locator("#rule-settings")  # the rule's settings, in words
    expect(settings).to_contain_text("Dwell before raising, seconds")
    expect(settings).to_contain_text("Intrusion (intrusion:crossing)")
    page.get_by_role("button", name="False alarm").click()
    page.get_by_role("button", name="Mark false alarm").click()
    expect(page.locator("#detail-state")).to_have_text("closed: false alarm")
    t_marked = time.time() + 1.0  # records already in flight may still land
    shot(page, "false-alarm-marked-live")

    marked = next(a for a in _alerts(served.url) if a["event_id"] == event_id)
    region = region_around(tuple(marked["bbox"]))  # what the page asked to suppress

    def received(a: dict[str, Any]) -> float:
        return datetime.fromisoformat(a["received_at"]).timestamp()

    # the loop raises its alerts again every 3.5 s: wait for the other person's, twice
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        late = [a for a in _alerts(served.url) if received(a) > t_marked and a["bbox"]]
        elsewhere = [a for a in late if not _inside(_centre(a), region)]
        if len(elsewhere) >= 2:
            break
        time.sleep(1.0)
    else:
        raise AssertionError(
            f"no new alerts elsewhere after the false alarm:\n{log.read_text()[-3000:]}"
        )
    silenced = [a for a in late if _inside(_centre(a), region)]
    assert not silenced, f"the false alarm's region still raised {silenced}"
    ready = httpx.get(served.url + "/readyz", headers=HEADERS, timeout=10).json()
    assert ready["components"]["live_config"]["suppressions"] == 1
    # the page shows the new ones (pushed) and not the silenced
    page.get_by_role("link", name="← Back to the queue").click()
    expect(page.locator(f'#queue-rows tr[data-id="{elsewhere[-1]["event_id"]}"]')).to_be_visible()
    shot(page, "queue-after-false-alarm-live")
