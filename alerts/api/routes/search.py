"""Forensic search: ``GET /api/v1/search`` over the track summaries the workers publish,
``GET /api/v1/search/options``, ``GET /api/v1/tracks/{uid}`` (one track on its camera's
timeline, with the clip that covers it) and its masked thumbnail.

Every search is bounded: a time range is required and spans at most ``MAX_SPAN_DAYS``;
the store reads at most ``SCAN_LIMIT`` matching tracks (the newest first) under a time
limit of its own, and ranks those (``alerts.search.rank``).  A search covers the cameras
of the user's groups only: naming a camera or a group outside them is a 403, not an empty
answer.  Every search is written to the audit trail (``search.tracks``) with its filters,
as is every unmasked thumbnail view (``evidence.unmasked``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response

from alerts.api.auth import Who, needs, record
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.permissions import Permission, Principal
from alerts.api.routes.evidence import _may_view_unmasked
from alerts.api.search_models import (
    CameraOption,
    SearchOptions,
    SearchPage,
    Timeline,
    TimelineAlert,
    TimelineTrack,
    TrackClip,
    TrackDetail,
    TrackOut,
)
from alerts.evidence import EvidenceNotFoundError, InvalidEvidenceKeyError, masked_key
from alerts.search import rank
from alerts.store import Alert
from alerts.store.tracks import (
    DIRECTIONS,
    SearchTooBroadError,
    Track,
    TrackQuery,
    TrackStore,
)
from detectors.appearance import COLOUR_NAMES
from models.manifest import COCO80

router = APIRouter(prefix="/api/v1", tags=["search"])
SEARCH = [needs(Permission.SEARCH)]

MAX_SPAN_DAYS = 31.0
"""The longest time range one search may cover, days."""
SCAN_LIMIT = 5000
"""Matching tracks a search reads at most (the newest first), then ranks."""
MAX_LIMIT = 100
DEFAULT_LIMIT = 48
TIMELINE_S = 300.0
"""A track's timeline shows its camera this long before and after it, seconds."""
TIMELINE_TRACKS = 300
"""Tracks a timeline shows at most."""
CLIP_PRE_S = 5.0
CLIP_POST_S = 10.0
"""The default clip window around an alert's start (``clips.pre_s``, ``clips.post_s``): an
alert's clip covers a track seen within it."""

Colour = Literal[
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"
]
DirectionParam = Literal["left", "right", "up", "down", "still"]
ZONE_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
"""A zone's name, as a track record names it (``alerts/track.schema.json``)."""
assert tuple(Colour.__args__) == COLOUR_NAMES  # type: ignore[attr-defined]
assert tuple(DirectionParam.__args__) == DIRECTIONS  # type: ignore[attr-defined]

_SEARCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    403: {"description": "A camera or group outside your groups, or a role without search"},
    404: {"description": "The track of like= does not exist (or is not on your cameras)"},
    422: {
        "description": "A bad filter: unknown colour or class, time range missing, "
        "inverted or longer than 31 days"
    },
    503: {"description": "This store keeps no tracks, or the database gave up on the search"},
}
_TRACK_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    404: {"description": "No such track (or not on your cameras)"},
}


def search_classes(model: Sequence[str] = ()) -> tuple[str, ...]:
    """The classes a search may name: the 80 COCO classes, then the detector's own names
    (as a track summary writes them: lower case) that are not among them."""
    extra = [n.strip().lower() for n in model if n.strip().lower() not in COCO80]
    return (*COCO80, *dict.fromkeys(n for n in extra if n))


def _tracks(ctx: ApiContext) -> TrackStore:
    if not isinstance(ctx.store, TrackStore):
        raise HTTPException(status_code=503, detail="this alert store keeps no tracks")
    return ctx.store


def _bad(detail: str) -> HTTPException:
    return HTTPException(status_code=422, detail=detail)


def _utc(name: str, value: datetime) -> float:
    if value.tzinfo is None:
        raise _bad(f"{name} needs a UTC offset, e.g. 2026-12-07T14:00:00+09:00")
    return value.timestamp()


def _time_range(since: datetime | None, until: datetime | None) -> tuple[float, float]:
    if since is None or until is None:
        raise _bad(
            "give a time range: since and until (ISO 8601 with a UTC offset); a search "
            f"covers at most {MAX_SPAN_DAYS:g} days"
        )
    start, end = _utc("since", since), _utc("until", until)
    if end <= start:
        raise _bad(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    if end - start > MAX_SPAN_DAYS * 86400.0:
        days = (end - start) / 86400.0
        raise _bad(
            f"the time range covers {days:.1f} days; a search covers at most "
            f"{MAX_SPAN_DAYS:g}: narrow it"
        )
    return start, end


def _camera_scope(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    cameras: Sequence[str] | None,
    groups: Sequence[str] | None,
) -> frozenset[str] | None:
    """The cameras a search covers: those named, else those of the groups named, else all
    of the user's (``None``: every camera, for admins); 403 for any outside the user's."""
    if cameras:
        outside = sorted(c for c in set(cameras) if not ctx.cameras.visible(who, c))
        if outside:
            ctx.rejections.note(f"search outside groups: {len(outside)} cameras", request.scope)
            raise HTTPException(
                status_code=403,
                detail=f"camera {outside[0]!r:.80} is not in your groups: you may search only "
                "the cameras of your groups",
            )
        return frozenset(cameras)
    if groups:
        if who.groups is not None:
            outside = sorted(g for g in set(groups) if g not in who.groups)
            if outside:
                raise HTTPException(
                    status_code=403,
                    detail=f"group {outside[0]!r:.80} is not one of yours "
                    f"({', '.join(sorted(who.groups))})",
                )
        wanted = set(groups)
        return frozenset(cam for cam, g in ctx.cameras.configured().items() if g & wanted)
    return ctx.cameras.cameras_of(who)


def _visible_track(ctx: ApiContext, who: Principal, track_uid: str) -> Track:
    track = _tracks(ctx).get_track(track_uid)
    if track is None or not ctx.cameras.visible(who, track.camera_id):
        raise HTTPException(status_code=404, detail="track not found")
    return track


def _filters(**given: Any) -> dict[str, Any]:
    """The search's filters for its audit entry (those given only, times as ISO)."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is None or value == [] or value == ():
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, list | tuple | frozenset | set):
            value = sorted(str(v) for v in value)[:20]
        out[key] = value
    return out


@router.get("/search", response_model=SearchPage, responses=_SEARCH_ERRORS, dependencies=SEARCH)
def search(
    ctx: Ctx,
    who: Who,
    request: Request,
    since: Annotated[
        datetime | None, Query(description="Start of the time range (ISO 8601 with offset).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="End of the time range (at most 31 days later).")
    ] = None,
    class_: Annotated[
        str | None,
        Query(alias="class", max_length=40, description='Detector class, e.g. "person".'),
    ] = None,
    upper: Annotated[Colour | None, Query(description="Upper-body colour (people).")] = None,
    lower: Annotated[Colour | None, Query(description="Lower-body colour (people).")] = None,
    colour: Annotated[
        Colour | None, Query(description="This colour on any part (a vehicle's body).")
    ] = None,
    camera: Annotated[
        list[str] | None,
        Query(max_length=200, description="Only these cameras (repeat the parameter)."),
    ] = None,
    group: Annotated[
        list[str] | None,
        Query(max_length=50, description="Only the cameras of these groups (repeat it)."),
    ] = None,
    zone: Annotated[
        str | None,
        Query(max_length=128, pattern=ZONE_PATTERN, description="Entered this zone (its name)."),
    ] = None,
    direction: Annotated[
        DirectionParam | None, Query(description="Net direction of travel in the picture.")
    ] = None,
    like: Annotated[
        uuid.UUID | None,
        Query(description="More like this track (rank by appearance, same class)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=SCAN_LIMIT)] = 0,
) -> SearchPage:
    """Tracks seen in the time range on the cameras of your groups that match every
    filter, best first: the closest colours on the largest, longest-seen tracks, or, with
    ``like``, the most alike in appearance.  Reads at most 5000 matching tracks (the
    newest); ``capped`` says when more matched."""
    store = _tracks(ctx)
    start, end = _time_range(since, until)
    classes = ctx.search_classes or COCO80
    if class_ is not None and class_ not in classes:
        raise _bad(f"unknown class {class_!r:.40}; classes: {', '.join(classes[:8])}, ...")
    scope = _camera_scope(ctx, request, who, camera, group)
    reference = _visible_track(ctx, who, str(like)) if like is not None else None
    if reference is not None and not any(reference.appearance or ()):
        raise _bad(
            "this track was never seen large and clear enough to describe how it looks: "
            "search by its colours instead"
        )
    query = TrackQuery(
        since_ts=start,
        until_ts=end,
        camera_ids=scope,
        label=class_ if class_ is not None else (reference.label if reference else None),
        upper=upper,
        lower=lower,
        colour=colour,
        zone=zone,
        direction=direction,
        exclude_uid=reference.track_uid if reference else None,
        scan_limit=SCAN_LIMIT,
    )
    record(
        ctx,
        request,
        who,
        "search.tracks",
        "tracks",
        None,
        _filters(
            since=since,
            until=until,
            **{"class": class_},
            upper=upper,
            lower=lower,
            colour=colour,
            camera=camera,
            group=group,
            zone=zone,
            direction=direction,
            like=None if like is None else str(like),
        ),
    )
    try:
        found = store.find_tracks(query, with_appearance=reference is not None)
    except SearchTooBroadError as e:
        raise HTTPException(
            status_code=503,
            detail="the search took too long and was stopped: narrow the time range, the "
            "cameras or the filters",
        ) from e
    ranked = rank(found.tracks, query, reference)
    page = ranked[offset : offset + limit]
    return SearchPage(
        results=[TrackOut.of(track, score) for score, track in page],
        matched=len(found.tracks),
        capped=found.capped,
        offset=offset,
        limit=limit,
    )


def _fleet_zones(ctx: ApiContext) -> dict[str, list[str]]:
    """The zone names of the fleet's cameras (none without a fleet)."""
    if ctx.fleet is None:
        return {}
    return {
        str(c["camera_id"]): [str(z["name"]) for z in c["camera"].get("zones") or []]
        for c in ctx.fleet.cameras()
    }


@router.get(
    "/search/options", response_model=SearchOptions, responses=UNAUTHORIZED, dependencies=SEARCH
)
def search_options(ctx: Ctx, who: Who) -> SearchOptions:
    """What the search filters offer you: classes, colours, directions, your cameras with
    their groups and zones."""
    visible = ctx.cameras.cameras_of(who)
    configured = ctx.cameras.configured()
    zones = {**_fleet_zones(ctx), **ctx.camera_zones}  # the config's cameras win
    cams = sorted(configured if visible is None else visible)
    groups = sorted({g for cam in cams for g in configured.get(cam, frozenset())})
    if who.groups is not None:
        groups = [g for g in groups if g in who.groups]
    return SearchOptions(
        classes=list(ctx.search_classes or COCO80),
        colours=list(COLOUR_NAMES),
        directions=list(DIRECTIONS),
        cameras=[
            CameraOption(camera_id=c, groups=sorted(configured.get(c, frozenset()))) for c in cams
        ],
        groups=groups,
        zones={c: zones[c] for c in cams if zones.get(c)},
        max_span_days=MAX_SPAN_DAYS,
    )


TrackUid = Annotated[uuid.UUID, Path(description="Track uid (uuid).")]


_LATEST_TS = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


def _stamp(ts: float) -> datetime:
    return datetime.fromtimestamp(min(max(ts, 0.0), _LATEST_TS), UTC)


def _clip_for(track: Track, alerts: Sequence[Alert]) -> TrackClip | None:
    """The clip of an alert that covers the track: its own alert's first, else the one
    whose window overlaps most of the track."""
    best: tuple[float, Alert] | None = None
    for alert in alerts:
        if alert.clip is None:
            continue
        t0 = alert.wall_time.timestamp()
        lo, hi = t0 - CLIP_PRE_S, t0 + CLIP_POST_S
        overlap = min(hi, track.last_ts) - max(lo, track.first_ts)
        if overlap <= 0 and not (lo <= track.first_ts <= hi):
            continue
        own = alert.track_id == track.track_id and (
            track.run_id is None or alert.run_id == track.run_id
        )
        key = (1e9 if own else 0.0) + overlap
        if best is None or key > best[0]:
            best = (key, alert)
    if best is None:
        return None
    alert = best[1]
    return TrackClip(
        event_id=alert.event_id,
        url=f"/api/v1/alerts/{alert.event_id}/clip",
        start=alert.wall_time,
        own=best[0] >= 1e9,
    )


def _alert_end(alert: Alert) -> datetime | None:
    if alert.end_s is None:
        return None
    return datetime.fromtimestamp(
        alert.wall_time.timestamp() + max(0.0, alert.end_s - alert.start_s), UTC
    )


def _camera_alerts(
    ctx: ApiContext, camera_id: str, since: float, until: float, *, started_within: bool = False
) -> list[Alert]:
    between = getattr(ctx.store, "alerts_between", None)
    if between is None:
        return []
    alerts: list[Alert] = between(
        camera_id, since_ts=since, until_ts=until, limit=200, started_within=started_within
    )
    return alerts


@router.get(
    "/tracks/{track_uid}",
    response_model=TrackDetail,
    responses=_TRACK_ERRORS,
    dependencies=SEARCH,
)
def get_track(ctx: Ctx, who: Who, track_uid: TrackUid) -> TrackDetail:
    """One track, with its camera's tracks and alerts five minutes either side and the
    clip of an alert that covers it (``null``: no video was kept for this moment)."""
    track = _visible_track(ctx, who, str(track_uid))
    since, until = track.first_ts - TIMELINE_S, track.last_ts + TIMELINE_S
    neighbours = _tracks(ctx).camera_tracks(
        track.camera_id, since_ts=since, until_ts=until, limit=TIMELINE_TRACKS
    )
    alerts = _camera_alerts(ctx, track.camera_id, since, until)
    # the clip's candidates asked for on their own: on a busy camera the timeline's first
    # alerts may all lie before the track
    near = _camera_alerts(
        ctx,
        track.camera_id,
        track.first_ts - CLIP_POST_S,
        track.last_ts + CLIP_PRE_S,
        started_within=True,
    )
    base = TrackOut.of(track).model_dump()
    return TrackDetail(
        **base,
        timeline=Timeline(
            camera_id=track.camera_id,
            since=_stamp(since),
            until=_stamp(until),
            tracks=[
                TimelineTrack(
                    track_uid=t.track_uid,
                    label=t.label,
                    first_seen=_stamp(t.first_ts),
                    last_seen=_stamp(t.last_ts),
                    colours=dict(t.colours),
                )
                for t in neighbours
            ],
            alerts=[
                TimelineAlert(
                    event_id=a.event_id,
                    type=a.type,
                    start=a.wall_time,
                    end=_alert_end(a),
                    priority=a.priority,
                    track_id=a.track_id,
                )
                for a in alerts
            ],
        ),
        clip=_clip_for(track, near),
    )


@router.get(
    "/tracks/{track_uid}/thumbnail",
    response_class=Response,
    responses={
        **_TRACK_ERRORS,
        403: {"description": "unmasked=true asked by a role that may not see it"},
        200: {"content": {"image/jpeg": {}}, "description": "The thumbnail JPEG."},
    },
    dependencies=SEARCH,
)
def track_thumbnail(
    ctx: Ctx,
    who: Who,
    request: Request,
    track_uid: TrackUid,
    unmasked: Annotated[
        bool,
        Query(
            description="The original, people not blurred (supervisors and admins; "
            "audited). Default: the masked copy."
        ),
    ] = False,
) -> Response:
    """The track's thumbnail: the masked copy (people blurred), or the original for those
    who may see it (each view audited)."""
    track = _visible_track(ctx, who, str(track_uid))
    if track.thumbnail is None:
        raise HTTPException(status_code=404, detail="this track has no thumbnail")
    key = track.thumbnail if unmasked else masked_key(track.thumbnail)
    if unmasked:
        _may_view_unmasked(ctx, request, who, "thumbnail")
        facts = {"evidence": "thumbnail", "camera_id": track.camera_id}
        record(ctx, request, who, "evidence.unmasked", "track", track.track_uid, facts)
    try:
        body = ctx.evidence.get(key)
    except (EvidenceNotFoundError, InvalidEvidenceKeyError) as e:
        raise HTTPException(status_code=404, detail="the thumbnail is gone") from e
    except OSError as e:
        raise HTTPException(status_code=503, detail="evidence store unavailable") from e
    # an unmasked view is never cached: each one reaches the server and its audit trail
    cache = "no-store" if unmasked else "private, max-age=3600"
    return Response(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
    )
