"""Prometheus metrics of the alerts side (default ``prometheus_client`` registry).

Defined once at import time so several buses, stores or apps in one process
(tests, or the runner plus the API) share the same series.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_PUBLISHED = Counter(
    "argus_events_published_total",
    "Event records published on the event bus.",
    ["type"],
)
EVENT_HANDLER_ERRORS = Counter(
    "argus_event_handler_errors_total",
    "Bus subscribers that raised while handling an event record.",
)
ALERTS_STORED = Counter(
    "argus_alerts_stored_total",
    "Alerts created in the alert store (first record of an event_id).",
    ["type"],
)
ALERTS_CLOSED = Counter(
    "argus_alerts_closed_total",
    "Alerts whose end record was stored.",
    ["type"],
)
ALERTS_INTERRUPTED = Counter(
    "argus_alerts_interrupted_total",
    "Open alerts closed as interrupted because a new worker run of their camera started "
    "(the run that raised them was killed or crashed before their end).",
    ["type"],
)
ALERTS_ACKNOWLEDGED = Counter(
    "argus_alerts_acknowledged_total",
    "Alerts acknowledged by an operator (first acknowledgement only).",
)
SIGN_IN_FAILURES = Counter(
    "argus_sign_in_failures_total",
    "Sign-ins refused: reason wrong_password (a wrong name or password), disabled (a disabled "
    "user's right password), throttled (too many failures for that name and address).",
    ["reason"],
)
API_REQUESTS = Counter(
    "argus_api_requests_total",
    "HTTP requests served by the alerts API.",
    ["method", "route", "status"],
)
API_LATENCY = Histogram(
    "argus_api_request_duration_seconds",
    "Time to serve one alerts API request, seconds.",
    ["method", "route"],
)
