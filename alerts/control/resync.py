"""``republish_state``: make the control topic agree with the API's store again."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from alerts.control.codec import RULES_KEY, ControlPublisher, rules_message, suppression_key
from selector.suppression import Suppression

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


class ControlSource(Protocol):
    """What ``republish_state`` reads (``alerts.store.ControlStore`` satisfies it)."""

    def get_rules(self) -> tuple[int, list[dict[str, Any]]] | None:
        """``(revision, rules)`` or ``None``."""
        ...

    def list_suppressions(
        self, *, active_only: bool = True, now: float | None = None
    ) -> list[Suppression]:
        """Suppressions (only active ones if ``active_only``)."""
        ...


def republish_state(
    source: ControlSource, publisher: ControlPublisher, *, now: float | None = None
) -> int:
    """Publish the stored rules and every active suppression again; returns how many.

    Call at API start: it makes the control topic agree with the store after anything
    that may have left them apart (a publish that failed after reaching the broker, a
    restored database).  Re-publishing is harmless: the values are the same.

    Raises:
        ControlPublishError: A message was not delivered (the rest are not tried).
    """
    t = time.time() if now is None else now
    count = 0
    rules = source.get_rules()
    if rules is not None:
        publisher.publish(RULES_KEY, rules_message(rules[0], rules[1], t))
        count += 1
    for s in source.list_suppressions(active_only=True, now=t):
        publisher.publish(suppression_key(s.suppression_id), s.to_dict())
        count += 1
    logger.info("control: republished %d messages (rules and active suppressions)", count)
    return count
