"""KafkaEventBus against a real broker (Tansu on SeaweedFS S3, from ``tests.infra``).

Tansu on S3 storage refuses the idempotent producer, so these buses run with
``idempotent=False`` (``max_in_flight_requests_per_connection=1`` keeps retries in order);
``test_idempotent_producer_on_memory_broker`` covers ``idempotent=True`` on a Tansu with
memory storage started here.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.kafka_bus import BusFlushTimeoutError, KafkaEventBus
from alerts.schema import InvalidEventError
from deploy.localstack import LocalStack, find_tansu, free_port, port_accepts
from tests.factories import make_event, make_track_record
from tests.infra import broker_down, localstack, wait_for

__all__ = ["localstack"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.integration

CAMERAS = ("cam-1", "cam-2", "cam-3", "cam-4")  # murmur2 % 3: partitions 0, 2, 2, 1


def _records(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """n valid start records spread over four cameras, ``start_seq`` = publish index."""
    return [
        make_event(i, camera=CAMERAS[i % len(CAMERAS)]).to_record() for i in range(start, start + n)
    ]


def _bus(bootstrap: str, topic: str, spool: Path, **kw: Any) -> KafkaEventBus:
    kw.setdefault("idempotent", False)
    kw.setdefault("connect_timeout_s", 2.0)
    kw.setdefault("max_backoff_s", 0.5)
    kw.setdefault("delivery_timeout_s", 10.0)
    kw.setdefault("close_timeout_s", 5.0)
    return KafkaEventBus(bootstrap, topic, spool_dir=spool, **kw)


def read_topic(bootstrap: str, topic: str, n: int, timeout_s: float = 20.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, until ``n`` are read (or timeout)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10000,
    )
    try:
        wait_for(lambda: bool(consumer.partitions_for_topic(topic)), 10.0, f"{topic} metadata")
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=200).values():
                out.extend(messages)
        # a little more, to catch records beyond n (duplicates, leftovers)
        for messages in consumer.poll(timeout_ms=300).values():
            out.extend(messages)
        return out
    finally:
        consumer.close()


def check_per_camera_order(messages: list[Any]) -> dict[str, list[int]]:
    """Each camera on one partition, its records in publish order; returns seqs per camera."""
    partition_of: dict[str, int] = {}
    seqs: dict[str, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        rec = json.loads(m.value)
        cam = m.key.decode()
        assert cam == rec["camera_id"]
        assert partition_of.setdefault(cam, m.partition) == m.partition, f"{cam} on 2 partitions"
        seqs.setdefault(cam, []).append(rec["start_seq"])
    for cam, s in seqs.items():
        assert s == sorted(s), f"{cam} out of order: {s}"
    return seqs


def _topic() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


def test_publish_delivers_every_record_in_order_per_camera(
    localstack: LocalStack, tmp_path: Path
) -> None:
    topic = _topic()
    bus = _bus(localstack.bootstrap, topic, tmp_path / "spool")
    try:
        latencies = []
        for rec in _records(100):
            t0 = time.perf_counter()
            bus.publish(rec)
            latencies.append(time.perf_counter() - t0)
        bus.flush(30)
        assert bus.spool.depth == 0
        assert bus.health().connected and bus.health().delivered == 100
    finally:
        bus.close()
    messages = read_topic(localstack.bootstrap, topic, 100)
    assert len(messages) == 100
    seqs = check_per_camera_order(messages)
    assert sorted(s for v in seqs.values() for s in v) == list(range(100))
    assert len({m.partition for m in messages}) >= 2  # keys spread over the 3 partitions
    lat = sorted(latencies)
    print(
        f"\npublish() latency over 100: p50 {statistics.median(lat) * 1e3:.2f} ms, "
        f"p95 {lat[94] * 1e3:.2f} ms, max {lat[-1] * 1e3:.2f} ms"
    )


def test_bus_starts_without_broker_spools_then_replays_in_order(
    localstack: LocalStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alerts.kafka_bus")
    topic = _topic()
    n = 40
    with broker_down(localstack):
        t0 = time.monotonic()
        bus = _bus(localstack.bootstrap, topic, tmp_path / "spool")
        assert time.monotonic() - t0 < 1.0  # the worker starts at once
        try:
            for rec in _records(n):
                bus.publish(rec)
            assert bus.spool.depth == n
            wait_for(lambda: bus.health().last_error is not None, 10, "a failed attempt")
            assert not bus.health().connected
            with pytest.raises(BusFlushTimeoutError) as err:
                bus.flush(0.3)  # bounded, and says how many wait
            assert err.value.pending == n
        except BaseException:
            bus.close()
            raise
    # broker_down restarted the broker
    try:
        bus.flush(30)
        assert bus.spool.depth == 0
    finally:
        bus.close()
    messages = read_topic(localstack.bootstrap, topic, n)
    seqs = check_per_camera_order(messages)
    assert sorted(set(s for v in seqs.values() for s in v)) == list(range(n))
    text = [r.getMessage() for r in caplog.records]
    assert sum("not reachable" in t for t in text) == 1  # logged once, not per retry
    assert any("resumed" in t for t in text)
    assert any(f"replayed {n} spooled records" in t for t in text)


def test_bounded_spool_keeps_newest_while_broker_down(
    localstack: LocalStack, tmp_path: Path
) -> None:
    topic = _topic()
    with broker_down(localstack):
        bus = _bus(localstack.bootstrap, topic, tmp_path / "spool", spool_max_records=10)
        try:
            for rec in _records(15):
                bus.publish(rec)
            assert bus.spool.depth == 10
            assert bus.spool.dropped == 5
            assert bus.health().dropped == 5
        except BaseException:
            bus.close()
            raise
    try:
        bus.flush(30)
    finally:
        bus.close()
    messages = read_topic(localstack.bootstrap, topic, 10)
    got = sorted({json.loads(m.value)["start_seq"] for m in messages})
    assert got == list(range(5, 15))


def test_track_summaries_never_push_events_out_and_go_after_them(
    localstack: LocalStack, tmp_path: Path
) -> None:
    """A busy camera's track summaries, spooled through an outage, have a spool and a bound
    of their own: every event is kept, and events reach the broker first."""
    topic = _topic()
    with broker_down(localstack):
        bus = _bus(
            localstack.bootstrap,
            topic,
            tmp_path / "spool",
            spool_max_records=10,
            track_spool_max_records=5,
        )
        try:
            for i in range(30):
                bus.publish(make_track_record(i, camera=CAMERAS[i % len(CAMERAS)]))
            for rec in _records(8):
                bus.publish(rec)
            assert (bus.spool.depth, bus.spool.dropped) == (8, 0)  # no event lost
            assert (bus.track_spool.depth, bus.track_spool.dropped) == (5, 25)
            assert bus.health().depth == 13 and bus.health().dropped == 25
            assert (tmp_path / "spool-tracks").is_dir()
        except BaseException:
            bus.close()
            raise
    try:
        bus.flush(30)
    finally:
        bus.close()
    messages = read_topic(localstack.bootstrap, topic, 13)
    kinds = ["track" if json.loads(m.value).get("kind") else "event" for m in messages]
    assert kinds.count("event") == 8 and kinds.count("track") == 5
    # one partition per camera: within each, every event is before every track summary
    for part in {m.partition for m in messages}:
        mine = [k for m, k in zip(messages, kinds, strict=True) if m.partition == part]
        assert mine == sorted(mine, key=lambda k: k == "track"), mine


def test_spooled_records_survive_a_worker_restart(localstack: LocalStack, tmp_path: Path) -> None:
    topic = _topic()
    spool = tmp_path / "spool"
    with broker_down(localstack):
        bus = _bus(localstack.bootstrap, topic, spool, close_timeout_s=0.2)
        for rec in _records(7):
            bus.publish(rec)
        bus.close()  # gives up delivering; records stay on disk
    bus2 = _bus(localstack.bootstrap, topic, spool)
    try:
        assert bus2.spool.depth == 7
        bus2.flush(30)
    finally:
        bus2.close()
    messages = read_topic(localstack.bootstrap, topic, 7)
    assert sorted({json.loads(m.value)["start_seq"] for m in messages}) == list(range(7))


def test_invalid_record_refused_and_local_subscribers_fed_without_broker(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    bus = _bus(f"127.0.0.1:{port}", "t", tmp_path / "spool", close_timeout_s=0.1)
    got: list[dict[str, Any]] = []
    bus.subscribe(got.append)
    try:
        bad = make_event(1).to_record() | {"priority": 500}
        with pytest.raises(InvalidEventError):
            bus.publish(bad)
        assert bus.spool.depth == 0 and got == []
        bus.publish(make_event(2).to_record())
        assert [r["start_seq"] for r in got] == [2]
        assert bus.spool.depth == 1
        with pytest.raises(ValueError, match="unknown Kafka security options"):
            KafkaEventBus("x:1", "t", spool_dir=tmp_path / "s2", security={"sasl_pasword": "x"})
    finally:
        t0 = time.monotonic()
        bus.close()
        assert time.monotonic() - t0 < 5.0  # close does not hang on a dead broker


@pytest.fixture
def memory_broker() -> Iterator[str]:
    """A Tansu broker with memory storage (supports the idempotent producer)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            find_tansu(),
            "broker",
            f"--listener-url={url}",
            f"--advertised-listener-url={url}",
            "--storage-engine=memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_accepts(port) or proc.poll() is not None, 10, "tansu memory broker")
        assert proc.poll() is None, "tansu exited"
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


def test_idempotent_producer_on_memory_broker(memory_broker: str, tmp_path: Path) -> None:
    bus = _bus(memory_broker, "events", tmp_path / "spool", idempotent=True)
    try:
        for rec in _records(30):
            bus.publish(rec)
        bus.flush(30)
        assert bus.health().delivered == 30 and bus.health().last_error is None
    finally:
        bus.close()
    messages = read_topic(memory_broker, "events", 30)
    assert len(messages) == 30
    check_per_camera_order(messages)
