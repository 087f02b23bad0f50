"""Activity-driven decoding: a quiet camera is decoded sparsely, an active one fully.

Public API::

    from ingest import ActivityControl
    activity = ActivityControl(interval_s=0.5, keyframe_max_s=2.0)
    source = FileSource("cam1", "clip.mp4", realtime=True, activity=activity)
    ...
    activity.rest(frame.pts_s)   # downstream: nothing happens here, decode sparsely
    activity.wake(frame.pts_s)   # downstream: something moves, every frame again
    if activity.can_look_back() and moves(frame):   # decode thread, on a sparse frame
        activity.look_back(frame.pts_s)  # drop it: the frames before it come first

While quiet, a source delivers:

* **keyframes only** when the stream's keyframes come at least every ``keyframe_max_s``
  seconds (camera streams: a GOP of 1-2 s).  The packets between them are not even
  decoded: the cheapest possible watch.  Each keyframe is drained from the decoder at
  once (frame threading would otherwise hold it back for a few packets).
* otherwise (a file with a keyframe every 20 s, a stream without keyframe flags) **one
  frame per** ``interval_s`` of stream time: every packet is still decoded (the next
  frames need it as a reference), but the others are neither converted to BGR nor
  delivered, measured or tracked.

Waking loses nothing:

* **Look-back.**  When the sparse frame the consumer is given shows activity, the consumer
  may take it back (:meth:`ActivityControl.look_back`): the source then decodes again the
  GOP (or two) that hold the frames since the previous sparse frame (kept, compressed, in
  memory; the decoder is reset first) and delivers every one of them, then the frame
  taken back.  So whatever began between two sparse frames is analysed from its first
  frame, as with full decoding: a person who walks in and crosses a line within one GOP is
  still seen crossing.  What it costs is time, not events: the frames come one sparse
  interval late (at most one keyframe interval, ``keyframe_max_s``; ``interval_s``
  outside keyframe mode), then catch up.
* **Catch-up.**  A wake from downstream (the detector found something on a heartbeat)
  decodes every frame after the last delivered one: when packets of the current GOP were
  skipped, the GOP is decoded again from its keyframe.  A consumer that reads faster than
  real time must wait for its verdict on each sparse frame before the source decodes on
  (:meth:`ActivityControl.await_judged`); otherwise the next keyframe is decoded before
  the wake arrives and the frames in between are past recall.

Thread-safety: ``wake``/``rest`` are called from the consumer's threads while the source
reads ``quiet`` on its decode thread; a ``rest`` dated before the latest ``wake`` is
ignored (the detector loop lags the decoder by a frame or two).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Protocol

__all__ = ["FLUSH", "ActivityControl", "Thinner"]

MAX_GOP_PACKETS = 600
"""Packets of one GOP kept for a catch-up re-decode or a look-back (10 s at 60 fps; the
current GOP and the one before are held, compressed: a few MB for a 1080p camera); a
longer GOP is not kept, a wake in it waits for the next keyframe, and a sparse frame in
it cannot be looked back from (keyframe mode never runs on such streams: their keyframes
are too far apart)."""

FLUSH = object()
"""In :meth:`Thinner.admit`'s packets: reset the decoder here (discarding what it holds)."""

KEYFRAME_GAPS = 4
"""Keyframe intervals remembered; keyframe mode needs at least two, all within
``keyframe_max_s``."""


class ActivityControl:
    """Downstream's say in how much of one camera's stream is decoded.

    Args:
        interval_s: While quiet, the longest stream time between two delivered frames
            when keyframe mode is not possible, seconds (> 0).
        keyframe_max_s: While quiet, decode keyframes only when the stream's last
            keyframe intervals are all at most this, seconds; 0 disables keyframe mode.

    Attributes:
        wakes: Quiet-to-active switches so far.
        rests: Active-to-quiet switches so far.
        look_backs: Wakes that replayed the frames since the previous sparse frame
            (:meth:`look_back`).
        frames_thinned: Frames the source skipped on purpose so far (written by the
            decoding thread, a plain counter for its consumer on that thread).

    Raises:
        ValueError: For an invalid argument; the message names it.

    Bound: a change that happened while quiet is seen at the next sparse frame, at most
    ``interval_s`` (or one keyframe interval, at most ``keyframe_max_s``) of stream time
    later.  With :meth:`look_back` (motion seen on that frame) the frames since the
    previous sparse frame are analysed too, so the event's start in stream time is the
    same as with full decoding and only its report waits up to that interval; after a
    plain :meth:`wake` (activity seen by the detector) every frame after the sparse frame
    is delivered, so the start is at most that interval late.
    """

    def __init__(self, *, interval_s: float = 0.5, keyframe_max_s: float = 2.0) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0.0):
            raise ValueError(f"interval_s must be a finite number > 0, got {interval_s!r}")
        if not (math.isfinite(keyframe_max_s) and keyframe_max_s >= 0.0):
            raise ValueError(f"keyframe_max_s must be a finite number >= 0, got {keyframe_max_s!r}")
        self.interval_s = float(interval_s)
        self.keyframe_max_s = float(keyframe_max_s)
        self._lock = threading.Lock()
        self._judged = threading.Condition(self._lock)
        self._quiet = False
        self._woken_at = -math.inf
        self._judged_t = -math.inf  # latest frame time a wake or rest was given for
        self._released = False
        self._replayable = False  # the frame just delivered can be looked back from
        self._replay = False  # a look-back was asked: the thinner replays (decode thread)
        self._taken_back = False  # ... and the source rolls its clock back (decode thread)
        self.wakes = 0
        self.rests = 0
        self.look_backs = 0
        self.frames_thinned = 0

    @property
    def quiet(self) -> bool:
        """True while the camera may be decoded sparsely."""
        return self._quiet

    def wake(self, t_s: float) -> None:
        """Every frame from now on; ``t_s``: the time (s, the frames' ``pts_s``) of the
        frame that showed activity."""
        with self._lock:
            self._woken_at = max(self._woken_at, t_s)
            self._judge(t_s)
            if self._quiet:
                self._quiet = False
                self.wakes += 1

    def rest(self, t_s: float) -> None:
        """Sparse decoding from now on, unless a ``wake`` was dated after ``t_s`` (the
        time, s, of the frame judged quiet)."""
        with self._lock:
            self._judge(t_s)
            if t_s < self._woken_at or self._quiet:
                return
            self._quiet = True
            self.rests += 1

    @property
    def judged_s(self) -> float:
        """Time (s) of the latest frame downstream gave a verdict on (``-inf`` before any)."""
        return self._judged_t

    def _judge(self, t_s: float) -> None:
        """Record (lock held) that the frame at ``t_s`` was judged; wake :meth:`await_judged`."""
        if t_s > self._judged_t:
            self._judged_t = t_s
            self._judged.notify_all()

    def await_judged(self, t_s: float, timeout_s: float) -> bool:
        """Decode thread, after delivering the sparse frame at ``t_s`` (s): wait until
        downstream has judged it (:meth:`wake` or :meth:`rest` for a frame at or after
        ``t_s``), the camera is awake, :meth:`release` was called, or ``timeout_s`` (wall
        seconds) passed.

        While quiet, a source that is read faster than real time (a file replayed as fast
        as possible) would otherwise decode the next keyframe before the verdict on this
        one arrives, and a wake could no longer go back to the frames in between; a live
        stream is paced by the camera and never waits long here.

        Returns:
            ``False`` on timeout, ``True`` otherwise.
        """
        with self._judged:
            return self._judged.wait_for(
                lambda: self._released or not self._quiet or self._judged_t >= t_s,
                timeout=timeout_s,
            )

    # ------------------------------------------------------------------ look-back
    def can_look_back(self) -> bool:
        """Decode thread: whether the sparse frame just delivered can be taken back by
        :meth:`look_back` (a keyframe whose previous GOP is still held, see
        :class:`Thinner`)."""
        with self._lock:
            return self._quiet and self._replayable

    def look_back(self, t_s: float) -> bool:
        """Decode thread, for the sparse frame just delivered (at ``t_s``, s), which shows
        activity: take it back, wake the camera, and have the source deliver every frame
        since the previous sparse frame, then this one again.

        So an event that began between two keyframes is analysed from its first frame, not
        from the keyframe that showed it: a person who walks in and crosses a line within
        one GOP is still seen crossing.  The caller must drop the frame (and undo what it
        measured on it).

        Returns:
            ``True`` if the frame was taken back; ``False`` if the source cannot replay
            (then nothing changed: wake the camera as usual).
        """
        with self._lock:
            if not (self._quiet and self._replayable):
                return False
            self._replayable = False
            self._replay = self._taken_back = True
            self._woken_at = max(self._woken_at, t_s)
            self._quiet = False
            self.wakes += 1
            self.look_backs += 1
            return True

    def _offer(self, replayable: bool) -> None:
        """Thinner: whether the frame it just kept can be looked back from."""
        with self._lock:
            self._replayable = replayable

    def _replay_pending(self) -> bool:
        """Thinner: a look-back was asked and not yet started."""
        with self._lock:
            return self._replay

    def _take_replay(self) -> bool:
        """Thinner, before admitting a packet: whether to replay (once per look-back)."""
        with self._lock:
            replay, self._replay = self._replay, False
            self._replayable = False
            return replay

    def taken_back(self) -> bool:
        """Source, after a frame was consumed: whether the consumer took it back with
        :meth:`look_back` (once per look-back); the source then rolls its clock back to
        the frame before it, since the replayed frames come earlier."""
        with self._lock:
            taken, self._taken_back = self._taken_back, False
            return taken

    def release(self) -> None:
        """End every :meth:`await_judged`, now and later (the run is stopping)."""
        with self._judged:
            self._released = True
            self._judged.notify_all()


class _Packet(Protocol):
    """What :class:`Thinner` reads of a PyAV packet."""

    @property
    def is_keyframe(self) -> bool: ...

    @property
    def pts(self) -> int | None: ...

    @property
    def dts(self) -> int | None: ...

    @property
    def time_base(self) -> Fraction | None: ...


class Thinner:
    """One decoding pass's share of activity-driven decoding (internal to the sources).

    The decode loop asks :meth:`admit` for every demuxed packet which packets to decode
    now (none, this one, or the current GOP again to catch up) and whether to drain the
    decoder after them; the source asks :meth:`keep` for every decoded frame whether to
    convert and deliver it.

    Args:
        control: The camera's control (``None``: everything passes).
        stream_time_base: The stream's time base, for packets without their own.
        on_thinned: Called with the number of frames skipped on purpose as they are
            skipped; negative when a wake decodes skipped packets after all.
    """

    def __init__(
        self,
        control: ActivityControl | None,
        stream_time_base: Fraction | None,
        on_thinned: Callable[[int], None],
    ) -> None:
        self._control = control
        self._tb = stream_time_base
        self._source_count = on_thinned
        self._gaps: deque[float] = deque(maxlen=KEYFRAME_GAPS)
        self._last_key_t: float | None = None
        self._gop: list[object] = []
        self._gop_complete = False  # _gop holds every packet since its keyframe
        self._synced = True  # the decoder has decoded every packet of _gop, in order
        self._undecoded = 0  # packets of _gop skipped and not re-decoded
        self._catching_up = False  # frames of a re-decoded GOP delivered before come first
        self._last_kept: float | None = None
        self._last_admitted_key: float | None = None
        # look-back: the GOP before the current one, and what was kept before the keyframe
        self._gop_t: float | None = None  # stream time of _gop's keyframe
        self._prev_gop: list[object] | None = None  # complete, or None
        self._prev_gop_t: float | None = None
        self._drained_key_t: float | None = None  # the keyframe decoded alone, not yet kept
        self._last_kept_raw: float | None = None
        self._before: tuple[float | None, float | None] = (None, None)  # kept before the last
        self._since_kept = 0  # frames thinned since the last frame kept
        self._between = 0  # ... and between the last two frames kept
        self.keyframe_mode = False
        """Whether the last packet was handled in keyframe mode."""

    # ------------------------------------------------------------------ packets
    def _time(self, packet: _Packet) -> float | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        tb = packet.time_base or self._tb
        return None if ts is None or tb is None else float(ts * tb)

    def _keyframes_regular(self) -> bool:
        c = self._control
        return (
            c is not None
            and c.keyframe_max_s > 0.0
            and len(self._gaps) >= 2
            and max(self._gaps) <= c.keyframe_max_s + 1e-6
        )

    def admit(self, packet: _Packet) -> tuple[Sequence[object], bool]:
        """``(packets to decode now, in order; drain the decoder after them)``."""
        c = self._control
        if c is None:
            return (packet,), False
        replay: list[object] = []
        if c._take_replay():
            replay = self._replay()
        self._drained_key_t = None
        todo, drain = self._admit(c, packet)
        return ([*replay, *todo], drain) if replay else (todo, drain)

    def _replay(self) -> list[object]:
        """A look-back (:meth:`ActivityControl.look_back`): the decoder is reset and the GOP
        that holds the frame kept before the one taken back is decoded again, up to the
        last packet admitted; :meth:`keep` delivers what comes after that frame (the
        frames thinned in between are given back to the count)."""
        before_raw, gop_t = self._before[1], self._gop_t
        if before_raw is not None and gop_t is not None and before_raw >= gop_t - 1e-6:
            packets = [FLUSH, *self._gop]
        else:
            packets = [FLUSH, *(self._prev_gop or ()), *self._gop]
        self._on_thinned(-self._between)
        self._between = self._undecoded = 0
        self._prev_gop = None
        self._synced = True
        self._catching_up = True
        self._last_kept, self._last_kept_raw = self._before
        return packets

    def _thin(self, n: int) -> None:
        self._since_kept += n
        self._on_thinned(n)

    def _on_thinned(self, n: int) -> None:
        self._source_count(n)
        if self._control is not None:
            self._control.frames_thinned += n

    def _admit(self, c: ActivityControl, packet: _Packet) -> tuple[Sequence[object], bool]:
        t = self._time(packet)
        if packet.is_keyframe:
            if t is not None and self._last_key_t is not None and t > self._last_key_t:
                self._gaps.append(t - self._last_key_t)
            if t is not None:
                self._last_key_t = t
        sparse = c.quiet and self._keyframes_regular()
        self.keyframe_mode = sparse
        if packet.is_keyframe:
            self._prev_gop = self._gop if self._gop_complete and self._gop else None
            self._prev_gop_t = self._gop_t
            self._undecoded = 0  # the previous GOP's skipped packets stay skipped
            self._gop, self._gop_complete, self._gop_t = [packet], True, t
            if not sparse:
                self._synced = True
                return (packet,), False
            self._synced = False  # decoded alone and drained: the references are gone
            last = self._last_admitted_key
            if t is not None and last is not None and 0.0 <= t - last < c.interval_s - 1e-6:
                self._undecoded = 1  # all-intra streams (MJPEG): keyframes come too often
                self._thin(1)
                return (), False
            self._last_admitted_key = t
            self._drained_key_t = t
            return (packet,), True
        if self._gop_complete:
            if len(self._gop) < MAX_GOP_PACKETS:
                self._gop.append(packet)
            else:
                self._gop, self._gop_complete = [], False
                self._prev_gop = None
        if self._synced:
            if not sparse:
                return (packet,), False
            self._synced = False
        if sparse or not self._gop_complete:
            self._undecoded += 1  # quiet, or woken in a GOP that cannot be re-decoded
            self._thin(1)
            return (), False
        # woken in a GOP whose packets were skipped: decode it again from its keyframe; the
        # skipped packets are delivered after all (the count goes back down)
        self._synced = True
        self._thin(-self._undecoded)
        self._undecoded = 0
        self._catching_up = True
        return tuple(self._gop), False

    # ------------------------------------------------------------------ frames
    def keep(self, t_s: float, raw_s: float | None = None) -> bool:
        """Whether to deliver the decoded frame at ``t_s`` (s, the source's time axis).

        False for the frames a catch-up re-decode of the GOP gives a second time (not
        after the last frame kept), for frames decoded after a frame taken back (the
        replay gives them again, in order), and, while quiet outside keyframe mode, for
        frames less than ``interval_s`` after the last frame kept (counted as thinned).

        ``raw_s`` is the frame's own stream time (s, the packets' clock; ``None`` if
        unknown).  With it, a frame delivered while quiet can be looked back from
        (:meth:`ActivityControl.look_back`) when the packets since the frame kept before
        it are held: in keyframe mode, the keyframe just decoded alone, whose GOP before
        is complete; otherwise, any frame of a GOP held from its keyframe.
        """
        c = self._control
        if c is not None and c._replay_pending():
            return False
        if self._catching_up:
            if self._last_kept is not None and t_s <= self._last_kept + 1e-9:
                return False
            self._catching_up = False
        if c is not None and c.quiet and not self.keyframe_mode:
            last = self._last_kept
            if last is not None and 0.0 <= t_s - last < c.interval_s - 1e-6:
                self._thin(1)
                return False
        if c is not None:
            self._before = (self._last_kept, self._last_kept_raw)
            self._between, self._since_kept = self._since_kept, 0
            c._offer(c.quiet and self._replayable(raw_s))
        self._last_kept, self._last_kept_raw = t_s, raw_s
        return True

    def _replayable(self, raw_s: float | None) -> bool:
        """Whether the frame kept now (stream time ``raw_s``) can be taken back: the
        packets from the frame kept before it up to now are held, from a keyframe."""
        before = self._last_kept_raw
        if raw_s is None or before is None or self._gop_t is None:
            return False
        if self.keyframe_mode:
            key_t, prev_t = self._drained_key_t, self._prev_gop_t
            return (
                key_t is not None
                and abs(raw_s - key_t) < 1e-6
                and self._prev_gop is not None
                and prev_t is not None
                and before >= prev_t - 1e-6
            )
        if not (self._gop_complete and self._synced):
            return False
        prev_t = self._prev_gop_t
        return before >= self._gop_t - 1e-6 or (
            self._prev_gop is not None and prev_t is not None and before >= prev_t - 1e-6
        )
