"""Issue 15: an alert's masked clip plays in Chromium, on the alert's page of the web app.

Headless Chromium (Debian's) is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no extra package).  The API serves one alert whose clip was
made by ``ClipMaker`` from a small H.264 video (a red "person" walking, found by a stand-in
detector) into the served evidence folder.  In the browser, as an operator would: open the
alert's page, sign in (a session cookie), and the clip in its video player plays: it loads,
has a picture, its time advances, the request carried the session cookie, and the frame
shown has the person blurred.

Screenshot: ``$ARGUS_SCREENSHOTS/clip-playing.png`` when that is set, and always
``/tmp/clip-shots/clip-playing.png`` (for a person to look at).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import Request, Response

from alerts.clips import ClipJob, ClipMaker
from alerts.evidence import LocalEvidenceStore, clip_key, masked_key
from alerts.masking import sharpness
from alerts.store import SqliteAlertStore
from ingest.packets import PacketRing
from tests.factories import make_event
from tests.unit.test_clips import FPS, W, person_box, picture, play, red_person, write_video
from tests.unit.test_ui_page import CHROMIUM, HEADLESS, PASSWORD, USER, _app, _Server

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/clip-shots")
SEEK_S = 1.05
"""A time in the middle of the masked clip's 11th frame (10 fps: frame 10 covers 1.0-1.1)."""


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        self.proc = subprocess.Popen(
            # the shell hands our pipes over as fds 3 (commands) and 4 (answers)
            [
                "/bin/sh",
                "-c",
                'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null',
                CHROMIUM,
                *HEADLESS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "--window-size=800,600",
                "about:blank",
            ],
            stdin=to_browser,
            stdout=from_browser,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buf = b""
        self._id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one command (to the page once attached) and wait for its answer."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self._session
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    assert "error" not in answer, f"{method}: {answer['error']}"
                    result: dict[str, Any] = answer["result"]
                    return result
            left = deadline - time.monotonic()
            assert left > 0, f"{method}: no answer in {timeout_s:.0f} s"
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                assert chunk, "the browser went away"
                self._buf += chunk

    def run(self, script: str, timeout_s: float = 30.0) -> Any:
        """Evaluate ``script`` in the page (a promise is awaited); its value."""
        got = self.call(
            "Runtime.evaluate",
            timeout_s=timeout_s,
            expression=script,
            awaitPromise=True,
            returnByValue=True,
        )
        assert "exceptionDetails" not in got, got["exceptionDetails"]
        return got["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait until the document at ``url`` has loaded."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.run("[location.href, document.readyState]") == [url, "complete"]:
                    return
            except AssertionError:  # the old document went away mid-question
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} did not load in 20 s")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.call("Browser.close", timeout_s=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._write)
        os.close(self._read)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium: make browser-deps)")
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


SIGN_IN_AND_FIND_THE_CLIP = """
new Promise((resolve, reject) => {
  const t0 = Date.now();
  let signed = false;
  const poll = setInterval(() => {
    const form = document.getElementById("sign-in");
    if (!signed && form && !form.hidden) {
      signed = true;
      document.getElementById("username").value = %(user)s;
      document.getElementById("password").value = %(password)s;
      form.requestSubmit();
    }
    const video = document.querySelector("#clip-figure video");
    if (video) { clearInterval(poll); resolve([video.src, video.controls]); }
    if (Date.now() - t0 > 20000) {
      clearInterval(poll);
      reject(new Error("no clip in 20 s: " + document.body.innerText.slice(0, 500)));
    }
  }, 50);
})
"""

PLAY = """
(async () => {
  const v = document.querySelector("video");
  if (!v) throw new Error("no video: " + document.documentElement.outerHTML.slice(0, 300));
  const event = (name) => new Promise((ok, no) => {
    v.addEventListener(name, ok, {once: true});
    v.addEventListener("error", () => no(new Error(
      "media error " + (v.error && v.error.code) + ": " + (v.error && v.error.message))),
      {once: true});
    setTimeout(() => no(new Error("no " + name + " in 15 s")), 15000);
  });
  if (v.readyState < 2) await event("loadeddata");
  v.pause();
  v.muted = true;
  if (v.currentTime !== 0) { const s = event("seeked"); v.currentTime = 0; await s; }
  const t0 = v.currentTime, wall0 = performance.now();
  await v.play();
  await new Promise((ok) => setTimeout(ok, 1500));
  const t1 = v.currentTime, wall = (performance.now() - wall0) / 1000;
  return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, t0, t1, wall,
          paused: v.paused, error: v.error && v.error.code};
})()
"""

FRAME_AT = """
(async () => {
  const v = document.querySelector("video");
  v.pause();
  const s = new Promise((ok) => v.addEventListener("seeked", ok, {once: true}));
  v.currentTime = %(t)s;
  await s;
  await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  return c.toDataURL("image/png");
})()
"""


def _make_clip(evidence: LocalEvidenceStore, tmp_path: Path, event_id: str, key: str) -> float:
    """The alert's clip (original, masked copy, description); the masked clip's start, s."""
    video = tmp_path / "walk.mp4"
    write_video(video, 60)  # 6 s of H.264 (B-frames, a keyframe a second), 320x240
    ring = PacketRing("cam-1", keep_s=16, max_bytes=64 << 20)
    (packets,) = play(video, ring, [(58, 1.5, 5.5)])
    maker = ClipMaker(evidence, detector=lambda: red_person, person_ids=[0])
    info = maker.make(ClipJob("cam-1", event_id, key, packets))
    assert info is not None and info.complete and info.frames == 40 and info.remuxed
    return info.start_s


def test_the_masked_clip_plays_in_chromium_on_the_alerts_page(
    browser: Browser, tmp_path: Path
) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:
        event = make_event(1)  # camera cam-1: kim's group
        key = clip_key(event.camera_id, event.wall_time, event.event_id)
        app = _app(store, tmp_path)  # serves tmp_path / "evidence"
        evidence = LocalEvidenceStore(tmp_path / "evidence")
        start_s = _make_clip(evidence, tmp_path, event.event_id, key)
        store.upsert(event.to_record() | {"clip": key})
        asked: list[tuple[int, bool, bool]] = []  # (status, cookie, key) of each clip GET

        @app.middleware("http")
        async def note_clip_requests(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            if request.url.path.endswith("/clip"):
                key = "x-api-key" in request.headers or "authorization" in request.headers
                asked.append((response.status_code, "cookie" in request.headers, key))
            return response

        with _Server(app) as server:
            base = f"http://127.0.0.1:{server.port}"
            browser.open(f"{base}/#/alert/{event.event_id}")  # the alert's page
            creds = {"user": json.dumps(USER), "password": json.dumps(PASSWORD)}
            src, controls = browser.run(SIGN_IN_AND_FIND_THE_CLIP % creds)
            assert src == f"{base}/api/v1/alerts/{event.event_id}/clip" and controls
            played = browser.run(PLAY)  # in the page, with the session's cookie
            shot = browser.screenshot()
            frame_url = browser.run(FRAME_AT % {"t": SEEK_S})
        folders = [SHOTS] + [Path(d) for d in [os.environ.get("ARGUS_SCREENSHOTS")] if d]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "clip-playing.png").write_bytes(shot)

        # it plays: a picture of the clip's size, 4 s long, its time advancing with the clock
        assert played["error"] is None and not played["paused"], played
        assert (played["width"], played["height"]) == (W, 240), played
        assert played["duration"] == pytest.approx(4.0, abs=0.15), played
        advanced = played["t1"] - played["t0"]
        assert 0.5 * played["wall"] < advanced <= played["wall"] + 0.2, played
        # the browser fetched it with the operator's session cookie (no key), and got it
        assert asked and all(a in ((200, True, False), (206, True, False)) for a in asked), asked
        # the frame shown is the masked copy's: the scene, the person blurred
        assert cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR) is not None
        png = base64.b64decode(frame_url.split(",", 1)[1])
        shown = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert shown is not None and shown.shape == (240, W, 3)
        i = round(start_s * FPS) + int(SEEK_S * FPS)  # the source frame at SEEK_S
        x1, y1, x2, y2 = person_box(i)
        source = picture(i, np.random.default_rng(0))
        inside = (slice(y1, y2), slice(x1, x2))
        gray = np.asarray(cv2.cvtColor(shown, cv2.COLOR_BGR2GRAY), np.uint8)
        gray0 = np.asarray(cv2.cvtColor(source, cv2.COLOR_BGR2GRAY), np.uint8)
        b, g, r = shown[inside].reshape(-1, 3).mean(axis=0)  # the person is there, red ...
        assert r > g + 40 and r > b + 40, (b, g, r)
        assert sharpness(gray[inside]) < 0.2 * sharpness(gray0[inside])  # ... and blurred
        outside = np.ones((240, W), bool)
        outside[max(y1 - 20, 0) : y2 + 20, max(x1 - 20, 0) : x2 + 20] = False
        diff = np.abs(shown.astype(int) - source.astype(int))[outside]
        assert diff.mean() < 8.0, f"not the scene at {SEEK_S} s: differs by {diff.mean():.1f}"
        assert evidence.exists(masked_key(key))
    finally:
        store.close()
