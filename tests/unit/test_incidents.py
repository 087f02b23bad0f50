"""IncidentGate: arming, suppression, de-duplication with cooldown, escalation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from selector.event import Event, make_event_id
from selector.incidents import IncidentGate, RulePolicy
from selector.priority import persistence_bonus, priority, with_persistence
from selector.schedule import Schedule, Window
from selector.suppression import Suppression, region_around
from tests.factories import T0

CAM = "cam-1"


def ev(
    track: int,
    start: float,
    *,
    rule: str = "intrusion:z",
    zone: str | None = "z",
    prio: int = 60,
    bbox: tuple[float, float, float, float] = (100, 100, 140, 200),
    label: str = "person",
    wall: float | None = None,
) -> Event:
    return Event(
        event_id=make_event_id(CAM, rule, track, int(start * 10)),
        camera_id=CAM,
        type=rule.split(":")[0],
        rule_id=rule,
        zone=zone,
        track_id=track,
        label=label,
        score=0.9,
        priority=prio,
        start_s=start,
        end_s=None,
        bbox=bbox,
        start_seq=int(start * 10),
        wall_time=(T0 + start) if wall is None else wall,
    )


def test_overlapping_events_of_one_rule_and_zone_are_one_incident() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=0.0)})
    a, b = ev(1, 1.0), ev(2, 2.0)
    assert g.process([a], 1.0) == [a]
    assert g.process([b], 2.0) == []  # merged
    assert g.process([a.closed(3.0)], 3.0) == []  # b still open
    out = g.process([b.closed(5.0)], 5.0)
    assert [(e.event_id, e.end_s, e.details.get("members")) for e in out] == [(a.event_id, 5.0, 2)]
    assert g.counts.merged == 1


def test_cooldown_holds_the_end_and_absorbs_a_quick_return() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=5.0)})
    a, b, c = ev(1, 1.0), ev(2, 6.0), ev(3, 20.0)
    g.process([a], 1.0)
    assert g.process([a.closed(3.0)], 3.0) == []  # end held for the cooldown
    assert g.process([b], 6.0) == []  # within 5 s of the end: same incident
    assert g.process([b.closed(8.0)], 8.0) == []
    assert g.process([], 12.9) == []
    [end] = g.process([], 13.0)  # 8 + 5
    assert (end.event_id, end.end_s, end.details["members"]) == (a.event_id, 8.0, 2)
    assert g.process([c], 20.0) == [c]  # after the cooldown: a new incident


def test_other_zone_rule_or_line_is_another_incident() -> None:
    g = IncidentGate(CAM)
    a = ev(1, 1.0)
    b = ev(2, 1.0, zone="y")
    c = ev(3, 1.0, rule="loitering:z")
    assert g.process([a, b, c], 1.0) == [a, b, c]


def test_disarmed_and_disabled_rules_forward_nothing_start_or_end() -> None:
    night = Schedule([Window.parse("22:00", "06:00")], "UTC")
    g = IncidentGate(
        CAM,
        {"intrusion:z": RulePolicy(schedule=night), "loitering:z": RulePolicy(enabled=False)},
    )
    day = T0  # 2024-05-01T10:00Z
    a = ev(1, 1.0, wall=day)
    b = ev(2, 1.0, rule="loitering:z", wall=day + 13 * 3600)  # 23:00, but disabled
    assert g.process([a, b], 1.0) == []
    assert g.process([a.closed(2.0), b.closed(2.0)], 2.0) == []
    assert (g.counts.disarmed, g.counts.disabled) == (1, 1)
    c = ev(3, 3.0, wall=day + 13 * 3600)  # 23:00 UTC: armed
    assert g.process([c], 3.0) == [c]


def test_schedule_weight_scales_priority() -> None:
    night = Schedule([Window.parse("22:00", "06:00", weight=1.5)], "UTC")
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(schedule=night)})
    [out] = g.process([ev(1, 1.0, prio=60, wall=T0 + 13 * 3600)], 1.0)
    assert out.priority == 90


def test_suppression_by_region_label_rule_and_expiry() -> None:
    bag = ev(1, 1.0, rule="abandoned_object:hall", zone="hall", label="suitcase")
    sup = Suppression(
        "s1",
        CAM,
        "abandoned_object:hall",
        "hall",
        "suitcase",
        region_around(bag.bbox or (0, 0, 0, 0)),
        expires_at=T0 + 100,
        created_at=T0,
    )
    g = IncidentGate(CAM, suppressions=[sup])
    moved_a_bit = replace(bag, event_id="x1", bbox=(110, 110, 150, 210))
    elsewhere = replace(bag, event_id="x2", bbox=(500, 100, 540, 200))
    person = replace(bag, event_id="x3", label="person")
    late = replace(bag, event_id="x4", wall_time=T0 + 101, zone="hall")
    assert g.process([moved_a_bit], 1.0) == []
    assert g.process([moved_a_bit.closed(2.0)], 2.0) == []
    assert [e.event_id for e in g.process([elsewhere, person], 3.0)] == ["x2"]  # person merges
    g2 = IncidentGate(CAM, suppressions=[sup, replace(sup, camera_id="other")])
    assert [e.event_id for e in g2.process([late], 4.0)] == ["x4"]  # expired
    assert len(g2.suppressions) == 1  # the other camera's is not kept
    assert g.counts.suppressed == 1


def test_priority_grows_with_persistence_and_updates_are_sent_once_per_step() -> None:
    g = IncidentGate(CAM)
    a = ev(1, 0.0, prio=60)
    [start] = g.process([a], 0.0)
    assert start.priority == 60
    sent = [e for t in range(1, 100) for e in g.process([], float(t))]
    # 5 points from 30 s, 10 from 90 s: one update per step
    assert [(e.priority, e.end_s) for e in sent] == [(65, None), (70, None)]
    assert [e.event_id for e in sent] == [a.event_id] * 2
    [end] = g.process([a.closed(99.0)], 99.0)
    assert end.priority == with_persistence(60, 99.0) and end.end_s == 99.0


def test_close_all_ends_held_and_open_incidents() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=30.0)})
    a, b = ev(1, 1.0), ev(2, 1.0, zone="y")
    g.process([a, b], 1.0)
    g.process([a.closed(2.0)], 2.0)  # a's end held for the cooldown
    out = g.close_all(4.0)
    assert sorted((e.zone, e.end_s) for e in out) == [("y", 4.0), ("z", 2.0)]
    assert g.open_incidents() == []


def test_persistence_bonus_and_priority_formula() -> None:
    assert [persistence_bonus(s) for s in (0, 10, 30, 90, 210, 10_000)] == [0, 0, 5, 10, 15, 15]
    assert priority(60, 1.0, 1.0, 1.5) == 90
    assert priority(90, 1.0, 2.0) == 100
    with pytest.raises(ValueError, match="schedule_weight"):
        priority(60, 1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="cooldown_s"):
        RulePolicy(cooldown_s=-1.0)


def test_events_of_another_camera_are_refused() -> None:
    with pytest.raises(ValueError, match="other"):
        IncidentGate(CAM).process([replace(ev(1, 1.0), camera_id="other")], 1.0)


def test_per_object_policy_keeps_people_apart_but_merges_a_return() -> None:
    g = IncidentGate(CAM, {"intrusion:z": RulePolicy(cooldown_s=3.0, per_object=True)})
    a, b = ev(1, 1.0), ev(2, 1.5)
    assert g.process([a, b], 1.5) == [a, b]  # two people: two alerts
    g.process([a.closed(2.0)], 2.0)
    a2 = replace(ev(1, 4.0), event_id="a-again")  # same track back within the cooldown
    assert g.process([a2], 4.0) == []
    assert g.counts.merged == 1
