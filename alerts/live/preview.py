"""Live pictures for the wall and the board: drawn, masked, small JPEGs, and their wire form.

A worker makes a ``Preview`` only for a camera someone watches (``alerts.live.demand``), at
most ``Want.fps`` a second and ``Want.width`` pixels wide: people are blurred as on masked
snapshots (``alerts.masking.mask_people``; the runner decides whom: see
``argus.runner.LIVE_TRACKS_KEEP_S``), then the zones, lines and boxes are drawn over it.

Wire form (one Kafka record value): ``MAGIC``, the header as one line of JSON, a newline,
then the JPEG bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alerts.masking import SHRINK, mask_people

MAGIC = b"ARGUS-PREVIEW-1\n"
MAX_PREVIEW_BYTES = 512 * 1024
"""Largest JPEG a preview may carry (a 1280-pixel-wide picture at quality 70 is ~150 KB)."""
MAX_HEADER_BYTES = 2048
MIN_WIDTH, MAX_WIDTH = 96, 1280
ZONE_COLOR = (0, 200, 255)  # BGR: amber
LINE_COLOR = (255, 160, 0)  # BGR: blue
BOX_COLOR = (60, 220, 60)  # BGR: green
WATCH_COLOR = (0, 140, 255)  # BGR: orange, a box a rule is watching
JPEG_QUALITY = 70


class PreviewError(ValueError):
    """A preview on the wire is malformed (the message says how)."""


@dataclass(frozen=True, slots=True)
class Preview:
    """One live picture of a camera.

    Attributes:
        camera_id: The camera.
        seq: The frame's sequence number in its source.
        taken_at: The frame's wall time (capture time of a live source), UNIX seconds.
        width: Picture width, pixels (after scaling).
        height: Picture height, pixels.
        jpeg: The JPEG bytes.
    """

    camera_id: str
    seq: int
    taken_at: float
    width: int
    height: int
    jpeg: bytes

    def encode(self) -> bytes:
        """The wire form (see the module doc)."""
        header = {
            "camera_id": self.camera_id,
            "seq": self.seq,
            "taken_at": self.taken_at,
            "width": self.width,
            "height": self.height,
        }
        return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.jpeg

    @classmethod
    def decode(cls, data: bytes) -> Preview:
        """A preview from its wire form.

        Raises:
            PreviewError: Not a preview, a bad header, or a JPEG too large or not a JPEG.
        """
        if not data.startswith(MAGIC):
            raise PreviewError("not a preview (bad magic)")
        rest = data[len(MAGIC) :]
        end = rest.find(b"\n", 0, MAX_HEADER_BYTES)
        if end < 0:
            raise PreviewError("preview header missing or too long")
        try:
            header = json.loads(rest[:end])
        except ValueError as e:
            raise PreviewError(f"preview header is not JSON: {e}") from None
        jpeg = rest[end + 1 :]
        if not isinstance(header, dict):
            raise PreviewError("preview header is not an object")
        camera_id, seq = header.get("camera_id"), header.get("seq")
        taken_at, width, height = header.get("taken_at"), header.get("width"), header.get("height")
        if not isinstance(camera_id, str) or not 0 < len(camera_id) <= 128:
            raise PreviewError("preview camera_id missing or invalid")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, width, height)):
            raise PreviewError("preview seq/width/height must be integers")
        assert isinstance(width, int) and isinstance(height, int) and isinstance(seq, int)
        if not (0 < width <= 4096 and 0 < height <= 4096):
            raise PreviewError("preview size out of range")
        if not isinstance(taken_at, int | float) or not math.isfinite(taken_at) or taken_at < 0:
            raise PreviewError("preview taken_at invalid")
        if not jpeg.startswith(b"\xff\xd8") or len(jpeg) > MAX_PREVIEW_BYTES:
            raise PreviewError("preview picture is not a JPEG or too large")
        return cls(camera_id, seq, float(taken_at), width, height, bytes(jpeg))


@dataclass(frozen=True, slots=True)
class Overlay:
    """What is drawn over a live picture; coordinates in pixels of the original frame.

    Attributes:
        boxes: ``(n, 4)`` float ``[x1, y1, x2, y2]`` of tracked objects.
        labels: ``n`` short labels (e.g. ``"person 12"``).
        people: ``(m, 4)`` boxes blurred before drawing (people; ``alerts.masking``'s
            ``WHOLE_PICTURE`` blurs everything).
        zones: Polygons, each ``(k, 2)`` vertices.
        lines: Segments, each ``((x1, y1), (x2, y2))``.
        watched: Boxes a rule is watching (drawn in ``WATCH_COLOR``), ``[x1, y1, x2, y2]``.
    """

    boxes: npt.NDArray[np.floating]
    labels: Sequence[str]
    people: npt.NDArray[np.floating]
    zones: Sequence[npt.NDArray[np.floating] | npt.NDArray[np.integer]] = ()
    lines: Sequence[tuple[tuple[float, float], tuple[float, float]]] = ()
    watched: Sequence[tuple[float, float, float, float]] = ()


def scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """``(w, h)`` of a ``width`` x ``height`` frame scaled to at most ``max_width`` wide (never
    enlarged; both even and >= 2)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    scale = min(1.0, max_width / width)
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def render_preview(
    image: npt.NDArray[np.uint8], overlay: Overlay, max_width: int, quality: int = JPEG_QUALITY
) -> tuple[bytes, int, int]:
    """Scale, mask and draw one frame; ``(jpeg, width, height)``.

    Args:
        image: The frame, ``(H, W, 3)`` uint8 BGR; not modified.
        overlay: What to blur and draw (original frame's pixels).
        max_width: Widest picture, pixels (``MIN_WIDTH``..``MAX_WIDTH``).
        quality: JPEG quality 1..100.

    Raises:
        ValueError: A bad image or width.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not MIN_WIDTH <= max_width <= MAX_WIDTH:
        raise ValueError(f"max_width must be in {MIN_WIDTH}..{MAX_WIDTH}, got {max_width}")
    src_h, src_w = image.shape[:2]
    w, h = scaled_size(src_w, src_h, max_width)
    canvas: npt.NDArray[np.uint8] = np.asarray(
        cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    sx, sy = w / src_w, h / src_h
    people = np.asarray(overlay.people, dtype=np.float64).reshape(-1, 4)
    if len(people):  # as snapshots are masked: grown boxes, feathered edges
        scaled = (people * (sx, sy, sx, sy)).astype(np.float32)
        whole = (
            (scaled[:, 0] <= 0) & (scaled[:, 1] <= 0) & (scaled[:, 2] >= w) & (scaled[:, 3] >= h)
        )
        if whole.any():  # everything: one blur of the picture (the feathered path costs 6x)
            size = (max(1, w // SHRINK), max(1, h // SHRINK))
            small = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
            canvas = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        else:
            canvas = mask_people(canvas, scaled)
    thickness = 1 if w < 400 else 2
    for zone in overlay.zones:
        pts = np.asarray(zone, dtype=np.float64) * (sx, sy)
        if pts.ndim == 2 and pts.shape[0] >= 2 and pts.shape[1] == 2:
            poly = np.round(pts).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [poly], True, ZONE_COLOR, thickness, cv2.LINE_AA)
    for (x1, y1), (x2, y2) in overlay.lines:
        p1 = (round(x1 * sx), round(y1 * sy))
        p2 = (round(x2 * sx), round(y2 * sy))
        cv2.line(canvas, p1, p2, LINE_COLOR, thickness, cv2.LINE_AA)
    boxes = np.asarray(overlay.boxes, dtype=np.float64).reshape(-1, 4)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35 if w < 400 else 0.45
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        p1, p2 = (round(x1 * sx), round(y1 * sy)), (round(x2 * sx), round(y2 * sy))
        cv2.rectangle(canvas, p1, p2, BOX_COLOR, thickness)
        label = overlay.labels[i] if i < len(overlay.labels) else ""
        if label and w >= 200:
            ty = p1[1] - 3 if p1[1] > 12 else p2[1] + 12
            cv2.putText(canvas, label, (p1[0], ty), font, scale, BOX_COLOR, 1, cv2.LINE_AA)
    for x1, y1, x2, y2 in overlay.watched:
        p1, p2 = (round(x1 * sx), round(y1 * sy)), (round(x2 * sx), round(y2 * sy))
        cv2.rectangle(canvas, p1, p2, WATCH_COLOR, thickness + 1)
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes(), w, h
