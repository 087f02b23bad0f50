"""Live cameras (RTSP, HTTP streams, local V4L2 devices) with reconnection and back-off."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import av
import av.container
import av.error
import av.video
import numpy as np
import numpy.typing as npt

from ingest import _av
from ingest.activity import ActivityControl, Thinner
from ingest.base import SourceBase, SourceState, StateCallback
from ingest.errors import SourceNotFoundError, SourceUnavailableError
from ingest.evidence_stream import JUMP_S, EvidenceStream, WallTie
from ingest.frame import Frame
from ingest.packets import PacketRing
from ingest.redact import redact_text, redact_url
from ingest.retry import Backoff, check_backoff

log = logging.getLogger(__name__)

LiveKind = Literal["rtsp", "http", "device", "stream"]
"""``rtsp``: RTSP(S) over TCP; ``http``: HTTP(S) MJPEG / MPEG-TS / HLS; ``device``: a local
V4L2 camera (``/dev/videoN``); ``stream``: any other FFmpeg network URL (rtmp, srt, udp...)."""

_DEFAULT_INTERVAL_S = 1.0 / 25.0


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential back-off with jitter between reconnect attempts of a live source.

    Attempt ``n`` (0-based, counted since the last delivered frame) waits
    ``min(max_s, initial_s * multiplier**n)`` seconds, multiplied by a random factor in
    ``[1 - jitter, 1 + jitter]`` (so cameras that dropped together do not retry together);
    the formula and the checks are ``ingest.retry``'s, shared with every retry loop.

    Attributes:
        initial_s: First delay, seconds (> 0).
        max_s: Delay cap, seconds (>= initial_s).
        multiplier: Growth factor per failed attempt (>= 1).
        max_attempts: Consecutive failed attempts before giving up (``SourceUnavailableError``);
            ``None`` = retry forever.  The counter resets whenever a frame arrives.
        jitter: Relative jitter in [0, 1).
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    jitter: float = 0.2

    def __post_init__(self) -> None:
        check_backoff("ReconnectPolicy", self.initial_s, self.max_s, self.multiplier, self.jitter)
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"ReconnectPolicy.max_attempts must be >= 0, got {self.max_attempts}")

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before 0-based ``attempt`` (jittered with ``rng`` if given)."""
        backoff = Backoff(self.initial_s, self.max_s, self.multiplier, self.jitter)
        return backoff.delay_s(attempt, rng)


def live_options(kind: LiveKind, read_timeout_s: float) -> dict[str, str]:
    """FFmpeg options of a live connection of ``kind`` (RTSP over TCP, video only; read
    timeouts of ``read_timeout_s`` seconds)."""
    read_us = str(int(read_timeout_s * 1_000_000))
    if kind == "rtsp":
        # 'timeout' is the RTSP socket I/O timeout in microseconds (FFmpeg >= 5); a short
        # 'analyzeduration' (us) cuts first-frame latency from ~3 s to < 1 s.
        return {
            "rtsp_transport": "tcp",
            "timeout": read_us,
            "allowed_media_types": "video",
            "analyzeduration": "500000",
        }
    if kind in ("http", "stream"):
        # 'rw_timeout' is the generic AVIO read/write timeout in microseconds.
        return {"rw_timeout": read_us}
    return {}


class _ConnectFailedError(Exception):
    """Internal: one connection attempt failed (message already redacted)."""


class _ConnectionLostError(Exception):
    """Internal: an open connection stopped delivering (message already redacted)."""


class _Connection(Protocol):
    nominal_fps: float | None

    def frames(self) -> Iterator[tuple[npt.NDArray[np.uint8], float | None]]:
        """Yield ``(bgr image (H, W, 3) uint8, stream time s or None)``; raise when lost."""
        ...

    def close(self) -> None: ...


class _AvConnection:
    """One PyAV connection to a live URL."""

    def __init__(
        self,
        url: str,
        *,
        fmt: str | None,
        options: Mapping[str, str],
        open_timeout_s: float,
        read_timeout_s: float,
        threads: int,
        source: LiveSource,
    ) -> None:
        self._source = source
        try:
            self._container: av.container.InputContainer = av.open(
                url,
                mode="r",
                format=fmt,
                options=dict(options),
                timeout=(open_timeout_s, read_timeout_s),
            )
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise _ConnectFailedError(redact_text(f"{type(e).__name__}: {e}")) from e
        stream = _av.first_video_stream(self._container)
        if stream is None:
            self._container.close()
            raise _ConnectFailedError("no video stream in the source")
        _av.configure_decoder(stream, threads=threads, thread_type="AUTO")
        self._stream = stream
        source.arrivals.reset()  # a new connection: a new raw clock
        source._last_raw = None
        if source.packets is not None:
            source.packets.open_segment(stream)
        self.nominal_fps = _av.nominal_fps(stream)
        # MJPEG-over-HTTP carries no clock (FFmpeg invents 25 fps timestamps): use arrival time.
        self._arrival_time = not _av.has_clock(self._container)
        if self._arrival_time:
            self.nominal_fps = None

    def _on_packet(self, packet: av.Packet[av.video.stream.VideoStream]) -> None:
        """Every demuxed packet: its arrival noted (for an evidence stream's clock), then
        kept for clips."""
        wall = time.time()  # before the ring's copy: the arrival, as near as can be
        stamp = packet.pts if packet.pts is not None else packet.dts
        time_base = self._stream.time_base
        if stamp is not None and time_base is not None and not self._arrival_time:
            self._source.note_arrival(float(stamp * time_base), wall)
        if self._source.packets is not None:
            self._source.packets.add(packet)

    def frames(self) -> Iterator[tuple[npt.NDArray[np.uint8], float | None]]:
        activity = self._source.activity
        thinner = (
            None
            if activity is None
            else Thinner(activity, self._stream.time_base, self._source.count_thinned)
        )
        try:
            for vf in _av.decode_video(
                self._container,
                self._stream,
                on_bad_packet=self._source.on_bad_packet,
                resume_demux_on_error=False,
                max_consecutive_errors=50,
                thinner=thinner,
                on_packet=self._on_packet,
            ):
                raw = None if self._arrival_time else _av.frame_time_s(vf, self._stream)
                if thinner is not None and not thinner.keep(
                    time.monotonic() if raw is None else raw, raw
                ):
                    continue
                yield _av.to_bgr(vf), raw
        except (av.error.FFmpegError, OSError) as e:
            if isinstance(e, av.error.ExitError):
                raise _ConnectionLostError("read timed out (no data)") from e
            raise _ConnectionLostError(redact_text(f"{type(e).__name__}: {e}")) from e
        raise _ConnectionLostError("stream ended (EOF)")

    def close(self) -> None:
        self._container.close()


class _Cv2DeviceConnection:
    """A V4L2 device through OpenCV (used when this PyAV build has no v4l2 demuxer)."""

    def __init__(self, path: str) -> None:
        import cv2  # local: only device users pay for it

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if not self._cap.isOpened():
            self._cap.release()
            raise _ConnectFailedError(f"OpenCV V4L2 cannot open {path}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        self.nominal_fps = fps if 0.1 <= fps <= 1000.0 else None

    def frames(self) -> Iterator[tuple[npt.NDArray[np.uint8], float | None]]:
        while True:
            ok, img = self._cap.read()
            if not ok or img is None:
                raise _ConnectionLostError("device read failed")
            if img.ndim == 2:
                img = self._cv2.cvtColor(img, self._cv2.COLOR_GRAY2BGR)
            yield np.ascontiguousarray(img, dtype=np.uint8), None

    def close(self) -> None:
        self._cap.release()


_TimelineState = tuple[float | None, int, float | None, float, float | None, float | None]


class _Timeline:
    """Maps each connection's stream times onto one non-decreasing ``pts_s`` axis.

    A new connection continues after the last frame delivered by the time that really
    passed (monotonic clock), at least one frame interval: a ten-minute outage shows as ten
    minutes of video time, so trackers and rules downstream (which run on ``pts_s``) see
    the gap and do not carry people across it.  Frames
    without pts before the connection's first pts use the monotonic time since the
    connection's first frame (RTSP's first frame often has none); a frame without pts after
    that gets last + one interval.  A backwards jump re-anchors like a reconnect.
    """

    def __init__(self) -> None:
        self.last: float | None = None
        self.interval = _DEFAULT_INTERVAL_S
        self._base = 0.0
        self._first_raw: float | None = None
        self._first_mono: float | None = None
        self._n = 0  # frames mapped in this connection
        self._last_mono: float | None = None  # monotonic time of the last frame mapped
        self._undo: _TimelineState | None = None  # the state before the last map

    def _next(self) -> float:
        return 0.0 if self.last is None else self.last + self.interval

    def new_connection(self, nominal_fps: float | None) -> None:
        if nominal_fps is not None:
            self.interval = 1.0 / nominal_fps
        self._base = self._next()
        self._first_raw = None
        self._first_mono = None
        self._n = 0

    def take_back(self) -> None:
        """Forget the last frame mapped (its consumer took it back for a look-back, see
        :meth:`ingest.ActivityControl.look_back`): the frames replayed before it map as
        they would have."""
        if self._undo is not None:
            (self.last, self._n, self._last_mono, self._base, self._first_raw, self._first_mono) = (
                self._undo
            )
            self._undo = None

    def map(self, raw: float | None, mono: float) -> float:
        self._undo = (
            self.last,
            self._n,
            self._last_mono,
            self._base,
            self._first_raw,
            self._first_mono,
        )
        if self._n == 0 and self.last is not None and self._last_mono is not None:
            # first frame after a reconnect: account for the outage
            self._base = max(self._base, self.last + (mono - self._last_mono))
        if raw is None:
            if self._first_raw is not None:
                out = self._next()
            else:
                if self._first_mono is None:
                    self._first_mono = mono
                out = self._base + (mono - self._first_mono)
        else:
            if self._first_raw is None:
                if self._n > 0:  # switch from arrival time to the stream clock
                    self._base = self._next()
                self._first_raw = raw
            out = self._base + (raw - self._first_raw)
            if self.last is not None and out < self.last:
                # timestamps went backwards (camera reset, wrap): continue after the last frame
                self._base, self._first_raw = self._next(), raw
                out = self._base
        self._n += 1
        self.last = out
        self._last_mono = mono
        return out


class LiveSource(SourceBase):
    """A live camera: RTSP (over TCP), HTTP(S) stream, or local V4L2 device.

    ``frames()`` connects, yields frames as they are decoded (``wall_time`` = ``time.time()``
    at decode), and on any failure (refused, timeout, EOF, decoder error) goes RECONNECTING
    and retries with ``reconnect``'s back-off, forever or until ``max_attempts`` consecutive
    failures (then FAILED + ``SourceUnavailableError``).  ``seq`` keeps increasing and
    ``pts_s`` stays monotonic across reconnects.  A dead camera yields nothing.

    ``close()`` is immediate during back-off waits and between frames; while blocked in the
    network it takes effect within ``read_timeout_s`` (``open_timeout_s`` while connecting),
    which is PyAV's interrupt-callback timeout.  URLs are redacted in all logs, stats, errors.
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        kind: LiveKind,
        reconnect: ReconnectPolicy | None = None,
        on_state: StateCallback | None = None,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        options: Mapping[str, str] | None = None,
        decode_threads: int = 0,
        seed: int | None = None,
        activity: ActivityControl | None = None,
    ) -> None:
        """Create the source (nothing is opened until ``frames()``).

        Args:
            camera_id: Camera id given to every frame.
            url: ``rtsp(s)://``, ``http(s)://`` URL, or ``/dev/videoN`` for devices.
            kind: See ``LiveKind``.
            reconnect: Back-off policy; ``ReconnectPolicy()`` if ``None``.
            on_state: State-change callback ``(camera_id, state, detail)``.
            open_timeout_s: Give up one connection attempt after this many seconds.
            read_timeout_s: Declare the connection lost after this long without data.
            options: Extra FFmpeg options, merged over the defaults for ``kind``.
            decode_threads: Decoder threads, 0 = FFmpeg's choice.
            seed: Seed of the jitter RNG (tests); random if ``None``.
            activity: Activity-driven decoding: while it is quiet, only keyframes or one
                frame per ``interval_s`` are delivered (see :mod:`ingest.activity`;
                PyAV connections only, not OpenCV's V4L2 fallback); ``None``: every frame.
        """
        self._url = url
        self._redacted = redact_url(url)
        super().__init__(
            camera_id,
            kind=kind,
            source_text=self._redacted,
            live=True,
            finite=False,
            on_state=on_state,
        )
        if kind not in ("rtsp", "http", "device", "stream"):
            raise ValueError(f"unknown live source kind {kind!r}")
        if open_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError(
                f"timeouts must be > 0, got open={open_timeout_s} read={read_timeout_s}"
            )
        self._live_kind: LiveKind = kind
        self._policy = reconnect if reconnect is not None else ReconnectPolicy()
        self._open_timeout_s = open_timeout_s
        self._read_timeout_s = read_timeout_s
        self._threads = decode_threads
        self._rng = random.Random(seed)
        self.activity = activity
        """The camera's activity control (``None``: every frame)."""
        self._options = self._default_options()
        if options:
            self._options.update({str(k): str(v) for k, v in options.items()})
        self.evidence: EvidenceStream | None = None
        """The camera's evidence stream (see :meth:`attach_evidence`), ``None``: none."""
        self.arrivals = WallTie()
        """When the current connection's packets arrived: ``min(wall - raw)`` (seconds)."""
        self._raw_to_pts: float | None = None  # pts_s - raw of the connection's frames
        self._last_raw: float | None = None  # the newest packet time noted

    def note_arrival(self, raw: float, wall: float) -> None:
        """A packet of stream time ``raw`` (s) arrived at UNIX time ``wall`` (called by the
        connection).  A clock that steps back more than :data:`JUMP_S` starts the arrivals
        again (the old minimum would tie the new clock wrongly for a whole window)."""
        if self._last_raw is not None and raw < self._last_raw - JUMP_S:
            self.arrivals.reset()
        self._last_raw = raw
        self.arrivals.observe(raw, wall)

    def attach_evidence(self, url: str, kind: LiveKind, ring: PacketRing) -> EvidenceStream:
        """Keep the packets of the camera's second stream ``url`` (its main stream, of
        ``kind``: see :func:`ingest.classify_source`) in ``ring``, for clips: read from when
        ``frames()`` starts until the source closes, reconnected with this source's
        back-off, its clock tied to this one's.  Call before ``frames()``."""
        self.evidence = EvidenceStream(
            self._camera_id,
            url,
            ring,
            camera_offset=self.camera_offset,
            options=live_options(kind, self._read_timeout_s),
            backoff=self._policy.delay_s,
            open_timeout_s=self._open_timeout_s,
            read_timeout_s=self._read_timeout_s,
        )
        return self.evidence

    def camera_offset(self) -> float | None:
        """UNIX time less camera time (``Frame.pts_s``) of the packets that arrived soonest
        after capture in the last ten seconds (seconds; ``None`` until the connection's
        first frame): camera time at UNIX time ``w`` is about ``w - camera_offset()``.

        Measured at the packets' arrival, before decoding: a decoder's frame threads hold
        pictures back by a frame each, which the evidence stream (never decoded) does not.
        Thread-safe (an evidence stream ties its clock to it)."""
        arrival, raw_to_pts = self.arrivals.offset(), self._raw_to_pts
        if arrival is None or raw_to_pts is None:
            return None
        return arrival - raw_to_pts

    def close(self) -> None:
        """See :meth:`SourceBase.close`; the evidence stream closes too."""
        super().close()
        if self.evidence is not None:
            self.evidence.close()

    @property
    def url(self) -> str:
        """The URL with credentials redacted (safe to log)."""
        return self._redacted

    def _default_options(self) -> dict[str, str]:
        return live_options(self._live_kind, self._read_timeout_s)

    # ---------------------------------------------------------------- connect
    def _connect(self) -> _Connection:
        if self._live_kind == "device":
            if not os.path.exists(self._url):
                raise _ConnectFailedError(f"device {self._url} does not exist")
            if "v4l2" in av.formats_available:
                return _AvConnection(
                    self._url,
                    fmt="v4l2",
                    options=self._options,
                    open_timeout_s=self._open_timeout_s,
                    read_timeout_s=self._read_timeout_s,
                    threads=self._threads,
                    source=self,
                )
            return _Cv2DeviceConnection(self._url)
        return _AvConnection(
            self._url,
            fmt=None,
            options=self._options,
            open_timeout_s=self._open_timeout_s,
            read_timeout_s=self._read_timeout_s,
            threads=self._threads,
            source=self,
        )

    def count_thinned(self, n: int) -> None:
        """Count ``n`` frames skipped on purpose (called by the connection)."""
        self._count_thinned(n)

    def on_bad_packet(self, e: av.error.FFmpegError) -> None:
        """Count and log a packet that failed to decode (called by the connection)."""
        text = redact_text(f"bad packet skipped: {e}")
        self._record_error(text, decode_error=True)
        log.warning("camera %s: %s: %s", self._camera_id, self._redacted, text)

    # ----------------------------------------------------------------- frames
    def frames(self) -> Iterator[Frame]:
        """Yield live frames until ``close()`` (see the class doc).

        Raises:
            SourceNotFoundError: a ``device`` whose node does not exist at the first attempt.
            SourceUnavailableError: ``max_attempts`` consecutive reconnects failed.
            SourceUsageError: called a second time.
        """
        if not self._begin_iteration():
            self._set_state(SourceState.ENDED, "closed before start")
            return
        if self.evidence is not None:
            self.evidence.start()
        try:
            yield from self._run()
        except (SourceNotFoundError, SourceUnavailableError) as e:
            self._record_error(str(e))
            self._set_state(SourceState.FAILED, str(e))
            raise
        finally:
            if self.evidence is not None:
                self.evidence.close()
            self._end_iteration()
        self._set_state(SourceState.ENDED, "closed")

    def _run(self) -> Iterator[Frame]:
        timeline = _Timeline()
        failures = 0  # consecutive failed attempts since the last delivered frame
        ever_connected = False
        last_error = ""
        while not self.closed:
            if failures > 0:
                max_attempts = self._policy.max_attempts
                if max_attempts is not None and failures > max_attempts:
                    raise SourceUnavailableError(self._redacted, failures, last_error)
                delay = self._policy.delay_s(failures - 1, self._rng)
                self._set_state(SourceState.RECONNECTING, last_error)
                log.warning(
                    "camera %s: reconnecting to %s in %.2f s (attempt %d): %s",
                    self._camera_id,
                    self._redacted,
                    delay,
                    failures,
                    last_error,
                )
                if self._stop.wait(delay):
                    return
                self._count_reconnect()
            t_open = time.monotonic()
            try:
                conn = self._connect()
            except _ConnectFailedError as e:
                if (
                    self._live_kind == "device"
                    and not ever_connected
                    and failures == 0
                    and not os.path.exists(self._url)
                ):
                    raise SourceNotFoundError(self._url) from e
                last_error = str(e)
                self._record_error(last_error)
                failures += 1
                continue
            ever_connected = True
            log.info(
                "camera %s: connected to %s in %.2f s",
                self._camera_id,
                self._redacted,
                time.monotonic() - t_open,
            )
            timeline.new_connection(conn.nominal_fps)
            self._raw_to_pts = None
            first = True
            try:
                replay: tuple[float, float] | None = None  # (pts_s, wall) of a frame taken back
                for image, raw in conn.frames():
                    if self.closed:
                        return
                    wall = time.time()
                    mono = time.monotonic()
                    pts_s = timeline.map(raw, mono)
                    if replay is not None and pts_s <= replay[0]:
                        wall = replay[1] - (replay[0] - pts_s)  # a look-back: when it arrived
                    frame = self._make_frame(image, pts_s, wall)
                    if self.packets is not None and raw is not None:
                        self.packets.anchor(raw, pts_s)
                    if raw is not None:
                        self._raw_to_pts = pts_s - raw
                    failures = 0
                    if first:
                        first = False
                        latency = mono - t_open
                        self._set_first_frame_latency(latency)
                        log.info(
                            "camera %s: first frame %dx%d from %s after %.2f s",
                            self._camera_id,
                            frame.width,
                            frame.height,
                            self._redacted,
                            latency,
                        )
                        self._set_state(
                            SourceState.STREAMING,
                            f"{frame.width}x{frame.height}, first frame after {latency:.2f} s",
                        )
                    yield frame
                    if self.closed:
                        return
                    if self.activity is not None and self.activity.taken_back():
                        timeline.take_back()  # the frames since the previous one come first
                        replay = (frame.pts_s, frame.wall_time)
            except _ConnectionLostError as e:
                if self.closed:
                    return
                last_error = str(e)
                self._record_error(last_error)
            finally:
                conn.close()
                if self.packets is not None:
                    self.packets.end_segment(
                        "the camera stopped" if self.closed else "the connection was lost"
                    )
            failures += 1
