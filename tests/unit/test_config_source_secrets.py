"""A config file camera's source may name its password as ``${CAM_...}`` (or
``${file:/run/secrets/...}``), as a fleet camera's does: resolved when the pipeline is
built (the service's EnvironmentFile holds it), never written in the file; an unset one is
a config error that names the variable, never a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from argus import app
from argus.config import ConfigError, parse_config

pytestmark = pytest.mark.unit


class OpenedError(Exception):
    """Raised by the fake ``open_source`` with the URL the pipeline would open."""


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """The URL ``build_pipeline`` opens for a one-camera config with ``source``."""

    class Spec:
        class_names = ("person",)

    def open_source(camera_id: str, url: str, **kw: Any) -> Any:
        raise OpenedError(url)

    monkeypatch.setattr(app, "build_detector", lambda *a, **k: (object(), Spec()))
    monkeypatch.setattr(app, "open_source", open_source)
    cfg = parse_config(
        {
            "cameras": [{"id": "gate-1", "source": source}],
            "storage": {"sqlite": str(tmp_path / "a.db"), "evidence_dir": str(tmp_path / "e")},
            "evidence": {"clips": {"enabled": False}},
        },
        "edge.yaml",
    )
    with pytest.raises(OpenedError) as opened:
        app.build_pipeline(cfg, home=tmp_path, source="edge.yaml")
    return str(opened.value)


def test_a_password_named_by_the_environment_is_put_in_when_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_GATE_PASSWORD", "p@ss/word")
    url = build(tmp_path, monkeypatch, "rtsp://admin:${CAM_GATE_PASSWORD}@10.0.0.5/102")
    assert url == "rtsp://admin:p%40ss%2Fword@10.0.0.5/102"


def test_a_source_without_references_is_opened_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build(tmp_path, monkeypatch, "rtsp://10.0.0.5/102") == "rtsp://10.0.0.5/102"


def test_an_unset_variable_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAM_GATE_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as e:
        build(tmp_path, monkeypatch, "rtsp://admin:${CAM_GATE_PASSWORD}@10.0.0.5/102")
    assert "cameras.gate-1.source" in str(e.value) and "CAM_GATE_PASSWORD" in str(e.value)


def test_an_evidence_stream_is_resolved_and_an_unset_variable_named_as_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evidence stream's reference is resolved as the source's; the error names the
    setting (``evidence_source``), never a value."""

    class Spec:
        class_names = ("person",)

    class Clips:  # clips on: the evidence stream is only opened for them
        def people(self, image: Any) -> Any:
            raise AssertionError("not called")

    def attach(self: Any, url: str, kind: str, ring: Any) -> None:
        raise OpenedError(url)

    monkeypatch.setattr(app, "build_detector", lambda *a, **k: (object(), Spec()))
    monkeypatch.setattr(app, "clip_maker", lambda *a, **k: Clips())
    monkeypatch.setattr(app.LiveSource, "attach_evidence", attach)
    monkeypatch.setenv("CAM_GATE_PASSWORD", "p@ss")
    cfg = parse_config(
        {
            "cameras": [
                {
                    "id": "gate-1",
                    "source": "rtsp://admin:${CAM_GATE_PASSWORD}@10.0.0.5/102",
                    "evidence_source": "rtsp://admin:${CAM_GATE_MAIN}@10.0.0.5/101",
                }
            ],
            "storage": {"sqlite": str(tmp_path / "a.db"), "evidence_dir": str(tmp_path / "e")},
        },
        "edge.yaml",
    )
    monkeypatch.delenv("CAM_GATE_MAIN", raising=False)
    with pytest.raises(ConfigError) as e:
        app.build_pipeline(cfg, home=tmp_path, source="edge.yaml")
    assert "cameras.gate-1.evidence_source: " in str(e.value) and "CAM_GATE_MAIN" in str(e.value)
    assert "p@ss" not in str(e.value)
    monkeypatch.setenv("CAM_GATE_MAIN", "m@in")
    with pytest.raises(OpenedError) as opened:
        app.build_pipeline(cfg, home=tmp_path, source="edge.yaml")
    assert str(opened.value) == "rtsp://admin:m%40in@10.0.0.5/101"


@pytest.mark.parametrize(
    ("camera", "problem"),
    [
        ({"source": "plaza.mp4"}, "needs a network camera as source"),
        ({"source": "device:0"}, "needs a network camera as source"),
        ({"evidence_source": "/footage/main.mp4"}, "must be a network stream"),
        ({"evidence_source": "rtsp://10.0.0.5/102"}, "names the analysed stream again"),
    ],
)
def test_an_evidence_stream_needs_two_network_streams(camera: dict[str, str], problem: str) -> None:
    cam = {
        "id": "gate-1",
        "source": "rtsp://10.0.0.5/102",
        "evidence_source": "rtsp://10.0.0.5/101",
    }
    with pytest.raises(ConfigError) as e:
        parse_config({"cameras": [{**cam, **camera}]}, "site.yaml")
    assert problem in str(e.value)
