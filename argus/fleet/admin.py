"""``FleetAdmin``: the API's hold on the fleet topic (``alerts.api.fleet_admin``'s protocol).

An alert service of a fleet reads the topic whole (``FleetView``, fed by a
``KafkaControlSubscriber``), publishes admins' changes on it, and keeps the API's camera
groups in step with it (``groups``), so operators see the alerts of the fleet cameras of
their groups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from alerts.control import (
    ControlValue,
    KafkaControlPublisher,
    KafkaControlSubscriber,
    encode_value,
    ensure_control_topic,
)
from argus.app import kafka_security
from argus.config import ArgusConfig, ConfigError
from argus.fleet.definitions import (
    CameraDefinition,
    camera_key,
    is_reference,
    parse_definition,
)
from argus.fleet.view import FleetView
from ingest.redact import redact_url, secrets_in


class FleetChannel(Protocol):
    """Where fleet definitions are published (``KafkaControlPublisher``; in one process,
    ``InProcessControl``)."""

    def publish(self, key: str, value: ControlValue, partition: int | None = None) -> None: ...


class FleetAdmin:
    """Lists, checks, publishes and removes camera definitions (thread-safe).

    Args:
        view: The fleet topic folded (fed by its subscriber).
        publisher: The fleet topic's publisher.
        clock: UNIX time source (``updated_at``).
    """

    def __init__(
        self,
        view: FleetView,
        publisher: FleetChannel,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.publisher = publisher
        self.clock = clock
        self._lock = threading.Lock()

    def cameras(self) -> list[dict[str, Any]]:
        placed = self.view.by_partition()  # one snapshot: partitions and definitions agree
        return sorted(
            (self._out(d, p) for p, defs in placed.items() for d in defs),
            key=lambda c: str(c["camera_id"]),
        )

    def refused(self) -> dict[str, list[str]]:
        return self.view.refused()

    def _parse(self, camera_id: str, body: Mapping[str, Any]) -> CameraDefinition:
        value = {**dict(body), "updated_at": self.clock()}
        definition = parse_definition(camera_key(camera_id), value, "definition")
        encode_value(definition.key, definition.to_value())  # JSON, and not too large
        return definition

    def problems(self, camera_id: str, body: Mapping[str, Any]) -> list[str]:
        try:
            self._parse(camera_id, body)
        except ConfigError as e:
            return list(e.problems)
        except ValueError as e:
            return [str(e)[:500]]
        return []

    def put(self, camera_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        definition = self._parse(camera_id, body)
        with self._lock:
            where = self.view.place(camera_id)
            value = definition.to_value()
            self.publisher.publish(definition.key, value, partition=where)
            self.view.apply(definition.key, value, where)  # at once, for a GET
            for stale in self.view.stale_copies(camera_id):  # a racing publisher's copy
                self.publisher.publish(definition.key, None, partition=stale)
                self.view.apply(definition.key, None, stale)
        return self._out(definition, where)

    def remove(self, camera_id: str) -> bool:
        with self._lock:
            where = self.view.partition(camera_id)
            if where is None:
                return False
            key = camera_key(camera_id)
            for p in [where, *self.view.stale_copies(camera_id)]:
                self.publisher.publish(key, None, partition=p)
                self.view.apply(key, None, p)
        return True

    def groups(self) -> dict[str, list[str]]:
        """Every fleet camera's groups, by id (for the API's ``CameraGroups``)."""
        return {cid: list(d.camera.groups) for cid, d in self.view.definitions().items()}

    def _out(self, d: CameraDefinition, partition: int) -> dict[str, Any]:
        camera = d.camera.model_dump(mode="json")
        camera["source"] = shown_source(camera["source"])
        if camera.get("evidence_source") is not None:
            camera["evidence_source"] = shown_source(camera["evidence_source"])
        return {
            "camera_id": d.camera_id,
            "camera": camera,
            "rules": [r.model_dump(mode="json") for r in d.rules],
            "model": d.model,
            "updated_at": d.updated_at,
            "partition": partition,
        }


def open_fleet_admin(
    cfg: ArgusConfig, on_groups: Callable[[dict[str, list[str]]], object]
) -> tuple[FleetAdmin, KafkaControlSubscriber, KafkaControlPublisher]:
    """An alert service's hold on its fleet (``cfg.fleet``, on ``cfg.bus.kafka``): the
    admin, the topic's reader (not started) and publisher.  ``on_groups`` is called with
    every camera's groups (the config's cameras, then the fleet's) whenever they change.

    Raises:
        kafka.errors.KafkaError: The broker did not answer for the topic.
    """
    assert cfg.fleet is not None and cfg.bus.kafka is not None  # the config requires both
    k = cfg.bus.kafka
    security = kafka_security(k)
    parts = ensure_control_topic(
        k.bootstrap,
        cfg.fleet.topic,
        partitions=cfg.fleet.partitions,
        security=security,
        client_id="argus-alerts-fleet-admin",
    )
    view = FleetView(len(parts) or cfg.fleet.partitions)
    publisher = KafkaControlPublisher(
        k.bootstrap,
        cfg.fleet.topic,
        security=security,
        client_id="argus-alerts-fleet",
        partitions=cfg.fleet.partitions,
    )
    admin = FleetAdmin(view, publisher)
    static = {c.id: list(c.groups) for c in cfg.cameras}
    follow = follow_groups(admin, static, on_groups)
    reader = KafkaControlSubscriber(
        k.bootstrap,
        follow,
        on_record=follow,
        topic=cfg.fleet.topic,
        security=security,
        client_id="argus-alerts-fleet-reader",
        partitions=cfg.fleet.partitions,
    )
    return admin, reader, publisher


def follow_groups(
    admin: FleetAdmin,
    static: Mapping[str, list[str]],
    on_groups: Callable[[dict[str, list[str]]], object],
) -> Callable[..., None]:
    """The fleet reader's ``on_change``: fold the record into ``admin``'s view, then, when
    the cameras' groups changed, call ``on_groups`` with every camera's groups (the fleet's,
    and ``static``: the config's cameras, which win)."""
    last: dict[str, list[str]] = {}

    def on_change(key: str, value: Any, partition: int | None = None) -> None:
        nonlocal last
        admin.view.apply(key, value, partition)
        groups = {**admin.groups(), **static}
        if groups != last:
            last = groups
            on_groups(groups)

    return on_change


def shown_source(source: str) -> str:
    """A definition's source as the API shows it: its credential references as written
    (``${CAM_...}`` names a secret, it is none: an admin editing the camera sends it back
    as it is), anything else in a secret's place redacted (a definition holds none, see
    :func:`argus.fleet.definitions.source_problem`; this is the second line)."""
    if all(is_reference(value) for value in secrets_in(source)):
        return source
    return redact_url(source)
