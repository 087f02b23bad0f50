"""A recording cut short (issue 12, defect 4): its frames are delivered, then the camera fails.

Real files made with PyAV: H.264 with B-frames in MP4 with its ``moov`` first (a cut
leaves an index promising frames the file no longer holds) and at the end (a cut loses the
index: the file does not open), cut mid-packet and on a packet boundary; and intact files
whose declared length is approximate (an edit list hiding samples, an audio track longer
than the video, FFmpeg's own estimates) that must not be taken for cut ones.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from ingest import (
    ActivityControl,
    FileSource,
    SourceOpenError,
    SourceReadError,
    SourceState,
    TruncatedSourceError,
)
from ingest._av import DemuxTally
from ingest.file_source import early_end
from tests.factories import write_clip

pytestmark = pytest.mark.unit

N = 60
FPS = 10


def _images(n: int = N, w: int = 96, h: int = 64) -> Iterator[npt.NDArray[np.uint8]]:
    """A bright block moving over a noisy, slowly brightening background."""
    rng = np.random.default_rng(12)
    for i in range(n):
        img = np.full((h, w, 3), (i * 3) % 200, dtype=np.uint8)
        img += rng.integers(0, 24, img.shape, dtype=np.uint8)
        x = (i * 2) % (w - 16)
        img[20:36, x : x + 16] = 255
        yield img


def _h264(path: Path) -> Path:
    """N frames of H.264 with B-frames, a keyframe every second; MP4: ``moov`` at the end."""
    return write_clip(path, _images(), codec="libx264", fps=FPS, gop=FPS, options={"bf": "2"})


def _faststart(src: Path, dst: Path) -> Path:
    """``src`` remuxed with its ``moov`` first (as for streaming; a cut keeps the index)."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        stream = i.streams.video[0]
        out = o.add_stream_from_template(stream)
        for packet in i.demux(stream):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    return dst


def _cut(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _packets(path: Path) -> list[tuple[int, int, bool, float]]:
    """``(pos, size, corrupt, pts_s)`` of each non-empty packet of the video stream."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [
            (int(p.pos or 0), p.size, p.is_corrupt, float((p.pts or 0) * p.time_base))
            for p in c.demux(s)
            if p.size
        ]


def _run(src: FileSource, activity: ActivityControl | None = None) -> tuple[list[float], Any]:
    """Iterate ``src``; the pts of what it delivered and what it raised (``None``)."""
    pts: list[float] = []
    try:
        for frame in src.frames():
            pts.append(round(frame.pts_s, 3))
            if activity is not None:
                activity.rest(frame.pts_s)  # a quiet camera: decoded sparsely
    except TruncatedSourceError as e:
        return pts, e
    return pts, None


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("truncated")
    moov_last = _h264(d / "moov-last.mp4")
    return {"moov_last": moov_last, "faststart": _faststart(moov_last, d / "faststart.mp4")}


# ------------------------------------------------------------------ cut recordings
@pytest.mark.parametrize("threads", [0, 1])
def test_cut_faststart_mp4_delivers_every_whole_frame_then_fails(
    clips: dict[str, Path], tmp_path: Path, threads: int
) -> None:
    full = clips["faststart"]
    cut = _cut(full, tmp_path / "cut.mp4", full.stat().st_size // 2)
    packets = _packets(cut)
    assert packets[-1][2], "the demuxer flags the last, cut-short packet corrupt"
    whole = sorted(round(p[3], 3) for p in packets if not p[2])
    states: list[SourceState] = []
    src = FileSource(
        "cam", cut, realtime=False, decode_threads=threads, on_state=lambda *a: states.append(a[1])
    )
    pts, err = _run(src)
    # every frame whose packet is whole reaches the consumer, even under frame threading
    # (where decoding the cut packet used to cost the frames in flight)
    assert pts == whole
    assert isinstance(err, TruncatedSourceError) and isinstance(err, SourceReadError)
    text = str(err)
    assert str(cut) in text and "truncated or damaged" in text
    assert f"recording ends early: {len(whole)} of {N} frames (" in text and "of 6.0 s)" in text
    assert err.frames == len(whole) and err.declared_frames == N
    assert states == [SourceState.STREAMING, SourceState.FAILED]
    assert src.stats().last_error == text and src.stats().frames_decoded == len(whole)


def test_cut_on_a_packet_boundary_is_caught_by_the_declared_length(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    full = clips["faststart"]
    pos, size, _, _ = _packets(full)[19]  # the cut falls right after the 20th packet
    cut = _cut(full, tmp_path / "cut.mp4", pos + size)
    assert not any(p[2] for p in _packets(cut)), "no packet is cut short"
    pts, err = _run(FileSource("cam", cut, realtime=False))
    assert len(pts) == 20
    assert isinstance(err, TruncatedSourceError)
    assert "recording ends early: 20 of 60 frames (2.0 s of 6.0 s)" in str(err)


def test_cut_recording_fails_the_same_while_decoded_sparsely(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """Activity-driven decoding skips frames on purpose: they are not counted as missing."""
    full = clips["faststart"]
    cut = _cut(full, tmp_path / "cut.mp4", full.stat().st_size // 2)
    everything, expected = _run(FileSource("cam", cut, realtime=False))
    activity = ActivityControl()
    src = FileSource("cam", cut, realtime=False, activity=activity)
    pts, err = _run(src, activity)
    assert 0 < len(pts) < len(everything) and src.stats().frames_thinned > 0
    assert isinstance(err, TruncatedSourceError) and str(err) == str(expected)


def test_cut_looping_recording_fails_after_its_first_pass(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    full = clips["faststart"]
    cut = _cut(full, tmp_path / "cut.mp4", full.stat().st_size // 2)
    once, _ = _run(FileSource("cam", cut, realtime=False))
    # bounded, so that a source that does not notice the cut ends (with 3 passes) too
    looping = FileSource("cam", cut, realtime=False, loop=True, max_frames=3 * len(once))
    pts, err = _run(looping)
    assert pts == once and isinstance(err, TruncatedSourceError)


def test_mp4_cut_before_its_index_does_not_open_and_names_the_file(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """``moov`` at the end (as a recorder writes it): the cut loses the index; nothing plays."""
    full = clips["moov_last"]
    cut = _cut(full, tmp_path / "moovless.mp4", full.stat().st_size // 2)
    src = FileSource("cam", cut, realtime=False)
    with pytest.raises(SourceOpenError, match="cannot open video source") as info:
        list(src.frames())
    assert str(cut) in str(info.value)
    assert src.state is SourceState.FAILED


# ------------------------------------------------------------------ intact recordings
def _edit_list_trimmed(src: Path, dst: Path) -> Path:
    """``src`` (moov first, one edit) with its edit list cut to half the duration, as a
    phone's "trim" leaves a clip: the index still declares every sample (60 frames), the
    edit shows 3 s of them.  An approximately declared frame count, not a cut."""
    data = bytearray(src.read_bytes())
    at = data.find(b"elst")
    assert at > 0 and data[at + 4] == 0 and struct.unpack(">I", data[at + 8 : at + 12]) == (1,)
    (segment,) = struct.unpack(">I", data[at + 12 : at + 16])
    data[at + 12 : at + 16] = struct.pack(">I", segment // 2)
    dst.write_bytes(bytes(data))
    return dst


def _with_longer_audio(path: Path) -> Path:
    """Video (N frames) plus a silent AAC track twice as long: the container's declared
    duration is the audio's."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        for i, img in enumerate(_images()):
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(vf))
        out.mux(video.encode())
        for start in range(0, 2 * N // FPS * 16000, 1024):
            af = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            af.sample_rate, af.pts, af.time_base = 16000, start, Fraction(1, 16000)
            out.mux(audio.encode(af))
        out.mux(audio.encode())
    return path


@pytest.fixture(scope="module")
def intact(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("intact")
    return {
        **clips,
        "mpeg4.avi": write_clip(d / "mpeg4.avi", _images()),
        "h264.mkv": write_clip(d / "h264.mkv", _images(), codec="libx264", gop=FPS),
        "edit-list-trimmed.mp4": _edit_list_trimmed(clips["faststart"], d / "trimmed.mp4"),
        "longer-audio.mp4": _with_longer_audio(d / "audio.mp4"),
    }


@pytest.mark.parametrize(
    "name", ["moov_last", "faststart", "mpeg4.avi", "h264.mkv", "edit-list-trimmed.mp4",
             "longer-audio.mp4"]
)  # fmt: skip
@pytest.mark.parametrize("how", ["plain", "sparse", "start_s", "loop"])
def test_intact_recordings_run_to_their_end(intact: dict[str, Path], name: str, how: str) -> None:
    path = intact[name]
    shown = N // 2 if name == "edit-list-trimmed.mp4" else N
    activity = ActivityControl() if how == "sparse" else None
    src = FileSource(
        "cam",
        path,
        realtime=False,
        activity=activity,
        start_s=1.0 if how == "start_s" else 0.0,
        loop=how == "loop",
        max_frames=2 * shown + 5 if how == "loop" else None,
    )
    pts, err = _run(src, activity)
    assert err is None and src.state is SourceState.ENDED
    if how == "plain":
        assert len(pts) == shown
    elif how == "start_s":
        assert len(pts) == shown - FPS
    elif how == "loop":
        assert len(pts) == 2 * shown + 5


# ------------------------------------------------------------------ the judgement
def _tally(packets: int, end_s: float, *, cut_tail: bool = False, ended: bool = True) -> DemuxTally:
    return DemuxTally(packets=packets, first_s=0.0, end_s=end_s, cut_tail=cut_tail, ended=ended)


def test_early_end_tolerates_a_length_declared_a_little_off() -> None:
    def judge(tally: DemuxTally, frames: int | None, seconds: float | None) -> str | None:
        err = early_end("v.avi", tally, declared_frames=frames, declared_s=seconds, interval=0.1)
        return None if err is None else err.reason

    # a frame or two short of the count and the duration: metadata, not a cut
    assert judge(_tally(793, 79.3), 795, 79.5) is None
    assert judge(_tally(58, 5.9), 60, 6.0) is None
    # a count that includes samples an edit list hides, the duration met: not a cut
    assert judge(_tally(41, 4.1), 60, 3.0) is None
    # a duration that includes more (audio, a rounded header), every frame there: not a cut
    assert judge(_tally(60, 6.0), 60, 9.0) is None
    # the pass did not reach the end of the file (closed, max_frames): nothing to judge
    assert judge(_tally(10, 1.0, ended=False), 60, 6.0) is None
    # a cut-short last packet, yet every declared frame or the declared end was reached
    assert judge(_tally(60, 6.0, cut_tail=True), 60, 6.0) is None
    assert judge(_tally(41, 4.1, cut_tail=True), 60, 3.0) is None
    # cut: by the numbers, and (within the tolerance) by the demuxer's own signal
    assert judge(_tally(397, 39.7), 795, 79.5) == (
        "recording ends early: 397 of 795 frames (39.7 s of 79.5 s)"
        " — the file is truncated or damaged"
    )
    assert judge(_tally(59, 5.9, cut_tail=True), 60, 6.0) == (
        "recording ends early: 59 of 60 frames (5.9 s of 6.0 s) — the file is truncated or damaged"
    )
    # Matroska (a duration, no count); fragmented MP4 (neither: FFmpeg estimates them)
    assert judge(_tally(29, 2.9), None, 6.0) == (
        "recording ends early: 29 frames (2.9 s of 6.0 s) — the file is truncated or damaged"
    )
    assert judge(_tally(29, 3.0, cut_tail=True), None, None) == (
        "recording ends early: its last frame is cut short after 29 frames (3.0 s)"
        " — the file is truncated or damaged"
    )
    # a truncated AVI: FFmpeg estimates its duration from what is left; the count tells
    assert judge(_tally(398, 39.8, cut_tail=True), 795, 39.8) == (
        "recording ends early: 398 of 795 frames (39.8 s of 79.5 s)"
        " — the file is truncated or damaged"
    )
