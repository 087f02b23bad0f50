"""Validation of bus records against ``alerts/event.schema.json`` and ``alerts/run.schema.json``.

The JSON Schema files are the single source of truth for what goes over the bus:
*event records* (what ``selector.event.Event.to_record()`` produces, stamped with
the worker's ``run_id``) and *run markers* (``{"kind": "run_started", ...}``, one per
camera when a worker run starts).  A record with a ``kind`` is a marker, one without
is an event: ``validate_bus_record`` tells them apart and validates either;
``validate_record`` and ``validate_marker`` check one kind.  This module only loads
the schemas and runs them through ``jsonschema`` with format assertion switched on
(``uuid`` and ``date-time`` are checked by the standard library, so the result does
not depend on optional ``jsonschema`` extras), after a few checks by hand of the
event's ``geometry`` that JSON Schema cannot express (finite numbers) or would report
with a message as long as the offending list (its bounds).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The ``schema_version`` this code produces and understands."""

SCHEMA_RESOURCE = "event.schema.json"
MARKER_SCHEMA_RESOURCE = "run.schema.json"

RUN_STARTED = "run_started"
"""``kind`` of the marker a worker run publishes per camera when it starts."""
TRACK = "track"
"""``kind`` of a track summary (``alerts/track.schema.json``): one per track, when it ends."""
TRACK_SCHEMA_RESOURCE = "track.schema.json"
EVENT = "event"
"""What ``validate_bus_record`` returns for an event record (which has no ``kind``)."""


class InvalidEventError(ValueError):
    """An event record does not validate against the event schema.

    Attributes:
        reason: Human-readable reason (which field, what is wrong).
        path: JSON path of the offending value, e.g. ``"$.priority"``.
        event_id: ``event_id`` of the record when it had a string one, else ``None``.
    """

    def __init__(self, reason: str, *, path: str = "$", event_id: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.event_id = event_id
        where = f" (event_id={event_id})" if event_id else ""
        super().__init__(f"invalid event record at {path}: {reason}{where}")


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True  # type errors are reported by "type", not by "format"
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value and parsed.tzinfo is not None


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("uuid")(_is_uuid)
    checker.checks("date-time")(_is_datetime)
    return checker


@cache
def _load(resource: str) -> dict[str, Any]:
    """A schema of this package (parsed once, checked against its draft)."""
    text = resources.files("alerts").joinpath(resource).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator_of(resource: str) -> Draft202012Validator:
    return Draft202012Validator(_load(resource), format_checker=_format_checker())


def load_schema() -> dict[str, Any]:
    """The event schema as a dict (parsed once, from the package data file).

    Returns:
        The JSON Schema document. Do not mutate it (it is cached).
    """
    return _load(SCHEMA_RESOURCE)


def load_marker_schema() -> dict[str, Any]:
    """The run marker schema as a dict (parsed once, from the package data file).

    Returns:
        The JSON Schema document. Do not mutate it (it is cached).
    """
    return _load(MARKER_SCHEMA_RESOURCE)


def _validator() -> Draft202012Validator:
    return _validator_of(SCHEMA_RESOURCE)


def _marker_validator() -> Draft202012Validator:
    return _validator_of(MARKER_SCHEMA_RESOURCE)


def record_fields() -> tuple[str, ...]:
    """Names of the fields schema version 1 defines, in schema order."""
    return tuple(load_schema()["properties"])


def _check_geometry(record: Mapping[str, Any], event_id: str | None) -> None:
    """The bounds of ``geometry``'s lists (from the schema) and the finiteness of its
    numbers; shapes and types are left to the schema.

    Raises:
        InvalidEventError: A list longer than the schema allows, a point of more than
            two numbers, or a number that is NaN or infinite.
    """
    geometry = record.get("geometry")
    if not isinstance(geometry, Mapping):
        return
    spec = load_schema()["properties"]["geometry"]["properties"]
    point_max = load_schema()["$defs"]["point"]["maxItems"]
    for key, value in geometry.items():
        if key not in spec or not isinstance(value, list):
            continue  # the schema reports it
        where = f"$.geometry.{key}"
        limit = spec[key]["maxItems"]
        if len(value) > limit:
            raise InvalidEventError(
                f"{key} has {len(value)} items; at most {limit} are allowed",
                path=where,
                event_id=event_id,
            )
        for i, item in enumerate(value):
            if isinstance(item, list):
                if len(item) > point_max:
                    raise InvalidEventError(
                        f"a point is [x, y]; got {len(item)} items",
                        path=f"{where}[{i}]",
                        event_id=event_id,
                    )
                numbers = [(f"{where}[{i}][{j}]", v) for j, v in enumerate(item)]
            else:
                numbers = [(f"{where}[{i}]", item)]
            for at, v in numbers:
                if isinstance(v, float) and not math.isfinite(v):
                    raise InvalidEventError(
                        f"{v!r} is not a finite number", path=at, event_id=event_id
                    )


def validate_record(record: Mapping[str, Any], *, allow_unknown: bool = True) -> None:
    """Check one event record against the schema.

    ``geometry`` is also held to finite numbers (NaN and infinities, which Python's
    ``json`` reads and writes, are refused).

    Args:
        record: The JSON record (a mapping of JSON-compatible values).
        allow_unknown: Consumers keep the default ``True`` and ignore fields they do
            not know (compatible evolution, see ``docs/event-schema.md``).  Producers'
            tests pass ``False`` so a field that is not in the schema is caught.

    Raises:
        InvalidEventError: With the reason and the JSON path of the first (best) error.
    """
    raw_id = record.get("event_id") if isinstance(record, Mapping) else None
    event_id = raw_id if isinstance(raw_id, str) else None
    if not isinstance(record, Mapping):
        raise InvalidEventError(f"expected an object, got {type(record).__name__}")
    _check_geometry(record, event_id)
    error = best_match(_validator().iter_errors(dict(record)))
    if error is not None:
        raise InvalidEventError(error.message, path=error.json_path, event_id=event_id)
    if not allow_unknown:
        unknown = sorted(set(record) - set(record_fields()))
        if unknown:
            raise InvalidEventError(f"unknown fields {unknown}", event_id=event_id)


def run_marker(camera_id: str, run_id: str, started_at: float) -> dict[str, Any]:
    """The run marker a worker run publishes for ``camera_id`` when it starts.

    Args:
        camera_id: The camera (the bus keys it by camera, like that camera's events).
        run_id: The run's id (uuid4 string).
        started_at: When the run started, UNIX seconds.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": RUN_STARTED,
        "camera_id": camera_id,
        "run_id": run_id,
        "wall_time": datetime.fromtimestamp(started_at, UTC).isoformat(timespec="milliseconds"),
    }


def marker_fields() -> tuple[str, ...]:
    """Names of the fields of a run marker, in schema order."""
    return tuple(load_marker_schema()["properties"])


def is_marker(record: Mapping[str, Any]) -> bool:
    """True for a record that is not an event: it has a ``kind`` (see ``validate_bus_record``)."""
    return isinstance(record, Mapping) and "kind" in record


def validate_marker(record: Mapping[str, Any], *, allow_unknown: bool = True) -> None:
    """Check one run marker against ``alerts/run.schema.json``.

    Args:
        record: The JSON record.
        allow_unknown: As for ``validate_record``.

    Raises:
        InvalidEventError: With the reason and the JSON path of the first (best) error
            (``event_id`` is ``None``: markers have none).
    """
    if not isinstance(record, Mapping):
        raise InvalidEventError(f"expected an object, got {type(record).__name__}")
    error = best_match(_marker_validator().iter_errors(dict(record)))
    if error is not None:
        raise InvalidEventError(error.message, path=error.json_path)
    if not allow_unknown:
        unknown = sorted(set(record) - set(marker_fields()))
        if unknown:
            raise InvalidEventError(f"unknown fields {unknown}")


def load_track_schema() -> dict[str, Any]:
    """The track summary schema as a dict (parsed once; do not mutate it)."""
    return _load(TRACK_SCHEMA_RESOURCE)


def track_fields() -> tuple[str, ...]:
    """Names of the fields of a track summary, in schema order."""
    return tuple(load_track_schema()["properties"])


TRACK_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TRACK_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The times a track summary may carry (a clock gone wild is refused, not stored)."""


def _check_finite(value: Any, path: str) -> None:
    """Refuse NaN and infinities anywhere in ``value`` (JSON Schema's bounds let NaN pass,
    and a database column refuses it: the record would stall its consumer)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"{value!r} is not a finite number", path=path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value[:1000]):
            _check_finite(item, f"{path}[{i}]")


def validate_track(record: Mapping[str, Any], *, allow_unknown: bool = True) -> None:
    """Check one track summary against ``alerts/track.schema.json``, and that its last
    sighting is not before its first.

    Raises:
        InvalidEventError: With the reason and the JSON path of the first (best) error.
    """
    if not isinstance(record, Mapping):
        raise InvalidEventError(f"expected an object, got {type(record).__name__}")
    _check_finite(record, "$")
    error = best_match(_validator_of(TRACK_SCHEMA_RESOURCE).iter_errors(dict(record)))
    if error is not None:
        raise InvalidEventError(error.message, path=error.json_path)
    first = datetime.fromisoformat(record["first_seen"])
    last = datetime.fromisoformat(record["last_seen"])
    if last < first:
        raise InvalidEventError("last_seen is before first_seen", path="$.last_seen")
    if not (first.astimezone(UTC) >= TRACK_EARLIEST and last.astimezone(UTC) <= TRACK_LATEST):
        raise InvalidEventError(
            f"a track's times must lie between {TRACK_EARLIEST.year} and {TRACK_LATEST.year}",
            path="$.first_seen",
        )
    thumb = record.get("thumbnail")
    if thumb is not None:
        camera, _, rest = str(thumb).partition("/")
        if camera != record["camera_id"] or not rest.endswith(f"/track-{record['track_uid']}.jpg"):
            raise InvalidEventError(
                "thumbnail is not this track's key (<camera_id>/<date>/track-<track_uid>.jpg)",
                path="$.thumbnail",
            )
    if not allow_unknown:
        unknown = sorted(set(record) - set(track_fields()))
        if unknown:
            raise InvalidEventError(f"unknown fields {unknown}")


def validate_bus_record(record: Mapping[str, Any], *, allow_unknown: bool = True) -> str:
    """Check a record taken from (or put on) the bus, whichever kind it is.

    A record without ``kind`` is an event record (``validate_record``); one whose
    ``kind`` is ``"run_started"`` is a run marker (``validate_marker``), ``"track"`` a
    track summary (``validate_track``); any other ``kind`` is refused, so a consumer never
    stores a record it does not understand.

    Returns:
        ``EVENT``, ``RUN_STARTED`` or ``TRACK``.

    Raises:
        InvalidEventError: The record is none of these, or not a valid one.
    """
    if not is_marker(record):
        validate_record(record, allow_unknown=allow_unknown)
        return EVENT
    if record["kind"] == TRACK:
        validate_track(record, allow_unknown=allow_unknown)
        return TRACK
    if record["kind"] != RUN_STARTED:
        raise InvalidEventError(
            f"unknown record kind {record['kind']!r:.80} (expected {RUN_STARTED!r} or "
            f"{TRACK!r}, or no kind for an event record)",
            path="$.kind",
        )
    validate_marker(record, allow_unknown=allow_unknown)
    return RUN_STARTED
