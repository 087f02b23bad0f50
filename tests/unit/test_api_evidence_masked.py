"""Evidence through the API, masked by default (issue 15): snapshots and clips as operators
get them (people blurred) and as supervisors may get them (the original, audited), clips
served in byte ranges as video players ask, clips not made yet (404 with Retry-After) or
never, direct URLs of the masked copies only, and camera groups.

The app is the real one over a real SQLite store and evidence on disk (``World`` of the
access test: operators of groups a and b, a supervisor of a, an admin, the API key); the
clips are real MP4s, the masked one of pixel value 40, the original of 200, so a decode
tells which was served.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.api import create_app
from alerts.api.routes.evidence import (
    CLIP_DUE_S,
    CLIP_RETRY_AFTER_S,
    UNMASKED_CLIP_AUDIT_S,
    RangeNotSatisfiableError,
    byte_range,
)
from alerts.evidence import (
    EvidenceNotFoundError,
    UrlEvidenceStore,
    clip_info_key,
    clip_key,
    masked_key,
    snapshot_key,
)
from alerts.schema import run_marker
from alerts.store import AlertStoreError, SqliteAlertStore
from tests.factories import make_event, write_clip
from tests.unit.test_api_access import CLIP_INFO, KEY, Who, World

pytestmark = pytest.mark.unit

ORIGINAL_JPEG = b"\xff\xd8\xff\xe0original people visible"
MASKED_JPEG = b"\xff\xd8\xff\xe0masked people blurred"
ORIGINAL_VALUE, MASKED_VALUE = 200, 40
"""Pixel value of every frame of the original clip, and of the masked one."""


def _mp4(tmp: Path, value: int) -> bytes:
    path = write_clip(tmp / f"clip-{value}.mp4", [np.full((48, 64, 3), value, np.uint8)] * 10)
    return path.read_bytes()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(original, masked) MP4 bytes: 10 frames of 64x48 each."""
    tmp = tmp_path_factory.mktemp("clips")
    return _mp4(tmp, ORIGINAL_VALUE), _mp4(tmp, MASKED_VALUE)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, SqliteAlertStore(tmp_path / "alerts.sqlite"))
    yield w
    w.client.close()
    w.store.close()


def _who(world: World, name: str) -> Who:
    return next(w for w in world.who if w.name == name)


def _add(
    world: World,
    *,
    camera: str = "cam-a",
    snapshot: str = "both",  # both | original | none
    clip: str = "both",  # both | original | none (keyed, not stored) | absent (no clip)
    mp4: tuple[bytes, bytes] = (b"original mp4", b"masked mp4"),
) -> str:
    """An alert of ``camera`` with the evidence named stored; its event id."""
    event = make_event(next(world._n), camera=camera)
    record: dict[str, Any] = event.to_record()
    snap = snapshot_key(camera, event.wall_time, event.event_id)
    if snapshot != "none":
        world.evidence.put(snap, ORIGINAL_JPEG)
        record["snapshot"] = snap
    if snapshot == "both":
        world.evidence.put(masked_key(snap), MASKED_JPEG)
    if clip != "absent":
        key = clip_key(camera, event.wall_time, event.event_id)
        record["clip"] = key
        if clip in ("both", "original"):
            world.evidence.put(key, mp4[0])
            info = {"event_id": event.event_id, "camera_id": camera, **CLIP_INFO}
            world.evidence.put(clip_info_key(key), json.dumps(info).encode())
        if clip == "both":
            world.evidence.put(masked_key(key), mp4[1])
    world.store.upsert(record)
    return event.event_id


def _get(world: World, who: str, path: str, headers: dict[str, str] | None = None) -> Any:
    principal = _who(world, who)
    world.client.cookies.clear()
    for k, v in principal.cookies.items():
        world.client.cookies.set(k, v)
    return world.client.get(path, headers={**principal.headers, **(headers or {})})


def _unmasked_views(world: World) -> list[Any]:
    return world.store.list_audit(action="evidence.unmasked", limit=500)


def _later(world: World, seconds: float) -> None:
    """Move the API's clock ``seconds`` ahead of the real one (sessions live 30 min idle)."""
    world.app.state.argus.clock = lambda: time.time() + seconds


def _decodes_to(mp4: bytes, value: int) -> bool:
    """Whether ``mp4`` decodes to the 10 frames of pixel value ``value`` (within codec loss)."""
    with av.open(io.BytesIO(mp4), "r") as container:
        means = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    return len(means) == 10 and all(abs(m - value) < 4 for m in means)


# -- snapshots ----------------------------------------------------------------------------


def test_an_operator_gets_the_masked_snapshot_and_403_for_the_original(world: World) -> None:
    eid = _add(world)
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/snapshot")
    assert r.status_code == 200 and r.content == MASKED_JPEG
    assert r.headers["content-type"] == "image/jpeg"
    for who in ("op-a", "token-op-a"):
        r = _get(world, who, f"/api/v1/alerts/{eid}/snapshot?unmasked=true")
        assert r.status_code == 403 and ORIGINAL_JPEG not in r.content
        assert "supervisors and admins" in r.json()["detail"]
    assert _unmasked_views(world) == []  # masked views and refusals are not audited


def test_a_supervisor_sees_the_original_and_the_trail_shows_it(world: World) -> None:
    eid = _add(world)
    assert _get(world, "sup-a", f"/api/v1/alerts/{eid}/snapshot").content == MASKED_JPEG
    assert _unmasked_views(world) == []
    r = _get(world, "sup-a", f"/api/v1/alerts/{eid}/snapshot?unmasked=true")
    assert r.status_code == 200 and r.content == ORIGINAL_JPEG
    assert r.headers["Cache-Control"] == "no-store"
    trail = _get(world, "sup-a", "/api/v1/audit?action=evidence.unmasked").json()["items"]
    assert [(e["actor"], e["target_kind"], e["target_id"]) for e in trail] == [
        ("sup-a", "alert", eid)
    ]
    assert trail[0]["detail"] == {"evidence": "snapshot", "camera_id": "cam-a"}
    # the alert's own trail shows it too, to whoever may see the alert
    own = _get(world, "op-a", f"/api/v1/alerts/{eid}/audit").json()["items"]
    assert [e["action"] for e in own] == ["evidence.unmasked"]
    # each unmasked snapshot view is one entry; the admin and the API key are audited too
    _get(world, "sup-a", f"/api/v1/alerts/{eid}/snapshot?unmasked=true")
    assert _get(world, "api-key", f"/api/v1/alerts/{eid}/snapshot?unmasked=1").status_code == 200
    assert [e.actor for e in _unmasked_views(world)] == ["api-key", "sup-a", "sup-a"]


def test_no_masked_copy_is_404_never_the_original(world: World) -> None:
    eid = _add(world, snapshot="original")  # stored before masking existed
    for who in ("op-a", "sup-a", "adm"):
        r = _get(world, who, f"/api/v1/alerts/{eid}/snapshot")
        assert r.status_code == 404 and ORIGINAL_JPEG not in r.content
        detail = r.json()["detail"]
        assert "only the original" in detail and "supervisors and admins" in detail
    r = _get(world, "sup-a", f"/api/v1/alerts/{eid}/snapshot?unmasked=true")
    assert r.status_code == 200 and r.content == ORIGINAL_JPEG
    # no snapshot at all
    eid = _add(world, snapshot="none")
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/snapshot")
    assert r.status_code == 404 and r.json()["detail"] == "alert has no snapshot"


# -- clips --------------------------------------------------------------------------------


def test_an_operator_gets_the_masked_clip_playable(
    world: World, clips: tuple[bytes, bytes]
) -> None:
    eid = _add(world, mp4=clips)
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip")
    assert r.status_code == 200 and r.content == clips[1]
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(len(clips[1]))
    assert _decodes_to(r.content, MASKED_VALUE)
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip?unmasked=true")
    assert r.status_code == 403 and "supervisors and admins" in r.json()["detail"]
    assert _unmasked_views(world) == []


def test_clip_byte_ranges(world: World, clips: tuple[bytes, bytes]) -> None:
    eid = _add(world, mp4=clips)
    body, size = clips[1], len(clips[1])
    url = f"/api/v1/alerts/{eid}/clip"
    cases = [  # Range, first, last
        ("bytes=0-99", 0, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes={size - 10}-{size + 1000}", size - 10, size - 1),  # end past the body: clipped
        (f"bytes=-{size + 5}", 0, size - 1),  # suffix longer than the body: all of it
        ("Bytes=3-5", 3, 5),  # the unit is case-insensitive
    ]
    for header, first, last in cases:
        r = _get(world, "op-a", url, {"Range": header})
        assert r.status_code == 206, header
        assert r.content == body[first : last + 1], header
        assert r.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["content-type"] == "video/mp4"
    for header in (f"bytes={size}-", f"bytes={size + 7}-{size + 9}", "bytes=-0"):
        r = _get(world, "op-a", url, {"Range": header})
        assert r.status_code == 416, header
        assert r.headers["content-range"] == f"bytes */{size}"
    # answered whole: several ranges, a malformed one, another unit, an If-Range
    for headers in (
        {"Range": "bytes=0-9,20-29"},
        {"Range": "bytes=9-2"},
        {"Range": "bytes=abc"},
        {"Range": "items=0-1"},
        {"Range": "bytes=0-9", "If-Range": '"some-etag"'},
    ):
        r = _get(world, "op-a", url, headers)
        assert r.status_code == 200 and r.content == body, headers
    # a player's sequence of ranges puts the clip back together
    parts = [
        _get(world, "op-a", url, {"Range": f"bytes={a}-{a + 299}"}) for a in range(0, size, 300)
    ]
    assert b"".join(p.content for p in parts) == body


def test_the_unmasked_clip_is_audited_once_per_viewer_and_minute(
    world: World, clips: tuple[bytes, bytes]
) -> None:
    eid = _add(world, mp4=clips)
    url = f"/api/v1/alerts/{eid}/clip?unmasked=true"
    r = _get(world, "sup-a", url, {"Range": "bytes=0-"})
    assert r.status_code == 206 and r.content == clips[0]
    assert r.headers["Cache-Control"] == "no-store"
    assert _decodes_to(r.content, ORIGINAL_VALUE)
    for a in (0, 100, 1000):  # a browser's run of range requests: one view
        assert _get(world, "sup-a", url, {"Range": f"bytes={a}-"}).status_code == 206
    assert [(e.actor, e.detail) for e in _unmasked_views(world)] == [
        ("sup-a", {"evidence": "clip", "camera_id": "cam-a"})
    ]
    # another viewer is audited on their own; a 416 shows nothing and is not audited
    r = _get(world, "adm", url, {"Range": f"bytes={len(clips[0])}-"})
    assert r.status_code == 416
    assert _get(world, "adm", url).content == clips[0]
    assert [e.actor for e in _unmasked_views(world)] == ["adm", "sup-a"]
    # past the window, the same viewer is audited again
    _later(world, UNMASKED_CLIP_AUDIT_S + 1)
    assert _get(world, "sup-a", url, {"Range": "bytes=0-"}).status_code == 206
    assert [e.actor for e in _unmasked_views(world)] == ["sup-a", "adm", "sup-a"]


def test_a_clip_not_made_yet_is_404_with_retry_after(world: World) -> None:
    eid = _add(world, clip="none")  # keyed on the record, not stored yet
    for route in ("clip", "clip-info", "clip?unmasked=true"):
        r = _get(world, "sup-a", f"/api/v1/alerts/{eid}/{route}")
        assert r.status_code == 404, route
        assert r.headers["Retry-After"] == str(CLIP_RETRY_AFTER_S), route
        assert "being made" in r.json()["detail"], route
    # masking still running: the original is there, the masked copy not yet
    eid = _add(world, clip="original")
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip")
    assert r.status_code == 404 and r.headers["Retry-After"] == str(CLIP_RETRY_AFTER_S)
    assert _unmasked_views(world) == []


def test_an_old_alert_without_its_clip_says_it_was_not_made(world: World) -> None:
    never = _add(world, clip="none")
    only_original = _add(world, clip="original")
    _later(world, CLIP_DUE_S + 60)
    for route in ("clip", "clip-info"):
        r = _get(world, "op-a", f"/api/v1/alerts/{never}/{route}")
        assert r.status_code == 404 and "Retry-After" not in r.headers, route
        assert "was not made" in r.json()["detail"], route
    r = _get(world, "op-a", f"/api/v1/alerts/{only_original}/clip")
    assert r.status_code == 404 and "Retry-After" not in r.headers
    assert "only the original" in r.json()["detail"]
    r = _get(world, "sup-a", f"/api/v1/alerts/{only_original}/clip?unmasked=true")
    assert r.status_code == 200 and r.content == b"original mp4"


def test_an_alert_without_a_clip(world: World) -> None:
    eid = _add(world, clip="absent")
    for route in ("clip", "clip-info", "clip-url", "clip?unmasked=true"):
        r = _get(world, "sup-a", f"/api/v1/alerts/{eid}/{route}")
        assert r.status_code == 404 and "Retry-After" not in r.headers, route
        assert r.json()["detail"] == "this alert has no clip", route


def test_clip_info(world: World) -> None:
    eid = _add(world)
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip-info")
    assert r.status_code == 200, r.text
    assert r.json() == {"event_id": eid, "camera_id": "cam-a", **CLIP_INFO}
    # cut short: the note says why
    event = world.store.get(eid)
    assert event is not None and event.clip is not None
    short = {**r.json(), "complete": False, "note": "the video ended 3.2 s into the clip's window"}
    world.evidence.put(clip_info_key(event.clip), json.dumps(short).encode())
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip-info")
    assert r.json()["complete"] is False and "3.2 s" in r.json()["note"]
    # a clip described before clips had streams: of the analysed stream, size not said
    old = {k: v for k, v in r.json().items() if k not in ("stream", "width", "height")}
    world.evidence.put(clip_info_key(event.clip), json.dumps(old).encode())
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip-info")
    assert (r.json()["stream"], r.json()["width"], r.json()["height"]) == ("analysed", None, None)
    world.evidence.put(clip_info_key(event.clip), b"{not json")
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip-info")
    assert r.status_code == 404 and "unreadable" in r.json()["detail"]


def test_camera_groups_hide_the_evidence_of_other_cameras(world: World) -> None:
    eid = _add(world, camera="cam-a")
    for route in ("snapshot", "snapshot-url", "clip", "clip-info", "clip-url"):
        r = _get(world, "op-b", f"/api/v1/alerts/{eid}/{route}")
        assert r.status_code == 404 and r.json()["detail"] == "alert not found", route
    b_alert = _add(world, camera="cam-b")
    for route in ("snapshot", "clip"):
        r = _get(world, "sup-a", f"/api/v1/alerts/{b_alert}/{route}?unmasked=true")
        assert r.status_code == 404 and ORIGINAL_JPEG not in r.content, route
    assert _unmasked_views(world) == []


def test_local_evidence_has_no_urls(world: World) -> None:
    eid = _add(world)
    r = _get(world, "op-a", f"/api/v1/alerts/{eid}/clip-url")
    assert r.status_code == 404 and "use /clip" in r.json()["detail"]


# -- presigned URLs -----------------------------------------------------------------------


class UrlStore:
    """An evidence store in memory that presigns: ``url_for`` gives ``https://s3.test/<key>``."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.presigned: list[tuple[str, int | None]] = []
        self.error: OSError | None = None

    def put(self, key: str, jpeg: bytes) -> None:
        self.blobs[key] = jpeg

    def get(self, key: str) -> bytes:
        if self.error is not None:
            raise self.error
        if key not in self.blobs:
            raise EvidenceNotFoundError(key)
        return self.blobs[key]

    def exists(self, key: str) -> bool:
        if self.error is not None:
            raise self.error
        return key in self.blobs

    def delete(self, key: str) -> bool:
        return self.blobs.pop(key, None) is not None

    def url_for(self, key: str, expires_s: int | None = None) -> str | None:
        if self.error is not None:
            raise self.error
        if key not in self.blobs:
            raise EvidenceNotFoundError(key)
        self.presigned.append((key, expires_s))
        return f"https://s3.test/{key}"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[TestClient, SqliteAlertStore, UrlStore]]:
    store, evidence = SqliteAlertStore(tmp_path / "alerts.sqlite"), UrlStore()
    assert isinstance(evidence, UrlEvidenceStore)
    app = create_app(store, evidence, api_key=KEY, snapshot_url_expiry_s=120)
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-API-Key": KEY}) as client:
        yield client, store, evidence
    store.close()


def _s3_alert(store: SqliteAlertStore, evidence: UrlStore, n: int, *, masked: bool) -> Any:
    event = make_event(n, camera="cam-a")
    snap = snapshot_key("cam-a", event.wall_time, event.event_id)
    clip = clip_key("cam-a", event.wall_time, event.event_id)
    for key, data in ((snap, ORIGINAL_JPEG), (clip, b"original mp4")):
        evidence.put(key, data)
        if masked:
            evidence.put(masked_key(key), data.replace(b"original", b"masked"))
    store.upsert(event.with_snapshot(snap).to_record() | {"clip": clip})
    return event, snap, clip


def test_presigned_urls_are_of_the_masked_copies(
    s3: tuple[TestClient, SqliteAlertStore, UrlStore],
) -> None:
    client, store, evidence = s3
    event, snap, clip = _s3_alert(store, evidence, 1, masked=True)
    r = client.get(f"/api/v1/alerts/{event.event_id}/snapshot-url")
    assert r.status_code == 200, r.text
    assert r.json() == {"url": f"https://s3.test/{masked_key(snap)}", "expires_in_s": 120}
    assert r.headers["Cache-Control"] == "no-store"
    r = client.get(f"/api/v1/alerts/{event.event_id}/clip-url")
    assert r.status_code == 200, r.text
    assert r.json() == {"url": f"https://s3.test/{masked_key(clip)}", "expires_in_s": 120}
    assert evidence.presigned == [(masked_key(snap), 120), (masked_key(clip), 120)]
    # there is no unmasked URL to ask for: the parameter is not one of these routes'
    r = client.get(f"/api/v1/alerts/{event.event_id}/clip-url?unmasked=true")
    assert r.json()["url"].endswith(".masked.mp4")
    # the bytes come from the same store's get()
    assert client.get(f"/api/v1/alerts/{event.event_id}/clip").content == b"masked mp4"


def test_no_url_for_an_original_without_its_masked_copy(
    s3: tuple[TestClient, SqliteAlertStore, UrlStore],
) -> None:
    client, store, evidence = s3
    event, _, _ = _s3_alert(store, evidence, 1, masked=False)
    r = client.get(f"/api/v1/alerts/{event.event_id}/snapshot-url")
    assert r.status_code == 404 and "only the original" in r.json()["detail"]
    r = client.get(f"/api/v1/alerts/{event.event_id}/clip-url")  # a fresh alert: pending
    assert r.status_code == 404 and r.headers["Retry-After"] == str(CLIP_RETRY_AFTER_S)
    assert evidence.presigned == []


def test_an_unreachable_store_is_503_for_clips(
    s3: tuple[TestClient, SqliteAlertStore, UrlStore],
) -> None:
    client, store, evidence = s3
    event, _, _ = _s3_alert(store, evidence, 1, masked=True)
    evidence.error = ConnectionRefusedError("s3 down")
    for route in ("clip", "clip-info", "clip-url", "clip?unmasked=true", "snapshot"):
        r = client.get(f"/api/v1/alerts/{event.event_id}/{route}")
        assert r.status_code == 503 and r.json() == {"detail": "evidence store unavailable"}, route
    assert store.list_audit(action="evidence.unmasked") == []  # nothing shown, nothing audited


# -- byte_range ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, (0, 4)),
        ("bytes=4-", 10, (4, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=8-30", 10, (8, 9)),
        (" bytes=1-1 ", 10, (1, 1)),
        ("bytes=5-4", 10, None),  # malformed: ignored
        ("bytes=-", 10, None),
        ("bytes=0-1,3-4", 10, None),  # several: the whole body
        ("bytes=1-2, 3-4", 10, None),
        ("bytes=x-1", 10, None),
        ("pages=1-2", 10, None),
        ("bytes=" + "9" * 40 + "-", 10, None),  # absurdly long numbers are not read
    ],
)
def test_byte_range(header: str | None, size: int, want: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == want


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=10-12", 10), ("bytes=-0", 10), ("bytes=-5", 0)]
)
def test_byte_range_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError) as info:
        byte_range(header, size)
    assert info.value.size == size and info.value.header == header


def test_an_interrupted_alert_without_its_clip_says_at_once_it_will_not_be_made(
    world: World,
) -> None:
    eid = _add(world, clip="none")
    # the camera's next worker run starts: the alert its killed predecessor left open is
    # closed as interrupted, and nobody is making its clip any more
    world.store.upsert(run_marker("cam-a", str(uuid.uuid4()), time.time() + 1))
    alert = world.store.get(eid)
    assert alert is not None and alert.end_reason == "interrupted"
    for route in ("clip", "clip-info"):
        r = _get(world, "op-a", f"/api/v1/alerts/{eid}/{route}")
        assert r.status_code == 404 and "Retry-After" not in r.headers, route
        assert "was not made" in r.json()["detail"] and "interrupted" in r.json()["detail"]


def test_an_unmasked_clip_whose_view_cannot_be_audited_is_not_shown_then_or_after(
    world: World,
) -> None:
    eid = _add(world)
    url = f"/api/v1/alerts/{eid}/clip?unmasked=true"
    real = world.store.append_audit

    def failing(entry: Any) -> None:
        if entry.action == "evidence.unmasked":
            raise AlertStoreError("audit trail unavailable", path="x")
        real(entry)

    with mock.patch.object(world.store, "append_audit", failing):
        assert _get(world, "sup-a", url).status_code == 503
    # the trail is back a moment later: the view is audited before anything is shown
    r = _get(world, "sup-a", url)
    assert r.status_code == 200 and [e.actor for e in _unmasked_views(world)] == ["sup-a"]


def test_no_unmasked_evidence_from_a_store_without_an_audit_trail(world: World) -> None:
    eid = _add(world)
    ctx = world.app.state.argus
    with mock.patch.object(ctx, "audit", None):
        for route in ("snapshot", "clip"):
            r = _get(world, "adm", f"/api/v1/alerts/{eid}/{route}?unmasked=true")
            assert r.status_code == 403 and "audit" in r.json()["detail"], route
            assert _get(world, "adm", f"/api/v1/alerts/{eid}/{route}").status_code == 200
