"""The control channel without a broker: messages, ControlState, InProcessControl, failures."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from alerts.control import (
    MAX_MESSAGE_BYTES,
    RULES_KEY,
    ControlPublisher,
    ControlPublishError,
    ControlState,
    InProcessControl,
    KafkaControlPublisher,
    KafkaControlSubscriber,
    decode_value,
    encode_value,
    republish_state,
    rules_message,
    suppression_key,
)
from alerts.store import SqliteAlertStore
from deploy.localstack import free_port
from selector.suppression import Suppression
from tests.factories import T0, make_event
from tests.infra import wait_for

pytestmark = pytest.mark.unit

SID = "11111111-1111-4111-8111-111111111111"


def _suppression(sid: str = SID, *, expires_at: float = T0 + 3600, **kw: Any) -> Suppression:
    fields: dict[str, Any] = {
        "suppression_id": sid,
        "camera_id": "cam-1",
        "rule_id": "intrusion:z",
        "zone": "z",
        "label": "person",
        "region": (-13.5, -17.0, 44.5, 59.0),
        "expires_at": expires_at,
        "created_at": T0,
        "source_event_id": make_event(1).event_id,
        "note": "shadow",
    }
    return Suppression(**(fields | kw))


# ------------------------------------------------------------------------- messages


def test_encode_decode_round_trip_and_refusals() -> None:
    value = rules_message(3, [{"type": "intrusion", "zones": ["ä"]}], 12.5)
    data = encode_value(RULES_KEY, value)
    assert data is not None and decode_value(data) == value
    assert encode_value(suppression_key(SID), None) is None and decode_value(None) is None
    for bad_key in ("", "a b", "x" * 257, "tab\t", "new\nline", "é"):
        with pytest.raises(ValueError, match="control key"):
            encode_value(bad_key, {})
    with pytest.raises(ValueError, match="not JSON"):
        encode_value(RULES_KEY, {"x": float("nan")})
    with pytest.raises(ValueError, match="not JSON"):
        encode_value(RULES_KEY, {"x": object()})
    with pytest.raises(ValueError, match="bytes, over"):
        encode_value(RULES_KEY, {"x": "y" * MAX_MESSAGE_BYTES})
    for raw in (b"\xff\xfe", b"{not json", b"[" * 100_000):
        with pytest.raises(ValueError):
            decode_value(raw)


# --------------------------------------------------------------------------- state


def test_control_state_folds_rules_and_suppressions() -> None:
    st = ControlState()
    assert st.rules is None and st.suppressions == {} and st.changes == 0
    assert st.apply(RULES_KEY, rules_message(1, [{"a": 1}], T0))
    assert st.rules == (1, [{"a": 1}])
    copy_ = st.rules
    assert copy_ is not None
    copy_[1].append({"mutated": True})  # callers get copies
    assert st.rules == (1, [{"a": 1}])
    s = _suppression()
    st(suppression_key(SID), s.to_dict())  # on_change form
    assert st.suppressions == {SID: s}
    assert st.active_suppressions(T0 + 10) == [s]
    assert st.active_suppressions(T0 + 10, camera_id="cam-2") == []
    assert st.active_suppressions(T0 + 3600) == []  # expired
    assert st.apply(suppression_key(SID), None)
    assert st.suppressions == {}
    assert st.apply(RULES_KEY, None) and st.rules is None
    assert st.changes == 4


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (RULES_KEY, "not a dict"),
        (RULES_KEY, {"revision": "1", "rules": []}),
        (RULES_KEY, {"revision": True, "rules": []}),
        (RULES_KEY, {"revision": -1, "rules": []}),
        (RULES_KEY, {"revision": 1, "rules": {"a": 1}}),
        (RULES_KEY, {"revision": 1, "rules": [1, 2]}),
        (RULES_KEY, {"rules": []}),
        (suppression_key(SID), [1, 2]),
        (suppression_key(SID), {"camera_id": "cam-1"}),
        (suppression_key(SID), _suppression().to_dict() | {"expires_at": "soon"}),
        (suppression_key(SID), _suppression().to_dict() | {"region": [1, 2, 3]}),
        (suppression_key(SID), _suppression().to_dict() | {"region": [1, 2, 3, float("inf")]}),
        (suppression_key(SID), _suppression().to_dict() | {"expires_at": float("nan")}),
        (suppression_key(SID), _suppression().to_dict() | {"suppression_id": "other"}),
        ("unknown/key", {"a": 1}),
    ],
)
def test_control_state_ignores_malformed_values_with_a_warning(
    key: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    st = ControlState()
    st.apply(RULES_KEY, rules_message(7, [{"keep": 1}], T0))
    st.apply(suppression_key(SID), _suppression().to_dict())
    before = (st.rules, st.suppressions, st.changes)
    with caplog.at_level(logging.WARNING, logger="alerts.control"):
        assert st.apply(key, value) is False  # never raises
    assert (st.rules, st.suppressions, st.changes) == before  # previous state kept
    assert any(r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------------- in-process


def test_in_process_control_fans_out_in_order_and_isolates_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    control = InProcessControl()
    assert isinstance(control, ControlPublisher)
    seen: list[tuple[str, Any]] = []

    def broken(key: str, value: Any) -> None:
        raise RuntimeError("subscriber bug")

    control.subscribe(broken)
    control.subscribe(lambda k, v: seen.append((k, v)))
    state = ControlState()
    control.subscribe(state.apply)
    value = _suppression().to_dict()
    with caplog.at_level(logging.ERROR, logger="alerts.control"):
        control.publish(suppression_key(SID), value)
        control.publish(RULES_KEY, rules_message(1, [{"a": 1}], T0))
        control.publish(suppression_key(SID), None)
    assert [k for k, _ in seen] == [suppression_key(SID), RULES_KEY, suppression_key(SID)]
    assert seen[0][1] == value and seen[0][1] is not value  # a copy, via JSON
    assert seen[2][1] is None
    assert state.suppressions == {} and state.rules == (1, [{"a": 1}])
    assert sum("subscriber bug" in (r.exc_text or "") for r in caplog.records) == 3
    assert control.snapshot() == {RULES_KEY: rules_message(1, [{"a": 1}], T0)}
    assert control.published == 3


def test_in_process_control_replays_latest_state_to_late_subscribers() -> None:
    control = InProcessControl()
    control.publish(RULES_KEY, rules_message(1, [{"a": 1}], T0))
    control.publish(RULES_KEY, rules_message(2, [{"a": 2}], T0))
    control.publish(suppression_key(SID), _suppression().to_dict())
    gone = "22222222-2222-4222-8222-222222222222"
    control.publish(suppression_key(gone), _suppression(gone).to_dict())
    control.publish(suppression_key(gone), None)
    late = ControlState()
    control.subscribe(late)
    assert late.rules == (2, [{"a": 2}])
    assert set(late.suppressions) == {SID}
    quiet: list[str] = []
    control.subscribe(lambda k, v: quiet.append(k), replay=False)
    assert quiet == []


def test_in_process_control_refuses_what_kafka_would() -> None:
    control = InProcessControl()
    got: list[str] = []
    control.subscribe(lambda k, v: got.append(k))
    with pytest.raises(ValueError):
        control.publish("bad key", {})
    with pytest.raises(ValueError):
        control.publish(RULES_KEY, {"x": float("inf")})
    assert got == [] and control.published == 0


def test_republish_state_from_the_store(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "a.sqlite")
    try:
        control = InProcessControl()
        assert republish_state(store, control, now=T0) == 0
        store.put_rules([{"a": 1}], None)
        active, expired = (
            _suppression(),
            _suppression("33333333-3333-4333-8333-333333333333", expires_at=T0 - 1),
        )
        store.add_suppression(active)
        store.add_suppression(expired)
        assert republish_state(store, control, now=T0) == 2
        state = ControlState()
        control.subscribe(state)
        assert state.rules == (1, [{"a": 1}])
        assert state.suppressions == {SID: active}
    finally:
        store.close()


# ------------------------------------------------------------------- Kafka, no broker


def test_kafka_publisher_without_broker_raises_a_clear_error_quickly() -> None:
    port = free_port()  # nothing listens there
    pub = KafkaControlPublisher(f"127.0.0.1:{port}", "ctl", publish_timeout_s=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(ControlPublishError) as info:
            pub.publish(RULES_KEY, rules_message(1, [], T0))
        assert time.monotonic() - t0 < 10.0
        assert info.value.key == RULES_KEY and "not published" in str(info.value)
        assert not pub.health().connected and pub.health().last_error is not None
        with pytest.raises(ValueError):  # refused before any I/O
            pub.publish("bad key", None)
    finally:
        pub.close()
    with pytest.raises(ValueError, match="unknown Kafka security options"):
        KafkaControlPublisher("x:1", security={"sasl_pasword": "secret"})
    with pytest.raises(ValueError):
        KafkaControlPublisher("x:1", publish_timeout_s=0)


def test_kafka_subscriber_without_broker_keeps_trying_logs_once_and_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    sub = KafkaControlSubscriber(
        f"127.0.0.1:{port}",
        lambda k, v: None,
        topic="ctl",
        connect_timeout_s=0.3,
        min_backoff_s=0.05,
        max_backoff_s=0.1,
    )
    with caplog.at_level(logging.DEBUG, logger="alerts.control"):
        sub.start()
        try:
            wait_for(lambda: sub.state().last_error is not None, 10, "a failed attempt")
            time.sleep(1.5)  # several more attempts
            st = sub.state()
            assert st.running and not st.connected and not st.synced and st.records == 0
            assert not sub.wait_synced(0.01)
            with pytest.raises(RuntimeError, match="already started"):
                sub.start()
        finally:
            t0 = time.monotonic()
            sub.stop(timeout_s=10)
            assert time.monotonic() - t0 < 5.0
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "alerts.control"
    ]
    assert len(warnings) == 1 and "retrying with backoff" in warnings[0].getMessage()
    assert not sub.state().running
    with pytest.raises(ValueError):
        KafkaControlSubscriber("x:1", lambda k, v: None, min_backoff_s=2, max_backoff_s=1)
