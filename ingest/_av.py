"""Small PyAV helpers shared by the file and live sources (internal)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import av
import av.container
import av.error
import av.video
import numpy as np
import numpy.typing as npt

from ingest.activity import FLUSH, Thinner

log = logging.getLogger(__name__)

BadPacketCallback = Callable[[av.error.FFmpegError], None]


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


def decode_video(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    on_bad_packet: BadPacketCallback,
    resume_demux_on_error: bool,
    max_consecutive_errors: int,
    thinner: Thinner | None = None,
) -> Iterator[av.VideoFrame]:
    """Yield the decoded frames of ``stream`` in presentation order, skipping bad packets.

    With a ``thinner`` (activity-driven decoding, see :mod:`ingest.activity`), each
    demuxed packet is replaced by what it admits (nothing, the packet, or its GOP again),
    and the decoder is drained and reset where it asks (a keyframe decoded alone).

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
            for packet in container.demux(stream):
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
