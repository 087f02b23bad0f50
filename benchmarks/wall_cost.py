"""The operators' wall (issue 18): how long from an event's frame to its tile on the wall, and
what watching costs the process that makes the live pictures.

Measured from outside, as ``benchmarks.page_latency`` (whose helpers this reuses): real
``argus run CONFIG --serve`` processes (``ARGUS_HOME`` in a temporary folder, the installed
model linked in), headless Debian Chromium driven by Playwright, the page's code untouched.
An init script (run before the app's modules) adds

* a thin subclass of ``EventSource`` whose own listeners (registered before the app's) note,
  for the view's stream ``GET /api/v1/live``, when each ``wall``/``board`` document arrived
  (with each tile's camera and alert) and each ``picture`` (camera, size of its data);
* a ``MutationObserver`` on the document that notes each tile's first insertion into
  ``#wall-tiles`` (a ``button.tile[data-camera]`` element not there before; the app removes
  a camera's tile when it leaves the wall and makes a new one when it comes back), with the
  ``wall`` document just rendered (the app renders inside its listener, so the observer runs
  right after it) and so the event id of the tile's alert, and when the tile leaves;
* page_latency's "painted" technique: when the frame showing the new tile has been rendered
  (the first task after that frame's style, layout and paint; ``requestAnimationFrame`` is
  wrapped only to know whether the change was made in a frame callback).

All times are UNIX milliseconds of one machine clock (the page's ``performance.timeOrigin +
performance.now()`` against Python's ``time.time()``; the check is in the report).

Two parts:

1. ``latency`` — one ``argus run --serve`` with the plaza camera (``vtest.avi`` at real speed,
   looped, after page_latency's lead-in of the empty plaza so the page is live before the
   first person) and page_latency's intrusion rule (0.5 s dwell, one alert per person; a
   dwell that short is never "watched activity", so the camera is on the wall only while it
   has an open alert).  OLGA (operator) watches ``#/wall``.  ``--samples`` times: SAM
   (supervisor) closes every open alert of the camera through the API (``POST
   /api/v1/alerts/{id}/close``, disposition ``no_action``: a new alert is claimed by the
   close itself) until the tile has left the page; the next alert brings the tile back.
   Per sample: tile rendered − the alert's ``wall_time`` (the clock time of the frame at which
   the rule fired), split into frame → stored (``received_at``), stored → the ``wall`` event
   that put the tile on the wall arrived, event → tile in the DOM → rendered.  And the tile's
   picture: whether it opened showing a picture the page kept from before and how old that
   was, the first picture that arrived and its age (arrival − ``taken_at``), frame → a
   picture taken after that frame; pictures of the camera that arrived while it had no tile
   (there should be none).
2. ``cpu`` — one ``argus run --serve`` with 6 cameras: the plaza (the first ``--window``
   seconds of the footage, looped: every window sees one whole loop, so each condition gets
   the same people to detect) and 5 quiet cameras (``argus.demo``'s quiet twins: the empty
   plaza with fresh sensor noise, two framings, their rules); evidence clips off (seconds of
   CPU per alert, at random times: noise here).  Nobody closes the plaza's alerts, so the wall
   shows the plaza's tile and the 5 quiet cameras are "quiet".  In ``--repeats`` rounds (the
   order of the conditions rotates from round to round) each condition is held for
   ``--window`` seconds after ``--settle`` seconds: ``nobody`` (no page open at all), ``wall``
   (OLGA signed in on ``#/wall``: 640 px, 2 pictures a second of each camera on it), ``board``
   (OLGA on ``#/cameras``: 240 px every 5 s of all 6 cameras).  Per window: the CPU time
   (user + system, every thread of every process of the server's process group, from
   ``/proc/PID/stat``) over the wall time, as % of one core; the machine's busy share
   (``/proc/stat``) and the browser's (Chromium and Playwright's driver: the descendants of
   this process); pictures made per camera and the time to render them
   (``argus_live_previews_total``, ``argus_live_preview_seconds`` from the open ``/metrics``);
   frames processed and detected per camera (same workload?); pictures and bytes the page
   received per camera.  "CPU per watched camera" = (wall − nobody, paired per round, median)
   / cameras with pictures.  Then (``--no-api-baseline``, on by default) the same config in a
   plain ``argus run`` (no API, no store, no live board; ``/metrics`` on its own port) for
   ``--repeats`` windows: not interleaved with the others (another process), so only a rough
   check that the server with nobody watching costs about what the worker alone costs.

Output: a summary on stdout, the report as JSON (``--json``, default
``benchmarks/results/wall-cost-<date>.json``).  Everything started is stopped at the end, also
on failure.

Usage::

    .venv/bin/python -m benchmarks.wall_cost [--part latency|cpu|all] [--samples N]
        [--window S] [--repeats N] [--settle S] [--no-no-api-baseline] [--json OUT]

Absolute figures hold for this machine on this date: quote them with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
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

from alerts.live.preview import Overlay, render_preview
from argus import demo
from benchmarks.alert_latency import VTEST, ZONE
from benchmarks.page_latency import (
    ARGUS,
    KEY,
    OLGA,
    RESULTS,
    SAM,
    Person,
    Proc,
    _epoch,
    _home,
    _listen,
    _loadavg,
    add_people,
    camera_config,
    chromium,
    clock_check,
    code_version,
    machine,
    make_clip,
    progress,
    sign_in,
    stats_ms,
    wait_healthy,
)
from deploy.localstack import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CAMERA = "plaza"
"""The footage camera (``page_latency.camera_config``'s id)."""
FOOTAGE_S = 80.0
"""The whole of ``vtest.avi`` (795 frames at 10 fps)."""
QUIET_CAMERAS = 5
CONDITIONS = ("nobody", "wall", "board")
VIEW_HASH = {"wall": "#/wall", "board": "#/cameras"}
WAIT_MS = 60_000
"""Longest wait for a tile (the loop's lead-in, a gap between people) or its leaving."""
CLK_TCK = os.sysconf("SC_CLK_TCK")

WALL_JS = r"""
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const W = window.__wall = { opens: [], docs: [], inserts: [], removes: [], pics: [],
                              lastDoc: null, lastDocAt: null };
  const raf = window.requestAnimationFrame.bind(window);
  let inFrame = 0;  // inside a requestAnimationFrame callback
  // When the frame that shows a change has been rendered: a task queued from a frame
  // callback runs after that frame's style, layout and paint; a change made outside one
  // (the wall renders in its EventSource listener) waits for the next frame first.
  const afterPaint = (fn) => {
    if (inFrame > 0) setTimeout(fn, 0); else raf(() => setTimeout(fn, 0));
  };
  let present = new Map();  // camera -> its tile element in #wall-tiles
  const scan = () => {
    const grid = document.getElementById("wall-tiles");
    if (!grid) return;
    const t = now();
    const here = new Map();
    const marks = [];
    for (const el of grid.children) {
      const cam = el.getAttribute("data-camera");
      if (cam === null) continue;
      here.set(cam, el);
      if (present.get(cam) === el) continue;
      const doc = W.lastDoc;
      const tile = doc && doc.tiles ? doc.tiles.find((d) => d.camera_id === cam) : null;
      const img = el.querySelector("img");
      const rec = { camera: cam, t: t, paint: null, doc_at: W.lastDocAt,
                    picture_shown: Boolean(img && !img.hidden && img.getAttribute("src")),
                    kind: tile ? tile.kind : null,
                    event_id: tile && tile.alert ? tile.alert.event_id : null };
      W.inserts.push(rec);
      marks.push((tp) => { rec.paint = tp; });
    }
    for (const [cam, el] of present) if (here.get(cam) !== el) W.removes.push([cam, t]);
    present = here;
    if (marks.length) afterPaint(() => { const tp = now(); for (const m of marks) m(tp); });
  };
  const observer = new MutationObserver(scan);
  observer.observe(document, { childList: true, subtree: true });
  window.requestAnimationFrame = (cb) => raf((ts) => {
    inFrame += 1;
    try { cb(ts); } finally { observer.takeRecords(); scan(); inFrame -= 1; }
  });
  const ES = window.EventSource;
  window.EventSource = class extends ES {
    constructor(url, init) {
      super(url, init);
      if (!String(url).includes("/api/v1/live")) return;
      this.addEventListener("open", () => { W.opens.push(now()); });
      for (const kind of ["wall", "board"]) {
        this.addEventListener(kind, (ev) => {
          const t = now();
          let doc = null;
          try { doc = JSON.parse(ev.data); } catch (_) { /* the app reports it */ }
          W.lastDoc = doc;
          W.lastDocAt = t;
          const items = doc ? (doc.tiles || doc.cameras || []) : [];
          W.docs.push([t, kind, ev.data.length,
                       items.map((x) => [x.camera_id, x.alert ? x.alert.event_id : null])]);
        });
      }
      this.addEventListener("picture", (ev) => {
        const t = now();
        let p = null;
        try { p = JSON.parse(ev.data); } catch (_) { /* the app reports it */ }
        W.pics.push([t, p ? p.camera_id : null, ev.data.length, p ? p.taken_at : null]);
      });
    }
  };
})();
"""

TILE_JS = '(cam) => document.querySelector(`#wall-tiles button.tile[data-camera="${cam}"]`)'


# --------------------------------------------------------------------------- the page


def wall_page(browser: Browser) -> Page:
    """A page in a fresh context (1920x1080, a control-room monitor) with ``WALL_JS``
    (``page_latency.new_page`` installs the queue's observer instead)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    context.set_default_timeout(60_000)
    context.add_init_script(script=WALL_JS)
    return context.new_page()


def open_view(browser: Browser, url: str, view: str, who: Person = OLGA) -> Page:
    """``who`` signed in, on ``view`` (``wall`` or ``board``), its live stream open."""
    page = wall_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "/")
        if errors:  # e.g. a module that does not parse: the page never offers its sign-in
            raise SystemExit(f"the operators' page failed to start: {errors}")
        sign_in(page, url, who)
        page.wait_for_function(
            "(name) => document.getElementById('who-name')?.textContent === name", arg=who.name
        )
        page.evaluate("(h) => { location.hash = h; }", VIEW_HASH[view])
        page.wait_for_function("() => window.__wall.opens.length > 0 && window.__wall.lastDoc")
    except BaseException:
        page.context.close()
        raise
    return page


def wall_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("() => window.__wall")
    return state


# --------------------------------------------------------------------------- part 1


class Supervisor:
    """SAM signed in through the API (session cookie and CSRF token)."""

    def __init__(self, url: str, who: Person = SAM) -> None:
        self.client = httpx.Client(base_url=url, timeout=10.0)
        r = self.client.post(
            "/api/v1/auth/login", json={"username": who.name, "password": who.password}
        )
        r.raise_for_status()
        self.client.headers["X-CSRF-Token"] = r.json()["csrf_token"]

    def open_alerts(self, camera: str) -> list[dict[str, Any]]:
        r = self.client.get(
            "/api/v1/alerts",
            params=[
                ("camera_id", camera),
                ("state", "new"),
                ("state", "claimed"),
                ("state", "escalated"),
                ("limit", "500"),
            ],
        )
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def close(self, event_id: str) -> bool:
        """Close one alert (``no_action``); False when it was closed meanwhile (409)."""
        r = self.client.post(f"/api/v1/alerts/{event_id}/close", json={"disposition": "no_action"})
        if r.status_code == 409:
            return False
        r.raise_for_status()
        return True

    def alert(self, event_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/alerts/{event_id}")
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out


def clear_wall(page: Page, sam: Supervisor, camera: str) -> tuple[int, float]:
    """Close the camera's open alerts until its tile has left the page (new alerts may come
    meanwhile: they are closed too); ``(alerts closed, seconds)``."""
    t0 = time.monotonic()
    closed = 0
    while True:
        for a in sam.open_alerts(camera):
            closed += sam.close(a["event_id"])
        with contextlib.suppress(Exception):
            page.wait_for_function(f"(c) => !({TILE_JS})(c)", arg=camera, timeout=2_000)
            return closed, time.monotonic() - t0
        if time.monotonic() - t0 > WAIT_MS / 1000:
            raise SystemExit(f"the {camera} tile did not leave the wall in {WAIT_MS / 1000:g} s")


def run_latency(browser: Browser, samples: int, lead_in_s: float, workdir: Path) -> dict[str, Any]:
    """Part 1: event frame → tile on the wall, ``samples`` times."""
    t_part = time.monotonic()
    home = _home(workdir)
    clip = make_clip(VTEST, FOOTAGE_S, lead_in_s, workdir / "clip.avi")
    progress(t_part, f"clip written ({clip['clip_s']:g} s, looped)")
    store = workdir / "alerts.db"
    cfg = camera_config(workdir / "clip.avi")
    cfg["cameras"][0]["loop"] = True
    cfg["storage"] = {"sqlite": str(store), "evidence_dir": str(workdir / "evidence")}
    cfg_path = workdir / "argus.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    add_people(store, [OLGA, SAM])
    env = dict(os.environ, ARGUS_HOME=str(home), ARGUS_API_KEY=KEY, PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    clears: list[float] = []
    closed_total = 0
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
        page = open_view(browser, url, "wall")
        stack.callback(page.context.close)
        clock = clock_check(page)
        sam = Supervisor(url)
        stack.callback(sam.client.close)
        progress(t_part, "OLGA on the wall")
        while len(rows) < samples:
            if not worker.alive():
                raise SystemExit(f"argus run --serve exited:\n{worker.log_tail()}")
            closed, took = clear_wall(page, sam, CAMERA)
            closed_total += closed
            clears.append(took * 1000)
            # the tile's next insertion: the first after it last left the page
            gone = max((t for c, t in wall_state(page)["removes"] if c == CAMERA), default=0.0)
            ins = page.wait_for_function(
                """([cam, gone]) => window.__wall.inserts.find((r) => r.camera === cam
                     && r.t > gone && r.paint !== null) || null""",
                arg=[CAMERA, gone],
                polling=50,
                timeout=WAIT_MS,
            ).json_value()
            if ins["event_id"] is None:  # on the wall for watched activity, not an alert
                skipped.append(ins)
                continue
            a = sam.alert(ins["event_id"])
            wall, stored = _epoch(a["wall_time"]), _epoch(a["received_at"])
            doc_at = ins["doc_at"]
            with contextlib.suppress(Exception):  # a live picture taken after the event's frame
                page.wait_for_function(
                    """([cam, since]) => window.__wall.pics.some((p) => p[1] === cam
                         && p[3] !== null && p[3] * 1000 >= since)""",
                    arg=[CAMERA, wall * 1000],
                    polling=50,
                    timeout=10_000,
                )
            every = [q for q in wall_state(page)["pics"] if q[1] == CAMERA]
            pics = [q for q in every if q[0] >= doc_at]
            first = pics[0] if pics else None
            # the page keeps each camera's last picture: a tile that comes back opens with it
            before = [q for q in every if q[0] < doc_at]
            kept = before[-1] if before else None
            fresh = next((q for q in pics if q[3] is not None and q[3] >= wall), None)
            rows.append(
                {
                    "event_id": ins["event_id"],
                    "wall_time": round(wall, 3),
                    "frame_to_painted_ms": round(ins["paint"] - wall * 1000, 1),
                    "frame_to_tile_ms": round(ins["t"] - wall * 1000, 1),
                    "frame_to_stored_ms": round((stored - wall) * 1000, 1),
                    "stored_to_event_ms": round(doc_at - stored * 1000, 1),
                    "event_to_tile_ms": round(ins["t"] - doc_at, 1),
                    "tile_to_painted_ms": round(ins["paint"] - ins["t"], 1),
                    "opened_with_picture": ins["picture_shown"],
                    "opening_picture_age_ms": _diff(ins["t"], kept and kept[3] * 1000),
                    "tile_to_first_picture_ms": _diff(first and first[0], ins["t"]),
                    "first_picture_age_ms": _diff(first and first[0], first and first[3] * 1000),
                    "frame_to_fresh_picture_ms": _diff(fresh and fresh[0], wall * 1000),
                }
            )
            last = rows[-1]
            progress(
                t_part,
                f"sample {len(rows)}/{samples}: frame -> tile on screen "
                f"{last['frame_to_painted_ms']:.0f} ms (stored {last['frame_to_stored_ms']:.0f},"
                f" event +{last['stored_to_event_ms']:.0f}, tile +{last['event_to_tile_ms']:.0f},"
                f" painted +{last['tile_to_painted_ms']:.0f})",
            )
        state = wall_state(page)
        pictures = _pictures_by_camera(state["pics"])

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in rows if r[key] is not None]

    return {
        "topology": "argus run --serve: camera -> detector -> rules -> in-process bus -> SQLite "
        "store -> change feed -> /api/v1/live?view=wall (composed on a change, at most every "
        "0.25 s) -> page",
        "clip": clip,
        "clock_check": clock,
        "samples_measured": len(rows),
        "inserted_without_alert": len(skipped),
        "alerts_closed": closed_total,
        "close_until_tile_left": stats_ms(clears),
        "frame_to_painted": stats_ms(col("frame_to_painted_ms")),
        "frame_to_tile": stats_ms(col("frame_to_tile_ms")),
        "frame_to_stored": stats_ms(col("frame_to_stored_ms")),
        "stored_to_event": stats_ms(col("stored_to_event_ms")),
        "event_to_tile": stats_ms(col("event_to_tile_ms")),
        "tile_to_painted": stats_ms(col("tile_to_painted_ms")),
        "opened_with_picture": sum(bool(r["opened_with_picture"]) for r in rows),
        "opening_picture_age": stats_ms(col("opening_picture_age_ms")),
        "tile_to_first_picture": stats_ms(col("tile_to_first_picture_ms")),
        "first_picture_age": stats_ms(col("first_picture_age_ms")),
        "frame_to_fresh_picture": stats_ms(col("frame_to_fresh_picture_ms")),
        "wall_documents": len(state["docs"]),
        "pictures_received": pictures,
        "pictures_while_off_wall": pictures_off_wall(state, CAMERA),
        "worker_behind_real_time_warnings": _count_lines(worker.log, "behind real time"),
        "samples": rows,
        "wall_s": round(time.monotonic() - t_part, 1),
    }


def _diff(a: float | None, b: float | None) -> float | None:
    """``a - b`` rounded to 0.1 (ms), None when either is missing."""
    return None if a is None or b is None else round(a - b, 1)


def pictures_off_wall(state: Mapping[str, Any], camera: str) -> int:
    """Pictures of ``camera`` that arrived while it had no tile on the page (between a
    tile's leaving and the next insertion): the stream should send none."""
    marks = sorted(
        [(float(r["t"]), True) for r in state["inserts"] if r["camera"] == camera]
        + [(float(t), False) for c, t in state["removes"] if c == camera]
    )
    off: list[tuple[float, float]] = []
    since: float | None = None
    for t, inserted in marks:
        if not inserted:
            since = t
        elif since is not None:
            off.append((since, t))
            since = None
    if since is not None:
        off.append((since, float("inf")))
    return sum(1 for q in state["pics"] if q[1] == camera and any(a < q[0] < b for a, b in off))


def _pictures_by_camera(pics: Sequence[Sequence[Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for _t, cam, size, _taken in pics:
        d = out.setdefault(str(cam), {"n": 0, "bytes": 0})
        d["n"] += 1
        d["bytes"] += size
    return out


def _count_lines(log: Path, needle: str) -> int:
    with contextlib.suppress(OSError):
        return sum(needle in line for line in log.read_text(errors="replace").splitlines())
    return 0


# --------------------------------------------------------------------------- CPU


def _proc_stats() -> list[tuple[int, int, int, float]]:
    """``(pid, ppid, pgrp, cpu seconds)`` of every process (user + system, all threads)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        ppid, pgrp = int(fields[1]), int(fields[2])
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out.append((int(entry.name), ppid, pgrp, cpu))
    return out


def _machine_busy() -> tuple[float, float]:
    """``(busy, total)`` jiffies of all cores since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    total = sum(parts[:8])
    idle = parts[3] + parts[4]
    return total - idle, total


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: the server's process group, this process's other descendants
    (the browser: Chromium and Playwright's driver), the machine's busy and total jiffies."""

    t: float
    server_s: float
    browser_s: float
    busy: float
    total: float


def cpu_snapshot(server_pgid: int) -> CpuSnapshot:
    t = time.time()
    procs = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, ppid, _g, _c in procs:
        children.setdefault(ppid, []).append(pid)
    mine: set[int] = set()
    todo = [os.getpid()]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in mine:
                mine.add(c)
                todo.append(c)
    server = sum(c for _p, _pp, g, c in procs if g == server_pgid)
    browser = sum(c for p, _pp, g, c in procs if p in mine and g != server_pgid)
    busy, total = _machine_busy()
    return CpuSnapshot(t, server, browser, busy, total)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> ``{"name{labels}": value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[key] = float(value)
    return out


def metric_by_camera(m: Mapping[str, float], name: str) -> dict[str, float]:
    """``name{camera="X"}`` -> ``{X: value}``."""
    out: dict[str, float] = {}
    prefix = name + '{camera="'
    for key, value in m.items():
        if key.startswith(prefix):
            out[key[len(prefix) : key.index('"', len(prefix))]] = value
    return out


def read_metrics(url: str) -> dict[str, float]:
    r = httpx.get(url + "/metrics", timeout=5.0)
    r.raise_for_status()
    return parse_metrics(r.text)


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 6) for k, v in sorted(after.items())}


def measure_window(
    url: str, server_pgid: int, window_s: float, page: Page | None
) -> dict[str, Any]:
    """One window of ``window_s`` seconds: CPU, metrics and what the page received."""
    m0 = read_metrics(url)
    c0 = cpu_snapshot(server_pgid)
    time.sleep(window_s)
    c1 = cpu_snapshot(server_pgid)
    m1 = read_metrics(url)
    wall = c1.t - c0.t
    jiffies = c1.total - c0.total
    made = _delta(
        metric_by_camera(m1, "argus_live_previews_total"),
        metric_by_camera(m0, "argus_live_previews_total"),
    )
    n_made = sum(made.values())
    render_s = m1.get("argus_live_preview_seconds_sum", 0.0) - m0.get(
        "argus_live_preview_seconds_sum", 0.0
    )
    out: dict[str, Any] = {
        "start": round(c0.t, 3),
        "seconds": round(wall, 2),
        "server_cpu_pct": round(100 * (c1.server_s - c0.server_s) / wall, 2),
        "browser_cpu_pct": round(100 * (c1.browser_s - c0.browser_s) / wall, 2),
        "machine_busy_pct_of_all_cores": round(100 * (c1.busy - c0.busy) / jiffies, 1)
        if jiffies
        else None,
        "pictures_made": {k: v for k, v in made.items() if v},
        "render_mean_ms": round(1000 * render_s / n_made, 2) if n_made else None,
        "render_time_pct": round(100 * render_s / wall, 3),
        "frames_processed": _delta(
            metric_by_camera(m1, "argus_frames_processed_total"),
            metric_by_camera(m0, "argus_frames_processed_total"),
        ),
        "frames_detected": _delta(
            metric_by_camera(m1, "argus_frames_detected_total"),
            metric_by_camera(m0, "argus_frames_detected_total"),
        ),
        "loadavg_end": _loadavg(),
    }
    if page is not None:
        s = wall_state(page)
        t0, t1 = c0.t * 1000, c1.t * 1000
        pics = [p for p in s["pics"] if t0 <= p[0] <= t1]
        docs = [d for d in s["docs"] if t0 <= d[0] <= t1]
        # the cameras on the view during the window: the last document before its end
        shown = [d for d in s["docs"] if d[0] <= t1]
        on_view = sorted({cam for cam, _ in shown[-1][3]}) if shown else []
        by_cam = _pictures_by_camera(pics)
        total = sum(p[2] for p in pics)
        out["page"] = {
            "cameras_on_view": on_view,
            "cameras_with_pictures": sorted(by_cam),
            "pictures_from_cameras_not_on_view": sorted(set(by_cam) - set(on_view)),
            "pictures_per_s": round(len(pics) / wall, 3),
            "picture_kb_per_s": round(total / 1024 / wall, 2),
            "picture_kb_mean": round(total / 1024 / len(pics), 1) if pics else None,
            "documents": len(docs),
            "document_kb_per_s": round(sum(d[2] for d in docs) / 1024 / wall, 3),
            "by_camera": by_cam,
        }
    return out


def render_alone(repeats: int = 30) -> dict[str, Any]:
    """``render_preview`` timed in this process, no server running (one footage frame with
    three people blurred and the zone drawn): the price of a picture without contention."""
    cap = cv2.VideoCapture(str(VTEST))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, img = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read {VTEST}")
    frame = np.ascontiguousarray(img, dtype=np.uint8)
    people = np.array([[100, 200, 160, 360], [400, 150, 450, 290], [600, 300, 680, 500]], float)
    overlay = Overlay(
        boxes=people,
        labels=["person 1", "person 2", "person 3"],
        people=people,
        zones=[np.array(ZONE, dtype=float)],
    )
    out: dict[str, Any] = {}
    for width in (640, 240):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jpeg, _w, _h = render_preview(frame, overlay, width)
            times.append((time.perf_counter() - t0) * 1000)
        out[f"{width}px"] = {
            "median_ms": round(statistics.median(times), 2),
            "kb": len(jpeg) // 1024,
        }
    return out


def _quiet_cameras(home: Path) -> list[demo.DemoCamera]:
    """``QUIET_CAMERAS`` quiet cameras on the demo's two twin videos (in turn), their rules,
    all of group ``default`` (OLGA's)."""
    _, median = demo.read_footage(VTEST)
    twins = demo.make_twins(VTEST, home, median=median, say=lambda _s: None)
    return [
        dataclasses.replace(twins[i % len(twins)], id=f"quiet-{i + 1}", groups=("default",))
        for i in range(QUIET_CAMERAS)
    ]


def cpu_config(clip: Path, quiet: Sequence[demo.DemoCamera], workdir: Path) -> dict[str, Any]:
    base = camera_config(clip)
    plaza = base["cameras"][0] | {"loop": True, "groups": ["default"]}
    return {
        "cameras": [plaza, *(c.camera_config() for c in quiet)],
        "rules": [*base["rules"], *(r for c in quiet for r in c.rule_configs())],
        "storage": {"sqlite": str(workdir / "alerts.db"), "evidence_dir": str(workdir / "ev")},
        "evidence": {"clips": {"enabled": False}},
        "log": {"level": "WARNING"},
    }


def _ready(url: str, cameras: int) -> bool:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        cams = httpx.get(url + "/readyz", timeout=2).json().get("cameras", {})
        states = [c.get("state") for c in cams.values()]
        return len(states) == cameras and all(s == "streaming" for s in states)
    return False


def _wait(cond: Callable[[], bool], timeout_s: float, what: str, proc: Proc) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise SystemExit(f"waited {timeout_s:g} s for {what}:\n{proc.log_tail()}")
        time.sleep(0.5)


def _schedule(repeats: int) -> list[list[str]]:
    """The conditions' order in each round: rotated, so none is always first or last."""
    n = len(CONDITIONS)
    return [[CONDITIONS[(r + i) % n] for i in range(n)] for r in range(repeats)]


def run_cpu(
    browser: Browser,
    window_s: float,
    repeats: int,
    settle_s: float,
    no_api: bool,
    workdir: Path,
) -> dict[str, Any]:
    """Part 2: what the wall and the board cost the server, against nobody watching."""
    t_part = time.monotonic()
    home = _home(workdir)
    clip = make_clip(VTEST, window_s, 0.0, workdir / "plaza.avi")
    quiet = _quiet_cameras(home)
    alone = render_alone()
    progress(t_part, f"plaza clip ({clip['clip_s']:g} s) and {len(quiet)} quiet cameras written")
    cfg = cpu_config(workdir / "plaza.avi", quiet, workdir)
    cameras = len(cfg["cameras"])
    cfg_path = workdir / "argus.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    add_people(workdir / "alerts.db", [OLGA])
    env = dict(os.environ, ARGUS_HOME=str(home), ARGUS_API_KEY=KEY, PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    windows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        worker = Proc(
            "argus run --serve",
            [*ARGUS, "run", "--serve", *_listen(port), str(cfg_path)],
            env,
            workdir / "worker.log",
        )
        stack.callback(worker.stop)
        wait_healthy(url, worker)
        _wait(lambda: _ready(url, cameras), 90, "every camera streaming", worker)
        has_alert = 'argus_events_total{camera="plaza"'
        _wait(
            lambda: any(k.startswith(has_alert) for k in read_metrics(url)),
            90,
            "the plaza's first alert",
            worker,
        )
        time.sleep(settle_s)
        progress(t_part, f"argus run --serve: {cameras} cameras streaming, the plaza alerting")
        for r, order in enumerate(_schedule(repeats)):
            for cond in order:
                page = None if cond == "nobody" else open_view(browser, url, cond)
                try:
                    if page is not None:  # its first pictures have come
                        page.wait_for_function("() => window.__wall.pics.length > 0")
                    time.sleep(settle_s)
                    w = measure_window(url, worker.popen.pid, window_s, page)
                finally:
                    if page is not None:
                        page.context.close()
                w |= {"condition": cond, "round": r + 1}
                windows.append(w)
                pics = w.get("page", {}).get("pictures_per_s", 0)
                progress(
                    t_part,
                    f"round {r + 1} {cond:<6}: server {w['server_cpu_pct']:5.1f} % of a core, "
                    f"browser {w['browser_cpu_pct']:5.1f} %, {pics} pictures/s, made "
                    f"{w['pictures_made']}",
                )
                time.sleep(settle_s)  # the stream's cameras released
        final_metrics = read_metrics(url)
    baseline: list[dict[str, Any]] = []
    if no_api:
        baseline = run_no_api(cfg, window_s, repeats, settle_s, home, workdir, t_part)
    return {
        "cameras": [c["id"] for c in cfg["cameras"]],
        "clip": clip,
        "config": "plaza: intrusion (0.5 s dwell, one alert per person), looped clip of "
        "--window s; quiet-1..5: argus.demo twins (intrusion, 2 loitering, camera health); "
        "evidence clips off",
        "render_alone": alone,
        "windows": windows,
        "no_api_windows": baseline,
        "preview_seconds_total": {
            "count": final_metrics.get("argus_live_preview_seconds_count"),
            "sum": final_metrics.get("argus_live_preview_seconds_sum"),
        },
        "summary": cpu_summary(windows, baseline),
        "wall_s": round(time.monotonic() - t_part, 1),
    }


def run_no_api(
    cfg: Mapping[str, Any],
    window_s: float,
    repeats: int,
    settle_s: float,
    home: Path,
    workdir: Path,
    t_part: float,
) -> list[dict[str, Any]]:
    """The same cameras and rules in a plain ``argus run`` (no API, no store, no live board)."""
    mport = free_port()
    bare = dict(cfg) | {"metrics": {"port": mport}}
    path = workdir / "argus-no-api.yaml"
    path.write_text(yaml.safe_dump(bare, sort_keys=False))
    env = dict(os.environ, ARGUS_HOME=str(home), PYTHONUNBUFFERED="1")
    url = f"http://127.0.0.1:{mport}"
    out = []
    with contextlib.ExitStack() as stack:
        worker = Proc("argus run", [*ARGUS, "run", str(path)], env, workdir / "no-api.log")
        stack.callback(worker.stop)

        def flowing() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                m = metric_by_camera(read_metrics(url), "argus_frames_processed_total")
                return len(m) == len(cfg["cameras"]) and all(v > 0 for v in m.values())
            return False

        _wait(flowing, 120, "frames of every camera (no API)", worker)
        time.sleep(max(settle_s, 5.0))
        progress(t_part, "argus run (no API) running")
        for r in range(repeats):
            w = measure_window(url, worker.popen.pid, window_s, None)
            w |= {"condition": "no_api", "round": r + 1}
            out.append(w)
            progress(t_part, f"no API {r + 1}: server {w['server_cpu_pct']:5.1f} % of a core")
    return out


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def cpu_summary(
    windows: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per condition the median of its windows; the wall's and the board's extra CPU (paired
    per round against that round's ``nobody``) per camera with pictures."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for w in windows:
        by.setdefault(str(w["condition"]), []).append(w)
    out: dict[str, Any] = {}
    for cond, ws in by.items():
        pages = [w["page"] for w in ws if "page" in w]
        made = [sum(w["pictures_made"].values()) / w["seconds"] for w in ws]
        out[cond] = {
            "server_cpu_pct": [w["server_cpu_pct"] for w in ws],
            "server_cpu_pct_median": _median([w["server_cpu_pct"] for w in ws]),
            "browser_cpu_pct_median": _median([w["browser_cpu_pct"] for w in ws]),
            "pictures_made_per_s_median": _median(made),
            "render_mean_ms": _median([w["render_mean_ms"] for w in ws if w["render_mean_ms"]]),
            "render_time_pct_median": _median([w["render_time_pct"] for w in ws]),
            "frames_detected_per_s_median": _median(
                [sum(w["frames_detected"].values()) / w["seconds"] for w in ws]
            ),
        }
        if pages:
            out[cond] |= {
                "cameras_with_pictures": max(len(p["cameras_with_pictures"]) for p in pages),
                "cameras_on_view": max(len(p["cameras_on_view"]) for p in pages),
                "pictures_per_s_median": _median([p["pictures_per_s"] for p in pages]),
                "picture_kb_per_s_median": _median([p["picture_kb_per_s"] for p in pages]),
                "picture_kb_mean": _median(
                    [p["picture_kb_mean"] for p in pages if p["picture_kb_mean"] is not None]
                ),
                "pictures_from_cameras_not_on_view": sorted(
                    {c for p in pages for c in p["pictures_from_cameras_not_on_view"]}
                ),
            }
    nobody = {w["round"]: w["server_cpu_pct"] for w in by.get("nobody", [])}
    for cond in ("wall", "board"):
        if cond not in out:
            continue
        diffs = [w["server_cpu_pct"] - nobody[w["round"]] for w in by[cond] if w["round"] in nobody]
        cams = out[cond].get("cameras_with_pictures") or 0
        med = _median(diffs)
        each = round(med / cams, 2) if med is not None and cams else None
        out[cond] |= {
            "minus_nobody_pct_per_round": [round(d, 2) for d in diffs],
            "minus_nobody_pct_median": med,
            "per_camera_with_pictures_pct": each,
        }
    if baseline:
        out["no_api"] = {
            "server_cpu_pct": [w["server_cpu_pct"] for w in baseline],
            "server_cpu_pct_median": _median([w["server_cpu_pct"] for w in baseline]),
            "frames_detected_per_s_median": _median(
                [sum(w["frames_detected"].values()) / w["seconds"] for w in baseline]
            ),
            "note": "a separate process after the others: not interleaved",
        }
    return out


# --------------------------------------------------------------------------- report


def _fmt(s: Mapping[str, Any]) -> str:
    if not s.get("n"):
        return "n=0"
    return f"p50 {s['p50_ms']:.0f}  p95 {s['p95_ms']:.0f}  max {s['max_ms']:.0f} ms  (n={s['n']})"


def summary(report: Mapping[str, Any]) -> str:
    """The report as a few lines of text."""
    lines = [
        f"Operators' wall — {report['date']} — {report['machine']['description']}, "
        f"load average {report['machine']['loadavg_start']}",
        f"Chromium {report['browser']}",
    ]
    lat = report["parts"].get("latency")
    if lat is not None:
        lines += [
            f"\n[latency] {lat['samples_measured']} tiles put on the wall by a new alert "
            f"({lat['alerts_closed']} alerts closed by SAM meanwhile)",
            f"  frame -> tile on screen   {_fmt(lat['frame_to_painted'])}",
            f"    frame -> stored         {_fmt(lat['frame_to_stored'])}",
            f"    stored -> wall event    {_fmt(lat['stored_to_event'])}",
            f"    event -> tile in DOM    {_fmt(lat['event_to_tile'])}",
            f"    tile -> rendered        {_fmt(lat['tile_to_painted'])}",
            f"  tiles that opened showing a picture kept from before: "
            f"{lat['opened_with_picture']}; its age {_fmt(lat['opening_picture_age'])}",
            f"  tile -> first picture     {_fmt(lat['tile_to_first_picture'])}",
            f"    its age (arrival - taken_at) {_fmt(lat['first_picture_age'])}",
            f"  frame -> a picture taken after it {_fmt(lat['frame_to_fresh_picture'])}",
            f"  pictures received while the camera had no tile: {lat['pictures_while_off_wall']}",
            f"  close -> tile gone        {_fmt(lat['close_until_tile_left'])}",
        ]
    cpu = report["parts"].get("cpu")
    if cpu is not None:
        s = cpu["summary"]
        lines.append(
            f"\n[cpu] {len(cpu['cameras'])} cameras; server CPU, % of one core (median of rounds)"
        )
        for cond in (*CONDITIONS, "no_api"):
            c = s.get(cond)
            if c is None:
                continue
            line = f"  {cond:<7} {c['server_cpu_pct_median']:6.1f} %  {c['server_cpu_pct']}"
            if "minus_nobody_pct_median" in c:
                line += (
                    f"  - nobody: {c['minus_nobody_pct_median']} % "
                    f"({c.get('cameras_with_pictures')} cameras with pictures: "
                    f"{c['per_camera_with_pictures_pct']} % each); "
                    f"{c.get('pictures_per_s_median')} pictures/s, "
                    f"{c.get('picture_kb_per_s_median')} KB/s to the page, "
                    f"render {c.get('render_mean_ms')} ms each, "
                    f"browser {c.get('browser_cpu_pct_median')} %"
                )
            if cond == "no_api":
                line += "  (separate process, after)"
            lines.append(line)
        alone = cpu["render_alone"]
        lines.append(
            f"  one picture rendered alone (no server running): 640 px "
            f"{alone['640px']['median_ms']} ms, 240 px {alone['240px']['median_ms']} ms"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="argus-wall-") as tmp:
        yield Path(tmp)


def run(
    parts: Sequence[str],
    *,
    samples: int = 20,
    lead_in_s: float = 8.0,
    window_s: float = 20.0,
    repeats: int = 3,
    settle_s: float = 3.0,
    no_api: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run ``parts`` (``latency``, ``cpu``) and return the report."""
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "wall_cost",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "parameters": {
            "parts": list(parts),
            "samples": samples,
            "lead_in_s": lead_in_s,
            "window_s": window_s,
            "repeats": repeats,
            "settle_s": settle_s,
            "no_api_baseline": no_api,
            "footage": str(VTEST),
        },
        "method": (
            "Times are UNIX ms of one machine clock (Python's time.time(), the page's "
            "performance.timeOrigin + performance.now()). A tile 'appears' when a "
            "MutationObserver sees a new button.tile in #wall-tiles; 'painted' when the first "
            "task after the rendering of the frame showing it runs. CPU: utime + stime of "
            "every process of the server's process group (/proc/PID/stat, all threads) over "
            "the window, % of one core."
        ),
        "parts": {},
    }
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(_workdir(workdir))
        browser = stack.enter_context(chromium())
        report["browser"] = browser.version
        for part in parts:
            print(f"wall_cost: part {part}...", file=sys.stderr)
            d = root / part
            d.mkdir(parents=True, exist_ok=True)
            if part == "latency":
                report["parts"][part] = run_latency(browser, samples, lead_in_s, d)
            elif part == "cpu":
                report["parts"][part] = run_cpu(browser, window_s, repeats, settle_s, no_api, d)
            else:
                raise ValueError(f"unknown part {part!r}")
    report["machine"]["loadavg_end"] = _loadavg()
    report["wall_s"] = round(time.monotonic() - t0, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--part", choices=("latency", "cpu", "all"), default="all")
    p.add_argument("--samples", type=int, default=20, help="tiles measured (latency)")
    p.add_argument("--lead-in", type=float, default=8.0, help="seconds of empty plaza (latency)")
    p.add_argument("--window", type=float, default=20.0, help="seconds per CPU window")
    p.add_argument("--repeats", type=int, default=3, help="rounds of the CPU conditions")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before/after a window")
    p.add_argument(
        "--no-api-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure a plain `argus run` (no API) after the CPU rounds",
    )
    p.add_argument("--workdir", type=Path, help="keep the run's files here (default: a temp dir)")
    p.add_argument("--json", type=Path, help="default: benchmarks/results/wall-cost-DATE.json")
    args = p.parse_args(argv)
    parts = ["latency", "cpu"] if args.part == "all" else [args.part]
    report = run(
        parts,
        samples=args.samples,
        lead_in_s=args.lead_in,
        window_s=args.window,
        repeats=args.repeats,
        settle_s=args.settle,
        no_api=args.no_api_baseline,
        workdir=args.workdir,
    )
    out = args.json or RESULTS / f"wall-cost-{report['date'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"\nreport: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
