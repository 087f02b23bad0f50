"""Forensic search in a real browser (issue 23): Playwright driving Debian's Chromium against
a real ``argus serve`` process, track summaries written into its store by this process as
the alert service would store them from the bus (``ArgusServer.add_track``).

* an operator searches "person, top red, last 24 h": exactly the red-top people of the
  cameras of her groups show (not cam-9's, not a red car, not last week's), best first,
  with their masked thumbnails; the filters are in the address (Back returns to them);
* one result opens on its camera's timeline (its neighbours as bars, an alert as a mark,
  this track highlighted; another bar opens that track), with the sentence that no video
  was kept for this moment; Esc goes back to the results;
* "More like this" ranks the same time range's people by appearance;
* a bad time range shows the API's own sentence; a camera outside her groups (an old
  link) the API's 403 sentence; a search that finds nothing says what to change.

Screenshots (``harness.shot``): ``search-results``, ``search-like``, ``search-track``,
``search-track-neighbour``, ``search-bad-range``, ``search-forbidden``, ``search-empty``.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from alerts.evidence import LocalEvidenceStore, clip_key, masked_key, thumbnail_key
from tests.browser.harness import CAMERAS, ArgusServer, shot, sign_in
from tests.factories import make_event, make_track_record, write_clip

pytestmark = pytest.mark.browser

SQUARE = [[0, 0], [320, 0], [320, 240], [0, 240]]
CONFIG = {
    "cameras": [
        {
            "id": cam,
            "source": f"rtsp://127.0.0.1:9/{cam}",
            "groups": list(groups),
            "zones": [{"name": "door", "polygon": SQUARE}] if cam == "cam-1" else [],
        }
        for cam, groups in CAMERAS.items()
    ]
}
BGR = {
    "red": (40, 40, 210),
    "black": (20, 20, 20),
    "blue": (200, 90, 40),
    "grey": (128, 128, 128),
    "white": (235, 235, 235),
    "green": (60, 160, 50),
    "orange": (30, 140, 240),
}


def _picture(record: dict[str, Any]) -> np.ndarray[Any, Any]:
    """A 320x240 scene with the track's figure in its box: the upper half in its upper
    colour, the lower in its lower one (a vehicle: its body colour)."""
    image = np.zeros((240, 320, 3), np.uint8)
    image[:] = np.linspace(50, 110, 320, dtype=np.uint8)[None, :, None]
    x1, y1, x2, y2 = (int(v) for v in record["bbox"])
    x2, y2 = min(x2, 319), min(y2, 239)
    colours: dict[str, str] = record["colours"]
    if "body" in colours:
        image[y1:y2, x1:x2] = BGR.get(colours["body"], (128, 128, 128))
    else:
        mid = (y1 + y2) // 2
        image[y1:mid, x1:x2] = BGR.get(colours.get("upper", "grey"), (128, 128, 128))
        image[mid:y2, x1:x2] = BGR.get(colours.get("lower", "grey"), (128, 128, 128))
    return image


def _track(server: ArgusServer, n: int, first: float, **kw: Any) -> dict[str, Any]:
    """Store track ``n`` first seen at ``first`` (UNIX s) with a thumbnail."""
    height = kw.pop("height_px", 100.0)
    record = make_track_record(n, first=first, height_px=height, **kw)
    record["bbox"] = [60.0, 230.0 - height, 60.0 + height / 2.5, 230.0]  # in the picture
    record["thumbnail"] = thumbnail_key(str(record["camera_id"]), first, str(record["track_uid"]))
    server.add_track(record, _picture(record))
    return record


def _seed(server: ArgusServer, now: float) -> dict[str, dict[str, Any]]:
    """About a dozen tracks; the keys name the ones the tests look for."""
    hour = now - 3600
    t: dict[str, dict[str, Any]] = {}
    # the red tops of cam-1 and cam-2 in the last 24 h: best (big, long, clear) to worst
    t["best"] = _track(
        server,
        1,
        hour,
        upper="red",
        lower="black",
        duration_s=60.0,
        height_px=200.0,
        shares={"upper": 0.95, "lower": 0.9},
        zones=["door"],
        direction="right",
    )
    t["near"] = _track(
        server,
        2,
        hour + 40,
        upper="red",
        lower="black",
        duration_s=20.0,
        height_px=120.0,
        shares={"upper": 0.7},
        direction="left",
    )
    t["cam2"] = _track(
        server,
        3,
        now - 5 * 3600,
        camera="cam-2",
        upper="red",
        lower="grey",
        duration_s=12.0,
        height_px=110.0,
        direction="down",
    )
    t["worst"] = _track(
        server,
        4,
        now - 9 * 3600,
        camera="cam-2",
        upper="red",
        lower="blue",
        duration_s=1.0,
        height_px=40.0,
        shares={"upper": 0.3, "lower": 0.3},
        direction="still",
    )
    # neither red on top, nor a person, nor seen, nor today
    t["blue"] = _track(server, 5, hour + 90, upper="blue", lower="black", direction="up")
    t["white"] = _track(server, 6, hour - 120, upper="white", lower="black")
    t["green"] = _track(server, 7, now - 2 * 3600, camera="cam-2", upper="green", lower="black")
    t["orange"] = _track(server, 8, now - 3 * 3600, camera="cam-2", upper="orange", lower="black")
    t["red_car"] = _track(
        server, 9, hour + 150, label="car", upper=None, lower=None, body="red", height_px=90.0
    )
    t["white_car"] = _track(
        server,
        10,
        now - 4 * 3600,
        camera="cam-2",
        label="car",
        upper=None,
        lower=None,
        body="white",
    )
    t["elsewhere"] = _track(
        server, 11, hour, camera="cam-9", upper="red", lower="black", height_px=220.0
    )
    t["last_week"] = _track(server, 12, now - 7 * 86400, upper="red", lower="black")
    return t


def _alert_with_clip(server: ArgusServer, wall: float, tmp: Any) -> str:
    """Store an alert on cam-1 raised at ``wall`` with a short H.264 clip (and its masked
    copy) in the evidence folder, as a worker would; its event id."""
    event = make_event(900, camera="cam-1", wall=wall)
    key = clip_key("cam-1", wall, event.event_id)
    frames = [np.full((120, 160, 3), 40 + 8 * i, np.uint8) for i in range(10)]
    video = write_clip(tmp / "clip.mp4", frames, codec="libx264").read_bytes()
    store = LocalEvidenceStore(server.evidence_dir)
    for where in (masked_key(key), key):
        store.put(where, video)
    server.upsert(event.to_record() | {"clip": key})
    return event.event_id


def _uids(page: Page) -> list[str]:
    uids: list[str] = page.locator("#search-results .result").evaluate_all(
        "cards => cards.map((c) => c.dataset.uid)"
    )
    return uids


def _hash_params(page: Page) -> dict[str, list[str]]:
    fragment = unquote(urlparse(page.url).fragment)
    return parse_qs(fragment.split("?", 1)[1] if "?" in fragment else "")


def test_an_operator_finds_red_tops_opens_one_on_its_timeline_and_asks_for_more_like_it(
    page: Page, argus_server_factory: Any, tmp_path: Any
) -> None:
    server: ArgusServer = argus_server_factory(config=CONFIG).start()
    now = time.time()
    tracks = _seed(server, now)
    alert_id = _alert_with_clip(server, now - 3600 + 10, tmp_path)  # its clip covers "best"
    page.set_viewport_size({"width": 1600, "height": 1000})
    sign_in(page, server.url)
    page.get_by_role("link", name="Search").click()
    expect(page.get_by_role("heading", name="Search")).to_be_visible()
    expect(page.get_by_label("Class")).to_be_visible()

    # person, top red, last 24 h
    page.get_by_label("Class").select_option("person")
    page.locator("#s-upper").get_by_text("red", exact=True).click()
    page.get_by_role("button", name="Last 24 h").click()
    cards = page.locator("#search-results .result")
    expect(cards).to_have_count(4)
    uids = _uids(page)
    assert set(uids) == {tracks[k]["track_uid"] for k in ("best", "near", "cam2", "worst")}
    assert uids[0] == tracks["best"]["track_uid"]  # best first
    assert uids[-1] == tracks["worst"]["track_uid"]
    expect(page.locator("#search-count")).to_have_text("4 of 4 shown, best first.")
    expect(page.locator("#search-capped")).to_be_hidden()
    first = cards.first
    expect(first).to_contain_text("cam-1")
    expect(first).to_contain_text("red top")
    expect(first).to_contain_text("black bottom")
    expect(first).to_contain_text("door")
    expect(first).to_contain_text("1 min 0 s")
    expect(first.locator("img.result-pic")).to_have_attribute(
        "src", f"/api/v1/tracks/{tracks['best']['track_uid']}/thumbnail"
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#search-results img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    params = _hash_params(page)
    assert params["class"] == ["person"] and params["upper"] == ["red"]
    assert "since" in params and "until" in params
    shot(page, "search-results")

    # more like the best one: the same time range's people, the red-black ones first
    first.get_by_role("link", name="More like this").click()
    expect(page).to_have_url(re.compile(r"like="))
    expect(page.locator("#search-like")).to_contain_text("looks like")
    liked = page.locator("#search-results .result")
    expect(liked.first).to_be_visible()
    like_uids = _uids(page)
    assert tracks["best"]["track_uid"] not in like_uids  # not itself
    assert tracks["near"]["track_uid"] == like_uids[0]  # red top, black bottom as well
    for gone in ("elsewhere", "red_car", "last_week"):
        assert tracks[gone]["track_uid"] not in like_uids
    shot(page, "search-like")

    # Back: the red tops again, as they were
    page.go_back()
    expect(cards).to_have_count(4)
    expect(page.get_by_label("Class")).to_have_value("person")
    expect(page.locator("#s-upper-red")).to_be_checked()

    # open the best one: its camera's timeline, the facts, no video
    cards.first.locator("a.result-open").click()
    expect(page).to_have_url(re.compile("#/track/" + tracks["best"]["track_uid"]))
    expect(page.get_by_role("heading", name="Person on cam-1")).to_be_visible()
    expect(page.locator("#track-head")).to_contain_text("red top")
    expect(page.locator("svg.timeline")).to_be_visible()
    expect(page.locator(".tl-me")).to_have_count(1)
    # its neighbours on cam-1 within minutes: near, blue, white, the red car
    expect(page.locator("a.tl-track")).to_have_count(4)
    # the alert as a mark, and its clip, which covers this moment
    expect(page.locator("a.tl-alert")).to_have_count(1)
    expect(page.locator("#track-clip video")).to_have_attribute(
        "src", f"/api/v1/alerts/{alert_id}/clip"
    )
    expect(page.get_by_role("link", name="Open the alert")).to_have_attribute(
        "href", f"#/alert/{alert_id}"
    )
    expect(page.get_by_role("button", name="Show unmasked")).to_have_count(0)  # an operator
    page.wait_for_function("() => document.querySelector('img.track-pic')?.naturalWidth > 0")
    shot(page, "search-track")

    # another bar opens that track
    page.locator(f'a.tl-track[href="#/track/{tracks["red_car"]["track_uid"]}"]').click()
    expect(page.get_by_role("heading", name="Car on cam-1")).to_be_visible()
    expect(page.locator("#track-head")).to_contain_text("red body")
    # seen minutes after the alert's clip ended: no video
    expect(page.locator("#no-video")).to_contain_text("No video was kept for this moment")
    page.wait_for_function("() => document.querySelector('img.track-pic')?.naturalWidth > 0")
    shot(page, "search-track-neighbour")

    # Esc: back to the results
    page.locator("body").press("Escape")
    expect(cards).to_have_count(4)
    expect(page.locator("#s-upper-red")).to_be_checked()


def test_what_is_wrong_with_a_search_is_said_in_words(
    page: Page, argus_server: ArgusServer
) -> None:
    now = time.time()
    _track(argus_server, 1, now - 600, upper="red", lower="black")
    sign_in(page, argus_server.url)
    expect(page.locator("#who-name")).to_have_text("olga")

    # until before since, through the form: the API's sentence
    page.goto(argus_server.url + "/#/search")
    page.get_by_label("From", exact=True).fill("2024-05-02T10:00")
    page.get_by_label("To", exact=True).fill("2024-05-01T10:00")
    page.get_by_label("To", exact=True).press("Enter")
    note = page.locator("#search-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("must be after since")
    expect(page.locator("#search-results .result")).to_have_count(0)
    shot(page, "search-bad-range")

    # a camera outside her groups, from an old link: the API's 403 sentence
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 3600))
    until = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + 60))
    page.goto(
        f"{argus_server.url}/#/search?since={since.replace('+', '%2B')}"
        f"&until={until.replace('+', '%2B')}&camera=cam-9"
    )
    expect(note).to_contain_text("not in your groups")
    shot(page, "search-forbidden")

    # nothing found: what to change
    page.goto(
        f"{argus_server.url}/#/search?since={since.replace('+', '%2B')}"
        f"&until={until.replace('+', '%2B')}&class=person&upper=purple"
    )
    empty = page.locator("#search-empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("No tracks match. Loosen the search: drop a colour")
    expect(note).to_be_hidden()
    shot(page, "search-empty")
