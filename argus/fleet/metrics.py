"""Prometheus metrics of a fleet worker (served on its ``metrics.port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CAPACITY = Gauge("argus_fleet_capacity", "Most cameras this worker runs (its declared capacity).")
CAMERAS = Gauge("argus_fleet_cameras", "Fleet cameras this worker runs now.")
WAITING = Gauge(
    "argus_fleet_cameras_waiting",
    "Fleet cameras no worker runs, as the group's leader last said (the same on every "
    "worker: aggregate with max).",
)
STARTS = Counter("argus_fleet_camera_starts_total", "Cameras this worker started.")
STOPS = Counter("argus_fleet_camera_stops_total", "Cameras this worker stopped (handed on).")
