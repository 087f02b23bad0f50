"""What a track summary record may hold (``alerts.schema.validate_track``): the bounds a
database column needs, and a thumbnail key that can only be the track's own."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.evidence import thumbnail_key
from alerts.schema import InvalidEventError, validate_bus_record
from tests.factories import T0, make_track_record

pytestmark = pytest.mark.unit


def _record(**changes: Any) -> dict[str, Any]:
    r: dict[str, Any] = make_track_record(1)
    r["thumbnail"] = thumbnail_key("cam-1", T0 + 1, str(r["track_uid"]))
    return r | changes


def test_a_valid_record_is_a_track() -> None:
    assert validate_bus_record(_record(), allow_unknown=False) == "track"


@pytest.mark.parametrize(
    ("changes", "where", "words"),
    [
        ({"thumbnail": "cam-2/2024-05-01/track-{uid}.jpg"}, "$.thumbnail", "this track's key"),
        ({"thumbnail": "cam-1/2024-05-01/track-{other}.jpg"}, "$.thumbnail", "this track's key"),
        ({"thumbnail": "cam-1/2024-05-01/x.jpg"}, "$.thumbnail", "does not match"),
        ({"thumbnail": "cam-1/../track-{uid}.jpg"}, "$.thumbnail", "does not match"),
        ({"size": {"width_px": float("nan"), "height_px": 1, "height_frac": 0.1}},
         "$.size.width_px", "finite"),
        ({"appearance": [float("inf")] + [0.0] * 32}, "$.appearance[0]", "finite"),
        ({"track_id": 2**63}, "$.track_id", "maximum"),
        ({"samples": 2**63}, "$.samples", "maximum"),
        ({"last_seen": "9999-12-31T23:59:00Z"}, "$.first_seen", "between"),
        ({"first_seen": "1970-01-01T00:00:00Z"}, "$.first_seen", "between"),
        ({"last_seen": "2024-05-01T09:00:00Z"}, "$.last_seen", "before first_seen"),
        ({"direction": "sideways"}, "$.direction", "is not one of"),
        ({"colours": {"upper": "mauve"}}, "$.colours.upper", "is not one of"),
        ({"kind": "tracks"}, "$.kind", "unknown record kind"),
    ],
)  # fmt: skip
def test_what_a_database_or_another_camera_would_suffer_is_refused(
    changes: dict[str, Any], where: str, words: str
) -> None:
    record = _record()
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.format(uid=record["track_uid"], other="0" * 8 + record["track_uid"][8:])
        record[key] = value
    with pytest.raises(InvalidEventError) as e:
        validate_bus_record(record)
    assert e.value.path == where and words in str(e.value)
