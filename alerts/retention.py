"""Retention: alerts, their snapshots and clips, and the track summaries of forensic search
with their thumbnails, older than their camera's days are deleted.

``RetentionJob`` sweeps once per ``every_s``: it first claims the period in the store
(``RetentionStore.claim_job``: a conditional write, so of several alert-service replicas
sharing the store exactly one sweeps), then, camera by camera, takes the alerts whose event
started before the camera's cutoff, oldest first and in batches, deletes all their evidence
(``alerts.evidence.related_keys``: snapshot, clip, masked copies, the clip's description)
and then their rows.  An alert whose evidence cannot be deleted (S3 down, a file that
cannot be removed) stays, evidence and all, for the next sweep.  Track summaries
(``alerts.store.tracks``) go the same way, camera by camera with the same days: those last
seen before the cutoff, the thumbnail (and its masked copy) first, then the row; a track whose
thumbnail cannot be deleted stays for the next sweep.  Audit entries are never deleted; each
sweep that deleted something adds one (``retention.sweep`` by ``retention``).

A camera's days: the shortest of ``group_days`` over the camera groups it is in that
``group_days`` names; ``days`` when it names none of them (and for cameras the config does
not know: alerts of a camera removed since, or of another site's worker); ``None``: kept
forever.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from prometheus_client import Counter

from alerts.evidence import (
    EvidenceStore,
    InvalidEvidenceKeyError,
    masked_key,
    related_keys,
    validate_key,
)
from alerts.jobs import DaemonJob
from alerts.store import AlertStoreError, AuditEntry, AuditStore, ChangeFeedStore, DetailValue
from alerts.store.protocols import ExpiredAlert, RetentionStore
from alerts.store.tracks import ExpiredTrack, TrackStore

logger = logging.getLogger(__name__)

_Row = TypeVar("_Row", ExpiredAlert, ExpiredTrack)
"""What a sweep deletes: an expired alert or an expired track."""

RETENTION_DELETED = Counter(
    "argus_retention_deleted_total",
    "Deleted by retention: alerts (rows), snapshots (JPEG objects, masked copies included), "
    "clips (MP4 objects, masked copies included), tracks (track summary rows) and thumbnails "
    "(the tracks' pictures, masked copies included).",
    ["kind"],
)
JOB_NAME = "retention"
"""The job's name in the store's ``jobs`` table."""
ACTOR = "retention"
"""The audit actor of a sweep (``actor_kind`` ``system``)."""
DAY_S = 86400.0
REMOVALS_KEPT_S = 7 * DAY_S
"""How long the numbers of deleted alerts are kept for pages following the change sequence
(``ChangeFeedStore.prune_removals``)."""
MAX_FAILURES_PER_CAMERA = 10
"""Evidence deletes that may fail for one camera in one sweep before it waits for the next
(S3 down: no point asking for every alert; a few bad ones are skipped, not a wall)."""
_EARLY_FRACTION = 0.01
"""A claim holds for ``every_s`` less this fraction, so a replica whose timer fires a little
early (or whose clock is a little behind) still wins its next period instead of skipping it."""


class RetentionJobStore(RetentionStore, AuditStore, Protocol):
    """What the job needs of a store: deleting old alerts and appending to the audit trail."""


@dataclass(frozen=True)
class SweepResult:
    """What one ``RetentionJob.sweep_once`` did.

    Attributes:
        claimed: Whether this replica won the period (``False``: another one sweeps; all
            counts are zero).
        alerts: Alert rows deleted.
        snapshots: Snapshot objects deleted (``.jpg``, masked copies included).
        clips: Clip objects deleted (``.mp4``, masked copies included).
        kept: Expired alerts left for the next sweep (their evidence could not be deleted).
        cameras: Cameras with alerts or tracks deleted, sorted.
        tracks: Track summary rows deleted.
        thumbnails: Thumbnail objects deleted (masked copies included).
        tracks_kept: Expired tracks left for the next sweep (their thumbnail could not be
            deleted).
    """

    claimed: bool
    alerts: int = 0
    snapshots: int = 0
    clips: int = 0
    kept: int = 0
    cameras: tuple[str, ...] = ()
    tracks: int = 0
    thumbnails: int = 0
    tracks_kept: int = 0


@dataclass
class _Tally:
    alerts: int = 0
    snapshots: int = 0
    clips: int = 0
    kept: int = 0
    tracks: int = 0
    thumbnails: int = 0
    tracks_kept: int = 0


def default_holder() -> str:
    """``host/pid/random``: who holds a claim, for operators reading the ``jobs`` table."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _evidence_keys(alert: ExpiredAlert) -> list[str]:
    """Every evidence key of the alert (its snapshot's and clip's related keys), no repeats.

    A stored key that is not a snapshot or clip key (another layout) is deleted alone; one
    that is no valid key at all names nothing this store could hold (logged, skipped).
    """
    keys: dict[str, None] = {}
    for key in (alert.snapshot, alert.clip):
        if key is None:
            continue
        try:
            keys.update(dict.fromkeys(related_keys(key)))
        except InvalidEvidenceKeyError:
            try:
                keys[validate_key(key)] = None
            except InvalidEvidenceKeyError as e:
                logger.warning("alert %s: evidence key not deleted: %s", alert.event_id, e)
    return list(keys)


def _thumbnail_keys(track: ExpiredTrack) -> list[str]:
    """The track's thumbnail key and its masked copy's; just the key when it has no masked
    form (no extension); none when it is no valid key (logged: it names nothing stored)."""
    if track.thumbnail is None:
        return []
    try:
        return [track.thumbnail, masked_key(track.thumbnail)]
    except InvalidEvidenceKeyError:
        try:
            return [validate_key(track.thumbnail)]
        except InvalidEvidenceKeyError as e:
            logger.warning("track %s: thumbnail key not deleted: %s", track.track_uid, e)
            return []


class RetentionJob(DaemonJob):
    """Deletes expired alerts and their evidence in the background (``start``/``stop``, or
    ``with``); ``sweep_once`` does one period's work now.

    Args:
        store: The alert store (``RetentionStore`` and ``AuditStore``).
        evidence: Where the snapshots and clips are.
        days: Days to keep the alerts of a camera in no group of ``group_days``
            (``None``: forever).
        group_days: Days per camera group; a camera in several keeps the shortest.
        camera_groups: The groups of each camera of the config.
        every_s: How often to sweep, seconds (one replica per period).
        batch_size: Alerts taken (and their rows deleted) at once, 1..500.
        holder: Who claims the periods (default ``default_holder()``).
        clock: UNIX time source.

    Raises:
        ValueError: A bound is out of range (days < 1, ``every_s`` <= 0, ...).
    """

    thread_name = "retention"

    def __init__(
        self,
        store: RetentionJobStore,
        evidence: EvidenceStore,
        *,
        days: int | None,
        group_days: Mapping[str, int] | None = None,
        camera_groups: Mapping[str, Collection[str]] | None = None,
        every_s: float = 3600.0,
        batch_size: int = 200,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        group_days = dict(group_days or {})
        bad = {g: d for g, d in group_days.items() if d < 1}
        if (days is not None and days < 1) or bad:
            raise ValueError(f"retention days must be >= 1, got days={days}, groups {bad}")
        if not every_s > 0 or not 1 <= batch_size <= 500:
            raise ValueError(
                f"RetentionJob needs every_s > 0 ({every_s}) and 1 <= batch_size <= 500 "
                f"({batch_size})"
            )
        super().__init__()
        self._store = store
        self._evidence = evidence
        self.days = days
        self.group_days = group_days
        self.camera_groups = {cam: frozenset(g) for cam, g in (camera_groups or {}).items()}
        self.every_s = every_s
        self.batch_size = batch_size
        self.holder = holder or default_holder()
        self._clock = clock

    def days_for(self, camera_id: str) -> int | None:
        """How many days the alerts of ``camera_id`` are kept (``None``: forever)."""
        groups = self.camera_groups.get(camera_id, frozenset())
        listed = [days for group, days in self.group_days.items() if group in groups]
        return min(listed) if listed else self.days

    def sweep_once(self, now: float | None = None) -> SweepResult:
        """Claim this period and, if won, delete what expired by ``now`` (UNIX s).

        Raises:
            AlertStoreError: The claim, or the audit entry, could not be written (a
                camera whose alerts cannot be read or deleted is logged and skipped).
        """
        now = self._clock() if now is None else now
        every = self.every_s * (1.0 - _EARLY_FRACTION)
        if not self._store.claim_job(JOB_NAME, holder=self.holder, now=now, every_s=every):
            logger.debug("retention: another replica sweeps this period")
            return SweepResult(claimed=False)
        total = _Tally()
        cameras: list[str] = []
        for camera_id in self._store.alert_cameras():
            if self._stop.is_set():
                break
            days = self.days_for(camera_id)
            if days is None:
                continue
            before = total.alerts
            try:
                self._sweep_camera(camera_id, now - days * DAY_S, total)
            except AlertStoreError as e:  # the next sweep tries again
                logger.warning("retention of camera %s failed: %s", camera_id, e)
            if total.alerts > before:
                cameras.append(camera_id)
        if isinstance(self._store, TrackStore):
            cameras.extend(self._sweep_tracks(now, total))
        if isinstance(self._store, ChangeFeedStore):
            try:  # deleted alerts' numbers: a page away longer than this reloads its list
                self._store.prune_removals(before=now - REMOVALS_KEPT_S)
            except AlertStoreError as e:  # the next sweep tries again
                logger.warning("retention: cannot prune the removal log: %s", e)
        result = SweepResult(
            claimed=True,
            alerts=total.alerts,
            snapshots=total.snapshots,
            clips=total.clips,
            kept=total.kept,
            cameras=tuple(sorted(set(cameras))),
            tracks=total.tracks,
            thumbnails=total.thumbnails,
            tracks_kept=total.tracks_kept,
        )
        self._report(result, now)
        return result

    def _sweep_camera(self, camera_id: str, cutoff: float, tally: _Tally) -> None:
        """Delete the camera's alerts that started before ``cutoff``, batch by batch,
        adding to ``tally``."""

        def deleted(n: int) -> None:
            tally.alerts += n
            RETENTION_DELETED.labels(kind="alert").inc(n)

        def kept() -> None:
            tally.kept += 1

        self._sweep_batches(
            camera_id,
            lambda offset: self._store.expired_alerts(
                camera_id, before=cutoff, limit=self.batch_size, offset=offset
            ),
            lambda alert: self._delete_evidence(alert, tally),
            lambda alert: alert.event_id,
            self._store.delete_alerts,
            deleted,
            kept,
            ("evidence", "alerts"),
        )

    def _sweep_batches(
        self,
        camera_id: str,
        expired: Callable[[int], Sequence[_Row]],
        delete_evidence: Callable[[_Row], bool],
        key: Callable[[_Row], str],
        delete_rows: Callable[[list[str]], int],
        deleted: Callable[[int], object],
        kept: Callable[[], object],
        what: tuple[str, str],
    ) -> None:
        """The batch loop of a camera's sweep (alerts or tracks): take the expired rows
        (``expired(offset)``, oldest first), delete each one's evidence, then the rows whose
        evidence went (``deleted`` told how many, batch by batch; ``kept`` told of each one
        kept, which stays first in line: the next batch skips them), until none is left or
        ``MAX_FAILURES_PER_CAMERA`` were kept (``what``: how the warning names the evidence and
        the rows, e.g. ``("evidence", "alerts")``)."""
        failures = 0
        while not self._stop.is_set():
            batch = expired(failures)
            if not batch:
                return
            gone: list[str] = []
            for row in batch:
                if self._stop.is_set():  # stopping: delete the rows of what already went
                    break
                if delete_evidence(row):
                    gone.append(key(row))
                    continue
                kept()
                failures += 1
                if failures >= MAX_FAILURES_PER_CAMERA:
                    break
            deleted(delete_rows(gone))
            if failures >= MAX_FAILURES_PER_CAMERA:
                logger.warning(
                    "retention of camera %s: the %s of %d %s could not be deleted; the rest "
                    "waits for the next sweep",
                    camera_id,
                    what[0],
                    failures,
                    what[1],
                )
                return
            if len(batch) < self.batch_size:
                return

    def _sweep_tracks(self, now: float, tally: _Tally) -> list[str]:
        """Delete every camera's tracks last seen before its cutoff (``now`` less its days);
        the cameras with tracks deleted."""
        store = self._store
        assert isinstance(store, TrackStore)
        cameras: list[str] = []
        try:
            track_cameras = store.track_cameras()
        except AlertStoreError as e:  # the next sweep tries again
            logger.warning("retention of tracks failed: %s", e)
            return cameras
        for camera_id in track_cameras:
            if self._stop.is_set():
                break
            days = self.days_for(camera_id)
            if days is None:
                continue
            before = tally.tracks
            try:
                self._sweep_camera_tracks(store, camera_id, now - days * DAY_S, tally)
            except AlertStoreError as e:  # the next sweep tries again
                logger.warning("retention of the tracks of camera %s failed: %s", camera_id, e)
            if tally.tracks > before:
                cameras.append(camera_id)
        return cameras

    def _sweep_camera_tracks(
        self, store: TrackStore, camera_id: str, cutoff: float, tally: _Tally
    ) -> None:
        """Delete the camera's tracks last seen before ``cutoff``, batch by batch (their
        thumbnails first), adding to ``tally``; as ``_sweep_camera`` does for alerts."""

        def deleted(n: int) -> None:
            tally.tracks += n
            RETENTION_DELETED.labels(kind="track").inc(n)

        def kept() -> None:
            tally.tracks_kept += 1

        self._sweep_batches(
            camera_id,
            lambda offset: store.expired_tracks(
                camera_id, before=cutoff, limit=self.batch_size, offset=offset
            ),
            lambda track: self._delete_thumbnail(track, tally),
            lambda track: track.track_uid,
            store.delete_tracks,
            deleted,
            kept,
            ("thumbnails", "tracks"),
        )

    def _delete_thumbnail(self, track: ExpiredTrack, tally: _Tally) -> bool:
        """Delete the track's thumbnail and its masked copy; ``False`` (logged) when a
        delete failed."""
        for key in _thumbnail_keys(track):
            try:
                deleted = self._evidence.delete(key)
            except (OSError, InvalidEvidenceKeyError) as e:
                logger.warning(
                    "retention: cannot delete thumbnail %s of track %s (kept for the next "
                    "sweep): %s",
                    key,
                    track.track_uid,
                    e,
                )
                return False
            if deleted:
                tally.thumbnails += 1
                RETENTION_DELETED.labels(kind="thumbnail").inc()
        return True

    def _delete_evidence(self, alert: ExpiredAlert, tally: _Tally) -> bool:
        """Delete every evidence key of ``alert``; ``False`` (logged) when one failed."""
        for key in _evidence_keys(alert):
            try:
                deleted = self._evidence.delete(key)
            except (OSError, InvalidEvidenceKeyError) as e:
                logger.warning(
                    "retention: cannot delete evidence %s of alert %s (kept for the next "
                    "sweep): %s",
                    key,
                    alert.event_id,
                    e,
                )
                return False
            if not deleted:
                continue
            if key.endswith(".jpg"):
                tally.snapshots += 1
                RETENTION_DELETED.labels(kind="snapshot").inc()
            elif key.endswith(".mp4"):
                tally.clips += 1
                RETENTION_DELETED.labels(kind="clip").inc()
        return True

    def _report(self, result: SweepResult, now: float) -> None:
        """The sweep's log line and, when it deleted something, its audit entry."""
        if not (
            result.alerts or result.snapshots or result.clips or result.tracks or result.thumbnails
        ):
            logger.debug(
                "retention sweep: nothing expired (%d alerts, %d tracks kept for the next sweep)",
                result.kept,
                result.tracks_kept,
            )
            return
        logger.info(
            "retention sweep: deleted %d alerts, %d snapshots, %d clips, %d tracks, "
            "%d thumbnails (cameras: %s); %d alerts, %d tracks kept for the next sweep",
            result.alerts,
            result.snapshots,
            result.clips,
            result.tracks,
            result.thumbnails,
            ", ".join(result.cameras) or "-",
            result.kept,
            result.tracks_kept,
        )
        detail: dict[str, DetailValue | list[str]] = {
            "alerts": result.alerts,
            "snapshots": result.snapshots,
            "clips": result.clips,
            "kept": result.kept,
            "cameras": list(result.cameras),
            "holder": self.holder,
        }
        if result.tracks or result.thumbnails or result.tracks_kept:
            # only then: entries of sweeps that found no tracks read as they always did
            detail |= {
                "tracks": result.tracks,
                "thumbnails": result.thumbnails,
                "tracks_kept": result.tracks_kept,
            }
        self._store.append_audit(
            AuditEntry(
                at=datetime.fromtimestamp(now, UTC),
                actor=ACTOR,
                actor_kind="system",
                action="retention.sweep",
                detail=detail,
            )
        )

    def _run(self) -> None:
        while True:
            try:
                self.sweep_once()
            except AlertStoreError as e:  # the next period asks again
                logger.warning("retention sweep failed: %s", e)
            except Exception:  # a bug must not end the job silently
                logger.exception("retention sweep failed")
            if self._stop.wait(self.every_s):
                return
