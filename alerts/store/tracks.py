"""Track summaries for forensic search: what the store keeps of each track, how it is
asked for, and the protocol a store implements (``TrackStore``).

A worker publishes one *track summary* per track when the track ends
(``alerts/track.schema.json``, ``kind: "track"``) on the same bus as the events; the store
keeps it (``add_track``, called by ``upsert``), the search API asks for candidates
(``find_tracks``) and ranks them (``alerts.search``), and retention deletes the old ones as
it deletes alerts.

Every question has a bounded time range and reads at most ``TrackQuery.scan_limit`` rows,
the newest first: no search scans the whole table.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Direction = Literal["left", "right", "up", "down", "still"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down", "still")
PARTS: tuple[str, ...] = ("upper", "lower", "body")
"""The parts a colour is named for: a person's upper and lower body, another object's body."""

DEFAULT_SCAN_LIMIT = 5000
"""Rows a search reads at most (the newest matches first)."""


@dataclass(frozen=True, slots=True)
class Track:
    """One stored track summary.

    Attributes:
        track_uid: uuid5 string, unique across the installation.
        camera_id: Camera it was seen on.
        run_id: Worker run that saw it, or ``None``.
        track_id: Tracker id within that run (events name the same id).
        label: Detector class name (``"person"``, ``"car"``, ...).
        first_ts: First sighting, UNIX seconds.
        last_ts: Last sighting, UNIX seconds (``>= first_ts``).
        first_s: Stream time of the first sighting, seconds (``None`` if not sent).
        last_s: Stream time of the last sighting, seconds.
        zones: Zones entered, in order of first entry.
        direction: Net direction of travel in the picture.
        colours: Named colour per part (``upper``/``lower`` for people, ``body`` else);
            a part is absent when it could not be told.
        shares: Share of the part's pixels with that colour, [0, 1].
        width_px: Median box width, pixels.
        height_px: Median box height, pixels.
        height_frac: Median box height over the picture's height, [0, 1].
        samples: Sightings the colours were measured on.
        bbox: Box of the thumbnail's sighting ``(x1, y1, x2, y2)`` px, or ``None``.
        thumbnail: Evidence key of the thumbnail (original; the masked copy is
            ``alerts.evidence.masked_key`` of it), or ``None``.
        appearance: The 33-number descriptor (``alerts/track.schema.json``), or ``None``
            when not asked for (``find_tracks(with_appearance=False)``) or not sent.
    """

    track_uid: str
    camera_id: str
    run_id: str | None
    track_id: int
    label: str
    first_ts: float
    last_ts: float
    first_s: float | None
    last_s: float | None
    zones: tuple[str, ...]
    direction: Direction
    colours: Mapping[str, str]
    shares: Mapping[str, float]
    width_px: float
    height_px: float
    height_frac: float
    samples: int
    bbox: tuple[float, float, float, float] | None = None
    thumbnail: str | None = None
    appearance: tuple[float, ...] | None = None

    @property
    def duration_s(self) -> float:
        """How long it was seen, seconds."""
        return self.last_ts - self.first_ts


@dataclass(frozen=True, slots=True)
class TrackQuery:
    """What a search asks the store for (every given filter must hold).

    Attributes:
        since_ts: Tracks last seen at or after this, UNIX seconds.
        until_ts: Tracks first seen at or before this, UNIX seconds (``> since_ts``).
        camera_ids: These cameras only (empty: none); ``None``: every camera.
        label: This class only.
        upper: Upper-body colour (people).
        lower: Lower-body colour (people).
        colour: This colour on any part (upper, lower or body).
        zone: Entered this zone.
        direction: Went this way.
        exclude_uid: Leave this track out (the one "more like this" starts from).
        scan_limit: Read at most this many matching rows, the most recently first seen
            first.
    """

    since_ts: float
    until_ts: float
    camera_ids: frozenset[str] | None = None
    label: str | None = None
    upper: str | None = None
    lower: str | None = None
    colour: str | None = None
    zone: str | None = None
    direction: Direction | None = None
    exclude_uid: str | None = None
    scan_limit: int = DEFAULT_SCAN_LIMIT


@dataclass(frozen=True, slots=True)
class TrackCandidates:
    """What ``find_tracks`` read.

    Attributes:
        tracks: The matching tracks, most recently first seen first, at most
            ``scan_limit``.
        capped: More rows matched than ``scan_limit`` (the oldest were not read).
    """

    tracks: list[Track] = field(default_factory=list)
    capped: bool = False


@dataclass(frozen=True, slots=True)
class ExpiredTrack:
    """A track retention deletes: its id and its thumbnail key (or ``None``)."""

    track_uid: str
    thumbnail: str | None


@runtime_checkable
class TrackStore(Protocol):
    """Track summaries: stored from the bus, searched by the API, swept by retention."""

    def add_track(self, record: Mapping[str, Any]) -> None:
        """Store one track summary record (validated: ``InvalidEventError`` if not
        valid); a redelivery (same ``track_uid``) replaces the earlier row."""
        ...

    def get_track(self, track_uid: str) -> Track | None:
        """The track (with its appearance), or ``None``."""
        ...

    def find_tracks(self, query: TrackQuery, *, with_appearance: bool = False) -> TrackCandidates:
        """Tracks matching ``query``, newest first, at most ``query.scan_limit``; with
        ``with_appearance`` their descriptors too.

        Raises:
            SearchTooBroadError: The database gave up on the question (time limit).
            AlertStoreError: The database failed.
        """
        ...

    def camera_tracks(
        self, camera_id: str, *, since_ts: float, until_ts: float, limit: int
    ) -> builtins.list[Track]:
        """Tracks of ``camera_id`` seen within ``[since_ts, until_ts]`` (overlapping it),
        in order of first sighting, at most ``limit`` (a camera's timeline)."""
        ...

    def count_tracks(self) -> int:
        """How many tracks are stored."""
        ...

    def track_cameras(self) -> builtins.list[str]:
        """Every camera id that has tracks, sorted."""
        ...

    def expired_tracks(
        self, camera_id: str, *, before: float, limit: int, offset: int = 0
    ) -> builtins.list[ExpiredTrack]:
        """Tracks of ``camera_id`` last seen before ``before`` (UNIX s), oldest first, at
        most ``limit`` after skipping ``offset`` (those a retention sweep had to leave)."""
        ...

    def delete_tracks(self, track_uids: Collection[str]) -> int:
        """Delete these tracks (unknown ids ignored); how many were deleted."""
        ...


class SearchTooBroadError(RuntimeError):
    """A search the database gave up on (it ran past its time limit): narrow it."""
