"""Footage for ``argus bench``: the active clip (as is, or re-encoded to 1080p H.264) and
a quiet clip of the same scene with nobody in it, cached under ``$ARGUS_HOME/bench``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

QUIET_SECONDS = 30.0
"""Length of the generated quiet clip (looped by the quiet cameras), seconds."""

QUIET_NOISE_SIGMA = 2.0
"""Sensor noise of the quiet clip, grey levels (a still picture would decode for free)."""

BACKGROUND_SAMPLES = 25
"""Frames sampled evenly over the footage whose median is the empty scene."""

HD_SIZE = (1920, 1080)


class FootageError(RuntimeError):
    """The footage cannot be read or written."""


@dataclass(frozen=True)
class Footage:
    """The clips a benchmark plays.

    Attributes:
        active: Footage with people (every camera of the "active" kind loops it).
        quiet: The same view, empty, with sensor noise (the quiet cameras).
        fps: Frame rate of both clips, frames/s.
        size: Frame size ``(width, height)``, px.
        frames: Frames in ``active``.
        codec: Codec of ``active`` (e.g. ``mpeg4``, ``h264``).
        keyframe_s: Mean keyframe interval of ``active``, seconds (None: unknown).
    """

    active: Path
    quiet: Path
    fps: float
    size: tuple[int, int]
    frames: int
    codec: str
    keyframe_s: float | None


def _probe(path: Path) -> tuple[float, tuple[int, int], int, str, float | None]:
    """(fps, (w, h), frames, codec, mean keyframe interval s) by demuxing ``path``."""
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 25)
            keys = frames = 0
            for packet in c.demux(s):
                if packet.size == 0:
                    continue
                frames += 1
                keys += int(packet.is_keyframe)
            size = (int(s.codec_context.width), int(s.codec_context.height))
            codec = s.codec_context.name
    except (av.error.FFmpegError, OSError, IndexError) as e:
        raise FootageError(f"cannot read {path}: {e}") from e
    key_s = frames / fps / keys if keys else None
    return fps, size, frames, codec, key_s


def _frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame of ``path`` as BGR."""
    with av.open(str(path)) as c:
        return [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in c.decode(video=0)]


def _encode(
    path: Path,
    frames: list[npt.NDArray[np.uint8]] | None,
    fps: float,
    size: tuple[int, int],
    keyframe_s: float,
    *,
    make: Callable[[int], npt.NDArray[np.uint8]] | None = None,
    n: int = 0,
) -> None:
    """Write H.264 (libx264, CRF 23, a keyframe every ``keyframe_s``) to ``path``
    atomically; frames from ``frames`` or, when ``None``, ``make(i)`` for ``i < n``."""
    tmp = path.with_suffix(".part.mp4")
    rate = Fraction(fps).limit_denominator(1001)
    gop = max(1, round(keyframe_s * fps))
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {
            "crf": "23",
            "preset": "veryfast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
        }
        total = len(frames) if frames is not None else n
        for i in range(total):
            if frames is not None:
                img = frames[i]
            elif make is not None:
                img = make(i)
            else:  # pragma: no cover - caller error
                raise ValueError("frames or make is required")
            if img.shape[1::-1] != size:
                img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def prepare(video: Path, cache: Path, *, hd: bool = False, keyframe_s: float = 1.5) -> Footage:
    """The benchmark's clips for ``video``: itself (or, with ``hd``, re-encoded to
    1920x1080 H.264 with a keyframe every ``keyframe_s``) and its quiet twin.

    The quiet clip is the median of ``BACKGROUND_SAMPLES`` frames (the empty scene: people
    move on) plus fresh Gaussian noise (sigma ``QUIET_NOISE_SIGMA``) every frame,
    ``QUIET_SECONDS`` long, H.264 at the active clip's size, rate and keyframe interval.

    Raises:
        FootageError: ``video`` missing or unreadable, or a clip cannot be written.
    """
    if not video.is_file():
        raise FootageError(f"footage not found: {video}")
    cache.mkdir(parents=True, exist_ok=True)
    st = video.stat()
    fps, size, n, codec, key_s = _probe(video)
    active = video
    if hd:
        active = cache / f"{video.stem}-1080p-{_key(str(video), st.st_size, keyframe_s)}.mp4"
        if not active.exists():
            log.info("re-encoding %s to 1920x1080 H.264 (keyframe every %.1f s)", video, keyframe_s)
            _encode(active, _frames(video), fps, HD_SIZE, keyframe_s)
        fps, size, n, codec, key_s = _probe(active)
    quiet = cache / f"{active.stem}-quiet-{_key(str(active), active.stat().st_size, key_s)}.mp4"
    if not quiet.exists():
        frames = _frames(active)
        if not frames:
            raise FootageError(f"no frame decoded from {active}")
        idx = np.linspace(0, len(frames) - 1, min(BACKGROUND_SAMPLES, len(frames))).astype(int)
        background = np.median(np.stack([frames[i] for i in idx]), axis=0).astype(np.float32)
        rng = np.random.default_rng(0)
        noise = [rng.normal(0.0, QUIET_NOISE_SIGMA, background.shape) for _ in range(7)]

        def make(i: int) -> npt.NDArray[np.uint8]:
            shifted = np.roll(noise[i % len(noise)], i % 13, axis=1)
            out: npt.NDArray[np.uint8] = np.clip(background + shifted, 0, 255).astype(np.uint8)
            return out

        log.info("writing the quiet clip %s", quiet)
        n_quiet = round(QUIET_SECONDS * fps)
        _encode(quiet, None, fps, size, key_s or keyframe_s, make=make, n=n_quiet)
    return Footage(active, quiet, fps, size, n, codec, key_s)
