"""A per-camera ring of the compressed video packets last demuxed, for evidence clips.

The source hands every demuxed video packet to its camera's :class:`PacketRing` (before
any decoding, so frames skipped by activity-driven decoding are kept too).  Someone who
wants the video of a window of the camera's time asks with :meth:`PacketRing.request`;
when the stream has passed the window's end (or stops inside it) the ring hands the
packets that cover it, from the keyframe at or before its start, to a callback.  Nothing
is decoded here: a clip of the original is a remux of these packets.

Time.  Packets carry the stream's own timestamps (``pts * time_base``: "raw" seconds).
Windows are asked in the camera's clock, ``Frame.pts_s``; the source ties the two by
calling :meth:`PacketRing.anchor` with each delivered frame's raw time and ``pts_s``.

Memory.  Packets are kept in whole GOPs (a keyframe and what follows it).  The oldest GOP
is dropped once the next one starts at least ``keep_s`` before the newest packet and no
pending request still needs it, and always while the ring holds more than ``max_bytes``:
the bound per camera is ``max_bytes`` (the oldest video goes first), and in steady state
it is about ``bitrate x (keep_s + one GOP)``.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.error

log = logging.getLogger(__name__)

CLOCK_JUMP_FRAMES = 3
"""A frame whose tie to the camera clock moves by more than this many frame intervals
starts a new segment (the camera's clock jumped)."""
REORDER_FRAMES = 8
"""Streams without decoding timestamps: a window is complete this many frames after its
end (pictures sent out of order, B-frames, arrive within it)."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a muxer needs to write a stream of these packets again.

    Attributes:
        codec: FFmpeg codec name, e.g. ``"h264"``, ``"msmpeg4v3"``.
        width: Picture width, pixels.
        height: Picture height, pixels.
        time_base: Unit of the packets' ``pts``/``dts``/``duration``, seconds.
        rate: Nominal frame rate, frames/s, or ``None`` when the stream declares none.
        extradata: The codec's global header (e.g. H.264 SPS/PPS as avcC), or ``None``.
        pix_fmt: Pixel format name of the decoded pictures, or ``None``.
    """

    codec: str
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    extradata: bytes | None
    pix_fmt: str | None

    @classmethod
    def of(cls, stream: Any) -> StreamInfo:
        """The info of a PyAV video stream (``av.video.stream.VideoStream``)."""
        cc = stream.codec_context
        rate = next(
            (r for r in (stream.average_rate, stream.guessed_rate) if r and 0.1 <= r <= 1000),
            None,
        )  # an absurd declared rate (a broken stream) is no rate
        extradata = cc.extradata
        return cls(
            codec=str(cc.name),
            width=int(cc.width),
            height=int(cc.height),
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
            rate=Fraction(rate) if rate else None,
            extradata=bytes(extradata) if extradata else None,
            pix_fmt=cc.pix_fmt,
        )


@dataclass(frozen=True, slots=True)
class StoredPacket:
    """One compressed packet, copied out of FFmpeg's buffer.

    Attributes:
        data: The packet's bytes.
        pts: Presentation timestamp in ``StreamInfo.time_base`` units, or ``None``.
        dts: Decoding timestamp, same units, or ``None``.
        duration: Duration, same units (0 when unknown).
        keyframe: Whether decoding can start here.
        raw_s: ``pts`` (or ``dts``) in seconds on the stream's own clock.
    """

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool
    raw_s: float


@dataclass(frozen=True, slots=True)
class ClipPackets:
    """The packets that cover one asked window, ready to remux or decode.

    Attributes:
        info: The stream they belong to.
        packets: In decoding order; the first is a keyframe.  Empty when the ring held
            nothing of the window.
        offset_s: Camera clock of a packet = ``raw_s + offset_s``.
        asked_start_s: Window asked for, camera seconds (``Frame.pts_s`` clock).
        asked_end_s: End of the window asked for, camera seconds.
        start_s: Camera time of the first packet (the keyframe at or before the start,
            or later when the ring no longer held the start).
        end_s: Camera time of the end of the last packet.
        ended: Why the video stops inside the window (the camera's stream ended or was
            lost), ``None`` when it covers the window to its end.
        frame_interval_s: One frame's duration, seconds (from the nominal rate; 0.1 when
            the stream declares none).
        template: A one-packet Matroska file of the stream (see :func:`stream_template`):
            its stream is what a remux copies and what decodes ``packets``; ``None``
            when FFmpeg could not make one (then no clip can be made).
    """

    info: StreamInfo
    packets: list[StoredPacket]
    template: bytes | None
    offset_s: float
    asked_start_s: float
    asked_end_s: float
    start_s: float
    end_s: float
    ended: str | None
    frame_interval_s: float

    @property
    def nbytes(self) -> int:
        """Bytes of compressed video."""
        return sum(len(p.data) for p in self.packets)


Deliver = Callable[["ClipPackets | None"], None]
"""Receives a window's packets (``None``: the ring never held any video of it).  Called on
the source's thread or the requester's: it must be quick (hand the work to another
thread) and must not raise."""


@dataclass(slots=True)
class _Gop:
    packets: list[StoredPacket] = field(default_factory=list)
    nbytes: int = 0

    @property
    def start_raw_s(self) -> float:
        return self.packets[0].raw_s


def stream_template(stream: Any, packet: Any) -> bytes | None:
    """A one-packet Matroska file of ``stream`` (its codec parameters, extradata included)
    and ``packet`` (its first keyframe): opened again with PyAV, its stream is the template
    a remux copies (``add_stream_from_template``) and the decoder of the stored packets.
    ``None`` if FFmpeg cannot write one.  Call while ``stream``'s container is open."""
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format="matroska") as out:
            ost = out.add_stream_from_template(stream)
            p = av.Packet(bytes(packet))
            p.pts = p.dts = 0
            p.time_base = stream.time_base
            p.is_keyframe = True
            p.stream = ost
            out.mux(p)
    except (av.error.FFmpegError, ValueError, TypeError) as e:
        log.warning("no clip template for codec %s: %s", stream.codec_context.name, e)
        return None
    return buf.getvalue()


@dataclass(slots=True)
class _Segment:
    """One unbroken run of the stream (a connection, or one pass over a file)."""

    info: StreamInfo
    stream: Any = None
    """The live PyAV stream until the template is made from it and its first keyframe."""
    template: bytes | None = None
    gops: deque[_Gop] = field(default_factory=deque)
    offset_s: float | None = None
    ended: str | None = None
    frame_interval_s: float = 0.1
    last_raw_s: float | None = None

    last_dts_s: float | None = None

    def newest_s(self) -> float | None:
        if self.offset_s is None or self.last_raw_s is None:
            return None
        return self.last_raw_s + self.frame_interval_s + self.offset_s

    def complete_to_s(self) -> float | None:
        """Camera time before which every frame has arrived: the newest decoding time (a
        picture shown earlier was sent earlier), or without one, the newest presentation
        time less a margin for reordering."""
        if self.offset_s is None:
            return None
        if self.last_dts_s is not None:
            return self.last_dts_s + self.offset_s
        if self.last_raw_s is None:
            return None
        return self.last_raw_s - REORDER_FRAMES * self.frame_interval_s + self.offset_s


@dataclass(slots=True)
class _Request:
    start_s: float
    end_s: float
    deliver: Deliver


_Ready = tuple[_Request, ClipPackets | None]


class PacketRing:
    """The recent compressed video of one camera (thread-safe: the source's thread adds,
    others request).

    Args:
        camera_id: For logs.
        keep_s: Seconds of video kept behind the newest packet when nobody waits for
            older (at least the longest pre-roll asked plus the time it takes to ask).
        max_bytes: Most bytes kept; the oldest GOP goes first, even if a request still
            waits for it (that clip then starts later, and says so).
    """

    def __init__(self, camera_id: str, *, keep_s: float, max_bytes: int) -> None:
        if not (math.isfinite(keep_s) and keep_s >= 0) or max_bytes < 1:
            raise ValueError(f"keep_s must be >= 0 and max_bytes >= 1, got {keep_s}, {max_bytes}")
        self.camera_id = camera_id
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._pending: list[_Request] = []
        self._nbytes = 0
        self.peak_bytes = 0
        """Most bytes held at once since creation."""
        self.dropped_unanchored = 0
        """Packets dropped because their segment had no keyframe yet (joined mid-GOP)."""

    # ---------------------------------------------------------------- the source
    def open_segment(self, stream: Any) -> None:
        """A new connection or pass begins on the PyAV video ``stream`` (kept until its
        first keyframe, to copy its codec parameters); earlier segments end."""
        info = StreamInfo.of(stream)
        ready: list[_Ready] = []
        with self._lock:
            if self._segments and self._segments[-1].ended is None:
                self._segments[-1].ended = "the stream restarted"
                ready = self._take_ready_locked()
            rate = float(info.rate) if info.rate else 10.0
            self._segments.append(_Segment(info=info, stream=stream, frame_interval_s=1.0 / rate))
        self._hand_over(ready)

    def add(self, packet: Any) -> None:
        """Keep a demuxed packet (``av.Packet``); empty packets are ignored."""
        if not packet.size:
            return
        pts, dts = packet.pts, packet.dts
        stamp = pts if pts is not None else dts
        with self._lock:
            if not self._segments:
                return
            seg = self._segments[-1]
            if stamp is None:
                return  # nowhere on the clock: cannot be placed in a clip
            raw = float(stamp * seg.info.time_base)
            stored = StoredPacket(
                data=bytes(packet),
                pts=pts,
                dts=dts,
                duration=int(packet.duration or 0),
                keyframe=bool(packet.is_keyframe),
                raw_s=raw,
            )
            if stored.keyframe:
                if seg.stream is not None:
                    seg.template = stream_template(seg.stream, packet)
                    seg.stream = None
                seg.gops.append(_Gop())
            elif not seg.gops:
                self.dropped_unanchored += 1
                return
            gop = seg.gops[-1]
            gop.packets.append(stored)
            gop.nbytes += len(stored.data)
            self._nbytes += len(stored.data)
            seg.last_raw_s = raw if seg.last_raw_s is None else max(seg.last_raw_s, raw)
            if dts is not None:
                seg.last_dts_s = float(dts * seg.info.time_base)
            self.peak_bytes = max(self.peak_bytes, self._nbytes)
            self._evict_locked()
            ready = self._take_ready_locked()
        self._hand_over(ready)

    def anchor(self, raw_s: float, pts_s: float) -> None:
        """Tie the current segment's raw clock to the camera clock: a frame whose packet
        time was ``raw_s`` was delivered as ``Frame.pts_s == pts_s``."""
        with self._lock:
            if self._segments:
                seg = self._segments[-1]
                offset = pts_s - raw_s
                if seg.offset_s is not None and abs(offset - seg.offset_s) > CLOCK_JUMP_FRAMES * (
                    seg.frame_interval_s
                ):
                    # the camera's clock jumped (the source keeps the camera clock going on):
                    # what came before cannot be placed with the new tie; a new segment,
                    # from the next keyframe, with the same stream
                    seg.ended = "the camera's clock jumped"
                    seg = _Segment(
                        info=seg.info,
                        template=seg.template,
                        frame_interval_s=seg.frame_interval_s,
                    )
                    self._segments.append(seg)
                seg.offset_s = offset
            ready = self._take_ready_locked()
        self._hand_over(ready)

    def end_segment(self, reason: str) -> None:
        """The stream stopped (end of file, lost connection, closed): requests whose
        window it was in are handed what there is, saying ``reason``."""
        with self._lock:
            if self._segments and self._segments[-1].ended is None:
                self._segments[-1].ended = reason
                self._segments[-1].stream = None  # its container closes now
            ready = self._take_ready_locked()
        self._hand_over(ready)

    # ---------------------------------------------------------------- requesters
    def request(self, start_s: float, end_s: float, deliver: Deliver) -> None:
        """Ask for the video of ``[start_s, end_s]`` (camera seconds); ``deliver`` gets it
        once the stream passes ``end_s`` or stops before."""
        if not (math.isfinite(start_s) and math.isfinite(end_s) and end_s > start_s):
            raise ValueError(f"bad window [{start_s}, {end_s}]")
        with self._lock:
            self._pending.append(_Request(start_s, end_s, deliver))
            ready = self._take_ready_locked()
        self._hand_over(ready)

    def flush(self, reason: str) -> None:
        """Hand every waiting request what there is now (the camera is done)."""
        with self._lock:
            if self._segments and self._segments[-1].ended is None:
                self._segments[-1].ended = reason
            ready = [(r, self._cut_locked(r)) for r in self._pending]
            self._pending = []
        self._hand_over(ready)

    @property
    def usable(self) -> bool:
        """Whether clips can be cut from the current stream: its timestamps are tied to the
        camera clock (a stream joined mid-GOP has no keyframe kept yet, but will have by
        the time a window passes).  Streams without timestamps (MJPEG over HTTP, raw
        elementary streams) never are."""
        with self._lock:
            return bool(self._segments) and self._segments[-1].offset_s is not None

    def oldest_s(self) -> float | None:
        """Camera time (``Frame.pts_s`` clock) of the oldest video a clip can start from
        now: the first keyframe kept of the newest segment tied to the camera clock;
        ``None`` when there is none."""
        with self._lock:
            for seg in reversed(self._segments):
                if seg.offset_s is not None and seg.gops:
                    return seg.gops[0].start_raw_s + seg.offset_s
            return None

    @property
    def nbytes(self) -> int:
        """Bytes of compressed video held now."""
        with self._lock:
            return self._nbytes

    @property
    def pending(self) -> int:
        """Requests waiting for their window to pass."""
        with self._lock:
            return len(self._pending)

    def span_s(self) -> float:
        """Seconds of video held (first kept packet to the newest, all segments)."""
        with self._lock:
            total = 0.0
            for seg in self._segments:
                if seg.gops:
                    last = seg.last_raw_s if seg.last_raw_s is not None else 0.0
                    total += last + seg.frame_interval_s - seg.gops[0].start_raw_s
            return total

    # ---------------------------------------------------------------- internals
    def _newest_s(self) -> float | None:
        for seg in reversed(self._segments):
            newest = seg.newest_s()
            if newest is not None:
                return newest
        return None

    def _evict_locked(self) -> None:
        newest = self._newest_s()
        need_from = min((r.start_s for r in self._pending), default=math.inf)
        while self._segments:
            seg = self._segments[0]
            if not seg.gops:
                if len(self._segments) > 1:
                    self._segments.popleft()
                    continue
                return
            over = self._nbytes > self.max_bytes
            last_gop = len(seg.gops) == 1
            if last_gop and len(self._segments) == 1:
                if over:  # one GOP larger than the bound (no keyframes): drop it, wait for one
                    self._nbytes -= seg.gops.popleft().nbytes
                    log.warning(
                        "camera %s: a GOP exceeds the clip buffer (%d bytes): dropped, video "
                        "is kept again from the next keyframe",
                        self.camera_id,
                        self.max_bytes,
                    )
                return  # otherwise the GOP being written stays
            if not over:
                if newest is None or seg.offset_s is None:
                    return
                # the next GOP (or the next segment) must still reach keep_s back
                next_start = (
                    seg.gops[1].start_raw_s + seg.offset_s if not last_gop else seg.newest_s()
                )
                if next_start is None or next_start > newest - self.keep_s:
                    return
                if next_start > need_from:
                    return  # a waiting request still needs this GOP
            gop = seg.gops.popleft()
            self._nbytes -= gop.nbytes
            if not seg.gops and len(self._segments) > 1:
                self._segments.popleft()

    def _take_ready_locked(self) -> list[_Ready]:
        if not self._pending:
            return []
        last = self._segments[-1] if self._segments else None
        complete = None if last is None else last.complete_to_s()
        ready: list[_Ready] = []
        keep: list[_Request] = []
        for r in self._pending:
            passed = complete is not None and complete >= r.end_s
            # the stream stopped (a request after that gets what there is at once)
            stopped = last is not None and last.ended is not None
            if passed or stopped:
                ready.append((r, self._cut_locked(r)))
            else:
                keep.append(r)
        self._pending = keep
        return ready

    def _cut_locked(self, r: _Request) -> ClipPackets | None:
        # the segment holding the window's start (or the first after it)
        chosen: _Segment | None = None
        for seg in self._segments:
            if seg.offset_s is None or not seg.gops:
                continue
            seg_end = seg.newest_s()
            if seg_end is not None and seg_end > r.start_s:
                chosen = seg
                break
        if chosen is None or chosen.offset_s is None:
            return None
        off = chosen.offset_s
        start_raw, end_raw = r.start_s - off, r.end_s - off
        gops = list(chosen.gops)
        first = 0
        for i, gop in enumerate(gops):
            if gop.start_raw_s <= start_raw + 1e-6:
                first = i
        packets: list[StoredPacket] = []
        for gop in gops[first:]:
            if gop.start_raw_s > end_raw:
                break
            packets.extend(gop.packets)
        # drop what starts after the window (decode order: keep a packet if it or a
        # later one is still needed -- B-frames are shown before packets sent earlier)
        last_needed = -1
        for i, p in enumerate(packets):
            if p.raw_s <= end_raw - 1e-6:
                last_needed = i
        packets = packets[: last_needed + 1]
        if not packets:
            return None
        start = min(p.raw_s for p in packets) + off
        end = max(p.raw_s for p in packets) + chosen.frame_interval_s + off
        ended = None
        if end < r.end_s - chosen.frame_interval_s / 2 and chosen.ended is not None:
            ended = chosen.ended
        elif end < r.end_s - chosen.frame_interval_s / 2 and chosen is not self._segments[-1]:
            ended = "the stream restarted"
        return ClipPackets(
            info=chosen.info,
            packets=packets,
            template=chosen.template,
            offset_s=off,
            asked_start_s=r.start_s,
            asked_end_s=r.end_s,
            start_s=start,
            end_s=end,
            ended=ended,
            frame_interval_s=chosen.frame_interval_s,
        )

    def _hand_over(self, ready: list[_Ready]) -> None:
        for r, clip in ready:
            try:
                r.deliver(clip)
            except Exception:  # a clip must never take the camera down
                log.exception("clip delivery failed", extra={"camera_id": self.camera_id})
