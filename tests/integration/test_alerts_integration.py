"""Alerts chain on the real sample footage/photos (integration: needs opencv-doc data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.api import create_app
from alerts.bus import InProcessBus
from alerts.evidence import LocalEvidenceStore, masked_key, render_snapshot, save_snapshot
from alerts.masking import mask_people
from alerts.sinks import JsonlSink
from alerts.store import SqliteAlertStore
from selector.event import Event, make_event_id

pytestmark = pytest.mark.integration

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
PHOTO = DATA / "messi5.jpg"
VTEST = DATA / "vtest.avi"
KEY = "integration-key-0123456789"
AUTH = {"X-API-Key": KEY}


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.mark.skipif(not PHOTO.exists(), reason="opencv-doc sample photo not installed")
def test_render_on_real_photo(tmp_path: Path) -> None:
    raw = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    assert raw is not None
    image = raw.astype(np.uint8, copy=False)
    h, w = image.shape[:2]
    before = image.copy()
    box = (w * 0.2, h * 0.2, w * 0.6, h * 0.9)
    jpeg = render_snapshot(image, box, "person 0.91", caption="cam-1 2024-05-01 intrusion")
    np.testing.assert_array_equal(image, before)
    out = _decode(jpeg).astype(np.int16)
    x1, y1 = round(box[0]), round(box[1])
    y_mid = (round(box[1]) + round(box[3])) // 2
    b, g, r = out[y_mid, x1]
    assert r > 180 and b < 90 and g < 90
    assert out[y1 + 1, x1 + 40][2] > 150
    assert len(jpeg) < image.nbytes / 4  # really compressed


@pytest.mark.skipif(not VTEST.exists(), reason="opencv-doc sample video not installed")
def test_real_frame_through_bus_store_sink_and_api(tmp_path: Path) -> None:
    cap = cv2.VideoCapture(str(VTEST))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
        ok, raw = cap.read()
    finally:
        cap.release()
    assert ok and raw is not None and raw.shape == (576, 768, 3)
    frame = raw.astype(np.uint8, copy=False)
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    sink = JsonlSink(tmp_path / "events.jsonl")
    bus = InProcessBus()
    bus.subscribe(sink)
    bus.subscribe(store)
    event = Event(
        event_id=make_event_id("plaza", "intrusion:south", 4, 100),
        camera_id="plaza",
        type="intrusion",
        rule_id="intrusion:south",
        zone="south",
        track_id=4,
        label="person",
        score=0.91,
        priority=90,
        start_s=10.0,
        end_s=None,
        bbox=(300.0, 250.0, 360.0, 420.0),
        start_seq=100,
        wall_time=1_714_557_600.0,
    )
    zone = np.array([[100, 300], [700, 300], [700, 570], [100, 570]], np.float32)
    event = save_snapshot(evidence, event, frame, zone_polygon=zone)
    bus.publish(event.to_record())
    bus.publish(event.closed(14.2).to_record())
    sink.close()
    assert len((tmp_path / "events.jsonl").read_text("utf-8").splitlines()) == 2

    with TestClient(
        create_app(store, evidence, api_key=KEY, version="t"), base_url="http://127.0.0.1"
    ) as client:
        page = client.get("/api/v1/alerts", headers=AUTH).json()
        assert page["total"] == 1 and page["items"][0]["end_s"] == 14.2
        url = f"/api/v1/alerts/{event.event_id}/snapshot"
        # evidence from before masking existed: only the original (``save_snapshot`` now
        # writes both; its masked copy is taken away here): 404, never the original
        assert evidence.exists(masked_key(event.snapshot or ""))
        evidence.delete(masked_key(event.snapshot or ""))
        r = client.get(url, headers=AUTH)
        assert r.status_code == 404 and "no masked copy" in r.json()["detail"]
        # the masked copy, as the worker stores it: people blurred, then the box drawn
        key = event.snapshot or ""
        people = np.array([event.bbox], np.float32)
        evidence.put(masked_key(key), render_snapshot(mask_people(frame, people), event.bbox, "p"))
        r = client.get(url, headers=AUTH)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content == evidence.get(masked_key(key)) != evidence.get(key)
        shot = _decode(r.content)
        assert shot.shape == frame.shape
        b, g, r_ = shot[335, 300].astype(int)  # left edge of the box, drawn over the blur
        assert r_ > 180 and b < 90 and g < 90
        inside = (slice(300, 410), slice(308, 352))  # the person, inside the box's lines
        original = _decode(evidence.get(key))
        sharp = cv2.Laplacian(cv2.cvtColor(original, cv2.COLOR_BGR2GRAY)[inside], cv2.CV_64F)
        blurred = cv2.Laplacian(cv2.cvtColor(shot, cv2.COLOR_BGR2GRAY)[inside], cv2.CV_64F)
        assert blurred.var() < sharp.var() / 4, (blurred.var(), sharp.var())
        unmasked = client.get(url, headers=AUTH, params={"unmasked": "true"})  # key: admin
        assert unmasked.status_code == 200 and unmasked.content == evidence.get(key)
        ack = client.post(f"/api/v1/alerts/{event.event_id}/ack", headers=AUTH, json={})
        assert ack.json()["status"] == "acknowledged"
    store.close()
