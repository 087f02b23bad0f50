"""The control plane over HTTP: suppressions and the rule set.

Every change is first published on the control channel, then stored: when the
channel does not acknowledge it the answer is 503 and nothing was stored; when the
store then fails, the previous value is published again (best effort) and the
answer is 503.  Changes are serialised within the process.
"""

from __future__ import annotations

import copy
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from alerts.api.auth import Who, needs, record
from alerts.api.context import TOO_LARGE, UNAUTHORIZED, UNCONFIGURED, ApiContext, Ctx
from alerts.api.errors import SafeJSONResponse
from alerts.api.models import (
    MAX_PROBLEMS,
    InvalidRequest,
    RulesDocument,
    RulesProblems,
    RulesUpdate,
    SuppressionOut,
)
from alerts.api.permissions import Permission
from alerts.control import RULES_KEY, encode_value, rules_message, suppression_key
from alerts.store import AlertStoreError, ControlStore, RulesRevisionConflictError

logger = logging.getLogger("alerts.api")

SuppressionIdPath = Annotated[uuid.UUID, Path(description="Suppression id (uuid).")]
NO_SUPPRESSION: dict[int | str, dict[str, Any]] = {404: {"description": "No such suppression"}}

router = APIRouter(prefix="/api/v1")


# ----------------------------------------------------------------------- suppressions


@router.get(
    "/suppressions",
    response_model=list[SuppressionOut],
    tags=["suppressions"],
    responses={**UNAUTHORIZED, **UNCONFIGURED},
    dependencies=[needs(Permission.SUPPRESSIONS_READ)],
)
def list_suppressions(
    ctx: Ctx,
    who: Who,
    include_expired: Annotated[
        bool, Query(description="Also list suppressions that no longer apply.")
    ] = False,
) -> list[SuppressionOut]:
    """Suppressions of your groups' cameras, newest first (only those still in force
    unless ``include_expired``)."""
    cstore, _ = ctx.control_parts()
    now = ctx.clock()
    items = cstore.list_suppressions(active_only=not include_expired, now=now)
    return [SuppressionOut.of(s, now) for s in items if ctx.cameras.visible(who, s.camera_id)]


@router.get(
    "/suppressions/{suppression_id}",
    response_model=SuppressionOut,
    tags=["suppressions"],
    responses={**UNAUTHORIZED, **NO_SUPPRESSION, **UNCONFIGURED},
    dependencies=[needs(Permission.SUPPRESSIONS_READ)],
)
def get_suppression(ctx: Ctx, who: Who, suppression_id: SuppressionIdPath) -> SuppressionOut:
    """One suppression of your groups' cameras (expired or not)."""
    cstore, _ = ctx.control_parts()
    found = cstore.get_suppression(str(suppression_id))
    if found is None or not ctx.cameras.visible(who, found.camera_id):
        raise HTTPException(status_code=404, detail="suppression not found")
    return SuppressionOut.of(found, ctx.clock())


@router.delete(
    "/suppressions/{suppression_id}",
    status_code=204,
    response_class=Response,
    tags=["suppressions"],
    responses={**UNAUTHORIZED, **NO_SUPPRESSION, **UNCONFIGURED},
    dependencies=[needs(Permission.SUPPRESSIONS_MANAGE)],
)
def delete_suppression(
    ctx: Ctx, who: Who, request: Request, suppression_id: SuppressionIdPath
) -> Response:
    """Lift a suppression on every worker (publishes a tombstone)."""
    cstore, _ = ctx.control_parts()
    sid = str(suppression_id)
    with ctx.control_lock:
        found = cstore.get_suppression(sid)
        if found is None or not ctx.cameras.visible(who, found.camera_id):
            raise HTTPException(status_code=404, detail="suppression not found")
        key = suppression_key(sid)
        ctx.publish(key, None)
        try:
            cstore.delete_suppression(sid)
        except AlertStoreError:
            ctx.compensate(key, found.to_dict())
            raise
    record(ctx, request, who, "suppression.delete", "suppression", sid, {"camera": found.camera_id})
    logger.info("suppression %s lifted", sid)
    return Response(status_code=204)


# ------------------------------------------------------------------------------ rules


def _current_rules(ctx: ApiContext, cstore: ControlStore) -> RulesDocument | None:
    stored = cstore.get_rules()
    if stored is not None:
        return RulesDocument(revision=stored[0], rules=stored[1])
    if ctx.base_rules is not None:
        return RulesDocument(revision=0, rules=ctx.base_rules)
    return None


@router.get(
    "/rules",
    response_model=RulesDocument,
    tags=["rules"],
    responses={
        **UNAUTHORIZED,
        404: {"description": "No rules stored and no initial rules"},
        **UNCONFIGURED,
    },
    dependencies=[needs(Permission.RULES_READ)],
)
def get_rules(ctx: Ctx) -> RulesDocument:
    """The current rule set and its revision (0: the configured rules, never changed).
    Read-only servers (``argus serve``, no control channel) answer from the store too."""
    cstore = ctx.control_store
    if cstore is None and isinstance(ctx.store, ControlStore):
        cstore = ctx.store
    if cstore is None:
        cstore, _ = ctx.control_parts()  # 503: nowhere to read rules from
    doc = _current_rules(ctx, cstore)
    if doc is None:
        raise HTTPException(status_code=404, detail="no rules set")
    return doc


def rule_problems(ctx: ApiContext, body: RulesUpdate) -> list[str]:
    """What is wrong with the rule set of ``body`` (empty: it may be applied)."""
    if not body.rules and not body.confirm_empty:
        return [
            "an empty rule set disarms every rule, camera health included, on every "
            'worker: send "confirm_empty": true to do that'
        ]
    try:  # NaN/Infinity parse from the body but are no JSON to send or store
        encode_value(RULES_KEY, rules_message(0, body.rules, 0.0))
    except ValueError as e:
        return [str(e)]
    assert ctx.validate_rules is not None  # create_app enforces it with control
    try:
        return list(ctx.validate_rules(copy.deepcopy(body.rules)))
    except (ValueError, TypeError, KeyError, RecursionError) as e:  # the guard bounds depth
        return [f"{type(e).__name__}: {e}"[:500]]


@router.put(
    "/rules",
    response_model=RulesDocument,
    tags=["rules"],
    responses={
        **UNAUTHORIZED,
        409: {"description": "revision is not the current one: reload and retry"},
        **TOO_LARGE,
        422: {
            "model": RulesProblems | InvalidRequest,
            "description": "The rules have problems (listed), or the body is invalid",
        },
        **UNCONFIGURED,
    },
    dependencies=[needs(Permission.RULES_WRITE)],
)
def put_rules(ctx: Ctx, who: Who, request: Request, body: RulesUpdate) -> Any:
    """Replace the rule set; every worker applies it without a restart.

    The rules are checked first (``problems`` listed with 422); ``revision`` must be
    the current one (409 otherwise), or null to overwrite.  An empty set needs
    ``confirm_empty: true``: it disarms everything, camera health included.
    """
    cstore, _ = ctx.control_parts()
    problems = rule_problems(ctx, body)
    if problems:
        return SafeJSONResponse(
            RulesProblems(
                detail="invalid rules", problems=[str(p)[:500] for p in problems[:MAX_PROBLEMS]]
            ).model_dump(),
            status_code=422,
        )
    with ctx.control_lock:
        stored = cstore.get_rules()
        current = 0 if stored is None else stored[0]
        if body.revision is not None and body.revision != current:
            raise HTTPException(
                status_code=409,
                detail=f"rules revision is {current}, not {body.revision}: reload and retry",
            )
        ctx.publish(RULES_KEY, rules_message(current + 1, body.rules, ctx.clock()))
        try:
            revision = cstore.put_rules(body.rules, current)
        except RulesRevisionConflictError as e:  # another process changed them
            ctx.compensate(RULES_KEY, _stored_rules_message(cstore, ctx.clock()))
            raise HTTPException(
                status_code=409,
                detail=f"rules revision is {e.current}, not {body.revision}: reload and retry",
            ) from e
        except AlertStoreError:
            prev = None if stored is None else rules_message(stored[0], stored[1], ctx.clock())
            ctx.compensate(RULES_KEY, prev)
            raise
    record(ctx, request, who, "rules.put", "rules", str(revision), {"rules": len(body.rules)})
    logger.info("rules revision %d stored and published (%d rules)", revision, len(body.rules))
    return RulesDocument(revision=revision, rules=body.rules)


def _stored_rules_message(cstore: ControlStore, now: float) -> dict[str, Any] | None:
    """The stored rules as a control value (``None``: a tombstone, no rules stored)."""
    stored = cstore.get_rules()
    return None if stored is None else rules_message(stored[0], stored[1], now)
