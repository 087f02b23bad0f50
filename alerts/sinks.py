"""Bus subscribers that persist event records as files."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from alerts.schema import is_marker

logger = logging.getLogger(__name__)


class SinkClosedError(RuntimeError):
    """A record was written to a sink after ``close()``.

    Attributes:
        path: File of the sink.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"sink {path} is closed")


class JsonlSink:
    """Appends one JSON line per event record to a file (JSON Lines).

    The file is opened in append mode and never truncated, so a restarted
    pipeline continues the same file.  Lines are written whole under a lock
    (thread-safe) and flushed to the OS after every line (line buffering);
    ``flush()`` additionally ``fsync``s.  Usable directly as a bus subscriber:
    ``bus.subscribe(sink)``.  The file is the event log: run markers (records with a
    ``kind``, see ``alerts/run.schema.json``) travel on the same bus but are not events
    and are not written.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """
        Args:
            path: JSONL file; parent directories are created.

        Raises:
            OSError: The file cannot be created or opened for appending.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file: TextIO | None = open(  # noqa: SIM115 - closed by close()
            self.path, "a", encoding="utf-8", buffering=1, newline="\n"
        )
        self.written = 0
        """Number of records written by this instance."""
        self.skipped = 0
        """Run markers received and not written (they are not events)."""
        logger.info("appending event records to %s", self.path)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line of compact JSON (a run marker is skipped).

        Raises:
            ValueError / TypeError: The record is not JSON-serialisable (NaN included);
                nothing is written.
            SinkClosedError: After ``close()``.
        """
        if is_marker(record):  # a run marker: not an event
            with self._lock:
                self.skipped += 1
            return
        line = json.dumps(dict(record), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        with self._lock:
            if self._file is None:
                raise SinkClosedError(self.path)
            self._file.write(line + "\n")
            self.written += 1

    def __call__(self, record: dict[str, Any]) -> None:
        """Bus-subscriber form of ``write``."""
        self.write(record)

    def flush(self) -> None:
        """Flush Python's buffer and ``fsync`` the file to disk (no-op after close)."""
        with self._lock:
            if self._file is None:
                return
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush, fsync and close the file (idempotent)."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
