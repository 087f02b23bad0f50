"""A camera's second stream, kept for evidence: packets only, never decoded.

Cameras send two streams: a small sub-stream (e.g. 640x360) that is cheap to decode and
analyse, and the main stream (1920x1080 or more) that an investigator wants to see.  A
camera configured with an ``evidence_source`` analyses its ``source`` and keeps the
compressed packets of the evidence stream in a :class:`ingest.packets.PacketRing` of its
own; an alert's clip is cut from that ring (a remux of the camera's main stream: full
resolution, no re-encoding).  Demuxing without decoding costs little CPU: the bytes are
read and copied, nothing more.

Time.  The two streams are separate RTSP sessions with their own timestamps, so the
evidence stream's raw clock is tied to the analysed stream's camera clock (``Frame.pts_s``)
through wall time: for each stream, ``wall - t`` over a sliding window has its minimum at
the packets or frames that arrived soonest after they were captured, so

    camera time of raw ``r``  =  ``r + min(wall - r) - min(wall - pts_s)``

is off by the difference between the two streams' shortest delays from the camera (a few
tens of milliseconds on a site network; measured in the tests).  The tie follows clock
drift by small steps (a quarter of a frame interval per packet; each step moves the
segment's stored packets with it, by less than three frames in all); a change of three
frame intervals or more (the analysed stream reconnected, a camera that restarted its
clock) re-ties at once, and the ring starts a new segment there.  A stream clock that
steps back more than :data:`JUMP_S` starts a new segment before the packet is kept, and
the tie is measured again.

The stream reconnects with the camera's back-off, forever, while the camera runs.  While
it is not streaming, clips are cut from the analysed stream instead (the runner decides,
with :attr:`EvidenceStream.streaming`), and say so.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import av
import av.container
import av.error

from ingest import _av
from ingest.packets import CLOCK_JUMP_FRAMES, PacketRing, StreamInfo
from ingest.redact import redact_text, redact_url

log = logging.getLogger(__name__)

JUMP_S = 1.0
"""A stream clock that steps back more than this (seconds) restarted: its arrivals are
measured again."""
STABLE_S = 10.0
"""A connection tied this long (seconds) was a good one: the back-off starts over."""
SETTLE_S = 0.5
"""Seconds of packets a connection collects before its first tie (the minimum needs a few)."""
WINDOW_S = 10.0
"""Seconds of arrivals the minimum looks back over (long enough to hold a fast arrival,
short enough to follow drift and a changed route)."""
SLEW_FRACTION = 0.25
"""Most the tie moves per packet, as a fraction of a frame interval."""


class WallTie:
    """The smallest ``wall - t`` seen over the last :data:`WINDOW_S` of wall time: a
    stream's clock ``t`` (seconds) as wall time, less the stream's shortest delay.

    Thread-safe: the owning stream's thread observes, another may read.
    """

    def __init__(self, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self._window_s = window_s
        self._lock = threading.Lock()
        self._mins: deque[tuple[float, float]] = deque()  # (wall, wall - t), values rising

    def observe(self, t: float, wall: float) -> None:
        """A frame or packet of stream time ``t`` (s) arrived at UNIX time ``wall``."""
        value = wall - t
        with self._lock:
            while self._mins and self._mins[-1][1] >= value:
                self._mins.pop()
            self._mins.append((wall, value))
            while self._mins[0][0] < wall - self._window_s:
                self._mins.popleft()

    def offset(self) -> float | None:
        """``min(wall - t)`` over the window, seconds; ``None`` before anything arrived."""
        with self._lock:
            return self._mins[0][1] if self._mins else None

    def reset(self) -> None:
        """Forget every arrival (the stream's clock restarted)."""
        with self._lock:
            self._mins.clear()


@dataclass(frozen=True, slots=True)
class EvidenceStats:
    """What the evidence stream did (safe to log and show: the URL is redacted).

    Attributes:
        source: The stream's URL, credentials redacted.
        streaming: Connected, tied to the camera clock, and packets arriving.
        packets: Packets kept since the start.
        reconnects: Connection attempts after the first.
        last_error: The latest failure, redacted, or ``None``.
        width: Picture width of the current (or last) connection, pixels (0: none yet).
        height: Its height, pixels.
        codec: Its codec name (``""``: none yet).
        tie_s: Camera time minus the stream's own time, seconds (``None``: not tied).
    """

    source: str
    streaming: bool
    packets: int
    reconnects: int
    last_error: str | None
    width: int
    height: int
    codec: str
    tie_s: float | None


class EvidenceStream:
    """Reads one camera's evidence stream into ``ring`` on a thread of its own.

    Args:
        camera_id: For logs.
        url: ``rtsp(s)://``, ``http(s)://`` or another FFmpeg network URL (credentials are
            redacted in every log, error and stat).
        ring: Where the packets go (the camera's evidence ring).
        camera_offset: The analysed stream's ``min(wall - pts_s)`` now (see
            :meth:`ingest.base.SourceBase.camera_offset`), ``None`` before its first frame.
        options: FFmpeg options of the connection (e.g. ``rtsp_transport``).
        backoff: ``delay_s(attempt, rng)`` between failed attempts (the camera's
            :class:`ingest.live_source.ReconnectPolicy`; its ``max_attempts`` is ignored:
            the stream is retried while the camera runs).
        open_timeout_s: Give up one connection attempt after this long.
        read_timeout_s: A connection without data this long is lost.
        seed: Seed of the back-off jitter (tests).
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        ring: PacketRing,
        *,
        camera_offset: Callable[[], float | None],
        options: Mapping[str, str],
        backoff: Callable[[int, random.Random], float],
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if open_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        self.camera_id = camera_id
        self.ring = ring
        self._url = url
        self._redacted = redact_url(url)
        self._camera_offset = camera_offset
        self._options = dict(options)
        self._backoff = backoff
        self._open_timeout_s = open_timeout_s
        self._read_timeout_s = read_timeout_s
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._packets = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._size = (0, 0, "")
        self._tie: float | None = None
        self._last_packet_mono: float | None = None
        self._phase = "connecting"  # connecting | tying | streaming | lost

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        """Start reading (idempotent; nothing starts once closed)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name=f"evidence-{self.camera_id}", daemon=True
            )
            self._thread.start()

    def close(self, timeout_s: float = 0.0) -> None:
        """Stop reading: immediate between packets and during back-off, within
        ``read_timeout_s`` while blocked in the network (``open_timeout_s`` while
        connecting).  Waits up to ``timeout_s`` for the thread.  Idempotent, thread-safe."""
        self._stop.set()
        thread = self._thread
        if thread is not None and timeout_s > 0 and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def streaming(self) -> bool:
        """Whether clips can come from this stream now: connected, tied to the camera
        clock, and a packet arrived within ``read_timeout_s``."""
        with self._lock:
            return self._streaming_locked()

    def stats(self) -> EvidenceStats:
        """Thread-safe snapshot."""
        with self._lock:
            width, height, codec = self._size
            return EvidenceStats(
                source=self._redacted,
                streaming=self._streaming_locked(),
                packets=self._packets,
                reconnects=self._reconnects,
                last_error=self._last_error,
                width=width,
                height=height,
                codec=codec,
                tie_s=self._tie,
            )

    def why_not(self) -> str:
        """Why clips do not come from this stream now, in words (no URL, no secret)."""
        with self._lock:
            error = f": {self._last_error}" if self._last_error else ""
            if self._stop.is_set():
                return "the evidence stream is closed"
            if self._phase == "connecting":
                return f"the evidence stream has not connected{error}"
            if self._phase == "tying":
                return "the evidence stream is not yet tied to the camera's clock"
            if self._phase == "streaming" and not self._streaming_locked():
                return "the evidence stream stopped: no data"
            return f"the evidence stream stopped{error}"

    # ---------------------------------------------------------------- internals
    def _streaming_locked(self) -> bool:
        last = self._last_packet_mono
        return (
            not self._stop.is_set()
            and self._phase == "streaming"
            and self._tie is not None
            and last is not None
            and time.monotonic() - last <= self._read_timeout_s
        )

    def _fail(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            self._tie = None
            if self._phase != "connecting":
                self._phase = "lost"

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if failures:
                delay = self._backoff(failures - 1, self._rng)
                log.warning(
                    "camera %s: evidence stream %s: reconnecting in %.2f s (attempt %d): %s",
                    self.camera_id,
                    self._redacted,
                    delay,
                    failures,
                    self._last_error,
                )
                if self._stop.wait(delay):
                    break
                with self._lock:
                    self._reconnects += 1
            try:
                tied_s = self._connection()
            except Exception as e:  # a bug must not end the camera: retried like a failure
                log.exception("camera %s: evidence stream failed", self.camera_id)
                self._fail(_failure(e))
                tied_s = 0.0
            # a connection that dropped soon (a camera at its session limit) backs off
            failures = 1 if tied_s >= STABLE_S else failures + 1
        self.ring.end_segment("the camera stopped")

    def _connection(self) -> float:
        """One connection, read until it is lost or closed; seconds it was tied."""
        try:
            container: av.container.InputContainer = av.open(
                self._url,
                mode="r",
                options=self._options,
                timeout=(self._open_timeout_s, self._read_timeout_s),
            )
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._fail(_failure(e))
            return 0.0
        tied = Tied()
        reason = "the connection was lost"
        try:
            stream = _av.first_video_stream(container)
            if stream is None:
                self._fail("no video stream in the evidence source")
                return 0.0
            if not _av.has_clock(container):
                self._fail("the evidence stream carries no timestamps (MJPEG): it cannot be tied")
                return 0.0
            self.ring.open_segment(stream)
            cc = stream.codec_context
            with self._lock:
                self._size = (int(cc.width), int(cc.height), str(cc.name))
                self._phase = "tying"
            log.info(
                "camera %s: evidence stream %s connected: %s %dx%d",
                self.camera_id,
                self._redacted,
                cc.name,
                cc.width,
                cc.height,
            )
            self._read(container, stream, tied)
            reason = "the camera stopped" if self._stop.is_set() else reason
        except (av.error.FFmpegError, OSError) as e:
            if isinstance(e, av.error.ExitError):
                self._fail("read timed out (no data)")
            else:
                self._fail(_failure(e))
        finally:
            container.close()
            self.ring.end_segment(reason)
            with self._lock:
                self._tie = None
        return tied.seconds()

    def _read(
        self, container: av.container.InputContainer, stream: av.video.VideoStream, tied: Tied
    ) -> None:
        tie = WallTie()
        time_base = stream.time_base
        info = StreamInfo.of(stream)  # the ring's own frame rate: its segment splits follow it
        interval = 1.0 / float(info.rate) if info.rate else 0.1
        first_wall: float | None = None
        last_raw: float | None = None
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            if not packet.size:
                continue
            wall = time.time()  # the arrival, before the ring's copy
            stamp = packet.pts if packet.pts is not None else packet.dts
            raw = None if stamp is None or time_base is None else float(stamp * time_base)
            if raw is not None and last_raw is not None and raw < last_raw - JUMP_S:
                # the stream's clock restarted: a new segment before this packet is kept,
                # and a new measure of its arrivals
                self.ring.end_segment("the evidence stream's clock jumped back")
                self.ring.open_segment(stream)
                tie.reset()
                first_wall = None
                with self._lock:
                    self._tie, self._phase = None, "tying"
            self.ring.add(packet)
            with self._lock:
                self._packets += 1
                self._last_packet_mono = time.monotonic()
            if raw is None:
                continue
            last_raw = raw
            tie.observe(raw, wall)
            first_wall = wall if first_wall is None else first_wall
            if wall - first_wall >= SETTLE_S:
                self._tie_to_camera(raw, tie, interval)
                tied.mark(self._tie is not None)
        self._fail("stream ended (EOF)")

    def _tie_to_camera(self, raw: float, tie: WallTie, interval: float) -> None:
        """Tie the ring's segment to the camera clock: at once for a change of three frame
        intervals or more (the ring splits its segment there), else by steps of a quarter
        frame (drift)."""
        camera, evidence = self._camera_offset(), tie.offset()
        if camera is None or evidence is None:
            return
        target = evidence - camera
        step = SLEW_FRACTION * interval
        with self._lock:
            current = self._tie
            if current is None or abs(target - current) >= CLOCK_JUMP_FRAMES * interval * 0.9:
                if current is not None:
                    log.info(
                        "camera %s: the evidence stream's tie to the camera clock moved %.2f s",
                        self.camera_id,
                        target - current,
                    )
                current = target
            else:
                current += max(-step, min(step, target - current))
            self._tie = current
            self._phase = "streaming"
        self.ring.anchor(raw, raw + current)


class Tied:
    """How long a connection has been tied to the camera clock (monotonic seconds)."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._last: float | None = None

    def mark(self, tied: bool) -> None:
        """A packet went by, tied (``True``) or not."""
        now = time.monotonic()
        if tied:
            self._since = now if self._since is None else self._since
            self._last = now
        else:
            self._since = self._last = None

    def seconds(self) -> float:
        """Seconds between the first and the last tied packet of the current run."""
        if self._since is None or self._last is None:
            return 0.0
        return self._last - self._since


def _failure(e: BaseException) -> str:
    """A connection failure in words, without the URL (FFmpeg's errors end with it) and
    redacted; wrong credentials said as such."""
    if isinstance(e, av.error.HTTPUnauthorizedError):
        return "the camera refused the credentials (401 Unauthorized)"
    if isinstance(e, av.error.HTTPForbiddenError):
        return "the camera refused access (403 Forbidden)"
    if isinstance(e, av.error.HTTPNotFoundError):
        return "no stream at that path (404 Not Found)"
    text = _URL_RE.sub("the stream", f"{type(e).__name__}: {e}")
    return redact_text(text.replace("'the stream'", "the stream"))


_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")
