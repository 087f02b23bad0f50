"""``GET /api/v1/cameras/{camera_id}/picture``: a camera's current picture, for the admins'
setup view where zones and lines are drawn over it.

The picture is a live picture (``alerts.live``): masked, drawn with the zones and lines the
worker runs now, scaled.  Zones and lines are in pixels of the camera's *frames*, so the
answer says the frame size its worker last reported (``X-Frame-Width``,
``X-Frame-Height``): the editor maps picture pixels to frame pixels with it.

A picture made within ``FRESH_S`` (for a wall or a board) is answered at once; otherwise
the route asks the workers for one (it holds the camera in the process's ``Demand``, as an
open wall does) and waits at most ``WAIT_S`` for it.  No picture then: 503, saying why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from alerts.api.auth import Who, needs
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.permissions import Permission, Principal
from alerts.live import LiveBoard, Want
from alerts.live.preview import MAX_WIDTH, Preview

router = APIRouter(prefix="/api/v1", tags=["cameras"])

WAIT_S = 8.0
"""Longest wait for a picture the workers were asked for, seconds (a worker hears of the
demand within about a second, then sends its next analysed frame)."""
FRESH_S = 5.0
"""A picture received this recently is answered without asking for another, seconds."""
STEP_S = 0.1
"""How often the wait looks for the picture, seconds."""
WANT = Want(MAX_WIDTH, 1.0)
"""The picture asked for: as wide as live pictures go (drawing needs detail), one a second."""

CameraIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$", description="Camera id.")
]
FRAME_HEADERS = {
    "X-Frame-Width": {
        "description": "Width of the camera's frames, pixels: zones and lines are in "
        "frame pixels (the picture may be scaled).",
        "schema": {"type": "string"},
    },
    "X-Frame-Height": {
        "description": "Height of the camera's frames, pixels.",
        "schema": {"type": "string"},
    },
    "X-Picture-Taken-At": {
        "description": "When the frame was taken, UNIX seconds.",
        "schema": {"type": "string"},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    200: {
        "content": {"image/jpeg": {}},
        "description": "The picture (people blurred; the zones and lines it runs drawn)",
        "headers": FRAME_HEADERS,
    },
    404: {"description": "No such camera"},
    503: {"description": "No picture of the camera came (no worker runs it, or none reports)"},
}


def _known(ctx: ApiContext, who: Principal, camera_id: str, board: LiveBoard | None) -> bool:
    """Whether the camera exists for ``who``: named by the config or the fleet, or reported
    by a worker (then only principals of every camera see it)."""
    named = camera_id in ctx.cameras.configured()
    reported = board is not None and camera_id in board.statuses()
    return (named or reported) and ctx.cameras.visible(who, camera_id)


def _frame_size(board: LiveBoard, camera_id: str) -> tuple[int, int] | None:
    status = board.statuses().get(camera_id)
    return None if status is None else status.frame_size


async def _picture(board: LiveBoard, camera_id: str, wait_s: float) -> Preview | None:
    """A fresh picture of the camera: one already here, else one asked for (``None`` when
    none came within ``wait_s``)."""
    start = time.monotonic()
    got = board.preview(camera_id, since=start - FRESH_S)
    if got is not None:
        return got
    holder = f"picture:{uuid.uuid4().hex}"
    board.demand.hold(holder, {camera_id: WANT}, lease_s=wait_s + 5.0)
    try:
        while time.monotonic() - start < wait_s:
            await asyncio.sleep(STEP_S)
            got = board.preview(camera_id, since=start)
            if got is not None:
                return got
        return None
    finally:
        board.demand.release(holder)


@router.get(
    "/cameras/{camera_id}/picture",
    response_class=Response,
    responses=RESPONSES,
    dependencies=[needs(Permission.CAMERAS_MANAGE)],
)
async def camera_picture(ctx: Ctx, who: Who, camera_id: CameraIdPath) -> Response:
    """The camera's current picture (JPEG) and the frame size its zones and lines are
    measured in (headers ``X-Frame-Width``, ``X-Frame-Height``); waits a few seconds for
    a picture when none is at hand."""
    board = ctx.live
    if not _known(ctx, who, camera_id, board):
        raise HTTPException(status_code=404, detail="no such camera")
    if board is None:
        raise HTTPException(
            status_code=503, detail="no worker reports to this service: it has no pictures"
        )
    picture = await _picture(board, camera_id, WAIT_S)
    if picture is None:
        raise HTTPException(
            status_code=503,
            detail=f"no picture of {camera_id} came within {WAIT_S:g} s: "
            "is a worker running it, and is it streaming?",
        )
    size = _frame_size(board, camera_id)
    if size is None:
        raise HTTPException(
            status_code=503, detail=f"the worker of {camera_id} has not reported its frame size"
        )
    headers = {
        "X-Frame-Width": str(size[0]),
        "X-Frame-Height": str(size[1]),
        "X-Picture-Taken-At": f"{picture.taken_at:.3f}",
        "Cache-Control": "no-store",
    }
    return Response(picture.jpeg, media_type="image/jpeg", headers=headers)
