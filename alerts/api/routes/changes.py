"""``GET /api/v1/changes``: the alerts of your cameras as they change, pushed (Server-Sent
Events).

A page loads ``GET /api/v1/alerts`` (whose ``change_seq`` is the store's last change number
before the list was read), then opens this stream with ``after`` set to it.  Each event's
``id`` is its change number; a browser's ``EventSource`` sends the last one back in
``Last-Event-ID`` when it reconnects (a dropped connection, a restarted server), and the
stream goes on after it: no change missed, and each alert sent once per change number (a
page applies a change only when its number is above the one it has for that alert).

Events:

* ``alert``: an alert of your cameras as it is now (the ``Alert`` of ``GET /alerts``).
* ``removed``: ``{"event_id", "change_seq"}``: deleted (retention).
* ``reset``: ``{"reason"}``: reload the list (too far behind, or a number this store
  never handed out), then go on from this event's id.
* ``signed-out``: the session ended (expired, signed out, user disabled); the stream ends.
* an empty event that only moves the last event id, after changes of other cameras; a
  comment line every ``HEARTBEAT_S`` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from alerts.api.auth import Who, authenticate, needs
from alerts.api.changefeed import ChangeWatcher, change_event, sse
from alerts.api.context import UNAUTHORIZED, ApiContext, Ctx
from alerts.api.permissions import Permission, Principal, principal_groups
from alerts.store import MAX_CHANGES, AlertStoreError, ChangeFeedStore, ChangesPrunedError

logger = logging.getLogger("alerts.api")

router = APIRouter(prefix="/api/v1", tags=["alerts"])

HEARTBEAT_S = 15.0
"""A comment line after this long without an event, seconds."""
RECHECK_S = 30.0
"""How often an open stream checks that its session (or token) is still valid, seconds."""
MAX_CATCH_UP = 5 * MAX_CHANGES
"""More changes than this to send at once: a ``reset`` (the page reloads) instead."""
RETRY_MS = 2000
"""How long a browser waits before reconnecting a dropped stream, milliseconds."""


def _watcher(ctx: ApiContext, request: Request) -> tuple[ChangeFeedStore, ChangeWatcher]:
    store = ctx.store
    if not isinstance(store, ChangeFeedStore):
        raise HTTPException(status_code=503, detail="this store keeps no change sequence")
    state = request.app.state
    watcher = getattr(state, "argus_change_watcher", None)
    if not isinstance(watcher, ChangeWatcher):
        watcher = ChangeWatcher(store)
        state.argus_change_watcher = watcher
    return store, watcher


def _still_valid(request: Request, ctx: ApiContext, who: Principal) -> Principal | None:
    """``who`` checked again (a session may have ended since), or ``None``.

    A session is looked up without counting as a use: an open page alone does not keep a
    desk signed in past ``api.session_idle_s`` (what the person does on it does).  Keys
    and tokens are checked as a new request would be."""
    if who.session_hash is not None and ctx.people is not None:
        session = ctx.people.get_session(who.session_hash, now=ctx.clock(), touch=False)
        user = None if session is None else ctx.people.get_user(session.user)
        if session is None or user is None or user.disabled:
            return None
        return Principal(
            name=user.name,
            kind="user",
            role=user.role,
            groups=principal_groups(user.role, user.groups),
            session_hash=who.session_hash,
        )
    request.state.principal = None
    try:
        return authenticate(request, ctx)
    except HTTPException:
        return None


@router.get(
    "/changes",
    responses={
        **UNAUTHORIZED,
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        503: {"description": "The store keeps no change sequence"},
    },
    response_class=StreamingResponse,
    dependencies=[needs(Permission.ALERTS_READ)],
)
async def changes(
    ctx: Ctx,
    who: Who,
    request: Request,
    after: Annotated[
        int | None,
        Query(ge=0, description="Send the changes after this number (a list's change_seq)."),
    ] = None,
    for_s: Annotated[
        float | None,
        Query(
            gt=0,
            le=86400,
            description="End the stream after this many seconds (for clients behind a "
            "proxy that cuts long requests; an EventSource reconnects by itself).",
        ),
    ] = None,
    last_event_id: Annotated[
        str,
        Header(
            max_length=20,
            pattern=r"^[0-9]{0,19}$",
            description="Sent by a reconnecting EventSource (the last event's id); takes "
            "the place of after.",
        ),
    ] = "",
) -> StreamingResponse:
    """The changes of your cameras' alerts after ``after`` (or ``Last-Event-ID``), then each
    new one as it is stored (Server-Sent Events; see the module for the events)."""
    store, watcher = _watcher(ctx, request)
    start = int(last_event_id) if last_event_id else after
    ends = None if for_s is None else time.monotonic() + for_s
    stream = _stream(request, ctx, who, store, watcher, start, ends)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    store: ChangeFeedStore,
    watcher: ChangeWatcher,
    start: int | None,
    ends: float | None,
) -> AsyncIterator[bytes]:
    cameras = ctx.cameras.cameras_of(who)
    async with watcher.following():
        yield f"retry: {RETRY_MS}\n\n".encode()
        try:
            head = (await anyio.to_thread.run_sync(store.change_head)).seq
        except AlertStoreError as e:
            logger.warning("change stream: cannot read the change sequence: %s", e)
            return  # the browser reconnects after RETRY_MS
        if start is None:  # no number: from now on (the page has just loaded its list)
            after = head
            yield sse(None, event_id=after)
        elif start > head:  # a number this store never handed out (another database?)
            after = head
            yield sse("reset", {"reason": "unknown change number"}, event_id=after)
        else:
            after = start
        checked = quiet_since = time.monotonic()
        seen = watcher.head
        while True:
            if head > after:
                sent = 0
                try:
                    async for chunk in _changes(store, after, head, cameras):
                        yield chunk
                        sent += 1
                        if sent > MAX_CATCH_UP:
                            break
                except ChangesPrunedError:
                    sent = MAX_CATCH_UP + 1
                except AlertStoreError as e:
                    logger.warning("change stream: cannot read changes: %s", e)
                    return  # the browser reconnects from the last id it got
                if sent > MAX_CATCH_UP:
                    yield sse("reset", {"reason": "too many changes to send"}, event_id=head)
                else:
                    yield sse(None, event_id=head)
                after = head
                quiet_since = time.monotonic()
            now = time.monotonic()
            if ends is not None and now >= ends:
                return
            if now - checked >= RECHECK_S:
                checked = now
                checked_who = await anyio.to_thread.run_sync(_still_valid, request, ctx, who)
                if checked_who is None:
                    yield sse("signed-out", {"reason": "session ended: sign in again"})
                    return
                who = checked_who
                cameras = ctx.cameras.cameras_of(who)
            if watcher.failing:  # the store is away: end; the browser reconnects and says so
                return
            if now - quiet_since >= HEARTBEAT_S:
                yield b": keep-alive\n\n"
                quiet_since = now
            wait_s = min(HEARTBEAT_S, RECHECK_S) / 3
            if ends is not None:
                wait_s = max(0.0, min(wait_s, ends - now))
            seen = await watcher.moved_from(seen, timeout_s=wait_s)
            if seen > head:
                head = seen


async def _changes(
    store: ChangeFeedStore, after: int, through: int, cameras: frozenset[str] | None
) -> AsyncIterator[bytes]:
    """Every change in ``(after, through]`` of ``cameras``, page by page, as events."""
    while True:
        read = functools.partial(store.changes_since, after, through=through, camera_ids=cameras)
        page = await anyio.to_thread.run_sync(read)
        for change in page:
            yield change_event(change)
        if len(page) < MAX_CHANGES:
            return
        after = page[-1].seq
