"""``GET /api/v1/rule-types``: every rule type, with its config schema and its words.

What the operators' web app and its rule forms read instead of keeping their own copies:
each rule type's JSON Schema (from its pydantic model), its event types, and per event
type the short label and the reason template (``selector.rules.registry``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from alerts.api.auth import needs
from alerts.api.context import UNAUTHORIZED
from alerts.api.permissions import Permission
from selector.rules.registry import rule_types

router = APIRouter(prefix="/api/v1", tags=["rules"], dependencies=[needs(Permission.RULES_READ)])


class EventTypeOut(BaseModel):
    """One event type a rule raises, and what operators read about it."""

    type: str = Field(description='Event type, as in alert records (e.g. "covered").')
    label: str = Field(description='Short name for people, e.g. "Camera covered".')
    reason: str = Field(
        description="Reason template: {fact} is filled from the event, a [part] is left "
        "out when a fact it names is missing (records carry the rendered text as reason)."
    )


class RuleTypeOut(BaseModel):
    """One rule type: what it watches, how it is configured, what it raises."""

    type: str = Field(description='The config\'s "type", e.g. "crowding".')
    summary: str = Field(description="What it watches, in one line.")
    config_schema: dict[str, Any] = Field(
        description="JSON Schema of one rule of this type in the config and in PUT /rules."
    )
    events: list[EventTypeOut]


@router.get("/rule-types", response_model=list[RuleTypeOut], responses=UNAUTHORIZED)
def list_rule_types() -> list[RuleTypeOut]:
    """Every rule type this service knows, sorted by type."""
    return [
        RuleTypeOut(
            type=rt.type,
            summary=rt.summary,
            config_schema=rt.json_schema(),
            events=[
                EventTypeOut(type=event, label=words.label, reason=words.reason)
                for event, words in rt.events.items()
            ],
        )
        for rt in sorted(rule_types().values(), key=lambda r: r.type)
    ]
