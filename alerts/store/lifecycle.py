"""The alert lifecycle's states and what may be done in each (the store enforces the
transitions atomically; the API decides who may ask for them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from alerts.store.models import AlertState

Action = Literal["claim", "release", "escalate", "close", "reopen"]

ALLOWED: Mapping[AlertState, tuple[Action, ...]] = {
    "new": ("claim", "escalate", "close"),
    "claimed": ("release", "escalate", "close"),
    "escalated": ("claim", "escalate", "close"),
    "closed": ("reopen",),
}
"""What may be done to an alert in each state (a 409 answer lists them)."""
