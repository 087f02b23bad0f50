"""JsonlSink: one line per record, append only, thread-safe."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from alerts.bus import InProcessBus
from alerts.sinks import JsonlSink, SinkClosedError
from selector.event import Event, make_event_id

pytestmark = pytest.mark.unit


def _record(seq: int, *, end_s: float | None = None) -> dict[str, Any]:
    return Event(
        event_id=make_event_id("cam-1", "r", 1, seq),
        camera_id="cam-1",
        type="intrusion",
        rule_id="r",
        zone="Zone ü",
        track_id=1,
        label="person",
        score=0.9,
        priority=60,
        start_s=1.0,
        end_s=end_s,
        bbox=None,
        start_seq=seq,
        wall_time=1_714_557_600.0,
    ).to_record()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_creates_parent_dirs_and_writes_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "events.jsonl"
    with JsonlSink(path) as sink:
        sink.write(_record(1))
        sink(_record(1, end_s=2.0))
        # line buffered: visible to another reader before close
        assert len(path.read_text("utf-8").splitlines()) == 2
    assert _lines(path) == [_record(1), _record(1, end_s=2.0)]
    assert "Zone ü" in path.read_text("utf-8")  # UTF-8, not escaped


def test_reopening_appends_and_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"pre":"existing"}\n', encoding="utf-8")
    sink = JsonlSink(path)
    sink.write(_record(1))
    sink.close()
    sink2 = JsonlSink(path)
    sink2.write(_record(2))
    sink2.flush()
    sink2.close()
    lines = _lines(path)
    assert lines[0] == {"pre": "existing"}
    assert [r["start_seq"] for r in lines[1:]] == [1, 2]


def test_as_bus_subscriber(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bus = InProcessBus()
    sink = JsonlSink(path)
    bus.subscribe(sink)
    for seq in range(3):
        bus.publish(_record(seq))
    sink.close()
    assert [r["start_seq"] for r in _lines(path)] == [0, 1, 2]
    assert sink.written == 3


def test_unserialisable_record_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with JsonlSink(path) as sink:
        with pytest.raises(ValueError):
            sink.write({"x": math.nan})
        sink.write(_record(1))
    assert len(_lines(path)) == 1


def test_closed_sink_refuses_writes_and_close_is_idempotent(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "e.jsonl")
    sink.close()
    sink.close()
    sink.flush()  # no-op
    with pytest.raises(SinkClosedError) as info:
        sink.write(_record(1))
    assert info.value.path == tmp_path / "e.jsonl"


def test_concurrent_writers_produce_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path)

    def worker(base: int) -> None:
        for i in range(250):
            sink.write(_record(base + i))

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    seqs = sorted(r["start_seq"] for r in _lines(path))
    assert seqs == sorted(k * 1000 + i for k in range(4) for i in range(250))
