"""What the store-wide change sequence answers with (``ChangeFeedStore``, ``sql_changes``)."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.store.models import Alert

MAX_CHANGES = 1000
"""Most changes one ``changes_since`` call returns."""


class ChangesPrunedError(LookupError):
    """The removals after the reader's number were forgotten (``prune_removals``): it must
    reload what it shows, then follow from ``change_head().seq``.

    Attributes:
        after: The reader's number.
        pruned_through: Removals at or below this were forgotten.
    """

    def __init__(self, after: int, pruned_through: int) -> None:
        super().__init__(f"changes after {after} were pruned (through {pruned_through}): reload")
        self.after = after
        self.pruned_through = pruned_through


@dataclass(frozen=True)
class ChangeHead:
    """Where the change sequence stands.

    Attributes:
        seq: The last number handed out (0: nothing changed since numbering began).
        pruned_through: Removals numbered at or below this were forgotten: a reader
            resuming from before it must reload instead.
    """

    seq: int
    pruned_through: int


@dataclass(frozen=True)
class AlertChange:
    """One change: the alert as it is now, or its removal (``alert`` is ``None``).

    Attributes:
        seq: The change's number.
        event_id: The alert's event id.
        camera_id: Its camera (removals keep it, for camera-group filtering).
        alert: The alert now; ``None`` when it was deleted (retention).
    """

    seq: int
    event_id: str
    camera_id: str
    alert: Alert | None
