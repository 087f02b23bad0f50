"""Clips of alerts: the packet ring (windows, GOPs, B-frames, memory bound, a stream that
stops) and the clip maker (remuxed original, masked copy, description), on real H.264
written by PyAV.  A stand-in person detector finds the red "person" by colour; the real
detector on a generated scene is tested in tests/e2e/test_clip_masking.py."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from alerts.clips import ClipJob, ClipMaker, _mask_at
from alerts.evidence import LocalEvidenceStore, clip_info_key, masked_key
from alerts.masking import grown, mask_people, sharpness
from detectors.detections import Detections
from ingest.file_source import FileSource
from ingest.packets import ClipPackets, PacketRing

FPS = 10
W, H = 320, 240
BOX = 40, 60  # the person's size, pixels
NAMES = ("person", "car")


BACKDROP = cv2.resize(
    np.random.default_rng(3).integers(60, 160, (H // 16, W // 16, 3), dtype=np.uint8),
    (W, H),
    interpolation=cv2.INTER_CUBIC,
)


def person_box(i: int) -> tuple[int, int, int, int]:
    """Where the person is in frame ``i``: walking right, 4 px a frame."""
    x = 20 + 4 * (i % 60)
    return x, 90, x + BOX[0], 90 + BOX[1]


def picture(i: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A textured scene (smooth blotches, white text, sensor noise) with the red checkered
    person."""
    noise = rng.integers(0, 4, (H, W, 3), dtype=np.uint8)  # a little sensor noise
    img = np.asarray(BACKDROP + noise, np.uint8)
    cv2.putText(img, "ARGUS", (150, 220), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    x1, y1, x2, y2 = person_box(i)
    patch = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
    yy, xx = np.mgrid[0 : y2 - y1, 0 : x2 - x1]
    patch[((yy // 4 + xx // 4) % 2) == 0] = (0, 0, 255)  # BGR red squares on black
    img[y1:y2, x1:x2] = patch
    return img


def write_video(path: Path, frames: int, *, gop: int = 10, bframes: int = 2) -> None:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(FPS, 1))
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        st.options = {
            "crf": "18",
            "preset": "veryfast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": str(bframes),
        }
        for i in range(frames):
            for p in st.encode(av.VideoFrame.from_ndarray(picture(i, rng), format="bgr24")):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "walk.mp4"
    write_video(path, 80)  # 8 s, a keyframe every 1 s, B-frames
    return path


def play(
    path: Path, ring: PacketRing, asks: Sequence[tuple[int, float, float]]
) -> list[ClipPackets | None]:
    """Play ``path`` through a FileSource into ``ring``; at frame n ask for [a, b]."""
    got: list[ClipPackets | None] = []
    src = FileSource("cam", path, realtime=False)
    src.packets = ring
    for n, frame in enumerate(src.frames()):
        for at, a, b in asks:
            if n == at:
                assert frame.pts_s == pytest.approx(n / FPS)
                ring.request(a, b, got.append)
    return got


def shown_times(clip: ClipPackets) -> list[float]:
    return sorted(round(p.raw_s + clip.offset_s, 3) for p in clip.packets)


# ------------------------------------------------------------------- the ring
def test_a_window_starts_at_the_keyframe_before_it_and_holds_every_frame_to_its_end(
    video: Path,
) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(40, 2.5, 5.5)])
    assert clip is not None and clip.packets[0].keyframe
    assert clip.start_s == pytest.approx(2.0)  # the keyframe at or before 2.5 (one a second)
    # to the window's end, and beyond it only the pictures sent before one inside it (a
    # P-frame the B-frames before it need): at most the reordering depth
    assert clip.ended is None and 5.5 <= clip.end_s <= 5.5 + 3 / FPS
    # every picture from 2.0 to 5.4 is there once, B-frames included (they arrive after the
    # P-frame shown later: the window is handed over only once they are in)
    times = shown_times(clip)
    assert times[:35] == [round(2.0 + i / FPS, 3) for i in range(35)]
    assert len(set(times)) == len(times)
    assert clip.info.codec == "h264" and clip.template is not None


def test_a_window_the_video_does_not_reach_ends_where_the_video_does_and_says_why(
    video: Path,
) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(70, 6.0, 12.0)])
    assert clip is not None
    assert clip.end_s == pytest.approx(8.0) and clip.ended == "the recording ended"
    # asked after the end: answered at once with what there is
    late: list[ClipPackets | None] = []
    ring.request(7.0, 9.0, late.append)
    assert late and late[0] is not None and late[0].ended == "the recording ended"


def test_memory_stays_within_the_bound_and_keeps_whole_gops(video: Path) -> None:
    total = video.stat().st_size
    ring = PacketRing("cam", keep_s=1.0, max_bytes=total // 4)
    play(video, ring, [])
    assert ring.peak_bytes <= total // 4 + 20_000  # plus at most the packet being added
    assert ring.span_s() <= 3.0  # keep 1 s, plus the GOPs that reach back to it
    # an old window is gone: nothing to hand over
    late: list[ClipPackets | None] = []
    ring.request(0.0, 1.0, late.append)
    assert late == [None] or (late[0] is not None and late[0].start_s >= 4.0)


def test_a_waiting_request_keeps_its_video_past_keep_s(video: Path) -> None:
    ring = PacketRing("cam", keep_s=0.5, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(12, 1.0, 6.0)])
    assert clip is not None and clip.start_s == pytest.approx(1.0) and clip.ended is None


def test_a_stream_joined_mid_gop_is_kept_from_its_first_keyframe(video: Path) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        ring.open_segment(st)
        packets = [p for p in c.demux(st) if p.size]
        for p in packets[3:]:  # no keyframe until the second GOP
            ring.add(p)
        ring.anchor(0.0, 0.0)
    assert ring.dropped_unanchored == 7
    assert ring.usable  # timestamps tied to the camera clock: clips can be asked for
    got: list[ClipPackets | None] = []
    ring.request(0.0, 3.0, got.append)
    assert got and got[0] is not None and got[0].start_s == pytest.approx(1.0)


# ------------------------------------------------------------------- the maker
def red_person(images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
    """Stand-in detector: the box around the red pixels, as class 0 (person)."""
    out = []
    for img in images:
        red = (img[..., 2] > 190) & (img[..., 1] < 70) & (img[..., 0] < 70)
        ys, xs = np.nonzero(red)
        if len(xs) < 20:
            out.append(Detections.empty(NAMES))
            continue
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        out.append(
            Detections(box, np.array([0.9], np.float32), np.array([0], np.int64), names=NAMES)
        )
    return out


def decoded(data: bytes, tmp: Path) -> tuple[list[float], list[npt.NDArray[np.uint8]]]:
    tmp.write_bytes(data)
    with av.open(str(tmp)) as c:
        st = c.streams.video[0]
        frames = list(c.decode(st))
    times = [float((f.pts or 0) * (f.time_base or 0)) for f in frames]
    return times, [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in frames]


def test_the_maker_stores_the_original_as_it_came_and_a_copy_with_the_person_blurred(
    video: Path, tmp_path: Path
) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(45, 2.5, 5.5)])
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0], pre_s=0.5, post_s=2.5)
    key = "cam/2026-12-06/e1.mp4"
    info = maker.make(ClipJob("cam", "e1", key, clip, stream="evidence"))
    assert info is not None and info.complete and info.note is None and info.remuxed
    assert (info.stream, info.width, info.height) == ("evidence", clip.info.width, clip.info.height)
    assert info.width > 0
    assert info.frames == 30 and info.start_s == pytest.approx(2.5)
    assert info.end_s == pytest.approx(5.5) and info.original_start_s == pytest.approx(2.0)
    assert 31 <= info.masking["frames_detected"] <= 32  # the window and a frame either side
    assert json.loads(store.get(clip_info_key(key))) == json.loads(info.to_json())

    # the original: the camera's own packets, one per picture, from the keyframe at 2.0
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        tb = st.time_base
        assert tb is not None
        source = {
            round(float(p.pts * tb), 3): bytes(p)
            for p in c.demux(st)
            if p.size and p.pts is not None
        }
    (tmp_path / "o.mp4").write_bytes(store.get(key))
    with av.open(str(tmp_path / "o.mp4")) as c:
        st = c.streams.video[0]
        otb = st.time_base
        assert otb is not None
        remuxed = {round(float((p.pts or 0) * otb), 3): bytes(p) for p in c.demux(st) if p.size}
    assert clip is not None and len(remuxed) == len(clip.packets) >= 35
    start = min(remuxed)
    assert all(data == source[round(t - start + 2.0, 3)] for t, data in remuxed.items())

    # the masked copy: the window to the frame; inside the person's box the picture is
    # smooth, outside it unchanged (but for the encoding)
    times, frames = decoded(store.get(masked_key(key)), tmp_path / "m.mp4")
    assert len(frames) == 30 and times[0] == pytest.approx(0.0)
    _, originals = decoded(store.get(key), tmp_path / "o2.mp4")
    by_time = {
        round(t - start + 2.0, 3): f
        for t, f in zip([float(x) for x in sorted(remuxed)], originals, strict=True)
    }
    for t, masked in zip(times, frames, strict=True):
        i = round((t + 2.5) * FPS)
        x1, y1, x2, y2 = person_box(i)
        orig = by_time[round(i / FPS, 3)]
        inside = (slice(y1, y2), slice(x1, x2))
        gray = np.asarray(cv2.cvtColor(masked, cv2.COLOR_BGR2GRAY), np.uint8)
        gray0 = np.asarray(cv2.cvtColor(orig, cv2.COLOR_BGR2GRAY), np.uint8)
        assert sharpness(gray[inside]) < 0.2 * sharpness(gray0[inside]), f"frame at {t}"
        ((gx1, gy1, gx2, gy2),) = grown(np.array([person_box(i)], np.float32), W, H).tolist()
        outside = np.ones((H, W), bool)
        outside[max(gy1 - 8, 0) : gy2 + 8, max(gx1 - 8, 0) : gx2 + 8] = False
        diff = np.abs(masked.astype(int) - orig.astype(int))[outside]
        assert diff.mean() < 4.0, f"frame at {t}: the picture changed outside the person"


def test_a_clip_the_camera_cut_short_says_so(video: Path, tmp_path: Path) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(70, 6.5, 16.5)])
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0])
    info = maker.make(ClipJob("cam", "e2", "cam/2026-12-06/e2.mp4", clip))
    assert info is not None and not info.complete
    assert info.end_s == pytest.approx(8.0) and info.frames == 15
    assert info.note == "the video ended 1.5 s into the 10.0 s window (the recording ended)"


def test_no_video_of_the_window_makes_no_clip(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=None, person_ids=[0])
    assert maker.make(ClipJob("cam", "e3", "cam/2026-12-06/e3.mp4", None)) is None
    assert not store.exists("cam/2026-12-06/e3.mp4") and maker.failed == 1


def test_a_codec_mp4_cannot_hold_is_transcoded_for_the_original(tmp_path: Path) -> None:
    path = tmp_path / "old.avi"
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        st = out.add_stream("msmpeg4", rate=Fraction(FPS, 1))  # the demo footage's codec
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        for i in range(30):
            for p in st.encode(av.VideoFrame.from_ndarray(picture(i, rng), format="bgr24")):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(path, ring, [(25, 1.0, 2.0)])
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0])
    key = "cam/2026-12-06/e4.mp4"
    info = maker.make(ClipJob("cam", "e4", key, clip))
    assert info is not None and not info.remuxed and info.codec.startswith("msmpeg4")
    _, frames = decoded(store.get(key), tmp_path / "o.mp4")
    assert len(frames) == 10 and info.original_start_s == pytest.approx(1.0)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_the_maker_thread_makes_what_the_ring_hands_over(video: Path, tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0], pre_s=1.0, post_s=2.0)
    maker.start()
    ring = PacketRing("cam", keep_s=4, max_bytes=64 << 20)
    src = FileSource("cam", video, realtime=False)
    src.packets = ring
    for n, frame in enumerate(src.frames()):
        if n in (20, 50):
            maker.request(
                ring, camera_id="cam", event_id=f"e{n}", key=f"cam/d/e{n}.mp4", start_s=frame.pts_s
            )
    assert maker.wait_idle(60)
    maker.stop()
    assert maker.made == 2
    assert store.exists("cam/d/e20.masked.mp4") and store.exists("cam/d/e50.clip.json")


def test_stopping_on_a_signal_drops_the_clips_still_waiting(video: Path, tmp_path: Path) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(45, 2.5, 5.5)])
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0])
    for i in range(3):  # queued before the thread runs: none started
        maker.submit(ClipJob("cam", f"q{i}", f"cam/d/q{i}.mp4", clip))
    maker.start()
    maker.stop(30, drop_queued=True)
    # at most the one the thread had already taken is made; wait_idle sees none pending
    assert maker.made <= 1 and maker.wait_idle(0.1)
    assert sum(store.exists(f"cam/d/q{i}.mp4") for i in range(3)) == maker.made


def test_a_maker_past_its_time_cancels_the_clip_it_is_making(video: Path, tmp_path: Path) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(45, 2.5, 5.5)])
    started = threading.Event()

    def slow(images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        started.set()
        time.sleep(0.05)  # 30 frames: 1.5 s, longer than stop() waits
        return red_person(images)

    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: slow, person_ids=[0])
    maker.start()
    maker.submit(ClipJob("cam", "slow", "cam/d/slow.mp4", clip))
    assert started.wait(10)
    thread = maker._thread
    assert thread is not None
    maker.stop(0.2)  # the thread leaves the clip at the next frame: out before exit
    assert not thread.is_alive() and maker.made == 0
    assert not store.exists("cam/d/slow.mp4") and not store.exists("cam/d/slow.masked.mp4")


def test_the_most_urgent_clips_are_made_first_and_a_full_queue_drops_the_least_urgent(
    tmp_path: Path,
) -> None:
    made: list[str] = []
    maker = ClipMaker(
        LocalEvidenceStore(tmp_path / "ev"), detector=None, person_ids=[0], max_pending=3
    )
    maker.make = lambda job: made.append(job.event_id)  # type: ignore[method-assign]
    for name, priority in (
        ("low", 10),
        ("high", 90),
        ("mid", 50),
        ("lower", 5),
        ("top", 95),
        ("mid2", 50),
    ):
        maker.submit(ClipJob("cam", name, f"cam/d/{name}.mp4", None, priority))
    # full at three: "lower" (5) did not get in, "top" (95) took the place of "low" (10),
    # "mid2" of the older "mid" (as urgent: the newest is what operators look at)
    maker.start()
    maker.stop(10)
    assert made == ["top", "high", "mid2"]


def test_a_repeated_timestamp_still_gives_a_clip_and_its_original(
    video: Path, tmp_path: Path
) -> None:
    ring = PacketRing("cam", keep_s=16, max_bytes=64 << 20)
    (clip,) = play(video, ring, [(45, 2.5, 5.5)])
    assert clip is not None
    packets = list(clip.packets)
    k = 12  # a camera's glitch: one packet with the timestamps of the one before
    packets[k] = dataclasses.replace(packets[k], dts=packets[k - 1].dts, pts=packets[k - 1].pts)
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = ClipMaker(store, detector=lambda: red_person, person_ids=[0])
    info = maker.make(
        ClipJob("cam", "g", "cam/d/g.mp4", dataclasses.replace(clip, packets=packets))
    )
    assert info is not None and info.frames >= 29
    assert store.exists("cam/d/g.mp4") and store.exists("cam/d/g.masked.mp4")


def test_a_frame_the_first_pass_did_not_see_takes_a_neighbours_mask_or_is_blurred_whole() -> None:
    box = np.array([[10, 10, 20, 20]], np.float32)
    by_time = {1.0: box, 1.1: box + 1}
    assert _mask_at(by_time, 1.0, 0.1) is box
    assert np.array_equal(_mask_at(by_time, 1.2, 0.1), box + 1)  # one frame away
    whole = _mask_at(by_time, 2.0, 0.1)
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    blurred = mask_people(image, whole)
    assert sharpness(np.asarray(blurred[..., 0])) < 0.05 * sharpness(np.asarray(image[..., 0]))


def test_an_event_raised_long_after_it_began_gets_what_the_ring_still_holds(
    video: Path, tmp_path: Path
) -> None:
    jobs: list[ClipJob] = []

    class Catch(ClipMaker):
        def submit(self, job: ClipJob) -> None:
            jobs.append(job)

    maker = Catch(
        LocalEvidenceStore(tmp_path / "ev"), detector=None, person_ids=[0], pre_s=1.0, post_s=1.0
    )
    ring = PacketRing("cam", keep_s=3.0, max_bytes=64 << 20)
    src = FileSource("cam", video, realtime=False)
    src.packets = ring
    for n, frame in enumerate(src.frames()):
        if n == 60:  # a fall raised at 6.0 s that began at 1.0 s: long gone from a 3 s ring
            maker.request(
                ring,
                camera_id="cam",
                event_id="f",
                key="cam/d/f.mp4",
                start_s=1.0,
                raised_s=frame.pts_s,
            )
    (job,) = jobs
    assert job.packets is not None
    assert job.packets.asked_start_s == pytest.approx(4.0)  # 6.0 - (3.0 - 1.0)
    assert job.packets.asked_end_s == pytest.approx(7.0)  # 1.0 s after it was raised
    assert job.note == (
        "the event began 5.0 s before it was raised; the camera's buffer held the last "
        "2.0 s before that"
    )


class _Packet:
    """A stand-in for a demuxed packet: 1000 bytes at ``raw`` seconds (1/90000 units)."""

    TB = Fraction(1, 90000)

    def __init__(self, raw: float, key: bool) -> None:
        self.pts = self.dts = round(raw / self.TB)
        self.duration, self.is_keyframe, self.size = 9000, key, 1000

    def __bytes__(self) -> bytes:
        return b"x" * 1000


def test_a_camera_clock_that_jumps_back_starts_a_new_segment_and_clips_go_on() -> None:
    stream = SimpleNamespace(
        codec_context=SimpleNamespace(
            name="h264", width=2, height=2, extradata=None, pix_fmt="yuv420p"
        ),
        average_rate=Fraction(10),
        guessed_rate=None,
        time_base=_Packet.TB,
    )
    ring = PacketRing("c", keep_s=16.0, max_bytes=10**9)
    ring.open_segment(stream)
    camera_s = 0.0

    def feed(raw: float) -> None:  # one frame: the source goes on with the camera clock
        nonlocal camera_s
        ring.add(_Packet(raw, round(raw * 10) % 10 == 0))
        ring.anchor(raw, camera_s)
        camera_s += 0.1

    for i in range(300):
        feed(1000 + i / 10)  # 30 s with the camera's timestamps at 1000 s
    for i in range(300):
        feed(i / 10)  # its clock restarts at 0: camera seconds go on from 30
    got: list[ClipPackets | None] = []
    ring.request(50.0, 60.0, got.append)
    for i in range(300, 400):
        feed(i / 10)
    (clip,) = got
    assert clip is not None and clip.ended is None
    assert clip.start_s == pytest.approx(50.0) and clip.end_s == pytest.approx(60.0)
    assert ring.nbytes <= 1000 * (16 * 10 + 20)  # the old clock's video is not pinned


def test_a_request_names_its_stream_and_says_why_it_is_not_the_evidence_one(
    tmp_path: Path,
) -> None:
    maker = ClipMaker(
        LocalEvidenceStore(tmp_path / "ev"), detector=None, person_ids=[], pre_s=2, post_s=3
    )
    jobs: list[ClipJob] = []
    maker.submit = jobs.append  # type: ignore[method-assign]

    class Ring:
        keep_s = 6.0

        def request(self, start_s: float, end_s: float, deliver: Any) -> None:
            deliver(None)

    ring = cast(PacketRing, Ring())
    maker.request(ring, camera_id="c", event_id="e", key="k", start_s=10.0, stream="evidence")
    assert (jobs[-1].stream, jobs[-1].note) == ("evidence", None)
    down = "the evidence stream stopped: the clip is of the analysed stream"
    maker.request(ring, camera_id="c", event_id="e", key="k", start_s=10.0, stream_note=down)
    assert (jobs[-1].stream, jobs[-1].note) == ("analysed", down)
    # raised late as well: both are said, the stream first
    maker.request(
        ring, camera_id="c", event_id="e", key="k", start_s=10.0, raised_s=30.0, stream_note=down
    )
    note = jobs[-1].note
    assert note is not None and note.startswith(down + "; the event began 20.0 s before")


def test_a_window_the_evidence_stream_does_not_cover_is_asked_of_the_analysed_one(
    tmp_path: Path,
) -> None:
    maker = ClipMaker(
        LocalEvidenceStore(tmp_path / "ev"), detector=None, person_ids=[], pre_s=2, post_s=3
    )
    jobs: list[ClipJob] = []
    maker.submit = jobs.append  # type: ignore[method-assign]
    info = SimpleNamespace(width=1920, height=1080)

    class Ring:
        keep_s = 6.0

        def __init__(self, ended: str | None, nothing: bool = False) -> None:
            self.ended, self.nothing = ended, nothing
            self.asked: list[tuple[float, float]] = []

        def request(self, start_s: float, end_s: float, deliver: Any) -> None:
            self.asked.append((start_s, end_s))
            clip = SimpleNamespace(packets=[1], ended=self.ended, info=info)
            deliver(None if self.nothing else clip)

    for main, said in (
        (Ring("the connection was lost"), "stopped: the connection was lost"),
        (Ring(None, nothing=True), "held no video of the window"),
    ):
        analysed = Ring(None)
        maker.request(
            cast(PacketRing, main),
            camera_id="c",
            event_id="e",
            key="k",
            start_s=10.0,
            stream="evidence",
            fallback=cast(PacketRing, analysed),
        )
        assert analysed.asked == main.asked == [(8.0, 13.0)]  # the same window
        assert (jobs[-1].stream, jobs[-1].note) == (
            "analysed",
            f"the evidence stream {said}: the clip is of the analysed stream",
        )
    # covered: the evidence stream's clip, the analysed ring not asked
    main, analysed = Ring(None), Ring(None)
    maker.request(
        cast(PacketRing, main),
        camera_id="c",
        event_id="e",
        key="k",
        start_s=10.0,
        stream="evidence",
        fallback=cast(PacketRing, analysed),
    )
    assert (jobs[-1].stream, jobs[-1].note, analysed.asked) == ("evidence", None, [])
