"""Alerts and run markers in the SQL stores (``AlertStore``): the idempotent upsert of event
records, the closing of what an earlier worker run left open, and the filtered, ranked reads.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alerts.metrics import ALERTS_CLOSED, ALERTS_INTERRUPTED, ALERTS_STORED
from alerts.schema import RUN_STARTED, TRACK, InvalidEventError, validate_bus_record
from alerts.store.models import (
    ALERT_STATES,
    ALERT_STATUSES,
    DEFAULT_LIMIT,
    Alert,
    AlertState,
    AlertStatus,
)
from alerts.store.sql_common import ALERT_COLUMNS as _COLUMNS
from alerts.store.sql_common import (
    Connection,
    StoreParts,
    check_page,
    db_errors,
    fetch_alert,
    in_clause,
    write_transaction,
)
from alerts.store.sql_common import row_to_alert as _row_to_alert

logger = logging.getLogger("alerts.store")

_ORDER = "ORDER BY priority DESC, wall_time DESC, event_id ASC"


def _json_field(record: Mapping[str, Any], key: str, values_are: str) -> str:
    """``record[key]`` as compact JSON text (keys sorted: replays store equal text).

    Raises:
        InvalidEventError: A value is a non-finite number (not JSON); the message says what
            the field's values must be (``values_are``).
    """
    try:
        return json.dumps(record.get(key), separators=(",", ":"), sort_keys=True, allow_nan=False)
    except ValueError as e:
        raise InvalidEventError(
            f"{key} values must be {values_are}",
            path=f"$.{key}",
            event_id=str(record.get("event_id")),
        ) from e


def _details_json(record: Mapping[str, Any]) -> str:
    """The record's ``details`` as JSON text (``{}`` without them)."""
    if not record.get("details"):
        return "{}"
    return _json_field(record, "details", "finite numbers, strings, booleans or null")


def _geometry_json(record: Mapping[str, Any]) -> str | None:
    """The record's optional ``geometry`` as JSON text, or ``None`` without one."""
    if record.get("geometry") is None:
        return None
    return _json_field(record, "geometry", "finite numbers")


def _fill_missing(conn: Connection, event_id: str, values: Mapping[str, Any]) -> None:
    """Set each of ``values``' columns that is still null on the alert (a later record
    completes what the first lacked); no statement when nothing would change, so a replay
    takes no change number."""
    given = {column: value for column, value in values.items() if value is not None}
    if not given:
        return
    sets = ", ".join(f"{column} = COALESCE({column}, ?)" for column in given)
    missing = " OR ".join(f"{column} IS NULL" for column in given)
    conn.execute(
        f"UPDATE alerts SET {sets} WHERE event_id = ? AND ({missing})",
        (*given.values(), event_id),
    )


def _where(
    *,
    camera_id: str | None,
    type: str | None,
    status: AlertStatus | None,
    open: bool | None,
    states: Collection[AlertState] | None = None,
    ongoing: bool | None = None,
    camera_ids: Collection[str] | None = None,
    owner: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with its parameters) of the alert filters, AND-ed."""
    clauses: list[str] = []
    params: list[Any] = []
    if camera_id is not None:
        clauses.append("camera_id = ?")
        params.append(camera_id)
    if type is not None:
        clauses.append("type = ?")
        params.append(type)
    if status is not None:
        if status not in ALERT_STATUSES:
            raise ValueError(f"status must be one of {ALERT_STATUSES}, got {status!r}")
        clauses.append("status = ?")
        params.append(status)
    if open is not None and ongoing is not None and open != ongoing:
        raise ValueError("open is an alias of ongoing: give one, or both the same")
    ongoing = open if ongoing is None else ongoing
    if ongoing is not None:
        clauses.append("end_s IS NULL" if ongoing else "end_s IS NOT NULL")
    for column, values in (("state", states), ("camera_id", camera_ids)):
        if values is not None:
            if column == "state" and not set(values) <= set(ALERT_STATES):
                raise ValueError(f"states must be among {ALERT_STATES}, got {sorted(values)!r}")
            clause, more = in_clause(column, values, f"{column} filter")
            clauses.append(clause)
            params.extend(more)
    if owner is not None:
        clauses.append("owner = ? COLLATE NOCASE")
        params.append(owner)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class AlertsMixin(StoreParts):
    """Alerts and run markers (``AlertStore``, with ``ping`` and ``close`` from the store).

    One connection guarded by a lock: the pipeline thread writes, API threads read.
    Upserts are idempotent by ``event_id``: the first record of an event creates the
    alert (start or end, whichever arrives first).  A later record raises ``priority``
    to its own when higher (escalation of a persisting incident; never lowered), fills
    in ``end_s``, ``snapshot``, ``line`` and ``direction`` when they are still empty,
    and, when it is an end record carrying ``details``, replaces ``details`` with them
    (an incident's end holds the merged facts, e.g. ``members``).  Replaying records
    gives the same row.  Operator fields (the lifecycle: ``state``, ``owner``, the
    disposition, and the older ``status``) are never touched by upserts.

    A run marker (``upsert`` of ``{"kind": "run_started", "camera_id": C, "run_id": R,
    ...}``) closes every open alert of camera C not raised by run R, as
    ``interrupted`` (see ``close_earlier_runs``).  An interrupted alert stays so: a later
    record of it (a replay, a late end) changes neither ``end_s`` nor ``end_reason``,
    except the end record of the camera's current run (a recording played again gives the
    same event ids, and that run saw the event end).

    A track summary (``kind: "track"``) is stored by ``add_track`` (``sql_tracks``).
    """

    if TYPE_CHECKING:  # given by the store's TracksMixin (sql_tracks)

        def add_track(self, record: Mapping[str, Any]) -> None: ...

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Store one event record (start or end), idempotent by ``event_id``; or apply
        a run marker (``close_earlier_runs``); or store a track summary (``add_track``).

        The first record creates the alert.  A later one of the same ``event_id``:

        * raises ``priority`` to the record's when higher (never lowers it);
        * sets ``end_s`` (with ``end_reason = "ended"``), ``snapshot``, ``clip``, ``line``,
          ``direction``, ``run_id`` where still null (an interrupted alert has its
          ``end_s``: it stays interrupted, unless the end record comes from the
          camera's current run, which replays the same recording: its end replaces it);
        * if it is an end record (``end_s`` set) with a ``details`` field, replaces
          ``details`` (a record without the optional field leaves them as they are).

        Raises:
            InvalidEventError: The record is neither a valid event record, nor a valid
                run marker, nor a valid track summary.
            AlertStoreError: The database failed.
        """
        kind = validate_bus_record(record)
        if kind == TRACK:
            self.add_track(record)
            return
        if kind == RUN_STARTED:
            self.close_earlier_runs(
                record["camera_id"],
                record["run_id"],
                datetime.fromisoformat(record["wall_time"]).timestamp(),
            )
            return
        wall_time = datetime.fromisoformat(record["wall_time"]).timestamp()
        bbox = record["bbox"] or (None, None, None, None)
        event_id = record["event_id"]
        details = _details_json(record)
        line, direction = record.get("line"), record.get("direction")
        run_id = record.get("run_id")
        reason = record.get("reason")
        clip = record.get("clip")
        geometry = _geometry_json(record)
        is_end = record["end_s"] is not None
        params = (
            event_id,
            record["schema_version"],
            record["camera_id"],
            record["type"],
            record["rule_id"],
            record["zone"],
            record["track_id"],
            record["label"],
            record["score"],
            record["priority"],
            record["start_s"],
            record["end_s"],
            *bbox,
            record["start_seq"],
            record["snapshot"],
            wall_time,
            datetime.now(UTC).timestamp(),
            line,
            direction,
            details,
            "ended" if is_end else None,
            run_id,
            reason,
            clip,
            geometry,
        )
        closed = escalated = 0
        with self._lock, db_errors(f"cannot store event_id={event_id}", self.path):
            # The first record of an event: one statement, atomic on its own (no write
            # transaction, so one round trip to PostgreSQL).  A later record: the changes
            # below, in one write transaction.
            inserted = self._conn.execute(
                "INSERT INTO alerts (event_id, schema_version, camera_id, type, rule_id, "
                "zone, track_id, label, score, priority, start_s, end_s, bbox_x1, bbox_y1, "
                "bbox_x2, bbox_y2, start_seq, snapshot, wall_time, received_at, line, "
                "direction, details, end_reason, run_id, reason, clip, geometry) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                params,
            ).rowcount
            if not inserted:
                with write_transaction(self._conn) as conn:
                    if is_end:
                        closed = conn.execute(
                            "UPDATE alerts SET end_s = ?, end_reason = 'ended' "
                            "WHERE event_id = ? AND end_s IS NULL",
                            (record["end_s"], event_id),
                        ).rowcount
                    if not closed and is_end and run_id is not None:
                        # The camera's current run saw this event end (it replays the same
                        # recording, same event ids): its end replaces the "interrupted"
                        # an earlier, killed run left.  Ends from other runs change nothing.
                        closed = conn.execute(
                            "UPDATE alerts SET end_s = ?, end_reason = 'ended', run_id = ? "
                            "WHERE event_id = ? AND end_reason = 'interrupted' AND EXISTS "
                            "(SELECT 1 FROM worker_runs w "
                            "WHERE w.camera_id = alerts.camera_id AND w.run_id = ?)",
                            (record["end_s"], run_id, event_id, run_id),
                        ).rowcount
                    escalated = conn.execute(
                        "UPDATE alerts SET priority = ? WHERE event_id = ? AND priority < ?",
                        (record["priority"], event_id, record["priority"]),
                    ).rowcount
                    _fill_missing(
                        conn,
                        event_id,
                        {
                            "snapshot": record["snapshot"],
                            "line": line,
                            "direction": direction,
                            "run_id": run_id,
                            "clip": clip,
                            "geometry": geometry,
                        },
                    )
                    if is_end and "details" in record:
                        conn.execute(
                            "UPDATE alerts SET details = ? "
                            "WHERE event_id = ? AND details IS DISTINCT FROM ?",
                            (details, event_id, details),
                        )
                    if is_end and geometry is not None:  # the end's path is the whole walk
                        conn.execute(
                            "UPDATE alerts SET geometry = ? "
                            "WHERE event_id = ? AND geometry IS DISTINCT FROM ?",
                            (geometry, event_id, geometry),
                        )
                    if reason is not None and (closed or not is_end):
                        # the end that closed it says how long it lasted; an end refused
                        # (the alert already ended, or interrupted) leaves the reason be
                        conn.execute(
                            "UPDATE alerts SET reason = ? "
                            "WHERE event_id = ? AND (reason IS NULL OR ?)",
                            (reason, event_id, bool(closed)),
                        )
        if inserted:
            ALERTS_STORED.labels(type=record["type"]).inc()
            logger.debug(
                "alert %s created (%s, priority %d)", event_id, record["type"], record["priority"]
            )
        if escalated:
            logger.debug("alert %s escalated to priority %d", event_id, record["priority"])
        if (inserted and is_end) or closed:
            ALERTS_CLOSED.labels(type=record["type"]).inc()

    def __call__(self, record: dict[str, Any]) -> None:
        """Bus-subscriber form of ``upsert``."""
        self.upsert(record)

    def close_earlier_runs(
        self, camera_id: str, run_id: str, started_at: float
    ) -> builtins.list[str]:
        """A worker run ``run_id`` of ``camera_id`` started at ``started_at`` (its marker).

        Every alert of the camera that is still open and was not raised by this run
        (another ``run_id``, or none: stored before runs were recorded) is closed:
        ``end_reason = "interrupted"``, ``end_s = start_s`` (its real end is unknown:
        the process that would have sent it is gone).  Status, acknowledgement and
        note are kept.  The bus is FIFO per camera, so the earlier run's records have
        all been stored by the time its successor's marker arrives.

        The run is remembered as the camera's latest; a marker that started before the
        latest one (a redelivered, stale marker) closes nothing, and replaying the
        latest closes nothing new.  One camera is served by one worker at a time: two
        workers on one camera would close each other's alerts at every start.

        Args:
            camera_id: The camera.
            run_id: The run that started.
            started_at: Its start, UNIX seconds (the marker's ``wall_time``).

        Returns:
            The ``event_id``s of the alerts closed (empty for a stale marker).

        Raises:
            AlertStoreError: The database failed.
        """
        now = datetime.now(UTC).timestamp()
        closed: builtins.list[tuple[str, str]] = []
        stale = False
        with (
            self._lock,
            db_errors(f"cannot apply the start of run {run_id} of camera {camera_id}", self.path),
            write_transaction(self._conn) as conn,
        ):
            latest = conn.execute(
                "SELECT run_id, started_at FROM worker_runs WHERE camera_id = ?",
                (camera_id,),
            ).fetchone()
            stale = (
                latest is not None
                and latest["run_id"] != run_id
                and latest["started_at"] > started_at
            )
            if not stale:
                conn.execute(
                    "INSERT INTO worker_runs (camera_id, run_id, started_at, received_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (camera_id) DO UPDATE SET "
                    "run_id = excluded.run_id, started_at = excluded.started_at, "
                    "received_at = excluded.received_at",
                    (camera_id, run_id, started_at, now),
                )
                closed = [
                    (r["event_id"], r["type"])
                    for r in conn.execute(
                        "UPDATE alerts SET end_s = start_s, end_reason = 'interrupted' "
                        "WHERE camera_id = ? AND end_s IS NULL "
                        "AND (run_id IS NULL OR run_id != ?) RETURNING event_id, type",
                        (camera_id, run_id),
                    ).fetchall()
                ]
        extra = {"camera_id": camera_id, "run_id": run_id}
        if stale:
            logger.info(
                "stale run marker (the run started before the camera's latest): nothing closed",
                extra=extra,
            )
            return []
        for _, type_ in closed:
            ALERTS_INTERRUPTED.labels(type=type_).inc()
        logger.info(
            "worker run started; alerts an earlier run left open, closed as interrupted: %d",
            len(closed),
            extra=extra,
        )
        return [event_id for event_id, _ in closed]

    def get(self, event_id: str) -> Alert | None:
        """The alert with ``event_id``, or ``None``."""
        with self._lock, db_errors(f"cannot read alert {event_id}", self.path):
            row = fetch_alert(self._conn, event_id)
        return None if row is None else _row_to_alert(row)

    def list(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        states: Collection[AlertState] | None = None,
        ongoing: bool | None = None,
        camera_ids: Collection[str] | None = None,
        owner: str | None = None,
        after_event_id: str | None = None,
    ) -> builtins.list[Alert]:
        """Alerts matching every given filter (``None`` = any).

        Ordered by ``priority`` descending, then ``wall_time`` descending (most urgent,
        then most recent first), then ``event_id`` for a stable page order.  With
        ``after_event_id``: only alerts whose event id sorts after it, in event id order
        (keyset pages: each alert that does not change meanwhile is on exactly one page,
        whatever else changes; offsets shift when an earlier alert leaves the filter).

        Args:
            camera_id: Only this camera.
            type: Only this event type.
            status: ``"new"``, ``"acknowledged"`` or ``"false_positive"`` (the older field).
            open: The older name of ``ongoing``.
            limit: Page size, 1..``MAX_LIMIT``.
            offset: Rows to skip, >= 0.
            states: Only alerts in one of these lifecycle states (empty: none).
            ongoing: ``True`` only alerts whose event is still going on (no end yet),
                ``False`` only ended ones; whatever their state.
            camera_ids: Only these cameras (empty: none), e.g. a user's camera groups.
            owner: Only alerts claimed by this user (case-insensitive).
            after_event_id: Keyset paging: event ids after this one, in id order.

        Raises:
            ValueError: ``limit``/``offset``/``status``/``states`` out of range, or
                ``open`` and ``ongoing`` disagreeing.
        """
        check_page(limit, offset)
        where, params = _where(
            camera_id=camera_id,
            type=type,
            status=status,
            open=open,
            states=states,
            ongoing=ongoing,
            camera_ids=camera_ids,
            owner=owner,
        )
        order = _ORDER
        if after_event_id is not None:
            where += (" AND " if where else " WHERE ") + "event_id > ?"
            params = [*params, after_event_id]
            order = "ORDER BY event_id ASC"
        with self._lock, db_errors("cannot list alerts", self.path):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM alerts{where} {order} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_row_to_alert(r) for r in rows]

    def count(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        status: AlertStatus | None = None,
        open: bool | None = None,
        states: Collection[AlertState] | None = None,
        ongoing: bool | None = None,
        camera_ids: Collection[str] | None = None,
        owner: str | None = None,
    ) -> int:
        """Number of alerts matching the filters (same meaning as in ``list``)."""
        where, params = _where(
            camera_id=camera_id,
            type=type,
            status=status,
            open=open,
            states=states,
            ongoing=ongoing,
            camera_ids=camera_ids,
            owner=owner,
        )
        with self._lock, db_errors("cannot count alerts", self.path):
            (n,) = self._conn.execute(f"SELECT COUNT(*) FROM alerts{where}", params).fetchone()
        return int(n)
