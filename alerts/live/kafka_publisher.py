"""``KafkaLivePublisher``: a worker's camera statuses and live pictures onto the live topics,
fire-and-forget (see ``alerts.live.kafka`` for the design)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaProducer

from alerts.control.codec import describe_error
from alerts.kafka_bus import check_security
from alerts.live.demand import Demand, Want
from alerts.live.kafka_common import (
    DEFAULT_PREVIEW_TOPIC,
    DEFAULT_STATUS_TOPIC,
    LIVE_CONNECTED,
    LIVE_DROPPED,
    LIVE_SENT,
    MAX_PENDING_STATUSES,
    PICTURE,
    PREVIEW_RETENTION_MS,
    STATUS,
    ensure_live_topics,
)
from alerts.live.preview import Preview
from alerts.live.status import CameraStatus
from ingest.retry import Backoff

logger = logging.getLogger("alerts.live")  # one logger name for the package


@dataclass(frozen=True, slots=True)
class LivePublisherHealth:
    """What the live publisher reports.

    Attributes:
        running: The background thread runs.
        connected: A producer is connected and the last delivery did not fail.
        sent: Statuses and pictures acknowledged by the broker (by kind).
        dropped: Statuses and pictures not delivered (by kind).
        last_error: Type and message of the last failure, or ``None``.
    """

    running: bool
    connected: bool
    sent: Mapping[str, int]
    dropped: Mapping[str, int]
    last_error: str | None


class KafkaLivePublisher:
    """``LiveSink`` on Kafka (worker side): fire-and-forget, never blocks, never raises.

    ``report``, ``picture`` and ``forget`` only put the item in a pending set (the
    newest per camera and kind replaces an older one still waiting) and wake the
    background thread, which sends them with a bounded producer (``acks="all"``, no
    idempotence, no retries: the next report replaces a lost one).  The thread creates
    the topics and the producer, and when a delivery fails for a broker reason closes
    the producer and reconnects with backoff; meanwhile pictures are dropped at once
    and statuses wait (the latest per camera).  Drops are counted
    (``argus_live_dropped_total{kind}``).

    ``start`` is implied by the first ``report``/``picture`` (or call it yourself).
    """

    def __init__(
        self,
        bootstrap: str,
        demand: Demand | None = None,
        *,
        status_topic: str = DEFAULT_STATUS_TOPIC,
        preview_topic: str = DEFAULT_PREVIEW_TOPIC,
        security: Mapping[str, Any] | None = None,
        client_id: str = "argus-live",
        create_topics: bool = True,
        partitions: int = 1,
        replication_factor: int = 1,
        preview_retention_ms: int = PREVIEW_RETENTION_MS,
        buffer_bytes: int = 8 * 1024 * 1024,
        delivery_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        """Configure the publisher; nothing connects until ``start`` (or the first report).

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            demand: The worker's demand (fed from the control channel); ``wanted``
                answers from it (a new, empty one by default: no pictures).
            status_topic: The compacted camera status topic.
            preview_topic: The live picture topic.
            security: kafka-python SSL/SASL options (``alerts.kafka_bus.SECURITY_KEYS``);
                never logged.
            client_id: Kafka client id.
            create_topics: Create missing topics (``ensure_live_topics``).
            partitions: Partitions of topics created here.
            replication_factor: Replicas of topics created here.
            preview_retention_ms: ``retention.ms`` of a preview topic created here.
            buffer_bytes: Most bytes handed to the producer and not yet acknowledged
                (at least 2 MiB: a picture is up to 512 KiB); beyond it, records are
                dropped.
            delivery_timeout_s: Bound on one record's delivery, seconds (how soon an
                outage without requests in flight is noticed).
            connect_timeout_s: Bound on one connection attempt, seconds.
            min_backoff_s: First wait after a failure, seconds (doubles).
            max_backoff_s: Longest wait between attempts, seconds.

        Raises:
            ValueError: An argument out of range, or an unknown security option.
        """
        if buffer_bytes < 2 * 1024 * 1024 or delivery_timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError(
                "need buffer_bytes >= 2 MiB, delivery_timeout_s > 0 and connect_timeout_s > 0"
            )
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError(
                f"need 0 < min_backoff_s ({min_backoff_s}) <= max_backoff_s ({max_backoff_s})"
            )
        self.bootstrap = bootstrap
        self.status_topic = status_topic
        self.preview_topic = preview_topic
        self.demand = demand if demand is not None else Demand()
        self._security = check_security(security)
        delivery_ms = int(delivery_timeout_s * 1000)
        connect_ms = int(connect_timeout_s * 1000)
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "retries": 0,
            "enable_idempotence": False,
            "linger_ms": 5,
            "max_request_size": 1024 * 1024,
            "max_block_ms": 20,
            "request_timeout_ms": max(500, delivery_ms - 100),
            "delivery_timeout_ms": delivery_ms + 10,
            "bootstrap_timeout_ms": connect_ms,
            "reconnect_backoff_max_ms": int(max_backoff_s * 1000),
        }
        self._client_id = client_id
        self._create_topics = create_topics
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._preview_retention_ms = preview_retention_ms
        self._connect_timeout_s = connect_timeout_s
        self._delivery_timeout_s = delivery_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s

        self._lock = threading.Lock()
        self._statuses: dict[str, CameraStatus | None] = {}
        self._pictures: dict[str, Preview] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._producer: KafkaProducer | None = None
        self._generation = 0
        self._buffer_bytes = buffer_bytes
        self._unsettled_bytes = 0
        """Bytes handed to the producer and not yet acknowledged or failed (this
        generation): kafka-python 3 has no ``buffer_memory``, so the bound is kept here."""
        self._failure: BaseException | None = None
        self._online = False
        self._running = False
        self._outage_since: float | None = None
        self._ever_connected = False
        self._last_error: str | None = None
        self._counts: dict[tuple[str, str], int] = {
            (what, kind): 0 for what in ("sent", "dropped") for kind in (STATUS, PICTURE)
        }
        self._connected_gauge = LIVE_CONNECTED.labels(side="publisher")

    # -- LiveSink (the caller's thread: never blocks, never raises) ---------------------

    def report(self, statuses: Iterable[CameraStatus]) -> None:
        """Queue the latest status of some cameras (an older one still waiting is replaced)."""
        try:
            replaced = 0
            with self._lock:
                if self._closed:
                    return
                for s in statuses:
                    if s.camera_id in self._statuses:
                        replaced += 1
                    elif len(self._statuses) >= MAX_PENDING_STATUSES:
                        replaced += 1  # the new one is dropped instead
                        continue
                    self._statuses[s.camera_id] = s
            if replaced:
                self._count("dropped", STATUS, replaced)
            self._kick()
        except Exception:  # never take the detector loop down
            logger.debug("live publisher: report failed", exc_info=True)

    def picture(self, preview: Preview) -> None:
        """Queue a live picture (dropped at once while the broker is away)."""
        try:
            with self._lock:
                if self._closed:
                    return
                if not self._online:
                    dropped = True
                else:
                    dropped = self._pictures.get(preview.camera_id) is not None
                    self._pictures[preview.camera_id] = preview
            if dropped:
                self._count("dropped", PICTURE)
            self._kick()
        except Exception:
            logger.debug("live publisher: picture failed", exc_info=True)

    def wanted(self) -> dict[str, Want]:
        """Camera id -> the pictures wanted now (from the demand of the API replicas)."""
        try:
            return self.demand.wanted()
        except Exception:
            logger.debug("live publisher: wanted failed", exc_info=True)
            return {}

    def forget(self, camera_id: str) -> None:
        """Queue a tombstone for a camera's status (it is gone from this deployment)."""
        with self._lock:
            if self._closed:
                return
            self._statuses[camera_id] = None
        self._kick()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background (daemon) thread (idempotent; not after ``close``)."""
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is pending if the broker is there (within ``timeout_s``), stop
        (idempotent)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout_s)
            self._thread = None
        with self._lock:
            left = len(self._statuses), len(self._pictures)
            self._statuses.clear()
            self._pictures.clear()
        self._count("dropped", STATUS, left[0])
        self._count("dropped", PICTURE, left[1])

    def __enter__(self) -> KafkaLivePublisher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def health(self) -> LivePublisherHealth:
        """Counters and connection state (no secrets)."""
        with self._lock:
            counts = dict(self._counts)
        return LivePublisherHealth(
            running=self._running,
            connected=self._online,
            sent={k: counts["sent", k] for k in (STATUS, PICTURE)},
            dropped={k: counts["dropped", k] for k in (STATUS, PICTURE)},
            last_error=self._last_error,
        )

    # -- thread ---------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._thread is None:
            self.start()
        self._wake.set()

    def _count(self, what: str, kind: str, n: int = 1) -> None:
        if n <= 0:
            return
        with self._lock:
            self._counts[what, kind] += n
        (LIVE_SENT if what == "sent" else LIVE_DROPPED).labels(kind=kind).inc(n)

    def _run(self) -> None:
        self._running = True
        try:
            self._loop()
        finally:
            self._close_producer()
            self._running = False
            self._online = False
            self._connected_gauge.set(0)

    def _loop(self) -> None:
        backoff = Backoff(self._min_backoff_s, self._max_backoff_s)
        while not self._stop.is_set():
            try:
                if self._producer is None:
                    self._connect()
                    backoff.reset()
                    self._came_online()
                failure = self._failure
                if failure is not None:
                    raise failure
                self._wake.wait(0.5)
                self._wake.clear()
                self._send_pending()
            except Exception as e:  # broker errors and bugs alike: reconnect
                self._went_offline(e)
                if backoff.wait(self._stop):
                    break
        producer = self._producer
        if producer is not None and self._failure is None:  # closing: send what waits
            with contextlib.suppress(Exception):
                self._send_pending()
                producer.flush(timeout=2.0)

    def _connect(self) -> None:
        if self._create_topics:
            ensure_live_topics(
                self.bootstrap,
                self.status_topic,
                self.preview_topic,
                partitions=self._partitions,
                replication_factor=self._replication_factor,
                preview_retention_ms=self._preview_retention_ms,
                security=self._security,
                client_id=f"{self._client_id}-admin",
                timeout_s=self._connect_timeout_s,
            )
        producer = KafkaProducer(**self._producer_config, **self._security)
        try:
            deadline = time.monotonic() + self._connect_timeout_s
            for topic in (self.status_topic, self.preview_topic):
                while True:  # metadata now, so that send never waits for it
                    try:
                        if producer.partitions_for(topic):
                            break
                    except Exception:
                        if time.monotonic() > deadline or self._stop.is_set():
                            raise
                    if time.monotonic() > deadline or self._stop.is_set():
                        raise LookupError(f"no partitions of {topic} in the broker's metadata")
        except BaseException:
            with contextlib.suppress(Exception):
                producer.close(timeout=0)
            raise
        with self._lock:
            self._generation += 1
            self._unsettled_bytes = 0
        self._failure = None
        self._producer = producer

    def _send_pending(self) -> None:
        producer = self._producer
        if producer is None:
            return
        with self._lock:
            statuses, self._statuses = self._statuses, {}
            pictures, self._pictures = self._pictures, {}
        generation = self._generation
        for camera_id, status in statuses.items():
            try:
                value = None if status is None else _status_bytes(status)
            except ValueError as e:  # cannot happen for a validated status: drop it
                self._count("dropped", STATUS)
                logger.warning("live publisher: status of %s not sent: %s", camera_id[:64], e)
                continue
            self._send(producer, generation, self.status_topic, STATUS, camera_id, value)
        for camera_id, preview in pictures.items():
            value = preview.encode()
            self._send(producer, generation, self.preview_topic, PICTURE, camera_id, value)

    def _send(
        self,
        producer: KafkaProducer,
        generation: int,
        topic: str,
        kind: str,
        camera_id: str,
        value: bytes | None,
    ) -> None:
        size = len(camera_id) + (len(value) if value is not None else 0) + 64
        with self._lock:
            full = self._unsettled_bytes + size > self._buffer_bytes
            if not full:
                self._unsettled_bytes += size
        if full:  # the broker is slow or away: the producer's buffer stays bounded
            self._count("dropped", kind)
            return
        try:
            future = producer.send(topic, key=camera_id.encode("utf-8"), value=value)
        except Exception as e:  # metadata gone, too large: drop
            self._settle(generation, size)
            self._count("dropped", kind)
            self._last_error = describe_error(e)
            logger.debug("live publisher: %s of %s dropped: %s", kind, camera_id[:64], e)
            return
        future.add_callback(lambda _meta: self._delivered(generation, kind, size))
        future.add_errback(lambda e: self._delivery_failed(generation, kind, size, e))

    def _settle(self, generation: int, size: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._unsettled_bytes -= size

    def _delivered(self, generation: int, kind: str, size: int) -> None:
        """From the producer's thread."""
        self._settle(generation, size)
        self._count("sent", kind)

    def _delivery_failed(self, generation: int, kind: str, size: int, error: BaseException) -> None:
        """From the producer's thread: count, and ask for a reconnect on broker failures."""
        self._settle(generation, size)
        self._count("dropped", kind)
        if generation != self._generation:
            return  # a record of a producer already replaced
        if getattr(error, "retriable", False) or isinstance(error, OSError):
            if self._failure is None:
                self._failure = error
                self._wake.set()
        else:
            self._last_error = describe_error(error)

    def _went_offline(self, error: BaseException) -> None:
        self._last_error = describe_error(error)
        was_online = self._online
        with self._lock:
            self._online = False
            dropped = len(self._pictures)
            self._pictures.clear()
        self._count("dropped", PICTURE, dropped)
        self._connected_gauge.set(0)
        self._close_producer()
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "live publisher: Kafka at %s %s (%s); dropping live pictures, keeping the "
                "latest status per camera, retrying with backoff up to %.1f s",
                self.bootstrap,
                "failed" if was_online or self._ever_connected else "not reachable",
                self._last_error,
                self._max_backoff_s,
            )
        else:
            logger.debug("live publisher: still failing: %s", self._last_error)

    def _came_online(self) -> None:
        with self._lock:
            self._online = True
        self._connected_gauge.set(1)
        if self._outage_since is not None:
            logger.info(
                "live publisher: Kafka reachable again after %.1f s",
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        elif not self._ever_connected:
            logger.info(
                "live publisher: sending statuses to %s and pictures to %s at %s",
                self.status_topic,
                self.preview_topic,
                self.bootstrap,
            )
        self._ever_connected = True
        self._last_error = None

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        with self._lock:
            self._generation += 1
            self._unsettled_bytes = 0
        self._failure = None
        if producer is not None:
            # kafka-python's close flushes first and raises while records wait for a dead
            # broker; they expire within the delivery timeout, so close in the background
            threading.Thread(
                target=_close_quietly,
                args=(producer, self._delivery_timeout_s + 1.0),
                name="live-publisher-close",
                daemon=True,
            ).start()


def _close_quietly(producer: KafkaProducer, timeout_s: float) -> None:
    try:
        producer.close(timeout=timeout_s)
    except Exception as e:
        logger.debug("live publisher: closing a producer failed: %s", describe_error(e))


def _status_bytes(status: CameraStatus) -> bytes:
    """The wire form of a status: compact JSON of ``model_dump(mode="json")``."""
    data = status.model_dump(mode="json")
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")
