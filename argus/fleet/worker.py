"""``FleetWorker``: ``argus worker`` — the cameras a consumer group gives it, run.

The worker's cameras are not in its config: they are the definitions on the fleet topic
that live in the partitions the group assigned it (``argus.fleet.assign``), at most its
capacity, and only those its model serves.  They start and stop while it runs, on the
same detector, bus and evidence store, without restarting anything:

* an assignment that adds a partition starts its cameras (each with a run marker, so
  the store closes as ``interrupted`` what a dead worker left open of them);
* one that takes a partition away stops its cameras first (open events closed and sent),
  then the member rejoins so the next round hands them on (never run twice at once);
* a definition changed on the topic is applied to the camera in place: its rules
  reloaded (rule state kept for unchanged rules), or, when the camera itself changed
  (source, zones, lines), the camera restarted;
* SIGTERM stops every camera (events closed), then leaves the group: the others take
  the cameras at once (a leader hands them over in a round first: see ``member``).
  SIGKILL leaves the group to notice after its session timeout.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.control import DEFAULT_CONTROL_TOPIC, KafkaControlSubscriber, ensure_control_topic
from alerts.control.state import ControlState
from alerts.live import CameraStatus, Demand, FanOut
from alerts.live.board import LiveSink
from alerts.live.demand import DEMAND_PREFIX
from alerts.live.preview import Preview
from alerts.sinks import JsonlSink
from argus.app import (
    Pipeline,
    build_camera,
    build_detector,
    clip_maker,
    components_health,
    kafka_bus,
    kafka_live_publisher,
    kafka_security,
    open_evidence,
    person_ids,
)
from argus.config import ConfigError, WorkerConfig
from argus.fleet import metrics
from argus.fleet.assign import MemberInfo, Plan
from argus.fleet.definitions import CameraDefinition, SecretError, resolve_source
from argus.fleet.member import FleetMember
from argus.fleet.view import FleetView
from argus.poses import PoseService
from argus.rulebook import RuleBook
from argus.runner import Runner
from selector.rules.base import needs_pose

log = logging.getLogger("argus.fleet")

STOP_CAMERA_S = 15.0
"""Longest wait for the cameras leaving this worker in one round to finish (frames in
flight, events closed, records flushed), seconds; one not out by then stays counted as
running here (no one else is given it) and a later round tries again."""


@dataclass
class _Running:
    definition: CameraDefinition
    book: RuleBook


class _WithWaiting:
    """The live sink, with the statuses of the cameras this worker (as the group's leader)
    knows to be waiting added to every report."""

    def __init__(self, sink: LiveSink, extra: Any) -> None:
        self._sink = sink
        self._extra = extra

    def report(self, statuses: Any) -> None:
        self._sink.report([*statuses, *self._extra()])

    def picture(self, preview: Preview) -> None:
        self._sink.picture(preview)

    def wanted(self) -> Any:
        return self._sink.wanted()


class FleetWorker:
    """One fleet worker process's parts (see the module docstring).

    Args:
        cfg: The worker's config.
        home: ``$ARGUS_HOME`` (models, spools, evidence).
        source: Where ``cfg`` came from (for messages).

    Raises:
        ConfigError, ModelError, ...: As ``build_pipeline`` (the detector and the stores
            are opened here).
    """

    def __init__(self, cfg: WorkerConfig, *, home: Path, source: str) -> None:
        assert cfg.bus.kafka is not None  # WorkerConfig requires it
        self.cfg = cfg
        self.kafka = cfg.bus.kafka
        self.name = cfg.fleet.name or f"{socket.gethostname()}-{os.getpid()}"[:128]
        self.source = source
        self.shared = cfg.shared()
        detector, spec = build_detector(cfg.detector, home / "models", source, home)
        self.names = tuple(spec.class_names)
        evidence = open_evidence(self.shared, home)
        bus = kafka_bus(self.kafka, home)
        sinks = [JsonlSink(s.jsonl) for s in cfg.sinks]
        for sink in sinks:
            bus.subscribe(sink.write)
        clips = clip_maker(self.shared, evidence, list(self.names), home, source)
        self.ready = threading.Condition()
        self.pose = PoseService(home / "models")
        self.runner = Runner(
            [],
            detector,
            bus,
            evidence,
            ready=self.ready,
            batch_size=cfg.detector.batch_size,
            max_wait_s=cfg.detector.max_wait_ms / 1000.0,
            progress_interval_s=cfg.log.progress_interval_s,
            run_id=str(uuid.uuid4()),
            clips=clips,
            person_ids=person_ids(list(self.names)),
            keep_running=True,
            pose=self.pose,
            track_summaries=cfg.search.track_summaries,
        )
        if clips is not None:
            clips.start()
        self.pipeline = Pipeline(
            runner=self.runner,
            bus=bus,
            evidence=evidence,
            sinks=sinks,
            class_names=self.names,
            clips=clips,
        )
        self.clips = clips
        self.view: FleetView | None = None
        self.member: FleetMember | None = None
        self.control = ControlState()
        self.demand = Demand()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self.declined: dict[str, str] = {}
        """Cameras of this worker's partitions it does not run, by id: why."""
        self.waiting: dict[str, str] = {}
        """Cameras no worker runs, by id: why (what the group's leader said)."""
        self._waiting_since: dict[str, float] = {}
        self._subscribers: list[KafkaControlSubscriber] = []
        self._stopping = False
        self._cameras_done = False
        self._live_out: Any = None
        metrics.CAPACITY.set(cfg.fleet.capacity)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, synced_timeout_s: float = 30.0) -> None:
        """Read the fleet topic, join the group, publish statuses (the cameras start as
        assignments arrive); ``run`` then runs them.

        Raises:
            kafka.errors.KafkaError: The broker did not answer for the fleet topic.
        """
        fleet = self.cfg.fleet
        security = kafka_security(self.kafka)
        parts = ensure_control_topic(
            self.kafka.bootstrap,
            fleet.topic,
            partitions=fleet.partitions,
            security=security,
            client_id=f"argus-worker-{self.name}-admin",
        )
        if not parts:
            raise LookupError(f"fleet topic {fleet.topic} does not exist and cannot be created")
        self.view = FleetView(len(parts))
        reader = KafkaControlSubscriber(
            self.kafka.bootstrap,
            self.view.apply,
            on_record=self.view.apply,
            topic=fleet.topic,
            security=security,
            client_id=f"argus-worker-{self.name}-fleet",
            partitions=fleet.partitions,
        )
        control = KafkaControlSubscriber(
            self.kafka.bootstrap,
            self._control_message,
            topic=DEFAULT_CONTROL_TOPIC,
            security=security,
            client_id=f"argus-worker-{self.name}-control",
        )
        self._subscribers = [reader, control]
        for sub in self._subscribers:
            sub.start()
        if not reader.wait_synced(synced_timeout_s):
            raise TimeoutError(f"fleet topic {fleet.topic} not read within {synced_timeout_s} s")
        control.wait_synced(5.0)
        self._live_out = kafka_live_publisher(self.kafka, self.demand)
        self.runner.live = _WithWaiting(FanOut([self._live_out]), self._waiting_statuses)
        self.member = FleetMember(
            bootstrap=self.kafka.bootstrap,
            topic=fleet.topic,
            group=fleet.group,
            view=self.view,
            me=self.me,
            on_assignment=self.apply_assignment,
            on_plan=self._led,
            session_timeout_s=fleet.session_timeout_s,
            security=security,
            client_id=f"argus-worker-{self.name}",
            apply_timeout_s=STOP_CAMERA_S + 5.0,
        )
        self.member.start()
        log.info(
            "worker %s: capacity %d, model %s, fleet topic %s (%d partitions), group %s",
            self.name,
            fleet.capacity,
            self.cfg.detector.model,
            fleet.topic,
            len(parts),
            fleet.group,
        )

    def run(self) -> Any:
        """Run the cameras until ``stop``; returns the runner's result."""
        return self.runner.run()

    def stop(self) -> None:
        """Stop every camera (thread-safe, signal-safe): ``run`` returns once their events
        are closed; ``close`` then leaves the group.  From now on the worker takes no camera
        (it tells the group its capacity is 0)."""
        self._stopping = True
        self.runner.stop()

    def close(self, *, stopped: bool = False) -> None:
        """After ``run``: leave the group (the others take the cameras), then deliver what
        is left and close the bus, evidence and subscribers."""
        self._cameras_done = True  # nothing runs here any more: the group may place them
        if self.member is not None:
            self.member.stop()
        for sub in self._subscribers:
            try:
                sub.stop()
            except TimeoutError as e:
                log.warning("%s", e)
        if self._live_out is not None:
            self._live_out.close()
        self.pipeline.close(stopped=stopped)

    # -- the group --------------------------------------------------------------------------

    def me(self) -> MemberInfo:
        """This worker as the group sees it: capacity, model, and the partitions it runs or
        was last assigned (a leader never gives those to another member)."""
        view = self.view
        with self._lock:
            ids = list(self._running)
        running = (
            frozenset(p for c in ids if (p := view.partition(c)) is not None)
            if view is not None
            else frozenset()
        )
        if self.member is not None:  # assigned and about to start counts as running
            running |= self.member.claimed()
        if self._cameras_done:
            running = frozenset()
        declined = (
            frozenset(p for c in self.declined if (p := view.partition(c)) is not None)
            if view is not None
            else frozenset()
        )
        return MemberInfo(
            member_id="",
            name=self.name,
            capacity=0 if self._stopping else self.cfg.fleet.capacity,
            model=self.cfg.detector.model,
            classes=frozenset(self.names),
            running=running,
            declined=declined - running,
        )

    def _led(self, plan: Plan) -> None:
        now = time.time()
        self._waiting_since = {c: self._waiting_since.get(c, now) for c in plan.waiting}
        self.waiting = dict(plan.waiting)

    def apply_assignment(self, partitions: frozenset[int], leader: Mapping[str, Any]) -> bool:
        """Run exactly the cameras of ``partitions`` this worker can (member thread).

        Returns:
            Whether a camera was stopped or newly declined (the group must rebalance to
            hand it on).
        """
        view = self.view
        assert view is not None
        if self._stopping:  # leaving: the cameras are stopped by the run's end
            return False
        if self.member is not None and not self.member.leader:
            self.waiting, self._waiting_since = {}, {}
        waiting = leader.get("waiting")
        metrics.WAITING.set(len(waiting) if isinstance(waiting, dict) else 0)
        me = self.me()
        desired: dict[str, CameraDefinition] = {}
        declined: dict[str, str] = {}
        for camera_id, d in sorted(view.definitions().items()):
            if view.partition(camera_id) not in partitions:
                continue
            if not me.can_serve(d):
                declined[camera_id] = f"model {me.model} does not serve it"
            elif len(desired) >= me.capacity:
                declined[camera_id] = f"over this worker's capacity ({me.capacity})"
            else:
                desired[camera_id] = d
        with self._lock:
            running = dict(self._running)
        stopped = False
        restart = [
            cid
            for cid, d in desired.items()
            if cid in running and running[cid].definition.camera != d.camera
        ]
        leaving = sorted(set(running) - set(desired))
        still = self._stop_cameras([*leaving, *restart])  # all at once, one deadline
        stopped = bool(leaving)
        for camera_id, d in desired.items():
            have = running.get(camera_id)
            if camera_id in still:  # not out yet: started again by a later round
                declined[camera_id] = "still stopping here after a change"
                continue
            if have is not None and camera_id not in restart:
                if have.definition != d:
                    self._reload_rules(camera_id, have, d)
                continue
            problem = self._start_camera(d)
            if problem is not None:
                declined[camera_id] = problem
        newly_declined = bool(set(declined) - set(self.declined))
        self.declined = declined
        metrics.CAMERAS.set(len(self._running))
        # a camera stopped, or one newly declined: another round places it elsewhere
        return stopped or newly_declined

    def _start_camera(self, d: CameraDefinition) -> str | None:
        """Start one camera; why not, or ``None``."""
        extra = {"camera_id": d.camera_id}
        try:
            cfg = self.cfg.for_camera(d.camera, list(d.rules))
            cam, book = build_camera(
                cfg,
                cfg.cameras[0],
                self.names,
                self.ready,
                clips=self.clips,
                decode_threads=1,
                source=f"fleet camera {d.camera_id!r}",
                resolve=resolve_source,
            )
        except (ConfigError, SecretError) as e:
            reason = "; ".join(e.problems) if isinstance(e, ConfigError) else str(e)
            log.error("camera not started: %s", reason[:300], extra=extra)
            return reason[:300]
        except Exception as e:  # e.g. an unsupported source: the other cameras go on
            log.exception("camera not started", extra=extra)
            return f"{type(e).__name__}"[:300]
        with self._lock:
            self._running[d.camera_id] = _Running(d, book)
        self.runner.add_camera(cam)
        if needs_pose(cam.selector.rules):
            self.pose.preload()
        metrics.STARTS.inc()
        return None

    def _stop_cameras(self, camera_ids: list[str]) -> set[str]:
        """Stop cameras, all at once, waiting at most ``STOP_CAMERA_S`` in all; the ids not
        out by then (still counted as running here: a later round hands them on)."""
        waits = {cid: self.runner.remove_camera(cid) for cid in camera_ids}
        deadline = time.monotonic() + STOP_CAMERA_S
        still: set[str] = set()
        for camera_id, done in waits.items():
            if not done.wait(max(0.0, deadline - time.monotonic())):
                still.add(camera_id)
                log.error(
                    "camera did not stop within %.0f s; kept here until it does",
                    STOP_CAMERA_S,
                    extra={"camera_id": camera_id},
                )
                continue
            with self._lock:
                self._running.pop(camera_id, None)
            metrics.STOPS.inc()
        if still and self.member is not None:
            self.member.request_rejoin()  # try again after this round
        return still

    def _reload_rules(self, camera_id: str, have: _Running, d: CameraDefinition) -> None:
        try:
            rules, policies = have.book.build(list(d.rules))
        except ConfigError as e:
            log.error(
                "new rules refused, the rules in force stay: %s",
                "; ".join(e.problems)[:300],
                extra={"camera_id": camera_id},
            )
            return
        self.runner.reconfigure(camera_id, rules, policies)
        with self._lock:
            self._running[camera_id] = _Running(d, have.book)

    # -- control topic -------------------------------------------------------------------------

    def _control_message(self, key: str, value: Any) -> None:
        if isinstance(key, str) and key.startswith(DEMAND_PREFIX):
            self.demand.apply(key, value)
            return
        if key == "rules":
            log.info("fleet worker: the rules come with the camera definitions; rule set ignored")
            return
        if self.control.apply(key, value):
            self.runner.set_suppressions(self.control.suppressions.values())

    # -- reports ----------------------------------------------------------------------------------

    def _waiting_statuses(self) -> list[CameraStatus]:
        now = time.time()
        return [
            CameraStatus(
                camera_id=camera_id,
                state="waiting",
                since=self._waiting_since.get(camera_id, now),
                detail=reason[:300],
                reported_at=now,
            )
            for camera_id, reason in list(self.waiting.items())
        ]

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: the worker, its membership, its cameras and what it declined."""
        member = self.member.health() if self.member is not None else None
        return {
            "worker": self.name,
            "capacity": self.cfg.fleet.capacity,
            "model": self.cfg.detector.model,
            "group": dataclasses.asdict(member) if member is not None else None,
            "cameras": self.runner.health(),
            "declined": dict(self.declined),
            "waiting": dict(self.waiting) if member is not None and member.leader else {},
            "refused_definitions": self.view.refused() if self.view is not None else {},
            "fleet_cameras": len(self.view.definitions()) if self.view is not None else 0,
            "components": components_health(self.pipeline.bus, None, self.pipeline.evidence),
        }

    @property
    def ready_now(self) -> bool:
        """Joined the group (its cameras known)."""
        return self.member is not None and self.member.health().joined
