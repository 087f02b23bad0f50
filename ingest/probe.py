"""What a camera stream is: codec, size, frame rate, keyframe interval and bitrate.

:func:`probe_stream` connects to a stream (``rtsp://``, ``http(s)://`` MJPEG/MPEG-TS, or a
file, for tests), reads it for a few seconds of stream time, and measures what it sent.
The maths on the packets it saw (:func:`frame_rate`, :func:`gop_of`, :func:`bitrate_kbps`)
is pure, so it can be checked without a camera.

Failures are :class:`ProbeError` with a :data:`ProbeProblem` and a message an engineer at
the site can act on ("the camera refused the credentials", "no keyframe in 5 s: ...");
every message is redacted (:func:`ingest.redact.redact_text`): no password is ever in
one, nor in a log line of this module.
"""

from __future__ import annotations

import itertools
import logging
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import av
import av.container
import av.error
import av.video

from ingest import _av
from ingest.factory import SourceKind, classify_source
from ingest.live_source import live_options
from ingest.redact import redact_text, redact_url

log = logging.getLogger(__name__)

ProbeProblem = Literal[
    "unreachable", "credentials", "not_found", "not_a_stream", "no_video", "no_keyframe"
]
"""Why a probe failed: ``unreachable`` (no connection: refused, timed out, unknown host);
``credentials`` (401/403); ``not_found`` (no stream at that path, no such file);
``not_a_stream`` (it answered, but not with video: a web page, a text file, a still
picture, an undecodable stream); ``no_video`` (it answered, then sent no video);
``no_keyframe`` (video, but no keyframe in the probe window: nothing can be decoded)."""

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}

# Containers without a clock of their own: FFmpeg invents timestamps, so arrival times count.
# Formats FFmpeg opens that are no camera's video (a .txt file opens as ANSI art).
_NOT_VIDEO_FORMATS = frozenset({"tty"})
_NOT_VIDEO_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


class ProbeError(Exception):
    """A stream cannot be probed.

    Attributes:
        source: The source, redacted (safe to print and log).
        problem: What kind of failure (see :data:`ProbeProblem`).
        reason: What happened and what to do, redacted, without the source.
    """

    def __init__(self, source: str, problem: ProbeProblem, reason: str) -> None:
        self.source = redact_url(source)
        self.problem: ProbeProblem = problem
        self.reason = redact_text(reason)
        super().__init__(f"{self.source}: {self.reason}")


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """One demuxed video packet, as the probe saw it.

    Attributes:
        size: Compressed bytes.
        keyframe: The demuxer flags it a keyframe (a point decoding can start at).
        pts_s: Presentation time on the stream's clock, seconds; ``None``: none given
            (RTSP's first packet often has none; MJPEG over HTTP has no clock).
        arrival_s: When it arrived, seconds since the probe's first packet (monotonic).
    """

    size: int
    keyframe: bool
    pts_s: float | None
    arrival_s: float


@dataclass(frozen=True, slots=True)
class Gop:
    """The keyframe interval over a probe window.

    Attributes:
        keyframes: Keyframes seen.
        interval_frames: Mean frames from one keyframe to the next (``None`` with fewer
            than two keyframes).
        interval_s: The same in seconds (``None`` likewise).
        at_least_s: With one keyframe or none, the interval is at least this long: the
            longest stretch of the window seen without a keyframe, seconds.
    """

    keyframes: int
    interval_frames: float | None
    interval_s: float | None
    at_least_s: float


def _times(packets: Sequence[PacketInfo], *, clock: bool) -> list[float | None]:
    return [p.pts_s if clock else p.arrival_s for p in packets]


def _interval(times: Sequence[float], *, clock: bool) -> float | None:
    """The frame interval of sorted distinct ``times``, seconds: their median step on a
    stream clock (exact timestamps, but B-frames still to come leave holes at the end of
    a window), the mean step on arrival times (jittery, no holes)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    if not clock:
        return (times[-1] - times[0]) / (len(times) - 1)
    steps = sorted(b - a for a, b in itertools.pairwise(times))
    return steps[len(steps) // 2]


def window_s(packets: Sequence[PacketInfo], *, clock: bool = True) -> float:
    """Stream time the packets cover, seconds: first to last timestamp plus one frame
    interval (the last frame lasts that long); 0 with fewer than two timed packets.

    ``clock=False`` uses arrival times (streams without a clock of their own)."""
    times = sorted({t for t in _times(packets, clock=clock) if t is not None})
    step = _interval(times, clock=clock)
    return 0.0 if step is None else times[-1] - times[0] + step


def frame_rate(packets: Sequence[PacketInfo], *, clock: bool = True) -> float | None:
    """Frames per second the packets' timestamps show (``None`` with fewer than two
    distinct timestamps).  Decode order does not matter (B-frames): the timestamps are
    sorted first."""
    times = sorted({t for t in _times(packets, clock=clock) if t is not None})
    step = _interval(times, clock=clock)
    return None if step is None else 1.0 / step


def bitrate_kbps(packets: Sequence[PacketInfo], seconds: float) -> float:
    """Mean bitrate, kbit/s (1000 bit/s), of the packets over ``seconds`` of stream time;
    0 when ``seconds`` is not positive."""
    if seconds <= 0:
        return 0.0
    return sum(p.size for p in packets) * 8 / seconds / 1000.0


def gop_of(packets: Sequence[PacketInfo], fps: float | None, *, clock: bool = True) -> Gop:
    """The keyframe interval of ``packets`` (in decode order).

    In frames: the mean distance between consecutive keyframes.  In seconds: the mean
    time between consecutive keyframes when both carry a timestamp, else the frames at
    ``fps``.  With fewer than two keyframes the interval is not known, only that it is at
    least the longest keyframe-free stretch of the window (``Gop.at_least_s``).
    """
    keys = [i for i, p in enumerate(packets) if p.keyframe]
    times = _times(packets, clock=clock)
    span = window_s(packets, clock=clock)
    per_frame = span / len(packets) if packets else 0.0
    if len(keys) < 2:
        if not keys:
            return Gop(0, None, None, span)
        before, after = keys[0], len(packets) - keys[0]
        return Gop(1, None, None, max(before, after) * per_frame)
    gaps = [b - a for a, b in itertools.pairwise(keys)]
    frames = sum(gaps) / len(gaps)
    timed = [
        tb - ta
        for a, b in itertools.pairwise(keys)
        if (ta := times[a]) is not None and (tb := times[b]) is not None and tb > ta
    ]
    if timed:
        seconds: float | None = sum(timed) / len(timed)
    else:
        seconds = frames / fps if fps else None
    return Gop(len(keys), frames, seconds, max(gaps) * per_frame)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What :func:`probe_stream` measured of a stream.

    Attributes:
        source: The source, redacted (safe to print and log).
        kind: ``rtsp``, ``http``, ``file``... (see :func:`ingest.classify_source`).
        container: FFmpeg's name of the container/protocol (``rtsp``, ``mpjpeg``, ``mov,mp4...``).
        codec: Video codec (``h264``, ``hevc``, ``mjpeg``...).
        profile: Codec profile (``High``, ``Main``...), ``None`` if not given.
        width: Frame width, px (of a decoded frame).
        height: Frame height, px.
        fps: Frame rate the packets' timestamps show, frames/s (the declared rate when
            they show none).
        declared_fps: Frame rate the stream declares, ``None`` if none.
        packets: Video packets (frames) read in the window.
        gop: The keyframe interval.
        bitrate_kbps: Mean bitrate over the window, kbit/s.
        window_s: Stream time the window covers, seconds.
        recording: The window from its first keyframe, remuxed into a Matroska file (when
            asked for, and it could be written); frames for a benchmark of this stream.
        recorded_frames: Frames (packets) in ``recording``.
    """

    source: str
    kind: SourceKind
    container: str
    codec: str
    profile: str | None
    width: int
    height: int
    fps: float | None
    declared_fps: float | None
    packets: int
    gop: Gop
    bitrate_kbps: float
    window_s: float
    recording: Path | None = None
    recorded_frames: int = 0

    @property
    def pixels(self) -> int:
        """Pixels per frame."""
        return self.width * self.height


def host_port(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of a network URL (the scheme's default port when none is given),
    ``None`` for anything else or a URL that does not parse.

    The user info runs to the last ``@`` (as :mod:`ingest.redact` reads it), so a
    password typed raw with ``/`` or ``@`` in it is not taken for the host."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        return None
    authority = rest.rsplit("@", 1)[-1]
    try:
        parts = urlsplit(f"{scheme}://{authority}")
        if not parts.hostname:
            return None
        return parts.hostname, parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        return None


def check_reachable(url: str, timeout_s: float) -> None:
    """Open (and close) a TCP connection to the URL's host and port.

    Raises:
        ProbeError: ``unreachable``: unknown host, connection refused, no answer within
            ``timeout_s``, no route.
    """
    where = host_port(url)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except socket.gaierror as e:
        raise ProbeError(url, "unreachable", f"unknown host {host!r} ({e.strerror})") from e
    except ConnectionRefusedError as e:
        raise ProbeError(
            url, "unreachable", f"nothing answers on {host}:{port} (connection refused)"
        ) from e
    except TimeoutError as e:
        raise ProbeError(
            url,
            "unreachable",
            f"no answer from {host}:{port} in {timeout_s:g} s (camera off, wrong address, "
            "or a firewall)",
        ) from e
    except OSError as e:
        raise ProbeError(
            url, "unreachable", f"cannot reach {host}:{port}: {e.strerror or e}"
        ) from e


def _ffmpeg_text(e: BaseException) -> str:
    """FFmpeg's message without the URL it appends (redacted in any case)."""
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return redact_text(text)


def open_error(url: str, kind: SourceKind, e: BaseException, timeout_s: float) -> ProbeError:
    """The :class:`ProbeError` for an exception raised while opening ``url``."""
    has_user = "@" in url.partition("://")[2]
    if isinstance(e, av.error.HTTPUnauthorizedError):
        if has_user and kind != "file":
            return ProbeError(
                url,
                "credentials",
                "the camera refused the credentials (401 Unauthorized): check the user "
                "name and password",
            )
        return ProbeError(
            url,
            "credentials",
            "the camera asks for credentials (401 Unauthorized): put them in the URL "
            "before the host, as USER:PASSWORD@",
        )
    if isinstance(e, av.error.HTTPForbiddenError):
        return ProbeError(
            url, "credentials", "the camera refused access to this stream (403 Forbidden)"
        )
    if isinstance(e, av.error.HTTPNotFoundError):
        return ProbeError(url, "not_found", "the camera has no stream at this path (404 Not Found)")
    if isinstance(e, FileNotFoundError | av.error.FileNotFoundError):
        return ProbeError(url, "not_found", "no such file")
    if isinstance(e, IsADirectoryError | av.error.IsADirectoryError):
        return ProbeError(url, "not_a_stream", "a directory, not a video")
    if isinstance(e, av.error.ExitError):
        return ProbeError(
            url, "no_video", f"the camera answered but sent no video in {timeout_s:g} s"
        )
    if isinstance(e, ConnectionRefusedError | av.error.ConnectionRefusedError):
        return ProbeError(url, "unreachable", "nothing answers there (connection refused)")
    if isinstance(e, av.error.HTTPClientError | av.error.HTTPServerError):
        return ProbeError(url, "not_a_stream", f"the server answered {_ffmpeg_text(e)}")
    if isinstance(e, av.error.InvalidDataError):
        return ProbeError(
            url,
            "not_a_stream",
            "it answered, but not with a video stream (FFmpeg: invalid data found when "
            "processing input)",
        )
    return ProbeError(
        url, "not_a_stream", f"cannot open it as video: {type(e).__name__}: {_ffmpeg_text(e)}"
    )


def _open_options(kind: SourceKind, timeout_s: float) -> dict[str, str]:
    """FFmpeg options of a probe: as :class:`ingest.LiveSource` connects, timeouts from
    ``timeout_s`` (a file: none)."""
    return {} if kind == "file" else live_options(kind, timeout_s)


def probe_stream(
    source: str,
    *,
    seconds: float = 5.0,
    timeout_s: float = 10.0,
    record_to: Path | None = None,
    gop_advice_s: float = 2.0,
) -> StreamInfo:
    """Connect to ``source``, read ``seconds`` of its video, and measure it.

    Args:
        source: ``rtsp(s)://``, ``http(s)://`` URL (MJPEG, MPEG-TS...), or a file path
            (files are read from their start, as fast as they decode).
        seconds: The probe window, seconds of stream time (> 0).
        timeout_s: Connecting, and any silence of the stream, may last this long (> 0).
        record_to: Write the window, from its first keyframe, into this Matroska file
            (``StreamInfo.recording``); ``None``: nothing is written.  A window that
            cannot be remuxed leaves ``recording`` ``None`` (logged), not an error.
        gop_advice_s: The keyframe interval to advise when none came, seconds.

    Returns:
        The measured :class:`StreamInfo`.

    Raises:
        ProbeError: unreachable, refused credentials, no such stream, not a video, no
            video sent, no keyframe in the window (the message says which and what to do).
        ValueError: ``seconds`` or ``timeout_s`` not positive.
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    kind, target = classify_source(source)
    if kind == "device":
        raise ProbeError(source, "not_a_stream", "local devices are not probed: give a URL")
    shown = redact_url(source)
    if kind != "file":
        check_reachable(target, timeout_s)
    t0 = time.monotonic()
    try:
        container = av.open(
            target,
            mode="r",
            options=_open_options(kind, timeout_s),
            timeout=(timeout_s, timeout_s),
        )
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise open_error(source, kind, e, timeout_s) from e
    log.debug("probe: opened %s in %.2f s", shown, time.monotonic() - t0)
    try:
        return _read(container, source, kind, seconds, timeout_s, record_to, gop_advice_s)
    finally:
        container.close()


def _read(
    container: av.container.InputContainer,
    source: str,
    kind: SourceKind,
    seconds: float,
    timeout_s: float,
    record_to: Path | None,
    gop_advice_s: float,
) -> StreamInfo:
    fmt = container.format.name
    stream = _av.first_video_stream(container)
    others = sorted({s.type for s in container.streams if s.type != "video"})
    if stream is None:
        what = f" (it has: {', '.join(others)})" if others else ""
        raise ProbeError(source, "no_video", f"the camera answered but sends no video{what}")
    codec = stream.codec_context.name
    if set(fmt.split(",")) & _NOT_VIDEO_FORMATS or codec in _NOT_VIDEO_CODECS:
        raise ProbeError(source, "not_a_stream", f"not a video (FFmpeg reads it as {fmt})")
    clock = not (set(fmt.split(",")) & _av.NO_CLOCK_FORMATS)
    _av.configure_decoder(stream, threads=1, thread_type="SLICE")
    live = kind != "file"
    packets: list[PacketInfo] = []
    kept: list[av.Packet[av.video.stream.VideoStream]] = []
    size: tuple[int, int] | None = None
    decode_error = ""
    first_arrival: float | None = None
    t_start = time.monotonic()
    try:
        for packet in container.demux(stream):
            now = time.monotonic()
            if not packet.size:
                continue
            if first_arrival is None:
                first_arrival = now
            tb = packet.time_base
            pts_s = float(packet.pts * tb) if packet.pts is not None and tb is not None else None
            info = PacketInfo(packet.size, bool(packet.is_keyframe), pts_s, now - first_arrival)
            packets.append(info)
            if (info.keyframe or kept) and record_to is not None:
                kept.append(packet)
            if info.keyframe and size is None:
                try:
                    for vf in packet.decode():
                        if isinstance(vf, av.VideoFrame) and vf.width and vf.height:
                            size = (vf.width, vf.height)
                except av.error.FFmpegError as e:
                    decode_error = _ffmpeg_text(e)
            # a few hundred packets at most: measuring the whole window each time is cheap
            if window_s(packets, clock=clock) >= seconds:
                break
            if live and now - first_arrival >= seconds * 1.5 + 1.0:
                break  # the stream's clock runs slow: the wall decides
    except av.error.ExitError as e:
        if not packets:
            raise ProbeError(
                source, "no_video", f"the camera answered but sent no video in {timeout_s:g} s"
            ) from e
        log.debug("probe: %s went silent after %d packets", redact_url(source), len(packets))
    except av.error.FFmpegError as e:
        if not packets:
            raise ProbeError(
                source, "not_a_stream", f"no video could be read: {_ffmpeg_text(e)}"
            ) from e
        log.debug("probe: read error after %d packets: %s", len(packets), _ffmpeg_text(e))
    if not packets:
        waited = time.monotonic() - t_start
        raise ProbeError(
            source, "no_video", f"the camera answered but sent no video in {waited:.0f} s"
        )
    if size is None:
        size = _flush_size(stream)
    covered = window_s(packets, clock=clock)
    if len(packets) == 1:
        raise ProbeError(source, "not_a_stream", "a single picture, not a video stream")
    fps = frame_rate(packets, clock=clock)
    declared = None if not clock else _av.nominal_fps(stream)
    fps = fps if fps is not None else declared
    gop = gop_of(packets, fps, clock=clock)
    if gop.keyframes == 0:
        raise ProbeError(
            source,
            "no_keyframe",
            f"no keyframe in {max(covered, seconds):.0f} s: set the camera's I-frame interval "
            f"(GOP) to ≤ {gop_advice_s:g} s",
        )
    if size is None:
        why = f": {decode_error}" if decode_error else ""
        raise ProbeError(source, "not_a_stream", f"its {codec} video does not decode{why}")
    profile = stream.codec_context.profile
    recording = _remux(kept, stream, record_to, fps) if record_to is not None else None
    return StreamInfo(
        source=redact_url(source),
        kind=kind,
        container=fmt,
        codec=codec,
        profile=str(profile) if profile else None,
        width=size[0],
        height=size[1],
        fps=fps,
        declared_fps=declared,
        packets=len(packets),
        gop=gop,
        bitrate_kbps=bitrate_kbps(packets, covered),
        window_s=covered,
        recording=recording,
        recorded_frames=len(kept) if recording is not None else 0,
    )


def _flush_size(stream: av.video.stream.VideoStream) -> tuple[int, int] | None:
    """Drain the decoder: the size of a frame it still held, if any."""
    try:
        for vf in stream.codec_context.decode(None):
            if isinstance(vf, av.VideoFrame) and vf.width and vf.height:
                return vf.width, vf.height
    except av.error.FFmpegError:
        pass
    return None


def _remux(
    packets: list[av.Packet[av.video.stream.VideoStream]],
    stream: av.video.stream.VideoStream,
    path: Path,
    fps: float | None,
) -> Path | None:
    """Write ``packets`` (from a keyframe on) into a Matroska file at ``path``, timestamps
    rebased to 0 (a missing one filled in from its neighbours at ``fps``)."""
    if not packets:
        return None
    tb = stream.time_base
    if tb is None or tb <= 0:
        return None
    step = round(1.0 / (fps or 25.0) / float(tb)) or 1
    pts: list[int | None] = [p.pts for p in packets]
    known = [i for i, v in enumerate(pts) if v is not None]
    if not known:
        filled = [i * step for i in range(len(pts))]
    else:
        filled = []
        first = known[0]
        base = pts[first]
        assert base is not None
        prev = base - (first + 1) * step
        for v in pts:
            prev = v if v is not None else prev + step
            filled.append(prev)
    origin = min(filled)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w", format="matroska") as out:
            ostream = out.add_stream_from_template(stream)
            for p, v in zip(packets, filled, strict=True):
                p.pts = v - origin
                p.dts = p.pts if p.dts is None else p.dts - origin
                p.stream = ostream
                out.mux(p)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        log.warning("probe: cannot write the window to %s: %s", path, redact_text(str(e)))
        return None
    return path
