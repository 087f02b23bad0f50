"""Operator suppressions: "this was a false alarm, do not raise it again here for a while"."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selector.event import Event

REGION_MARGIN = 0.5
"""A suppression made from an alert's box covers that box grown by this fraction of its
size on every side, so the same parked object or shadow, jittering a little, stays
covered."""


@dataclass(frozen=True, slots=True)
class Suppression:
    """A rule of silence for one camera, created from an alert an operator marked false.

    An event is suppressed when it is of ``camera_id`` and, for every field that is
    set, matches it: same ``rule_id``, same ``zone``, same ``label``, and the centre of
    its box lies in ``region``.  Expired suppressions match nothing.

    Attributes:
        suppression_id: Unique id (the API's).
        camera_id: Camera it applies to.
        rule_id: Rule it applies to, or ``None`` for every rule of the camera.
        zone: Zone, or ``None``.
        label: Object class name, or ``None``.
        region: ``(x1, y1, x2, y2)`` pixels the event's box centre must lie in, or
            ``None`` for anywhere.
        expires_at: UNIX seconds (UTC) after which it no longer applies.
        created_at: UNIX seconds (UTC) of creation.
        source_event_id: The alert it was made from, if any.
        note: The operator's note.
    """

    suppression_id: str
    camera_id: str
    rule_id: str | None
    zone: str | None
    label: str | None
    region: tuple[float, float, float, float] | None
    expires_at: float
    created_at: float
    source_event_id: str | None = None
    note: str = ""

    def active(self, now: float) -> bool:
        """Whether it still applies at UNIX time ``now``."""
        return now < self.expires_at

    def matches(self, event: Event, now: float) -> bool:
        """Whether ``event`` is silenced by this suppression at UNIX time ``now``."""
        if not self.active(now) or event.camera_id != self.camera_id:
            return False
        if self.rule_id is not None and event.rule_id != self.rule_id:
            return False
        if self.zone is not None and event.zone != self.zone:
            return False
        if self.label is not None and event.label != self.label:
            return False
        if self.region is not None:
            if event.bbox is None:
                return False
            x1, y1, x2, y2 = event.bbox
            cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
            rx1, ry1, rx2, ry2 = self.region
            if not (rx1 <= cx <= rx2 and ry1 <= cy <= ry2):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the API's and the control topic's)."""
        return {
            "suppression_id": self.suppression_id,
            "camera_id": self.camera_id,
            "rule_id": self.rule_id,
            "zone": self.zone,
            "label": self.label,
            "region": None if self.region is None else [float(v) for v in self.region],
            "expires_at": float(self.expires_at),
            "created_at": float(self.created_at),
            "source_event_id": self.source_event_id,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suppression:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: A field is missing or of the wrong type (the message names it).
        """
        try:
            region = d.get("region")
            reg = None
            if region is not None:
                vals = [float(v) for v in region]
                if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
                    raise ValueError(f"region must be 4 finite numbers, got {region!r}")
                reg = (vals[0], vals[1], vals[2], vals[3])
            out = cls(
                suppression_id=str(d["suppression_id"]),
                camera_id=str(d["camera_id"]),
                rule_id=None if d.get("rule_id") is None else str(d["rule_id"]),
                zone=None if d.get("zone") is None else str(d["zone"]),
                label=None if d.get("label") is None else str(d["label"]),
                region=reg,
                expires_at=float(d["expires_at"]),
                created_at=float(d.get("created_at", 0.0)),
                source_event_id=(
                    None if d.get("source_event_id") is None else str(d["source_event_id"])
                ),
                note=str(d.get("note") or ""),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"invalid suppression: {e!r}") from e
        if not math.isfinite(out.expires_at):
            raise ValueError("invalid suppression: expires_at must be finite")
        return out


def region_around(
    bbox: tuple[float, float, float, float], margin: float = REGION_MARGIN
) -> tuple[float, float, float, float]:
    """``bbox`` grown by ``margin`` times its width/height on each side."""
    x1, y1, x2, y2 = bbox
    w, h = x2 - x1, y2 - y1
    return (x1 - margin * w, y1 - margin * h, x2 + margin * w, y2 + margin * h)
