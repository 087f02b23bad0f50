"""The alert service: Kafka event records into the alert store, at least once, nothing lost.

``AlertService`` is one member of a Kafka consumer group reading the event topic.
For every record it

* parses the JSON, and has the store validate it against the event schema (``upsert``
  validates every record, so it is done once); a record that is not JSON, not an object
  or not a valid event goes to the **dead-letter topic** unchanged (same key and value)
  with headers giving the reason and where it came from (``argus.dlq.reason``,
  ``argus.dlq.error``, ``argus.dlq.topic``, ``argus.dlq.partition``,
  ``argus.dlq.offset``, ``argus.dlq.group``, ``argus.dlq.time``), and the service
  carries on;
* stores a valid record with ``store.upsert`` (idempotent by ``event_id``); a valid
  run marker (``{"kind": "run_started", ...}``, ``alerts/run.schema.json``) goes to
  ``store.upsert`` too, which closes what the camera's earlier run left open.

Offsets are committed (``enable_auto_commit=False``) only after every record of the
polled batch was stored or dead-lettered, so a crash redelivers the uncommitted
records and the idempotent upsert makes that harmless.  A store failure
(``AlertStoreError`` or ``OSError``, e.g. disk full) is retried with backoff, never
skipped and never committed past; a record the store rejects for its content (any
other exception, e.g. ``InvalidEventError``) is dead-lettered (reason
``store_rejected``) so one poison record cannot stall its partition.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge

from alerts.kafka_bus import check_security, ensure_topic
from alerts.schema import InvalidEventError
from alerts.store import AlertStore, AlertStoreError
from ingest.retry import Backoff

logger = logging.getLogger(__name__)

SERVICE_CONSUMED = Counter(
    "argus_alert_service_consumed_total",
    "Records read from the event topic by the alert service.",
    ["topic"],
)
SERVICE_STORED = Counter(
    "argus_alert_service_stored_total",
    "Valid event records written to the alert store by the alert service (upserts).",
    ["topic"],
)
SERVICE_DEAD_LETTERED = Counter(
    "argus_alert_service_dead_lettered_total",
    "Records sent to the dead-letter topic, by reason.",
    ["topic", "reason"],
)
SERVICE_STORE_ERRORS = Counter(
    "argus_alert_service_store_errors_total",
    "Failed alert store writes (retried with backoff).",
    ["topic"],
)
SERVICE_LAG = Gauge(
    "argus_alert_service_lag",
    "Records on the partition not yet consumed (high watermark - next offset), records.",
    ["topic", "partition"],
)

MAX_ERROR_HEADER = 1000
"""Longest ``argus.dlq.error`` header, characters."""


class ServiceStoppedError(RuntimeError):
    """The service was stopped while a record waited for the store or the DLQ (internal).

    Attributes:
        offset: Offset of the record that was not finished (it will be redelivered).
    """

    def __init__(self, offset: int) -> None:
        self.offset = offset
        super().__init__(f"stopped before the record at offset {offset} was finished")


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """What ``/readyz`` reports for the alert service.

    Attributes:
        running: The consume loop is running.
        connected: The consumer is in the group with partitions assigned.
        assigned: Assigned partitions as ``"topic:partition"``.
        last_commit: UNIX time (s) of the last successful offset commit, or ``None``.
        consumed: Records read since start.
        dead_lettered: Records sent to the dead-letter topic since start.
        lag: Records not yet consumed on the assigned partitions (at the last poll).
        last_error: Type and message of the last error (broker or store), or ``None``.
    """

    running: bool
    connected: bool
    assigned: tuple[str, ...]
    last_commit: float | None
    consumed: int
    dead_lettered: int
    lag: int | None
    last_error: str | None


class AlertService:
    """Consumes event records from Kafka into an ``AlertStore`` (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        store: AlertStore,
        *,
        dlq_topic: str,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int | None = None,
        max_poll_records: int = 500,
        poll_timeout_s: float = 0.5,
        fetch_max_wait_ms: int = 100,
        auto_offset_reset: str = "earliest",
        client_id: str = "argus-alerts",
        security: Mapping[str, Any] | None = None,
        create_topics: bool = True,
        partitions: int = 3,
        replication_factor: int = 1,
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 10.0,
        dlq_timeout_s: float = 10.0,
    ) -> None:
        """Configure the service; nothing connects until ``run``/``start``.

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            topic: Event topic to consume.
            group_id: Consumer group (members share the partitions).
            store: Where alerts are written (``upsert`` must be idempotent).
            dlq_topic: Dead-letter topic for records that are not valid events.
            session_timeout_ms: Group session timeout, milliseconds.
            heartbeat_interval_ms: Heartbeat interval, milliseconds (default a third
                of the session timeout).
            max_poll_records: Most records handled (and committed) per batch.
            poll_timeout_s: Longest wait of one poll, seconds (also how soon ``stop``
                is noticed).
            fetch_max_wait_ms: How long the broker may hold a fetch waiting for new
                records, milliseconds (bounds the added delivery latency when idle).
            auto_offset_reset: Where a new group starts: ``"earliest"`` reads the
                topic from its beginning, so nothing published before is missed.
            client_id: Kafka client id.
            security: kafka-python SSL/SASL options (see ``alerts.kafka_bus.SECURITY_KEYS``).
            create_topics: Create ``topic`` and ``dlq_topic`` if they are missing.
            partitions: Partitions of a topic the service creates.
            replication_factor: Replicas of a topic the service creates.
            connect_timeout_s: How long one attempt to reach the brokers waits, seconds.
            min_backoff_s: First wait after a failure, seconds (doubles).
            max_backoff_s: Longest wait between retries, seconds.
            dlq_timeout_s: How long one dead-letter send waits for its ack, seconds.

        Raises:
            ValueError: An argument is out of range or an unknown security option.
        """
        if max_poll_records < 1 or poll_timeout_s <= 0 or session_timeout_ms < 1:
            raise ValueError(
                f"need max_poll_records >= 1 ({max_poll_records}), poll_timeout_s > 0 "
                f"({poll_timeout_s}), session_timeout_ms >= 1 ({session_timeout_ms})"
            )
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError(
                f"need 0 < min_backoff_s ({min_backoff_s}) <= max_backoff_s ({max_backoff_s})"
            )
        if dlq_topic == topic:
            raise ValueError(f"dlq_topic must differ from topic ({topic!r})")
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.dlq_topic = dlq_topic
        self.store = store
        self._security = check_security(security)
        hb = heartbeat_interval_ms or max(session_timeout_ms // 3, 1)
        connect_ms = int(connect_timeout_s * 1000)
        self._consumer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": hb,
            "max_poll_records": max_poll_records,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "bootstrap_timeout_ms": connect_ms,
            "reconnect_backoff_max_ms": int(max_backoff_s * 1000),
        }
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": f"{client_id}-dlq",
            "acks": "all",
            "retries": 5,
            # Not idempotent: some brokers (e.g. Tansu on S3 storage) refuse it, and
            # dead letters need no exactly-once; one request in flight keeps order.
            "enable_idempotence": False,
            "max_in_flight_requests_per_connection": 1,
            "max_block_ms": connect_ms,
            "bootstrap_timeout_ms": connect_ms,
            "delivery_timeout_ms": int(dlq_timeout_s * 1000),
            "request_timeout_ms": int(dlq_timeout_s * 1000),
        }
        self._max_poll_records = max_poll_records
        self._poll_ms = int(poll_timeout_s * 1000)
        self._create_topics = create_topics
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._connect_timeout_s = connect_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._dlq_timeout_s = dlq_timeout_s
        self._commit_timeout_ms = int(max(dlq_timeout_s, connect_timeout_s) * 1000)
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._running = False
        self._last_commit: float | None = None
        self._last_error: str | None = None
        self._lag: int | None = None
        self._broker_down_logged = False
        self.consumed = 0
        """Records read since start."""
        self.stored = 0
        """Valid records written to the store since start (redeliveries included)."""
        self.dead_lettered = 0
        """Records sent to the dead-letter topic since start."""

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Run the service in a background thread (``stop`` ends it).

        Raises:
            RuntimeError: It is already running.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("alert service already started")
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=self.run,
            args=(self._stop_event,),
            name=f"alert-service-{self.topic}",
            daemon=True,  # never keeps a failed CLI alive; stop() is the orderly way out
        )
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the background thread: finish the batch in hand, commit, leave the group.

        Args:
            timeout_s: Longest wait for the thread, seconds.

        Raises:
            TimeoutError: The thread did not end in time.
        """
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"alert service did not stop within {timeout_s:.1f} s")
            self._thread = None

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, reconnecting with backoff when the broker fails.

        Returns after the consumer left the group; never raises for broker or store
        failures (they are logged, counted and retried).
        """
        self._running = True
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        try:
            while not stop.is_set():
                try:
                    self._connect()
                    self._broker_down_logged = False
                    backoff.reset()
                    self._consume(stop)
                except (KafkaError, OSError) as e:
                    self._note_broker_error(e)
                    self._disconnect()
                    backoff.wait(stop)
                except ServiceStoppedError:
                    raise
                except Exception as e:  # a bug must not end consumption silently
                    logger.exception("alert service loop failed; reconnecting")
                    self._last_error = f"{type(e).__name__}: {e}"
                    self._disconnect()
                    backoff.wait(stop)
        finally:
            self._running = False
            self._disconnect()
            logger.info("alert service for %s (group %s) stopped", self.topic, self.group_id)

    # -- health ---------------------------------------------------------------------

    def health(self) -> ServiceHealth:
        """Readiness information (no secrets)."""
        consumer = self._consumer
        assigned: tuple[str, ...] = ()
        if consumer is not None:
            with contextlib.suppress(Exception):
                assigned = tuple(
                    sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment())
                )
        return ServiceHealth(
            running=self._running,
            connected=bool(assigned),
            assigned=assigned,
            last_commit=self._last_commit,
            consumed=self.consumed,
            dead_lettered=self.dead_lettered,
            lag=self._lag,
            last_error=self._last_error,
        )

    # -- internals ------------------------------------------------------------------

    def _connect(self) -> None:
        if self._create_topics:
            for name in (self.topic, self.dlq_topic):
                try:
                    ensure_topic(
                        self.bootstrap,
                        name,
                        partitions=self._partitions,
                        replication_factor=self._replication_factor,
                        security=self._security,
                        timeout_s=self._connect_timeout_s,
                    )
                except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as e:
                    logger.warning("cannot create Kafka topic %s (%s); assuming it exists", name, e)
        self._producer = KafkaProducer(**self._producer_config, **self._security)
        self._consumer = KafkaConsumer(**self._consumer_config, **self._security)
        self._consumer.subscribe([self.topic])
        logger.info(
            "alert service consuming %s at %s as group %s (dead letters to %s)",
            self.topic,
            self.bootstrap,
            self.group_id,
            self.dlq_topic,
        )

    def _disconnect(self) -> None:
        """Leave the group without committing (what was not committed is redelivered)."""
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.close(autocommit=False, timeout_ms=int(self._connect_timeout_s * 1000))
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=self._connect_timeout_s)

    def _note_broker_error(self, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}"
        if not self._broker_down_logged:
            self._broker_down_logged = True
            logger.warning(
                "alert service: Kafka at %s failed (%s); retrying with backoff up to %.0f s",
                self.bootstrap,
                self._last_error,
                self._max_backoff_s,
            )
        else:
            logger.debug("alert service: Kafka still failing: %s", self._last_error)

    def _consume(self, stop: threading.Event) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=self._poll_ms, max_records=self._max_poll_records)
            if not batch:
                continue
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            try:
                for tp, messages in batch.items():
                    for message in messages:
                        self.consumed += 1
                        SERVICE_CONSUMED.labels(topic=self.topic).inc()
                        self._handle(message, stop)
                        offsets[tp] = OffsetAndMetadata(message.offset + 1, "", -1)
            except ServiceStoppedError as e:
                logger.info(
                    "alert service stopped mid-batch (offset %d); not committing it: "
                    "it will be redelivered",
                    e.offset,
                )
                return
            self._commit(consumer, offsets)
            self._update_lag(consumer, offsets)

    def _commit(
        self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        try:
            consumer.commit(offsets, timeout_ms=self._commit_timeout_ms)
        except KafkaError as e:
            # e.g. a rebalance took the partitions: their new owner gets them again.
            self._last_error = f"{type(e).__name__}: {e}"
            logger.warning(
                "alert service: offset commit failed (%s); those records will be redelivered",
                self._last_error,
            )
            return
        self._last_commit = time.time()

    def _update_lag(
        self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        total = 0
        for tp, committed in offsets.items():
            high = consumer.highwater(tp)  # from the last fetch response: no request
            if high is None:
                continue
            lag = max(int(high) - committed.offset, 0)
            SERVICE_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
            total += lag
        self._lag = total

    def _handle(self, message: Any, stop: threading.Event) -> None:
        """Store or dead-letter one consumer record.

        Raises:
            ServiceStoppedError: ``stop`` was set while the store or the DLQ kept failing.
        """
        raw: bytes | None = message.value
        try:
            if raw is None:
                raise ValueError("empty value (tombstone)")
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            # RecursionError: absurdly nested JSON ("[[[[..."); hostile input, not a crash.
            self._dead_letter(message, "malformed_json", f"{type(e).__name__}: {e}"[:500], stop)
            return
        if not isinstance(record, dict):
            self._dead_letter(
                message, "invalid_schema", f"expected an object, got {type(record).__name__}", stop
            )
            return
        self._store(message, record, stop)  # the store validates it (once: ~0.2 ms)

    def _store(self, message: Any, record: dict[str, Any], stop: threading.Event) -> None:
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        failing = False
        while True:
            try:
                self.store.upsert(record)
            except (AlertStoreError, OSError) as e:
                SERVICE_STORE_ERRORS.labels(topic=self.topic).inc()
                self._last_error = f"{type(e).__name__}: {e}"
                if not failing:
                    failing = True
                    logger.error(
                        "alert store write failed for event_id=%s (%s); not committing, "
                        "retrying with backoff up to %.0f s",
                        record.get("event_id"),
                        self._last_error,
                        self._max_backoff_s,
                    )
                if backoff.wait(stop):
                    raise ServiceStoppedError(message.offset) from e
                continue
            except InvalidEventError as e:  # neither an event record nor a run marker
                self._dead_letter(message, "invalid_schema", f"{e.path}: {e.reason}", stop)
                return
            except RecursionError as e:  # deep nesting inside an otherwise plausible object
                self._dead_letter(message, "invalid_schema", f"RecursionError: {e}"[:500], stop)
                return
            except Exception as e:  # the store refuses this record's content: poison
                self._dead_letter(message, "store_rejected", f"{type(e).__name__}: {e}", stop)
                return
            break
        if failing:
            logger.info("alert store writes succeed again (event_id=%s)", record.get("event_id"))
        self.stored += 1
        SERVICE_STORED.labels(topic=self.topic).inc()

    def _dead_letter(self, message: Any, reason: str, error: str, stop: threading.Event) -> None:
        """Produce ``message`` unchanged to the DLQ with reason headers; retry until acked."""
        headers = [
            ("argus.dlq.reason", reason.encode()),
            ("argus.dlq.error", error[:MAX_ERROR_HEADER].encode("utf-8", "replace")),
            ("argus.dlq.topic", str(message.topic).encode()),
            ("argus.dlq.partition", str(message.partition).encode()),
            ("argus.dlq.offset", str(message.offset).encode()),
            ("argus.dlq.group", self.group_id.encode()),
            ("argus.dlq.time", datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
        ]
        logger.warning(
            "dead-lettering %s[%d]@%d to %s: %s (%s)",
            message.topic,
            message.partition,
            message.offset,
            self.dlq_topic,
            reason,
            error[:200],
        )
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        while True:
            try:
                if self._producer is None:
                    self._producer = KafkaProducer(**self._producer_config, **self._security)
                self._producer.send(
                    self.dlq_topic, key=message.key, value=message.value, headers=headers
                ).get(timeout=self._dlq_timeout_s)
            except (KafkaError, OSError) as e:
                self._last_error = f"{type(e).__name__}: {e}"
                logger.warning("dead-letter send failed (%s); retrying", self._last_error)
                if self._producer is not None:
                    with contextlib.suppress(Exception):
                        self._producer.close(timeout=0)
                    self._producer = None
                if backoff.wait(stop):
                    raise ServiceStoppedError(message.offset) from e
                continue
            break
        self.dead_lettered += 1
        SERVICE_DEAD_LETTERED.labels(topic=self.topic, reason=reason).inc()
