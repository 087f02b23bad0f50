"""Evidence snapshots: rendering a JPEG of the event and storing it under a safe key.

Keys look like ``"<camera_id>/<YYYY-MM-DD>/<event_id>.jpg"`` (see ``snapshot_key``):
``/``-separated segments of ``[A-Za-z0-9._-]`` that do not start with ``.``, so a key
can never name anything outside the store's root.  ``LocalEvidenceStore`` keeps them
as files; ``alerts.s3_evidence.S3EvidenceStore`` keeps them in an S3/MinIO bucket behind
the same ``EvidenceStore`` protocol (the key becomes the object name).

Optional capability: a store that can hand out a direct, short-lived URL to a snapshot
(a presigned S3 GET) also implements ``url_for`` and so satisfies ``UrlEvidenceStore``;
callers test for it with ``isinstance(store, UrlEvidenceStore)``.  ``url_for`` returns
``None`` when there is no URL to give *right now* (``LocalEvidenceStore``: never; the S3
store: while the snapshot is still only in its local spool); clients then fetch the
bytes through ``get`` instead.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from alerts.masking import mask_people
from selector.event import Event

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


class InvalidEvidenceKeyError(ValueError):
    """A key (or a part used to build one) is not allowed.

    Attributes:
        key: The offending key or key part.
        reason: Why it was refused.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid evidence key {key!r}: {reason}")


class EvidenceNotFoundError(LookupError):
    """No evidence stored under the key.

    Attributes:
        key: The key that was looked up.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no evidence under key {key!r}")


class SnapshotEncodeError(RuntimeError):
    """OpenCV could not encode the snapshot.

    Attributes:
        shape: Shape of the image that failed.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        super().__init__(f"cannot JPEG-encode image of shape {shape}")


@runtime_checkable
class EvidenceStore(Protocol):
    """Blob store for snapshot JPEGs addressed by validated keys."""

    def put(self, key: str, jpeg: bytes) -> None:
        """Store ``jpeg`` under ``key`` atomically (replacing any previous value)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises ``EvidenceNotFoundError``."""
        ...

    def exists(self, key: str) -> bool:
        """Whether something is stored under ``key``."""
        ...

    def delete(self, key: str) -> bool:
        """Remove what is stored under ``key`` (idempotent); whether something was there.

        Raises ``InvalidEvidenceKeyError`` for a bad key, ``OSError`` when the backing
        store fails (then the evidence may still be there: ask again later).
        """
        ...


MAX_URL_EXPIRY_S = 7 * 86400
"""Longest lifetime of a snapshot URL, seconds (the S3 presigning limit)."""


@runtime_checkable
class UrlEvidenceStore(EvidenceStore, Protocol):
    """An ``EvidenceStore`` that can also give a direct, short-lived URL to a snapshot.

    Optional: the API offers ``/snapshot-url`` only for stores that satisfy this
    protocol (``isinstance(store, UrlEvidenceStore)``); every store still serves the
    bytes through ``get``.
    """

    def url_for(self, key: str, expires_s: int | None = None) -> str | None:
        """A URL that GETs the JPEG under ``key`` without further credentials.

        Args:
            key: A validated evidence key.
            expires_s: Lifetime of the URL in seconds (1..``MAX_URL_EXPIRY_S``);
                ``None`` uses the store's default.

        Returns:
            The URL, or ``None`` when the store cannot give one for this key right
            now (it serves bytes only, or the snapshot is not yet uploaded).

        Raises:
            InvalidEvidenceKeyError: Bad key.
            EvidenceNotFoundError: Nothing stored under ``key``.
            ValueError: ``expires_s`` out of range.
            OSError: The backing service cannot be reached.
        """
        ...


def validate_segment(segment: str) -> str:
    """Check one key segment (also used for camera ids); returns it unchanged.

    Raises:
        InvalidEvidenceKeyError: Empty, too long, starts with ``.``, or has a
            character outside ``[A-Za-z0-9._-]``.
    """
    if not isinstance(segment, str) or _SEGMENT.fullmatch(segment) is None:
        raise InvalidEvidenceKeyError(
            str(segment),
            "segments are 1-128 of [A-Za-z0-9._-] and must not start with '.'",
        )
    return segment


def validate_key(key: str) -> str:
    """Check a whole key (``seg/seg/...``); returns it unchanged.

    Raises:
        InvalidEvidenceKeyError: Absolute, empty segment (``//``), ``.``/``..``,
            backslashes, NUL or any other character outside the allowed set, or
            longer than ``MAX_KEY_LENGTH``.
    """
    if not isinstance(key, str) or not key:
        raise InvalidEvidenceKeyError(str(key), "empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidEvidenceKeyError(key[:64] + "...", f"longer than {MAX_KEY_LENGTH}")
    if key.startswith("/"):
        raise InvalidEvidenceKeyError(key, "absolute keys are not allowed")
    for segment in key.split("/"):
        try:
            validate_segment(segment)
        except InvalidEvidenceKeyError as e:
            raise InvalidEvidenceKeyError(key, f"segment {segment!r}: {e.reason}") from e
    return key


def snapshot_key(camera_id: str, wall_time: float, event_id: str) -> str:
    """Key of an event's snapshot: ``"<camera_id>/<YYYY-MM-DD>/<event_id>.jpg"``.

    Args:
        camera_id: Camera id (must be a valid key segment).
        wall_time: UNIX seconds (UTC) of the event start; gives the UTC date folder.
        event_id: Event id (must be a valid key segment, e.g. a uuid).

    Raises:
        InvalidEvidenceKeyError: ``camera_id`` or ``event_id`` is not a valid segment.
    """
    validate_segment(camera_id)
    validate_segment(event_id)
    day = datetime.fromtimestamp(wall_time, UTC).strftime("%Y-%m-%d")
    return validate_key(f"{camera_id}/{day}/{event_id}.jpg")


def thumbnail_key(camera_id: str, wall_time: float, track_uid: str) -> str:
    """Key of a track's thumbnail: ``"<camera_id>/<YYYY-MM-DD>/track-<track_uid>.jpg"`` (the
    UTC date of the track's first sighting; its masked copy: :func:`masked_key`).

    Raises:
        InvalidEvidenceKeyError: ``camera_id`` or ``track_uid`` is not a valid segment.
    """
    validate_segment(camera_id)
    validate_segment(track_uid)
    day = datetime.fromtimestamp(wall_time, UTC).strftime("%Y-%m-%d")
    return validate_key(f"{camera_id}/{day}/{THUMBNAIL_PREFIX}{track_uid}.jpg")


THUMBNAIL_PREFIX = "track-"
"""A track thumbnail's file name starts with this (see :func:`thumbnail_key`)."""


def is_thumbnail_key(key: str) -> bool:
    """Whether ``key`` names a track's thumbnail or its masked copy (search's pictures),
    rather than an alert's evidence (snapshot, clip)."""
    return key.rpartition("/")[2].startswith(THUMBNAIL_PREFIX)


def clip_key(camera_id: str, wall_time: float, event_id: str) -> str:
    """Key of an event's video clip: ``"<camera_id>/<YYYY-MM-DD>/<event_id>.mp4"``.

    The same folder as the snapshot (:func:`snapshot_key`); the date is the UTC date of the
    event's start.

    Raises:
        InvalidEvidenceKeyError: ``camera_id`` or ``event_id`` is not a valid segment.
    """
    return snapshot_key(camera_id, wall_time, event_id)[: -len(".jpg")] + ".mp4"


MASKED_INFIX = ".masked"
"""Inserted before the extension of an original's key to name its masked copy."""


def masked_key(key: str) -> str:
    """Key of the masked copy of the evidence under ``key`` (people blurred):
    ``"cam/2026-12-06/<id>.jpg"`` -> ``"cam/2026-12-06/<id>.masked.jpg"``.

    Raises:
        InvalidEvidenceKeyError: ``key`` is not valid, has no extension, or is itself a
            masked copy's key.
    """
    validate_key(key)
    stem, dot, ext = key.rpartition(".")
    if not dot or "/" in ext or not stem:
        raise InvalidEvidenceKeyError(key, "has no extension")
    if stem.endswith(MASKED_INFIX):
        raise InvalidEvidenceKeyError(key, "is already a masked copy")
    return validate_key(f"{stem}{MASKED_INFIX}.{ext}")


def clip_info_key(clip: str) -> str:
    """Key of the JSON that describes a clip (asked and actual window, whether the video
    ended inside it): ``"<...>/<id>.mp4"`` -> ``"<...>/<id>.clip.json"``.

    Raises:
        InvalidEvidenceKeyError: ``clip`` is not a valid ``.mp4`` key.
    """
    validate_key(clip)
    if not clip.endswith(".mp4"):
        raise InvalidEvidenceKeyError(clip, "a clip's key ends in .mp4")
    return validate_key(clip[: -len(".mp4")] + ".clip.json")


def related_keys(key: str) -> list[str]:
    """Every key an event's evidence may use beside ``key`` (a snapshot or a clip key):
    the snapshot, the clip, their masked copies and the clip's description, ``key`` first.
    What retention deletes together.

    Raises:
        InvalidEvidenceKeyError: ``key`` is not a valid ``.jpg`` or ``.mp4`` key.
    """
    validate_key(key)
    stem, _, ext = key.rpartition(".")
    if ext not in ("jpg", "mp4") or stem.endswith(MASKED_INFIX):
        raise InvalidEvidenceKeyError(key, "not a snapshot (.jpg) or clip (.mp4) key")
    keys = [key]
    for other in (f"{stem}.jpg", f"{stem}.mp4"):
        if other not in keys:
            keys.append(other)
    keys += [masked_key(f"{stem}.jpg"), masked_key(f"{stem}.mp4"), f"{stem}.clip.json"]
    return [validate_key(k) for k in keys]


class LocalEvidenceStore:
    """``EvidenceStore`` on a local directory; each key is a file under ``root``.

    Writes are atomic (temporary file in the target directory, ``fsync``, then
    ``os.replace``), so a reader sees either the old or the new bytes, never half.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """
        Args:
            root: Directory holding the evidence (created if missing).
        """
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self.root / key).resolve()
        # Defence in depth (symlinks inside root): the file must stay under root.
        if not path.is_relative_to(self.root):
            raise InvalidEvidenceKeyError(key, "resolves outside the evidence root")
        return path

    def put(self, key: str, jpeg: bytes) -> None:
        """Store ``jpeg`` under ``key`` atomically.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            OSError: The file cannot be written.
        """
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.debug("stored evidence %s (%d bytes)", key, len(jpeg))

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            EvidenceNotFoundError: Nothing stored under it.
        """
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise EvidenceNotFoundError(key) from e

    def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key`` (raises on a bad key)."""
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove the file under ``key``; whether there was one (idempotent).

        The key's date folder (``<camera>/<YYYY-MM-DD>``) goes too once empty, but only
        when its date is two days or more before today (UTC): ``put`` creates the folder
        and then its temporary file in two steps, and removing the folder in between
        would fail that ``put``.  Evidence is written for recent events only (or beside an
        original still in the folder, which is then not empty), never into such a folder.

        Raises:
            InvalidEvidenceKeyError: Bad key.
            OSError: The file exists but cannot be removed.
        """
        path = self._path(key)
        if not path.is_file():
            return False
        try:
            path.unlink()
        except FileNotFoundError:  # removed meanwhile (by another sweeper): not ours
            return False
        logger.debug("deleted evidence %s", key)
        folder = path.parent
        try:
            day = datetime.strptime(folder.name, "%Y-%m-%d").replace(tzinfo=UTC)
            if folder != self.root and (datetime.now(UTC) - day).days >= 2:
                folder.rmdir()  # refused unless empty
        except (ValueError, OSError):  # not a date folder, or not empty: it stays
            pass
        return True

    def url_for(self, key: str, expires_s: int | None = None) -> str | None:
        """Always ``None``: local files are served as bytes by the API (``get``).

        Raises:
            InvalidEvidenceKeyError: Bad key.
        """
        self._path(key)
        return None


BOX_COLOR = (0, 0, 255)
"""BGR red for the object box."""
ZONE_COLOR = (0, 255, 255)
"""BGR yellow for the zone outline."""


def render_snapshot(
    image: npt.NDArray[np.uint8],
    bbox: Sequence[float] | None,
    label: str,
    *,
    zone_polygon: npt.NDArray[np.floating] | npt.NDArray[np.integer] | None = None,
    caption: str = "",
    quality: int = 85,
) -> bytes:
    """Draw the event on a copy of the frame and encode it as JPEG.

    Args:
        image: Frame, shape ``(H, W, 3)``, dtype ``uint8``, BGR.  Not modified.
        bbox: ``[x1, y1, x2, y2]`` in pixels, or ``None`` for no box.
        label: Text drawn above the box (e.g. ``"person 0.87"``); ignored without box.
        zone_polygon: Zone vertices in pixels, shape ``(k, 2)`` (k >= 2), or ``None``.
        caption: Text on a dark band at the top-left (camera, time, event type).
        quality: JPEG quality 1..100.

    Returns:
        The JPEG bytes.

    Raises:
        ValueError: ``image`` is not ``(H, W, 3) uint8``, ``bbox`` has not 4 values,
            the polygon is not ``(k, 2)`` or ``quality`` is out of range.
        SnapshotEncodeError: OpenCV failed to encode.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    canvas = np.ascontiguousarray(image).copy()
    h, w = canvas.shape[:2]
    thickness = max(2, round(min(h, w) / 240))
    scale = max(0.4, min(h, w) / 720)
    font = cv2.FONT_HERSHEY_SIMPLEX

    if zone_polygon is not None:
        poly = np.asarray(zone_polygon, dtype=np.float64)
        if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 2:
            raise ValueError(f"zone_polygon must be (k >= 2, 2), got {poly.shape}")
        pts = np.round(poly).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, ZONE_COLOR, thickness, cv2.LINE_AA)

    if bbox is not None:
        if len(bbox) != 4:
            raise ValueError(f"bbox must be [x1, y1, x2, y2], got {list(bbox)}")
        x1, y1, x2, y2 = (round(float(v)) for v in bbox)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, thickness)
        if label:
            (tw, th), base = cv2.getTextSize(label, font, scale, 1)
            ty = y1 - 4 if y1 - th - base - 4 >= 0 else y1 + th + base + 4
            cv2.rectangle(
                canvas, (x1, ty - th - base), (x1 + tw + 4, ty + base // 2), BOX_COLOR, -1
            )
            cv2.putText(
                canvas,
                label,
                (x1 + 2, ty - base // 2),
                font,
                scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )

    if caption:
        (tw, th), base = cv2.getTextSize(caption, font, scale, 1)
        band = canvas[: th + base + 8, : tw + 8]
        band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken for contrast
        cv2.putText(canvas, caption, (4, th + 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA)

    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise SnapshotEncodeError(tuple(canvas.shape))
    return bytes(buf.tobytes())


def save_snapshot(
    store: EvidenceStore,
    event: Event,
    image: npt.NDArray[np.uint8],
    *,
    zone_polygon: npt.NDArray[np.floating] | npt.NDArray[np.integer] | None = None,
    quality: int = 85,
    people: npt.NDArray[np.float32] | None = None,
) -> Event:
    """Render the event's snapshot from ``image``, store it with its masked copy (people
    blurred: what the API serves by default, stored first), return the event carrying the
    snapshot's key.

    Args:
        store: Where to put the JPEG.
        event: The (start) event; its ``bbox``, ``label``, ``score`` are drawn.
        image: The frame the event started on, ``(H, W, 3)`` uint8 BGR.
        zone_polygon: Zone outline ``(k, 2)`` pixels, or ``None``.
        quality: JPEG quality.
        people: ``(n, 4)`` boxes of the people in ``image``, pixels, blurred in the
            masked copy; ``None``: the event's own box when its label is ``person``.

    Returns:
        ``event.with_snapshot(key)``.

    Raises:
        InvalidEvidenceKeyError: camera or event id unusable as a key segment.
        OSError: The store failed.
    """
    key = snapshot_key(event.camera_id, event.wall_time, event.event_id)
    label = event.label or event.type
    if event.score is not None:
        label = f"{label} {event.score:.2f}"
    when = datetime.fromtimestamp(event.wall_time, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    zone = f" [{event.zone}]" if event.zone else ""
    caption = f"{event.camera_id} {when} {event.type}{zone} p{event.priority}"
    if people is None:
        people = np.asarray(
            [event.bbox] if event.bbox is not None and event.label == "person" else [],
            np.float32,
        ).reshape(-1, 4)
    for picture, where in ((mask_people(image, people), masked_key(key)), (image, key)):
        jpeg = render_snapshot(
            picture, event.bbox, label, zone_polygon=zone_polygon, caption=caption, quality=quality
        )
        store.put(where, jpeg)
    return event.with_snapshot(key)
