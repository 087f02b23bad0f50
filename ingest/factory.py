"""Pick the right source class from a configured source string."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from ingest.activity import ActivityControl
from ingest.base import Source, StateCallback
from ingest.file_source import FileSource
from ingest.live_source import LiveKind, LiveSource, ReconnectPolicy

SourceKind = Literal["file", "rtsp", "http", "device", "stream"]

_DEVICE_INDEX_RE = re.compile(r"^device:(\d+)$")
_DEVICE_PATH_RE = re.compile(r"^/dev/video\d+$")
_OTHER_STREAM_SCHEMES = ("rtmp", "rtmps", "srt", "udp", "tcp", "rtp")


def classify_source(source: str) -> tuple[SourceKind, str]:
    """Return ``(kind, target)`` for a configured source string.

    ``rtsp://``/``rtsps://`` -> ``rtsp``; ``http(s)://`` -> ``http``; ``/dev/videoN`` or
    ``device:N`` -> ``device`` with target ``/dev/videoN``; ``rtmp://``, ``srt://``,
    ``udp://``... -> ``stream``; ``file://PATH`` and anything else -> ``file``.
    """
    s = source.strip()
    scheme, sep, rest = s.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("rtsp", "rtsps"):
        return "rtsp", s
    if scheme in ("http", "https"):
        return "http", s
    if scheme in _OTHER_STREAM_SCHEMES:
        return "stream", s
    if scheme == "file":
        return "file", rest
    m = _DEVICE_INDEX_RE.match(s)
    if m:
        return "device", f"/dev/video{int(m.group(1))}"
    if _DEVICE_PATH_RE.match(s):
        return "device", s
    return "file", source


def open_source(
    camera_id: str,
    source: str,
    *,
    realtime: bool = True,
    loop: bool = False,
    reconnect: ReconnectPolicy | None = None,
    on_state: StateCallback | None = None,
    decode_threads: int = 0,
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 5.0,
    activity: ActivityControl | None = None,
) -> Source:
    """Build the source for ``source`` (nothing is opened until ``frames()``).

    Args:
        camera_id: Camera id given to every frame.
        source: File path, ``file://``, ``rtsp(s)://``, ``http(s)://``, ``/dev/videoN``,
            ``device:N`` or another FFmpeg network URL (see ``classify_source``).
        realtime: Files only: pace at real speed and behave as a live camera.
        loop: Files only: restart at end of file.
        reconnect: Live only: back-off policy (``ReconnectPolicy()`` if ``None``).
        on_state: State-change callback ``(camera_id, state, detail)``.
        decode_threads: Decoder threads, 0 = FFmpeg's choice.
        open_timeout_s: Live only: one connection attempt's time limit, seconds.
        read_timeout_s: Live only: silence after which the connection counts as lost, seconds.
        activity: Activity-driven decoding control (``None``: every frame is delivered).

    Returns:
        A ``FileSource`` or a ``LiveSource``.
    """
    kind, target = classify_source(source)
    if kind == "file":
        return FileSource(
            camera_id,
            target,
            realtime=realtime,
            loop=loop,
            on_state=on_state,
            decode_threads=decode_threads,
            activity=activity,
        )
    live_kind: LiveKind = kind
    return LiveSource(
        camera_id,
        target,
        kind=live_kind,
        reconnect=reconnect,
        on_state=on_state,
        open_timeout_s=open_timeout_s,
        read_timeout_s=read_timeout_s,
        decode_threads=decode_threads,
        activity=activity,
    )


FINGERPRINT_BYTES = 1 << 20


def source_fingerprint(source: str) -> str:
    """A short, stable id of a *file* source's content, ``""`` for anything else.

    sha1 of the file size and its first MiB (cheap for any file length): the same
    recording gives the same value wherever it is copied, two recordings differ.  Used to
    keep event ids of different recordings played under one camera id apart.  A file
    that cannot be read gives ``""`` (opening it will report the error).
    """
    kind, target = classify_source(source)
    if kind != "file":
        return ""
    try:
        with open(target, "rb") as f:
            head = f.read(FINGERPRINT_BYTES)
            size = f.seek(0, 2)
    except OSError:
        return ""
    digest = hashlib.sha1(str(size).encode() + b"|" + head, usedforsecurity=False)
    return digest.hexdigest()[:16]
