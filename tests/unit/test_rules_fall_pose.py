"""FallRule with pose: the questions it asks and what the answers change (scripted)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import pytest

from selector.event import Event
from selector.rules.base import PoseSighting
from selector.rules.fall import POSE_MAX_ASKS, FallRule
from tests.unit.object_scripts import Box, Step, frame_of, r6, tracks_of
from tests.unit.test_rules_fall import P, build, going_down, rule, wide_fall

pytestmark = pytest.mark.unit

Oracle = Callable[[Box], PoseSighting | None]


def lying(box: Box) -> PoseSighting:
    return PoseSighting(box, True, 85.0, 0.4)


def upright(box: Box) -> PoseSighting:
    return PoseSighting(box, False, 5.0, 0.6)


def run_with_pose(
    r: FallRule, steps: Sequence[Step], oracle: Oracle | None
) -> tuple[list[tuple[int, Event]], list[list[Box]]]:
    """Feed ``steps``; after each frame ask the rule what it wants and answer on the next
    frame with ``oracle`` (``None``: no pose model).  Returns the events and the questions."""
    out: list[tuple[int, Event]] = []
    asked: list[list[Box]] = []
    wanted: list[Box] = []
    for k, step in enumerate(steps):
        answers = [] if oracle is None else [oracle(b) for b in wanted]
        info = dataclasses.replace(
            frame_of(k, step), poses=tuple(a for a in answers if a is not None)
        )
        tracks = tracks_of(step.rows) if step.detected else tracks_of([])
        out.extend((k, e) for e in r.update(tracks, info, sorted(step.ended)))
        wanted = r.pose_wanted()
        asked.append(wanted)
    return out, asked


def crumple(k: int) -> Box | None:
    """Crumples in place (feet put, box never turns wide) and stays, no blob."""
    return going_down(final=(90.0, 60.0), frames=5)(k)


def test_a_collapse_the_picture_cannot_tell_is_a_fall_when_the_pose_says_lying() -> None:
    steps = build(120, {P: crumple})
    assert run_with_pose(rule(), steps, lying)[0] == []  # no pose: no lying blob, no fall
    got, asked = run_with_pose(rule(use_pose=True), steps, lying)
    assert [k for k, _ in got] == [53]  # down at 2.3 s (+ 3 s), and stays down
    start = got[0][1]
    assert r6(start.start_s) == 2.3  # since the box collapsed, not since the answer
    assert start.details == {"signal": "pose", "fall_s": 0.4, "pose": "lying"}
    assert sum(len(a) for a in asked) == 1  # one question: answered at once


def test_a_person_who_sat_down_is_not_a_fall_and_is_asked_a_bounded_number_of_times() -> None:
    got, asked = run_with_pose(rule(use_pose=True), build(120, {P: crumple}), upright)
    assert got == []
    assert 1 <= sum(len(a) for a in asked) <= 2  # held POSE_HOLD_S after an upright answer
    silent, asked = run_with_pose(rule(use_pose=True), build(120, {P: crumple}), lambda b: None)
    assert silent == []
    assert sum(len(a) for a in asked) == POSE_MAX_ASKS


def test_the_pose_clears_a_wide_box_that_is_not_lying_and_confirms_one_that_is() -> None:
    steps = build(120, {P: wide_fall(get_up_k=80)})
    got, asked = run_with_pose(rule(use_pose=True), steps, upright)
    assert got == []
    assert sum(len(a) for a in asked) <= 2  # cleared, then left alone for POSE_HOLD_S
    got, _ = run_with_pose(rule(use_pose=True), steps, lying)
    assert [k for k, _ in got] == [54, 80]
    assert got[0][1].details == {"signal": "wide", "fall_s": 0.5, "pose": "lying"}
    # no model (no answers): decided as without pose
    got, _ = run_with_pose(rule(use_pose=True), steps, None)
    assert [k for k, _ in got] == [54, 80] and "pose" not in got[0][1].details


def test_answers_that_say_nothing_change_nothing() -> None:
    steps = build(120, {P: wide_fall(get_up_k=80)})

    def weak(box: Box) -> PoseSighting:
        return PoseSighting(box, False, 3.0, 0.05)  # below POSE_MIN_SCORE

    def unsure(box: Box) -> PoseSighting:
        return PoseSighting(box, None, math.nan, 0.5)

    for oracle in (weak, unsure):
        got, _ = run_with_pose(rule(use_pose=True), steps, oracle)
        assert [k for k, _ in got] == [54, 80]


def test_without_use_pose_the_rule_asks_nothing() -> None:
    r = rule()
    assert not r.uses_pose
    _, asked = run_with_pose(r, build(120, {P: wide_fall(get_up_k=80)}), lying)
    assert asked == [[]] * 120
