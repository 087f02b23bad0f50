"""Composition root: the one place that knows every stage and wires them from a config."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import stat
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn
from fastapi import FastAPI

import argus
from alerts.api import AccessSettings, PageSettings, create_app
from alerts.api.guards import default_allowed_hosts
from alerts.bus import EventBus, InProcessBus
from alerts.clips import ClipMaker
from alerts.control import (
    DEFAULT_CONTROL_TOPIC,
    ControlPublisher,
    ControlPublishError,
    KafkaControlPublisher,
    KafkaControlSubscriber,
    republish_state,
)
from alerts.evidence import EvidenceStore, LocalEvidenceStore
from alerts.kafka_bus import BusFlushTimeoutError, KafkaEventBus
from alerts.live import Demand, LiveBoard
from alerts.live.kafka import DemandPublisher, KafkaLivePublisher, KafkaLiveSubscriber
from alerts.retention import RetentionJob
from alerts.s3_evidence import S3EvidenceStore
from alerts.service import AlertService
from alerts.sinks import JsonlSink
from alerts.sla import SlaJob
from alerts.store import SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from argus.config import (
    ArgusConfig,
    CameraConfig,
    ConfigError,
    DetectorConfig,
    KafkaBusConfig,
    StorageConfig,
)
from argus.fleet.definitions import SecretError, resolve_source
from argus.poses import PoseService
from argus.reload import LiveConfig
from argus.rulebook import RuleBook, camera_ground, class_ids, validate_rules
from argus.runner import CameraRuntime, Item, Runner, source_state_logger
from argus.slots import FrameSlot
from detectors.gating import MotionGate
from detectors.onnx_detector import OnnxDetector
from detectors.scene import SceneAnalyzer
from detectors.spec import ModelSpec
from ingest import (
    ActivityControl,
    LiveKind,
    LiveSource,
    ReconnectPolicy,
    classify_source,
    open_source,
    source_fingerprint,
)
from ingest.base import SourceBase
from ingest.packets import PacketRing
from models.registry import load_manifest
from selector.camera import CameraSelector
from selector.lines import Line
from selector.rules.base import needs_pose, needs_scene
from selector.tracker import ByteTracker
from selector.zones import PolygonZone

log = logging.getLogger(__name__)

PROVIDERS = {
    "auto": "auto",
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def build_detector(
    cfg: DetectorConfig, models_dir: Path, source: str, home: Path
) -> tuple[OnnxDetector, ModelSpec]:
    """Load the registered model named in the config and open an onnxruntime session on it."""
    manifest = load_manifest(models_dir, cfg.model)
    spec = manifest.to_spec(models_dir)
    thresholds = {
        next(
            iter(class_ids([name], list(spec.class_names), "detector.class_thresholds", source))
        ): v
        for name, v in cfg.class_thresholds.items()
    }
    detector = OnnxDetector(
        spec,
        providers=PROVIDERS[cfg.providers],
        conf_threshold=cfg.conf_threshold,
        class_thresholds=thresholds,
        iou_threshold=cfg.iou_threshold,
        max_batch=cfg.batch_size,
        intra_op_threads=cfg.threads,
        trt_cache_dir=home / "trt-cache",
        io_binding=cfg.io_binding,
    )
    detector.warmup()
    return detector, spec


CLIP_CLOSE_S = 120.0
"""How long closing a run that ended on its own waits for the clips being made, seconds."""
CLIP_STOP_S = 10.0
"""... and a run stopped by a signal, for the clip being made (a service manager's patience)."""
CLOSE_FLUSH_S = 10.0
"""How long closing a run waits for the bus to deliver what is spooled, seconds."""


@dataclass
class Pipeline:
    """A wired run: the runner plus the alert side it feeds.

    ``store`` is the alert store this process writes: with the in-process bus the store
    subscribes to it; with Kafka the alert service writes it (``argus alerts serve``, or
    in this process with ``--serve``), and a worker without ``--serve`` has none.
    """

    runner: Runner
    bus: EventBus
    evidence: EvidenceStore
    sinks: list[JsonlSink]
    store: SqlAlertStore | None = None
    rulebooks: dict[str, RuleBook] = dataclasses.field(default_factory=dict)
    """Each camera's rule builder (run-time rule changes go through it)."""
    class_names: tuple[str, ...] = ()
    """The model's class names (to validate rule sets sent at run time)."""
    clips: ClipMaker | None = None
    """Makes the alerts' video clips (None: clips are off)."""

    def close(self, *, stopped: bool = False) -> None:
        """Deliver what can be delivered, then close sinks, bus, evidence and store.

        Clips whose video is in hand are made first (up to ``CLIP_CLOSE_S``; when the run
        was ``stopped`` by a signal, only the clip being made, up to ``CLIP_STOP_S``).
        Records the broker did not take in time stay in the on-disk spool and are sent by
        the next run; snapshots and clips not yet uploaded stay in theirs.
        """
        if self.clips is not None:
            self.clips.stop(CLIP_STOP_S if stopped else CLIP_CLOSE_S, drop_queued=stopped)
        try:
            self.bus.flush(CLOSE_FLUSH_S)
        except BusFlushTimeoutError as e:
            log.warning("%s", e)
        for sink in self.sinks:
            sink.close()
        self.bus.close()
        close_evidence(self.evidence)


def close_evidence(evidence: EvidenceStore) -> None:
    """Close an evidence store that has something to close (the S3 store's uploader).

    The S3 store uploads what it can for up to ``CLOSE_FLUSH_S`` (not at all while S3 is
    known to be down); what is left stays in its spool for the next start.
    """
    if isinstance(evidence, S3EvidenceStore):
        evidence.close(CLOSE_FLUSH_S)


def open_evidence(cfg: ArgusConfig, home: Path, role: str = "worker") -> EvidenceStore:
    """The evidence store of the config: S3 (with a local spool) or local disk.

    ``role`` keeps the S3 spools of processes sharing one ``$ARGUS_HOME`` apart (a worker
    and an alert service on one machine): each spool belongs to one live process.
    """
    s3 = cfg.evidence.s3
    if s3 is None:
        return LocalEvidenceStore(cfg.storage.evidence_dir or home / "evidence")
    access = (
        s3.access_key.get_secret_value() if s3.access_key else os.environ.get("ARGUS_S3_ACCESS_KEY")
    )
    secret = (
        s3.secret_key.get_secret_value() if s3.secret_key else os.environ.get("ARGUS_S3_SECRET_KEY")
    )
    if not access or not secret:
        raise ValueError(
            "evidence.s3 needs credentials: set ARGUS_S3_ACCESS_KEY and ARGUS_S3_SECRET_KEY "
            "(or evidence.s3.access_key / secret_key)"
        )
    spool = s3.spool_dir or home / "spool" / "evidence"
    return S3EvidenceStore(
        s3.endpoint,
        s3.bucket,
        access_key=access,
        secret_key=secret,
        secure=s3.secure,
        region=s3.region,
        spool_dir=spool if role == "worker" else spool.with_name(f"{spool.name}-{role}"),
        url_expiry_s=s3.url_expiry_s,
        max_spool_bytes=s3.spool_max_mb << 20,
    )


def open_alert_store(storage: StorageConfig, home: Path) -> SqlAlertStore:
    """The alert store ``storage`` names: PostgreSQL (``storage.postgres``, the password from
    its environment variable) or SQLite (``storage.sqlite``, default ``home/alerts.db``).

    Raises:
        AlertStoreError: The database cannot be opened, reached or migrated.
    """
    pg = storage.postgres
    if pg is None:
        return SqliteAlertStore(storage.sqlite or home / "alerts.db")
    return PostgresAlertStore(
        pg.dsn,
        password=os.environ.get(pg.password_env) or None,
        schema=pg.schema_,
        connect_timeout_s=pg.connect_timeout_s,
        statement_timeout_s=pg.statement_timeout_s,
        application_name=f"argus-{socket.gethostname()}-{os.getpid()}"[:63],
    )


def open_store(
    cfg: ArgusConfig, home: Path, role: str = "alerts"
) -> tuple[SqlAlertStore, EvidenceStore]:
    """The alert store and evidence store named in the config (defaults under ``home``)."""
    store = open_alert_store(cfg.storage, home)
    return store, open_evidence(cfg, home, role)


def kafka_security(k: KafkaBusConfig) -> dict[str, Any]:
    """kafka-python client options for ``k.security``; the password from the environment."""
    sec = k.security
    opts: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol.startswith("SASL"):
        password = os.environ.get(sec.password_env)
        if not password:
            raise ValueError(
                f"bus.kafka.security: {sec.protocol} needs the password in ${sec.password_env}"
            )
        opts |= {
            "sasl_mechanism": sec.sasl_mechanism,
            "sasl_plain_username": sec.username,
            "sasl_plain_password": password,
        }
    if sec.protocol.endswith("SSL"):
        opts |= {
            name: str(path)
            for name, path in (
                ("ssl_cafile", sec.ca_file),
                ("ssl_certfile", sec.cert_file),
                ("ssl_keyfile", sec.key_file),
            )
            if path is not None
        }
    return opts


def kafka_bus(k: KafkaBusConfig, home: Path) -> KafkaEventBus:
    """The worker's Kafka bus, spooling to ``home/spool/events`` while the broker is away."""
    return KafkaEventBus(
        k.bootstrap,
        k.topic,
        spool_dir=home / "spool" / "events",
        spool_max_records=k.spool_max_records,
        idempotent=k.idempotent,
        partitions=k.partitions,
        close_timeout_s=2.0,  # Pipeline.close has already waited CLOSE_FLUSH_S
        security=kafka_security(k),
    )


def alert_service(k: KafkaBusConfig, store: SqlAlertStore) -> AlertService:
    """The consumer that writes event records from Kafka into ``store``."""
    return AlertService(
        k.bootstrap,
        k.topic,
        k.group_id,
        store,
        dlq_topic=k.dlq_topic or f"{k.topic}.dlq",
        partitions=k.partitions,
        security=kafka_security(k),
    )


def decode_threads_for(cameras: int) -> int:
    """Decoder threads per camera for a run of ``cameras`` cameras: 1 once the cameras
    alone can fill the cores (FFmpeg's frame threads then only add synchronisation: H.264
    768x576 took 0.84 against 1.13 ms of CPU per frame on the 2-core EPYC), else 0
    (FFmpeg's choice, one per core)."""
    return 1 if cameras >= (os.cpu_count() or 1) else 0


def build_pipeline(
    cfg: ArgusConfig, *, home: Path, source: str, with_store: bool = True
) -> Pipeline:
    """Wire ingest -> detectors -> selector -> alerts for every camera of ``cfg``.

    Raises:
        ConfigError: a rule names a class the model does not know.
        models.registry.ModelNotFoundError / ModelCorruptError: the model is not usable.
    """
    detector, spec = build_detector(cfg.detector, home / "models", source, home)
    names = list(spec.class_names)

    evidence = open_evidence(cfg, home)
    store: SqlAlertStore | None = None
    bus: EventBus
    if cfg.bus.kafka is not None:
        bus = kafka_bus(cfg.bus.kafka, home)
        if with_store:
            store = open_alert_store(cfg.storage, home)
    else:
        bus = InProcessBus()
        store = open_alert_store(cfg.storage, home)
        bus.subscribe(store.upsert)
    sinks = [JsonlSink(s.jsonl) for s in cfg.sinks]
    for sink in sinks:
        bus.subscribe(sink.write)

    clips = clip_maker(cfg, evidence, names, home, source)
    ready = threading.Condition()
    cameras: list[CameraRuntime] = []
    decode_threads = decode_threads_for(len(cfg.cameras))
    rulebooks: dict[str, RuleBook] = {}
    for cam_cfg in cfg.cameras:
        try:  # a source's ${CAM_...} / ${file:...} credential references, as a fleet camera's
            cam, book = build_camera(
                cfg,
                cam_cfg,
                names,
                ready,
                clips=clips,
                decode_threads=decode_threads,
                source=source,
                resolve=resolve_source,
            )
        except SecretError as e:
            where = "" if str(e).startswith("evidence_source: ") else "source: "
            raise ConfigError(source, [f"cameras.{cam_cfg.id}.{where}{e}"]) from None
        rulebooks[cam_cfg.id] = book
        cameras.append(cam)
    pose = PoseService(home / "models")
    runner = Runner(
        cameras,
        detector,
        bus,
        evidence,
        ready=ready,
        batch_size=cfg.detector.batch_size,
        max_wait_s=cfg.detector.max_wait_ms / 1000.0,
        progress_interval_s=cfg.log.progress_interval_s,
        # one id per worker run: stamped on its records, announced per camera at start
        # (the store then closes what an earlier, killed run of the camera left open)
        run_id=str(uuid.uuid4()),
        clips=clips,
        person_ids=person_ids(names),
        pose=pose,
        track_summaries=cfg.search.track_summaries,
    )
    if any(needs_pose(cam.selector.rules) for cam in cameras):
        pose.preload()
    if clips is not None:
        clips.start()
    return Pipeline(
        runner=runner,
        bus=bus,
        store=store,
        evidence=evidence,
        sinks=sinks,
        rulebooks=rulebooks,
        class_names=tuple(names),
        clips=clips,
    )


def build_camera(
    cfg: ArgusConfig,
    cam_cfg: CameraConfig,
    names: Sequence[str],
    ready: threading.Condition,
    *,
    clips: ClipMaker | None,
    decode_threads: int,
    source: str,
    resolve: Callable[[str], str] | None = None,
) -> tuple[CameraRuntime, RuleBook]:
    """One camera's runtime (source, tracker, rules, gate, slot) and its rule builder.

    ``cfg.rules`` holds the rules (those of other cameras are skipped); ``ready`` is the
    run's shared condition; ``resolve`` turns the configured source into the one opened
    (a fleet camera's credential references; ``None``: as configured).  Nothing is opened.

    Raises:
        ConfigError: A rule cannot be built with the model's class ``names``.
        fleet.SecretError (a ``ValueError``): ``resolve`` refused the source.
    """
    zones = {z.name: PolygonZone(z.name, z.polygon, z.weight) for z in cam_cfg.zones}
    book = RuleBook(cam_cfg, names, source)
    rules, policies = book.build(cfg.rules)
    tracker = ByteTracker(
        high_thresh=cfg.tracker.high_thresh,
        low_thresh=cfg.tracker.low_thresh,
        new_track_thresh=cfg.tracker.new_track_thresh,
        track_buffer_s=cfg.tracker.track_buffer_s,
    )
    activity = (
        ActivityControl(
            interval_s=cfg.gating.quiet_interval_s,
            keyframe_max_s=cfg.gating.keyframe_max_s,
        )
        if cfg.gating.enabled and cfg.gating.sparse_when_quiet
        else None
    )
    url = resolve(cam_cfg.source) if resolve is not None else cam_cfg.source
    src = open_source(
        cam_cfg.id,
        url,
        realtime=cam_cfg.realtime,
        loop=cam_cfg.loop,
        reconnect=ReconnectPolicy(
            initial_s=cam_cfg.reconnect.initial_s,
            max_s=cam_cfg.reconnect.max_s,
            max_attempts=cam_cfg.reconnect.max_attempts,
        ),
        on_state=source_state_logger(cam_cfg.id),
        decode_threads=decode_threads,
        activity=activity,
    )
    ring = None
    # a device (V4L2 through OpenCV) gives pictures, not packets: no clips
    if clips is not None and isinstance(src, SourceBase) and src.stats().kind != "device":
        clip_cfg = cfg.evidence.clips
        ring = PacketRing(
            cam_cfg.id,
            keep_s=clip_cfg.pre_s + clip_cfg.post_s + 1.0,
            max_bytes=int(clip_cfg.buffer_mb * 2**20),
        )
        src.packets = ring
    evidence = None
    if clips is None and cam_cfg.evidence_source is not None:
        log.warning(
            "camera %s: evidence_source is not read: clips are off (evidence.clips.enabled)",
            cam_cfg.id,
        )
    if clips is not None and cam_cfg.evidence_source is not None and isinstance(src, LiveSource):
        try:
            evidence_url = (
                resolve(cam_cfg.evidence_source) if resolve is not None else cam_cfg.evidence_source
            )
        except ValueError as e:  # fleet.SecretError: said of this setting
            raise type(e)(f"evidence_source: {e}") from None
        evidence = src.attach_evidence(
            evidence_url,
            cast(LiveKind, classify_source(evidence_url)[0]),
            PacketRing(
                cam_cfg.id,
                keep_s=cfg.evidence.clips.pre_s + cfg.evidence.clips.post_s + 1.0,
                max_bytes=int(cfg.evidence.clips.buffer_mb * 2**20),
            ),
        )
    # Live: one slot, newest wins (latency never builds up). Files at full speed:
    # a few frames of look-ahead so the detector can batch, never dropping one.
    slot: FrameSlot[Item] = (
        FrameSlot(1, "drop_oldest", ready)
        if src.live
        else FrameSlot(max(2 * cfg.detector.batch_size, 4), "block", ready)
    )
    cam = CameraRuntime(
        camera_id=cam_cfg.id,
        source=src,
        selector=CameraSelector(
            cam_cfg.id, tracker, rules, policies, ground=camera_ground(cam_cfg, names)
        ),
        slot=slot,
        zones=zones,
        lines={ln.name: Line(ln.name, ln.points) for ln in cam_cfg.lines},
        # measured when something reads the measures: the gate or a scene rule
        scene=SceneAnalyzer() if cfg.gating.enabled or needs_scene(rules) else None,
        gate=(
            MotionGate(
                min_motion=cfg.gating.min_motion,
                heartbeat_s=cfg.gating.heartbeat_s,
                hold_s=cfg.gating.hold_s,
            )
            if cfg.gating.enabled
            else None
        ),
        activity=activity,
        stream_id="" if src.live else source_fingerprint(url),
        packets=ring,
        evidence=evidence,
    )
    return cam, book


def person_ids(names: list[str]) -> frozenset[int]:
    """Class ids of people in the model's ``names`` (blurred in masked evidence)."""
    return frozenset(i for i, n in enumerate(names) if n == "person")


MASK_WEAK = 0.1
"""Lowest score of a faint sighting that continues a person followed (half hidden)."""


def clip_maker(
    cfg: ArgusConfig, evidence: EvidenceStore, names: list[str], home: Path, source: str
) -> ClipMaker | None:
    """The clip maker of the config (``None`` when clips are off); not started.  Its person
    detector is a second session of the configured model (one thread, built on the
    maker's own thread when the first clip is made)."""
    clip_cfg = cfg.evidence.clips
    if not clip_cfg.enabled:
        return None
    ids = person_ids(names)
    if not ids:  # nothing could be masked: a "masked" copy would show everyone
        log.warning(
            "the model has no person class: no clips and no masked snapshots are made "
            "(operators see no evidence; supervisors and admins see the original snapshots)"
        )
        return None
    det_cfg = cfg.detector.model_copy(
        update={
            "conf_threshold": MASK_WEAK,
            "threads": 1,
            "batch_size": 1,
            "class_thresholds": {},
        }
    )

    def detector() -> Any:
        return build_detector(det_cfg, home / "models", source, home)[0].detect

    return ClipMaker(
        evidence,
        pre_s=clip_cfg.pre_s,
        post_s=clip_cfg.post_s,
        detector=detector,
        person_ids=ids,
        detect_every=clip_cfg.mask_detect_every,
        strong=cfg.detector.conf_threshold,
        weak=MASK_WEAK,
        max_height=clip_cfg.masked_height,
    )


def api_key(home: Path) -> tuple[str, str]:
    """The API key and where it came from: ``$ARGUS_API_KEY`` or ``home/api-key``.

    The file is created with a random key (mode 0600) the first time.
    """
    env = os.environ.get("ARGUS_API_KEY")
    if env:
        if len(env) < 16:
            raise ValueError("ARGUS_API_KEY must be at least 16 characters")
        return env, "$ARGUS_API_KEY"
    path = home / "api-key"
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= 16:
            return key, str(path)
    key = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key, str(path)


def make_api(
    store: SqlAlertStore,
    evidence: EvidenceStore,
    key: str,
    health: Any = None,
    *,
    url_expiry_s: int = 300,
    components: Any = None,
    control: ControlPublisher | None = None,
    validate: Any = None,
    initial_rules: list[dict[str, Any]] | None = None,
    allowed_hosts: list[str] | None = None,
    access: AccessSettings | None = None,
    live: LiveBoard | None = None,
    fleet: Any = None,
) -> FastAPI:
    """The alerting API over a store (with ``control``: rule sets and suppressions; with
    ``live``: the wall's and the board's camera statuses and pictures; with ``fleet``: the
    fleet's cameras for admins)."""
    return create_app(
        store,
        evidence,
        api_key=key,
        health=health,
        version=argus.__version__,
        snapshot_url_expiry_s=url_expiry_s,
        components=components,
        control=control,
        validate_rules=validate,
        initial_rules=initial_rules,
        allowed_hosts=allowed_hosts,
        access=access,
        live=live,
        fleet=fleet,
    )


def access_settings(cfg: ArgusConfig, classes: Sequence[str] | None = None) -> AccessSettings:
    """Camera groups and session settings of the API, from the config; ``classes``: the
    detector's class names, when known here (searchable besides COCO's)."""
    return AccessSettings(
        camera_groups={cam.id: list(cam.groups) for cam in cfg.cameras},
        camera_zones={cam.id: [z.name for z in cam.zones] for cam in cfg.cameras},
        classes=tuple(classes or ()),
        session_lifetime_s=cfg.api.session_lifetime_s,
        session_idle_s=cfg.api.session_idle_s,
        secure_cookies=cfg.api.secure_cookies,
        page=PageSettings(
            cue_min_priority=cfg.api.cue_min_priority,
            sla_min_priority=cfg.api.sla.min_priority if cfg.api.sla.enabled else None,
            sla_claim_within_s=cfg.api.sla.claim_within_s if cfg.api.sla.enabled else None,
        ),
    )


def sla_job(cfg: ArgusConfig, store: SqlAlertStore) -> SlaJob | None:
    """The claim SLA of the config (``None`` when disabled); not started."""
    sla = cfg.api.sla
    if not sla.enabled:
        return None
    return SlaJob(
        store,
        min_priority=sla.min_priority,
        claim_within_s=sla.claim_within_s,
        check_every_s=sla.check_every_s,
    )


def retention_job(
    cfg: ArgusConfig, store: SqlAlertStore, evidence: EvidenceStore
) -> RetentionJob | None:
    """The retention sweeper of the config (``None`` when everything is kept forever);
    not started."""
    retention = cfg.evidence.retention
    if retention.days is None and not retention.groups:
        return None
    return RetentionJob(
        store,
        evidence,
        days=retention.days,
        group_days=retention.groups,
        camera_groups={cam.id: list(cam.groups) for cam in cfg.cameras},
        every_s=retention.every_s,
    )


def allowed_hosts(cfg: ArgusConfig, listen_host: str) -> list[str]:
    """``api.allowed_hosts``, or by default the loopback names and ``listen_host``."""
    if cfg.api.allowed_hosts is not None:
        return list(cfg.api.allowed_hosts)
    hosts = default_allowed_hosts(listen_host)
    if listen_host in ("0.0.0.0", "::", ""):
        log.warning(
            "the API listens on every address but answers only Host names %s (others get "
            "400): list the names operators use in api.allowed_hosts",
            ", ".join(hosts),
        )
    return hosts


def components_health(
    bus: EventBus | None = None, service: AlertService | None = None, evidence: Any = None
) -> dict[str, Any]:
    """State of the parts beside the cameras, for ``/readyz``."""
    out: dict[str, Any] = {}
    bus_health = getattr(bus, "health", None)
    if callable(bus_health):
        out["kafka_bus"] = dataclasses.asdict(bus_health())
    if service is not None:
        out["alert_service"] = dataclasses.asdict(service.health())
    state = getattr(evidence, "state", None)
    if callable(state):
        out["evidence"] = state()
    return out


GRACEFUL_SHUTDOWN_S = 2
"""Seconds open requests (event streams) get to finish when the API server stops."""


class ApiServer:
    """uvicorn in a background thread, on a socket bound up front so a busy port fails loudly."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        try:
            self._sock = socket.create_server((host, port), reuse_port=False)
        except OSError as e:
            raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from e
        self.host, self.port = self._sock.getsockname()[:2]
        # open event streams (GET /api/v1/changes) never end on their own: at shutdown they
        # are cut after this long, and the pages reconnect to the next server
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=5.0)
        self._sock.close()


def model_class_names(cfg: ArgusConfig, home: Path) -> tuple[str, ...] | None:
    """The configured model's class names from its manifest (no session), or ``None``
    when the model is not installed here (then rule sets are checked without them)."""
    try:
        return tuple(load_manifest(home / "models", cfg.detector.model).classes)
    except Exception:  # any manifest problem: validate without class names
        return None


def rules_validator(cfg: ArgusConfig, names: tuple[str, ...] | None) -> Any:
    """The API's check of a rule set sent at run time (problems, empty when fine)."""

    def check(raw: list[dict[str, Any]]) -> list[str]:
        return validate_rules(raw, cfg, names)

    return check


def configured_rules(cfg: ArgusConfig) -> list[dict[str, Any]]:
    """The config file's rules as JSON documents (what ``GET /api/v1/rules`` shows first)."""
    return [r.model_dump(mode="json", exclude_none=True) for r in cfg.rules]


def kafka_control_publisher(k: KafkaBusConfig) -> KafkaControlPublisher:
    """The API's end of the control topic."""
    return KafkaControlPublisher(k.bootstrap, DEFAULT_CONTROL_TOPIC, security=kafka_security(k))


def kafka_control_subscriber(k: KafkaBusConfig, live: LiveConfig) -> KafkaControlSubscriber:
    """A worker's end of the control topic, feeding ``live``."""
    return KafkaControlSubscriber(
        k.bootstrap, live.on_change, topic=DEFAULT_CONTROL_TOPIC, security=kafka_security(k)
    )


def publish_stored_state(store: SqlAlertStore, control: ControlPublisher) -> None:
    """Send the stored rule set and active suppressions again (start of an API process),
    so workers and the compacted topic agree with the store; a broker that is away only
    delays this (logged)."""
    try:
        n = republish_state(store, control)
        log.info("control state published (%d messages)", n)
    except ControlPublishError as e:
        log.warning("control state not published now: %s", e)


def kafka_live_publisher(k: KafkaBusConfig, demand: Demand) -> KafkaLivePublisher:
    """A worker's camera statuses and live pictures onto the live topics (``demand``: what
    the API replicas want, folded from the control channel)."""
    publisher = KafkaLivePublisher(
        k.bootstrap,
        demand,
        status_topic=k.status_topic,
        preview_topic=k.preview_topic,
        security=kafka_security(k),
    )
    publisher.start()
    return publisher


def demand_publisher(board: LiveBoard, control: ControlPublisher) -> DemandPublisher:
    """An API replica's watchers' demand onto the control channel, for the workers."""
    return DemandPublisher(board.demand, control)


def kafka_live_subscriber(k: KafkaBusConfig, board: LiveBoard) -> KafkaLiveSubscriber:
    """An API replica's reader of every worker's statuses and live pictures, into ``board``."""
    return KafkaLiveSubscriber(
        k.bootstrap,
        board,
        status_topic=k.status_topic,
        preview_topic=k.preview_topic,
        security=kafka_security(k),
    )
