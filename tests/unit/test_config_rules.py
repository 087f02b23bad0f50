"""Issue 4's rule configs: the forms the issue writes are accepted; mistakes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus.config import ConfigError, load_config, parse_config
from argus.rulebook import RuleBook, validate_rules
from selector.rules import (
    AbandonedObjectRule,
    CameraHealthRule,
    CrowdingRule,
    FallRule,
    LineCrossingRule,
    LoiteringRule,
    WrongWayRule,
)

pytestmark = pytest.mark.unit

COCO = (
    ["person"]
    + [f"c{i}" for i in range(1, 24)]
    + ["backpack", "umbrella", "handbag", "tie", "suitcase"]
)

ISSUE_RULES = """\
cameras:
  - id: cam
    source: /tmp/x.mp4
    timezone: Asia/Seoul
    zones:
      - {name: lawn, polygon: [[0,0],[100,0],[100,100],[0,100]]}
      - {name: path, polygon: [[100,0],[200,0],[200,100],[100,100]]}
    lines:
      - {name: gate, points: [[0,50],[200,50]]}
rules:
  - {type: loitering, camera: cam, zone: lawn, classes: [person], min_dwell_s: 10}
  - {type: line_crossing, camera: cam, line: gate, classes: [person]}
  - {type: abandoned_object, camera: cam, zone: lawn, min_unattended_s: 10}
  - {type: fall, camera: cam, min_down_s: 3}
  - {type: crowding, camera: cam, zone: lawn, min_count: 4, min_duration_s: 5}
  - {type: wrong_way, camera: cam, zone: path, direction: [1, 0], min_duration_s: 2}
  - {type: camera_health, camera: cam}
  - type: intrusion
    camera: cam
    zone: path
    schedule: [{start: "22:00", end: "06:00", days: [fri, sat], weight: 1.3}]
"""


def load(tmp_path: Path, text: str = ISSUE_RULES):  # type: ignore[no-untyped-def]
    p = tmp_path / "a.yaml"
    p.write_text(text)
    return load_config(p)


def test_the_issue_forms_build_every_rule(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert [r.rule_id for r in cfg.rules] == [
        "loitering:lawn",
        "line_crossing:gate",
        "abandoned_object:lawn",
        "fall",
        "crowding:lawn",
        "wrong_way:path",
        "camera_health",
        "intrusion:path",
    ]
    rules, policies = RuleBook(cfg.cameras[0], COCO, "a.yaml").build(cfg.rules)
    assert [type(r) for r in rules[:7]] == [
        LoiteringRule,
        LineCrossingRule,
        AbandonedObjectRule,
        FallRule,
        CrowdingRule,
        WrongWayRule,
        CameraHealthRule,
    ]
    night = policies["intrusion:path"].schedule
    assert night.tz.key == "Asia/Seoul" and len(night.windows) == 1
    assert policies["line_crossing:gate"].cooldown_s == 0.0  # every crossing counts
    assert policies["loitering:lawn"].cooldown_s == 5.0


def test_unchanged_rules_keep_their_objects_on_reload(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    book = RuleBook(cfg.cameras[0], COCO, "a.yaml")
    first, _ = book.build(cfg.rules)
    changed = load(tmp_path, ISSUE_RULES.replace("min_count: 4", "min_count: 5"))
    second, _ = book.build(changed.rules)
    same = [a is b for a, b in zip(first, second, strict=True)]
    assert same == [True, True, True, True, False, True, True, True]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ("line: gate, classes", "rules.1.line"),  # unchanged -> replaced below
        ("direction: [1, 0]", "rules.5.direction"),
        ("min_count: 4", "rules.4.min_count"),
        ('start: "22:00"', "rules.7.schedule.0"),
        ("timezone: Asia/Seoul", "cameras.0.timezone"),
        ("points: [[0,50],[200,50]]", "cameras.0.lines.0"),
    ],
)
def test_mistakes_are_refused_with_their_key(tmp_path: Path, change: str, where: str) -> None:
    bad = {
        "line: gate, classes": "line: nowhere, classes",
        "direction: [1, 0]": "direction: [0, 0]",
        "min_count: 4": "min_count: 1",
        'start: "22:00"': 'start: "25:00"',
        "timezone: Asia/Seoul": "timezone: Mars/Base",
        "points: [[0,50],[200,50]]": "points: [[0,50],[0,50]]",
    }[change]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, ISSUE_RULES.replace(change, bad))
    assert where in str(info.value)


def test_runtime_rule_sets_are_validated_against_cameras_and_model(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    ok = [r.model_dump(mode="json") for r in cfg.rules]
    assert validate_rules(ok, cfg, COCO) == []
    assert any("rules.0.zone" in p for p in validate_rules([ok[0] | {"zone": "moon"}], cfg, COCO))
    assert any(
        "unknown class" in p for p in validate_rules([ok[0] | {"classes": ["dragon"]}], cfg, COCO)
    )
    assert any(
        "rules.0" in p for p in validate_rules([{"type": "teleport", "camera": "cam"}], cfg, None)
    )
    # without the model's classes only the structure is checked
    assert validate_rules([ok[0] | {"classes": ["dragon"]}], cfg, None) == []


def test_zone_is_optional_only_where_the_issue_says(tmp_path: Path) -> None:
    data = load(tmp_path).model_dump(mode="json")
    data["rules"] = [{"type": "crowding", "camera": "cam", "min_count": 3}]
    with pytest.raises(ConfigError, match=r"rules\.0\.zone"):
        parse_config(data)
