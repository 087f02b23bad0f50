"""Validation of event records against ``alerts/event.schema.json``.

The JSON Schema file is the single source of truth for the event record (what
``selector.event.Event.to_record()`` produces and what goes over the bus).  This
module only loads it and runs it through ``jsonschema`` with format assertion
switched on (``uuid`` and ``date-time`` are checked by the standard library, so
the result does not depend on optional ``jsonschema`` extras).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The ``schema_version`` this code produces and understands."""

SCHEMA_RESOURCE = "event.schema.json"


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
def load_schema() -> dict[str, Any]:
    """The event schema as a dict (parsed once, from the package data file).

    Returns:
        The JSON Schema document. Do not mutate it (it is cached).
    """
    text = resources.files("alerts").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(), format_checker=_format_checker())


def record_fields() -> tuple[str, ...]:
    """Names of the fields schema version 1 defines, in schema order."""
    return tuple(load_schema()["properties"])


def validate_record(record: Mapping[str, Any], *, allow_unknown: bool = True) -> None:
    """Check one event record against the schema.

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
    error = best_match(_validator().iter_errors(dict(record)))
    if error is not None:
        raise InvalidEventError(error.message, path=error.json_path, event_id=event_id)
    if not allow_unknown:
        unknown = sorted(set(record) - set(record_fields()))
        if unknown:
            raise InvalidEventError(f"unknown fields {unknown}", event_id=event_id)
