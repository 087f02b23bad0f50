"""The local servers (deploy/localstack.py) against real Tansu and SeaweedFS processes.

Checks: the stack comes up with credentials kept private; 200 keyed records produced with
``acks="all"`` are read back by a consumer group that commits; after the broker is SIGKILLed
and restarted on the same S3 storage the records and the group's offsets are still there;
S3 put/get and a presigned GET fetched with urllib, surviving an S3 SIGKILL; clear errors for a
busy port and a server that exits; the CLI's up/status/down leave no process behind.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from deploy.localstack import (
    LocalStack,
    PortInUseError,
    ServerStartError,
    free_ports,
    free_ports_base,
)
from tests.infra import (
    create_topic,
    fresh_localstack,
    kafka_consumer,
    kafka_producer,
    localstack,
    make_localstack,
    require_binaries,
    restart_broker,
    restart_s3,
    wait_for,
)

__all__ = ["fresh_localstack", "localstack"]  # fixtures, imported for pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
N_RECORDS = 200
CAMERAS = [f"cam-{i}" for i in range(5)]


def _produce(stack: LocalStack, topic: str, n: int) -> None:
    producer = kafka_producer(stack)
    try:
        futures = [
            producer.send(
                topic,
                key=CAMERAS[i % len(CAMERAS)].encode(),
                value=json.dumps({"seq": i, "camera_id": CAMERAS[i % len(CAMERAS)]}).encode(),
            )
            for i in range(n)
        ]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=10)  # raises if the broker did not acknowledge (acks=all)
    finally:
        producer.close(timeout=5)


def _consume(
    stack: LocalStack, topic: str, group: str, n: int, timeout_s: float
) -> list[dict[str, Any]]:
    """Read ``n`` records in consumer group ``group``, commit, return their decoded values."""
    consumer = kafka_consumer(stack, topic, group_id=group)
    got: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    value = json.loads(r.value)
                    assert r.key.decode() == value["camera_id"]
                    got.append(value)
        consumer.commit()
    finally:
        consumer.close()
    return got


def _committed_total(stack: LocalStack, topic: str, group: str) -> int:
    from kafka import TopicPartition

    consumer = kafka_consumer(stack, group_id=group)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in parts)
    finally:
        consumer.close()


def test_stack_comes_up_with_private_credentials(localstack: LocalStack) -> None:
    status = localstack.status()
    assert status["s3"]["running"] and status["kafka"]["running"], status
    assert localstack.bootstrap == f"127.0.0.1:{localstack.kafka_port}"
    assert localstack.s3_endpoint == f"127.0.0.1:{localstack.s3_port}"
    for path in (localstack.credentials_path, localstack.identities_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    creds = json.loads(localstack.credentials_path.read_text())
    assert creds["secret_key"] == localstack.secret_key
    secret = localstack.secret_key
    assert secret not in repr(localstack) and secret not in json.dumps(status)
    for log in localstack.logs_dir.iterdir():
        assert secret not in log.read_text(errors="replace"), log
    for server in ("s3", "kafka"):
        cmdline = Path(f"/proc/{status[server]['pid']}/cmdline").read_bytes().decode()
        assert secret not in cmdline, f"{server}'s command line shows the secret"
    # measurements (reported by the lead): start-up seconds and resident memory
    print(
        f"startup_s={localstack.startup_s} "
        f"rss_MiB={{s3: {status['s3']['rss_bytes'] / 2**20:.0f}, "
        f"kafka: {status['kafka']['rss_bytes'] / 2**20:.0f}}}"
    )


def test_records_survive_broker_sigkill(fresh_localstack: LocalStack) -> None:
    stack = fresh_localstack
    topic = "argus.events.test"
    create_topic(stack, topic, partitions=3)
    _produce(stack, topic, N_RECORDS)

    got = _consume(stack, topic, "readers", N_RECORDS, timeout_s=30)
    assert sorted(v["seq"] for v in got) == list(range(N_RECORDS))
    assert Counter(v["camera_id"] for v in got) == Counter(
        CAMERAS[i % len(CAMERAS)] for i in range(N_RECORDS)
    )
    assert _committed_total(stack, topic, "readers") == N_RECORDS

    old_pid = stack.pid("kafka")
    took = restart_broker(stack)  # SIGKILL, then start on the same s3://argus-broker/
    assert stack.pid("kafka") != old_pid
    assert took < 15, took

    again = _consume(stack, topic, "after-restart", N_RECORDS, timeout_s=30)
    assert sorted(v["seq"] for v in again) == list(range(N_RECORDS)), "records lost on SIGKILL"
    assert _committed_total(stack, topic, "readers") == N_RECORDS, "group offsets lost"
    # the broker still takes writes after the restart
    _produce(stack, topic, 10)
    assert len(_consume(stack, topic, "readers", 10, timeout_s=30)) == 10


def test_s3_put_get_presigned_and_restart(fresh_localstack: LocalStack) -> None:
    from datetime import timedelta

    stack = fresh_localstack
    client = stack.minio_client()
    client.make_bucket("argus-evidence")
    body = os.urandom(256 * 1024)
    client.put_object(
        "argus-evidence", "plaza/e1.jpg", io.BytesIO(body), len(body), content_type="image/jpeg"
    )
    resp = client.get_object("argus-evidence", "plaza/e1.jpg")
    try:
        assert resp.read() == body
    finally:
        resp.close()
        resp.release_conn()

    url = client.presigned_get_object(
        "argus-evidence", "plaza/e1.jpg", expires=timedelta(minutes=5)
    )
    assert stack.secret_key not in url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.read() == body

    restart_s3(stack)  # SIGKILL + start on the same data directory
    resp = stack.minio_client().get_object("argus-evidence", "plaza/e1.jpg")
    try:
        assert resp.read() == body
    finally:
        resp.close()
        resp.release_conn()
    # the broker (whose log lives on this S3) works again after the S3 restart: it may
    # take a while to reconnect (a request can time out meanwhile), within a minute
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + 60.0
    while True:
        try:
            create_topic(stack, "after-s3-restart")
            break
        except TopicAlreadyExistsError:
            break  # an earlier, timed-out request did create it
        except (KafkaError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    _produce(stack, "after-s3-restart", 5)


def test_busy_port_is_refused_with_its_number(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = make_localstack(tmp_path, s3_port=port)
        with pytest.raises(PortInUseError, match=str(port)):
            stack.start_s3()
    assert not stack.running("s3")


def test_server_that_exits_names_port_and_log(tmp_path: Path) -> None:
    require_binaries()
    base = free_ports_base()
    kafka_port, s3_port = free_ports(2)
    with socket.socket() as busy:  # SeaweedFS's master port taken: it refuses to start
        busy.bind(("127.0.0.1", base))
        busy.listen()
        stack = LocalStack(
            tmp_path,
            kafka_port=kafka_port,
            s3_port=s3_port,
            ports_base=base,
            start_timeout_s=20,
        )
        with pytest.raises(ServerStartError) as err:
            stack.start_s3()
    e = err.value
    assert e.server == "s3" and e.port == stack.s3_port
    assert str(stack.log_path("s3")) in str(e)
    assert not stack.running("s3")


def _cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.localstack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_cli_up_status_down(tmp_path: Path) -> None:
    require_binaries()
    home = tmp_path / "infra"
    kafka_port, s3_port = free_ports(2)
    ports = [
        "--kafka-port",
        str(kafka_port),
        "--s3-port",
        str(s3_port),
        "--ports-base",
        str(free_ports_base()),
    ]
    try:
        up = _cli("up", "--home", str(home), *ports)
        assert up.returncode == 0, up.stderr
        stack = LocalStack.from_state(home)
        assert stack.bootstrap in up.stdout and stack.s3_endpoint in up.stdout
        assert str(stack.credentials_path) in up.stdout
        assert stack.secret_key not in up.stdout + up.stderr
        pids = [int((home / "run" / f"{s}.pid").read_text()) for s in ("s3", "kafka")]
        assert all(_alive(p) for p in pids), "servers did not outlive `up`"

        again = _cli("up", "--home", str(home))  # idempotent: ports from state.json
        assert again.returncode == 0, again.stderr
        assert [int((home / "run" / f"{s}.pid").read_text()) for s in ("s3", "kafka")] == pids

        st = _cli("status", "--home", str(home))
        assert st.returncode == 0, st.stdout + st.stderr
        assert st.stdout.count("running") == 2 and str(pids[0]) in st.stdout

        down = _cli("down", "--home", str(home))
        assert down.returncode == 0, down.stderr
        wait_for(lambda: not any(_alive(p) for p in pids), 5.0, "servers gone after down")
        assert not list((home / "run").glob("*.pid"))

        st = _cli("status", "--home", str(home))
        assert st.returncode == 3 and st.stdout.count("stopped") == 2, st.stdout
    finally:
        LocalStack.from_state(home).stop()  # never leave a server behind
