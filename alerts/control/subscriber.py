"""``KafkaControlSubscriber``: a worker's side of the control topic."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from alerts.control.codec import DEFAULT_CONTROL_TOPIC, ChangeHandler, decode_value, describe_error
from alerts.control.metrics import CONTROL_APPLIED, CONTROL_CONNECTED
from alerts.control.topic import ensure_control_topic
from alerts.kafka_bus import check_security
from ingest.retry import Backoff

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


@dataclass(frozen=True, slots=True)
class SubscriberHealth:
    """What the control subscriber reports for readiness.

    Attributes:
        running: The background thread runs.
        connected: The broker answered the last request.
        synced: Everything on the topic when it (re)connected has been applied.
        records: Records applied (handed to ``on_change``) since start.
        keys: Keys in the latest state (tombstoned keys removed).
        malformed: Records skipped because the key or value was not decodable.
        handler_errors: ``on_change`` calls that raised (logged, skipped).
        last_error: Type and message of the last broker error, or ``None``.
        last_record_at: UNIX time of the last applied record, or ``None``.
    """

    running: bool
    connected: bool
    synced: bool
    records: int
    keys: int
    malformed: int
    handler_errors: int
    last_error: str | None
    last_record_at: float | None


class KafkaControlSubscriber:
    """Reads the control topic from the beginning and follows it (worker side).

    No consumer group: all partitions of the topic are assigned, the consumer seeks
    to the beginning at start and keeps polling.  Every record updates the latest state
    per key (a tombstone deletes the key) and is handed to ``on_change(key, value)`` in
    log order; ``on_change`` exceptions are logged and skipped.  When the broker
    fails, the consumer is closed and recreated with backoff (logged once per outage
    at WARNING, once at INFO when it is back) and resumes after the last applied record
    of every partition, so nothing is applied twice or missed.
    """

    def __init__(
        self,
        bootstrap: str,
        on_change: ChangeHandler,
        *,
        topic: str = DEFAULT_CONTROL_TOPIC,
        security: Mapping[str, Any] | None = None,
        client_id: str = "argus-control-subscriber",
        create_topic: bool = True,
        partitions: int = 1,
        replication_factor: int = 1,
        poll_timeout_s: float = 0.5,
        probe_interval_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        on_record: Callable[[str, Any, int], object] | None = None,
    ) -> None:
        """Configure the subscriber; ``start`` runs it.

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            on_change: Called with ``(key, value)`` for every record, in order (from the
                subscriber's thread).
            topic: The control topic.
            security: kafka-python SSL/SASL options (``alerts.kafka_bus.SECURITY_KEYS``).
            client_id: Kafka client id.
            create_topic: Create the topic (compacted) if it is missing, so a worker
                started before the API does not wait for it.
            partitions: Partitions of a topic created here.
            replication_factor: Replicas of a topic created here.
            poll_timeout_s: Longest wait of one poll, seconds (also how soon ``stop``
                is noticed).
            probe_interval_s: How often the broker is asked for the end offsets, seconds
                (a consumer's poll does not fail while the broker is away: this is how
                an outage is noticed).
            connect_timeout_s: Bound on one connection attempt or probe, seconds.
            min_backoff_s: First wait after a failure, seconds (doubles).
            max_backoff_s: Longest wait between attempts, seconds.
            on_record: Called instead of ``on_change`` with ``(key, value, partition)``
                (a topic whose partition of a key means something, e.g. the fleet's).

        Raises:
            ValueError: An argument out of range, or an unknown security option.
        """
        if poll_timeout_s <= 0 or probe_interval_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("poll_timeout_s, probe_interval_s and connect_timeout_s must be > 0")
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError(
                f"need 0 < min_backoff_s ({min_backoff_s}) <= max_backoff_s ({max_backoff_s})"
            )
        self.bootstrap = bootstrap
        self.topic = topic
        self._on_change = on_change
        self._on_record = on_record
        self._security = check_security(security)
        connect_ms = int(connect_timeout_s * 1000)
        self._consumer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "request_timeout_ms": max(connect_ms, 1000),
            "bootstrap_timeout_ms": connect_ms,
            "reconnect_backoff_max_ms": int(max_backoff_s * 1000),
            "fetch_max_wait_ms": 200,
        }
        self._client_id = client_id
        self._create_topic = create_topic
        self._topic_checked = False
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._poll_ms = int(poll_timeout_s * 1000)
        self._probe_interval_s = probe_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s

        self._state_lock = threading.Lock()
        self._latest: dict[str, Any] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._consumer: KafkaConsumer | None = None
        self._assigned: list[TopicPartition] = []
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._connected = False
        self._outage_since: float | None = None
        self._ever_connected = False
        self._last_error: str | None = None
        self._last_record_at: float | None = None
        self._connected_gauge = CONTROL_CONNECTED.labels(topic=topic)
        self.records = 0
        """Records applied since start."""
        self.malformed = 0
        """Records skipped: key or value not decodable."""
        self.handler_errors = 0
        """``on_change`` calls that raised."""

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the background (daemon) thread.

        Raises:
            RuntimeError: It already runs.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("control subscriber already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"control-subscriber-{self.topic}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and close the consumer (idempotent).

        Raises:
            TimeoutError: The thread did not end within ``timeout_s``.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                raise TimeoutError(f"control subscriber did not stop within {timeout_s:.1f} s")
            self._thread = None

    def __enter__(self) -> KafkaControlSubscriber:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_synced(self, timeout_s: float) -> bool:
        """Wait until the topic's content at connection time has been applied.

        A worker may call this at start so its cameras begin with the operators'
        rules and suppressions; ``False`` after ``timeout_s`` (e.g. broker down).
        """
        return self._synced.wait(timeout_s)

    # -- state ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The latest value of every key (tombstoned keys absent), a copy."""
        with self._state_lock:
            return copy.deepcopy(self._latest)

    def state(self) -> SubscriberHealth:
        """Readiness information (no secrets)."""
        with self._state_lock:
            keys = len(self._latest)
        return SubscriberHealth(
            running=self._running,
            connected=self._connected,
            synced=self._synced.is_set(),
            records=self.records,
            keys=keys,
            malformed=self.malformed,
            handler_errors=self.handler_errors,
            last_error=self._last_error,
            last_record_at=self._last_record_at,
        )

    # -- thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self._running = True
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        try:
            while not self._stop.is_set():
                try:
                    self._connect()
                    backoff.reset()
                    self._follow()
                except Exception as e:  # broker errors and bugs alike: reconnect
                    self._went_offline(e)
                    self._disconnect()
                    backoff.wait(self._stop)
        finally:
            self._disconnect()
            self._running = False
            self._connected = False
            self._connected_gauge.set(0)
            logger.info("control subscriber for %s stopped", self.topic)

    def _connect(self) -> None:
        parts = ensure_control_topic(
            self.bootstrap,
            self.topic,
            partitions=self._partitions,
            replication_factor=self._replication_factor,
            security=self._security,
            client_id=f"{self._client_id}-admin",
            timeout_s=self._connect_timeout_s,
            create=self._create_topic and not self._topic_checked,
        )
        self._topic_checked = True
        if not parts:
            raise LookupError(f"control topic {self.topic} does not exist (yet)")
        consumer = KafkaConsumer(**self._consumer_config, **self._security)
        self._consumer = consumer
        consumer.bootstrap(timeout_ms=int(self._connect_timeout_s * 1000))
        tps = [TopicPartition(self.topic, p) for p in parts]
        consumer.assign(tps)
        for tp in tps:
            position = self._positions.get(tp)
            if position is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        self._assigned = tps
        # the broker answered: probe once so "synced" has end offsets to compare with
        self._synced.clear()
        self._probe(consumer)
        self._came_online()

    def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        next_probe = time.monotonic() + self._probe_interval_s
        while not self._stop.is_set():
            batch = consumer.poll(timeout_ms=self._poll_ms)
            for tp in sorted(batch, key=lambda t: t.partition):
                for record in batch[tp]:
                    self._apply(record)
                    self._positions[tp] = record.offset + 1
            if not batch and not self._synced.is_set():
                self._check_synced(consumer)
            if time.monotonic() >= next_probe:
                self._probe(consumer)
                next_probe = time.monotonic() + self._probe_interval_s

    def _probe(self, consumer: KafkaConsumer) -> None:
        """Ask the broker for the end offsets: raises when it does not answer."""
        consumer.end_offsets(self._assigned, timeout_ms=int(self._connect_timeout_s * 1000))

    def _check_synced(self, consumer: KafkaConsumer) -> None:
        """Synced once every partition's position reached its high watermark."""
        for tp in self._assigned:
            high = consumer.highwater(tp)  # from the last fetch response (no request)
            if high is None:
                return
            position = self._positions.get(tp)
            if position is None or position < high:
                position = consumer.position(tp, timeout_ms=int(self._connect_timeout_s * 1000))
            if position is None or position < high:
                return
        if not self._synced.is_set():
            logger.info(
                "control subscriber: %s applied (%d keys, %d records)",
                self.topic,
                len(self._latest),
                self.records,
            )
        self._synced.set()

    def _apply(self, record: Any) -> None:
        try:
            if record.key is None:
                raise ValueError("record without a key")
            key = record.key.decode("utf-8")
            value = decode_value(record.value)
        except (UnicodeDecodeError, ValueError) as e:
            self.malformed += 1
            logger.warning(
                "control: skipping record %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                str(e)[:200],
            )
            return
        with self._state_lock:
            if value is None:
                self._latest.pop(key, None)
            else:
                self._latest[key] = value
        self.records += 1
        self._last_record_at = time.time()
        CONTROL_APPLIED.labels(topic=self.topic).inc()
        try:
            if self._on_record is not None:
                self._on_record(key, copy.deepcopy(value), int(record.partition))
            else:
                self._on_change(key, copy.deepcopy(value))
        except Exception:  # a handler bug must not stop the control stream
            self.handler_errors += 1
            logger.exception("control on_change failed for %r (record skipped)", key)

    def _disconnect(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.close(autocommit=False, timeout_ms=1000)

    def _went_offline(self, error: BaseException) -> None:
        self._last_error = describe_error(error)
        self._connected = False
        self._connected_gauge.set(0)
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "control subscriber: Kafka at %s failed for %s (%s); keeping the last state "
                "and retrying with backoff up to %.1f s",
                self.bootstrap,
                self.topic,
                self._last_error,
                self._max_backoff_s,
            )
        else:
            logger.debug("control subscriber: still failing: %s", self._last_error)

    def _came_online(self) -> None:
        self._connected = True
        self._connected_gauge.set(1)
        self._last_error = None
        if self._outage_since is not None:
            logger.info(
                "control subscriber: %s reachable again after %.1f s; resuming",
                self.topic,
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        elif not self._ever_connected:
            logger.info("control subscriber: following %s at %s", self.topic, self.bootstrap)
        self._ever_connected = True
