"""Track summaries for forensic search: what each track was, where, when, which way it
went and what it looked like, published once when the track ends.

The runner hands :class:`TrackSummarizer` every frame the detector ran on (the frame's
pixels and the tracker's output) and the stream time of every other frame.  Per track
it keeps, in bounded memory:

* the first and last sighting (stream and wall time), the zones its foot point entered,
  and the foot points it started and ended at (the direction of travel);
* the named colours, measured at most every ``sample_every_s`` on sightings whose box is
  tall enough and clear of the picture's edge (:func:`detectors.appearance.part_shares`:
  upper and lower body for people, the body for anything else), summed over the track:
  the summary's colour per part is the most frequent over all its sightings, and the
  33-number appearance descriptor is the three parts' average shares;
* the median box size over its latest ``MAX_SIZES`` sizes kept;
* one thumbnail: the crop of its best sighting (the largest box clear of the edges, of a
  high score) with a margin, and a masked copy of it, the whole crop blurred as a person
  is (:func:`alerts.masking.mask_people`): what is left are its colours and shape.  The
  whole crop, not only the tracked people in it: a person the detector missed or took
  for something else (people on a bench seen as a car happen on real footage) must not
  show in the copy operators see.  Cut when that sighting is seen, encoded once, when
  the track ends.

A track ends when it has not been seen for ``end_after_s`` of stream time (longer than
the tracker keeps a lost track), or when the camera's stream ends; a track that lasts has
its summary as it stands published every ``interim_every_s`` (10 min) meanwhile, which the
final one replaces.  Its summary record
(``alerts/track.schema.json``) goes to ``publish`` (the event bus) and its thumbnails to
``store_thumbnail`` (the evidence store).  Tracks seen on fewer than ``min_sightings``
detector frames (flickers) are dropped without a record.

Cost: ``argus bench`` reports it (``indexing``): 5.7 ms of CPU per camera-second of
vtest.avi (about 10 people in view), 1.2 % of the pipeline's CPU with every frame through
the detector (2-core AMD EPYC, 2026-12-07; ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from alerts.evidence import masked_key, thumbnail_key
from alerts.masking import WHOLE_PICTURE, mask_people
from argus import metrics
from detectors.appearance import COLOUR_NAMES, dominant, part_shares
from detectors.detections import Detections
from selector.zones import PolygonZone

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]

TRACK_NAMESPACE = uuid.UUID("6a1f4f0e-2f9b-4d61-9a57-4f4d0c1e7a11")
"""uuid5 namespace of track uids (camera, stream and tracker id)."""
PARTS: tuple[str, ...] = ("upper", "lower", "body")
MAX_SIZES = 64
"""Box sizes kept per track for the median: the latest ones (after the first 64, every
other sighting's)."""
MAX_ZONES = 64
"""Zones named per track at most (the schema's bound): the first ones entered."""
EDGE_PX = 2.0
"""A box within this many pixels of the picture's edge is cut off: no colours, no thumbnail."""
THUMB_HEIGHT_PX = 160
"""Thumbnails are scaled down to at most this height."""
THUMB_MARGIN = 0.12
"""The thumbnail's crop extends the box by this share of its size on every side."""
JPEG_QUALITY = 80

Publish = Callable[[dict[str, Any]], None]
StoreThumbnail = Callable[[str, bytes], None]


def track_uid(camera_id: str, stream_id: str, track_id: int) -> str:
    """The installation-wide id of a track: a uuid5 of its camera, its stream (the run's
    stream id) and its tracker id, so a redelivered summary replaces itself."""
    return str(uuid.uuid5(TRACK_NAMESPACE, f"{camera_id}/{stream_id}/{track_id}"))


def _label(names: Sequence[str], class_id: int) -> str:
    """The record's label of ``class_id``: its class name in lower case, spaces and
    dashes kept, other characters dropped (``"class-<id>"`` when nothing is left)."""
    raw = names[class_id] if 0 <= class_id < len(names) else ""
    text = "".join(c for c in raw.lower() if c.isascii() and (c.isalnum() or c in " _-"))
    text = text.strip()[:40]
    return text if text[:1].isalpha() else f"class-{class_id}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _direction(start: tuple[float, float], end: tuple[float, float], height: float) -> str:
    """Net direction in the picture from foot point ``start`` to ``end`` (px): ``still``
    when it moved less than its own height ``height`` (px)."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    if max(abs(dx), abs(dy)) < max(height, 1.0):
        return "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


@dataclass
class _Log:
    """What is kept of one track while it lasts."""

    track_id: int
    label: str
    person: bool
    first_s: float
    first_wall: float
    first_foot: tuple[float, float]
    last_s: float = 0.0
    last_wall: float = 0.0
    last_foot: tuple[float, float] = (0.0, 0.0)
    sightings: int = 0
    zones: list[str] = field(default_factory=list)
    shares: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    next_sample_s: float = 0.0
    widths: list[float] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    best: float = -1.0
    crop: U8 | None = None
    masked: U8 | None = None
    bbox: tuple[float, float, float, float] | None = None
    interims: int = 0
    """Summaries published while it lasts (see ``TrackSummarizer.interim_every_s``)."""


class TrackSummarizer:
    """Builds one camera's track summaries (see the module docstring).  Not thread-safe:
    one camera's frames come from one thread."""

    def __init__(
        self,
        camera_id: str,
        *,
        publish: Publish,
        store_thumbnail: StoreThumbnail | None = None,
        zones: Mapping[str, PolygonZone] | None = None,
        person_ids: frozenset[int] = frozenset({0}),
        run_id: str | None = None,
        sample_every_s: float = 0.5,
        end_after_s: float = 6.0,
        min_height_px: float = 24.0,
        min_sightings: int = 3,
        interim_every_s: float = 600.0,
    ) -> None:
        """
        Args:
            camera_id: The camera.
            publish: Takes each summary record (the event bus's ``publish``).
            store_thumbnail: Stores one JPEG under a key (the evidence store's ``put``);
                ``None``: no thumbnails.
            zones: The camera's zones by name (which ones a track entered).
            person_ids: Class ids of people (named upper and lower colours).
            run_id: The worker run, written into each record.
            sample_every_s: Colours are measured at most this often per track, stream s.
            end_after_s: A track unseen this long (stream s) has ended.
            min_height_px: Boxes shorter than this give no colours and no thumbnail.
            min_sightings: Tracks seen on fewer detector frames are not summarised.
            interim_every_s: A track followed this long (stream s) has its summary as it
                stands published, and again every as long, so someone waiting for hours
                or a parked car can be found before it leaves (and is not lost with the
                worker); the final summary replaces them (same ``track_uid``).
        """
        self.camera_id = camera_id
        self._publish = publish
        self._store_thumbnail = store_thumbnail
        self._zones = dict(zones or {})
        self._person_ids = person_ids
        self.run_id = run_id
        self.sample_every_s = sample_every_s
        self.end_after_s = end_after_s
        self.min_height_px = min_height_px
        self.min_sightings = min_sightings
        self.interim_every_s = interim_every_s
        self.stream_id = ""
        self._logs: dict[int, _Log] = {}
        self.published = 0
        self.dropped = 0
        self.seconds = 0.0
        """CPU time of the calling thread spent in this summariser (observing, sampling,
        encoding thumbnails), seconds (``time.thread_time``: not inflated by other threads
        or processes)."""

    def _spent(self, seconds: float) -> None:
        self.seconds += seconds
        metrics.INDEX_SECONDS.labels(self.camera_id).inc(max(0.0, seconds))

    @property
    def open_tracks(self) -> int:
        """Tracks being followed now."""
        return len(self._logs)

    def observe(self, image: U8, tracks: Detections, pts_s: float, wall_time: float) -> None:
        """Take one frame the detector ran on.

        Args:
            image: ``(H, W, 3)`` uint8 BGR frame.
            tracks: The tracker's output for it (boxes in frame pixels, ``tracker_id``).
            pts_s: Its stream time, seconds.
            wall_time: Its wall-clock time, UNIX seconds.
        """
        t0 = time.thread_time()
        try:
            height, width = image.shape[:2]
            feet = tracks.ground_points if len(tracks) else np.empty((0, 2))
            for i in range(len(tracks)):
                tid = int(tracks.tracker_id[i])
                if tid < 0:
                    continue
                x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
                box = (x1, y1, x2, y2)
                if not all(math.isfinite(v) for v in box) or x2 <= x1 or y2 <= y1:
                    continue  # a broken box says nothing about the track
                foot = (float(feet[i][0]), float(feet[i][1]))
                entry = self._logs.get(tid)
                if entry is None:
                    cid = int(tracks.class_id[i])
                    entry = _Log(
                        track_id=tid,
                        label=_label(tracks.names, cid),
                        person=cid in self._person_ids,
                        first_s=pts_s,
                        first_wall=wall_time,
                        first_foot=foot,
                        next_sample_s=pts_s,
                    )
                    self._logs[tid] = entry
                self._sighting(
                    entry,
                    image,
                    box,
                    foot,
                    float(tracks.score[i]),
                    pts_s,
                    wall_time,
                    (width, height),
                )
            self._end_stale(pts_s)
        finally:
            self._spent(time.thread_time() - t0)

    def tick(self, pts_s: float) -> None:
        """Take the stream time of a frame the detector did not run on (ends stale tracks)."""
        if self._logs:
            t0 = time.thread_time()
            self._end_stale(pts_s)
            self._spent(time.thread_time() - t0)

    def finish(self) -> None:
        """The stream ended: publish every track still followed."""
        t0 = time.thread_time()
        for tid in list(self._logs):
            self._end(tid)
        self._spent(time.thread_time() - t0)

    # -- per sighting ---------------------------------------------------------------------

    def _sighting(
        self,
        entry: _Log,
        image: U8,
        box: tuple[float, float, float, float],
        foot: tuple[float, float],
        score: float,
        pts_s: float,
        wall_time: float,
        size: tuple[int, int],
    ) -> None:
        entry.sightings += 1
        entry.last_s, entry.last_wall, entry.last_foot = pts_s, wall_time, foot
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if len(entry.heights) < MAX_SIZES or entry.sightings % 2 == 0:
            if len(entry.heights) >= MAX_SIZES:
                entry.widths.pop(0)
                entry.heights.pop(0)
            entry.widths.append(w)
            entry.heights.append(h)
        for name, zone in self._zones.items():
            if len(entry.zones) >= MAX_ZONES:
                break
            if name not in entry.zones and bool(zone.contains(np.array([foot]))[0]):
                entry.zones.append(name)
        width, height = size
        clear = x1 > EDGE_PX and y1 > EDGE_PX and x2 < width - EDGE_PX and y2 < height - EDGE_PX
        if not clear or h < self.min_height_px or pts_s < entry.next_sample_s:
            return
        entry.next_sample_s = pts_s + self.sample_every_s
        entry.samples += 1
        for part, shares in part_shares(image, box, person=entry.person).items():
            acc = entry.shares.get(part)
            entry.shares[part] = shares.astype(np.float64) + (0.0 if acc is None else acc)
            entry.counted[part] = entry.counted.get(part, 0) + 1
        quality = h * w * (0.5 + 0.5 * score)
        if quality > entry.best * 1.1 and self._store_thumbnail is not None:
            entry.best = quality
            entry.bbox = box
            entry.crop, entry.masked = self._crop(image, box)

    @staticmethod
    def _crop(image: U8, box: tuple[float, float, float, float]) -> tuple[U8, U8]:
        """The thumbnail's crop around ``box`` and its masked copy (all of it blurred),
        scaled to at most ``THUMB_HEIGHT_PX`` high."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = box
        mx, my = (x2 - x1) * THUMB_MARGIN, (y2 - y1) * THUMB_MARGIN
        c0, r0 = int(max(0, x1 - mx)), int(max(0, y1 - my))
        c1, r1 = int(min(width, x2 + mx)), int(min(height, y2 + my))
        crop = np.ascontiguousarray(image[r0:r1, c0:c1])
        if crop.shape[0] > THUMB_HEIGHT_PX:  # scaled first: a blur made at full size and
            # then scaled down would be scaled away with it (a 1600 px person stays legible)
            scale = THUMB_HEIGHT_PX / crop.shape[0]
            dsize = (max(1, round(crop.shape[1] * scale)), THUMB_HEIGHT_PX)
            crop = np.asarray(cv2.resize(crop, dsize, interpolation=cv2.INTER_AREA), np.uint8)
        return crop, mask_people(crop, WHOLE_PICTURE)

    # -- ending ---------------------------------------------------------------------------

    def _end_stale(self, pts_s: float) -> None:
        for tid in [t for t, e in self._logs.items() if pts_s - e.last_s > self.end_after_s]:
            self._end(tid)
        for tid, entry in self._logs.items():  # long tracks: searchable while they last
            if pts_s - entry.first_s >= self.interim_every_s * (entry.interims + 1):
                entry.interims += 1
                if self._send(entry, tid):
                    metrics.TRACK_SUMMARIES.labels(self.camera_id, "interim").inc()

    def _end(self, tid: int) -> None:
        entry = self._logs.pop(tid)
        if entry.sightings < self.min_sightings:
            self.dropped += 1
            metrics.TRACK_SUMMARIES.labels(self.camera_id, "flicker").inc()
            return
        if self._send(entry, tid):
            self.published += 1
            metrics.TRACK_SUMMARIES.labels(self.camera_id, "published").inc()

    def _send(self, entry: _Log, tid: int) -> bool:
        """Publish ``entry``'s summary as it stands (its thumbnail stored first); False when
        that failed (logged: a summary must never take the camera down)."""
        uid = track_uid(self.camera_id, self.stream_id, tid)
        try:
            record = self._record(entry, uid)
            thumb = self._thumbnail(entry, uid)
            if thumb is not None:
                record["thumbnail"] = thumb
            self._publish(record)
            return True
        except Exception:
            metrics.TRACK_SUMMARIES.labels(self.camera_id, "failed").inc()
            log.exception(
                "publishing a track summary failed",
                extra={"camera_id": self.camera_id, "track_id": tid},
            )
            return False

    def _record(self, entry: _Log, uid: str) -> dict[str, Any]:
        colours: dict[str, str] = {}
        shares: dict[str, float] = {}
        appearance: list[float] = []
        n = len(COLOUR_NAMES)
        for part in PARTS:
            acc = entry.shares.get(part)
            if acc is None:
                appearance.extend([0.0] * n)
                continue
            mean = acc / max(1, entry.counted.get(part, 1))
            name, share = dominant(mean)
            colours[part], shares[part] = name, round(min(1.0, share), 3)
            total = float(mean.sum()) or 1.0
            appearance.extend(round(min(1.0, float(v) / total), 3) for v in mean)
        height_px = float(np.median(entry.heights)) if entry.heights else 0.0
        width_px = float(np.median(entry.widths)) if entry.widths else 0.0
        frame_h = max(1.0, self._frame_height)
        record: dict[str, Any] = {
            "schema_version": 1,
            "kind": "track",
            "track_uid": uid,
            "camera_id": self.camera_id,
            "track_id": entry.track_id,
            "label": entry.label,
            "first_seen": _iso(entry.first_wall),
            "last_seen": _iso(max(entry.last_wall, entry.first_wall)),
            "first_s": round(max(0.0, entry.first_s), 3),
            "last_s": round(max(0.0, entry.last_s, entry.first_s), 3),
            "zones": entry.zones,
            "direction": _direction(entry.first_foot, entry.last_foot, height_px),
            "colours": colours,
            "shares": shares,
            "appearance": appearance,
            "size": {
                "width_px": round(width_px, 1),
                "height_px": round(height_px, 1),
                "height_frac": round(min(1.0, height_px / frame_h), 4),
            },
            "samples": entry.samples,
        }
        if entry.bbox is not None:
            record["bbox"] = [round(v, 1) for v in entry.bbox]
        if self.run_id is not None:
            record["run_id"] = self.run_id
        return record

    _frame_height: float = 0.0

    def set_frame_size(self, width: int, height: int) -> None:
        """The camera's picture size (for the boxes' height as a share of it)."""
        del width
        self._frame_height = float(height)

    def _thumbnail(self, entry: _Log, uid: str) -> str | None:
        if self._store_thumbnail is None or entry.crop is None or entry.masked is None:
            return None
        try:
            key = thumbnail_key(self.camera_id, entry.first_wall, uid)
            params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            ok_m, masked = cv2.imencode(".jpg", entry.masked, params)
            ok_o, original = cv2.imencode(".jpg", entry.crop, params)
            if not (ok_m and ok_o):
                return None
            self._store_thumbnail(masked_key(key), masked.tobytes())  # what operators see
            self._store_thumbnail(key, original.tobytes())
            return key
        except Exception:  # evidence is best effort: the summary goes without it
            log.exception(
                "storing a track thumbnail failed",
                extra={"camera_id": self.camera_id, "track_id": entry.track_id},
            )
            return None
