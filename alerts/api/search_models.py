"""The answers of the search routes (``alerts.api.routes.search``)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from alerts.store.tracks import Track


class TrackSize(BaseModel):
    """Median box of a track's sightings."""

    width_px: float
    height_px: float
    height_frac: float = Field(description="Box height over the picture's height, [0, 1].")


class TrackOut(BaseModel):
    """One track as search answers it."""

    track_uid: str
    camera_id: str
    label: str = Field(description='Detector class, e.g. "person".')
    track_id: int = Field(description="Tracker id within the worker run (events name it).")
    first_seen: datetime
    last_seen: datetime
    duration_s: float
    zones: list[str] = Field(description="Zones entered, in order of first entry.")
    direction: str = Field(description="left, right, up, down or still (in the picture).")
    colours: dict[str, str] = Field(
        description='Named colours: {"upper", "lower"} for people, {"body"} for others.'
    )
    shares: dict[str, float] = Field(description="Share of each part's pixels with its colour.")
    size: TrackSize
    score: float | None = Field(
        default=None, description="Rank score in [0, 1] (search answers only)."
    )
    thumbnail_url: str | None = Field(
        description="The masked thumbnail (people blurred); null when none was stored."
    )

    @classmethod
    def of(cls, track: Track, score: float | None = None) -> TrackOut:
        """The answer for ``track`` (with its rank ``score`` in a search)."""
        return cls(
            track_uid=track.track_uid,
            camera_id=track.camera_id,
            label=track.label,
            track_id=track.track_id,
            first_seen=datetime.fromtimestamp(track.first_ts, UTC),
            last_seen=datetime.fromtimestamp(track.last_ts, UTC),
            duration_s=round(track.duration_s, 2),
            zones=list(track.zones),
            direction=track.direction,
            colours=dict(track.colours),
            shares={k: round(v, 3) for k, v in track.shares.items()},
            size=TrackSize(
                width_px=track.width_px, height_px=track.height_px, height_frac=track.height_frac
            ),
            score=None if score is None else round(score, 4),
            thumbnail_url=(
                f"/api/v1/tracks/{track.track_uid}/thumbnail" if track.thumbnail else None
            ),
        )


class SearchPage(BaseModel):
    """A page of search results, best first."""

    results: list[TrackOut]
    matched: int = Field(description="Tracks that matched and were read (at most the scan cap).")
    capped: bool = Field(
        description="More tracks matched than a search reads (the newest were read): narrow "
        "the time range, the cameras or the filters."
    )
    offset: int
    limit: int


class CameraOption(BaseModel):
    """A camera the user may search, with its groups."""

    camera_id: str
    groups: list[str]


class SearchOptions(BaseModel):
    """What the search filters offer this user."""

    classes: list[str]
    colours: list[str]
    directions: list[str]
    cameras: list[CameraOption]
    groups: list[str]
    zones: dict[str, list[str]]
    max_span_days: float


class TimelineTrack(BaseModel):
    """A track on its camera's timeline."""

    track_uid: str
    label: str
    first_seen: datetime
    last_seen: datetime
    colours: dict[str, str]


class TimelineAlert(BaseModel):
    """An alert on a camera's timeline."""

    event_id: str
    type: str
    start: datetime
    end: datetime | None
    priority: int
    track_id: int | None


class Timeline(BaseModel):
    """A camera's tracks and alerts over a window around one track."""

    camera_id: str
    since: datetime
    until: datetime
    tracks: list[TimelineTrack]
    alerts: list[TimelineAlert]


class TrackClip(BaseModel):
    """The video kept around a track: the clip of an alert of its camera that covers it."""

    event_id: str
    url: str = Field(description="The alert's masked clip.")
    start: datetime = Field(description="The alert's start (the clip begins a few seconds before).")
    own: bool = Field(description="The alert is about this very track.")


class TrackDetail(TrackOut):
    """One track with its camera's timeline around it and the clip that covers it."""

    timeline: Timeline
    clip: TrackClip | None = Field(
        description="null: no video was kept for this moment (Argus keeps video around "
        "alerts only)."
    )
