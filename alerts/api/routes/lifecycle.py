"""The alert lifecycle: claim, release, escalate, close (with a disposition), reopen.

``state`` (new, claimed, escalated, closed) is what operators did; whether the event is
still going on is ``end_s`` (``ongoing``), and later records of the event never change
``state``.  Every transition is one conditional update in the store with its audit entry:
of two users claiming one alert exactly one wins, the other gets 409 naming the owner;
a transition the state does not allow is 409 with the ones it does.

* Acting on a ``new`` alert (escalate, close) claims it first.
* Operators act on alerts of their groups that are new or theirs (one they escalated to
  an outside service stays theirs to close); supervisors (and admins) also on alerts
  others own and on escalated ones.
* A false alarm's suppression that cannot be made (camera-wide by an operator, a region
  without a box, no control plane) is refused before the alert is claimed.
* ``false_alarm`` creates the suppression ``POST /false-positive`` makes (region or rule;
  camera-wide for supervisors), published to every worker.
* ``POST /ack`` (close, ``no_action``) and ``POST /false-positive`` (close, ``false_alarm``)
  stay as they were for older clients.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from alerts.api.auth import Who, audit_entry, needs, record
from alerts.api.context import NOT_FOUND, TOO_LARGE, UNAUTHORIZED, UNCONFIGURED, ApiContext, Ctx
from alerts.api.lifecycle_models import (
    CloseRequest,
    Conflict,
    EscalateRequest,
    NoteRequest,
    SuppressSpec,
)
from alerts.api.models import (
    AckRequest,
    FalsePositiveRequest,
    InvalidRequest,
    SuppressionOut,
    invalid,
)
from alerts.api.permissions import Permission, Principal
from alerts.api.routes.alerts import EventIdPath, alert_or_404
from alerts.control import suppression_key
from alerts.store import (
    KEEP,
    Alert,
    AlertState,
    AlertStoreError,
    Disposition,
    Keep,
    LifecycleStore,
    TransitionConflictError,
)
from selector.suppression import Suppression, region_around

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["lifecycle"])
ACT = [needs(Permission.ALERTS_ACT)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Conflict, "description": "Its state, or another user, does not allow it now"}
}
ANSWERS = {**UNAUTHORIZED, **NOT_FOUND, **TOO_LARGE, **CONFLICT}


def _lifecycle(ctx: ApiContext) -> LifecycleStore:
    if ctx.lifecycle is None:
        raise HTTPException(status_code=503, detail="this store keeps no alert lifecycle")
    return ctx.lifecycle


def _move(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    alert: Alert,
    action: str,
    to: AlertState,
    from_states: Collection[AlertState],
    *,
    set_owner: str | Keep | None = KEEP,
    require_owner: str | None = None,
    fields: Mapping[str, Any] | None = None,
    note: str | None = None,
    by: str | None = None,
) -> Alert:
    detail: dict[str, Any] = {"from": alert.state, "to": to}
    for key, value in (fields or {}).items():
        if isinstance(value, str):
            detail[key] = value
    if note:
        detail["note"] = note
    # The shared API key says nothing of who used it: older clients name the operator in
    # ``by``, which stands for them then (users and tokens are who they are).
    actor = by if by and who.kind == "api_key" else None
    entry = audit_entry(
        ctx, request, who, f"alert.{action}", "alert", alert.event_id, detail, actor=actor
    )
    return _lifecycle(ctx).transition(
        alert.event_id,
        to_state=to,
        from_states=from_states,
        audit=entry,
        set_owner=set_owner,
        require_owner=require_owner,
        fields=fields,
    )


def _taken(
    ctx: ApiContext, request: Request, who: Principal, alert: Alert, by: str | None = None
) -> Alert:
    """The alert, claimed by ``who`` if it was new; 409 if another user has it and ``who``
    may not act on others' alerts; 403 if it is escalated and ``who`` is no supervisor."""
    if alert.state == "new":
        alert = _move(
            ctx, request, who, alert, "claim", "claimed", {"new"},
            set_owner=by if by and who.kind == "api_key" else who.name, by=by,
        )  # fmt: skip
    me = by if by and who.kind == "api_key" else who.name
    if (
        alert.state == "escalated"
        and not who.can(Permission.ALERTS_ACT_ANY)
        and not _kept(alert, me)
    ):
        raise HTTPException(status_code=403, detail="escalated alerts are for supervisors")
    mine_or_any = alert.owner == me or who.can(Permission.ALERTS_ACT_ANY)
    if alert.state == "claimed" and not mine_or_any:
        raise TransitionConflictError(alert.event_id, alert.state, alert.owner)
    return alert


def _kept(alert: Alert, me: str) -> bool:
    """Whether ``alert`` was escalated to an outside service by ``me``, who kept it (and
    closes it when that service is done)."""
    return (
        alert.escalated_to == "external"
        and alert.owner is not None
        and alert.owner.casefold() == me.casefold()
    )


def _mine(who: Principal, by: str | None = None) -> str | None:
    """``require_owner`` of a transition: anyone's for supervisors, else ``who``'s own."""
    if who.can(Permission.ALERTS_ACT_ANY):
        return None
    return by if by and who.kind == "api_key" else who.name


@router.post("/alerts/{event_id}/claim", response_model=Alert, dependencies=ACT, responses=ANSWERS)
def claim(
    ctx: Ctx, request: Request, who: Who, event_id: EventIdPath, body: NoteRequest | None = None
) -> Alert:
    """Take an alert: it is yours to deal with (claiming your own again changes nothing).
    An escalated alert is claimed by a supervisor."""
    alert = alert_or_404(ctx, who, event_id)
    if alert.state == "claimed" and alert.owner == who.name:
        return alert
    if alert.state == "escalated" and not who.can(Permission.ALERTS_ACT_ANY):
        raise HTTPException(status_code=403, detail="escalated alerts are for supervisors")
    note = body.note if body else None
    try:
        return _move(
            ctx, request, who, alert, "claim", "claimed", {"new", "escalated"},
            set_owner=who.name, note=note,
        )  # fmt: skip
    except TransitionConflictError as e:
        # Another request of the same user (a double click) claimed it meanwhile: theirs.
        if e.state == "claimed" and (e.owner or "").casefold() == who.name.casefold():
            return alert_or_404(ctx, who, event_id)
        raise


@router.post(
    "/alerts/{event_id}/release", response_model=Alert, dependencies=ACT, responses=ANSWERS
)
def release(
    ctx: Ctx, request: Request, who: Who, event_id: EventIdPath, body: NoteRequest | None = None
) -> Alert:
    """Give a claimed alert back to the queue (yours; a supervisor: anyone's)."""
    alert = alert_or_404(ctx, who, event_id)
    return _move(
        ctx, request, who, alert, "release", "new", {"claimed"},
        set_owner=None, require_owner=_mine(who), note=body.note if body else None,
    )  # fmt: skip


@router.post(
    "/alerts/{event_id}/escalate", response_model=Alert, dependencies=ACT, responses=ANSWERS
)
def escalate(
    ctx: Ctx,
    request: Request,
    who: Who,
    event_id: EventIdPath,
    body: EscalateRequest | None = None,
) -> Alert:
    """Hand an alert on: to the supervisors (it leaves your hands), or to an outside
    service with its reference (you keep it)."""
    req = body or EscalateRequest()
    alert = _taken(ctx, request, who, alert_or_404(ctx, who, event_id))
    fields = {"escalated_to": req.to, "escalation_ref": req.reference, "escalated_by": who.name}
    from_states: set[AlertState] = {"claimed"}
    if who.can(Permission.ALERTS_ACT_ANY):
        from_states.add("escalated")  # e.g. on to the police, with the case number
    return _move(
        ctx, request, who, alert, "escalate", "escalated", from_states,
        set_owner=None if req.to == "supervisors" else KEEP,
        require_owner=_mine(who), fields=fields, note=req.note,
    )  # fmt: skip


@router.post(
    "/alerts/{event_id}/close",
    response_model=Alert,
    dependencies=ACT,
    responses={**ANSWERS, **UNCONFIGURED},
)
def close(ctx: Ctx, request: Request, who: Who, event_id: EventIdPath, body: CloseRequest) -> Alert:
    """Close an alert with how it was judged; a ``false_alarm`` also suppresses similar
    events on every worker for a while (``suppress``)."""
    alert = alert_or_404(ctx, who, event_id)
    if body.disposition == "false_alarm":  # refused before the alert is claimed
        _check_suppression(ctx, who, alert, _spec(alert, body.suppress))
    alert = _taken(ctx, request, who, alert)
    return _close(ctx, request, who, alert, body.disposition, body.note, body.suppress)


def _spec(alert: Alert, suppress: SuppressSpec | None) -> SuppressSpec:
    """What a false alarm of ``alert`` suppresses: as asked, else its region (its rule
    when it has no box)."""
    return suppress or SuppressSpec(scope="region" if alert.bbox else "rule")


def _check_suppression(ctx: ApiContext, who: Principal, alert: Alert, spec: SuppressSpec) -> None:
    """Refuse a suppression that cannot be made before anything changes (a request
    answered 403, 422 or 503 claims nothing); ``_with_suppression`` then makes it.

    Raises:
        HTTPException: 403 for a camera-wide one by an operator; 503 without a control
            plane; 422 for scope ``region`` on an alert without a box.
    """
    if spec.scope == "camera" and not who.can(Permission.SUPPRESSIONS_MANAGE):
        raise HTTPException(status_code=403, detail="camera-wide suppressions are for supervisors")
    ctx.control_parts()
    _suppression_for(alert, spec, "", 0.0)


def _close(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    alert: Alert,
    disposition: Disposition,
    note: str | None,
    suppress: SuppressSpec | None,
    by: str | None = None,
) -> Alert:
    """Close ``alert`` (claimed by ``who``, or escalated for a supervisor); a false alarm
    with its suppression."""
    if disposition != "false_alarm":
        return _close_only(ctx, request, who, alert, disposition, note, by)
    spec = _spec(alert, suppress)
    closed, _ = _with_suppression(
        ctx, request, who, alert, spec, note or "",
        lambda: _close_only(ctx, request, who, alert, disposition, note, by),
    )  # fmt: skip
    return closed


def _close_only(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    alert: Alert,
    disposition: Disposition,
    note: str | None,
    by: str | None = None,
) -> Alert:
    from_states: set[AlertState] = {"claimed"}
    me = by if by and who.kind == "api_key" else who.name
    if who.can(Permission.ALERTS_ACT_ANY) or _kept(alert, me):
        from_states.add("escalated")  # the owner's check is the store's (require_owner)
    return _move(
        ctx, request, who, alert, "close", "closed", from_states,
        require_owner=_mine(who, by), fields={"disposition": disposition, "close_note": note},
        note=note, by=by,
    )  # fmt: skip


def _with_suppression(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    alert: Alert,
    spec: SuppressSpec,
    note: str,
    then: Callable[[], Alert],
) -> tuple[Alert, Suppression]:
    """Publish and store the suppression a false alarm of ``alert`` makes, then ``then()``
    (the close); when that fails, the suppression is withdrawn again.

    Raises:
        HTTPException: 403 for a camera-wide one by an operator; 503 when the control
            plane is not configured or its channel refuses the change.
    """
    if spec.scope == "camera" and not who.can(Permission.SUPPRESSIONS_MANAGE):
        raise HTTPException(status_code=403, detail="camera-wide suppressions are for supervisors")
    cstore, _ = ctx.control_parts()
    suppression = _suppression_for(alert, spec, note, ctx.clock())
    key = suppression_key(suppression.suppression_id)
    with ctx.control_lock:
        ctx.publish(key, suppression.to_dict())
        try:
            cstore.add_suppression(suppression)
        except AlertStoreError:
            ctx.compensate(key, None)
            raise
    try:
        done = then()
    except BaseException:  # the close did not happen (a conflict, the store): withdraw it
        with ctx.control_lock:
            ctx.compensate(key, None)
            with contextlib.suppress(AlertStoreError):
                cstore.delete_suppression(suppression.suppression_id)
        raise
    record(
        ctx, request, who, "suppression.create", "suppression", suppression.suppression_id,
        {"alert": alert.event_id, "scope": spec.scope, "expires_in_s": str(spec.expires_in_s)},
    )  # fmt: skip
    logger.info(
        "alert %s: false alarm, suppression %s (%s scope, %d s)",
        alert.event_id,
        suppression.suppression_id,
        spec.scope,
        spec.expires_in_s,
    )
    return done, suppression


def _suppression_for(alert: Alert, spec: SuppressSpec, note: str, now: float) -> Suppression:
    """The suppression a false alarm of ``alert`` creates at UNIX time ``now``.

    Raises:
        HTTPException: 422 for scope ``region`` on an alert without a box.
    """
    region: tuple[float, float, float, float] | None = None
    if spec.scope == "region":
        if alert.bbox is None or len(alert.bbox) != 4:
            raise HTTPException(
                status_code=422,
                detail=invalid(
                    ["body", "scope"], 'alert has no box: use scope "rule" or "camera"', "no_box"
                )["detail"],
            )
        x1, y1, x2, y2 = alert.bbox
        region = region_around((x1, y1, x2, y2))
    narrow = spec.scope == "region"
    return Suppression(
        suppression_id=str(uuid.uuid4()),
        camera_id=alert.camera_id,
        rule_id=alert.rule_id if spec.scope in ("region", "rule") else None,
        zone=alert.zone if narrow else None,
        label=alert.label if narrow else None,
        region=region,
        expires_at=now + spec.expires_in_s,
        created_at=now,
        source_event_id=alert.event_id,
        note=note,
    )


@router.post("/alerts/{event_id}/reopen", response_model=Alert, dependencies=ACT, responses=ANSWERS)
def reopen(
    ctx: Ctx, request: Request, who: Who, event_id: EventIdPath, body: NoteRequest | None = None
) -> Alert:
    """Open a closed alert again; it is yours (its disposition is cleared).  Operators
    reopen what they closed; supervisors, any closed alert."""
    alert = alert_or_404(ctx, who, event_id)
    others = alert.closed_by != who.name and not who.can(Permission.ALERTS_ACT_ANY)
    if alert.state == "closed" and others:
        raise TransitionConflictError(alert.event_id, alert.state, alert.closed_by)
    return _move(
        ctx, request, who, alert, "reopen", "claimed", {"closed"},
        set_owner=who.name, note=body.note if body else None,
    )  # fmt: skip


# -------------------------------------------------------------------- older routes


@router.post(
    "/alerts/{event_id}/ack",
    response_model=Alert,
    tags=["alerts"],
    dependencies=ACT,
    responses=ANSWERS,
)
def acknowledge(
    ctx: Ctx, request: Request, who: Who, event_id: EventIdPath, body: AckRequest | None = None
) -> Alert:
    """Older form of ``close`` with ``no_action``: acknowledge an alert (again is harmless:
    a closed alert stays as it is)."""
    req = body or AckRequest()
    alert = alert_or_404(ctx, who, event_id)
    if alert.state == "closed":
        return alert
    alert = _taken(ctx, request, who, alert, req.by)
    return _close(ctx, request, who, alert, "no_action", req.note, None, req.by)


@router.post(
    "/alerts/{event_id}/false-positive",
    response_model=SuppressionOut,
    status_code=201,
    tags=["alerts", "suppressions"],
    dependencies=ACT,
    responses={
        **ANSWERS,
        422: {
            "model": InvalidRequest,
            "description": "Invalid body, or scope region for an alert without a box",
        },
        **UNCONFIGURED,
    },
)
def false_positive(
    ctx: Ctx,
    request: Request,
    who: Who,
    event_id: EventIdPath,
    body: FalsePositiveRequest | None = None,
) -> SuppressionOut:
    """Older form of ``close`` with ``false_alarm``: suppress similar events for a while,
    on every worker, and close the alert (if it is not closed already).

    ``scope``: ``region`` = same camera, rule, zone and label with the box centre in the
    alert's box grown by half its size; ``rule`` = same camera and rule; ``camera`` = the
    whole camera (supervisors).
    """
    req = body or FalsePositiveRequest()
    alert = alert_or_404(ctx, who, event_id)
    spec = SuppressSpec(scope=req.scope, expires_in_s=req.expires_in_s)
    _check_suppression(ctx, who, alert, spec)  # refused before the alert is claimed
    if alert.state != "closed":
        alert = _taken(ctx, request, who, alert, req.by)

        def then() -> Alert:
            return _close_only(ctx, request, who, alert, "false_alarm", req.note or None, req.by)

    else:
        # A suppression from a closed alert: only for who closed it, or a supervisor (an
        # operator must not silence a rule from an incident someone else judged).
        me = req.by if req.by and who.kind == "api_key" else who.name
        if not (alert.closed_by == me or who.can(Permission.SUPPRESSIONS_MANAGE)):
            raise TransitionConflictError(alert.event_id, alert.state, alert.owner)

        def then() -> Alert:
            return alert

    _, suppression = _with_suppression(ctx, request, who, alert, spec, req.note, then)
    return SuppressionOut.of(suppression, suppression.created_at)
