"""The store protocols: what the API and the alert service need of a store (SQLite now,
PostgreSQL later behind the same methods)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from alerts.store.models import DEFAULT_LIMIT, Alert, AlertStatus
from selector.suppression import Suppression


@runtime_checkable
class AlertStore(Protocol):
    """Persistent alerts, fed from the bus and read by the API (thread-safe)."""

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Store one event record (start or end), idempotent by ``event_id``, or apply a
        run marker (close the camera's alerts left open by earlier runs)."""
        ...

    def get(self, event_id: str) -> Alert | None:
        """The alert, or ``None``."""
        ...

    def list(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> builtins.list[Alert]:
        """Alerts matching all given filters, most urgent then most recent first."""
        ...

    def count(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
    ) -> int:
        """Number of alerts matching the filters."""
        ...

    def acknowledge(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Mark an alert acknowledged (idempotent); raises ``AlertNotFoundError``."""
        ...

    def ping(self) -> None:
        """Raise ``AlertStoreError`` if the store is not usable (readiness)."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


@runtime_checkable
class ControlStore(Protocol):
    """The control plane's source of truth: suppressions, the rules document, false positives.

    Implemented by ``SqliteAlertStore``; the API needs it when the control plane is on.
    """

    def add_suppression(self, suppression: Suppression) -> None:
        """Store ``suppression`` (replacing one with the same id)."""
        ...

    def get_suppression(self, suppression_id: str) -> Suppression | None:
        """The suppression, or ``None``."""
        ...

    def list_suppressions(
        self, *, active_only: bool = True, now: float | None = None
    ) -> builtins.list[Suppression]:
        """Suppressions, newest first; only those not expired at ``now`` if ``active_only``."""
        ...

    def delete_suppression(self, suppression_id: str) -> bool:
        """Delete it; ``False`` if there was none."""
        ...

    def get_rules(self) -> tuple[int, builtins.list[dict[str, Any]]] | None:
        """``(revision, rules)``, or ``None`` when no rules were stored yet."""
        ...

    def put_rules(self, rules: Sequence[Mapping[str, Any]], expected_revision: int | None) -> int:
        """Replace the rules; returns the new revision (``RulesRevisionConflictError``)."""
        ...

    def mark_false_positive(self, event_id: str, *, by: str, note: str | None = None) -> Alert:
        """Set the alert's status to ``false_positive``; raises ``AlertNotFoundError``."""
        ...
