"""The live state across processes: camera statuses and live pictures on Kafka, demand on
the control channel.

Workers (``argus run`` with ``bus.kafka``) send through ``KafkaLivePublisher`` (a
``LiveSink``):

* every ``CameraStatus`` as JSON, keyed by camera id, to the compacted camera status topic
  (default ``"argus.cameras"``): the topic holds every camera's last status, so an API
  replica that starts reads it from the beginning and knows every camera at once; a
  tombstone (``forget``) removes a camera;
* every ``Preview`` in its wire form (``Preview.encode``), keyed by camera id, to the
  preview topic (default ``"argus.previews"``, ``cleanup.policy=delete`` with a short
  ``retention.ms``): pictures are useful for seconds, so readers start at its end.

Both are fire-and-forget: the caller (the pipeline's detector loop) only puts the report
in a small pending set that a background thread sends; a lost status or picture only
delays the next one.  While the broker is away, pictures are dropped and statuses
coalesce to the latest per camera (counted in ``argus_live_dropped_total``).

API replicas read both topics with ``KafkaLiveSubscriber`` (no consumer group: every
replica reads every partition) into their ``LiveBoard``, and publish their watchers'
demand with ``DemandPublisher`` on the control channel under ``DEMAND_PREFIX + replica``;
workers fold those messages into their ``Demand`` (``argus.reload.LiveConfig``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidConfigurationError,
    InvalidRequestError,
    PolicyViolationError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)
from kafka.structs import TopicPartition
from prometheus_client import Counter, Gauge

from alerts.control.codec import ControlPublisher, ControlPublishError, describe_error
from alerts.kafka_bus import check_security
from alerts.live.board import LiveBoard
from alerts.live.demand import DEMAND_PREFIX, LEASE_S, RENEW_S, Demand, Want, demand_message
from alerts.live.preview import MAGIC, MAX_HEADER_BYTES, MAX_PREVIEW_BYTES, Preview, PreviewError
from alerts.live.status import CameraStatus
from ingest.retry import Backoff

logger = logging.getLogger("alerts.live")

DEFAULT_STATUS_TOPIC = "argus.cameras"
DEFAULT_PREVIEW_TOPIC = "argus.previews"
PREVIEW_RETENTION_MS = 60_000
"""``retention.ms`` of a preview topic created here (pictures are useless after seconds)."""
MAX_STATUS_BYTES = 64 * 1024
"""Largest status record read (a real one is well under 10 KiB)."""
MAX_WATCHES = 16
"""Most watches a status may carry (``CameraStatus.watches``), checked before parsing."""
MAX_PENDING_STATUSES = 10_000
"""Most cameras whose status waits to be sent; beyond it new reports are dropped."""
MALFORMED_LOG_EVERY_S = 10.0
"""Malformed records are logged at most once per this many seconds (and counted)."""

LIVE_SENT = Counter(
    "argus_live_sent_total",
    "Camera statuses and live pictures acknowledged by the broker.",
    ["kind"],
)
LIVE_DROPPED = Counter(
    "argus_live_dropped_total",
    "Camera statuses and live pictures not delivered (broker away, buffer full, replaced "
    "by a newer one while waiting).",
    ["kind"],
)
LIVE_RECEIVED = Counter(
    "argus_live_received_total",
    "Camera statuses, tombstones and live pictures read from the live topics and applied.",
    ["kind"],
)
LIVE_MALFORMED = Counter(
    "argus_live_malformed_total",
    "Records of the live topics refused as malformed (skipped).",
    ["kind"],
)
LIVE_CONNECTED = Gauge(
    "argus_live_connected",
    "1 while the live publisher or subscriber reaches the broker, else 0.",
    ["side"],
)
DEMAND_PUBLISHED = Counter(
    "argus_live_demand_published_total",
    "Demand messages (wants and tombstones) published on the control channel.",
)
DEMAND_PUBLISH_ERRORS = Counter(
    "argus_live_demand_publish_errors_total",
    "Demand messages that could not be published (retried).",
)

STATUS, PICTURE = "status", "picture"


# --------------------------------------------------------------------------- topics


def ensure_live_topics(
    bootstrap: str,
    status_topic: str = DEFAULT_STATUS_TOPIC,
    preview_topic: str = DEFAULT_PREVIEW_TOPIC,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    preview_retention_ms: int = PREVIEW_RETENTION_MS,
    security: Mapping[str, Any] | None = None,
    client_id: str = "argus-live-admin",
    timeout_s: float = 10.0,
    create: bool = True,
) -> dict[str, list[int]]:
    """Create the live topics if missing; each topic's partition ids.

    The status topic is created with ``cleanup.policy=compact``, the preview topic with
    ``cleanup.policy=delete`` and ``retention.ms=preview_retention_ms``.  A broker that
    refuses those configs gets the topic created without them (a WARNING: the status
    topic then keeps every report, the preview topic the broker's default retention);
    without permission to create topics they are assumed to exist.

    Returns:
        Topic -> its partition ids, sorted (empty for a topic that does not exist).

    Raises:
        kafka.errors.KafkaError: The broker is unreachable or failed otherwise.
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
        if create:
            spec = {"num_partitions": partitions, "replication_factor": replication_factor}
            wanted = {
                status_topic: {"cleanup.policy": "compact"},
                preview_topic: {
                    "cleanup.policy": "delete",
                    "retention.ms": str(int(preview_retention_ms)),
                },
            }
            for topic, configs in wanted.items():
                _create_topic(admin, topic, spec, configs, ms)
        described = admin.describe_topics([status_topic, preview_topic])
    finally:
        admin.close()
    out: dict[str, list[int]] = {status_topic: [], preview_topic: []}
    for info in described:
        name = info.get("name")
        if name in out and info.get("error_code", 0) == 0:
            out[name] = sorted(int(p["partition_index"]) for p in info.get("partitions") or [])
    return out


def _create_topic(
    admin: KafkaAdminClient,
    topic: str,
    spec: dict[str, int],
    configs: dict[str, str],
    timeout_ms: int,
) -> None:
    try:
        admin.create_topics({topic: spec | {"configs": configs}}, timeout_ms=timeout_ms)
        logger.info(
            "created live topic %s (%s)", topic, ", ".join(f"{k}={v}" for k, v in configs.items())
        )
    except TopicAlreadyExistsError:
        pass
    except (
        InvalidConfigurationError,
        PolicyViolationError,
        UnsupportedVersionError,
        InvalidRequestError,
    ) as e:
        logger.warning(
            "broker refused %s for live topic %s (%s); creating it without",
            ", ".join(f"{k}={v}" for k, v in configs.items()),
            topic,
            type(e).__name__,
        )
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics({topic: spec}, timeout_ms=timeout_ms)
    except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as e:
        logger.warning(
            "no permission to create live topic %s (%s); assuming it exists",
            topic,
            type(e).__name__,
        )


# --------------------------------------------------------------------------- worker side


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


# --------------------------------------------------------------------------- API side


@dataclass(frozen=True, slots=True)
class LiveSubscriberHealth:
    """What the live subscriber reports for readiness.

    Attributes:
        running: The background thread runs.
        connected: The broker answered the last request.
        synced: The status topic's content at (re)connection has been read.
        statuses: Statuses applied to the board since start.
        forgotten: Status tombstones applied (cameras removed) since start.
        pictures: Pictures applied to the board since start.
        malformed: Records refused (both topics) since start.
        last_error: Type and message of the last broker error, or ``None``.
    """

    running: bool
    connected: bool
    synced: bool
    statuses: int
    forgotten: int
    pictures: int
    malformed: int
    last_error: str | None


class KafkaLiveSubscriber:
    """Reads the camera status and preview topics into a ``LiveBoard`` (API side).

    No consumer group: all partitions of both topics are assigned.  The status topic is
    read from the beginning (it is compacted: the last status of every camera) and
    followed; the preview topic from its end (old pictures are useless).  Records are
    validated (``CameraStatus.parse``, ``Preview.decode``; the key must be the camera
    id): a malformed one is counted and skipped with a WARNING that names its topic,
    partition and offset, never its bytes.  When the broker fails, the consumer is
    closed and recreated with backoff (a WARNING once per outage, INFO when back); the
    status topic resumes after the last record read, the preview topic at its end.
    """

    def __init__(
        self,
        bootstrap: str,
        board: LiveBoard,
        *,
        status_topic: str = DEFAULT_STATUS_TOPIC,
        preview_topic: str = DEFAULT_PREVIEW_TOPIC,
        security: Mapping[str, Any] | None = None,
        client_id: str = "argus-live-subscriber",
        create_topics: bool = True,
        partitions: int = 1,
        replication_factor: int = 1,
        preview_retention_ms: int = PREVIEW_RETENTION_MS,
        poll_timeout_s: float = 0.5,
        probe_interval_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        """Configure the subscriber; ``start`` runs it.

        Args:
            bootstrap: ``host:port[,host:port...]`` of the Kafka brokers.
            board: Where statuses and pictures go.
            status_topic: The compacted camera status topic.
            preview_topic: The live picture topic.
            security: kafka-python SSL/SASL options (``alerts.kafka_bus.SECURITY_KEYS``).
            client_id: Kafka client id.
            create_topics: Create missing topics, so an API started before any worker
                does not wait for them.
            partitions: Partitions of topics created here.
            replication_factor: Replicas of topics created here.
            preview_retention_ms: ``retention.ms`` of a preview topic created here.
            poll_timeout_s: Longest wait of one poll, seconds (also how soon ``stop`` is
                noticed).
            probe_interval_s: How often the broker is asked for end offsets, seconds (how
                an outage is noticed).
            connect_timeout_s: Bound on one connection attempt or probe, seconds.
            min_backoff_s: First wait after a failure, seconds (doubles).
            max_backoff_s: Longest wait between attempts, seconds.

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
        self.board = board
        self.status_topic = status_topic
        self.preview_topic = preview_topic
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
            "fetch_max_wait_ms": 100,
            "max_partition_fetch_bytes": 2 * 1024 * 1024,
        }
        self._client_id = client_id
        self._create_topics = create_topics
        self._topics_checked = False
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._preview_retention_ms = preview_retention_ms
        self._poll_ms = int(poll_timeout_s * 1000)
        self._probe_interval_s = probe_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s

        self._positions: dict[TopicPartition, int] = {}
        self._status_tps: list[TopicPartition] = []
        self._consumer: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._connected_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._connected = False
        self._outage_since: float | None = None
        self._ever_connected = False
        self._last_error: str | None = None
        self._last_malformed_log = -MALFORMED_LOG_EVERY_S
        self._connected_gauge = LIVE_CONNECTED.labels(side="subscriber")
        self.statuses = 0
        self.forgotten = 0
        self.pictures = 0
        self.malformed = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background (daemon) thread.

        Raises:
            RuntimeError: It already runs.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("live subscriber already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-subscriber", daemon=True)
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
                raise TimeoutError(f"live subscriber did not stop within {timeout_s:.1f} s")
            self._thread = None

    def __enter__(self) -> KafkaLiveSubscriber:
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
        """Wait until the status topic's content at connection time is on the board (and
        the preview topic's end is known: later pictures arrive); ``False`` after
        ``timeout_s``."""
        return self._synced.wait(timeout_s)

    def health(self) -> LiveSubscriberHealth:
        """Readiness information (no secrets)."""
        return LiveSubscriberHealth(
            running=self._running,
            connected=self._connected,
            synced=self._synced.is_set(),
            statuses=self.statuses,
            forgotten=self.forgotten,
            pictures=self.pictures,
            malformed=self.malformed,
            last_error=self._last_error,
        )

    # -- thread ---------------------------------------------------------------------------

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
                    if backoff.wait(self._stop):
                        break
        finally:
            self._disconnect()
            self._running = False
            self._connected = False
            self._connected_gauge.set(0)
            logger.info("live subscriber for %s, %s stopped", self.status_topic, self.preview_topic)

    def _connect(self) -> None:
        parts = ensure_live_topics(
            self.bootstrap,
            self.status_topic,
            self.preview_topic,
            partitions=self._partitions,
            replication_factor=self._replication_factor,
            preview_retention_ms=self._preview_retention_ms,
            security=self._security,
            client_id=f"{self._client_id}-admin",
            timeout_s=self._connect_timeout_s,
            create=self._create_topics and not self._topics_checked,
        )
        self._topics_checked = True
        missing = [t for t, p in parts.items() if not p]
        if missing:
            raise LookupError(f"live topics {missing} do not exist (yet)")
        consumer = KafkaConsumer(**self._consumer_config, **self._security)
        self._consumer = consumer
        timeout_ms = int(self._connect_timeout_s * 1000)
        consumer.bootstrap(timeout_ms=timeout_ms)
        status_tps = [TopicPartition(self.status_topic, p) for p in parts[self.status_topic]]
        preview_tps = [TopicPartition(self.preview_topic, p) for p in parts[self.preview_topic]]
        consumer.assign(status_tps + preview_tps)
        for tp in status_tps:
            position = self._positions.get(tp)
            if position is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        consumer.seek_to_end(*preview_tps)
        for tp in preview_tps:  # resolve now: pictures sent from here on arrive
            consumer.position(tp, timeout_ms=timeout_ms)
        self._status_tps = status_tps
        self._synced.clear()
        self._probe(consumer)
        self._came_online()

    def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        next_probe = time.monotonic() + self._probe_interval_s
        while not self._stop.is_set():
            batch = consumer.poll(timeout_ms=self._poll_ms)
            for tp, records in batch.items():
                for record in records:
                    self._apply(record)
                    if tp.topic == self.status_topic:
                        self._positions[tp] = record.offset + 1
            if not self._synced.is_set():
                self._check_synced(consumer)
            if time.monotonic() >= next_probe:
                self._probe(consumer)
                next_probe = time.monotonic() + self._probe_interval_s

    def _probe(self, consumer: KafkaConsumer) -> None:
        """Ask the broker for the end offsets: raises when it does not answer."""
        consumer.end_offsets(self._status_tps, timeout_ms=int(self._connect_timeout_s * 1000))

    def _check_synced(self, consumer: KafkaConsumer) -> None:
        timeout_ms = int(self._connect_timeout_s * 1000)
        ends = consumer.end_offsets(self._status_tps, timeout_ms=timeout_ms)
        for tp in self._status_tps:
            position = self._positions.get(tp)
            if position is None or position < ends.get(tp, 0):
                position = consumer.position(tp, timeout_ms=timeout_ms)
            if position is None or position < ends.get(tp, 0):
                return
        logger.info(
            "live subscriber: %s read (%d cameras)", self.status_topic, len(self.board.statuses())
        )
        self._synced.set()

    def _apply(self, record: Any) -> None:
        try:
            if record.topic == self.status_topic:
                self._apply_status(record)
            else:
                self._apply_picture(record)
        except Exception as e:  # a bug must not re-read the same record forever
            self._malformed(STATUS if record.topic == self.status_topic else PICTURE, record, "")
            logger.error("live subscriber: applying a record failed (%s)", describe_error(e))

    def _apply_status(self, record: Any) -> None:
        try:
            camera_id = _record_key(record)
            value = record.value
            if value is None:
                self.board.forget(camera_id)
                self.forgotten += 1
                LIVE_RECEIVED.labels(kind="forget").inc()
                return
            if len(value) > MAX_STATUS_BYTES:
                raise ValueError(f"status record over {MAX_STATUS_BYTES} bytes")
            try:
                data = json.loads(bytes(value).decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as e:
                raise ValueError(f"status is not UTF-8 JSON ({type(e).__name__})") from None
            watches = data.get("watches") if isinstance(data, dict) else None
            if isinstance(watches, list) and len(watches) > MAX_WATCHES:
                # refused before pydantic, which validates every item of a long list first
                # (a 64 KiB record of 20 000 empty watches costs it about a second)
                raise ValueError(f"invalid camera status (watches: more than {MAX_WATCHES})")
            status = CameraStatus.parse(data)
            if status.camera_id != camera_id:
                raise ValueError("record key is not the status's camera_id")
        except ValueError as e:
            self._malformed(STATUS, record, str(e))
            return
        self.board.report([status])
        self.statuses += 1
        LIVE_RECEIVED.labels(kind=STATUS).inc()

    def _apply_picture(self, record: Any) -> None:
        if record.value is None:
            return  # a tombstone on a delete-policy topic means nothing here
        try:
            camera_id = _record_key(record)
            if len(record.value) > len(MAGIC) + MAX_HEADER_BYTES + MAX_PREVIEW_BYTES:
                raise PreviewError("preview record too large")
            preview = Preview.decode(bytes(record.value))
            if preview.camera_id != camera_id:
                raise PreviewError("record key is not the preview's camera_id")
        except ValueError as e:  # PreviewError included
            self._malformed(PICTURE, record, str(e))
            return
        self.board.picture(preview)
        self.pictures += 1
        LIVE_RECEIVED.labels(kind=PICTURE).inc()

    def _malformed(self, kind: str, record: Any, why: str) -> None:
        self.malformed += 1
        LIVE_MALFORMED.labels(kind=kind).inc()
        now = time.monotonic()
        if now - self._last_malformed_log >= MALFORMED_LOG_EVERY_S:
            self._last_malformed_log = now
            logger.warning(
                "live subscriber: skipping malformed %s record %s[%d]@%d: %s (%d malformed so far)",
                kind,
                record.topic,
                record.partition,
                record.offset,
                why[:200],
                self.malformed,
            )

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
                "live subscriber: Kafka at %s failed (%s); the board keeps the last statuses "
                "(shown lost when they age) and retrying with backoff up to %.1f s",
                self.bootstrap,
                self._last_error,
                self._max_backoff_s,
            )
        else:
            logger.debug("live subscriber: still failing: %s", self._last_error)

    def _came_online(self) -> None:
        self._connected = True
        self._connected_gauge.set(1)
        self._last_error = None
        if self._outage_since is not None:
            logger.info(
                "live subscriber: Kafka reachable again after %.1f s; resuming",
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        elif not self._ever_connected:
            logger.info(
                "live subscriber: following %s and %s at %s",
                self.status_topic,
                self.preview_topic,
                self.bootstrap,
            )
        self._ever_connected = True


def _close_quietly(producer: KafkaProducer, timeout_s: float) -> None:
    try:
        producer.close(timeout=timeout_s)
    except Exception as e:
        logger.debug("live publisher: closing a producer failed: %s", describe_error(e))


def _status_bytes(status: CameraStatus) -> bytes:
    """The wire form of a status: compact JSON of ``model_dump(mode="json")``."""
    data = status.model_dump(mode="json")
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _record_key(record: Any) -> str:
    """The camera id a record is keyed by.

    Raises:
        ValueError: No key, not UTF-8, or not a plausible camera id.
    """
    key = record.key
    if key is None:
        raise ValueError("record without a key")
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("record key is not UTF-8") from None
    if not 0 < len(text) <= 128:
        raise ValueError("record key is not a camera id")
    return text


# --------------------------------------------------------------------------- demand


@dataclass(frozen=True, slots=True)
class DemandPublisherHealth:
    """What the demand publisher reports.

    Attributes:
        running: The background thread runs.
        key: The control key it publishes under (``DEMAND_PREFIX + replica``).
        watching: Cameras in the last demand published (0 after a tombstone).
        published: Messages (wants and tombstones) published since start.
        errors: Publishing attempts that failed since start.
        last_error: The last failure's reason, or ``None`` once one succeeded again.
    """

    running: bool
    key: str
    watching: int
    published: int
    errors: int
    last_error: str | None


class DemandPublisher:
    """Publishes this replica's watchers' demand on the control channel (API side).

    Every ``tick_s`` it reads ``demand.wanted()``: while anybody watches it publishes
    ``demand_message(wants, lease_s)`` under ``DEMAND_PREFIX + replica_id`` when the
    wants changed and at least every ``renew_s``; when nobody watches any more it
    publishes one tombstone, then nothing until somebody watches again.  ``stop``
    publishes a tombstone if the last message was a live demand.  Publishing errors
    (``ControlPublishError``) are logged once per outage and retried at the next tick,
    never raised.

    Args:
        demand: The watchers' demand of this process (``LiveBoard.demand``).
        control: Where to publish (``KafkaControlPublisher``, ``InProcessControl``).
        replica_id: This replica's id (default: 12 random hex digits, new per process).
        renew_s: Renewal period while anybody watches, seconds (below ``lease_s``).
        lease_s: The lease each message gives, seconds.
        tick_s: How often the demand is checked, seconds (how soon a change goes out).
    """

    def __init__(
        self,
        demand: Demand,
        control: ControlPublisher,
        *,
        replica_id: str | None = None,
        renew_s: float = RENEW_S,
        lease_s: float = LEASE_S,
        tick_s: float = 0.2,
    ) -> None:
        if not 0 < tick_s <= renew_s < lease_s:
            raise ValueError(
                f"need 0 < tick_s ({tick_s}) <= renew_s ({renew_s}) < lease_s ({lease_s})"
            )
        self.demand = demand
        self.control = control
        self.replica_id = replica_id if replica_id is not None else uuid.uuid4().hex[:12]
        self.key = DEMAND_PREFIX + self.replica_id
        self.renew_s = renew_s
        self.lease_s = lease_s
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._published_wants: dict[str, Want] | None = None
        """The wants last published (``None``: nothing, or a tombstone, is in force)."""
        self._published_at = 0.0
        self._failing = False
        self._last_error: str | None = None
        self.published = 0
        self.errors = 0

    def start(self) -> None:
        """Start the background (daemon) thread.

        Raises:
            RuntimeError: It already runs.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("demand publisher already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-demand", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread; a tombstone if a live demand was published (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            self._thread = None
        if self._published_wants is not None:
            self._publish(None)

    def __enter__(self) -> DemandPublisher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def health(self) -> DemandPublisherHealth:
        """Counters (no secrets)."""
        wants = self._published_wants
        return DemandPublisherHealth(
            running=self._running,
            key=self.key,
            watching=len(wants) if wants else 0,
            published=self.published,
            errors=self.errors,
            last_error=self._last_error,
        )

    def tick(self, now: float | None = None) -> None:
        """Publish what is due now (the thread calls this every ``tick_s``; never raises)."""
        try:
            now = time.monotonic() if now is None else now
            wants = self.demand.wanted()
            if not wants:
                if self._published_wants is not None:  # nobody watches any more: once
                    self._publish(None)
                return
            due = wants != self._published_wants or now - self._published_at >= self.renew_s
            if due and self._publish(wants):
                self._published_at = now
        except Exception:  # a bug here must not end the thread
            logger.exception("live demand: publishing failed")

    def _run(self) -> None:
        self._running = True
        try:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(self.tick_s)
        finally:
            self._running = False

    def _publish(self, wants: dict[str, Want] | None) -> bool:
        value = None if wants is None else demand_message(wants, self.lease_s)
        try:
            self.control.publish(self.key, value)
        except ControlPublishError as e:
            self.errors += 1
            self._last_error = e.reason
            DEMAND_PUBLISH_ERRORS.inc()
            if not self._failing:
                self._failing = True
                logger.warning("live demand: %s not published (%s); retrying", self.key, e.reason)
            return False
        self.published += 1
        DEMAND_PUBLISHED.inc()
        self._published_wants = wants
        self._last_error = None
        if self._failing:
            self._failing = False
            logger.info("live demand: %s published again", self.key)
        return True
