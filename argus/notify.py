"""Tell a service manager how the pipeline is doing: systemd's notify protocol.

A service started with ``Type=notify`` finds a datagram socket in ``$NOTIFY_SOCKET`` (a path,
or ``@name`` for an abstract socket) and sends it newline-separated ``KEY=VALUE`` lines:

* ``READY=1`` once the cameras are started (the unit counts as started; its watchdog is
  armed from then on);
* ``STATUS=...`` a line of text ``systemctl status`` shows (cameras, frames);
* ``STOPPING=1`` when a graceful stop begins;
* ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds, else the service manager
  takes the service for hung and restarts it (``WatchdogSec=``, ``Restart=``).  When
  ``$WATCHDOG_PID`` is set and is not this process, the watchdog is someone else's.

This is the protocol of ``sd_notify(3)``, written out (one ``sendto`` per message): no
library is needed.  Without ``$NOTIFY_SOCKET`` every call is a no-op, so a pipeline run by
hand, in a container or under test behaves the same.

:class:`Watchdog` pings only while the pipeline makes progress, which the caller defines
with *marks*: values that change whenever a part moves (the runner's are documented at
``argus.runner.Runner.progress_marks``).  A part whose mark has not changed for longer than
the watchdog interval (or its own patience) is stalled, and while any part is stalled no
ping is sent: a hung pipeline is restarted, one that is merely idle or waiting is not.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
"""How often the status line is refreshed when there is no watchdog to ping, seconds."""

MAX_STATUS_CHARS = 400
"""Longest status line sent (``systemctl status`` shows one line anyway)."""


def socket_address(value: str) -> str | None:
    """The ``AF_UNIX`` address of a ``$NOTIFY_SOCKET`` value, or None when unusable.

    ``/run/systemd/notify`` (a path) is used as it is; ``@name`` is the abstract socket
    ``\\0name``.  Anything else (empty, ``vsock:...``) is not supported here.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval the service manager asks of process ``pid``, seconds.

    ``$WATCHDOG_USEC`` (microseconds, > 0), unless ``$WATCHDOG_PID`` names another process
    (a child that inherited the environment must not ping for its parent).  None when
    unset, malformed or not ours.
    """
    usec = environ.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number: no watchdog pings", usec)
        return None
    if value <= 0:
        return None
    owner = environ.get("WATCHDOG_PID", "").strip()
    if owner:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a number: no watchdog pings", owner)
            return None
    return value / 1_000_000


class Notifier:
    """Sends ``sd_notify`` messages to one socket (or nowhere).

    Every method is thread-safe and safe in a signal handler: each message goes out on a
    socket of its own, with no lock.  A failed send is logged (once) and reported as False,
    never raised: a service manager that went away must not stop the cameras.

    Args:
        address: The socket's ``AF_UNIX`` address (see :func:`socket_address`); None: no-op.
        watchdog_s: The watchdog interval asked for, seconds (None: no watchdog).
    """

    def __init__(self, address: str | None, *, watchdog_s: float | None = None) -> None:
        self._address = address
        self.watchdog_s = watchdog_s if address is not None else None
        """The watchdog interval, seconds (None: nobody watches; no pings)."""
        self._warned = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """The notifier the environment asks for (``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC``,
        ``$WATCHDOG_PID`` of this process); a no-op one when ``$NOTIFY_SOCKET`` is unset."""
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        if not raw:
            return cls(None)
        address = socket_address(raw)
        if address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket: no service notifications", raw)
            return cls(None)
        return cls(
            address, watchdog_s=watchdog_interval_s(env, os.getpid() if pid is None else pid)
        )

    @property
    def enabled(self) -> bool:
        """True when messages go somewhere."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE`` each) as one message; True when it went out."""
        if self._address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(data, self._address)
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warning("service notification failed (further failures not logged): %s", e)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (and a status line)."""
        return self.send("READY=1", *_status_field(status))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1`` (and a status line)."""
        return self.send("STOPPING=1", *_status_field(status))

    def status(self, text: str) -> bool:
        """``STATUS=text`` (one line)."""
        return self.send(*_status_field(text))

    def ping(self) -> bool:
        """``WATCHDOG=1``: the service is alive."""
        return self.send("WATCHDOG=1")


def _status_field(text: str | None) -> list[str]:
    if not text:
        return []
    line = " ".join(text.split())[:MAX_STATUS_CHARS]
    return [f"STATUS={line}"]


@dataclass(frozen=True)
class Mark:
    """How far one part of the pipeline has got.

    Attributes:
        value: Anything comparable that changes whenever the part moves (counters, a state).
        patience_s: Longest time the value may stay the same before the part counts as
            stalled, seconds; None: the watchdog interval.
        what: A word on the part's state for messages (e.g. ``"streaming"``).
    """

    value: Hashable
    patience_s: float | None = None
    what: str = ""


@dataclass(frozen=True)
class Stall:
    """A part whose mark has not moved for longer than allowed."""

    part: str
    silent_s: float
    what: str = ""

    def __str__(self) -> str:
        state = f" ({self.what})" if self.what else ""
        return f"{self.part}{state}: no progress for {self.silent_s:.1f} s"


class ProgressClock:
    """Remembers when each part's mark last changed.

    A part seen for the first time counts as having just moved; a part no longer in the
    marks (a camera that ended or left) is forgotten.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Hashable, float]] = {}

    def observe(self, marks: Mapping[str, Mark], now: float, window_s: float) -> list[Stall]:
        """Take in ``marks`` at monotonic time ``now``; the parts silent for longer than
        their patience (``window_s`` when they have none)."""
        stalls = []
        for part in [p for p in self._seen if p not in marks]:
            del self._seen[part]
        for part, mark in marks.items():
            seen = self._seen.get(part)
            if seen is None or seen[0] != mark.value:
                self._seen[part] = (mark.value, now)
                continue
            silent = now - seen[1]
            patience = window_s if mark.patience_s is None else max(window_s, mark.patience_s)
            if silent > patience:
                stalls.append(Stall(part, silent, mark.what))
        return stalls


class Watchdog:
    """Tells the service manager the pipeline is ready, how it is doing, and, while it
    makes progress, that it is alive.

    ``start()`` sends ``READY=1`` and starts a thread that every half watchdog interval
    (every ``STATUS_EVERY_S`` without a watchdog) takes the pipeline's progress ``marks``,
    sends ``WATCHDOG=1`` when no part is stalled (:class:`ProgressClock`, window: the
    watchdog interval), and refreshes the status line.  While a part is stalled the pings
    stop and the status line says which part; the service manager then restarts the
    service after the watchdog interval.  ``stopping()`` sends ``STOPPING=1`` and ends the
    pings (signal-safe); ``close()`` waits for the thread.

    Args:
        notifier: Where messages go (a disabled one makes every method a no-op, no thread).
        marks: The pipeline's progress marks by part (called on the watchdog thread: it
            must only read).
        status: The status line now (same thread, same rule).
    """

    def __init__(
        self,
        notifier: Notifier,
        marks: Callable[[], Mapping[str, Mark]],
        status: Callable[[], str],
    ) -> None:
        self.notifier = notifier
        self._marks = marks
        self._status = status
        self._clock = ProgressClock()
        self._done = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._stalled = False
        self.pings = 0
        """Watchdog pings sent so far."""

    @property
    def interval_s(self) -> float:
        """Seconds between two checks (and pings)."""
        w = self.notifier.watchdog_s
        return w / 2 if w is not None else STATUS_EVERY_S

    def start(self) -> None:
        """``READY=1`` with the status line, then check (and ping) on a thread of its own."""
        if not self.notifier.enabled or self._thread is not None or self._done.is_set():
            return
        self._clock.observe(self._marks(), time.monotonic(), self._window_s())
        self.notifier.ready(self._safe_status())
        if self.notifier.watchdog_s is not None:
            log.info(
                "service watchdog: %.1f s; pinged every %.1f s while the pipeline progresses",
                self.notifier.watchdog_s,
                self.interval_s,
            )
            self.notifier.ping()
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
        self._thread.start()

    def check(self, now: float | None = None) -> list[Stall]:
        """One check: take the marks; ping when nothing is stalled; refresh the status.

        Returns:
            The stalled parts (empty: progressing).
        """
        try:
            stalls = self._clock.observe(
                self._marks(), time.monotonic() if now is None else now, self._window_s()
            )
        except Exception:  # reading the marks failed: no proof of progress, no ping
            log.exception("checking the pipeline's progress failed")
            return [Stall("progress check", 0.0, "failed")]
        if self._stopping:
            return stalls
        if stalls:
            if not self._stalled:
                log.error(
                    "pipeline not progressing (%s): watchdog pings withheld, the service "
                    "manager will restart the service",
                    "; ".join(str(s) for s in stalls),
                )
            self._stalled = True
            self.notifier.status("stalled: " + "; ".join(str(s) for s in stalls))
            return stalls
        if self._stalled:
            log.warning("pipeline progressing again: watchdog pings resumed")
            self._stalled = False
        if self.notifier.watchdog_s is not None and self.notifier.ping():
            self.pings += 1
        self.notifier.status(self._safe_status())
        return stalls

    def stopping(self) -> None:
        """``STOPPING=1`` once; no more pings.  Safe in a signal handler."""
        if self._stopping:
            return
        self._stopping = True
        self._done.set()
        self.notifier.stopping("stopping")

    def close(self) -> None:
        """After ``stopping()``: wait for the thread (bounded)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _window_s(self) -> float:
        w = self.notifier.watchdog_s
        return w if w is not None else STATUS_EVERY_S

    def _safe_status(self) -> str:
        try:
            return self._status()
        except Exception:  # a status line is an aid
            log.exception("building the service status line failed")
            return "running"

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            self.check()
