"""Cameras shared out across workers by a Kafka consumer group, and moved when one dies
(issue 19), with real processes: the local broker (Tansu), an alert service, three
``argus worker``s and nine cameras played live from pre-encoded H.264 files (two busy, seven
quiet), the real model on the real footage.

One scenario, in steps that share the fleet (module fixture): the cameras spread over the
workers within capacity; a definition that does not validate is refused and the others
run; a worker SIGKILLed → its cameras run elsewhere, alerts keep flowing, what it left
open is closed as ``interrupted``, the camera that no longer fits waits and the health
board says so; a new worker takes it; a worker SIGTERMed hands its cameras over at once,
its alerts ended normally; the broker stopped while the workers run → cameras keep
running, records spool, and arrive when it is back.  Throughout, no camera is ever seen
running on two workers at once.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.control import KafkaControlPublisher
from benchmarks.fleet_harness import Fleet, make_videos, site, wait_for
from deploy.localstack import LocalStack, free_port
from tests.e2e.conftest import API_KEY, make_home, require_prerequisites
from tests.infra import make_localstack, require_binaries

pytestmark = pytest.mark.e2e

AUTH = {"X-API-Key": API_KEY}
CAPACITY = 4


class Watcher:
    """Samples every live worker's cameras twice a second; records any camera seen on two
    workers in one sample."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.doubles: list[tuple[float, str, list[str]]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for camera_id, names in self.fleet.placement().items():
                if len(names) > 1:
                    self.doubles.append((time.time(), camera_id, names))
            self.samples += 1

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Site:
    def __init__(self, stack: LocalStack, fleet: Fleet, url: str, service: Any) -> None:
        self.stack, self.fleet, self.url, self.service = stack, fleet, url, service

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        try:
            r = httpx.get(
                self.url + "/api/v1/alerts",
                params={"limit": 500, **params},
                headers=AUTH,
                timeout=5,
            )
        except httpx.HTTPError:
            return []
        return list(r.json()["items"]) if r.status_code == 200 else []

    def board(self) -> dict[str, dict[str, Any]]:
        try:
            r = httpx.get(self.url + "/api/v1/cameras/status", headers=AUTH, timeout=5)
        except httpx.HTTPError:
            return {}
        return {c["camera_id"]: c for c in r.json()["cameras"]} if r.status_code == 200 else {}

    def owner(self, camera_id: str) -> str | None:
        names = self.fleet.placement().get(camera_id) or []
        return names[0] if len(names) == 1 else None


@pytest.fixture(scope="module")
def fleet_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Watcher]]:
    require_prerequisites()
    require_binaries()
    tmp = tmp_path_factory.mktemp("fleet")
    stack = make_localstack(tmp / "stack")
    stack.up()
    fleet = Fleet(stack, tmp / "fleet")
    service = None
    try:
        busy, quiet = make_videos(tmp / "videos", seconds=20)
        # the alert service: consumes the events, serves the API and the board
        (tmp / "service").mkdir()
        home = make_home(tmp / "service")
        cfg = tmp / "service.yaml"
        import yaml

        cfg.write_text(
            yaml.safe_dump(
                {
                    "fleet": {"topic": f"{fleet.topic_prefix}.fleet", "partitions": 32},
                    "bus": {"kafka": fleet.kafka},
                }
            )
        )
        port = free_port()
        service = fleet_service(cfg, home, port, tmp / "service.log")
        url = f"http://127.0.0.1:{port}"
        published = fleet.publish(site(busy, quiet, n_busy=2, n_quiet=7))
        assert published.returncode == 0, published.stderr[-2000:]
        assert "9 published" in published.stdout
        # a definition that does not validate: refused with its reason, the others run
        with KafkaControlPublisher(
            stack.bootstrap, f"{fleet.topic_prefix}.fleet", partitions=32
        ) as out:
            out.publish(
                "camera/bad-1",
                {
                    "camera": {
                        "id": "bad-1",
                        "source": str(quiet),
                        "zones": [{"name": "z", "polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}],
                    },
                    "rules": [],
                },
            )
        for name in ("a", "b", "c"):
            fleet.start(name, CAPACITY)
        with Watcher(fleet) as watcher:
            yield Site(stack, fleet, url, service), watcher
    finally:
        fleet.stop_all()
        if service is not None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(30)
            except Exception:
                service.kill()
        stack.stop()


def fleet_service(cfg: Path, home: Path, port: int, log: Path) -> Any:
    import subprocess

    from tests.e2e.conftest import ARGUS, env_for

    with log.open("w") as f:
        return subprocess.Popen(
            [*ARGUS, "alerts", "serve", "--config", str(cfg), "--port", str(port)],
            env=env_for(home),
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wall(alert: dict[str, Any]) -> float:
    """The alert's start, UNIX seconds."""
    return datetime.fromisoformat(alert["wall_time"].replace("Z", "+00:00")).timestamp()


CAMERAS = {f"busy-{i}" for i in (1, 2)} | {f"quiet-{i}" for i in range(1, 8)}


def test_cameras_spread_over_the_workers_within_capacity(fleet_site: tuple[Site, Watcher]) -> None:
    s, _ = fleet_site
    placed = wait_for(
        "all nine cameras running, each on one worker",
        lambda: (p := s.fleet.placement()) and set(p) == CAMERAS and p,
        timeout_s=120,
    )
    per_worker: dict[str, int] = {}
    for names in placed.values():
        assert len(names) == 1
        per_worker[names[0]] = per_worker.get(names[0], 0) + 1
    assert sorted(per_worker.values()) == [3, 3, 3], per_worker  # fair share of 9 over 3x4
    for w in s.fleet.workers.values():
        doc = w.readyz()
        assert doc is not None and doc["status"] == "ready"
        assert doc["refused_definitions"].get("bad-1"), doc["refused_definitions"]
        assert "bad-1" not in doc["cameras"]
    wait_for(
        "alerts from both busy cameras",
        lambda: {a["camera_id"] for a in s.alerts()} >= {"busy-1", "busy-2"},
        timeout_s=60,
    )


def log_lines(fleet: Fleet, camera_id: str, words: str) -> int:
    """How many lines of every worker's log say ``words`` of ``camera_id``."""
    n = 0
    for w in list(fleet.workers.values()):
        for line in w.log.read_text(errors="replace").splitlines():
            if words in line and f'"camera_id": "{camera_id}"' in line:
                n += 1
    return n


def test_admins_change_cameras_through_the_api(fleet_site: tuple[Site, Watcher]) -> None:
    s, _ = fleet_site
    listed = httpx.get(s.url + "/api/v1/fleet/cameras", headers=AUTH, timeout=5).json()
    assert {c["camera_id"] for c in listed["cameras"]} == CAMERAS
    assert "bad-1" in listed["refused"]
    quiet7 = next(c for c in listed["cameras"] if c["camera_id"] == "quiet-7")
    owner = s.owner("quiet-7")
    starts = log_lines(s.fleet, "quiet-7", "camera added")
    # a rule changed: reloaded on the camera's worker, the camera not restarted
    body = {
        "camera": quiet7["camera"] | {"source": str(s.fleet.folder.parent / "videos/quiet.mp4")},
        "rules": [quiet7["rules"][0] | {"min_dwell_s": 2.0}],
    }
    r = httpx.put(s.url + "/api/v1/fleet/cameras/quiet-7", json=body, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    wait_for(
        "quiet-7's rules reloaded",
        lambda: log_lines(s.fleet, "quiet-7", "rules reloaded") >= 1,
        timeout_s=20,
    )
    assert s.owner("quiet-7") == owner
    assert log_lines(s.fleet, "quiet-7", "camera added") == starts
    # a camera no worker's model serves waits, and the board says why
    odd = {"camera": {"id": "odd-1", "source": body["camera"]["source"]}, "model": "other-model"}
    r = httpx.put(s.url + "/api/v1/fleet/cameras/odd-1", json=odd, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    board = wait_for(
        "odd-1 waiting on the board",
        lambda: (b := s.board()).get("odd-1", {}).get("state") == "waiting" and b,
        timeout_s=30,
    )
    assert "model" in (board["odd-1"].get("detail") or "")
    assert not s.owner("odd-1")
    r = httpx.delete(s.url + "/api/v1/fleet/cameras/odd-1", headers=AUTH, timeout=10)
    assert r.status_code == 204
    # a hostile definition is refused with its reason, nothing published
    r = httpx.put(
        s.url + "/api/v1/fleet/cameras/evil-1",
        json={"camera": {"id": "evil-1", "source": "rtsp://root:s3cret-pw@10.0.0.9/s"}},
        headers=AUTH,
        timeout=10,
    )
    assert r.status_code == 422 and "s3cret-pw" not in r.text
    listed = httpx.get(s.url + "/api/v1/fleet/cameras", headers=AUTH, timeout=5).json()
    assert {c["camera_id"] for c in listed["cameras"]} == CAMERAS


def test_a_killed_workers_cameras_run_elsewhere_and_one_waits(
    fleet_site: tuple[Site, Watcher],
) -> None:
    s, _ = fleet_site
    victim = s.owner("busy-1")
    assert victim is not None
    lost = sorted(s.fleet.workers[victim].cameras())
    open_before = {
        a["event_id"] for a in s.alerts(camera_id="busy-1", ongoing=True) if a["end_s"] is None
    }
    killed_at = s.fleet.kill(victim, signal.SIGKILL)
    # 8 places for 9 cameras: two of the victim's three move, one waits
    wait_for(
        "the victim's cameras on the two others but one",
        lambda: len([c for c in lost if s.owner(c)]) == len(lost) - 1,
        timeout_s=45,
    )
    waiting = [c for c in lost if not s.owner(c)]
    assert len(waiting) == 1
    board = wait_for(
        "the waiting camera on the health board",
        lambda: (b := s.board()).get(waiting[0], {}).get("state") == "waiting" and b,
        timeout_s=20,
    )
    assert "capacity" in (board[waiting[0]].get("detail") or "")
    if s.owner("busy-1"):  # alerts keep flowing from its new worker
        wait_for(
            "a new alert of busy-1 after the kill",
            lambda: any(wall(a) > killed_at for a in s.alerts(camera_id="busy-1")),
            timeout_s=60,
        )
    if open_before:  # what the dead worker left open was closed as interrupted
        interrupted = wait_for(
            "busy-1's open alerts closed as interrupted",
            lambda: [
                a
                for a in s.alerts(camera_id="busy-1")
                if a["event_id"] in open_before and a.get("end_reason") == "interrupted"
            ],
            timeout_s=60,
        )
        assert interrupted


def test_a_new_worker_takes_the_waiting_camera(fleet_site: tuple[Site, Watcher]) -> None:
    s, _ = fleet_site
    s.fleet.start("d", CAPACITY)
    wait_for(
        "every camera running again",
        lambda: set(s.fleet.placement()) == CAMERAS,
        timeout_s=90,
    )
    for camera_id, names in s.fleet.placement().items():
        assert len(names) == 1, (camera_id, names)


def test_a_terminated_worker_hands_its_cameras_over(fleet_site: tuple[Site, Watcher]) -> None:
    s, _ = fleet_site
    leaving = s.owner("busy-2")
    assert leaving is not None
    moved = sorted(s.fleet.workers[leaving].cameras())
    open_before = wait_for(
        "an open alert of busy-2",
        lambda: {a["event_id"] for a in s.alerts(camera_id="busy-2") if a["end_s"] is None},
        timeout_s=60,
    )
    sent = s.fleet.kill(leaving, signal.SIGTERM)
    # graceful: the group hears of it at once (well within the 6 s session timeout); a
    # leader hands its cameras over in a round of its own first
    wait_for(
        "the terminated worker's cameras running elsewhere (or waiting)",
        lambda: all(s.owner(c) or s.board().get(c, {}).get("state") == "waiting" for c in moved),
        timeout_s=30,
    )
    took = time.time() - sent
    assert took < 20, took
    # its open alerts were ended by the worker itself, not left to be interrupted
    closed = wait_for(
        "busy-2's open alerts closed",
        lambda: (
            (
                got := {
                    a["event_id"]: a.get("end_reason")
                    for a in s.alerts(camera_id="busy-2")
                    if a["event_id"] in open_before and a["end_s"] is not None
                }
            )
            and len(got) == len(open_before)
            and got
        ),
        timeout_s=60,
    )
    assert set(closed.values()) == {"ended"}, closed


def events_started(fleet: Fleet, since: float, until: float) -> dict[str, str]:
    """event id -> camera of every event a worker logged as started in [since, until]."""
    out: dict[str, str] = {}
    for w in list(fleet.workers.values()):
        for line in w.log.read_text(errors="replace").splitlines():
            if "event started" not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            at = datetime.fromisoformat(rec["ts"]).timestamp()
            if since <= at <= until and rec.get("event_id"):
                out[rec["event_id"]] = rec["camera_id"]
    return out


def test_cameras_keep_running_while_the_broker_is_away(fleet_site: tuple[Site, Watcher]) -> None:
    s, watcher = fleet_site
    busy = "busy-1" if s.owner("busy-1") else "busy-2"
    owner = s.owner(busy)
    assert owner is not None
    worker = s.fleet.workers[owner]
    before = worker.cameras()[busy]["frames_processed"]
    placed = s.fleet.placement()  # 8 of 9: two workers of 4 are left
    s.stack.kill_kafka()
    away_at = time.time()
    # the cameras keep running; what they raise waits in the worker's spool
    spooled = wait_for(
        "event records spooled by the busy camera's worker",
        lambda: (doc := worker.readyz()) and doc["components"]["kafka_bus"]["depth"] > 0 and doc,
        timeout_s=30,
    )
    assert busy in spooled["cameras"]
    wait_for(  # and keep being analysed
        f"{busy} analysed on while the broker is away",
        lambda: worker.cameras()[busy]["frames_processed"] > before + 30,
        timeout_s=30,
    )
    # ... raising events (the busy footage starts one every few seconds)
    wait_for(
        "an event started while the broker is away",
        lambda: events_started(s.fleet, away_at, time.time()),
        timeout_s=45,
    )
    back_at = time.time()
    s.stack.start_kafka()
    raised = events_started(s.fleet, away_at, back_at)
    assert raised, "no event started while the broker was away"
    # nothing lost: every event raised while it was away reaches the store
    stored = wait_for(
        "the events raised while the broker was away, in the store",
        lambda: (ids := {a["event_id"] for a in s.alerts()}) >= set(raised) and ids,
        timeout_s=120,
        step_s=1.0,
    )
    assert set(raised) <= stored
    wait_for(
        "the spool drained",
        lambda: (doc := worker.readyz()) and doc["components"]["kafka_bus"]["depth"] == 0,
        timeout_s=60,
    )
    # the group is back (its members rejoin one by one): the cameras where they were
    wait_for("the cameras placed as before", lambda: s.fleet.placement() == placed, 60)
    assert not watcher.doubles, watcher.doubles[:5]
    assert watcher.samples > 50
