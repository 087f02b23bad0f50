"""Run-time configuration: rule sets and suppressions from the control channel.

Operators change rules and mark false alarms through the API; the API publishes the
change on the control channel (in-process, or a compacted Kafka topic that every
worker reads from the beginning).  ``LiveConfig`` is the worker's end: it folds each
message into a ``ControlState`` and hands the result to the running pipeline, which
applies it between batches.  A rule set that does not fit this worker's cameras or
model is refused with an error log, and the rules in force stay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from alerts.control import RULES_KEY, ControlState
from alerts.live.demand import DEMAND_PREFIX, Demand
from argus.config import ArgusConfig, ConfigError, parse_config
from argus.rulebook import RuleBook, validate_rules
from argus.runner import Runner

log = logging.getLogger(__name__)


class LiveConfig:
    """Applies control messages to a running pipeline (thread-safe entry: ``on_change``).

    Args:
        cfg: The configuration the worker started with (cameras, configured rules).
        runner: The running pipeline.
        rulebooks: Each camera's rule builder (from ``build_pipeline``).
        class_names: The model's class names.
        demand: Where the API replicas' live demand goes (control keys starting with
            ``DEMAND_PREFIX``); ``None``: those messages are ignored.
    """

    def __init__(
        self,
        cfg: ArgusConfig,
        runner: Runner,
        rulebooks: Mapping[str, RuleBook],
        class_names: Sequence[str],
        demand: Demand | None = None,
    ) -> None:
        self.cfg = cfg
        self.demand = demand
        """The worker's live demand (``alerts.live.Demand``), fed by ``DEMAND_PREFIX`` keys."""
        self.runner = runner
        self.rulebooks = rulebooks
        self.class_names = tuple(class_names)
        self.state = ControlState()
        self.revision: int | None = None
        """Revision of the rule set in force (``None``: the configured rules)."""
        self.rejected: list[str] = []
        """Problems of the last rule set refused (empty when the last one applied)."""

    def on_change(self, key: str, value: Any) -> None:
        """One control message (``value`` None: deleted).  Never raises."""
        try:
            if isinstance(key, str) and key.startswith(DEMAND_PREFIX):
                if self.demand is not None:
                    self.demand.apply(key, value)
                return
            if not self.state.apply(key, value):
                return
            if key == RULES_KEY:
                self._apply_rules()
            else:
                self.runner.set_suppressions(self.state.suppressions.values())
        except Exception:  # the control channel must never take a worker down
            log.exception("applying control message %r failed", key)

    def _apply_rules(self) -> None:
        current = self.state.rules
        if current is None:
            revision, raw = None, [r.model_dump(mode="json") for r in self.cfg.rules]
        else:
            revision, raw = current
        problems = validate_rules(raw, self.cfg, self.class_names)
        if problems:
            self.rejected = problems
            log.error(
                "rule set revision %s refused, the rules in force stay: %s",
                revision,
                "; ".join(problems),
            )
            return
        data = self.cfg.model_dump(mode="json")
        data["rules"] = raw
        try:
            checked = parse_config(data, f"rules revision {revision}")
            built = {cam: book.build(checked.rules) for cam, book in self.rulebooks.items()}
        except ConfigError as e:  # validate_rules passed, so this is unexpected
            self.rejected = e.problems
            log.error("%s", e)
            return
        for cam, (rules, policies) in built.items():
            self.runner.reconfigure(cam, rules, policies)
        self.revision, self.rejected = revision, []
        log.info("rule set revision %s applied (%d rules)", revision, len(checked.rules))

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: the rule revision in force and what was refused."""
        return {
            "rules_revision": self.revision,
            "rules_rejected": self.rejected,
            "suppressions": len(self.state.suppressions),
        }
