"""``benchmarks.search_http`` at a tiny size: every question of the mix is answered 200
through the API and audited, and the report has every figure.  No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.search_bench import KINDS
from benchmarks.search_http import main

pytestmark = pytest.mark.integration


def test_the_question_mix_goes_through_the_api(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["--tracks", "3000", "--queries", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    n = 2 * len(KINDS)
    assert report["statuses"] == {"200": n} and report["audited"] == n
    assert set(report["kinds"]) == set(KINDS)
    assert all(k["n"] == 2 and 0 < k["p50_ms"] <= k["max_ms"] for k in report["kinds"].values())
