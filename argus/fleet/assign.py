"""Which worker runs which cameras: a capacity- and model-aware plan, and its Kafka assignor.

The unit of assignment is a partition of the fleet topic: a worker assigned a partition
runs the cameras whose definitions live there (usually one; several when their ids hash
to one partition).  The group's leader computes the plan from every member's
subscription metadata (its name, capacity, model and class names, and the partitions it
runs now) and its own view of the fleet:

1. A partition claimed by several members (two workers running one camera, e.g. after a
   network split) is kept by one of them (the first by member id) and given to no other:
   the others stop it.
2. A member keeps what it runs (sticky) while its model can serve the cameras, its
   capacity holds them and it does not hold more than its fair share (the cameras in
   proportion to capacity, rounded up).
3. The rest goes, biggest partition first, to the member that can serve it with the most
   room left in proportion to its capacity.  A member never gets more cameras than its
   capacity.
4. A partition that must move from a member that still runs it goes to nobody in this
   round: the member stops it and rejoins, and the next round gives it to its new owner,
   so no camera is ever run by two members at once.  (Kafka's eager protocol revokes
   everything before each round; workers act only on the new assignment, so what stays
   keeps running through a rebalance.)
5. Cameras no member can take wait (``Plan.waiting``): too little capacity left, or no
   member with a model that serves them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from argus.fleet.definitions import CameraDefinition

log = logging.getLogger("argus.fleet")

ASSIGNOR_NAME = "argus-capacity"
MAX_USER_DATA = 64 * 1024
"""Largest member metadata read, bytes (a hostile member's blob is ignored past it)."""


@dataclass(frozen=True)
class MemberInfo:
    """One group member as its subscription metadata describes it.

    Attributes:
        member_id: The group's member id.
        name: The worker's name (for logs and the health board).
        capacity: Most cameras it runs.
        model: The model it runs.
        classes: That model's class names.
        running: Fleet partitions it runs now.
        declined: Fleet partitions it was given and could not run (a source it cannot
            open, a secret it lacks): the leader gives them to another member.
    """

    member_id: str
    name: str
    capacity: int
    model: str
    classes: frozenset[str]
    running: frozenset[int] = frozenset()
    declined: frozenset[int] = frozenset()

    def can_serve(self, definition: CameraDefinition) -> bool:
        """Whether this member's model serves the camera (its model, its rules' classes)."""
        if definition.model is not None and definition.model != self.model:
            return False
        return set(definition.placement()[2]) <= self.classes

    def to_user_data(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "name": self.name,
                "capacity": self.capacity,
                "model": self.model,
                "classes": sorted(self.classes),
                "running": sorted(self.running),
                "declined": sorted(self.declined),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_user_data(cls, member_id: str, data: bytes | None) -> MemberInfo:
        """Parse a member's metadata; a malformed one gives a member that takes nothing."""
        try:
            if data is None or len(data) > MAX_USER_DATA:
                raise ValueError("missing or too large")
            raw = json.loads(data.decode("utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            capacity = raw.get("capacity")
            if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
                raise ValueError("capacity")
            classes = raw.get("classes") or []
            running = raw.get("running") or []
            declined = raw.get("declined") or []
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise ValueError("classes")
            for name, parts in (("running", running), ("declined", declined)):
                if not isinstance(parts, list) or not all(
                    isinstance(p, int) and not isinstance(p, bool) for p in parts
                ):
                    raise ValueError(name)
            return cls(
                member_id=member_id,
                name=str(raw.get("name") or member_id)[:128],
                capacity=capacity,
                model=str(raw.get("model") or "")[:128],
                classes=frozenset(classes),
                running=frozenset(running),
                declined=frozenset(declined),
            )
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            log.warning("fleet: member %s sent unreadable metadata (%s)", member_id[:80], e)
            return cls(
                member_id=member_id, name=member_id[:128], capacity=0, model="", classes=frozenset()
            )


@dataclass
class Plan:
    """The outcome of one assignment round.

    Attributes:
        assignment: Partitions each member runs, by member id (every member present).
        waiting: Cameras no member can take now, by id, each with why.
        moving: Partitions given to nobody this round because their current member must
            stop them first (the next round places them).
    """

    assignment: dict[str, list[int]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    moving: list[int] = field(default_factory=list)

    def cameras_of(self, member_id: str, cameras: Mapping[int, Sequence[CameraDefinition]]) -> int:
        return sum(len(cameras.get(p, ())) for p in self.assignment.get(member_id, ()))


def plan(members: Sequence[MemberInfo], cameras: Mapping[int, Sequence[CameraDefinition]]) -> Plan:
    """Assign the partitions that hold ``cameras`` (partition -> its cameras) to ``members``.

    Deterministic for the same input, and stable: a round run again on its own outcome
    (each member running what it was given) moves nothing.  See the module docstring.
    """
    cameras = {p: defs for p, defs in cameras.items() if defs}
    out = Plan(assignment={m.member_id: [] for m in members})
    if not members:
        out.waiting = {d.camera_id: "no worker" for defs in cameras.values() for d in defs}
        return out
    by_id = {m.member_id: m for m in sorted(members, key=lambda m: m.member_id)}
    load = dict.fromkeys(by_id, 0)
    total = sum(len(defs) for defs in cameras.values())
    capacity_sum = sum(m.capacity for m in by_id.values())
    fair = {
        mid: (math.ceil(total * m.capacity / capacity_sum) if capacity_sum else 0)
        for mid, m in by_id.items()
    }
    owner: dict[int, str] = {}
    for mid, m in by_id.items():  # the first claimant (by member id) keeps a partition
        for p in sorted(m.running):
            owner.setdefault(p, mid)

    def able(p: int) -> list[str]:
        return [
            mid
            for mid, m in by_id.items()
            if p not in m.declined and all(m.can_serve(d) for d in cameras[p])
        ]

    # 1. sticky: a member keeps what it runs while it serves it and its capacity holds it
    for p in sorted(cameras):
        held_by = owner.get(p)
        weight = len(cameras[p])
        if (
            held_by is not None
            and held_by in able(p)
            and load[held_by] + weight <= by_id[held_by].capacity
        ):
            out.assignment[held_by].append(p)
            load[held_by] += weight
    kept = {p for parts in out.assignment.values() for p in parts}
    # 2. the rest: what its member must stop first moves next round; new ones are placed
    for p in sorted((p for p in cameras if p not in kept), key=lambda p: (-len(cameras[p]), p)):
        weight = len(cameras[p])
        if p in owner:
            out.moving.append(p)
            continue
        candidates = able(p)
        if not candidates:
            tried = any(p in m.declined for m in by_id.values())
            for d in cameras[p]:
                out.waiting[d.camera_id] = (
                    "the workers able to serve it could not start it"
                    if tried
                    else "no worker's model serves it"
                )
            continue
        best = _best(candidates, weight, load, fair, by_id)
        if best is None:
            for d in cameras[p]:
                out.waiting[d.camera_id] = "no worker has capacity left"
            continue
        out.assignment[best].append(p)
        load[best] += weight
    # 3. balance: a member over its fair share gives a partition up (it moves next round)
    #    only to a member that can take it and stays within its own fair share
    projected = dict(load)
    for mid in sorted(by_id, key=lambda m: (fair[m] - load[m], m)):
        for p in sorted(out.assignment[mid], key=lambda p: (len(cameras[p]), -p)):
            weight = len(cameras[p])
            if projected[mid] <= fair[mid]:
                break
            takers = [
                r
                for r in able(p)
                if r != mid and projected[r] + weight <= min(by_id[r].capacity, fair[r])
            ]
            if not takers:
                continue
            taker = min(takers, key=lambda r: ((projected[r] + weight) / by_id[r].capacity, r))
            out.assignment[mid].remove(p)
            out.moving.append(p)
            projected[mid] -= weight
            projected[taker] += weight
    for parts in out.assignment.values():
        parts.sort()
    out.moving.sort()
    return out


def _best(
    candidates: Sequence[str],
    weight: int,
    load: Mapping[str, int],
    fair: Mapping[str, int],
    by_id: Mapping[str, MemberInfo],
) -> str | None:
    """Where a new partition goes: a member within its fair share after taking it if any
    (the least loaded for its capacity), else any member with capacity left."""
    room = [m for m in candidates if load[m] + weight <= by_id[m].capacity]
    if not room:
        return None
    within = [m for m in room if load[m] + weight <= fair[m]]
    return min(within or room, key=lambda m: ((load[m] + weight) / by_id[m].capacity, m))


class CapacityAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """kafka-python's side of :func:`plan` (one instance per worker consumer).

    Args:
        topic: The fleet topic.
        me: This worker's metadata now (called at every join: what it runs changes).
        cameras: The leader's view of the fleet: partition -> cameras (called when this
            worker leads an assignment).
        on_plan: Called with each plan this worker computes as leader.
    """

    name = ASSIGNOR_NAME
    version = 0

    def __init__(
        self,
        topic: str,
        me: Callable[[], MemberInfo],
        cameras: Callable[[], Mapping[int, Sequence[CameraDefinition]]],
        on_plan: Callable[[Plan], None] | None = None,
    ) -> None:
        self.topic = topic
        self._me = me
        self._cameras = cameras
        self._on_plan = on_plan
        self.last_user_data: dict[str, Any] = {}
        """What the leader sent this member with its last assignment."""

    def metadata(self, topics: Any) -> ConsumerProtocolSubscription:
        return ConsumerProtocolSubscription(
            version=self.version, topics=sorted(topics), user_data=self._me().to_user_data()
        )

    def assign(self, cluster: Any, members: Any) -> dict[str, ConsumerProtocolAssignment]:
        infos = [MemberInfo.from_user_data(m.member_id, m.metadata.user_data) for m in members]
        known = cluster.partitions_for_topic(self.topic)
        cameras = dict(self._cameras())
        if known:  # the topic's metadata not yet at hand: the view's partitions stand
            cameras = {p: defs for p, defs in cameras.items() if p in known}
        result = plan(infos, cameras)
        log.info(
            "fleet: assignment by this worker: %s; waiting %d, moving %d",
            ", ".join(
                f"{i.name}={result.cameras_of(i.member_id, cameras)}/{i.capacity}" for i in infos
            ),
            len(result.waiting),
            len(result.moving),
        )
        if self._on_plan is not None:
            try:
                self._on_plan(result)
            except Exception:
                log.exception("fleet: on_plan failed")
        extra = json.dumps(
            {"waiting": result.waiting, "moving": result.moving}, separators=(",", ":")
        ).encode()
        return {
            mid: ConsumerProtocolAssignment(
                version=self.version,
                assigned_partitions=[(self.topic, parts)] if parts else [],
                user_data=extra,
            )
            for mid, parts in result.assignment.items()
        }

    def on_assignment(self, assignment: Any, generation: Any) -> None:
        try:
            data = json.loads(bytes(assignment.user_data or b"{}").decode("utf-8"))
            self.last_user_data = data if isinstance(data, dict) else {}
        except (ValueError, UnicodeDecodeError):
            self.last_user_data = {}
