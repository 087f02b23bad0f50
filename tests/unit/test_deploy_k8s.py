"""deploy/k8s: the kustomize overlays render, their objects are valid Kubernetes, and what they
run is what Argus offers.

Offline only (no cluster here): ``kubectl kustomize`` renders each overlay, kubernetes-validate
checks every object against Kubernetes' own schemas (strict: unknown fields fail), and the
containers' arguments, files, ports, probes and secrets are checked against argus's CLI parser
and the configs the overlays mount, loaded with argus's own loaders.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from argus.cli import build_parser
from argus.config import ArgusConfig, WorkerConfig, load_config, load_worker_config

pytestmark = pytest.mark.unit

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CONFIGS = ROOT / "deploy" / "config"
OVERLAYS = ("alert-service", "cpu-workers", "gpu-workers", "site")
# Not an overlay of its own: the site overlay with GPU workers too, as its comment suggests.
MIXED = "mixed (every workload)"
WORKLOADS = ("alert-service", "worker", "worker-gpu")
# The oldest Kubernetes these manifests promise, and the newest whose schemas are installed.
K8S_VERSIONS = ("1.31", kubernetes_validate.latest_version())

# The Deployments (by name) each overlay must hold.
EXPECTED = {
    "alert-service": {"argus-alerts"},
    "cpu-workers": {"argus-worker"},
    "gpu-workers": {"argus-worker-gpu"},
    "site": {"argus-alerts", "argus-worker"},
    MIXED: {"argus-alerts", "argus-worker", "argus-worker-gpu"},
}
SECRETS = {"argus-secrets", "argus-camera-secrets"}
ARGUS_HOME = "/var/lib/argus"
# What the README tells the site to run once its cameras are in site.yaml.
FLEET_PUBLISH = "argus fleet publish /etc/argus/site.yaml --config /etc/argus/worker.yaml"


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not installed: these tests render deploy/k8s with `kubectl kustomize` "
            "(offline, no cluster needed); install kubectl >= 1.27"
        )
    return kubectl


def _render(directory: Path) -> list[Obj]:
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    objs = [o for o in yaml.safe_load_all(proc.stdout) if o]
    assert objs, f"{directory} rendered nothing"
    return objs


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    """Every overlay rendered, and one kustomization holding every workload at once (kustomize
    refuses absolute paths, so it names them relative to a temporary directory)."""
    out = {name: _render(K8S / "overlays" / name) for name in OVERLAYS}
    mixed = tmp_path_factory.mktemp("mixed")
    rel = Path(*[".."] * len(mixed.parts[1:])) / K8S.relative_to("/")
    resources = [rel / "base"] + [rel / "workloads" / w for w in WORKLOADS]
    (mixed / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": "argus", "resources": [str(r) for r in resources]})
    )
    out[MIXED] = _render(mixed)
    return out


def _named(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def _containers(pod: Obj) -> Iterator[Obj]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _deployments(renders: dict[str, list[Obj]]) -> Iterator[tuple[str, Obj, list[Obj]]]:
    for overlay, objs in renders.items():
        for dep in _named(objs, "Deployment").values():
            yield overlay, dep, objs


def _parse(args: list[str]) -> argparse.Namespace:
    """``args`` as the image's entrypoint hands them to ``argus``; SystemExit fails the test."""
    try:
        return build_parser().parse_args(args)
    except SystemExit as e:
        pytest.fail(f"argus {' '.join(args)}: refused by argus's CLI parser (exit {e.code})")


def _mounted_text(pod: Obj, container: Obj, path: str, objs: list[Obj]) -> str:
    """The content of file ``path`` in ``container``, from the ConfigMap mounted there."""
    target = PurePosixPath(path)
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if target == PurePosixPath(m["mountPath"])
        or PurePosixPath(m["mountPath"]) in target.parents
    ]
    assert mounts, f"{container['name']}: nothing is mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert "configMap" in volume, f"{container['name']}: {path} is not from a ConfigMap"
    key = str(target.relative_to(mount["mountPath"]))
    if mount.get("subPath"):
        key = str(PurePosixPath(mount["subPath"]) / key) if key != "." else mount["subPath"]
    items = volume["configMap"].get("items")
    if items is not None:  # only the listed keys, at their paths
        listed = {i["path"]: i["key"] for i in items}
        assert key in listed, f"{container['name']}: {path} is not among the volume's items"
        key = listed[key]
    cm_name = volume["configMap"]["name"]
    cm = _named(objs, "ConfigMap").get(cm_name)
    assert cm is not None, f"ConfigMap {cm_name} (mounted at {mount['mountPath']}) is not rendered"
    assert key in cm.get("data", {}), f"ConfigMap {cm_name} has no {key} for {path}"
    text: str = cm["data"][key]
    return text


def _argus_containers(
    renders: dict[str, list[Obj]],
) -> Iterator[tuple[str, Obj, Obj, argparse.Namespace, list[Obj]]]:
    """(overlay, pod spec, main container, parsed args, objects) of every argus container."""
    for overlay, dep, objs in _deployments(renders):
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            yield overlay, pod, c, _parse(c["args"]), objs


def _worker_config(text: str, tmp_path: Path) -> WorkerConfig:
    path = tmp_path / "worker.yaml"
    path.write_text(text, encoding="utf-8")
    return load_worker_config(path)


def _alerts_config(text: str, tmp_path: Path) -> ArgusConfig:
    path = tmp_path / "alerts.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _port(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"{container['name']}: no container port named {port!r}"
    value: int = named[0]
    return value


_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(q: str | int) -> float:
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?", str(q))
    assert m is not None, f"unexpected quantity {q!r}"
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_env(container: Obj, name: str) -> None:
    """``name`` comes from a required key of one of the Secrets the site creates."""
    entry = _env(container).get(name)
    assert entry is not None, f"{container['name']}: {name} is not in its environment"
    ref = entry.get("valueFrom", {}).get("secretKeyRef")
    assert ref is not None, f"{container['name']}: {name} must come from a Secret"
    assert ref["name"] in SECRETS and ref.get("optional") is False, ref


# 1. Rendering and 2. Kubernetes' schemas


@pytest.mark.parametrize("overlay", [*OVERLAYS, MIXED])
def test_overlay_renders_what_it_should(renders: dict[str, list[Obj]], overlay: str) -> None:
    objs = renders[overlay]
    assert set(_named(objs, "Deployment")) == EXPECTED[overlay]
    ids = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), f"duplicate objects: {ids}"
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "argus", (o["kind"], o["metadata"]["name"])
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argus", o["metadata"]
    # No secret value is shipped: the site creates the Secrets (README).
    assert not _named(objs, "Secret")
    assert _named(objs, "ServiceAccount")["argus"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_kubernetes(renders: dict[str, list[Obj]], version: str) -> None:
    problems = []
    for overlay, objs in renders.items():
        for o in objs:
            try:
                kubernetes_validate.validate(o, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in e.path)
                problems.append(
                    f"{overlay}: {o['kind']}/{o['metadata']['name']} at {where}: {e.message}"
                )
    assert not problems, "\n".join(problems)


# 3. What the containers run


def test_every_container_runs_an_argus_command_with_its_files(
    renders: dict[str, list[Obj]],
) -> None:
    seen = set()
    for overlay, dep, objs in _deployments(renders):
        pod = dep["spec"]["template"]["spec"]
        for c in _containers(pod):
            where = f"{overlay}: {dep['metadata']['name']}/{c['name']}"
            # The image's entrypoint (model pull, then `argus "$@"`) must run: args only.
            assert "command" not in c, f"{where}: set args, not command"
            assert re.fullmatch(r"argus:[0-9.]+(-gpu)?", c["image"]), f"{where}: {c['image']}"
            ns = _parse(c["args"])
            assert callable(getattr(ns, "fn", None)), f"{where}: {c['args']} runs nothing"
            seen.add(ns.cmd)
            config = getattr(ns, "config", None)
            if config is not None:
                assert _mounted_text(pod, c, config, objs), f"{where}: {config} is empty"
    assert {"worker", "alerts"} <= seen


def test_the_published_site_and_the_worker_config_are_in_the_alert_service(
    renders: dict[str, list[Obj]],
) -> None:
    """README: publish site.yaml from an alert-service pod, which mounts the whole config."""
    assert FLEET_PUBLISH in (K8S / "README.md").read_text(encoding="utf-8")
    ns = _parse(FLEET_PUBLISH.split()[1:])
    assert (ns.cmd, ns.fleet_cmd) == ("fleet", "publish")
    objs = renders["site"]
    pod = _named(objs, "Deployment")["argus-alerts"]["spec"]["template"]["spec"]
    alerts = pod["containers"][0]
    for path in (ns.site, ns.config):
        assert _mounted_text(pod, alerts, path, objs)


# 4. Probes on the real paths and ports


def test_probes_of_the_alert_service_are_its_real_endpoints(
    renders: dict[str, list[Obj]], tmp_path: Path
) -> None:
    checked = 0
    for _overlay, pod, c, ns, objs in _argus_containers(renders):
        if ns.cmd != "alerts":
            continue
        assert ns.alerts_cmd == "serve"
        cfg = _alerts_config(_mounted_text(pod, c, ns.config, objs), tmp_path)
        port = ns.port or cfg.api.port
        assert (ns.host or cfg.api.host) == "0.0.0.0", "probes reach the pod's address"
        assert _port(c, c["livenessProbe"]["httpGet"]["port"]) == port
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert _port(c, c["readinessProbe"]["httpGet"]["port"]) == port
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        if "startupProbe" in c:
            assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
            assert _port(c, c["startupProbe"]["httpGet"]["port"]) == port
        annotations = _named(objs, "Deployment")["argus-alerts"]["spec"]["template"]["metadata"]
        assert annotations["annotations"]["prometheus.io/port"] == str(port)
        # The Service reaches that port on these pods.
        svc = _named(objs, "Service")["argus-alerts"]
        labels = _named(objs, "Deployment")["argus-alerts"]["spec"]["template"]["metadata"]
        assert svc["spec"]["selector"].items() <= labels["labels"].items()
        assert [_port(c, p["targetPort"]) for p in svc["spec"]["ports"]] == [port]
        checked += 1
    assert checked == 3  # alert-service, site, mixed


def test_probes_of_the_workers_follow_their_mounted_config(
    renders: dict[str, list[Obj]], tmp_path: Path
) -> None:
    checked = 0
    for overlay, pod, c, ns, objs in _argus_containers(renders):
        if ns.cmd != "worker":
            continue
        cfg = _worker_config(_mounted_text(pod, c, ns.config, objs), tmp_path)
        port = cfg.metrics.port
        assert port is not None, f"{overlay}: metrics.port unset: the worker serves no probes"
        assert cfg.metrics.host == "0.0.0.0", f"{overlay}: probes reach the pod's address"
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            assert c[probe]["httpGet"]["path"] == path, (overlay, probe)
            assert _port(c, c[probe]["httpGet"]["port"]) == port, (overlay, probe)
        checked += 1
    assert checked == 5  # cpu, gpu, site, mixed (cpu and gpu)


# 5. Resources, disruption budgets, the GPU, security, secrets


def test_every_container_has_requests_within_limits(renders: dict[str, list[Obj]]) -> None:
    for overlay, dep, _objs in _deployments(renders):
        for c in _containers(dep["spec"]["template"]["spec"]):
            res = c.get("resources", {})
            for r in ("cpu", "memory"):
                req, lim = res.get("requests", {}).get(r), res.get("limits", {}).get(r)
                assert req and lim, f"{overlay}: {c['name']} lacks {r} request or limit"
                assert _quantity(req) <= _quantity(lim), (overlay, c["name"], r)


def test_every_deployment_has_one_disruption_budget(renders: dict[str, list[Obj]]) -> None:
    for overlay, dep, objs in _deployments(renders):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        pdbs = [
            p["metadata"]["name"]
            for p in _named(objs, "PodDisruptionBudget").values()
            if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        # Exactly one: a pod under two budgets cannot be evicted at all.
        assert len(pdbs) == 1, f"{overlay}: {dep['metadata']['name']} is under {pdbs}"


def test_workers_scale_by_replicas_and_hand_over_on_sigterm(
    renders: dict[str, list[Obj]],
) -> None:
    for _overlay, dep, _objs in _deployments(renders):
        spec = dep["spec"]
        assert spec["replicas"] >= 2
        if dep["metadata"]["name"].startswith("argus-worker"):
            assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_gpu_workers_ask_for_a_gpu_and_use_it(
    renders: dict[str, list[Obj]], tmp_path: Path
) -> None:
    for overlay, pod, c, ns, objs in _argus_containers(renders):
        if ns.cmd != "worker":
            continue
        gpus = int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
        cfg = _worker_config(_mounted_text(pod, c, ns.config, objs), tmp_path)
        if c["image"].endswith("-gpu"):
            assert gpus == 1, f"{overlay}: a GPU worker without nvidia.com/gpu"
            assert cfg.detector.providers in ("cuda", "tensorrt"), overlay
            tolerated = {t["key"] for t in pod.get("tolerations", [])}
            assert "nvidia.com/gpu" in tolerated, overlay
        else:
            assert gpus == 0, f"{overlay}: a CPU worker asks for a GPU"
            assert cfg.detector.providers in ("auto", "cpu"), overlay
    gpu = _named(renders["gpu-workers"], "Deployment")["argus-worker-gpu"]
    (worker,) = gpu["spec"]["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_pods_run_unprivileged(renders: dict[str, list[Obj]]) -> None:
    for overlay, dep, _objs in _deployments(renders):
        pod = dep["spec"]["template"]["spec"]
        where = f"{overlay}: {dep['metadata']['name']}"
        assert pod["automountServiceAccountToken"] is False, where
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for c in _containers(pod):
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert csc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            assert not csc.get("privileged"), (where, c["name"])
            assert csc.get("runAsUser", 10001) == 10001, (where, c["name"])
            # A read-only root needs a writable /tmp and $ARGUS_HOME (models, spools).
            writable = {m["mountPath"] for m in c.get("volumeMounts", []) if not m.get("readOnly")}
            assert csc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert {"/tmp", ARGUS_HOME} <= writable, (where, c["name"], writable)
            assert _env(c)["ARGUS_HOME"]["value"] == ARGUS_HOME, (where, c["name"])


def test_the_secrets_each_config_needs_come_from_the_site_secrets(
    renders: dict[str, list[Obj]], tmp_path: Path
) -> None:
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    for overlay, pod, c, ns, objs in _argus_containers(renders):
        text = _mounted_text(pod, c, ns.config, objs)
        cfg: ArgusConfig | WorkerConfig
        if ns.cmd == "worker":
            cfg = _worker_config(text, tmp_path)
            camera_secrets = [e["secretRef"] for e in c.get("envFrom", []) if "secretRef" in e]
            assert {"name": "argus-camera-secrets", "optional": False} in camera_secrets
        else:
            cfg = _alerts_config(text, tmp_path)
            assert cfg.storage.postgres is not None, "replicas share one PostgreSQL"
            _secret_env(c, cfg.storage.postgres.password_env)
            _secret_env(c, "ARGUS_API_KEY")  # every replica accepts the same key
        if cfg.evidence.s3 is not None and cfg.evidence.s3.access_key is None:
            _secret_env(c, "ARGUS_S3_ACCESS_KEY")
            _secret_env(c, "ARGUS_S3_SECRET_KEY")
        security = cfg.bus.kafka.security if cfg.bus.kafka is not None else None
        if security is not None and security.protocol.startswith("SASL"):
            _secret_env(c, security.password_env)
        # Every key taken from a Secret is one the README tells the site to create.
        for entry in c.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] in SECRETS, (overlay, ref)
                assert f"--from-literal={ref['key']}=" in readme, (overlay, ref["key"])
                assert f"kubectl -n argus create secret generic {ref['name']}" in readme


# 6. The configs kustomize mounts are deploy/config's


def test_base_configs_are_copies_of_deploy_config() -> None:
    originals = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    copies = sorted(p.name for p in (K8S / "base" / "config").iterdir())
    assert originals and copies == originals
    for name in originals:
        assert (K8S / "base" / "config" / name).read_bytes() == (CONFIGS / name).read_bytes(), (
            f"deploy/k8s/base/config/{name} differs from deploy/config/{name}: copy it again"
        )
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    generators = {g["name"]: [Path(f).name for f in g["files"]] for g in base["configMapGenerator"]}
    assert sorted(generators["argus-config"]) == originals
    # the workers' map holds worker.yaml alone: editing the cameras does not roll the workers
    assert generators["argus-worker-config"] == ["worker.yaml"]


def test_gpu_worker_config_differs_from_the_base_only_where_it_must() -> None:
    """workloads/worker-gpu/worker.yaml is deploy/config/worker.yaml but for the detector and
    the capacity: a changed broker or bucket must reach both."""
    base = yaml.safe_load((CONFIGS / "worker.yaml").read_text(encoding="utf-8"))
    gpu = yaml.safe_load((K8S / "workloads/worker-gpu/worker.yaml").read_text(encoding="utf-8"))
    for cfg in (base, gpu):
        cfg.pop("detector", None)
        cfg["fleet"].pop("capacity")
    assert gpu == base


# 7. The mounted configs are valid for argus


@pytest.mark.parametrize("overlay", [*OVERLAYS, MIXED])
def test_mounted_configs_load_with_argus(
    renders: dict[str, list[Obj]], overlay: str, tmp_path: Path
) -> None:
    loaded = 0
    for cm in _named(renders[overlay], "ConfigMap").values():
        for key, text in cm["data"].items():
            path = tmp_path / cm["metadata"]["name"] / key
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if key.startswith("worker"):
                load_worker_config(path)
            else:  # alerts.yaml, site.yaml
                load_config(path)
            loaded += 1
    assert loaded >= 3
