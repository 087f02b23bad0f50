"""The live state's wire forms and in-process pieces, without a broker.

``CameraStatus.parse`` of good and hostile reports, the ``Preview`` wire form and its
refusals, ``Demand`` leases with a fake clock and its control messages, ``LiveBoard``,
``render_preview``; then the Kafka transport's parts that need no broker: the demand
publisher's schedule, the live publisher's non-blocking calls with no broker, and the
routing of demand keys on a worker (``LiveConfig``, ``ControlState``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from alerts.control import ControlPublishError, ControlState
from alerts.live import (
    DEMAND_PREFIX,
    LEASE_S,
    RENEW_S,
    CameraStatus,
    Demand,
    LiveBoard,
    Overlay,
    Preview,
    PreviewError,
    Want,
    demand_message,
    render_preview,
    state_of,
)
from alerts.live.demand import MAX_CAMERAS, parse_demand
from alerts.live.kafka import DemandPublisher, KafkaLivePublisher
from alerts.live.preview import MAGIC, MAX_HEADER_BYTES, MAX_PREVIEW_BYTES, scaled_size
from argus.reload import LiveConfig
from deploy.localstack import free_port
from tests.infra import wait_for

pytestmark = pytest.mark.unit

T0 = 1_760_000_000.0
SECRET = "hunter2-do-not-echo"


class Clock:
    """A settable clock (``clock()`` returns ``now``)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _status(camera_id: str = "cam-1", reported_at: float = T0, **kw: Any) -> CameraStatus:
    data: dict[str, Any] = {
        "camera_id": camera_id,
        "state": "streaming",
        "since": T0 - 60,
        "reported_at": reported_at,
    }
    return CameraStatus.parse(data | kw)


def _jpeg(w: int = 32, h: int = 24) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
    assert ok
    return bytes(buf.tobytes())


def _preview(camera_id: str = "cam-1", taken_at: float = T0, seq: int = 1) -> Preview:
    return Preview(camera_id, seq, taken_at, 32, 24, _jpeg())


# --------------------------------------------------------------------------- CameraStatus


def test_status_parses_a_full_report_and_ignores_unknown_fields() -> None:
    data = {
        "camera_id": "gate-1",
        "state": "covered",
        "since": T0 - 5,
        "detail": "lens covered",
        "reported_at": T0,
        "last_frame_at": T0 - 0.1,
        "fps": 9.5,
        "frames_processed": 1200,
        "frames_dropped": 3,
        "quiet": False,
        "frame_size": [768, 576],
        "watches": [
            {
                "rule_id": "loiter:atm",
                "type": "loitering",
                "reason": "person in 'atm' for 6 s of 10",
                "priority": 40,
                "progress": 0.6,
                "bbox": [1, 2, 30, 40],
                "zone": "atm",
                "track_id": 12,
            }
        ],
        "run_id": "run-1",
        "from_the_future": {"x": 1},
    }
    s = CameraStatus.parse(data)
    assert s.state == "covered" and s.frame_size == (768, 576)
    assert s.watches[0].bbox == (1.0, 2.0, 30.0, 40.0) and s.watches[0].track_id == 12
    # the JSON wire form round-trips
    assert CameraStatus.parse(json.loads(json.dumps(s.model_dump(mode="json")))) == s


HOSTILE: list[tuple[str, Any]] = [
    ("camera_id", 12),
    ("camera_id", ""),
    ("camera_id", "x" * 129),
    ("camera_id", None),
    ("state", "on-fire"),
    ("state", None),
    ("since", math.nan),
    ("since", math.inf),
    ("since", -1.0),
    ("since", "yesterday"),
    ("reported_at", math.nan),
    ("reported_at", [T0]),
    ("last_frame_at", -math.inf),
    ("fps", -1.0),
    ("fps", math.nan),
    ("fps", 1e9),
    ("frames_processed", -5),
    ("frames_processed", 1.5),
    ("frames_dropped", "many"),
    ("detail", SECRET * 100),
    ("frame_size", [1, 2, 3]),
    ("frame_size", "768x576"),
    ("watches", "everything"),
    ("watches", [{}] * 17),
    ("watches", [{"rule_id": "r"}] * 2_000),
    ("run_id", "r" * 200),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE)
def test_status_refuses_hostile_values_whole(field: str, value: Any) -> None:
    data: dict[str, Any] = {
        "camera_id": "cam-1",
        "state": "streaming",
        "since": T0,
        "reported_at": T0,
    }
    data[field] = value
    with pytest.raises(ValueError, match="invalid camera status") as e:
        CameraStatus.parse(data)
    assert field in str(e.value) and SECRET not in str(e.value)


def _watch(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rule_id": "r",
        "type": "loitering",
        "reason": "why",
        "priority": 10,
        "progress": 0.5,
    }
    return base | kw


@pytest.mark.parametrize(
    "watch",
    [
        _watch(bbox=[0, 0, math.nan, 1]),
        _watch(bbox=[0, 0, 1]),
        _watch(progress=1.5),
        _watch(priority=101),
        _watch(reason="x" * 301),
        {"rule_id": "r"},
    ],
)
def test_status_refuses_a_bad_watch(watch: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"watches\.0"):
        CameraStatus.parse(
            {"camera_id": "c", "state": "streaming", "since": T0, "reported_at": T0}
            | {"watches": [watch]}
        )


@pytest.mark.parametrize("data", [None, [], "cam-1", 12, {"camera_id": "c"}])
def test_status_refuses_what_is_not_a_report(data: Any) -> None:
    with pytest.raises(ValueError, match="invalid camera status"):
        CameraStatus.parse(data)


def test_status_as_lost_and_state_of() -> None:
    s = _status(fps=9.0, watches=[_watch()])
    lost = s.as_lost(T0 + 30, 30)
    assert lost.state == "lost" and lost.since == T0 and lost.fps == 0.0 and lost.watches == ()
    assert lost.detail is not None and "30 s" in lost.detail
    assert state_of("streaming", True, set()) == "failed"
    assert state_of("draining", False, {"frozen"}) == "ended"
    assert state_of("reconnecting", False, {"frozen"}) == "reconnecting"
    assert state_of("streaming", False, {"frozen", "signal_lost"}) == "lost"
    assert state_of("streaming", False, {"blur"}) == "blurred"
    assert state_of("streaming", False, set()) == "streaming"


# --------------------------------------------------------------------------- Preview


def test_preview_round_trip() -> None:
    p = Preview("cam-ä", 41, T0 + 0.25, 32, 24, _jpeg())
    data = p.encode()
    assert data.startswith(MAGIC)
    assert Preview.decode(data) == p


def _wire(header: Any, jpeg: bytes | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return MAGIC + raw + b"\n" + (_jpeg() if jpeg is None else jpeg)


GOOD_HEADER = {"camera_id": "c", "seq": 1, "taken_at": T0, "width": 32, "height": 24}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "bad magic"),
        (b"\xff\xd8\xff\xe0 a bare jpeg", "bad magic"),
        (b"ARGUS-PREVIEW-2\n{}\n\xff\xd8", "bad magic"),
        (MAGIC + b"{" + b" " * (MAX_HEADER_BYTES + 10), "header missing or too long"),
        (MAGIC + b"no newline at all", "header missing or too long"),
        (_wire(b"{not json"), "not JSON"),
        (_wire([1, 2]), "not an object"),
        (_wire(GOOD_HEADER | {"camera_id": ""}), "camera_id"),
        (_wire(GOOD_HEADER | {"camera_id": 5}), "camera_id"),
        (_wire(GOOD_HEADER | {"camera_id": "c" * 129}), "camera_id"),
        (_wire({k: v for k, v in GOOD_HEADER.items() if k != "camera_id"}), "camera_id"),
        (_wire(GOOD_HEADER | {"seq": True}), "integers"),
        (_wire(GOOD_HEADER | {"seq": 1.5}), "integers"),
        (_wire(GOOD_HEADER | {"width": "32"}), "integers"),
        (_wire(GOOD_HEADER | {"width": 0}), "size out of range"),
        (_wire(GOOD_HEADER | {"height": 5000}), "size out of range"),
        (_wire(GOOD_HEADER | {"taken_at": -1}), "taken_at"),
        (_wire(b'{"camera_id":"c","seq":1,"taken_at":NaN,"width":32,"height":24}'), "taken_at"),
        (_wire(GOOD_HEADER | {"taken_at": "now"}), "taken_at"),
        (_wire(GOOD_HEADER, b"GIF89a"), "not a JPEG"),
        (_wire(GOOD_HEADER, b""), "not a JPEG"),
        (_wire(GOOD_HEADER, b"\xff\xd8" + b"\0" * MAX_PREVIEW_BYTES), "too large"),
    ],
)
def test_preview_decode_refusals(data: bytes, why: str) -> None:
    with pytest.raises(PreviewError, match=why):
        Preview.decode(data)


def test_preview_error_is_a_value_error() -> None:
    assert issubclass(PreviewError, ValueError)


# --------------------------------------------------------------------------- Demand


def test_want_validation_and_merge() -> None:
    assert Want(320, 1.0).merge(Want(640, 0.5)) == Want(640, 1.0)
    for width, fps in [(10, 1.0), (5000, 1.0), (320, 0.0), (320, 11.0), (320, math.nan)]:
        with pytest.raises(ValueError):
            Want(width, fps)


def test_demand_merges_holders_and_leases_expire() -> None:
    clock = Clock()
    d = Demand(clock)
    assert d.wanted() == {} and d.version == 0
    d.hold("wall-1", {"a": Want(320, 1.0), "b": Want(480, 2.0)}, lease_s=10)
    d.hold("board-1", {"a": Want(640, 0.5)}, lease_s=20)
    assert d.wanted() == {"a": Want(640, 1.0), "b": Want(480, 2.0)}
    assert d.holders() == 2
    v = d.version
    d.hold("wall-1", {"a": Want(320, 1.0), "b": Want(480, 2.0)}, lease_s=10)  # renewal
    assert d.version == v
    clock.now += 10.5  # wall-1's lease ran out
    assert d.wanted() == {"a": Want(640, 0.5)}
    assert d.version > v and d.holders() == 1
    clock.now += 10  # and board-1's
    assert d.wanted() == {} and d.holders() == 0


def test_demand_hold_empty_and_release() -> None:
    d = Demand(Clock())
    d.hold("h", {"a": Want(320, 1.0)})
    v = d.version
    d.hold("h", {})  # empty wants release
    assert d.wanted() == {} and d.version == v + 1
    d.release("h")  # releasing nothing changes nothing
    assert d.version == v + 1


def test_demand_message_round_trip_and_lease_cap() -> None:
    wants = {"b": Want(640, 2.0), "a": Want(320, 0.5)}
    msg = demand_message(wants)
    assert list(msg["cameras"]) == ["a", "b"] and msg["lease_s"] == LEASE_S
    assert parse_demand(json.loads(json.dumps(msg))) == (wants, LEASE_S)
    assert parse_demand(demand_message(wants, 1e9))[1] == 2 * LEASE_S
    assert parse_demand({"lease_s": 3, "cameras": {"a": {"width": 320, "fps": 1}}}) == (
        {"a": Want(320, 1.0)},
        3.0,
    )


CAM_OK = {"a": {"width": 320, "fps": 1.0}}


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "x",
        {"cameras": CAM_OK},
        {"lease_s": True, "cameras": CAM_OK},
        {"lease_s": "5", "cameras": CAM_OK},
        {"lease_s": 0, "cameras": CAM_OK},
        {"lease_s": -5, "cameras": CAM_OK},
        {"lease_s": math.nan, "cameras": CAM_OK},
        {"lease_s": math.inf, "cameras": CAM_OK},
        {"lease_s": 5},
        {"lease_s": 5, "cameras": [CAM_OK]},
        {"lease_s": 5, "cameras": {f"c{i}": CAM_OK["a"] for i in range(MAX_CAMERAS + 1)}},
        {"lease_s": 5, "cameras": {"": CAM_OK["a"]}},
        {"lease_s": 5, "cameras": {"c" * 129: CAM_OK["a"]}},
        {"lease_s": 5, "cameras": {"a": [320, 1.0]}},
        {"lease_s": 5, "cameras": {"a": {"width": True, "fps": 1.0}}},
        {"lease_s": 5, "cameras": {"a": {"width": 320.0, "fps": 1.0}}},
        {"lease_s": 5, "cameras": {"a": {"width": 320, "fps": "1"}}},
        {"lease_s": 5, "cameras": {"a": {"width": 320, "fps": False}}},
        {"lease_s": 5, "cameras": {"a": {"width": 320}}},
        {"lease_s": 5, "cameras": {"a": {"width": 9999, "fps": 1.0}}},
        {"lease_s": 5, "cameras": {"a": {"width": 320, "fps": 100.0}}},
    ],
)
def test_parse_demand_refusals(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_demand(value)


def test_demand_apply_holds_per_replica_and_tombstone_releases() -> None:
    clock = Clock()
    d = Demand(clock)
    assert d.apply("rules", {"x": 1}) is False
    key1, key2 = DEMAND_PREFIX + "r1", DEMAND_PREFIX + "r2"
    assert d.apply(key1, demand_message({"a": Want(320, 1.0)}, lease_s=5))
    assert d.apply(key2, demand_message({"a": Want(640, 0.5), "b": Want(96, 0.1)}))
    assert d.wanted() == {"a": Want(640, 1.0), "b": Want(96, 0.1)}
    # a malformed value is ignored: the replica's previous wants stay
    assert d.apply(key2, {"lease_s": "soon"}) is False
    assert d.apply(key2, "garbage") is False
    assert set(d.wanted()) == {"a", "b"}
    # the tombstone releases at once
    assert d.apply(key2, None) is True
    assert d.wanted() == {"a": Want(320, 1.0)}
    # the lease runs from when the message was applied (the message's lease_s)
    clock.now += 5.5
    assert d.wanted() == {}


# --------------------------------------------------------------------------- LiveBoard


def test_board_keeps_the_newest_status_and_picture() -> None:
    clock = Clock(T0 + 1)
    board = LiveBoard(clock=clock)
    v0 = board.version
    board.report([_status(reported_at=T0 + 1, fps=5.0), _status("cam-2", reported_at=T0)])
    board.report([_status(reported_at=T0, fps=1.0)])  # older, arrived late
    assert board.statuses()["cam-1"].fps == 5.0 and set(board.statuses()) == {"cam-1", "cam-2"}
    assert board.version == v0 + 2
    board.picture(_preview(taken_at=T0 + 1, seq=2))  # nobody here watches cam-1: not kept
    assert board.preview("cam-1") is None
    board.demand.hold("wall", {"cam-1": Want(320, 1.0)})
    board.picture(_preview(taken_at=T0 + 1, seq=2))
    board.picture(_preview(taken_at=T0, seq=1))  # older
    p = board.preview("cam-1")
    assert p is not None and p.seq == 2 and board.pictures_received == 1
    assert board.preview("cam-9") is None


def test_board_marks_stale_reports_lost() -> None:
    clock = Clock(T0)
    board = LiveBoard(clock=clock, stale_after_s=10)
    board.report([_status(fps=9.0, watches=[_watch()])])
    clock.now = T0 + 9
    assert board.statuses()["cam-1"].state == "streaming"
    clock.now = T0 + 11
    lost = board.statuses()["cam-1"]
    assert lost.state == "lost" and lost.since == T0 and lost.fps == 0 and lost.watches == ()


def test_board_forget_and_wanted() -> None:
    clock = Clock()
    board = LiveBoard(clock=clock)
    board.report([_status()])
    board.picture(_preview())
    v = board.version
    board.forget("cam-1")
    assert board.statuses() == {} and board.preview("cam-1") is None and board.version == v + 1
    board.forget("cam-1")  # nothing to forget: no change
    assert board.version == v + 1
    board.demand.hold("wall", {"cam-1": Want(320, 1.0)})
    assert board.wanted() == {"cam-1": Want(320, 1.0)}


# --------------------------------------------------------------------------- render_preview


def _textured(h: int = 480, w: int = 640) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _decode(jpeg: bytes) -> npt.NDArray[np.uint8]:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return np.asarray(img, dtype=np.uint8)


def test_render_preview_scales_pixelates_people_and_keeps_its_input() -> None:
    image = _textured()
    before = image.copy()
    person = (320.0, 80.0, 480.0, 400.0)
    none = Overlay(np.zeros((0, 4)), [], np.zeros((0, 4)))
    masked = Overlay(np.zeros((0, 4)), [], np.array([person]))
    plain_jpeg, w, h = render_preview(image, none, 320)
    jpeg, w2, h2 = render_preview(image, masked, 320)
    assert (w, h) == (w2, h2) == scaled_size(640, 480, 320) == (320, 240)
    assert jpeg[:2] == b"\xff\xd8"
    plain, out = _decode(plain_jpeg), _decode(jpeg)
    assert out.shape == (240, 320, 3)
    # inside the person (scaled by 1/2, a margin off the edges): pixelated
    box = (slice(44, 196), slice(164, 236))
    inside_plain = float(plain[box].astype(np.float64).var())
    inside_masked = float(out[box].astype(np.float64).var())
    assert inside_masked < inside_plain / 3, (inside_plain, inside_masked)
    # outside it: the same picture
    outside = (slice(0, 240), slice(0, 100))  # clear of the grown, feathered mask
    diff = np.abs(out[outside].astype(np.int16) - plain[outside].astype(np.int16))
    assert float(diff.mean()) < 2.0
    np.testing.assert_array_equal(image, before)  # never modified


def test_render_preview_draws_and_never_enlarges() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    overlay = Overlay(
        np.array([[10, 10, 100, 100]], dtype=np.float64),
        ["person 1"],
        np.zeros((0, 4)),
        zones=[np.array([[0, 0], [150, 0], [150, 110]])],
        lines=[((0.0, 60.0), (160.0, 60.0))],
        watched=[(20.0, 20.0, 60.0, 60.0)],
    )
    jpeg, w, h = render_preview(image, overlay, 1280)
    assert (w, h) == (160, 120)  # never enlarged
    out = _decode(jpeg)
    assert out.shape == (120, 160, 3) and int(out.max()) > 100  # something was drawn
    assert int(image.max()) == 0


@pytest.mark.parametrize(
    ("image", "width"),
    [
        (np.zeros((10, 10), np.uint8), 320),
        (np.zeros((10, 10, 3), np.float32), 320),
        (np.zeros((10, 10, 4), np.uint8), 320),
        (np.zeros((100, 100, 3), np.uint8), 10),
        (np.zeros((100, 100, 3), np.uint8), 5000),
    ],
)
def test_render_preview_refuses_bad_input(image: npt.NDArray[Any], width: int) -> None:
    none = Overlay(np.zeros((0, 4)), [], np.zeros((0, 4)))
    with pytest.raises(ValueError):
        render_preview(cast(npt.NDArray[np.uint8], image), none, width)


# --------------------------------------------------------------------------- DemandPublisher


class FakeControl:
    """A ``ControlPublisher`` that records messages and can fail."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.fail = False

    def publish(self, key: str, value: Any) -> None:
        if self.fail:
            raise ControlPublishError(key, "KafkaTimeoutError: broker away")
        self.messages.append((key, value))


def test_demand_publisher_schedule() -> None:
    clock = Clock()
    demand = Demand(clock)
    control = FakeControl()
    pub = DemandPublisher(demand, control, replica_id="r1", renew_s=5, lease_s=15)
    assert pub.key == DEMAND_PREFIX + "r1"
    pub.tick(0.0)
    assert control.messages == []  # nobody watches: nothing at all
    demand.hold("wall", {"a": Want(320, 1.0)})
    pub.tick(1.0)
    assert control.messages == [(pub.key, demand_message({"a": Want(320, 1.0)}, 15))]
    pub.tick(2.0)
    pub.tick(5.9)
    assert len(control.messages) == 1  # not due yet
    pub.tick(6.0)
    assert len(control.messages) == 2  # renewed
    demand.hold("wall", {"a": Want(640, 1.0)})
    pub.tick(6.2)  # changed: at once
    assert control.messages[-1][1]["cameras"]["a"]["width"] == 640
    demand.release("wall")
    pub.tick(6.4)
    assert control.messages[-1] == (pub.key, None)  # one tombstone
    n = len(control.messages)
    for t in (7.0, 20.0, 60.0):
        pub.tick(t)
    assert len(control.messages) == n  # then nothing
    assert pub.health().watching == 0 and pub.health().published == n
    demand.hold("wall", {"b": Want(96, 0.1)})
    pub.tick(61.0)
    value: Any = control.messages[-1][1]
    assert value["cameras"] == {"b": {"width": 96, "fps": 0.1}}
    pub.stop()  # a live demand was published: a tombstone on stop
    assert control.messages[-1] == (pub.key, None)
    pub.stop()
    assert control.messages[-1] == (pub.key, None) and len(control.messages) == n + 2


def test_demand_publisher_survives_publish_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="alerts.live")
    demand = Demand(Clock())
    control = FakeControl()
    pub = DemandPublisher(demand, control, replica_id="r2", renew_s=5, lease_s=15)
    demand.hold("wall", {"a": Want(320, 1.0)})
    control.fail = True
    for t in (0.0, 0.2, 0.4, 0.6):
        pub.tick(t)  # never raises
    h = pub.health()
    assert h.errors == 4 and h.published == 0 and h.last_error is not None
    warnings = [r for r in caplog.records if "not published" in r.getMessage()]
    assert len(warnings) == 1  # once per outage
    control.fail = False
    pub.tick(0.8)  # retried at the next tick
    assert control.messages and pub.health().last_error is None
    assert any("published again" in r.getMessage() for r in caplog.records)


def test_demand_publisher_thread_follows_changes() -> None:
    demand = Demand()
    control = FakeControl()
    pub = DemandPublisher(demand, control, tick_s=0.05)
    assert len(pub.replica_id) == 12
    with pub:
        demand.hold("wall", {"a": Want(320, 1.0)})
        wait_for(lambda: len(control.messages) == 1, 5, "the demand")
        demand.release("wall")
        wait_for(lambda: control.messages[-1][1] is None, 5, "the tombstone")
    assert not pub.health().running
    assert len(control.messages) == 2  # nothing live at stop: no second tombstone


def test_demand_publisher_refuses_a_bad_schedule() -> None:
    with pytest.raises(ValueError):
        DemandPublisher(Demand(), FakeControl(), renew_s=RENEW_S, lease_s=RENEW_S)
    with pytest.raises(ValueError):
        DemandPublisher(Demand(), FakeControl(), tick_s=0)


# --------------------------------------------------------------------------- worker side


def test_live_publisher_without_broker_never_blocks_nor_raises() -> None:
    demand = Demand()
    demand.hold("replica:x", {"cam-1": Want(320, 1.0)})
    pub = KafkaLivePublisher(
        f"127.0.0.1:{free_port()}",
        demand,
        connect_timeout_s=0.3,
        min_backoff_s=0.05,
        max_backoff_s=0.2,
    )
    try:
        worst = 0.0
        for i in range(50):
            t0 = time.perf_counter()
            pub.report([_status(reported_at=T0 + i), _status("cam-2", reported_at=T0 + i)])
            pub.picture(_preview(seq=i))
            worst = max(worst, time.perf_counter() - t0)
        assert worst < 0.05, worst
        assert pub.wanted() == {"cam-1": Want(320, 1.0)}
        h = pub.health()
        assert not h.connected and h.sent == {"status": 0, "picture": 0}
        assert h.dropped["picture"] == 50  # never connected: every picture dropped
        assert h.dropped["status"] >= 98  # only the latest status per camera waits
        wait_for(lambda: pub.health().last_error is not None, 5, "a connection error")
    finally:
        t0 = time.monotonic()
        pub.close(timeout_s=5)
    assert time.monotonic() - t0 < 5
    assert pub.health().dropped["status"] == 100 and not pub.health().running
    pub.report([_status()])  # after close: ignored, never raises
    pub.picture(_preview())


def test_worker_routes_demand_keys_to_its_demand(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    demand = Demand()
    live = LiveConfig(cast(Any, None), cast(Any, None), {}, (), demand=demand)
    key = DEMAND_PREFIX + "replica-1"
    live.on_change(key, demand_message({"cam-1": Want(480, 2.0)}))
    assert demand.wanted() == {"cam-1": Want(480, 2.0)}
    live.on_change(key, None)
    assert demand.wanted() == {}
    assert live.state.changes == 0
    # without a demand, and in ControlState itself: ignored silently
    LiveConfig(cast(Any, None), cast(Any, None), {}, ()).on_change(key, {"x": 1})
    assert ControlState().apply(key, demand_message({"a": Want(320, 1.0)})) is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
