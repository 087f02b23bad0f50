"""The fleet's cameras over HTTP (admins): list, add or change, remove.

Each change is checked, then published on the fleet topic (compacted): the worker that
runs the camera applies it without a restart (its rules reloaded, or the camera
restarted when its source, zones or lines changed), a new camera is given to a worker
with capacity, a removed one is stopped.  Nothing is stored here: the topic is the truth.
Every change is audited.  503 when this service has no fleet or the broker does not
take the change (nothing changed then).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response

from alerts.api.auth import Who, needs, record
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.errors import SafeJSONResponse
from alerts.api.fleet_admin import (
    FleetAdmin,
    FleetCamera,
    FleetCameraIn,
    FleetCameras,
    FleetProblems,
)
from alerts.api.models import MAX_PROBLEMS, InvalidRequest
from alerts.api.permissions import Permission
from alerts.control import ControlPublishError

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["fleet"])

CameraIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$", description="Camera id.")
]
NO_FLEET: dict[int | str, dict[str, Any]] = {
    503: {"description": "This service has no fleet, or the broker did not take the change"}
}
MANAGE = [needs(Permission.CAMERAS_MANAGE)]


def _fleet(ctx: ApiContext) -> FleetAdmin:
    if ctx.fleet is None:
        raise HTTPException(
            status_code=503, detail="no fleet configured (cameras come from the config file)"
        )
    return ctx.fleet


@router.get(
    "/fleet/cameras",
    response_model=FleetCameras,
    responses={**UNAUTHORIZED, **NO_FLEET},
    dependencies=MANAGE,
)
def list_fleet_cameras(ctx: Ctx) -> FleetCameras:
    """Every camera of the fleet, and the definitions on the topic that were refused."""
    fleet = _fleet(ctx)
    return FleetCameras(
        cameras=[FleetCamera.model_validate(c) for c in fleet.cameras()],
        refused=fleet.refused(),
    )


@router.put(
    "/fleet/cameras/{camera_id}",
    response_model=FleetCamera,
    responses={
        **UNAUTHORIZED,
        422: {
            "model": FleetProblems | InvalidRequest,
            "description": "The definition has problems (listed), or the body is invalid",
        },
        **NO_FLEET,
    },
    dependencies=MANAGE,
)
def put_fleet_camera(
    ctx: Ctx, who: Who, request: Request, camera_id: CameraIdPath, body: FleetCameraIn
) -> Any:
    """Add a camera or change one (the whole definition: camera, rules, model); applied by
    the workers without a restart."""
    fleet = _fleet(ctx)
    raw = body.model_dump()
    problems = fleet.problems(camera_id, raw)
    if problems:
        return SafeJSONResponse(
            FleetProblems(
                detail="invalid camera definition",
                problems=[str(p)[:500] for p in problems[:MAX_PROBLEMS]],
            ).model_dump(),
            status_code=422,
        )
    existed = any(c["camera_id"] == camera_id for c in fleet.cameras())
    try:
        out = fleet.put(camera_id, raw)
    except ControlPublishError as e:
        logger.warning("fleet change of camera %s refused: %s", camera_id, e.reason)
        raise HTTPException(status_code=503, detail="the broker did not take the change") from e
    record(
        ctx,
        request,
        who,
        "fleet.camera.change" if existed else "fleet.camera.add",
        "camera",
        camera_id,
        {"rules": len(body.rules), "model": body.model},
    )
    return FleetCamera.model_validate(out)


@router.delete(
    "/fleet/cameras/{camera_id}",
    status_code=204,
    responses={**UNAUTHORIZED, 404: {"description": "No such camera"}, **NO_FLEET},
    dependencies=MANAGE,
)
def delete_fleet_camera(ctx: Ctx, who: Who, request: Request, camera_id: CameraIdPath) -> Response:
    """Remove a camera from the fleet: its worker stops it (its open events closed)."""
    fleet = _fleet(ctx)
    try:
        removed = fleet.remove(camera_id)
    except ControlPublishError as e:
        logger.warning("fleet removal of camera %s refused: %s", camera_id, e.reason)
        raise HTTPException(status_code=503, detail="the broker did not take the change") from e
    if not removed:
        raise HTTPException(status_code=404, detail="no such camera in the fleet")
    record(ctx, request, who, "fleet.camera.remove", "camera", camera_id)
    return Response(status_code=204)
