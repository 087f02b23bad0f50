"""The rules' optional ``watching`` hook: activity that may become an event, and the
camera selector gathering it for the selective wall."""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Collection

import numpy as np
import pytest

from detectors.detections import Detections
from selector.camera import CameraSelector
from selector.event import Event
from selector.priority import priority
from selector.rules import (
    AbandonedObjectRule,
    CrowdingRule,
    FrameInfo,
    IntrusionRule,
    LoiteringRule,
    Rule,
)
from selector.rules.base import WATCHING_HOOK
from selector.tracker import ByteTracker
from selector.watch import (
    MAX_REASON_CHARS,
    MAX_WATCHES,
    Watch,
    clip_reason,
    rank_watches,
    seconds_of,
    watch_priority,
)
from selector.zones import PolygonZone
from tests.unit import object_scripts as obj
from tests.unit.rule_scripts import CAM, NAMES, Row, feet, frame, row, tracks

pytestmark = pytest.mark.unit

ZONE = PolygonZone("atm", [(100, 100), (300, 100), (300, 300), (100, 300)])
SQUARE = PolygonZone("square", [(100, 100), (300, 100), (300, 300), (100, 300)])
SPOTS = {1: 150.0, 2: 200.0, 3: 250.0, 4: 175.0, 5: 225.0}  # x of each track's feet

Script = dict[int, list[Row]]


def loitering(**kw: object) -> LoiteringRule:
    args: dict[str, object] = {"classes": {0}, "class_names": NAMES}
    args.update(kw)
    return LoiteringRule("loitering:atm", CAM, ZONE, **args)  # type: ignore[arg-type]


def intrusion(**kw: object) -> IntrusionRule:
    args: dict[str, object] = {"classes": {0}, "class_names": NAMES}
    args.update(kw)
    return IntrusionRule("intrusion:atm", CAM, ZONE, **args)  # type: ignore[arg-type]


def crowding(**kw: object) -> CrowdingRule:
    args: dict[str, object] = {
        "min_count": 4,
        "classes": {0},
        "class_names": NAMES,
        "min_duration_s": 2.0,
    }
    args.update(kw)
    return CrowdingRule("crowding:square", CAM, SQUARE, **args)  # type: ignore[arg-type]


def feed(
    rule: Rule,
    script: Script,
    n_frames: int,
    probe: Callable[[int], None] | None = None,
) -> list[tuple[int, Event]]:
    """Frames ``0..n_frames-1`` of ``script``; ``probe(k)`` after each frame."""
    out: list[tuple[int, Event]] = []
    for k in range(n_frames):
        out.extend((k, e) for e in rule.update(tracks(script.get(k, [])), frame(k)))
        if probe is not None:
            probe(k)
    return out


def watched(rule: object, now_s: float) -> list[Watch]:
    hook = getattr(rule, WATCHING_HOOK)
    got = hook(now_s)
    assert isinstance(got, list) and all(isinstance(w, Watch) for w in got)
    return got


def strictly_increasing(values: list[float] | list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


# ----------------------------------------------------------------- loitering / intrusion


def test_loitering_reports_the_running_dwell_until_the_event_starts() -> None:
    r = loitering()  # 10 s dwell
    script: Script = {k: [row(7, 200, 200)] for k in range(0, 140)}  # inside from 0.0 s
    seen: dict[int, list[Watch]] = {}

    def probe(k: int) -> None:
        seen[k] = watched(r, k / 10)

    got = feed(r, script, 140, probe)
    assert [k for k, _ in got] == [100]  # the event starts at 10.0 s
    assert seen[0][0].progress == 0.0
    samples = [seen[k][0] for k in (10, 30, 60, 99)]
    assert strictly_increasing([w.progress for w in samples])
    assert strictly_increasing([w.priority for w in samples])
    w = seen[60][0]
    assert (w.rule_id, w.type, w.zone, w.track_id) == ("loitering:atm", "loitering", "atm", 7)
    assert w.progress == pytest.approx(0.6)
    assert w.reason == "person in 'atm' for 6 s of 10"
    assert w.bbox == pytest.approx(feet(200, 200))
    event_priority = priority(50, 0.9)
    assert w.priority == round(event_priority * 0.6)
    assert all(s[0].priority < event_priority for s in seen.values() if s)
    assert seen[99][0].reason == "person in 'atm' for 9 s of 10"
    # The event has started: it is an alert now, no longer watched.
    assert all(seen[k] == [] for k in range(100, 140))
    assert r.open_events() != []


def test_watch_disappears_when_the_person_leaves_before_the_dwell() -> None:
    r = loitering()  # exit grace 2.0 s
    script: Script = {k: [row(7, 200, 200)] for k in range(0, 50)}
    script |= {k: [row(7, 200, 400)] for k in range(50, 100)}  # outside from 5.0 s
    seen: dict[int, list[Watch]] = {}
    feed(r, script, 100, lambda k: seen.__setitem__(k, watched(r, k / 10)))
    assert [w.track_id for w in seen[49]] == [7]
    assert [w.track_id for w in seen[55]] == [7]  # seen away, within the exit grace
    assert seen[69] == []  # last inside 4.9 s; away 2.0 s at 6.9 s: the stay is over
    assert all(seen[k] == [] for k in range(69, 100))


def test_watch_of_a_track_the_tracker_removed_disappears() -> None:
    r = loitering()
    for k in range(30):
        r.update(tracks([row(7, 200, 200)]), frame(k))
    assert len(watched(r, 2.9)) == 1
    r.update(tracks([]), frame(30), ended_ids=[7])
    assert watched(r, 3.0) == []


def test_short_dwell_intrusion_reports_nothing() -> None:
    for dwell in (0.0, 1.0, 1.9):
        r = intrusion(min_dwell_s=dwell)
        for k in range(15):
            r.update(tracks([row(7, 200, 200)]), frame(k))
            assert watched(r, k / 10) == []


def test_intrusion_with_a_dwell_of_two_seconds_or_more_reports_each_track() -> None:
    r = intrusion(min_dwell_s=2.0)
    for k in range(10):
        r.update(tracks([row(3, 150, 200), row(4, 250, 200, score=0.5)]), frame(k))
    ws = watched(r, 0.9)
    assert [w.track_id for w in ws] == [3, 4]
    assert {w.type for w in ws} == {"intrusion"}
    assert ws[0].reason == "person in 'atm' for 0 s of 2"
    assert ws[0].progress == pytest.approx(0.45)
    assert ws[0].priority == round(priority(60, 0.9) * 0.45)
    assert ws[1].priority == round(priority(60, 0.5) * 0.45)
    # Asked later than the last frame (between frames): the dwell runs on, below 1.
    assert watched(r, 1.5)[0].progress == pytest.approx(0.75)
    assert watched(r, 50.0)[0].progress == 1.0
    assert watched(r, 50.0)[0].priority == priority(60, 0.9) - 1


# ----------------------------------------------------------------------------- crowding


def crowd_script(n_frames: int, presence: dict[int, range]) -> Script:
    script: Script = {}
    for k in range(n_frames):
        rows = [row(tid, SPOTS[tid], 200) for tid, ks in presence.items() if k in ks]
        rows += [row(tid, SPOTS[tid], 400) for tid, ks in presence.items() if k not in ks]
        script[k] = sorted(rows)
    return script


def test_crowd_building_then_holding_is_watched_until_the_event() -> None:
    r = crowding()  # 4 people for 2 s; half of 4 is 2
    presence = {1: range(0, 90), 2: range(10, 90), 3: range(20, 90), 4: range(30, 90)}
    seen: dict[int, list[Watch]] = {}
    got = feed(
        r, crowd_script(100, presence), 100, lambda k: seen.__setitem__(k, watched(r, k / 10))
    )
    assert [k for k, e in got if e.end_s is None] == [50]  # 4 from 3.0 s, for 2 s: 5.0 s
    assert seen[5] == []  # one person is no crowd
    building = [seen[k][0] for k in (15, 25)]
    assert [w.reason for w in building] == [
        "2 people in 'square' (crowding at 4)",
        "3 people in 'square' (crowding at 4)",
    ]
    assert [w.progress for w in building] == pytest.approx([0.25, 0.375])
    holding = [seen[k][0] for k in (30, 40, 49)]
    assert [w.reason for w in holding] == [
        "4 people crowding in 'square' for 0 s of 2",
        "4 people crowding in 'square' for 1 s of 2",
        "4 people crowding in 'square' for 1 s of 2",
    ]
    assert [w.progress for w in holding] == pytest.approx([0.5, 0.75, 0.975])
    ramp = building + holding
    assert strictly_increasing([w.progress for w in ramp])
    assert strictly_increasing([w.priority for w in ramp])
    event_priority = priority(50, None)  # the rule's default severity
    assert all(w.priority < event_priority for w in ramp)
    w = holding[0]
    assert (w.type, w.zone, w.track_id) == ("crowding", "square", None)
    assert w.bbox == pytest.approx((130.0, 100.0, 270.0, 200.0))  # union of the 4 boxes
    # An event: an alert now; and once people leave, nothing either.
    assert all(seen[k] == [] for k in range(50, 100))


def test_crowd_that_disperses_before_the_duration_is_no_longer_watched() -> None:
    r = crowding(min_count=3)  # half of 3 rounds up to 2
    presence = {1: range(0, 15), 2: range(0, 15), 3: range(5, 15)}
    seen: dict[int, list[Watch]] = {}
    got = feed(r, crowd_script(60, presence), 60, lambda k: seen.__setitem__(k, watched(r, k / 10)))
    assert got == []
    assert seen[2][0].reason == "2 people in 'square' (crowding at 3)"
    assert seen[10][0].reason == "3 people crowding in 'square' for 0 s of 2"
    assert all(seen[k] == [] for k in range(15, 60))  # everybody stepped out


# -------------------------------------------------------------------------- abandoned

BAG_ID, OWNER = 2, 1
BAG: obj.Box = (330.0, 370.0, 370.0, 400.0)


def abandoned_steps(n: int, bag_until: int | None = None) -> list[obj.Step]:
    """The owner stands by a suitcase (frames 0..19), walks off (far from 2.0 s)."""
    steps: list[obj.Step] = []
    for k in range(n):
        step = obj.Step()
        x = 300.0 if k < 20 else 700.0
        if k < 60:
            step.rows.append(obj.Row(OWNER, obj.person_box(x), obj.PERSON))
        if bag_until is None or k < bag_until:
            step.rows.append(obj.Row(BAG_ID, BAG, obj.SUITCASE, 0.8))
        steps.append(step)
    return steps


def abandoned(**kw: object) -> AbandonedObjectRule:
    args: dict[str, object] = {"class_names": obj.NAMES, "min_unattended_s": 5.0}
    args.update(kw)
    return AbandonedObjectRule("abandoned:hall", obj.CAM, **args)  # type: ignore[arg-type]


def feed_steps(
    rule: Rule, steps: list[obj.Step], probe: Callable[[int], None] | None = None
) -> list[tuple[int, Event]]:
    out: list[tuple[int, Event]] = []
    for k, step in enumerate(steps):
        rows = obj.tracks_of(step.rows if step.detected else [])
        out.extend((k, e) for e in rule.update(rows, obj.frame_of(k, step), sorted(step.ended)))
        if probe is not None:
            probe(k)
    return out


def test_bag_left_alone_is_watched_until_its_event() -> None:
    r = abandoned()
    seen: dict[int, list[Watch]] = {}
    got = feed_steps(r, abandoned_steps(100), lambda k: seen.__setitem__(k, watched(r, k / 10)))
    assert [k for k, _ in got] == [70]  # the owner walked off at 2.0 s, + 5 s
    assert all(seen[k] == [] for k in range(0, 20))  # attended by its owner
    samples = [seen[k][0] for k in (25, 40, 69)]
    assert strictly_increasing([w.progress for w in samples])
    assert strictly_increasing([w.priority for w in samples])
    w = seen[45][0]
    assert w.reason == "suitcase left unattended for 2 s of 5"
    assert w.progress == pytest.approx(0.5)
    assert w.priority == round(priority(70, 0.8) * 0.5)
    assert (w.type, w.zone, w.track_id) == ("abandoned_object", None, BAG_ID)
    assert w.bbox == pytest.approx(BAG)
    assert all(seen[k] == [] for k in range(70, 100))  # an alert now


def test_bag_removed_before_its_event_is_no_longer_watched() -> None:
    zone = PolygonZone("hall", [(0, 0), (768, 0), (768, 576), (0, 576)])
    r = abandoned(min_unattended_s=10.0, zone=zone)
    seen: dict[int, list[Watch]] = {}
    got = feed_steps(
        r, abandoned_steps(100, bag_until=40), lambda k: seen.__setitem__(k, watched(r, k / 10))
    )
    assert got == []
    assert seen[39][0].reason == "suitcase left unattended in 'hall' for 1 s of 10"
    assert seen[39][0].zone == "hall"
    assert seen[60] != []  # unseen for less than removed_grace_s (3 s)
    assert all(seen[k] == [] for k in range(69, 100))  # removed at 6.9 s


# ---------------------------------------------------------- watching changes nothing


def _same_events_with_and_without_watching(
    make: Callable[[], Rule], run: Callable[[Rule, Callable[[int], None] | None], object]
) -> None:
    plain = make()
    expected = run(plain, None)
    asked = make()

    def probe(k: int) -> None:
        for now_s in (k / 10, k / 10 + 0.05, k / 10 + 100.0, 0.0):
            watched(asked, now_s)

    assert run(asked, probe) == expected
    assert expected  # the scripts do raise events


def test_watching_does_not_change_the_events_a_rule_raises() -> None:
    stay: Script = {k: [row(7, 200, 200), row(8, 150, 150)] for k in range(0, 120)}
    stay |= {k: [row(7, 200, 400)] for k in range(120, 170)}
    stay |= {k: [row(7, 200, 200)] for k in range(170, 260)}
    for make in (lambda: loitering(min_dwell_s=3.0), lambda: intrusion(min_dwell_s=2.0)):
        _same_events_with_and_without_watching(make, lambda r, p: feed(r, stay, 260, p))

    presence = {1: range(0, 90), 2: range(10, 90), 3: range(20, 150), 4: range(30, 70)}
    crowd = crowd_script(160, presence)
    _same_events_with_and_without_watching(crowding, lambda r, p: feed(r, crowd, 160, p))

    steps = obj.end_tracks(abandoned_steps(160, bag_until=120))
    _same_events_with_and_without_watching(abandoned, lambda r, p: feed_steps(r, steps, p))


# ------------------------------------------------------------------------ the selector


class ScriptedWatcher:
    """A rule that only reports the watches it is given (and the times it is asked)."""

    def __init__(self, rule_id: str, watches: list[Watch]) -> None:
        self.rule_id = rule_id
        self.watches = watches
        self.asked: list[float] = []

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        return []

    def close_all(self, end_s: float) -> list[Event]:
        return []

    def watching(self, now_s: float) -> list[Watch]:
        self.asked.append(now_s)
        return list(self.watches)


class FailingWatcher(ScriptedWatcher):
    def watching(self, now_s: float) -> list[Watch]:
        raise RuntimeError("boom in watching")


class WrongWatcher(ScriptedWatcher):
    def watching(self, now_s: float) -> list[Watch]:
        return [{"rule_id": self.rule_id}]  # type: ignore[list-item]


class Silent:
    """A rule without the hook: not asked."""

    rule_id = "silent:1"

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        return []

    def close_all(self, end_s: float) -> list[Event]:
        return []


def w(rule_id: str, pr: int, progress: float = 0.5, track_id: int | None = None) -> Watch:
    return Watch(rule_id, "loitering", f"person {pr}", pr, progress, track_id=track_id)


def empty_frame(k: int) -> FrameInfo:
    return FrameInfo(CAM, k, k / 10, 1_700_000_000.0 + k / 10, 768, 576)


def test_selector_isolates_a_failing_hook(caplog: pytest.LogCaptureFixture) -> None:
    good = ScriptedWatcher("good:1", [w("good:1", 30, track_id=1)])
    sel = CameraSelector(
        CAM,
        ByteTracker(),
        [FailingWatcher("bad:1", []), WrongWatcher("wrong:1", []), Silent(), good],
    )
    assert sel.watching() == []  # no frame seen yet
    assert good.asked == []
    sel.update(Detections.empty(("person",)), empty_frame(25))
    with caplog.at_level(logging.ERROR, logger="selector.camera"):
        got = sel.watching()
    assert got == good.watches
    assert good.asked == [2.5]  # the last frame's time
    failures = [r.getMessage() for r in caplog.records if "rule failed on watching" in r.message]
    assert len(failures) == 2
    assert "camera=plaza" in failures[0] and "rule=bad:1" in failures[0]
    assert "rule=wrong:1" in failures[1]
    assert sel.watching(7.0) == good.watches and good.asked[-1] == 7.0
    sel.no_signal(empty_frame(40))
    sel.watching()
    assert good.asked[-1] == 4.0


def test_selector_ranks_and_caps_the_watches() -> None:
    many = [w("a:1", 10 + i, track_id=i) for i in range(6)]
    more = [w("b:1", 10 + i, progress=0.9, track_id=i) for i in range(6)]
    sel = CameraSelector(
        CAM,
        ByteTracker(),
        [ScriptedWatcher("a:1", many), ScriptedWatcher("b:1", more)],
    )
    got = sel.watching(1.0)
    assert len(got) == MAX_WATCHES == 8
    assert got == rank_watches(many + more)[:MAX_WATCHES]
    assert [(x.rule_id, x.priority) for x in got[:4]] == [
        ("b:1", 15),  # same priority: more progress first
        ("a:1", 15),
        ("b:1", 14),
        ("a:1", 14),
    ]


def test_selector_gathers_real_rules() -> None:
    rule = loitering(min_dwell_s=3.0)
    sel = CameraSelector(CAM, ByteTracker(frame_rate=10.0), [rule])
    for k in range(20):
        x = 150 + 2 * k
        dets = Detections(
            xyxy=np.array([[x, 150, x + 40, 250]], np.float32),
            score=np.array([0.9], np.float32),
            class_id=np.array([0], np.int64),
            names=NAMES,
        )
        sel.update(dets, empty_frame(k))
    (got,) = sel.watching()
    assert (got.rule_id, got.track_id, got.zone) == ("loitering:atm", 1, "atm")
    assert got.reason == "person in 'atm' for 1 s of 3"


def test_rank_order() -> None:
    ws = [
        w("b", 50, 0.5, None),
        w("b", 50, 0.5, 2),
        w("a", 50, 0.5, 3),
        w("c", 50, 0.7, 1),
        w("z", 60, 0.1, 1),
    ]
    ranked = rank_watches(ws)
    assert [(x.rule_id, x.track_id) for x in ranked] == [
        ("z", 1),
        ("c", 1),
        ("a", 3),
        ("b", 2),
        ("b", None),
    ]
    assert rank_watches(ws, 2) == ranked[:2]
    assert rank_watches(reversed(ws)) == ranked


# --------------------------------------------------------------------------- the value


def test_to_dict_is_json_with_finite_rounded_numbers() -> None:
    x = Watch(
        "loitering:atm",
        "loitering",
        "person in 'atm' for 6 s of 10",
        29,
        0.6000000001,
        bbox=(180.123456, 100.0, 220.987654, 200.0),
        zone="atm",
        track_id=7,
    )
    d = x.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == {
        "rule_id": "loitering:atm",
        "type": "loitering",
        "reason": "person in 'atm' for 6 s of 10",
        "priority": 29,
        "progress": 0.6,
        "bbox": [180.1, 100.0, 221.0, 200.0],
        "zone": "atm",
        "track_id": 7,
    }
    bare = Watch("crowding:square", "crowding", "2 people in 'square'", 1, 0.0).to_dict()
    assert json.loads(json.dumps(bare, allow_nan=False))["bbox"] is None


@pytest.mark.parametrize(
    "kw",
    [
        {"priority": 0},
        {"priority": 101},
        {"priority": True},
        {"progress": math.nan},
        {"progress": 1.5},
        {"progress": -0.1},
        {"reason": ""},
        {"reason": "x" * (MAX_REASON_CHARS + 1)},
        {"bbox": (0.0, 0.0, math.inf, 1.0)},
        {"rule_id": ""},
    ],
)
def test_watch_refuses_bad_values(kw: dict[str, object]) -> None:
    args: dict[str, object] = {
        "rule_id": "r",
        "type": "loitering",
        "reason": "person",
        "priority": 5,
        "progress": 0.5,
    }
    args.update(kw)
    with pytest.raises(ValueError):
        Watch(**args)  # type: ignore[arg-type]


def test_watch_priority_stays_below_the_event() -> None:
    for event_priority in range(0, 101):
        for progress in (0.0, 0.01, 0.5, 0.99, 1.0, 7.0, math.nan):
            p = watch_priority(event_priority, progress)
            assert 1 <= p <= 100
            if event_priority > 1:
                assert p < event_priority
            else:
                assert p == 1
    assert watch_priority(60, 0.5) == 30


def test_reason_words() -> None:
    assert seconds_of(6.0, 10.0) == "6 s of 10"
    assert seconds_of(9.999, 10.0) == "9 s of 10"
    assert seconds_of(1.0, 2.5) == "1 s of 2.5"
    assert seconds_of(125.0, 300.0) == "2 min 5 s of 5 min"
    long = clip_reason("person in '" + "z" * 200 + "' for 1 s of 10")
    assert len(long) == MAX_REASON_CHARS and long.endswith("...")
