"""Fixtures of the browser tests: Playwright driving Debian's Chromium against a real
``argus serve`` process (``tests/browser/harness.py``).

* ``browser`` (session): headless ``/usr/bin/chromium`` (``--no-sandbox``) through
  Playwright; skips when it is missing (a failure under ``ARGUS_NO_SKIP=1``).
* ``page`` (function): a fresh browser context (its own cookies, 1280x800) and page;
  a test that fails leaves a screenshot ``FAILED-<test>.png`` (see ``harness.shot``).
* ``argus_server`` (function): an ``ArgusServer`` started over a fresh store with
  ``PEOPLE`` in it; stopped at the end.
* ``argus_server_factory`` (function): ``make(**kwargs)`` builds one more, not started
  (other cameras, config or people); every one made is stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, ArgusServer, shot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["argus_server", "argus_server_factory", "browser", "page"]

ACTION_TIMEOUT_MS = 10_000
"""How long a Playwright action or ``expect`` waits by default (its own default: 30 s)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Keep each phase's report on the item (``page`` looks at ``rep_call``)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright, for the browser tests (package scope:
    Playwright's sync API keeps an event loop running in the main thread while it is open,
    and the tests after these call ``asyncio.run``)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (Debian's chromium: `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context; screenshot ``FAILED-<test>`` when the test failed."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:
                shot(tab, f"FAILED-{request.node.name}")
            except Exception as e:  # the page may be gone: the failure itself matters more
                print(f"no failure screenshot: {e}")
        context.close()


@pytest.fixture
def argus_server_factory(tmp_path: Path) -> Iterator[Callable[..., ArgusServer]]:
    """``make(**kwargs)``: an ``ArgusServer`` (not started) in a fresh folder under
    ``tmp_path``, with ``ArgusServer``'s keyword arguments; all stopped at the end."""
    made: list[ArgusServer] = []

    def make(**kwargs: Any) -> ArgusServer:
        server = ArgusServer(tmp_path / f"server-{len(made)}", **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def argus_server(argus_server_factory: Callable[..., ArgusServer]) -> ArgusServer:
    """A running ``argus serve`` over a fresh store (``PEOPLE``, ``CAMERAS``)."""
    return argus_server_factory().start()
