"""``FleetMember``'s leaving and its group client's failures, with a fake kafka-python
consumer: a follower of a settled round leaves with LeaveGroup; a leader hands its cameras
over in a round of its own and closes without it; a broker that does not answer leaves the
cameras running, a client fault stops them first.  (The real broker: the integration test
``test_fleet_member.py``.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import MemberState

from argus.fleet import member as member_module
from argus.fleet.assign import MemberInfo
from argus.fleet.member import FleetMember, _broker_away, _close
from argus.fleet.view import FleetView

pytestmark = pytest.mark.unit


class FakeCoordinator:
    def __init__(self, state: Any = MemberState.STABLE) -> None:
        self.state = state
        self.rejoin_needed = False
        self.unknown = False
        self.rejoins = 0

    def coordinator_unknown(self) -> bool:
        return self.unknown

    def request_rejoin(self) -> None:
        self.rejoin_needed = True
        self.rejoins += 1


class FakeConsumer:
    """``poll`` runs ``on_poll`` (a test's script of the group); ``close`` records whether
    kafka-python would have sent LeaveGroup (it does unless the member is unjoined)."""

    def __init__(self, on_poll: Callable[[FakeConsumer], None] | None = None) -> None:
        self._coordinator = FakeCoordinator()
        self.on_poll = on_poll
        self.polls = 0
        self.closed_with_leave: bool | None = None

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, Any]:
        self.polls += 1
        if self.on_poll is not None:
            self.on_poll(self)
        time.sleep(0.001)
        return {}

    def subscribe(self, topics: Any, listener: Any = None) -> None:
        self.listener = listener

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed_with_leave = self._coordinator.state is not MemberState.UNJOINED


def make_member(
    on_assignment: Callable[[frozenset[int], Mapping[str, Any]], bool] | None = None,
) -> FleetMember:
    return FleetMember(
        bootstrap="127.0.0.1:1",
        topic="argus.fleet",
        group="g",
        view=FleetView(4),
        me=lambda: MemberInfo(
            member_id="", name="w", capacity=0, model="m", classes=frozenset({"person"})
        ),
        on_assignment=on_assignment or (lambda parts, data: False),
        session_timeout_s=1.0,
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "away"),
    [
        (KafkaConnectionError("111 ECONNREFUSED"), True),
        (KafkaTimeoutError("Unable to bootstrap"), True),
        (UnknownMemberIdError(), False),
        (RebalanceInProgressError(), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_retriable_kafka_errors_say_the_broker_is_away(
    error: BaseException, away: bool
) -> None:
    assert _broker_away(error) is away


def test_closing_without_leave_unjoins_first_so_no_leave_group_is_sent() -> None:
    quiet, loud = FakeConsumer(), FakeConsumer()
    _close(quiet, leave=False)
    _close(loud, leave=True)
    assert quiet.closed_with_leave is False
    assert loud.closed_with_leave is True


# --------------------------------------------------------------------------- leaving


def test_a_follower_of_a_settled_round_may_leave_at_once() -> None:
    m, consumer = make_member(), FakeConsumer()
    m.leader = False
    assert m._hand_over(consumer) is True
    assert consumer._coordinator.rejoins == 0


@pytest.mark.parametrize("state", [MemberState.REBALANCING, MemberState.STABLE])
def test_a_member_in_a_round_or_leading_one_may_not_leave_now(state: Any) -> None:
    m, consumer = make_member(), FakeConsumer()
    consumer._coordinator.state = state
    m.leader = state is MemberState.STABLE
    assert m._may_leave(consumer) is False  # type: ignore[arg-type]
    m.leader = False
    assert m._may_leave(consumer) is (state is MemberState.STABLE)  # type: ignore[arg-type]


def test_a_leader_hands_its_cameras_over_in_a_round_then_goes_quietly() -> None:
    m, consumer = make_member(), FakeConsumer()
    m.leader, m._partitions = True, frozenset({0, 2})
    rounds: list[frozenset[int]] = [frozenset({0}), frozenset()]  # stale, then without it

    def group(c: FakeConsumer) -> None:
        coordinator = c._coordinator
        if coordinator.rejoin_needed:  # the round this member asked for completes
            coordinator.rejoin_needed = False
            m._led = True  # this member planned it (it leads the group still)
            m._received(rounds.pop(0))

    consumer.on_poll = group
    assert m._hand_over(consumer) is False
    assert consumer._coordinator.rejoins == 2  # a round planned before it stopped: another
    assert not rounds and m._partitions == frozenset()


def test_a_member_mid_round_finishes_it_and_leaves_if_it_follows() -> None:
    m, consumer = make_member(), FakeConsumer()
    consumer._coordinator.state = MemberState.REBALANCING
    m.leader = True  # led the last round; this one is led by another

    def group(c: FakeConsumer) -> None:
        if c.polls == 3:
            c._coordinator.state = MemberState.STABLE
            m._received(frozenset({1}))  # not planned by this member: it follows now

    consumer.on_poll = group
    assert m._hand_over(consumer) is True
    assert consumer._coordinator.rejoins == 0


def test_a_member_not_in_a_group_or_without_a_broker_hands_nothing_over() -> None:
    m = make_member()
    m.leader, m._partitions = True, frozenset({1})
    unjoined = FakeConsumer()
    unjoined._coordinator.state = MemberState.UNJOINED
    assert m._hand_over(unjoined) is False
    away = FakeConsumer()
    away._coordinator.unknown = True
    assert m._hand_over(away) is False
    assert unjoined.polls == away.polls == 0


def test_a_hand_over_that_does_not_complete_gives_up_after_its_bound() -> None:
    m, consumer = make_member(), FakeConsumer()
    m.leader, m._partitions = True, frozenset({1})
    m.hand_over_s = 0.2  # the round never completes
    t0 = time.monotonic()
    assert m._hand_over(consumer) is False
    assert time.monotonic() - t0 < 5
    assert consumer._coordinator.rejoins == 1


# --------------------------------------------------------------------------- the client failing


def run_once(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> tuple[list[frozenset[int]], FakeConsumer]:
    """Run the member thread until its group client raised ``error`` once; the assignments
    applied meanwhile and the consumer."""
    applied: list[frozenset[int]] = []
    consumers: list[FakeConsumer] = []
    m = make_member(lambda parts, data: applied.append(parts) or False)
    raised = threading.Event()

    def poll(c: FakeConsumer) -> None:
        if not raised.is_set():
            raised.set()
            raise error

    def factory(**config: Any) -> FakeConsumer:
        consumers.append(FakeConsumer(poll))
        return consumers[-1]

    monkeypatch.setattr(member_module, "KafkaConsumer", factory)
    m.start()
    assert raised.wait(5)
    deadline = time.monotonic() + 5
    while consumers[0].closed_with_leave is None and time.monotonic() < deadline:
        time.sleep(0.01)
    m.stop(5)
    return applied, consumers[0]


def test_a_broker_that_does_not_answer_leaves_the_cameras_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied, consumer = run_once(monkeypatch, KafkaConnectionError("111 ECONNREFUSED"))
    assert frozenset() not in applied
    assert consumer.closed_with_leave is False


def test_a_client_fault_stops_the_cameras_before_the_client_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied, consumer = run_once(monkeypatch, UnknownMemberIdError())
    assert applied and applied[0] == frozenset()
    assert consumer.closed_with_leave is True  # a follower of a settled round
