"""Rule types: one module declares a rule (config, factory, event types, words) and the rest
is built from the registry (config union, rulebook, validation, /rule-types, reasons).

The acceptance check of issue 13 is the toy rule of ``tests/unit/toy_rule.py``: a module
of the test tree, imported here and known to no other file, that is configurable,
validated, listed by ``GET /api/v1/rule-types`` and raises events with its reason.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from alerts.api import create_app
from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore
from alerts.schema import record_fields, validate_record
from alerts.store import SqliteAlertStore
from argus.config import ConfigError, parse_config
from argus.rulebook import RuleBook, validate_rules
from argus.runner import CameraRuntime, Runner
from argus.slots import FrameSlot
from selector.camera import CameraSelector
from selector.rules.camera_health import KINDS
from selector.rules.config import RuleConfigBase
from selector.rules.registry import (
    EventWords,
    RuleType,
    check_template,
    format_duration,
    plural_of,
    reason_of,
    register,
    render,
    rule_types,
)
from selector.tracker import ByteTracker
from tests.factories import make_event
from tests.unit import toy_rule
from tests.unit.test_runner import NAMES, ScriptedSource, walker

pytestmark = pytest.mark.unit

KEY = "rule-types-key-0123456789"
BUILTIN = {
    "abandoned_object",
    "camera_health",
    "crowding",
    "fall",
    "intrusion",
    "line_crossing",
    "loitering",
    "wrong_way",
}


def _config(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "cameras": [
            {
                "id": "cam",
                "source": "/nonexistent.mp4",
                "zones": [{"name": "z", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]}],
            }
        ],
        "rules": list(rules),
    }


# --------------------------------------------------------------- the toy rule, end to end


def test_a_rule_in_one_module_of_the_test_tree_is_configurable() -> None:
    cfg = parse_config(_config({"type": "toy_count", "camera": "cam", "min_tracks": 2}))
    (rule,) = cfg.rules
    assert isinstance(rule, toy_rule.ToyCountConfig) and rule.min_tracks == 2
    assert rule.rule_id == "toy_count" and rule.classes == ["person"]  # the bases' keys
    assert cfg.model_dump(mode="json")["rules"][0]["min_tracks"] == 2


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"min_tracks": 0}, "rules.0.min_tracks: Input should be greater than or equal to 1"),
        ({"min_trucks": 2}, "rules.0.min_trucks: unknown key"),
        ({"severity": 101}, "rules.0.severity"),
        ({"camera": "nowhere"}, "rules.0.camera: camera 'nowhere' is not defined"),
    ],
)
def test_the_toy_rule_is_validated_like_any_other(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config({"type": "toy_count", "camera": "cam"} | rule))
    assert problem in str(info.value)


def test_the_toy_rule_is_validated_for_the_api_strictly_and_against_the_model() -> None:
    cfg = parse_config(_config())
    ok = {"type": "toy_count", "camera": "cam", "min_tracks": 2}
    assert validate_rules([ok], cfg, NAMES) == []
    assert validate_rules([ok | {"min_tracks": "2"}], cfg, NAMES) == [
        "rules.0.min_tracks: Input should be a valid integer (got '2')"
    ]
    (problem,) = validate_rules([ok | {"classes": ["dragon"]}], cfg, NAMES)
    assert problem.startswith("rules.0.classes: unknown class ['dragon']")


def test_the_toy_rule_is_listed_by_rule_types(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    try:
        app = create_app(store, LocalEvidenceStore(tmp_path / "ev"), api_key=KEY)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert client.get("/api/v1/rule-types").status_code == 401
            r = client.get("/api/v1/rule-types", headers={"X-API-Key": KEY})
    finally:
        store.close()
    assert r.status_code == 200
    listed = {t["type"]: t for t in r.json()}
    assert BUILTIN | {"toy_count"} <= set(listed)
    toy = listed["toy_count"]
    assert toy["summary"] == "At least min_tracks tracked objects in view at once."
    assert toy["events"] == [
        {
            "type": "toy_count",
            "label": "Toy count",
            "reason": toy_rule.RULE.events["toy_count"].reason,
        }
    ]
    props = toy["config_schema"]["properties"]
    assert props["min_tracks"]["minimum"] == 1 and props["type"]["const"] == "toy_count"
    assert {"camera", "severity", "schedule", "classes"} <= set(props)  # the bases' keys


def test_the_toy_rule_raises_events_with_its_reason_through_the_runner(tmp_path: Path) -> None:
    cfg = parse_config(_config({"type": "toy_count", "camera": "cam"}))
    rules, policies = RuleBook(cfg.cameras[0], NAMES, "test").build(cfg.rules)
    assert [type(r) for r in rules] == [toy_rule.ToyCountRule]
    ready = threading.Condition()
    bus = InProcessBus()
    records: list[dict[str, Any]] = []
    bus.subscribe(records.append)
    source = ScriptedSource("cam", 20)
    cam = CameraRuntime(
        camera_id="cam",
        source=source,
        selector=CameraSelector("cam", ByteTracker(frame_rate=10.0), rules, policies),
        slot=FrameSlot(4, "block", ready),
    )
    runner = Runner([cam], walker, bus, LocalEvidenceStore(tmp_path / "ev"), ready=ready)
    assert runner.run().ok
    start, end = records
    assert start["type"] == end["type"] == "toy_count" and start["event_id"] == end["event_id"]
    assert start["reason"] == "1 person in view"
    assert end["reason"].startswith("1 person in view for ")
    for record in records:
        validate_record(record, allow_unknown=False)
        # no run id given here, and no clips
        assert set(record) == set(record_fields()) - {"run_id", "clip"}


# ------------------------------------------------------------------------- the registry


def test_the_package_registers_every_builtin_rule_type_with_words_for_each_event() -> None:
    types = rule_types()
    own = {t for t, rt in types.items() if rt.config.__module__.startswith("selector.rules.")}
    assert own == BUILTIN
    assert set(types["camera_health"].events) == set(KINDS)
    for rt in types.values():
        assert rt.summary and "``" not in rt.summary
        assert rt.json_schema()["properties"]["type"]["const"] == rt.type
        for words in rt.events.values():
            assert words.label and words.reason


class _Other(RuleConfigBase):
    """Another rule."""

    type: Literal["toy_count"]
    n: int = Field(1)


class _Mismatch(RuleConfigBase):
    """A config whose type tag is another's."""

    type: Literal["something_else"]


def _build(cfg: Any, ctx: Any) -> Any:
    raise AssertionError("never built")


def test_registering_clashes_and_malformed_types_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(RuleType("toy_count", _Other, _build, {"x_event": EventWords("X", "x")}))
    with pytest.raises(ValueError, match="are taken"):
        register(
            RuleType("toy_two", _mismatch_for("toy_two"), _build, {"covered": EventWords("C", "c")})
        )
    with pytest.raises(ValueError, match="needs type: Literal"):
        RuleType("toy_three", _Mismatch, _build, {"toy_three": EventWords("T", "t")})
    with pytest.raises(ValueError, match="lower-case identifier"):
        RuleType("Toy Four", _Mismatch, _build, {"e": EventWords("T", "t")})
    with pytest.raises(ValueError, match="no event types"):
        RuleType("something_else", _Mismatch, _build, {})
    assert "toy_two" not in rule_types()


def _mismatch_for(name: str) -> type[RuleConfigBase]:
    from pydantic import create_model

    model: type[RuleConfigBase] = create_model(  # type: ignore[call-overload]
        f"Cfg_{name}", __base__=RuleConfigBase, type=(Literal[name], ...)
    )
    return model


@pytest.mark.parametrize(
    "template",
    ["", "   ", "{count", "count}", "[{count}", "{count}]", "[a [b] c]", "{Count}", "{1x}"],
)
def test_a_template_that_could_not_render_is_refused(template: str) -> None:
    with pytest.raises(ValueError):
        check_template(template)
    with pytest.raises(ValueError):
        EventWords("Label", template)


def test_render_fills_facts_drops_optional_parts_and_makes_a_sentence() -> None:
    facts = {"count": "3", "zone": "gate"}
    assert render("{count} in {zone}[ for {duration}]", facts) == "3 in gate"
    assert render("{count} in {zone}[ for {duration}]", facts | {"duration": "4 s"}) == (
        "3 in gate for 4 s"
    )
    assert render("{object} waited", {}) == "? waited"  # a required fact missing shows
    assert render("[{zone}: ]person  down", facts) == "Gate: person down"
    assert [format_duration(s) for s in (0.4, 4.4, 60, 125, 3600, 3723)] == [
        "0 s",
        "4 s",
        "1 min",
        "2 min 5 s",
        "1 h",
        "1 h 2 min",
    ]


def test_reasons_of_builtin_events() -> None:
    crowd = replace(make_event(1, type_="crowding"), details={"count": 7})
    assert reason_of(crowd) == "7 people crowding in z"
    ended = replace(crowd, details={"count": 7, "members": 3}).closed(13.0)
    assert reason_of(ended) == "7 people crowding in z for 12 s (3 events in one alert)"
    one = replace(crowd, details={"count": 1})
    assert reason_of(one) == "1 person crowding in z"
    crossing = replace(make_event(2, type_="line_crossing"), zone=None, line="gate", direction="-")
    assert reason_of(crossing) == "Person crossed gate (-)"
    bag = replace(make_event(3, type_="abandoned_object"), label="suitcase", zone=None)
    assert reason_of(bag) == "Suitcase left unattended in view"
    covered = replace(make_event(4, type_="covered"), label=None, zone=None).closed(70.0)
    assert reason_of(covered) == "The lens is covered or blinded for 1 min 6 s"
    assert reason_of(make_event(5, type_="no_such_type")) is None


def test_plurals_of_class_names_and_the_crowd_that_grew() -> None:
    names = ["person", "bus", "wine glass", "knife", "skis", "toothbrush", "dog", "berry", "toy"]
    assert [plural_of(n) for n in names] == [
        "people",
        "buses",
        "wine glasses",
        "knives",
        "skis",
        "toothbrushes",
        "dogs",
        "berries",
        "toys",
    ]
    crowd = replace(make_event(1, type_="crowding"), label="bus", details={"count": 3})
    assert reason_of(crowd) == "3 buses crowding in z"
    grew = replace(crowd, details={"count": 3, "max_count": 9}).closed(76.0)
    assert reason_of(grew) == "3 buses crowding in z for 1 min 15 s, up to 9"


def test_the_store_keeps_the_first_reason_until_the_end_that_closes_it(tmp_path: Path) -> None:
    with SqliteAlertStore(tmp_path / "a.sqlite") as store:
        ev = replace(make_event(1, type_="crowding"), details={"count": 4})
        store.upsert(ev.to_record() | {"reason": "first"})
        store.upsert(replace(ev, priority=90).to_record() | {"reason": "escalated"})
        assert store.get(ev.event_id).reason == "first"  # type: ignore[union-attr]
        store.upsert(ev.closed(9.0).to_record() | {"reason": "ended after 8 s"})
        assert store.get(ev.event_id).reason == "ended after 8 s"  # type: ignore[union-attr]
        store.upsert(ev.closed(30.0).to_record() | {"reason": "a late second end"})
        alert = store.get(ev.event_id)
        assert alert is not None and (alert.end_s, alert.reason) == (9.0, "ended after 8 s")


def test_rule_plugins_of_other_packages_load_by_entry_point(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from importlib.metadata import EntryPoint

    from selector.rules import registry

    plugins = [
        EntryPoint("toy", "tests.unit.toy_rule", registry.PLUGIN_GROUP),
        EntryPoint("broken", "tests.unit.no_such_rule_module", registry.PLUGIN_GROUP),
    ]
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        asked.append(group)
        return plugins

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    known = rule_types()
    assert asked == [registry.PLUGIN_GROUP]
    assert BUILTIN | {"toy_count"} <= set(known)  # the broken plugin took nothing down
    assert any("rule plugin broken" in r.getMessage() for r in caplog.records)
