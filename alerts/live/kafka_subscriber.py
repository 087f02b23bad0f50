"""``KafkaLiveSubscriber``: an API replica reads every worker's statuses and live pictures
into its ``LiveBoard`` (see ``alerts.live.kafka`` for the design)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from alerts.control.codec import describe_error
from alerts.kafka_bus import check_security
from alerts.live.board import LiveBoard
from alerts.live.kafka_common import (
    DEFAULT_PREVIEW_TOPIC,
    DEFAULT_STATUS_TOPIC,
    LIVE_CONNECTED,
    LIVE_MALFORMED,
    LIVE_RECEIVED,
    MALFORMED_LOG_EVERY_S,
    MAX_STATUS_BYTES,
    PICTURE,
    PREVIEW_RETENTION_MS,
    STATUS,
    ensure_live_topics,
)
from alerts.live.preview import MAGIC, MAX_HEADER_BYTES, MAX_PREVIEW_BYTES, Preview, PreviewError
from alerts.live.status import MAX_WATCHES, CameraStatus
from ingest.retry import Backoff

logger = logging.getLogger("alerts.live")  # one logger name for the package


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
