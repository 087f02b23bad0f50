"""Server push of alert changes: ``ChangeWatcher`` (one per app) and the Server-Sent Events
a stream writes (``GET /api/v1/changes``, ``alerts.api.routes.changes``).

The store numbers every change of an alert in commit order (``alerts.store.sql_changes``).
The watcher reads the last number every ``poll_s`` while at least one stream is open (one
tiny query per process, however many pages are open) and wakes the streams when it moved;
each stream then reads the changes after its own number, of its user's cameras only.  The
alerts may be written by this process or by a separate alert service on the same database:
the number is all a stream follows, so both look the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread

from alerts.store import AlertChange, AlertStoreError, ChangeFeedStore

logger = logging.getLogger("alerts.api")

POLL_S = 0.1
"""How often the watcher reads the last change number while a stream is open, seconds (one
indexed one-row read: about 10 a second per process, however many pages are open)."""


class ChangeWatcher:
    """Follows the store's last change number for the streams of one process.

    Args:
        store: The store whose change sequence is followed.
        poll_s: Seconds between reads while a stream is open.
    """

    def __init__(self, store: ChangeFeedStore, poll_s: float = POLL_S) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        self._store = store
        self.poll_s = poll_s
        self.head = -1
        """The last number read (-1: not read yet)."""
        self.failing = False
        """The last read failed (the store is away); streams keep waiting."""
        self._moved: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams = 0

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[ChangeWatcher]:
        """Count one open stream while inside (the watcher polls while any is open)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a server has one loop; a test client makes several
            self._loop, self._moved, self._task = loop, None, None
        self._streams += 1
        if self._moved is None:
            self._moved = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="argus-change-watcher")
        try:
            yield self
        finally:
            self._streams -= 1

    async def moved_from(self, seen: int, timeout_s: float) -> int:
        """Wait until the last number differs from ``seen`` or ``timeout_s`` passed; the
        last number then (-1 when never read)."""
        if self._streams > 0 and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="argus-change-watcher")
        if self.head != seen or self._moved is None:
            return self.head
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout_s)
        return self.head

    async def _run(self) -> None:
        while self._streams > 0:
            try:
                head = (await anyio.to_thread.run_sync(self._store.change_head)).seq
            except Exception as e:  # the store is away (or a bug): report it, keep polling
                if not self.failing:
                    if isinstance(e, AlertStoreError):
                        logger.warning("change feed: cannot read the change sequence: %s", e)
                    else:
                        logger.exception("change feed: reading the change sequence failed")
                self.failing = True
            else:
                if self.failing:
                    logger.info("change feed: the change sequence is readable again")
                self.failing = False
                if head != self.head:
                    self.head = head
                    moved, self._moved = self._moved, asyncio.Event()
                    if moved is not None:
                        moved.set()
            await asyncio.sleep(self.poll_s)


def sse(event: str | None, data: Any = None, *, event_id: int | None = None) -> bytes:
    """One Server-Sent Event: ``event:``, ``id:`` and one ``data:`` line of compact JSON.
    With no ``event`` and no ``data`` it only moves the client's last event id (a browser
    dispatches nothing for it, but sends the id back when it reconnects)."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":"), allow_nan=False))
    return ("\n".join(lines) + "\n\n").encode()


def change_event(change: AlertChange) -> bytes:
    """An ``alert`` event (the alert as it is now) or a ``removed`` event (deleted)."""
    if change.alert is None:
        return sse(
            "removed",
            {"event_id": change.event_id, "change_seq": change.seq},
            event_id=change.seq,
        )
    return sse("alert", change.alert.model_dump(mode="json"), event_id=change.seq)
