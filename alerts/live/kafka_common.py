"""What the live topics' publisher and subscriber share: names, bounds, metrics, and
creating the topics (``ensure_live_topics``).  See ``alerts.live.kafka`` for the design."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from prometheus_client import Counter, Gauge

from alerts.control.topic import create_topic
from alerts.kafka_bus import check_security

logger = logging.getLogger("alerts.live")

DEFAULT_STATUS_TOPIC = "argus.cameras"
DEFAULT_PREVIEW_TOPIC = "argus.previews"
PREVIEW_RETENTION_MS = 60_000
"""``retention.ms`` of a preview topic created here (pictures are useless after seconds)."""
MAX_STATUS_BYTES = 64 * 1024
"""Largest status record read (a real one is well under 10 KiB)."""
MAX_PENDING_STATUSES = 10_000
"""Most cameras whose status waits to be sent; beyond it new reports are dropped."""
MALFORMED_LOG_EVERY_S = 10.0
"""Malformed records are logged at most once per this many seconds (and counted)."""

LIVE_SENT = Counter(
    "argus_live_sent_total",
    "Camera statuses and live pictures acknowledged by the broker.",
    ["kind"],
)
LIVE_DROPPED = Counter(
    "argus_live_dropped_total",
    "Camera statuses and live pictures not delivered (broker away, buffer full, replaced "
    "by a newer one while waiting).",
    ["kind"],
)
LIVE_RECEIVED = Counter(
    "argus_live_received_total",
    "Camera statuses, tombstones and live pictures read from the live topics and applied.",
    ["kind"],
)
LIVE_MALFORMED = Counter(
    "argus_live_malformed_total",
    "Records of the live topics refused as malformed (skipped).",
    ["kind"],
)
LIVE_CONNECTED = Gauge(
    "argus_live_connected",
    "1 while the live publisher or subscriber reaches the broker, else 0.",
    ["side"],
)
DEMAND_PUBLISHED = Counter(
    "argus_live_demand_published_total",
    "Demand messages (wants and tombstones) published on the control channel.",
)
DEMAND_PUBLISH_ERRORS = Counter(
    "argus_live_demand_publish_errors_total",
    "Demand messages that could not be published (retried).",
)

STATUS, PICTURE = "status", "picture"


# --------------------------------------------------------------------------- topics


def ensure_live_topics(
    bootstrap: str,
    status_topic: str = DEFAULT_STATUS_TOPIC,
    preview_topic: str = DEFAULT_PREVIEW_TOPIC,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    preview_retention_ms: int = PREVIEW_RETENTION_MS,
    security: Mapping[str, Any] | None = None,
    client_id: str = "argus-live-admin",
    timeout_s: float = 10.0,
    create: bool = True,
) -> dict[str, list[int]]:
    """Create the live topics if missing; each topic's partition ids.

    The status topic is created with ``cleanup.policy=compact``, the preview topic with
    ``cleanup.policy=delete`` and ``retention.ms=preview_retention_ms``.  A broker that
    refuses those configs gets the topic created without them (a WARNING: the status
    topic then keeps every report, the preview topic the broker's default retention);
    without permission to create topics they are assumed to exist.

    Returns:
        Topic -> its partition ids, sorted (empty for a topic that does not exist).

    Raises:
        kafka.errors.KafkaError: The broker is unreachable or failed otherwise.
    """
    ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=ms,
        bootstrap_timeout_ms=ms,
        **check_security(security),
    )
    try:
        if create:
            spec = {"num_partitions": partitions, "replication_factor": replication_factor}
            wanted = {
                status_topic: {"cleanup.policy": "compact"},
                preview_topic: {
                    "cleanup.policy": "delete",
                    "retention.ms": str(int(preview_retention_ms)),
                },
            }
            for topic, configs in wanted.items():
                create_topic(admin, topic, spec, configs, ms, "live")
        described = admin.describe_topics([status_topic, preview_topic])
    finally:
        admin.close()
    out: dict[str, list[int]] = {status_topic: [], preview_topic: []}
    for info in described:
        name = info.get("name")
        if name in out and info.get("error_code", 0) == 0:
            out[name] = sorted(int(p["partition_index"]) for p in info.get("partitions") or [])
    return out
