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


def make_track_record(
    n: int,
    *,
    camera: str = "cam-1",
    label: str = "person",
    first: float | None = None,
    duration_s: float = 8.0,
    upper: str | None = "red",
    lower: str | None = "black",
    body: str | None = None,
    shares: Mapping[str, float] | None = None,
    zones: Iterable[str] = (),
    direction: str = "right",
    height_px: float = 120.0,
    thumbnail: str | bool | None = None,
    appearance: Iterable[float] | None = None,
) -> dict[str, object]:
    """The n-th scripted track summary (``alerts/track.schema.json``): tracker id n, first
    seen at ``first`` (default ``T0 + n``) for ``duration_s``; the colours given (a part
    given ``None`` is left out), each with share 0.6 unless ``shares`` says otherwise; the
    appearance is one-hot on those colours unless given; ``thumbnail=True``: the track's own
    thumbnail key (``alerts.evidence.thumbnail_key``)."""
    from datetime import UTC, datetime
    from uuid import NAMESPACE_URL, uuid5

    from detectors.appearance import COLOUR_NAMES

    t0 = T0 + n if first is None else first
    colours = {k: v for k, v in (("upper", upper), ("lower", lower), ("body", body)) if v}
    if appearance is None:
        vec = [0.0] * (3 * len(COLOUR_NAMES))
        for i, part in enumerate(("upper", "lower", "body")):
            if part in colours:
                vec[i * len(COLOUR_NAMES) + COLOUR_NAMES.index(colours[part])] = 1.0
    else:
        vec = [float(v) for v in appearance]
    record: dict[str, object] = {
        "schema_version": 1,
        "kind": "track",
        "track_uid": str(uuid5(NAMESPACE_URL, f"argus-test/{camera}/{n}")),
        "camera_id": camera,
        "track_id": n,
        "label": label,
        "first_seen": datetime.fromtimestamp(t0, UTC).isoformat(timespec="milliseconds"),
        "last_seen": datetime.fromtimestamp(t0 + duration_s, UTC).isoformat(
            timespec="milliseconds"
        ),
        "first_s": float(n),
        "last_s": float(n) + duration_s,
        "zones": list(zones),
        "direction": direction,
        "colours": colours,
        "shares": {k: (shares or {}).get(k, 0.6) for k in colours},
        "appearance": vec,
        "size": {"width_px": height_px / 2.5, "height_px": height_px, "height_frac": 0.2},
        "samples": 10,
        "bbox": [100.0, 100.0, 100.0 + height_px / 2.5, 100.0 + height_px],
    }
    if thumbnail is True:
        from alerts.evidence import thumbnail_key

        record["thumbnail"] = thumbnail_key(camera, t0, str(record["track_uid"]))
    elif isinstance(thumbnail, str):
        record["thumbnail"] = thumbnail
    return record


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
