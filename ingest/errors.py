"""Exceptions raised by camera sources.

Every message is safe to log: URLs in it have their credentials redacted.
"""

from __future__ import annotations


class SourceError(Exception):
    """Base class: a source cannot deliver (more) frames."""


class SourceNotFoundError(SourceError):
    """The file or device does not exist.

    Attributes:
        path: The path (or device node) that was looked for.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"source not found: {path}")


class SourceOpenError(SourceError):
    """The source exists but cannot be opened as a video (not a video, corrupt, no video stream).

    Attributes:
        path: The path or redacted URL.
        reason: Why it could not be opened (FFmpeg's message or ours).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot open video source {path}: {reason}")


class SourceReadError(SourceError):
    """A source opened but its content cannot be decoded (no frames, too many bad packets).

    Attributes:
        path: The path or redacted URL.
        reason: What went wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read video source {path}: {reason}")


class TruncatedSourceError(SourceReadError):
    """A recording ends before the length its container declares (a file cut short or damaged).

    Raised after every decodable frame of it was delivered: what is there was analysed,
    but the camera did not run to its end.

    Attributes:
        path: The path.
        frames: Complete frames (packets) the file holds.
        declared_frames: Frames the container declares, ``None`` if it does not say.
        reached_s: Stream time the file reaches, seconds from its first frame.
        declared_s: Duration it declares (or its frame count implies); ``None`` if unknown
            or no longer than ``reached_s`` (a B-frame cut off at the very end).
        reason: The message without the path.
    """

    def __init__(
        self,
        path: str,
        *,
        frames: int,
        declared_frames: int | None,
        reached_s: float,
        declared_s: float | None,
    ) -> None:
        self.frames = frames
        self.declared_frames = declared_frames
        self.reached_s = reached_s
        self.declared_s = declared_s
        seconds = f" ({reached_s:.1f} s of {declared_s:.1f} s)" if declared_s is not None else ""
        if declared_frames:
            where = f"{frames} of {declared_frames} frames{seconds}"
        elif declared_s is not None:
            where = f"{frames} frames{seconds}"
        else:
            where = f"its last frame is cut short after {frames} frames ({reached_s:.1f} s)"
        self.path = path
        self.reason = f"recording ends early: {where} — the file is truncated or damaged"
        SourceError.__init__(self, f"video source {path}: {self.reason}")


class SourceUnavailableError(SourceError):
    """A live source gave up after ``max_attempts`` consecutive failed reconnects.

    Attributes:
        url: The redacted URL.
        attempts: Consecutive failed attempts made.
        last_error: Text of the last failure (redacted).
    """

    def __init__(self, url: str, attempts: int, last_error: str) -> None:
        self.url = url
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"live source {url} unavailable after {attempts} attempts: {last_error}")


class SourceUsageError(SourceError):
    """The source was used wrongly (e.g. ``frames()`` iterated twice).

    Attributes:
        camera_id: The camera concerned.
        reason: What was wrong.
    """

    def __init__(self, camera_id: str, reason: str) -> None:
        self.camera_id = camera_id
        self.reason = reason
        super().__init__(f"camera {camera_id}: {reason}")
