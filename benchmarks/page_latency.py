"""How fast an alert becomes visible to a signed-in operator: the operators' page, measured
from outside with headless Chromium (Playwright driving Debian's ``/usr/bin/chromium``).

The page's code is never changed: an init script (run before the app's own modules) adds

* a ``MutationObserver`` on the document that records, for every queue row
  (``#queue-rows tr[data-id]``), the first moment it is in the DOM (``performance.timeOrigin
  + performance.now()``: UNIX milliseconds, the same machine clock as Python's
  ``time.time()``; the check is in the report), when a watched row's text first contains a
  given string, and when ``#queue-count`` first reads ``"<N> alert..."``;
* for each of those, when the frame showing it has been rendered ("painted": the first task
  after that frame's style, layout and paint; ``requestAnimationFrame`` is wrapped only to
  know whether a change was made inside a frame callback, where the app renders);
* a thin subclass of ``EventSource`` whose own listeners (registered before the app's)
  record when each ``alert`` change arrived from ``GET /api/v1/changes``, and when the
  stream opened (the page is live);
* a ``PerformanceObserver`` of long tasks (over 50 ms: the page's renders of a big queue).

So every latency splits into the server's part (until the push) and the page's part (push →
row in the DOM → frame rendered).

Three parts:

1. ``single`` — ``argus run --serve`` on a camera that plays ``vtest.avi`` at real speed
   (``realtime: true``) with an intrusion rule on the plaza's crossing (one alert per person,
   as ``examples/plaza.yaml``); the clip starts with ``--lead-in`` seconds of the empty plaza
   (the footage's median frame) so that the page is signed in and live before the first
   person walks in.  Per alert: rendered on the page − the alert's ``wall_time`` (the clock
   time of the frame at which the rule fired), split into frame → stored (``received_at``),
   stored → pushed to the page, pushed → row in the DOM, row → rendered.
2. ``kafka`` — the same footage and rule through the local Kafka-protocol broker (Tansu on
   SeaweedFS, ``deploy.localstack``): an ``argus run`` worker publishes, a separate ``argus
   alerts serve`` consumes into its SQLite store and serves the page (the topology of
   ``benchmarks.alert_latency``).
3. ``queue`` — ``argus serve`` over a SQLite store holding ``--alerts`` open alerts (written
   with the store's own ``upsert``; SLA escalation off so nothing changes by itself):
   (a) sign-in click → first row, and → all alerts loaded (``#queue-count`` reads the total);
   the same after a reload of a signed-in page (navigation start → ...), ``--loads`` times
   each; (b) ``--changes`` claims of shown alerts by another user through the API: the POST
   returned → the row reads "claimed by"; and as many new alerts written into the store
   (``upsert`` returned → the row is in the DOM).

Output: a summary on stdout, the whole report as JSON (``--json``, default
``benchmarks/results/page-latency-<date>.json``).  Everything started (servers, the broker,
Chromium) is stopped at the end, also on failure.

Usage::

    .venv/bin/python -m benchmarks.page_latency [--part single|kafka|queue|all] [--seconds N]
        [--alerts N] [--changes N] [--loads N] [--json OUT]

Absolute figures hold for this machine on this date: quote them with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import httpx
import numpy as np
import yaml
from argon2 import PasswordHasher

from alerts.api.security import Passwords
from alerts.store import Role, SqliteAlertStore
from argus.bench import cpu_model, machine_description
from argus.paths import models_dir
from benchmarks.alert_latency import VTEST, ZONE
from deploy.localstack import LocalStack, free_port, free_ports, free_ports_base
from selector.event import Event, make_event_id

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# The bits of tests/browser/harness.py and tests/factories.py this needs, copied (the
# benchmarks are type-checked on their own, the tests are not).
CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium; Playwright drives it, never its own build."""
CHROMIUM_ARGS = ("--no-sandbox",)
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Cheap Argon2 hashes: the server verifies with the parameters in the hash (quick sign-in)."""


@dataclass(frozen=True)
class Person:
    """A user of the installation and the password to sign in with."""

    name: str
    role: Role
    password: str
    groups: tuple[str, ...] = ("default",)


OLGA = Person("olga", "operator", "olga-password-0003")
"""The operator whose page is measured."""
SAM = Person("sam", "supervisor", "sam-password-0002")
"""The supervisor who claims alerts through the API meanwhile."""


def make_event(n: int, *, camera: str, priority: int, wall: float) -> Event:
    """The n-th scripted start of an intrusion in zone ``z`` (as ``tests.factories``)."""
    rule_id = "intrusion:z"
    return Event(
        event_id=make_event_id(camera, rule_id, n, n),
        camera_id=camera,
        type="intrusion",
        rule_id=rule_id,
        zone="z",
        track_id=n,
        label="person",
        score=0.75,
        priority=priority,
        start_s=float(n),
        end_s=None,
        bbox=(1.0, 2.0, 30.0, 40.0),
        start_seq=n,
        wall_time=wall,
    )


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
KEY = "page-latency-bench-key-0123456789"
ARGUS = [sys.executable, "-m", "argus"]
FPS = 10.0
"""vtest.avi's frame rate (the clip is written at it)."""
QUEUE_PRIORITIES = (20, 40, 50, 60, 70)
"""Priorities of the queue part's stored alerts, in turn."""
NEW_PRIORITY = 90
"""Priority of the queue part's new alerts: above every stored one, so their rows are shown."""
MAX_QUEUE = 20_000
"""The page loads at most this many alerts (``queue.js`` ``MAX_LOADED``)."""
WAIT_MS = 15_000
"""Longest wait for one change to reach the page before the run is declared failed."""

OBSERVER_JS = r"""
(() => {
  const EXPECT = __EXPECT__;
  const now = () => performance.timeOrigin + performance.now();
  const P = window.__pl = { seen: {}, first: null, full: null, submit: null, live: null,
                            sse: [], watch: {}, hits: {}, countText: "", long: [],
                            seenPaint: {}, hitsPaint: {}, firstPaint: null, fullPaint: null };
  try {  // tasks over 50 ms (the app's renders of a big queue are among them)
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        P.long.push([performance.timeOrigin + e.startTime, e.duration]);
      }
    }).observe({ type: "longtask", buffered: true });
  } catch (_) { /* no Long Tasks API: no long tasks recorded */ }
  document.addEventListener("submit", () => { if (P.submit === null) P.submit = now(); }, true);
  const raf = window.requestAnimationFrame.bind(window);
  let inFrame = 0;  // inside a requestAnimationFrame callback
  // When the frame that shows a change has been rendered: a task queued from a frame
  // callback runs after that frame's style, layout and paint; a change made outside one
  // waits for the next frame first.
  const afterPaint = (fn) => {
    if (inFrame > 0) setTimeout(fn, 0); else raf(() => setTimeout(fn, 0));
  };
  const scan = () => {
    const body = document.getElementById("queue-rows");
    if (!body) return;
    const t = now();
    const marks = [];
    for (const tr of body.children) {
      const id = tr.getAttribute("data-id");
      if (id === null || id in P.seen) continue;
      P.seen[id] = t;
      marks.push((tp) => { P.seenPaint[id] = tp; });
      if (P.first === null) { P.first = t; marks.push((tp) => { P.firstPaint = tp; }); }
    }
    for (const id of Object.keys(P.watch)) {
      const tr = body.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
      if (!tr || !tr.textContent.includes(P.watch[id])) continue;
      P.hits[id] = t;
      delete P.watch[id];
      marks.push((tp) => { P.hitsPaint[id] = tp; });
    }
    const c = document.getElementById("queue-count");
    if (c) {
      P.countText = c.textContent;
      const all = EXPECT !== null && c.textContent.startsWith(EXPECT + " alert");
      if (P.full === null && all) { P.full = t; marks.push((tp) => { P.fullPaint = tp; }); }
    }
    if (marks.length) afterPaint(() => { const tp = now(); for (const m of marks) m(tp); });
  };
  const observer = new MutationObserver(scan);
  observer.observe(document, { childList: true, subtree: true, characterData: true });
  // the app renders in frame callbacks: scan as each ends, still inside the frame
  window.requestAnimationFrame = (cb) => raf((ts) => {
    inFrame += 1;
    try { cb(ts); } finally { observer.takeRecords(); scan(); inFrame -= 1; }
  });
  const ES = window.EventSource;
  window.EventSource = class extends ES {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("open", () => { if (P.live === null) P.live = now(); });
      this.addEventListener("alert", (ev) => {
        const t = now();
        try { const a = JSON.parse(ev.data); P.sse.push([a.event_id, a.state, a.change_seq, t]); }
        catch (_) { /* not an alert: the app reports it */ }
      });
    }
  };
})();
"""

PAGE_STATE_JS = """() => ({seen: window.__pl.seen, sse: window.__pl.sse, live: window.__pl.live,
  first: window.__pl.first, full: window.__pl.full, submit: window.__pl.submit,
  hits: window.__pl.hits, countText: window.__pl.countText, long: window.__pl.long,
  seenPaint: window.__pl.seenPaint, hitsPaint: window.__pl.hitsPaint,
  firstPaint: window.__pl.firstPaint, fullPaint: window.__pl.fullPaint,
  timeOrigin: performance.timeOrigin})"""

RESOURCES_JS = """() => performance.getEntriesByType("resource")
  .filter((e) => e.name.includes("/api/v1/alerts?"))
  .map((e) => [e.startTime, e.responseEnd, e.encodedBodySize])"""


def observer_script(expect: int | None) -> str:
    """The init script; ``expect``: the alert count at which the queue is fully loaded."""
    return OBSERVER_JS.replace("__EXPECT__", "null" if expect is None else str(int(expect)))


# --------------------------------------------------------------------------- figures


def stats_ms(values: Sequence[float]) -> dict[str, Any]:
    """``n``, p50, p95, max, min and mean of ``values`` (milliseconds), rounded to 0.1 ms."""
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
        "max_ms": round(float(a.max()), 1),
        "min_ms": round(float(a.min()), 1),
        "mean_ms": round(float(a.mean()), 1),
    }


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def code_version() -> dict[str, Any]:
    """The commit measured and whether the work tree differed from it (read-only git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return {"commit": None}
    return {"commit": commit or None, "modified_files": [x[3:] for x in changed if x.strip()]}


def machine() -> dict[str, Any]:
    """The machine a figure was measured on (``argus.bench``'s description, memory, load)."""
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    return {
        "description": machine_description(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
    }


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process in a session (process group) of its own, output to ``log``; ``stop``
    ends the whole group (SIGINT, then SIGKILL)."""

    def __init__(self, name: str, cmd: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.started = time.time()
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(cmd),
                cwd=REPO,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGINT to the group (as Ctrl-C), SIGKILL to whatever is left after ``timeout_s``."""
        pgid = self.popen.pid  # start_new_session: the group's id is the leader's pid
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # stragglers of the group, if any
        self.popen.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def wait_healthy(url: str, proc: Proc, timeout_s: float = 120.0) -> None:
    """Until ``url/healthz`` answers 200 (``SystemExit`` with the log if ``proc`` died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{proc.name}: {url}/healthz did not answer in {timeout_s:g} s")


def add_people(store_path: Path, people: Sequence[Person]) -> None:
    """Create ``people`` in the SQLite store at ``store_path`` (cheap Argon2 hashes)."""
    store = SqliteAlertStore(store_path)
    try:
        for p in people:
            store.add_user(
                p.name,
                role=p.role,
                groups=list(p.groups),
                password_hash=Passwords(CHEAP_HASHER).hash(p.password),
                now=time.time(),
            )
    finally:
        store.close()


# --------------------------------------------------------------------------- the browser


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright (never Playwright's own build)."""
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} not installed (Debian's chromium: `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, expect: int | None = None) -> Page:
    """A page in a fresh context (1280x800) with the observer installed."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)
    context.add_init_script(script=observer_script(expect))
    return context.new_page()


def sign_in(page: Page, url: str, who: Person) -> None:
    """Open the page and sign in through its form (as ``tests.browser.harness.sign_in``)."""
    page.goto(url + "/")
    page.get_by_label("Username").fill(who.name)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Sign in").click()


def page_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(PAGE_STATE_JS)
    return state


def clock_check(page: Page) -> dict[str, float]:
    """The page's clock minus Python's, in ms (both read the machine's wall clock)."""
    t0 = time.time()
    date_now, hires = page.evaluate(
        "() => [Date.now(), performance.timeOrigin + performance.now()]"
    )
    t1 = time.time()
    mid = (t0 + t1) / 2 * 1000
    return {
        "date_now_minus_python_ms": round(date_now - mid, 2),
        "hires_minus_python_ms": round(hires - mid, 2),
        "round_trip_ms": round((t1 - t0) * 1000, 2),
    }


def first_arrivals(sse: Sequence[Sequence[Any]], state: str | None = None) -> dict[str, float]:
    """event id -> when its first pushed change (in ``state``, when given) arrived, ms."""
    out: dict[str, float] = {}
    for event_id, st, _seq, t in sse:
        if (state is None or st == state) and event_id not in out:
            out[event_id] = float(t)
    return out


def long_tasks(long: Sequence[Sequence[float]], t0: float, t1: float) -> tuple[float, float]:
    """The total and the longest duration (ms) of the page's long tasks (over 50 ms) that
    started between ``t0`` and ``t1`` (UNIX ms)."""
    inside = [float(d) for start, d in long if t0 <= start <= t1]
    return sum(inside), max(inside, default=0.0)


# --------------------------------------------------------------------------- parts 1 and 2


def make_clip(video: Path, seconds: float, lead_in_s: float, out: Path) -> dict[str, Any]:
    """``lead_in_s`` of the empty plaza (the median of frames across ``video``), then the
    first ``seconds`` of ``video``, as MJPEG at 10 fps."""
    if not video.is_file():
        raise SystemExit(f"footage {video} not found (Debian's opencv-doc: `make footage`)")
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    samples = []
    for i in np.linspace(0, max(total - 1, 0), 25).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, img = cap.read()
        if ok:
            samples.append(img)
    if not samples:
        raise SystemExit(f"cannot read {video}")
    background = np.median(np.stack(samples), axis=0).astype(np.uint8)
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    h, w = background.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (w, h))
    lead = round(lead_in_s * FPS)
    for _ in range(lead):
        writer.write(background)
    played = 0
    for _ in range(round(seconds * FPS)):
        ok, img = cap.read()
        if not ok:
            break
        writer.write(img)
        played += 1
    writer.release()
    cap.release()
    return {"lead_in_frames": lead, "footage_frames": played, "clip_s": (lead + played) / FPS}


def camera_config(clip: Path) -> dict[str, Any]:
    """The plaza camera at real speed and ``examples/plaza.yaml``'s intrusion rule."""
    return {
        "cameras": [
            {
                "id": "plaza",
                "source": str(clip),
                "realtime": True,
                "zones": [{"name": "crossing", "polygon": ZONE}],
            }
        ],
        "rules": [
            {
                "type": "intrusion",
                "camera": "plaza",
                "zone": "crossing",
                "classes": ["person"],
                "min_dwell_s": 0.5,
                "severity": 60,
                "exit_grace_s": 1.0,
                "alert_per": "object",
                "cooldown_s": 3,
            }
        ],
        "log": {"level": "WARNING"},
    }


def all_alerts(url: str) -> list[dict[str, Any]]:
    """Every alert the API has (any state), with the API key."""
    items: list[dict[str, Any]] = []
    while True:
        r = httpx.get(
            url + "/api/v1/alerts",
            params={"limit": 500, "offset": len(items)},
            headers={"X-API-Key": KEY},
            timeout=10,
        )
        r.raise_for_status()
        page = r.json()["items"]
        items += page
        if len(page) < 500:
            return items


def follow_footage(
    page: Page,
    url: str,
    done: Callable[[], bool],
    timeout_s: float,
    what: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Wait until ``done()`` (the footage played), then until every alert stored after the
    page went live has its row (at most 15 s more); the alerts and the page's records."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: the footage did not end in {timeout_s:g} s")
        time.sleep(0.5)
    time.sleep(3.0)  # the last frames' records: through the bus (and the broker) to the store
    settle = time.monotonic() + 15
    while True:
        items = all_alerts(url)
        state = page_state(page)
        live_s = float(state["live"]) / 1000
        pending = [
            a
            for a in items
            if _epoch(a["received_at"]) >= live_s and a["event_id"] not in state["seenPaint"]
        ]
        if not pending or time.monotonic() > settle:
            return items, state
        time.sleep(0.5)


def alert_figures(
    items: Sequence[Mapping[str, Any]], state: Mapping[str, Any], started: float
) -> dict[str, Any]:
    """Per alert: frame → stored → pushed → row in the DOM → frame rendered; only alerts
    stored after the page went live (earlier ones came with the page's first load)."""
    live_s = float(state["live"]) / 1000
    seen: Mapping[str, float] = state["seen"]
    painted: Mapping[str, float] = state["seenPaint"]
    pushed = first_arrivals(state["sse"])
    samples: list[dict[str, Any]] = []
    before_live = 0
    never_shown: list[str] = []
    for a in sorted(items, key=lambda x: x["wall_time"]):
        wall, stored = _epoch(a["wall_time"]), _epoch(a["received_at"])
        if stored < live_s:
            before_live += 1
            continue
        row = seen.get(a["event_id"])
        if row is None:
            never_shown.append(a["event_id"])
            continue
        push = pushed.get(a["event_id"])
        paint = painted.get(a["event_id"])
        samples.append(
            {
                "event_id": a["event_id"],
                "wall_time": round(wall, 3),
                "frame_to_painted_ms": None if paint is None else round(paint - wall * 1000, 1),
                "frame_to_row_ms": round(row - wall * 1000, 1),
                "frame_to_stored_ms": round((stored - wall) * 1000, 1),
                "stored_to_push_ms": None if push is None else round(push - stored * 1000, 1),
                "push_to_row_ms": None if push is None else round(row - push, 1),
                "row_to_painted_ms": None if paint is None else round(paint - row, 1),
            }
        )

    def col(key: str) -> list[float]:
        return [float(s[key]) for s in samples if s[key] is not None]

    first_wall = samples[0]["wall_time"] if samples else None
    return {
        "alerts_total": len(items),
        "alerts_measured": len(samples),
        "alerts_before_page_live": before_live,
        "never_shown": never_shown,
        "page_live_after_start_s": round(live_s - started, 2),
        "first_measured_alert_after_live_s": (
            round(first_wall - live_s, 2) if first_wall is not None else None
        ),
        "frame_to_painted": stats_ms(col("frame_to_painted_ms")),
        "frame_to_row": stats_ms(col("frame_to_row_ms")),
        "frame_to_stored": stats_ms(col("frame_to_stored_ms")),
        "stored_to_push": stats_ms(col("stored_to_push_ms")),
        "push_to_row": stats_ms(col("push_to_row_ms")),
        "row_to_painted": stats_ms(col("row_to_painted_ms")),
        "samples": samples,
    }


def camera_health(url: str) -> dict[str, Any]:
    """The plaza camera's state and counters in ``/readyz`` (empty when unanswered)."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        cams = httpx.get(url + "/readyz", timeout=2).json().get("cameras", {})
        cam: dict[str, Any] = cams.get("plaza", {})
        return cam
    return {}


def _log_lines(log: Path, needle: str) -> list[str]:
    with contextlib.suppress(OSError):
        return [line for line in log.read_text(errors="replace").splitlines() if needle in line]
    return []


def _summary_line(log: Path) -> str | None:
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("argus:") and " frames in " in line:
                return line.strip()
    return None


def progress(t0: float, what: str) -> None:
    """A progress line on stderr, seconds since ``t0`` (``time.monotonic()``)."""
    print(f"  {time.monotonic() - t0:6.1f} s  {what}", file=sys.stderr, flush=True)


def _listen(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def _home(tmp: Path) -> Path:
    home = tmp / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir(), target_is_directory=True)
    return home


def run_single(browser: Browser, seconds: float, lead_in_s: float, workdir: Path) -> dict[str, Any]:
    """Part 1: ``argus run --serve``, one process from camera to page."""
    t_part = time.monotonic()
    home = _home(workdir)
    clip = make_clip(VTEST, seconds, lead_in_s, workdir / "clip.avi")
    progress(t_part, f"clip written ({clip['clip_s']:g} s)")
    store = workdir / "alerts.db"
    cfg = camera_config(workdir / "clip.avi") | {
        "storage": {"sqlite": str(store), "evidence_dir": str(workdir / "evidence")}
    }
    cfg_path = workdir / "argus.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    add_people(store, [OLGA, SAM])
    env = dict(os.environ, ARGUS_HOME=str(home), ARGUS_API_KEY=KEY, PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: progress(t_part, "stopped"))
        worker = Proc(
            "argus run --serve",
            [*ARGUS, "run", "--serve", *_listen(port), str(cfg_path)],
            env,
            workdir / "worker.log",
        )
        stack.callback(worker.stop)
        wait_healthy(url, worker)
        progress(t_part, "argus run --serve answers")
        page = new_page(browser)
        stack.callback(page.context.close)
        sign_in(page, url, OLGA)
        page.wait_for_function("() => window.__pl.live !== null", timeout=60_000)
        clock = clock_check(page)
        progress(t_part, "page signed in and live")

        camera: dict[str, Any] = {}

        def ended() -> bool:  # the camera's file played and its frames are processed
            if not worker.alive():
                raise SystemExit(f"argus run --serve exited:\n{worker.log_tail()}")
            camera.update(camera_health(url))
            return camera.get("state") in ("ended", "failed")

        items, state = follow_footage(page, url, ended, clip["clip_s"] + 120, "argus run --serve")
        progress(t_part, f"footage played, {len(items)} alerts")
    figures = alert_figures(items, state, worker.started)
    return {
        "camera_at_end": camera,
        "topology": "argus run --serve: camera -> detector -> rules -> in-process bus -> "
        "SQLite store -> change feed (polled every 0.25 s) -> Server-Sent Events -> page",
        "clip": clip,
        "worker": _summary_line(worker.log),
        "worker_behind_real_time_warnings": len(_log_lines(worker.log, "behind real time")),
        "clock_check": clock,
        **figures,
        "wall_s": round(time.monotonic() - t_part, 1),
    }


def run_kafka(browser: Browser, seconds: float, lead_in_s: float, workdir: Path) -> dict[str, Any]:
    """Part 2: an ``argus run`` worker publishes to the local broker, ``argus alerts serve``
    consumes into its store and serves the page."""
    t_part = time.monotonic()
    home = _home(workdir)
    clip = make_clip(VTEST, seconds, lead_in_s, workdir / "clip.avi")
    progress(t_part, f"clip written ({clip['clip_s']:g} s)")
    store = workdir / "alerts.db"
    kafka_port, s3_port = free_ports(2)
    localstack = LocalStack(
        workdir / "infra", kafka_port=kafka_port, s3_port=s3_port, ports_base=free_ports_base()
    )
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: progress(t_part, "stopped"))
        stack.callback(localstack.stop)
        localstack.up()
        progress(t_part, "local broker and S3 up")
        cfg = camera_config(workdir / "clip.avi") | {
            "bus": {
                "kafka": {
                    "bootstrap": localstack.bootstrap,
                    "topic": "argus.events",
                    "idempotent": False,
                }
            },
            "evidence": {"s3": {"endpoint": localstack.s3_endpoint}},
            "storage": {"sqlite": str(store)},
            "log": {"level": "INFO"},  # the worker's "camera plaza: ended" line
        }
        cfg_path = workdir / "argus.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        add_people(store, [OLGA, SAM])
        env = dict(
            os.environ,
            ARGUS_HOME=str(home),
            ARGUS_API_KEY=KEY,
            ARGUS_S3_ACCESS_KEY=localstack.access_key,
            ARGUS_S3_SECRET_KEY=localstack.secret_key,
            PYTHONUNBUFFERED="1",
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        service = Proc(
            "argus alerts serve",
            [*ARGUS, "alerts", "serve", "--config", str(cfg_path), *_listen(port)],
            env,
            workdir / "service.log",
        )
        stack.callback(service.stop)
        wait_healthy(url, service)
        # steady state: the service has joined its consumer group before frames flow
        t_join = time.monotonic()
        while time.monotonic() - t_join < 60:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                ready = httpx.get(url + "/readyz", timeout=2).json()
                if ready.get("components", {}).get("alert_service", {}).get("connected"):
                    break
            time.sleep(0.2)
        join_s = time.monotonic() - t_join
        progress(t_part, f"argus alerts serve answers, consumer group joined ({join_s:.1f} s)")
        page = new_page(browser)
        stack.callback(page.context.close)
        sign_in(page, url, OLGA)
        page.wait_for_function("() => window.__pl.live !== null", timeout=60_000)
        clock = clock_check(page)
        progress(t_part, "page signed in and live; worker starts")
        worker = Proc("argus run", [*ARGUS, "run", str(cfg_path)], env, workdir / "worker.log")
        stack.callback(worker.stop)

        def ended() -> bool:  # the worker logs its camera's end (it then finishes its clips)
            code = worker.popen.poll()
            if code not in (None, 0):
                raise SystemExit(f"argus run exited with {code}:\n{worker.log_tail()}")
            return code == 0 or bool(_log_lines(worker.log, "camera plaza: ended"))

        items, state = follow_footage(page, url, ended, clip["clip_s"] + 120, "argus run")
        progress(t_part, f"footage played, {len(items)} alerts")
    figures = alert_figures(items, state, worker.started)
    return {
        "topology": "argus run (camera -> detector -> rules -> Kafka producer) -> Tansu broker "
        "(on SeaweedFS S3) -> argus alerts serve (consumer group -> SQLite store -> change "
        "feed polled every 0.25 s -> Server-Sent Events) -> page",
        "clip": clip,
        "worker": _summary_line(worker.log),
        "worker_behind_real_time_warnings": len(_log_lines(worker.log, "behind real time")),
        "service_join_s": round(join_s, 2),
        "clock_check": clock,
        **figures,
        "wall_s": round(time.monotonic() - t_part, 1),
    }


# --------------------------------------------------------------------------- part 3


def fill_store(store_path: Path, alerts: int) -> dict[str, Any]:
    """``alerts`` open (``new``) alerts on cam-1 and cam-2 (group ``default``), written with
    the store's ``upsert`` as the alert service writes them; the last one is the newest."""
    t0 = time.monotonic()
    now = time.time()
    store = SqliteAlertStore(store_path)
    try:
        for n in range(1, alerts + 1):
            event = make_event(
                n,
                camera="cam-1" if n % 2 else "cam-2",
                priority=QUEUE_PRIORITIES[n % len(QUEUE_PRIORITIES)],
                wall=now - (alerts - n),
            )
            store.upsert(event.to_record())
    finally:
        store.close()
    return {"alerts": alerts, "seconds": round(time.monotonic() - t0, 2), "method": "upsert"}


def _requests(page: Page) -> dict[str, Any]:
    """The page's ``GET /api/v1/alerts?...`` fetches (resource timing) since it loaded."""
    entries: list[list[float]] = page.evaluate(RESOURCES_JS)
    if not entries:
        return {"n": 0}
    durations = [end - start for start, end, _ in entries]
    return {
        "n": len(entries),
        "first_page_ms": round(durations[0], 1),
        "fetch_ms_sum": round(sum(durations), 1),
        "fetch_span_ms": round(max(e[1] for e in entries) - min(e[0] for e in entries), 1),
        "body_kib": round(sum(e[2] for e in entries) / 1024, 1),
    }


def measure_loads(
    browser: Browser, url: str, alerts: int, loads: int
) -> tuple[dict[str, Any], Page]:
    """Sign-in → first row / all loaded, and reload → the same, ``loads`` times each, a fresh
    browser context per sign-in; the last page stays open (signed in, all loaded)."""
    keys = ("first_row", "first_row_painted", "all_loaded", "all_loaded_painted")
    times: dict[str, list[float]] = {f"{k}_{m}": [] for k in ("sign_in", "reload") for m in keys}
    requests: dict[str, dict[str, Any]] = {}
    busy: list[float] = []
    longest: list[float] = []
    page: Page | None = None
    count_text = ""

    def note(kind: str, page: Page, s: Mapping[str, Any], t0: float) -> None:
        for key, mark in zip(keys, ("first", "firstPaint", "full", "fullPaint"), strict=True):
            times[f"{kind}_{key}"].append(float(s[mark]) - t0)
        total, most = long_tasks(s["long"], t0, s["fullPaint"])
        busy.append(total)
        longest.append(most)
        requests[kind] = _requests(page)

    painted = "() => window.__pl.fullPaint !== null"
    try:
        for i in range(loads):
            if page is not None:
                page.context.close()
            page = new_page(browser, expect=alerts)
            sign_in(page, url, OLGA)
            page.wait_for_function(painted, timeout=120_000)
            s = page_state(page)
            note("sign_in", page, s, s["submit"])
            page.reload()
            page.wait_for_function(painted, timeout=120_000)
            s = page_state(page)
            note("reload", page, s, s["timeOrigin"])
            count_text = s["countText"]
            print(
                f"  load {i + 1}/{loads}: sign-in -> first row "
                f"{times['sign_in_first_row_painted'][-1]:.0f} ms, all "
                f"{times['sign_in_all_loaded_painted'][-1]:.0f} ms; reload -> "
                f"{times['reload_first_row_painted'][-1]:.0f} / "
                f"{times['reload_all_loaded_painted'][-1]:.0f} ms",
                file=sys.stderr,
            )
        assert page is not None
        page.wait_for_function("() => window.__pl.live !== null", timeout=60_000)
    except BaseException:
        if page is not None:
            page.context.close()
        raise
    return {
        **{k: stats_ms(v) for k, v in times.items()},
        "long_tasks_per_load": stats_ms(busy),
        "longest_task_per_load": stats_ms(longest),
        "alerts_requests_after_sign_in": requests["sign_in"],
        "alerts_requests_after_reload": requests["reload"],
        "queue_count_text": count_text,
    }, page


def _wait_for(page: Page, expression: str, arg: Any, what: str) -> None:
    try:
        page.wait_for_function(expression, arg=arg, polling=20, timeout=WAIT_MS)
    except Exception as e:
        raise SystemExit(f"{what} did not reach the page in {WAIT_MS / 1000:g} s: {e}") from e


class ChangeTimes:
    """One change's way to the screen, per change: the call that made it (its own time),
    then from its return to the push, the row in the DOM and the frame rendered."""

    def __init__(self) -> None:
        self.call: list[float] = []
        self.to_push: list[float] = []
        self.to_row: list[float] = []
        self.to_painted: list[float] = []
        self.push_to_row: list[float] = []
        self.row_to_painted: list[float] = []
        self.long: list[float] = []

    def add(
        self, t0: float, t1: float, push: float | None, row: float, paint: float, long: Any
    ) -> None:
        """``t0``/``t1``: the call began/returned (s); the rest page times (UNIX ms)."""
        self.call.append((t1 - t0) * 1000)
        self.to_row.append(row - t1 * 1000)
        self.to_painted.append(paint - t1 * 1000)
        self.row_to_painted.append(paint - row)
        if push is not None:
            self.to_push.append(push - t1 * 1000)
            self.push_to_row.append(row - push)
            self.long.append(long_tasks(long, push, paint)[0])

    def report(self, call: str, since: str) -> dict[str, Any]:
        return {
            call: stats_ms(self.call),
            f"{since}_to_painted": stats_ms(self.to_painted),
            f"{since}_to_row": stats_ms(self.to_row),
            f"{since}_to_push": stats_ms(self.to_push),
            "push_to_row": stats_ms(self.push_to_row),
            "row_to_painted": stats_ms(self.row_to_painted),
            "long_tasks_push_to_painted": stats_ms(self.long),
        }


def measure_claims(page: Page, url: str, changes: int, rng: random.Random) -> dict[str, Any]:
    """``changes`` claims by SAM through the API of alerts shown as new on OLGA's page: the
    POST returned → the row reads "claimed by"."""
    ids: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("#queue-rows tr")]
          .filter((tr) => tr.querySelector("td.state").textContent === "new")
          .map((tr) => tr.getAttribute("data-id"))"""
    )
    if len(ids) < changes:
        raise SystemExit(f"only {len(ids)} new alerts shown, {changes} claims asked")
    out = ChangeTimes()
    with httpx.Client(base_url=url, timeout=10) as sam:
        r = sam.post("/api/v1/auth/login", json={"username": SAM.name, "password": SAM.password})
        r.raise_for_status()
        csrf = r.json()["csrf_token"]
        for event_id in ids[:changes]:
            time.sleep(rng.uniform(0.0, 0.5))  # no lock-step with the server's 0.25 s poll
            page.evaluate(
                "([id, text]) => { window.__pl.watch[id] = text; }", [event_id, "claimed by"]
            )
            t0 = time.time()
            r = sam.post(f"/api/v1/alerts/{event_id}/claim", headers={"X-CSRF-Token": csrf})
            t1 = time.time()
            r.raise_for_status()
            _wait_for(
                page, "(id) => id in window.__pl.hitsPaint", event_id, f"the claim of {event_id}"
            )
            s = page_state(page)
            push = first_arrivals(s["sse"], "claimed").get(event_id)
            out.add(t0, t1, push, s["hits"][event_id], s["hitsPaint"][event_id], s["long"])
    return out.report("post_round_trip", "post_returned")


def measure_new_alerts(
    page: Page, store_path: Path, first_n: int, changes: int, rng: random.Random
) -> dict[str, Any]:
    """``changes`` new alerts (priority ``NEW_PRIORITY``) written into the store from here, as
    a separate alert service would: ``upsert`` returned → the row is shown."""
    out = ChangeTimes()
    store = SqliteAlertStore(store_path)
    try:
        for i in range(changes):
            time.sleep(rng.uniform(0.0, 0.5))
            event = make_event(first_n + i, camera="cam-1", priority=NEW_PRIORITY, wall=time.time())
            t0 = time.time()
            store.upsert(event.to_record())
            t1 = time.time()
            event_id = event.event_id
            _wait_for(page, "(id) => id in window.__pl.seenPaint", event_id, f"alert {event_id}")
            s = page_state(page)
            push = first_arrivals(s["sse"]).get(event_id)
            out.add(t0, t1, push, s["seen"][event_id], s["seenPaint"][event_id], s["long"])
    finally:
        store.close()
    return out.report("upsert", "stored")


def run_queue(
    browser: Browser, alerts: int, changes: int, loads: int, workdir: Path, seed: int = 17
) -> dict[str, Any]:
    """Part 3: ``argus serve`` over a store of ``alerts`` open alerts."""
    if not 1 <= alerts <= MAX_QUEUE:
        raise ValueError(f"alerts must be 1..{MAX_QUEUE} (the page loads at most that many)")
    t_part = time.monotonic()
    rng = random.Random(seed)
    home = workdir / "home"
    home.mkdir()
    store = workdir / "alerts.db"
    cfg = {
        "cameras": [  # never opened: `argus serve` runs no cameras, it needs their groups
            {"id": cam, "source": f"rtsp://127.0.0.1:9/{cam}", "groups": ["default"]}
            for cam in ("cam-1", "cam-2")
        ],
        "api": {"sla": {"enabled": False}},
        "storage": {"sqlite": str(store), "evidence_dir": str(workdir / "evidence")},
        "log": {"level": "WARNING"},
    }
    cfg_path = workdir / "argus.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    add_people(store, [OLGA, SAM])
    fill = fill_store(store, alerts)
    env = dict(os.environ, ARGUS_HOME=str(home), ARGUS_API_KEY=KEY, PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        server = Proc(
            "argus serve",
            [*ARGUS, "serve", "--config", str(cfg_path), *_listen(port)],
            env,
            workdir / "server.log",
        )
        stack.callback(server.stop)
        wait_healthy(url, server)
        load, page = measure_loads(browser, url, alerts, loads)
        stack.callback(page.context.close)
        clock = clock_check(page)
        claims = measure_claims(page, url, changes, rng)
        new = measure_new_alerts(page, store, alerts + 1, changes, rng)
    return {
        "server": "argus serve (SQLite store, WAL); the page as OLGA (operator, group default)",
        "fill": fill,
        "clock_check": clock,
        "load": load,
        "claim": claims,
        "new_alert": new,
        "wall_s": round(time.monotonic() - t_part, 1),
    }


# --------------------------------------------------------------------------- report


def _fmt(s: Mapping[str, Any]) -> str:
    if not s.get("n"):
        return "n=0"
    return f"p50 {s['p50_ms']:.0f}  p95 {s['p95_ms']:.0f}  max {s['max_ms']:.0f} ms  (n={s['n']})"


def _worker(part: Mapping[str, Any]) -> str:
    cam = part.get("camera_at_end")
    if cam:
        return (
            f"camera: {cam.get('frames_processed')} frames processed, "
            f"{cam.get('frames_detected')} through the detector, "
            f"{cam.get('frames_dropped')} dropped"
        )
    return part.get("worker") or "the worker was stopped while it finished its clips"


def summary(report: Mapping[str, Any]) -> str:
    """The report as a few lines of text."""
    lines = [
        f"Operators' page latency — {report['date']} — {report['machine']['description']}, "
        f"load average {report['machine']['loadavg_start']}",
        f"Chromium {report['browser']}",
    ]
    for part in ("single", "kafka"):
        p = report["parts"].get(part)
        if p is None:
            continue
        lines += [
            f"\n[{part}] {p['alerts_measured']} alerts measured ({p['alerts_total']} in all, "
            f"{p['alerts_before_page_live']} before the page was live); {_worker(p)}",
            f"  frame -> on screen    {_fmt(p['frame_to_painted'])}",
            f"    frame -> stored     {_fmt(p['frame_to_stored'])}",
            f"    stored -> pushed    {_fmt(p['stored_to_push'])}",
            f"    pushed -> row       {_fmt(p['push_to_row'])}",
            f"    row -> rendered     {_fmt(p['row_to_painted'])}",
        ]
    q = report["parts"].get("queue")
    if q is not None:
        ld, c, n = q["load"], q["claim"], q["new_alert"]
        lines += [
            f"\n[queue] {q['fill']['alerts']} open alerts; the page reads: "
            f"{ld['queue_count_text']!r}",
            f"  sign-in -> first row on screen   {_fmt(ld['sign_in_first_row_painted'])}",
            f"  sign-in -> all loaded            {_fmt(ld['sign_in_all_loaded_painted'])}",
            f"  reload -> first row on screen    {_fmt(ld['reload_first_row_painted'])}",
            f"  reload -> all loaded             {_fmt(ld['reload_all_loaded_painted'])}",
            f"  claim returned -> 'claimed by'   {_fmt(c['post_returned_to_painted'])}",
            f"    returned -> pushed             {_fmt(c['post_returned_to_push'])}",
            f"    pushed -> row                  {_fmt(c['push_to_row'])}",
            f"    row -> rendered                {_fmt(c['row_to_painted'])}",
            f"  new alert stored -> on screen    {_fmt(n['stored_to_painted'])}",
            f"    stored -> pushed               {_fmt(n['stored_to_push'])}",
            f"    pushed -> row                  {_fmt(n['push_to_row'])}",
            f"    row -> rendered                {_fmt(n['row_to_painted'])}",
        ]
    return "\n".join(lines)


def run(
    parts: Sequence[str],
    *,
    seconds: float = 75.0,
    lead_in_s: float = 8.0,
    alerts: int = 10_000,
    changes: int = 20,
    loads: int = 3,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run ``parts`` (``single``, ``kafka``, ``queue``) and return the report."""
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "page_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "parameters": {
            "parts": list(parts),
            "seconds": seconds,
            "lead_in_s": lead_in_s,
            "alerts": alerts,
            "changes": changes,
            "loads": loads,
            "footage": str(VTEST),
            "server_poll_s": 0.25,
        },
        "method": (
            "Times are UNIX ms of one machine clock: Python's time.time() and the page's "
            "performance.timeOrigin + performance.now(). A row 'appears' when a "
            "MutationObserver sees it in #queue-rows (the DOM); 'painted' when the first task "
            "after the rendering of the frame that shows it runs; 'pushed' when the page's "
            "EventSource delivered the change."
        ),
        "parts": {},
    }
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="argus-page-")))
        browser = stack.enter_context(chromium())
        report["browser"] = browser.version
        for part in parts:
            print(f"page_latency: part {part}...", file=sys.stderr)
            d = workdir / part
            d.mkdir(parents=True, exist_ok=True)
            if part == "single":
                report["parts"][part] = run_single(browser, seconds, lead_in_s, d)
            elif part == "kafka":
                report["parts"][part] = run_kafka(browser, seconds, lead_in_s, d)
            elif part == "queue":
                report["parts"][part] = run_queue(browser, alerts, changes, loads, d)
            else:
                raise ValueError(f"unknown part {part!r}")
    report["machine"]["loadavg_end"] = _loadavg()
    report["wall_s"] = round(time.monotonic() - t0, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--part", choices=("single", "kafka", "queue", "all"), default="all")
    p.add_argument("--seconds", type=float, default=75.0, help="seconds of footage (parts 1, 2)")
    p.add_argument("--lead-in", type=float, default=8.0, help="seconds of empty plaza first")
    p.add_argument("--alerts", type=int, default=10_000, help="open alerts (queue part)")
    p.add_argument("--changes", type=int, default=20, help="claims, and new alerts (queue)")
    p.add_argument("--loads", type=int, default=3, help="sign-ins and reloads (queue)")
    p.add_argument("--json", type=Path, help="default: benchmarks/results/page-latency-DATE.json")
    args = p.parse_args(argv)
    parts = ["single", "kafka", "queue"] if args.part == "all" else [args.part]
    report = run(
        parts,
        seconds=args.seconds,
        lead_in_s=args.lead_in,
        alerts=args.alerts,
        changes=args.changes,
        loads=args.loads,
    )
    out = args.json or RESULTS / f"page-latency-{report['date'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"\nreport: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
