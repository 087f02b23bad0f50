"""A bounded, crash-safe FIFO of JSON records on disk: what the Kafka bus has not delivered yet.

Design (and why not SQLite)
---------------------------
Records go to **append-only segment files** (``seg-<first seq>.log``) in one directory,
each record framed as ``magic (1 byte) | length (u32) | crc32 (u32) | JSON payload``
and ``fsync``'d before ``append`` returns; a small **committed-offset file**
(``committed``: the sequence number of the oldest record not yet acknowledged) is
replaced atomically (write temporary file, ``fsync``, ``rename``, ``fsync`` the
directory) on ``ack``.  On open, every segment is read back, each frame checked
(magic, length, CRC); the first bad frame ends that segment, and in the last segment
the file is truncated there, so a write torn by a crash or power cut costs at most the
record being written and is never fatal.  Segments wholly below the committed offset
are deleted.

A SQLite WAL database would give the same crash safety, but a FIFO only ever appends
at one end and trims at the other: the log needs one ``write`` + ``fsync`` per record
(no B-tree, no WAL checkpointing, no vacuum to get the space of delivered records
back — a deleted segment frees it at once), its on-disk format is a dozen lines to
recover and to test for torn tails, and the unacknowledged records (bounded by
``max_bytes``) are also held in memory so ``peek`` never touches the disk.

Delivery is at-least-once: a record delivered but not yet acknowledged when the
process dies comes back after the restart (consumers are idempotent by ``event_id``).

Bounds: when appending would exceed ``max_records`` or ``max_bytes`` (payload bytes of
the records held), the **oldest** records are dropped, counted in ``dropped`` and in
``argus_spool_dropped_total``, and logged at WARNING once per burst (a burst ends
when the spool is below its bounds again after an ``ack``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

SPOOL_DEPTH = Gauge(
    "argus_spool_depth",
    "Records held in a disk spool (appended, not yet acknowledged as delivered).",
    ["spool"],
)
SPOOL_DROPPED = Counter(
    "argus_spool_dropped_total",
    "Records dropped from a disk spool (oldest first) because it reached its bound.",
    ["spool"],
)

_MAGIC = 0xA5
_HEADER = struct.Struct(">BII")  # magic, payload length (bytes), crc32 of the payload
_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".log"
_COMMITTED = "committed"
_LOCK = "lock"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024


class SpoolError(RuntimeError):
    """The spool cannot be used (I/O error, already open elsewhere, record too large).

    Attributes:
        path: The spool directory.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        self.path = path
        super().__init__(f"{message} (spool {path})")


class SpoolClosedError(SpoolError):
    """An operation on a spool after ``close()``."""

    def __init__(self, path: Path) -> None:
        super().__init__("spool is closed", path=path)


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One record held by the spool.

    Attributes:
        seq: Its sequence number (increasing in append order, survives restarts).
        record: The JSON record.
    """

    seq: int
    record: dict[str, Any]


def _segment_name(base_seq: int) -> str:
    return f"{_SEGMENT_PREFIX}{base_seq:020d}{_SEGMENT_SUFFIX}"


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename or a new file in it survives power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskSpool:
    """Bounded crash-safe FIFO of JSON records in directory ``dir`` (thread-safe).

    Only one ``DiskSpool`` may have a directory open at a time (an ``flock`` on
    ``dir/lock``; a second open raises ``SpoolError``).
    """

    def __init__(
        self,
        dir: Path,
        *,
        max_records: int,
        max_bytes: int,
        name: str | None = None,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        """Open (or create) the spool and recover what a previous process left.

        Args:
            dir: Directory of the spool (created if missing).
            max_records: Most records held; appending beyond drops the oldest (>= 1).
            max_bytes: Most payload bytes (UTF-8 JSON) held; beyond, the oldest are
                dropped (>= 1). A single record larger than this is refused.
            name: Label of the metrics (``spool=``); default the directory name.
            fsync: ``fsync`` every append and commit (crash-safe against power loss).
                ``False`` still survives a killed process (data is in the page cache).
            segment_bytes: Size in bytes after which a new segment file is started.

        Raises:
            ValueError: A bound is not positive.
            SpoolError: The directory cannot be created/read, or another spool has it open.
        """
        if max_records < 1 or max_bytes < 1 or segment_bytes < 1:
            raise ValueError(
                f"max_records ({max_records}), max_bytes ({max_bytes}) and segment_bytes "
                f"({segment_bytes}) must be >= 1"
            )
        self.dir = Path(dir)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.name = name or self.dir.name
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._next_seq = 0
        self._segments: list[int] = []  # base seqs, ascending; the last one is active
        self._active: BinaryIO | None = None
        self._active_size = 0
        self._persisted_head = 0
        self._dropped = 0
        self._burst_dropped = 0
        self._closed = False
        self._depth_gauge = SPOOL_DEPTH.labels(spool=self.name)
        self._dropped_counter = SPOOL_DROPPED.labels(spool=self.name)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.dir / _LOCK, "a+b")  # noqa: SIM115 - held while open
        except OSError as e:
            raise SpoolError(f"cannot open spool directory: {e}", path=self.dir) from e
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._lock_file.close()
            raise SpoolError("spool directory is in use by another process", path=self.dir) from e
        try:
            self._recover()
        except OSError as e:
            self._release_lock()
            raise SpoolError(f"cannot recover spool: {e}", path=self.dir) from e
        self._depth_gauge.set(len(self._entries))
        if self._entries:
            logger.info(
                "spool %s: recovered %d undelivered records (%d bytes) from %s",
                self.name,
                len(self._entries),
                self._bytes,
                self.dir,
            )

    # -- recovery ---------------------------------------------------------------

    def _read_committed(self, first_base: int | None) -> int:
        path = self.dir / _COMMITTED
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return first_base or 0
        except (OSError, UnicodeDecodeError) as e:
            logger.warning("spool %s: unreadable %s (%s); redelivering all", self.name, path, e)
            return first_base or 0
        try:
            value = int(text)
        except ValueError:
            logger.warning("spool %s: corrupt %s (%r); redelivering all", self.name, path, text)
            return first_base or 0
        return max(value, 0)

    def _recover(self) -> None:
        bases = sorted(
            int(p.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)])
            for p in self.dir.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}")
            if p.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)].isdigit()
        )
        head = self._read_committed(bases[0] if bases else None)
        end = head
        last_end = -1
        for i, base in enumerate(bases):
            path = self.dir / _segment_name(base)
            data = path.read_bytes()
            pos = 0
            seq = base
            while pos < len(data):
                frame_end = self._check_frame(data, pos)
                if frame_end is None:
                    break
                payload = data[pos + _HEADER.size : frame_end]
                if seq >= head and seq >= end:
                    self._entries.append((seq, payload))
                    self._bytes += len(payload)
                pos = frame_end
                seq += 1
            if pos < len(data):
                last = i == len(bases) - 1
                logger.warning(
                    "spool %s: %s has a torn or corrupt record at byte %d; %d bytes skipped%s",
                    self.name,
                    path.name,
                    pos,
                    len(data) - pos,
                    " (truncated)" if last else "",
                )
                if last:
                    with open(path, "r+b") as f:
                        f.truncate(pos)
                        os.fsync(f.fileno())
            end = max(end, seq)
            last_end = seq
        self._next_seq = max(end, bases[-1] if bases else 0)
        self._segments = bases
        self._persisted_head = head
        self._enforce_bounds(incoming=0)
        self._gc_segments()
        if self._segments and last_end == self._next_seq:
            # Keep appending to the last segment only where the numbering continues it.
            path = self.dir / _segment_name(self._segments[-1])
            self._active = open(path, "ab")  # noqa: SIM115 - kept open for appends
            self._active_size = path.stat().st_size

    @staticmethod
    def _check_frame(data: bytes, pos: int) -> int | None:
        """End offset of the valid frame at ``pos``, or ``None`` if it is torn or corrupt."""
        if pos + _HEADER.size > len(data):
            return None
        magic, length, crc = _HEADER.unpack_from(data, pos)
        end: int = pos + _HEADER.size + length
        if magic != _MAGIC or end > len(data):
            return None
        if zlib.crc32(data[pos + _HEADER.size : end]) != crc:
            return None
        return end

    # -- public API -------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Number of records held (appended and not acknowledged or dropped)."""
        with self._lock:
            return len(self._entries)

    @property
    def bytes(self) -> int:
        """Payload bytes of the records held."""
        with self._lock:
            return self._bytes

    @property
    def dropped(self) -> int:
        """Records dropped (oldest first) because a bound was hit, since this spool opened."""
        with self._lock:
            return self._dropped

    def append(self, record: Mapping[str, Any]) -> int:
        """Write ``record`` durably at the tail, dropping the oldest records if full.

        Args:
            record: A JSON-serialisable mapping.

        Returns:
            The record's sequence number.

        Raises:
            TypeError / ValueError: The record is not JSON-serialisable.
            SpoolError: The record alone exceeds ``max_bytes``, or the write failed
                (e.g. disk full; the record is then not in the spool).
            SpoolClosedError: The spool was closed.
        """
        payload = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(payload) > self.max_bytes:
            raise SpoolError(
                f"record of {len(payload)} bytes exceeds max_bytes={self.max_bytes}",
                path=self.dir,
            )
        frame = _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._closed:
                raise SpoolClosedError(self.dir)
            try:
                if self._active is None or self._active_size >= self._segment_bytes:
                    self._rotate()
                assert self._active is not None
                start = self._active_size
                try:
                    self._active.write(frame)
                    self._active.flush()
                    if self._fsync:
                        os.fsync(self._active.fileno())
                except OSError:
                    # Do not leave half a frame in front of later appends.
                    with contextlib.suppress(OSError):
                        self._active.truncate(start)
                        self._active.seek(start)
                    raise
            except OSError as e:
                raise SpoolError(f"cannot append to spool: {e}", path=self.dir) from e
            self._active_size += len(frame)
            self._enforce_bounds(incoming=len(payload))
            seq = self._next_seq
            self._next_seq += 1
            self._entries.append((seq, payload))
            self._bytes += len(payload)
            self._depth_gauge.set(len(self._entries))
            return seq

    def peek(self, n: int) -> list[dict[str, Any]]:
        """The oldest ``min(n, depth)`` records, oldest first, without removing them."""
        return [e.record for e in self.peek_entries(n)]

    def peek_entries(self, n: int) -> list[SpoolEntry]:
        """Like ``peek`` but with sequence numbers (for ``ack_through``)."""
        with self._lock:
            if self._closed:
                raise SpoolClosedError(self.dir)
            items = [self._entries[i] for i in range(min(max(n, 0), len(self._entries)))]
        return [SpoolEntry(seq, json.loads(payload)) for seq, payload in items]

    def ack(self, n: int) -> int:
        """Remove the oldest ``n`` records (they were delivered); durable on return.

        Args:
            n: How many; more than ``depth`` removes everything.

        Returns:
            How many records were removed.
        """
        with self._lock:
            if self._closed:
                raise SpoolClosedError(self.dir)
            removed = 0
            while removed < n and self._entries:
                self._pop_oldest()
                removed += 1
            self._after_ack()
            return removed

    def ack_through(self, seq: int) -> int:
        """Remove every record with sequence number ``<= seq``; durable on return.

        Safer than ``ack(n)`` for a sender that peeked a batch while appends may have
        dropped the oldest records in the meantime.

        Returns:
            How many records were removed.
        """
        with self._lock:
            if self._closed:
                raise SpoolClosedError(self.dir)
            removed = 0
            while self._entries and self._entries[0][0] <= seq:
                self._pop_oldest()
                removed += 1
            self._after_ack()
            return removed

    def close(self) -> None:
        """Persist the committed offset and release the directory (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._persist_head()
            except OSError as e:
                logger.warning(
                    "spool %s: cannot persist committed offset on close: %s", self.name, e
                )
            if self._active is not None:
                self._active.close()
                self._active = None
            self._release_lock()

    def __enter__(self) -> DiskSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals (called with the lock held) ------------------------------------

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    def _pop_oldest(self) -> None:
        _, payload = self._entries.popleft()
        self._bytes -= len(payload)

    def _head(self) -> int:
        return self._entries[0][0] if self._entries else self._next_seq

    def _enforce_bounds(self, *, incoming: int) -> None:
        extra = 1 if incoming else 0
        dropped = 0
        while self._entries and (
            len(self._entries) + extra > self.max_records or self._bytes + incoming > self.max_bytes
        ):
            self._pop_oldest()
            dropped += 1
        if not dropped:
            return
        self._dropped += dropped
        self._dropped_counter.inc(dropped)
        if self._burst_dropped == 0:
            logger.warning(
                "spool %s full (max_records=%d, max_bytes=%d): dropping the oldest records "
                "(logged once per burst; see argus_spool_dropped_total)",
                self.name,
                self.max_records,
                self.max_bytes,
            )
        self._burst_dropped += dropped
        # The drop is persisted lazily (next ack/rotation/close): after a crash the
        # bounds are enforced again on open, so the same oldest records go.

    def _after_ack(self) -> None:
        self._persist_head()
        self._gc_segments()
        self._depth_gauge.set(len(self._entries))
        if self._burst_dropped and (
            len(self._entries) < self.max_records and self._bytes < self.max_bytes
        ):
            logger.warning(
                "spool %s: below its bound again; %d records were dropped in that burst",
                self.name,
                self._burst_dropped,
            )
            self._burst_dropped = 0

    def _persist_head(self) -> None:
        head = self._head()
        if head == self._persisted_head:
            return
        tmp = self.dir / f"{_COMMITTED}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{head}\n")
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        os.replace(tmp, self.dir / _COMMITTED)
        if self._fsync:
            fsync_dir(self.dir)
        self._persisted_head = head

    def _gc_segments(self) -> None:
        """Delete segments whose records are all below the persisted committed offset."""
        head = self._persisted_head
        while len(self._segments) > 1 and self._segments[1] <= head:
            base = self._segments.pop(0)
            with contextlib.suppress(FileNotFoundError):
                (self.dir / _segment_name(base)).unlink()
            logger.debug("spool %s: deleted delivered segment %d", self.name, base)

    def _rotate(self) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None
        self._persist_head()
        base = self._next_seq
        path = self.dir / _segment_name(base)
        self._active = open(path, "ab")  # noqa: SIM115 - kept open for appends
        self._active_size = path.stat().st_size
        if not self._segments or self._segments[-1] != base:
            self._segments.append(base)
        if self._fsync:
            fsync_dir(self.dir)
        self._gc_segments()
