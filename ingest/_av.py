"""Small PyAV helpers shared by the file and live sources (internal)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import av
import av.container
import av.error
import av.video
import numpy as np
import numpy.typing as npt

from ingest.activity import FLUSH, Thinner

log = logging.getLogger(__name__)

BadPacketCallback = Callable[[av.error.FFmpegError], None]

NO_CLOCK_FORMATS = frozenset({"mpjpeg", "mjpeg", "image2pipe", "jpeg_pipe"})
"""Demuxers whose timestamps are invented (MJPEG over HTTP: FFmpeg counts 25 fps)."""


def has_clock(container: av.container.InputContainer) -> bool:
    """Whether ``container``'s packets carry the camera's own timestamps."""
    return not (set(container.format.name.split(",")) & NO_CLOCK_FORMATS)


def first_video_stream(
    container: av.container.InputContainer,
) -> av.video.stream.VideoStream | None:
    """The first video stream of ``container``, or ``None`` when it has none."""
    return container.streams.video[0] if container.streams.video else None


def configure_decoder(
    stream: av.video.stream.VideoStream, *, threads: int, thread_type: str = "AUTO"
) -> None:
    """Set decoder threading on ``stream`` (call before the first decode).

    Args:
        stream: The video stream to decode.
        threads: Decoder threads; 0 lets FFmpeg pick (one per core).
        thread_type: ``"AUTO"`` (frame+slice; best throughput), ``"SLICE"`` (lowest latency).
    """
    stream.thread_type = thread_type
    stream.codec_context.thread_count = threads


def nominal_fps(stream: av.video.stream.VideoStream) -> float | None:
    """Declared frame rate of ``stream`` in frames/s, ``None`` if unknown or absurd."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            value = float(rate)
            if 0.1 <= value <= 1000.0:
                return value
    return None


def frame_time_s(vf: av.VideoFrame, stream: av.video.stream.VideoStream) -> float | None:
    """Presentation time of a decoded frame in seconds on the stream's clock, or ``None``."""
    if vf.pts is None:
        return None
    tb = vf.time_base if vf.time_base is not None else stream.time_base
    if tb is None:
        return None
    return float(vf.pts * tb)


def to_bgr(vf: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """Decoded frame -> (H, W, 3) uint8 BGR array (a new, contiguous buffer)."""
    arr = vf.to_ndarray(format="bgr24")
    return np.ascontiguousarray(arr, dtype=np.uint8)


@dataclass(slots=True)
class DemuxTally:
    """What one pass of :func:`decode_video` demuxed of its stream (files: to tell whether
    the recording ends where its container says it does).

    Attributes:
        packets: Complete packets demuxed (empty packets and a cut-short last one not
            counted).  Thinned packets count: they were read, not decoded.
        first_s: Earliest packet start, seconds on the stream's clock; ``None``: no pts.
        end_s: Latest packet end (pts + duration), seconds on the stream's clock.
        cut_tail: The file's last packet was cut short: flagged corrupt by the demuxer
            (the container promised more bytes than the file holds; for MP4, FFmpeg logs
            "partial file" there).  It was not decoded: it is incomplete, and under frame
            threading the decoder's error on it costs the frames still in flight.
        ended: The demuxer reached the end of the file (the pass was not abandoned).
    """

    packets: int = 0
    first_s: float | None = None
    end_s: float | None = None
    cut_tail: bool = False
    ended: bool = False

    def count(self, packet: av.Packet[av.video.stream.VideoStream]) -> None:
        """Count a complete, non-empty packet."""
        self.packets += 1
        tb = packet.time_base
        if packet.pts is None or tb is None:
            return
        start = float(packet.pts * tb)
        end = float((packet.pts + max(packet.duration or 0, 0)) * tb)
        self.first_s = start if self.first_s is None else min(self.first_s, start)
        self.end_s = end if self.end_s is None else max(self.end_s, end)

    @property
    def reached_s(self) -> float | None:
        """Stream time covered, first packet start to last packet end, seconds."""
        if self.first_s is None or self.end_s is None:
            return None
        return self.end_s - self.first_s


def _demuxed(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    tally: DemuxTally,
) -> Iterator[av.Packet[av.video.stream.VideoStream]]:
    """``container.demux(stream)``, counted in ``tally``, less a cut-short last packet.

    A packet the demuxer flags corrupt is held until the next one shows whether the file
    goes on (then it is passed on, to be decoded as any other) or ends there (then it is
    the truncated tail: dropped, ``tally.cut_tail``).  Empty packets (the end-of-stream
    flush) are passed on, not counted.
    """
    # a corrupt packet, then the empty ones after it
    held: list[av.Packet[av.video.stream.VideoStream]] = []
    try:
        for packet in container.demux(stream):
            if held and packet.size:  # more data follows: the damaged packet is not the end
                for p in held:
                    if p.size:
                        tally.count(p)
                    yield p
                held = []
            if held or (packet.size and packet.is_corrupt):
                held.append(packet)
                continue
            if packet.size:
                tally.count(packet)
            yield packet
    except av.error.FFmpegError:
        for p in held:  # a demux error, not the end of the file: decode what was held
            if p.size:
                tally.count(p)
            yield p
        raise
    if held:
        tally.cut_tail = True
        log.debug("dropped the cut-short last packet (pts %s)", held[0].pts)
        yield from held[1:]
    tally.ended = True


def decode_video(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    on_bad_packet: BadPacketCallback,
    resume_demux_on_error: bool,
    max_consecutive_errors: int,
    thinner: Thinner | None = None,
    tally: DemuxTally | None = None,
    on_packet: Callable[[av.Packet[av.video.stream.VideoStream]], None] | None = None,
) -> Iterator[av.VideoFrame]:
    """Yield the decoded frames of ``stream`` in presentation order, skipping bad packets.

    With a ``thinner`` (activity-driven decoding, see :mod:`ingest.activity`), each
    demuxed packet is replaced by what it admits (nothing, the packet, or its GOP again),
    and the decoder is drained and reset where it asks (a keyframe decoded alone).

    With a ``tally`` (files), the demuxed packets are counted in it, and a last packet the
    file cuts short is not decoded (see :class:`DemuxTally`).

    ``on_packet`` sees every non-empty demuxed packet before it is thinned or decoded (the
    camera's :class:`ingest.packets.PacketRing`, for clips).

    A packet that fails to decode is reported to ``on_bad_packet`` and skipped (no frame is
    invented for it).  A demuxer error is reported too and, when ``resume_demux_on_error``
    (files), demuxing resumes after it; otherwise (live) it propagates: the connection is lost.

    Raises:
        av.error.FFmpegError: a demux error when not resuming, or the last error after more
            than ``max_consecutive_errors`` errors in a row without a decoded frame.
    """
    consecutive = 0
    codec = stream.codec_context
    while True:
        try:
            packets = (
                container.demux(stream) if tally is None else _demuxed(container, stream, tally)
            )
            for packet in packets:
                if on_packet is not None and packet.size:
                    on_packet(packet)
                todo: Sequence[object] = (packet,)
                drain = False
                if thinner is not None and packet.size:
                    todo, drain = thinner.admit(packet)
                decoded: list[av.VideoFrame] = []
                try:
                    for p in todo:
                        if p is FLUSH:  # a look-back: the decoder starts again from a keyframe
                            codec.flush_buffers()
                            continue
                        assert isinstance(p, av.Packet)
                        decoded.extend(f for f in p.decode() if isinstance(f, av.VideoFrame))
                    if drain:
                        decoded.extend(
                            f for f in codec.decode(None) if isinstance(f, av.VideoFrame)
                        )
                        codec.flush_buffers()
                except av.error.FFmpegError as e:
                    if isinstance(e, av.error.ExitError):
                        raise
                    consecutive += 1
                    on_bad_packet(e)
                    if consecutive > max_consecutive_errors:
                        raise
                    if drain:
                        codec.flush_buffers()
                    continue
                for vf in decoded:
                    consecutive = 0
                    yield vf
            return
        except av.error.FFmpegError as e:
            if not resume_demux_on_error or isinstance(e, av.error.ExitError):
                raise
            consecutive += 1
            on_bad_packet(e)
            if consecutive > max_consecutive_errors:
                raise
            log.debug("resuming demux after error: %s", e)
