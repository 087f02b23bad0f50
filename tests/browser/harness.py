"""The browser tests' harness: a real ``argus serve`` process, its people, alerts and
evidence, and screenshots.

``ArgusServer`` runs the alerts API as its own process (``python -m argus serve --config
CFG --host 127.0.0.1 --port P``), exactly as an installation serves operators, over a
SQLite store file and an evidence folder in a directory of the test's own:

* ``root/alerts.db`` — the store (``storage.sqlite``); the people in ``PEOPLE`` are in it
  before the first start (cheap Argon2 hashes: the server verifies a hash with the
  parameters written in it, so signing in is quick);
* ``root/evidence/`` — snapshots (``storage.evidence_dir``);
* ``root/argus.yaml`` — the config: the cameras of ``CAMERAS`` (``cam-1`` and ``cam-2`` in
  group ``default``, ``cam-9`` in group ``elsewhere``, which the operator does not see);
* ``root/home/`` — ``$ARGUS_HOME``; the API key is ``API_KEY`` (``$ARGUS_API_KEY``);
* ``root/server.log`` — the process's output (appended to on each start).

``stop()`` and ``start()`` restart it on the same port over the same files (sessions live
in the store, so a signed-in browser stays signed in).  Alerts are added while it runs
with ``add_alert``: it writes the record into the same SQLite file from the test process
(``SqliteAlertStore.upsert``), as a separate alert-service process would.

``argus serve`` is used rather than ``argus alerts serve``: the latter consumes a Kafka
topic (``bus.kafka`` is required), which these tests replace by writing the store directly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import httpx
import numpy as np
import yaml
from argon2 import PasswordHasher

from alerts.api.security import Passwords
from alerts.evidence import LocalEvidenceStore, masked_key, save_snapshot
from alerts.masking import WHOLE_PICTURE, mask_people
from alerts.store import Role, SqliteAlertStore
from deploy.localstack import free_port
from selector.event import Event
from tests.factories import make_event

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``make browser-deps``); Playwright drives it, never its own build."""
CHROMIUM_ARGS = ("--no-sandbox",)
SHOTS_DIR = Path("/tmp/argus-shots")
"""Every screenshot lands here; also in ``$ARGUS_SCREENSHOTS`` when that is set."""

API_KEY = "browser-tests-api-key-0123456789"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass(frozen=True)
class Person:
    """A user of the test installation and the password to sign in with."""

    name: str
    role: Role
    password: str
    groups: tuple[str, ...] = ("default",)


ADA = Person("ada", "admin", "ada-password-0001")
SAM = Person("sam", "supervisor", "sam-password-0002")
OLGA = Person("olga", "operator", "olga-password-0003")
PEOPLE: tuple[Person, ...] = (ADA, SAM, OLGA)
"""An admin, a supervisor and an operator, all in camera group ``default``."""

CAMERAS: Mapping[str, tuple[str, ...]] = {
    "cam-1": ("default",),
    "cam-2": ("default",),
    "cam-9": ("elsewhere",),
}
"""Camera id -> its groups.  ``make_event``'s camera is ``cam-1``."""


SNAPSHOT_BOX = (280.0, 80.0, 360.0, 320.0)
"""The person's box of alerts added with a snapshot (pixels of the 640x360 picture)."""


class ServerError(RuntimeError):
    """The server did not start, or did not stop, as asked (the message has its log)."""


def shot(page: Page, name: str) -> Path:
    """A full-page PNG of ``page`` as ``<name>.png`` in ``/tmp/argus-shots`` and, when
    ``$ARGUS_SCREENSHOTS`` is set, there too; the path in ``$ARGUS_SCREENSHOTS`` when set,
    else the one in ``/tmp/argus-shots``.  Characters other than letters, digits and
    ``._-`` in ``name`` become ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "shot"
    png = page.screenshot(full_page=True)
    dirs = [SHOTS_DIR]
    extra = os.environ.get("ARGUS_SCREENSHOTS")
    if extra:
        dirs.insert(0, Path(extra))
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{safe}.png").write_bytes(png)
    return dirs[0] / f"{safe}.png"


def sign_in(page: Page, url: str, who: Person = OLGA) -> None:
    """Open the operator page at ``url`` and sign in as ``who`` through its form (fields
    labelled "Username" and "Password", the button "Sign in").  Does not wait for the
    result: the caller checks what the page shows."""
    page.goto(url + "/")
    page.get_by_label("Username").fill(who.name)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Sign in").click()


class ArgusServer:
    """``argus serve`` as a process of its own on 127.0.0.1, over files under ``root``.

    Args:
        root: A directory of this server's own (created when missing).
        people: Users created in the store before the first start.
        cameras: Camera id -> groups, written to the config.
        config: Extra top-level config sections, merged over the harness's (e.g.
            ``{"api": {"sla": {"enabled": False}}}``); ``storage`` is the harness's.
        port: The port to listen on (default: a free one, kept across restarts).
    """

    def __init__(
        self,
        root: Path,
        *,
        people: Sequence[Person] = PEOPLE,
        cameras: Mapping[str, Sequence[str]] = CAMERAS,
        config: Mapping[str, Any] | None = None,
        port: int | None = None,
    ) -> None:
        self.root = root
        self.store_path = root / "alerts.db"
        self.evidence_dir = root / "evidence"
        self.home = root / "home"
        self.config_path = root / "argus.yaml"
        self.log_path = root / "server.log"
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.people = tuple(people)
        self._proc: subprocess.Popen[bytes] | None = None
        self._n = 0
        self.home.mkdir(parents=True, exist_ok=True)
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "cameras": [
                # never opened: `argus serve` runs no cameras, it only needs their groups
                {"id": cam, "source": f"rtsp://127.0.0.1:9/{cam}", "groups": list(groups)}
                for cam, groups in cameras.items()
            ],
            **(config or {}),
            "storage": {"sqlite": str(self.store_path), "evidence_dir": str(self.evidence_dir)},
        }
        self.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        for person in self.people:
            self.add_user(person)

    # -- the process ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 30.0) -> ArgusServer:
        """Start the process (again: same port, same files) and wait until ``/healthz``
        answers 200.

        Raises:
            ServerError: It exited, or did not answer within ``timeout_s`` (then it is
                killed); the message ends with its log.
        """
        if self.running:
            raise ServerError(f"the server on {self.url} is already running")
        env = {
            **os.environ,
            "ARGUS_HOME": str(self.home),
            "ARGUS_API_KEY": API_KEY,
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [sys.executable, "-m", "argus", "serve", "--config", str(self.config_path)]
        cmd += ["--host", self.host, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(
                    f"argus serve exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if self.healthy(timeout_s=0.5):
                return self
            time.sleep(0.05)
        self.stop(graceful=False)
        raise ServerError(
            f"{self.url}/healthz did not answer in {timeout_s:g} s:\n{self.log_tail()}"
        )

    def stop(self, *, graceful: bool = True, timeout_s: float = 15.0) -> int | None:
        """Stop the process: SIGINT (as Ctrl-C; killed if it has not left in ``timeout_s``),
        or SIGKILL at once when not ``graceful`` (a crash).  Its exit code (``None`` when
        it was not started); a no-op when it has already exited."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            if graceful:
                proc.send_signal(signal.SIGINT)
                try:
                    return proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    pass
            proc.kill()
        return proc.wait()

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether ``/healthz`` answers 200 now."""
        try:
            return httpx.get(self.url + "/healthz", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A request to the API with the installation's API key (``path`` from ``/``)."""
        headers = {"Authorization": f"Bearer {API_KEY}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=10.0, **kw)

    def __enter__(self) -> ArgusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what is in its store --------------------------------------------------------------

    def open_store(self) -> SqliteAlertStore:
        """The server's store file, opened from this process (close it when done)."""
        return SqliteAlertStore(self.store_path)

    def add_user(self, person: Person) -> None:
        """Create ``person`` in the store (works while the server runs)."""
        store = self.open_store()
        try:
            store.add_user(
                person.name,
                role=person.role,
                groups=list(person.groups),
                password_hash=Passwords(CHEAP_HASHER).hash(person.password),
                now=time.time(),
            )
        finally:
            store.close()

    def add_alert(
        self,
        n: int | None = None,
        *,
        camera: str = "cam-1",
        type_: str = "intrusion",
        priority: int = 50,
        wall: float | None = None,
        snapshot: bool = False,
        **fields: Any,
    ) -> Event:
        """Store the start record of ``make_event(n, ...)`` (``n``: the next number of this
        server; ``wall``: now) as an alert service would; with ``snapshot``, render and
        store its snapshot and masked copy first (``save_snapshot``, as a worker does).
        ``fields``: other ``Event`` fields to replace (``zone``, ``label``, ``details``...).
        Returns the event as stored (its ``event_id`` names the alert)."""
        if n is None:
            self._n += 1
            n = self._n
        event = make_event(
            n,
            camera=camera,
            type_=type_,
            priority=priority,
            wall=time.time() if wall is None else wall,
        )
        if snapshot:  # a box that shows in the picture (make_event's is 29x38 px)
            fields.setdefault("bbox", SNAPSHOT_BOX)
        if fields:
            event = replace(event, **fields)
        if snapshot:
            event = self.add_snapshot(event)
        self.upsert(event.to_record())
        return event

    def end_alert(self, event: Event, after_s: float = 5.0) -> Event:
        """Store the end record of ``event``, ``after_s`` video seconds after its start."""
        ended = event.closed(event.start_s + after_s)
        self.upsert(ended.to_record())
        return ended

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Write one bus record into the store file (``SqliteAlertStore.upsert``)."""
        store = self.open_store()
        try:
            store.upsert(record)
        finally:
            store.close()

    def add_track(
        self, record: Mapping[str, Any], image: np.ndarray[Any, Any] | None = None
    ) -> Mapping[str, Any]:
        """Store one track summary (``make_track_record``) as the alert service would
        (``upsert``: the store keeps ``kind: "track"`` records in its track table); with
        ``image`` (``(H, W, 3)`` uint8 BGR), store it as the track's thumbnail under the
        record's ``thumbnail`` key and its masked copy (all of it blurred, as a worker
        masks a thumbnail) under ``masked_key`` of that key, in the evidence folder the
        server reads.  Returns the record."""
        if image is not None:
            key = record.get("thumbnail")
            if not isinstance(key, str):
                raise ValueError("a track's image needs the record's thumbnail key")
            store = LocalEvidenceStore(self.evidence_dir)
            masked = mask_people(image, WHOLE_PICTURE)
            for picture, where in ((masked, masked_key(key)), (image, key)):
                ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
                if not ok:
                    raise ValueError(f"the thumbnail of {record.get('track_uid')} did not encode")
                store.put(where, jpeg.tobytes())
        self.upsert(record)
        return record

    def add_snapshot(self, event: Event) -> Event:
        """Render a 640x360 picture with the event's box, store it and its masked copy in
        the evidence folder the server reads; the event carrying the snapshot's key."""
        h, w = 360, 640
        image = np.zeros((h, w, 3), np.uint8)
        image[:] = np.linspace(40, 160, w, dtype=np.uint8)[None, :, None]  # a grey ramp
        x1, y1, x2, y2 = (int(v) for v in event.bbox or (0, 0, 0, 0))
        image[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = (60, 140, 220)
        return save_snapshot(LocalEvidenceStore(self.evidence_dir), event, image)
