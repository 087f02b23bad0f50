"""Request and response bodies of the alert lifecycle, the audit trail and the figures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from alerts.api.models import (
    DEFAULT_SUPPRESSION_S,
    MAX_NOTE_LENGTH,
    MAX_SUPPRESSION_S,
    MIN_SUPPRESSION_S,
    NOTE_PATTERN,
    JsonInt,
    _Request,
)
from alerts.store import AlertState, AuditEntry, Disposition, DispositionStats
from alerts.store.lifecycle import Action
from alerts.store.models import OperatorFigures

Note = str | None


class EscalateRequest(_Request):
    """Body of ``POST /alerts/{id}/escalate`` (``{}``: to the supervisors)."""

    to: Literal["supervisors", "external"] = Field(
        "supervisors", description="supervisors, or an outside service (police, fire, ...)."
    )
    reference: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The outside service's reference, e.g. a police case number.",
    )
    note: Note = Field(None, max_length=MAX_NOTE_LENGTH, pattern=NOTE_PATTERN)


class SuppressSpec(_Request):
    """What a false alarm suppresses (as ``POST /false-positive`` does)."""

    scope: Literal["region", "rule", "camera"] = Field(
        "region",
        description='"region": same camera, rule, zone and label near the alert\'s box '
        '("rule" for an alert without a box); "rule": the rule on this camera; "camera": '
        "the whole camera (supervisors).",
    )
    expires_in_s: JsonInt = Field(DEFAULT_SUPPRESSION_S, ge=MIN_SUPPRESSION_S, le=MAX_SUPPRESSION_S)


class CloseRequest(_Request):
    """Body of ``POST /alerts/{id}/close``."""

    disposition: Disposition = Field(description="How it was judged.")
    note: Note = Field(None, max_length=MAX_NOTE_LENGTH, pattern=NOTE_PATTERN)
    suppress: SuppressSpec | None = Field(
        None,
        description="For a false_alarm: what to suppress (default: its region, or its rule "
        "when it has no box); ignored for other dispositions.",
    )


class NoteRequest(_Request):
    """Optional body of claim, release and reopen."""

    note: Note = Field(None, max_length=MAX_NOTE_LENGTH, pattern=NOTE_PATTERN)


class Conflict(BaseModel):
    """A 409: the alert's state (or another user) does not allow this now."""

    detail: str
    state: AlertState = Field(description="Its state now.")
    owner: str | None = Field(description="Who owns it now.")
    allowed: list[Action] = Field(description="What may be done to it now.")


class AuditPage(BaseModel):
    """One page of the audit trail, newest first."""

    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


class DispositionFigures(BaseModel):
    """``GET /stats/dispositions``: what operators made of the alerts, per rule or camera."""

    by: Literal["rule", "camera"]
    since: float = Field(description="Window start, UNIX seconds.")
    until: float = Field(description="Window end (exclusive), UNIX seconds.")
    items: list[DispositionStats]


class OperatorFiguresPage(BaseModel):
    """``GET /stats/operators``: per operator, their open claims now and what they did with
    the alerts raised over the window."""

    since: float = Field(description="Window start, UNIX seconds.")
    until: float = Field(description="Window end (exclusive), UNIX seconds.")
    items: list[OperatorFigures]
