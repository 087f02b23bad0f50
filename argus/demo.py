"""``argus demo``: a control room of live cameras, most of them quiet, and its sign-ins.

The cameras (all files played at real speed and looped, so they behave as live ones):

* ``plaza`` — the bundled footage (people walking through a plaza): busy all the time,
  with a zone, a line and four rules.
* two *quiet twins* of it — the same plaza with nobody in it: the median of frames
  sampled across the footage, with fresh sensor noise on every frame and a slow light
  drift (a real camera's picture is never frozen), one framed as the footage, one
  re-framed (cropped, scaled, mirrored) and a little darker.  They have real rules
  (intrusion, loitering, camera health) and stay quiet.
* three scenes of the accuracy benchmark's generator (``benchmarks/accuracy``: real
  people cut out of the footage, composited on real backgrounds): someone loitering,
  an object left behind, a fall — each with the rule its story exercises and camera
  health, and a quiet stretch after the story, so each is quiet about half the time.

The videos are made once under ``$ARGUS_HOME/demo/`` (H.264 ``.mp4``, written to a temporary
file then renamed) and reused while their fingerprint (this module's asset version and
parameters, the footage, the generator's source and the detector's hash) is unchanged.

Two users are (re)created at each start with fresh random passwords, printed once: an
admin (every camera, users, rules) and an operator (the cameras of groups ``north`` and
``south``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from argus.config import ArgusConfig, parse_config

if TYPE_CHECKING:
    from benchmarks.accuracy.scenarios import Scenario
    from benchmarks.accuracy.sprites import SpriteBank

U8 = npt.NDArray[np.uint8]
Say = Callable[[str], None]

ASSETS_VERSION = "demo-assets-1"
"""Part of every fingerprint: bump when the code that makes the videos changes (the
constants below and the generator's source are in the fingerprints already)."""

DEMO_DIR = "demo"
"""Folder of the demo's videos under ``$ARGUS_HOME``."""

FPS = 10
GOP_FRAMES = 20
"""A keyframe every 2 s: a quiet camera is then decoded at its keyframes only."""
CRF = 23

MEDIAN_STEP = 10
"""The twins' (and sprites') empty background: median of every 10th frame of the footage."""

TWIN_S = 20.0
"""Length of a twin's loop, seconds."""
TWIN_NOISE_SIGMA = 2.5
"""Sensor noise of the twins, grey levels (the generator's scenes use 1.8..3.2)."""
TWIN_CRF = 20
TWIN_TUNE = "grain"
"""x264 quality and tuning of the twins.  At the scenes' CRF 23 without tuning the
encoder smooths the noise away between keyframes: consecutive frames then differ by
~0.001 grey levels on the scene analyser's thumbnail, under its 0.05 'frozen' limit
(only the keyframes every 2 s keep the camera-health rule from calling it frozen).  With
film-grain tuning at CRF 20 every frame differs (~0.3 on the footage's twins, and on a
flatter synthetic scene where CRF 23 with grain still drops to 0.01)."""
TWIN_DRIFT = 0.015
"""Slow light drift of the twins: gain 1 +- this, one period per loop (seamless)."""

SCENE_SEED = 11
"""Seed of the generated scenes (the accuracy suite's ``--seed``)."""
SCENE_TAIL_S = 25.0
"""Quiet seconds after a generated scene's story, before it loops."""
SPRITE_FRAMES = 160
"""Frames of the footage (from its start) the demo's walk-cycle sprites are cut from:
about ten walk cycles, enough people for three scenes, in ~5 s of detection on two
cores instead of ~25 s for all 795 frames (the accuracy suite's full bank)."""
MAX_INDEX = 8
"""Scenarios drawn per scene (numbers 1..8 of the suite's seed), the one to play picked
by :func:`pick_scenario`."""

GROUPS = ("north", "south")

PLAZA_ZONE = [[330, 180], [560, 180], [640, 330], [380, 330]]
PLAZA_LINE = [[300, 250], [700, 250]]

# The twins' geometry, in the footage's pixels (768x576): the big lawn in front, the
# car park behind the hedge, the service yard by the vans.
LAWN = [[10, 262], [330, 318], [470, 390], [560, 470], [560, 566], [10, 566]]
CAR_PARK = [[2, 142], [330, 152], [300, 206], [2, 200]]
YARD = [[372, 166], [455, 124], [590, 130], [600, 150], [520, 195], [400, 190]]

REFRAME_X0, REFRAME_Y0 = 96, 72
"""The re-framed twin: the footage cropped from here to its bottom-right corner, scaled
back to 768x576 and mirrored (as the accuracy suite's ``plaza-reframed``)."""
FRAME_W, FRAME_H = 768, 576


@dataclass(frozen=True, slots=True)
class DemoCamera:
    """One camera of the control room.

    Attributes:
        id: Camera id.
        source: Its video file.
        groups: Camera groups (who may see its alerts).
        what: One line saying what it shows (printed at start).
        zones: Zone name -> polygon, pixels.
        lines: Line name -> two points, pixels.
        rules: Its rules, without the ``camera`` key.
    """

    id: str
    source: str
    groups: tuple[str, ...]
    what: str
    zones: dict[str, list[list[float]]] = field(default_factory=dict)
    lines: dict[str, list[list[float]]] = field(default_factory=dict)
    rules: tuple[dict[str, Any], ...] = ()

    def camera_config(self) -> dict[str, Any]:
        """The camera's entry of the config (played live and looped)."""
        cam: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "realtime": True,
            "loop": True,
            "groups": list(self.groups),
        }
        if self.zones:
            cam["zones"] = [{"name": n, "polygon": p} for n, p in self.zones.items()]
        if self.lines:
            cam["lines"] = [{"name": n, "points": p} for n, p in self.lines.items()]
        return cam

    def rule_configs(self) -> list[dict[str, Any]]:
        """Its rules with ``camera`` set."""
        return [{**r, "camera": self.id} for r in self.rules]


class DemoAssetError(RuntimeError):
    """A demo video could not be made (the message says why)."""


# ----------------------------------------------------------------------------- cameras


def plaza_camera(footage: Path) -> DemoCamera:
    """The bundled footage: a zone, a line and four rules (intrusion per person, crowding,
    line crossing, camera health)."""
    return DemoCamera(
        id="plaza",
        source=str(footage),
        groups=GROUPS,
        what=f"{footage.name} (people walking through)",
        zones={"crossing": [list(p) for p in PLAZA_ZONE]},
        lines={"gate": [list(p) for p in PLAZA_LINE]},
        rules=(
            {
                "type": "intrusion",
                "zone": "crossing",
                "classes": ["person"],
                "min_dwell_s": 0.5,
                "severity": 60,
                "alert_per": "object",
            },
            {"type": "crowding", "zone": "crossing", "min_count": 4, "min_duration_s": 3},
            {"type": "line_crossing", "line": "gate"},
            {"type": "camera_health"},
        ),
    )


@dataclass(frozen=True, slots=True)
class TwinSpec:
    """A quiet twin: the footage's empty background, framed and lit its way."""

    id: str
    groups: tuple[str, ...]
    reframed: bool
    gain: float
    seed: int
    what: str

    def geometry(self, poly: Sequence[Sequence[float]]) -> list[list[float]]:
        """``poly`` (footage pixels) in this twin's pixels."""
        if not self.reframed:
            return [[float(x), float(y)] for x, y in poly]
        s = FRAME_W / (FRAME_W - REFRAME_X0)
        out = []
        for x, y in poly:
            xr = FRAME_W - 1 - (x - REFRAME_X0) * s
            yr = (y - REFRAME_Y0) * s
            out.append([round(min(max(xr, 0.0), FRAME_W - 1.0), 1), round(max(yr, 0.0), 1)])
        return out


TWINS = (
    TwinSpec("lawn", ("north",), False, 1.0, 1, "the plaza, nobody there"),
    TwinSpec("car-park", ("south",), True, 0.85, 2, "the plaza re-framed, nobody there"),
)


def twin_camera(spec: TwinSpec, video: Path) -> DemoCamera:
    """A twin's camera: intrusion on the lawn, loitering in the car park and the yard,
    camera health."""
    return DemoCamera(
        id=spec.id,
        source=str(video),
        groups=spec.groups,
        what=spec.what,
        zones={
            "lawn": spec.geometry(LAWN),
            "car-park": spec.geometry(CAR_PARK),
            "yard": spec.geometry(YARD),
        },
        rules=(
            {
                "type": "intrusion",
                "zone": "lawn",
                "classes": ["person"],
                "min_dwell_s": 2.0,
                "severity": 70,
            },
            {"type": "loitering", "zone": "car-park", "classes": ["person"], "min_dwell_s": 20},
            {"type": "loitering", "zone": "yard", "classes": ["person"], "min_dwell_s": 20},
            {"type": "camera_health"},
        ),
    )


@dataclass(frozen=True, slots=True)
class SceneSpec:
    """A scene of the accuracy suite's generator played as a camera.

    Attributes:
        id: Camera id.
        kind: Scenario kind (``benchmarks.accuracy.scenarios.KINDS``).
        kwargs: Generator arguments (e.g. the abandoned-object story).
        backgrounds: Backgrounds preferred (see :func:`pick_scenario`).
        groups: Camera groups.
    """

    id: str
    kind: str
    kwargs: tuple[tuple[str, str], ...]
    backgrounds: tuple[str, ...]
    groups: tuple[str, ...]


# Each plays its story, then SCENE_TAIL_S of nobody: quiet half the time or more.  The
# fall is played on the footage's own view: the detector, whose people were cut out of
# that view, finds them lying there best (a fall drawn on the Leuven street was missed
# in a trial run).
SCENES = (
    SceneSpec("courtyard", "loitering", (), ("plaza-reframed",), ("south",)),
    SceneSpec("drop-off", "abandoned_object", (("story", "left"),), ("plaza",), ("north",)),
    SceneSpec("footpath", "fall", (), ("plaza",), ("south",)),
)


def demo_dir(home: Path) -> Path:
    """Where the demo's videos live."""
    return home / DEMO_DIR


def twin_path(home: Path, spec: TwinSpec) -> Path:
    """The video file of a twin."""
    return demo_dir(home) / f"twin-{spec.id}.mp4"


# ------------------------------------------------------------------------ fingerprints


def fingerprint(parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def footage_identity(footage: Path) -> dict[str, Any]:
    """Path, size and modification time of the footage (part of the fingerprints)."""
    st = footage.stat()
    return {"path": str(footage.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar(video: Path) -> Path:
    return video.with_name(video.name + ".json")


def is_fresh(video: Path, fp: str) -> bool:
    """Whether ``video`` exists and was made for fingerprint ``fp``."""
    try:
        meta = json.loads(_sidecar(video).read_text())
    except (OSError, ValueError):
        return False
    return video.is_file() and isinstance(meta, dict) and meta.get("fingerprint") == fp


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def encode(
    frames: Iterable[U8],
    path: Path,
    fp: str,
    *,
    fps: int = FPS,
    crf: int = CRF,
    tune: str | None = None,
) -> int:
    """Encode BGR frames to H.264 ``path`` (a temporary file, then renamed), then its
    fingerprint sidecar; returns the number of frames.  ``crf``: x264's quality (lower is
    better); ``tune``: its tuning, e.g. ``"grain"`` (keeps sensor noise in every frame
    rather than smoothing it away between keyframes).

    Raises:
        DemoAssetError: No frames.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    n = 0
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps, 1))
            stream.pix_fmt = "yuv420p"
            options: dict[str, object] = {
                "crf": str(crf),
                "preset": "veryfast",
                "g": str(GOP_FRAMES),
                "keyint_min": str(GOP_FRAMES),
                "sc_threshold": "0",
            }
            if tune is not None:
                options["tune"] = tune
            stream.options = options
            tb = Fraction(1, fps)
            for img in frames:
                if n == 0:
                    stream.height, stream.width = int(img.shape[0]), int(img.shape[1])
                vf = av.VideoFrame.from_ndarray(img, format="bgr24")
                vf.pts = n
                vf.time_base = tb
                for packet in stream.encode(vf):
                    container.mux(packet)
                n += 1
            if n == 0:
                raise DemoAssetError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    _write_atomic(_sidecar(path), json.dumps({"fingerprint": fp, "frames": n}) + "\n")
    return n


# ------------------------------------------------------------------------------- twins


def read_footage(footage: Path, first: int = 0, step: int = MEDIAN_STEP) -> tuple[list[U8], U8]:
    """The first ``first`` frames of ``footage`` and the median of every ``step``-th
    frame of all of it (its empty background), BGR uint8.

    Raises:
        DemoAssetError: The footage cannot be read.
    """
    import cv2

    cap = cv2.VideoCapture(str(footage))
    head: list[U8] = []
    sampled: list[U8] = []
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i < first:
                head.append(np.ascontiguousarray(frame))
            if i % step == 0:
                sampled.append(np.ascontiguousarray(frame))
            i += 1
    finally:
        cap.release()
    if len(sampled) < 3:
        raise DemoAssetError(f"cannot read enough frames from {footage} ({i})")
    median: U8 = np.median(np.stack(sampled), axis=0).astype(np.uint8)
    return head, median


def reframe(image: U8) -> U8:
    """The re-framed view of a footage-sized picture (crop, scale back, mirror)."""
    import cv2

    h, w = image.shape[:2]
    crop = image[REFRAME_Y0:, REFRAME_X0:]
    out = cv2.flip(cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC), 1)
    return np.ascontiguousarray(out, dtype=np.uint8)


def twin_frames(
    background: U8,
    *,
    seconds: float = TWIN_S,
    fps: int = FPS,
    gain: float = 1.0,
    sigma: float = TWIN_NOISE_SIGMA,
    drift: float = TWIN_DRIFT,
    seed: int = 0,
) -> Iterator[U8]:
    """An empty scene as a live camera sees it: ``background`` with fresh Gaussian sensor
    noise every frame (shifted windows of a few pre-drawn fields) and a slow light drift
    of one period per loop, so the loop has no seam and no two frames are equal."""
    rng = np.random.default_rng(seed)
    h, w = background.shape[:2]
    pad = 24
    bank = (rng.standard_normal((3, h + pad, w + pad, 3), dtype=np.float32) * sigma).astype(
        np.float32
    )
    base = background.astype(np.float32) * np.float32(gain)
    n = round(seconds * fps)
    for k in range(n):
        g = np.float32(1.0 + drift * math.sin(2.0 * math.pi * k / n))
        i = int(rng.integers(0, len(bank)))
        dy, dx = (int(v) for v in rng.integers(0, pad, 2))
        frame = base * g + bank[i, dy : dy + h, dx : dx + w]
        yield np.clip(frame, 0, 255).astype(np.uint8)


def twin_fingerprint(footage: Path, spec: TwinSpec) -> str:
    """What a twin's video depends on."""
    return fingerprint(
        {
            "version": ASSETS_VERSION,
            "footage": footage_identity(footage),
            "twin": dataclasses.asdict(spec),
            "params": [
                FPS,
                GOP_FRAMES,
                TWIN_CRF,
                MEDIAN_STEP,
                TWIN_S,
                TWIN_NOISE_SIGMA,
                TWIN_TUNE,
                TWIN_DRIFT,
            ],
        }
    )


def make_twins(
    footage: Path, home: Path, *, median: U8 | None = None, say: Say = print
) -> list[DemoCamera]:
    """The twins' cameras, their videos made (or reused when fresh)."""
    cams = []
    for spec in TWINS:
        video = twin_path(home, spec)
        fp = twin_fingerprint(footage, spec)
        if not is_fresh(video, fp):
            if median is None:
                _, median = read_footage(footage)
            t = time.monotonic()
            bg = reframe(median) if spec.reframed else median
            frames = twin_frames(bg, gain=spec.gain, seed=spec.seed)
            n = encode(frames, video, fp, crf=TWIN_CRF, tune=TWIN_TUNE)
            say(f"  {video.name}: {n} frames in {time.monotonic() - t:.1f} s")
        cams.append(twin_camera(spec, video))
    return cams


# ------------------------------------------------------------------------------ scenes


def generator_available() -> bool:
    """Whether the accuracy suite's generator (``benchmarks/accuracy``, in the repository
    next to this package) can be imported; puts the repository on ``sys.path`` if needed."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "accuracy" / "scenarios.py").is_file():
        return False
    if str(root) not in sys.path:
        sys.path.append(str(root))
    try:
        import benchmarks.accuracy.scenarios  # noqa: F401
    except ImportError:
        return False
    return True


def generator_sources() -> str:
    """Hash of the generator's source files (a change of the generator remakes the scenes)."""
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy"
    h = hashlib.sha256()
    for name in ("assets.py", "render.py", "scenarios.py", "sprites.py", "truth.py"):
        h.update(name.encode())
        h.update((root / name).read_bytes())
    return h.hexdigest()[:16]


def scenes_fingerprint(footage: Path, model_sha: str) -> str:
    """What the generated scenes depend on."""
    return fingerprint(
        {
            "version": ASSETS_VERSION,
            "footage": footage_identity(footage),
            "model": model_sha,
            "generator": generator_sources(),
            "scenes": [dataclasses.asdict(s) for s in SCENES],
            "params": [FPS, GOP_FRAMES, CRF, SCENE_SEED, SCENE_TAIL_S, SPRITE_FRAMES, MAX_INDEX],
        }
    )


def manifest_path(home: Path) -> Path:
    """The generated scenes' description (geometry, rules, story)."""
    return demo_dir(home) / "scenes.json"


def scene_camera(entry: dict[str, Any], home: Path) -> DemoCamera:
    """A generated scene's camera, from its manifest entry."""
    return DemoCamera(
        id=str(entry["id"]),
        source=str(demo_dir(home) / str(entry["video"])),
        groups=tuple(entry["groups"]),
        what=str(entry["what"]),
        zones=dict(entry["zones"]),
        lines=dict(entry["lines"]),
        rules=tuple([*entry["rules"], {"type": "camera_health"}]),
    )


def stored_scenes(home: Path, fp: str | None = None) -> list[DemoCamera]:
    """The generated scenes' cameras from the manifest (those whose video exists), or none;
    with ``fp``, only if made for that fingerprint."""
    try:
        data = json.loads(manifest_path(home).read_text())
        entries = data["scenes"]
        if fp is not None and data.get("fingerprint") != fp:
            return []
        cams = [scene_camera(e, home) for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if fp is not None and not all(
        is_fresh(Path(c.source), fp) for c in cams
    ):  # a video lost or half made
        return []
    return [c for c in cams if Path(c.source).is_file()]


def sprite_bank(footage: Path, home: Path, head: list[U8], median: U8) -> SpriteBank:
    """Walk-cycle sprites of the people in ``head`` (the footage's first frames), cut out by
    the accuracy suite's own extraction (real detector and tracker)."""
    from benchmarks.accuracy import sprites

    tracks = sprites.track_footage(head, home)
    seqs = sprites.extract_sequences(head, median, tracks)
    if len(seqs) < 4:
        raise DemoAssetError(f"only {len(seqs)} clean sprite sequences in {footage}")
    return sprites.SpriteBank(seqs, sprites.fit_perspective(seqs), median, "demo")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def pick_scenario(drawn: Sequence[Scenario], backgrounds: Sequence[str]) -> Scenario:
    """The scenario to play among ``drawn``: on one of ``backgrounds`` if any is, and of
    those the one whose incident lasts longest (its alert survives a track lost for a
    moment, or a frame or two dropped on a busy machine); the first of equals."""
    preferred = [s for s in drawn if s.background in backgrounds] or list(drawn)
    return max(preferred, key=lambda s: max((g.end_s - g.start_s for g in s.gt), default=0.0))


def make_scenes(
    footage: Path,
    home: Path,
    *,
    model_sha: str,
    head: list[U8],
    median: U8,
    say: Say = print,
) -> list[DemoCamera]:
    """Generate, render and encode the scenes of :data:`SCENES`; write the manifest."""
    from benchmarks.accuracy.assets import backgrounds, object_patches
    from benchmarks.accuracy.render import Effects, render_frames, simulate
    from benchmarks.accuracy.scenarios import GenerationError, generate

    fp = scenes_fingerprint(footage, model_sha)
    t = time.monotonic()
    bank = sprite_bank(footage, home, head, median)
    bgs = backgrounds(bank)
    patches = object_patches(bank)
    say(f"  sprites: {len(bank.sequences)} walk cycles in {time.monotonic() - t:.1f} s")
    entries = []
    for spec in SCENES:
        t = time.monotonic()
        drawn: list[Scenario] = []
        for index in range(1, MAX_INDEX + 1):
            try:
                drawn.append(
                    generate(
                        spec.kind, index, SCENE_SEED, bank, bgs, patches, True, **dict(spec.kwargs)
                    )
                )
            except GenerationError:
                continue
        if not drawn:
            raise DemoAssetError(f"the generator told no {spec.kind} story")
        scn = pick_scenario(drawn, spec.backgrounds)
        # The story, then a quiet stretch (the people gone; a left object stays), noise
        # only (cloud shadows would jump where the video loops).
        bg = bgs[scn.background]
        sim = simulate(scn.actors, scn.objects, bank, bg, patches, scn.duration_s + SCENE_TAIL_S)
        effects = Effects(noise_sigma=scn.effects.noise_sigma)
        frames = render_frames(sim, scn.actors, scn.objects, bank, bg, patches, effects, scn.seed)
        video = demo_dir(home) / f"scene-{spec.id}.mp4"
        n = encode(frames, video, fp)
        events = ", ".join(f"{g.type} at {g.start_s:.0f} s" for g in scn.gt)
        what = f"{spec.kind.replace('_', ' ')}: {scn.variant} on {scn.background}"
        say(f"  {video.name}: {what}, {n} frames ({events}) in {time.monotonic() - t:.1f} s")
        entries.append(
            {
                "id": spec.id,
                "video": video.name,
                "groups": list(spec.groups),
                "what": f"{what} ({events}; loops every {n / FPS:.0f} s)",
                "zones": _plain(scn.zones),
                "lines": _plain(scn.lines),
                "rules": _plain(scn.rules),
                "scenario": scn.name,
                "gt": [_plain(g.to_dict()) for g in scn.gt],
            }
        )
    _write_atomic(
        manifest_path(home),
        json.dumps({"fingerprint": fp, "scenes": entries}, indent=1) + "\n",
    )
    return [scene_camera(e, home) for e in entries]


# ----------------------------------------------------------------------------- the room


def prepare_demo(
    footage: Path, home: Path, *, remake: bool = False, say: Say = print
) -> list[DemoCamera]:
    """Every camera of the control room, its videos made first if missing or stale.

    Raises:
        DemoAssetError: A video could not be made, or the detector (it cuts the scenes'
            people out of the footage) is not installed.
        models.registry.ModelError: The detector's manifest is unreadable.
    """
    twins_fresh = not remake and all(
        is_fresh(twin_path(home, s), twin_fingerprint(footage, s)) for s in TWINS
    )
    scenes: list[DemoCamera] = []
    scenes_fp: str | None = None
    model_sha = ""
    have_generator = generator_available()
    if have_generator:
        from benchmarks.accuracy.sprites import ModelMissingError, model_paths

        try:
            _, model_sha = model_paths(home)
        except ModelMissingError as e:
            raise DemoAssetError(str(e)) from e
        scenes_fp = scenes_fingerprint(footage, model_sha)
        scenes = [] if remake else stored_scenes(home, scenes_fp)
    scenes_fresh = not have_generator or bool(scenes)
    if twins_fresh and scenes_fresh:
        twins = make_twins(footage, home, say=say)
    else:
        t0 = time.monotonic()
        say(
            f"demo: making the control room's videos in {demo_dir(home)} "
            "(about half a minute, once: reused at the next start)"
        )
        if remake:
            for spec in TWINS:
                _sidecar(twin_path(home, spec)).unlink(missing_ok=True)
        head, median = read_footage(footage, 0 if scenes_fresh else SPRITE_FRAMES)
        twins = make_twins(footage, home, median=median, say=say)
        if not scenes_fresh:
            scenes = make_scenes(
                footage, home, model_sha=model_sha, head=head, median=median, say=say
            )
        say(f"demo: videos made in {time.monotonic() - t0:.1f} s")
    if not have_generator:
        say(
            "demo: the accuracy suite's generator (benchmarks/accuracy) is not here; "
            "playing the footage and its quiet twins only"
        )
    return [plaza_camera(footage), *twins, *scenes]


def demo_cameras(footage: Path, home: Path) -> list[DemoCamera]:
    """The control room's cameras as configured, without making anything: the plaza, the
    twins (their videos may not exist yet) and the scenes generated before, if any."""
    twins = [twin_camera(s, twin_path(home, s)) for s in TWINS]
    return [plaza_camera(footage), *twins, *stored_scenes(home)]


def demo_config(
    footage: Path, home: Path, cameras: Sequence[DemoCamera] | None = None
) -> ArgusConfig:
    """The demo's config: ``cameras`` (default :func:`demo_cameras`) played live and
    looped, their rules, a JSON-lines sink, a clip per alert."""
    cams = list(demo_cameras(footage, home) if cameras is None else cameras)
    data = {
        "cameras": [c.camera_config() for c in cams],
        "rules": [r for c in cams for r in c.rule_configs()],
        "sinks": [{"jsonl": str(home / "demo-events.jsonl")}],
        # a clip per alert; on a small machine, people are found on every 2nd frame
        "evidence": {"clips": {"mask_detect_every": 2}},
    }
    return parse_config(data, "<demo>")


def describe(cameras: Sequence[DemoCamera]) -> str:
    """The start banner's camera lines."""
    width = max(len(c.id) for c in cameras)
    lines = []
    for c in cameras:
        rules = ", ".join(sorted({str(r["type"]) for r in c.rules}))
        lines.append(f"  {c.id:<{width}}  [{', '.join(c.groups)}]  {c.what}")
        lines.append(f"  {'':<{width}}  rules: {rules}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- users

DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("admin", "admin", list(GROUPS)),
    ("operator", "operator", list(GROUPS)),
)
"""(name, role, camera groups) of the users the demo signs in."""


def sign_in(store: Any, name: str, role: str, groups: Sequence[str]) -> str:
    """Make ``name`` a ``role`` of ``groups`` (enabled) with a new random password; the
    password.  For the demo only: it is printed, so it is new at every start."""
    from alerts.api.security import Passwords
    from alerts.store import ROLES

    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    password = secrets.token_urlsafe(12)
    hashed = Passwords().hash(password)
    now = time.time()
    if store.get_user(name) is None:
        store.add_user(name, role=role, groups=list(groups), password_hash=hashed, now=now)
    else:
        store.update_user(
            name, now=now, role=role, groups=list(groups), disabled=False, password_hash=hashed
        )
    return password


RETIRED_USERS = ("demo",)
"""Users earlier demos made (an admin whose password was printed at each start): disabled
when found, so an old terminal's scrollback opens nothing."""


def retire_old_users(store: Any) -> list[str]:
    """Disable the earlier demos' users still enabled in ``store``; their names."""
    retired = []
    for name in RETIRED_USERS:
        user = store.get_user(name)
        if user is not None and not user.disabled:
            store.update_user(name, now=time.time(), disabled=True)
            retired.append(name)
    return retired


def sign_in_block(store: Any, users: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """Sign every user in (see :func:`sign_in`), after disabling the earlier demos' users
    (:func:`retire_old_users`); the lines that tell them how, once."""
    retire_old_users(store)
    rows = []
    for name, role, groups in users:
        password = sign_in(store, name, role, groups)
        if role == "admin":
            scope = "admin: every camera, users, rules"
        else:
            scope = f"{role}: the cameras of groups {', '.join(groups)}"
        rows.append((f"{name} / {password}", scope))
    width = max(len(who) for who, _ in rows)
    lines = [
        f"{'Sign in as:' if i == 0 else '':<15}{who:<{width}}   ({scope})"
        for i, (who, scope) in enumerate(rows)
    ]
    return "\n".join(lines)
