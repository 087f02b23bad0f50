"""Cheap per-frame picture measures: motion, camera health, foreground blobs.

Computed on a small grey thumbnail of every decoded frame, on the camera's decode
thread (off the detector's critical path).  The selector turns these numbers into
camera-health events and the runner uses ``motion`` to decide which frames need the
detector (see :class:`detectors.gating.MotionGate`).

Public API::

    from detectors.scene import SceneAnalyzer, SceneStats
    scene = SceneAnalyzer()                      # one per camera
    stats = scene.analyze(frame.image, frame.pts_s)   # every frame, ~1.5 ms at 768x576

How it works (all on the thumbnail, see :class:`SceneAnalyzer` for the time constants):

* **Short-term background** ``S``: running average with time constant ``motion_tau_s``.
  ``motion`` is the fraction of pixels that differ from it after removing the global
  gain (so a light switching on or an auto-exposure step is not motion for more than
  about ``2 * motion_tau_s``), with a threshold that grows with the local brightness.
* **Long-term background** ``B``: the per-pixel median of a few thumbnails sampled over
  the first ``warmup_s`` seconds (robust to people walking through), then updated
  *selectively*: pixels that match it follow the scene with time constant
  ``background_tau_s`` (slow lighting changes); pixels that differ from it are frozen,
  so a left object is never blended in by the running average.
* **Static objects** (dual background): a pixel that differs from ``B`` (long-term
  foreground) but no longer from ``S`` (it stopped changing) accumulates "still" time;
  while something moves over it (foreground in both) the count is held (occlusion by
  passers-by); when it matches ``B`` again the count drops below the static level at
  once.  Pixels still for ``static_after_s`` form the static objects; pixels still for
  ``absorb_after_s`` are copied into ``B`` (the object becomes background).
* **Colour**: beside the grey thumbnail, two opponent-colour channels (``R - G`` and
  ``(R + G) / 2 - B``) have their own long-term background ``C``.  A pixel also
  differs from the background when its colour does, after scaling ``C`` by the
  pixel's own brightness ratio (a shadow darkens every channel alike) and removing
  the frame's median colour shift (white balance, dusk): a yellow coat on grey
  paving of the same brightness is an object; a shadow on grass is not.
* **Ghosts**: a static blob whose outline shows in ``B`` but not in the frame is the
  trace of something that left (a person standing during the warm-up, a car driving
  off); it is copied into ``B`` at once instead of being reported.
* **Light patches**: a static blob whose colour did not change and whose fine texture
  is the background's own (correlation of the high-passed frame and ``B`` over the
  blob at least ``LIGHT_TEXTURE_CORR``), or whose surroundings darkened or brightened
  with it (no edge: ``LIGHT_RING_SHARE``), is the same ground under other light (a
  cloud's shadow, a sunlit patch); it is copied into ``B`` at once instead of being
  reported.  A new object replaces the texture under it and ends at its outline.
  Measured on the accuracy benchmark's footage: texture correlation -0.47..0.25 and
  ring share -0.04..0.06 for the objects left on paving and grass; for the static blobs
  of a busy scene under moving clouds, one test or the other holds for all but a few
  (people standing, which the rules tell apart).
* **Reference** ``R`` for camera health, on the thumbnail halved again (96x72 for
  768x576): running average (time constant ``reference_tau_s``) of the frames that
  match it.  ``reference_similarity`` is the correlation of the edge maps
  (log(1 + gradient magnitude)) of the frame and ``R``; ``shift_px`` is the phase
  correlation peak of the same maps; ``blank_fraction`` is the share of the
  reference's textured cells whose texture, relative to the picture's mean level,
  collapsed (lens covered: a darker picture of the same scene keeps its relative
  texture).  A frame that does not match ``R`` (similarity < 0.5, shift >= 1 % of
  the width, blank or uniform) does not update ``R``, ``B`` or the still counts and
  gets empty ``foreground``/``static_objects``.  A view that stays different from
  ``R`` (but not blank) for ``relearn_s`` becomes the new reference and the
  backgrounds are learnt again (camera re-aimed for good).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from detectors.detections import Detections

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def _f32(a: Any) -> F32:
    """An OpenCV result known to be float32, typed as such (no conversion)."""
    return cast(F32, a)


def _u8(a: Any) -> U8:
    """An OpenCV result known to be uint8, typed as such (no conversion)."""
    return cast(U8, a)


# --------------------------------------------------------------------------- constants
# Internal constants (documented here rather than exposed: they rarely need tuning).

GAIN_MIN_LEVEL = np.float32(8.0)
"""Background level (grey) below which the gain estimate divides by this instead (the
ratio of near-black pixels is dominated by noise)."""

GAIN_RANGE = (0.25, 4.0)
"""Clamp of the global gain estimate frame / background."""

WARMUP_SAMPLES = 9
"""Thumbnails sampled, evenly over ``warmup_s``, whose median starts the long-term
background."""

STILL_DECAY = 1.0
"""Rate (s of still-time per s) at which a pixel that matches the long-term background
again loses its still-time, after dropping just below ``static_after_s``."""

GRID = (8, 6)
"""Cells (columns, rows) of the coarse texture grid used for ``blank_fraction``."""

LEVEL_FLOOR = 16.0
"""Grey level below which the picture's mean level is taken as this (relative texture
of a black picture)."""

CELL_TEXTURE_MIN = 0.08
"""A reference cell is *textured* when its mean gradient magnitude (|gx| + |gy| of a 3x3
Sobel on the half thumbnail, about 4x the grey-level step per pixel) divided by the
picture's mean grey level is at least this (0.2..2.5 on the vtest plaza)."""

BLANK_RATIO = 0.25
"""A textured reference cell counts as blank when the frame's texture there fell below
this fraction of the reference's."""

REFERENCE_MIN_TEXTURE = 8.0
"""Mean gradient magnitude (same units) a frame needs to be adopted as the first
reference, and to have its ``shift_px`` measured (0 otherwise: nothing to register)."""

GHOST_EDGE_RATIO = 0.6
"""A static blob whose outline is weaker than this fraction in the frame than in the
long-term background is a ghost (see :meth:`SceneAnalyzer._drop_ghosts`)."""

REFERENCE_MATCH_SIMILARITY = 0.5
"""Frames at least this similar to the reference (and not shifted, not blank) update it
and count as a trustworthy view for the foreground models."""

REFERENCE_MATCH_SHIFT = 0.01
"""... and shifted by less than this fraction of the frame width."""

VIEW_BLANK_MAX = 0.5
"""A frame with ``blank_fraction`` at or above this is not a normal view."""

VIEW_CONTRAST_MIN = 3.0
"""A frame with a grey standard deviation below this (grey levels) is not a normal
view (uniform picture)."""

CHROMA_THRESHOLD = np.float32(16.0)
"""Opponent-colour difference (``|d(R - G)| + |d((R + G) / 2 - B)|``, 0..255 levels per
channel) above which a thumbnail pixel's colour differs from the background's."""

CHROMA_RELATIVE = np.float32(0.3)
"""... plus this share of the background's own colour magnitude: a saturated surface (a
teal sign) flickers more in colour under video compression than grey paving does."""

LOCAL_LO, LOCAL_HI = np.float32(0.25), np.float32(4.0)
"""Clamp of a pixel's own brightness ratio frame / background, used to scale the
background's colour (shadows and light patches keep a surface's hue)."""

LIGHT_TEXTURE_CORR = 0.35
"""A static blob whose high-passed frame correlates with the high-passed background at
least this much, over the blob, is a light patch or a shadow, not an object."""

LIGHT_RING_SHARE = 0.5
"""... or whose surroundings changed brightness at least this share as much as it did
(measured: 0.64..1.09 for most cloud-shadow blobs, -0.04..0.06 for objects left)."""

LIGHT_MAX_COLOUR = 0.5
"""... unless at least this fraction of its pixels changed colour."""


@dataclass(frozen=True, slots=True)
class SceneStats:
    """Measures of one frame, from its thumbnail (see :class:`SceneAnalyzer`).

    Attributes:
        motion: Fraction of thumbnail pixels that differ from the running background
            (0..1); 0 for a still scene.
        brightness: Mean grey level, 0..255.
        contrast: Standard deviation of the grey level, 0..255.
        sharpness: Variance of the Laplacian of the thumbnail (higher is sharper).
        frame_diff: Mean absolute grey difference to the previous frame, 0..255
            (about 0 for a frozen picture).
        shift_px: Displacement of the picture against the long-term reference, in
            full-frame pixels (0 for a camera that has not moved; 0 too for a picture
            without structure to register, e.g. black).  Measurement noise on a busy
            scene: up to about 1 % of the width.
        reference_similarity: Correlation of the edges of the frame with those of the
            long-term reference, -1..1 (about 0.8..0.95 for the same view with people
            walking, below 0.5 when the view changed or is covered).
        foreground: Blobs differing from the long-term background, boxes in full-frame
            pixels, ``class_id = -1`` (unclassified); empty when not computed.
        static_objects: Foreground blobs that have not moved for the analyser's
            ``static_after_s`` seconds (new stationary objects), same form.
        blank_fraction: Fraction (0..1) of the reference's textured grid cells whose
            texture collapsed (below a quarter of the reference's): high when the lens
            is covered, even partly (a hand over most of the view), or blinded; 0
            while no reference exists.
    """

    motion: float
    brightness: float
    contrast: float
    sharpness: float
    frame_diff: float
    shift_px: float = 0.0
    reference_similarity: float = 1.0
    foreground: Detections | None = None
    static_objects: Detections | None = None
    blank_fraction: float = 0.0


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _alpha(dt: float, tau: float) -> float:
    """Weight of the new sample in a running average of time constant ``tau`` (s)."""
    return 1.0 - math.exp(-dt / tau) if dt > 0.0 else 0.0


def _gradient_magnitude(img: F32, sigma: float = 0.0) -> F32:
    """|gx| + |gy| (3x3 Sobel, grey levels per px x 4) of ``img``, first blurred with
    ``sigma`` px when > 0: edge strength, same shape as ``img``."""
    if sigma > 0.0:
        img = _f32(cv2.GaussianBlur(img, (0, 0), sigma))
    gx = _f32(cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3))
    gy = _f32(cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3))
    return np.abs(gx) + np.abs(gy)


def _edges(mag: F32) -> F32:
    """log(1 + magnitude): edge map whose strong edges (people, kerbs) do not swamp the
    weak ones, for the similarity and the phase correlation."""
    return _f32(cv2.log(mag + np.float32(1.0)))


def _correlation(a: F32, b: F32) -> float:
    """Pearson correlation of two same-shape maps; 0 when either is constant."""
    x = a.reshape(-1) - float(a.mean())
    y = b.reshape(-1) - float(b.mean())
    den = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    return float(np.dot(x, y)) / den if den > 1e-6 else 0.0


def _gain(frame: F32, background: F32) -> float:
    """Robust global gain frame / background: the median ratio over a 1-in-16 pixel
    subsample (background floored at ``GAIN_MIN_LEVEL``), clamped to ``GAIN_RANGE``."""
    ratio = (frame[::4, ::4] / np.maximum(background[::4, ::4], GAIN_MIN_LEVEL)).ravel()
    k = ratio.size // 2
    g = float(np.partition(ratio, k)[k])
    return min(max(g, GAIN_RANGE[0]), GAIN_RANGE[1])


class SceneAnalyzer:
    """Per-camera picture measures, from a grey thumbnail of every frame.

    One instance per camera, fed every decoded frame in order, single-threaded.  Costs
    about 1.5 ms per 768x576 frame (``benchmarks/scene_cost.py``; 2-core VM).

    The thumbnail is the grey frame shrunk by the integer factor
    ``f = max(1, min(width // thumb_width, height))`` (pixel averaging; the last ``width % f``
    columns and ``height % f`` rows are ignored), so it is at least ``thumb_width``
    pixels wide (192x144 for 768x576).  Boxes and shifts are reported in full-frame
    pixels (thumbnail pixels times ``f``).

    Time constants (all in seconds of ``t_s``, independent of the frame rate):

    * ``motion_tau_s``: short-term background.  A moving object shows as motion; one
      that stops blends into it within about ``2 * motion_tau_s`` (so does a local
      lighting change; a global one is removed at once by gain normalisation).
    * ``warmup_s``: the long-term background is the median of thumbnails sampled
      over this long; until then ``foreground`` and ``static_objects`` are empty.
    * ``background_tau_s``: pixels matching the long-term background follow slow
      lighting changes with this time constant (default 2 minutes); pixels that
      differ from it are not updated at all.
    * ``static_after_s``: a new object is reported in ``static_objects`` once it has
      been still (in the long-term foreground, no longer in the short-term one) for
      this long: about ``static_after_s + 2 * motion_tau_s`` after it was put down
      (the short-term background must first take it in).  People passing in front of
      it do not reset the count.
    * ``absorb_after_s``: after this long still, the object's pixels are copied into
      the long-term background and it stops being reported (default ``6 *
      static_after_s``; at least ``2 * static_after_s``).
    * ``reference_tau_s``: the health reference follows slow changes of a matching
      view (dusk, shadows) with this time constant.
    * ``relearn_s``: a view that stays different from the reference (not blank, not
      uniform) for this long becomes the new reference and both backgrounds are learnt
      again (camera re-aimed for good); meanwhile ``foreground`` and
      ``static_objects`` are empty and the still counts are held.

    Args:
        thumb_width: Minimum thumbnail width, px (>= 16).
        motion_tau_s: Short-term background time constant, s (> 0).
        background_tau_s: Long-term background time constant, s (> 0).
        warmup_s: Long-term background learning time, s (> 0).
        static_after_s: Still time before an object is static, s (> 0).
        absorb_after_s: Still time before an object becomes background, s
            (>= 2 * static_after_s); ``None``: ``6 * static_after_s``.
        reference_tau_s: Health reference time constant, s (> 0).
        relearn_s: Time a changed view needs to become the reference, s (> 0).
        threshold: Minimum grey difference (0..255 levels, after gain normalisation)
            for a thumbnail pixel to differ from a background (> 0).
        relative_threshold: Added to ``threshold`` times the background's grey level
            (noise and texture grow with brightness), >= 0.
        min_area_px: Minimum blob area in full-frame pixels^2 for ``foreground`` and
            ``static_objects`` (>= 0).

    Raises:
        ValueError: For an invalid argument; the message names it.
    """

    def __init__(
        self,
        *,
        thumb_width: int = 160,
        motion_tau_s: float = 1.0,
        background_tau_s: float = 120.0,
        warmup_s: float = 8.0,
        static_after_s: float = 10.0,
        absorb_after_s: float | None = None,
        reference_tau_s: float = 60.0,
        relearn_s: float = 300.0,
        threshold: float = 12.0,
        relative_threshold: float = 0.06,
        min_area_px: float = 300.0,
    ) -> None:
        if isinstance(thumb_width, bool) or not isinstance(thumb_width, int) or thumb_width < 16:
            raise ValueError(f"thumb_width must be an int >= 16, got {thumb_width!r}")
        self.thumb_width = thumb_width
        self.motion_tau_s = _positive("motion_tau_s", motion_tau_s)
        self.background_tau_s = _positive("background_tau_s", background_tau_s)
        self.warmup_s = _positive("warmup_s", warmup_s)
        self.static_after_s = _positive("static_after_s", static_after_s)
        if absorb_after_s is None:
            absorb_after_s = 6.0 * self.static_after_s
        absorb = _positive("absorb_after_s", absorb_after_s)
        if absorb < 2.0 * self.static_after_s:
            raise ValueError(
                f"absorb_after_s must be >= 2 * static_after_s = {2 * self.static_after_s}, "
                f"got {absorb_after_s!r}"
            )
        self.absorb_after_s = absorb
        self.reference_tau_s = _positive("reference_tau_s", reference_tau_s)
        self.relearn_s = _positive("relearn_s", relearn_s)
        self.threshold = _positive("threshold", threshold)
        self.relative_threshold = _non_negative("relative_threshold", relative_threshold)
        self.min_area_px = _non_negative("min_area_px", min_area_px)
        self._kernel = np.ones((3, 3), np.uint8)
        self._ring_kernel = np.ones((5, 5), np.uint8)
        self._frame_shape: tuple[int, int] | None = None
        self._t: float | None = None
        self.reset()

    # ------------------------------------------------------------------ state

    def checkpoint(self) -> object:
        """A copy of everything learnt, for :meth:`rollback` (thumbnail-sized arrays: about
        0.2 ms for 768x576 frames)."""
        return copy.deepcopy(self.__dict__)

    def rollback(self, checkpoint: object) -> None:
        """Return to the state of ``checkpoint`` (from :meth:`checkpoint` on this analyser):
        the frames analysed since are forgotten, as if never seen (a runner that takes a
        frame back to replay the frames before it first)."""
        assert isinstance(checkpoint, dict)
        self.__dict__.update(copy.deepcopy(checkpoint))

    def reset(self) -> None:
        """Forget everything learnt (backgrounds, reference, counters)."""
        self._frame_shape = None
        self._t = None
        self._factor = 1
        self._window: F32 | None = None
        self._prev: F32 | None = None
        self._short: F32 | None = None
        self._reset_reference()
        self._reset_background()

    def _reset_reference(self) -> None:
        self._ref: F32 | None = None
        self._ref_edges: F32 | None = None
        self._ref_cells: F32 | None = None
        self._mismatch_s = 0.0

    def _reset_background(self) -> None:
        self._long: F32 | None = None
        self._long_c: F32 | None = None  # (h, w, 2) opponent colour of the background
        self._still: F32 | None = None
        self._samples: list[F32] = []
        self._samples_c: list[F32] = []
        self._warm_start: float | None = None
        self._next_sample = -math.inf

    @property
    def factor(self) -> int:
        """Decimation factor: full-frame pixels per thumbnail pixel (1 before a frame)."""
        return self._factor

    @property
    def background_ready(self) -> bool:
        """Whether the long-term background has been learnt (warm-up over)."""
        return self._long is not None

    # ------------------------------------------------------------------ main

    def analyze(self, image: npt.NDArray[np.uint8], t_s: float) -> SceneStats:
        """Measure one frame and update the models.

        Args:
            image: The decoded frame, shape ``(H, W, 3)`` uint8 BGR (``(H, W)`` grey is
                accepted too).  A frame of another size than the previous one restarts
                every model.
            t_s: Its time, seconds (video pts); should not decrease (a decrease counts
                as no time elapsed).

        Returns:
            The frame's :class:`SceneStats`; ``foreground`` and ``static_objects`` are
            always set (empty during warm-up or while the view is not trustworthy).

        Raises:
            ValueError: For an image that is not uint8 (H, W, 3) / (H, W), or a
                non-finite ``t_s``.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError("image must be a uint8 numpy array")
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
            raise ValueError(f"image must have shape (H, W, 3) or (H, W), got {image.shape}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image is empty: {image.shape}")
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        h, w = int(image.shape[0]), int(image.shape[1])
        if self._frame_shape != (h, w):
            self.reset()
            self._frame_shape = (h, w)
            self._factor = max(1, min(w // self.thumb_width, h))
        dt = 0.0 if self._t is None else max(0.0, t_s - self._t)
        self._t = t_s if self._t is None else max(self._t, t_s)

        thumb, chroma = self._thumbnail(image)
        mean, std = cv2.meanStdDev(thumb)
        brightness, contrast = float(mean[0, 0]), float(std[0, 0])
        _, lap_std = cv2.meanStdDev(cv2.Laplacian(thumb, cv2.CV_32F))
        sharpness = float(lap_std[0, 0]) ** 2
        frame_diff = 0.0
        if self._prev is not None:
            frame_diff = float(cv2.norm(thumb, self._prev, cv2.NORM_L1)) / thumb.size
        self._prev = thumb

        motion, moving = self._motion(thumb, dt)
        shift, similarity, blank, view_ok = self._health(thumb, dt, contrast)
        foreground, static = self._objects(thumb, chroma, moving, dt, t_s, view_ok)
        return SceneStats(
            motion=motion,
            brightness=brightness,
            contrast=contrast,
            sharpness=sharpness,
            frame_diff=frame_diff,
            shift_px=shift,
            reference_similarity=similarity,
            foreground=foreground,
            static_objects=static,
            blank_fraction=blank,
        )

    def _thumbnail(self, image: npt.NDArray[np.uint8]) -> tuple[F32, F32 | None]:
        """(grey, colour) float32 thumbnails: grey ``(H // f, W // f)`` 0..255, and the
        opponent colour ``(H // f, W // f, 2)`` (``R - G``, ``(R + G) / 2 - B``; ``None``
        for a grey image)."""
        f = self._factor
        th, tw = image.shape[0] // f, image.shape[1] // f
        small_u8 = np.ascontiguousarray(image[: th * f, : tw * f])
        while f > 1:  # halving steps take OpenCV's fast 2x2 path (about 5x faster)
            step = 2 if f % 2 == 0 else f
            size = (small_u8.shape[1] // step, small_u8.shape[0] // step)
            small_u8 = _u8(cv2.resize(small_u8, size, interpolation=cv2.INTER_AREA))
            f //= step
        small = small_u8.astype(np.float32)
        if small.ndim == 2:
            return small, None
        grey = _f32(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        b, g, r = cv2.split(small)
        chroma = _f32(cv2.merge([r - g, (r + g) * np.float32(0.5) - b]))
        return grey, chroma

    def _colour_differs(self, thumb: F32, chroma: F32, gain: float) -> U8:
        """Pixels whose colour differs from the background's: 0/255 mask.

        The background colour ``C`` is scaled by the pixel's own brightness ratio
        (clamped to ``LOCAL_LO..LOCAL_HI``) and the frame's median residual per channel
        (a global colour cast) is removed before thresholding at ``CHROMA_THRESHOLD`` plus
        ``CHROMA_RELATIVE`` times the expected colour's magnitude.
        """
        assert self._long is not None and self._long_c is not None
        level = np.maximum(self._long * np.float32(gain), GAIN_MIN_LEVEL)
        local = np.minimum(np.maximum(thumb / level, LOCAL_LO), LOCAL_HI)
        expected = self._long_c * local[:, :, None]
        residual = chroma - expected
        sample = residual[::4, ::4].reshape(-1, 2)
        k = len(sample) // 2
        c0, c1 = (np.float32(np.partition(sample[:, c], k)[k]) for c in (0, 1))
        diff = np.abs(residual[:, :, 0] - c0) + np.abs(residual[:, :, 1] - c1)
        limit = CHROMA_THRESHOLD + CHROMA_RELATIVE * (
            np.abs(expected[:, :, 0]) + np.abs(expected[:, :, 1])
        )
        out: U8 = (diff > limit).astype(np.uint8) * np.uint8(255)
        return out

    def _differs(self, thumb: F32, background: F32, gain: float) -> U8:
        """Pixels differing from ``background * gain``: 0/255 mask."""
        scaled = background * np.float32(gain)
        diff = cv2.absdiff(thumb, scaled)
        limit = scaled * np.float32(self.relative_threshold) + np.float32(self.threshold)
        return _u8(cv2.compare(diff, limit, cv2.CMP_GT))

    def _motion(self, thumb: F32, dt: float) -> tuple[float, U8]:
        """Motion fraction and the raw moving mask (0/255) against the short-term model."""
        if self._short is None:
            self._short = thumb.copy()
            return 0.0, np.zeros(thumb.shape, np.uint8)
        moving = self._differs(thumb, self._short, _gain(thumb, self._short))
        cleaned = cv2.morphologyEx(moving, cv2.MORPH_OPEN, self._kernel)
        motion = cv2.countNonZero(cleaned) / thumb.size
        cv2.accumulateWeighted(thumb, self._short, _alpha(dt, self.motion_tau_s))
        return float(motion), moving

    def _health(self, thumb: F32, dt: float, contrast: float) -> tuple[float, float, float, bool]:
        """(shift_px, reference_similarity, blank_fraction, view_ok) against the reference.

        Works on the thumbnail halved again (96x72 for 768x576): plenty for whole-view
        measures, and phase correlation costs a quarter.
        """
        small = self._half(thumb)
        mag = _gradient_magnitude(small)
        edges = _edges(mag)
        # Texture per cell relative to the overall light level: a darker (or brighter)
        # picture of the same scene keeps its relative texture; a covered one loses it.
        level = max(float(small.mean()), LEVEL_FLOOR)
        cells = _f32(cv2.resize(mag, GRID, interpolation=cv2.INTER_AREA)) / np.float32(level)
        if self._ref is None or self._ref_edges is None or self._ref_cells is None:
            if float(mag.mean()) >= REFERENCE_MIN_TEXTURE and contrast >= VIEW_CONTRAST_MIN:
                self._set_reference(small, edges, cells)
            # no reference yet (too little texture to judge): trust any non-uniform view
            return 0.0, 1.0, 0.0, contrast >= VIEW_CONTRAST_MIN
        similarity = _correlation(edges, self._ref_edges)
        if self._window is None:
            self._window = _f32(
                cv2.createHanningWindow((small.shape[1], small.shape[0]), cv2.CV_32F)
            )
        # Window into fresh arrays: OpenCV 4.14's phaseCorrelate multiplies its inputs
        # by the window in place.
        (dx, dy), _ = cv2.phaseCorrelate(
            cv2.multiply(self._ref_edges, self._window), cv2.multiply(edges, self._window)
        )
        scale = self._factor * thumb.shape[1] / small.shape[1]
        structured = float(mag.mean()) >= REFERENCE_MIN_TEXTURE
        shift = math.hypot(dx, dy) * scale if structured else 0.0
        textured = self._ref_cells >= CELL_TEXTURE_MIN
        n_textured = int(np.count_nonzero(textured))
        blank = 0.0
        if n_textured:
            flat = textured & (cells < BLANK_RATIO * self._ref_cells)
            blank = int(np.count_nonzero(flat)) / n_textured
        normal = blank < VIEW_BLANK_MAX and contrast >= VIEW_CONTRAST_MIN
        matches = (
            normal
            and similarity >= REFERENCE_MATCH_SIMILARITY
            and shift < REFERENCE_MATCH_SHIFT * thumb.shape[1] * self._factor
        )
        if matches:
            self._mismatch_s = 0.0
            cv2.accumulateWeighted(small, self._ref, _alpha(dt, self.reference_tau_s))
            ref_mag = _gradient_magnitude(self._ref)
            self._ref_edges = _edges(ref_mag)
            ref_level = max(float(self._ref.mean()), LEVEL_FLOOR)
            self._ref_cells = _f32(
                cv2.resize(ref_mag, GRID, interpolation=cv2.INTER_AREA)
            ) / np.float32(ref_level)
        elif normal:
            self._mismatch_s += dt
            if self._mismatch_s >= self.relearn_s:  # re-aimed for good: a new normal
                self._set_reference(small, edges, cells)
                self._reset_background()
        return shift, similarity, blank, matches

    @staticmethod
    def _half(thumb: F32) -> F32:
        """The thumbnail at half size (unchanged when narrower than 64 px)."""
        if thumb.shape[1] < 64 or thumb.shape[0] < 2:
            return thumb
        size = (thumb.shape[1] // 2, thumb.shape[0] // 2)
        return _f32(cv2.resize(thumb, size, interpolation=cv2.INTER_AREA))

    def _set_reference(self, small: F32, edges: F32, cells: F32) -> None:
        self._ref = small.copy()
        self._ref_edges = edges
        self._ref_cells = cells
        self._mismatch_s = 0.0

    def _objects(
        self, thumb: F32, chroma: F32 | None, moving: U8, dt: float, t_s: float, view_ok: bool
    ) -> tuple[Detections, Detections]:
        """(foreground, static_objects) against the long-term background."""
        if not view_ok:  # covered, moved or uniform: the models would learn garbage
            return Detections.empty(), Detections.empty()
        if self._long is None or self._still is None:
            self._warm_up(thumb, chroma, t_s)
            return Detections.empty(), Detections.empty()
        if (chroma is None) != (self._long_c is None):  # colour <-> grey: relearn
            self._reset_background()
            self._warm_up(thumb, chroma, t_s)
            return Detections.empty(), Detections.empty()
        gain = _gain(thumb, self._long)
        differs = self._differs(thumb, self._long, gain)
        colour: U8 | None = None
        if chroma is not None:
            colour = self._colour_differs(thumb, chroma, gain)
            differs = _u8(cv2.bitwise_or(differs, colour))
        fg = differs > 0
        # Still time: + dt where long-term foreground and not moving; held where both
        # (something passes in front); where the background shows again, just below the
        # static level at once, then draining at STILL_DECAY.
        still = self._still
        drained = np.maximum(np.minimum(still, self.static_after_s - 1e-3) - STILL_DECAY * dt, 0)
        still = np.where(fg, np.where(moving == 0, still + np.float32(dt), still), drained)
        self._still = still = still.astype(np.float32, copy=False)
        absorbed = still >= self.absorb_after_s
        if absorbed.any():
            self._absorb(thumb, chroma, absorbed, gain)
        alpha, matching = _alpha(dt, self.background_tau_s), cv2.bitwise_not(differs)
        cv2.accumulateWeighted(thumb, self._long, alpha, mask=matching)
        if chroma is not None and self._long_c is not None:
            cv2.accumulateWeighted(chroma, self._long_c, alpha, mask=matching)
        opened = cv2.morphologyEx(differs, cv2.MORPH_OPEN, self._kernel)
        blobs = _u8(cv2.morphologyEx(opened, cv2.MORPH_CLOSE, self._kernel))
        static_px = still >= self.static_after_s
        if not static_px.any():
            return self._boxes(blobs), Detections.empty()
        static_mask = static_px.astype(np.uint8) * np.uint8(255)
        static_mask = _u8(cv2.morphologyEx(static_mask, cv2.MORPH_CLOSE, self._kernel))
        static = self._boxes(static_mask)
        if len(static):
            static = self._drop_not_objects(thumb, chroma, colour, static, static_mask, gain)
        return self._boxes(blobs), static

    def _absorb(
        self, thumb: F32, chroma: F32 | None, pixels: npt.NDArray[np.bool_], gain: float
    ) -> None:
        """Copy ``pixels`` of the frame into the long-term background; reset their count."""
        assert self._long is not None and self._still is not None
        self._long[pixels] = thumb[pixels] / np.float32(gain)
        if chroma is not None and self._long_c is not None:
            self._long_c[pixels] = chroma[pixels] / np.float32(gain)
        self._still[pixels] = 0.0

    def _drop_not_objects(
        self,
        thumb: F32,
        chroma: F32 | None,
        colour: U8 | None,
        static: Detections,
        mask: U8,
        gain: float,
    ) -> Detections:
        """Absorb static blobs that are *ghosts* or *light patches*; return the others.

        A ghost is the trace of something that was in the long-term background and
        left (a person standing during the warm-up, a car driving off): the background
        shows it, the frame does not.  Told apart by edges along the blob's outline
        (a 3 px band): a new object brings its outline into the frame, a ghost's
        outline is only in the background.  A blob whose outline is less than
        ``GHOST_EDGE_RATIO`` as strong in the frame as in the background is absorbed.

        A light patch (a cloud's shadow, a sunlit patch) is the background's own ground
        under other light (see :meth:`_light_patch`).  It is absorbed too.
        """
        assert self._long is not None
        f = self._factor
        keep: list[int] = []
        h, w = thumb.shape
        for i, box in enumerate(static.xyxy):
            x1, y1 = max(int(box[0]) // f - 3, 0), max(int(box[1]) // f - 3, 0)
            x2, y2 = min(int(box[2]) // f + 3, w), min(int(box[3]) // f + 3, h)
            m = mask[y1:y2, x1:x2]
            seen_img = thumb[y1:y2, x1:x2]
            learnt_img = self._long[y1:y2, x1:x2] * np.float32(gain)
            band = cv2.subtract(cv2.dilate(m, self._kernel), cv2.erode(m, self._kernel))
            band[:1], band[-1:], band[:, :1], band[:, -1:] = 0, 0, 0, 0  # Sobel edge effects
            seen = _gradient_magnitude(seen_img, 1.0)
            learnt = _gradient_magnitude(learnt_img, 1.0)
            e_seen = float(cv2.mean(seen, mask=band)[0])
            e_learnt = float(cv2.mean(learnt, mask=band)[0])
            ghost = e_seen < GHOST_EDGE_RATIO * e_learnt
            if not ghost and not self._light_patch(seen_img, learnt_img, m, colour, x1, y1):
                keep.append(i)
                continue
            region = np.zeros(thumb.shape, bool)
            region[y1:y2, x1:x2] = m > 0
            self._absorb(thumb, chroma, region, gain)
        return static[np.asarray(keep, np.int64)] if len(keep) < len(static) else static

    def _light_patch(
        self, seen: F32, learnt: F32, m: U8, colour: U8 | None, x1: int, y1: int
    ) -> bool:
        """Whether the blob ``m`` (0/255, window at ``(x1, y1)``) is a light patch.

        Over the blob's pixels its colour did not change (fewer than
        ``LIGHT_MAX_COLOUR`` of them differ in colour), and either

        * the light change has no edge: in a 1-pixel ring just outside the blob's
          outline, the median brightness ratio frame / background has moved at least
          ``LIGHT_RING_SHARE`` of the way the blob's own did (a cloud's soft shadow
          fades out; an object ends at its outline, the ground around it unchanged), or
        * its fine texture is the background's: the correlation of the high-passed
          frames (each minus its 1.5 px Gaussian blur) is at least
          ``LIGHT_TEXTURE_CORR`` over the blob, and over the blob dilated by one pixel
          (its outline, where a flat object's mixed border pixels alone would
          correlate, must agree).  Soft-edged patches (clouds)
        pass; a sharp-edged shadow's own edge can swamp the texture where it crosses
        the blob, and a patch on ground without texture cannot be told from an
        object: both are kept (reported), never dropped by mistake the other way.
        """
        inside = m > 0
        if colour is not None:
            win = colour[y1 : y1 + m.shape[0], x1 : x1 + m.shape[1]]
            changed = int(np.count_nonzero(win[inside]))
            if changed >= LIGHT_MAX_COLOUR * max(int(np.count_nonzero(inside)), 1):
                return False
        around = cv2.dilate(m, self._kernel) > 0
        ring = (cv2.dilate(m, self._ring_kernel) > 0) & ~around
        if ring.any():
            ratio = (seen + np.float32(1.0)) / (learnt + np.float32(1.0))
            r_in, r_ring = float(np.median(ratio[inside])), float(np.median(ratio[ring]))
            if abs(r_in - 1.0) >= 0.05 and (r_ring - 1.0) / (r_in - 1.0) >= LIGHT_RING_SHARE:
                return True
        hs = seen - _f32(cv2.GaussianBlur(seen, (0, 0), 1.5))
        hl = learnt - _f32(cv2.GaussianBlur(learnt, (0, 0), 1.5))
        return (
            min(_correlation(hs[inside], hl[inside]), _correlation(hs[around], hl[around]))
            >= LIGHT_TEXTURE_CORR
        )

    def _warm_up(self, thumb: F32, chroma: F32 | None, t_s: float) -> None:
        """Sample thumbnails over ``warmup_s``; their median starts the long-term model."""
        if self._warm_start is None:
            self._warm_start = t_s
        if t_s >= self._next_sample:
            self._samples.append(thumb.copy())
            if chroma is not None:
                self._samples_c.append(chroma.copy())
            self._next_sample = t_s + self.warmup_s / (WARMUP_SAMPLES - 1)
        if t_s - self._warm_start >= self.warmup_s and len(self._samples) >= 3:
            stack = np.stack(self._samples)
            self._long = np.median(stack, axis=0).astype(np.float32)
            self._long_c = None
            if chroma is not None and len(self._samples_c) == len(self._samples):
                self._long_c = np.median(np.stack(self._samples_c), axis=0).astype(np.float32)
            self._still = np.zeros(thumb.shape, np.float32)
            self._samples = []
            self._samples_c = []

    def _boxes(self, mask: U8) -> Detections:
        """Outer blobs of a 0/255 mask as unclassified detections, full-frame px.

        Box ``[x1, y1, x2, y2]`` = blob bounds times the factor (``x2``/``y2``
        exclusive); score = fraction of the box that is set in ``mask``; ``class_id``
        -1; sorted top to bottom, then left to right.  Blobs with fewer set pixels in
        their box than ``min_area_px`` (in thumbnail pixels) are dropped.
        """
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        f = self._factor
        min_area = max(self.min_area_px / (f * f), 1.0)
        rows: list[tuple[int, int, int, int, float]] = []
        for c in contours:
            bx, by, bw, bh = cv2.boundingRect(c)
            area = cv2.countNonZero(mask[by : by + bh, bx : bx + bw])
            if area >= min_area:
                rows.append((by, bx, bw, bh, area / (bw * bh)))
        if not rows:
            return Detections.empty()
        rows.sort()
        st = np.asarray(rows, np.float32)
        y, x, w, h = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
        return Detections(
            xyxy=(np.stack([x, y, x + w, y + h], axis=1) * np.float32(f)).astype(np.float32),
            score=st[:, 4].astype(np.float32),
            class_id=np.full(len(rows), -1, np.int64),
        )
