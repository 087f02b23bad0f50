"""Evidence of an alert: its snapshot JPEG and its MP4 clip, masked unless asked otherwise,
or a short-lived direct URL to the masked copy.

Masked by default.  Beside each original (``<id>.jpg``, ``<id>.mp4``) the worker stores a
copy with every person blurred (``<id>.masked.jpg``, ``<id>.masked.mp4``: see
``alerts.evidence.masked_key``); the routes serve that copy.  ``?unmasked=true`` serves the
original, only to a role holding ``Permission.VIEW_UNMASKED`` (403 for the others), and
writes an ``evidence.unmasked`` entry to the audit trail first (target: the alert, so the
alert's own trail and the supervisors of its cameras see it; ``detail.evidence``:
``snapshot`` or ``clip``).  A snapshot view is audited each time; a clip view at most once
per principal, alert and ``UNMASKED_CLIP_AUDIT_S``: a browser plays a clip as a run of
Range requests, and the trail should show one view, not twenty; every unmasked request
still follows an audited one of the same principal for the same clip by less than that.
Masked views are not audited.  When the masked copy is missing (evidence stored before
masking existed), the answer is 404, never the original.  URLs (``/snapshot-url``,
``/clip-url``) are of the masked copies only.

Clips are made by the worker some seconds after the event starts (its ``post_s`` window,
then masking); until then ``/clip``, ``/clip-info`` and ``/clip-url`` answer 404 with
``Retry-After``.  Once ``CLIP_DUE_S`` have passed since the store received the alert, a
missing clip was not made: 404 without ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from alerts.api.auth import Who, needs, record
from alerts.api.context import UNAUTHORIZED, Ctx
from alerts.api.models import ClipInfo, ClipUrl, SnapshotUrl
from alerts.api.permissions import Permission, Principal, roles_with
from alerts.api.routes.alerts import EventIdPath, alert_or_404
from alerts.evidence import (
    EvidenceNotFoundError,
    InvalidEvidenceKeyError,
    UrlEvidenceStore,
    clip_info_key,
    masked_key,
)
from alerts.store import Alert

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[needs(Permission.ALERTS_READ)])

NO_URL = "no URL for this snapshot (store serves bytes only or upload pending); use /snapshot"
NO_CLIP_URL = "no URL for this clip (store serves bytes only or upload pending); use /clip"
UNMASKED_CLIP_AUDIT_S = 60.0
"""An unmasked view of a clip is audited at most this often per principal and alert."""
CLIP_DUE_S = 300.0
"""Seconds after the store received an alert by which its clip exists, if it is made at all
(the clip's window after the start is at most 60 s; masking and upload take the rest)."""
CLIP_RETRY_AFTER_S = 5
"""The ``Retry-After`` of a clip still being made, seconds."""
_MAX_VIEWS = 10_000
"""Most (principal, alert) pairs remembered for the clip audit window."""


def _holders() -> str:
    roles = [f"{role}s" for role in roles_with(Permission.VIEW_UNMASKED)]
    return ", ".join(roles[:-1]) + " and " + roles[-1] if len(roles) > 1 else "".join(roles)


Unmasked = Annotated[
    bool,
    Query(
        description=f"Serve the original, people not blurred ({_holders()} only; the view "
        "is written to the audit trail, a clip's at most once a minute per viewer).  "
        "Default: the masked copy."
    ),
]


# -- errors -------------------------------------------------------------------------------


@contextlib.contextmanager
def evidence_errors(
    key: str, event_id: uuid.UUID | str, action: str, what: str = "snapshot"
) -> Iterator[None]:
    """Map evidence-store failures to HTTP answers: missing or bad key 404, store down 503."""
    try:
        yield
    except EvidenceNotFoundError as e:
        logger.warning("%s %s of alert %s is missing", what, e.key, event_id)
        raise HTTPException(status_code=404, detail=f"{what} not found") from e
    except InvalidEvidenceKeyError as e:
        logger.warning("alert %s has an invalid %s key: %s", event_id, what, e.reason)
        raise HTTPException(status_code=404, detail=f"{what} not found") from e
    except OSError as e:
        logger.warning("evidence store failed %s %s: %s", action, key, type(e).__name__)
        raise HTTPException(status_code=503, detail="evidence store unavailable") from e


def _only_original(what: str) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"no masked copy of this {what} (stored before masking existed): only the "
        f"original exists, which {_holders()} may view with unmasked=true",
    )


def _may_view_unmasked(ctx: Ctx, request: Request, who: Principal, what: str) -> None:
    if ctx.audit is None:  # an unmasked view that cannot be written down is not given
        raise HTTPException(
            status_code=403,
            detail=f"the unmasked {what} is served only where views are audited, and this "
            "store keeps no audit trail",
        )
    if not who.can(Permission.VIEW_UNMASKED):
        need = Permission.VIEW_UNMASKED.value
        ctx.rejections.note(f"{who.role} lacks {need}", request.scope)
        raise HTTPException(
            status_code=403,
            detail=f"the unmasked {what} is for {_holders()} only (needs {need}); "
            f"a {who.role} sees the masked copy: leave out unmasked",
        )


def _missing_clip(ctx: Ctx, alert: Alert, what: str, original: str | None = None) -> HTTPException:
    """The 404 of a clip (or its description) not stored: being made (``Retry-After``)
    while the alert is younger than ``CLIP_DUE_S`` and its worker is not known to be gone
    (an interrupted alert), else not made.  ``original``: the
    clip's key when the masked copy was asked for (an old one may exist without it)."""
    age = ctx.clock() - alert.received_at.timestamp()
    if alert.end_reason == "interrupted":  # its worker is gone: nobody is making it
        if original is not None and ctx.evidence.exists(original):
            return _only_original("clip")
        return HTTPException(
            status_code=404,
            detail=f"the {what} was not made: the worker stopped before the clip's window "
            "had passed (the alert was interrupted)",
        )
    if age < CLIP_DUE_S:
        return HTTPException(
            status_code=404,
            detail=f"the {what} is being made (the alert is {max(age, 0):.0f} s old); "
            f"retry in {CLIP_RETRY_AFTER_S} s",
            headers={"Retry-After": str(CLIP_RETRY_AFTER_S), "Cache-Control": "no-store"},
        )
    if original is not None and ctx.evidence.exists(original):
        return _only_original("clip")
    return HTTPException(
        status_code=404,
        detail=f"the {what} was not made (the alert is {age / 60:.0f} min old; clips are "
        f"ready within {CLIP_DUE_S / 60:.0f} min): see the worker's log",
    )


# -- keys ---------------------------------------------------------------------------------


def _snapshot_of(alert: Alert) -> str:
    if alert.snapshot is None:
        raise HTTPException(status_code=404, detail="alert has no snapshot")
    return alert.snapshot


def _clip_of(alert: Alert) -> str:
    if alert.clip is None:
        raise HTTPException(status_code=404, detail="this alert has no clip")
    return alert.clip


# -- auditing -----------------------------------------------------------------------------


class _ClipViews:
    """When each principal's unmasked view of each alert's clip was last audited (one per
    app, in ``app.state``; bounded: past ``_MAX_VIEWS`` pairs the stale ones go)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str, str], float] = {}

    def due(self, who: Principal, event_id: str, now: float) -> bool:
        """Whether this view is to be audited (none of this viewer's views of the alert
        was audited in the last ``UNMASKED_CLIP_AUDIT_S``)."""
        key = (who.kind, who.name, event_id)
        with self._lock:
            last = self._last.get(key)
            return last is None or not 0 <= now - last < UNMASKED_CLIP_AUDIT_S

    def audited(self, who: Principal, event_id: str, now: float) -> None:
        """Note the view as audited at ``now`` (only once the trail has it)."""
        key = (who.kind, who.name, event_id)
        with self._lock:
            if len(self._last) >= _MAX_VIEWS:
                fresh = {
                    k: t for k, t in self._last.items() if 0 <= now - t < UNMASKED_CLIP_AUDIT_S
                }
                self._last = fresh if len(fresh) < _MAX_VIEWS else {}
            self._last[key] = now


_CLIP_VIEWS_LOCK = threading.Lock()


def _clip_views(request: Request) -> _ClipViews:
    state = request.app.state
    with _CLIP_VIEWS_LOCK:
        views = getattr(state, "argus_unmasked_clip_views", None)
        if not isinstance(views, _ClipViews):
            views = _ClipViews()
            state.argus_unmasked_clip_views = views
    return views


def _audit_unmasked(ctx: Ctx, request: Request, who: Principal, alert: Alert, what: str) -> None:
    """Write the unmasked view to the trail (before the bytes go out: a trail that cannot
    be written answers 503, and nothing is shown)."""
    facts = {"evidence": what, "camera_id": alert.camera_id}
    record(ctx, request, who, "evidence.unmasked", "alert", alert.event_id, facts)


# -- byte ranges --------------------------------------------------------------------------

_RANGE = re.compile(r"bytes=(\d{0,30})-(\d{0,30})", re.IGNORECASE)


class RangeNotSatisfiableError(ValueError):
    """A well-formed byte range that selects no byte of the body.

    Attributes:
        header: The ``Range`` header.
        size: The body's length, bytes.
    """

    def __init__(self, header: str, size: int) -> None:
        self.header = header
        self.size = size
        super().__init__(f"range {header!r} selects nothing of {size} bytes")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a ``Range`` header asks of a body of ``size`` bytes.

    Args:
        header: The header's value (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), or ``None``.
        size: The body's length, bytes.

    Returns:
        ``(first, last)``, inclusive byte offsets (``last`` clipped to the body); ``None``
        for the whole body: no header, another unit, several ranges (which a server may
        answer whole), or a malformed range (which RFC 9110 lets a server ignore).

    Raises:
        RangeNotSatisfiableError: The range starts at or past the end of the body, or is
            a suffix of 0 bytes.
    """
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or not (m.group(1) or m.group(2)):
        return None
    if not m.group(1):  # a suffix: the last n bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            raise RangeNotSatisfiableError(header, size)
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if m.group(2) and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiableError(header, size)
    return first, min(last, size - 1)


# -- snapshots ----------------------------------------------------------------------------

_EVIDENCE_403: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Signed in, but the role may not do this: e.g. an operator asking "
        "for the unmasked copy"
    }
}


@router.get(
    "/alerts/{event_id}/snapshot",
    response_class=Response,
    responses={
        **UNAUTHORIZED,
        **_EVIDENCE_403,
        404: {
            "description": "No such alert, no snapshot, or no masked copy of it (stored "
            "before masking: only the original, for those who may view it unmasked)"
        },
        200: {"content": {"image/jpeg": {}}, "description": "The snapshot JPEG."},
        503: {"description": "Evidence store unreachable"},
    },
)
def snapshot(
    ctx: Ctx, who: Who, request: Request, event_id: EventIdPath, unmasked: Unmasked = False
) -> Response:
    """The alert's evidence snapshot (JPEG), every person blurred; the original with
    ``unmasked=true`` (supervisors and admins by default; audited)."""
    if unmasked:
        _may_view_unmasked(ctx, request, who, "snapshot")
    alert = alert_or_404(ctx, who, event_id)
    original = _snapshot_of(alert)
    if unmasked:
        with evidence_errors(original, event_id, "reading"):
            jpeg = ctx.evidence.get(original)
        _audit_unmasked(ctx, request, who, alert, "snapshot")
        return Response(
            content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )
    with evidence_errors(original, event_id, "reading"):
        try:
            jpeg = ctx.evidence.get(masked_key(original))
        except EvidenceNotFoundError:
            if ctx.evidence.exists(original):
                raise _only_original("snapshot") from None
            raise
    return Response(
        content=jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/alerts/{event_id}/snapshot-url",
    response_model=SnapshotUrl,
    responses={
        **UNAUTHORIZED,
        404: {
            "description": "No such alert, no snapshot or no masked copy of it, or no URL "
            "for it (the store serves bytes only, or the snapshot is not uploaded yet: use "
            "/snapshot)"
        },
        503: {"description": "Evidence store unreachable"},
    },
)
def snapshot_url(ctx: Ctx, who: Who, event_id: EventIdPath) -> JSONResponse:
    """A short-lived direct URL (presigned S3 GET) to the alert's masked snapshot JPEG
    (never the original: it would leave the audit trail)."""
    original = _snapshot_of(alert_or_404(ctx, who, event_id))
    if not isinstance(ctx.evidence, UrlEvidenceStore):
        raise HTTPException(status_code=404, detail=NO_URL)
    with evidence_errors(original, event_id, "presigning"):
        try:
            url = ctx.evidence.url_for(masked_key(original), ctx.snapshot_url_expiry_s)
        except EvidenceNotFoundError:
            if ctx.evidence.exists(original):
                raise _only_original("snapshot") from None
            raise
    if url is None:
        raise HTTPException(status_code=404, detail=NO_URL)
    body = SnapshotUrl(url=url, expires_in_s=ctx.snapshot_url_expiry_s)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


# -- clips --------------------------------------------------------------------------------

_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Only while the clip is being made: seconds to wait before asking again.",
        "schema": {"type": "integer"},
    }
}
_CLIP_404: dict[str, Any] = {
    "description": "No such alert; the alert has no clip; the clip is being made "
    "(with Retry-After); or it was not made (without)",
    "headers": _RETRY_AFTER,
}


@router.get(
    "/alerts/{event_id}/clip",
    response_class=Response,
    responses={
        **UNAUTHORIZED,
        **_EVIDENCE_403,
        404: _CLIP_404,
        200: {
            "content": {"video/mp4": {}},
            "description": "The MP4 clip, people blurred (the original with unmasked=true).",
        },
        206: {
            "content": {"video/mp4": {}},
            "description": "The part of the clip a Range header asked for (one range: "
            "bytes=a-b, bytes=a- or bytes=-n), with Content-Range.",
        },
        416: {"description": "The Range starts past the clip's end (Content-Range: bytes */size)"},
        503: {"description": "Evidence store unreachable"},
    },
)
def clip(
    ctx: Ctx, who: Who, request: Request, event_id: EventIdPath, unmasked: Unmasked = False
) -> Response:
    """The alert's video clip (MP4), every person blurred; the original with
    ``unmasked=true`` (supervisors and admins by default; audited at most once a minute per
    viewer and alert).  Honours one byte range (``Range: bytes=a-b``, ``a-`` or ``-n``:
    206 with ``Content-Range``), as video players ask; several ranges get the whole clip.
    Not made yet: 404 with ``Retry-After``."""
    if unmasked:
        _may_view_unmasked(ctx, request, who, "clip")
    alert = alert_or_404(ctx, who, event_id)
    original = _clip_of(alert)
    with evidence_errors(original, event_id, "reading", "clip"):
        key = original if unmasked else masked_key(original)
        try:
            data = ctx.evidence.get(key)
        except EvidenceNotFoundError:
            raise _missing_clip(ctx, alert, "clip", None if unmasked else original) from None
    size = len(data)
    header = request.headers.get("range")
    try:
        # a validator we never gave (no ETag, no Last-Modified): the whole clip
        span = None if "if-range" in request.headers else byte_range(header, size)
    except RangeNotSatisfiableError as e:
        raise HTTPException(
            status_code=416,
            detail=f"range not satisfiable: the clip has {size} bytes",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        ) from e
    views, now = _clip_views(request), ctx.clock()
    if unmasked and views.due(who, alert.event_id, now):
        _audit_unmasked(ctx, request, who, alert, "clip")  # raises: nothing is shown
        views.audited(who, alert.event_id, now)
    name = f"{event_id}{'' if unmasked else '.masked'}.mp4"
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store" if unmasked else "private, max-age=3600",
        "Content-Disposition": f'inline; filename="{name}"',
    }
    if span is None:
        return Response(content=data, media_type="video/mp4", headers=headers)
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(
        content=data[first : last + 1], status_code=206, media_type="video/mp4", headers=headers
    )


@router.get(
    "/alerts/{event_id}/clip-info",
    response_model=ClipInfo,
    responses={
        **UNAUTHORIZED,
        404: {**_CLIP_404, "description": _CLIP_404["description"] + "; or unreadable"},
        503: {"description": "Evidence store unreachable"},
    },
)
def clip_info(ctx: Ctx, who: Who, event_id: EventIdPath) -> ClipInfo:
    """What the clip covers: the window asked for and the one it has, whether the video
    ended inside it, its frames and codec, how it was masked."""
    alert = alert_or_404(ctx, who, event_id)
    original = _clip_of(alert)
    with evidence_errors(original, event_id, "reading", "clip description"):
        try:
            raw = ctx.evidence.get(clip_info_key(original))
        except EvidenceNotFoundError:
            raise _missing_clip(ctx, alert, "clip description") from None
    try:
        return ClipInfo.model_validate_json(raw)
    except ValidationError as e:
        logger.warning(
            "the clip description of alert %s is unreadable (%d errors)", event_id, e.error_count()
        )
        raise HTTPException(status_code=404, detail="the clip's description is unreadable") from e


@router.get(
    "/alerts/{event_id}/clip-url",
    response_model=ClipUrl,
    responses={
        **UNAUTHORIZED,
        404: {
            **_CLIP_404,
            "description": _CLIP_404["description"] + "; or no URL for it (the store serves "
            "bytes only, or the clip is not uploaded yet: use /clip)",
        },
        503: {"description": "Evidence store unreachable"},
    },
)
def clip_url(ctx: Ctx, who: Who, event_id: EventIdPath) -> JSONResponse:
    """A short-lived direct URL (presigned S3 GET) to the alert's masked clip (never the
    original: it would leave the audit trail)."""
    alert = alert_or_404(ctx, who, event_id)
    original = _clip_of(alert)
    if not isinstance(ctx.evidence, UrlEvidenceStore):
        raise HTTPException(status_code=404, detail=NO_CLIP_URL)
    with evidence_errors(original, event_id, "presigning", "clip"):
        try:
            url = ctx.evidence.url_for(masked_key(original), ctx.snapshot_url_expiry_s)
        except EvidenceNotFoundError:
            raise _missing_clip(ctx, alert, "clip", original) from None
    if url is None:
        raise HTTPException(status_code=404, detail=NO_CLIP_URL)
    body = ClipUrl(url=url, expires_in_s=ctx.snapshot_url_expiry_s)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
