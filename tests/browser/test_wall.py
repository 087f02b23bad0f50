"""The selective wall and the camera health board in a real browser (issue 18).

One real pipeline (``argus run CONFIG --serve``: the real detector, the in-process live
board) runs three cameras for the whole module:

* ``busy`` — the plaza footage looped at real speed, with an intrusion rule on its
  crossing: people walk into the zone all the time, so alerts open within seconds;
* ``still`` — a quiet twin of it (``argus.demo``: the footage's empty background with
  fresh sensor noise every frame, a few seconds looped), with an intrusion rule and
  camera health: nothing ever fires on it and its picture is never frozen;
* ``gone`` — a live RTSP camera (GStreamer's RTSP server playing the footage) with
  camera health only, whose ``signal_lost`` fires after ``SIGNAL_LOST_S``; a test kills
  its server.

An operator of the cameras' group watches the wall in a page that stays open all module
long (``watcher``): a MutationObserver records every tile ever put on it.  The tests:

* ``busy`` gains a tile with its reason and a live picture; the tile opens its alert,
  which is closed in the page's dialog; with its rule removed at run time and its alerts
  closed, the tile goes and the camera is counted quiet again;
* ``gone``'s server dies: the board says so in words with no thumbnail, and the wall
  shows a tile for its ``signal_lost`` alert that states it, never a broken picture;
* ``still`` never gets a tile, and the board shows it streaming with a thumbnail.

Every page must log no error (but the 401 of ``/auth/me`` before signing in) and ask no
other origin for anything.  Screenshots: ``wall-*.png``, ``board-*.png``
(``harness.shot``: ``/tmp/argus-shots`` and ``$ARGUS_SCREENSHOTS``).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, expect

from alerts.store import SqliteAlertStore
from argus import demo
from deploy.localstack import free_ports
from tests.browser.harness import ADA, CHEAP_HASHER, OLGA, Person, shot, sign_in
from tests.e2e.conftest import (
    ARGUS,
    VTEST,
    ZONE,
    env_for,
    make_home,
    require_prerequisites,
    write_config,
)
from tests.integration.test_ingest_live import GST_PACKAGES, RtspServer, _gst_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SIGNAL_LOST_S = 2.0
"""``gone``'s camera health raises ``signal_lost`` after this long without a frame."""
STILL_S = 6.0
"""Length of the quiet camera's loop, seconds."""
TILE_TIMEOUT_MS = 30_000
"""A camera with alerts gets its tile within this long of the wall being opened."""
CHANGE_TIMEOUT_MS = 10_000
"""A change of a camera (alerts closed, state) shows on a view within this long."""
NOT_STREAMING = ("reconnecting", "lost")
STATE_WORDS = {"reconnecting": "Reconnecting", "lost": "Signal lost"}
"""What the board and the tiles say of those states."""
NOT_STREAMING_RE = re.compile("^(" + "|".join(NOT_STREAMING) + ")$")
ALLOWED_ERROR = re.compile(r"/api/v1/auth/me$")
"""The one error a page may log: ``/auth/me`` answering 401 before signing in."""

INTRUSION_BUSY = {
    "type": "intrusion",
    "camera": "busy",
    "zone": "crossing",
    "classes": ["person"],
    "min_dwell_s": 0.5,
    "severity": 60,
    "alert_per": "object",
    "cooldown_s": 0,
}


# ------------------------------------------------------------------------------ the room


@dataclass
class Room:
    """The running pipeline, its RTSP camera and its people."""

    url: str
    proc: subprocess.Popen[str]
    log: Path
    camera: RtspServer

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    @contextmanager
    def client(self, who: Person) -> Iterator[httpx.Client]:
        """An API client signed in as ``who`` (session cookie and CSRF token)."""
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            login = {"username": who.name, "password": who.password}
            r = client.post("/api/v1/auth/login", json=login)
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield client


def _still_video(tmp: Path) -> Path:
    """The quiet camera's loop: the footage's empty background (the median of frames
    across it) with fresh sensor noise and a slow light drift on every frame, encoded as
    the demo's quiet twins are (x264 'grain': the noise survives between keyframes, so
    the picture is never 'frozen')."""
    _, background = demo.read_footage(VTEST)
    frames = demo.twin_frames(background, seconds=STILL_S, seed=7)
    video = tmp / "still.mp4"
    demo.encode(frames, video, "test-wall-still", tune=demo.TWIN_TUNE)
    return video


def _config(tmp: Path, still: Path, rtsp_url: str) -> dict[str, Any]:
    lawn = [[float(x), float(y)] for x, y in demo.LAWN]
    return {
        "cameras": [
            {
                "id": "busy",
                "source": str(VTEST),
                "realtime": True,
                "loop": True,
                "zones": [{"name": "crossing", "polygon": ZONE}],
            },
            {
                "id": "still",
                "source": str(still),
                "realtime": True,
                "loop": True,
                "zones": [{"name": "lawn", "polygon": lawn}],
            },
            {
                "id": "gone",
                "source": rtsp_url,
                "reconnect": {"initial_s": 0.5, "max_s": 2.0},
            },
        ],
        "rules": [
            INTRUSION_BUSY,
            {
                "type": "intrusion",
                "camera": "still",
                "zone": "lawn",
                "classes": ["person"],
                "min_dwell_s": 2.0,
                "severity": 70,
            },
            {"type": "camera_health", "camera": "still"},
            {"type": "camera_health", "camera": "gone", "signal_lost_s": SIGNAL_LOST_S},
        ],
        "storage": {"sqlite": str(tmp / "alerts.db"), "evidence_dir": str(tmp / "evidence")},
        "evidence": {"clips": {"enabled": False}},  # seconds of CPU each: not looked at here
    }


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """``argus run --serve`` with ``busy``, ``still`` and ``gone``, an admin and an
    operator in its store; stopped (and the RTSP server killed) at the end."""
    require_prerequisites()
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(f"{reason}; apt-get install {GST_PACKAGES} (make rtsp-deps)")
    tmp = tmp_path_factory.mktemp("wall")
    home = make_home(tmp)
    rtsp_port, port = free_ports(2)
    camera = RtspServer(rtsp_port, "/gone")
    camera.start()
    proc: subprocess.Popen[str] | None = None
    try:
        still = _still_video(tmp)
        cfg = write_config(tmp, _config(tmp, still, f"rtsp://127.0.0.1:{rtsp_port}/gone"))
        store = SqliteAlertStore(tmp / "alerts.db")  # the people exist before it starts
        try:
            for who in (ADA, OLGA):
                store.add_user(
                    who.name, role=who.role, groups=list(who.groups),
                    password_hash=CHEAP_HASHER.hash(who.password), now=time.time(),
                )  # fmt: skip
        finally:
            store.close()
        log = tmp / "argus.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*ARGUS, "run", str(cfg), "--serve", "--port", str(port)],
                env=env_for(home),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        room = Room(f"http://127.0.0.1:{port}", proc, log, camera)
        _wait(lambda: _healthy(room), 120.0, "the API to answer", room)
        yield room
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: the runner stops as on Ctrl-C
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        camera.kill()


def _healthy(room: Room) -> bool:
    if room.proc.poll() is not None:
        raise AssertionError(f"argus exited ({room.proc.returncode}):\n{room.log_tail()}")
    try:
        return httpx.get(room.url + "/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(cond: Callable[[], bool], timeout_s: float, what: str, room: Room) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}:\n{room.log_tail()}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------ the pages


@dataclass
class PageLog:
    """What a page logged as errors and which other origins it asked."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    signed_in: bool = False
    """Set once the page shows who signed in: from then on a 401 is an error too."""

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        where = str(msg.location.get("url", ""))
        if not self.signed_in and ALLOWED_ERROR.search(where) and "401" in msg.text:
            return
        self.errors.append(f"{msg.text} ({where})")

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("blob", "data"):  # the live pictures: made by the page itself
            return
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)

    def check(self) -> None:
        assert not self.errors, f"the page logged errors: {self.errors}"
        assert not self.foreign, f"the page asked other origins: {self.foreign}"


def _follow(page: Page, room: Room) -> PageLog:
    """Record ``page``'s errors and requests (check with ``PageLog.check``)."""
    log = PageLog(room.url)
    page.on("console", log.console)
    page.on("pageerror", log.page_error)
    page.on("request", log.request)
    return log


def _signed_in(page: Page, room: Room, log: PageLog, who: Person = OLGA) -> None:
    page.set_viewport_size({"width": 1920, "height": 1080})  # a control-room monitor
    sign_in(page, room.url, who)
    expect(page.locator("#who-name")).to_have_text(who.name)
    log.signed_in = True


RECORD_TILES = """() => {
  window.__tilesSeen = [];
  const grid = document.getElementById("wall-tiles");
  const note = (n) => {
    if (n instanceof HTMLElement && n.dataset.camera) window.__tilesSeen.push(n.dataset.camera);
  };
  for (const n of grid.children) note(n);
  new MutationObserver((changes) => {
    for (const c of changes) for (const n of c.addedNodes) note(n);
  }).observe(grid, { childList: true });
}"""
"""Record in ``window.__tilesSeen`` the camera of every tile ever put on the wall."""

BROKEN_IMAGES = """() => [...document.querySelectorAll("#view-wall img")]
  .filter((i) => !i.hidden && i.offsetParent !== null && i.complete && i.naturalWidth === 0)
  .map((i) => i.closest("[data-camera]")?.dataset.camera || i.alt)"""
"""Visible images of the wall that failed to load (a broken picture)."""


def seen_tiles(page: Page) -> list[str]:
    """The cameras the page's wall ever showed a tile of (``RECORD_TILES``)."""
    return list(page.evaluate("() => window.__tilesSeen"))


@pytest.fixture(scope="module")
def watcher(browser: Browser, room: Room) -> Iterator[tuple[Page, PageLog]]:
    """A page on the wall all module long, recording every tile it ever shows."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    context.set_default_timeout(CHANGE_TIMEOUT_MS)
    page = context.new_page()
    log = _follow(page, room)
    try:
        _signed_in(page, room, log)
        page.evaluate(RECORD_TILES)
        page.get_by_role("link", name="Wall").click()
        expect(page.locator("#wall-note")).to_contain_text("quiet of 3")
        yield page, log
    finally:
        context.close()


def _tile(page: Page, camera: str) -> Any:
    return page.locator(f'#wall-tiles button.tile[data-camera="{camera}"]')


def _row(page: Page, camera: str) -> Any:
    return page.locator(f'#board-rows tr[data-camera="{camera}"]')


def _live_picture(page: Page, scope: str, timeout_ms: float) -> None:
    """Wait until the image in ``scope`` (a CSS selector) shows a picture."""
    page.wait_for_function(
        """(sel) => { const i = document.querySelector(sel);
          return !!i && !i.hidden && i.offsetParent !== null && i.complete && i.naturalWidth > 0
            && i.src.startsWith("blob:"); }""",
        arg=scope,
        timeout=timeout_ms,
    )


def _quiet(note: str) -> int:
    """The quiet count of the wall's note ("... · Q quiet of T")."""
    found = re.search(r"(\d+) quiet of \d+", note)
    assert found, note
    return int(found.group(1))


def _open_alerts(client: httpx.Client, camera: str) -> list[dict[str, Any]]:
    r = client.get(
        "/api/v1/alerts",
        params={"camera_id": camera, "state": ["new", "claimed", "escalated"], "limit": 500},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# ------------------------------------------------------------------------------ the tests


def test_wall_gains_and_loses_a_tile(page: Page, room: Room, watcher: tuple[Page, PageLog]) -> None:
    log = _follow(page, room)
    _signed_in(page, room, log)
    page.evaluate(RECORD_TILES)
    page.get_by_role("link", name="Wall").click()
    busy = _tile(page, "busy")
    expect(busy).to_be_visible(timeout=TILE_TIMEOUT_MS)  # people walk in within seconds
    expect(busy.locator(".tile-reason")).not_to_be_empty()
    _live_picture(page, '#wall-tiles [data-camera="busy"] .tile-pic img', TILE_TIMEOUT_MS)
    expect(busy.locator(".tile-state")).to_be_hidden()
    assert busy.get_attribute("data-state") == "streaming"
    note = page.locator("#wall-note")
    expect(note).to_have_text(re.compile(r"cameras? needs? attention · \d+ quiet of 3$"))
    quiet_before = _quiet(note.text_content() or "")
    expect(_tile(page, "still")).to_have_count(0)
    shot(page, "wall-busy")

    # busy's rule goes (as an admin would change it), so it raises nothing new
    with room.client(ADA) as admin:
        current = admin.get("/api/v1/rules")
        assert current.status_code == 200, current.text
        doc = current.json()
        rules = [r for r in doc["rules"] if r.get("camera") != "busy"]
        assert len(rules) == len(doc["rules"]) - 1, doc
        put = admin.put("/api/v1/rules", json={"rules": rules, "revision": doc["revision"]})
        assert put.status_code == 200, put.text

    # the tile opens its alert; it is closed in the page's own dialog
    busy.click()
    expect(page).to_have_url(re.compile(r"#/alert/[^/]+$"))
    event_id = page.url.rsplit("/", 1)[-1]
    page.get_by_role("button", name="Close", exact=True).click()
    page.get_by_label("Disposition").select_option("no_action")
    page.get_by_role("button", name="Close alert").click()
    expect(page.locator("#detail-state")).to_have_text("closed: no action needed")
    with room.client(OLGA) as olga:
        alert = olga.get(f"/api/v1/alerts/{event_id}").json()
        assert alert["camera_id"] == "busy" and alert["state"] == "closed", alert
        shot(page, "wall-alert-closed")

        # the others through the API (records already in flight may still open some)
        page.get_by_role("link", name="Wall").click()
        deadline = time.monotonic() + 30.0
        while True:
            left = _open_alerts(olga, "busy")
            for a in left:
                r = olga.post(
                    f"/api/v1/alerts/{a['event_id']}/close", json={"disposition": "no_action"}
                )
                assert r.status_code in (200, 409), r.text  # 409: closed meanwhile
            if not left and busy.count() == 0:
                break
            assert time.monotonic() < deadline, f"busy keeps a tile: {left}\n{room.log_tail()}"
            time.sleep(0.5)
    expect(busy).to_have_count(0)
    expect(note).to_have_text("Nothing needs attention · 3 quiet of 3")
    assert _quiet(note.text_content() or "") == quiet_before + 1  # counted quiet again
    expect(page.locator("#wall-empty")).to_be_visible()
    shot(page, "wall-busy-gone")

    # the page on the wall all along saw the same, live
    other, other_log = watcher
    expect(_tile(other, "busy")).to_have_count(0)
    expect(other.locator("#wall-note")).to_have_text("Nothing needs attention · 3 quiet of 3")
    assert "busy" in seen_tiles(other)
    assert "still" not in seen_tiles(page) + seen_tiles(other)
    log.check()
    other_log.check()


def test_camera_that_goes_away(page: Page, room: Room, watcher: tuple[Page, PageLog]) -> None:
    log = _follow(page, room)
    _signed_in(page, room, log)
    page.evaluate(RECORD_TILES)
    page.get_by_role("link", name="Cameras").click()
    expect(page.get_by_role("heading", name="Camera health")).to_be_visible()
    gone = _row(page, "gone")
    expect(gone).to_have_attribute("data-state", "streaming", timeout=TILE_TIMEOUT_MS)
    _live_picture(page, '#board-rows [data-camera="gone"] td.thumb img', TILE_TIMEOUT_MS)
    shot(page, "board-all-streaming")

    room.camera.kill()
    killed = time.monotonic()
    budget_ms = (SIGNAL_LOST_S + 8.0) * 1000
    expect(gone).to_have_attribute("data-state", NOT_STREAMING_RE, timeout=budget_ms)
    state, words = gone.evaluate(
        '(tr) => [tr.dataset.state, tr.querySelector("td.cam-state strong").textContent]'
    )
    assert state in NOT_STREAMING and words == STATE_WORDS[state], (state, words)
    expect(gone.locator("td.cam-state")).to_contain_text("since ")
    expect(gone.locator("td.thumb img")).to_be_hidden()
    shot(page, "board-gone")

    # the wall: a tile for its signal_lost alert, saying so, and no broken picture
    page.get_by_role("link", name="Wall").click()
    tile = _tile(page, "gone")
    expect(tile).to_be_visible(timeout=budget_ms)
    assert time.monotonic() - killed < SIGNAL_LOST_S + 10.0
    expect(tile).to_have_attribute("data-state", NOT_STREAMING_RE)
    expect(tile.locator(".tile-state")).to_be_visible()
    state, words = tile.evaluate(
        '(t) => [t.dataset.state, t.querySelector(".tile-state").textContent]'
    )
    assert state in NOT_STREAMING, (state, words)
    assert words.startswith(f"{STATE_WORDS[state]} since "), (state, words)
    expect(tile.locator(".tile-pic img")).to_be_hidden()
    expect(tile.locator(".tile-reason")).not_to_be_empty()
    expect(tile.locator(".tile-facts")).to_contain_text("Camera signal lost")
    assert page.evaluate(BROKEN_IMAGES) == []
    with room.client(OLGA) as olga:
        open_ = _open_alerts(olga, "gone")
    assert [a["type"] for a in open_] == ["signal_lost"], open_
    shot(page, "wall-gone")

    # the page on the wall all along: the tile came to it, as a state, not a picture
    other, other_log = watcher
    other_tile = _tile(other, "gone")
    expect(other_tile).to_be_visible()
    expect(other_tile.locator(".tile-pic img")).to_be_hidden()
    expect(other_tile.locator(".tile-state")).to_contain_text(" since ")
    assert other.evaluate(BROKEN_IMAGES) == []
    assert "still" not in seen_tiles(page) + seen_tiles(other)
    shot(other, "wall-gone-watcher")
    log.check()
    other_log.check()


def test_quiet_camera_never_appears(page: Page, room: Room, watcher: tuple[Page, PageLog]) -> None:
    # last on purpose: the watcher's record then spans the whole module (busy's tile coming
    # and going, gone's arriving); the other tests check their own moments too
    log = _follow(page, room)
    _signed_in(page, room, log)
    page.get_by_role("link", name="Cameras").click()
    still = _row(page, "still")
    expect(still).to_have_attribute("data-state", "streaming", timeout=TILE_TIMEOUT_MS)
    expect(still.locator("td.cam-state strong")).to_have_text("Streaming")
    _live_picture(page, '#board-rows [data-camera="still"] td.thumb img', TILE_TIMEOUT_MS)
    expect(still.locator("td.num").nth(2)).to_have_text("0")  # open alerts
    shot(page, "board-still")

    other, other_log = watcher
    assert "still" not in seen_tiles(other), seen_tiles(other)
    expect(_tile(other, "still")).to_have_count(0)
    with room.client(OLGA) as olga:
        assert _open_alerts(olga, "still") == []
        everything = olga.get("/api/v1/alerts", params={"camera_id": "still"}).json()
    assert everything["total"] == 0, everything  # nothing ever fired on it
    log.check()
    other_log.check()
