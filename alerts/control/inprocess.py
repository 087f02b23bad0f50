"""``InProcessControl``: the control channel within one process (tests, one machine)."""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from alerts.control.codec import ChangeHandler, ControlValue, decode_value, encode_value
from alerts.control.metrics import CONTROL_PUBLISHED

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


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

    def publish(self, key: str, value: ControlValue, partition: int | None = None) -> None:
        """Hand one change to every subscriber, synchronously, in registration order
        (``partition``: accepted for the Kafka publisher's sake; one process has none).

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
