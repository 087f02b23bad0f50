"""Live state of the cameras for operators: statuses, watched activity and live pictures.

Workers report (``LiveSink``) each camera's ``CameraStatus`` about once a second and, only
for cameras someone watches (``Demand``), small drawn and masked JPEGs (``Preview``); the
alerting API keeps the latest of each (``LiveBoard``) for the wall and the camera health
board.  In one process the runner feeds the board directly; across processes the reports
travel on Kafka (``alerts.live.kafka``) and the demand on the control channel.
"""

from alerts.live.board import STALE_AFTER_S, FanOut, LiveBoard, LiveSink
from alerts.live.demand import DEMAND_PREFIX, LEASE_S, RENEW_S, Demand, Want, demand_message
from alerts.live.preview import Overlay, Preview, PreviewError, render_preview
from alerts.live.status import STATE_RANK, STATES, CameraStatus, WatchOut, state_of

__all__ = [
    "DEMAND_PREFIX",
    "LEASE_S",
    "RENEW_S",
    "STALE_AFTER_S",
    "STATES",
    "STATE_RANK",
    "CameraStatus",
    "Demand",
    "FanOut",
    "LiveBoard",
    "LiveSink",
    "Overlay",
    "Preview",
    "PreviewError",
    "Want",
    "WatchOut",
    "demand_message",
    "render_preview",
    "state_of",
]
