"""Cheap per-frame picture measures: motion, camera health, foreground blobs.

Computed on a small grey thumbnail of every decoded frame, on the camera's decode
thread (off the detector's critical path).  The selector turns these numbers into
camera-health events and the runner uses ``motion`` to decide which frames need the
detector.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.detections import Detections


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
            full-frame pixels (0 for a camera that has not moved).
        reference_similarity: Correlation of the edges of the frame with those of the
            long-term reference, -1..1 (low when the view changed).
        foreground: Blobs differing from the long-term background, boxes in full-frame
            pixels, ``class_id = -1`` (unclassified); empty when not computed.
        static_objects: Foreground blobs that have not moved for the analyser's
            ``static_after_s`` seconds (new stationary objects), same form.
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
