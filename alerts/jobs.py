"""Background jobs of the alert service: a daemon thread started and stopped with it."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


class DaemonJob:
    """A job that runs ``_run`` in a daemon thread until ``stop`` (or use it with
    ``with``).  ``_run`` waits on ``self._stop`` between its rounds and returns once it is
    set.

    Attributes:
        thread_name: The thread's name (in logs and debuggers).
    """

    thread_name = "job"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread.

        Raises:
            RuntimeError: Already started.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{self.thread_name} job already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it up to ``timeout_s`` (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        raise NotImplementedError
