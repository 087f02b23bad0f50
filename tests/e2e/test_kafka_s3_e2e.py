"""The split deployment end to end on real servers: worker → Kafka → alert service → API, with
evidence in S3 — and the broker killed while the worker is producing.

Servers: the project's own local stack (Tansu, durable on SeaweedFS S3; see deploy/localstack.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.evidence import masked_key, thumbnail_key
from deploy.localstack import LocalStack
from tests.e2e.conftest import (
    ARGUS,
    env_for,
    issue_config,
    make_home,
    read_jsonl,
    require_prerequisites,
    write_config,
)
from tests.e2e.test_failures_e2e import clip
from tests.infra import kill_broker, kill_s3, restart_broker, restart_s3

pytestmark = pytest.mark.e2e

BUCKET = "argus-evidence-e2e"


def object_bytes(client: Any, bucket: str, key: str) -> bytes:
    """The bytes of one object of the bucket."""
    resp = client.get_object(bucket, key)
    try:
        return bytes(resp.read())
    finally:
        resp.close()
        resp.release_conn()


def split_config(tmp: Path, stack: LocalStack, topic: str, source: Path) -> Path:
    data = issue_config(tmp, source=str(source))
    data["bus"] = {
        "kafka": {
            "bootstrap": stack.bootstrap,
            "topic": topic,
            "idempotent": False,  # Tansu on durable storage refuses the idempotent producer
            "group_id": f"{topic}-alerts",
        }
    }
    # issue_config's clips stay off (clips through S3: tests/integration/test_s3_evidence.py)
    data["evidence"] = {**data["evidence"], "s3": {"endpoint": stack.s3_endpoint, "bucket": BUCKET}}
    return write_config(tmp, data)


def env_with_s3(home: Path, stack: LocalStack) -> dict[str, str]:
    env = env_for(home)
    env["ARGUS_S3_ACCESS_KEY"] = stack.access_key
    env["ARGUS_S3_SECRET_KEY"] = stack.secret_key
    return env


def start_service(cfg: Path, home: Path, stack: LocalStack, log: Path) -> tuple[Any, str]:
    from tests.e2e.conftest import free_port

    port = free_port()
    with log.open("w") as f:
        proc = subprocess.Popen(
            [*ARGUS, "alerts", "serve", "--config", str(cfg), "--port", str(port)],
            env=env_with_s3(home, stack),
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return proc, f"http://127.0.0.1:{port}"


def alerts(url: str) -> list[dict[str, Any]]:
    import httpx

    from tests.e2e.conftest import API_KEY

    try:
        r = httpx.get(
            url + "/api/v1/alerts", params={"limit": 500}, headers={"X-API-Key": API_KEY}, timeout=5
        )
    except httpx.HTTPError:
        return []
    return list(r.json()["items"]) if r.status_code == 200 else []


def wait_alerts(url: str, n: int, closed: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = alerts(url)
        if len(got) >= n and sum(a["end_s"] is not None for a in got) >= closed:
            return got
        time.sleep(0.5)
    return got


def _check_search(url: str, auth: dict[str, str], client: Any) -> None:
    """People of the run are found by search, each with its masked thumbnail from S3."""
    import httpx

    now = time.time()
    params = {
        "since": datetime.fromtimestamp(now - 3600, UTC).isoformat(),
        "until": datetime.fromtimestamp(now + 600, UTC).isoformat(),
        "class": "person",
    }
    deadline, results = time.monotonic() + 60, []
    while time.monotonic() < deadline and not results:
        r = httpx.get(f"{url}/api/v1/search", params=params, headers=auth, timeout=10)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        time.sleep(0.5)
    assert len(results) >= 3, "the run's walkers were summarised and stored"
    best = results[0]
    first = datetime.fromisoformat(best["first_seen"]).timestamp()
    key = thumbnail_key(best["camera_id"], first, best["track_uid"])
    thumb = httpx.get(f"{url}{best['thumbnail_url']}", headers=auth, timeout=10)
    assert thumb.status_code == 200
    assert thumb.content == object_bytes(client, BUCKET, masked_key(key))
    assert client.stat_object(BUCKET, key).size > 0  # the original, for unmasked views


@pytest.mark.parametrize("fault", ["none", "broker-killed", "s3-killed"])
def test_worker_to_alert_service_over_kafka_with_s3_evidence(
    localstack: LocalStack, tmp_path: Path, fault: str
) -> None:
    """Every event the worker raised reaches the store exactly once, with its snapshot in S3.

    Faults (SIGKILL mid-run, restart on the same data): the broker; or the S3 server, which
    also holds the broker's log, so the broker loses its storage for that time too.
    """
    require_prerequisites()
    home = make_home(tmp_path)
    topic = f"argus.e2e.{fault}.{os.getpid()}"
    # Killing S3 also takes the broker's log away: on a loaded machine the broker took 20 s
    # to come back, and a 300-frame run (12 s) had closed by then with records still spooled
    # (kept on disk for the next run, but this trial checks one run): a longer run for it.
    frames = 600 if fault == "s3-killed" else 300
    cfg = split_config(tmp_path, localstack, topic, clip(tmp_path, frames))
    service, url = start_service(cfg, home, localstack, tmp_path / "service.log")
    try:
        worker = subprocess.Popen(
            [*ARGUS, "run", str(cfg)],
            env=env_with_s3(home, localstack),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if fault != "none":
            time.sleep(4.0)  # the worker is producing (model loaded, frames flowing)
            (kill_broker if fault == "broker-killed" else kill_s3)(localstack)
            time.sleep(3.0)  # events and snapshots raised now wait in the worker's spools
            (restart_broker if fault == "broker-killed" else restart_s3)(localstack)
        out, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, out[-3000:]

        records = read_jsonl(tmp_path / "events.jsonl")  # the worker's own record of what it raised
        raised = {r["event_id"] for r in records}
        closed = {r["event_id"] for r in records if r["end_s"] is not None}
        assert raised and raised == closed
        got = wait_alerts(url, len(raised), len(closed), timeout_s=90)
        ids = [a["event_id"] for a in got]
        lost = raised - set(ids)
        duplicated = len(ids) - len(set(ids))
        print(
            f"\nfault={fault}: raised {len(raised)} events, stored {len(set(ids))}, "
            f"lost {len(lost)}, duplicated {duplicated}"
        )
        assert not lost, f"lost {len(lost)} of {len(raised)}:\n{out[-2000:]}"
        assert duplicated == 0
        assert set(ids) == raised, "nothing the worker did not raise"
        assert all(a["end_s"] is not None for a in got), "end records arrived too"

        # Evidence went to the bucket; the API serves it and a presigned URL.
        import httpx

        from tests.e2e.conftest import API_KEY

        first = got[0]
        auth = {"X-API-Key": API_KEY}
        snap = httpx.get(
            f"{url}/api/v1/alerts/{first['event_id']}/snapshot", headers=auth, timeout=10
        )
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        client = localstack.minio_client()
        # the masked copy (people blurred) by default; the original with ?unmasked=true
        assert snap.content == object_bytes(client, BUCKET, masked_key(first["snapshot"]))
        raw = httpx.get(
            f"{url}/api/v1/alerts/{first['event_id']}/snapshot",
            params={"unmasked": "true"},
            headers=auth,  # the API key: an admin
            timeout=10,
        )
        assert raw.status_code == 200
        assert raw.content == object_bytes(client, BUCKET, first["snapshot"]) != snap.content
        presigned = httpx.get(
            f"{url}/api/v1/alerts/{first['event_id']}/snapshot-url", headers=auth, timeout=10
        )
        assert presigned.status_code == 200  # of the masked copy only
        assert httpx.get(presigned.json()["url"], timeout=10).content == snap.content
        if fault != "none":
            assert "spool" in out.lower(), "the worker said it was spooling"
        for a in got:  # every snapshot and its masked copy ended up in the bucket
            assert client.stat_object(BUCKET, a["snapshot"]).size > 0
            assert client.stat_object(BUCKET, masked_key(a["snapshot"])).size > 0
        if fault == "none":  # track summaries took the same road: searchable, thumbnails in S3
            _check_search(url, auth, client)
    finally:
        service.terminate()
        service.wait(timeout=30)


def test_worker_starts_and_spools_within_its_bound_when_the_broker_never_comes_up(
    tmp_path: Path,
) -> None:
    require_prerequisites()
    from alerts.spool import DiskSpool

    home = make_home(tmp_path)
    data = issue_config(tmp_path, source=str(clip(tmp_path, 120)))
    import httpx

    from deploy.localstack import free_ports

    port, metrics_port = free_ports(2)  # bound and released: nothing listens on ``port``
    data["bus"] = {"kafka": {"bootstrap": f"127.0.0.1:{port}", "spool_max_records": 10}}
    data["metrics"] = {"port": metrics_port}
    proc = subprocess.Popen(
        [*ARGUS, "run", str(write_config(tmp_path, data))],
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    depth_seen = 0.0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:  # scrape the worker while it runs
        try:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
            for line in text.splitlines():
                if line.startswith("argus_spool_depth{"):
                    depth_seen = max(depth_seen, float(line.split()[-1]))
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "not reachable" in stderr and "spooling" in stderr
    assert "plaza: 120 frames" in stderr, "analysis went on without the broker"
    assert 1 <= depth_seen <= 10, f"spool depth exported and within its bound: {depth_seen}"
    raised = len(read_jsonl(tmp_path / "events.jsonl"))
    assert raised > 10, "enough events to overflow the bound"
    spool = DiskSpool(home / "spool" / "events", max_records=10, max_bytes=1 << 30)
    try:
        assert spool.depth == 10, "the newest 10 wait for the broker; the oldest were dropped"
        newest = [r["event_id"] for r in read_jsonl(tmp_path / "events.jsonl")][-10:]
        assert [r["event_id"] for r in spool.peek(10)] == newest
    finally:
        spool.close()
    assert "dropping the oldest" in stderr
