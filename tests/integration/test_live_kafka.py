"""The live state over a real broker (Tansu on SeaweedFS S3, from ``tests.infra``).

Worker -> camera status and preview topics -> API replica's ``LiveBoard``; a late replica
rebuilding every camera's status from the compacted topic (but no old pictures); malformed
records refused; an API replica's demand reaching a worker on the control channel; a broker
outage during which the worker's calls never block.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from alerts.control import KafkaControlPublisher, KafkaControlSubscriber
from alerts.live import CameraStatus, Demand, LiveBoard, Preview, Want
from alerts.live.kafka import DemandPublisher, KafkaLivePublisher, KafkaLiveSubscriber
from deploy.localstack import LocalStack
from tests.infra import (
    fresh_localstack,
    kafka_producer,
    kill_broker,
    localstack,
    restart_broker,
    wait_for,
)

__all__ = ["fresh_localstack", "localstack"]  # the fixtures, re-exported for pytest

pytestmark = pytest.mark.integration

SECRET = b"s3cr3t-bytes-never-logged"


def _topics() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"cameras-{tag}", f"previews-{tag}"


def _status(camera_id: str, reported_at: float | None = None, **kw: Any) -> CameraStatus:
    now = time.time() if reported_at is None else reported_at
    data: dict[str, Any] = {
        "camera_id": camera_id,
        "state": "streaming",
        "since": now - 30,
        "reported_at": now,
        "fps": 10.0,
        "frame_size": [768, 576],
    }
    return CameraStatus.parse(data | kw)


def _preview(camera_id: str, seq: int) -> Preview:
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), seq % 256, np.uint8))
    assert ok
    return Preview(camera_id, seq, time.time(), 64, 48, bytes(buf.tobytes()))


def _publisher(bootstrap: str, topics: tuple[str, str], **kw: Any) -> KafkaLivePublisher:
    return KafkaLivePublisher(
        bootstrap,
        kw.pop("demand", None),
        status_topic=topics[0],
        preview_topic=topics[1],
        delivery_timeout_s=2.0,
        connect_timeout_s=2.0,
        min_backoff_s=0.1,
        max_backoff_s=0.5,
        **kw,
    )


def _subscriber(bootstrap: str, board: LiveBoard, topics: tuple[str, str]) -> KafkaLiveSubscriber:
    return KafkaLiveSubscriber(
        bootstrap,
        board,
        status_topic=topics[0],
        preview_topic=topics[1],
        poll_timeout_s=0.2,
        probe_interval_s=0.5,
        connect_timeout_s=2.0,
        min_backoff_s=0.1,
        max_backoff_s=0.5,
    )


@pytest.fixture
def topics() -> tuple[str, str]:
    return _topics()


@pytest.fixture
def publisher(localstack: LocalStack, topics: tuple[str, str]) -> Iterator[KafkaLivePublisher]:
    pub = _publisher(localstack.bootstrap, topics)
    pub.start()
    wait_for(lambda: pub.health().connected, 20, "the live publisher to connect")
    yield pub
    pub.close()


def _watching_board() -> LiveBoard:
    """A board whose page watches every camera of these tests (a board keeps only the
    pictures its watchers want)."""
    board = LiveBoard()
    wants = {cam: Want(320, 2.0) for cam in ("cam-0", "cam-1", "cam-2", "cam-a")}
    board.demand.hold("test", wants, lease_s=600)
    return board


def test_statuses_and_pictures_reach_the_board(
    localstack: LocalStack, topics: tuple[str, str], publisher: KafkaLivePublisher
) -> None:
    board = _watching_board()
    with _subscriber(localstack.bootstrap, board, topics) as sub:
        assert sub.wait_synced(20), sub.health()
        t0 = time.monotonic()
        sent = [_status(f"cam-{i}", detail=f"d{i}") for i in range(3)]
        publisher.report(sent)
        picture = _preview("cam-0", 7)
        publisher.picture(picture)
        wait_for(lambda: len(board.statuses()) == 3, 10, "3 statuses on the board")
        wait_for(lambda: board.preview("cam-0") is not None, 10, "the picture on the board")
        latency = time.monotonic() - t0
        assert board.statuses() == {s.camera_id: s for s in sent}
        assert board.preview("cam-0") == picture
        # a newer status replaces the old one; a tombstone removes the camera
        newer = _status("cam-1", state="frozen")
        publisher.report([newer])
        publisher.forget("cam-2")
        wait_for(lambda: board.statuses().get("cam-1") == newer, 10, "the newer status")
        wait_for(lambda: "cam-2" not in board.statuses(), 10, "the tombstone")
        h = sub.health()
        assert h.connected and h.synced and h.malformed == 0 and h.last_error is None
        assert h.statuses == 4 and h.pictures == 1 and h.forgotten == 1
        wait_for(lambda: publisher.health().sent == {"status": 5, "picture": 1}, 10, "acks")
        assert publisher.health().dropped == {"status": 0, "picture": 0}
    assert not sub.health().running
    print(f"\n3 statuses and a picture on the board in {latency * 1e3:.0f} ms")


def test_late_subscriber_gets_every_latest_status_but_no_old_picture(
    localstack: LocalStack, topics: tuple[str, str], publisher: KafkaLivePublisher
) -> None:
    t = time.time()
    for i in range(5):
        publisher.report([_status("cam-a", t + i, frames_processed=i)])
        time.sleep(0.02)  # separate records (the publisher coalesces a camera's reports)
    publisher.report([_status("cam-b", t, state="reconnecting")])
    publisher.picture(_preview("cam-a", 1))
    wait_for(lambda: publisher.health().sent["picture"] == 1, 10, "the old picture acked")
    wait_for(lambda: publisher.health().sent["status"] >= 2, 10, "the statuses acked")

    board = _watching_board()
    with _subscriber(localstack.bootstrap, board, topics) as sub:
        assert sub.wait_synced(20), sub.health()
        statuses = board.statuses()
        assert set(statuses) == {"cam-a", "cam-b"}
        assert statuses["cam-a"].frames_processed == 4 and statuses["cam-b"].state == "reconnecting"
        time.sleep(0.5)
        assert board.preview("cam-a") is None  # the preview topic is read from its end
        publisher.picture(_preview("cam-a", 2))
        wait_for(lambda: board.preview("cam-a") is not None, 10, "the new picture")
        p = board.preview("cam-a")
        assert p is not None and p.seq == 2 and sub.health().pictures == 1


def test_malformed_records_are_counted_and_skipped(
    localstack: LocalStack, topics: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="alerts.live")
    status_topic, preview_topic = topics
    board = _watching_board()
    with _subscriber(localstack.bootstrap, board, topics) as sub:
        assert sub.wait_synced(20), sub.health()
        raw = kafka_producer(localstack)
        good = _status("cam-1")
        bad_statuses: list[tuple[bytes | None, bytes]] = [
            (b"cam-1", b"{not json " + SECRET),
            (b"cam-1", b"\xff\xfe" + SECRET),
            (b"cam-1", b'{"camera_id": "cam-1", "state": "' + SECRET + b'"}'),
            (b"cam-2", good.model_dump_json().encode()),  # key is not its camera id
            (None, good.model_dump_json().encode()),
            (b"cam-1", b'{"camera_id":"cam-1","watches":[' + b",".join([b"{}"] * 5000) + b"]}"),
            (b"cam-1", b"[" * 50_000 + b"]" * 50_000),
        ]
        for key, value in bad_statuses:
            raw.send(status_topic, key=key, value=value).get(10)
        bad_pictures: list[tuple[bytes | None, bytes]] = [
            (b"cam-1", SECRET),
            (b"cam-1", b"ARGUS-PREVIEW-1\n{}\n" + SECRET),
            (b"cam-2", _preview("cam-1", 1).encode()),  # key is not its camera id
            (None, _preview("cam-1", 1).encode()),
        ]
        for key, value in bad_pictures:
            raw.send(preview_topic, key=key, value=value).get(10)
        t0 = time.monotonic()
        raw.send(status_topic, key=b"cam-1", value=good.model_dump_json().encode()).get(10)
        picture = _preview("cam-1", 3)
        raw.send(preview_topic, key=b"cam-1", value=picture.encode()).get(10)
        raw.close()
        wait_for(lambda: board.preview("cam-1") is not None, 10, "the good picture")
        wait_for(lambda: "cam-1" in board.statuses(), 10, "the good status")
        elapsed = time.monotonic() - t0
        assert board.statuses() == {"cam-1": good} and board.preview("cam-1") == picture
        h = sub.health()
        assert h.malformed == len(bad_statuses) + len(bad_pictures), h
        assert h.statuses == 1 and h.pictures == 1 and h.connected
    assert elapsed < 5  # a hostile record costs no more than a good one
    warnings = [r.getMessage() for r in caplog.records if r.name == "alerts.live"]
    assert any("malformed" in m for m in warnings)
    assert not any(SECRET.decode() in m for m in caplog.messages)


def test_demand_reaches_a_worker_and_the_tombstone_removes_it(localstack: LocalStack) -> None:
    control_topic = f"control-{uuid.uuid4().hex[:8]}"
    control = KafkaControlPublisher(localstack.bootstrap, control_topic, publish_timeout_s=5.0)
    api_board = LiveBoard()
    worker_demand = Demand()
    worker = KafkaLivePublisher(localstack.bootstrap, worker_demand)  # never started: wanted()
    sub = KafkaControlSubscriber(
        localstack.bootstrap,
        worker_demand.apply,
        topic=control_topic,
        poll_timeout_s=0.2,
        probe_interval_s=0.5,
        connect_timeout_s=2.0,
        min_backoff_s=0.1,
        max_backoff_s=0.5,
    )
    demand_pub = DemandPublisher(api_board.demand, control, tick_s=0.05)
    try:
        with sub, demand_pub:
            assert sub.wait_synced(20), sub.state()
            t0 = time.monotonic()
            api_board.demand.hold("wall-1", {"cam-1": Want(320, 1.0)})
            api_board.demand.hold("board-1", {"cam-1": Want(640, 0.5), "cam-2": Want(96, 0.2)})
            want = {"cam-1": Want(640, 1.0), "cam-2": Want(96, 0.2)}
            wait_for(lambda: worker.wanted() == want, 10, "the wants on the worker")
            latency = time.monotonic() - t0
            assert worker_demand.holders() == 1  # one holder per API replica
            api_board.demand.release("board-1")
            wait_for(lambda: worker.wanted() == {"cam-1": Want(320, 1.0)}, 10, "the changed wants")
            api_board.demand.release("wall-1")
            wait_for(lambda: worker.wanted() == {}, 10, "the tombstone on the worker")
            assert sub.snapshot() == {}  # the tombstone removed the key
            assert demand_pub.health().published == 3 and demand_pub.health().errors == 0
    finally:
        control.close()
    print(f"\ndemand on the worker {latency * 1e3:.0f} ms after a wall opened")


def test_publisher_never_blocks_during_a_broker_outage(fresh_localstack: LocalStack) -> None:
    stack = fresh_localstack
    topics = _topics()
    board = _watching_board()
    pub = _publisher(stack.bootstrap, topics)
    sub = _subscriber(stack.bootstrap, board, topics)
    worst = 0.0

    def report(seq: int) -> CameraStatus:
        nonlocal worst
        status = _status("cam-1", frames_processed=seq)
        t0 = time.perf_counter()
        pub.report([status])
        pub.picture(_preview("cam-1", seq))
        worst = max(worst, time.perf_counter() - t0)
        return status

    try:
        sub.start()
        pub.start()
        assert sub.wait_synced(20), sub.health()
        wait_for(lambda: pub.health().connected, 20, "the publisher to connect")
        first = report(0)
        wait_for(lambda: board.statuses().get("cam-1") == first, 10, "the first status")

        kill_broker(stack)
        seq, t_end = 1, time.monotonic() + 3.0
        while time.monotonic() < t_end:  # a worker reporting at 20 Hz into a dead broker
            report(seq)
            seq += 1
            time.sleep(0.05)
        outage_worst = worst
        assert not pub.health().connected and pub.health().last_error is not None
        dropped = pub.health().dropped
        assert dropped["picture"] > 0 and dropped["status"] > 0

        restart_broker(stack)
        deadline = time.monotonic() + 30
        while True:  # statuses flow again after the restart
            last = report(seq)
            seq += 1
            if board.statuses().get("cam-1") == last or (
                (got := board.statuses().get("cam-1")) is not None
                and got.frames_processed >= seq - 3
            ):
                break
            assert time.monotonic() < deadline, (pub.health(), sub.health())
            time.sleep(0.05)
        assert pub.health().connected and sub.health().connected
        wait_for(lambda: board.preview("cam-1") is not None, 10, "a picture after restart")
    finally:
        pub.close()
        sub.stop()
    assert outage_worst < 0.05, f"a call blocked for {outage_worst * 1e3:.1f} ms"
    print(f"\nworst report+picture call: {worst * 1e3:.2f} ms ({seq} calls)")
