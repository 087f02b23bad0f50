"""Kafka TLS/SASL settings: from config to kafka-python client options; password from env."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.kafka_bus import check_security
from argus.app import kafka_security
from argus.config import ConfigError, parse_config

pytestmark = pytest.mark.unit


def config(security: dict[str, Any]) -> Any:
    return parse_config(
        {
            "cameras": [{"id": "c", "source": "x.avi"}],
            "bus": {"kafka": {"bootstrap": "kafka:9093", "security": security}},
        }
    )


def test_sasl_ssl_options_with_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config(
        {
            "protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "username": "argus",
            "ca_file": "/etc/ssl/kafka-ca.pem",
        }
    )
    monkeypatch.setenv("ARGUS_KAFKA_PASSWORD", "s3cr3t-pw")
    opts = kafka_security(cfg.bus.kafka)
    assert opts == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "argus",
        "sasl_plain_password": "s3cr3t-pw",
        "ssl_cafile": "/etc/ssl/kafka-ca.pem",
    }
    assert check_security(opts) == opts  # every name is one kafka-python's clients take
    assert "s3cr3t" not in repr(cfg)


def test_sasl_without_password_or_username_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGUS_KAFKA_PASSWORD", raising=False)
    cfg = config({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u"})
    with pytest.raises(ValueError, match="ARGUS_KAFKA_PASSWORD"):
        kafka_security(cfg.bus.kafka)
    with pytest.raises(ConfigError, match="needs sasl_mechanism and username"):
        config({"protocol": "SASL_SSL"})


def test_plaintext_is_the_default() -> None:
    cfg = parse_config(
        {"cameras": [{"id": "c", "source": "x.avi"}], "bus": {"kafka": {"bootstrap": "k:9092"}}}
    )
    assert kafka_security(cfg.bus.kafka) == {"security_protocol": "PLAINTEXT"}
