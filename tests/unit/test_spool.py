"""DiskSpool: order, bounds, drop-oldest, restart recovery, torn tails."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.spool import DiskSpool, SpoolClosedError, SpoolError

pytestmark = pytest.mark.unit


def _rec(i: int) -> dict[str, object]:
    return {"i": i, "camera_id": f"cam-{i % 3}", "text": "é" * (i % 4)}


def _open(path: Path, **kw: Any) -> DiskSpool:
    kw.setdefault("max_records", 1000)
    kw.setdefault("max_bytes", 1_000_000)
    return DiskSpool(path, **kw)


def test_fifo_order_peek_ack(tmp_path: Path) -> None:
    with _open(tmp_path / "s") as sp:
        for i in range(5):
            sp.append(_rec(i))
        assert sp.depth == 5
        assert [r["i"] for r in sp.peek(3)] == [0, 1, 2]
        assert [r["i"] for r in sp.peek(99)] == [0, 1, 2, 3, 4]
        assert sp.peek(3) == sp.peek(3)  # peek does not consume
        assert sp.ack(2) == 2
        assert [r["i"] for r in sp.peek(10)] == [2, 3, 4]
        assert sp.peek(1)[0] == _rec(2)  # round trip, unicode included
        assert sp.ack(10) == 3
        assert sp.depth == 0 and sp.peek(5) == []
        assert sp.ack(1) == 0


def test_ack_through_ignores_records_dropped_meanwhile(tmp_path: Path) -> None:
    with _open(tmp_path / "s", max_records=3) as sp:
        for i in range(3):
            sp.append(_rec(i))
        batch = sp.peek_entries(3)  # a sender took 0..2
        sp.append(_rec(3))  # drops 0 while the batch is in flight
        assert sp.ack_through(batch[-1].seq) == 2
        assert [r["i"] for r in sp.peek(5)] == [3]  # 3 was not delivered: still there


def test_bound_drops_oldest_counts_and_warns_once_per_burst(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="alerts.spool")
    with _open(tmp_path / "s", max_records=10, name="t-bound") as sp:
        for i in range(15):
            sp.append(_rec(i))
        assert sp.depth == 10
        assert sp.dropped == 5
        assert [r["i"] for r in sp.peek(100)] == list(range(5, 15))
        full = [r for r in caplog.records if "full" in r.getMessage()]
        assert len(full) == 1  # one burst, one warning
        assert REGISTRY.get_sample_value("argus_spool_dropped_total", {"spool": "t-bound"}) == 5
        assert REGISTRY.get_sample_value("argus_spool_depth", {"spool": "t-bound"}) == 10
        sp.ack(3)  # burst over
        assert any("5 records were dropped" in r.getMessage() for r in caplog.records)
        for i in range(15, 20):
            sp.append(_rec(i))
        assert sp.dropped == 7
        full = [r for r in caplog.records if "full" in r.getMessage()]
        assert len(full) == 2  # a second burst warns again
        assert REGISTRY.get_sample_value("argus_spool_depth", {"spool": "t-bound"}) == 10


def test_byte_bound_and_oversized_record(tmp_path: Path) -> None:
    one = len(b'{"x":"' + b"a" * 90 + b'"}')
    with _open(tmp_path / "s", max_bytes=one * 3) as sp:
        for i in range(5):
            sp.append({"x": chr(ord("a") + i) * 90})
        assert sp.depth == 3 and sp.dropped == 2
        assert sp.bytes == one * 3
        assert [r["x"][0] for r in sp.peek(5)] == ["c", "d", "e"]
        with pytest.raises(SpoolError, match="exceeds max_bytes"):
            sp.append({"x": "z" * (one * 4)})
        assert sp.depth == 3


def test_restart_recovers_unacked_in_order(tmp_path: Path) -> None:
    d = tmp_path / "s"
    sp = _open(d)
    for i in range(20):
        sp.append(_rec(i))
    sp.ack(7)
    # Simulate a crash: no close(), the lock is released by dropping the file handles.
    sp._release_lock()
    sp2 = _open(d)
    try:
        assert sp2.depth == 13
        assert [r["i"] for r in sp2.peek(100)] == list(range(7, 20))
        seq = sp2.append(_rec(20))
        assert seq == 20  # numbering continues
        sp2.ack(5)
    finally:
        sp2.close()
    with _open(d) as sp3:
        assert [r["i"] for r in sp3.peek(100)] == list(range(12, 21))


def test_restart_reapplies_bound(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with _open(d) as sp:
        for i in range(8):
            sp.append(_rec(i))
    with _open(d, max_records=5) as sp:
        assert sp.depth == 5 and sp.dropped == 3
        assert [r["i"] for r in sp.peek(10)] == [3, 4, 5, 6, 7]


def test_torn_tail_is_skipped_and_truncated(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with _open(d) as sp:
        for i in range(4):
            sp.append(_rec(i))
    (seg,) = sorted(d.glob("seg-*.log"))
    whole = seg.read_bytes()
    seg.write_bytes(whole[:-5])  # the last write was torn
    with _open(d) as sp:
        assert [r["i"] for r in sp.peek(10)] == [0, 1, 2]
        sp.append(_rec(99))  # appends after the good data, not after the torn bytes
    with _open(d) as sp:
        assert [r["i"] for r in sp.peek(10)] == [0, 1, 2, 99]


def test_corrupt_record_and_garbage_tail(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with _open(d) as sp:
        for i in range(3):
            sp.append(_rec(i))
    (seg,) = sorted(d.glob("seg-*.log"))
    data = bytearray(seg.read_bytes())
    data[-2] ^= 0xFF  # flip a payload byte of the last record: CRC mismatch
    seg.write_bytes(bytes(data) + b"\x00garbage")
    with _open(d) as sp:
        assert [r["i"] for r in sp.peek(10)] == [0, 1]


def test_corrupt_committed_file_redelivers(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with _open(d) as sp:
        for i in range(3):
            sp.append(_rec(i))
        sp.ack(1)
    (d / "committed").write_text("not a number")
    with _open(d) as sp:
        assert [r["i"] for r in sp.peek(10)] == [0, 1, 2]  # at-least-once, never lost


def test_segments_rotate_and_delivered_ones_are_deleted(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with _open(d, segment_bytes=200) as sp:
        for i in range(30):
            sp.append(_rec(i))
        assert len(list(d.glob("seg-*.log"))) > 3
        sp.ack(25)
        assert len(list(d.glob("seg-*.log"))) <= 3
    with _open(d, segment_bytes=200) as sp:
        assert [r["i"] for r in sp.peek(100)] == list(range(25, 30))
        sp.ack(5)
        sp.append(_rec(30))
    with _open(d, segment_bytes=200) as sp:
        assert [r["i"] for r in sp.peek(100)] == [30]


def test_second_open_refused_and_closed_refuses(tmp_path: Path) -> None:
    d = tmp_path / "s"
    sp = _open(d)
    with pytest.raises(SpoolError, match="in use"):
        _open(d)
    sp.close()
    sp.close()  # idempotent
    with pytest.raises(SpoolClosedError):
        sp.append(_rec(1))
    with pytest.raises(ValueError, match="max_records"):
        DiskSpool(d, max_records=0, max_bytes=10)


def test_concurrent_append_and_ack(tmp_path: Path) -> None:
    with _open(tmp_path / "s", max_records=100_000) as sp:
        n = 400
        seen: list[int] = []

        def consume() -> None:
            while len(seen) < n:
                batch = sp.peek_entries(50)
                seen.extend(int(e.record["i"]) for e in batch)
                if batch:
                    sp.ack_through(batch[-1].seq)

        t = threading.Thread(target=consume)
        t.start()
        for i in range(n):
            sp.append(_rec(i))
        t.join(timeout=30)
        assert not t.is_alive()
        assert seen == list(range(n))
        assert sp.depth == 0


def test_unserialisable_record_refused(tmp_path: Path) -> None:
    with _open(tmp_path / "s") as sp, pytest.raises(TypeError):
        sp.append({"x": object()})
    with _open(tmp_path / "s") as sp:
        assert sp.depth == 0
