"""Video clips of alerts: cut from the camera's packet ring, kept as they came, masked.

For each alert the runner asks the camera's :class:`ingest.packets.PacketRing` for the
video from ``pre_s`` before the event's start to ``post_s`` after it.  Once the stream has
passed the window (or stopped inside it) the ring hands the packets over and
:class:`ClipMaker`, on its own thread, makes:

* **the original** under the alert's clip key (``camera/date/event_id.mp4``): the packets
  remuxed into MP4 as they came, from the keyframe at or before the window's start (no
  decoding) when the codec is one MP4 holds (H.264, H.265, MPEG-4 part 2, VP9, AV1);
  other codecs (e.g. the MS-MPEG4 of AVI files) are transcoded to H.264, trimmed to the
  window;
* **the masked copy** (``event_id.masked.mp4``), what the API serves by default: the
  window decoded, every person blurred in every frame (the person detector runs on the
  clip's frames, pre-roll included, every ``detect_every``-th frame, down to a faint
  score; :func:`alerts.masking.held_masks` turns its boxes into masks that follow a
  person through missed detections and partial occlusion, forwards and backwards in
  time), encoded to H.264 (yuv420p, MP4 with the index first: Chromium plays it while
  it downloads), trimmed to the window to the frame;
* **its description** (``event_id.clip.json``, :class:`ClipInfo`): the window asked, what
  the clip holds, whether the video ended inside it and why.

Everything goes through the evidence store (local disk, or S3 through its spool: clips
made while S3 is away are uploaded when it returns).  A clip that fails is logged and
counted; the alert is never affected.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, cast

import av
import av.error
import av.video.stream
import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from alerts.evidence import EvidenceStore, clip_info_key, masked_key
from alerts.masking import WHOLE_PICTURE, Boxes, held_masks, mask_people
from detectors.detections import Detections
from ingest.packets import ClipPackets, PacketRing

log = logging.getLogger(__name__)

REMUXABLE = frozenset({"h264", "hevc", "mpeg4", "vp9", "av1"})
"""Codecs kept as they came (remuxed into MP4); others are transcoded to H.264."""
MASK_CODEC = "libx264"
CANCEL_WAIT_S = 5.0
"""How long a cancelled clip maker is given to leave the frame it is on, seconds."""
DROP_LOG_EVERY_S = 60.0
"""Clips dropped because the queue is full are logged at most this often, seconds."""
LINK_GAP_S = 0.5
"""A faint detection continues a person seen this long before or after it, seconds."""
TIME_BASE = Fraction(1, 1000)
"""Time base of the encoded clips' timestamps, seconds."""

CLIPS_MADE = Counter(
    "argus_clips_made_total", "Alert clips made and stored.", ["camera_id", "remuxed"]
)
CLIPS_FAILED = Counter(
    "argus_clips_failed_total",
    "Alert clips that could not be made (no video of the window, a codec, the store).",
    ["camera_id", "reason"],
)
CLIP_SECONDS = Histogram(
    "argus_clip_build_seconds",
    "Wall time to make one clip (decode, detect people, mask, encode, store), seconds.",
    buckets=(0.5, 1, 2, 4, 8, 16, 32, 64),
)

Detect = Callable[[Sequence[npt.NDArray[np.uint8]]], list[Detections]]
"""``detect(images) -> detections`` of a person detector (e.g. ``OnnxDetector.detect``)."""


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What one clip holds (stored as ``event_id.clip.json``); times are camera seconds,
    the clock of the alert's ``start_s``.

    Attributes:
        event_id: The alert.
        camera_id: Its camera.
        asked_start_s: Start of the window asked for (event start minus the pre-roll).
        asked_end_s: End of the window asked for (event start plus the post-roll).
        start_s: First frame of the masked clip (the one served).
        end_s: End of its last frame.
        original_start_s: First frame of the original (a keyframe when remuxed).
        original_end_s: End of the original's last frame.
        complete: The clip covers the window asked, to a frame.
        note: Why not, in words (the video ended inside the window; the buffer no longer
            held its start), else ``None``.
        frames: Frames in the masked clip.
        codec: The camera's codec.
        remuxed: The original is the camera's own packets (``False``: transcoded).
        stream: Which of the camera's streams the clip is of: ``"evidence"`` (its evidence
            stream, usually the main one) or ``"analysed"`` (the stream analysed).
        width: The original's picture width, pixels.
        height: Its height, pixels.
        masking: ``frames_detected`` (frames the person detector ran on), ``boxes``
            (person boxes found), ``seconds`` (wall time of the whole build).
    """

    event_id: str
    camera_id: str
    asked_start_s: float
    asked_end_s: float
    start_s: float
    end_s: float
    original_start_s: float
    original_end_s: float
    complete: bool
    note: str | None
    frames: int
    codec: str
    remuxed: bool
    stream: str = "analysed"
    width: int = 0
    height: int = 0
    masking: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The description as UTF-8 JSON, times rounded to the millisecond."""
        data = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        data["masking"] = {k: round(v, 3) for k, v in self.masking.items()}
        return json.dumps(data, sort_keys=True).encode()


class ClipError(RuntimeError):
    """A clip cannot be made (no video of its window, a codec FFmpeg cannot handle).

    Attributes:
        reason: A short label for the metric (``no_video``, ``codec``, ``store``).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ClipCancelledError(RuntimeError):
    """The maker was stopped while making a clip (nothing of it is stored)."""


class _ClipQueue:
    """The clips waiting, the most urgent first (then the newest: what operators look at
    now); bounded: a new clip takes the place of the least urgent (then oldest) one waiting
    when it is at least as urgent."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._heap: list[tuple[int, int, ClipJob]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: ClipJob) -> ClipJob | None:
        """Queue ``job``; the clip dropped to make room (``job`` itself, or a less urgent
        one), or ``None``."""
        with self._cond:
            entry = (-job.priority, -next(self._seq), job)  # the newest first at a tie
            if len(self._heap) < self.maxsize:
                heapq.heappush(self._heap, entry)
                self._cond.notify()
                return None
            least = max(self._heap)  # least urgent, oldest: a handful of entries
            if entry > least:
                return job
            self._heap.remove(least)
            heapq.heapify(self._heap)
            heapq.heappush(self._heap, entry)
            self._cond.notify()
            return least[2]

    def get(self) -> ClipJob | None:
        """The most urgent clip, waiting for one; ``None`` once closed and empty."""
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            return heapq.heappop(self._heap)[2] if self._heap else None

    def drain(self) -> list[ClipJob]:
        """Take every waiting clip out."""
        with self._cond:
            jobs = [e[2] for e in self._heap]
            self._heap.clear()
            return jobs

    def close(self) -> None:
        """No more clips: ``get`` returns ``None`` once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class ClipJob:
    """One clip to make: whose, where to store it, and the packets (``None``: the ring held
    no video of the window)."""

    camera_id: str
    event_id: str
    key: str
    packets: ClipPackets | None
    priority: int = 0
    """The alert's priority (0-100): the most urgent clips are made first."""
    note: str | None = None
    """Said in the clip's description (e.g. why its window is not the usual one)."""
    stream: str = "analysed"
    """Which of the camera's streams the packets are of (``"evidence"`` or ``"analysed"``)."""


class _Encoder:
    """H.264 in MP4 (``faststart``) into memory, frames stamped in ms from ``t0``."""

    def __init__(
        self,
        width: int,
        height: int,
        rate: Fraction,
        *,
        crf: int,
        preset: str,
        max_height: int | None = None,
    ):
        # a file, not memory: faststart moves the index to the front in a second pass
        # that reopens the output by name
        fd, self._path = tempfile.mkstemp(prefix="argus-clip-", suffix=".mp4")
        os.close(fd)
        self._out = av.open(self._path, "w", format="mp4", options={"movflags": "+faststart"})
        st = cast(av.video.stream.VideoStream, self._out.add_stream(MASK_CODEC, rate=rate))
        self._w, self._h = width - width % 2, height - height % 2
        self._scaled: tuple[int, int] | None = None
        if max_height is not None and height > max_height:
            w = round(width * max_height / height)
            self._scaled = (w - w % 2, max_height - max_height % 2)
        st.width, st.height = self._scaled or (self._w, self._h)
        st.pix_fmt = "yuv420p"
        st.time_base = TIME_BASE
        st.codec_context.time_base = TIME_BASE
        st.codec_context.options = {"preset": preset, "crf": str(crf)}
        self._st = st
        self.frames = 0
        self._last_pts = -1

    def add(self, image: npt.NDArray[np.uint8], t_rel: float) -> None:
        img = image[: self._h, : self._w]
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        if self._scaled is not None:  # smaller for the screen (swscale, area average)
            w, h = self._scaled
            vf = vf.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
        pts = max(round(t_rel / TIME_BASE), self._last_pts + 1)
        vf.pts, vf.time_base = pts, TIME_BASE
        self._last_pts = pts
        for p in self._st.encode(vf):
            self._out.mux(p)
        self.frames += 1

    def finish(self) -> bytes:
        try:
            for p in self._st.encode(None):
                self._out.mux(p)
            self._out.close()
            with open(self._path, "rb") as f:
                return f.read()
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)


def remux(clip: ClipPackets) -> bytes:
    """The clip's packets as they came, in MP4 (``faststart``), timestamps from 0.

    Raises:
        ClipError: no template, or FFmpeg refuses the codec in MP4.
    """
    if clip.template is None or not clip.packets:
        raise ClipError("codec", f"no stream template for codec {clip.info.codec}")
    first = clip.packets[0]
    t0 = first.dts if first.dts is not None else (first.pts or 0)
    fd, path = tempfile.mkstemp(prefix="argus-clip-", suffix=".mp4")
    os.close(fd)
    try:
        with (
            av.open(io.BytesIO(clip.template)) as tpl,
            av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            ost = out.add_stream_from_template(tpl.streams.video[0])
            ost.time_base = clip.info.time_base
            last_dts: int | None = None
            for sp in clip.packets:
                p = av.Packet(sp.data)
                p.pts = None if sp.pts is None else sp.pts - t0
                dts = None if sp.dts is None else sp.dts - t0
                if dts is not None and last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1  # a camera repeating a timestamp: the muxer refuses it
                    if p.pts is not None and p.pts < dts:
                        p.pts = dts
                p.dts = last_dts = dts
                p.duration = sp.duration
                p.time_base = clip.info.time_base
                p.is_keyframe = sp.keyframe
                p.stream = ost
                out.mux(p)
        with open(path, "rb") as f:
            return f.read()
    except (av.error.FFmpegError, ValueError) as e:
        raise ClipError("codec", f"cannot remux {clip.info.codec} into MP4: {e}") from e
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def decode(clip: ClipPackets) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
    """The clip's frames in presentation order: ``(camera seconds, (H, W, 3) uint8 BGR)``.
    Packets that fail to decode are skipped (logged at debug).

    Raises:
        ClipError: no template to decode with.
    """
    if clip.template is None:
        raise ClipError("codec", f"no stream template for codec {clip.info.codec}")
    tb = clip.info.time_base
    with av.open(io.BytesIO(clip.template)) as tpl:
        dec = tpl.streams.video[0].codec_context
        # Slice threads only: a frame-threaded decoder left in the middle of a clip (the
        # clip cancelled at shutdown) hung for good in avcodec_free_context, its worker
        # threads waited on; a clip is a few hundred frames, the detector is the cost.
        dec.thread_type = "SLICE"

        def frames_of(packet: av.Packet[Any] | None) -> list[av.VideoFrame]:
            try:
                return [f for f in dec.decode(packet) if isinstance(f, av.VideoFrame)]
            except av.error.FFmpegError as e:
                log.debug("clip packet skipped: %s", e)
                return []

        n = 0
        for sp in clip.packets:
            p = av.Packet(sp.data)
            p.pts, p.dts, p.time_base = sp.pts, sp.dts, tb
            for vf in frames_of(p):
                yield _time_of(vf, tb, clip, n), _bgr(vf)
                n += 1
        for vf in frames_of(None):
            yield _time_of(vf, tb, clip, n), _bgr(vf)
            n += 1


def _bgr(vf: av.VideoFrame) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(vf.to_ndarray(format="bgr24"), dtype=np.uint8)


def _time_of(vf: av.VideoFrame, tb: Fraction, clip: ClipPackets, n: int) -> float:
    if vf.pts is None:
        return clip.start_s + n * clip.frame_interval_s
    return float(vf.pts * tb) + clip.offset_s


class ClipMaker:
    """Makes and stores the clips of a worker's alerts on one background thread.

    Args:
        evidence: Where clips go.
        detector: Builds the person detector (called once, on the maker's thread, so
            the detector's own threads start at the maker's lower CPU priority); ``None``:
            no detector (then nobody is found and the "masked" copy equals the original:
            only for models without a person class).
        person_ids: Class ids of people in the detector's output.
        detect_every: Run the detector on every n-th frame of the clip.
        crf: x264 quality of the encoded copies (lower is better, bigger).
        preset: x264 speed preset.
        max_pending: Clips waiting at most (each holds its compressed video: 1-5 MiB);
            past it the least urgent is dropped (logged, counted).
        nice: CPU niceness added to the maker's thread (Linux), so live analysis wins.
        pre_s: Seconds of video before an event's start.
        post_s: Seconds of video after an event's start.
        strong: Score of a sure person detection (the detector must report down to
            ``weak``).
        weak: Lowest score of a faint one, kept where it continues a person (see
            :func:`alerts.masking.held_masks`).
        max_height: The masked copy of a taller camera is scaled down to this height,
            pixels (``None``: never); the original keeps its size.
    """

    def __init__(
        self,
        evidence: EvidenceStore,
        *,
        pre_s: float = 5.0,
        post_s: float = 10.0,
        detector: Callable[[], Detect] | None,
        person_ids: Iterable[int],
        detect_every: int = 1,
        crf: int = 26,
        preset: str = "veryfast",
        max_pending: int = 16,
        nice: int = 10,
        strong: float = 0.35,
        weak: float = 0.1,
        max_height: int | None = 720,
    ) -> None:
        if detect_every < 1 or pre_s < 0 or post_s <= 0:
            raise ValueError(
                f"ClipMaker needs detect_every >= 1 ({detect_every}), pre_s >= 0 ({pre_s}) "
                f"and post_s > 0 ({post_s})"
            )
        self.pre_s, self.post_s = pre_s, post_s
        self.strong, self.weak = strong, weak
        self.max_height = max_height
        self._evidence = evidence
        self._factory = detector
        self._detect: Detect | None = None
        self._person_ids = frozenset(person_ids)
        self.detect_every = detect_every
        self._crf = crf
        self._preset = preset
        self._nice = nice
        self._queue = _ClipQueue(max_pending)
        self._cancel = threading.Event()
        self._detect_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._busy = 0
        self.made = 0
        self.failed = 0
        self._dropped = 0
        self._dropped_logged = -DROP_LOG_EVERY_S
        self.last: ClipInfo | None = None

    # ---------------------------------------------------------------- asking
    def request(
        self,
        ring: PacketRing,
        *,
        camera_id: str,
        event_id: str,
        key: str,
        start_s: float,
        priority: int = 0,
        raised_s: float | None = None,
        stream: str = "analysed",
        stream_note: str | None = None,
        fallback: PacketRing | None = None,
    ) -> None:
        """Ask for the clip of an event that started at ``start_s`` (camera seconds); it is
        made once the camera's stream has passed ``start_s + post_s`` (or stopped), the
        most urgent (``priority``, 0-100) first.

        An event raised well after it began (``raised_s``: a fall raised once the person
        has stayed down, a frozen picture once it has stayed frozen) gets what the ring still
        holds of it, up to ``post_s`` after it was raised, and its description says so.

        ``stream`` names the camera stream ``ring`` holds (``"evidence"`` or
        ``"analysed"``); ``stream_note`` is said in the description (why it is not the
        evidence stream).  With a ``fallback`` ring (the analysed stream's, ``ring`` being
        the evidence stream's), a window that ``ring`` does not cover (its stream stopped
        inside it, or held nothing of it) is asked of ``fallback`` instead, and said so.
        """
        begin, end = max(0.0, start_s - self.pre_s), start_s + self.post_s
        notes = [] if stream_note is None else [stream_note]
        oldest = None if raised_s is None else raised_s - (ring.keep_s - 1.0)
        if oldest is not None and raised_s is not None and begin < oldest:
            begin, end = max(begin, oldest), max(end, raised_s + self.post_s)
            notes.append(
                f"the event began {raised_s - start_s:.1f} s before it was raised; the "
                f"camera's buffer held the last {raised_s - begin:.1f} s before that"
            )
        note = "; ".join(notes) or None

        def deliver(packets: ClipPackets | None) -> None:
            self.submit(ClipJob(camera_id, event_id, key, packets, priority, note, stream))

        def deliver_or_fall_back(packets: ClipPackets | None) -> None:
            short = packets is None or not packets.packets or packets.ended is not None
            if fallback is None or not short:
                deliver(packets)
                return
            why = "held no video of the window" if packets is None else f"stopped: {packets.ended}"
            again = f"the evidence stream {why}: the clip is of the analysed stream"

            def deliver_again(other: ClipPackets | None) -> None:
                job_note = "; ".join([again, *notes[1:]] if stream_note else [again, *notes])
                self.submit(ClipJob(camera_id, event_id, key, other, priority, job_note))

            try:
                fallback.request(begin, end, deliver_again)
            except Exception:  # never lose the clip: what the evidence stream had
                log.exception("asking the analysed stream for a clip failed")
                deliver(packets)

        with self._idle:
            self._busy += 1  # counted from the request: wait_idle waits for it too
        try:
            ring.request(begin, end, deliver_or_fall_back)
        except Exception:
            with self._idle:
                self._busy -= 1
            raise

    def submit(self, job: ClipJob) -> None:
        """Queue a clip (from the ring's callback; never blocks, never raises)."""
        dropped = self._queue.put(job)
        if dropped is None:
            return
        CLIPS_FAILED.labels(dropped.camera_id, "queue_full").inc()
        self._dropped += 1
        now = time.monotonic()
        if now - self._dropped_logged >= DROP_LOG_EVERY_S:  # at most a line a minute
            log.warning(
                "clips come faster than they are made: %d of the least urgent dropped (the "
                "latest: event %s, priority %d); raise evidence.clips.mask_detect_every, or "
                "raise the rules' thresholds",
                self._dropped,
                dropped.event_id,
                dropped.priority,
                extra={"camera_id": dropped.camera_id},
            )
            self._dropped, self._dropped_logged = 0, now
        self._done()

    # ---------------------------------------------------------------- thread
    def start(self) -> None:
        """Start the maker's thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="clip-maker", daemon=True)
            self._thread.start()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every clip asked for so far is made (or failed); ``False`` on time-out.
        Clips whose window the stream has not passed yet count as not made."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._busy > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self, timeout_s: float = 30.0, *, drop_queued: bool = False) -> None:
        """Make what is queued (up to ``timeout_s``), then stop the thread.  With
        ``drop_queued`` (the process was asked to stop), only the clip being made is
        finished; those waiting are dropped, logged and counted (``reason="stopped"``)."""
        if self._thread is None:
            return
        if drop_queued:
            dropped = self._queue.drain()
            for job in dropped:
                CLIPS_FAILED.labels(job.camera_id, "stopped").inc()
                self._done()
            if dropped:
                log.warning("stopping: %d clips waiting to be made are dropped", len(dropped))
        self._queue.close()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            # cancel the clip being made (checked at every frame) and drop the rest: the
            # thread must be out of the decoder and the detector before the process exits
            self._cancel.set()
            self._thread.join(CANCEL_WAIT_S)
            log.warning(
                "clip maker still busy after %.0f s: the clip being made and those queued "
                "are dropped",
                timeout_s,
            )
        self._thread = None

    def _done(self) -> None:
        with self._idle:
            self._busy = max(0, self._busy - 1)
            self._idle.notify_all()

    def _run(self) -> None:
        if self._nice:
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._cancel.is_set():
                CLIPS_FAILED.labels(job.camera_id, "stopped").inc()
                self._done()
                continue
            try:
                self.make(job)
            except ClipCancelledError:
                log.warning(
                    "clip of event %s not made: stopping",
                    job.event_id,
                    extra={"camera_id": job.camera_id},
                )
                CLIPS_FAILED.labels(job.camera_id, "stopped").inc()
            except Exception:  # one bad clip must not stop the others
                log.exception(
                    "clip of event %s failed", job.event_id, extra={"camera_id": job.camera_id}
                )
                CLIPS_FAILED.labels(job.camera_id, "error").inc()
                self.failed += 1
            finally:
                self._done()

    # ---------------------------------------------------------------- making
    def make(self, job: ClipJob) -> ClipInfo | None:
        """Make and store one clip (on the calling thread); ``None`` when there is no video.

        Raises:
            ClipError: the codec cannot be remuxed or decoded.
            OSError / alerts.s3_evidence.EvidenceUnavailableError: the store failed.
        """
        started = time.monotonic()
        clip = job.packets
        if clip is None or not clip.packets:
            log.warning(
                "no clip for event %s: the camera's buffer held no video of its window",
                job.event_id,
                extra={"camera_id": job.camera_id},
            )
            CLIPS_FAILED.labels(job.camera_id, "no_video").inc()
            self.failed += 1
            return None
        remuxed = clip.info.codec in REMUXABLE and clip.template is not None
        original = None
        if remuxed:
            try:
                original = remux(clip)
            except ClipError as e:  # e.g. broken timestamps: keep the clip, transcoded
                log.warning(
                    "clip of event %s: %s; the original is transcoded instead",
                    job.event_id,
                    e,
                    extra={"camera_id": job.camera_id},
                )
                remuxed = False
        masked, plain, stats = self._mask(clip, transcode=not remuxed)
        if masked.frames == 0:
            masked.abandon()
            if plain is not None:
                plain.abandon()
            raise ClipError("no_video", "no frame of the window could be decoded")
        first_t, last_t = stats["first_t"], stats["last_t"]
        masked_bytes = masked.finish()
        if plain is not None:
            original = plain.finish()
        assert original is not None
        seconds = time.monotonic() - started
        end_s = last_t + clip.frame_interval_s
        info = ClipInfo(
            event_id=job.event_id,
            camera_id=job.camera_id,
            asked_start_s=clip.asked_start_s,
            asked_end_s=clip.asked_end_s,
            start_s=first_t,
            end_s=end_s,
            original_start_s=clip.start_s if remuxed else first_t,
            original_end_s=clip.end_s if remuxed else end_s,
            complete=False,
            note=None,
            frames=masked.frames,
            codec=clip.info.codec,
            remuxed=remuxed,
            stream=job.stream,
            width=clip.info.width,
            height=clip.info.height,
            masking={
                "frames_detected": stats["detected"],
                "boxes": stats["boxes"],
                "seconds": seconds,
            },
        )
        info = _judged(info, clip, job.note)
        self._evidence.put(masked_key(job.key), masked_bytes)
        self._evidence.put(job.key, original)
        self._evidence.put(clip_info_key(job.key), info.to_json())
        CLIPS_MADE.labels(job.camera_id, str(remuxed).lower()).inc()
        CLIP_SECONDS.observe(time.monotonic() - started)
        self.made += 1
        self.last = info
        log.info(
            "clip of event %s: %.1f-%.1f s, %d frames, %d people boxes masked, %.1f s%s",
            job.event_id,
            info.start_s,
            info.end_s,
            info.frames,
            int(stats["boxes"]),
            seconds,
            "" if info.note is None else f" ({info.note})",
            extra={"camera_id": job.camera_id},
        )
        return info

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise ClipCancelledError("the clip maker is stopping")

    def _detector(self) -> Detect | None:
        with self._detect_lock:
            if self._detect is None and self._factory is not None:
                self._detect = self._factory()
            return self._detect

    def _run_detector(self, detect: Detect, image: npt.NDArray[np.uint8]) -> Detections:
        with self._detect_lock:  # one frame at a time: the snapshot's and the clips'
            return detect([image])[0]

    def people(self, image: npt.NDArray[np.uint8]) -> Boxes:
        """Every person the masking detector finds in ``image`` (``(H, W, 3)`` uint8 BGR),
        down to the faint score: ``(n, 4)`` float32 boxes (for the masked snapshot of a
        frame the live detector skipped).  Empty without a detector."""
        detect = self._detector()
        if detect is None:
            return np.empty((0, 4), np.float32)
        found = self._run_detector(detect, image)
        keep = np.isin(found.class_id, np.asarray(sorted(self._person_ids), np.int64))
        keep &= found.score >= self.weak
        return np.asarray(found.xyxy[keep], np.float32).reshape(-1, 4)

    def _mask(
        self, clip: ClipPackets, *, transcode: bool
    ) -> tuple[_Encoder, _Encoder | None, dict[str, float]]:
        """Decode the window, find people, blur them, encode (and, with ``transcode``,
        encode the unmasked frames too: the original of a codec MP4 cannot hold).

        Two passes over the packets: the first runs the detector on the window's frames
        (and the ``hold`` frames around it) and keeps only the boxes; the second decodes
        again, blurs what :func:`alerts.masking.held_masks` says, and encodes.  Memory:
        a few frames, whatever the clip's length.
        """
        detect = self._detector()
        dt = clip.frame_interval_s
        half = dt / 2
        hold = self.detect_every  # a frame also takes the masks of its neighbours
        lo, hi = clip.asked_start_s - half, clip.asked_end_s - half  # the window: [lo, hi)
        rate = clip.info.rate or Fraction(round(1.0 / dt))
        stats = {"detected": 0.0, "boxes": 0.0, "first_t": 0.0, "last_t": 0.0}
        times: list[float] = []
        boxes: list[Boxes] = []
        scores: list[npt.NDArray[np.float32]] = []
        for t, image in decode(clip):
            self._check_cancel()
            if t < lo - hold * dt:
                continue
            if t >= hi + hold * dt:
                break
            found = Detections.empty()
            if detect is not None and len(times) % self.detect_every == 0:
                found = self._run_detector(detect, image)
                stats["detected"] += 1
            people = np.isin(found.class_id, np.asarray(sorted(self._person_ids), np.int64))
            times.append(t)
            boxes.append(np.asarray(found.xyxy[people], np.float32).reshape(-1, 4))
            scores.append(np.asarray(found.score[people], np.float32).reshape(-1))
        stats["boxes"] = float(sum(len(b) for b in boxes))
        masks = held_masks(
            boxes,
            scores,
            strong=self.strong,
            weak=self.weak,
            hold=hold,
            gap=max(2, round(LINK_GAP_S / dt)),
        )
        by_time = dict(zip((round(t, 6) for t in times), masks, strict=True))

        masked: _Encoder | None = None
        plain: _Encoder | None = None
        try:
            for t, image in decode(clip):
                self._check_cancel()
                if t < lo:
                    continue
                if t >= hi:
                    break
                if masked is None:
                    h, w = image.shape[:2]
                    masked = _Encoder(
                        w, h, rate, crf=self._crf, preset=self._preset, max_height=self.max_height
                    )
                    if transcode:
                        plain = _Encoder(w, h, rate, crf=max(self._crf - 6, 0), preset=self._preset)
                    stats["first_t"] = t
                mask = _mask_at(by_time, t, dt)
                rel = t - stats["first_t"]
                masked.add(mask_people(image, mask) if len(mask) else image, rel)
                if plain is not None:
                    plain.add(image, rel)
                stats["last_t"] = t
        except BaseException:  # cancelled, or a decoder/encoder error: no temp file left
            for encoder in (masked, plain):
                if encoder is not None:
                    encoder.abandon()
            raise
        if masked is None:  # nothing inside the window: the caller sees 0 frames
            masked = _Encoder(
                max(clip.info.width, 2), max(clip.info.height, 2), rate, crf=30, preset=self._preset
            )
        return masked, plain, stats


def _mask_at(by_time: dict[float, Boxes], t: float, dt: float) -> Boxes:
    """The mask of the frame at ``t`` from the first pass; a frame the first pass did not
    see (the decoder dropped it there) takes its nearest neighbour's within a frame, and
    with none, the whole picture is blurred (nobody looked at it)."""
    mask = by_time.get(round(t, 6))
    if mask is not None:
        return mask
    near = [k for k in by_time if abs(k - t) <= dt * 1.01]
    if near:
        return by_time[min(near, key=lambda k: abs(k - t))]
    return WHOLE_PICTURE


def _judged(info: ClipInfo, clip: ClipPackets, note: str | None = None) -> ClipInfo:
    """``info`` with ``complete`` and ``note`` set from what the clip covers (and ``note``,
    said first: the window is not the usual one)."""
    tol = clip.frame_interval_s * 1.01
    notes = [] if note is None else [note]
    if info.start_s > info.asked_start_s + tol:
        notes.append(
            f"the camera's buffer held video from {info.start_s - info.asked_start_s:.1f} s "
            "into the window only"
        )
    if info.end_s < info.asked_end_s - tol:
        why = clip.ended or "the video stopped"
        notes.append(
            f"the video ended {info.end_s - info.asked_start_s:.1f} s into the "
            f"{info.asked_end_s - info.asked_start_s:.1f} s window ({why})"
        )
    return ClipInfo(
        **{
            **{f: getattr(info, f) for f in info.__dataclass_fields__},
            "complete": not notes,
            "note": "; ".join(notes) or None,
        }
    )


def clip_json(data: bytes) -> dict[str, Any]:
    """A stored clip description read back (see :class:`ClipInfo`)."""
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a clip description is a JSON object")
    return value
