"""The edge box (issue 20): the profile of ``examples/edge.yaml`` on real servers, with its
uplink cut long enough to fill its spools, then back.

``argus run`` with the edge profile (threads bounded, events over Kafka, snapshots to S3,
nothing kept locally for operators) on the real model and footage played at camera speed;
an alert service upstream.  The broker and the S3 server are killed while the box works
(its uplink is down): analysis goes on, events and snapshots wait in the box's disk spools
until their bounds, where the oldest go and are counted; then the uplink is back and what
was kept goes up: the newest events, with their snapshots.

The profile names the int8 model; this test runs the fp32 one (the model does not change
store-and-forward, and quantizing costs a minute): ``test_edge_profile_is_valid`` checks
the profile itself.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from argus.config import load_config
from deploy.localstack import LocalStack, free_ports
from tests.e2e.conftest import (
    API_KEY,
    ARGUS,
    issue_config,
    make_home,
    read_jsonl,
    require_prerequisites,
    write_config,
)
from tests.e2e.test_failures_e2e import clip
from tests.e2e.test_kafka_s3_e2e import alerts, env_with_s3, start_service
from tests.infra import fresh_localstack

__all__ = ["fresh_localstack"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.e2e

PROFILE = Path(__file__).resolve().parents[2] / "examples" / "edge.yaml"
BUCKET = "argus-evidence-edge"
EVENTS_BOUND = 10
"""Event records the box holds while the uplink is down (the profile's is 20000)."""


def test_edge_profile_is_valid() -> None:
    cfg = load_config(PROFILE)
    assert cfg.detector.model.endswith("-int8") and cfg.detector.threads
    assert cfg.bus.kafka is not None and cfg.evidence.s3 is not None
    assert "${CAM_" in cfg.cameras[0].source and "@" in cfg.cameras[0].source


def edge_config(tmp: Path, stack: LocalStack, source: Path, metrics_port: int) -> Path:
    data: dict[str, Any] = yaml.safe_load(PROFILE.read_text())
    plaza = issue_config(tmp, source=str(source), realtime=True)  # the plaza and its rule
    data["cameras"], data["rules"] = plaza["cameras"], plaza["rules"]
    data["detector"]["model"] = "nanodet-g"
    data["bus"]["kafka"] = {
        "bootstrap": stack.bootstrap,
        "topic": "argus.edge",
        "group_id": "argus.edge-alerts",
        "idempotent": False,  # Tansu on durable storage refuses the idempotent producer
        "spool_max_records": EVENTS_BOUND,
    }
    data["evidence"] = {
        "s3": {"endpoint": stack.s3_endpoint, "bucket": BUCKET, "spool_max_mb": 1},
        "clips": {"enabled": False},
    }
    data["sinks"] = plaza["sinks"]  # the box's own record (events.jsonl), for the test
    data["storage"] = plaza["storage"]
    data["metrics"] = {"port": metrics_port}
    data["log"] = {"level": "INFO", "format": "text"}
    return write_config(tmp, data)


def lines(path: Path) -> int:
    """Records the box has written to its own JSONL sink so far (in the order raised)."""
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def metric(text: str, name: str) -> float:
    """Sum of a metric's samples in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith(name + "{")
            or line.startswith(name + " ")
            or ("{" in name and line.startswith(name))
        ):
            total += float(line.split()[-1])
    return total


def snapshot(url: str, event_id: str) -> int:
    """Status of ``GET`` of an alert's snapshot (200 only for a JPEG); 0: no answer."""
    try:
        r = httpx.get(
            f"{url}/api/v1/alerts/{event_id}/snapshot", headers={"X-API-Key": API_KEY}, timeout=10
        )
    except httpx.HTTPError:
        return 0
    return r.status_code if r.status_code != 200 or r.content[:2] == b"\xff\xd8" else 500


def first_records(records: list[dict[str, Any]]) -> dict[str, int]:
    """Index of each event's first record (its start) in the order raised."""
    first: dict[str, int] = {}
    for n, r in enumerate(records):
        first.setdefault(r["event_id"], n)
    return first


def settled(stored: dict[str, dict[str, Any]], records: list[dict[str, Any]], eid: str) -> bool:
    """Whether the store holds event ``eid`` as its last record says (open or ended)."""
    final = [r for r in records if r["event_id"] == eid][-1]
    return eid in stored and (stored[eid]["end_s"] is None) == (final["end_s"] is None)


def test_an_edge_box_keeps_the_newest_while_its_uplink_is_down_and_sends_them_back(
    fresh_localstack: LocalStack, tmp_path: Path
) -> None:
    require_prerequisites()
    stack = fresh_localstack
    home = make_home(tmp_path)
    (metrics_port,) = free_ports(1)
    # most of vtest (79 s at camera speed): the box is stopped once what it kept went up,
    # so the end of the footage does not race the broker's return
    cfg = edge_config(tmp_path, stack, clip(tmp_path, 790), metrics_port)
    events = tmp_path / "events.jsonl"
    service, url = start_service(cfg, home, stack, tmp_path / "service.log")
    box_log = tmp_path / "box.log"
    page = ""

    def scrape() -> str:
        nonlocal page
        with contextlib.suppress(httpx.HTTPError):
            page = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
        return page

    def logs() -> str:
        return (
            "\n--- box (tail) ---\n"
            + box_log.read_text()[-4000:]
            + "\n--- alert service (tail) ---\n"
            + (tmp_path / "service.log").read_text()[-4000:]
        )

    spool = 'argus_spool_dropped_total{spool="kafka:argus.edge"}'
    delivered = 'argus_kafka_delivered_total{topic="argus.edge"}'
    try:
        with box_log.open("w") as err:  # a file, not a pipe: a full pipe would stall the box
            box = subprocess.Popen(
                [*ARGUS, "run", str(cfg)],
                env=env_with_s3(home, stack),
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        try:
            deadline = time.monotonic() + 90
            while not alerts(url) and time.monotonic() < deadline:  # the uplink works
                time.sleep(0.5)
            assert alerts(url), "no alert went up before the uplink was cut" + logs()
            stack.kill_kafka()
            stack.kill_s3()
            down_at = lines(events)
            deadline = time.monotonic() + 60  # ... long enough to fill the box's event spool
            while time.monotonic() < deadline and box.poll() is None:
                if metric(scrape(), spool) >= 2:
                    break
                time.sleep(0.5)
            assert metric(page, spool) >= 2, "the event spool never went past its bound"
            assert metric(page, 'argus_spool_depth{spool="kafka:argus.edge"}') <= EVENTS_BOUND
            up_at = lines(events)
            assert up_at - down_at >= EVENTS_BOUND  # (the sink and the spool each take it in turn)
            before = metric(scrape(), delivered)  # nothing is acknowledged while it is down
            stack.start_s3()
            stack.start_kafka()
            # the box raises events until the broker takes them again (its spool keeps the
            # newest): the last event begun in the outage and raised before delivery resumed
            # must go up
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and box.poll() is None:
                if metric(scrape(), delivered) > before:
                    break
                time.sleep(0.2)
            assert box.poll() is None, "the footage ended before delivery resumed" + logs()
            assert metric(page, delivered) > before, "delivery never resumed" + logs()
            raised = read_jsonl(events)[: lines(events)]
            first = first_records(raised)
            begun = [r for r in raised if first[r["event_id"]] >= down_at]
            assert begun, "no event began while the uplink was down"
            newest = begun[-1]["event_id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and box.poll() is None:  # goes up while it works
                stored = {a["event_id"]: a for a in alerts(url)}
                if settled(stored, raised, newest) and snapshot(url, newest) == 200:
                    break
                time.sleep(1.0)
            box.terminate()  # stopped by its service manager: what is left is delivered
            box.wait(timeout=120)
            assert box.returncode in (0, 130), logs()  # 130: stopped before the end
        finally:
            if box.poll() is None:
                box.kill()
        stderr = box_log.read_text()
        records = read_jsonl(events)
        assert "dropping the oldest" in stderr
        deadline = time.monotonic() + 120
        stored: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            stored = {a["event_id"]: a for a in alerts(url)}
            if settled(stored, records, newest) and settled(
                stored, records, records[-1]["event_id"]
            ):
                break
            time.sleep(1.0)
        assert newest in stored, "the newest event of the outage did not go up" + logs()
        assert set(stored) <= {r["event_id"] for r in records}, "only what the box raised"
        assert settled(stored, records, newest), "its last record was stored"
        # its snapshot went up too (the evidence spool kept the newest)
        assert snapshot(url, newest) == 200
        assert re.search(r"spool", stderr), "the box said it was spooling"
    finally:
        service.terminate()
        service.wait(timeout=30)
