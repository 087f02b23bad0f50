"""``DemandPublisher``: an API replica's watchers' demand onto the control channel, for the
workers (see ``alerts.live.kafka`` and ``alerts.live.demand``)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

from alerts.control.codec import ControlPublisher, ControlPublishError
from alerts.live.demand import DEMAND_PREFIX, LEASE_S, RENEW_S, Demand, Want, demand_message
from alerts.live.kafka_common import (
    DEMAND_PUBLISH_ERRORS,
    DEMAND_PUBLISHED,
)

logger = logging.getLogger("alerts.live")  # one logger name for the package


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
