"""Motion gating: run the detector only on frames that may show something new.

Public API::

    from detectors.gating import MotionGate
    gate = MotionGate()                      # one per camera
    if gate.decide(stats.motion, frame.pts_s, has_tracks=bool(live_tracks)):
        detections = detector.detect([frame.image])[0]
    gate.detector_fraction                   # share of frames that went to the detector

Latency bound: an object that enters the view *without* producing motion above
``min_motion`` (too small, too slow, or appearing between two frames and then
standing still) is first looked at on the next heartbeat, so gating delays the start
of its events by at most ``heartbeat_s`` (plus one frame interval).  Anything that
moves is looked at on the same frame, and a camera with live tracks is looked at on
every frame, so tracks are never starved.
"""

from __future__ import annotations

import math

__all__ = ["MotionGate"]

_EPS_S = 1e-6  # tolerance on time comparisons (float rounding of timestamps)


class MotionGate:
    """Per-camera decision, frame by frame, whether the detector must run.

    The detector runs on a frame (``decide`` returns ``True``) when any of:

    * ``motion >= min_motion`` (something moves), or the last such frame was at most
      ``hold_s`` ago (keep looking for a while after motion stops: a person who
      stops walking is still detected and tracked);
    * ``has_tracks``: the camera has live tracks (the tracker needs every frame);
    * at least ``heartbeat_s`` passed since the detector last ran (the first frame
      always runs): a still scene is still checked regularly.

    Times are the frames' ``t_s`` in seconds (video pts), so the behaviour does not
    depend on the frame rate.  A ``t_s`` that goes backwards (stream restart) runs
    the detector and restarts the timing from there.

    Args:
        min_motion: Motion fraction (0..1, :attr:`detectors.scene.SceneStats.motion`)
            from which a frame counts as moving; default 0.001 (0.1 % of the picture,
            e.g. a 15x30 px pedestrian in 768x576).  0 runs every frame.
        heartbeat_s: Longest time without running the detector, s (> 0).
        hold_s: Time the detector keeps running after the last moving frame, s (>= 0).

    Attributes:
        frames_seen: Frames decided so far.
        frames_detected: Frames for which the detector was asked to run.

    Raises:
        ValueError: For an invalid argument; the message names it.
    """

    def __init__(
        self, min_motion: float = 0.001, heartbeat_s: float = 1.0, hold_s: float = 2.0
    ) -> None:
        if not (math.isfinite(min_motion) and 0.0 <= min_motion <= 1.0):
            raise ValueError(f"min_motion must be in [0, 1], got {min_motion!r}")
        if not (math.isfinite(heartbeat_s) and heartbeat_s > 0.0):
            raise ValueError(f"heartbeat_s must be > 0, got {heartbeat_s!r}")
        if not (math.isfinite(hold_s) and hold_s >= 0.0):
            raise ValueError(f"hold_s must be >= 0, got {hold_s!r}")
        self.min_motion = float(min_motion)
        self.heartbeat_s = float(heartbeat_s)
        self.hold_s = float(hold_s)
        self.frames_seen = 0
        self.frames_detected = 0
        self._last_motion: float | None = None
        self._last_run: float | None = None
        self._last_t: float | None = None

    @property
    def detector_fraction(self) -> float:
        """``frames_detected / frames_seen`` (0.0 before any frame)."""
        return self.frames_detected / self.frames_seen if self.frames_seen else 0.0

    def decide(self, motion: float, t_s: float, has_tracks: bool) -> bool:
        """Whether the detector must run on the frame at ``t_s``.

        Args:
            motion: The frame's motion fraction, 0..1 (NaN counts as moving: when the
                measure failed, look).
            t_s: The frame's time, seconds.
            has_tracks: Whether the camera currently has live tracks.

        Returns:
            ``True`` to run the detector on this frame.

        Raises:
            ValueError: For a non-finite ``t_s`` or a motion outside [0, 1].
        """
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        if not math.isnan(motion) and not 0.0 <= motion <= 1.0:
            raise ValueError(f"motion must be in [0, 1], got {motion!r}")
        self.frames_seen += 1
        if self._last_t is not None and t_s < self._last_t:  # stream restarted
            self._last_motion = self._last_run = None
        self._last_t = t_s
        moving = self.moving(motion)
        if moving:
            self._last_motion = t_s
        run = has_tracks or self._due(moving, t_s)
        if run:
            self._last_run = t_s
            self.frames_detected += 1
        return run

    def certain(self, motion: float, t_s: float) -> bool:
        """Whether :meth:`decide` would run the detector on this frame whatever
        ``has_tracks`` is (no state is changed): a runner may then gate the frame before
        the camera's previous frames have been through the tracker.

        Raises:
            ValueError: For a non-finite ``t_s``.
        """
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        if self._last_t is not None and t_s < self._last_t:
            return True  # stream restarted: decide() runs the detector
        return self._due(self.moving(motion), t_s)

    def _due(self, moving: bool, t_s: float) -> bool:
        """The detector is due at ``t_s`` without counting tracks: motion now or within
        ``hold_s``, the first frame, or the heartbeat."""
        last_motion, last_run = self._last_motion, self._last_run
        return (
            moving
            or (last_motion is not None and t_s - last_motion <= self.hold_s + _EPS_S)
            or last_run is None
            or t_s - last_run >= self.heartbeat_s - _EPS_S
        )

    def moving(self, motion: float) -> bool:
        """Whether a frame with this ``motion`` fraction counts as moving (NaN does: when
        the measure failed, look)."""
        return math.isnan(motion) or motion >= self.min_motion

    def idle(self, t_s: float, has_tracks: bool) -> bool:
        """Whether, at ``t_s`` (s), only the heartbeat would run the detector: no live
        track and no moving frame within ``hold_s``.  An idle camera can be decoded
        sparsely (activity-driven decoding, :class:`ingest.ActivityControl`)."""
        if has_tracks:
            return False
        last = self._last_motion
        return last is None or t_s - last > self.hold_s + _EPS_S
