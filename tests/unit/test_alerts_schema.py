"""The event schema file, its validator, and the producer (Event.to_record) agree."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from alerts.schema import InvalidEventError, load_schema, record_fields, validate_record
from selector.event import Event, Geometry, make_event_id

pytestmark = pytest.mark.unit


def _event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "event_id": make_event_id("cam-1", "intrusion:gate", 7, 120),
        "camera_id": "cam-1",
        "type": "intrusion",
        "rule_id": "intrusion:gate",
        "zone": "gate",
        "track_id": 7,
        "label": "person",
        "score": 0.8731,
        "priority": 80,
        "start_s": 12.0,
        "end_s": None,
        "bbox": (10.0, 20.5, 110.25, 300.0),
        "start_seq": 120,
        "wall_time": 1_714_557_600.123,
        "snapshot": None,
    }
    fields.update(overrides)
    return Event(**fields)


def test_schema_file_is_valid_draft_2020_12_and_ships_as_package_data() -> None:
    text = resources.files("alerts").joinpath("event.schema.json").read_text("utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert load_schema() == schema


@pytest.mark.parametrize(
    "event",
    [
        _event(),
        _event(end_s=15.5, snapshot="cam-1/2024-05-01/x.jpg"),
        _event(zone=None, track_id=None, label=None, score=None, bbox=None),
        _event(score=0.0, priority=0, start_s=0.0, start_seq=0),
        _event(score=1.0, priority=100),
        _event(
            geometry=Geometry(
                frame=(768, 576),
                zone=((100.0, 100.0), (300.0, 100.0), (300.0, 300.0)),
                path=((120.04, 250.0), (122.0, 251.96)),
            )
        ),
        _event(zone=None, track_id=None, geometry=Geometry(frame=(1920, 1080))),
    ],
)
def test_event_to_record_validates_and_has_exactly_the_schema_fields(event: Event) -> None:
    record = event.to_record()
    validate_record(record, allow_unknown=False)
    # run_id (the worker run's), reason (the rule type's words) and clip are stamped by the
    # runner (tests/unit/test_interrupted.py and test_rule_types.py hold the published
    # record to the exact field set); the selector's event knows neither
    assert set(record) == set(record_fields()) - {"run_id", "reason", "clip"}
    # fields added later in version 1 are optional (absent means null / empty)
    optional = {"line", "direction", "details", "geometry", "run_id", "reason", "clip"}
    assert set(load_schema()["required"]) == set(record_fields()) - optional
    # survives a JSON round trip (what a broker does)
    validate_record(json.loads(json.dumps(record)), allow_unknown=False)


BAD_CASES: list[tuple[str, Any, str]] = [
    ("schema_version", 2, "$.schema_version"),
    ("event_id", "not-a-uuid", "$.event_id"),
    ("event_id", "547B1BEA-C05C-5F87-869F-54DC6B8ADC70", "$.event_id"),  # not canonical
    ("camera_id", "../etc", "$.camera_id"),
    ("camera_id", "", "$.camera_id"),
    ("type", "", "$.type"),
    ("track_id", 1.5, "$.track_id"),
    ("track_id", True, "$.track_id"),
    ("score", 1.2, "$.score"),
    ("score", -0.1, "$.score"),
    ("priority", 101, "$.priority"),
    ("priority", "high", "$.priority"),
    ("start_s", -1.0, "$.start_s"),
    ("bbox", [1, 2, 3], "$.bbox"),
    ("bbox", [1, 2, 3, "4"], "$.bbox[3]"),
    ("start_seq", -1, "$.start_seq"),
    ("wall_time", "2024-05-01T10:00:00", "$.wall_time"),  # no offset
    ("wall_time", "2024-13-01T10:00:00+00:00", "$.wall_time"),
    ("wall_time", 1714557600.0, "$.wall_time"),
]


@pytest.mark.parametrize(("field", "value", "path"), BAD_CASES)
def test_bad_values_are_rejected_with_path_and_reason(field: str, value: Any, path: str) -> None:
    record = _event().to_record()
    record[field] = value
    with pytest.raises(InvalidEventError) as info:
        validate_record(record)
    assert info.value.path == path
    assert info.value.reason
    assert path in str(info.value)


@pytest.mark.parametrize("field", sorted(load_schema()["required"]))
def test_each_missing_field_is_rejected(field: str) -> None:
    record = _event().to_record()
    del record[field]
    with pytest.raises(InvalidEventError, match=field):
        validate_record(record)


def test_unknown_fields_are_accepted_by_consumers_but_not_in_strict_mode() -> None:
    record = _event().to_record()
    record["future_optional_field"] = {"anything": 1}
    validate_record(record)  # version-1 consumer ignores it
    with pytest.raises(InvalidEventError, match="future_optional_field"):
        validate_record(record, allow_unknown=False)


def test_error_carries_event_id_and_non_object_is_rejected() -> None:
    record = _event().to_record()
    record["priority"] = -5
    with pytest.raises(InvalidEventError) as info:
        validate_record(record)
    assert info.value.event_id == record["event_id"]
    with pytest.raises(InvalidEventError, match="object"):
        validate_record(["not", "a", "dict"])  # type: ignore[arg-type]


def test_schema_is_not_mutated_by_validation() -> None:
    before = copy.deepcopy(load_schema())
    validate_record(_event().to_record())
    assert load_schema() == before


def test_example_in_the_docs_validates() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "event-schema.md"
    text = doc.read_text("utf-8")
    example = text.split("```json", 1)[1].split("```", 1)[0]
    record = json.loads(example)
    validate_record(record, allow_unknown=False)
    for field in record_fields():
        assert f"| `{field}` |" in text, f"{field} is not documented"
