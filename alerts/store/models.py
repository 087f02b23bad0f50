"""What the alert store holds and answers with: the ``Alert`` model, its statuses, the store's
errors and its paging limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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

AlertState = Literal["new", "claimed", "escalated", "closed"]
"""Where an alert is in its lifecycle, whatever its event does: ``new`` (nobody has it),
``claimed`` (an operator owns it), ``escalated`` (handed to supervisors or an outside
service), ``closed`` (dealt with, with a disposition).  Its event may still be ongoing
(``end_s`` null) in any state."""
ALERT_STATES: tuple[AlertState, ...] = ("new", "claimed", "escalated", "closed")
Disposition = Literal["true_incident", "false_alarm", "duplicate", "test", "no_action"]
"""How a closed alert was judged."""
DISPOSITIONS: tuple[Disposition, ...] = (
    "true_incident",
    "false_alarm",
    "duplicate",
    "test",
    "no_action",
)
Role = Literal["operator", "supervisor", "admin"]
"""What a person (or a token) may do; see ``alerts.api.permissions``."""
ROLES: tuple[Role, ...] = ("operator", "supervisor", "admin")
ActorKind = Literal["user", "token", "api_key", "system", "anonymous"]
"""Who an audit entry's ``actor`` is: a signed-in user, a machine token, the installation's
API key, Argus itself (the SLA job), or nobody signed in (a failed sign-in)."""


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
    clip: str | None = Field(
        default=None,
        description="Evidence key the video clip has once made (served masked at "
        "/alerts/{id}/clip), or null when none is made.",
    )
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
    status: AlertStatus = Field(
        description="Before the lifecycle, the operator state (kept for older clients): "
        "new until closed, then false_positive for a false alarm, else acknowledged."
    )
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
    state: AlertState = Field(
        default="new",
        description="The alert's lifecycle (new, claimed, escalated, closed), separate from "
        "whether its event is still going on (end_s null: ongoing).",
    )
    owner: str | None = Field(default=None, description="Who has claimed it (null: nobody).")
    claimed_at: datetime | None = Field(default=None, description="First claim (UTC).")
    escalated_at: datetime | None = Field(default=None, description="Last escalation (UTC).")
    escalated_by: str | None = Field(default=None, description="Who escalated ('sla': the SLA).")
    escalated_to: Literal["supervisors", "external"] | None = Field(
        default=None, description="To whom it was escalated."
    )
    escalation_ref: str | None = Field(
        default=None, description="The outside service's reference (e.g. a police case number)."
    )
    closed_at: datetime | None = Field(default=None, description="When it was closed (UTC).")
    closed_by: str | None = Field(default=None)
    disposition: Disposition | None = Field(default=None, description="How it was judged.")
    close_note: str | None = Field(default=None, description="Note given when it was closed.")
    change_seq: int = Field(
        default=0,
        description="The store-wide change number of this alert's last change (0: before "
        "numbering began); GET /alerts/changes sends changes after a number.",
    )
    geometry: dict[str, Any] | None = Field(
        default=None,
        description='What to draw over the snapshot, from the event record: "frame" [w, h], '
        '"zone" [[x, y], ...], "line" [[x, y], [x, y]], "path" [[x, y], ...] (pixels of '
        "the analysed frame, like bbox); null for records without it.",
    )

    @property
    def is_open(self) -> bool:
        """True while the alert has no end: no end record stored, not interrupted."""
        return self.end_s is None


# ---------------------------------------------------------------------------- people


class UserExistsError(ValueError):
    """A user of that name exists already (names are unique, case-insensitively)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"user {name!r} exists already")


class UserNotFoundError(LookupError):
    """No user of that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no user {name!r}")


class User(BaseModel):
    """A person who signs in.  Never carries the password or its hash.

    ``groups`` are camera groups (``cameras[].groups`` in the config): the alerts a user
    sees and acts on are those of cameras in one of them (admins: all cameras).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Unique user name (compared case-insensitively).")
    role: Role
    groups: list[str] = Field(description="Camera groups this user works on.")
    disabled: bool = Field(description="A disabled user cannot sign in; their sessions end.")
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime | None = None


class Session(BaseModel):
    """A signed-in browser session (the cookie holds its id; the store only its hash)."""

    model_config = ConfigDict(frozen=True)

    user: str
    created_at: datetime
    expires_at: datetime = Field(description="Absolute end, whatever the activity.")
    last_seen_at: datetime
    idle_timeout_s: float = Field(description="Ends after this long without a request.")
    client: str | None = Field(description="Address it was created from.")
    csrf_hash: str = Field(description="SHA-256 (hex) of the session's CSRF token.")


class Token(BaseModel):
    """A machine token for an integration: a role within camera groups, revocable.

    The token itself (``argus_<token_id>_<secret>``) is shown once when created; the store
    keeps only a hash of its secret.
    """

    model_config = ConfigDict(frozen=True)

    token_id: str = Field(description="Public part of the token (names it in lists and logs).")
    name: str = Field(description="What it is for, e.g. 'vms-bridge'.")
    role: Role
    groups: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class AuditEntry(BaseModel):
    """One line of the audit trail: who did what to what, when, from where.

    Append-only: the store refuses to change or delete an entry (database triggers).
    ``seq`` is set by the store (increasing).
    """

    model_config = ConfigDict(frozen=True)

    seq: int | None = None
    at: datetime
    actor: str = Field(description="User name, token id, 'api-key', 'sla', or the name tried.")
    actor_kind: ActorKind
    action: str = Field(description="e.g. 'alert.claim', 'auth.login_failed', 'rules.put'.")
    target_kind: str | None = Field(None, description="e.g. 'alert', 'user', 'token'.")
    target_id: str | None = None
    client: str | None = Field(None, description="Client address, when over HTTP.")
    detail: dict[str, DetailValue | list[str]] = Field(default_factory=dict)


class TransitionConflictError(RuntimeError):
    """A lifecycle transition that the alert's current state does not allow (or that
    another user won): the API answers 409 naming ``state`` and ``owner``.

    Attributes:
        event_id: The alert.
        state: Its state now.
        owner: Its owner now (``None`` when nobody owns it).
    """

    def __init__(self, event_id: str, state: AlertState, owner: str | None) -> None:
        self.event_id = event_id
        self.state = state
        self.owner = owner
        who = f", owned by {owner}" if owner else ""
        super().__init__(f"alert {event_id} is {state}{who}")


class DispositionStats(BaseModel):
    """Alerts of one rule or camera over a window, and what operators made of them."""

    key: str = Field(description="The rule id or camera id.")
    alerts: int = Field(description="Alerts raised in the window.")
    closed: int = Field(description="Of those, closed.")
    false_alarms: int = Field(description="Of those, closed as false alarms.")
    false_alarm_share: float | None = Field(description="false_alarms / closed (null: none).")
    by_disposition: dict[str, int] = Field(description="Closed alerts per disposition.")
    median_time_to_claim_s: float | None = Field(description="Raised to first claim.")
    median_time_to_close_s: float | None = Field(description="Raised to closed.")


class OperatorFigures(BaseModel):
    """One operator's workload: their open claims now, and what they did with the alerts
    raised over a window."""

    name: str = Field(description="The operator (user name, as in owner / closed_by).")
    open_claims: int = Field(description="Alerts claimed by them now (whenever raised).")
    claimed: int = Field(description="Alerts raised in the window that they claimed.")
    closed: int = Field(description="Alerts raised in the window that they closed.")
    false_alarms: int = Field(description="Of those, closed as false alarms.")
    median_to_claim_s: float | None = Field(
        description="Raised to their first claim of it (null: none claimed)."
    )
    median_to_close_s: float | None = Field(
        description="The alert's first claim to their close (null: none closed after a claim)."
    )
