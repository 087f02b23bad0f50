"""The pipeline's process model: one decode thread per camera, one detector loop.

::

    camera thread ──► FrameSlot ─┐
    camera thread ──► FrameSlot ─┼─► detector loop: batch ► detect ► per-camera selector
    camera thread ──► FrameSlot ─┘        ► snapshot (start events) ► bus ► sinks / store

* Each camera's source runs in its own thread (PyAV releases the GIL while decoding)
  and hands frames to a bounded ``FrameSlot`` whose overflow policy follows the source:
  live (cameras, files at real speed) keep the newest frame, ``realtime: false`` files
  block.  A camera whose source fails is marked failed; the others carry on.
* The detector loop takes ready frames round-robin across cameras (one per camera per
  pass, keeping each camera's order), up to ``batch_size``, waiting at most
  ``max_wait_ms`` for a partial batch to fill, and runs the detector once per batch.
* Each decode thread also measures every frame (``detectors.scene.SceneAnalyzer``:
  motion, camera health, foreground blobs) before handing it over, off the detector's
  critical path.  The detector loop then asks the camera's ``MotionGate`` whether the
  frame needs the detector: a quiet camera with no track is looked at only every
  ``heartbeat_s``; its other frames go through the selector with ``detected=False``.
* Selector state is per camera and touched only by the detector loop's thread; rule
  sets and suppressions changed at run time (``reconfigure``, ``set_suppressions``)
  are queued and applied by that thread between batches.
* A live camera that delivers nothing for ``NO_SIGNAL_TICK_S`` is told so
  (``CameraSelector.no_signal``) every tick, so camera-health rules can raise
  ``signal_lost`` while the source reconnects.
* Under a service manager (``$NOTIFY_SOCKET``) a watchdog thread tells it ``READY=1`` once
  the cameras are started, ``STOPPING=1`` on stop, and pings its watchdog only while the
  pipeline progresses (:meth:`Runner.progress_marks`).

This module is the only place where threads, queues and their policies live.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, cast

import numpy as np

from alerts.bus import EventBus
from alerts.clips import ClipMaker
from alerts.evidence import EvidenceStore, clip_key, masked_key, render_snapshot, snapshot_key
from alerts.live import CameraStatus, LiveSink, Overlay, Want, WatchOut, state_of
from alerts.live.maker import PreviewMaker
from alerts.live.status import HEALTH_EVENT_STATES
from alerts.masking import WHOLE_PICTURE, Boxes, mask_people, person_boxes, union
from alerts.schema import run_marker
from argus import metrics
from argus.notify import Mark, Notifier, Watchdog
from argus.poses import PoseService
from argus.slots import FrameSlot
from argus.summaries import TrackSummarizer
from detectors.detections import Detections
from detectors.gating import MotionGate
from detectors.scene import SceneAnalyzer, SceneStats
from ingest import ActivityControl, Source, SourceError, SourceState
from ingest.evidence_stream import EvidenceStream
from ingest.frame import Frame
from ingest.packets import PacketRing
from selector.camera import CameraSelector
from selector.event import Event
from selector.incidents import RulePolicy
from selector.lines import Line
from selector.rules.base import FrameInfo, Rule, needs_scene
from selector.rules.registry import reason_of
from selector.suppression import Suppression
from selector.zones import PolygonZone

log = logging.getLogger(__name__)

Detect = Callable[[Sequence[np.ndarray]], list[Detections]]


class DetectorStages(Protocol):
    """A detector split in three stages (``detectors.OnnxDetector`` is one), so the runner
    can run ``infer`` on its own thread while it prepares the next batch and finishes the
    last one."""

    def prepare(self, images: Sequence[np.ndarray]) -> Any:
        """Stage 1 (detector loop): images to network input."""
        ...

    def infer(self, prepared: Any) -> Any:
        """Stage 2 (inference thread): run the network."""
        ...

    def finish(self, inferred: Any) -> list[Detections]:
        """Stage 3 (detector loop): raw outputs to one ``Detections`` per image."""
        ...


class _CallableStages:
    """A plain ``detect(images)`` callable as stages: all of the work in ``infer``."""

    def __init__(self, detect: Detect) -> None:
        self._detect = detect

    def prepare(self, images: Sequence[np.ndarray]) -> Any:
        return list(images)

    def infer(self, prepared: Any) -> Any:
        return self._detect(prepared)

    def finish(self, inferred: Any) -> list[Detections]:
        return list(inferred)


def _as_stages(detect: Detect | DetectorStages) -> DetectorStages:
    """``detect`` itself when it has the three stages, else wrapped."""
    if all(callable(getattr(detect, a, None)) for a in ("prepare", "infer", "finish")):
        return cast(DetectorStages, detect)
    return _CallableStages(cast(Detect, detect))


@dataclass
class _Flight:
    """A batch whose inference was handed to the inference thread."""

    batch: list[tuple[CameraRuntime, Item]]
    need: list[bool]
    future: Future[Any] | None
    """The inference (None: no frame of the batch needs the detector)."""

    @property
    def cameras(self) -> set[str]:
        return {cam.camera_id for cam, _ in self.batch}


COMPLETE_FLUSH_S = 2.0
"""How long completing a camera waits for the bus to deliver, seconds (a remote bus keeps
what it could not deliver in its on-disk spool)."""

NO_SIGNAL_TICK_S = 1.0
"""A live camera silent this long (wall seconds) is told so once per this interval."""

Item = tuple[Frame, SceneStats | None]
"""What a camera's slot holds: a decoded frame and what the decode thread measured on it."""

LIVE_REPORT_S = 1.0
"""How often each camera's status is reported to the live sink, seconds (wall clock)."""

LIVE_WANTED_S = 0.25
"""How often the runner asks the live sink which cameras are watched, seconds: a wall that
opens gets its first pictures within this (plus one frame)."""

LIVE_TRACKS_KEEP_S = 1.0
"""A frame the detector skipped is masked with the people of the last frame it ran on when
that is at most this old (seconds of video), or, with a motion gate, its heartbeat plus this:
the gate skips only frames where nothing moved since.  Older: the whole picture is blurred."""

MAX_DETAIL = 300
"""Longest failure reason a camera status carries, characters."""

JUDGE_TIMEOUT_S = 5.0
"""Longest a quiet camera's decoder waits for the selector's verdict on a sparse frame
(wall seconds) before decoding on; only a stalled detector loop makes it wait that long."""

LATENCY_SAMPLES = 10_000
"""Most recent frame-to-event latencies kept for :attr:`Runner.latencies_s`."""

MAX_BATCH_FAILURES = 10
"""Consecutive failed detector batches after which the run gives up (a transient error,
e.g. one GPU out-of-memory, is logged and the next batch is tried)."""

RECONNECT_PATIENCE_S = 900.0
"""Longest a reconnecting camera's retry loop may go without a sign of life (an attempt, a
state change) before it counts as stuck, seconds: above the longest wait between attempts
a config allows (``reconnect.max_s`` <= 600 s, +20 % jitter) plus one attempt's time limits."""


@dataclass
class CameraRuntime:
    """Everything the runner keeps for one camera."""

    camera_id: str
    source: Source
    selector: CameraSelector
    slot: FrameSlot[Item]
    zones: Mapping[str, PolygonZone] = field(default_factory=dict)
    scene: SceneAnalyzer | None = None
    """Measures every frame on the decode thread (None: no measures, no gating)."""
    gate: MotionGate | None = None
    """Decides which frames need the detector (None: every frame)."""
    activity: ActivityControl | None = None
    """Activity-driven decoding: the source decodes sparsely while the gate is idle (None:
    every frame; needs ``gate`` and ``scene``)."""
    """Zones by name: drawn on snapshots, checked against the frame size at the first frame."""
    thread: threading.Thread | None = None
    failed: str | None = None
    """Why the source gave up (None while healthy)."""
    frame_size: tuple[int, int] | None = None
    zone_problems: list[str] = field(default_factory=list)
    processed: int = 0
    detected: int = 0
    """Frames the detector ran on (``processed - detected`` were gated out)."""
    events: int = 0
    last_pts_s: float | None = None
    last_seq: int = -1
    last_frame_mono: float | None = None
    """Monotonic time the last frame was processed (for signal-lost ticks)."""
    last_wall: float | None = None
    next_no_signal: float = 0.0
    held: dict[str, int] = field(default_factory=dict)
    """Event starts the selector's gate held back so far, by reason (for the metric)."""
    first_wall: float | None = None
    open_snapshots: dict[str, str | None] = field(default_factory=dict)
    """event_id -> snapshot key of events started and not yet ended."""
    packets: PacketRing | None = None
    """The camera's recent compressed video, for clips (None: no clips)."""
    evidence: EvidenceStream | None = None
    """The camera's evidence stream (its main stream): clips come from its ring while it
    streams (None: from ``packets``)."""
    summaries: TrackSummarizer | None = None
    """Builds the camera's track summaries for search (None: none are made)."""
    pose_wanted: list[tuple[float, float, float, float]] = field(default_factory=list)
    """Boxes (px) the rules asked poses of after the last frame, for the next one."""
    people: Boxes | None = None
    """Person boxes (detections and tracks) of the frame whose events are being published:
    what the masked snapshot blurs."""
    finished: bool = False
    """Set once the run is over: frames processed, events closed, sinks flushed."""
    lines: Mapping[str, Line] = field(default_factory=dict)
    """Lines by name: drawn on live pictures."""
    shown_state: str = ""
    state_since: float = 0.0
    """UNIX time the camera entered ``shown_state``."""
    fps_mark: tuple[float, int] = (0.0, 0)
    """(monotonic time, frames processed) at the last status report (for its fps)."""
    live_tracks: tuple[float, Detections] | None = None
    """(pts_s, tracks) of the last frame the detector ran on (for live pictures)."""
    watched: list[tuple[int | None, tuple[float, float, float, float]]] = field(
        default_factory=list
    )
    """(track id, box) of what the camera's rules are watching, as of the last status
    report (live pictures draw the track where it is now)."""
    next_preview: float = 0.0
    """Monotonic time before which no live picture is made of this camera."""
    leaving: list[threading.Event] | None = None
    """Set by :meth:`Runner.remove_camera`: the camera is being taken out of the run; its
    events are set once it is out (its frames done, its events closed, its records
    flushed)."""
    stream_id: str = ""
    """Part of every event id of this camera. Live sources: set at the first frame (its wall
    time, ms), so a restarted run never re-issues earlier ids. Files replayed as fast as
    possible: the file's content fingerprint, so the same recording gives the same ids and
    two recordings under one camera id never collide."""

    @property
    def state(self) -> str:
        """``failed``, the source's state, or ``draining`` between the source's end and the
        end of processing (frames still queued, events not yet closed)."""
        if self.failed:
            return "failed"
        state = self.source.state.value
        if state == "ended" and not self.finished:
            return "draining"
        return state

    def health(self) -> dict[str, Any]:
        """Camera state for /readyz and logs (no URLs: they may hold credentials)."""
        return {
            "state": self.state,
            "error": self.failed,
            "frames_processed": self.processed,
            "frames_detected": self.detected,
            "frames_dropped": self.slot.dropped,
            "frames_thinned": 0 if self.activity is None else self.activity.frames_thinned,
            "quiet": None if self.activity is None else self.activity.quiet,
            "look_backs": None if self.activity is None else self.activity.look_backs,
            "events": self.events,
            "last_pts_s": self.last_pts_s,
            "frame_size": list(self.frame_size) if self.frame_size else None,
            "zone_problems": self.zone_problems,
            "evidence": None if self.evidence is None else _evidence_health(self.evidence),
            "ground": None if self.selector.ground is None else self.selector.ground.describe(),
        }


def _evidence_health(evidence: EvidenceStream) -> dict[str, Any]:
    """The evidence stream's state for /readyz (no URL)."""
    s = evidence.stats()
    return {
        "streaming": s.streaming,
        "packets": s.packets,
        "reconnects": s.reconnects,
        "error": s.last_error,
        "frame_size": [s.width, s.height] if s.width else None,
        "codec": s.codec or None,
    }


@dataclass(frozen=True)
class RunResult:
    """Outcome of a run."""

    frames: int
    events: int
    seconds: float
    detected: int
    """Frames that went through the detector (the others were gated out as quiet)."""
    failed: dict[str, str]
    """camera id -> reason, for the cameras whose source failed."""
    interrupted: bool
    fatal: str | None = None
    """Why the whole pipeline gave up (e.g. the detector kept failing), else None."""

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time, all cameras together."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def detector_fraction(self) -> float:
        """Share of processed frames that reached the detector (1.0 without gating)."""
        return self.detected / self.frames if self.frames else 0.0

    @property
    def ok(self) -> bool:
        """True when every camera ran (none failed) and the pipeline did not give up."""
        return not self.failed and self.fatal is None


class Runner:
    """Runs cameras through detector and selector and publishes events on the bus.

    Args:
        cameras: One runtime per camera (source, selector, slot already built).
        detect: The detector: its stages (:class:`DetectorStages`, e.g. an
            ``OnnxDetector``), overlapped across batches, or a plain
            ``detect(images) -> list[Detections]`` (run whole on the inference thread).
        bus: Where event records go.
        evidence: Where snapshots go.
        batch_size: Most frames per detector call.
        max_wait_s: How long a partial batch waits for more frames, seconds.
        progress_interval_s: Seconds between progress log lines.
        clips: Makes each new event's video clip from its camera's ``packets`` (None: no
            clips).
        person_ids: Class ids of people: they are blurred in the masked copy of every
            snapshot (detections and tracks of the frame).
        run_id: This worker run's id (the composition root gives each ``argus run`` a
            uuid4): stamped on every event record published (``run_id``), and announced
            per camera by a run marker when the run starts, before any of the camera's
            events, so the alert store closes what an earlier run left open.  ``None``:
            records are published as ``Event.to_record()`` makes them, and no marker.
        live: Where each camera's status goes every ``LIVE_REPORT_S`` and, for the cameras
            it says are watched, live pictures (drawn and masked on a thread of their own).
        keep_running: Run until ``stop()`` even when no camera is left to run (a fleet
            worker, whose cameras come and go with :meth:`add_camera` and
            :meth:`remove_camera`); else the run ends once every source has ended.
        pose: Answers the rules' pose questions (``FrameInfo.poses``; see
            :data:`selector.rules.base.POSE_HOOK`); None: rules get no poses.
        track_summaries: Publish a summary of every track when it ends, with its
            thumbnail in ``evidence`` (:mod:`argus.summaries`: forensic search).
        notifier: Where service notifications go (``READY=1``, ``STATUS=``,
            ``STOPPING=1``, watchdog pings while :meth:`progress_marks` move); None: the
            one the environment asks for (``$NOTIFY_SOCKET``; a no-op when unset).
    """

    def __init__(
        self,
        cameras: Sequence[CameraRuntime],
        detect: Detect | DetectorStages,
        bus: EventBus,
        evidence: EvidenceStore,
        *,
        ready: threading.Condition,
        batch_size: int = 4,
        max_wait_s: float = 0.01,
        progress_interval_s: float = 10.0,
        run_id: str | None = None,
        clips: ClipMaker | None = None,
        person_ids: Iterable[int] = (),
        live: LiveSink | None = None,
        keep_running: bool = False,
        notifier: Notifier | None = None,
        pose: PoseService | None = None,
        track_summaries: bool = False,
    ) -> None:
        self.cameras = list(cameras)
        self._track_summaries = track_summaries
        self._pose = pose
        self._passes = 0  # passes of the detector loop: its progress mark
        self._frames = 0  # frames run through the selectors (for the status line)
        self.watchdog = Watchdog(
            notifier if notifier is not None else Notifier.from_env(),
            self.progress_marks,
            self.service_status,
        )
        """Service notifications: ready, status, stopping, watchdog pings."""
        self._keep_running = keep_running
        self.live = live
        """Where camera statuses and live pictures go (None: nowhere). May be set until
        ``run`` starts."""
        self._previews: PreviewMaker | None = None
        self._wanted: dict[str, Want] = {}
        self._next_report = 0.0
        self._next_wanted = 0.0
        self._clips = clips
        self._person_ids = frozenset(person_ids)
        self.run_id = run_id
        self._stages = _as_stages(detect)
        self._bus = bus
        self._evidence = evidence
        self._ready = ready
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._progress_interval_s = progress_interval_s
        self._stop = threading.Event()
        self._rr = 0  # round-robin start, so no camera is always served first
        self._by_id = {c.camera_id: c for c in self.cameras}
        self._actions: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.decision_latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        """Frame-to-decision latencies (s) of the latest frames the detector ran on: wall
        clock once the frame's tracks went through the rules (its events, if any, are
        published right after) minus the frame's wall time."""
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        """Frame-to-event latencies (s) of the latest event starts: wall clock at publish
        minus the wall time of the frame that raised them (capture time for live
        sources)."""

    # ----------------------------------------------------------------- threads
    def _decode(self, cam: CameraRuntime) -> None:
        extra = {"camera_id": cam.camera_id}
        decoded = metrics.FRAMES_DECODED.labels(cam.camera_id)
        dropped = metrics.FRAMES_DROPPED.labels(cam.camera_id)
        thinned = metrics.FRAMES_THINNED.labels(cam.camera_id)
        dropped.inc(0)  # the series exists (at 0) from the start
        thinned.inc(0)
        counted = 0  # thinned frames added to the metric so far

        def count_thinned() -> None:  # the count dips when a wake re-decodes a GOP
            nonlocal counted
            if cam.activity is not None and cam.activity.frames_thinned > counted:
                thinned.inc(cam.activity.frames_thinned - counted)
                counted = cam.activity.frames_thinned

        try:
            for frame in cam.source.frames():
                before = cam.slot.dropped
                kept, scene = self._look(cam, frame)
                if not kept:
                    continue  # taken back: the frames before it come first
                # while quiet, the decoder waits for the selector's verdict on each sparse
                # frame: a wake it sends (tracks found on a heartbeat) reaches the source
                # before the next packet, so the frames after this one can still be decoded
                quiet = cam.activity is not None and cam.activity.quiet
                if not cam.slot.put((frame, scene), 1 if quiet else None):
                    break
                if (
                    quiet
                    and cam.activity is not None
                    and not cam.activity.await_judged(frame.pts_s, JUDGE_TIMEOUT_S)
                ):
                    log.debug("no verdict on a sparse frame in time", extra=extra)
                decoded.inc()
                if cam.slot.dropped > before:
                    dropped.inc(cam.slot.dropped - before)
                count_thinned()
        except SourceError as e:
            cam.failed = str(e)
            log.error("camera failed: %s", e, extra=extra)
        except Exception as e:  # a bug in one camera's decoding must not take the others down
            cam.failed = f"unexpected error: {e!r}"
            log.exception("camera crashed", extra=extra)
        finally:
            count_thinned()  # those after the last frame delivered
            # a camera being removed drops its gauges instead (_drop_left): a 0 set here
            # after that would stay, and read as a camera lost
            if cam.leaving is None:
                metrics.CAMERA_UP.labels(cam.camera_id).set(0)
                if cam.evidence is not None:
                    metrics.EVIDENCE_UP.labels(cam.camera_id).set(0)
            cam.slot.close()
            log.info("camera thread ended", extra=extra)

    @staticmethod
    def _measure(cam: CameraRuntime, frame: Frame) -> SceneStats | None:
        """The frame's scene measures (decode thread); ``None`` if there is no analyser
        or it failed (then the frame goes to the detector and health checks skip it)."""
        if cam.scene is None:
            return None
        try:
            return cam.scene.analyze(frame.image, frame.pts_s)
        except Exception:  # measures are an aid: a failure must not lose the frame
            log.exception("scene analysis failed", extra={"camera_id": cam.camera_id})
            return None

    def _look(self, cam: CameraRuntime, frame: Frame) -> tuple[bool, SceneStats | None]:
        """Decode thread: measure ``frame``; a quiet camera whose frame moves decodes every
        frame again (before the detector loop even sees the frame).

        When the source can replay (:meth:`ActivityControl.look_back`: the packets since
        the previous sparse frame are held), the moving frame is taken back and what it
        taught the scene analyser undone: the source delivers the frames since the previous
        sparse frame first, so whatever began between two sparse frames is analysed from
        its start.

        Returns:
            ``(kept, measures)``; ``kept`` is False for a frame taken back (drop it).
        """
        act, gate, analyser = cam.activity, cam.gate, cam.scene
        if act is None or gate is None or not act.quiet:
            return True, self._measure(cam, frame)
        checkpoint = analyser.checkpoint() if analyser is not None and act.can_look_back() else None
        scene = self._measure(cam, frame)
        if scene is not None and not gate.moving(scene.motion):
            return True, scene
        if checkpoint is not None and analyser is not None and act.look_back(frame.pts_s):
            analyser.rollback(checkpoint)
            return False, None
        act.wake(frame.pts_s)
        return True, scene

    @staticmethod
    def _pace(cam: CameraRuntime, frame: Frame) -> None:
        """Detector loop, after a frame: sparse decoding while the gate is idle (no track,
        no motion within its hold), every frame otherwise."""
        act, gate = cam.activity, cam.gate
        if act is None or gate is None:
            return
        if gate.idle(frame.pts_s, cam.selector.has_tracks):
            act.rest(frame.pts_s)
        else:
            act.wake(frame.pts_s)

    # ----------------------------------------------------------------- run-time changes
    def reconfigure(
        self, camera_id: str, rules: Sequence[Rule], policies: Mapping[str, RulePolicy]
    ) -> None:
        """Swap a camera's rule set at run time (thread-safe; applied between batches).

        Rule objects present in the current set keep their state; removed ones close
        their open events at the camera's last frame time.

        Raises:
            KeyError: Unknown camera.
        """
        cam = self._by_id[camera_id]

        def apply() -> None:
            if cam.scene is None and needs_scene(rules):
                cam.scene = SceneAnalyzer()  # a rule that reads the measures came in
            closing = cam.selector.set_rules(rules, policies, cam.last_pts_s)
            for event in closing:
                self._publish(cam, event, None)
            metrics.RULE_RELOADS.labels("rules").inc()
            log.info(
                "rules reloaded: %s",
                ", ".join(r.rule_id for r in rules) or "(none)",
                extra={"camera_id": camera_id},
            )

        self._actions.put(apply)
        self._wake()

    def set_suppressions(self, suppressions: Iterable[Suppression]) -> None:
        """Replace every camera's operator suppressions (thread-safe; applied between
        batches)."""
        items = list(suppressions)

        def apply() -> None:
            for cam in self.cameras:
                cam.selector.set_suppressions(items)
            metrics.RULE_RELOADS.labels("suppressions").inc()
            log.info("suppressions applied: %d", len(items))

        self._actions.put(apply)
        self._wake()

    def add_camera(self, cam: CameraRuntime) -> None:
        """Start running one more camera (thread-safe; applied between batches).

        Its run marker is published with the time it is added (so the store closes what
        another worker, or an earlier run, left open of this camera), then its decoder
        starts.  A camera id already running is refused (logged; its source is closed).
        """

        def apply() -> None:
            if self._stop.is_set():  # the run is over: nothing more starts
                cam.source.close()
                return
            if cam.camera_id in self._by_id:
                log.error("camera already runs here; not added twice", extra=_extra(cam))
                cam.source.close()
                return
            self.cameras.append(cam)
            self._by_id[cam.camera_id] = cam
            cam.state_since = time.time()
            cam.fps_mark = (time.monotonic(), 0)
            self._announce([cam], time.time())
            self._start_decoder(cam)
            log.info("camera added", extra=_extra(cam))

        if self._stop.is_set():
            cam.source.close()
            return
        self._actions.put(apply)
        self._wake()

    def remove_camera(self, camera_id: str) -> threading.Event:
        """Stop running one camera (thread-safe; applied between batches).

        Its source is closed and its waiting frames dropped; the frames in flight are
        finished, its open events are closed at its last frame's time (as at the end of
        a run) and flushed to the bus, then it leaves the run.

        Returns:
            An event set once the camera is out of the run (at once for an unknown id).
        """
        done = threading.Event()

        def apply() -> None:
            cam = self._by_id.get(camera_id)
            if cam is None or self._stop.is_set():  # gone, or the run completed them all
                done.set()
                return
            if cam.leaving is not None:  # already leaving: told when it is out, as the first
                cam.leaving.append(done)
                return
            cam.leaving = [done]
            cam.source.close()
            cam.slot.discard()
            if cam.activity is not None:
                cam.activity.release()

        if self._stop.is_set():  # no loop to apply it: the run completes every camera
            done.set()
            return done
        self._actions.put(apply)
        self._wake()
        return done

    def _drop_left(self) -> None:
        """Take the cameras that were removed and are completed out of the run."""
        for cam in [c for c in self.cameras if c.leaving is not None and c.finished]:
            self.cameras.remove(cam)
            del self._by_id[cam.camera_id]
            self._wanted.pop(cam.camera_id, None)
            for event in cam.leaving or ():
                event.set()
            # its up gauges go (another worker reports it now, or it is gone from the fleet):
            # a 0 left behind would read as a camera lost
            for gauge in (metrics.CAMERA_UP, metrics.EVIDENCE_UP):
                with contextlib.suppress(KeyError):
                    gauge.remove(cam.camera_id)
            log.info("camera removed", extra=_extra(cam))

    def _start_decoder(self, cam: CameraRuntime) -> None:
        cam.thread = threading.Thread(
            target=self._decode, args=(cam,), name=f"decode-{cam.camera_id}", daemon=True
        )
        cam.thread.start()

    def _wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def _apply_actions(self) -> None:
        while True:
            try:
                action = self._actions.get_nowait()
            except queue.Empty:
                return
            try:
                action()
            except Exception:  # a bad change must not stop the cameras
                log.exception("applying a run-time change failed")

    def stop(self) -> None:
        """Ask the run to end soon: thread-safe, idempotent, and safe in a signal handler.

        Only sets a flag and closes the sources (which wakes blocked decoders); the slots
        are emptied by the detector loop itself, so a handler that interrupts the loop
        inside ``FrameSlot.take`` can never race with it.
        """
        if not self._stop.is_set():
            log.info("stopping")
            self._stop.set()
            self.watchdog.stopping()
            for cam in self.cameras:
                cam.source.close()
                if cam.activity is not None:
                    cam.activity.release()

    # ----------------------------------------------------------------- detector loop
    def _gather(self, busy: set[str], limit: int) -> list[tuple[CameraRuntime, Item]]:
        """Up to ``limit`` ready frames, round-robin, each camera's frames in order.

        A camera in ``busy`` (its previous frame still in the inference thread, so its
        selector state is not up to date) gives a frame only when the frame needs the
        detector whatever that state says (:meth:`MotionGate.certain`): gating decisions
        are the same as one batch after another would make.
        """
        batch: list[tuple[CameraRuntime, Item]] = []
        n = len(self.cameras)
        progressed = True
        while len(batch) < limit and progressed:
            progressed = False
            for i in range(n):
                cam = self.cameras[(self._rr + i) % n]
                if cam.camera_id in busy:
                    item = cam.slot.take_if(partial(self._certain, cam))
                else:
                    item = cam.slot.take()
                if item is not None:
                    batch.append((cam, item))
                    progressed = True
                    if len(batch) >= limit:
                        break
        self._rr = (self._rr + 1) % max(n, 1)
        return batch

    @staticmethod
    def _certain(cam: CameraRuntime, item: Item) -> bool:
        frame, scene = item
        if cam.gate is None or scene is None:
            return True
        return cam.gate.certain(scene.motion, frame.pts_s)

    def _wait_for_frames(self, timeout_s: float) -> None:
        """Sleep until a frame arrives (or a change, a close), at most ``timeout_s``; at
        once if a frame is already waiting (checked under the slots' lock: no lost wake-up)."""
        with self._ready:
            if not any(len(cam.slot) for cam in self.cameras):
                self._ready.wait(timeout_s)

    def _all_exhausted(self) -> bool:
        return all(cam.slot.exhausted for cam in self.cameras)

    def _next_batch(
        self, busy: set[str], pending: Future[Any] | None
    ) -> list[tuple[CameraRuntime, Item]]:
        """The next batch: the frames ready now, then, while ``pending`` (the inference in
        flight) runs, every frame that arrives until it is done or the batch is full (the
        batch grows with the load at no cost: the network is busy anyway); with nothing in
        flight, a partial batch waits at most ``max_wait_s`` for more."""
        batch = self._gather(busy, self._batch_size)
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._batch_size and not self._all_exhausted():
            if pending is not None and not pending.done():
                timeout = 0.05
            elif batch and (remaining := deadline - time.monotonic()) > 0:
                timeout = remaining
            else:
                break
            with self._ready:
                if not (pending is not None and pending.done()):
                    self._ready.wait(timeout)
            batch.extend(self._gather(busy, self._batch_size - len(batch)))
        return batch

    def run(self) -> RunResult:
        """Run until every source has ended (finite ones) or ``stop()`` is called.

        A camera whose source has ended or failed is completed as soon as its last frame
        is processed (its open events closed, sinks flushed), whatever the other cameras do.
        """
        t0 = time.monotonic()
        self._announce(self.cameras, time.time())
        self._start_live()
        for cam in self.cameras:
            self._start_decoder(cam)
        self.watchdog.start()  # READY=1: the cameras are started
        next_progress = t0 + self._progress_interval_s
        frames = 0
        fatal: str | None = None
        failures_in_a_row = 0
        flight: _Flight | None = None
        inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        try:
            while not self._stop.is_set():
                self._passes += 1
                self._frames = frames
                self._apply_actions()
                had_flight = flight is not None
                busy = flight.cameras if flight is not None else set()
                self._complete_exhausted(busy)
                self._drop_left()
                self._no_signal_ticks(busy)
                self._live_tick()
                batch = self._next_batch(busy, None if flight is None else flight.future)
                launched: _Flight | None = None
                failed: Exception | None = None
                landed = False
                if batch:
                    try:  # gating and stage 1 here; stage 2 queued behind the flight
                        launched = self._launch(batch, inference)
                    except Exception as e:  # e.g. an image the detector refuses
                        failed = e
                        log.exception("preparing a batch of %d frames failed", len(batch))
                if flight is not None:
                    try:  # stage 3 and the selectors, while the next batch infers
                        frames += self._land(flight)
                        landed = True
                    except Exception as e:  # the detector (e.g. GPU out of memory) failed
                        failed = failed or e
                        log.exception("batch of %d frames failed", len(flight.batch))
                flight = launched
                if failed is not None:
                    failures_in_a_row += 1
                    log.error("%d batches in a row failed", failures_in_a_row)
                    if failures_in_a_row >= MAX_BATCH_FAILURES:
                        fatal = (
                            f"{failures_in_a_row} batches in a row failed; last error: {failed!r}"
                        )
                        log.error("giving up: %s", fatal)
                        break
                elif landed:
                    failures_in_a_row = 0
                if not batch and not had_flight:
                    if self._all_exhausted() and not self._keep_running:
                        break
                    self._wait_for_frames(0.1)
                    continue
                now = time.monotonic()
                if now >= next_progress:
                    self._log_progress(frames, now - t0)
                    next_progress = now + self._progress_interval_s
            if flight is not None and fatal is None:  # accepted frames are not dropped
                try:
                    frames += self._land(flight)
                except Exception:
                    log.exception("batch of %d frames failed", len(flight.batch))
        finally:
            inference.shutdown(wait=True, cancel_futures=True)
        interrupted = self._stop.is_set()
        self._stop.set()
        self.watchdog.stopping()  # the run ended on its own, or gave up
        for cam in self.cameras:
            cam.source.close()
            cam.slot.discard()  # wakes a decoder blocked on a full slot
            if cam.activity is not None:
                cam.activity.release()  # and one waiting for a verdict
        self._complete(self.cameras)
        for cam in self.cameras:
            for event in cam.leaving or ():
                event.set()
        self._apply_actions()  # changes that came too late: an added camera's source closed
        deadline = time.monotonic() + 5.0  # one deadline for all, not 5 s per camera
        for cam in self.cameras:
            if cam.thread is not None:
                cam.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if cam.thread.is_alive():
                    log.warning("decoder did not stop in time", extra={"camera_id": cam.camera_id})
        result = self._result(frames, time.monotonic() - t0, interrupted, fatal)
        self.watchdog.close()
        self._stop_live()
        self._log_progress(frames, result.seconds, final=True)
        return result

    def _result(
        self, frames: int, seconds: float, interrupted: bool, fatal: str | None
    ) -> RunResult:
        return RunResult(
            frames=frames,
            events=sum(c.events for c in self.cameras),
            seconds=seconds,
            detected=sum(c.detected for c in self.cameras),
            failed={c.camera_id: c.failed for c in self.cameras if c.failed},
            interrupted=interrupted,
            fatal=fatal,
        )

    def run_sequential(self) -> RunResult:
        """The naive baseline: one thread, no batching, no overlap.

        Cameras are served round-robin; each frame is decoded, measured, run through the
        detector alone (batch 1) when its camera's gate asks for it, and through its
        selector, before the next frame of any camera is decoded.  Same components and
        results as :meth:`run`, for measuring what concurrency and batching buy
        (``argus bench``).  Runs until every source has ended or ``stop()``.
        """
        t0 = time.monotonic()
        self._announce(self.cameras, time.time())
        streams = {cam.camera_id: iter(cam.source.frames()) for cam in self.cameras}
        frames = 0
        fatal: str | None = None
        while streams and not self._stop.is_set():
            for cam in self.cameras:
                it = streams.get(cam.camera_id)
                if it is None:
                    continue
                try:
                    frame = next(it)
                except StopIteration:
                    del streams[cam.camera_id]
                    continue
                except SourceError as e:
                    cam.failed = str(e)
                    del streams[cam.camera_id]
                    continue
                kept, scene = self._look(cam, frame)
                if not kept:
                    continue
                need = self._needs_detector(cam, frame, scene)
                try:
                    dets = self._detect_now([frame.image])[0] if need else Detections.empty()
                except Exception as e:
                    fatal = f"detector failed: {e!r}"
                    log.exception("naive run: detector failed")
                    streams.clear()
                    break
                self._process_frame(cam, frame, dets, scene, detected=need)
                frames += 1
        interrupted = self._stop.is_set()
        for cam in self.cameras:
            cam.source.close()
        self._complete(self.cameras)
        return self._result(frames, time.monotonic() - t0, interrupted, fatal)

    def _complete_exhausted(self, busy: set[str]) -> None:
        """Complete the cameras whose sources ended or failed and whose frames are all done
        (none left in their slot, none in ``busy``: in flight)."""
        done = [
            c
            for c in self.cameras
            if not c.finished and c.slot.exhausted and c.camera_id not in busy
        ]
        if done:
            self._complete(done)

    def _complete(self, cameras: Sequence[CameraRuntime]) -> None:
        """Close the open events of ``cameras`` at their last frame's time; flush; mark done.

        The flush is bounded (``COMPLETE_FLUSH_S``): local sinks are written at once, and a
        remote bus that cannot deliver now keeps the records in its spool, so a camera's
        completion never waits on a broker.
        """
        cameras = [c for c in cameras if not c.finished]
        if not cameras:
            return
        for cam in cameras:
            if cam.last_pts_s is not None:
                try:
                    closing = cam.selector.close_all(cam.last_pts_s)
                except Exception:
                    log.exception("closing events failed", extra={"camera_id": cam.camera_id})
                    closing = []
                for event in closing:
                    self._publish(cam, event, None)
            if cam.summaries is not None:
                cam.summaries.finish()
            # clips still waiting get the video there is
            for ring in (cam.packets, None if cam.evidence is None else cam.evidence.ring):
                if ring is not None:
                    ring.flush("the camera stopped")
        try:
            self._bus.flush(COMPLETE_FLUSH_S)
        except TimeoutError as e:  # e.g. the broker is away: the records stay spooled
            log.warning("%s", e)
        except Exception:
            log.exception("flushing the bus failed")
        for cam in cameras:
            cam.finished = True

    def _launch(
        self, batch: list[tuple[CameraRuntime, Item]], inference: ThreadPoolExecutor
    ) -> _Flight:
        """Gate the batch's frames, prepare those that need the detector (stage 1) and queue
        their inference (stage 2) on the inference thread."""
        need = [self._needs_detector(cam, frame, scene) for cam, (frame, scene) in batch]
        images = [frame.image for (_, (frame, _)), n in zip(batch, need, strict=True) if n]
        future = None
        if images:
            prepared = self._stages.prepare(images)
            future = inference.submit(self._timed_infer, prepared, len(images))
            future.add_done_callback(lambda _: self._wake())
        return _Flight(batch, need, future)

    def _timed_infer(self, prepared: Any, images: int) -> Any:
        t = time.perf_counter()
        out = self._stages.infer(prepared)
        metrics.DETECT_SECONDS.observe(time.perf_counter() - t)
        metrics.BATCH_SIZE.observe(images)
        return out

    def _land(self, flight: _Flight) -> int:
        """Wait for the flight's inference, finish it (stage 3) and run every frame through
        its selector, in camera order.

        Frames the camera's motion gate let pass without the detector go through the
        selector with empty detections and ``detected=False``.
        """
        results: list[Detections] = []
        if flight.future is not None:
            results = self._stages.finish(flight.future.result())
        found = iter(results)
        for (cam, (frame, scene)), n in zip(flight.batch, flight.need, strict=True):
            dets = next(found) if n else Detections.empty()
            self._process_frame(cam, frame, dets, scene, detected=n)
        return len(flight.batch)

    def _detect_now(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """The three stages at once, on this thread (the naive baseline)."""
        return self._stages.finish(self._stages.infer(self._stages.prepare(images)))

    @staticmethod
    def _needs_detector(cam: CameraRuntime, frame: Frame, scene: SceneStats | None) -> bool:
        if cam.gate is None or scene is None:
            return True
        return cam.gate.decide(scene.motion, frame.pts_s, cam.selector.has_tracks)

    def _process_frame(
        self,
        cam: CameraRuntime,
        frame: Frame,
        dets: Detections,
        scene: SceneStats | None = None,
        *,
        detected: bool = True,
    ) -> None:
        if cam.frame_size is None:
            self._first_frame(cam, frame)
        poses = (
            self._pose.sightings(cam.camera_id, frame.image, cam.pose_wanted)
            if self._pose is not None and cam.pose_wanted
            else ()
        )
        info = FrameInfo(
            camera_id=cam.camera_id,
            seq=frame.seq,
            pts_s=frame.pts_s,
            wall_time=frame.wall_time,
            width=frame.width,
            height=frame.height,
            stream_id=cam.stream_id,
            scene=scene,
            detected=detected,
            poses=poses,
        )
        tracks, events = cam.selector.update(dets, info)
        if self._pose is not None:
            cam.pose_wanted = cam.selector.pose_wanted()
        if cam.summaries is not None:
            if detected:
                cam.summaries.observe(frame.image, tracks, frame.pts_s, frame.wall_time)
            else:
                cam.summaries.tick(frame.pts_s)
        if events:  # who to blur in the masked snapshot
            cam.people = self._people(frame, dets, tracks, detected=detected)
        if detected:
            self.decision_latencies_s.append(max(0.0, time.time() - frame.wall_time))
            cam.live_tracks = (frame.pts_s, tracks)
        if self._previews is not None and cam.camera_id in self._wanted:
            self._offer_preview(cam, frame, dets if detected else None)
        self._pace(cam, frame)
        cam.processed += 1
        cam.last_pts_s = frame.pts_s
        cam.last_seq = frame.seq
        cam.last_wall = frame.wall_time
        cam.last_frame_mono = time.monotonic()
        metrics.FRAMES_PROCESSED.labels(cam.camera_id).inc()
        if cam.evidence is not None:
            metrics.EVIDENCE_UP.labels(cam.camera_id).set(1 if cam.evidence.streaming else 0)
        if detected:
            cam.detected += 1
            metrics.FRAMES_DETECTED.labels(cam.camera_id).inc()
        for event in events:
            self._publish(cam, event, frame)
        if events:
            latency = max(0.0, time.time() - frame.wall_time)
            metrics.FRAME_LATENCY.observe(latency)
            if any(e.is_open for e in events):
                self.latencies_s.append(latency)
        self._count_held(cam)

    @staticmethod
    def _count_held(cam: CameraRuntime) -> None:
        counts = dataclasses.asdict(cam.selector.gate.counts)
        for reason, value in counts.items():
            before = cam.held.get(reason, 0)
            if value > before:
                metrics.EVENTS_HELD.labels(cam.camera_id, reason).inc(value - before)
                cam.held[reason] = value

    def _no_signal_ticks(self, busy: set[str]) -> None:
        """Tell live cameras that have been silent for a while that no frame is coming
        (not those in ``busy``: a frame of theirs is in flight)."""
        now = time.monotonic()
        for cam in self.cameras:
            if (
                cam.finished
                or cam.camera_id in busy
                or not cam.source.live
                or cam.last_frame_mono is None
                or cam.last_pts_s is None
                or cam.last_wall is None
                or now - cam.last_frame_mono < NO_SIGNAL_TICK_S
                or now < cam.next_no_signal
                or len(cam.slot)
            ):
                continue
            cam.next_no_signal = now + NO_SIGNAL_TICK_S
            silent = now - cam.last_frame_mono
            width, height = cam.frame_size or (0, 0)
            info = FrameInfo(
                camera_id=cam.camera_id,
                seq=cam.last_seq,
                pts_s=cam.last_pts_s + silent,
                wall_time=cam.last_wall + silent,
                width=width,
                height=height,
                stream_id=cam.stream_id,
                scene=None,
                detected=False,
            )
            if cam.summaries is not None:  # the people seen before it went silent
                cam.summaries.tick(info.pts_s)
            try:
                events = cam.selector.no_signal(info)
            except Exception:
                log.exception("no-signal tick failed", extra={"camera_id": cam.camera_id})
                continue
            for event in events:
                self._publish(cam, event, None)

    def _first_frame(self, cam: CameraRuntime, frame: Frame) -> None:
        cam.frame_size = (frame.width, frame.height)
        if cam.source.live:  # else keep the file fingerprint the composition root set
            cam.stream_id = str(round(frame.wall_time * 1000))
        metrics.CAMERA_UP.labels(cam.camera_id).set(1)
        if self._track_summaries and cam.summaries is None:
            cam.summaries = TrackSummarizer(
                cam.camera_id,
                publish=self._bus.publish,
                store_thumbnail=self._evidence.put,
                zones=cam.zones,
                person_ids=self._person_ids,
                run_id=self.run_id,
                end_after_s=float(getattr(cam.selector.tracker, "track_buffer_s", 3.0)) + 3.0,
            )
        if cam.summaries is not None:
            cam.summaries.stream_id = cam.stream_id
            cam.summaries.set_frame_size(frame.width, frame.height)
        for name, zone in cam.zones.items():
            for p in zone.check_within_frame(frame.width, frame.height):
                msg = f"zone {name!r} of camera {cam.camera_id!r}: {p}"
                cam.zone_problems.append(msg)
                log.warning(msg, extra={"camera_id": cam.camera_id})

    def _publish(self, cam: CameraRuntime, event: Event, frame: Frame | None) -> None:
        is_new = event.is_open and event.event_id not in cam.open_snapshots
        if event.is_open and event.event_id in cam.open_snapshots:
            key = cam.open_snapshots[event.event_id]  # a priority update of an open incident
        elif event.is_open:
            key = self._snapshot(cam, event, frame)
            cam.open_snapshots[event.event_id] = key
            cam.events += 1
            metrics.EVENTS.labels(cam.camera_id, event.type).inc()
            log.info(
                "event started: %s zone=%s track=%s priority=%d t=%.1fs",
                event.type,
                event.zone,
                event.track_id,
                event.priority,
                event.start_s,
                extra={"camera_id": cam.camera_id, "event_id": event.event_id},
            )
        else:
            key = cam.open_snapshots.pop(event.event_id, None)
        if key is not None:
            event = event.with_snapshot(key)
        record = event.to_record()
        clip = self._clip(cam, event) if event.is_open and frame is not None and is_new else None
        if clip is not None:
            record["clip"] = clip
        reason = reason_of(event)  # in words, from its rule type's template
        if reason:
            record["reason"] = reason
        if self.run_id is not None:
            record["run_id"] = self.run_id  # the selector knows nothing of processes
        try:
            self._bus.publish(record)
        except Exception:  # e.g. a record the schema refuses: log it, keep the others
            log.exception(
                "publishing event failed",
                extra={"camera_id": cam.camera_id, "event_id": event.event_id},
            )

    # ----------------------------------------------------------------- live view
    def _start_live(self) -> None:
        if self.live is None:
            return
        now = time.time()
        for cam in self.cameras:
            cam.state_since = now
            cam.fps_mark = (time.monotonic(), 0)
        self._previews = PreviewMaker(self.live)
        self._previews.start()
        self._live_tick(force=True)

    def _stop_live(self) -> None:
        if self.live is None:
            return
        self._live_tick(force=True)  # the last word: ended, failed, stopped
        if self._previews is not None:
            self._previews.stop()
            self._previews = None

    def _live_tick(self, *, force: bool = False) -> None:
        """Detector loop: every ``LIVE_WANTED_S`` ask which cameras are watched, every
        ``LIVE_REPORT_S`` report every camera's status (``force``: now)."""
        live = self.live
        if live is None:
            return
        now = time.monotonic()
        if force or now >= self._next_wanted:
            self._next_wanted = now + LIVE_WANTED_S
            try:
                self._wanted = live.wanted()
            except Exception:  # a sink should not raise; pictures stop, cameras go on
                log.exception("asking the live sink what is watched failed")
                self._wanted = {}
        if not force and now < self._next_report:
            return
        self._next_report = now + LIVE_REPORT_S
        statuses = []
        for cam in self.cameras:  # one camera's bad status must not silence the others
            try:
                statuses.append(self._status(cam, now))
            except Exception:
                log.exception("camera status failed", extra={"camera_id": cam.camera_id})
        try:
            live.report(statuses)
        except Exception:
            log.exception("reporting camera statuses failed")

    def _status(self, cam: CameraRuntime, mono: float) -> CameraStatus:
        """The camera's status now (detector loop: the selector's state is consistent)."""
        wall = time.time()
        state = state_of(cam.state, bool(cam.failed), _health_open(cam))
        if state != cam.shown_state:
            cam.shown_state, cam.state_since = state, wall
        mark_t, mark_n = cam.fps_mark
        fps = (cam.processed - mark_n) / (mono - mark_t) if mono - mark_t > 0.05 else 0.0
        cam.fps_mark = (mono, cam.processed)
        watches: list[WatchOut] = []
        if state not in ("ended", "failed"):
            try:
                watches = [WatchOut.model_validate(w.to_dict()) for w in cam.selector.watching()]
            except Exception:  # an aid for the wall: the status goes out without
                log.exception(
                    "asking the rules what they watch failed", extra={"camera_id": cam.camera_id}
                )
        cam.watched = [(w.track_id, w.bbox) for w in watches if w.bbox is not None]
        return CameraStatus(
            camera_id=cam.camera_id,
            state=cast(Any, state),
            since=cam.state_since,
            detail=((cam.failed or "")[:MAX_DETAIL] or None) if state == "failed" else None,
            reported_at=wall,
            last_frame_at=cam.last_wall,
            fps=round(max(0.0, min(fps, 10_000.0)), 2),
            frames_processed=cam.processed,
            frames_dropped=cam.slot.dropped,
            quiet=None if cam.activity is None else cam.activity.quiet,
            frame_size=cam.frame_size,
            watches=tuple(watches),
            run_id=self.run_id,
        )

    def _offer_preview(self, cam: CameraRuntime, frame: Frame, dets: Detections | None) -> None:
        """Hand the frame to the preview thread when the camera's picture is due."""
        want = self._wanted.get(cam.camera_id)
        now = time.monotonic()
        if want is None or self._previews is None or now < cam.next_preview:
            return
        cam.next_preview = now + 1.0 / want.fps
        tracks = Detections.empty()
        keep_s = LIVE_TRACKS_KEEP_S + (cam.gate.heartbeat_s if cam.gate is not None else 0.0)
        fresh = cam.live_tracks is not None and frame.pts_s - cam.live_tracks[0] <= keep_s
        if cam.live_tracks is not None and fresh:
            tracks = cam.live_tracks[1]
        people: list[Boxes] = [person_boxes(tracks, self._person_ids)]
        if dets is not None:
            people.append(person_boxes(dets, self._person_ids))
        elif not fresh:
            people.append(WHOLE_PICTURE)  # nobody looked lately: blur everything
        if not self._person_ids:
            people.append(WHOLE_PICTURE)  # a model without people cannot mask them
        names = tracks.names
        labels = [
            f"{names[c] if 0 <= c < len(names) else c} {t}"
            for c, t in zip(tracks.class_id.tolist(), tracks.tracker_id.tolist(), strict=True)
        ]
        overlay = Overlay(
            boxes=tracks.xyxy,
            labels=labels,
            people=union(people),
            zones=[z.polygon for z in cam.zones.values()],
            lines=[
                ((float(ln.p1[0]), float(ln.p1[1])), (float(ln.p2[0]), float(ln.p2[1])))
                for ln in cam.lines.values()
            ],
            watched=_watched_now(cam.watched, tracks),
        )
        self._previews.offer(
            cam.camera_id, frame.seq, frame.wall_time, frame.image, overlay, want.width
        )

    def _announce(self, cameras: Sequence[CameraRuntime], started: float) -> None:
        """Publish the run marker (with ``run_id``) of each of ``cameras``, started at UNIX
        time ``started``, before any of their frames is decoded.

        The bus keeps each camera's records in order (in-process: synchronously; Kafka:
        the camera's partition, behind what the spool still holds of the earlier run),
        so the store sees every record of the earlier run before this marker.
        """
        if self.run_id is None:
            return
        for cam in cameras:
            try:
                self._bus.publish(run_marker(cam.camera_id, self.run_id, started))
            except Exception:  # the cameras run anyway; the earlier run's alerts stay open
                log.exception(
                    "publishing the run marker failed: alerts an earlier run left open stay open",
                    extra={"camera_id": cam.camera_id, "run_id": self.run_id},
                )
        log.info("worker run %s: %d cameras started", self.run_id, len(cameras))

    def _people(
        self, frame: Frame, dets: Detections, tracks: Detections, *, detected: bool
    ) -> Boxes:
        """The people to blur in a snapshot of ``frame``: the detector's and the tracker's,
        and on a frame the live detector skipped (a quiet camera's health event), those the
        clip maker's masking detector finds; with none to ask, the whole picture."""
        found = [person_boxes(dets, self._person_ids), person_boxes(tracks, self._person_ids)]
        if not detected:
            if self._clips is None:
                return WHOLE_PICTURE  # nobody looked: blur everything
            found.append(self._clips.people(frame.image))
        return union(found)

    def _clip(self, cam: CameraRuntime, event: Event) -> str | None:
        """Ask for the event's clip; its future key, or None when none is made.

        A camera with an evidence stream gets its clip from that stream while it streams
        and holds the event's start, else from the analysed stream, with a note saying why;
        should the evidence stream stop inside the window, the clip is made again from the
        analysed stream (which holds the same seconds)."""
        if self._clips is None:
            return None
        ring, stream, note, fallback = cam.packets, "analysed", None, None
        if cam.evidence is not None:
            held = cam.evidence.ring.oldest_s()
            if not cam.evidence.streaming:
                note = f"{cam.evidence.why_not()}: the clip is of the analysed stream"
            elif held is None or held > event.start_s:
                # (re)connected since the event began: its start is only in the analysed ring
                note = (
                    "the evidence stream holds no video of the event's start (it connected "
                    "since): the clip is of the analysed stream"
                )
            else:
                ring, stream = cam.evidence.ring, "evidence"
                fallback = cam.packets if cam.packets is not None and cam.packets.usable else None
        if ring is None or not ring.usable:
            return None  # no clip can be cut (e.g. a stream without timestamps)
        try:
            key = clip_key(cam.camera_id, event.wall_time, event.event_id)
            self._clips.request(
                ring,
                stream=stream,
                stream_note=note,
                fallback=fallback,
                camera_id=cam.camera_id,
                event_id=event.event_id,
                key=key,
                start_s=event.start_s,
                priority=event.priority,
                raised_s=cam.last_pts_s,
            )
            return key
        except Exception:  # evidence is best effort: the alert goes on without a clip
            log.exception(
                "asking for a clip failed",
                extra={"camera_id": cam.camera_id, "event_id": event.event_id},
            )
            return None

    def _snapshot(self, cam: CameraRuntime, event: Event, frame: Frame | None) -> str | None:
        """Store the event's snapshot and its masked copy (people blurred, stored first:
        the copy operators see); the snapshot's key, or None."""
        if frame is None:
            return None
        try:

            def render(image: np.ndarray) -> bytes:
                return render_snapshot(
                    image,
                    event.bbox,
                    f"{event.label or event.type} #{event.track_id}",
                    zone_polygon=cam.zones[event.zone].polygon if event.zone else None,
                    caption=(
                        f"{cam.camera_id} {event.type} t={event.start_s:.1f}s p={event.priority}"
                    ),
                )

            key = snapshot_key(cam.camera_id, event.wall_time, event.event_id)
            if self._person_ids:  # without a person class nothing can be masked: no copy
                people = cam.people if cam.people is not None else WHOLE_PICTURE
                self._evidence.put(masked_key(key), render(mask_people(frame.image, people)))
            self._evidence.put(key, render(frame.image))
            return key
        except Exception:
            # Evidence is best effort: losing a snapshot must not lose the alert.
            log.exception(
                "snapshot failed", extra={"camera_id": cam.camera_id, "event_id": event.event_id}
            )
            return None

    def _log_progress(self, frames: int, seconds: float, *, final: bool = False) -> None:
        per_cam = ", ".join(
            f"{c.camera_id}: {c.processed} frames ({c.detected} detected), "
            f"{c.slot.dropped} dropped, {c.events} events" + (" (FAILED)" if c.failed else "")
            for c in self.cameras
        )
        log.info(
            "%s %d frames in %.1fs (%.1f fps) — %s",
            "finished:" if final else "progress:",
            frames,
            seconds,
            frames / seconds if seconds > 0 else 0.0,
            per_cam,
        )

    def health(self) -> dict[str, Any]:
        """Per-camera state for the readiness endpoint: camera id -> state dict."""
        return {c.camera_id: c.health() for c in self.cameras}

    # ----------------------------------------------------------------- service watchdog
    def progress_marks(self) -> dict[str, Mark]:
        """What the service watchdog watches: a mark per part that changes as it progresses.

        * ``detector loop``: its passes.  The loop passes at least every 0.1 s when idle;
          a detector stuck in inference (or a sink that blocks it) stops them.
        * ``camera ID``, for each camera whose source is connecting, streaming or
          reconnecting: frames it analysed, and its source's counters (frames decoded,
          frames skipped on purpose while quiet, reconnect attempts, bad packets) and
          state.  A decode thread stuck in a read, with no frame and no reconnect attempt,
          stops them.  A quiet camera still decodes a sparse frame every few seconds and
          counts the frames it skips.  A *reconnecting* camera is waiting, not hung (a
          restart would not bring it back): it may go ``RECONNECT_PATIENCE_S`` without a
          sign of life, since its back-off and connection time limits bound every wait.

        Cameras that ended, failed or are leaving are not watched (the detector loop
        completes them).  Called on the watchdog thread: it only reads.
        """
        marks = {"detector loop": Mark(self._passes)}
        for cam in list(self.cameras):
            state = cam.source.state
            if cam.finished or cam.failed or cam.leaving is not None:
                continue
            if state in (SourceState.ENDED, SourceState.FAILED):
                continue
            stats = cam.source.stats()
            counters = tuple(
                getattr(stats, name, None)
                for name in ("frames_decoded", "frames_thinned", "reconnects", "decode_errors")
            )
            marks[f"camera {cam.camera_id}"] = Mark(
                (cam.processed, counters, state),
                RECONNECT_PATIENCE_S if state == SourceState.RECONNECTING else None,
                state.value,
            )
        return marks

    def service_status(self) -> str:
        """The one-line status a service manager shows (``systemctl status``)."""
        states: dict[str, int] = {}
        for cam in list(self.cameras):
            states[cam.state] = states.get(cam.state, 0) + 1
        cams = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
        return f"cameras: {cams}; {self._frames} frames analysed"


def _extra(cam: CameraRuntime) -> dict[str, str]:
    return {"camera_id": cam.camera_id}


def _health_open(cam: CameraRuntime) -> set[str]:
    """The camera-health event types open in the camera's rules, before the incident gate:
    a suppressed or disarmed health alert does not make a covered camera 'streaming', and a
    cooldown holding an alert open does not keep a cleared camera 'covered'."""
    types: set[str] = set()
    for rule in cam.selector.rules:
        events = getattr(rule, "open_events", None)
        if callable(events):
            types.update(e.type for e in events() if e.type in HEALTH_EVENT_STATES)
    return types


def _watched_now(
    watched: Sequence[tuple[int | None, tuple[float, float, float, float]]], tracks: Detections
) -> list[tuple[float, float, float, float]]:
    """The boxes to mark as watched: a watched track where it is in ``tracks``, else the box
    the rule reported."""
    where = {int(t): i for i, t in enumerate(tracks.tracker_id.tolist()) if t >= 1}
    out = []
    for track_id, box in watched:
        i = where.get(track_id) if track_id is not None else None
        if i is not None:
            x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
            out.append((x1, y1, x2, y2))
        else:
            out.append(box)
    return out


def source_state_logger(camera_id: str) -> Callable[[str, SourceState, str], None]:
    """A state-change callback for a source: logs and meters every change."""

    def on_state(cam: str, state: SourceState, detail: str) -> None:
        level = (
            logging.WARNING
            if state in (SourceState.RECONNECTING, SourceState.FAILED)
            else (logging.INFO)
        )
        log.log(level, "camera %s: %s", state.value, detail, extra={"camera_id": cam})
        metrics.CAMERA_RECONNECTS.labels(cam, state.value).inc()
        metrics.CAMERA_UP.labels(cam).set(1 if state == SourceState.STREAMING else 0)

    return on_state
