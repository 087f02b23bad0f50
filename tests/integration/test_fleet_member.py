"""The fleet's group membership (``argus.fleet.member.FleetMember``) against the real local
broker (Tansu): two members share four cameras; the leader leaves while a round is forming.

Tansu 0.6 keeps a leader that sends LeaveGroup while a round forms as the leader of every
later round (its leave removes the member, not the leadership), so such a group never
settles again: the followers' SyncGroups fail one after another.  A leaving leader must
hand its cameras over in a round of its own and close without LeaveGroup; the group then
drops it after its session timeout.  This is what a SIGTERMed worker does, and what made
the fleet end-to-end test hang before.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from argus.fleet.assign import MemberInfo
from argus.fleet.definitions import camera_key
from argus.fleet.member import FleetMember
from argus.fleet.view import FleetView
from benchmarks.fleet_harness import wait_for
from deploy.localstack import LocalStack
from tests.infra import create_topic

pytestmark = pytest.mark.integration

CAMERAS = frozenset(range(4))
"""Partitions holding one camera each."""


def definition(cid: str) -> dict[str, Any]:
    return {
        "camera": {
            "id": cid,
            "source": "rtsp://cam/x",
            "zones": [{"name": "z", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]}],
        },
        "rules": [{"type": "intrusion", "camera": cid, "zone": "z", "classes": ["person"]}],
    }


class Worker:
    """What ``FleetWorker`` is to its member, minus the cameras: it runs exactly the camera
    partitions it is given, and says so; stopping, it offers no capacity and runs nothing."""

    def __init__(self, name: str, stack: LocalStack, topic: str, group: str) -> None:
        self.name = name
        self.running: frozenset[int] = frozenset()
        self.stopping = False
        view = FleetView(8)
        for p in CAMERAS:
            assert view.apply(camera_key(f"c{p}"), definition(f"c{p}"), partition=p)
        self.member = FleetMember(
            bootstrap=stack.bootstrap,
            topic=topic,
            group=group,
            view=view,
            me=self.me,
            on_assignment=self.assigned,
            session_timeout_s=6.0,
            client_id=f"test-{name}",
        )

    def me(self) -> MemberInfo:
        running = frozenset() if self.stopping else self.running | self.member.claimed()
        return MemberInfo(
            member_id="",
            name=self.name,
            capacity=0 if self.stopping else 4,
            model="m",
            classes=frozenset({"person"}),
            running=running,
        )

    def assigned(self, partitions: frozenset[int], leader: Mapping[str, Any]) -> bool:
        if self.stopping:
            return False
        before, self.running = self.running, partitions & CAMERAS
        return bool(before - self.running)  # it stopped one another member is to take


@pytest.fixture
def group(localstack: LocalStack) -> Iterator[tuple[Worker, Worker]]:
    topic = f"argus.fleet-member-{uuid.uuid4().hex[:8]}"
    create_topic(localstack, topic, partitions=8)
    group = f"{topic}.workers"
    workers = (Worker("a", localstack, topic, group), Worker("b", localstack, topic, group))
    try:
        yield workers
    finally:
        for w in workers:
            w.stopping = True  # as a worker does: its cameras stopped before it leaves
            w.member.stop(30)


def test_a_leader_leaving_mid_round_hands_its_cameras_over(group: tuple[Worker, Worker]) -> None:
    a, b = group
    a.member.start()
    wait_for("a running every camera", lambda: a.running == CAMERAS, timeout_s=30)
    b.member.start()
    wait_for(
        "the cameras shared two and two",
        lambda: len(a.running) == 2 and len(b.running) == 2 and a.running | b.running == CAMERAS,
        timeout_s=45,
    )
    leader, follower = (a, b) if a.member.leader else (b, a)
    assert leader.member.leader and not follower.member.leader
    follower.member.request_rejoin()  # a round forms (the broker waits for every member) ...
    wait_for(
        "the follower in the round",
        lambda: not follower.member.health().joined,
        timeout_s=10,
        step_s=0.05,
    )
    time.sleep(0.3)  # ... its JoinGroup at the broker
    leader.stopping, leader.running = True, frozenset()  # ... and the leader leaves
    leaving = threading.Thread(target=leader.member.stop, args=(30,))
    leaving.start()
    wait_for(
        "the follower running every camera",
        lambda: follower.running == CAMERAS,
        timeout_s=45,
    )
    leaving.join(30)
    assert not leaving.is_alive()
    # the group settles without the leader, the follower keeping what it runs
    wait_for(
        "the follower leading the group",
        lambda: follower.member.leader and follower.member.health().joined,
        timeout_s=30,
    )
    assert follower.running == CAMERAS
