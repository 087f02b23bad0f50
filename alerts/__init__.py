"""Argus alerts: what happens to events after the selector.

Modules (import the one you need; this package imports nothing heavy itself):

* ``alerts.schema``   - ``validate_record`` against ``event.schema.json`` (the contract).
* ``alerts.bus``      - ``EventBus`` protocol, ``InProcessBus`` (Kafka later).
* ``alerts.sinks``    - ``JsonlSink`` (append-only JSON Lines file).
* ``alerts.store``    - ``AlertStore`` protocol, ``SqliteAlertStore``, ``Alert`` model.
* ``alerts.evidence`` - ``EvidenceStore`` protocol, ``LocalEvidenceStore``,
  ``render_snapshot``, ``save_snapshot``, ``snapshot_key``.
* ``alerts.api``      - ``create_app`` (FastAPI operator API + page).
* ``alerts.metrics``  - Prometheus metrics of all of the above.
"""
