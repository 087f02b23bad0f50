"""``benchmarks.page_latency``'s queue part at a tiny size: a real ``argus serve`` over 300
open alerts, headless Debian Chromium signed in, 3 claims and 3 new alerts.  The report is
complete and sane (every figure present and positive, the page read the whole queue); no
performance is asserted.  About 15 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from benchmarks.page_latency import run_queue, summary

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ALERTS = 300
CHANGES = 3


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: {value!r}"
    assert value > 0, f"{where} = {value}"


def _timings(block: dict[str, Any], where: str, n: int) -> None:
    assert block["n"] == n, f"{where}: {block['n']} samples"
    for key in ("p50_ms", "p95_ms", "max_ms", "min_ms", "mean_ms"):
        _positive(block[key], f"{where}.{key}")
    assert block["min_ms"] <= block["p50_ms"] <= block["p95_ms"] <= block["max_ms"], block


@pytest.fixture(scope="module")
def report(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The queue part, in the session's browser (Playwright's sync API runs one at a time)."""
    workdir: Path = tmp_path_factory.mktemp("page-latency")
    part = run_queue(browser, alerts=ALERTS, changes=CHANGES, loads=1, workdir=workdir)
    yield {
        "date": "test",
        "machine": {"description": "test", "loadavg_start": []},
        "browser": "test",
        "parts": {"queue": part},
    }


def test_loads_are_measured(report: dict[str, Any]) -> None:
    q = report["parts"]["queue"]
    assert q["fill"]["alerts"] == ALERTS
    _positive(q["fill"]["seconds"], "fill.seconds")
    load = q["load"]
    for kind in ("sign_in", "reload"):
        for key in ("first_row", "first_row_painted", "all_loaded", "all_loaded_painted"):
            _timings(load[f"{kind}_{key}"], f"load.{kind}_{key}", 1)
        first, full = load[f"{kind}_first_row"]["p50_ms"], load[f"{kind}_all_loaded"]["p50_ms"]
        assert first <= full <= load[f"{kind}_all_loaded_painted"]["p50_ms"]
        assert first <= load[f"{kind}_first_row_painted"]["p50_ms"]
    assert load["queue_count_text"].startswith(f"{ALERTS} alerts")
    requests = load["alerts_requests_after_sign_in"]
    assert requests["n"] >= 2  # the first page (200), then the rest
    _positive(requests["fetch_ms_sum"], "requests.fetch_ms_sum")
    assert abs(q["clock_check"]["hires_minus_python_ms"]) < 1000
    _positive(q["wall_s"], "wall_s")


def test_changes_are_measured(report: dict[str, Any]) -> None:
    q = report["parts"]["queue"]
    c = q["claim"]
    for key in (
        "post_round_trip",
        "post_returned_to_painted",
        "post_returned_to_row",
        "push_to_row",
        "row_to_painted",
    ):
        _timings(c[key], f"claim.{key}", CHANGES)
    assert c["post_returned_to_push"]["n"] == CHANGES  # (may be < 0: pushed before it returned)
    n = q["new_alert"]
    for key in ("upsert", "stored_to_painted", "stored_to_row", "push_to_row", "row_to_painted"):
        _timings(n[key], f"new_alert.{key}", CHANGES)
    assert n["stored_to_push"]["n"] == CHANGES
    for block in (c, n):
        assert block["long_tasks_push_to_painted"]["n"] == CHANGES  # 0 ms when none was long


def test_report_is_json_and_summarised(report: dict[str, Any]) -> None:
    json.dumps(report)
    text = summary(report)
    for needle in ("[queue]", "sign-in -> first row", "claimed by", "new alert stored"):
        assert needle in text, needle
