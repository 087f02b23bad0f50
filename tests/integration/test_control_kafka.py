"""The Kafka control channel against a real broker (Tansu on SeaweedFS S3, from ``tests.infra``).

Publisher and subscriber round trip, a late subscriber rebuilding the latest state from the
compacted topic, a broker outage in the middle, and the API publishing to a worker's state.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.api import create_app
from alerts.control import (
    RULES_KEY,
    ControlPublishError,
    ControlState,
    KafkaControlPublisher,
    KafkaControlSubscriber,
    republish_state,
    rules_message,
    suppression_key,
)
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from deploy.localstack import LocalStack
from selector.suppression import Suppression
from tests.factories import T0, make_event
from tests.infra import fresh_localstack, kill_broker, localstack, restart_broker, wait_for

__all__ = ["fresh_localstack", "localstack"]  # the fixtures, re-exported for pytest

pytestmark = pytest.mark.integration

FAR = time.time() + 30 * 86400  # suppressions that stay active during the test


def _topic() -> str:
    return f"control-{uuid.uuid4().hex[:8]}"


def _suppression(n: int) -> Suppression:
    return Suppression(
        suppression_id=str(uuid.UUID(int=n)),
        camera_id=f"cam-{n}",
        rule_id="intrusion:z",
        zone="z",
        label="person",
        region=(0.0, 0.0, 10.0 * n, 10.0 * n),
        expires_at=FAR,
        created_at=T0 + n,
        note=f"n{n}",
    )


class Recorder:
    """``on_change`` that keeps every call and folds them into a ``ControlState``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.state = ControlState()
        self._lock = threading.Lock()

    def __call__(self, key: str, value: Any) -> None:
        with self._lock:
            self.calls.append((key, value))
        self.state.apply(key, value)

    def keys(self) -> list[str]:
        with self._lock:
            return [k for k, _ in self.calls]


def _subscriber(bootstrap: str, topic: str, on_change: Any) -> KafkaControlSubscriber:
    return KafkaControlSubscriber(
        bootstrap,
        on_change,
        topic=topic,
        poll_timeout_s=0.2,
        probe_interval_s=0.5,
        connect_timeout_s=2.0,
        min_backoff_s=0.1,
        max_backoff_s=0.5,
    )


@pytest.fixture
def publisher(localstack: LocalStack) -> Iterator[KafkaControlPublisher]:
    pub = KafkaControlPublisher(localstack.bootstrap, _topic(), publish_timeout_s=10.0)
    yield pub
    pub.close()


def test_round_trip_in_order_with_tombstones(
    localstack: LocalStack, publisher: KafkaControlPublisher
) -> None:
    rec = Recorder()
    sub = _subscriber(localstack.bootstrap, publisher.topic, rec)
    with sub:
        assert sub.wait_synced(30), sub.state()  # empty topic: synced at once
        s1, s2 = _suppression(1), _suppression(2)
        t0 = time.monotonic()
        publisher.publish(RULES_KEY, rules_message(1, [{"type": "intrusion"}], T0))
        publisher.publish(suppression_key(s1.suppression_id), s1.to_dict())
        publisher.publish(suppression_key(s2.suppression_id), s2.to_dict())
        publisher.publish(suppression_key(s1.suppression_id), None)
        publisher.publish(RULES_KEY, rules_message(2, [{"type": "loitering"}], T0))
        wait_for(lambda: len(rec.calls) == 5, 20, "5 control records")
        latency = time.monotonic() - t0
        assert rec.keys() == [
            RULES_KEY,
            suppression_key(s1.suppression_id),
            suppression_key(s2.suppression_id),
            suppression_key(s1.suppression_id),
            RULES_KEY,
        ]
        assert rec.calls[3][1] is None  # the tombstone reached on_change as None
        assert rec.state.rules == (2, [{"type": "loitering"}])
        assert rec.state.suppressions == {s2.suppression_id: s2}
        st = sub.state()
        assert st.connected and st.synced and st.records == 5 and st.keys == 2
        assert st.last_error is None and st.malformed == 0
        assert set(sub.snapshot()) == {RULES_KEY, suppression_key(s2.suppression_id)}
        assert publisher.health().connected and publisher.health().published == 5
    assert not sub.state().running
    print(f"\n5 control messages published and applied in {latency * 1e3:.0f} ms")


def test_late_subscriber_rebuilds_the_latest_state(
    localstack: LocalStack, publisher: KafkaControlPublisher
) -> None:
    for rev in (1, 2, 3):
        publisher.publish(RULES_KEY, rules_message(rev, [{"type": f"r{rev}"}], T0 + rev))
    sups = [_suppression(n) for n in (1, 2, 3)]
    for s in sups:
        publisher.publish(suppression_key(s.suppression_id), s.to_dict())
    publisher.publish(suppression_key(sups[1].suppression_id), None)  # deleted
    # a malformed record and a handler that fails once must not stop the subscriber
    from kafka import KafkaProducer

    raw = KafkaProducer(bootstrap_servers=localstack.bootstrap, enable_idempotence=False)
    raw.send(publisher.topic, key=b"suppression/x", value=b"{not json").get(10)
    raw.send(publisher.topic, key=None, value=b"{}").get(10)
    raw.close()

    rec = Recorder()
    failed = threading.Event()

    def on_change(key: str, value: Any) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("handler bug")
        rec(key, value)

    sub = _subscriber(localstack.bootstrap, publisher.topic, on_change)
    with sub:
        assert sub.wait_synced(30), sub.state()
        st = sub.state()
        assert st.records == 7 and st.malformed == 2 and st.handler_errors == 1
        # the failed first call was the rules revision 1: later ones still arrived
        assert rec.state.rules == (3, [{"type": "r3"}])
        assert rec.state.suppressions == {
            sups[0].suppression_id: sups[0],
            sups[2].suppression_id: sups[2],
        }
        assert set(sub.snapshot()) == {
            RULES_KEY,
            suppression_key(sups[0].suppression_id),
            suppression_key(sups[2].suppression_id),
        }


def test_control_topic_is_created_compacted(
    localstack: LocalStack, publisher: KafkaControlPublisher
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    publisher.publish(RULES_KEY, rules_message(1, [], T0))
    admin = KafkaAdminClient(bootstrap_servers=localstack.bootstrap, request_timeout_ms=10000)
    try:
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, publisher.topic)], config_filter="all"
        )
        assert configs["topic"][publisher.topic]["cleanup.policy"]["value"] == "compact"
        (info,) = admin.describe_topics([publisher.topic])
        assert len(info["partitions"]) == 1  # one partition: one total order
    finally:
        admin.close()


def test_subscriber_and_publisher_survive_a_broker_outage(
    fresh_localstack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = fresh_localstack
    topic = _topic()
    caplog.set_level(logging.INFO, logger="alerts.control")
    pub = KafkaControlPublisher(stack.bootstrap, topic, publish_timeout_s=2.0)
    rec = Recorder()
    sub = _subscriber(stack.bootstrap, topic, rec)
    try:
        sub.start()
        pub.publish(RULES_KEY, rules_message(1, [{"type": "a"}], T0))
        wait_for(lambda: rec.state.rules is not None, 20, "rules revision 1")

        kill_broker(stack)
        wait_for(lambda: not sub.state().connected, 20, "the subscriber to notice the outage")
        assert sub.state().last_error is not None and sub.state().running
        t0 = time.monotonic()
        with pytest.raises(ControlPublishError):
            pub.publish(RULES_KEY, rules_message(2, [{"type": "lost"}], T0))
        assert time.monotonic() - t0 < 15
        time.sleep(2.0)  # several failed reconnects: logged once
        assert rec.state.rules == (1, [{"type": "a"}])  # the last state is kept

        restart_broker(stack)
        deadline = time.monotonic() + 30
        while True:  # the publisher reconnects on its own
            try:
                pub.publish(RULES_KEY, rules_message(3, [{"type": "after"}], T0))
                break
            except ControlPublishError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        wait_for(
            lambda: rec.state.rules == (3, [{"type": "after"}]), 30, "the change after restart"
        )
        assert sub.state().connected and sub.state().last_error is None
        # applied once each, in order; the change refused during the outage never arrives
        assert [v["revision"] for _, v in rec.calls] == [1, 3]
    finally:
        sub.stop()
        pub.close()
    sub_warnings = [
        r
        for r in caplog.records
        if r.name == "alerts.control" and "control subscriber: Kafka" in r.getMessage()
    ]
    assert len(sub_warnings) == 1  # once per outage, not per attempt
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_api_changes_reach_a_worker_over_kafka(
    localstack: LocalStack, publisher: KafkaControlPublisher, tmp_path: Path
) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    key = "test-key-0123456789abcdef"
    app = create_app(
        store,
        LocalEvidenceStore(tmp_path / "evidence"),
        api_key=key,
        control=publisher,
        validate_rules=lambda rules: [],
    )
    rec = Recorder()
    sub = _subscriber(localstack.bootstrap, publisher.topic, rec)
    auth = {"X-API-Key": key}
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client, sub:
            ev = make_event(1)
            store.upsert(ev.to_record())
            r = client.post(f"/api/v1/alerts/{ev.event_id}/false-positive", headers=auth, json={})
            assert r.status_code == 201, r.text
            sid = r.json()["suppression_id"]
            r = client.put(
                "/api/v1/rules", headers=auth, json={"rules": [{"type": "x"}], "revision": 0}
            )
            assert r.status_code == 200
            wait_for(lambda: sid in rec.state.suppressions, 20, "the suppression on the worker")
            wait_for(lambda: rec.state.rules is not None, 20, "the rules on the worker")
            assert rec.state.suppressions[sid].matches(ev, time.time())
            assert client.delete(f"/api/v1/suppressions/{sid}", headers=auth).status_code == 204
            wait_for(lambda: sid not in rec.state.suppressions, 20, "the tombstone")
            # republishing at API start is harmless: same values again
            assert republish_state(store, publisher) == 1
            wait_for(lambda: rec.keys().count(RULES_KEY) == 2, 20, "the republished rules")
            assert rec.state.rules == (1, [{"type": "x"}])
    finally:
        store.close()
