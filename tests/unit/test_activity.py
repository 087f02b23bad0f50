"""Activity-driven decoding (``ingest.activity``): the thinning logic on scripted packets,
and ``FileSource`` on real H.264 (B-frames, 1 s GOP) and long-GOP MPEG-4 clips, whose
frames after a wake must be the very frames a full decode gives."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ingest import ActivityControl, FileSource
from ingest.activity import Thinner

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
def write_clip(path: Path, codec: str, gop: int, n: int = 60, fps: int = 10) -> Path:
    """A 160x120 clip of a drifting noise texture (inter prediction matters)."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 255, (120, 400, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        if codec == "libx264":
            s.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "2"}
        else:
            s.gop_size = gop
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, i * 3 : i * 3 + 160]))
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


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
    path = write_clip(tmp_path / f"clip-{codec}.mp4", codec, gop)
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
