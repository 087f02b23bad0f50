"""KISA scoring: the asymmetric window, F1 per (type, condition), PASS/FAIL, the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.accuracy.evaluate import Prediction
from benchmarks.accuracy.kisa_report import (
    MARKERS,
    PASS_F1,
    cells,
    counts_table,
    kisa_match,
    table,
    verdict,
)
from benchmarks.accuracy.report import ScenarioResult, update_readme
from benchmarks.accuracy.scenarios import KINDS
from benchmarks.accuracy.truth import GTEvent

pytestmark = pytest.mark.unit


def gt(start: float, typ: str = "intrusion") -> GTEvent:
    return GTEvent(typ, start, start + 5.0, zone="z")


def pred(start: float, typ: str = "intrusion") -> Prediction:
    return Prediction(f"e{start}-{typ}", typ, start, None, zone="z")


@pytest.mark.parametrize(
    ("offset", "hit"),
    [(-2.0, True), (10.0, True), (0.0, True), (9.99, True), (-2.01, False), (10.01, False)],
)
def test_window_edges(offset: float, hit: bool) -> None:
    m = kisa_match([gt(30.0)], [pred(30.0 + offset)])
    assert (len(m.pairs) == 1) is hit
    assert (m.missed, m.false) == (([], []) if hit else ([0], [0]))


def test_window_needs_the_same_type_and_matches_once() -> None:
    m = kisa_match([gt(30.0)], [pred(31.0, "loitering"), pred(33.0), pred(34.0)])
    assert m.pairs == [(0, 1)]  # the nearest start of the right type
    assert m.false == [0, 2]


def result(name: str, kind: str, gts: list[GTEvent], preds: list[Prediction]) -> ScenarioResult:
    return ScenarioResult(
        name, kind, "v", "bg", 40.0, 2, [kind, "camera_health"], gts, preds,
        kisa_match(gts, preds), 0,
    )  # fmt: skip


def test_f1_and_verdict_per_type_and_condition() -> None:
    # 9 events found, 1 missed, 1 false alarm: precision = recall = F1 = 0.90 -> PASS.
    base = [result(f"i{k}", "intrusion", [gt(10.0)], [pred(11.0)]) for k in range(9)]
    base.append(result("miss", "intrusion", [gt(10.0)], [pred(40.0)]))
    night = [result("n", "intrusion", [gt(10.0), gt(60.0)], [pred(9.0)])]
    grid = cells({"base": base, "night": night, "fog": []})
    b = grid["intrusion"]["base"]
    assert (b["tp"], b["fp"], b["fn"], b["clips"]) == (9, 1, 1, 10)
    assert b["f1"] == pytest.approx(0.9)
    assert b["verdict"] == "PASS"
    n = grid["intrusion"]["night"]
    assert (n["tp"], n["fn"]) == (1, 1)
    assert n["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5, abs=1e-4)
    assert n["verdict"] == "FAIL"
    assert grid["intrusion"]["fog"]["verdict"] == "not run"
    assert set(grid) == set(KINDS)
    assert grid["fall"]["base"]["verdict"] == "not run"
    assert verdict(PASS_F1) == "PASS" and verdict(0.8999) == "FAIL" and verdict(None) == "n/a"


def test_table_has_every_type_and_condition() -> None:
    grid = cells({"base": [result("a", "fall", [gt(5.0, "fall")], [])], "night": []})
    md = table(grid, ["base", "night"], {"base": "base (day)"})
    lines = md.splitlines()
    assert lines[0] == "| event type | base (day) | night |"
    assert len(lines) == 2 + len(KINDS) + 1
    assert "| fall | 0.00 FAIL | – |" in lines
    assert lines[-1] == "| **passing** | 0/1 | 0/0 |"
    assert "| fall | 0/0/1 | – |" in counts_table(grid, ["base", "night"])


def test_results_section_is_replaced_between_its_markers(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nearlier section\n")
    update_readme(path, "table one", MARKERS, "KISA-style evaluation")
    update_readme(path, "table two", MARKERS, "KISA-style evaluation")
    text = path.read_text()
    assert text.startswith("# Results\n\nearlier section\n\n## KISA-style evaluation\n")
    assert "table two" in text and "table one" not in text
    assert text.count(MARKERS[0]) == 1
