"""``argus service install``: the systemd unit it renders and how it installs it.

The unit is read back with a parser of systemd's format (sections, repeated keys) and, where
the machine has it, checked by ``systemd-analyze verify`` (which needs no running systemd).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from argus.cli import build_parser, main
from argus.site.service import (
    STOP_TIMEOUT_S,
    ServiceError,
    UnitSpec,
    check_config,
    command,
    install_unit,
    render_unit,
)

pytestmark = pytest.mark.unit


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values, in order (systemd lets a key repeat, e.g. Environment)."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"a setting outside any section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep and key.strip() == key and key, f"not KEY=VALUE: {line!r}"
        section.setdefault(key, []).append(value)
    return out


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"{section}.{key}: {values}"
    return values[0]


def write_cfg(tmp: Path, **extra: object) -> Path:
    data: dict[str, object] = {
        "cameras": [{"id": "gate", "source": "rtsp://admin:${CAM_GATE_PW}@10.0.0.5/main"}],
        "rules": [],
    }
    data.update(extra)
    path = tmp / "argus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def spec_for(tmp: Path, **kw: object) -> UnitSpec:
    args: dict[str, object] = {"config": write_cfg(tmp), "home": Path("/var/lib/argus")}
    args.update(kw)
    return UnitSpec(**args)  # type: ignore[arg-type]


def test_the_unit_runs_the_pipeline_under_a_watchdog(tmp_path: Path) -> None:
    spec = spec_for(tmp_path)
    unit = parse_unit(render_unit(spec))
    svc = unit["Service"]
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "ExecStart").split() == command(spec)
    assert command(spec)[1:] == ["-m", "argus", "run", str(spec.config)]
    assert one(unit, "Service", "Restart") == "always"
    assert 1 <= int(one(unit, "Service", "RestartSec")) <= 60
    assert one(unit, "Service", "WatchdogSec") == "30"
    assert int(one(unit, "Unit", "StartLimitBurst")) >= 3
    assert int(one(unit, "Unit", "StartLimitIntervalSec")) > 0
    assert one(unit, "Service", "User") == "argus" and one(unit, "Service", "Group") == "argus"
    assert "ARGUS_HOME=/var/lib/argus" in svc["Environment"]
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/argus/argus.env"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert "/var/lib/argus" in one(unit, "Service", "ReadWritePaths").split()
    assert one(unit, "Service", "PrivateTmp") == "yes"
    assert "PrivateDevices" not in svc and "MemoryDenyWriteExecute" not in svc
    assert "MemoryMax" not in svc and "CPUQuota" not in svc  # bounds only when asked
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")


def test_stop_timeout_covers_the_graceful_stop() -> None:
    from argus.app import CLIP_STOP_S, CLOSE_FLUSH_S
    from argus.runner import COMPLETE_FLUSH_S

    decoders_joined_s, kafka_close_s = 5.0, 2.0
    graceful = decoders_joined_s + COMPLETE_FLUSH_S + CLIP_STOP_S + 2 * CLOSE_FLUSH_S
    assert graceful + kafka_close_s < STOP_TIMEOUT_S


def test_bounds_watchdog_and_worker(tmp_path: Path) -> None:
    cfg = tmp_path / "worker.yaml"
    spec = spec_for(
        tmp_path,
        config=cfg,
        worker=True,
        name="north",
        memory_max="1500M",
        cpu_quota=150.0,
        watchdog_s=0,
        user="cctv",
        group="video",
    )
    unit = parse_unit(render_unit(spec))
    assert spec.unit_name == "argus-north.service"
    assert one(unit, "Service", "ExecStart").split()[1:] == [
        "-m",
        "argus",
        "worker",
        "--config",
        str(cfg),
    ]
    assert one(unit, "Service", "MemoryMax") == "1500M"
    assert one(unit, "Service", "CPUQuota") == "150%"
    assert "WatchdogSec" not in unit["Service"]
    assert (one(unit, "Service", "User"), one(unit, "Service", "Group")) == ("cctv", "video")


def test_the_started_command_is_one_the_cli_takes(tmp_path: Path) -> None:
    for worker in (False, True):
        args = build_parser().parse_args(command(spec_for(tmp_path, worker=worker))[3:])
        assert args.cmd == ("worker" if worker else "run")


def test_specifiers_and_variables_are_escaped(tmp_path: Path) -> None:
    d = tmp_path / "100%$HOME"
    d.mkdir()
    spec = spec_for(tmp_path, config=write_cfg(d))
    exec_start = one(parse_unit(render_unit(spec)), "Service", "ExecStart")
    assert "100%%$$HOME/argus.yaml" in exec_start


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user": "Root User"}, "not a valid user"),
        ({"home": Path("relative/home")}, "absolute"),
        ({"home": Path("/var/lib/my argus")}, "spaces"),
        ({"watchdog_s": 5.0}, "watchdog 5 s"),
        ({"memory_max": "lots"}, "memory bound 'lots'"),
        ({"name": "a/b"}, "service name 'a/b'"),
    ],
)
def test_bad_values_are_refused_by_name(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ServiceError, match=message):
        render_unit(spec_for(tmp_path, **change))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, memory_max="2G", cpu_quota=150.0, writable=(Path("/srv/out"),))
    for text, name in ((render_unit(spec), "argus.service"),):
        path = tmp_path / name
        path.write_text(text)
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # verify exits 0 even on settings it ignores: every complaint names the file
        complaints = [ln for ln in done.stderr.splitlines() if name in ln]
        assert done.returncode == 0 and not complaints, done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(render_unit(spec).replace("Type=notify", "Type=notifyy"))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "broken.service" in done.stderr, "the check above would not see a bad setting"


# ------------------------------------------------------------------ the config


def test_check_config_reads_outputs_and_secrets(tmp_path: Path) -> None:
    cfg = write_cfg(
        tmp_path,
        sinks=[{"jsonl": "/srv/argus/events.jsonl"}, {"jsonl": "logs/events.jsonl"}],
        storage={"sqlite": "/var/lib/argus/alerts.db", "evidence_dir": "/srv/evidence"},
    )
    checked = check_config(cfg, worker=False, home=Path("/var/lib/argus"))
    assert checked.path == cfg
    # relative paths and those under the home are writable already
    assert checked.writable == (Path("/srv/argus"), Path("/srv/evidence"))
    assert checked.secrets == ("CAM_GATE_PW",)
    assert not checked.video_group and checked.model == "nanodet-g"
    unit = parse_unit(render_unit(spec_for(tmp_path, writable=checked.writable)))
    assert one(unit, "Service", "ReadWritePaths").split() == [
        "/var/lib/argus",
        "-/srv/argus",
        "-/srv/evidence",
    ]


def test_check_config_refuses_bad_configs(tmp_path: Path) -> None:
    home = Path("/var/lib/argus")
    with pytest.raises(ServiceError, match="file not found"):
        check_config(tmp_path / "missing.yaml", worker=False, home=home)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [{id: gate}]\n")
    with pytest.raises(ServiceError, match="source"):
        check_config(bad, worker=False, home=home)
    empty = tmp_path / "empty.yaml"
    empty.write_text("cameras: []\n")
    with pytest.raises(ServiceError, match="at least one camera"):
        check_config(empty, worker=False, home=home)
    # valid for `argus check` (an alert service of a fleet), but `argus run` refuses it
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("fleet: {}\nbus: {kafka: {bootstrap: '127.0.0.1:9092'}}\n")
    with pytest.raises(ServiceError, match="--worker"):
        check_config(fleet, worker=False, home=home)
    with pytest.raises(ServiceError, match="fleet"):  # not a worker's config
        check_config(write_cfg(tmp_path), worker=True, home=home)


# ------------------------------------------------------------------ installing


def test_install_writes_keeps_refuses_and_forces(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    first = install_unit("A\n", units, "argus.service")
    assert first.changed and (units / "argus.service").read_text() == "A\n"
    assert (units / "argus.service").stat().st_mode & 0o777 == 0o644
    assert not install_unit("A\n", units, "argus.service").changed
    with pytest.raises(ServiceError, match="--force"):
        install_unit("B\n", units, "argus.service")
    assert (units / "argus.service").read_text() == "A\n"
    assert install_unit("B\n", units, "argus.service", force=True).changed
    assert (units / "argus.service").read_text() == "B\n"
    assert sorted(p.name for p in units.iterdir()) == ["argus.service"]  # no temp left


def test_install_into_a_missing_or_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="does not exist"):
        install_unit("A\n", tmp_path / "nowhere", "argus.service")
    with pytest.raises(ServiceError, match=r"cannot write /proc/argus\.service"):
        install_unit("A\n", Path("/proc"), "argus.service")


def test_cli_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_cfg(tmp_path)
    units = tmp_path / "units"
    units.mkdir()
    base = ["service", "install", "--config", str(cfg), "--unit-dir", str(units)]
    base += ["--home", "/var/lib/argus"]
    assert main([*base, "--print"]) == 0
    printed = capsys.readouterr().out
    assert "Type=notify" in printed and not list(units.iterdir())
    assert main(base) == 0
    out = capsys.readouterr().out
    assert (units / "argus.service").read_text() == printed
    assert "systemctl daemon-reload && systemctl enable --now argus.service" in out
    assert "CAM_GATE_PW=..." in out
    assert main([*base, "--watchdog-s", "60"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*base, "--watchdog-s", "60", "--force"]) == 0
    assert "WatchdogSec=60" in (units / "argus.service").read_text()
    assert main([*base, "--watchdog-s", "5"]) == 2
    assert "watchdog 5 s" in capsys.readouterr().err
    assert main([*base, "--cpu-quota", "-3"]) == 2
    assert "CPU quota" in capsys.readouterr().err
    assert main(["service", "install", "--config", str(tmp_path / "nope.yaml"), "--print"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main([*base, "--name", "x", "--unit-dir", str(tmp_path / "gone")]) == 2
    assert "does not exist" in capsys.readouterr().err
