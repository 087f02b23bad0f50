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
