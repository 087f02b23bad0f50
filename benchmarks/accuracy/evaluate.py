"""Scoring: predicted events against ground truth, false-alert rates, watch load.

* **Predictions** are read from the JSON-lines sink; a record is sent when an event
  starts and again when it ends (and a start may be re-sent with a higher priority), so
  events are grouped by ``event_id``: one prediction per id, start = its earliest
  ``start_s``, end = its latest ``end_s`` (``None`` if it never ended).
* **Matching** (per scenario): a ground-truth event and a prediction are compatible when
  they have the same type, the same line and direction for line crossings, the same
  zone when both name one, and start times within ``tolerance_s``.  Compatible pairs are
  taken greedily by increasing ``|Δstart|``, each event at most once (with events of
  one rule spaced well beyond twice the tolerance, as the generator makes them, greedy
  equals the optimal assignment).  TP = matched pairs, FP = unmatched predictions, FN
  = unmatched ground truth; precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1 = their harmonic mean (``None`` where undefined).
* **False alerts per camera-hour** on the quiet scenes: every prediction there is
  false (camera-health events included); the rate is ``k / hours`` with a one-sided
  95 % upper bound from the exact (Garwood) Poisson interval, ``λ_up`` solving
  ``P(Poisson(λ_up) <= k) = 0.05`` (= ``chi2.ppf(0.95, 2k + 2) / 2``; 2.996 for k = 0),
  divided by the hours.
* **Watch load**: per camera, the union of ``[start_s, max(end_s, start_s +
  min_review_s)]`` of its alerts, clipped to the video; flagged camera-seconds over
  total camera-seconds is the share of footage an operator must look at, and
  ``1 / share`` the reduction factor against watching everything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.accuracy.truth import GTEvent

DEFAULT_TOLERANCE_S = 2.0
MIN_REVIEW_S = 10.0
"""An alert costs the operator at least this long to look at, seconds."""
CONTROL_ROOM_QUIET_SHARE = 0.95
"""Share of camera-time that is quiet in the re-weighted "control-room mix"."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One event raised by the pipeline (all records of one ``event_id``).

    Attributes:
        event_id: The event's id.
        type: Event type.
        start_s: Earliest start time, video seconds.
        end_s: Latest end time, or ``None`` if no end record was seen.
        zone: Zone name or ``None``.
        line: Line name or ``None``.
        direction: ``"+"``/``"-"`` or ``None``.
        camera_id: Camera id.
    """

    event_id: str
    type: str
    start_s: float
    end_s: float | None
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    camera_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "zone": self.zone,
            "line": self.line,
            "direction": self.direction,
        }


def predictions_from_records(records: Iterable[Mapping[str, Any]]) -> list[Prediction]:
    """Group event records by ``event_id`` (see the module docstring); sorted by start."""
    by_id: dict[str, dict[str, Any]] = {}
    for r in records:
        eid = str(r["event_id"])
        cur = by_id.get(eid)
        start = float(r["start_s"])
        end = None if r.get("end_s") is None else float(r["end_s"])
        if cur is None:
            by_id[eid] = {
                "type": str(r["type"]),
                "start": start,
                "end": end,
                "zone": r.get("zone"),
                "line": r.get("line"),
                "direction": r.get("direction"),
                "camera_id": str(r.get("camera_id", "")),
            }
            continue
        cur["start"] = min(cur["start"], start)
        if end is not None:
            cur["end"] = end if cur["end"] is None else max(cur["end"], end)
    preds = [
        Prediction(
            eid,
            v["type"],
            v["start"],
            v["end"],
            v["zone"],
            v["line"],
            v["direction"],
            v["camera_id"],
        )
        for eid, v in by_id.items()
    ]
    return sorted(preds, key=lambda p: (p.start_s, p.type, p.event_id))


def read_predictions(path: Path) -> list[Prediction]:
    """Predictions from a JSON-lines sink file (missing file: none)."""
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return predictions_from_records(records)


def compatible(
    gt: GTEvent,
    pred: Prediction,
    tolerance_s: float,
    window: tuple[float, float] | None = None,
) -> bool:
    """Whether ``pred`` may be matched to ``gt`` (see the module docstring).

    ``window`` ``(before_s, after_s)``, when given, replaces the symmetric tolerance: the
    prediction must start in ``[gt.start_s - before_s, gt.start_s + after_s]`` (edges
    included), e.g. KISA's ``(2.0, 10.0)``.
    """
    if gt.type != pred.type:
        return False
    d = pred.start_s - gt.start_s
    if window is None:
        if abs(d) > tolerance_s + 1e-9:
            return False
    elif not -window[0] - 1e-9 <= d <= window[1] + 1e-9:
        return False
    if gt.type == "line_crossing" and (gt.line != pred.line or gt.direction != pred.direction):
        return False
    return not (gt.zone is not None and pred.zone is not None and gt.zone != pred.zone)


@dataclass(frozen=True, slots=True)
class Matching:
    """Result of matching one scenario: index pairs and the leftovers."""

    pairs: list[tuple[int, int]]
    missed: list[int]
    false: list[int]


def match(
    gts: Sequence[GTEvent],
    preds: Sequence[Prediction],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    window: tuple[float, float] | None = None,
) -> Matching:
    """Greedy one-to-one matching by increasing start-time distance (``window``: an
    asymmetric ``(before_s, after_s)`` window instead of ``tolerance_s``, see
    :func:`compatible`).

    Returns:
        ``pairs`` ``(gt index, prediction index)``, ``missed`` ground-truth indexes
        (false negatives) and ``false`` prediction indexes (false positives).
    """
    cands = sorted(
        (abs(g.start_s - p.start_s), i, j)
        for i, g in enumerate(gts)
        for j, p in enumerate(preds)
        if compatible(g, p, tolerance_s, window)
    )
    used_g: set[int] = set()
    used_p: set[int] = set()
    pairs = []
    for _, i, j in cands:
        if i in used_g or j in used_p:
            continue
        used_g.add(i)
        used_p.add(j)
        pairs.append((i, j))
    return Matching(
        sorted(pairs),
        [i for i in range(len(gts)) if i not in used_g],
        [j for j in range(len(preds)) if j not in used_p],
    )


@dataclass
class Counts:
    """TP/FP/FN of one rule type, with the start-time errors of the matches (seconds)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    gt: int = 0
    scenarios: int = 0
    errors: list[float] | None = None

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), or ``None`` with no prediction."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), or ``None`` with no ground truth."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall (``None`` if either is undefined)."""
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    @property
    def mean_abs_error_s(self) -> float | None:
        """Mean ``|pred start - GT start|`` of the matches, seconds."""
        return sum(self.errors) / len(self.errors) if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with the derived ratios (rounded)."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "scenarios": self.scenarios,
            "gt": self.gt,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "f1": r(self.f1),
            "mean_abs_start_error_s": r(self.mean_abs_error_s),
        }


def poisson_cdf(k: int, lam: float) -> float:
    """``P(X <= k)`` for ``X ~ Poisson(lam)``, summed in log space (k >= 0, lam >= 0)."""
    if lam <= 0.0:
        return 1.0
    log_terms = [-lam + i * math.log(lam) - math.lgamma(i + 1) for i in range(k + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


def poisson_upper(k: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a Poisson mean after observing ``k``.

    The Garwood bound: the ``λ`` with ``P(Poisson(λ) <= k) = 1 - confidence``, equal to
    ``chi2.ppf(confidence, 2k + 2) / 2``; found by bisection (the CDF falls
    monotonically in ``λ``) to 1e-10 relative.  ``k = 0`` gives ``-ln(0.05) = 2.9957``.
    """
    if k < 0 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need k >= 0 and 0 < confidence < 1, got {k}, {confidence}")
    alpha = 1.0 - confidence
    lo, hi = float(k), float(k) + 10.0 * math.sqrt(k + 1.0) + 10.0
    while poisson_cdf(k, hi) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if poisson_cdf(k, mid) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * max(hi, 1.0):
            break
    return 0.5 * (lo + hi)


def flagged_seconds(
    intervals: Iterable[tuple[float, float | None]],
    duration_s: float,
    min_review_s: float = MIN_REVIEW_S,
) -> float:
    """Length of the union of alert intervals on one camera, seconds.

    Each alert ``(start_s, end_s)`` covers ``[start_s, max(end_s, start_s +
    min_review_s)]`` (an open end counts as the end of the video), clipped to
    ``[0, duration_s]``.
    """
    spans = []
    for start, end in intervals:
        e = duration_s if end is None else end
        spans.append((max(0.0, start), min(duration_s, max(e, start + min_review_s))))
    spans.sort()
    total, cur_s, cur_e = 0.0, None, None
    for s, e in spans:
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


@dataclass(frozen=True, slots=True)
class WatchLoad:
    """Share of camera-time an operator must watch, and the reduction it buys.

    Attributes:
        flagged_s: Flagged camera-seconds.
        total_s: Camera-seconds of video.
    """

    flagged_s: float
    total_s: float

    @property
    def share(self) -> float:
        """Flagged / total (0 for no video)."""
        return self.flagged_s / self.total_s if self.total_s > 0 else 0.0

    @property
    def reduction(self) -> float:
        """``1 / share`` (infinite when nothing was flagged)."""
        return 1.0 / self.share if self.share > 0 else math.inf


def mixed_share(
    quiet: WatchLoad, incident: WatchLoad, quiet_share: float = CONTROL_ROOM_QUIET_SHARE
) -> float:
    """Flagged share for a camera-time mix with ``quiet_share`` quiet footage:
    ``q * share_quiet + (1 - q) * share_incident``."""
    return quiet_share * quiet.share + (1.0 - quiet_share) * incident.share
