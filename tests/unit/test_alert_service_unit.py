"""AlertService record handling without a broker: hostile records are dead-lettered, not fatal."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.schema import validate_bus_record
from alerts.service import AlertService

pytestmark = pytest.mark.unit


class FakeStore:
    """Keeps what it is given; validates as every ``AlertStore.upsert`` must."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def upsert(self, record: dict[str, Any]) -> None:
        validate_bus_record(record)
        self.records.append(record)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 200_000, "malformed_json"),  # RecursionError inside json.loads
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_schema"),
        (b'{"event_id": 1}', "invalid_schema"),
    ],
)
def test_hostile_records_are_dead_lettered_and_the_service_goes_on(
    value: bytes, reason: str
) -> None:
    store = FakeStore()
    service = AlertService("127.0.0.1:1", "t", "g", store, dlq_topic="t.dlq")  # type: ignore[arg-type]
    dead: list[tuple[str, str]] = []
    service._dead_letter = lambda msg, why, detail, stop: dead.append((why, detail))  # type: ignore[method-assign]
    message = SimpleNamespace(value=value, topic="t", partition=0, offset=7, key=b"cam")
    service._handle(message, threading.Event())
    assert [why for why, _ in dead] == [reason] and store.records == []


def test_readiness_fails_when_the_consumer_is_not_running(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from alerts.api import create_app
    from alerts.evidence import LocalEvidenceStore
    from alerts.store import SqliteAlertStore

    app = create_app(
        SqliteAlertStore(tmp_path / "a.db"),
        LocalEvidenceStore(tmp_path / "ev"),
        api_key="k" * 16,
        components=lambda: {"alert_service": {"running": False, "connected": False}},
    )
    r = TestClient(app, base_url="http://127.0.0.1").get("/readyz")
    assert r.status_code == 503 and "alert_service" in r.json()["error"]


def test_bus_refuses_a_record_too_large_for_kafka(tmp_path: Any) -> None:
    """A huge record would fail every send and block the spool behind it: refused up front."""
    from alerts.kafka_bus import MAX_RECORD_BYTES, KafkaEventBus
    from alerts.schema import InvalidEventError
    from tests.factories import make_event

    bus = KafkaEventBus(
        "127.0.0.1:1",
        "t",
        spool_dir=tmp_path / "spool",
        create_topic=False,
        close_timeout_s=0.1,  # nothing listens there: closing need not wait long
        connect_timeout_s=0.5,
    )
    try:
        record = make_event(1).to_record()
        bus.publish(record)  # a normal record is spooled
        record["extra"] = "x" * (MAX_RECORD_BYTES + 1)  # additive fields are allowed by schema
        with pytest.raises(InvalidEventError, match="limit"):
            bus.publish(record)
        assert bus.spool.depth == 1
    finally:
        bus.close()
