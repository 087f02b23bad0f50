"""``FleetMember``: a worker's membership of the fleet's consumer group (its own thread).

The member joins the group with :class:`~argus.fleet.assign.CapacityAssignor`, hands every
assignment it receives to ``on_assignment`` (which starts and stops cameras, and may take
a while: the group's heartbeats go on meanwhile), and asks the group to rebalance when
the fleet changes in a way that decides placement (a camera added or removed, another
model asked for) or when it stopped a camera another member is to take.

Nothing is consumed: the fleet view reads the whole topic on its own; the group is only
used to share the partitions out.  While the broker is away nothing changes here: the
cameras this worker runs keep running, and when the group is back every member rejoins
and keeps them (the assignment is sticky on what members say they run).

Leaving: a follower of a settled round sends LeaveGroup (the others rebalance at once and
take its cameras).  A leader, or a member in the middle of a round, does not: a broker may
keep a leader that left mid-round as the leader of every later round, so the group never
settles again (Tansu 0.6 does: its leave while a round forms removes the member but not the
leadership).  Such a member finishes the round, asks for one more in which it offers
nothing (its capacity is 0 once stopping), so the others take its cameras, then closes
without a word: the group drops it after its session timeout, and nothing moves then.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import MemberState

from argus.fleet.assign import CapacityAssignor, MemberInfo, Plan
from argus.fleet.definitions import CameraDefinition
from argus.fleet.view import FleetView
from ingest.retry import Backoff

log = logging.getLogger("argus.fleet")

MOVING_RECHECK_S = 2.0
"""After a round that held cameras back to move them, the leader asks for another this much
later, seconds (their members ask as soon as they have stopped them)."""

REJOIN_SETTLE_S = 0.5
"""A placement change is acted on once the view has been quiet this long, seconds (a
site published at once makes one rebalance, not one per camera)."""


@dataclass(frozen=True)
class MemberHealth:
    """For ``/readyz``.

    Attributes:
        joined: The member holds an assignment of the current group generation.
        partitions: Fleet partitions assigned.
        leader: This member computed the last assignment.
        rebalances: Assignments received since start.
        last_error: The last error of the group client, or ``None``.
    """

    joined: bool
    partitions: list[int]
    leader: bool
    rebalances: int
    last_error: str | None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: FleetMember) -> None:
        self.member = member

    def on_partitions_revoked(self, revoked: Any) -> None:
        # eager protocol: everything is "revoked" before each round; cameras keep running
        # until the new assignment says otherwise (what stays is never interrupted)
        self.member._joined = False
        self.member._led = False  # a round whose sync failed leaves no stale leadership

    def on_partitions_lost(self, lost: Any) -> None:
        self.member._joined = False
        self.member._led = False

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.member._received(frozenset(tp.partition for tp in assigned))


class FleetMember:
    """Joins the fleet group and reports each assignment.

    Args:
        bootstrap: Kafka bootstrap servers.
        topic: The fleet topic (its partitions are what is assigned).
        group: The consumer group.
        view: This worker's view of the fleet (the assignor reads it when this member
            leads a round; a change of its placement digest makes a rebalance).
        me: This worker's metadata now (capacity, model, what it runs).
        on_assignment: ``(partitions, leader_data)``: called on the member's thread with
            every assignment (``leader_data``: what the leader added: ``waiting``,
            ``moving``), and with no partitions when the group client fails (stop
            everything before leaving).  It returns whether the member must rejoin at once
            (it stopped a camera another member is to take).
        on_plan: Called with each plan this member computes as leader.
        session_timeout_s: Silence after which the group drops this member, seconds.
        security: kafka-python SSL/SASL options.
        client_id: Kafka client id.
        apply_timeout_s: Longest ``on_assignment`` may take, seconds (the group's poll
            interval is sized for it).
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group: str,
        view: FleetView,
        me: Callable[[], MemberInfo],
        on_assignment: Callable[[frozenset[int], Mapping[str, Any]], bool],
        on_plan: Callable[[Plan], None] | None = None,
        session_timeout_s: float = 10.0,
        security: Mapping[str, Any] | None = None,
        client_id: str = "argus-worker",
        apply_timeout_s: float = 20.0,
    ) -> None:
        self.topic = topic
        self.view = view
        self._on_assignment = on_assignment
        self.leader = False
        self._led = False
        self.assignor = CapacityAssignor(topic, me, self._cameras, self._planned)
        self._on_plan = on_plan
        session_ms = int(session_timeout_s * 1000)
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "latest",
            "partition_assignment_strategy": [self.assignor],
            "session_timeout_ms": session_ms,
            "heartbeat_interval_ms": max(100, session_ms // 4),
            # the member thread applies an assignment between polls (stops are bounded by
            # apply_timeout_s): past this the client would leave the group meanwhile
            "max_poll_interval_ms": max(30_000, 3 * session_ms, int(apply_timeout_s * 2000)),
            "request_timeout_ms": session_ms + 5000,
            "fetch_max_wait_ms": 100,
            **dict(security or {}),
        }
        self._lock = threading.Lock()
        self._pending: frozenset[int] | None = None
        self._applying: frozenset[int] = frozenset()
        self._apply_timeout_s = apply_timeout_s
        self._partitions: frozenset[int] = frozenset()
        self._joined = False
        self._rejoin = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rebalances = 0
        self.last_error: str | None = None
        self.hand_over_s = max(5.0, 2 * session_timeout_s)
        """Longest a leaving leader spends handing its cameras over, seconds."""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fleet-member", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Leave the group (the others rebalance at once) and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def request_rejoin(self) -> None:
        """Ask for a rebalance soon (thread-safe)."""
        self._rejoin.set()

    def claimed(self) -> frozenset[int]:
        """The partitions of an assignment received and not yet applied (thread-safe).

        A member's join metadata says it runs these as well as what it runs now: the group
        client joins a round from its own thread, which may be after an assignment arrived
        and before the member started its cameras, and the leader must not give them to
        anyone else then.  Once applied, only the cameras actually running count (a camera
        declined or failed to start is not claimed)."""
        with self._lock:
            return (self._pending or frozenset()) | self._applying

    def health(self) -> MemberHealth:
        return MemberHealth(
            joined=self._joined,
            partitions=sorted(self._partitions),
            leader=self.leader,
            rebalances=self.rebalances,
            last_error=self.last_error,
        )

    # -- callbacks from the group client ---------------------------------------------------

    def _cameras(self) -> Mapping[int, list[CameraDefinition]]:
        return self.view.by_partition()

    def _planned(self, plan: Plan) -> None:
        self._led = True
        if self._on_plan is not None:
            self._on_plan(plan)

    def _received(self, partitions: frozenset[int]) -> None:
        with self._lock:
            self._pending = partitions
        self.leader, self._led = self._led, False
        self._joined = True

    # -- thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while not self._stop.is_set():
            consumer: KafkaConsumer | None = None
            leave = False
            try:
                consumer = KafkaConsumer(**self._config)
                consumer.subscribe([self.topic], listener=_Listener(self))
                self._follow(consumer)
                leave = self._hand_over(consumer)
            except Exception as e:  # the group client failed: a new one, after a pause
                self.last_error = f"{type(e).__name__}: {e}"[:300]
                if _broker_away(e):  # nobody can take them either: the cameras run on
                    log.warning(
                        "fleet: the broker does not answer (%s); the cameras keep running; "
                        "joining the group again",
                        self.last_error,
                    )
                else:
                    log.warning(
                        "fleet: group client failed (%s); stopping this worker's cameras "
                        "before leaving the group, then joining again",
                        self.last_error,
                    )
                    leave = consumer is not None and self._may_leave(consumer)
                    self._apply(frozenset(), {})  # the others may take them: never run twice
                backoff.wait(self._stop)
            finally:
                if consumer is not None:
                    _close(consumer, leave=leave)
                self._joined = False

    def _may_leave(self, consumer: KafkaConsumer) -> bool:
        """Whether LeaveGroup is safe now: this member follows a settled round (it has not
        joined a newer one, and did not lead the last)."""
        try:
            coordinator = consumer._coordinator
            settled = coordinator.state is MemberState.STABLE and not coordinator.rejoin_needed
        except Exception:  # a client torn down mid-way: the session timeout will do
            return False
        return bool(settled and not self.leader)

    def _hand_over(self, consumer: KafkaConsumer) -> bool:
        """After ``stop``, before closing: settle this member's place in the group; whether
        it may then send LeaveGroup (see the module's docstring).

        A follower of a settled round may at once.  Otherwise the member finishes the round
        it is in; a leader then asks for one more round (its metadata now offers no
        capacity, runs nothing), and another while a round still gives it partitions (one
        planned from what it said before it stopped), until its cameras are with the others
        or ``hand_over_s`` has passed.  Assignments received meanwhile are not applied."""
        coordinator = consumer._coordinator
        deadline = time.monotonic() + self.hand_over_s
        rounds = 0
        asked_at: int | None = None
        while time.monotonic() < deadline:
            if coordinator.state is MemberState.UNJOINED or coordinator.coordinator_unknown():
                return False  # not in a group (or the broker is away): nothing to hand over
            with self._lock:
                got, self._pending = self._pending, None
            if got is not None:
                rounds += 1
                self._partitions = got
            if coordinator.state is MemberState.STABLE and not coordinator.rejoin_needed:
                if not self.leader:
                    return True
                if not self._partitions:
                    return False  # its cameras are with the others (or it had none)
                if asked_at is None or rounds > asked_at:
                    if asked_at is None:
                        log.info("fleet: leading the group; handing the cameras over first")
                    asked_at = rounds
                    coordinator.request_rejoin()
            consumer.poll(timeout_ms=200, max_records=1)
        log.warning(
            "fleet: the cameras were not handed over within %.0f s; leaving the group to "
            "drop this worker after its session timeout",
            self.hand_over_s,
        )
        return False

    def _apply(self, partitions: frozenset[int], leader_data: Mapping[str, Any]) -> bool:
        """``on_assignment`` (what it applies stays claimed until it returns); an error is
        logged (the group client is not torn down for it) and asks for another round."""
        try:
            return self._on_assignment(partitions, leader_data)
        except Exception:
            log.exception("fleet: applying an assignment failed")
            return True
        finally:
            with self._lock:
                self._applying = frozenset()

    def _follow(self, consumer: KafkaConsumer) -> None:
        digest = self.view.placement_digest()
        changed_at: float | None = None
        moving_at: float | None = None
        version = self.view.version
        while not self._stop.is_set():
            consumer.poll(timeout_ms=200, max_records=50)  # rebalances happen in here
            self.last_error = None
            with self._lock:
                pending, self._pending = self._pending, None
                if pending is not None:
                    self._applying = pending  # still claimed while it is applied
            if pending is not None:
                self._partitions = pending
                self.rebalances += 1
                version = self.view.version
                leader_data = self.assignor.last_user_data
                if self._apply(pending, leader_data):
                    self._rejoin.set()
                if self.leader and leader_data.get("moving"):
                    # cameras were held back to move: another round once their members
                    # have stopped them (each also asks; this covers one that asked early)
                    moving_at = time.monotonic()
            elif self._joined and self.view.version != version:
                # a definition changed (rules, zones, a source): applied to the cameras
                # of this worker's partitions at once, without waiting for a rebalance
                version = self.view.version
                if self._apply(self._partitions, self.assignor.last_user_data):
                    self._rejoin.set()
            now_digest = self.view.placement_digest()
            if now_digest != digest:
                digest, changed_at = now_digest, time.monotonic()
            if changed_at is not None and time.monotonic() - changed_at >= REJOIN_SETTLE_S:
                changed_at = None
                log.info("fleet: the cameras changed; asking the group to rebalance")
                self._rejoin.set()
            if moving_at is not None and time.monotonic() - moving_at >= MOVING_RECHECK_S:
                moving_at = None
                self._rejoin.set()
            if self._rejoin.is_set():
                self._rejoin.clear()
                # kafka-python has no public call for this (Java: enforceRebalance)
                consumer._coordinator.request_rejoin()


def _broker_away(error: BaseException) -> bool:
    """Whether a group client error says the broker is away or slow (kafka-python's
    retriable errors: a refused connection, a timeout, no coordinator) rather than a fault."""
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


def _close(consumer: KafkaConsumer, *, leave: bool) -> None:
    """Close the group client; with ``leave`` false, without LeaveGroup (kafka-python sends
    it from ``close`` unless the member is unjoined)."""
    if not leave:
        consumer._coordinator.state = MemberState.UNJOINED
    with contextlib.suppress(Exception):
        consumer.close(autocommit=False, timeout_ms=5000)
