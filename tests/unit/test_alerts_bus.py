"""InProcessBus: ordered synchronous fan-out, isolation of failing subscribers, threads."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.bus import BusClosedError, EventBus, InProcessBus
from alerts.schema import InvalidEventError
from selector.event import Event, make_event_id

pytestmark = pytest.mark.unit


def _record(seq: int, *, camera: str = "cam-1", type_: str = "intrusion") -> dict[str, Any]:
    return Event(
        event_id=make_event_id(camera, "r", seq, seq),
        camera_id=camera,
        type=type_,
        rule_id="r",
        zone="z",
        track_id=seq,
        label="person",
        score=0.5,
        priority=50,
        start_s=float(seq),
        end_s=None,
        bbox=(0.0, 0.0, 10.0, 10.0),
        start_seq=seq,
        wall_time=1_714_557_600.0 + seq,
    ).to_record()


def test_in_process_bus_satisfies_protocol() -> None:
    assert isinstance(InProcessBus(), EventBus)


def test_fan_out_in_publish_order_to_every_subscriber() -> None:
    bus = InProcessBus()
    got_a: list[int] = []
    got_b: list[int] = []
    bus.subscribe(lambda r: got_a.append(r["start_seq"]))
    bus.subscribe(lambda r: got_b.append(r["start_seq"]))
    for seq in range(5):
        bus.publish(_record(seq))
    assert got_a == [0, 1, 2, 3, 4]
    assert got_b == [0, 1, 2, 3, 4]
    assert bus.published == 5


def test_subscribers_get_their_own_copy() -> None:
    bus = InProcessBus()
    seen: list[dict[str, Any]] = []

    def vandal(record: dict[str, Any]) -> None:
        record["type"] = "changed"

    bus.subscribe(vandal)
    bus.subscribe(seen.append)
    original = _record(1)
    bus.publish(original)
    assert seen[0]["type"] == "intrusion"
    assert original["type"] == "intrusion"


def test_failing_subscriber_is_logged_with_event_id_and_does_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus()
    got: list[str] = []

    def broken(record: dict[str, Any]) -> None:
        raise RuntimeError("disk full")

    bus.subscribe(broken)
    bus.subscribe(lambda r: got.append(r["event_id"]))
    record = _record(3)
    before = REGISTRY.get_sample_value("argus_event_handler_errors_total") or 0.0
    with caplog.at_level(logging.ERROR, logger="alerts.bus"):
        bus.publish(record)  # does not raise
    assert got == [record["event_id"]]
    assert any(record["event_id"] in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and "disk full" in str(r.exc_info[1]) for r in caplog.records)
    assert REGISTRY.get_sample_value("argus_event_handler_errors_total") == before + 1


def test_invalid_record_is_refused_before_delivery() -> None:
    bus = InProcessBus()
    got: list[dict[str, Any]] = []
    bus.subscribe(got.append)
    bad = _record(1)
    bad["priority"] = 1000
    with pytest.raises(InvalidEventError, match="priority"):
        bus.publish(bad)
    assert got == []
    assert bus.published == 0


def test_published_counter_is_labelled_by_type() -> None:
    bus = InProcessBus()
    labels = {"type": "loitering-test"}
    before = REGISTRY.get_sample_value("argus_events_published_total", labels) or 0.0
    bus.publish(_record(1, type_="loitering-test"))
    bus.publish(_record(2, type_="loitering-test"))
    assert REGISTRY.get_sample_value("argus_events_published_total", labels) == before + 2


def test_closed_bus_refuses_publish_and_subscribe() -> None:
    bus = InProcessBus()
    bus.flush(timeout_s=0.1)
    bus.close()
    bus.close()  # idempotent
    record = _record(1)
    with pytest.raises(BusClosedError) as info:
        bus.publish(record)
    assert info.value.event_id == record["event_id"]
    with pytest.raises(BusClosedError):
        bus.subscribe(lambda r: None)


def test_handler_may_publish_reentrantly() -> None:
    bus = InProcessBus()
    got: list[int] = []

    def echo(record: dict[str, Any]) -> None:
        got.append(record["start_seq"])
        if record["start_seq"] == 1:
            bus.publish(_record(2))

    bus.subscribe(echo)
    bus.publish(_record(1))
    assert got == [1, 2]


def test_concurrent_publishers_deliver_every_record_whole() -> None:
    bus = InProcessBus()
    got: list[str] = []
    inside = 0
    overlap = False

    def handler(record: dict[str, Any]) -> None:
        nonlocal inside, overlap
        inside += 1
        overlap |= inside > 1
        got.append(record["event_id"])
        inside -= 1

    bus.subscribe(handler)
    records = {t: [_record(i, camera=f"cam-{t}") for i in range(200)] for t in range(4)}

    def worker(t: int) -> None:
        for r in records[t]:
            bus.publish(r)

    threads = [threading.Thread(target=worker, args=(t,)) for t in records]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not overlap
    assert sorted(got) == sorted(r["event_id"] for rs in records.values() for r in rs)
    for t, rs in records.items():  # per-producer order is kept
        mine = [e for e in got if e in {r["event_id"] for r in rs}]
        assert mine == [r["event_id"] for r in rs], t
