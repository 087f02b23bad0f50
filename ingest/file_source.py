"""Video files as camera sources: as fast as possible, or paced at real speed (looping)."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator

import av
import av.container
import av.error
import av.video

from ingest import _av
from ingest.activity import ActivityControl, Thinner
from ingest.base import SourceBase, SourceState, StateCallback
from ingest.errors import (
    SourceNotFoundError,
    SourceOpenError,
    SourceReadError,
    TruncatedSourceError,
)
from ingest.frame import Frame

log = logging.getLogger(__name__)

_DEFAULT_FPS = 25.0

EARLY_END_MIN_S = 0.5
"""Tolerance of the declared-length check, seconds (at least; see :func:`early_end`)."""
EARLY_END_FRAMES = 2
"""... and frame intervals / frames (at least)."""
EARLY_END_FRACTION = 0.01
"""... and share of the declared length (at least)."""

_TAG_DURATION_RE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")


def declared_length(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int | None, float | None]:
    """The length the container declares for ``stream``: ``(frames, seconds)``, ``None`` each
    where it says nothing.

    Frames: the stream's frame count (MP4 sample table, AVI header; counts the samples an
    edit list hides too).  Seconds: the stream's duration (MP4: of its edit list), else its
    ``DURATION`` tag (Matroska), else the container's duration when the video is its only
    stream (never one that includes an audio track).  Where FFmpeg has to estimate a
    duration (AVI, MPEG-TS, fragmented MP4) it does so from the file's own content, so a
    truncated file then declares the length it has.
    """
    frames = stream.frames if stream.frames > 0 else None
    seconds: float | None = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        m = _TAG_DURATION_RE.match(str(stream.metadata.get("DURATION", "")).strip())
        if m:
            seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        elif len(container.streams) == 1 and container.duration:
            seconds = container.duration / av.time_base
    return frames, (seconds if seconds is not None and seconds > 0 else None)


def early_end(
    path: str,
    tally: _av.DemuxTally,
    *,
    declared_frames: int | None,
    declared_s: float | None,
    interval: float,
) -> TruncatedSourceError | None:
    """The error to raise when a pass that reached the end of the file ended early, else None.

    Early means one of:

    * **the demuxer's signal**: the file's last packet was cut short (the container
      promised more bytes: an MP4 whose ``moov`` comes first, AVI, FLV, fragmented MP4),
      unless the declared length shows nothing was missing (all the frames it declares
      were read, or the cut lies past the declared duration: samples an edit list hides);
    * **the declared length**, where no packet was cut (a cut on a packet boundary, a
      Matroska file whose last block is dropped whole): the stream time reached falls short
      of the declared duration *and* (when declared) fewer frames were read than declared,
      each by more than the tolerance: the larger of ``EARLY_END_MIN_S`` /
      ``EARLY_END_FRAMES`` frame intervals / ``EARLY_END_FRACTION`` of the declared
      duration, and of ``EARLY_END_FRAMES`` / ``EARLY_END_FRACTION`` of the declared frames.
      Both must agree, so neither a frame count that includes samples an edit list hides
      nor a duration a frame or two off (or an MP4's rounded one) is taken for a cut.

    Frames thinned (activity-driven decoding) or skipped (``start_s``) were demuxed and
    count as read.
    """
    if not tally.ended:
        return None
    reached = tally.reached_s
    if reached is None:
        reached = tally.packets * interval
    tol_s = max(
        EARLY_END_MIN_S, EARLY_END_FRAMES * interval, EARLY_END_FRACTION * (declared_s or 0.0)
    )
    tol_frames = max(EARLY_END_FRAMES, math.ceil(EARLY_END_FRACTION * (declared_frames or 0)))
    if tally.cut_tail:
        truncated = (declared_frames is None or tally.packets < declared_frames) and (
            declared_s is None or reached < declared_s + tol_s
        )
    else:
        truncated = (
            declared_s is not None
            and reached < declared_s - tol_s
            and (declared_frames is None or tally.packets < declared_frames - tol_frames)
        )
    if not truncated:
        return None
    # the length to report: the declared count's when there is one (a truncated AVI's
    # duration is FFmpeg's estimate from what is left), else a declared duration
    expected_s = declared_frames * interval if declared_frames else None
    if declared_s is not None and declared_s > max(expected_s or 0.0, reached + interval / 2):
        expected_s = declared_s
    if expected_s is not None and expected_s < reached + interval / 2:
        expected_s = None  # nothing to say in seconds (a B-frame cut off at the very end)
    return TruncatedSourceError(
        path,
        frames=tally.packets,
        declared_frames=declared_frames,
        reached_s=reached,
        declared_s=expected_s,
    )


class FileSource(SourceBase):
    """Decode a video file with PyAV into BGR frames.

    ``realtime=False``: every frame, as fast as the decoder goes (``live=False``; the runner
    blocks rather than drops); ``wall_time`` is the decode time.
    ``realtime=True``: frames are released when due by their pts against a monotonic clock
    (``live=True``, like a camera); ``wall_time`` is the scheduled show time.  When the
    consumer or decoder falls more than ``max_lag_s`` behind, the schedule is re-anchored
    (logged) instead of bursting to catch up.

    ``pts_s`` is the stream's pts * time_base minus the first pts (frame index / average rate
    when pts is missing); non-decreasing.  ``loop=True`` restarts at end of file with ``seq``
    and ``pts_s`` continuing (the next pass starts one frame interval after the last frame).

    Packets that fail to decode in the middle are logged, counted (``stats().decode_errors``)
    and skipped; no frame is invented.  A recording that ends before the length its
    container declares (a file cut short: see :func:`early_end`) delivers every frame it
    holds, then raises ``TruncatedSourceError``: the camera did not run to its end.
    ``close()`` is honoured between frames and during a realtime wait, so it takes effect
    within one frame decode.
    """

    def __init__(
        self,
        camera_id: str,
        path: str | os.PathLike[str],
        *,
        realtime: bool,
        loop: bool = False,
        on_state: StateCallback | None = None,
        decode_threads: int = 0,
        max_lag_s: float = 1.0,
        max_consecutive_errors: int = 100,
        start_s: float = 0.0,
        max_frames: int | None = None,
        activity: ActivityControl | None = None,
    ) -> None:
        """Create the source (nothing is opened until ``frames()``).

        Args:
            camera_id: Camera id given to every frame.
            path: Video file (anything FFmpeg demuxes: mp4, avi, mkv, ts...).
            realtime: Pace delivery at the file's own speed (and be ``live``).
            loop: Restart at end of file forever.
            on_state: State-change callback ``(camera_id, state, detail)``.
            decode_threads: Decoder threads, 0 = FFmpeg's choice (thread_type AUTO).
            max_lag_s: Realtime only: how far behind schedule (s) before re-anchoring.
            max_consecutive_errors: Bad packets in a row (without a good frame) before giving up.
            start_s: Skip the frames before this time (s from the file's first frame) on the
                first pass (they are decoded, not converted); a loop restarts at 0.  Staggers
                several cameras playing one file; ``pts_s`` keeps the file's own times.
            max_frames: End (as at end of file, looping or not) after yielding this many
                frames; ``None``: no limit.  Fixed-size runs of benchmarks and trials.
            activity: Activity-driven decoding: while it is quiet, only keyframes or one
                frame per ``interval_s`` are delivered (see :mod:`ingest.activity`);
                ``None``: every frame.

        Raises:
            ValueError: ``start_s`` negative or not finite, ``max_frames`` < 1.
        """
        if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
            raise ValueError(f"max_frames must be an int >= 1 or None, got {max_frames!r}")
        if not (math.isfinite(start_s) and start_s >= 0.0):
            raise ValueError(f"start_s must be a finite number >= 0, got {start_s!r}")
        self._path = os.fspath(path)
        super().__init__(
            camera_id,
            kind="file",
            source_text=self._path,
            live=realtime,
            finite=not loop or max_frames is not None,
            on_state=on_state,
        )
        self._realtime = realtime
        self._loop = loop
        self._threads = decode_threads
        self._max_lag_s = max_lag_s
        self._max_consecutive_errors = max_consecutive_errors
        self._start_s = float(start_s)
        self._max_frames = max_frames
        self._yielded = 0
        self._activity = activity

    @property
    def path(self) -> str:
        """The file path."""
        return self._path

    # ----------------------------------------------------------------- open
    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        if not os.path.exists(self._path):
            raise SourceNotFoundError(self._path)
        if os.path.isdir(self._path):
            raise SourceOpenError(self._path, "is a directory")
        try:
            container = av.open(self._path, mode="r")
        except FileNotFoundError as e:  # raced with a delete
            raise SourceNotFoundError(self._path) from e
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise SourceOpenError(self._path, str(e)) from e
        stream = _av.first_video_stream(container)
        if stream is None:
            container.close()
            raise SourceOpenError(self._path, "no video stream")
        _av.configure_decoder(stream, threads=self._threads, thread_type="AUTO")
        return container, stream

    # --------------------------------------------------------------- frames
    def frames(self) -> Iterator[Frame]:
        """Yield the file's frames (see the class doc); returns at EOF (no loop) or on close.

        Raises:
            SourceNotFoundError: the file does not exist.
            SourceOpenError: not a video / unreadable header / no video stream.
            SourceReadError: no decodable frame in a pass, or too many bad packets in a row.
            TruncatedSourceError: (a ``SourceReadError``) the file ends before its declared
                length; raised after its last frame (first pass of a looping file too).
            SourceUsageError: called a second time.
        """
        if not self._begin_iteration():
            self._set_state(SourceState.ENDED, "closed before start")
            return
        try:
            yield from self._run()
        except (SourceNotFoundError, SourceOpenError, SourceReadError) as e:
            self._record_error(str(e))
            self._set_state(SourceState.FAILED, str(e))
            raise
        finally:
            self._end_iteration()
        self._set_state(SourceState.ENDED, "closed" if self.closed else "end of file")

    def _run(self) -> Iterator[Frame]:
        pts_offset = 0.0  # output pts of the first frame of the current pass
        last_out: float | None = None
        interval = 1.0 / _DEFAULT_FPS
        # realtime schedule: frame with output pts p is due at mono0 + (p - pts0)
        mono0 = wall0 = pts0 = 0.0
        scheduled = False
        passes = 0
        while not self.closed:
            t_open = time.monotonic()
            container, stream = self._open()
            ring = self.packets
            if ring is not None:
                ring.open_segment(stream)
            fps = _av.nominal_fps(stream)
            if fps is None:
                log.warning(
                    "camera %s: %s declares no frame rate; assuming %.0f fps",
                    self._camera_id,
                    self._path,
                    _DEFAULT_FPS,
                )
            interval = 1.0 / (fps or _DEFAULT_FPS)
            declared_frames, declared_s = declared_length(container, stream)
            tally = _av.DemuxTally()
            first_raw: float | None = None
            replay_until: float | None = None  # a look-back replays frames up to this pts_s
            n_pass = 0  # frames decoded in this pass
            shown = 0  # ... and yielded (the rest skipped before start_s)
            thinner = (
                None
                if self._activity is None
                else Thinner(self._activity, stream.time_base, self._count_thinned)
            )
            try:
                for vf in _av.decode_video(
                    container,
                    stream,
                    on_bad_packet=self._on_bad_packet,
                    resume_demux_on_error=True,
                    max_consecutive_errors=self._max_consecutive_errors,
                    thinner=thinner,
                    tally=tally,
                    on_packet=None if ring is None else ring.add,
                ):
                    raw = _av.frame_time_s(vf, stream)
                    if raw is None:
                        rel = n_pass * interval
                    else:
                        if first_raw is None:
                            first_raw = raw
                        rel = raw - first_raw
                    out = pts_offset + rel
                    if passes == 0 and rel < self._start_s - 1e-9:
                        n_pass += 1  # staggered start: decoded, skipped
                        continue
                    if thinner is not None and not thinner.keep(out, raw):
                        n_pass += 1
                        continue
                    if last_out is not None and out < last_out:
                        out = last_out  # broken timestamps: keep pts_s non-decreasing
                    replayed = replay_until is not None and out <= replay_until
                    image = _av.to_bgr(vf)
                    if shown == 0 and passes == 0:
                        self._set_first_frame_latency(time.monotonic() - t_open)
                    n_pass += 1
                    shown += 1
                    if self._realtime:
                        now = time.monotonic()
                        if not scheduled:
                            mono0, wall0, pts0, scheduled = now, time.time(), out, True
                        due = mono0 + (out - pts0)
                        if due > now:
                            if self._stop.wait(due - now):
                                return
                        elif now - due > self._max_lag_s and not replayed:
                            log.warning(
                                "camera %s: %.2f s behind real time; re-anchoring the schedule",
                                self._camera_id,
                                now - due,
                            )
                            mono0, wall0, pts0 = now, time.time(), out
                            due = now
                        wall = wall0 + (due - mono0)
                    else:
                        wall = time.time()
                    if self.closed:
                        return
                    frame = self._make_frame(image, out, wall)
                    if ring is not None and raw is not None:
                        ring.anchor(raw, out)
                    before_out, last_out = last_out, out
                    if frame.seq == 0 or shown == 1:
                        self._set_state(SourceState.STREAMING, f"{frame.width}x{frame.height}")
                    yield frame
                    if self._activity is not None and self._activity.taken_back():
                        # a look-back: the frames since the previous one come first, late
                        last_out, replay_until = before_out, out
                        continue
                    self._yielded += 1
                    if self.closed or self._yielded == self._max_frames:
                        return
            except av.error.FFmpegError as e:
                raise SourceReadError(
                    self._path, f"too many consecutive decode errors, last: {e}"
                ) from e
            finally:
                container.close()
                if ring is not None:
                    ring.end_segment("the camera stopped" if self.closed else "the recording ended")
            truncated = early_end(
                self._path,
                tally,
                declared_frames=declared_frames,
                declared_s=declared_s,
                interval=interval,
            )
            if truncated is not None:
                raise truncated
            if n_pass == 0:
                raise SourceReadError(self._path, "no decodable video frame")
            if shown == 0 and passes == 0 and not self._loop:
                log.warning(
                    "camera %s: %s is shorter than start_s = %.1f s: no frame shown",
                    self._camera_id,
                    self._path,
                    self._start_s,
                )
            if not self._loop:
                return
            passes += 1
            self._count_reconnect()
            pts_offset = (last_out if last_out is not None else 0.0) + interval
            log.debug("camera %s: looping %s (pass %d)", self._camera_id, self._path, passes + 1)

    def _on_bad_packet(self, e: av.error.FFmpegError) -> None:
        text = f"bad packet skipped: {e}"
        self._record_error(text, decode_error=True)
        log.warning("camera %s: %s: %s", self._camera_id, self._path, text)
