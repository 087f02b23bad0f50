"""``benchmarks.search_bench`` at tiny sizes on SQLite and the session's PostgreSQL: the report
is complete and sane (every figure present, every count what was loaded, plans recorded).
No performance is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.search_bench import (
    KINDS,
    MD_END,
    MD_START,
    plan_summary,
    results_section,
    run,
    table,
    write_results_md,
)
from deploy.postgres import LocalPostgres

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

TRACKS = 3000
QUERIES = 3
THROUGH_STORE = 20


@pytest.fixture(scope="module")
def report(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(
        tracks=TRACKS,
        queries=QUERIES,
        backends=("sqlite", "postgres"),
        workdir=tmp_path_factory.mktemp("search-bench"),
        dsn=postgres.dsn,
        cameras=40,
        groups=4,
        days=3,
        through_store=THROUGH_STORE,
    )


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: {value!r}"
    assert value > 0, f"{where} = {value}"


def test_header_and_load(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "search_bench"
    assert report["date"].endswith("+00:00")
    m = report["machine"]
    assert m["cpu_model"] and m["description"]
    _positive(m["cores"], "machine.cores")
    assert report["versions"]["sqlite"].count(".") >= 2
    assert report["versions"]["postgresql"][0].isdigit()
    assert report["parameters"]["tracks"] == TRACKS
    load = report["load"]
    assert load["counts"] == {"sqlite": TRACKS + THROUGH_STORE, "postgres": TRACKS + THROUGH_STORE}
    for backend in ("sqlite", "postgres"):
        _positive(load[f"{backend}_s"], f"load.{backend}_s")
        _positive(load["size_mib"][backend], f"size_mib.{backend}")
        _positive(load["add_track_us"][backend], f"add_track_us.{backend}")
    assert "executemany" in load["method"] and "COPY" in load["method"]
    _positive(report["wall_s"], "wall_s")
    json.dumps(report)  # JSON-ready as it is


def test_every_kind_timed_on_both_backends(report: dict[str, Any]) -> None:
    assert sorted(report["searches"]) == sorted(KINDS)
    for kind, per in report["searches"].items():
        for backend in ("sqlite", "postgres"):
            t = per[backend]
            assert t["n"] == QUERIES, (kind, backend)
            for key in ("p50_ms", "p95_ms", "max_ms", "find_p50_ms"):
                _positive(t[key], f"{kind}.{backend}.{key}")
            assert t["p50_ms"] <= t["p95_ms"] <= t["max_ms"]
            assert t["too_broad"] == 0
            assert 0 <= t["capped"] <= QUERIES
        # both backends read the same rows
        assert per["sqlite"]["mean_rows"] == per["postgres"]["mean_rows"], kind
    assert sum(per["sqlite"]["mean_rows"] for per in report["searches"].values()) > 0
    for backend in ("sqlite", "postgres"):
        _positive(report["overall"][backend]["p95_ms"], f"overall.{backend}")
    assert report["checks"]["questions"] == QUERIES * len(KINDS)
    # same candidates, same ranking: the same answers (ties aside)
    assert report["checks"]["same_top_on_every_backend"] >= QUERIES * len(KINDS) - 2


def test_plans_are_recorded(report: dict[str, Any]) -> None:
    plans = report["plans"]
    searched = [k for k in KINDS if k != "timeline_camera_1h"]
    for kind in searched:
        sq = plans[kind]["sqlite"]
        assert "FROM tracks INDEXED BY" in sq["statement"]
        assert sq["recent"] and isinstance(sq["recent_verdict"]["full_table_scan"], bool)
        assert not sq["recent_verdict"]["full_table_scan"], (kind, sq["recent"])
        assert sq["long_verdict"]["indexes"] == ["tracks_long", "tracks_long_duration"], kind
        pg = plans[kind]["postgres"]
        for key in ("recent_custom", "recent_generic", "long_custom", "long_generic"):
            assert any("tracks" in line for line in pg[key]), key
            assert pg[f"{key}_verdict"]["execution_ms"] is not None
    assert plans["camera_2h"]["sqlite"]["recent_verdict"]["indexes"] == ["tracks_by_camera"]


def test_table_and_results_section(report: dict[str, Any], tmp_path: Path) -> None:
    text = table(report)
    for kind in KINDS:
        assert f"`{kind}`" in text
    assert "**all**" in text and "tracks_by_camera" in plan_summary(report)
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nsomeone else's section\n")
    write_results_md(md, results_section(report, "search-x.json"))
    write_results_md(md, results_section(report, "search-y.json"))  # replaces its own
    body = md.read_text()
    assert body.startswith("# Results\n\nsomeone else's section\n")
    assert body.count(MD_START) == 1 and body.count(MD_END) == 1
    assert "results/search-y.json" in body and "search-x.json" not in body
