"""The event bus: how event records travel from the selector to their consumers.

The bus carries event *records* (JSON-compatible dicts that validate against
``alerts/event.schema.json``), not ``Event`` objects, because records are what a
broker (Kafka, next) transports, and the *run markers* a worker run publishes per
camera when it starts (``alerts/run.schema.json``; a record with a ``kind``).
Producers call ``bus.publish(event.to_record())``; consumers (``JsonlSink``,
``SqliteAlertStore.upsert``, ...) subscribe a callable taking one record.

A Kafka implementation slots in behind the same ``EventBus`` protocol: ``publish``
enqueues to the producer, ``flush`` waits for delivery, ``subscribe`` runs a consumer
loop calling the handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from alerts.metrics import EVENT_HANDLER_ERRORS, EVENTS_PUBLISHED
from alerts.schema import validate_bus_record

logger = logging.getLogger(__name__)

RecordHandler = Callable[[dict[str, Any]], None]
"""A subscriber: called once per record, with its own shallow copy of the record."""


class BusClosedError(RuntimeError):
    """``publish``/``subscribe`` on a bus that was closed.

    Attributes:
        event_id: ``event_id`` of the record that was refused, if any.
    """

    def __init__(self, event_id: str | None = None) -> None:
        self.event_id = event_id
        what = f" (event_id={event_id})" if event_id else ""
        super().__init__(f"event bus is closed{what}")


@runtime_checkable
class EventBus(Protocol):
    """Transport of event records from producers to subscribers."""

    def publish(self, record: Mapping[str, Any]) -> None:
        """Send one event record or run marker (validated; ``InvalidEventError`` if not)."""
        ...

    def subscribe(self, handler: RecordHandler) -> None:
        """Register a handler that receives every record published from now on."""
        ...

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until records published so far are delivered (or ``timeout_s`` passes)."""
        ...

    def close(self) -> None:
        """Flush and release resources; later ``publish`` calls raise ``BusClosedError``."""
        ...


class InProcessBus:
    """Synchronous in-process bus: ``publish`` calls every subscriber before returning.

    Records are delivered in publish order to subscribers in subscription order.
    Publishes are serialised by a re-entrant lock, so records from several threads
    never interleave within one delivery and a handler may itself publish.  A
    handler that raises is logged (with the ``event_id``) and counted; the other
    handlers still receive the record and ``publish`` does not raise.
    """

    def __init__(self, *, validate: bool = True) -> None:
        """
        Args:
            validate: Validate each record against the event schema before delivery.
        """
        self._validate = validate
        self._handlers: list[RecordHandler] = []
        self._lock = threading.RLock()
        self._closed = False
        self.published = 0
        """Number of records published so far (delivered to all subscribers)."""

    def subscribe(self, handler: RecordHandler) -> None:
        """Register ``handler``; it receives records published after this call."""
        with self._lock:
            if self._closed:
                raise BusClosedError()
            self._handlers.append(handler)

    def publish(self, record: Mapping[str, Any]) -> None:
        """Validate ``record`` and deliver it to every subscriber, in order.

        Raises:
            InvalidEventError: The record matches neither the event schema nor the run
                marker schema (nothing is delivered).
            BusClosedError: The bus was closed.
        """
        event_id = record.get("event_id")
        eid = event_id if isinstance(event_id, str) else None
        if self._validate:
            validate_bus_record(record)
        with self._lock:
            if self._closed:
                raise BusClosedError(eid)
            handlers = tuple(self._handlers)
            for handler in handlers:
                try:
                    handler(dict(record))
                except Exception:  # a subscriber must not take down the pipeline
                    EVENT_HANDLER_ERRORS.inc()
                    logger.exception("event handler %r failed for event_id=%s", handler, eid)
            self.published += 1
            if "kind" not in record:  # run markers are not events
                EVENTS_PUBLISHED.labels(type=str(record.get("type"))).inc()

    def flush(self, timeout_s: float | None = None) -> None:
        """Nothing to wait for: delivery is synchronous."""
        del timeout_s

    def close(self) -> None:
        """Stop accepting records and drop the subscribers (idempotent)."""
        with self._lock:
            self._closed = True
            self._handlers.clear()
