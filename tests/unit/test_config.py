"""Config validation: the issue's config is accepted as written; bad input is refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus.config import ConfigError, load_config

pytestmark = pytest.mark.unit

ISSUE_CONFIG = """\
cameras:
  - id: plaza
    source: /usr/share/doc/opencv-doc/examples/data/vtest.avi
    realtime: false
    zones:
      - name: crossing
        polygon: [[330,180],[560,180],[640,330],[380,330]]
rules:
  - type: intrusion
    camera: plaza
    zone: crossing
    classes: [person]
    min_dwell_s: 0.5
sinks:
  - jsonl: /tmp/argus-events.jsonl
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "argus.yaml"
    p.write_text(text)
    return p


def test_issue_config_is_accepted_as_written(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_CONFIG))
    cam = cfg.cameras[0]
    assert cam.id == "plaza" and cam.realtime is False
    assert cam.zones[0].polygon[2] == (640, 330)
    rule = cfg.rules[0]
    assert rule.type == "intrusion" and rule.min_dwell_s == 0.5 and rule.classes == ["person"]
    assert rule.rule_id == "intrusion:crossing"
    assert str(cfg.sinks[0].jsonl) == "/tmp/argus-events.jsonl"
    assert cfg.detector.model == "nanodet-g"


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    msg = str(info.value)
    assert str(tmp_path / "argus.yaml") in msg, "the error must name the file"
    return msg


def test_unknown_key_is_refused_with_its_path(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("realtime: false", "realtime: false\n    fps: 5"))
    assert "cameras.0.fps" in msg and "unknown key" in msg


def test_unknown_key_inside_a_rule(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("min_dwell_s: 0.5", "min_dwell: 0.5"))
    assert "rules.0.min_dwell" in msg and "unknown key" in msg
    assert "intrusion." not in msg.split("rules.0")[1][:12]


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("min_dwell_s: 0.5", "min_dwell_s: soon"))
    assert "rules.0.min_dwell_s" in msg and "soon" in msg


def test_negative_dwell_is_refused(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("min_dwell_s: 0.5", "min_dwell_s: -1"))
    assert "rules.0.min_dwell_s" in msg


def test_rule_naming_missing_zone(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("zone: crossing", "zone: lawn"))
    assert "rules.0.zone" in msg and "'lawn'" in msg and "crossing" in msg


def test_rule_naming_missing_camera(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("camera: plaza", "camera: gate"))
    assert "rules.0.camera" in msg and "'gate'" in msg


def test_unknown_rule_type(tmp_path: Path) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG.replace("type: intrusion", "type: teleport"))
    assert "rules.0" in msg and "teleport" in msg


def test_polygon_needs_three_points(tmp_path: Path) -> None:
    bad = ISSUE_CONFIG.replace("[[330,180],[560,180],[640,330],[380,330]]", "[[0,0],[1,1]]")
    assert "cameras.0.zones.0.polygon" in problems(tmp_path, bad)


def test_duplicate_camera_ids(tmp_path: Path) -> None:
    text = ISSUE_CONFIG.replace("rules:", "  - id: plaza\n    source: other.avi\nrules:")
    assert "repeated" in problems(tmp_path, text)


def test_camera_id_must_be_a_safe_name(tmp_path: Path) -> None:
    assert "cameras.0.id" in problems(tmp_path, ISSUE_CONFIG.replace("id: plaza", "id: ../etc"))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid YAML" in problems(tmp_path, "cameras: [\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "mapping" in problems(tmp_path, "- 1\n- 2\n")


def test_self_intersecting_zone_is_refused_at_load(tmp_path: Path) -> None:
    bowtie = ISSUE_CONFIG.replace(
        "[[330,180],[560,180],[640,330],[380,330]]", "[[0,0],[100,100],[100,0],[0,100]]"
    )
    msg = problems(tmp_path, bowtie)
    assert "cameras.0.zones.0" in msg and "intersects itself" in msg


def test_settings_a_stage_would_refuse_are_refused_at_load(tmp_path: Path) -> None:
    """What `argus check` accepts, `argus run` accepts: inter-field bounds are checked here."""
    msg = problems(tmp_path, ISSUE_CONFIG + "tracker: {high_thresh: 0.7}\n")
    assert "tracker" in msg and "new_track_thresh" in msg
    bad_reconnect = ISSUE_CONFIG.replace(
        "realtime: false", "realtime: false\n    reconnect: {initial_s: 40, max_s: 30}"
    )
    assert "cameras.0.reconnect" in problems(tmp_path, bad_reconnect)


def test_kafka_bus_and_s3_evidence_sections(tmp_path: Path) -> None:
    text = ISSUE_CONFIG + (
        "bus: {kafka: {bootstrap: '127.0.0.1:9092', topic: argus.events, idempotent: false}}\n"
        "evidence: {s3: {endpoint: '127.0.0.1:9000', bucket: argus-evidence,"
        " secret_key: hunter2hunter2}}\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.bus.kafka is not None and cfg.bus.kafka.idempotent is False
    assert cfg.evidence.s3 is not None and cfg.evidence.s3.bucket == "argus-evidence"
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg.model_dump())
    assert "bus.kafka.bootstrap" in problems(tmp_path, ISSUE_CONFIG + "bus: {kafka: {}}\n")


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("argus.lan:8000", "no port"),
        ("[::1]:8000", "no port"),
        ("https://argus.lan", "without scheme"),
        ("argus.lan/ops", "without scheme or path"),
        ("two words", "not a host name"),
    ],
)
def test_allowed_hosts_entries_that_could_never_match_are_refused(
    tmp_path: Path, entry: str, why: str
) -> None:
    msg = problems(tmp_path, ISSUE_CONFIG + f"api:\n  allowed_hosts: ['{entry}']\n")
    assert "api.allowed_hosts" in msg and why in msg


def test_allowed_hosts_names_addresses_and_wildcards(tmp_path: Path) -> None:
    hosts = ["argus.city.example", "*.cctv.example", "10.0.0.5", "::1", "[fe80::1]", "*"]
    cfg = load_config(write(tmp_path, ISSUE_CONFIG + f"api:\n  allowed_hosts: {hosts}\n"))
    assert cfg.api.allowed_hosts == hosts
