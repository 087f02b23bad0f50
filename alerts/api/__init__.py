"""The operator HTTP API (FastAPI): alerts, operator actions, evidence, the control plane.

Routers, one module per resource (``alerts.api.routes``):

* ``alerts``   - ``GET /api/v1/alerts`` (filtered, paginated, most urgent then most
  recent first), ``GET /api/v1/alerts/{event_id}``
* ``actions``  - ``POST /api/v1/alerts/{event_id}/ack`` (idempotent),
  ``POST /api/v1/alerts/{event_id}/false-positive`` (creates a suppression, 201)
* ``evidence`` - ``GET /api/v1/alerts/{event_id}/snapshot`` (JPEG), ``.../snapshot-url``
* ``control``  - ``GET|PUT /api/v1/rules`` (revisioned; a stale ``revision`` is 409),
  ``GET /api/v1/suppressions``, ``GET|DELETE /api/v1/suppressions/{id}``
* ``ops``      - ``GET /healthz``, ``/readyz``, ``/metrics`` (open: states and counters,
  no hosts, paths or names), ``GET /api/v1/status`` (the details, with the key)
* ``pages``    - ``GET /`` (operator page) and ``/docs`` (Swagger UI), both from package
  files under a strict Content-Security-Policy

Every ``/api/v1`` route needs the API key, as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``; the key is compared in constant time and never logged or echoed.
Before any route, ``alerts.api.guards`` checks the ``Host`` header (DNS rebinding) and
bounds request bodies (size, JSON depth, unpaired surrogates); ``alerts.api.errors``
makes every error answer encodable and rate-limits the log lines about rejections.

Control plane (rules and suppressions, see ``alerts.control``): enabled by passing
``control`` (a ``ControlPublisher``) and ``validate_rules`` to ``create_app``; the store
must then also be a ``ControlStore``.  Without ``control`` those routes answer 503.
"""

from alerts.api.app import API_PREFIX, AccessSettings, PageSettings, create_app
from alerts.api.models import MAX_JSON_DEPTH, MAX_RULES
from alerts.api.redaction import public_view, redact

__all__ = [
    "API_PREFIX",
    "MAX_JSON_DEPTH",
    "MAX_RULES",
    "AccessSettings",
    "PageSettings",
    "create_app",
    "public_view",
    "redact",
]
