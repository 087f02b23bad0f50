"""The browser harness itself: a real ``argus serve``, Playwright on Debian's Chromium,
sign-in through the page, a screenshot, and a restart on the same port and store."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.harness import OLGA, ArgusServer, shot, sign_in

pytestmark = pytest.mark.browser


def test_sign_in_screenshot_and_restart_on_the_same_port(
    page: Page, argus_server: ArgusServer
) -> None:
    server = argus_server
    # an alert written into the store file from this process, as an alert service would
    event = server.add_alert(priority=80, snapshot=True)
    listed = server.api("GET", "/api/v1/alerts").json()
    assert event.event_id in str(listed)

    sign_in(page, server.url, OLGA)
    expect(page.get_by_text("olga").filter(visible=True).first).to_be_visible()
    # only for a more telling screenshot (the page is being rewritten): its queue loads
    # after the name shows; a page that shows no camera ids does not fail this test
    with contextlib.suppress(PlaywrightTimeoutError):
        page.get_by_text(event.camera_id).first.wait_for(timeout=3000)
    path = shot(page, "harness-signed-in")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    port = server.port
    assert server.stop() == 0
    assert not server.healthy(timeout_s=0.5)
    server.start()
    assert server.port == port and server.url == f"http://127.0.0.1:{port}"
    assert server.healthy()
    # the session lives in the store: the browser is still signed in after the restart
    me = page.request.get(server.url + "/api/v1/auth/me")
    assert me.status == 200 and me.json()["name"] == "olga"
