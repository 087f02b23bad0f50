"""Credentials never reach logs, stats or /readyz, however users type their camera URLs."""

from __future__ import annotations

import pytest

from alerts.api import redact
from ingest.redact import redact_text, redact_url

pytestmark = pytest.mark.unit

CASES = [
    ("rtsp://admin:hunter2@10.0.0.5:554/s", "rtsp://admin:***@10.0.0.5:554/s", "hunter2"),
    ("rtsp://admin:p/ss@10.0.0.5/s", "rtsp://admin:***@10.0.0.5/s", "p/ss"),
    ("rtsp://admin:p@ss/w@rd@10.0.0.5/s1", "rtsp://admin:***@10.0.0.5/s1", "p@ss/w@rd"),
    ("http://cam/v.mjpg?user=a&pwd=b0b", "http://cam/v.mjpg?user=a&pwd=***", "b0b"),
    ("http://cam/v?loginPassword=zz9&x=1", "http://cam/v?loginPassword=***&x=1", "zz9"),
    ("http://cam/v?pw=qq7", "http://cam/v?pw=***", "qq7"),
    ("/data/videos/plaza.avi", "/data/videos/plaza.avi", None),
]


@pytest.mark.parametrize(("url", "want", "secret"), CASES)
def test_redact_url(url: str, want: str, secret: str | None) -> None:
    assert redact_url(url) == want
    if secret:
        assert secret not in redact_text(f"error: cannot open '{url}': 401 Unauthorized")


def test_readiness_redaction_uses_the_same_rules() -> None:
    health = {"gate": {"error": "live source rtsp://admin:p/ss@10.0.0.5/s unavailable"}}
    out = redact(health)
    assert "p/ss" not in str(out) and "rtsp://admin:***@10.0.0.5/s" in str(out)
