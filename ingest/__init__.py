"""Camera ingest: files, RTSP/HTTP streams and local devices decoded into ``Frame`` objects.

Sources are synchronous iterators (``Source.frames()``); the runner owns the threads and
the bounded frame slots.  Use ``open_source`` to build one from a configured string.
"""

from ingest.activity import ActivityControl
from ingest.base import Source, SourceState, SourceStats, StateCallback
from ingest.errors import (
    SourceError,
    SourceNotFoundError,
    SourceOpenError,
    SourceReadError,
    SourceUnavailableError,
    SourceUsageError,
    TruncatedSourceError,
)
from ingest.factory import SourceKind, classify_source, open_source, source_fingerprint
from ingest.file_source import FileSource
from ingest.frame import Frame
from ingest.live_source import LiveKind, LiveSource, ReconnectPolicy
from ingest.redact import redact_text, redact_url
from ingest.retry import Backoff

__all__ = [
    "ActivityControl",
    "Backoff",
    "FileSource",
    "Frame",
    "LiveKind",
    "LiveSource",
    "ReconnectPolicy",
    "Source",
    "SourceError",
    "SourceKind",
    "SourceNotFoundError",
    "SourceOpenError",
    "SourceReadError",
    "SourceState",
    "SourceStats",
    "SourceUnavailableError",
    "SourceUsageError",
    "StateCallback",
    "TruncatedSourceError",
    "classify_source",
    "open_source",
    "redact_text",
    "redact_url",
    "source_fingerprint",
]
