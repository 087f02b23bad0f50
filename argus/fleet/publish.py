"""``argus fleet publish | list | remove``: a site's cameras onto the fleet topic and back.

``publish SITE.yaml`` validates the site (its ``cameras`` and ``rules``, as a config file
is validated), refuses it whole when a camera's source holds a password (credentials
are references: ``${NAME}``, ``${file:/path}``), and publishes each camera's
definition; with ``--prune`` the cameras on the topic that the site no longer has are
removed.  A camera whose definition did not change is not published again.  Workers
apply every change without restarting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.control import KafkaControlPublisher, KafkaControlSubscriber, ensure_control_topic
from argus.app import kafka_security
from argus.config import ArgusConfig, WorkerConfig
from argus.fleet.definitions import CameraDefinition, camera_key, definitions_of
from argus.fleet.view import FleetView

READ_TIMEOUT_S = 20.0
"""Longest wait to read the fleet topic whole, seconds."""


@dataclass
class PublishResult:
    """What ``publish`` did: camera ids published, unchanged, removed."""

    published: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def read_fleet(cfg: WorkerConfig, timeout_s: float = READ_TIMEOUT_S) -> FleetView:
    """The fleet topic read whole, folded.

    Raises:
        TimeoutError: Not read within ``timeout_s`` (the broker is away).
    """
    assert cfg.bus.kafka is not None
    parts = ensure_control_topic(
        cfg.bus.kafka.bootstrap,
        cfg.fleet.topic,
        partitions=cfg.fleet.partitions,
        security=kafka_security(cfg.bus.kafka),
        client_id="argus-fleet-cli-admin",
        timeout_s=timeout_s,
    )
    view = FleetView(len(parts) or cfg.fleet.partitions)
    reader = KafkaControlSubscriber(
        cfg.bus.kafka.bootstrap,
        lambda k, v: None,
        on_record=view.apply,
        topic=cfg.fleet.topic,
        security=kafka_security(cfg.bus.kafka),
        client_id="argus-fleet-cli",
        partitions=cfg.fleet.partitions,
    )
    with reader:
        if not reader.wait_synced(timeout_s):
            raise TimeoutError(
                f"fleet topic {cfg.fleet.topic} at {cfg.bus.kafka.bootstrap} not read "
                f"within {timeout_s:.0f} s"
            )
    return view


def publisher(cfg: WorkerConfig) -> KafkaControlPublisher:
    assert cfg.bus.kafka is not None
    return KafkaControlPublisher(
        cfg.bus.kafka.bootstrap,
        cfg.fleet.topic,
        security=kafka_security(cfg.bus.kafka),
        client_id="argus-fleet-cli",
        partitions=cfg.fleet.partitions,
        publish_timeout_s=10.0,
    )


def publish_site(
    cfg: WorkerConfig, site: ArgusConfig, *, model: str | None = None, prune: bool = False
) -> PublishResult:
    """Publish ``site``'s cameras (each with its rules) on the fleet topic.

    Raises:
        ConfigError: A camera's source holds a password (nothing is published).
        TimeoutError, ControlPublishError: The broker is away.
    """
    definitions = definitions_of(site, model)
    view = read_fleet(cfg)
    now = view.definitions()
    result = PublishResult()
    taken: list[int] = []
    with publisher(cfg) as out:
        for d in definitions:
            old = now.get(d.camera_id)
            for stale in view.stale_copies(d.camera_id):  # a racing publisher's copy
                out.publish(d.key, None, partition=stale)
            if old is not None and _same(old, d):
                result.unchanged.append(d.camera_id)
                continue
            where = view.place(d.camera_id, taken)
            taken.append(where)
            out.publish(d.key, d.to_value(), partition=where)
            result.published.append(d.camera_id)
        if prune:
            keep = {d.camera_id for d in definitions}
            for camera_id in sorted(set(now) | set(view.refused())):
                if camera_id not in keep:
                    _remove(out, view, camera_id)
                    result.removed.append(camera_id)
    return result


def remove_camera(cfg: WorkerConfig, camera_id: str) -> bool:
    """Remove one camera from the fleet (its worker stops it); ``False``: not there."""
    view = read_fleet(cfg)
    if view.partition(camera_id) is None and camera_id not in view.refused():
        return False
    with publisher(cfg) as out:
        _remove(out, view, camera_id)
    return True


def _remove(out: KafkaControlPublisher, view: FleetView, camera_id: str) -> None:
    where = view.partition(camera_id)
    for p in [*([] if where is None else [where]), *view.stale_copies(camera_id)]:
        out.publish(camera_key(camera_id), None, partition=p)
    if where is None:  # only refused definitions: where the default partitioner put them
        out.publish(camera_key(camera_id), None)


def _same(a: CameraDefinition, b: CameraDefinition) -> bool:
    return (a.camera, a.rules, a.model) == (b.camera, b.rules, b.model)


def describe(view: FleetView) -> list[str]:
    """Lines for ``argus fleet list``: every camera (id, partition, model, rules, groups),
    then the refused definitions with their reasons.  No source URL is printed."""
    lines = []
    defs: Mapping[str, CameraDefinition] = view.definitions()
    for camera_id, d in sorted(defs.items()):
        lines.append(
            f"{camera_id:<24} partition {view.partition(camera_id):>4}  "
            f"model {d.model or 'any':<12} rules {len(d.rules):>2}  groups "
            f"{','.join(d.camera.groups)}  updated "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(d.updated_at))}Z"
        )
    for camera_id, problems in sorted(view.refused().items()):
        lines.append(f"{camera_id:<24} REFUSED: {'; '.join(problems)}")
    return lines
