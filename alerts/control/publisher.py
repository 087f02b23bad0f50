"""``KafkaControlPublisher``: the API's side of the control topic."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaProducer

from alerts.control.codec import (
    DEFAULT_CONTROL_TOPIC,
    ControlPublishError,
    ControlValue,
    describe_error,
    encode_value,
)
from alerts.control.metrics import CONTROL_PUBLISH_ERRORS, CONTROL_PUBLISHED
from alerts.control.topic import ensure_control_topic
from alerts.kafka_bus import check_security

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


@dataclass(frozen=True, slots=True)
class PublisherHealth:
    """What the control publisher reports for readiness.

    Attributes:
        connected: The last publish succeeded (``None``-like ``False`` before any).
        published: Messages acknowledged by the broker since start.
        last_error: Type and message of the last failure, or ``None``.
    """

    connected: bool
    published: int
    last_error: str | None


class KafkaControlPublisher:
    """``ControlPublisher`` on a compacted Kafka topic (API side).

    ``publish`` returns only once the broker acknowledged the message (``acks="all"``),
    or raises ``ControlPublishError`` after at most about ``2 * publish_timeout_s``.  The
    producer's own delivery timeout equals ``publish_timeout_s``, so a message reported
    as failed is expired by the producer rather than left queued for a later, surprising
    delivery (a request already on the wire when the broker fails may still land; the
    API's ``republish_state`` at start makes the topic agree with the store again).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = DEFAULT_CONTROL_TOPIC,
        *,
        security: Mapping[str, Any] | None = None,
        client_id: str = "argus-control",
        create_topic: bool = True,
        partitions: int = 1,
        replication_factor: int = 1,
        publish_timeout_s: float = 5.0,
        idempotent: bool = False,
    ) -> None:
        """Configure the publisher; nothing connects until the first ``publish``.

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            topic: The control topic.
            security: kafka-python SSL/SASL options (``alerts.kafka_bus.SECURITY_KEYS``);
                never logged.
            client_id: Kafka client id.
            create_topic: Create the topic (compacted) if it is missing.
            partitions: Partitions of a topic created here (1 keeps one total order).
            replication_factor: Replicas of a topic created here.
            publish_timeout_s: Bound on one message's delivery (and on waiting for
                metadata), seconds.
            idempotent: ``enable_idempotence`` of the producer (off by default: some
                brokers, e.g. Tansu on S3, refuse it; one request in flight keeps order).

        Raises:
            ValueError: Bad timeout/partitions, or an unknown security option.
        """
        if publish_timeout_s <= 0 or partitions < 1:
            raise ValueError(
                f"need publish_timeout_s > 0 ({publish_timeout_s}), partitions >= 1 ({partitions})"
            )
        self.bootstrap = bootstrap
        self.topic = topic
        self._security = check_security(security)
        ms = int(publish_timeout_s * 1000)
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "retries": 3,
            "enable_idempotence": idempotent,
            "max_in_flight_requests_per_connection": 1,
            "linger_ms": 0,
            "request_timeout_ms": ms,
            "delivery_timeout_ms": ms,
            "max_block_ms": ms,
            "bootstrap_timeout_ms": ms,
        }
        self._timeout_s = publish_timeout_s
        self._client_id = client_id
        self._create_topic = create_topic
        self._topic_ready = False
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._connected = False
        self._last_error: str | None = None
        self.published = 0
        """Messages acknowledged by the broker since start."""

    def publish(self, key: str, value: ControlValue, partition: int | None = None) -> None:
        """Send one keyed message and wait for the broker's acknowledgement (to
        ``partition``, else where the default partitioner puts the key).

        Raises:
            ValueError: A bad key or value (see ``encode_value``); nothing is sent.
            ControlPublishError: Not acknowledged within the timeout, or the broker
                refused it (the reason names no secret).
        """
        data = encode_value(key, value)
        with self._lock:
            try:
                producer = self._connect()
                future = producer.send(
                    self.topic, key=key.encode("utf-8"), value=data, partition=partition
                )
                producer.flush(timeout=self._timeout_s + 1.0)
                future.get(timeout=1.0)
            except Exception as e:
                self._failed(key, e)
                raise ControlPublishError(key, self._last_error or type(e).__name__) from e
            self.published += 1
            CONTROL_PUBLISHED.labels(transport="kafka").inc()
            if not self._connected:
                logger.info("control publisher: delivering to %s at %s", self.topic, self.bootstrap)
            self._connected = True
            self._last_error = None
        logger.debug("control message %s published to %s", key, self.topic)

    def health(self) -> PublisherHealth:
        """Readiness information (no secrets)."""
        return PublisherHealth(
            connected=self._connected, published=self.published, last_error=self._last_error
        )

    def close(self) -> None:
        """Close the producer (idempotent)."""
        with self._lock:
            self._close_producer()

    def __enter__(self) -> KafkaControlPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> KafkaProducer:
        if self._create_topic and not self._topic_ready:
            ensure_control_topic(
                self.bootstrap,
                self.topic,
                partitions=self._partitions,
                replication_factor=self._replication_factor,
                security=self._security,
                client_id=f"{self._client_id}-admin",
                timeout_s=self._timeout_s,
            )
            self._topic_ready = True
        if self._producer is None:
            self._producer = KafkaProducer(**self._config, **self._security)
        return self._producer

    def _failed(self, key: str, error: BaseException) -> None:
        self._last_error = describe_error(error)
        CONTROL_PUBLISH_ERRORS.labels(transport="kafka").inc()
        if self._connected or self.published == 0:
            logger.warning(
                "control publisher: %s not delivered to %s at %s (%s)",
                key,
                self.topic,
                self.bootstrap,
                self._last_error,
            )
        self._connected = False
        self._close_producer()

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=0)
