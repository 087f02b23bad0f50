"""Prometheus metrics of the control plane (defined once, shared by every transport)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONTROL_PUBLISHED = Counter(
    "argus_control_published_total",
    "Control messages (rules, suppressions, tombstones) acknowledged by the control channel.",
    ["transport"],
)
CONTROL_PUBLISH_ERRORS = Counter(
    "argus_control_publish_errors_total",
    "Control messages that could not be published (the change was refused with 503).",
    ["transport"],
)
CONTROL_APPLIED = Counter(
    "argus_control_applied_total",
    "Control records read from the control topic and handed to on_change.",
    ["topic"],
)
CONTROL_CONNECTED = Gauge(
    "argus_control_subscriber_connected",
    "1 while the control subscriber reaches the broker, else 0.",
    ["topic"],
)
