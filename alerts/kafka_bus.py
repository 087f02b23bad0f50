"""Event records over Kafka, with nothing lost: ``KafkaEventBus`` (an ``EventBus``).

``publish`` validates the record, appends it to a ``DiskSpool`` (fsync'd) and returns:
the pipeline never waits for the network.  A background sender thread delivers the
spooled records oldest first with kafka-python's ``KafkaProducer`` and acknowledges
them in the spool only after the broker acknowledged them (``acks="all"``), so a
record survives a broker outage and a worker crash (it is delivered at least once;
the alert store is idempotent by ``event_id``).

Ordering: the message key is ``camera_id``, so each camera's events go to one
partition in publish order.  The producer either is idempotent or has one request in
flight per connection, so its own retries keep that order.  When a batch fails after
the producer's retries, the sender resends from the oldest unacknowledged record: the
partition may then hold a few duplicates, but the last copy of every record is in
publish order.

Track summaries (``kind: "track"``, for search) have a spool of their own beside the
events' (``<spool_dir>-tracks``, its own bound), and are sent only when no event waits: a
long outage of a busy camera's summaries never pushes an alert out of the events' bounded
spool, and alerts go first when the broker comes back.

While no broker answers, records stay spooled: this is logged once at WARNING, and
once at INFO when delivery resumes (and again when the backlog has been replayed),
with backoff between attempts.  Subscribers registered with ``subscribe`` get every
record at ``publish`` (local fan-out, e.g. the JSON-lines sink), independently of Kafka.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)
from prometheus_client import Counter, Gauge

from alerts.bus import BusClosedError, InProcessBus, RecordHandler
from alerts.schema import TRACK, InvalidEventError, validate_bus_record
from alerts.spool import DiskSpool, SpoolEntry
from ingest.retry import Backoff

logger = logging.getLogger(__name__)

KAFKA_DELIVERED = Counter(
    "argus_kafka_delivered_total",
    "Event records acknowledged by the Kafka broker (acks=all).",
    ["topic"],
)
KAFKA_DELIVERY_ERRORS = Counter(
    "argus_kafka_delivery_errors_total",
    "Failed attempts to deliver a batch of spooled event records to Kafka.",
    ["topic"],
)
KAFKA_CONNECTED = Gauge(
    "argus_kafka_producer_connected",
    "1 while the event bus's last delivery attempt to Kafka succeeded, else 0.",
    ["topic"],
)

SECURITY_KEYS = frozenset(
    {
        "security_protocol",
        "ssl_context",
        "ssl_check_hostname",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_crlfile",
        "ssl_password",
        "ssl_ciphers",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_name",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
    }
)
"""kafka-python options accepted in ``security=`` (passed to every client, never logged)."""


MAX_RECORD_BYTES = 512 * 1024
"""Largest event record the bus accepts, bytes (real records are well under 2 KiB)."""


class BusFlushTimeoutError(TimeoutError):
    """``flush`` gave up before every spooled record was delivered.

    The records are not lost: they stay in the spool and are delivered later.

    Attributes:
        pending: Records still spooled when the wait ended.
        timeout_s: How long ``flush`` waited, seconds.
    """

    def __init__(self, pending: int, timeout_s: float) -> None:
        self.pending = pending
        self.timeout_s = timeout_s
        super().__init__(
            f"{pending} event records not yet delivered to Kafka after {timeout_s:.1f} s "
            "(they stay spooled and are retried)"
        )


def check_security(security: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``security`` options for kafka-python clients.

    Returns:
        A copy of the options.

    Raises:
        ValueError: An option kafka-python's clients do not take for security (its
            name is given, never its value).
    """
    opts = dict(security or {})
    unknown = sorted(set(opts) - SECURITY_KEYS)
    if unknown:
        raise ValueError(
            f"unknown Kafka security options {unknown}; allowed: {sorted(SECURITY_KEYS)}"
        )
    return opts


def ensure_topic(
    bootstrap: str,
    topic: str,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    client_id: str = "argus-admin",
    security: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
) -> bool:
    """Create ``topic`` if it does not exist.

    Args:
        bootstrap: ``host:port[,host:port...]`` of the brokers.
        topic: Topic name.
        partitions: Partitions of a new topic.
        replication_factor: Replicas of a new topic.
        client_id: Kafka client id.
        security: kafka-python SSL/SASL options (see ``SECURITY_KEYS``).
        timeout_s: Bound on connecting and on the request, seconds.

    Returns:
        ``True`` if it was created, ``False`` if it existed already.

    Raises:
        kafka.errors.KafkaError: The broker is unreachable or refused the request.
    """
    ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=ms,
        bootstrap_timeout_ms=ms,
        **check_security(security),
    )
    try:
        admin.create_topics([NewTopic(topic, partitions, replication_factor)], timeout_ms=ms)
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
    logger.info("created Kafka topic %s (%d partitions)", topic, partitions)
    return True


@dataclass(frozen=True, slots=True)
class BusHealth:
    """What the bus reports for readiness.

    Attributes:
        connected: The last delivery attempt reached the broker.
        depth: Records spooled, not yet acknowledged by the broker.
        dropped: Records dropped by the spool bound since start.
        delivered: Records acknowledged by the broker since start.
        last_delivery: UNIX time (s) of the last acknowledged batch, or ``None``.
        last_error: Type and message of the last delivery error, or ``None``.
    """

    connected: bool
    depth: int
    dropped: int
    delivered: int
    last_delivery: float | None
    last_error: str | None


class KafkaEventBus:
    """``EventBus`` over Kafka with a disk spool in front (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        spool_dir: Path,
        spool_max_records: int = 100_000,
        spool_max_bytes: int = 256 * 1024 * 1024,
        idempotent: bool = True,
        acks: str | int = "all",
        retries: int = 5,
        delivery_timeout_s: float = 30.0,
        client_id: str = "argus-worker",
        security: Mapping[str, Any] | None = None,
        partitions: int = 3,
        replication_factor: int = 1,
        create_topic: bool = True,
        batch_records: int = 500,
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 10.0,
        close_timeout_s: float = 10.0,
        validate: bool = True,
        spool_fsync: bool = True,
        track_spool_max_records: int = 20_000,
    ) -> None:
        """Open the spool and start the sender thread; never waits for the broker.

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            topic: Topic the records go to.
            spool_dir: Directory of the disk spool (one bus per directory).
            spool_max_records: Most records spooled; beyond, the oldest are dropped.
            spool_max_bytes: Most payload bytes spooled; beyond, the oldest are dropped.
            idempotent: ``enable_idempotence`` of the producer (turn off for brokers that
                do not support it; ``max_in_flight_requests_per_connection=1`` then keeps
                retries in order).
            acks: Producer ``acks`` (``"all"``: every in-sync replica).
            retries: Producer retries of one batch before the sender backs off.
            delivery_timeout_s: Bound on one record's delivery attempt (send, retries,
                acknowledgement), seconds.
            client_id: Kafka client id.
            security: kafka-python SSL/SASL options (see ``SECURITY_KEYS``); never logged.
            partitions: Partitions of the topic when the bus creates it.
            replication_factor: Replicas of the topic when the bus creates it.
            create_topic: Create the topic if it is missing (``TopicAlreadyExists`` is fine).
            batch_records: Most records taken from the spool per delivery round.
            connect_timeout_s: How long one attempt to reach the broker waits, seconds.
            min_backoff_s: First wait after a failed attempt, seconds (doubles).
            max_backoff_s: Longest wait between attempts, seconds.
            close_timeout_s: How long ``close`` tries to deliver what is spooled, seconds.
            validate: Validate every record against the event schema at ``publish``.
            spool_fsync: ``fsync`` each spooled record (see ``DiskSpool``).
            track_spool_max_records: Most track summaries spooled (in ``<spool_dir>-tracks``);
                beyond, the oldest are dropped.  The events' spool is not shared with them.

        Raises:
            ValueError: An argument is out of range or an unknown security option.
            alerts.spool.SpoolError: The spool directory cannot be used.
        """
        if retries < 0 or delivery_timeout_s <= 0 or batch_records < 1 or partitions < 1:
            raise ValueError(
                f"need retries >= 0 ({retries}), delivery_timeout_s > 0 ({delivery_timeout_s}), "
                f"batch_records >= 1 ({batch_records}), partitions >= 1 ({partitions})"
            )
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError(
                f"need 0 < min_backoff_s ({min_backoff_s}) <= max_backoff_s ({max_backoff_s})"
            )
        self.bootstrap = bootstrap
        self.topic = topic
        self._security = check_security(security)
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": acks,
            "retries": retries,
            "enable_idempotence": idempotent,
            "delivery_timeout_ms": int(delivery_timeout_s * 1000),
            "request_timeout_ms": int(min(delivery_timeout_s, 30.0) * 1000),
            "max_block_ms": int(connect_timeout_s * 1000),
            "bootstrap_timeout_ms": int(connect_timeout_s * 1000),
            "reconnect_backoff_max_ms": int(max_backoff_s * 1000),
            "linger_ms": 0,
        }
        if not idempotent:
            self._producer_config["max_in_flight_requests_per_connection"] = 1
        self._delivery_timeout_s = delivery_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._create_topic = create_topic
        self._topic_ready = not create_topic
        self._batch_records = batch_records
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._close_timeout_s = close_timeout_s
        self._validate = validate
        self._client_id = client_id

        self.spool = DiskSpool(
            spool_dir,
            max_records=spool_max_records,
            max_bytes=spool_max_bytes,
            name=f"kafka:{topic}",
            fsync=spool_fsync,
        )
        self.track_spool = DiskSpool(
            spool_dir.parent / f"{spool_dir.name}-tracks",
            max_records=track_spool_max_records,
            max_bytes=spool_max_bytes,
            name=f"kafka:{topic}:tracks",
            fsync=spool_fsync,
        )
        # Local subscribers (e.g. the JSON-lines sink) get each record at publish, through
        # the same fan-out as the single-machine bus (validated once, here).
        self._local = InProcessBus(validate=False)
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._producer: KafkaProducer | None = None
        self._online: bool | None = None  # None: no attempt yet
        self._outage_started: float | None = None
        self._replaying: int = 0
        self._replay_started = 0.0
        self.delivered = 0
        """Records acknowledged by the broker since start."""
        self._last_delivery: float | None = None
        self._last_error: str | None = None
        self._connected_gauge = KAFKA_CONNECTED.labels(topic=topic)
        self._connected_gauge.set(0)
        self._thread = threading.Thread(target=self._run, name=f"kafka-sender-{topic}", daemon=True)
        self._thread.start()
        logger.info(
            "Kafka event bus: topic %s at %s, spool %s (%d records waiting)",
            topic,
            bootstrap,
            spool_dir,
            self.spool.depth,
        )

    # -- EventBus ---------------------------------------------------------------

    @property
    def published(self) -> int:
        """Records accepted by ``publish`` since start."""
        return self._local.published

    def subscribe(self, handler: RecordHandler) -> None:
        """Register a local subscriber: it gets every record at ``publish``, in order.

        Raises:
            BusClosedError: The bus was closed.
        """
        with self._lock:
            if self._closed:
                raise BusClosedError()
            self._local.subscribe(handler)

    def publish(self, record: Mapping[str, Any]) -> None:
        """Validate ``record``, spool it for Kafka, hand it to local subscribers; no I/O wait.

        Raises:
            InvalidEventError: The record is neither a valid event record nor a valid run
                marker (not spooled).
            BusClosedError: The bus was closed.
            alerts.spool.SpoolError: The spool could not write it (e.g. disk full).
        """
        raw_id = record.get("event_id")
        eid = raw_id if isinstance(raw_id, str) else None
        if self._validate:
            validate_bus_record(record)  # an event record or a run marker
        size = len(json.dumps(record, separators=(",", ":")).encode("utf-8"))
        if size > MAX_RECORD_BYTES:
            # Kafka's default message limit is ~1 MiB: a larger record would fail to send
            # on every round and block the spool behind it; refuse it here, loudly.
            raise InvalidEventError(
                f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit", event_id=eid
            )
        with self._lock:
            if self._closed:
                raise BusClosedError(eid)
            (self.track_spool if record.get("kind") == TRACK else self.spool).append(record)
            self._wake.set()
            self._local.publish(record)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every spooled record was acknowledged by the broker.

        Args:
            timeout_s: Longest wait, seconds; ``None`` means ``delivery_timeout_s``
                (this never waits forever).

        Raises:
            BusFlushTimeoutError: Records are still spooled when the wait ends
                (they are kept and delivered later).
        """
        limit = self._delivery_timeout_s if timeout_s is None else max(timeout_s, 0.0)
        deadline = time.monotonic() + limit
        self._wake.set()
        with self._cond:
            while True:
                pending = self.spool.depth + self.track_spool.depth
                if pending == 0:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise BusFlushTimeoutError(pending, limit)
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        """Refuse new records, deliver what can be in ``close_timeout_s``, stop (idempotent).

        Records still spooled stay on disk and are delivered by the next bus opened
        on the same ``spool_dir``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._local.close()
        try:
            self.flush(self._close_timeout_s)
        except BusFlushTimeoutError as e:
            logger.warning(
                "closing Kafka event bus with %d records still spooled in %s "
                "(delivered when the bus is next started)",
                e.pending,
                self.spool.dir,
            )
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._connect_timeout_s + self._delivery_timeout_s + 5)
        if self._thread.is_alive():
            logger.error("Kafka sender thread did not stop; leaving it (daemon)")
        else:
            self._close_producer()
            self.spool.close()
            self.track_spool.close()
        self._connected_gauge.set(0)

    # -- health -----------------------------------------------------------------

    def health(self) -> BusHealth:
        """Readiness information (no secrets)."""
        return BusHealth(
            connected=bool(self._online),
            depth=self.spool.depth + self.track_spool.depth,
            dropped=self.spool.dropped + self.track_spool.dropped,
            delivered=self.delivered,
            last_delivery=self._last_delivery,
            last_error=self._last_error,
        )

    # -- sender thread ------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        while not self._stop.is_set():
            try:
                progressed = self._deliver_once()
            except Exception as e:  # the sender must survive anything; see _went_offline
                self._went_offline(e)
                self._close_producer()
                backoff.wait(self._stop)  # wakes at once on ``close``
                continue
            backoff.reset()
            if not progressed:
                self._wake.wait(0.5)
                self._wake.clear()
        logger.debug("Kafka sender for %s stopped", self.topic)

    def _deliver_once(self) -> bool:
        """One delivery round; returns whether records were delivered.

        Raises:
            KafkaError / OSError / ...: The broker could not be reached or refused.
        """
        # events first: track summaries go when no event waits
        spool = self.spool if self.spool.depth else self.track_spool
        if spool.depth == 0:
            return False
        producer = self._connect()  # may block up to connect_timeout_s: peek afterwards
        if spool is self.track_spool and self.spool.depth:
            spool = self.spool  # an event came while connecting
        batch = spool.peek_entries(self._batch_records)
        if not batch:
            return False
        futures = []
        for entry in batch:
            futures.append(producer.send(self.topic, key=_key(entry), value=_value(entry)))
        producer.flush(timeout=self._delivery_timeout_s)
        delivered = 0
        last = batch[0]
        error: Exception | None = None
        for entry, future in zip(batch, futures, strict=True):
            try:
                future.get(timeout=self._delivery_timeout_s)
            except Exception as e:
                error = e
                break
            delivered += 1
            last = entry
        if delivered:
            spool.ack_through(last.seq)
            self.delivered += delivered
            self._last_delivery = time.time()
            KAFKA_DELIVERED.labels(topic=self.topic).inc(delivered)
            self._came_online(delivered)
            with self._cond:
                self._cond.notify_all()
        if error is not None:
            raise error
        return True

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(**self._producer_config, **self._security)
        if not self._topic_ready:
            try:
                ensure_topic(
                    self.bootstrap,
                    self.topic,
                    partitions=self._partitions,
                    replication_factor=self._replication_factor,
                    client_id=f"{self._client_id}-admin",
                    security=self._security,
                    timeout_s=self._connect_timeout_s,
                )
            except TopicAlreadyExistsError:
                pass
            except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as e:
                # no permission to create topics: rely on the topic existing
                logger.warning("cannot create Kafka topic %s (%s); sending anyway", self.topic, e)
            # other errors (broker unreachable, ...) propagate: back off and try again
            self._topic_ready = True
        return self._producer

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=0)

    def _went_offline(self, error: Exception) -> None:
        KAFKA_DELIVERY_ERRORS.labels(topic=self.topic).inc()
        self._last_error = f"{type(error).__name__}: {error}"
        self._connected_gauge.set(0)
        if self._online is not False:
            self._online = False
            self._outage_started = time.monotonic()
            logger.warning(
                "Kafka at %s not reachable for topic %s (%s); spooling events in %s "
                "(%d waiting) and retrying with backoff up to %.0f s",
                self.bootstrap,
                self.topic,
                self._last_error,
                self.spool.dir,
                self.spool.depth,
                self._max_backoff_s,
            )
        else:
            logger.debug("Kafka still unreachable: %s", self._last_error)

    def _came_online(self, delivered: int) -> None:
        self._connected_gauge.set(1)
        was = self._online
        self._online = True
        self._last_error = None
        if was is False:
            waiting = self.spool.depth
            down = time.monotonic() - (self._outage_started or time.monotonic())
            self._replaying = delivered + waiting
            self._replay_started = time.monotonic()
            logger.info(
                "Kafka delivery to %s resumed after %.1f s; replaying %d spooled records",
                self.topic,
                down,
                self._replaying,
            )
        if self._replaying and self.spool.depth == 0:
            logger.info(
                "Kafka: replayed %d spooled records to %s in %.1f s",
                self._replaying,
                self.topic,
                time.monotonic() - self._replay_started,
            )
            self._replaying = 0


def _key(entry: SpoolEntry) -> bytes:
    return str(entry.record.get("camera_id", "")).encode("utf-8")


def _value(entry: SpoolEntry) -> bytes:
    return json.dumps(entry.record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
