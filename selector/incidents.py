"""From rule events to operator alerts: arming, suppression, de-duplication, escalation.

Rules raise one event per *occurrence* (a track's stay, a crossing, a covered lens).  An
operator wants one alert per *incident*: three people walking into a closed area
together, or one person flickering at a zone's edge, is one thing to look at.  The
``IncidentGate`` of a camera sits after its rules and decides what is forwarded:

1. **Disabled or disarmed** rules (outside their schedule's windows) forward nothing.
2. **Suppressed**: an event matching an active operator suppression (an alert marked
   false positive) is dropped, start and end.
3. **De-duplication and cooldown**, per camera, rule, zone and line: while an incident
   is open, further starts of the same key are merged into it; after its last member
   ends, the incident's end is held for ``cooldown_s`` and a start in that time merges
   into it as well.  The incident keeps the first event's id; its end record carries
   the last member's end time and ``details["members"]``.  It stays the record of its
   first event (the *head*: its track, box and start), so its ``geometry`` is the
   head's: the start record's, and on the end record the geometry of the last-ending
   member about the head's track (the head's own end, or with ``per_object`` a later
   stay of the same object), whose path runs to the last time that track was seen in
   the incident; the head's start geometry when no such end came.
4. **Priority**: the rule's priority times the schedule window's weight, plus a bonus
   for persistence (:func:`selector.priority.with_persistence`).  While an incident
   stays open its start record is re-sent (same ``event_id``, ``end_s`` null) each
   time the bonus grows, so a long loitering climbs the queue.

All times are video seconds of the camera (``pts_s``) except suppression expiry and
schedules, which use the frame's wall-clock time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from selector.event import Event, Geometry
from selector.priority import with_persistence
from selector.schedule import ALWAYS, Schedule
from selector.suppression import Suppression

logger = logging.getLogger(__name__)

TIME_EPS_S = 1e-6

_Key = tuple[str, str, str, str, int | None]
"""rule id, event type, zone, line, track (per-object policies only)."""


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """How a rule's events become alerts.

    Attributes:
        enabled: False: the rule runs (its state stays warm) but forwards nothing.
        schedule: When it is armed and with what priority weight.
        cooldown_s: Seconds after an incident's last member ended during which a new
            start of the same rule, zone and line joins it instead of raising a new
            alert (>= 0; 0 merges only overlapping events).
        per_object: True: one alert per object (track) instead of per incident: only
            the same track's events merge (a person stepping out of a zone and back
            within the cooldown stays one alert), different people are separate alerts.
    """

    enabled: bool = True
    schedule: Schedule = ALWAYS
    cooldown_s: float = 0.0
    per_object: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cooldown_s) and self.cooldown_s >= 0.0):
            raise ValueError(f"cooldown_s must be >= 0, got {self.cooldown_s!r}")


DEFAULT_POLICY = RulePolicy()


@dataclass
class GateCounts:
    """What the gate held back, by reason (event starts)."""

    disabled: int = 0
    disarmed: int = 0
    suppressed: int = 0
    merged: int = 0


@dataclass(slots=True)
class _Incident:
    head: Event  # the start record as last sent
    base_priority: int  # rule priority x schedule weight, before persistence
    cooldown_s: float
    open_members: set[str] = field(default_factory=set)
    members: int = 1
    last_end_s: float | None = None
    close_at_s: float | None = None
    end_details: Mapping[str, float | int | str | bool] = field(default_factory=dict)
    end_geometry: Geometry | None = None  # of the last-ending member about head's track
    end_geometry_s: float | None = None


class IncidentGate:
    """Per-camera filter between rules and the bus.  Single-threaded.

    Args:
        camera_id: Camera id (events of other cameras are refused).
        policies: Policy by ``rule_id``; rules not listed get :data:`DEFAULT_POLICY`.
        suppressions: Operator suppressions (any camera; others are ignored).
    """

    def __init__(
        self,
        camera_id: str,
        policies: Mapping[str, RulePolicy] | None = None,
        suppressions: Iterable[Suppression] = (),
    ) -> None:
        self.camera_id = camera_id
        self._policies: dict[str, RulePolicy] = dict(policies or {})
        self._suppressions: list[Suppression] = []
        self.set_suppressions(suppressions)
        self._incidents: dict[_Key, _Incident] = {}
        self._member_of: dict[str, _Key] = {}
        self._swallowed: set[str] = set()
        self.counts = GateCounts()

    def set_policies(self, policies: Mapping[str, RulePolicy]) -> None:
        """Replace the policies (hot reload); open incidents keep their cooldown."""
        self._policies = dict(policies)

    def set_suppressions(self, suppressions: Iterable[Suppression]) -> None:
        """Replace the suppressions (only this camera's are kept)."""
        self._suppressions = [s for s in suppressions if s.camera_id == self.camera_id]

    @property
    def suppressions(self) -> list[Suppression]:
        """This camera's suppressions (expired ones included)."""
        return list(self._suppressions)

    def open_incidents(self) -> list[Event]:
        """Start records of the open incidents, oldest first."""
        return [i.head for i in self._incidents.values()]

    def process(self, events: Iterable[Event], now_s: float) -> list[Event]:
        """Filter one frame's rule events; also release held ends due at ``now_s``.

        Args:
            events: The rules' events of the frame, in order.
            now_s: The frame's video time (``pts_s``).

        Returns:
            The records to forward: new incident starts, priority updates of open
            incidents (start records again), incident ends.
        """
        out: list[Event] = []
        for e in events:
            if e.camera_id != self.camera_id:
                raise ValueError(
                    f"gate of camera {self.camera_id!r} got an event of {e.camera_id!r}"
                )
            if e.is_open:
                out.extend(self._start(e, now_s))
            else:
                self._end(e)
        out.extend(self.tick(now_s))
        return out

    def forwards(self, rule_id: str, wall_time: float) -> bool:
        """Whether an event of ``rule_id`` starting at UNIX time ``wall_time`` could become
        an alert: the rule is enabled and its schedule armed (suppressions, which match
        each event's own fields, are not looked at)."""
        policy = self._policies.get(rule_id, DEFAULT_POLICY)
        return policy.enabled and policy.schedule.weight(wall_time) is not None

    def _start(self, e: Event, now_s: float) -> list[Event]:
        policy = self._policies.get(e.rule_id, DEFAULT_POLICY)
        weight = policy.schedule.weight(e.wall_time)
        reason = None
        if not policy.enabled:
            reason, self.counts.disabled = "disabled", self.counts.disabled + 1
        elif weight is None:
            reason, self.counts.disarmed = "disarmed", self.counts.disarmed + 1
        elif any(s.matches(e, e.wall_time) for s in self._suppressions):
            reason, self.counts.suppressed = "suppressed", self.counts.suppressed + 1
        if reason is not None or weight is None:
            self._swallowed.add(e.event_id)
            logger.debug("event %s %s: %s", e.event_id, reason, e.rule_id)
            return []
        key = (
            e.rule_id,
            e.type,
            e.zone or "",
            e.line or "",
            e.track_id if policy.per_object else None,
        )
        inc = self._incidents.get(key)
        if inc is not None:  # same incident: merge
            inc.open_members.add(e.event_id)
            inc.members += 1
            inc.close_at_s = None
            self._member_of[e.event_id] = key
            self.counts.merged += 1
            return []
        base = max(0, min(100, round(e.priority * weight)))
        head = replace(e, priority=with_persistence(base, now_s - e.start_s))
        self._incidents[key] = _Incident(head, base, policy.cooldown_s, open_members={e.event_id})
        self._member_of[e.event_id] = key
        return [head]

    def _end(self, e: Event) -> None:
        if e.event_id in self._swallowed:
            self._swallowed.discard(e.event_id)
            return
        key = self._member_of.pop(e.event_id, None)
        inc = None if key is None else self._incidents.get(key)
        if inc is None:
            logger.debug("end of unknown event %s ignored", e.event_id)
            return
        inc.open_members.discard(e.event_id)
        end_s = float(e.end_s if e.end_s is not None else e.start_s)
        if inc.last_end_s is None or end_s >= inc.last_end_s:
            inc.last_end_s = end_s
            inc.end_details = e.details
        if (
            e.geometry is not None
            and e.track_id == inc.head.track_id
            and (inc.end_geometry_s is None or end_s >= inc.end_geometry_s)
        ):
            inc.end_geometry, inc.end_geometry_s = e.geometry, end_s
        if not inc.open_members:
            inc.close_at_s = inc.last_end_s + inc.cooldown_s

    def tick(self, now_s: float) -> list[Event]:
        """Ends whose cooldown has passed, and priority updates, at video time ``now_s``."""
        out: list[Event] = []
        for key in list(self._incidents):
            inc = self._incidents[key]
            if inc.close_at_s is not None:
                if now_s >= inc.close_at_s - TIME_EPS_S:
                    out.append(self._close(key))
                continue
            bumped = with_persistence(inc.base_priority, now_s - inc.head.start_s)
            if bumped > inc.head.priority:
                inc.head = replace(inc.head, priority=bumped)
                out.append(inc.head)
        return out

    def _close(self, key: _Key, end_s: float | None = None) -> Event:
        inc = self._incidents.pop(key)
        for eid in inc.open_members:
            self._member_of.pop(eid, None)
        last = inc.last_end_s if inc.last_end_s is not None else inc.head.start_s
        if end_s is not None and inc.open_members:
            last = max(last, end_s)
        end = max(inc.head.start_s, last)
        details = dict(inc.head.details) | dict(inc.end_details)
        if inc.members > 1:
            details["members"] = inc.members
        return replace(
            inc.head,
            end_s=end,
            priority=max(
                inc.head.priority, with_persistence(inc.base_priority, end - inc.head.start_s)
            ),
            details=details,
            geometry=inc.end_geometry if inc.end_geometry is not None else inc.head.geometry,
        )

    def close_all(self, end_s: float) -> list[Event]:
        """End every incident now (end of stream, after the rules' own ``close_all``)."""
        out = [self._close(key, end_s) for key in list(self._incidents)]
        self._swallowed.clear()
        self._member_of.clear()
        return out
