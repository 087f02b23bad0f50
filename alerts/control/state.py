"""``ControlState``: a worker's rules and suppressions, folded from control messages."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping
from typing import Any

from alerts.control.codec import MAX_KEY_LENGTH, RULES_KEY, SUPPRESSION_PREFIX
from alerts.live.demand import DEMAND_PREFIX
from selector.suppression import Suppression

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


class ControlState:
    """The control state a worker applies, folded from control messages (thread-safe).

    ``apply(key, value)`` never raises: a malformed value (wrong shape, a suppression
    whose id does not match its key, ...) is logged at WARNING and ignored, keeping the
    key's previous state.  Unknown keys are logged and ignored (newer publishers).

    Attributes:
        changes: Number of messages that changed the state (cheap change detection).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[int, list[dict[str, Any]]] | None = None
        self._suppressions: dict[str, Suppression] = {}
        self.changes = 0

    def __call__(self, key: str, value: Any) -> None:
        """``on_change`` form of ``apply``."""
        self.apply(key, value)

    def apply(self, key: str, value: Any) -> bool:
        """Fold one message in; returns whether it was understood (and applied)."""
        try:
            if key == RULES_KEY:
                return self._apply_rules(value)
            if isinstance(key, str) and key.startswith(SUPPRESSION_PREFIX):
                return self._apply_suppression(key[len(SUPPRESSION_PREFIX) :], value)
            if isinstance(key, str) and key.startswith(DEMAND_PREFIX):
                return False  # live demand: for the worker's Demand, not this state
        except Exception as e:  # never let a hostile value kill the subscriber
            logger.warning("control: ignoring %r: %s", key, f"{type(e).__name__}: {e}"[:300])
            return False
        logger.warning("control: ignoring unknown key %r", str(key)[:MAX_KEY_LENGTH])
        return False

    def _apply_rules(self, value: Any) -> bool:
        if value is None:
            with self._lock:
                self._rules = None
                self.changes += 1
            logger.info("control: rules override removed (configured rules apply)")
            return True
        if not isinstance(value, Mapping):
            logger.warning("control: ignoring rules value of type %s", type(value).__name__)
            return False
        revision, rules = value.get("revision"), value.get("rules")
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            logger.warning("control: ignoring rules with invalid revision %r", revision)
            return False
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            logger.warning(
                "control: ignoring rules revision %d: rules not a list of objects", revision
            )
            return False
        with self._lock:
            self._rules = (revision, [dict(r) for r in rules])
            self.changes += 1
        logger.info("control: rules revision %d (%d rules)", revision, len(rules))
        return True

    def _apply_suppression(self, suppression_id: str, value: Any) -> bool:
        if value is None:
            with self._lock:
                removed = self._suppressions.pop(suppression_id, None)
                self.changes += removed is not None
            logger.info("control: suppression %s removed", suppression_id)
            return True
        if not isinstance(value, Mapping):
            logger.warning(
                "control: ignoring suppression %s of type %s", suppression_id, type(value).__name__
            )
            return False
        try:
            s = Suppression.from_dict(value)
        except ValueError as e:
            logger.warning("control: ignoring suppression %s: %s", suppression_id, str(e)[:300])
            return False
        if s.suppression_id != suppression_id:
            logger.warning(
                "control: ignoring suppression under key %s: its id is %s",
                suppression_id,
                s.suppression_id[:64],
            )
            return False
        with self._lock:
            self._suppressions[suppression_id] = s
            self.changes += 1
        logger.info("control: suppression %s for camera %s", suppression_id, s.camera_id)
        return True

    @property
    def rules(self) -> tuple[int, list[dict[str, Any]]] | None:
        """``(revision, rules)`` of the latest rules override (a copy), or ``None``."""
        with self._lock:
            if self._rules is None:
                return None
            return self._rules[0], copy.deepcopy(self._rules[1])

    @property
    def suppressions(self) -> dict[str, Suppression]:
        """Every known suppression by id, expired ones included (a copy)."""
        with self._lock:
            return dict(self._suppressions)

    def active_suppressions(self, now: float, camera_id: str | None = None) -> list[Suppression]:
        """Suppressions in force at UNIX time ``now`` (of ``camera_id`` if given)."""
        with self._lock:
            items = list(self._suppressions.values())
        return [
            s for s in items if s.active(now) and (camera_id is None or s.camera_id == camera_id)
        ]
