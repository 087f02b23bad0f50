"""Activity-driven decoding (``ingest.activity``): the thinning logic on scripted packets,
and ``FileSource`` on real H.264 (B-frames, 1 s GOP) and long-GOP MPEG-4 clips, whose
frames after a wake must be the very frames a full decode gives."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from detectors.detections import Detections
from detectors.gating import MotionGate
from detectors.scene import SceneStats
from ingest import ActivityControl, FileSource
from ingest.activity import FLUSH, MAX_GOP_PACKETS, Thinner
from tests.factories import write_clip
from tests.unit.test_runner import NAMES, make_runner

pytestmark = pytest.mark.unit

TB = Fraction(1, 1000)


@dataclass
class Pkt:
    """A scripted packet: pts in ms."""

    pts: int | None
    is_keyframe: bool
    dts: int | None = None
    time_base: Fraction | None = TB


def stream(n: int, gop: int, fps: float = 10.0) -> list[Pkt]:
    """``n`` packets at ``fps``, a keyframe every ``gop`` packets."""
    return [Pkt(round(i * 1000 / fps), i % gop == 0) for i in range(n)]


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, k: int) -> None:
        self.n += k


def run(
    packets: list[Pkt],
    control: ActivityControl,
    script: Callable[[int, ActivityControl], None] = lambda i, c: None,
) -> tuple[list[list[int]], list[bool], Counter]:
    """Admit each packet (calling ``script(i, control)`` first); returns the indices
    decoded per packet, the drain flags, and the thinned counter."""
    thinned = Counter()
    th = Thinner(control, TB, thinned)
    index = {id(p): i for i, p in enumerate(packets)}
    fed: list[list[int]] = []
    drains: list[bool] = []
    for i, p in enumerate(packets):
        script(i, control)
        todo, drain = th.admit(p)
        fed.append([index[id(q)] for q in todo])
        drains.append(drain)
    return fed, drains, thinned


def test_control_validates_and_rest_before_a_later_wake_is_ignored() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        ActivityControl(interval_s=0.0)
    with pytest.raises(ValueError, match="keyframe_max_s"):
        ActivityControl(keyframe_max_s=float("nan"))
    c = ActivityControl()
    assert not c.quiet
    c.rest(1.0)
    assert c.quiet and c.rests == 1
    c.wake(2.0)
    assert not c.quiet and c.wakes == 1
    c.rest(1.9)  # judged on a frame older than the wake: stays awake
    assert not c.quiet
    c.rest(2.0)
    assert c.quiet and c.rests == 2


def test_no_control_decodes_everything() -> None:
    th = Thinner(None, TB, Counter())
    p = Pkt(0, False)
    assert th.admit(p) == ((p,), False)
    assert th.keep(0.0) and th.keep(0.0)


def test_quiet_with_regular_keyframes_decodes_keyframes_alone_and_drains() -> None:
    packets = stream(60, gop=10)  # a keyframe every 1.0 s
    c = ActivityControl(keyframe_max_s=2.0)
    c.rest(0.0)
    fed, drains, thinned = run(packets, c)
    # the first two GOPs measure the keyframe interval: decoded in full
    assert [i for f in fed[:20] for i in f] == list(range(20))
    # then keyframes only, each drained from the decoder at once
    assert fed[20:] == [[i] if i % 10 == 0 else [] for i in range(20, 60)]
    assert [i for i, d in enumerate(drains) if d] == [20, 30, 40, 50]
    assert thinned.n == 36  # 4 GOPs of 9 skipped packets, counted as they are skipped


def test_a_wake_inside_a_skipped_gop_decodes_it_again_from_its_keyframe() -> None:
    packets = stream(50, gop=10)
    c = ActivityControl(keyframe_max_s=2.0)
    c.rest(0.0)

    def script(i: int, ctl: ActivityControl) -> None:
        if i == 34:
            ctl.wake(3.4)

    fed, _, thinned = run(packets, c, script)
    assert fed[30] == [30] and fed[31:34] == [[], [], []]
    assert fed[34] == [30, 31, 32, 33, 34]  # the GOP again, the current packet last
    assert fed[35:] == [[i] for i in range(35, 50)]
    assert thinned.n == 9  # the GOP of 20; 31..33 were counted, then decoded after all

    th = Thinner(c, TB, Counter())
    th._catching_up, th._last_kept = True, 3.0  # the catch-up filter
    assert not th.keep(3.0)  # keyframe 30 delivered before the wake: not again
    assert th.keep(3.1) and th.keep(3.2)


def test_long_gops_thin_frames_at_the_interval_but_decode_every_packet() -> None:
    packets = stream(100, gop=200)  # vtest: a keyframe every 20 s
    c = ActivityControl(interval_s=0.5)
    c.rest(0.0)
    fed, drains, _ = run(packets, c)
    assert fed == [[i] for i in range(100)] and not any(drains)
    thinned = Counter()
    th = Thinner(c, TB, thinned)
    kept = [t / 10 for t in range(100) if th.keep(t / 10)]
    assert kept == pytest.approx([t * 0.5 for t in range(20)])
    assert thinned.n == 80
    c.wake(10.0)
    assert all(th.keep(10.0 + t / 10) for t in range(1, 5))


def test_all_intra_streams_admit_one_keyframe_per_interval() -> None:
    packets = [Pkt(i * 40, True) for i in range(100)]  # MJPEG: 25 fps, every frame a key
    c = ActivityControl(interval_s=0.5)
    c.rest(0.0)
    fed, _, thinned = run(packets, c)
    decoded = [f[0] for f in fed if f]
    assert decoded[:3] == [0, 1, 2]  # the interval is learnt first
    tail = [i for i in decoded if i >= 3]
    assert all(b - a == 13 for a, b in itertools.pairwise(tail)), tail  # 0.52 s
    assert thinned.n == 100 - len(decoded)


# ------------------------------------------------------------------ real clips
def drifting_clip(path: Path, codec: str, gop: int, n: int = 60, fps: int = 10) -> Path:
    """A 160x120 clip of a drifting noise texture (inter prediction matters); H.264 with
    two B-frames."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 255, (120, 400, 3), dtype=np.uint8)
    frames = (texture[:, i * 3 : i * 3 + 160] for i in range(n))
    options = {"bf": "2"} if codec == "libx264" else None
    return write_clip(path, frames, codec=codec, fps=fps, gop=gop, options=options)


def digest(a: np.ndarray) -> str:
    return hashlib.sha1(a.tobytes(), usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(
    ("codec", "gop", "quiet_times"),
    [
        ("libx264", 10, [2.0, 3.0, 4.0]),  # keyframes only
        ("mpeg4", 600, [2.0, 2.5, 3.0, 3.5, 4.0]),  # one frame per 0.5 s
    ],
)
def test_file_source_thins_while_quiet_and_wakes_without_losing_a_frame(
    tmp_path: Path, codec: str, gop: int, quiet_times: list[float]
) -> None:
    """Quiet from the frame at 2.0 s, woken by the frame at 4.0 s."""
    path = drifting_clip(tmp_path / f"clip-{codec}.mp4", codec, gop)
    full = {
        round(f.pts_s, 3): digest(f.image) for f in FileSource("f", path, realtime=False).frames()
    }
    assert len(full) == 60
    c = ActivityControl(interval_s=0.5, keyframe_max_s=2.0)
    src = FileSource("t", path, realtime=False, activity=c, decode_threads=1)
    times: list[float] = []
    for f in src.frames():
        t = round(f.pts_s, 3)
        assert full[t] == digest(f.image), t  # the very picture a full decode gives
        times.append(t)
        if 2.0 <= t < 4.0:
            c.rest(t)
        else:
            c.wake(t)
    assert times == sorted(set(times))
    # quiet from 2.0 s: sparse frames only; the wake at 4.0 s restores every frame after
    quiet = [t for t in times if 2.0 <= t <= 4.0]
    # plus, with B-frames, the frames the decoder held for reordering when the camera went
    # quiet (correct pictures, given out with the next keyframe)
    assert set(quiet_times) <= set(quiet) and len(quiet) <= len(quiet_times) + 2, quiet
    woke = [t for t in times if t > 4.0]
    assert woke == [round(4.0 + i / 10, 3) for i in range(1, 20)]
    assert len(times) + src.stats().frames_thinned == 60
    assert [t for t in times if t < 2.0] == [round(i / 10, 3) for i in range(20)]


# ------------------------------------------------------------------ look-back
def test_a_keyframe_that_moves_is_taken_back_and_the_gop_before_it_replayed() -> None:
    """Quiet with 1 s GOPs: one frame per 0.5 s while the GOP length is learnt, then
    keyframes alone (20, 30); 30 moves and is taken back, so the next admit decodes GOP
    20..29 and keyframe 30 again before packet 31; ``keep`` gives 21..31 (20 was delivered
    already) and the thinned count gives those frames back."""
    packets = stream(60, gop=10)
    c = ActivityControl(keyframe_max_s=2.0)
    thinned = Counter()
    th = Thinner(c, TB, thinned)
    delivered: list[float] = []
    fed: list[list[int]] = []
    index = {id(p): i for i, p in enumerate(packets)} | {id(FLUSH): -1}
    for p in packets:
        todo, _ = th.admit(p)
        fed.append([index[id(q)] for q in todo])
        for q in todo:  # a decoder without delay: a frame per packet, in order
            if q is FLUSH:
                continue
            t = index[id(q)] / 10
            if th.keep(t, t):
                delivered.append(t)
                if t < 3.0:
                    c.rest(t)
                elif t == 3.0 and len(delivered) == 6:  # the first time 30 is delivered
                    assert c.can_look_back()
                    assert c.look_back(3.0)
                    assert c.taken_back() and not c.taken_back()  # once
                    delivered.pop()  # the consumer drops it
                else:
                    c.wake(t)
    assert fed[20] == [20] and fed[21:30] == [[]] * 9 and fed[30] == [30]
    assert fed[31] == [-1, *range(20, 32)]  # the decoder reset, GOP 20 again, then 31
    assert delivered == [0.0, 0.5, 1.0, 1.5, 2.0, *[i / 10 for i in range(21, 60)]]
    assert c.look_backs == 1 and c.wakes == 1
    # 8 frames each of GOPs 0 and 10 stay thinned; those of GOP 20 were delivered after all
    assert thinned.n == 16


def test_look_back_is_offered_while_the_packets_since_the_last_frame_are_held() -> None:
    packets = stream(40, gop=10)
    c = ActivityControl(keyframe_max_s=2.0)
    c.rest(0.0)
    th = Thinner(c, TB, Counter())
    offers: dict[int, bool] = {}
    for i, p in enumerate(packets[:21]):
        for q in th.admit(p)[0]:
            t = round(q.pts / 1000, 3)  # type: ignore[attr-defined]
            if th.keep(t, t):
                offers[i] = c.can_look_back()
    # nothing kept before the first frame; then one frame per 0.5 s (the GOP length is
    # being learnt), each within GOPs held from their keyframes; keyframe 20 decoded alone
    assert offers == {0: False, 5: True, 10: True, 15: True, 20: True}
    th.admit(packets[21])  # the next packet: too late to take 20 back
    assert not c.can_look_back() and not c.look_back(2.0) and c.quiet
    # a GOP too long to hold: no look-back in it
    c2 = ActivityControl(interval_s=0.5)
    c2.rest(0.0)
    th2 = Thinner(c2, TB, Counter())
    for p in stream(MAX_GOP_PACKETS + 20, gop=10_000):
        for q in th2.admit(p)[0]:
            t = round(q.pts / 1000, 3)  # type: ignore[attr-defined]
            if th2.keep(t, t):
                last_offer = c2.can_look_back()
    assert not last_offer


def test_judged_releases_a_waiting_decoder() -> None:
    c = ActivityControl()
    c.rest(1.0)
    assert not c.await_judged(2.0, 0.01)  # nobody judged 2.0: timeout
    c.rest(2.0)
    assert c.await_judged(2.0, 0.01)  # judged (quiet again)
    c.wake(2.5)
    assert c.await_judged(9.0, 0.01)  # awake: no wait
    c.rest(3.0)
    c.release()
    assert c.await_judged(9.0, 0.01)  # the run is stopping


@pytest.mark.parametrize(
    ("codec", "gop", "first_replayed"),
    [
        ("libx264", 10, 2.1),  # keyframes only: from the frame after keyframe 20
        ("mpeg4", 600, 2.6),  # one frame per 0.5 s: from the frame after 2.5 s
    ],
)
def test_file_source_look_back_replays_the_very_frames(
    tmp_path: Path, codec: str, gop: int, first_replayed: float
) -> None:
    """Quiet from 0; the sparse frame at 3.0 s is taken back; the source then delivers
    every frame after the sparse frame before it, pixel-identical to a full decode, in
    order (H.264 with B-frames and a 1 s GOP; MPEG-4 with a 60 s GOP)."""
    path = drifting_clip(tmp_path / f"clip-{codec}.mp4", codec, gop)
    full = {
        round(f.pts_s, 3): digest(f.image) for f in FileSource("f", path, realtime=False).frames()
    }
    c = ActivityControl(interval_s=0.5, keyframe_max_s=2.0)
    src = FileSource("t", path, realtime=False, activity=c, decode_threads=1)
    times: list[float] = []
    for f in src.frames():
        t = round(f.pts_s, 3)
        assert full[t] == digest(f.image), t
        if t == 3.0 and c.quiet:
            assert c.look_back(t)
            continue
        times.append(t)
        if t < 3.0:
            c.rest(t)
        else:
            c.wake(t)
    assert c.look_backs == 1
    assert times == sorted(set(times))
    want = [round(first_replayed + i / 10, 3) for i in range(round((6.0 - first_replayed) * 10))]
    assert [t for t in times if t >= first_replayed - 0.05] == want
    assert len(times) + src.stats().frames_thinned == 60


class IndexScene:
    """Scene measures keyed on the frame's index (its time at 10 fps): motion 0.05 on the
    indices in ``moving``; remembers what it analysed, and honours checkpoint/rollback."""

    def __init__(self, moving: range) -> None:
        self.moving = moving
        self.seen: list[int] = []

    def analyze(self, image: np.ndarray, t_s: float) -> SceneStats:
        i = round(t_s * 10)
        self.seen.append(i)
        return SceneStats(
            motion=0.05 if i in self.moving else 0.0,
            brightness=100.0,
            contrast=30.0,
            sharpness=50.0,
            frame_diff=2.0,
        )

    def checkpoint(self) -> object:
        return list(self.seen)

    def rollback(self, checkpoint: object) -> None:
        assert isinstance(checkpoint, list)
        self.seen = checkpoint


def test_runner_looks_back_so_motion_between_keyframes_is_analysed_from_its_start(
    tmp_path: Path,
) -> None:
    """A real H.264 file (GOP 1 s) through the runner: quiet at first, motion on frames
    25..40.  The keyframe at 30 shows it; it is taken back, frames 21..29 are decoded, and
    the detector sees frame 25, the first that moves, not 30."""
    frames = (np.full((48, 64, 3), 4 * i, np.uint8) for i in range(60))
    path = write_clip(tmp_path / "grey.mp4", frames, codec="libx264", gop=10)
    index = {  # each picture's grey level -> its frame index, from a full decode
        digest(f.image): round(f.pts_s * 10) for f in FileSource("f", path, realtime=False).frames()
    }
    activity = ActivityControl(keyframe_max_s=2.0)
    source = FileSource("a", path, realtime=False, activity=activity, decode_threads=1)
    calls: list[int] = []

    def detect(images: Sequence[np.ndarray]) -> list[Detections]:
        calls.extend(index[digest(img)] for img in images)
        return [Detections.empty(NAMES) for _ in images]

    runner, _ = make_runner(tmp_path, [source], detect)  # type: ignore[list-item]
    cam = runner.cameras[0]
    scene = IndexScene(moving=range(25, 41))
    cam.scene = scene  # type: ignore[assignment]
    cam.gate = MotionGate(min_motion=0.01, heartbeat_s=100.0, hold_s=0.5)
    cam.activity = activity
    assert runner.run().ok
    assert activity.look_backs == 1 and cam.health()["look_backs"] == 1
    assert scene.seen == sorted(set(scene.seen)), str(scene.seen)  # 30 taken back: forgotten
    assert set(range(21, 46)) <= set(scene.seen)  # replayed from the frame after 20
    # quiet before (from the first verdicts, a few frames in): one frame per 0.5 s while
    # the GOP length is learnt, then keyframes
    assert len([i for i in scene.seen if 8 <= i < 20]) <= 4, str(scene.seen)
    assert min(c for c in calls if c > 0) == 25  # the first moving frame, not keyframe 30
    assert set(range(25, 41)) <= set(calls)
