"""Selector: tracks detections per camera and turns them into prioritized events."""

from selector.camera import CameraSelector
from selector.event import Event, make_event_id
from selector.priority import priority
from selector.rules import FrameInfo, IntrusionRule, Rule, RuleError
from selector.tracker import ByteTracker, TrackerError
from selector.zones import PolygonZone, ZoneError

__all__ = [
    "ByteTracker",
    "CameraSelector",
    "Event",
    "FrameInfo",
    "IntrusionRule",
    "PolygonZone",
    "Rule",
    "RuleError",
    "TrackerError",
    "ZoneError",
    "make_event_id",
    "priority",
]
