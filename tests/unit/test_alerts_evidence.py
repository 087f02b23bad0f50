"""Evidence keys, the local store and snapshot rendering."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from alerts.evidence import (
    EvidenceNotFoundError,
    EvidenceStore,
    InvalidEvidenceKeyError,
    LocalEvidenceStore,
    masked_key,
    render_snapshot,
    save_snapshot,
    snapshot_key,
    validate_key,
)
from selector.event import Event, make_event_id

pytestmark = pytest.mark.unit

EID = make_event_id("cam-1", "intrusion:gate", 3, 42)


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_snapshot_key_layout() -> None:
    # 2024-05-01T23:59:59Z -> UTC date folder
    assert snapshot_key("cam-1", 1_714_607_999.0, EID) == f"cam-1/2024-05-01/{EID}.jpg"
    assert snapshot_key("cam-1", 1_714_608_000.0, EID) == f"cam-1/2024-05-02/{EID}.jpg"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../secret.jpg",
        "cam/../../x.jpg",
        "cam/./x.jpg",
        "cam//x.jpg",
        "cam/x.jpg/",
        ".hidden/x.jpg",
        "cam\\..\\x.jpg",
        "cam/x y.jpg",
        "cam/x\x00.jpg",
        "cam/%2e%2e/x.jpg",
        "cam/é.jpg",
        "a" * 129 + "/x.jpg",
        "/".join(["abc"] * 200),
    ],
)
def test_keys_that_could_escape_or_are_malformed_are_rejected(tmp_path: Path, key: str) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    with pytest.raises(InvalidEvidenceKeyError):
        validate_key(key)
    with pytest.raises(InvalidEvidenceKeyError):
        store.put(key, b"x")
    with pytest.raises(InvalidEvidenceKeyError):
        store.get(key)
    with pytest.raises(InvalidEvidenceKeyError):
        store.exists(key)
    assert not (tmp_path / "secret.jpg").exists()
    assert not (tmp_path / "x.jpg").exists()


@pytest.mark.parametrize("camera", ["..", ".", "a/b", "", "cam 1", "../cam"])
def test_snapshot_key_rejects_bad_camera_ids(camera: str) -> None:
    with pytest.raises(InvalidEvidenceKeyError):
        snapshot_key(camera, 0.0, EID)


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"secret")
    store = LocalEvidenceStore(root)
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidEvidenceKeyError, match="outside"):
        store.get("link/x.jpg")


def test_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    assert isinstance(store, EvidenceStore)
    key = snapshot_key("cam-1", 1_714_557_600.0, EID)
    assert not store.exists(key)
    with pytest.raises(EvidenceNotFoundError) as info:
        store.get(key)
    assert info.value.key == key
    store.put(key, b"\xff\xd8first")
    store.put(key, b"\xff\xd8second")
    assert store.exists(key)
    assert store.get(key) == b"\xff\xd8second"
    assert (tmp_path / "ev" / key).read_bytes() == b"\xff\xd8second"
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "ev" / key).parent.iterdir()) == [f"{EID}.jpg"]
    # a directory is not evidence
    with pytest.raises(EvidenceNotFoundError):
        store.get("cam-1")
    assert not store.exists("cam-1")


def test_render_draws_box_on_a_copy() -> None:
    image = np.full((240, 320, 3), 128, np.uint8)
    before = image.copy()
    jpeg = render_snapshot(image, (50.0, 60.0, 200.0, 180.0), "person 0.87", caption="")
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    np.testing.assert_array_equal(image, before)  # source untouched
    out = _decode(jpeg).astype(np.int16)
    assert out.shape == image.shape
    # on the box edges: red-ish (BGR), far from the grey background
    for y, x in [(120, 50), (120, 200), (180, 125), (100, 200)]:
        b, g, r = out[y, x]
        assert r > 180 and b < 90 and g < 90, (y, x, out[y, x])
    # inside and outside the box: still grey (JPEG tolerance)
    for y, x in [(120, 125), (10, 300), (230, 10)]:
        assert np.abs(out[y, x] - 128).max() < 12, (y, x, out[y, x])


def test_render_zone_outline_and_caption() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    zone = np.array([[20, 100], [180, 100], [180, 190], [20, 190]], np.float32)
    jpeg = render_snapshot(image, None, "", zone_polygon=zone, caption="cam-1 intrusion")
    out = _decode(jpeg).astype(np.int16)
    b, g, r = out[100, 100]  # top edge of the zone: yellow
    assert g > 180 and r > 180 and b < 90
    assert out[5:20, 5:60].max() > 150  # caption text drawn
    assert np.abs(out[150, 100]).max() < 12  # zone interior untouched


def test_render_rejects_bad_inputs() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        render_snapshot(np.zeros((10, 10), np.uint8), None, "")
    with pytest.raises(ValueError, match="uint8"):
        render_snapshot(np.zeros((10, 10, 3), np.float32), None, "")
    with pytest.raises(ValueError, match="bbox"):
        render_snapshot(img, (1.0, 2.0, 3.0), "")
    with pytest.raises(ValueError, match="zone_polygon"):
        render_snapshot(img, None, "", zone_polygon=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="quality"):
        render_snapshot(img, None, "", quality=0)


def test_quality_changes_size() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert len(render_snapshot(img, None, "", quality=95)) > len(
        render_snapshot(img, None, "", quality=30)
    )


def test_save_snapshot_stores_and_returns_event_with_key(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    event = Event(
        event_id=EID,
        camera_id="cam-1",
        type="intrusion",
        rule_id="intrusion:gate",
        zone="gate",
        track_id=3,
        label="person",
        score=0.87,
        priority=80,
        start_s=4.2,
        end_s=None,
        bbox=(10.0, 10.0, 60.0, 90.0),
        start_seq=42,
        wall_time=1_714_557_600.0,
    )
    yy, xx = np.mgrid[0:120, 0:160]
    image = np.repeat((((yy // 2 + xx // 2) % 2) * 200 + 20)[..., None], 3, axis=2)
    image = image.astype(np.uint8)  # a fine checkerboard: sharp everywhere
    out = save_snapshot(store, event, image)
    assert out.snapshot == f"cam-1/2024-05-01/{EID}.jpg"
    assert out.event_id == event.event_id and event.snapshot is None
    original = _decode(store.get(out.snapshot))
    masked = _decode(store.get(masked_key(out.snapshot)))  # the person's box blurred
    assert original.shape == masked.shape == (120, 160, 3)
    inside, far = (slice(20, 80), slice(20, 50)), (slice(20, 80), slice(130, 155))
    lap = [
        cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.CV_64F) for x in (original, masked)
    ]
    assert lap[1][inside].var() < 0.2 * lap[0][inside].var()
    assert lap[1][far].var() == pytest.approx(lap[0][far].var(), rel=0.05)
