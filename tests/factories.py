"""Builders of test inputs shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from selector.event import Event, make_event_id

T0 = 1_714_557_600.0
"""A fixed wall-clock origin (2024-05-01T10:00:00Z) for scripted events."""

BBOX = (1.0, 2.0, 30.0, 40.0)
SCORE = 0.75


def make_event(
    n: int,
    *,
    camera: str = "cam-1",
    type_: str = "intrusion",
    priority: int = 50,
    wall: float | None = None,
    snapshot: str | None = None,
) -> Event:
    """The n-th scripted start event: track n, frame n, ``start_s = n``, wall ``T0 + n``."""
    rule_id = f"{type_}:z"
    return Event(
        event_id=make_event_id(camera, rule_id, n, n),
        camera_id=camera,
        type=type_,
        rule_id=rule_id,
        zone="z",
        track_id=n,
        label="person",
        score=SCORE,
        priority=priority,
        start_s=float(n),
        end_s=None,
        bbox=BBOX,
        start_seq=n,
        wall_time=T0 + n if wall is None else wall,
        snapshot=snapshot,
    )


def write_clip(
    path: Path,
    frames: Iterable[npt.NDArray[np.uint8]],
    *,
    codec: str = "mpeg4",
    fps: int = 10,
    gop: int | None = None,
    options: Mapping[str, str] | None = None,
) -> Path:
    """Encode ``frames`` (each ``(H, W, 3)`` uint8 BGR, all one size) into a video at
    ``fps``, frame i at ``i / fps`` s; ``gop``: keyframe interval in frames (codec default
    when ``None``); ``options``: the encoder's own options (e.g. ``{"bf": "2"}``)."""
    with av.open(str(path), "w") as out:
        stream = None
        for i, img in enumerate(frames):
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.width, stream.height, stream.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
                opts = dict(options or {})
                if gop is not None and codec == "libx264":
                    opts |= {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
                elif gop is not None:
                    stream.gop_size = gop
                stream.options = opts
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                out.mux(packet)
        if stream is None:
            raise ValueError("write_clip needs at least one frame")
        for packet in stream.encode():
            out.mux(packet)
    return path
