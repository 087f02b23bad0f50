"""Request and response bodies of the alerts API, and the limits they enforce.

Every request model forbids unknown keys and is strict about types: a JSON string is
not a number and ``true`` is not an integer (what the config file refuses, the API
refuses too).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from alerts.store import Alert
from selector.suppression import Suppression

MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted, except on ``PUT /rules`` (ack and false-positive bodies)."""
MAX_RULES_BODY_BYTES = 256 * 1024
"""Largest ``PUT /rules`` body accepted (the rule set travels as one control message)."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a JSON body (a rule set needs ~6)."""
MAX_RULES = 1000
"""Most rules in one rule set."""
MAX_NOTE_LENGTH = 1000
MAX_SUPPRESSION_NOTE_LENGTH = 500
MIN_SUPPRESSION_S = 60
MAX_SUPPRESSION_S = 30 * 86400
DEFAULT_SUPPRESSION_S = 86400
MAX_PROBLEMS = 100
"""Most rule problems returned in a 422 answer (each cut to 500 characters)."""
MAX_OFFSET = 1_000_000_000
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
"""What the ``type`` filter accepts: an identifier-like event type (``fall``, ``line_crossing``)."""
MAX_EVENT_TYPE_LENGTH = 64
"""Longest event type (as in the event schema)."""
ACTOR_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""Who did something: free text without control characters."""
NOTE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""A note: free text without control characters but tab and newlines."""


def _integral(value: Any) -> Any:
    """``132.0`` -> ``132``: JSON has one number type, and JSON Schema calls 132.0 an
    integer; every other non-integer (a string, a boolean, 132.5) is left to be refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral), Strict()]
"""An integer as JSON Schema means it: ``5`` or ``5.0``, never ``"5"`` or ``true``."""


def json_int(ge: int | None = None, le: int | None = None) -> Any:
    """``JsonInt`` within bounds, for a field that may also be null (``json_int(0) | None``):
    the bounds come before the validator, so the JSON Schema says minimum and maximum."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral), Strict()]


Actor = Annotated[str, Field(min_length=1, max_length=100, pattern=ACTOR_PATTERN)]
"""Who did something: 1-100 characters of free text, no control characters."""


class _Request(BaseModel):
    """Base of request bodies: unknown keys refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AlertPage(BaseModel):
    """One page of ``GET /alerts``."""

    items: list[Alert]
    total: int = Field(description="Alerts matching the filters, all pages together.")
    limit: int
    offset: int
    change_seq: int | None = Field(
        default=None,
        description="The store's last change number, read before the list: follow "
        "GET /api/v1/changes?after= it to keep the list up to date (null: the store keeps "
        "no change sequence).",
    )


class AckRequest(_Request):
    """Body of ``POST /alerts/{event_id}/ack`` (all optional; ``{}`` is fine)."""

    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH, pattern=NOTE_PATTERN)
    by: Actor = Field(default="operator", description="Who acknowledges.")


class FalsePositiveRequest(_Request):
    """Body of ``POST /alerts/{event_id}/false-positive`` (all optional; ``{}`` is fine)."""

    expires_in_s: JsonInt = Field(
        default=DEFAULT_SUPPRESSION_S,
        ge=MIN_SUPPRESSION_S,
        le=MAX_SUPPRESSION_S,
        description="How long the suppression lasts, seconds (60 s to 30 days).",
    )
    note: str = Field(
        default="",
        max_length=MAX_SUPPRESSION_NOTE_LENGTH,
        pattern=NOTE_PATTERN,
        description="Why it is a false alarm (no control characters but tab/newline).",
    )
    scope: Literal["region", "rule", "camera"] = Field(
        default="region",
        description='"region": same camera, rule, zone and label, box centre near the '
        'alert\'s box; "rule": same camera and rule; "camera": the whole camera.',
    )
    by: Actor = Field(default="operator", description="Who marks it.")


class RulesDocument(BaseModel):
    """The rule set override: ``GET /rules`` and the answer of ``PUT /rules``."""

    revision: int = Field(description="Revision; 0: the initial (configured) rules.")
    rules: list[dict[str, Any]] = Field(description="The rules (see the config reference).")


class RulesUpdate(_Request):
    """Body of ``PUT /rules``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={  # an empty set only with the confirmation, in the schema too
            "if": {"properties": {"rules": {"maxItems": 0}}},
            "then": {
                "properties": {"confirm_empty": {"const": True}},
                "required": ["confirm_empty"],
            },
        },
    )

    rules: list[dict[str, Any]] = Field(max_length=MAX_RULES)
    revision: json_int(ge=0) | None = Field(  # type: ignore[valid-type]
        description="The revision this change is based on (409 if it is no longer the "
        "current one; 0: nothing stored yet); null replaces whatever is stored.",
    )
    confirm_empty: bool = Field(
        default=False,
        description="Must be true to store an empty rule set: it disarms every rule, "
        "camera health included, on every worker.",
    )


class RulesProblems(BaseModel):
    """The 422 answer of ``PUT /rules`` when the rules themselves are wrong."""

    detail: str
    problems: list[str] = Field(description="One line per problem, naming the rule and key.")


class SnapshotUrl(BaseModel):
    """Body of ``GET /alerts/{event_id}/snapshot-url``."""

    url: str = Field(description="Presigned GET URL of the snapshot JPEG; needs no API key.")
    expires_in_s: int = Field(description="Seconds from now until the URL stops working.")


class ClipUrl(BaseModel):
    """Body of ``GET /alerts/{event_id}/clip-url``."""

    url: str = Field(description="Presigned GET URL of the masked MP4 clip; needs no API key.")
    expires_in_s: int = Field(description="Seconds from now until the URL stops working.")


class ClipMasking(BaseModel):
    """How the clip's masked copy was made."""

    frames_detected: int = Field(ge=0, description="Frames the person detector ran on.")
    boxes: int = Field(ge=0, description="Person boxes found, over all frames.")
    seconds: float = Field(ge=0, description="Wall time of the whole clip build, seconds.")


class ClipInfo(BaseModel):
    """Body of ``GET /alerts/{event_id}/clip-info``: the clip the worker made, as it
    described it beside the clip (``<event_id>.clip.json``, see ``alerts.clips``).

    Times are the camera's stream seconds, the clock of the alert's ``start_s``/``end_s``.
    """

    event_id: str
    camera_id: str
    asked_start_s: float = Field(description="Start of the window asked for (event start - pre_s).")
    asked_end_s: float = Field(description="End of the window asked for (event start + post_s).")
    start_s: float = Field(description="First frame of the masked clip (the one served).")
    end_s: float = Field(description="End of the masked clip's last frame.")
    original_start_s: float | None = Field(
        None, description="First frame of the original (a keyframe when remuxed)."
    )
    original_end_s: float | None = Field(None, description="End of the original's last frame.")
    complete: bool = Field(description="Whether the clip covers the window asked, to a frame.")
    note: str | None = Field(
        None,
        description="Why it does not, in words (e.g. \"the video ended 3.2 s into the clip's "
        'window"); null when complete.',
    )
    frames: int = Field(ge=0, description="Frames in the masked clip.")
    codec: str = Field(description='The camera\'s codec, e.g. "h264".')
    remuxed: bool = Field(
        description="Whether the original is the camera's own packets (false: transcoded)."
    )
    stream: str = Field(
        "analysed",
        description='Which of the camera\'s streams the clip is of: "evidence" (the stream '
        'the camera names for evidence, usually its main one) or "analysed".',
    )
    width: int | None = Field(None, ge=0, description="The original's width, pixels.")
    height: int | None = Field(None, ge=0, description="The original's height, pixels.")
    masking: ClipMasking | None = Field(None, description="How the masked copy was made.")


class SuppressionOut(BaseModel):
    """One suppression (``Suppression.to_dict()`` plus ``active``)."""

    suppression_id: str
    camera_id: str
    rule_id: str | None
    zone: str | None
    label: str | None
    region: list[float] | None = Field(description="[x1, y1, x2, y2] pixels, or null.")
    expires_at: float = Field(description="UNIX seconds (UTC) when it stops applying.")
    created_at: float = Field(description="UNIX seconds (UTC) of creation.")
    source_event_id: str | None
    note: str
    active: bool = Field(description="Still in force now.")

    @classmethod
    def of(cls, s: Suppression, now: float) -> SuppressionOut:
        """The API form of ``s`` at UNIX time ``now``."""
        return cls(**s.to_dict(), active=s.active(now))


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """Readiness: the store answers and the cameras are not all down.

    An open endpoint (probes have no key): it carries states and counters only, never a
    host, a path, a user name or an error text; ``GET /api/v1/status`` has the details.
    """

    status: Literal["ready", "not_ready"]
    version: str
    store: bool = Field(description="The alert store answered a query.")
    cameras: dict[str, Any] = Field(description="Per-camera state and counters.")
    components: dict[str, Any] = Field(
        default_factory=dict,
        description="State of other parts: Kafka bus, alert service, evidence uploader.",
    )
    error: str | None = Field(default=None, description="Why not ready (no details).")


class Status(BaseModel):
    """``GET /api/v1/status``: what ``/readyz`` shows, with the error texts (secrets redacted)."""

    ready: bool
    version: str
    store: bool
    cameras: dict[str, Any]
    components: dict[str, Any]
    error: str | None = None


class ValidationProblem(BaseModel):
    """One thing wrong with a request (FastAPI's validation error format)."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "note"].')
    msg: str = Field(description="What is wrong, in words.")
    type: str = Field(description='Kind of problem, e.g. "string_too_long", "json_too_deep".')
    input: Any = Field(None, description="The rejected value, shortened (absent if unsafe).")


class InvalidRequest(BaseModel):
    """A 422 answer: the request could not be used as sent."""

    detail: list[ValidationProblem]


def invalid(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    """The body of a 422 answer with one problem (as FastAPI's own validation errors)."""
    return InvalidRequest(detail=[ValidationProblem(loc=loc, msg=msg, type=kind)]).model_dump(
        exclude_none=True
    )


def unprocessable(loc: list[str | int], msg: str, kind: str) -> HTTPException:
    """A 422 in FastAPI's own form (``detail``: a list of problems), to raise."""
    return HTTPException(status_code=422, detail=invalid(loc, msg, kind)["detail"])
