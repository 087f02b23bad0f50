"""The selective wall and the camera health board, composed for one user.

The wall shows only the cameras that matter now, most urgent first: a camera with an open
alert (new, claimed or escalated: the store's ``wall_alerts``), or with activity one of
its rules is watching (``CameraStatus.watches``: a dwell timer running, a crowd building,
an object left).  A tile's priority is the larger of its top alert's and its top watch's;
its reason is the top alert's words (``Alert.reason``, else its type), else the watch's.
Every other camera of the user is left off and counted (``quiet``).

The board lists every camera of the user's groups with its state, worst first.

Both show only what the user may see: cameras of their groups (``CameraGroups``); a camera
the config does not name (a report from another site's worker) only to principals of
every camera.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from alerts.api.permissions import CameraGroups, Principal
from alerts.live import STATE_RANK, CameraStatus, WatchOut
from alerts.store import Alert, AlertState, CameraAlerts

WALL_STATES: tuple[AlertState, ...] = ("new", "claimed", "escalated")
"""Lifecycle states of an alert that keeps its camera on the wall."""
MAX_TILES = 16
"""Most tiles a wall shows (a wall of 4x4; the rest are counted in ``more``)."""


class TileAlert(BaseModel):
    """The alert a tile is about."""

    event_id: str
    type: str
    priority: int
    state: str
    reason: str | None
    wall_time: datetime = Field(description="When its event started.")
    ongoing: bool = Field(description="The event is still going on (no end yet).")


class TileOut(BaseModel):
    """One camera on the wall."""

    camera_id: str
    priority: int = Field(description="The larger of its top alert's and top watch's, 0..100.")
    kind: Literal["alert", "activity"] = Field(
        description="Why it is on the wall: an open alert, or only watched activity."
    )
    reason: str = Field(description="What is happening, in words.")
    alert: TileAlert | None = Field(description="Its most urgent open alert, if any.")
    open_alerts: int = Field(description="Its open alerts (new, claimed, escalated).")
    watches: list[WatchOut] = Field(description="Activity its rules are watching.")
    state: str | None = Field(description="The camera's state (null: no worker reports it).")
    state_since: float | None = None
    detail: str | None = None


class WallOut(BaseModel):
    """The wall: the cameras that matter now, most urgent first."""

    tiles: list[TileOut]
    more: int = Field(description="Cameras that matter but did not fit on the wall.")
    quiet: int = Field(description="Your cameras left off: nothing open, nothing watched.")
    cameras: int = Field(description="All your cameras.")
    live: bool = Field(description="Whether workers report to this server (live pictures).")


class CameraStatusOut(BaseModel):
    """One camera on the health board (times are UNIX seconds)."""

    camera_id: str
    groups: list[str] = Field(description="Its groups (yours only).")
    state: str | None = Field(description="Its state; null: no worker has reported it.")
    since: float | None
    detail: str | None
    reported_at: float | None
    last_frame_at: float | None = Field(description="Wall time of its last picture.")
    fps: float | None = Field(description="Frames analysed per second lately.")
    frames_processed: int | None
    frames_dropped: int | None
    quiet: bool | None = Field(description="Decoded sparsely: nothing moves.")
    frame_size: tuple[int, int] | None
    watching: int = Field(description="Activities its rules are watching.")
    open_alerts: int = Field(description="Its open alerts.")


class BoardOut(BaseModel):
    """Every camera of your groups, worst state first."""

    cameras: list[CameraStatusOut]
    live: bool = Field(description="Whether workers report to this server.")


def my_cameras(
    who: Principal, groups: CameraGroups, statuses: Mapping[str, CameraStatus]
) -> list[str]:
    """The cameras ``who`` works on: configured ones of their groups, and (principals of
    every camera) every camera reported too; sorted."""
    configured = groups.configured()
    cams = set(configured) | set(statuses)
    return sorted(cam for cam in cams if groups.visible(who, cam))


def _tile_alert(alert: Alert) -> TileAlert:
    return TileAlert(
        event_id=alert.event_id,
        type=alert.type,
        priority=alert.priority,
        state=alert.state,
        reason=alert.reason,
        wall_time=alert.wall_time,
        ongoing=alert.end_s is None,
    )


def compose_wall(
    cameras: Collection[str],
    alerts: Collection[CameraAlerts],
    statuses: Mapping[str, CameraStatus],
    *,
    live: bool,
    max_tiles: int = MAX_TILES,
) -> WallOut:
    """The wall of a user whose cameras are ``cameras``.

    Args:
        cameras: The user's cameras (``my_cameras``).
        alerts: ``wall_alerts`` of those cameras (others are ignored).
        statuses: The latest status per camera (``LiveBoard.statuses``).
        live: Whether workers report to this server.
        max_tiles: Most tiles shown.
    """
    mine = set(cameras)
    by_camera = {a.top.camera_id: a for a in alerts if a.top.camera_id in mine}
    tiles: list[tuple[tuple[int, int, float, str], TileOut]] = []
    for cam in mine:
        status = statuses.get(cam)
        watches = list(status.watches) if status is not None else []
        open_ = by_camera.get(cam)
        if open_ is None and not watches:
            continue
        top_watch = max((w.priority for w in watches), default=0)
        if open_ is not None:
            a = open_.top
            priority = max(a.priority, top_watch)
            reason = a.reason or a.type.replace("_", " ")
            if watches and top_watch > a.priority:
                reason = f"{watches[0].reason} (and {reason})"
            kind: Literal["alert", "activity"] = "alert"
            recent = a.wall_time.timestamp()
        else:
            priority, reason, kind, recent = top_watch, watches[0].reason, "activity", 0.0
        tile = TileOut(
            camera_id=cam,
            priority=priority,
            kind=kind,
            reason=reason,
            alert=None if open_ is None else _tile_alert(open_.top),
            open_alerts=0 if open_ is None else open_.count,
            watches=watches,
            state=None if status is None else status.state,
            state_since=None if status is None else status.since,
            detail=None if status is None else status.detail,
        )
        # most urgent first; at equal priority an alert before activity, then the newest
        tiles.append(((-priority, 0 if kind == "alert" else 1, -recent, cam), tile))
    tiles.sort(key=lambda t: t[0])
    shown = [t for _, t in tiles[:max_tiles]]
    return WallOut(
        tiles=shown,
        more=max(0, len(tiles) - max_tiles),
        quiet=len(mine) - len(tiles),
        cameras=len(mine),
        live=live,
    )


def compose_board(
    who: Principal,
    groups: CameraGroups,
    cameras: Collection[str],
    statuses: Mapping[str, CameraStatus],
    open_alerts: Mapping[str, int],
    *,
    live: bool,
) -> BoardOut:
    """The health board: every camera in ``cameras``, worst state first, then by id."""
    rows = []
    for cam in cameras:
        s = statuses.get(cam)
        theirs = groups.of(cam)
        rows.append(
            CameraStatusOut(
                camera_id=cam,
                groups=sorted(theirs if who.groups is None else theirs & who.groups),
                state=None if s is None else s.state,
                since=None if s is None else s.since,
                detail="no worker has reported this camera" if s is None else s.detail,
                reported_at=None if s is None else s.reported_at,
                last_frame_at=None if s is None else s.last_frame_at,
                fps=None if s is None else s.fps,
                frames_processed=None if s is None else s.frames_processed,
                frames_dropped=None if s is None else s.frames_dropped,
                quiet=None if s is None else s.quiet,
                frame_size=None if s is None else s.frame_size,
                watching=0 if s is None else len(s.watches),
                open_alerts=open_alerts.get(cam, 0),
            )
        )
    rows.sort(key=lambda r: (STATE_RANK.get(r.state or "", -1), r.camera_id))
    return BoardOut(cameras=rows, live=live)
