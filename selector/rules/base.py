"""What every rule implements, and the pixel-free frame description rules receive."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from detectors.detections import Detections
from detectors.scene import SceneStats
from ingest.frame import Frame
from selector.event import Event
from selector.ground import GroundModel
from selector.watch import Watch


class RuleError(ValueError):
    """Invalid rule configuration or input; the message names the rule and the value."""


@dataclass(frozen=True, slots=True)
class PoseSighting:
    """A person's pose where a rule asked for one (see :data:`POSE_HOOK`): numbers only.

    Attributes:
        box: The box the rule asked about, ``(x1, y1, x2, y2)`` pixels (as asked).
        lying: Whether the keypoints read as lying (``True``), upright (``False``), or
            too few were confident to tell (``None``).
        torso_deg: Torso angle from the vertical, degrees (0 upright, 90 lying, NaN
            unknown).
        score: The pose's score, [0, 1] (0: nobody found there).
    """

    box: tuple[float, float, float, float]
    lying: bool | None
    torso_deg: float
    score: float


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """The facts about a frame a rule may use (rules never see pixels).

    Attributes:
        camera_id: Camera id.
        seq: ``Frame.seq`` (0-based, never goes back).
        pts_s: Video seconds since stream start (``Frame.pts_s``).
        wall_time: Wall-clock time of the frame, UNIX seconds (UTC).
        width: Frame width in pixels.
        height: Frame height in pixels.
        stream_id: Identifies this run of a live stream, part of event ids (see
            :func:`selector.event.make_event_id`); empty for deterministic file replays.
        scene: Picture measures of the frame (motion, camera health, foreground
            blobs; see :class:`detectors.scene.SceneStats`), or ``None`` when not
            computed.  Numbers only: rules still never see pixels.
        detected: Whether the detector ran on this frame.  ``False`` when motion gating
            skipped it: the tracks are then empty because nobody looked, not because
            the scene is empty.
        ground: Where the picture lies on the floor (image pixels to metres, see
            :mod:`selector.ground`), or ``None``: rules then measure in the picture.
            Set by the camera's selector; a rule must not keep it across frames (an
            estimated model improves as people are seen).
        poses: Poses of the boxes the camera's rules asked about after the previous
            frame (see :data:`POSE_HOOK`), measured on this frame; empty when none was
            asked or the camera has no pose model.
    """

    camera_id: str
    seq: int
    pts_s: float
    wall_time: float
    width: int
    height: int
    stream_id: str = ""
    scene: SceneStats | None = None
    detected: bool = True
    ground: GroundModel | None = None
    poses: tuple[PoseSighting, ...] = ()

    @classmethod
    def from_frame(cls, frame: Frame) -> FrameInfo:
        """The description of a decoded frame."""
        return cls(
            frame.camera_id, frame.seq, frame.pts_s, frame.wall_time, frame.width, frame.height
        )


class Rule(Protocol):
    """A per-camera rule turning tracks into events.  Stateful, single-threaded."""

    @property
    def rule_id(self) -> str:
        """Stable id of the rule instance, e.g. ``"intrusion:crossing"``."""
        ...

    def update(
        self, tracks: Detections, frame: FrameInfo, ended_ids: Collection[int] = ()
    ) -> list[Event]:
        """Consume the tracks of one frame; return the events started or ended in it.

        Args:
            tracks: Tracked objects of this frame (``tracker_id >= 1``), as returned by
                :meth:`selector.tracker.ByteTracker.update`.
            frame: The frame they belong to; ``frame.camera_id`` must be the rule's
                camera and ``frame.pts_s`` must not go backwards.
            ended_ids: Track ids the tracker removed since the previous call; they will
                never appear again, so the rule may close what it holds for them.

        Returns:
            New events (``end_s is None``) and closed ones (same ``event_id``,
            ``end_s`` set), in a deterministic order.

        Raises:
            RuleError: For a frame of another camera.
        """
        ...

    def close_all(self, end_s: float) -> list[Event]:
        """Close every open event at end of stream (``end_s``: the last frame's time)."""
        ...


WATCHING_HOOK = "watching"
"""Name of an OPTIONAL rule method (not part of :class:`Rule`; rules without it are
simply not asked, as with the camera-health rule's ``no_signal``)::

    def watching(self, now_s: float) -> list[selector.watch.Watch]: ...

What the rule is watching now that may become one of its events, but has not yet
(a dwell timer running, a crowd building, an object left alone), for the operators'
selective wall (see :meth:`selector.camera.CameraSelector.watching`).  ``now_s`` is
the video time (seconds, ``FrameInfo.pts_s``) of the camera's last processed frame.
Activity whose event has started is not reported: the event is an alert then.

It is called about once a second per camera, between frames: it must be cheap (no
per-call work beyond the rule's held state) and must never change the rule's state
(the events the rule raises are the same whether or not it is asked).  See
:class:`WatchingRule` for its type.
"""


class WatchingRule(Protocol):
    """A rule with the optional :data:`WATCHING_HOOK` method (see there)."""

    @property
    def rule_id(self) -> str:
        """Stable id of the rule instance."""
        ...

    def watching(self, now_s: float) -> list[Watch]:
        """What may become an event, at video time ``now_s`` (seconds); no state change."""
        ...


POSE_HOOK = "pose_wanted"
"""Name of an OPTIONAL rule method::

    def pose_wanted(self) -> list[tuple[float, float, float, float]]: ...

The boxes (pixels) of people the rule wants a pose of (a person who may be down), asked
after each frame; the runner measures their poses on the next frame with the optional
pose model and passes them as ``FrameInfo.poses``.  Pose costs about one small network
run per box, so a rule asks only about the few people it is deciding on.  A rule with
this method sets ``uses_pose = True`` when it was configured to use pose; where the
pose model is missing the rule gets no poses and must decide without them.
"""

POSE_ATTRIBUTE = "uses_pose"
"""A rule that asks for poses sets this attribute to ``True``."""


def needs_pose(rules: Collection[Rule]) -> bool:
    """Whether any of ``rules`` asks for poses (so the pose model must be loaded)."""
    return any(getattr(r, POSE_ATTRIBUTE, False) for r in rules)


SCENE_ATTRIBUTE = "uses_scene"
"""A rule class that reads ``FrameInfo.scene`` sets this class attribute to ``True``."""


def needs_scene(rules: Collection[Rule]) -> bool:
    """Whether any of ``rules`` reads ``FrameInfo.scene`` (so the frames must be measured)."""
    return any(getattr(r, SCENE_ATTRIBUTE, False) for r in rules)
