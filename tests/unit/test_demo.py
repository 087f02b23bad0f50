"""`argus demo`'s control room (issue 18): its config, its videos, its users.

Unit tests (fast, no model, no footage: a synthetic scene stands in for the footage) and,
marked ``integration``, the real thing: the twins of the real footage and the scenes of
the accuracy suite's generator, made into a temporary ``ARGUS_HOME``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import cv2
import numpy as np
import pytest

import argus.demo as demo
from alerts.api.security import Passwords
from alerts.store import SqliteAlertStore
from argus.cli import build_parser
from argus.cli import demo_config as cli_demo_config
from argus.config import ArgusConfig
from argus.paths import BUNDLED_FOOTAGE
from detectors.detections import Detections
from detectors.scene import SceneAnalyzer
from selector.rules.base import FrameInfo
from selector.rules.camera_health import CameraHealthRule
from tests.demo_room import DemoRoom

Image = np.ndarray[Any, np.dtype[np.uint8]]

# What the generator writes into the manifest for the three scenes (zones and rules as
# its loitering, abandoned-object and fall scenarios have them).
SQUARE = [[300.0, 300.0], [500.0, 300.0], [520.0, 420.0], [280.0, 420.0]]
HALL = [[100.0, 350.0], [400.0, 350.0], [420.0, 500.0], [80.0, 500.0]]
SCENE_ENTRIES: list[dict[str, Any]] = [
    {
        "id": "courtyard",
        "video": "scene-courtyard.mp4",
        "groups": ["south"],
        "what": "loitering",
        "zones": {"square": SQUARE},
        "lines": {},
        "rules": [
            {"type": "loitering", "zone": "square", "classes": ["person"], "min_dwell_s": 10.0}
        ],
    },
    {
        "id": "drop-off",
        "video": "scene-drop-off.mp4",
        "groups": ["north"],
        "what": "abandoned object",
        "zones": {"hall": HALL},
        "lines": {},
        "rules": [{"type": "abandoned_object", "zone": "hall", "min_unattended_s": 10.0}],
    },
    {
        "id": "footpath",
        "video": "scene-footpath.mp4",
        "groups": ["south"],
        "what": "fall",
        "zones": {},
        "lines": {},
        "rules": [{"type": "fall", "min_down_s": 3.0}],
    },
]


def write_manifest(home: Path, fp: str, videos: bool = True) -> None:
    d = demo.demo_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    (d / "scenes.json").write_text(json.dumps({"fingerprint": fp, "scenes": SCENE_ENTRIES}))
    for e in SCENE_ENTRIES:
        if videos:
            (d / e["video"]).write_bytes(b"not really a video")
            (d / (e["video"] + ".json")).write_text(json.dumps({"fingerprint": fp}))


def textured_scene(w: int = 384, h: int = 288, seed: int = 3) -> Image:
    """A still, textured picture with edges (paving, a kerb, a lawn), like a plaza."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, (h // 8, w // 8, 3)).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    cv2.rectangle(img, (w // 4, h // 3), (w // 2, h // 2), (230, 230, 230), -1)
    cv2.line(img, (0, 2 * h // 3), (w, h // 2), (20, 20, 20), 3)
    return np.ascontiguousarray(img, dtype=np.uint8)


def write_footage(path: Path, frames: int = 30) -> Path:
    """A small 'footage': the textured scene with a dark blob walking across it."""
    base = textured_scene()
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(10, 1))
        st.width, st.height, st.pix_fmt = base.shape[1], base.shape[0], "yuv420p"
        for k in range(frames):
            img = base.copy()
            x = 20 + 10 * k
            cv2.rectangle(img, (x, 150), (x + 20, 210), (30, 30, 60), -1)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = k, Fraction(1, 10)
            for p in st.encode(vf):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def decoded(path: Path, keyframes_only: bool = False) -> Iterator[tuple[float, Image]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if keyframes_only:
            s.codec_context.skip_frame = "NONKEY"
        for f in c.decode(s):
            assert f.pts is not None
            yield float(f.pts * f.time_base), f.to_ndarray(format="bgr24")


def health_over(path: Path, keyframes_only: bool = False, loops: int = 2) -> dict[str, Any]:
    """The real scene analyser and camera-health rule over ``loops`` plays of ``path``
    (as the looping camera does), with hold times short enough to trip within seconds."""
    with av.open(str(path)) as c:
        period = c.streams.video[0].frames / demo.FPS
    scene = SceneAnalyzer()
    rule = CameraHealthRule(
        "camera_health", "c", frozen_s=1.0, covered_s=1.0, blur_s=1.0, blur_learn_s=2.0
    )
    events: list[str] = []
    diffs: list[float] = []
    covered = blurred = seq = 0
    for loop in range(loops):
        for t, img in decoded(path, keyframes_only):
            ts = loop * period + t
            stats = scene.analyze(img, ts)
            h, w = img.shape[:2]
            frame = FrameInfo("c", seq, ts, 1.7e9 + ts, w, h, scene=stats)
            events += [e.event_type for e in rule.update(Detections.empty(), frame)]
            if seq:
                diffs.append(stats.frame_diff)
            covered += stats.blank_fraction >= rule.covered_blank
            covered += stats.contrast < rule.covered_contrast
            base = rule.blur_baseline
            level = max(stats.brightness, 16.0)
            blurred += base is not None and stats.sharpness / level**2 < rule.blur_ratio * base
            seq += 1
    return {
        "events": events,
        "min_diff": min(diffs),
        "frozen_diff": rule.frozen_diff,
        "covered": covered,
        "blurred": blurred,
        "frames": seq,
        "blur_baseline": rule.blur_baseline,
    }


def check_rules_reference_geometry(cfg: ArgusConfig) -> None:
    cams = {c.id: c for c in cfg.cameras}
    for r in cfg.rules:
        cam = cams[r.camera]
        zone, line = getattr(r, "zone", None), getattr(r, "line", None)
        if zone is not None:
            assert zone in {z.name for z in cam.zones}, (r.camera, zone)
        if line is not None:
            assert line in {ln.name for ln in cam.lines}, (r.camera, line)


# ---------------------------------------------------------------------------- config


@pytest.mark.unit
def test_the_room_has_six_live_cameras_whose_rules_reference_their_geometry(
    tmp_path: Path,
) -> None:
    write_manifest(tmp_path, "fp")
    cfg = demo.demo_config(BUNDLED_FOOTAGE, tmp_path)
    assert isinstance(cfg, ArgusConfig)
    ids = [c.id for c in cfg.cameras]
    assert ids == ["plaza", "lawn", "car-park", "courtyard", "drop-off", "footpath"]
    assert all(c.realtime and c.loop for c in cfg.cameras)
    check_rules_reference_geometry(cfg)
    for cam in cfg.cameras:
        types = {r.type for r in cfg.rules if r.camera == cam.id}
        assert "camera_health" in types, cam.id
        assert set(cam.groups) <= set(demo.GROUPS) and cam.groups, cam.id
    # each group has cameras, the plaza is in both, every event type is someone's
    for g in demo.GROUPS:
        assert sum(g in c.groups for c in cfg.cameras) >= 3
    assert set(cfg.cameras[0].groups) == set(demo.GROUPS)
    types = {r.type for r in cfg.rules}
    assert {"intrusion", "loitering", "abandoned_object", "fall", "line_crossing"} <= types
    # the twins are the quiet plaza: videos in $ARGUS_HOME/demo, not the footage
    for cam in cfg.cameras[1:3]:
        assert Path(cam.source).parent == tmp_path / "demo"
    assert cfg.sinks[0].jsonl == tmp_path / "demo-events.jsonl"


@pytest.mark.unit
def test_without_generated_scenes_the_config_still_validates(tmp_path: Path) -> None:
    # what `argus serve` and the API tests use: no videos made, no footage even
    cfg = cli_demo_config(Path("/nonexistent/footage.avi"), tmp_path)
    assert [c.id for c in cfg.cameras] == ["plaza", "lawn", "car-park"]
    check_rules_reference_geometry(cfg)
    assert {r.camera for r in cfg.rules} == {"plaza", "lawn", "car-park"}


@pytest.mark.unit
def test_the_reframed_twins_zones_are_inside_its_frame() -> None:
    spec = next(s for s in demo.TWINS if s.reframed)
    cam = demo.twin_camera(spec, Path("x.mp4"))
    for poly in cam.zones.values():
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        assert min(xs) >= 0 and max(xs) < demo.FRAME_W and min(ys) >= 0 and max(ys) < 576
    # mirrored: the lawn (left in the footage) is on the right in the reframed view
    lawn = np.array(cam.zones["lawn"])
    assert lawn[:, 0].mean() > demo.FRAME_W / 2


@pytest.mark.unit
def test_stored_scenes_need_their_fingerprint_and_every_video(tmp_path: Path) -> None:
    write_manifest(tmp_path, "abc")
    assert [c.id for c in demo.stored_scenes(tmp_path, "abc")] == [
        "courtyard",
        "drop-off",
        "footpath",
    ]
    assert demo.stored_scenes(tmp_path, "other") == []  # generator changed: remake
    (tmp_path / "demo" / "scene-drop-off.mp4").unlink()
    assert demo.stored_scenes(tmp_path, "abc") == []  # one lost: remake them all
    assert [c.id for c in demo.stored_scenes(tmp_path)] == ["courtyard", "footpath"]
    rules = demo.stored_scenes(tmp_path)[0].rule_configs()
    assert rules[-1] == {"type": "camera_health", "camera": "courtyard"}


@pytest.mark.unit
def test_the_demo_command_takes_remake() -> None:
    args = build_parser().parse_args(["demo", "--remake", "--port", "8765"])
    assert args.remake and args.port == 8765 and args.fn.__name__ == "cmd_demo"
    assert not build_parser().parse_args(["demo"]).remake


# ------------------------------------------------------------------------------ twins


@pytest.mark.unit
def test_a_twin_is_never_frozen_covered_or_blurred_for_the_scene_analyser(
    tmp_path: Path,
) -> None:
    video = tmp_path / "twin.mp4"
    frames = demo.twin_frames(textured_scene(), seconds=6.0, seed=1)
    assert demo.encode(frames, video, "fp", crf=demo.TWIN_CRF, tune=demo.TWIN_TUNE) == 60
    full = health_over(video)
    assert full["frames"] == 120
    assert full["events"] == [], full
    # every frame differs from the one before (not only at keyframes), well above the
    # 'frozen' limit
    assert full["min_diff"] > 2 * full["frozen_diff"], full
    assert full["covered"] == 0 and full["blurred"] == 0, full
    # a quiet camera is decoded at its keyframes only: those differ too
    sparse = health_over(video, keyframes_only=True, loops=3)
    assert sparse["frames"] == 9 and sparse["events"] == [], sparse
    assert sparse["min_diff"] > 2 * sparse["frozen_diff"], sparse


@pytest.mark.unit
def test_the_twin_loop_has_no_seam() -> None:
    frames = list(demo.twin_frames(textured_scene(), seconds=2.0, seed=1, sigma=0.0))
    assert len(frames) == 20
    step = [float(np.abs(a.astype(float) - b).mean()) for a, b in itertools.pairwise(frames)]
    seam = float(np.abs(frames[-1].astype(float) - frames[0]).mean())
    assert seam <= 2 * max(step) + 0.5  # the light drift ends where it began


@pytest.mark.unit
def test_twins_are_made_once_then_reused_and_remade_when_the_fingerprint_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "TWIN_S", 2.0)
    footage = write_footage(tmp_path / "footage.mp4")
    home = tmp_path / "home"
    said: list[str] = []
    cams = demo.make_twins(footage, home, say=said.append)
    assert [c.id for c in cams] == ["lawn", "car-park"] and len(said) == 2
    videos = [Path(c.source) for c in cams]
    mtimes = [v.stat().st_mtime_ns for v in videos]
    assert all(v.is_file() and v.parent == home / "demo" for v in videos)
    assert sorted(p.name for p in (home / "demo").iterdir()) == sorted(
        [v.name for v in videos] + [v.name + ".json" for v in videos]
    )  # no temporary file left
    h, w = next(decoded(videos[0]))[1].shape[:2]
    assert (w, h) == (384, 288)  # the footage's size

    said.clear()
    time.sleep(0.01)
    assert demo.make_twins(footage, home, say=said.append) == cams
    assert said == [] and [v.stat().st_mtime_ns for v in videos] == mtimes

    monkeypatch.setattr(demo, "TWIN_NOISE_SIGMA", 3.0)  # part of the fingerprint
    demo.make_twins(footage, home, say=said.append)
    assert len(said) == 2 and all(
        v.stat().st_mtime_ns != m for v, m in zip(videos, mtimes, strict=True)
    )
    monkeypatch.setattr(demo, "ASSETS_VERSION", "demo-assets-test")
    said.clear()
    demo.make_twins(footage, home, say=said.append)
    assert len(said) == 2


@pytest.mark.unit
def test_a_video_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    def broken() -> Iterator[Image]:
        yield textured_scene()
        raise RuntimeError("renderer failed")

    target = tmp_path / "demo" / "scene.mp4"
    with pytest.raises(RuntimeError, match="renderer failed"):
        demo.encode(broken(), target, "fp")
    assert list((tmp_path / "demo").iterdir()) == []
    assert not demo.is_fresh(target, "fp")
    demo.encode(iter([textured_scene()] * 3), target, "fp")
    assert demo.is_fresh(target, "fp") and not demo.is_fresh(target, "other")
    with pytest.raises(demo.DemoAssetError):
        demo.encode(iter([]), tmp_path / "demo" / "empty.mp4", "fp")


# ------------------------------------------------------------------------------ users


@pytest.mark.unit
def test_the_admin_and_the_operator_get_fresh_passwords_printed_once(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:
        block = demo.sign_in_block(store, demo.DEMO_USERS)
        lines = block.splitlines()
        assert len(lines) == 2
        # the first line is what `argus demo` always printed (tests read it)
        first = re.search(r"Sign in as:\s+(\S+) / (\S+)", block)
        assert first and first.group(1) == "admin"
        found = dict(re.findall(r"(\w+) / (\S+)", block))
        assert set(found) == {"admin", "operator"}
        assert "every camera" in lines[0] and "north, south" in lines[1]
        passwords = Passwords()
        admin, operator = store.get_user("admin"), store.get_user("operator")
        assert admin is not None and admin.role == "admin" and not admin.disabled
        assert operator is not None and operator.role == "operator"
        assert sorted(operator.groups) == ["north", "south"]
        for name, password in found.items():
            assert passwords.verify(store.password_hash(name), password)
            assert block.count(password) == 1
        # the next start: new passwords, the old ones stop working; a disabled or
        # demoted user is made whole again
        store.update_user("operator", now=time.time(), role="supervisor", disabled=True)
        again = dict(re.findall(r"(\w+) / (\S+)", demo.sign_in_block(store, demo.DEMO_USERS)))
        for name in found:
            assert again[name] != found[name]
            assert not passwords.verify(store.password_hash(name), found[name])
            assert passwords.verify(store.password_hash(name), again[name])
        operator = store.get_user("operator")
        assert operator is not None and operator.role == "operator" and not operator.disabled
        with pytest.raises(ValueError, match="role"):
            demo.sign_in(store, "x", "janitor", ["north"])
    finally:
        store.close()


@pytest.mark.unit
def test_an_earlier_demos_admin_is_disabled(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:  # the one-camera demo made an admin 'demo' whose password it printed
        store.add_user("demo", role="admin", groups=["default"], password_hash="x", now=1.0)
        demo.sign_in_block(store, demo.DEMO_USERS)
        old = store.get_user("demo")
        assert old is not None and old.disabled
        assert demo.retire_old_users(store) == []  # once is enough
    finally:
        store.close()


# ------------------------------------------------------------------- the real thing


@pytest.fixture(scope="module")
def real_room(demo_room: DemoRoom) -> tuple[Path, list[demo.DemoCamera]]:
    """The demo's videos made from the real footage with the real model (once a session)."""
    print(f"demo videos made in {demo_room.seconds:.1f} s:\n" + "\n".join(demo_room.said))
    assert demo_room.said[0].startswith("demo: making the control room's videos")
    return demo_room.home, demo_room.cameras


@pytest.mark.integration
def test_real_room_six_cameras_from_footage_twins_and_generated_scenes(
    real_room: tuple[Path, list[demo.DemoCamera]],
) -> None:
    home, cams = real_room
    assert [c.id for c in cams] == [
        "plaza",
        "lawn",
        "car-park",
        "courtyard",
        "drop-off",
        "footpath",
    ]
    cfg = demo.demo_config(BUNDLED_FOOTAGE, home, cams)
    check_rules_reference_geometry(cfg)
    kinds = {c.id: {r["type"] for r in c.rules} for c in cams}
    assert kinds["courtyard"] == {"loitering", "camera_health"}
    assert kinds["drop-off"] == {"abandoned_object", "camera_health"}
    assert kinds["footpath"] == {"fall", "camera_health"}
    manifest = json.loads(demo.manifest_path(home).read_text())
    for entry in manifest["scenes"]:
        assert len(entry["gt"]) == 1  # one incident per loop, then a quiet stretch
        video = demo.demo_dir(home) / entry["video"]
        n = sum(1 for _ in decoded(video, keyframes_only=True))
        length_s = n * demo.GOP_FRAMES / demo.FPS
        assert entry["gt"][0]["end_s"] + 10.0 < length_s  # quiet after the story
    # the same, from the manifest alone (what `argus serve` reads)
    assert demo.demo_cameras(BUNDLED_FOOTAGE, home) == cams


@pytest.mark.integration
def test_real_twins_are_alive_for_the_scene_analyser(
    real_room: tuple[Path, list[demo.DemoCamera]],
) -> None:
    _, cams = real_room
    for cam in cams[1:3]:
        result = health_over(Path(cam.source), loops=1)
        assert result["events"] == [], (cam.id, result)
        assert result["min_diff"] > 2 * result["frozen_diff"], (cam.id, result)
        assert result["covered"] == 0 and result["blurred"] == 0, (cam.id, result)
        first = next(decoded(Path(cam.source)))[1]
        assert first.shape == (576, 768, 3)


@pytest.mark.integration
def test_real_room_is_reused_on_the_next_start(
    real_room: tuple[Path, list[demo.DemoCamera]],
) -> None:
    home, cams = real_room
    videos = [Path(c.source) for c in cams[1:]]
    mtimes = [v.stat().st_mtime_ns for v in videos]
    said: list[str] = []
    t = time.monotonic()
    assert demo.prepare_demo(BUNDLED_FOOTAGE, home, say=said.append) == cams
    assert said == [] and time.monotonic() - t < 5.0
    assert [v.stat().st_mtime_ns for v in videos] == mtimes


@pytest.mark.unit
def test_the_scene_played_is_on_a_preferred_background_with_the_longest_incident() -> None:
    def drawn(bg: str, *spans: tuple[float, float]) -> Any:
        return SimpleNamespace(
            background=bg, gt=[SimpleNamespace(start_s=a, end_s=b) for a, b in spans]
        )

    short, long_ = drawn("plaza", (10.0, 15.0)), drawn("plaza", (10.0, 25.0))
    street = drawn("street", (5.0, 40.0))
    assert demo.pick_scenario([short, street, long_], ("plaza",)) is long_
    assert demo.pick_scenario([short, long_, street], ("street",)) is street
    assert demo.pick_scenario([short, street], ("plaza-reframed",)) is street  # none preferred
    assert demo.pick_scenario([short, drawn("plaza", (0.0, 5.0))], ("plaza",)) is short


@pytest.mark.unit
def test_without_the_detector_the_room_says_how_to_get_it(tmp_path: Path) -> None:
    footage = write_footage(tmp_path / "footage.mp4", frames=3)
    with pytest.raises(demo.DemoAssetError, match="argus models pull"):
        demo.prepare_demo(footage, tmp_path / "home", say=lambda _: None)
    assert not (tmp_path / "home" / "demo").exists()  # nothing half made
