"""Rules: per-camera state machines turning tracks into events."""

from selector.rules.base import FrameInfo, Rule, RuleError
from selector.rules.intrusion import IntrusionRule

__all__ = ["FrameInfo", "IntrusionRule", "Rule", "RuleError"]
