"""What the alert store holds and answers with: the ``Alert`` model, its statuses, the store's
errors and its paging limits."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DetailValue = str | int | float | bool | None
"""A value of an alert's ``details`` (JSON scalar)."""
AlertStatus = Literal["new", "acknowledged", "false_positive"]
ALERT_STATUSES: tuple[AlertStatus, ...] = ("new", "acknowledged", "false_positive")
"""``new`` until an operator acts; ``acknowledged`` (seen, handled); ``false_positive``
(an operator marked it a false alarm, which also created a suppression)."""
EndReason = Literal["ended", "interrupted"]
"""Why an alert is closed: ``ended`` (its end record arrived) or ``interrupted`` (a new
worker run of its camera started while it was open: the run that raised it died)."""
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class AlertNotFoundError(LookupError):
    """No alert with that ``event_id``.

    Attributes:
        event_id: The id that was looked up.
    """

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"no alert with event_id={event_id}")


class AlertStoreError(RuntimeError):
    """The store's database failed (I/O, corruption, locked past the timeout).

    Attributes:
        path: Database location.
    """

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(f"{message} (database {path})")


class RulesRevisionConflictError(RuntimeError):
    """``put_rules`` was given an ``expected_revision`` that is not the stored one.

    Attributes:
        expected: The revision the caller based its change on.
        current: The revision actually stored (0: no rules stored yet).
    """

    def __init__(self, expected: int, current: int) -> None:
        self.expected = expected
        self.current = current
        super().__init__(f"rules revision is {current}, not {expected}: reload the rules and retry")


class Alert(BaseModel):
    """One alert: the event record fields (schema version 1) plus operator state.

    Times: ``start_s``/``end_s`` are video seconds; ``wall_time``, ``received_at`` and
    ``acknowledged_at`` are timezone-aware UTC datetimes (ISO 8601 in JSON).

    ``priority`` is the highest priority any record of the event carried (the selector
    re-sends an open incident's start with a higher priority as it persists).  ``line``,
    ``direction`` and ``details`` are the optional record fields (absent: null / ``{}``);
    ``details`` are the start record's until the end record arrives, then the end's
    (which, for a merged incident, include ``members``).

    ``end_reason`` is null while the alert is open, ``"ended"`` once its end record
    arrived, ``"interrupted"`` when it was closed because a new worker run of its camera
    started while it was open; its real end is then unknown and ``end_s`` is set to
    ``start_s``.  ``run_id`` is the worker run that sent its first record (null for
    records without one, e.g. stored before runs were recorded).
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(description="Schema version of the record the alert came from.")
    event_id: str = Field(description="Event id (uuid).")
    camera_id: str
    type: str = Field(description='Event type, e.g. "intrusion".')
    rule_id: str
    zone: str | None
    track_id: int | None
    label: str | None
    score: float | None = Field(description="Detector confidence in [0, 1].")
    priority: int = Field(
        ge=0,
        le=100,
        description="0-100, higher is more urgent; the highest of the event's records "
        "(an open incident's priority escalates while it persists).",
    )
    start_s: float = Field(description="Start, video seconds since stream start.")
    end_s: float | None = Field(
        description="End, video seconds; null while open (start_s when interrupted)."
    )
    bbox: list[float] | None = Field(description="[x1, y1, x2, y2] pixels at the start frame.")
    start_seq: int
    snapshot: str | None = Field(description="Evidence key of the snapshot JPEG.")
    line: str | None = Field(
        default=None, description="Name of the line crossed (line_crossing), else null."
    )
    direction: str | None = Field(
        default=None, description='Crossing direction "+" or "-" (line_crossing), else null.'
    )
    details: dict[str, DetailValue] = Field(
        default_factory=dict,
        description='Rule-specific facts, e.g. {"count": 7} (crowding); the end record\'s '
        'once the event ended, with "members" (events merged into the incident) when > 1.',
    )
    wall_time: datetime = Field(description="Wall-clock time of the start frame (UTC).")
    status: AlertStatus = Field(description="Operator state.")
    acknowledged_at: datetime | None = Field(
        description="When an operator first acknowledged it or marked it a false positive."
    )
    acknowledged_by: str | None
    note: str | None = Field(
        description="Operator note given with the acknowledgement or false-positive mark."
    )
    received_at: datetime = Field(description="When the store first saw the event (UTC).")
    end_reason: EndReason | None = Field(
        default=None,
        description='Null while open; "ended" when its end record arrived; "interrupted" '
        "when a new worker run of its camera started while it was open (the run that "
        "raised it was killed or crashed; end_s is then start_s, the real end unknown).",
    )
    run_id: str | None = Field(
        default=None,
        description="Worker run (uuid) that sent the alert's first record; null if unknown.",
    )
    reason: str | None = Field(
        default=None,
        description="Why, in words (from its rule type's reason template); the end "
        "record's once ended. Null for records without one.",
    )

    @property
    def is_open(self) -> bool:
        """True while the alert has no end: no end record stored, not interrupted."""
        return self.end_s is None
