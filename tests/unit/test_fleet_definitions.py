"""Fleet camera definitions and the fleet view: validation of ``camera/<id>`` records,
credential references in sources, partition placement (as kafka-python places keys),
``FleetView`` folding (refusals, tombstones, digest) and site configs as definitions."""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import DefaultPartitioner

from argus.config import ConfigError, parse_config
from argus.fleet.definitions import (
    CameraDefinition,
    SecretError,
    camera_key,
    classes_named,
    definitions_of,
    parse_definition,
    partition_of,
    resolve_source,
    source_problem,
)
from argus.fleet.view import FleetView

pytestmark = pytest.mark.unit

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]
PASSWORD = "hunter2-Sup3rSecret"


def value(cid: str = "gate", **changes: Any) -> dict[str, Any]:
    """A valid definition value of camera ``cid``; ``changes`` replace top-level keys."""
    out: dict[str, Any] = {
        "camera": {
            "id": cid,
            "source": "rtsp://cam/x",
            "zones": [{"name": "z", "polygon": SQUARE}],
        },
        "rules": [
            {"type": "intrusion", "camera": cid, "zone": "z", "classes": ["person"]},
        ],
        "model": None,
        "updated_at": 1700000000.5,
    }
    out.update(changes)
    return out


def refused(key: str, val: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_definition(key, val)
    assert repr(key) in str(info.value), "the error names the record's key"
    assert info.value.problems
    return info.value


# --------------------------------------------------------------------------- parse_definition


def test_a_good_definition_is_accepted() -> None:
    d = parse_definition("camera/gate", value(model="yolo"))
    assert isinstance(d, CameraDefinition)
    assert d.camera_id == "gate" and d.key == "camera/gate"
    assert d.camera.source == "rtsp://cam/x"
    assert [z.name for z in d.camera.zones] == ["z"]
    assert len(d.rules) == 1 and d.rules[0].camera == "gate"
    assert d.model == "yolo" and d.updated_at == 1700000000.5
    assert d.placement() == ("gate", "yolo", ("person",))


def test_a_definition_round_trips_through_its_value() -> None:
    d = parse_definition("camera/gate", value())
    assert parse_definition(d.key, d.to_value()) == d


def test_rules_model_and_updated_at_may_be_left_out() -> None:
    d = parse_definition("camera/gate", {"camera": {"id": "gate", "source": "rtsp://cam/x"}})
    assert d.rules == () and d.model is None and d.updated_at == 0.0


@pytest.mark.parametrize("key", ["cam/gate", "gate", "camera/", "camera/../gate", "Camera/gate"])
def test_a_key_without_the_camera_prefix_and_an_id_is_refused(key: str) -> None:
    e = refused(key, value())
    assert any("key must be camera/<camera id>" in p for p in e.problems)


def test_a_key_naming_another_camera_is_refused() -> None:
    e = refused("camera/door", value("gate"))
    assert any(p.startswith("camera.id") and "'door'" in p for p in e.problems), e.problems


def test_a_rule_naming_another_camera_is_refused() -> None:
    rules = [{"type": "intrusion", "camera": "door", "zone": "z", "classes": ["person"]}]
    e = refused("camera/gate", value(rules=rules))
    assert any("every rule must name this camera" in p for p in e.problems), e.problems


def test_an_unknown_top_level_key_is_refused() -> None:
    e = refused("camera/gate", value(priority=3))
    assert any(p.startswith("priority") and "unknown key" in p for p in e.problems), e.problems


def test_a_self_intersecting_zone_is_refused() -> None:
    polygon = [[0, 0], [100, 100], [100, 0], [0, 100]]
    bowtie = {"id": "gate", "source": "rtsp://cam/x", "zones": [{"name": "z", "polygon": polygon}]}
    e = refused("camera/gate", value(camera=bowtie))
    assert any("intersects itself" in p for p in e.problems), e.problems


def test_a_rule_naming_an_unknown_zone_is_refused() -> None:
    rules = [{"type": "intrusion", "camera": "gate", "zone": "nowhere", "classes": ["person"]}]
    e = refused("camera/gate", value(rules=rules))
    assert any("nowhere" in p and "zone" in p for p in e.problems), e.problems


@pytest.mark.parametrize(
    "source",
    [
        f"rtsp://admin:{PASSWORD}@10.0.0.5/s",
        f"RTSP://admin:{PASSWORD}@10.0.0.5:554/stream1",
        f"rtsp://admin:{PASSWORD}${{CAM_PW}}@10.0.0.5/s",  # a reference plus literal text
        f"http://${{USER}}:{PASSWORD}@10.0.0.5/mjpeg",
    ],
)
def test_a_literal_password_in_the_source_is_refused_without_echoing_it(source: str) -> None:
    cam = {"id": "gate", "source": source, "zones": [{"name": "z", "polygon": SQUARE}]}
    e = refused("camera/gate", value(camera=cam))
    assert any(p.startswith("camera.source") and "password" in p for p in e.problems)
    assert PASSWORD not in str(e) and all(PASSWORD not in p for p in e.problems)


@pytest.mark.parametrize("model", [5, True, ["yolo"], "", "m" * 129])
def test_a_model_that_is_not_a_name_is_refused(model: Any) -> None:
    e = refused("camera/gate", value(model=model))
    assert any(p.startswith("model") for p in e.problems), e.problems


@pytest.mark.parametrize("bad", [True, "1700000000", None])
def test_updated_at_must_be_a_number(bad: Any) -> None:
    e = refused("camera/gate", value(updated_at=bad))
    assert any(p.startswith("updated_at") for p in e.problems)


@pytest.mark.parametrize("val", [[1], "camera", 3])
def test_a_value_that_is_not_an_object_is_refused(val: Any) -> None:
    e = refused("camera/gate", val)
    assert any("must be an object" in p for p in e.problems)


def test_every_problem_is_named_at_once() -> None:
    bad = value(model=5, extra=1)
    bad["rules"] = "all"
    e = refused("camera/gate", bad)
    starts = sorted(p.split(":")[0] for p in e.problems)
    assert starts == ["extra", "model", "rules"]


@pytest.mark.parametrize(
    "source",
    [
        "rtsp://admin:${CAM_PW}@10.0.0.5/s",
        "rtsp://admin:${file:/run/secrets/x}@h/s",
        "rtsp://admin@10.0.0.5/s",
        "rtsp://admin:@10.0.0.5/s",
        "rtsp://10.0.0.5:554/s",
        "/srv/footage/gate.mp4",
    ],
)
def test_a_source_with_a_reference_or_no_password_is_accepted(source: str) -> None:
    assert source_problem(source) is None
    cam = {"id": "gate", "source": source}
    d = parse_definition("camera/gate", value(camera=cam, rules=[]))
    assert d.camera.source == source, "the reference is kept, not expanded"


# --------------------------------------------------------------------------- resolve_source


def test_resolve_source_expands_environment_and_file_references(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\nsecond line ignored\n")
    source = f"rtsp://admin:${{file:{secret}}}@10.0.0.5/s?token=${{CAM_TOKEN}}"
    out = resolve_source(source, {"CAM_TOKEN": "t0k"}, allowed_dirs=[tmp_path])
    assert out == "rtsp://admin:from-file@10.0.0.5/s?token=t0k"


def test_resolve_source_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAM_TEST_PW", "envpw")
    assert resolve_source("rtsp://a:${CAM_TEST_PW}@h/s") == "rtsp://a:envpw@h/s"


def test_resolve_source_leaves_a_source_without_references_alone() -> None:
    assert resolve_source("rtsp://cam/x", {}) == "rtsp://cam/x"


def test_resolve_source_does_not_expand_references_inside_values() -> None:
    """A value is inserted once (percent-encoded in a URL): a value that looks like a
    reference is not read again."""
    out = resolve_source("rtsp://a:${CAM_PW}@h/s", {"CAM_PW": "${file:/etc/hostname}"})
    assert out == "rtsp://a:%24%7Bfile%3A%2Fetc%2Fhostname%7D@h/s"


def test_a_value_with_url_characters_is_percent_encoded_in_a_url() -> None:
    out = resolve_source("rtsp://admin:${CAM_PW}@10.0.0.5/s", {"CAM_PW": "p@ss/w:rd"})
    assert out == "rtsp://admin:p%40ss%2Fw%3Ard@10.0.0.5/s"


@pytest.mark.parametrize(
    "source",
    [
        " rtsp://admin:hunter2@h/s",
        "rtsp://admin:hun ter2@h/s",
        "rtsp://h/s?user=admin&password=hunter2",
        "rtsp://admin:${CAM_PW}x@h/s",
    ],
)
def test_more_ways_of_writing_a_password_are_refused(source: str) -> None:
    problem = source_problem(source)
    assert problem is not None and "hunter2" not in problem


@pytest.mark.parametrize(
    ("source", "why"),
    [
        # a reference where logs do not redact it: the value could be sent anywhere
        ("http://attacker.example/x.mjpg?a=${CAM_PW}", "only for the password"),
        ("rtsp://h/${CAM_PW}/s", "only for the password"),
        # the worker's own secrets are out of reach
        ("rtsp://a:${ARGUS_S3_SECRET_KEY}@h/s", "starting with CAM_"),
        ("rtsp://a:${PW}@h/s", "starting with CAM_"),
        ("rtsp://a:${file:etc/passwd}@h/s", "absolute path"),
        ("rtsp://a:${file:/run/secrets/../../etc/shadow}@h/s", "absolute path"),
    ],
)
def test_references_stand_only_for_secrets_and_reach_only_camera_secrets(
    source: str, why: str
) -> None:
    problem = source_problem(source)
    assert problem is not None and why in problem
    with pytest.raises(SecretError) if "${CAM_PW}" not in source else contextlib.nullcontext():
        resolve_source(source, {"CAM_PW": "x", "ARGUS_S3_SECRET_KEY": "k", "PW": "p"})


def test_a_file_reference_outside_the_secret_folders_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text(PASSWORD)
    inside = tmp_path / "secrets"
    inside.mkdir()
    with pytest.raises(SecretError) as info:
        resolve_source(f"rtsp://a:${{file:{outside}}}@h/s", {}, allowed_dirs=[inside])
    assert "is not under" in str(info.value) and PASSWORD not in str(info.value)
    link = inside / "link"
    link.symlink_to(outside)  # a link out of the folder is followed, then refused
    with pytest.raises(SecretError):
        resolve_source(f"rtsp://a:${{file:{link}}}@h/s", {}, allowed_dirs=[inside])


def test_an_unset_variable_raises_naming_it_without_values() -> None:
    env = {"CAM_OTHER": PASSWORD}
    with pytest.raises(SecretError) as info:
        resolve_source("rtsp://a:${CAM_OTHER}@h/s?token=${CAM_MISSING_PW}", env)
    assert "CAM_MISSING_PW" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_an_unreadable_file_raises_naming_it_without_values(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env = {"CAM_PW": PASSWORD}
    with pytest.raises(SecretError) as info:
        resolve_source(
            f"rtsp://a:${{CAM_PW}}@h/s?token=${{file:{missing}}}", env, allowed_dirs=[tmp_path]
        )
    assert str(missing) in str(info.value)
    assert PASSWORD not in str(info.value)
    with pytest.raises(SecretError):  # a directory
        resolve_source(f"rtsp://a:${{file:{tmp_path}}}@h/s", {}, allowed_dirs=[tmp_path])


@pytest.mark.parametrize("updated_at", [float("nan"), 1e308, -1.0, True, "now"])
def test_an_impossible_publication_time_is_refused(updated_at: object) -> None:
    value = {"camera": {"id": "c1", "source": "rtsp://h/s"}, "rules": [], "updated_at": updated_at}
    with pytest.raises(ConfigError) as info:
        parse_definition("camera/c1", value)
    assert any("updated_at" in p for p in info.value.problems)


# --------------------------------------------------------------------------- partition_of


class OneTopic:
    """The cluster metadata kafka-python's partitioner reads, for one topic."""

    def __init__(self, partitions: int) -> None:
        self.n = partitions

    def topics(self) -> set[str]:
        return {"argus.fleet"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def kafka_places(camera_id: str, partitions: int) -> int:
    key = camera_key(camera_id).encode("utf-8")
    placed = DefaultPartitioner().partition(
        "argus.fleet", camera_key(camera_id), key, None, None, OneTopic(partitions)
    )
    assert isinstance(placed, int)
    return placed


IDS = [f"cam-{i}" for i in range(300)] + ["a", "Z", "gate.north_1", "9" * 64, "x-y_z.0"]


@pytest.mark.parametrize("partitions", [1, 2, 3, 7, 12, 64, 100, 1000])
def test_partition_of_is_where_kafka_puts_the_key(partitions: int) -> None:
    ours = [partition_of(cid, partitions) for cid in IDS]
    assert ours == [kafka_places(cid, partitions) for cid in IDS]
    assert all(0 <= p < partitions for p in ours)
    if partitions >= 7:
        assert len(set(ours)) > 1, "the ids must spread"


def test_partition_of_refuses_no_partitions() -> None:
    with pytest.raises(ValueError):
        partition_of("gate", 0)


# --------------------------------------------------------------------------- FleetView


def test_a_valid_definition_is_stored() -> None:
    view = FleetView(8)
    assert view.apply("camera/gate", value()) is True
    assert view.definitions() == {"gate": parse_definition("camera/gate", value())}
    assert view.refused() == {}


def test_a_refused_update_keeps_the_previous_definition_and_says_why() -> None:
    view = FleetView(8)
    view.apply("camera/gate", value())
    good = view.definitions()["gate"]
    rules = [{"type": "intrusion", "camera": "gate", "zone": "nowhere", "classes": ["person"]}]
    assert view.apply("camera/gate", value(rules=rules)) is False
    assert view.definitions() == {"gate": good}
    reasons = view.refused()["gate"]
    assert any("nowhere" in r for r in reasons), reasons

    assert view.apply("camera/gate", value(model="yolo")) is True  # fixed: in force
    assert view.definitions()["gate"].model == "yolo"
    assert view.refused() == {}


def test_a_refused_new_camera_is_not_run() -> None:
    view = FleetView(8)
    assert view.apply("camera/gate", value(model=7)) is False
    assert view.definitions() == {}
    assert "gate" in view.refused()


def test_a_refusal_is_logged_without_the_source(caplog: pytest.LogCaptureFixture) -> None:
    view = FleetView(8)
    cam = {"id": "gate", "source": f"rtsp://admin:{PASSWORD}@10.0.0.5/s"}
    with caplog.at_level(logging.INFO, logger="argus.fleet"):
        assert view.apply("camera/gate", value(camera=cam, rules=[])) is False
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r for r in view.refused()["gate"])


def test_a_tombstone_removes_the_camera_and_its_refusal() -> None:
    view = FleetView(8)
    view.apply("camera/gate", value())
    view.apply("camera/gate", value(model=7))
    assert view.definitions() and view.refused()
    assert view.apply("camera/gate", None) is True
    assert view.definitions() == {} and view.refused() == {}
    assert view.apply("camera/gate", None) is False, "nothing left to remove"

    view.apply("camera/door", value("door", model=7))
    view.apply("camera/door", None)
    assert view.refused() == {}, "a tombstone clears a refusal alone too"


def test_an_unknown_key_is_ignored() -> None:
    view = FleetView(8)
    view.apply("camera/gate", value())
    before = (view.definitions(), view.refused(), view.version, view.placement_digest())
    for key in ("rules", "demand/gate", "suppression/1", 42, None):
        assert view.apply(key, value()) is False  # type: ignore[arg-type]
        assert view.apply(key, None) is False  # type: ignore[arg-type]
    assert (view.definitions(), view.refused(), view.version, view.placement_digest()) == before


def test_the_view_is_a_callable_and_loads_many() -> None:
    view = FleetView(8)
    view("camera/a", value("a"))
    view.load({"camera/b": value("b"), "camera/c": value("c", model=3), "other": {}})
    assert sorted(view.definitions()) == ["a", "b"]
    assert sorted(view.refused()) == ["c"]
    with pytest.raises(ValueError):
        FleetView(0)


def test_by_partition_groups_cameras_as_kafka_places_them() -> None:
    view = FleetView(3)
    ids = [f"cam{i}" for i in range(12)]
    for cid in reversed(ids):
        view.apply(camera_key(cid), value(cid))
    groups = view.by_partition()
    assert sorted(d.camera_id for defs in groups.values() for d in defs) == sorted(ids)
    assert any(len(defs) > 1 for defs in groups.values()), "12 ids in 3 partitions share"
    for p, defs in groups.items():
        assert defs, "only partitions that hold cameras"
        assert [d.camera_id for d in defs] == sorted(d.camera_id for d in defs)
        assert all(kafka_places(d.camera_id, 3) == p for d in defs)


def test_a_record_read_from_a_partition_is_placed_there() -> None:
    view = FleetView(8)
    default = partition_of("gate", 8)
    elsewhere = (default + 3) % 8
    assert view.apply("camera/gate", value(), elsewhere) is True
    assert view.partition("gate") == elsewhere
    assert {p: [d.camera_id for d in defs] for p, defs in view.by_partition().items()} == {
        elsewhere: ["gate"]
    }
    assert view.apply("camera/gate", None) is False, "no copy where the key would hash"
    assert "gate" in view.definitions()
    assert view.apply("camera/gate", None, elsewhere) is True
    assert view.definitions() == {} and view.partition("gate") is None


def test_of_two_copies_the_newer_is_in_force_and_the_older_is_stale() -> None:
    view = FleetView(8)
    view.apply("camera/gate", value(updated_at=200.0, model="new"), 5)
    view.apply("camera/gate", value(updated_at=100.0, model="old"), 2)
    assert view.definitions()["gate"].model == "new"
    assert view.partition("gate") == 5 and view.stale_copies("gate") == [2]
    assert [d.camera_id for d in view.by_partition()[5]] == ["gate"]
    assert 2 not in view.by_partition(), "a camera is placed once"

    view.apply("camera/gate", value(updated_at=200.0, model="tie"), 1)
    assert view.partition("gate") == 1, "a tie: the lower partition"
    assert view.stale_copies("gate") == [2, 5]

    view.apply("camera/gate", None, 1)
    assert view.definitions()["gate"].model == "new", "the other copies stay"
    view.apply("camera/gate", None, 5)
    view.apply("camera/gate", None, 2)
    assert view.definitions() == {} and view.stale_copies("gate") == []


def test_place_keeps_a_camera_where_it_is_and_spreads_new_ones() -> None:
    view = FleetView(4)
    view.apply("camera/gate", value(), 0)
    view.apply("camera/door", value("door"), 2)
    assert view.place("gate") == 0
    assert view.place("yard") == 1, "the lowest empty partition"
    assert view.place("yard", taken=[1]) == 3
    assert view.place("yard", taken=[1, 3]) == 0, "all hold one: the lowest"


def digest_after(view: FleetView, key: str, val: Any) -> str:
    view.apply(key, val)
    return view.placement_digest()


def test_placement_digest_changes_only_with_placement() -> None:
    view = FleetView(16)
    view.apply("camera/gate", value())
    view.apply("camera/door", value("door"))
    base = view.placement_digest()
    assert view.placement_digest() == base, "stable"

    moved = value()
    moved["camera"] = copy.deepcopy(moved["camera"])
    moved["camera"]["zones"] = [{"name": "z", "polygon": [[5, 5], [90, 5], [90, 90], [5, 90]]}]
    assert digest_after(view, "camera/gate", moved) == base, "a zone polygon is not placement"
    dwell = value(rules=[{**value()["rules"][0], "min_dwell_s": 4.0}])
    assert digest_after(view, "camera/gate", dwell) == base, "min_dwell_s is not placement"
    applied = view.definitions()["gate"].rules[0].model_dump()
    assert applied["min_dwell_s"] == 4.0, "but it is applied"
    assert digest_after(view, "camera/gate", value(updated_at=5.0)) == base
    source = value(
        camera={"id": "gate", "source": "rtsp://cam/y", "zones": moved["camera"]["zones"]}
    )
    assert digest_after(view, "camera/gate", source) == base, "a new source is not placement"
    assert digest_after(view, "camera/gate", value(model=9)) == base, "a refused update"
    assert digest_after(view, "nothing", value()) == base

    with_model = digest_after(view, "camera/gate", value(model="other"))
    assert with_model != base, "a model"
    assert digest_after(view, "camera/gate", value()) == base, "model back"

    car = value(rules=[{**value()["rules"][0], "classes": ["person", "car"]}])
    with_car = digest_after(view, "camera/gate", car)
    assert with_car not in (base, with_model), "a rule's classes"
    assert digest_after(view, "camera/gate", value()) == base

    added = digest_after(view, "camera/yard", value("yard"))
    assert added != base, "a camera added"
    assert digest_after(view, "camera/yard", None) == base, "and removed"
    assert digest_after(view, "camera/door", None) != base, "a camera removed"


def test_placement_digest_depends_on_the_partition_count() -> None:
    a, b = FleetView(3), FleetView(64)
    for view in (a, b):
        for i in range(6):
            view.apply(camera_key(f"cam{i}"), value(f"cam{i}"))
    assert a.placement_digest() != b.placement_digest()


# --------------------------------------------------------------------------- definitions_of


def site(source_b: str = "rtsp://cam/b") -> Any:
    return parse_config(
        {
            "cameras": [
                {"id": "a", "source": "rtsp://cam/a", "zones": [{"name": "z", "polygon": SQUARE}]},
                {"id": "b", "source": source_b, "zones": [{"name": "y", "polygon": SQUARE}]},
                {"id": "c", "source": "rtsp://cam/c"},
            ],
            "rules": [
                {"type": "intrusion", "camera": "b", "zone": "y", "classes": ["car"]},
                {"type": "intrusion", "camera": "a", "zone": "z", "classes": ["person"]},
                {"type": "loitering", "camera": "b", "zone": "y", "classes": ["person"]},
            ],
        }
    )


def test_definitions_of_gives_each_camera_its_own_rules_only() -> None:
    defs = {d.camera_id: d for d in definitions_of(site(), model="yolo")}
    assert sorted(defs) == ["a", "b", "c"]
    assert [r.camera for r in defs["a"].rules] == ["a"]
    kinds = [(r.camera, r.model_dump()["type"]) for r in defs["b"].rules]
    assert kinds == [("b", "intrusion"), ("b", "loitering")]
    assert defs["c"].rules == ()
    assert classes_named(defs["b"].rules) == ("car", "person")
    assert all(d.model == "yolo" and d.updated_at > 0 for d in defs.values())
    for d in defs.values():  # each is a definition the fleet accepts as published
        assert parse_definition(d.key, d.to_value()) == d


def test_definitions_of_refuses_a_site_with_a_password_in_a_source() -> None:
    with pytest.raises(ConfigError) as info:
        definitions_of(site(f"rtsp://admin:{PASSWORD}@10.0.0.7/s"))
    assert any(p.startswith("cameras.1.source") for p in info.value.problems)
    assert PASSWORD not in str(info.value)


def test_the_evidence_stream_is_checked_as_the_source_is() -> None:
    cam = {
        "id": "gate",
        "source": "rtsp://admin:${CAM_GATE_PW}@10.0.0.5/sub",
        "evidence_source": f"rtsp://admin:{PASSWORD}@10.0.0.5/main",
        "zones": [{"name": "z", "polygon": SQUARE}],
    }
    e = refused("camera/gate", value(camera=cam))
    assert [p.split(":")[0] for p in e.problems] == ["camera.evidence_source"]
    assert PASSWORD not in str(e)
    cam["evidence_source"] = "rtsp://admin:${CAM_GATE_PW}@10.0.0.5/main"
    d = parse_definition("camera/gate", value(camera=cam))
    assert d.camera.evidence_source == cam["evidence_source"]
