"""``FleetView``: the fleet topic folded into every camera's latest valid definition.

Each camera's definition lives in one partition of the topic, chosen when the camera is
first published (``place``: a partition with no camera, else the one with fewest), so one
partition is normally one camera and a worker's capacity counts cameras.  Should a
camera's key be found in two partitions (two publishers racing), the newer definition
wins (``updated_at``; a tie: the lower partition) and the publisher removes the other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from argus.config import ConfigError
from argus.fleet.definitions import CAMERA_PREFIX, CameraDefinition, parse_definition, partition_of

log = logging.getLogger("argus.fleet")

MAX_PROBLEMS = 20
"""Most problems kept per refused definition (each at most 300 characters)."""


class FleetView:
    """Every camera's latest valid definition, from the fleet topic (thread-safe).

    ``apply(key, value, partition)`` (a ``KafkaControlSubscriber``'s ``on_record``) never
    raises.  A definition that does not validate is refused with its reasons
    (``refused``; logged at WARNING, without the source URL) and the camera's previous
    valid definition, if any, stays: a bad edit never stops a running camera, and the
    other cameras run.  A tombstone removes the camera's copy in that partition.

    Args:
        partitions: Partitions of the fleet topic.
    """

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.partitions = partitions
        self._lock = threading.Lock()
        self._copies: dict[str, dict[int, CameraDefinition]] = {}
        self._refused: dict[str, list[str]] = {}
        self.version = 0
        """Changes applied so far (cheap change detection)."""

    def __call__(self, key: str, value: Any, partition: int | None = None) -> None:
        self.apply(key, value, partition)

    def apply(self, key: str, value: Any, partition: int | None = None) -> bool:
        """Fold one fleet record in (``partition`` ``None``: where Kafka's default
        partitioner puts the key); whether it changed the cameras."""
        if not isinstance(key, str) or not key.startswith(CAMERA_PREFIX):
            log.warning("fleet: ignoring unknown key %r", str(key)[:80])
            return False
        camera_id = key[len(CAMERA_PREFIX) :]
        where = partition_of(camera_id, self.partitions) if partition is None else partition
        if value is None:
            with self._lock:
                copies = self._copies.get(camera_id, {})
                removed = copies.pop(where, None)
                if not copies:
                    self._copies.pop(camera_id, None)
                    self._refused.pop(camera_id, None)
                self.version += 1
            if removed is not None:
                log.info("fleet: camera removed", extra={"camera_id": camera_id[:64]})
            return removed is not None
        try:
            definition = parse_definition(key, value)
        except ConfigError as e:
            problems = [p[:300] for p in e.problems[:MAX_PROBLEMS]]
            with self._lock:
                self._refused[camera_id] = problems
                had = camera_id in self._copies
                self.version += 1
            log.warning(
                "fleet: definition of camera %r refused (%s); %s",
                camera_id[:64],
                "; ".join(problems),
                "its previous definition stays" if had else "the camera is not run",
            )
            return False
        with self._lock:
            self._copies.setdefault(camera_id, {})[where] = definition
            self._refused.pop(camera_id, None)
            self.version += 1
        log.info("fleet: camera defined", extra={"camera_id": camera_id, "partition": where})
        return True

    def _winner(self, copies: Mapping[int, CameraDefinition]) -> tuple[int, CameraDefinition]:
        p = max(copies, key=lambda q: (copies[q].updated_at, -q))
        return p, copies[p]

    def definitions(self) -> dict[str, CameraDefinition]:
        """Every camera's definition in force, by id (a copy)."""
        with self._lock:
            return {cid: self._winner(c)[1] for cid, c in self._copies.items()}

    def partition(self, camera_id: str) -> int | None:
        """The partition of the camera's definition in force (``None``: not defined)."""
        with self._lock:
            copies = self._copies.get(camera_id)
            return self._winner(copies)[0] if copies else None

    def stale_copies(self, camera_id: str) -> list[int]:
        """Partitions holding an older copy of the camera's definition (to remove)."""
        with self._lock:
            copies = self._copies.get(camera_id)
            if not copies:
                return []
            keep = self._winner(copies)[0]
            return sorted(p for p in copies if p != keep)

    def refused(self) -> dict[str, list[str]]:
        """Definitions refused, by camera id: the reasons (a copy)."""
        with self._lock:
            return {k: list(v) for k, v in self._refused.items()}

    def by_partition(self) -> dict[int, list[CameraDefinition]]:
        """The cameras of each partition that holds any, each list sorted by camera id."""
        with self._lock:
            won = sorted((cid, self._winner(c)) for cid, c in self._copies.items())
        out: dict[int, list[CameraDefinition]] = {}
        for _, (p, definition) in won:
            out.setdefault(p, []).append(definition)
        return out

    def place(self, camera_id: str, taken: Iterable[int] = ()) -> int:
        """The partition for ``camera_id``'s definition: where it is, else a partition with
        the fewest cameras (none, while there are fewer cameras than partitions; ``taken``:
        partitions just chosen for others), the lowest of those."""
        where = self.partition(camera_id)
        if where is not None:
            return where
        load = dict.fromkeys(range(self.partitions), 0)
        for p, defs in self.by_partition().items():
            if p in load:
                load[p] += len(defs)
        for p in taken:
            if p in load:
                load[p] += 1
        return min(load, key=lambda p: (load[p], p))

    def placement_digest(self) -> str:
        """A short digest of what decides the assignment (cameras, their partitions, models
        and classes): it changes when the group must be rebalanced, and only then."""
        placed = {str(p): [d.placement() for d in defs] for p, defs in self.by_partition().items()}
        raw = json.dumps(placed, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def load(self, records: Mapping[str, Any]) -> None:
        """Fold many records at once (tests), each where the default partitioner puts it."""
        for key, value in records.items():
            self.apply(key, value)
