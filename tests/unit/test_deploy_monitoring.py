"""deploy/monitoring: the Prometheus alerting rules, the example scrape configuration and the
Grafana dashboard name only metrics Argus exports, with labels those metrics carry.

No Prometheus or Grafana runs here: every expression is parsed with ``promql_parser`` (the
Rust PromQL parser, which also checks function names and argument types), and the metric
names, label names and job names it selects are checked against what the code registers
in ``prometheus_client``'s default registry (the one both ``/metrics`` endpoints serve).
"""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import prometheus_client
import promql_parser
import pytest
import yaml
from fastapi.routing import APIRoute
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import REGISTRY

from ingest.base import SourceState

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus" / "argus-rules.yaml"
SCRAPE = MONITORING / "prometheus" / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "argus-dashboard.json"

PACKAGES = ("argus", "ingest", "detectors", "selector", "alerts", "models")
"""Where Argus defines its metrics (every module-level ``X = Counter(`` and the like)."""
DEFINITION = re.compile(
    r"^\w+\s*=\s*(?:prometheus_client\.)?(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(",
    re.MULTILINE,
)
NONE: frozenset[str] = frozenset()
LE, QUANTILE = frozenset({"le"}), frozenset({"quantile"})
SAMPLES: Mapping[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "counter": (("_total", NONE), ("_created", NONE)),
    "gauge": (("", NONE),),
    "histogram": (("_bucket", LE), ("_sum", NONE), ("_count", NONE), ("_created", NONE)),
    "summary": (("", QUANTILE), ("_sum", NONE), ("_count", NONE), ("_created", NONE)),
    "info": (("_info", NONE),),
    "stateset": (("", NONE),),
    "gaugehistogram": (("_bucket", LE), ("_gsum", NONE), ("_gcount", NONE)),
    "unknown": (("", NONE),),
}
"""How a family of each type is exposed: (suffix of the sample name, labels it adds)."""
TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every scraped series."""
PROMETHEUS_BUILTINS: Mapping[str, frozenset[str]] = {"up": TARGET_LABELS}
"""Series Prometheus makes itself (not Argus's): ``up`` is 1 while a target is scraped."""
KNOWN_VALUES: Mapping[str, frozenset[str]] = {"state": frozenset(s.value for s in SourceState)}
"""Label values the expressions may match exactly: ``state`` is a camera source's state."""

GRAFANA_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}
"""Grafana's own variables, as a value the PromQL parser accepts in their place."""
CORE_PANELS = frozenset({"row", "timeseries", "stat", "gauge", "bargauge", "table", "text"})
"""Panel types built into Grafana (no plugin to install)."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEVERITIES = frozenset({"critical", "warning", "info"})
RULE_KEYS = frozenset({"alert", "expr", "for", "keep_firing_for", "labels", "annotations"})
DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)$")

REQUIRED_ALERTS: Mapping[str, str] = {
    # the issue's list: alert -> a metric its expression must select
    "ArgusCameraLost": "argus_camera_up",
    "ArgusEvidenceStreamDown": "argus_evidence_stream_up",
    "ArgusSpoolGrowing": "argus_spool_depth",
    "ArgusSpoolDropping": "argus_spool_dropped_total",
    "ArgusEvidenceSpoolDropping": "argus_evidence_spool_dropped_total",
    "ArgusConsumerLag": "argus_alert_service_lag",
    "ArgusWorkerGone": "up",
    "ArgusFleetCamerasWaiting": "argus_fleet_cameras_waiting",
    "ArgusSignInFailures": "argus_sign_in_failures_total",
}
LOGIN_ROUTE = "/api/v1/auth/login"


# --------------------------------------------------------------------------- what Argus exports


def metric_modules() -> list[str]:
    """The modules that define metrics, found in the source (a new one is picked up)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if DEFINITION.search(path.read_text(encoding="utf-8")):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


@functools.cache
def exported() -> Mapping[str, frozenset[str]]:
    """Every sample name Argus's ``/metrics`` serves -> the labels its series may carry.

    Families come from the default registry (what ``generate_latest()`` serves); a family
    counts when an Argus module defines it or it is one of prometheus_client's default
    collectors (process, GC, platform).  Labelled metrics have no samples before their
    first ``labels()``, so sample names come from the family's type, and label names from
    the metric objects.
    """
    labels: dict[str, frozenset[str]] = {}
    for name in metric_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    labels[family.name] = frozenset(value._labelnames)
    defaults = (
        prometheus_client.PROCESS_COLLECTOR,
        prometheus_client.GC_COLLECTOR,
        prometheus_client.PLATFORM_COLLECTOR,
    )
    for collector in defaults:
        for family in collector.collect():
            labels[family.name] = frozenset(k for s in family.samples for k in s.labels)
    samples: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        if family.name not in labels:
            continue  # registered by something else (e.g. another test), not Argus
        for suffix, extra in SAMPLES[family.type]:
            samples[family.name + suffix] = labels[family.name] | TARGET_LABELS | extra
    return samples


def test_every_metric_argus_defines_is_registered() -> None:
    modules = metric_modules()
    assert {"argus.metrics", "argus.fleet.metrics", "alerts.metrics", "alerts.service"} <= set(
        modules
    )
    defined = {
        family.name
        for module in map(importlib.import_module, modules)
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    }
    assert len(defined) >= 60
    assert defined <= {family.name for family in REGISTRY.collect()}
    samples = exported()
    assert samples["argus_camera_up"] == {"camera", "job", "instance"}
    assert "argus_frames_decoded_total" in samples
    assert samples["argus_detect_batch_seconds_bucket"] >= {"le"}
    assert "argus_detect_batch_seconds" not in samples  # a histogram has no bare sample


# --------------------------------------------------------------------------- checking PromQL


def scrape_jobs() -> frozenset[str]:
    config = yaml.safe_load(SCRAPE.read_text(encoding="utf-8"))
    return frozenset(job["job_name"] for job in config["scrape_configs"])


def api_routes() -> Mapping[str, APIRoute]:
    """The alerts API's routes by path template (the ``route`` label of its metrics)."""
    package = importlib.import_module("alerts.api.routes")
    routes: dict[str, APIRoute] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for router in (getattr(module, "router", None), getattr(module, "status_router", None)):
            for route in getattr(router, "routes", ()):
                if isinstance(route, APIRoute):
                    routes[route.path] = route
    return routes


def nodes(expr: promql_parser.Expr) -> Iterator[promql_parser.Expr]:
    """Every node of ``expr``'s tree, depth first."""
    found: list[promql_parser.Expr] = []

    def visit(node: promql_parser.Expr) -> bool:
        found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return iter(found)


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    return [n for n in nodes(expr) if isinstance(n, promql_parser.VectorSelector)]


def name_of(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name is not None:
        return selector.name
    for m in selector.matchers.matchers:
        if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
            return m.value
    return None


def known(samples: Mapping[str, frozenset[str]]) -> Mapping[str, frozenset[str]]:
    return {**samples, **PROMETHEUS_BUILTINS}


def problems(
    query: str,
    samples: Mapping[str, frozenset[str]] | None = None,
    jobs: frozenset[str] | None = None,
) -> list[str]:
    """What is wrong with one PromQL expression (empty: nothing found)."""
    series = known(exported() if samples is None else samples)
    jobs = scrape_jobs() if jobs is None else jobs
    try:
        expr = promql_parser.parse(query)
    except ValueError as e:
        return [f"does not parse: {e}"]
    found: list[str] = []

    def labels_under(node: promql_parser.Expr) -> frozenset[str]:
        names = (name_of(s) for s in selectors(node))
        return frozenset().union(*(series.get(n or "", frozenset()) for n in names))

    for node in nodes(expr):
        if isinstance(node, promql_parser.VectorSelector):
            name = name_of(node)
            if name is None or name not in series:
                found.append(f"{name!r} is not a metric Argus exports")
                continue
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    continue
                if m.name not in series[name]:
                    found.append(f"{name} has no label {m.name!r}")
                if m.name == "job" and m.op in (
                    promql_parser.MatchOp.Equal,
                    promql_parser.MatchOp.Re,
                ):
                    for job in m.value.split("|"):
                        if job not in jobs:
                            found.append(f"job {job!r} is not scraped (prometheus.yml)")
                allowed = KNOWN_VALUES.get(m.name, frozenset({m.value}))
                if m.op == promql_parser.MatchOp.Equal and m.value not in allowed:
                    found.append(f"{m.name}={m.value!r} never happens")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            missing = set(node.modifier.labels) - labels_under(node.expr)
            if missing:
                found.append(f"aggregation by labels the series lack: {sorted(missing)}")
        elif isinstance(node, promql_parser.BinaryExpr):
            matching = node.modifier.matching if node.modifier is not None else None
            if matching is not None:
                missing = set(matching.labels) - labels_under(node)
                if missing:
                    found.append(f"vector matching on labels the series lack: {sorted(missing)}")
        elif isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
            for s in selectors(node):
                if not (name_of(s) or "").endswith("_bucket"):
                    found.append(f"histogram_quantile over {name_of(s)}, not a _bucket series")
    return found


FAKE_SAMPLES: Mapping[str, frozenset[str]] = {
    "argus_x_total": frozenset({"camera", "job", "instance"}),
    "argus_x_seconds_bucket": frozenset({"le", "job", "instance"}),
    "argus_x_seconds_sum": frozenset({"job", "instance"}),
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rate(argus_no_such_metric_total[5m])", "'argus_no_such_metric_total' is not a metric"),
        ("argus_x", "'argus_x' is not a metric"),  # a counter is served as _total
        ('argus_x_total{camera_id="a"}', "argus_x_total has no label 'camera_id'"),
        ("sum by (cam) (argus_x_total)", "aggregation by labels the series lack: ['cam']"),
        ("argus_x_total > on (cam) argus_x_total", "vector matching on labels the series lack"),
        ('up{job="argus-workers"} == 0', "job 'argus-workers' is not scraped"),
        ('argus_x_total{state="down"}', "argus_x_total has no label 'state'"),
        ("rate(argus_x_total[5m]", "does not parse"),
        ("ratee(argus_x_total[5m])", "does not parse"),
        ("rate(argus_x_total)", "does not parse"),  # a range vector is needed
        ("histogram_quantile(0.9, rate(argus_x_seconds_sum[5m]))", "not a _bucket series"),
    ],
)
def test_problems_finds_mistakes(query: str, expected: str) -> None:
    found = problems(query, FAKE_SAMPLES, frozenset({"argus-worker"}))
    assert any(expected in p for p in found), found


def test_problems_accepts_good_expressions() -> None:
    jobs = frozenset({"argus-worker"})
    for query in (
        "sum by (camera) (rate(argus_x_total[5m])) > 0",
        "histogram_quantile(0.9, sum by (le) (rate(argus_x_seconds_bucket[5m])))",
        'up{job="argus-worker"} == 0 and on (instance) argus_x_total',
        'absent(up{job=~"argus-worker"} == 1)',
    ):
        assert problems(query, FAKE_SAMPLES, jobs) == [], query
    assert problems('argus_camera_up{camera="a"} == 0') == []
    assert problems('argus_camera_state_changes_total{state="flapping"}') == [
        "state='flapping' never happens"
    ]


# --------------------------------------------------------------------------- alerting rules


def test_rules_are_well_formed() -> None:
    config = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(config) == {"groups"}
    names = [g["name"] for g in config["groups"]]
    assert len(names) == len(set(names))
    alerts = []
    for group in config["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}, group["name"]
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            name = rule.get("alert")
            assert isinstance(name, str) and re.fullmatch(r"Argus[A-Z]\w+", name), rule
            assert set(rule) <= RULE_KEYS, name
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
            assert DURATION.match(str(rule["for"])), name
            assert rule.get("labels", {}).get("severity") in SEVERITIES, name
            assert rule.get("annotations", {}).get("summary", "").strip(), name
            assert rule.get("annotations", {}).get("description", "").strip(), name
            alerts.append(name)
    assert len(alerts) == len(set(alerts))


def test_rules_name_only_exported_metrics() -> None:
    checked = 0
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            assert problems(rule["expr"]) == [], rule["alert"]
            checked += 1
    assert checked >= len(REQUIRED_ALERTS)


def test_rules_cover_the_issue() -> None:
    by_name = {
        rule["alert"]: rule
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    for alert, metric in REQUIRED_ALERTS.items():
        assert alert in by_name, alert
        expr = promql_parser.parse(by_name[alert]["expr"])
        assert metric in {name_of(s) for s in selectors(expr)}, alert
    worker = selectors(promql_parser.parse(by_name["ArgusWorkerGone"]["expr"]))
    assert any(str(m) == 'job="argus-worker"' for s in worker for m in s.matchers.matchers)
    # the sign-in counter is counted where the login route refuses (401 and 429)
    route = api_routes()[LOGIN_ROUTE]
    assert route.methods is not None and "POST" in route.methods
    assert {401, 429} <= set(route.responses)


def test_route_labels_are_api_routes() -> None:
    routes = api_routes()
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    exprs += [expr for _, expr in dashboard_exprs()]
    for text in exprs:
        for s in selectors(promql_parser.parse(substitute(text, dashboard_variables()))):
            for m in s.matchers.matchers:
                if m.name == "route" and m.op == promql_parser.MatchOp.Equal:
                    assert m.value in routes, m.value


# --------------------------------------------------------------------------- scrape config


def test_scrape_config_loads_the_rules_and_scrapes_both_services() -> None:
    config = yaml.safe_load(SCRAPE.read_text(encoding="utf-8"))
    assert [(SCRAPE.parent / f).resolve() for f in config["rule_files"]] == [RULES.resolve()]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"argus-alerts", "argus-worker"}
    targets = {
        name: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        + [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        for name, job in jobs.items()
    }
    assert targets == {"argus-alerts": ["alerts:8000"], "argus-worker": ["worker:9108"]}
    # every worker replica is a target of its own (DNS), not one of them at random
    assert "dns_sd_configs" in jobs["argus-worker"]
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
    # the compose services of those names, whose configs listen on those ports
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    assert {"alerts", "worker"} <= set(compose["services"])
    ports = {"alerts.yaml": ("api", 8000), "worker.yaml": ("metrics", 9108)}
    for name, (section, port) in ports.items():
        path = ROOT / "deploy" / "config" / name
        assert yaml.safe_load(path.read_text(encoding="utf-8"))[section]["port"] == port


# --------------------------------------------------------------------------- dashboard


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def panels(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out: list[dict[str, Any]] = []
    for panel in data["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_variables() -> Mapping[str, str]:
    """Variable name -> a value to parse the expressions with (``.*``: match anything)."""
    names = {v["name"] for v in dashboard()["templating"]["list"]}
    return {**GRAFANA_BUILTINS, **{name: ".*" for name in names}}


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"unknown dashboard variable ${name} in {expr!r}")
        return variables[name]

    return VARIABLE.sub(value, expr)


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expression) of every target."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
    ]


def test_dashboard_is_importable() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    assert data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(data)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(data):
        assert panel["type"] in CORE_PANELS, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] in ("row", "text"):
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_variables_name_exported_metrics() -> None:
    samples = known(exported())
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        assert variable["datasource"] == DATASOURCE, variable["name"]
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        assert variable.get("definition", text) == text
        match = LABEL_VALUES.match(text)
        assert match, text
        metric, label = match.groups()
        assert metric in samples and label in samples[metric], text


def test_dashboard_names_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    variables = dashboard_variables()
    for title, expr in exprs:
        assert problems(substitute(expr, variables)) == [], title
    used = {
        name_of(s)
        for _, expr in exprs
        for s in selectors(promql_parser.parse(substitute(expr, variables)))
    }
    # the issue's panels: cameras, frames, detector, latency, events, spools, evidence, fleet,
    # the alert service (stored alerts, consumer lag, sign-in failures, API requests)
    assert {
        "argus_camera_up",
        "argus_frames_decoded_total",
        "argus_frames_processed_total",
        "argus_frames_dropped_total",
        "argus_detect_batch_seconds_bucket",
        "argus_frame_to_event_seconds_bucket",
        "argus_events_total",
        "argus_spool_depth",
        "argus_spool_dropped_total",
        "argus_evidence_spool_depth",
        "argus_evidence_spool_dropped_total",
        "argus_clips_made_total",
        "argus_clips_failed_total",
        "argus_fleet_capacity",
        "argus_fleet_cameras",
        "argus_fleet_cameras_waiting",
        "argus_alerts_stored_total",
        "argus_alert_service_lag",
        "argus_api_requests_total",
    } <= used


def test_unknown_dashboard_variable_is_refused() -> None:
    with pytest.raises(KeyError, match="nosuch"):
        substitute('argus_camera_up{camera=~"$nosuch"}', dashboard_variables())
    assert substitute("rate(x[$__rate_interval])", dashboard_variables()) == "rate(x[5m])"
