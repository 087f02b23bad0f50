"""Shared test set-up.

Under ``make test`` (and so in CI) ``ARGUS_NO_SKIP=1`` is set: every prerequisite (model,
footage, RTSP server packages) has been installed by the make targets, so a test that
would skip is reported as a failure instead — a missing install step can never hide
behind a green run.  Plain ``pytest`` keeps the skips for quick local loops.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

NO_SKIP = os.environ.get("ARGUS_NO_SKIP") == "1"

# One local Kafka-protocol broker + S3 server for the whole session (fixture `localstack`);
# one local PostgreSQL (fixture `postgres`) and the store tests on both backends
# (fixture `store_factory`); the demo's videos, made once (fixture `demo_room`).
pytest_plugins = ["tests.infra", "tests.pg", "tests.demo_room"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under ARGUS_NO_SKIP=1 (make test installs everything): {reason}"
