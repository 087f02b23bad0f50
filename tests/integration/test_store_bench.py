"""``benchmarks.store_bench`` at tiny sizes on the real local servers: the report is complete
and sane (every figure present and positive, every stored count what was produced).  No
performance is asserted.

Uses the session's broker (``localstack``, Tansu on SeaweedFS) and PostgreSQL (``postgres``);
SQLite files go under ``tmp_path``.  About 15 s, most of it three consumer-group joins.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.store_bench import Servers, run, table
from deploy.localstack import LocalStack
from deploy.postgres import LocalPostgres

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

EVENTS = 300
ALERTS = 2000
QUERIES = 20
CLAIMS = 20


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: {value!r}"
    assert value > 0, f"{where} = {value}"


def _timings(block: dict[str, Any], where: str, n: int) -> None:
    for backend in ("sqlite", "postgres"):
        t = block[backend]
        assert t["n"] == n, f"{where}.{backend}: {t['n']} samples"
        for key in ("p50_ms", "p95_ms", "max_ms", "mean_ms"):
            _positive(t[key], f"{where}.{backend}.{key}")
        assert t["p50_ms"] <= t["p95_ms"] <= t["max_ms"], f"{where}.{backend}: {t}"


@pytest.fixture(scope="module")
def report(
    localstack: LocalStack, postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return run(
        events=EVENTS,
        alerts=ALERTS,
        rounds=1,
        queries=QUERIES,
        claims=CLAIMS,
        cameras=20,
        groups=4,
        open_share=0.2,
        ingest_cameras=5,
        workdir=tmp_path_factory.mktemp("store-bench"),
        servers=Servers(bootstrap=localstack.bootstrap, dsn=postgres.dsn),
    )


def test_header_is_complete(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "store_bench"
    assert report["date"].endswith("+00:00")
    m = report["machine"]
    assert m["cpu_model"] and m["description"]
    _positive(m["cores"], "machine.cores")
    _positive(m["fsync_per_s"], "machine.fsync_per_s")
    v = report["versions"]
    assert v["sqlite"].count(".") >= 2
    assert v["postgresql"] and v["postgresql"][0].isdigit()
    assert report["postgres_settings"]["synchronous_commit"] in ("on", "off", "local")
    assert report["parameters"]["events"] == EVENTS
    assert report["parameters"]["alerts"] == ALERTS
    _positive(report["wall_s"], "wall_s")
    json.dumps(report)  # JSON-ready as it is


def test_ingest_figures_and_counts(report: dict[str, Any]) -> None:
    ing = report["ingest"]
    assert ing["records"] == EVENTS
    assert ing["events"] + ing["ends"] == EVENTS
    assert 0 < ing["ends"] < ing["events"]
    _positive(ing["produce_s"], "ingest.produce_s")
    kinds = sorted(r["kind"] for r in ing["runs"])
    assert kinds == ["postgres", "raw", "sqlite"]
    for r in ing["runs"]:
        assert r["records"] == EVENTS, r  # every record read (raw) or stored (the stores)
        for key in ("seconds", "events_per_s", "startup_s"):
            _positive(r[key], f"ingest.runs.{r['kind']}.{key}")
    for kind in ("raw", "sqlite", "postgres"):
        s = ing["summary"][kind]
        assert s["rounds"] == 1
        for key in ("median_events_per_s", "min_events_per_s", "max_events_per_s"):
            _positive(s[key], f"ingest.summary.{kind}.{key}")
    for key, value in ing["ratios"].items():
        _positive(value, f"ingest.ratios.{key}")
    b = ing["breakdown"]
    assert b["records"] == EVENTS
    for key in ("json_loads_us", "validate_us"):
        _positive(b[key], f"breakdown.{key}")
    for backend in ("sqlite", "postgres"):
        for key in ("upsert_us", "start_upsert_us", "end_upsert_us"):
            _positive(b[backend][key], f"breakdown.{backend}.{key}")
        assert b[backend]["statements_per_start"] == 1  # a first record: the INSERT alone
        assert b[backend]["statements_per_end"] > b[backend]["statements_per_start"]
    assert b["postgres"]["round_trips_per_start"] == 1  # no write transaction for it
    # an end: BEGIN IMMEDIATE is two round trips on PostgreSQL (BEGIN, the advisory lock)
    assert b["postgres"]["round_trips_per_end"] > b["postgres"]["statements_per_end"]
    assert ing["checks"]["stored_alerts_expected"] == ing["events"]
    assert ing["checks"]["ended_alerts_expected"] == ing["ends"]


def test_big_store_figures_and_counts(report: dict[str, Any]) -> None:
    big = report["big_store"]
    assert big["alerts"] == ALERTS
    c = big["checks"]
    for backend in ("sqlite", "postgres"):
        assert c[f"{backend}_alerts"] == ALERTS
        assert c[f"{backend}_open"] == big["open_alerts"] == c["open_loaded"]
        assert c[f"{backend}_claims_audited"] == CLAIMS
        assert c[f"{backend}_claimed_added"] == CLAIMS
        _positive(big["load"][f"{backend}_s"], f"load.{backend}_s")
        _positive(big["size_mib"][backend], f"size_mib.{backend}")
    assert 0 < big["open_alerts"] < ALERTS
    assert "executemany" in big["load"]["method"] and "COPY" in big["load"]["method"]
    _timings(big["queue"], "queue", QUERIES)
    _timings(big["queue_count"], "queue_count", QUERIES)
    _timings(big["claim"], "claim", CLAIMS)


def test_plans_are_recorded(report: dict[str, Any]) -> None:
    plans = report["big_store"]["plans"]
    sq = plans["sqlite"]
    assert "FROM alerts WHERE" in sq["statement"] and "ORDER BY priority DESC" in sq["statement"]
    assert sq["list"] and sq["count"]
    assert isinstance(sq["list_verdict"]["full_table_scan"], bool)
    pg = plans["postgres"]
    for key in ("list_custom", "list_generic", "count_custom", "count_generic"):
        assert any("alerts" in line for line in pg[key]), key
        _positive(pg[f"{key}_verdict"]["execution_ms"], f"{key}.execution_ms")
    # psycopg prepared the queue statements (run QUERIES times each): the plans they ran on
    kinds = sorted(p["statement"] for p in pg["prepared_statements"])
    assert kinds == ["count", "list"]
    for p in pg["prepared_statements"]:
        assert p["generic_plans"] + p["custom_plans"] > 0, p


def test_table_names_every_part(report: dict[str, Any]) -> None:
    text = table(report)
    for needle in (
        "Ingest from Kafka",
        "AlertService -> SQLite",
        "AlertService -> PostgreSQL",
        "Big store",
        "claim (new->claimed + audit)",
        "SQLite queue plan",
        "PostgreSQL queue plan (generic)",
    ):
        assert needle in text, needle
