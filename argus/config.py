"""Typed configuration of an Argus run, loaded once at the entry point.

A config file is YAML (JSON is YAML too).  Every section is a pydantic v2 model that
forbids unknown keys, so a typo is refused at start with the file, the key and the
reason instead of being silently ignored.  Cross-references (a rule naming a camera
or a zone) are checked here as well; checks that need the model's class list or the
frame size happen when those are known (see ``argus.runner``).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ingest.factory import classify_source
from selector.ground import DEFAULT_HFOV_DEG, GroundError, GroundModel, calibrate
from selector.lines import Line, LineError
from selector.rules.config import ID_PATTERN, RuleConfigBase, StrictModel
from selector.rules.registry import rule_types
from selector.schedule import Schedule, ScheduleError
from selector.zones import PolygonZone, ZoneError


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file, key and reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


class _Strict(StrictModel):
    """A config section: unknown keys refused, frozen."""


class ZoneConfig(_Strict):
    """A polygon zone in the camera's pixel coordinates."""

    name: str = Field(pattern=ID_PATTERN, description="Zone name, unique within the camera.")
    polygon: list[tuple[float, float]] = Field(
        min_length=3,
        description="Vertices [[x, y], ...] in pixels of the full frame (x right, y down).",
    )
    weight: float = Field(
        1.0, ge=0.0, le=2.0, description="Zone importance; scales the priority of its events."
    )

    @field_validator("polygon")
    @classmethod
    def _finite(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for x, y in v:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"vertex {[x, y]} is not a finite number pair")
        return v

    @model_validator(mode="after")
    def _geometry(self) -> ZoneConfig:
        # The selector's own checks (self-intersection, zero area, repeated vertices),
        # run here so a bad zone is refused at load with the file and key.
        try:
            PolygonZone(self.name, self.polygon, self.weight)
        except ZoneError as e:
            raise ValueError(e.problem) from e
        return self


class GroundPointConfig(_Strict):
    """One point of a ground calibration: where it is in the picture and on the floor."""

    image: tuple[float, float] = Field(description="[x, y] pixels of the full frame.")
    ground: tuple[float, float] = Field(
        description="[x, y] metres on the floor (any origin and axes, the same for all points)."
    )


class GroundConfig(_Strict):
    """Where the camera's picture lies on the floor, for distances and speeds in metres.

    With ``points`` the camera is *calibrated*: rules may use their ``*_m`` keys. Without,
    the ground is estimated from the people the camera sees (``estimate``), and rules
    measure their body-height keys on it once enough people were seen.
    """

    points: list[GroundPointConfig] = Field(
        default_factory=list,
        description="Four or more points on the floor, no three in a row (e.g. the corners "
        "of a parking bay), each with its pixel and its position in metres.",
    )
    estimate: bool = Field(
        True,
        description="Without points: learn the ground from the heights of the people seen "
        "(false: rules measure in the picture).",
    )
    hfov_deg: float = Field(
        DEFAULT_HFOV_DEG,
        gt=10.0,
        lt=170.0,
        description="The lens's horizontal field of view, degrees: the estimate's scale "
        "along the picture.",
    )


class ReconnectConfig(_Strict):
    """Back-off of live sources between reconnect attempts."""

    initial_s: float = Field(0.5, gt=0, le=60, description="First wait after a failure, seconds.")
    max_s: float = Field(30.0, gt=0, le=600, description="Longest wait between attempts, seconds.")
    max_attempts: int | None = Field(
        None,
        ge=1,
        description="Give up after this many reconnect attempts in a row fail (None: never).",
    )

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.initial_s > self.max_s:
            raise ValueError(f"initial_s ({self.initial_s}) must be <= max_s ({self.max_s})")
        return self


class CameraConfig(_Strict):
    """One camera (or video file played as one)."""

    id: str = Field(pattern=ID_PATTERN, description="Camera id, unique in the config.")
    source: str = Field(
        min_length=1,
        description="File path, rtsp://, rtsps://, http(s):// URL, /dev/videoN or device:N.",
    )
    evidence_source: str | None = Field(
        None,
        min_length=1,
        description="The camera's second stream, kept for evidence: usually its main "
        "(full-resolution) stream, while `source` names the sub-stream that is analysed. "
        "Alert clips are cut from it (a copy of the camera's own video, never re-encoded); "
        "while it is down, from the analysed stream. Network cameras only (rtsp://, "
        "http(s)://, ...); its password is a ${CAM_...} reference, as the source's.",
    )
    realtime: bool = Field(
        True,
        description=(
            "Files only: play at real speed like a live camera (newest frame wins, drops counted). "
            "false: deliver every frame as fast as possible, never drop, end at end of file."
        ),
    )
    loop: bool = Field(False, description="Files only: start again at end of file.")
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    timezone: str = Field(
        "UTC", description="IANA time zone of the camera's local time (rule schedules)."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    ground: GroundConfig = Field(default_factory=GroundConfig)
    groups: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        description="Camera groups: operators and supervisors see the alerts of the cameras "
        "of their groups (admins see all).",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            Schedule((), v)
        except ScheduleError as e:
            raise ValueError(str(e)) from e
        return v

    @model_validator(mode="after")
    def _evidence_stream(self) -> CameraConfig:
        if self.evidence_source is None:
            return self
        network = ("rtsp", "http", "stream")
        if classify_source(self.source)[0] not in network:
            raise ValueError(
                "evidence_source needs a network camera as source (rtsp://, http://, ...): "
                "a file or a device has one stream"
            )
        if classify_source(self.evidence_source)[0] not in network:
            raise ValueError("evidence_source must be a network stream (rtsp://, http://, ...)")
        if self.evidence_source.strip() == self.source.strip():
            raise ValueError("evidence_source names the analysed stream again: leave it out")
        return self

    @model_validator(mode="after")
    def _ground(self) -> CameraConfig:
        if self.ground.points:
            try:
                self.ground_model()
            except GroundError as e:
                raise ValueError(str(e)) from e
        return self

    def ground_model(self) -> GroundModel | None:
        """The camera's ground calibration (``None`` without ``ground.points``).

        Raises:
            selector.ground.GroundError: Points that cannot calibrate (names the camera).
        """
        pts = self.ground.points
        if not pts:
            return None
        return calibrate(self.id, [p.image for p in pts], [p.ground for p in pts])

    @model_validator(mode="after")
    def _unique_zones(self) -> CameraConfig:
        for kind, names in (
            ("zone", [z.name for z in self.zones]),
            ("line", [ln.name for ln in self.lines]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind} names must be unique within a camera; repeated: {dup}")
        return self


class LineConfig(_Strict):
    """A counting line in the camera's pixel coordinates."""

    name: str = Field(pattern=ID_PATTERN, description="Line name, unique within the camera.")
    points: list[tuple[float, float]] = Field(
        min_length=2, max_length=2, description="[[x1, y1], [x2, y2]] pixels of the full frame."
    )

    @model_validator(mode="after")
    def _geometry(self) -> LineConfig:
        try:
            Line(self.name, self.points)
        except LineError as e:
            raise ValueError(e.problem) from e
        return self


def _validate_rule(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """One rule config: validated by the model its ``type`` names in the rule registry.

    The registry (``selector.rules.registry``) is read at validation time, so a rule
    type registered by any module (a plugin, a test) is configurable at once.  Strict
    validation (``parse_config(strict=True)``) reaches the rule's model through the
    validation context.
    """
    if isinstance(value, RuleConfigBase):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"a rule is a mapping with a 'type', got {type(value).__name__}")
    kind = value.get("type")
    known = rule_types()
    if kind is None:
        raise ValueError(f"a rule needs a 'type' (one of {sorted(known)})")
    rule = known.get(kind) if isinstance(kind, str) else None
    if rule is None:
        raise ValueError(f"unknown rule type {kind!r} (known: {sorted(known)})")
    if (info.context or {}).get("strict"):
        return rule.config.model_validate_json(json.dumps(value, allow_nan=False), strict=True)
    return rule.config.model_validate(value)


class _RuleJsonSchema:
    """The JSON Schema of one rule: an object whose ``type`` is a registered rule type
    (each type's own schema is ``GET /api/v1/rule-types``'s, or ``RuleType.json_schema``)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "object",
            "required": ["type", "camera"],
            "properties": {"type": {"enum": sorted(rule_types())}},
            "description": "A rule; the keys of each type: GET /api/v1/rule-types.",
        }


RuleConfig = Annotated[
    SerializeAsAny[RuleConfigBase], WrapValidator(_validate_rule), _RuleJsonSchema()
]
"""A rule of any registered type (``selector.rules.registry``), by its ``type`` key.

Strict validation (JSON types exactly) reaches the rule's own model only through the
validation context: use ``parse_config(data, strict=True)``, which passes it."""


class JsonlSinkConfig(_Strict):
    """Append every event record as one JSON line."""

    jsonl: Path = Field(description="File to append to (created if missing, never truncated).")


SinkConfig = JsonlSinkConfig


class DetectorConfig(_Strict):
    """Which model runs and how."""

    model: str = Field("nanodet-g", description="Registered model name (see `argus models list`).")
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = Field(
        "auto", description="auto: best available (TensorRT > CUDA > CPU)."
    )
    conf_threshold: float = Field(0.35, gt=0.0, lt=1.0, description="Default score threshold.")
    class_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-class score thresholds, by class name."
    )
    iou_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Class-wise NMS IoU threshold.")
    batch_size: int = Field(4, ge=1, le=64, description="Most frames per inference call.")
    max_wait_ms: float = Field(
        10.0, ge=0.0, le=1000.0, description="How long a partial batch waits for more frames, ms."
    )
    threads: int | None = Field(None, ge=1, le=256, description="CPU threads (default: all cores).")
    io_binding: bool | None = Field(
        None,
        description="Feed the network through an onnxruntime I/O binding (a device input "
        "buffer per batch shape); default: on for CUDA/TensorRT, off on CPU.",
    )

    @field_validator("class_thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name, thr in v.items():
            if not 0.0 < thr < 1.0:
                raise ValueError(f"threshold of class {name!r} must be in (0, 1), got {thr}")
        return v


class TrackerConfig(_Strict):
    """ByteTrack parameters."""

    high_thresh: float = Field(0.5, gt=0.0, lt=1.0)
    low_thresh: float = Field(0.1, gt=0.0, lt=1.0)
    new_track_thresh: float = Field(0.6, gt=0.0, le=1.0)
    track_buffer_s: float = Field(3.0, gt=0.0, le=60.0, description="Keep lost tracks, seconds.")

    @model_validator(mode="after")
    def _order(self) -> TrackerConfig:
        # ByteTrack's two association passes need low < high <= new-track thresholds.
        if not self.low_thresh < self.high_thresh <= self.new_track_thresh:
            raise ValueError(
                "need low_thresh < high_thresh <= new_track_thresh, got "
                f"{self.low_thresh}, {self.high_thresh}, {self.new_track_thresh}"
            )
        return self


class GatingConfig(_Strict):
    """Motion gating: a cheap motion measure decides which frames need the detector."""

    enabled: bool = Field(True, description="false: every frame goes through the detector.")
    min_motion: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Share of the picture that must change for a frame to need the detector.",
    )
    heartbeat_s: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="A quiet camera is still looked at by the detector this often, seconds.",
    )
    hold_s: float = Field(
        2.0, ge=0.0, le=60.0, description="Keep detecting this long after the last motion."
    )
    sparse_when_quiet: bool = Field(
        True,
        description="Activity-driven decoding: a camera with no moving track and no motion "
        "for hold_s is decoded sparsely (keyframes only when they come at least every "
        "keyframe_max_s, else one frame per quiet_interval_s) until a frame moves; the "
        "frames since the sparse frame before are then analysed too (look-back), so "
        "events start as with every frame decoded and are reported at most one sparse "
        "interval later. false: every frame is decoded.",
    )
    quiet_interval_s: float = Field(
        0.5,
        gt=0.0,
        le=5.0,
        description="A quiet camera's longest gap between analysed frames when its keyframes "
        "are too far apart, seconds; bounds how late a change is seen.",
    )
    keyframe_max_s: float = Field(
        2.0,
        ge=0.0,
        le=5.0,
        description="A quiet camera whose keyframes come at least this often is decoded at "
        "its keyframes only, seconds; 0 disables keyframe-only decoding.",
    )


class PostgresConfig(_Strict):
    """The alert store in PostgreSQL, shared by several alert-service replicas.

    The password is never written in the config: it comes from ``password_env`` (or libpq's
    own ``PGPASSWORD`` / ``~/.pgpass``).
    """

    dsn: str = Field(
        description="libpq connection string or URI without the password, e.g. "
        "postgresql://argus@db.example:5432/argus?sslmode=verify-full.",
        min_length=1,
    )
    password_env: str = Field(
        "ARGUS_PG_PASSWORD",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the password (unset: none, or libpq's "
        "own PGPASSWORD / ~/.pgpass).",
    )
    schema_: str | None = Field(
        None,
        alias="schema",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Keep the tables in this schema (created if missing); default the "
        "role's own (public).",
    )
    connect_timeout_s: float = Field(
        5.0, ge=1.0, le=60.0, description="Give up connecting after this long, seconds."
    )
    statement_timeout_s: float = Field(
        30.0, gt=0.0, le=600.0, description="The server cancels a longer statement, seconds."
    )

    @field_validator("dsn")
    @classmethod
    def _no_password(cls, dsn: str) -> str:
        from alerts.store.postgres import dsn_has_password

        if dsn_has_password(dsn):  # ValueError for a malformed one (message names no part)
            raise ValueError(
                "storage.postgres.dsn must not hold the password: put it in the environment "
                "variable named by storage.postgres.password_env"
            )
        return dsn


class StorageConfig(_Strict):
    """Where alerts and evidence are kept (default: under $ARGUS_HOME)."""

    sqlite: Path | None = Field(
        None, description="Alert store file (default $ARGUS_HOME/alerts.db)."
    )
    postgres: PostgresConfig | None = Field(
        None,
        description="Keep alerts, users and the audit trail in PostgreSQL instead of SQLite "
        "(for several alert-service replicas).",
    )
    evidence_dir: Path | None = Field(
        None, description="Snapshot folder (default $ARGUS_HOME/evidence)."
    )

    @model_validator(mode="after")
    def _one_alert_store(self) -> StorageConfig:
        if self.sqlite is not None and self.postgres is not None:
            raise ValueError("storage: give sqlite or postgres, not both")
        return self


class KafkaSecurityConfig(_Strict):
    """TLS and SASL towards a secured Kafka cluster (kafka-python's client options).

    The SASL password is never written in the config: it comes from ``password_env``.
    """

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = Field(None, description="SASL user name.")
    password_env: str = Field(
        "ARGUS_KAFKA_PASSWORD", description="Environment variable holding the SASL password."
    )
    ca_file: Path | None = Field(None, description="CA bundle to verify the brokers (PEM).")
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS (PEM).")
    key_file: Path | None = Field(None, description="Client key for mutual TLS (PEM).")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurityConfig:
        sasl = self.protocol.startswith("SASL")
        if sasl and (self.sasl_mechanism is None or not self.username):
            raise ValueError(f"{self.protocol} needs sasl_mechanism and username")
        if not sasl and (self.sasl_mechanism or self.username):
            raise ValueError(f"sasl_mechanism/username need a SASL protocol, not {self.protocol}")
        return self


class KafkaBusConfig(_Strict):
    """Events over Kafka (any Kafka-protocol broker: Apache Kafka, Redpanda, Tansu)."""

    bootstrap: str = Field(
        min_length=1, description="Comma-separated host:port list of bootstrap brokers."
    )
    topic: str = Field(
        "argus.events", pattern=r"^[A-Za-z0-9._-]{1,249}$", description="Event topic."
    )
    status_topic: str = Field(
        "argus.cameras",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description=(
            "Compacted topic of every camera's latest status (keyed by camera id), for the "
            "wall and the camera health board."
        ),
    )
    preview_topic: str = Field(
        "argus.previews",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Live pictures of watched cameras (short retention, read from its end).",
    )
    partitions: int = Field(3, ge=1, le=1000, description="Partitions if the topic is created.")
    idempotent: bool = Field(
        True,
        description=(
            "Idempotent producer (Apache Kafka). The local Tansu broker on durable storage "
            "refuses it: set false there; de-duplication by event_id keeps redelivery safe."
        ),
    )
    spool_max_records: int = Field(
        100_000, ge=10, le=10_000_000, description="On-disk spool bound while the broker is away."
    )
    group_id: str = Field(
        "argus-alerts", min_length=1, description="Consumer group of the alert services."
    )
    dlq_topic: str | None = Field(
        None, description="Dead-letter topic for invalid records (default: '<topic>.dlq')."
    )
    security: KafkaSecurityConfig = Field(default_factory=KafkaSecurityConfig)


class BusConfig(_Strict):
    """Where event records go: in-process (single machine, default) or Kafka."""

    kafka: KafkaBusConfig | None = None


class S3EvidenceConfig(_Strict):
    """Evidence snapshots in an S3-compatible bucket (MinIO, SeaweedFS, AWS S3)."""

    endpoint: str = Field(min_length=1, description="host:port of the S3 endpoint.")
    bucket: str = Field(
        "argus-evidence", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="Bucket."
    )
    secure: bool = Field(False, description="HTTPS to the endpoint.")
    region: str | None = None
    access_key: SecretStr | None = Field(
        None, description="Prefer the environment: ARGUS_S3_ACCESS_KEY (never logged)."
    )
    secret_key: SecretStr | None = Field(
        None, description="Prefer the environment: ARGUS_S3_SECRET_KEY (never logged)."
    )
    url_expiry_s: int = Field(300, ge=10, le=7 * 86400, description="Presigned URL lifetime.")
    spool_dir: Path | None = Field(
        None,
        description="Snapshots wait here while S3 is away (default $ARGUS_HOME/spool/evidence).",
    )
    spool_max_mb: int = Field(
        4096,
        ge=1,
        le=1 << 20,
        description="Most evidence the spool holds while S3 is away, MiB (clips are megabytes "
        "each); beyond it the oldest goes (argus_evidence_spool_dropped_total).",
    )


class ClipConfig(_Strict):
    """A video clip per alert, cut from each camera's ring of compressed packets."""

    enabled: bool = Field(True, description="false: no clips (snapshots only).")
    pre_s: float = Field(
        5.0, ge=0.0, le=30.0, description="Seconds of video before the event's start."
    )
    post_s: float = Field(
        10.0, ge=1.0, le=60.0, description="Seconds of video after the event's start."
    )
    buffer_mb: float = Field(
        32.0,
        ge=1.0,
        le=1024.0,
        description="Most compressed video kept per camera stream, MiB (the oldest goes "
        "first); a camera with an evidence_source keeps two such rings.",
    )
    masked_height: int | None = Field(
        720,
        ge=144,
        le=4320,
        description="The masked copy (what operators watch) of a taller camera is scaled "
        "down to this height, pixels (null: never); the original keeps its size.",
    )
    mask_detect_every: int = Field(
        1,
        ge=1,
        le=10,
        description="Run the person detector on every n-th frame of a clip to mask it "
        "(the masks of the frames between are the union of their neighbours').",
    )


class RetentionConfig(_Strict):
    """How long alerts and their evidence are kept."""

    days: int | None = Field(
        30,
        ge=1,
        le=36500,
        description="Alerts, snapshots and clips older than this many days are deleted; "
        "null keeps them forever.",
    )
    groups: dict[str, Annotated[int, Field(ge=1, le=36500)]] = Field(
        default_factory=dict,
        description="Days per camera group (a camera in several groups keeps its evidence "
        "for the shortest of their times).",
    )
    every_s: float = Field(
        3600.0, ge=10.0, le=86400.0, description="How often the sweeper runs, seconds."
    )


class EvidenceConfig(_Strict):
    """Where snapshots and clips go: local disk (default, `storage.evidence_dir`) or S3;
    clips; retention."""

    s3: S3EvidenceConfig | None = None
    clips: ClipConfig = Field(default_factory=lambda: ClipConfig())
    retention: RetentionConfig = Field(default_factory=lambda: RetentionConfig())


class SearchConfig(_Strict):
    """Forensic search: a summary of every track (class, times, zones, direction, named
    colours, size, a masked thumbnail), kept as long as the camera's alerts."""

    track_summaries: bool = Field(
        True,
        description="false: workers publish no track summaries (search finds nothing new).",
    )


class SlaConfig(_Strict):
    """Alerts nobody claims in time go to the supervisors."""

    enabled: bool = Field(True, description="false: no automatic escalation.")
    min_priority: int = Field(
        70, ge=0, le=100, description="Alerts at or above this priority are watched."
    )
    claim_within_s: float = Field(
        180.0, ge=10.0, le=86400.0, description="Escalated if still new after this long."
    )
    check_every_s: float = Field(10.0, ge=1.0, le=600.0, description="How often to look.")


class ApiConfig(_Strict):
    """The alerting API served with --serve."""

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8000, ge=1, le=65535)
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        None,
        description=(
            "Host header values the API answers (a name or address, no port; '*' any, "
            "'*.example.org' its subdomains); others get 400 (DNS rebinding). /healthz, "
            "/readyz and /metrics answer any host, for probes by pod address. Default: "
            "localhost, 127.0.0.1, ::1 and the listen address."
        ),
    )

    session_lifetime_s: float = Field(
        12 * 3600.0, ge=300.0, le=7 * 86400.0, description="A sign-in lasts at most this long."
    )
    session_idle_s: float = Field(
        1800.0, ge=60.0, le=86400.0, description="A sign-in ends after this long unused."
    )
    secure_cookies: bool | None = Field(
        None,
        description="Mark the session cookie Secure (null: when the request came over HTTPS; "
        "set true behind a proxy that ends TLS).",
    )
    sla: SlaConfig = Field(default_factory=lambda: SlaConfig())
    cue_min_priority: int = Field(
        70,
        ge=0,
        le=101,
        description="A new alert at or above this priority gets a visual and an audible cue "
        "on the operators' page (101: never).",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_only(cls, hosts: list[str] | None) -> list[str] | None:
        for host in hosts or []:
            problem = host_entry_problem(host)
            if problem:
                raise ValueError(f"allowed_hosts entry {host!r}: {problem}")
        return hosts


_HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?")


def host_entry_problem(entry: str) -> str | None:
    """What is wrong with an ``api.allowed_hosts`` entry (a name or address, no port), or None.

    A port, a scheme or a path would never match (the ``Host`` header's port is not
    compared), so such an entry would lock everyone out without a word: it is refused.
    """
    if entry == "*":
        return None
    bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    try:
        ipaddress.ip_address(bare)
        return None
    except ValueError:
        pass
    if "://" in entry or "/" in entry:
        return "a host name or address only, without scheme or path"
    if ":" in entry:
        return "no port: the Host header's port is not compared (write the name alone)"
    if not _HOST_NAME.fullmatch(entry):
        return "not a host name ('*' for any host, '*.example.org' for its subdomains)"
    return None


class MetricsConfig(_Strict):
    """A Prometheus endpoint for processes without the API (workers)."""

    port: int | None = Field(
        None, ge=1, le=65535, description="Serve /metrics on this port (None: only via the API)."
    )
    host: str = Field("127.0.0.1", description="Listen address of the metrics endpoint.")


class LogConfig(_Strict):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    progress_interval_s: float = Field(
        10.0, gt=0, le=3600, description="Seconds between progress lines on long runs."
    )


class FleetTopicConfig(_Strict):
    """The fleet topic of camera definitions (``argus fleet publish``), for the alert
    service: the cameras' groups come from it, and admins edit cameras through the API."""

    topic: str = Field(
        "argus.fleet",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Compacted topic of camera definitions.",
    )
    partitions: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Partitions of the fleet topic if it is created here: the most "
        "workers one site's cameras can be spread over. Never change it afterwards.",
    )


class ArgusConfig(_Strict):
    """A whole run: cameras, rules, sinks and the settings of each stage."""

    cameras: list[CameraConfig] = Field(
        default_factory=list,
        description="The cameras (at least one, unless `fleet` names the topic they come "
        "from: an alert service of a fleet).",
    )
    rules: list[RuleConfig] = Field(default_factory=list)
    sinks: list[SinkConfig] = Field(default_factory=list)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    gating: GatingConfig = Field(default_factory=GatingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    fleet: FleetTopicConfig | None = Field(
        None,
        description="Alert service of a fleet: camera groups from the fleet topic, and "
        "cameras edited by admins through the API (needs bus.kafka).",
    )

    @model_validator(mode="after")
    def _cross_references(self) -> ArgusConfig:
        problems = cross_reference_problems(self.model_dump(mode="json"))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def cross_reference_problems(data: dict[str, Any]) -> list[str]:
    """Problems with how rules refer to cameras and zones, on raw (possibly invalid) data.

    Works on the plain dict so that ``parse_config`` can report these together with
    field errors, instead of only after every field is valid.
    """
    cameras = [c for c in data.get("cameras") or [] if isinstance(c, dict)]
    ids = [c.get("id") for c in cameras]
    problems: list[str] = []
    fleet = data.get("fleet") is not None
    if not data.get("cameras") and not fleet:
        problems.append("cameras: at least one camera (or a fleet section: cameras from its topic)")
    bus = data.get("bus")
    if fleet and not (isinstance(bus, dict) and bus.get("kafka")):
        problems.append("fleet: needs bus.kafka (the fleet topic is on that broker)")
    dup = sorted({str(i) for i in ids if ids.count(i) > 1})
    if dup:
        problems.append(f"cameras: camera ids must be unique; repeated: {dup}")
    zones = {
        c.get("id"): {z.get("name") for z in c.get("zones") or [] if isinstance(z, dict)}
        for c in cameras
    }
    lines = {
        c.get("id"): {ln.get("name") for ln in c.get("lines") or [] if isinstance(ln, dict)}
        for c in cameras
    }
    calibrated = {
        c.get("id")
        for c in cameras
        if isinstance(c.get("ground"), dict) and c["ground"].get("points")
    }
    seen: set[tuple[str, str]] = set()
    rules = data.get("rules") or []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        cam, zone, line = rule.get("camera"), rule.get("zone"), rule.get("line")
        if cam not in zones:
            problems.append(f"rules.{i}.camera: camera {cam!r} is not defined (cameras: {ids})")
            continue
        if zone is not None and zone not in zones[cam]:
            problems.append(
                f"rules.{i}.zone: camera {cam!r} has no zone {zone!r} "
                f"(zones: {sorted(str(z) for z in zones[cam])})"
            )
        if line is not None and line not in lines[cam]:
            problems.append(
                f"rules.{i}.line: camera {cam!r} has no line {line!r} "
                f"(lines: {sorted(str(x) for x in lines[cam])})"
            )
        for k in sorted(str(k) for k, v in rule.items() if str(k).endswith("_m") and v is not None):
            if cam not in calibrated:
                problems.append(
                    f"rules.{i}.{k}: metres need the ground calibration of camera {cam!r} "
                    f"(its `ground.points`); without one use {k[:-2]}, in body heights"
                )
        scope = zone or line
        kind = rule.get("type")
        key = (str(cam), str(rule.get("id") or (f"{kind}:{scope}" if scope else kind)))
        if key in seen:
            problems.append(
                f"rules.{i}: rule id {key[1]!r} repeats on camera {cam!r}; "
                "give one of them an explicit 'id'"
            )
        seen.add(key)
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def parse_config(data: Any, source: str = "<config>", *, strict: bool = False) -> ArgusConfig:
    """Validate already-parsed YAML/JSON data; raise ``ConfigError`` naming every problem.

    ``strict``: JSON types must match exactly (``"60"`` is no number, ``true`` no
    integer), as for rule sets sent to the API; ``data`` must then be JSON-serialisable.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, [f"top level must be a mapping, got {type(data).__name__}"])
    try:
        if strict:
            return ArgusConfig.model_validate_json(
                json.dumps(data, allow_nan=False), strict=True, context={"strict": True}
            )
        return ArgusConfig.model_validate(data)
    except ValidationError as e:
        problems: list[str] = []
        for err in e.errors(include_url=False):
            if err["type"] == "value_error" and not err["loc"]:
                continue  # the cross-reference check; reported below from the raw data
            loc = _format_loc(tuple(err["loc"]))
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not allowed here)"
            problems.append(f"{loc or '<top>'}: {msg}" + _input_hint(err))
        problems += cross_reference_problems(data)
        raise ConfigError(source, problems) from e


_UNQUOTED_KEYS = frozenset({"dsn"})
"""Keys whose bad value is never repeated in an error (a DSN may hold a password)."""


def _input_hint(err: Any) -> str:
    if err["type"] in {"extra_forbidden", "missing"}:
        return ""
    if err["loc"] and err["loc"][-1] in _UNQUOTED_KEYS:
        return ""
    value = err.get("input")
    if isinstance(value, dict | list):
        return ""
    text = repr(value)
    return f" (got {text[:80]})"


def load_config(path: Path) -> ArgusConfig:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid config; the message
            names the file, every offending key and the reason.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(source, ["file not found"]) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(source, [f"cannot read: {e}"]) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(e))}"]) from e
    return parse_config(data, source)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class FleetConfig(FleetTopicConfig):
    """A worker in a fleet: its cameras come from the fleet topic, shared out by a Kafka
    consumer group (``argus worker``)."""

    name: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="This worker's name in logs and on the health board (default: the "
        "host name and process id).",
    )
    group: str = Field(
        "argus-workers",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Consumer group of the workers sharing one site's cameras.",
    )
    capacity: int = Field(ge=1, le=10_000, description="Most cameras this worker runs.")
    session_timeout_s: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="A worker silent this long is taken for dead and its cameras go to "
        "others, seconds (the broker may impose a minimum, 6 s on Apache Kafka).",
    )


class WorkerConfig(_Strict):
    """``argus worker``: a fleet worker's settings; its cameras and rules come from the
    fleet topic, never from this file."""

    fleet: FleetConfig
    bus: BusConfig
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    gating: GatingConfig = Field(default_factory=GatingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    sinks: list[SinkConfig] = Field(default_factory=list)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        description="metrics.port also serves the worker's /healthz and /readyz.",
    )
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    @model_validator(mode="after")
    def _needs_kafka(self) -> WorkerConfig:
        if self.bus.kafka is None:
            raise ValueError("bus.kafka: a fleet worker needs the Kafka bus (its bootstrap)")
        return self

    def shared(self) -> ArgusConfig:
        """The sections every camera of this worker shares, as a config without cameras
        (for the composition root's helpers that read only those sections)."""
        return ArgusConfig.model_construct(
            cameras=[],
            rules=[],
            sinks=self.sinks,
            detector=self.detector,
            tracker=self.tracker,
            gating=self.gating,
            storage=self.storage,
            api=ApiConfig(),
            log=self.log,
            bus=self.bus,
            metrics=self.metrics,
            evidence=self.evidence,
            search=self.search,
        )

    def for_camera(self, camera: CameraConfig, rules: list[Any]) -> ArgusConfig:
        """One camera of the fleet with its rules and this worker's sections, validated.

        Raises:
            ConfigError: The camera and rules do not make a valid config.
        """
        data = self.shared().model_dump(mode="json")
        data["cameras"] = [camera.model_dump(mode="json")]
        data["rules"] = [r.model_dump(mode="json") for r in rules]
        return parse_config(data, f"fleet camera {camera.id!r}")


def load_worker_config(path: Path) -> WorkerConfig:
    """Read and validate an ``argus worker`` config file.

    Raises:
        ConfigError: Missing, not YAML, or not valid (every problem named).
    """
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(source, ["file not found"]) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(source, [f"cannot read: {e}"]) from e
    except yaml.YAMLError as e:
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(e))}"]) from e
    if not isinstance(data, dict):
        raise ConfigError(source, [f"top level must be a mapping, got {type(data).__name__}"])
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not allowed here)"
            problems.append(
                f"{_format_loc(tuple(err['loc'])) or '<top>'}: {msg}" + _input_hint(err)
            )
        raise ConfigError(source, problems) from e
