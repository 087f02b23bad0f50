"""The fleet's assignment plan (``argus.fleet.assign.plan``), its member metadata and the
kafka-python assignor around it: capacity, stickiness, two-round moves, model and class
fit, waiting reasons, determinism, and a seeded randomized property check."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import pytest
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from argus.fleet.assign import MAX_USER_DATA, CapacityAssignor, MemberInfo, Plan, plan
from argus.fleet.definitions import CameraDefinition, camera_key, parse_definition

pytestmark = pytest.mark.unit

NO_CAPACITY = "no worker has capacity left"
NO_MODEL = "no worker's model serves it"
TOPIC = "argus.fleet"

Cameras = Mapping[int, Sequence[CameraDefinition]]


@cache
def definition(
    cid: str, model: str | None = None, classes: tuple[str, ...] = ("person",)
) -> CameraDefinition:
    """A valid definition of camera ``cid``: one zone, one intrusion rule on ``classes``."""
    value = {
        "camera": {
            "id": cid,
            "source": "rtsp://cam/x",
            "zones": [{"name": "z", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]}],
        },
        "rules": [{"type": "intrusion", "camera": cid, "zone": "z", "classes": list(classes)}],
        "model": model,
    }
    return parse_definition(camera_key(cid), value)


def member(
    mid: str,
    capacity: int,
    running: Sequence[int] = (),
    *,
    model: str = "yolo",
    classes: Sequence[str] = ("person", "car"),
) -> MemberInfo:
    return MemberInfo(
        member_id=mid,
        name=f"w-{mid}",
        capacity=capacity,
        model=model,
        classes=frozenset(classes),
        running=frozenset(running),
    )


def one_each(*partitions: int) -> dict[int, list[CameraDefinition]]:
    """One camera (``c<p>``) in each of ``partitions``."""
    return {p: [definition(f"c{p}")] for p in partitions}


def load(result: Plan, mid: str, cameras: Cameras) -> int:
    return sum(len(cameras[p]) for p in result.assignment[mid])


# --------------------------------------------------------------------------- capacity


def test_a_member_never_gets_more_cameras_than_its_capacity_counting_cameras() -> None:
    """A partition holding two cameras weighs two: a capacity of 3 takes one such partition."""
    cams = {0: [definition("a0"), definition("a1")], 1: [definition("b0"), definition("b1")]}
    result = plan([member("m", 3)], cams)
    assert result.assignment == {"m": [0]}  # biggest first, ties by partition
    assert load(result, "m", cams) == 2
    assert result.waiting == {"b0": NO_CAPACITY, "b1": NO_CAPACITY}
    assert result.moving == []
    assert result.cameras_of("m", cams) == 2


def test_capacity_is_also_a_limit_for_what_a_member_already_runs() -> None:
    """Sticky partitions count against capacity: a member running more than it may keeps
    only what fits, the rest is stopped first (moving), not kept."""
    cams = one_each(0, 1, 2)
    result = plan([member("m", 2, running=[0, 1, 2])], cams)
    assert result.assignment == {"m": [0, 1]}
    assert result.moving == [2]
    assert result.waiting == {}


def test_too_little_capacity_leaves_cameras_waiting_with_the_reason() -> None:
    cams = one_each(0, 1, 2, 3, 4)
    result = plan([member("a", 1), member("b", 2)], cams)
    assert sorted(result.assignment["a"] + result.assignment["b"]) == [0, 1, 2]
    assert len(result.assignment["a"]) == 1 and len(result.assignment["b"]) == 2
    assert result.waiting == {"c3": NO_CAPACITY, "c4": NO_CAPACITY}


def test_a_member_with_capacity_zero_gets_nothing() -> None:
    cams = one_each(0)
    result = plan([member("a", 0)], cams)
    assert result.assignment == {"a": []}
    assert result.waiting == {"c0": NO_CAPACITY}


def test_no_members_means_every_camera_waits() -> None:
    cams = {0: [definition("a"), definition("b")], 3: [definition("c")]}
    result = plan([], cams)
    assert result.assignment == {}
    assert result.moving == []
    assert set(result.waiting) == {"a", "b", "c"}
    assert all(reason for reason in result.waiting.values())


def test_no_cameras_gives_every_member_an_empty_list() -> None:
    result = plan([member("a", 3, running=[1]), member("b", 1)], {})
    assert result.assignment == {"a": [], "b": []}
    assert result.waiting == {} and result.moving == []


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_a_partition_claimed_by_two_members_is_kept_by_the_first_by_member_id(
    order: str,
) -> None:
    """Two workers running one camera (a split): the first by member id keeps it, the other
    is not given it (so it stops), whatever order the members come in."""
    members = [member("m-a", 3, running=[5]), member("m-b", 3, running=[5])]
    if order == "reversed":
        members.reverse()
    cams = one_each(5)
    result = plan(members, cams)
    assert result.assignment == {"m-a": [5], "m-b": []}
    assert result.moving == [] and result.waiting == {}


def test_a_doubly_claimed_partition_the_first_cannot_keep_goes_to_nobody() -> None:
    """When the first claimant cannot keep it (no capacity), the partition is moving: the
    second claimant, which still runs it, is not given it either."""
    members = [member("a", 0, running=[1]), member("b", 3, running=[1])]
    result = plan(members, one_each(1))
    assert result.assignment == {"a": [], "b": []}
    assert result.moving == [1]


def test_running_a_partition_without_cameras_claims_nothing() -> None:
    """A partition whose camera was removed is neither kept nor moving."""
    result = plan([member("a", 2, running=[7, 8])], one_each(8))
    assert result.assignment == {"a": [8]}
    assert result.moving == []


# --------------------------------------------------------------------------- sticky


def test_what_a_member_runs_stays_when_it_fits_its_share() -> None:
    """Both members keep what they run even though plain balancing (lowest partition to the
    emptiest member) would place them differently; the new camera goes to the one with
    the most room."""
    cams = one_each(1, 2, 3, 4)
    members = [member("a", 3, running=[3, 4]), member("b", 3, running=[1])]
    result = plan(members, cams)
    assert result.assignment == {"a": [3, 4], "b": [1, 2]}
    assert result.moving == []
    fresh = plan([member("a", 3), member("b", 3)], cams)
    assert fresh.assignment != result.assignment, "the case must exercise stickiness"


def test_a_member_whose_model_no_longer_serves_a_camera_stops_it_first() -> None:
    """A camera now asking for model 'other' is not kept by its 'yolo' worker: it is moving
    (stopped first), not handed to the 'other' worker in the same round."""
    cams = {0: [definition("cam", model="other")]}
    members = [member("a", 3, running=[0]), member("b", 3, model="other")]
    first = plan(members, cams)
    assert first.assignment == {"a": [], "b": []}
    assert first.moving == [0]
    second = plan([member("a", 3), member("b", 3, model="other")], cams)
    assert second.assignment == {"a": [], "b": [0]}


# --------------------------------------------------------------------------- balancing


def test_a_newcomer_gets_partitions_in_two_rounds_never_directly() -> None:
    """A joins alone and takes everything; B joins: A's excess moves (given to nobody this
    round); once A has stopped it, the next round gives it to B."""
    cams = one_each(0, 1, 2, 3)
    alone = plan([member("a", 4)], cams)
    assert alone.assignment == {"a": [0, 1, 2, 3]}

    a_runs = alone.assignment["a"]
    first = plan([member("a", 4, running=a_runs), member("b", 4)], cams)
    assert first.assignment["b"] == [], "nothing moves straight to the newcomer"
    assert len(first.assignment["a"]) == 2 and set(first.assignment["a"]) <= set(a_runs)
    assert len(first.moving) == 2
    assert set(first.moving) | set(first.assignment["a"]) == {0, 1, 2, 3}
    assert first.waiting == {}

    second = plan([member("a", 4, running=first.assignment["a"]), member("b", 4)], cams)
    assert second.assignment["a"] == first.assignment["a"]
    assert second.assignment["b"] == first.moving
    assert second.moving == [] and second.waiting == {}

    third = plan(
        [
            member("a", 4, running=second.assignment["a"]),
            member("b", 4, running=second.assignment["b"]),
        ],
        cams,
    )
    assert third.assignment == second.assignment and third.moving == [], "stable"


def test_fair_share_follows_capacity() -> None:
    """A bigger worker keeps a bigger share: capacities 6 and 2 over 4 cameras → 3 and 1."""
    cams = one_each(0, 1, 2, 3)
    first = plan([member("big", 6), member("small", 2, running=[0, 1, 2, 3])], cams)
    assert len(first.assignment["small"]) == 1
    assert len(first.moving) == 3 and first.assignment["big"] == []
    second = plan([member("big", 6), member("small", 2, running=first.assignment["small"])], cams)
    assert len(second.assignment["big"]) == 3


# --------------------------------------------------------------------------- model, classes


def test_a_camera_needing_a_model_goes_only_to_a_member_running_it() -> None:
    cams = {0: [definition("special", model="other")], 1: [definition("plain")]}
    only_yolo = plan([member("a", 5), member("b", 5)], cams)
    assert only_yolo.waiting == {"special": NO_MODEL}
    assert 0 not in only_yolo.assignment["a"] + only_yolo.assignment["b"]

    # the 'other' worker is the busier one, and last by id: the camera still goes there;
    # the plain camera it ran leaves it for the other member (over its fair share of 1)
    members = [member("a", 5), member("z", 2, running=[1], model="other")]
    mixed = plan(members, cams)
    assert mixed.assignment["z"] == [0]
    assert mixed.assignment["a"] == []
    assert mixed.moving == [1]
    assert mixed.waiting == {}
    settled = plan(fed_back(members, mixed), cams)
    assert settled.assignment == {"a": [1], "z": [0]} and settled.moving == []


def test_a_camera_without_a_model_goes_to_any_model_that_knows_its_classes() -> None:
    cams = one_each(0)
    result = plan([member("a", 1, model="other")], cams)
    assert result.assignment == {"a": [0]}


def test_a_member_lacking_a_class_the_rules_name_is_not_given_the_camera() -> None:
    cams = {0: [definition("dock", classes=("person", "forklift"))]}
    lacking = [member("a", 5, classes=("person", "car"))]
    result = plan(lacking, cams)
    assert result.assignment == {"a": []}
    assert result.waiting == {"dock": NO_MODEL}

    knowing = member("z", 1, classes=("person", "forklift"))
    result = plan([*lacking, knowing], cams)
    assert result.assignment == {"a": [], "z": [0]}


def test_one_unservable_camera_holds_back_its_whole_partition() -> None:
    """A partition is one unit: when one of its cameras cannot be served, none of them is."""
    cams = {0: [definition("ok"), definition("needs-other", model="other")]}
    result = plan([member("a", 5)], cams)
    assert result.assignment == {"a": []}
    assert set(result.waiting) == {"ok", "needs-other"}


# --------------------------------------------------------------------------- determinism


def test_same_input_same_plan_whatever_the_member_order() -> None:
    cams: dict[int, list[CameraDefinition]] = {
        p: [definition(f"d{p}-{i}") for i in range(1 + p % 2)] for p in range(9)
    }
    members = [
        member("c", 3, running=[1, 2]),
        member("a", 4, running=[2, 5]),
        member("b", 2),
        member("d", 5, model="other"),
    ]
    one = plan(members, cams)
    again = plan(members, cams)
    shuffled = plan(list(reversed(members)), cams)
    assert one == again == shuffled
    assert any(one.assignment.values()), "the case must assign something"


# --------------------------------------------------------------------------- randomized


MODELS = ("m1", "m2")
CLASS_SETS: tuple[tuple[str, ...], ...] = (("person",), ("car",), ("person", "car"))
POOL = [
    definition(f"r{i}", model=(None, None, "m1", "m2")[i % 4], classes=CLASS_SETS[i % 3])
    for i in range(40)
]


def random_case(rng: random.Random) -> tuple[list[MemberInfo], dict[int, list[CameraDefinition]]]:
    partitions = rng.sample(range(16), rng.randint(1, 12))
    pool = iter(rng.sample(POOL, len(POOL)))
    cameras = {p: [next(pool) for _ in range(rng.randint(1, 2))] for p in partitions}
    members = [
        member(
            f"m{i:02d}",
            rng.randint(0, 5),
            running=rng.sample(range(16), rng.randint(0, 5)),
            model=rng.choice(MODELS),
            classes=rng.choice(CLASS_SETS),
        )
        for i in rng.sample(range(20), rng.randint(0, 5))
    ]
    return members, cameras


def check_plan(members: Sequence[MemberInfo], cameras: Cameras, result: Plan) -> None:
    by_id = {m.member_id: m for m in members}
    assert set(result.assignment) == set(by_id)
    assigned = [p for parts in result.assignment.values() for p in parts]
    assert len(assigned) == len(set(assigned)), "a partition given to two members"
    assert set(assigned) <= set(cameras), "a partition without cameras assigned"
    assert len(result.moving) == len(set(result.moving))
    assert set(result.moving) <= set(cameras)
    assert not set(assigned) & set(result.moving), "a partition both assigned and moving"

    loads = {mid: sum(len(cameras[p]) for p in parts) for mid, parts in result.assignment.items()}
    for mid, parts in result.assignment.items():
        m = by_id[mid]
        assert loads[mid] <= m.capacity, f"{mid} over capacity"
        for p in parts:
            assert all(m.can_serve(d) for d in cameras[p]), f"{mid} cannot serve {p}"

    claimants: dict[int, list[str]] = {}
    for mid in sorted(by_id):
        for p in by_id[mid].running:
            claimants.setdefault(p, []).append(mid)
    for mid, parts in result.assignment.items():
        for p in parts:
            if p in claimants:
                # never to a member that does not run it already (no two runners at once),
                # and of several claimants only the first by member id keeps it
                assert claimants[p][0] == mid, (p, mid, claimants[p])
    for p in result.moving:
        assert p in claimants, "only a partition someone runs is moving"

    placed = set(assigned) | set(result.moving)
    for p, defs in cameras.items():
        for d in defs:
            assert (p in placed) != (d.camera_id in result.waiting), d.camera_id
    all_ids = {d.camera_id for defs in cameras.values() for d in defs}
    assert set(result.waiting) <= all_ids
    for p, defs in cameras.items():
        if defs[0].camera_id not in result.waiting:
            continue
        assert p not in claimants
        able = [m for m in members if all(m.can_serve(d) for d in defs)]
        reason = result.waiting[defs[0].camera_id]
        if not members:
            continue
        if reason == NO_MODEL:
            assert not able
        else:
            assert reason == NO_CAPACITY and able
            assert all(loads[m.member_id] + len(defs) > m.capacity for m in able)


def test_randomized_plans_keep_every_invariant() -> None:
    rng = random.Random(20240607)
    exercised = {"assigned": 0, "moving": 0, "waiting": 0, "double_claim": 0}
    for case in range(200):
        members, cameras = random_case(rng)
        result = plan(members, cameras)
        try:
            check_plan(members, cameras, result)
        except AssertionError as e:
            raise AssertionError(f"case {case}: {members!r} {sorted(cameras)}: {e}") from e
        assert plan(list(reversed(members)), cameras) == result, f"case {case} not deterministic"
        exercised["assigned"] += any(result.assignment.values())
        exercised["moving"] += bool(result.moving)
        exercised["waiting"] += bool(result.waiting)
        running = [p for m in members for p in m.running if p in cameras]
        exercised["double_claim"] += len(running) != len(set(running))
    # the generator must reach every branch the invariants talk about
    assert all(n >= 5 for n in exercised.values()), exercised


def fed_back(members: Sequence[MemberInfo], result: Plan) -> list[MemberInfo]:
    """``members`` once they run what ``result`` gave them (and stopped the rest)."""
    return [
        MemberInfo(
            m.member_id,
            m.name,
            m.capacity,
            m.model,
            m.classes,
            frozenset(result.assignment[m.member_id]),
        )
        for m in members
    ]


def test_randomized_rounds_never_have_two_runners() -> None:
    """Feeding each round's assignment back as what members run, round after round: the
    invariants hold in every round (what a member runs is only kept or stopped)."""
    rng = random.Random(7)
    for case in range(60):
        members, cameras = random_case(rng)
        members = fed_back(members, Plan(assignment={m.member_id: [] for m in members}))
        for round_ in range(6):
            result = plan(members, cameras)
            try:
                check_plan(members, cameras, result)
            except AssertionError as e:
                raise AssertionError(f"case {case} round {round_}: {e}") from e
            members = fed_back(members, result)
        # and it settles: with the same members, nothing is still moving
        assert result.moving == [], f"case {case}: still moving {result.moving} after 6 rounds"
        assert plan(members, cameras) == result, f"case {case}: not stable"


@pytest.mark.parametrize(
    ("members", "cameras"),
    [
        pytest.param(
            [member("a", 4), member("b", 4)],
            {0: [definition("x"), definition("y")]},
            id="two-cameras-in-one-partition",
        ),
        pytest.param(
            [member("a", 5), member("z", 5, model="other")],
            {p: [definition(f"o{p}", model="other")] for p in range(4)},
            id="only-one-member-serves-them",
        ),
    ],
)
def test_a_plan_fed_back_is_kept(members: list[MemberInfo], cameras: Cameras) -> None:
    first = plan(members, cameras)
    assert first.moving == [] and any(first.assignment.values())
    again = plan(fed_back(members, first), cameras)
    assert again == first, "what each member was just given it keeps"


# --------------------------------------------------------------------------- MemberInfo


def test_member_info_round_trips_through_user_data() -> None:
    m = MemberInfo("id-1", "worker-a", 7, "yolo", frozenset({"person", "car"}), frozenset({3, 1}))
    data = m.to_user_data()
    assert isinstance(data, bytes)
    assert MemberInfo.from_user_data("id-1", data) == m
    other = MemberInfo.from_user_data("id-2", data)
    assert other.member_id == "id-2" and other.capacity == 7


HOSTILE: list[Any] = [
    None,
    b"",
    b"not json",
    b"\xff\xfe\xfd",
    b"[1, 2]",
    b"null",
    b"{}",
    b'{"capacity": -1}',
    b'{"capacity": 2.5}',
    b'{"capacity": true}',
    b'{"capacity": "3"}',
    b'{"capacity": 3, "classes": [1, 2]}',
    b'{"capacity": 3, "running": ["0"]}',
    b'{"capacity": 3, "running": [true]}',
    b'{"capacity": 3, "running": [1.5]}',
    b'{"capacity": 3, "running": {"a": 1}}',
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps({"capacity": 3, "name": "x" * MAX_USER_DATA}).encode(),
]


@pytest.mark.parametrize("data", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_malformed_user_data_gives_a_member_that_takes_nothing(data: bytes | None) -> None:
    info = MemberInfo.from_user_data("evil", data)
    assert info.member_id == "evil"
    assert info.capacity == 0 and info.running == frozenset() and info.classes == frozenset()
    result = plan([info, member("good", 1)], one_each(0, 1))
    assert result.assignment["evil"] == []
    assert len(result.assignment["good"]) == 1 and len(result.waiting) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"capacity": 3, "classes": 5}', id="classes-int"),
        pytest.param(b'{"capacity": 3, "classes": true}', id="classes-bool"),
        pytest.param(b'{"capacity": 3, "running": 5}', id="running-int"),
        pytest.param(b'{"capacity": 3, "classes": "person"}', id="classes-string"),
    ],
)
def test_non_list_classes_or_running_give_a_member_that_takes_nothing(data: bytes) -> None:
    info = MemberInfo.from_user_data("evil", data)
    assert info.capacity == 0 and info.classes == frozenset() and info.running == frozenset()


def test_oversized_user_data_is_not_parsed_even_when_valid() -> None:
    big = MemberInfo("m", "n" * 10, 3, "yolo", frozenset({"person"}), frozenset(range(20_000)))
    data = big.to_user_data()
    assert len(data) > MAX_USER_DATA
    assert MemberInfo.from_user_data("m", data).capacity == 0


def test_absent_name_and_model_are_filled_in() -> None:
    info = MemberInfo.from_user_data("mid", b'{"capacity": 2}')
    assert info == MemberInfo("mid", "mid", 2, "", frozenset(), frozenset())


# --------------------------------------------------------------------------- assignor


@dataclass
class FakeMember:
    member_id: str
    metadata: ConsumerProtocolSubscription


class FakeCluster:
    def __init__(self, partitions: set[int]) -> None:
        self._partitions = partitions
        self.asked: list[str] = []

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        self.asked.append(topic)
        return self._partitions if topic == TOPIC else None


def subscription(info: MemberInfo | bytes) -> ConsumerProtocolSubscription:
    data = info.to_user_data() if isinstance(info, MemberInfo) else info
    return ConsumerProtocolSubscription(version=0, topics=[TOPIC], user_data=data)


def test_assignor_assign_returns_the_plan_as_consumer_assignments() -> None:
    view: dict[int, list[CameraDefinition]] = {
        0: [definition("a0"), definition("a1")],
        1: [definition("b")],
        2: [definition("c", model="other")],
        3: [definition("d")],
        4: [definition("e")],
        9: [definition("outside")],  # not a partition of the topic (yet): ignored
    }
    a = member("a", 3, running=[0, 1, 3, 4])
    b = member("b", 2, running=[])
    members = [
        FakeMember("b", subscription(b)),
        FakeMember("a", subscription(a)),
        FakeMember("evil", subscription(b"\x00garbage")),
    ]
    plans: list[Plan] = []
    assignor = CapacityAssignor(TOPIC, lambda: a, lambda: view, plans.append)
    cluster = FakeCluster(set(range(8)))
    out = assignor.assign(cluster, members)

    cams = {p: d for p, d in view.items() if p < 8}
    evil = MemberInfo("evil", "evil", 0, "", frozenset())
    expected = plan([a, b, evil], cams)
    assert cluster.asked == [TOPIC]
    assert plans == [expected]
    assert expected.moving and expected.waiting, "the case must exercise both"
    assert set(out) == {"a", "b", "evil"}
    for mid, assignment in out.items():
        assert isinstance(assignment, ConsumerProtocolAssignment)
        got = sorted(tp.partition for tp in assignment.partitions())
        assert got == expected.assignment[mid]
        assert all(tp.topic == TOPIC for tp in assignment.partitions())
        extra = json.loads(assignment.user_data)
        assert extra == {"waiting": expected.waiting, "moving": expected.moving}
    assert "outside" not in json.loads(out["a"].user_data)["waiting"]
    assert out["evil"].partitions() == []


def test_assignor_survives_a_failing_on_plan_and_an_unknown_topic() -> None:
    def boom(_: Plan) -> None:
        raise RuntimeError("on_plan broke")

    a = member("a", 2)
    assignor = CapacityAssignor("other.topic", lambda: a, lambda: one_each(0, 1), boom)
    out = assignor.assign(FakeCluster({0, 1}), [FakeMember("a", subscription(a))])
    # the topic's metadata not at hand: the view's partitions stand (nobody stops for it)
    assert sorted(tp.partition for tp in out["a"].partitions()) == [0, 1]
    assert json.loads(out["a"].user_data) == {"waiting": {}, "moving": []}

    ok = CapacityAssignor(TOPIC, lambda: a, lambda: one_each(0, 1), boom)
    out = ok.assign(FakeCluster({0, 1}), [FakeMember("a", subscription(a))])
    assert sorted(tp.partition for tp in out["a"].partitions()) == [0, 1]


def test_assignor_metadata_carries_this_member_now() -> None:
    state = {"running": frozenset({2})}

    def me() -> MemberInfo:
        return member("x", 4, running=sorted(state["running"]))

    assignor = CapacityAssignor(TOPIC, me, dict)
    sub = assignor.metadata({"t2", TOPIC})
    assert isinstance(sub, ConsumerProtocolSubscription)
    assert sub.topics == sorted({"t2", TOPIC})
    assert MemberInfo.from_user_data("x", sub.user_data) == me()
    state["running"] = frozenset({2, 5})
    later = MemberInfo.from_user_data("x", assignor.metadata({TOPIC}).user_data)
    assert later.running == frozenset({2, 5}), "metadata is taken at each join"
    assert assignor.name == "argus-capacity"


def test_assignor_on_assignment_keeps_the_leaders_user_data() -> None:
    assignor = CapacityAssignor(TOPIC, lambda: member("x", 1), dict)
    sent = {"waiting": {"cam": NO_CAPACITY}, "moving": [3]}
    assignor.on_assignment(
        ConsumerProtocolAssignment(
            version=0, assigned_partitions=[(TOPIC, [1])], user_data=json.dumps(sent).encode()
        ),
        5,
    )
    assert assignor.last_user_data == sent
    for junk in (b"\xff", b"not json", b"[1]", b"", None):
        assignor.last_user_data = {"stale": True}
        assignor.on_assignment(
            ConsumerProtocolAssignment(version=0, assigned_partitions=[], user_data=junk), 6
        )
        assert assignor.last_user_data == {}, junk


def test_a_camera_a_member_could_not_start_goes_to_another() -> None:
    """A worker that lacks the camera's secret (or cannot open its source) says so; the
    leader gives the camera to another worker rather than back to it."""
    cams = one_each(0)
    declining = replace(member("a", 4), declined=frozenset({0}))
    result = plan([declining, member("b", 1)], cams)
    assert result.assignment == {"a": [], "b": [0]}
    nobody = plan([declining, replace(member("b", 1), declined=frozenset({0}))], cams)
    assert nobody.assignment == {"a": [], "b": []}
    assert "could not start it" in nobody.waiting[cams[0][0].camera_id]
    back = MemberInfo.from_user_data("a", declining.to_user_data())
    assert back.declined == frozenset({0})
