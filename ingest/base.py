"""What every camera source is: states, statistics, the ``Source`` protocol, shared plumbing."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ingest.errors import SourceUsageError
from ingest.frame import Frame
from ingest.packets import PacketRing

log = logging.getLogger(__name__)


class SourceState(enum.StrEnum):
    """Health of a source, as reported to ``on_state`` and in ``stats()``."""

    CONNECTING = "connecting"
    """Opening the file / first connection attempt; no frame yet."""
    STREAMING = "streaming"
    """Frames are being delivered."""
    RECONNECTING = "reconnecting"
    """Live source lost (or never got) its connection and is retrying with back-off."""
    ENDED = "ended"
    """Finished normally: end of a finite file, or ``close()`` was called."""
    FAILED = "failed"
    """Gave up; ``frames()`` raised a ``SourceError``."""


StateCallback = Callable[[str, SourceState, str], None]
"""``on_state(camera_id, new_state, detail)``; called from the thread iterating ``frames()``
(or from the thread calling ``close()`` when nobody iterates).  It must not raise: an exception
propagates out of ``frames()``.  ``detail`` never contains credentials."""


@dataclass(frozen=True, slots=True)
class SourceStats:
    """A snapshot of a source's counters (thread-safe to take, immutable).

    Attributes:
        camera_id: Camera id.
        kind: ``"file"``, ``"rtsp"``, ``"http"``, ``"device"`` or ``"stream"``.
        source: The path or URL, credentials redacted.
        state: Current state.
        frames_decoded: Frames delivered so far (== next ``seq``).
        decode_errors: Bad packets / decode errors skipped so far.
        reconnects: Reconnect attempts made (live sources; loop restarts for files).
        last_error: Text of the last error, redacted; ``None`` if none.
        fps: Delivery rate measured over the last ~50 frames, frames/s (0.0 until 2 frames).
        width: Width of the last frame in pixels (0 before the first frame).
        height: Height of the last frame in pixels (0 before the first frame).
        first_frame_latency_s: Seconds from opening the last connection to its first frame.
        last_frame_wall_time: UNIX time of the last delivered frame's ``wall_time``.
        frames_thinned: Frames skipped on purpose while the camera was quiet (activity-
            driven decoding, :class:`ingest.activity.ActivityControl`): never delivered,
            and consuming no ``seq`` number.
    """

    camera_id: str
    kind: str
    source: str
    state: SourceState
    frames_decoded: int
    decode_errors: int
    reconnects: int
    last_error: str | None
    fps: float
    width: int
    height: int
    first_frame_latency_s: float | None
    last_frame_wall_time: float | None
    frames_thinned: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (state as its string value)."""
        return {
            "camera_id": self.camera_id,
            "kind": self.kind,
            "source": self.source,
            "state": self.state.value,
            "frames_decoded": self.frames_decoded,
            "decode_errors": self.decode_errors,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "first_frame_latency_s": self.first_frame_latency_s,
            "last_frame_wall_time": self.last_frame_wall_time,
            "frames_thinned": self.frames_thinned,
        }


@runtime_checkable
class Source(Protocol):
    """A camera or file that yields decoded frames, synchronously.

    The runner owns threads and buffering; a source only decodes, paces (files at real
    speed) and reconnects (live).
    """

    @property
    def camera_id(self) -> str:
        """Camera id, as configured."""
        ...

    @property
    def live(self) -> bool:
        """True for cameras and for files played at real speed: downstream drops oldest."""
        ...

    @property
    def finite(self) -> bool:
        """True when ``frames()`` ends on its own (a file that does not loop)."""
        ...

    @property
    def state(self) -> SourceState:
        """Current state."""
        ...

    def frames(self) -> Iterator[Frame]:
        """Yield frames as decoded (blocking); return at end / on ``close()``.

        Raises:
            SourceError: a subclass, when the source gives up.
        """
        ...

    def close(self) -> None:
        """Thread-safe: ask a blocked ``frames()`` to return soon.  Idempotent."""
        ...

    def stats(self) -> SourceStats:
        """Thread-safe snapshot of the counters."""
        ...


class SourceBase:
    """Shared state keeping, statistics and close handling of the concrete sources."""

    _FPS_WINDOW = 50

    def __init__(
        self,
        camera_id: str,
        *,
        kind: str,
        source_text: str,
        live: bool,
        finite: bool,
        on_state: StateCallback | None,
    ) -> None:
        self._camera_id = camera_id
        self._kind = kind
        self._source_text = source_text  # already redacted
        self._live = live
        self._finite = finite
        self._on_state = on_state
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._iterating = False
        self._state = SourceState.CONNECTING
        self._seq = 0
        self._decode_errors = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._deliveries: deque[float] = deque(maxlen=self._FPS_WINDOW)
        self._width = 0
        self._height = 0
        self._first_frame_latency_s: float | None = None
        self._last_wall: float | None = None
        self._thinned = 0
        self.packets: PacketRing | None = None
        """Where every demuxed video packet is also kept, for clips (``None``: nowhere).
        Set it before ``frames()`` is called."""

    # ------------------------------------------------------------- protocol
    @property
    def camera_id(self) -> str:
        """Camera id, as configured."""
        return self._camera_id

    @property
    def live(self) -> bool:
        """True when downstream should treat it as a live camera (drop oldest)."""
        return self._live

    @property
    def finite(self) -> bool:
        """True when ``frames()`` ends on its own."""
        return self._finite

    @property
    def state(self) -> SourceState:
        """Current state."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._stop.is_set()

    def close(self) -> None:
        """Thread-safe, idempotent: make ``frames()`` return soon (see the subclass for bounds)."""
        with self._lock:
            already = self._stop.is_set()
            self._stop.set()
            iterating = self._iterating
            failed = self._state == SourceState.FAILED
        if not already:
            log.debug("camera %s: close requested", self._camera_id)
        if not iterating and not failed:  # a source that failed stays failed
            self._set_state(SourceState.ENDED, "closed")

    def stats(self) -> SourceStats:
        """Thread-safe snapshot of the counters."""
        with self._lock:
            times = list(self._deliveries)
            fps = 0.0
            if len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            return SourceStats(
                camera_id=self._camera_id,
                kind=self._kind,
                source=self._source_text,
                state=self._state,
                frames_decoded=self._seq,
                decode_errors=self._decode_errors,
                reconnects=self._reconnects,
                last_error=self._last_error,
                fps=fps,
                width=self._width,
                height=self._height,
                first_frame_latency_s=self._first_frame_latency_s,
                last_frame_wall_time=self._last_wall,
                frames_thinned=self._thinned,
            )

    # ------------------------------------------------------------- helpers
    def _begin_iteration(self) -> bool:
        """Mark ``frames()`` as running; False if already closed (nothing to do).

        Raises:
            SourceUsageError: ``frames()`` was already called once.
        """
        with self._lock:
            if self._started:
                raise SourceUsageError(self._camera_id, "frames() can only be iterated once")
            self._started = True
            if self._stop.is_set():
                return False
            self._iterating = True
            return True

    def _end_iteration(self) -> None:
        with self._lock:
            self._iterating = False

    def _set_state(self, state: SourceState, detail: str) -> None:
        """Change state; log and call ``on_state`` only on an actual change."""
        with self._lock:
            if state == self._state:
                return
            self._state = state
        level = (
            logging.WARNING
            if state in (SourceState.RECONNECTING, SourceState.FAILED)
            else (logging.INFO)
        )
        log.log(level, "camera %s: %s (%s)", self._camera_id, state.value, detail)
        if self._on_state is not None:
            self._on_state(self._camera_id, state, detail)

    def _record_error(self, text: str, *, decode_error: bool = False) -> None:
        """Remember ``text`` (must already be redacted) as the last error."""
        with self._lock:
            self._last_error = text
            if decode_error:
                self._decode_errors += 1

    def _count_reconnect(self) -> None:
        with self._lock:
            self._reconnects += 1

    def _count_thinned(self, n: int) -> None:
        """Count ``n`` frames skipped on purpose (activity-driven decoding)."""
        with self._lock:
            self._thinned += n

    def _set_first_frame_latency(self, latency_s: float) -> None:
        with self._lock:
            self._first_frame_latency_s = latency_s

    def _make_frame(self, image: npt.NDArray[np.uint8], pts_s: float, wall_time: float) -> Frame:
        """Wrap ``image`` (H, W, 3) uint8 BGR into the next ``Frame`` and count it."""
        with self._lock:
            seq = self._seq
            self._seq += 1
            self._deliveries.append(time.monotonic())
            self._height, self._width = int(image.shape[0]), int(image.shape[1])
            self._last_wall = wall_time
        return Frame(self._camera_id, seq, pts_s, wall_time, image)
