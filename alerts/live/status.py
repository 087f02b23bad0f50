"""``CameraStatus``: what a worker says of one camera, about once a second.

It travels from the worker to the alerting API (in-process, or on the compacted camera
status topic keyed by camera id) and is what the camera health board and the wall show:
the camera's state and since when, its last picture's time, its frame rate, its dropped
frames, and the activity its rules are watching (``watches``: see ``selector.watch``).

Everything here is validated (pydantic): a report from the topic may be malformed or
hostile, and a bad one is refused whole (``CameraStatus.parse``), never half applied.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CameraState = Literal[
    "connecting",
    "streaming",
    "reconnecting",
    "lost",
    "frozen",
    "covered",
    "blurred",
    "moved",
    "ended",
    "failed",
    "waiting",
]
"""A camera's state as operators see it (the board's order of badness is ``STATE_RANK``).

``connecting``..``reconnecting``, ``ended``, ``failed``: the source's own state (a file's end
and a run draining its last frames are ``ended``).  ``lost``, ``frozen``, ``covered``,
``blurred``, ``moved``: a camera-health event of the camera is open (``signal_lost``,
``frozen``, ``covered``, ``blur``, ``moved``) while frames may still arrive.  ``lost`` is
also what the API says of a camera whose worker stopped reporting.  ``waiting``: a fleet
camera no worker runs (none has capacity left, or none has a model that serves it; the
group's leader reports it, ``detail`` says why)."""

STATES: tuple[str, ...] = (
    "connecting",
    "streaming",
    "reconnecting",
    "lost",
    "frozen",
    "covered",
    "blurred",
    "moved",
    "ended",
    "failed",
    "waiting",
)

STATE_RANK: dict[str, int] = {
    "failed": 0,
    "waiting": 1,
    "lost": 2,
    "reconnecting": 3,
    "covered": 4,
    "frozen": 5,
    "moved": 6,
    "blurred": 7,
    "connecting": 8,
    "ended": 9,
    "streaming": 10,
}
"""Worst first: how the board sorts cameras (lower is worse)."""

HEALTH_EVENT_STATES: dict[str, str] = {
    "signal_lost": "lost",
    "covered": "covered",
    "frozen": "frozen",
    "moved": "moved",
    "blur": "blurred",
}
"""Camera-health event type -> the state it puts the camera in while open; when several
are open the first in this order wins."""

MAX_ID = 128
MAX_WATCHES = 16
"""Most watches a report may carry (a worker sends at most ``selector.watch.MAX_WATCHES``)."""
MAX_TEXT = 300


class WatchOut(BaseModel):
    """Activity a rule is watching that may become an event (see ``selector.watch.Watch``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rule_id: str = Field(max_length=MAX_ID)
    type: str = Field(max_length=64)
    reason: str = Field(max_length=MAX_TEXT)
    priority: int = Field(ge=0, le=100)
    progress: float = Field(ge=0.0, le=1.0)
    bbox: tuple[float, float, float, float] | None = None
    """``[x1, y1, x2, y2]``, pixels of the camera's frame."""
    zone: str | None = Field(default=None, max_length=MAX_ID)
    track_id: int | None = None

    @field_validator("bbox")
    @classmethod
    def _finite_box(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None and not all(math.isfinite(x) for x in v):
            raise ValueError("bbox must be finite")
        return v


class CameraStatus(BaseModel):
    """One camera's report (times are UNIX seconds, wall clock of the worker).

    Attributes:
        camera_id: The camera.
        state: See ``CameraState``.
        since: When the camera entered ``state``.
        detail: Why, in words (a failure's reason, no URL or credential), or ``None``.
        reported_at: When this report was made.
        last_frame_at: Wall time of the last frame processed (capture time of a live
            source), or ``None`` before the first.
        fps: Frames processed per second over the last report interval (a quiet camera
            decoded sparsely shows its low rate: see ``quiet``).
        frames_processed: Frames processed since the worker run started.
        frames_dropped: Frames dropped since then (the pipeline could not keep up).
        quiet: Decoded sparsely because nothing moves (``None``: no activity control).
        frame_size: ``[width, height]`` in pixels, or ``None`` before the first frame.
        watches: Activity the camera's rules are watching, most urgent first.
        run_id: The worker run that reports (``None``: not given).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    camera_id: str = Field(min_length=1, max_length=MAX_ID)
    state: CameraState
    since: float
    detail: str | None = Field(default=None, max_length=MAX_TEXT)
    reported_at: float
    last_frame_at: float | None = None
    fps: float = Field(default=0.0, ge=0.0, le=10_000.0)
    frames_processed: int = Field(default=0, ge=0)
    frames_dropped: int = Field(default=0, ge=0)
    quiet: bool | None = None
    frame_size: tuple[int, int] | None = None
    watches: tuple[WatchOut, ...] = Field(default=(), max_length=MAX_WATCHES)
    run_id: str | None = Field(default=None, max_length=MAX_ID)

    @field_validator("watches", mode="before")
    @classmethod
    def _few_watches(cls, v: Any) -> Any:
        # before the items are validated: a hostile report of 100,000 watches costs nothing
        if isinstance(v, list | tuple) and len(v) > MAX_WATCHES:
            raise ValueError(f"at most {MAX_WATCHES} watches")
        return v

    @field_validator("since", "reported_at", "last_frame_at")
    @classmethod
    def _finite_time(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError("times must be finite UNIX seconds")
        return v

    @classmethod
    def parse(cls, data: Any) -> CameraStatus:
        """A report from the wire (a decoded JSON object).

        Raises:
            ValueError: It is not a valid report (the message says which field).
        """
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0] if e.errors() else {"loc": (), "msg": str(e)}
            where = ".".join(str(p) for p in first.get("loc", ())) or "report"
            raise ValueError(f"invalid camera status ({where}: {first.get('msg')})") from None

    def as_lost(self, now: float, silent_s: float) -> CameraStatus:
        """This report aged out ``silent_s`` ago: the camera is ``lost`` since then (``now``:
        this process's clock)."""
        return self.model_copy(
            update={
                "state": "lost",
                "since": now - silent_s,
                "detail": f"no report from its worker for {silent_s:.0f} s",
                "fps": 0.0,
                "watches": (),
            }
        )


def state_of(source_state: str, failed: bool, health_open: set[str]) -> str:
    """The state to show from a source's state, a failure, and the camera-health event
    types open on the camera (``signal_lost``, ...)."""
    if failed or source_state == "failed":
        return "failed"
    if source_state in ("ended", "draining"):
        return "ended"
    if source_state in ("connecting", "reconnecting"):
        return source_state
    for event_type, state in HEALTH_EVENT_STATES.items():
        if event_type in health_open:
            return state
    return "streaming"
