"""The unit of data that leaves ingest: one decoded picture of one camera."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame.

    Attributes:
        camera_id: Id of the camera (or file) it came from, as configured.
        seq: 0-based sequence number of the frame *delivered by the decoder* for
            this camera, counted across reconnects (it never goes back).  Frames a
            live source dropped on purpose still consume a number, so a gap in
            ``seq`` downstream is a dropped frame.
        pts_s: Presentation time in seconds since the start of the stream (the
            first frame of the first connection is 0.0).  Monotonic non-decreasing
            across reconnects: the new connection's timeline continues after the last
            frame seen by the time that really passed (an outage shows as a gap).
        wall_time: Wall-clock time (UNIX seconds, UTC) at which the frame was
            decoded (live) or is scheduled to be shown (files at real speed).
            For ``realtime: false`` files it is the decode time.
        image: Picture, shape ``(height, width, 3)``, dtype ``uint8``, BGR order
            (OpenCV's convention).  Never modified downstream.
    """

    camera_id: str
    seq: int
    pts_s: float
    wall_time: float
    image: npt.NDArray[np.uint8] = field(repr=False)

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(
                f"Frame.image must be (H, W, 3) uint8 BGR, got shape {img.shape} dtype {img.dtype}"
            )

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.image.shape[0])
