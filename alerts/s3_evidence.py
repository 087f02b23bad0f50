"""Evidence snapshots in an S3-compatible bucket (MinIO, SeaweedFS, AWS S3), spooled locally.

``S3EvidenceStore.put`` never touches the network: it writes the JPEG atomically into a
local *spool* directory (same key layout as ``LocalEvidenceStore``) and returns.  One
background thread uploads spooled files oldest first and deletes each spool file only
after its upload succeeded.  While S3 is unreachable the files stay in the spool (one
warning when spooling starts, one line when uploads resume, with counts) and the
uploader retries with exponential backoff; a later process on the same spool directory
picks the leftovers up at start.  So a slow or dead S3 never stalls the pipeline and a
snapshot is never lost once ``put`` returned (short of losing the spool disk).

Reads (``get``, ``exists``) look in the spool first, then in the bucket.  ``url_for``
gives a presigned GET URL (``UrlEvidenceStore``), or ``None`` while the snapshot is
only in the spool.

One spool directory belongs to one live store: it is locked (``flock``) for the
store's lifetime; a second store on it raises ``SpoolLockedError``.

Credentials are handed to the ``minio`` client and never logged, put in exception
messages or returned (a presigned URL carries the *access key id* and a signature, as
every presigned URL does, never the secret key).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import logging
import mimetypes
import os
import tempfile
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error
from prometheus_client import Counter, Gauge

from alerts.evidence import (
    MAX_URL_EXPIRY_S,
    EvidenceNotFoundError,
    InvalidEvidenceKeyError,
    is_thumbnail_key,
    validate_key,
)
from alerts.spool import fsync_dir
from ingest.retry import Backoff

logger = logging.getLogger(__name__)

CONTENT_TYPE = "image/jpeg"
LOCK_NAME = ".spool.lock"
_TMP_PREFIX = ".tmp-"
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"})
_BUCKET_OK_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})

SPOOL_DEPTH = Gauge(
    "argus_evidence_spool_depth",
    "Snapshots waiting in the local spool for upload to S3 (all S3 evidence stores).",
)
UPLOADS = Counter(
    "argus_evidence_uploads_total",
    "Snapshots uploaded from the spool to the S3 bucket.",
)
SPOOL_DROPPED = Counter(
    "argus_evidence_spool_dropped_total",
    "Spooled evidence dropped because the spool reached its bound (track thumbnails first, "
    "then the oldest snapshots and clips).",
)
QUARANTINED = Counter(
    "argus_evidence_quarantined_total",
    "Snapshots S3 refused for good (e.g. AccessDenied, EntityTooLarge), moved aside.",
)
# S3 error codes retrying cannot fix: the object is moved to the quarantine folder so the
# snapshots behind it keep uploading (an operator can move it back once the cause is fixed).
PERMANENT_CODES = frozenset(
    {"AccessDenied", "EntityTooLarge", "InvalidObjectName", "KeyTooLongError", "InvalidArgument"}
)
UPLOAD_FAILURES = Counter(
    "argus_evidence_upload_failures_total",
    "Failed attempts to upload a snapshot (or to create the bucket); each is retried.",
)
UPLOADED_BYTES = Counter(
    "argus_evidence_uploaded_bytes_total",
    "Bytes of snapshots uploaded to the S3 bucket.",
)


class EvidenceUnavailableError(OSError):
    """The S3 service could not answer a read (unreachable, refused, server error).

    Attributes:
        key: The evidence key of the request.
        operation: ``"get"``, ``"exists"``, ``"url_for"`` or ``"delete"``.
        reason: Exception type and S3 error code or message (no credentials).
    """

    def __init__(self, key: str, operation: str, reason: str) -> None:
        self.key = key
        self.operation = operation
        self.reason = reason
        super().__init__(f"evidence store unavailable for {operation} {key!r}: {reason}")


class SpoolLockedError(RuntimeError):
    """Another live store holds the spool directory.

    Attributes:
        spool_dir: The directory.
    """

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        super().__init__(f"evidence spool {str(spool_dir)!r} is in use by another store")


def default_http_client(
    *, secure: bool, connect_timeout_s: float = 3.0, read_timeout_s: float = 15.0
) -> urllib3.PoolManager:
    """The HTTP pool the store gives ``minio``: bounded timeouts, one quick retry.

    ``minio``'s own default waits up to 5 minutes per request and retries 5 times,
    which would keep a dead endpoint's reads (API requests) hanging for minutes.

    Args:
        secure: HTTPS endpoint (certificates checked against ``SSL_CERT_FILE`` or certifi).
        connect_timeout_s: TCP connect timeout, seconds.
        read_timeout_s: Socket read timeout, seconds.
    """
    retry = urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=(500, 502, 503, 504))
    timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
    if secure:
        return urllib3.PoolManager(
            timeout=timeout,
            retries=retry,
            maxsize=8,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
    return urllib3.PoolManager(timeout=timeout, retries=retry, maxsize=8)


def _describe(exc: BaseException) -> str:
    """Short, credential-free description of a client error (type and S3 code)."""
    if isinstance(exc, S3Error):
        return f"S3Error {exc.code}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return f"{type(exc.reason).__name__} (after retries)"
    return type(exc).__name__


class S3EvidenceStore:
    """``EvidenceStore`` (and ``UrlEvidenceStore``) on an S3 bucket with a local spool.

    Thread-safe: ``put``/``get``/``exists``/``url_for`` may be called from any thread.

    Attributes:
        bucket: Bucket name.
        endpoint: ``host:port`` of the S3 service.
        spool_dir: The spool directory (resolved).
        url_expiry_s: Default lifetime of ``url_for`` URLs, seconds.
    """

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str | None = None,
        spool_dir: Path,
        url_expiry_s: int = 300,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        http_client: urllib3.PoolManager | None = None,
        client: Any = None,
        max_spool_files: int = 20_000,
        max_spool_bytes: int = 4 << 30,
    ) -> None:
        """
        Args:
            endpoint: ``host:port`` of the S3 service (no scheme).
            bucket: Bucket name; created at start if missing.
            access_key: S3 access key id (never logged).
            secret_key: S3 secret key (never logged).
            secure: HTTPS to the endpoint.
            region: Bucket region; ``None`` asks the service (once, then cached).
            spool_dir: Local directory for snapshots not yet uploaded (created if
                missing; locked for the lifetime of this store).
            url_expiry_s: Default lifetime of presigned URLs, seconds (1..7 days).
            retry_initial_s: First wait after a failed upload, seconds (doubles per
                failure up to ``retry_max_s``).
            max_spool_files: Bound of the spool; beyond it queued files are dropped, track
                thumbnails first, then the oldest snapshots and clips (counted in
                ``argus_evidence_spool_dropped_total``).
            max_spool_bytes: Bound of the spool in bytes (clips are megabytes each: a
                long outage must not fill the disk); beyond it, the same.
            retry_max_s: Longest wait between upload attempts, seconds.
            http_client: urllib3 pool for the ``minio`` client (default
                ``default_http_client``).
            client: Object with the ``minio.Minio`` methods used here, instead of a
                real client (tests).

        Raises:
            ValueError: ``url_expiry_s`` or the retry delays out of range, empty
                endpoint or bucket.
            SpoolLockedError: Another live store uses ``spool_dir``.
            OSError: ``spool_dir`` cannot be created or locked.
        """
        if not 1 <= url_expiry_s <= MAX_URL_EXPIRY_S:
            raise ValueError(f"url_expiry_s must be in 1..{MAX_URL_EXPIRY_S}, got {url_expiry_s}")
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError(
                f"need 0 < retry_initial_s <= retry_max_s, got {retry_initial_s}, {retry_max_s}"
            )
        if not endpoint or not bucket:
            raise ValueError(f"endpoint and bucket are required (got {endpoint!r}, {bucket!r})")
        self.endpoint = endpoint
        self.bucket = bucket
        self.url_expiry_s = url_expiry_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._secrets = tuple(s for s in (access_key, secret_key) if s)
        self._client: Any = client
        if self._client is None:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http_client or default_http_client(secure=secure),
            )

        if max_spool_files < 1 or max_spool_bytes < 1:
            raise ValueError(
                f"max_spool_files and max_spool_bytes must be >= 1, got {max_spool_files}, "
                f"{max_spool_bytes}"
            )
        self._max_spool_files = max_spool_files
        self._max_spool_bytes = max_spool_bytes
        self._sizes: dict[str, int] = {}
        """Bytes of each key's spool file (the keys of ``_gen``)."""
        self._spool_bytes = 0
        self._dropping = False
        self.dropped = 0
        """Snapshots dropped because the spool reached ``max_spool_files``."""
        self.spool_dir = Path(spool_dir).resolve()
        self.quarantine_dir = self.spool_dir.with_name(f"{self.spool_dir.name}-quarantine")
        """Beside the spool (never scanned as pending): objects S3 refused for good."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lock_fd)
            raise SpoolLockedError(self.spool_dir) from e

        self._cond = threading.Condition()
        self._queue: deque[str] = deque()  # keys to upload, oldest first
        self._queued: set[str] = set()
        self._gen: dict[str, int] = {}  # every key with a spool file -> write generation
        self._uploading: str | None = None  # the key whose put_object is in flight
        self._closed = False
        self._poke = threading.Event()  # cuts a backoff wait short (flush, close)
        self._bucket_ready = False
        self._down_since: float | None = None  # monotonic time of the first failure
        self._spooled_while_down = 0
        self._outage_failures = 0
        self._catching_up = False  # a backlog (outage or previous run) is being uploaded
        self._caught_up = 0
        self._reachable: bool | None = None
        self._last_error: str | None = None
        self.uploads = 0
        self.failures = 0

        leftovers = self._scan_spool()
        with self._cond:
            for key in leftovers:
                self._gen[key] = 0
                self._sized(key, self._spool_path(key).stat().st_size)
                self._queue.append(key)
                self._queued.add(key)
            self._catching_up = bool(leftovers)
        SPOOL_DEPTH.inc(len(leftovers))
        if leftovers:
            logger.info(
                "evidence spool %s holds %d snapshots from a previous run; uploading them to "
                "bucket %s",
                self.spool_dir,
                len(leftovers),
                bucket,
            )
        self._thread = threading.Thread(target=self._run, name=f"s3-evidence-{bucket}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ protocol

    def put(self, key: str, jpeg: bytes) -> None:
        """Spool ``jpeg`` under ``key`` (atomic local write) and queue its upload.

        Returns once the bytes are on local disk (fsynced); never waits for S3.
        Writing a key again replaces the spooled bytes (and the object, once uploaded).

        Raises:
            InvalidEvidenceKeyError: Bad key.
            OSError: The spool file cannot be written (e.g. disk full).
        """
        path = self._spool_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
                f.flush()
                os.fsync(f.fileno())
            with self._cond:
                os.replace(tmp, path)
                fsync_dir(path.parent)  # the rename itself must survive a power cut
                new = key not in self._gen
                self._gen[key] = self._gen.get(key, 0) + 1
                self._sized(key, len(jpeg))
                if key not in self._queued:
                    self._queue.append(key)
                    self._queued.add(key)
                if self._down_since is not None:
                    self._spooled_while_down += 1
                dropped = self._enforce_bound_locked()
                closed = self._closed
                self._cond.notify_all()
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if new and not closed:
            SPOOL_DEPTH.inc()
        if dropped:
            SPOOL_DROPPED.inc(dropped)
            SPOOL_DEPTH.dec(dropped)
        if closed:
            logger.warning("evidence store closed: %s kept in the spool for the next start", key)
        logger.debug("spooled evidence %s (%d bytes)", key, len(jpeg))

    def get(self, key: str) -> bytes:
        """The JPEG under ``key``: from the spool if not yet uploaded, else from S3.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            EvidenceNotFoundError: Neither in the spool nor in the bucket.
            EvidenceUnavailableError: Not in the spool and S3 cannot be reached.
        """
        path = self._spool_path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        try:
            response = self._client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()
        except S3Error as e:
            if e.code in _MISSING_CODES:
                raise EvidenceNotFoundError(key) from None
            raise EvidenceUnavailableError(key, "get", _describe(e)) from None
        except Exception as e:
            raise EvidenceUnavailableError(key, "get", _describe(e)) from None

    def exists(self, key: str) -> bool:
        """Whether ``key`` is in the spool or in the bucket.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            EvidenceUnavailableError: Not in the spool and S3 cannot be reached.
        """
        if self._spool_path(key).is_file():
            return True
        return self._in_bucket(key, "exists")

    def delete(self, key: str, timeout_s: float = 60.0) -> bool:
        """Remove ``key`` from the spool (so it is never uploaded), the quarantine and the
        bucket; whether it was in any of them.  Idempotent.

        An upload of ``key`` in flight is waited for (at most ``timeout_s``), so the
        object it writes is removed too.  The spool copy goes first: should S3 fail, the
        key is at least never uploaded, and a later call removes the object.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            EvidenceUnavailableError: S3 cannot be reached (or refused), or the upload
                in flight did not finish within ``timeout_s``.
        """
        path = self._spool_path(key)  # validates
        quarantined = (self.quarantine_dir / key).resolve()
        if not quarantined.is_relative_to(self.quarantine_dir.resolve()):
            raise InvalidEvidenceKeyError(key, "resolves outside the quarantine directory")
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while self._uploading == key:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EvidenceUnavailableError(key, "delete", "upload still in flight")
                self._cond.wait(min(left, 0.5))
            spooled = self._gen.pop(key, None) is not None
            self._sized(key, None)
            if key in self._queued:  # the uploader skips a key it finds gone (_upload)
                self._queued.discard(key)
                self._queue.remove(key)
            path.unlink(missing_ok=True)
            closed = self._closed
            self._cond.notify_all()
        if spooled and not closed:  # close() already took the leftovers off the gauge
            SPOOL_DEPTH.dec()
        found = spooled
        if quarantined.is_file():
            quarantined.unlink(missing_ok=True)
            found = True
        if self._in_bucket(key, "delete"):
            try:
                self._client.remove_object(self.bucket, key)
            except S3Error as e:
                if e.code not in _MISSING_CODES:
                    raise EvidenceUnavailableError(key, "delete", _describe(e)) from None
            except Exception as e:
                raise EvidenceUnavailableError(key, "delete", _describe(e)) from None
            found = True
        if found:
            logger.debug("deleted evidence %s", key)
        return found

    def url_for(self, key: str, expires_s: int | None = None) -> str | None:
        """A presigned GET URL for the uploaded object, or ``None`` while only spooled.

        Args:
            key: Evidence key.
            expires_s: URL lifetime, seconds (1..7 days); ``None``: ``url_expiry_s``.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            ValueError: ``expires_s`` out of range.
            EvidenceNotFoundError: Neither spooled nor in the bucket.
            EvidenceUnavailableError: S3 cannot be reached.
        """
        lifetime = self.url_expiry_s if expires_s is None else expires_s
        if not 1 <= lifetime <= MAX_URL_EXPIRY_S:
            raise ValueError(f"expires_s must be in 1..{MAX_URL_EXPIRY_S}, got {lifetime}")
        self._spool_path(key)  # validates
        with self._cond:
            if key in self._gen:
                return None
        if not self._in_bucket(key, "url_for"):
            raise EvidenceNotFoundError(key)
        try:
            url = self._client.presigned_get_object(
                self.bucket, key, expires=timedelta(seconds=lifetime)
            )
        except Exception as e:
            raise EvidenceUnavailableError(key, "url_for", _describe(e)) from None
        return str(url)

    # ----------------------------------------------------------------- lifecycle

    @property
    def spool_depth(self) -> int:
        """Snapshots in the spool (not yet uploaded), including one being uploaded."""
        with self._cond:
            return len(self._gen)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every spooled snapshot is uploaded, at most ``timeout_s`` seconds.

        Cuts a running retry backoff short (one immediate attempt).

        Returns:
            True when the spool is empty, False on timeout (files stay spooled).
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._poke.set()
        with self._cond:
            while self._gen:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.5))
                self._poke.set()  # keep retrying promptly while someone waits
            return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Upload what can be uploaded within ``timeout_s`` seconds, then stop.

        Does not wait while S3 is known to be down.  Snapshots not uploaded stay in
        the spool and are picked up by the next store on the same directory.
        Idempotent.
        """
        with self._cond:
            if self._closed:
                return
            down = self._down_since is not None
        if not down:
            self.flush(timeout_s)
        with self._cond:
            self._closed = True
            left = len(self._gen)
            self._cond.notify_all()
        self._poke.set()
        self._thread.join(timeout=max(timeout_s, 1.0) + 20.0)
        if self._thread.is_alive():
            logger.warning("evidence uploader did not stop in time (stuck in a request)")
        SPOOL_DEPTH.dec(left)
        if left:
            logger.warning(
                "evidence store closed with %d snapshots still spooled in %s (uploaded at the "
                "next start)",
                left,
                self.spool_dir,
            )
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def __enter__(self) -> S3EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self) -> dict[str, Any]:
        """Health summary (no credentials): reachability, spool depth, counters."""
        with self._cond:
            return {
                "backend": "s3",
                "endpoint": self.endpoint,
                "bucket": self.bucket,
                "reachable": self._reachable,
                "spool_depth": len(self._gen),
                "uploads": self.uploads,
                "failures": self.failures,
                "last_error": self._last_error,
            }

    # ------------------------------------------------------------------ internals

    def _spool_path(self, key: str) -> Path:
        validate_key(key)
        path = (self.spool_dir / key).resolve()
        if not path.is_relative_to(self.spool_dir):
            raise InvalidEvidenceKeyError(key, "resolves outside the spool directory")
        return path

    def _scan_spool(self) -> list[str]:
        """Keys of spooled files left by a previous run, oldest first.

        Also removes temporary files of puts that never returned and empty folders.
        """
        found: list[tuple[int, str]] = []
        for root, dirs, files in os.walk(self.spool_dir):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                path = Path(root) / name
                if name.startswith(_TMP_PREFIX):
                    path.unlink(missing_ok=True)  # a put that never returned
                    continue
                if name.startswith("."):
                    continue
                key = path.relative_to(self.spool_dir).as_posix()
                try:
                    validate_key(key)
                    found.append((path.stat().st_mtime_ns, key))
                except InvalidEvidenceKeyError:
                    logger.warning("ignoring unexpected file in the evidence spool: %s", key)
                except FileNotFoundError:
                    continue
        for root, _dirs, _files in os.walk(self.spool_dir, topdown=False):
            if Path(root) != self.spool_dir:
                with contextlib.suppress(OSError):
                    os.rmdir(root)  # empty camera/date folders of uploaded snapshots
        found.sort()
        return [key for _, key in found]

    def _in_bucket(self, key: str, operation: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
            return True
        except S3Error as e:
            if e.code in _MISSING_CODES:
                return False
            raise EvidenceUnavailableError(key, operation, _describe(e)) from None
        except Exception as e:
            raise EvidenceUnavailableError(key, operation, _describe(e)) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _ensure_bucket(self) -> None:
        """Create the bucket if missing; a concurrent creator winning the race is fine."""
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket)
            logger.info("created evidence bucket %s on %s", self.bucket, self.endpoint)
        except S3Error as e:
            if e.code not in _BUCKET_OK_CODES or not self._client.bucket_exists(self.bucket):
                raise

    def _run(self) -> None:
        """Uploader thread: bucket first, then spooled keys oldest first, forever."""
        backoff = Backoff(self._retry_initial_s, self._retry_max_s)
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                key = self._queue[0]
            try:
                if not self._bucket_ready:
                    self._ensure_bucket()
                    self._bucket_ready = True
                self._upload(key)
                backoff.reset()
            except Exception as e:
                self._on_failure(key, e)
                self._poke.clear()
                backoff.wait(self._poke)

    def _sized(self, key: str, size: int | None) -> None:
        """Note the spool file of ``key`` holds ``size`` bytes (``None``: gone); ``_cond``
        held."""
        self._spool_bytes -= self._sizes.pop(key, 0)
        if size is not None:
            self._sizes[key] = size
            self._spool_bytes += size

    def _enforce_bound_locked(self) -> int:
        """Drop queued files beyond ``max_spool_files`` / ``max_spool_bytes`` (``_cond``
        held): track thumbnails first, oldest first (search's pictures give way to alerts'
        evidence), then the oldest snapshots and clips.

        Never the one being uploaded (``_queue[0]``).  One pass over the queue whatever is
        dropped (a clip of many megabytes may push out hundreds of thumbnails).  Returns how
        many were dropped.
        """
        over_files = len(self._gen) - self._max_spool_files
        over_bytes = self._spool_bytes - self._max_spool_bytes
        victims: dict[str, None] = {}  # ordered: thumbnails first, then the rest
        for thumbnails in (True, False):
            for key in itertools.islice(self._queue, 1, None):
                if over_files <= 0 and over_bytes <= 0:
                    break
                if key in victims or is_thumbnail_key(key) != thumbnails:
                    continue
                victims[key] = None
                over_files -= 1
                over_bytes -= self._sizes.get(key, 0)
        if victims:
            kept = [k for k in self._queue if k not in victims]
            self._queue.clear()
            self._queue.extend(kept)
            for victim in victims:
                self._queued.discard(victim)
                self._gen.pop(victim, None)
                self._sized(victim, None)
                (self.spool_dir / victim).unlink(missing_ok=True)
            self.dropped += len(victims)
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "evidence spool %s full (%d files or %d MiB): dropping the oldest, "
                    "track thumbnails before alerts' evidence "
                    "(see argus_evidence_spool_dropped_total)",
                    self.spool_dir,
                    self._max_spool_files,
                    self._max_spool_bytes >> 20,
                )
        else:
            self._dropping = False
        return len(victims)

    def _quarantine(self, key: str, path: Path, code: str) -> None:
        """Move a snapshot S3 refuses for good beside the spool, so the queue moves on."""
        target = self.quarantine_dir / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)
        QUARANTINED.inc()
        logger.error(
            "S3 refused evidence %s for good (%s); moved to %s, uploads go on",
            key,
            code,
            target,
        )

    def _upload(self, key: str) -> bool:
        """Upload the oldest spooled key; True if an object was written."""
        with self._cond:
            if key not in self._gen:  # deleted (``delete``) since it was queued
                if self._queue and self._queue[0] == key:
                    self._queue.popleft()
                    self._queued.discard(key)
                self._cond.notify_all()
                return False
            gen = self._gen[key]
            self._uploading = key
        path = self.spool_dir / key
        try:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                # Removed behind our back (someone cleaned the spool): nothing left to send.
                logger.error("spooled snapshot %s vanished before upload", key)
                self._done(key, gen, path, uploaded=False)
                return False
            try:
                self._client.put_object(
                    self.bucket,
                    key,
                    io.BytesIO(data),
                    len(data),
                    content_type=mimetypes.guess_type(key)[0] or CONTENT_TYPE,
                )
            except S3Error as e:
                if e.code == "NoSuchBucket":
                    self._bucket_ready = False
                if e.code in PERMANENT_CODES:
                    self._quarantine(key, path, str(e.code))
                    self._done(key, gen, path, uploaded=False)
                    return False
                raise
            UPLOADS.inc()
            UPLOADED_BYTES.inc(len(data))
            self._done(key, gen, path, uploaded=True)
        finally:
            with self._cond:
                self._uploading = None
                self._cond.notify_all()  # a ``delete`` of this key may be waiting
        logger.debug("uploaded evidence %s (%d bytes)", key, len(data))
        return True

    def _done(self, key: str, gen: int, path: Path, *, uploaded: bool) -> None:
        """Drop ``key`` from the queue; delete its spool file unless rewritten meanwhile."""
        with self._cond:
            if self._queue and self._queue[0] == key:
                self._queue.popleft()
                self._queued.discard(key)
            if self._gen.get(key) == gen:
                path.unlink(missing_ok=True)
                del self._gen[key]
                self._sized(key, None)
                if not self._closed:  # close() already took the leftovers off the gauge
                    SPOOL_DEPTH.dec()
            elif key in self._gen and key not in self._queued:  # rewritten meanwhile: again
                self._queue.append(key)
                self._queued.add(key)
            if uploaded:
                self.uploads += 1
                self._caught_up += 1
                self._on_success_locked()
            self._cond.notify_all()

    def _on_success_locked(self) -> None:
        """Bookkeeping and resume/drain log lines after an upload (``_cond`` held)."""
        self._reachable = True
        depth = len(self._gen)
        if self._down_since is not None:
            logger.info(
                "S3 evidence bucket %s reachable again after %.1f s (%d failed attempts); "
                "%d snapshots were spooled meanwhile, %d to upload",
                self.bucket,
                time.monotonic() - self._down_since,
                self._outage_failures,
                self._spooled_while_down,
                depth + 1,
            )
            self._down_since = None
            self._catching_up = True
            self._caught_up = 1
        if depth == 0:
            if self._catching_up:
                logger.info(
                    "evidence spool drained: %d backlog snapshots uploaded to %s",
                    self._caught_up,
                    self.bucket,
                )
            self._catching_up = False
            self._caught_up = 0

    def _on_failure(self, key: str, exc: Exception) -> None:
        UPLOAD_FAILURES.inc()
        reason = self._scrub(_describe(exc))
        with self._cond:
            self.failures += 1
            self._reachable = False
            self._last_error = reason
            depth = len(self._gen)
            first = self._down_since is None
            self._outage_failures += 1
            if first:
                self._down_since = time.monotonic()
                self._spooled_while_down = 0
                self._outage_failures = 1
        if first:
            logger.warning(
                "cannot upload evidence to bucket %s on %s (%s); spooling snapshots in %s "
                "(%d pending) and retrying with backoff",
                self.bucket,
                self.endpoint,
                reason,
                self.spool_dir,
                depth,
            )
        else:
            logger.debug("evidence upload of %s failed again: %s", key, reason)
