"""The control plane: rules and operator suppressions, from the API to every worker.

The API process is the source of truth (its ``ControlStore``); workers receive each
change as a keyed message, and the API never calls a worker.  Messages are
``(key, value)`` pairs with JSON values:

* key ``"rules"``: ``{"revision": n, "rules": [...], "updated_at": unix_s}`` (the rule
  set override; a tombstone means "back to the configured rules");
* key ``"suppression/<id>"``: ``Suppression.to_dict()``, or a tombstone (value ``None``)
  when the suppression was deleted.

Transports, behind the ``ControlPublisher`` protocol:

* ``InProcessControl``: one process (tests, single machine); ``publish`` calls the
  subscribers synchronously, each subscriber's exceptions isolated and logged.
* ``KafkaControlPublisher`` (API side) / ``KafkaControlSubscriber`` (worker side): a
  compacted topic (default ``"argus.control"``), so the topic holds the latest value of
  every key and a worker started at any time rebuilds the whole state by reading it
  from the beginning.  The subscriber uses no consumer group: every worker reads every
  partition.

``ControlState`` folds messages into ``rules`` and ``suppressions`` (malformed values
are logged and ignored, never raised); a worker passes ``state.apply`` as the
subscriber's ``on_change``.  The last message of a key wins (log order), like
compaction itself.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
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

from alerts.kafka_bus import check_security
from selector.suppression import Suppression

logger = logging.getLogger(__name__)

DEFAULT_CONTROL_TOPIC = "argus.control"
RULES_KEY = "rules"
SUPPRESSION_PREFIX = "suppression/"
MAX_KEY_LENGTH = 256
MAX_MESSAGE_BYTES = 900 * 1024
"""Largest encoded control value, bytes (Kafka's default message limit is about 1 MiB)."""

_KEY_RE = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")

ControlValue = Mapping[str, Any] | None
ChangeHandler = Callable[[str, Any], object]
"""``on_change(key, value)``: ``value`` is the decoded JSON value, or ``None`` (tombstone)."""

CONTROL_PUBLISHED = Counter(
    "argus_control_published_total",
    "Control messages (rules, suppressions, tombstones) acknowledged by the control channel.",
    ["transport"],
)
CONTROL_PUBLISH_ERRORS = Counter(
    "argus_control_publish_errors_total",
    "Control messages that could not be published (the change was refused with 503).",
    ["transport"],
)
CONTROL_APPLIED = Counter(
    "argus_control_applied_total",
    "Control records read from the control topic and handed to on_change.",
    ["topic"],
)
CONTROL_CONNECTED = Gauge(
    "argus_control_subscriber_connected",
    "1 while the control subscriber reaches the broker, else 0.",
    ["topic"],
)


class ControlPublishError(RuntimeError):
    """A control message was not delivered (the API answers 503; nothing changed).

    Attributes:
        key: Key of the message.
        reason: Why, without secrets.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"control message {key!r} not published: {reason}")


@runtime_checkable
class ControlPublisher(Protocol):
    """Where the API sends control changes."""

    def publish(self, key: str, value: ControlValue) -> None:
        """Deliver one change (``None``: tombstone); raises ``ControlPublishError``."""
        ...


# --------------------------------------------------------------------------- messages


def _describe(error: BaseException) -> str:
    """``"Type: message"`` of an error, once (kafka-python's messages start with the type)."""
    text = str(error)
    name = type(error).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:300]


def suppression_key(suppression_id: str) -> str:
    """The control key of a suppression: ``"suppression/<id>"``."""
    return SUPPRESSION_PREFIX + suppression_id


def rules_message(
    revision: int, rules: Sequence[Mapping[str, Any]], updated_at: float
) -> dict[str, Any]:
    """The value of the ``"rules"`` key."""
    return {"revision": revision, "rules": [dict(r) for r in rules], "updated_at": updated_at}


def encode_value(key: str, value: ControlValue) -> bytes | None:
    """The wire form of ``value`` (compact UTF-8 JSON; ``None`` stays ``None``).

    Raises:
        ValueError: ``key`` is empty, too long or has spaces/control characters; the
            value is not JSON-serialisable (NaN included) or over ``MAX_MESSAGE_BYTES``.
    """
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"control key must be 1..{MAX_KEY_LENGTH} printable ASCII characters")
    if value is None:
        return None
    try:
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"control value of {key!r} is not JSON: {e}") from e
    data = raw.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"control value of {key!r} is {len(data)} bytes, over {MAX_MESSAGE_BYTES} bytes"
        )
    return data


def decode_value(raw: bytes | None) -> Any:
    """Inverse of ``encode_value``.

    Raises:
        ValueError: Not UTF-8 JSON (``RecursionError`` for absurd nesting included).
    """
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{type(e).__name__}: {e}"[:300]) from e


# ---------------------------------------------------------------------------- state


class ControlState:
    """The control state a worker applies, folded from control messages (thread-safe).

    ``apply(key, value)`` never raises: a malformed value (wrong shape, a suppression
    whose id does not match its key, ...) is logged at WARNING and ignored, keeping the
    key's previous state.  Unknown keys are logged and ignored (newer publishers).

    Attributes:
        changes: Number of messages that changed the state (cheap change detection).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[int, list[dict[str, Any]]] | None = None
        self._suppressions: dict[str, Suppression] = {}
        self.changes = 0

    def __call__(self, key: str, value: Any) -> None:
        """``on_change`` form of ``apply``."""
        self.apply(key, value)

    def apply(self, key: str, value: Any) -> bool:
        """Fold one message in; returns whether it was understood (and applied)."""
        try:
            if key == RULES_KEY:
                return self._apply_rules(value)
            if isinstance(key, str) and key.startswith(SUPPRESSION_PREFIX):
                return self._apply_suppression(key[len(SUPPRESSION_PREFIX) :], value)
        except Exception as e:  # never let a hostile value kill the subscriber
            logger.warning("control: ignoring %r: %s", key, f"{type(e).__name__}: {e}"[:300])
            return False
        logger.warning("control: ignoring unknown key %r", str(key)[:MAX_KEY_LENGTH])
        return False

    def _apply_rules(self, value: Any) -> bool:
        if value is None:
            with self._lock:
                self._rules = None
                self.changes += 1
            logger.info("control: rules override removed (configured rules apply)")
            return True
        if not isinstance(value, Mapping):
            logger.warning("control: ignoring rules value of type %s", type(value).__name__)
            return False
        revision, rules = value.get("revision"), value.get("rules")
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            logger.warning("control: ignoring rules with invalid revision %r", revision)
            return False
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            logger.warning(
                "control: ignoring rules revision %d: rules not a list of objects", revision
            )
            return False
        with self._lock:
            self._rules = (revision, [dict(r) for r in rules])
            self.changes += 1
        logger.info("control: rules revision %d (%d rules)", revision, len(rules))
        return True

    def _apply_suppression(self, suppression_id: str, value: Any) -> bool:
        if value is None:
            with self._lock:
                removed = self._suppressions.pop(suppression_id, None)
                self.changes += removed is not None
            logger.info("control: suppression %s removed", suppression_id)
            return True
        if not isinstance(value, Mapping):
            logger.warning(
                "control: ignoring suppression %s of type %s", suppression_id, type(value).__name__
            )
            return False
        try:
            s = Suppression.from_dict(value)
        except ValueError as e:
            logger.warning("control: ignoring suppression %s: %s", suppression_id, str(e)[:300])
            return False
        if s.suppression_id != suppression_id:
            logger.warning(
                "control: ignoring suppression under key %s: its id is %s",
                suppression_id,
                s.suppression_id[:64],
            )
            return False
        with self._lock:
            self._suppressions[suppression_id] = s
            self.changes += 1
        logger.info("control: suppression %s for camera %s", suppression_id, s.camera_id)
        return True

    @property
    def rules(self) -> tuple[int, list[dict[str, Any]]] | None:
        """``(revision, rules)`` of the latest rules override (a copy), or ``None``."""
        with self._lock:
            if self._rules is None:
                return None
            return self._rules[0], copy.deepcopy(self._rules[1])

    @property
    def suppressions(self) -> dict[str, Suppression]:
        """Every known suppression by id, expired ones included (a copy)."""
        with self._lock:
            return dict(self._suppressions)

    def active_suppressions(self, now: float, camera_id: str | None = None) -> list[Suppression]:
        """Suppressions in force at UNIX time ``now`` (of ``camera_id`` if given)."""
        with self._lock:
            items = list(self._suppressions.values())
        return [
            s for s in items if s.active(now) and (camera_id is None or s.camera_id == camera_id)
        ]


# ------------------------------------------------------------------------- in-process


class InProcessControl:
    """``ControlPublisher`` for one process: ``publish`` calls the subscribers in order.

    Values are copied through their JSON form, so subscribers never share objects with
    the publisher and a value Kafka would refuse is refused here too.  The latest value
    of every key is kept, and a new subscriber is first given that state (as a
    compacted topic gives it to a new Kafka subscriber).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._handlers: list[ChangeHandler] = []
        self._latest: dict[str, Any] = {}
        self.published = 0
        """Messages published since start."""

    def subscribe(self, on_change: ChangeHandler, *, replay: bool = True) -> None:
        """Register ``on_change``; with ``replay`` it first gets every key's latest value."""
        with self._lock:
            self._handlers.append(on_change)
            if replay:
                for key, value in list(self._latest.items()):
                    self._call(on_change, key, copy.deepcopy(value))

    def publish(self, key: str, value: ControlValue) -> None:
        """Hand one change to every subscriber, synchronously, in registration order.

        Raises:
            ValueError: A bad key or a value that is not JSON (see ``encode_value``).
        """
        data = encode_value(key, value)
        with self._lock:
            decoded = decode_value(data)
            if decoded is None:
                self._latest.pop(key, None)
            else:
                self._latest[key] = decoded
            self.published += 1
            CONTROL_PUBLISHED.labels(transport="inprocess").inc()
            for handler in list(self._handlers):
                self._call(handler, key, copy.deepcopy(decoded))

    def snapshot(self) -> dict[str, Any]:
        """The latest value of every key (tombstoned keys absent), a copy."""
        with self._lock:
            return copy.deepcopy(self._latest)

    @staticmethod
    def _call(handler: ChangeHandler, key: str, value: Any) -> None:
        try:
            handler(key, value)
        except Exception:  # one subscriber's bug must not stop the others
            logger.exception("control subscriber %r failed on %r", handler, key)


# ------------------------------------------------------------------------------ Kafka


def ensure_control_topic(
    bootstrap: str,
    topic: str = DEFAULT_CONTROL_TOPIC,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    security: Mapping[str, Any] | None = None,
    client_id: str = "argus-control-admin",
    timeout_s: float = 10.0,
    create: bool = True,
) -> list[int]:
    """Create the control topic (``cleanup.policy=compact``) if missing; its partition ids.

    A broker that refuses the topic config gets the topic created without it, and one
    that keeps no ``compact`` policy is only warned about: the topic then keeps every
    change, and subscribers still rebuild the latest state (just reading more).  No
    permission to create topics: the topic is assumed to exist.

    Returns:
        The topic's partition ids, sorted (empty when it does not exist and ``create``
        is false or creation was not permitted).

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
            try:
                admin.create_topics(
                    {topic: spec | {"configs": {"cleanup.policy": "compact"}}}, timeout_ms=ms
                )
                logger.info("created compacted control topic %s (%d partitions)", topic, partitions)
            except TopicAlreadyExistsError:
                pass
            except (
                InvalidConfigurationError,
                PolicyViolationError,
                UnsupportedVersionError,
                InvalidRequestError,
            ) as e:
                logger.warning(
                    "broker refused cleanup.policy=compact for control topic %s (%s); creating "
                    "it without: it keeps every change, subscribers still get the latest state",
                    topic,
                    type(e).__name__,
                )
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics({topic: spec}, timeout_ms=ms)
            except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as e:
                logger.warning(
                    "no permission to create control topic %s (%s); assuming it exists",
                    topic,
                    type(e).__name__,
                )
            _warn_unless_compacted(admin, topic)
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    for info in described:
        if info.get("name") == topic and info.get("error_code", 0) == 0:
            return sorted(int(p["partition_index"]) for p in info.get("partitions") or [])
    return []


def _warn_unless_compacted(admin: KafkaAdminClient, topic: str) -> None:
    """Best effort: warn when the topic's ``cleanup.policy`` is known and not compact."""
    try:
        result = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
        entry = result.get("topic", {}).get(topic, {}).get("cleanup.policy")
        policy = entry.get("value") if isinstance(entry, dict) else None
    except Exception as e:  # brokers without DescribeConfigs: nothing to check
        logger.debug("cannot read the configs of %s: %s", topic, type(e).__name__)
        return
    if policy is not None and "compact" not in str(policy):
        logger.warning(
            "control topic %s has cleanup.policy=%s, not compact: it keeps every change "
            "(subscribers still rebuild the latest state, reading more)",
            topic,
            policy,
        )


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

    def publish(self, key: str, value: ControlValue) -> None:
        """Send one keyed message and wait for the broker's acknowledgement.

        Raises:
            ValueError: A bad key or value (see ``encode_value``); nothing is sent.
            ControlPublishError: Not acknowledged within the timeout, or the broker
                refused it (the reason names no secret).
        """
        data = encode_value(key, value)
        with self._lock:
            try:
                producer = self._connect()
                future = producer.send(self.topic, key=key.encode("utf-8"), value=data)
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
        self._last_error = _describe(error)
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
        backoff = self._min_backoff_s
        try:
            while not self._stop.is_set():
                try:
                    self._connect()
                    backoff = self._min_backoff_s
                    self._follow()
                except Exception as e:  # broker errors and bugs alike: reconnect
                    self._went_offline(e)
                    self._disconnect()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
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
        self._last_error = _describe(error)
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


# ------------------------------------------------------------------------------ resync


class ControlSource(Protocol):
    """What ``republish_state`` reads (``alerts.store.ControlStore`` satisfies it)."""

    def get_rules(self) -> tuple[int, list[dict[str, Any]]] | None:
        """``(revision, rules)`` or ``None``."""
        ...

    def list_suppressions(
        self, *, active_only: bool = True, now: float | None = None
    ) -> list[Suppression]:
        """Suppressions (only active ones if ``active_only``)."""
        ...


def republish_state(
    source: ControlSource, publisher: ControlPublisher, *, now: float | None = None
) -> int:
    """Publish the stored rules and every active suppression again; returns how many.

    Call at API start: it makes the control topic agree with the store after anything
    that may have left them apart (a publish that failed after reaching the broker, a
    restored database).  Re-publishing is harmless: the values are the same.

    Raises:
        ControlPublishError: A message was not delivered (the rest are not tried).
    """
    t = time.time() if now is None else now
    count = 0
    rules = source.get_rules()
    if rules is not None:
        publisher.publish(RULES_KEY, rules_message(rules[0], rules[1], t))
        count += 1
    for s in source.list_suppressions(active_only=True, now=t):
        publisher.publish(suppression_key(s.suppression_id), s.to_dict())
        count += 1
    logger.info("control: republished %d messages (rules and active suppressions)", count)
    return count
