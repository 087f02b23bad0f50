"""Camera setup in a real browser (issue 20): an admin draws a zone on a fleet camera's
current picture, adds an intrusion rule on it through the form built from the rule's JSON
Schema, saves, and the fleet has it; the worker applies it without a restart.

Real parts only, for the whole module: the local broker (Tansu, ``tests/infra.py``), an
``argus alerts serve`` process with ``fleet:`` and ``bus.kafka`` (as in
``tests/e2e/test_fleet_e2e.py``), and one ``argus worker`` running one camera from the
plaza footage played live (``benchmarks/fleet_harness.py``).  The admin is made with
``argus users add --password-stdin`` and signs in through the page's form.

The tests:

* the setup view shows the camera's picture (from ``/cameras/{id}/picture``, asked of
  the worker through the demand); a zone drawn with four clicks and closed on its first
  vertex, renamed, gets an intrusion rule from the generated form; saving puts both on the
  fleet (``GET /api/v1/fleet/cameras``) in frame pixels where they were clicked, and the
  worker restarts that camera (its starts counter) while the process stays the same;
* a self-intersecting zone is refused in the page before anything is sent, and a rule the
  page cannot judge (an id of the wrong form) gets the service's own 422 problems; the
  fleet's definition is unchanged by either.

* floor points (the camera's ground calibration): too few are refused in the page, four
  in a row by the service with its reason, four good ones saved with their metres.

Screenshots (``harness.shot``): ``setup-picture``, ``setup-saved``, ``setup-crossed``,
``setup-server-refused``, ``setup-floor-refused``, ``setup-floor-saved``.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from benchmarks.fleet_harness import Fleet, Worker, make_videos, wait_for
from deploy.localstack import LocalStack, free_port
from tests.browser.harness import Person, shot, sign_in
from tests.e2e.conftest import API_KEY, ARGUS, env_for, make_home, require_prerequisites
from tests.e2e.test_fleet_e2e import fleet_service
from tests.infra import make_localstack, require_binaries

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

CAMERA = "gate-1"
ADMIN = Person("alma", "admin", "alma-password-2024")
AUTH = {"X-API-Key": API_KEY}
FRAME = (768, 576)
"""The plaza footage's frame size: the zones' coordinates."""
STARTS = re.compile(r"^argus_fleet_camera_starts_total(?:\{[^}]*\})?\s+([0-9.e+]+)", re.M)


@dataclass
class Site:
    stack: LocalStack
    fleet: Fleet
    worker: Worker
    url: str

    def definition(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/api/v1/fleet/cameras", headers=AUTH, timeout=5)
        assert r.status_code == 200, r.text
        return next(c for c in r.json()["cameras"] if c["camera_id"] == CAMERA)

    def camera_starts(self) -> float:
        """The worker's ``argus_fleet_camera_starts_total`` (all cameras)."""
        text = httpx.get(self.worker.url + "/metrics", timeout=5).text
        return sum(float(v) for v in STARTS.findall(text))


def _add_admin(home: Path) -> None:
    done = subprocess.run(
        [*ARGUS, "users", "add", ADMIN.name, "--role", "admin", "--password-stdin"],
        input=ADMIN.password + "\n",
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_prerequisites()
    require_binaries()
    tmp = tmp_path_factory.mktemp("setup")
    stack = make_localstack(tmp / "stack")
    stack.up()
    fleet = Fleet(stack, tmp / "fleet")
    service: subprocess.Popen[bytes] | None = None
    try:
        busy, _ = make_videos(tmp / "videos", seconds=8)
        (tmp / "service").mkdir()
        home = make_home(tmp / "service")
        _add_admin(home)
        cfg = tmp / "service.yaml"
        fleet_cfg = {"topic": f"{fleet.topic_prefix}.fleet", "partitions": 32}
        cfg.write_text(yaml.safe_dump({"fleet": fleet_cfg, "bus": {"kafka": fleet.kafka}}))
        port = free_port()
        service = fleet_service(cfg, home, port, tmp / "service.log")
        camera = {"id": CAMERA, "source": str(busy), "realtime": True, "loop": True}
        published = fleet.publish({"cameras": [camera], "rules": []})
        assert published.returncode == 0, published.stderr[-2000:]
        worker = fleet.start("w1", 2)
        s = Site(stack, fleet, worker, f"http://127.0.0.1:{port}")

        def streaming() -> bool:
            try:
                r = httpx.get(s.url + "/api/v1/cameras/status", headers=AUTH, timeout=2)
            except httpx.HTTPError:
                return False
            cams = {c["camera_id"]: c for c in r.json()["cameras"]} if r.status_code == 200 else {}
            return cams.get(CAMERA, {}).get("state") == "streaming"

        wait_for(f"{CAMERA} streaming on the board", streaming, timeout_s=60)
        yield s
    finally:
        fleet.stop_all()
        if service is not None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
        stack.stop()


def _open_setup(page: Page, site: Site) -> None:
    from playwright.sync_api import expect

    sign_in(page, site.url, ADMIN)
    page.get_by_role("link", name="Camera setup").click()
    page.locator("#view-setup").get_by_label("Camera", exact=True).select_option(CAMERA)
    expect(page.get_by_alt_text(f"Current picture of {CAMERA}")).to_be_visible(timeout=20_000)


def _click_frame(page: Page, points: list[tuple[int, int]]) -> None:
    """Click the overlay at these frame pixels."""
    overlay = page.locator("#setup-overlay")
    box = overlay.bounding_box()
    assert box is not None
    for x, y in points:
        at = {"x": x * box["width"] / FRAME[0], "y": y * box["height"] / FRAME[1]}
        overlay.click(position=at)


def test_an_admin_draws_a_zone_adds_a_rule_and_the_fleet_has_them(page: Page, site: Site) -> None:
    from playwright.sync_api import expect

    _open_setup(page, site)
    expect(page.get_by_text("Frame 768×576 px")).to_be_visible()
    shot(page, "setup-picture")
    starts = site.camera_starts()
    pid = site.worker.proc.pid if site.worker.proc else None

    page.get_by_role("button", name="Draw zone").click()
    corners = [(330, 180), (560, 180), (640, 330), (380, 330)]
    _click_frame(page, [*corners, corners[0]])  # the first vertex again closes it
    name = page.get_by_label("Zone 1 name")
    expect(name).to_have_value("zone-1")
    name.fill("crossing")
    name.press("Tab")
    # drag the third vertex 20 px left and 20 px down (frame pixels)
    vertex = page.locator('#setup-overlay circle[data-kind="zone"][data-vertex="2"]')
    box = page.locator("#setup-overlay").bounding_box()
    assert box is not None
    scale = box["width"] / FRAME[0]
    page.mouse.move(box["x"] + 640 * scale, box["y"] + 330 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + 620 * scale, box["y"] + 350 * scale, steps=5)
    page.mouse.up()
    expect(vertex).to_have_attribute("cx", re.compile(r"^6[12]\d$"))
    corners[2] = (620, 350)
    # a line: two clicks; its arrow shows the "+" side
    page.get_by_role("button", name="Draw line").click()
    _click_frame(page, [(100, 450), (300, 450)])
    expect(page.get_by_label("Line 1 name")).to_have_value("line-1")
    expect(page.locator("#setup-overlay .setup-plus")).to_have_count(1)

    page.get_by_label("New rule").select_option("intrusion")
    page.get_by_role("button", name="Add rule").click()
    form = page.locator("#setup-rule-form")
    form.get_by_label("Zone (required)").select_option("crossing")
    form.get_by_label("Classes").fill("person")
    form.get_by_label("Min Dwell S").fill("1.5")
    shot(page, "setup-rule-form")
    form.get_by_role("button", name="Add to camera").click()
    expect(page.locator("#setup-rules")).to_contain_text("Intrusion in zone crossing (person)")

    page.get_by_role("button", name="Save camera").click()
    expect(page.locator("#setup-result")).to_contain_text("Saved — the worker applies it")
    shot(page, "setup-saved")

    d = site.definition()
    zones = {z["name"]: z["polygon"] for z in d["camera"]["zones"]}
    assert set(zones) == {"crossing"}
    assert [(ln["name"], ln["points"]) for ln in d["camera"]["lines"]] == [
        ("line-1", [[100.0, 450.0], [300.0, 450.0]])
    ]
    for (x, y), (cx, cy) in zip(zones["crossing"], corners, strict=True):
        assert abs(x - cx) <= 3 and abs(y - cy) <= 3, zones  # frame pixels, where clicked
    (rule,) = d["rules"]
    assert rule["type"] == "intrusion" and rule["zone"] == "crossing"
    assert rule["classes"] == ["person"] and rule["min_dwell_s"] == 1.5
    # a changed zone restarts that camera on its worker: applied, the process the same
    wait_for("the camera restarted", lambda: site.camera_starts() > starts, timeout_s=30)
    assert site.worker.alive and site.worker.proc and site.worker.proc.pid == pid
    # the next picture is the worker's, with the new zone drawn in
    page.get_by_role("button", name="Reload picture").click()
    expect(page.get_by_alt_text(f"Current picture of {CAMERA}")).to_be_visible(timeout=20_000)
    expect(page.locator("#setup-rule-editor")).to_be_empty()
    shot(page, "setup-applied")


def test_a_crossed_zone_and_a_bad_rule_are_refused_with_reasons(page: Page, site: Site) -> None:
    from playwright.sync_api import expect

    before = site.definition()
    _open_setup(page, site)
    page.get_by_role("button", name="Draw zone").click()
    _click_frame(page, [(100, 100), (300, 300), (300, 100), (100, 300)])  # a bow tie
    page.keyboard.press("Enter")
    expect(page.get_by_label(re.compile(r"^Zone \d+ name$"))).to_have_count(
        len(before["camera"]["zones"]) + 1
    )
    page.get_by_role("button", name="Save camera").click()
    result = page.locator("#setup-result")
    expect(result).to_contain_text("Not saved: fix these first.")
    expect(result).to_contain_text("crosses itself")
    shot(page, "setup-crossed")
    assert site.definition()["updated_at"] == before["updated_at"]  # nothing was sent

    # without the crossed zone, a rule whose id only the service judges
    page.get_by_role("button", name=re.compile(r"^Delete zone zone-")).click()
    page.get_by_label("New rule").select_option("loitering")
    page.get_by_role("button", name="Add rule").click()
    form = page.locator("#setup-rule-form")
    form.get_by_label("Zone (required)").select_option("crossing")
    form.get_by_label("Id").fill("not an id!")
    form.get_by_role("button", name="Add to camera").click()
    # and an evidence stream, which a camera played from a file cannot have
    page.get_by_label(re.compile("the camera's main stream")).fill("rtsp://10.0.0.5/main")
    page.get_by_role("button", name="Save camera").click()
    expect(result).to_contain_text("The service refused the definition:")
    expect(result).to_contain_text("rules.1.id")
    expect(result).to_contain_text("evidence_source needs a network camera as source")
    shot(page, "setup-server-refused")
    assert site.definition()["updated_at"] == before["updated_at"]


def test_an_admin_marks_floor_points_with_their_metres(page: Page, site: Site) -> None:
    """The camera's ground calibration from the page: too few points are refused in the
    page, four in a row by the service (its reason shown), four good ones are saved in
    frame pixels with their metres."""
    from playwright.sync_api import expect

    _open_setup(page, site)
    result = page.locator("#setup-result")

    def mark(points: list[tuple[int, int]], metres: list[tuple[float, float]]) -> None:
        page.get_by_role("button", name="Mark floor points").click()
        _click_frame(page, points)
        page.keyboard.press("Enter")
        for i, (x, y) in enumerate(metres, 1):
            page.get_by_label(f"P{i} x (m)").fill(str(x))
            page.get_by_label(f"P{i} y (m)").fill(str(y))
            page.get_by_label(f"P{i} y (m)").press("Tab")

    before = site.definition()
    mark([(100, 450), (200, 450), (300, 450)], [(0, 0), (2, 0), (4, 0)])
    page.get_by_role("button", name="Save camera").click()
    expect(result).to_contain_text("four or more are needed (3 marked)")
    assert site.definition()["updated_at"] == before["updated_at"]  # nothing was sent

    page.get_by_role("button", name="Mark floor points").click()
    _click_frame(page, [(400, 450)])
    page.keyboard.press("Enter")
    page.get_by_label("P4 x (m)").fill("6")
    page.get_by_label("P4 y (m)").fill("0.5")
    page.get_by_role("button", name="Save camera").click()
    expect(result).to_contain_text("The service refused the definition:")
    expect(result).to_contain_text("three of the image points are on one line")
    shot(page, "setup-floor-refused")
    assert site.definition()["updated_at"] == before["updated_at"]

    for _ in range(4):
        page.get_by_role("button", name="Delete floor point P1").click()
    expect(page.locator("#setup-floor")).to_contain_text("estimated from the people seen")
    good = [(200, 400), (500, 400), (560, 520), (150, 520)]
    metres = [(0.0, 0.0), (5.0, 0.0), (5.0, 3.0), (0.0, 3.0)]
    mark(good, metres)
    expect(page.locator("#setup-overlay .setup-floor")).to_have_count(4)
    page.get_by_role("button", name="Save camera").click()
    expect(result).to_contain_text("Saved — the worker applies it")
    shot(page, "setup-floor-saved")
    points = site.definition()["camera"]["ground"]["points"]
    assert [p["ground"] for p in points] == [list(m) for m in metres]
    for p, (x, y) in zip(points, good, strict=True):
        assert abs(p["image"][0] - x) <= 3 and abs(p["image"][1] - y) <= 3, points
