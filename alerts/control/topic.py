"""The compacted control topic: create it if missing, warn when it is not compacted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidConfigurationError,
    InvalidRequestError,
    PolicyViolationError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)

from alerts.control.codec import DEFAULT_CONTROL_TOPIC
from alerts.kafka_bus import check_security

logger = logging.getLogger("alerts.control")  # one logger name for the whole package


def ensure_control_topic(
    bootstrap: str,
    topic: str = DEFAULT_CONTROL_TOPIC,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    security: Mapping[str, Any] | None = None,
    client_id: str = "argus-control-admin",
    timeout_s: float = 10.0,
    create: bool = True,
) -> list[int]:
    """Create the control topic (``cleanup.policy=compact``) if missing; its partition ids.

    A broker that refuses the topic config gets the topic created without it, and one
    that keeps no ``compact`` policy is only warned about: the topic then keeps every
    change, and subscribers still rebuild the latest state (just reading more).  No
    permission to create topics: the topic is assumed to exist.

    Returns:
        The topic's partition ids, sorted (empty when it does not exist and ``create``
        is false or creation was not permitted).

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
            create_topic(admin, topic, spec, {"cleanup.policy": "compact"}, ms, "control")
            _warn_unless_compacted(admin, topic)
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    for info in described:
        if info.get("name") == topic and info.get("error_code", 0) == 0:
            return sorted(int(p["partition_index"]) for p in info.get("partitions") or [])
    return []


def create_topic(
    admin: KafkaAdminClient,
    topic: str,
    spec: dict[str, int],
    configs: dict[str, str],
    timeout_ms: int,
    what: str,
) -> None:
    """Create ``topic`` (``spec``: partitions, replication) with ``configs``; never raises for
    a topic that exists, a broker that refuses the configs (created without them, a WARNING)
    or no permission to create topics (assumed to exist, a WARNING).  ``what`` names the
    topic's use in the log ("control", "live")."""
    listed = ", ".join(f"{k}={v}" for k, v in configs.items())
    try:
        admin.create_topics({topic: spec | {"configs": configs}}, timeout_ms=timeout_ms)
        logger.info("created %s topic %s (%s)", what, topic, listed)
    except TopicAlreadyExistsError:
        pass
    except (
        InvalidConfigurationError,
        PolicyViolationError,
        UnsupportedVersionError,
        InvalidRequestError,
    ) as e:
        logger.warning(
            "broker refused %s for %s topic %s (%s); creating it without",
            listed,
            what,
            topic,
            type(e).__name__,
        )
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics({topic: spec}, timeout_ms=timeout_ms)
    except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as e:
        logger.warning(
            "no permission to create %s topic %s (%s); assuming it exists",
            what,
            topic,
            type(e).__name__,
        )


def _warn_unless_compacted(admin: KafkaAdminClient, topic: str) -> None:
    """Best effort: warn when the topic's ``cleanup.policy`` is known and not compact."""
    try:
        result = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
        entry = result.get("topic", {}).get(topic, {}).get("cleanup.policy")
        policy = entry.get("value") if isinstance(entry, dict) else None
    except Exception as e:  # brokers without DescribeConfigs: nothing to check
        logger.debug("cannot read the configs of %s: %s", topic, type(e).__name__)
        return
    if policy is not None and "compact" not in str(policy):
        logger.warning(
            "control topic %s has cleanup.policy=%s, not compact: it keeps every change "
            "(subscribers still rebuild the latest state, reading more)",
            topic,
            policy,
        )
