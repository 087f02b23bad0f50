"""The claim SLA: alerts nobody claims in time are escalated to the supervisors.

``SlaJob`` asks the store every ``check_every_s`` to escalate what is overdue
(``LifecycleStore.escalate_overdue``: a conditional update, so each alert escalates once
however many alert-service replicas run the job at the same moment).  A store that fails
is logged and asked again at the next check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter

from alerts.jobs import DaemonJob
from alerts.store import AlertStoreError, LifecycleStore

logger = logging.getLogger(__name__)

SLA_ESCALATIONS = Counter(
    "argus_alerts_sla_escalated_total",
    "Alerts escalated to supervisors because nobody claimed them in time.",
)


class SlaJob(DaemonJob):
    """Escalates overdue alerts in the background (``start``/``stop``, or ``with``).

    Args:
        store: The lifecycle store.
        min_priority: Alerts at or above this priority are watched (0-100).
        claim_within_s: Escalated when still ``new`` this long after they arrived, seconds.
        check_every_s: How often to look, seconds.
        clock: UNIX time source.
    """

    thread_name = "sla"

    def __init__(
        self,
        store: LifecycleStore,
        *,
        min_priority: int,
        claim_within_s: float,
        check_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= min_priority <= 100 or claim_within_s <= 0 or check_every_s <= 0:
            raise ValueError(
                f"SlaJob needs 0 <= min_priority <= 100 ({min_priority}), claim_within_s > 0 "
                f"({claim_within_s}) and check_every_s > 0 ({check_every_s})"
            )
        super().__init__()
        self._store = store
        self.min_priority = min_priority
        self.claim_within_s = claim_within_s
        self.check_every_s = check_every_s
        self._clock = clock

    def run_once(self) -> list[str]:
        """Escalate what is overdue now; the event ids escalated (by this call)."""
        ids = self._store.escalate_overdue(
            min_priority=self.min_priority, claim_within_s=self.claim_within_s, now=self._clock()
        )
        if ids:
            SLA_ESCALATIONS.inc(len(ids))
            logger.info(
                "%d alert(s) not claimed within %.0f s escalated to supervisors: %s",
                len(ids),
                self.claim_within_s,
                ", ".join(ids[:10]),
            )
        return ids

    def _run(self) -> None:
        while not self._stop.wait(self.check_every_s):
            try:
                self.run_once()
            except AlertStoreError as e:  # the next check asks again
                logger.warning("SLA check failed: %s", e)
            except Exception:  # a bug must not end the job silently
                logger.exception("SLA check failed")
