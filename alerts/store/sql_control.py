"""The control plane's source of truth in ``SqliteAlertStore`` (``ControlStore``): operator
suppressions (``selector.suppression.Suppression``) and the rules document (a list of rule
dicts with a revision number for optimistic concurrency).  ``mark_false_positive`` is a
lifecycle close (``sql_lifecycle``)."""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.store.models import AlertStoreError, RulesRevisionConflictError
from alerts.store.sql_common import Row, StoreParts, write_transaction
from alerts.store.sql_common import db_errors as _db_errors
from selector.suppression import Suppression

logger = logging.getLogger("alerts.store")

_SUPPRESSION_COLUMNS = (
    "suppression_id, camera_id, rule_id, zone, label, region_x1, region_y1, region_x2, "
    "region_y2, expires_at, created_at, source_event_id, note"
)
_REPLACE_SUPPRESSION = ", ".join(
    f"{c} = excluded.{c}" for c in _SUPPRESSION_COLUMNS.split(", ")[1:]
)
_RULES_DOC = "rules"


def _row_to_suppression(row: Row) -> Suppression:
    x1, y1, x2, y2 = row["region_x1"], row["region_y1"], row["region_x2"], row["region_y2"]
    return Suppression(
        suppression_id=row["suppression_id"],
        camera_id=row["camera_id"],
        rule_id=row["rule_id"],
        zone=row["zone"],
        label=row["label"],
        region=None if x1 is None else (x1, y1, x2, y2),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        source_event_id=row["source_event_id"],
        note=row["note"],
    )


class ControlMixin(StoreParts):
    """Suppressions and the rules document (``ControlStore``, with ``mark_false_positive``
    from ``LifecycleMixin``)."""

    def add_suppression(self, suppression: Suppression) -> None:
        """Store ``suppression``; one with the same ``suppression_id`` is replaced.

        Raises:
            AlertStoreError: The database failed.
        """
        s = suppression
        region = s.region or (None, None, None, None)
        with self._lock, _db_errors(f"cannot store suppression {s.suppression_id}", self.path):
            self._conn.execute(
                f"INSERT INTO suppressions ({_SUPPRESSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (suppression_id) DO UPDATE SET {_REPLACE_SUPPRESSION}",
                (
                    s.suppression_id,
                    s.camera_id,
                    s.rule_id,
                    s.zone,
                    s.label,
                    *region,
                    s.expires_at,
                    s.created_at,
                    s.source_event_id,
                    s.note,
                ),
            )
        logger.info(
            "suppression %s stored (camera %s, expires %.0f)",
            s.suppression_id,
            s.camera_id,
            s.expires_at,
        )

    def get_suppression(self, suppression_id: str) -> Suppression | None:
        """The suppression with that id (expired or not), or ``None``."""
        with self._lock, _db_errors(f"cannot read suppression {suppression_id}", self.path):
            row = self._conn.execute(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE suppression_id = ?",
                (suppression_id,),
            ).fetchone()
        return None if row is None else _row_to_suppression(row)

    def list_suppressions(
        self, *, active_only: bool = True, now: float | None = None
    ) -> builtins.list[Suppression]:
        """Suppressions, newest first (then by id).

        Args:
            active_only: Only those still in force at ``now`` (``now < expires_at``).
            now: UNIX seconds; default the current time.
        """
        where, params = "", []
        if active_only:
            where, params = " WHERE expires_at > ?", [time.time() if now is None else now]
        with self._lock, _db_errors("cannot list suppressions", self.path):
            rows = self._conn.execute(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions{where} "
                "ORDER BY created_at DESC, suppression_id ASC",
                params,
            ).fetchall()
        return [_row_to_suppression(r) for r in rows]

    def delete_suppression(self, suppression_id: str) -> bool:
        """Delete the suppression; ``False`` if there was none with that id."""
        with self._lock, _db_errors(f"cannot delete suppression {suppression_id}", self.path):
            deleted = self._conn.execute(
                "DELETE FROM suppressions WHERE suppression_id = ?", (suppression_id,)
            ).rowcount
        if deleted:
            logger.info("suppression %s deleted", suppression_id)
        return bool(deleted)

    def get_rules(self) -> tuple[int, builtins.list[dict[str, Any]]] | None:
        """``(revision, rules)`` of the stored rules document, or ``None`` if never set.

        Raises:
            AlertStoreError: The database failed or the stored document is not JSON.
        """
        with self._lock, _db_errors("cannot read rules", self.path):
            row = self._conn.execute(
                "SELECT revision, body FROM control_documents WHERE name = ?", (_RULES_DOC,)
            ).fetchone()
        if row is None:
            return None
        try:
            rules = json.loads(row["body"])
        except ValueError as e:
            raise AlertStoreError(f"stored rules are not JSON: {e}", path=self.path) from e
        return int(row["revision"]), rules

    def put_rules(self, rules: Sequence[Mapping[str, Any]], expected_revision: int | None) -> int:
        """Replace the rules document (optimistic concurrency).

        Args:
            rules: The new rules (JSON-serialisable mappings); stored as given.
            expected_revision: The revision the change is based on (0: none stored
                yet), or ``None`` to replace whatever is stored.

        Returns:
            The new revision: the previous one plus 1 (the first is 1).

        Raises:
            RulesRevisionConflictError: ``expected_revision`` is not the stored revision.
            TypeError / ValueError: ``rules`` is not JSON-serialisable.
            AlertStoreError: The database failed.
        """
        body = json.dumps([dict(r) for r in rules], separators=(",", ":"), allow_nan=False)
        now = datetime.now(UTC).timestamp()
        with (
            self._lock,
            _db_errors("cannot store rules", self.path),
            write_transaction(self._conn) as conn,
        ):
            row = conn.execute(
                "SELECT revision FROM control_documents WHERE name = ?", (_RULES_DOC,)
            ).fetchone()
            current = 0 if row is None else int(row["revision"])
            if expected_revision is not None and expected_revision != current:
                raise RulesRevisionConflictError(expected_revision, current)
            conn.execute(
                "INSERT INTO control_documents (name, revision, body, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "revision = excluded.revision, body = excluded.body, "
                "updated_at = excluded.updated_at",
                (_RULES_DOC, current + 1, body, now),
            )
        logger.info("rules stored as revision %d (%d rules)", current + 1, len(rules))
        return current + 1
