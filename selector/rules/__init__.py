"""Rules: per-camera state machines turning tracks (and scene measures) into events."""

from selector.rules.abandoned import AbandonedObjectRule
from selector.rules.base import FrameInfo, Rule, RuleError
from selector.rules.camera_health import CameraHealthRule
from selector.rules.crowding import CrowdingRule
from selector.rules.fall import FallRule
from selector.rules.intrusion import IntrusionRule, ZoneStayRule
from selector.rules.line_crossing import LineCrossingRule
from selector.rules.loitering import LoiteringRule
from selector.rules.wrong_way import WrongWayRule

__all__ = [
    "AbandonedObjectRule",
    "CameraHealthRule",
    "CrowdingRule",
    "FallRule",
    "FrameInfo",
    "IntrusionRule",
    "LineCrossingRule",
    "LoiteringRule",
    "Rule",
    "RuleError",
    "WrongWayRule",
    "ZoneStayRule",
]
