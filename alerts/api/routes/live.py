"""The wall and the camera health board: ``GET /api/v1/wall``, ``GET /api/v1/cameras/status``
and their live stream ``GET /api/v1/live`` (Server-Sent Events).

One stream carries a whole view, pictures included (a browser opens at most ~6 connections
per host: a wall of 16 tiles cannot take one each):

* ``wall`` (view=wall): the ``WallOut``, sent at the start and whenever it changes (an
  alert opens or closes, activity starts or ends, a camera's state changes).
* ``board`` (view=board): the ``BoardOut``, likewise.
* ``picture``: ``{"camera_id", "taken_at", "width", "height", "jpeg"}`` (``jpeg`` in
  base64): the newest live picture of a camera on the view, at most ``fps`` a second each,
  at most ``width`` pixels wide.  While the stream is open it holds its cameras in the
  process's ``Demand`` (renewed, released at the end): workers make pictures only of
  cameras some stream shows, so a camera nobody watches costs no picture.
* ``signed-out``: the session ended; the stream ends.  A comment line every
  ``HEARTBEAT_S`` keeps proxies from closing an idle stream.

Pictures are masked (people blurred) by the worker, as operators' snapshots are.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from alerts.api.auth import Who, needs
from alerts.api.changefeed import ChangeWatcher, sse
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.permissions import Permission, Principal
from alerts.api.routes.changes import HEARTBEAT_S, RETRY_MS, _still_valid, _watcher
from alerts.api.wall import (
    WALL_STATES,
    BoardOut,
    WallOut,
    compose_board,
    compose_wall,
    my_cameras,
)
from alerts.live import RENEW_S, LiveBoard, Want
from alerts.store import AlertStoreError, CameraAlerts, WallStore

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["wall"])

WALL_WIDTH, WALL_FPS = 640, 2.0
"""Default live picture of a wall tile: pixels wide, pictures a second."""
BOARD_WIDTH, BOARD_FPS = 240, 0.2
"""Default picture of a board row: a thumbnail every 5 s."""
MAX_BOARD_PICTURES = 200
"""Most cameras one board stream gets pictures of (the worst first)."""
STEP_S = 0.05
"""How often a stream looks for a new picture or change, seconds."""
ALERTS_COMPOSE_S = 0.1
"""Least time between two compositions of a view after alerts changed, seconds."""
STATUS_COMPOSE_S = 1.0
"""Least time between two compositions of a view after camera statuses changed (every
worker reports once a second: they never delay a composition for an alert), seconds."""
LIVE_RECHECK_S = 5.0
"""How often a live stream checks that its session is still valid and its groups the same,
seconds (live video stops within this after a sign-out, a disabled user, a group taken
away; the alert stream's 30 s is for alert records)."""
DISCONNECT_CHECK_S = 1.0
"""How often a stream asks whether its client has gone, seconds (a quiet stream writes
nothing that would tell it; its cameras' pictures stop within this)."""
RECOMPOSE_S = 5.0
"""A view is composed again at least this often (a silent worker turns 'lost'), seconds."""

STREAM_RESPONSES = {
    **UNAUTHORIZED,
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
    503: {"description": "The store keeps no change sequence or wall query"},
}


def _wall_store(ctx: ApiContext) -> WallStore:
    if not isinstance(ctx.store, WallStore):
        raise HTTPException(status_code=503, detail="this store has no wall query")
    return ctx.store


class _AlertsCache:
    """The last ``wall_alerts`` answers by (change number, cameras): the streams of one
    process recompose on every camera status report, but read the store again only when an
    alert changed (thread-safe; a few entries: one per distinct set of cameras)."""

    MAX_ENTRIES = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, frozenset[str] | None], list[CameraAlerts]] = {}

    def get(
        self, store: WallStore, head: int | None, cameras: list[str] | None
    ) -> list[CameraAlerts]:
        key = (head if head is not None else -1, None if cameras is None else frozenset(cameras))
        if head is not None and head >= 0:
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None:
                return hit
        got = store.wall_alerts(WALL_STATES, camera_ids=cameras)
        if head is not None and head >= 0:
            with self._lock:
                for old in [k for k in self._entries if k[0] < key[0]]:
                    del self._entries[old]  # an alert changed since: never asked again
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = got
        return got


def _alerts(ctx: ApiContext, cameras: list[str] | None, head: int | None) -> list[CameraAlerts]:
    cache = ctx.wall_cache
    if not isinstance(cache, _AlertsCache):
        cache = ctx.wall_cache = _AlertsCache()
    return cache.get(_wall_store(ctx), head, cameras)


def compose_wall_for(ctx: ApiContext, who: Principal, head: int | None = None) -> WallOut:
    """``who``'s wall now (blocking: reads the store, or its answer at change ``head``)."""
    _wall_store(ctx)
    board = ctx.live
    statuses = board.statuses() if board is not None else {}
    cameras = my_cameras(who, ctx.cameras, statuses)
    everything = who.groups is None
    alerts = _alerts(ctx, None if everything else cameras, head)
    if everything:  # principals of every camera: alerts of unnamed cameras too
        cameras = sorted(set(cameras) | {a.top.camera_id for a in alerts})
    return compose_wall(cameras, alerts, statuses, live=board is not None)


def compose_board_for(ctx: ApiContext, who: Principal, head: int | None = None) -> BoardOut:
    """``who``'s health board now (blocking: reads the store, or its answer at ``head``)."""
    _wall_store(ctx)
    board = ctx.live
    statuses = board.statuses() if board is not None else {}
    cameras = my_cameras(who, ctx.cameras, statuses)
    alerts = _alerts(ctx, None if who.groups is None else cameras, head)
    counts = {a.top.camera_id: a.count for a in alerts}
    return compose_board(who, ctx.cameras, cameras, statuses, counts, live=board is not None)


@router.get(
    "/wall",
    response_model=WallOut,
    dependencies=[needs(Permission.ALERTS_READ)],
    responses={**UNAUTHORIZED, 503: {"description": "The store has no wall query"}},
)
def wall(ctx: Ctx, who: Who) -> WallOut:
    """The cameras of your groups that matter now (an open alert, or activity a rule is
    watching), most urgent first, with the reason; the others counted as quiet."""
    try:
        return compose_wall_for(ctx, who)
    except AlertStoreError as e:
        raise HTTPException(status_code=503, detail="the alert store is unavailable") from e


@router.get(
    "/cameras/status",
    response_model=BoardOut,
    dependencies=[needs(Permission.ALERTS_READ)],
    responses={**UNAUTHORIZED, 503: {"description": "The store has no wall query"}},
)
def camera_status(ctx: Ctx, who: Who) -> BoardOut:
    """Every camera of your groups: its state and since when, its last picture's time, its
    frame rate and dropped frames, what its rules watch and its open alerts; worst first."""
    try:
        return compose_board_for(ctx, who)
    except AlertStoreError as e:
        raise HTTPException(status_code=503, detail="the alert store is unavailable") from e


@router.get(
    "/live",
    responses=STREAM_RESPONSES,
    response_class=StreamingResponse,
    dependencies=[needs(Permission.ALERTS_READ)],
)
async def live(
    ctx: Ctx,
    who: Who,
    request: Request,
    view: Annotated[Literal["wall", "board"], Query(description="Which view to follow.")],
    width: Annotated[
        int | None,
        Query(ge=160, le=960, description="Widest picture, pixels (wall 640, board 240)."),
    ] = None,
    fps: Annotated[
        float | None,
        Query(ge=0.1, le=5, description="Most pictures a second per camera (wall 2, board 0.2)."),
    ] = None,
    for_s: Annotated[
        float | None, Query(gt=0, le=86400, description="End the stream after this long.")
    ] = None,
) -> StreamingResponse:
    """The wall or the board as it changes, with live pictures, on one connection
    (Server-Sent Events; see the module for the events)."""
    _wall_store(ctx)
    _, watcher = _watcher(ctx, request)
    default = (WALL_WIDTH, WALL_FPS) if view == "wall" else (BOARD_WIDTH, BOARD_FPS)
    want = Want(width or default[0], fps or default[1])
    ends = None if for_s is None else time.monotonic() + for_s
    stream = _stream(request, ctx, who, watcher, view, want, ends)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _picture_event(
    board: LiveBoard, camera_id: str, after: float, since: float
) -> tuple[bytes, float] | None:
    """The camera's newest picture as an event, if taken after ``after`` and received
    after the monotonic time ``since``."""
    p = board.preview(camera_id, since)
    if p is None or p.taken_at <= after:
        return None
    data = {
        "camera_id": p.camera_id,
        "taken_at": p.taken_at,
        "width": p.width,
        "height": p.height,
        "jpeg": base64.b64encode(p.jpeg).decode("ascii"),
    }
    return sse("picture", data), p.taken_at


async def _stream(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    watcher: ChangeWatcher,
    view: Literal["wall", "board"],
    want: Want,
    ends: float | None,
) -> AsyncIterator[bytes]:
    board = ctx.live
    holder = f"stream:{uuid.uuid4().hex}"
    compose = compose_wall_for if view == "wall" else compose_board_for
    sent: dict[str, float] = {}  # camera -> taken_at of the last picture sent
    next_at: dict[str, float] = {}  # camera -> monotonic time its next picture may go
    watched_since: dict[str, float] = {}  # camera -> monotonic time it came on this view
    cameras: list[str] = []
    last_doc: str | None = None
    seen_head, seen_status = -2, -1
    next_alerts = next_status = next_full = next_hold = 0.0
    checked = quiet_since = asked = time.monotonic()
    async with watcher.following():
        yield f"retry: {RETRY_MS}\n\n".encode()
        try:
            while True:
                now = time.monotonic()
                if ends is not None and now >= ends:
                    return
                if now - asked >= DISCONNECT_CHECK_S:  # a closed page stops its pictures
                    asked = now
                    if await request.is_disconnected():
                        return
                if now - checked >= LIVE_RECHECK_S:
                    checked = now
                    again = await anyio.to_thread.run_sync(_still_valid, request, ctx, who)
                    if again is None:
                        yield sse("signed-out", {"reason": "session ended: sign in again"})
                        return
                    if again.groups != who.groups:
                        next_full = 0.0  # groups changed: the view (and its pictures) now
                    who = again
                status_version = board.status_version if board is not None else 0
                alerts_moved = watcher.head != seen_head and now >= next_alerts
                status_moved = status_version != seen_status and now >= next_status
                if alerts_moved or status_moved or now >= next_full:
                    seen_head, seen_status = watcher.head, status_version
                    next_alerts, next_status = now + ALERTS_COMPOSE_S, now + STATUS_COMPOSE_S
                    next_full = now + RECOMPOSE_S
                    try:
                        head = watcher.head if not watcher.failing else None
                        doc = await anyio.to_thread.run_sync(compose, ctx, who, head)
                    except AlertStoreError as e:
                        logger.warning("%s stream: cannot read the store: %s", view, e)
                        return  # the browser reconnects after RETRY_MS
                    text = doc.model_dump_json()
                    if text != last_doc:
                        last_doc = text
                        yield f"event: {view}\ndata: {text}\n\n".encode()
                        quiet_since = now
                    if isinstance(doc, WallOut):
                        cameras = [t.camera_id for t in doc.tiles]
                    elif isinstance(doc, BoardOut):
                        cameras = [c.camera_id for c in doc.cameras][:MAX_BOARD_PICTURES]
                    watched_since = {c: watched_since.get(c, now) for c in cameras}
                    next_hold = 0.0  # the cameras may have changed: hold them now
                if board is not None and now >= next_hold:
                    board.demand.hold(holder, dict.fromkeys(cameras, want))
                    next_hold = now + RENEW_S
                if board is not None:
                    for cam in cameras:
                        if now < next_at.get(cam, 0.0):
                            continue
                        got = _picture_event(
                            board, cam, sent.get(cam, 0.0), watched_since.get(cam, now)
                        )
                        if got is not None:
                            yield got[0]
                            sent[cam] = got[1]
                            next_at[cam] = now + 0.9 / want.fps
                            quiet_since = now
                if now - quiet_since >= HEARTBEAT_S:
                    yield b": keep-alive\n\n"
                    quiet_since = now
                await asyncio.sleep(STEP_S)
        finally:
            if board is not None:
                board.demand.release(holder)
                board.prune_pictures()
