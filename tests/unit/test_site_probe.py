"""``argus cameras probe``: the maths on probed packets (frame rate, keyframe interval,
bitrate), the recommendation, the capacity arithmetic, the output, the CLI's argument
errors, and that no password reaches any message, table, JSON or log line.

The real camera (GStreamer RTSP, real footage, real model) is in
``tests/integration/test_site_probe.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import av.error
import numpy as np
import pytest

from argus.cli import build_parser, main
from argus.cli_site import cameras_subparsers
from argus.fleet.definitions import resolve_source
from argus.site import probe as site
from argus.site.probe import (
    Capacity,
    SiteProbe,
    cameras_held,
    ceiling_fps,
    recommend,
    table,
    to_json,
)
from ingest.probe import (
    Gop,
    PacketInfo,
    ProbeError,
    StreamInfo,
    bitrate_kbps,
    check_reachable,
    frame_rate,
    gop_of,
    host_port,
    open_error,
    probe_stream,
    window_s,
)
from selector.rules.config import ID_PATTERN
from tests.factories import write_clip

pytestmark = pytest.mark.unit

SECRET = "pa55/w@rd"
MAIN = f"rtsp://admin:{SECRET}@10.0.0.5:554/Streaming/Channels/101"
SUB = f"rtsp://admin:{SECRET}@10.0.0.5:554/Streaming/Channels/102"


def packets(
    n: int, fps: float, gop: int, *, first_pts: bool = True, size: int = 1000
) -> list[PacketInfo]:
    """``n`` packets at ``fps``, a keyframe every ``gop`` from the first."""
    out = []
    for i in range(n):
        pts = i / fps if (first_pts or i > 0) else None
        out.append(PacketInfo(size, i % gop == 0, pts, i / fps))
    return out


def info(
    url: str = MAIN,
    w: int = 1920,
    h: int = 1080,
    *,
    fps: float | None = 25.0,
    declared: float | None = 25.0,
    gop_s: float | None = 1.0,
    at_least_s: float = 1.0,
) -> StreamInfo:
    frames = None if gop_s is None or fps is None else gop_s * fps
    return StreamInfo(
        source=url.replace(SECRET, "***"),
        kind="rtsp",
        container="rtsp",
        codec="h264",
        profile="Main",
        width=w,
        height=h,
        fps=fps,
        declared_fps=declared,
        packets=125,
        gop=Gop(5 if gop_s else 1, frames, gop_s, at_least_s),
        bitrate_kbps=4096.0,
        window_s=5.0,
    )


# ------------------------------------------------------------------ packet maths
def test_frame_rate_and_window_from_timestamps() -> None:
    ps = packets(50, 25.0, 25)
    assert frame_rate(ps) == pytest.approx(25.0)
    assert window_s(ps) == pytest.approx(2.0)  # 49 intervals + the last frame's own


def test_frame_rate_ignores_b_frames_still_to_come() -> None:
    # a window cut in decode order: frames of pts 1.8 s and 1.9 s have not come yet
    ps = [p for p in packets(21, 10.0, 10) if p.pts_s not in (1.8, 1.9)]
    assert frame_rate(ps) == pytest.approx(10.0)
    assert window_s(ps) == pytest.approx(2.1)


def test_host_port_reads_the_host_after_a_raw_password() -> None:
    assert host_port(MAIN) == ("10.0.0.5", 554)
    assert host_port("rtsp://cam.local/live") == ("cam.local", 554)
    assert host_port("https://u:p@[fe80::1]:8443/mjpg") == ("fe80::1", 8443)
    assert host_port("/footage/a.mp4") is None and host_port("udp://1.2.3.4:5") is None


def test_frame_rate_ignores_decode_order_and_missing_pts() -> None:
    ps = packets(50, 10.0, 10, first_pts=False)  # RTSP: the first packet has no pts
    reordered = [ps[0], ps[2], ps[1], *ps[3:]]  # B-frames: decode order is not pts order
    assert frame_rate(reordered) == pytest.approx(10.0)
    assert frame_rate(ps[:1]) is None and window_s(ps[:1]) == 0.0


def test_frame_rate_without_a_clock_uses_arrival_times() -> None:
    ps = [PacketInfo(500, True, 0.0, i * 0.2) for i in range(11)]  # MJPEG: no real pts
    assert frame_rate(ps) is None
    assert frame_rate(ps, clock=False) == pytest.approx(5.0)


def test_bitrate_is_kilobits_per_second_over_the_window() -> None:
    ps = packets(50, 25.0, 25, size=10_000)  # 500 kB over 2 s = 2000 kbit/s
    assert bitrate_kbps(ps, window_s(ps)) == pytest.approx(2000.0)
    assert bitrate_kbps(ps, 0.0) == 0.0


def test_gop_in_frames_and_seconds() -> None:
    ps = packets(125, 25.0, 50)  # keyframes at 0, 2 s, 4 s
    g = gop_of(ps, 25.0)
    assert (g.keyframes, g.interval_frames) == (3, 50.0)
    assert g.interval_s == pytest.approx(2.0)


def test_gop_seconds_from_frames_when_keyframes_have_no_pts() -> None:
    ps = [PacketInfo(100, i % 10 == 0, None, i * 0.1) for i in range(30)]
    g = gop_of(ps, 12.5)
    assert g.interval_frames == 10.0 and g.interval_s == pytest.approx(0.8)


def test_gop_with_one_keyframe_or_none_gives_a_lower_bound() -> None:
    one = gop_of(packets(50, 10.0, 1000), 10.0)  # a keyframe at the start only
    assert (one.keyframes, one.interval_frames, one.interval_s) == (1, None, None)
    assert one.at_least_s == pytest.approx(5.0)
    none = gop_of([PacketInfo(10, False, i / 10, i / 10) for i in range(30)], 10.0)
    assert none.keyframes == 0 and none.at_least_s == pytest.approx(3.0)


# ------------------------------------------------------------------ errors, redaction
def _err(cls: type[av.error.FFmpegError], code: int, text: str, url: str) -> Exception:
    return cls(code, text, url)


@pytest.mark.parametrize(
    ("exc", "problem", "words"),
    [
        (
            _err(av.error.HTTPUnauthorizedError, -825242872, "Server returned 401", MAIN),
            "credentials",
            "the camera refused the credentials",
        ),
        (
            _err(av.error.HTTPForbiddenError, -858797304, "Server returned 403", MAIN),
            "credentials",
            "403",
        ),
        (
            _err(av.error.HTTPNotFoundError, -875574520, "Server returned 404", MAIN),
            "not_found",
            "no stream at this path",
        ),
        (
            _err(av.error.ExitError, -1414092869, "Immediate exit requested", MAIN),
            "no_video",
            "answered but sent no video in 10 s",
        ),
        (
            _err(av.error.InvalidDataError, -1094995529, f"Invalid data: {MAIN}", MAIN),
            "not_a_stream",
            "not with a video stream",
        ),
        (
            _err(av.error.ConnectionRefusedError, 111, "Connection refused", MAIN),
            "unreachable",
            "connection refused",
        ),
        (OSError(f"weird failure opening {MAIN}"), "not_a_stream", "cannot open it as video"),
    ],
)
def test_open_errors_say_what_happened_without_the_password(
    exc: Exception, problem: str, words: str
) -> None:
    e = open_error(MAIN, "rtsp", exc, 10.0)
    assert e.problem == problem
    assert words in str(e)
    for text in (str(e), e.reason, e.source, repr(e.args)):
        assert SECRET not in text and "w@rd" not in text
    assert e.source == "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101"


def test_401_without_credentials_asks_for_them() -> None:
    url = "rtsp://10.0.0.5/live"
    e = open_error(url, "rtsp", _err(av.error.HTTPUnauthorizedError, -1, "401", url), 10.0)
    assert "asks for credentials" in e.reason and "USER:PASSWORD@" in e.reason


def test_probe_error_redacts_passwords_in_the_reason_too() -> None:
    e = ProbeError(MAIN, "not_a_stream", f"FFmpeg said: cannot read {MAIN}?token=abc123")
    assert SECRET not in str(e) and "abc123" not in str(e)


def test_refused_port_is_unreachable_and_named() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProbeError) as ei:
        check_reachable(f"rtsp://admin:{SECRET}@127.0.0.1:{port}/cam", 2.0)
    assert ei.value.problem == "unreachable"
    assert f"127.0.0.1:{port} (connection refused)" in str(ei.value)
    assert SECRET not in str(ei.value)


# ------------------------------------------------------------------ a tiny real file
def _grey_clip(path: Path, n: int = 30, fps: int = 10, gop: int = 5) -> Path:
    frames = (np.full((48, 64, 3), (i * 40) % 256, np.uint8) for i in range(n))
    return write_clip(path, frames, codec="libx264", fps=fps, gop=gop)


def test_probe_stream_measures_a_file_and_records_its_window(tmp_path: Path) -> None:
    clip = _grey_clip(tmp_path / "clip.mp4")
    rec = tmp_path / "rec" / "window.mkv"
    s = probe_stream(str(clip), seconds=2.0, timeout_s=2.0, record_to=rec)
    assert (s.codec, s.width, s.height, s.kind) == ("h264", 64, 48, "file")
    assert s.fps == pytest.approx(10.0)
    assert s.gop.interval_frames == 5.0 and s.gop.interval_s == pytest.approx(0.5)
    # B-frames still to come when the window closes (decode order) are not counted
    assert s.window_s == pytest.approx(2.0) and 15 <= s.packets <= 20
    assert s.bitrate_kbps > 0
    assert s.recording == rec and s.recorded_frames == s.packets
    with av.open(str(rec)) as c:  # the window plays back: every frame decodes
        assert sum(1 for _ in c.decode(video=0)) == s.packets


def test_probe_stream_refuses_what_is_no_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a camera\n" * 50)
    with pytest.raises(ProbeError) as ei:
        probe_stream(str(text), seconds=1.0)
    assert ei.value.problem == "not_a_stream"
    with pytest.raises(ProbeError) as ei:
        probe_stream(str(tmp_path / "missing.mp4"), seconds=1.0)
    assert ei.value.problem == "not_found"
    with pytest.raises(ValueError, match="seconds"):
        probe_stream(str(text), seconds=0)


# ------------------------------------------------------------------ recommendation
def test_two_streams_analyse_the_smaller_keep_the_larger() -> None:
    r = recommend(info(MAIN, 2560, 1440), info(SUB, 640, 360))
    assert (r.analysis, r.evidence) == ("sub", "main")
    assert r.notes == []
    assert "Channels/102" in r.config.split("# analysis")[0]  # the sub is the source
    assert "evidence_source: " + MAIN.replace(SECRET, "${CAM_10_0_0_5_PASSWORD}") in r.config


def test_streams_given_the_other_way_round_are_said_so() -> None:
    r = recommend(info(SUB, 640, 360), info(MAIN, 2560, 1440))
    assert (r.analysis, r.evidence) == ("main", "sub")
    assert any("the second stream (2560x1440) is the larger" in n for n in r.notes)


def test_two_equal_streams_get_advice() -> None:
    r = recommend(info(MAIN, 1920, 1080), info(SUB, 1920, 1080))
    assert r.analysis == "sub" and any("both streams are 1920x1080" in n for n in r.notes)


def test_a_lone_large_stream_is_told_to_probe_the_sub_stream() -> None:
    big = recommend(info(MAIN, 3840, 2160), None)
    assert (big.analysis, big.evidence) == ("main", None)
    assert any("probe both" in n for n in big.notes)
    small = recommend(info(MAIN, 1280, 720), None)
    assert small.notes == []


def test_long_gop_of_the_analysis_stream_comes_first() -> None:
    r = recommend(info(MAIN, 1920, 1080), info(SUB, 640, 360, gop_s=4.0))
    assert r.notes[0].startswith("keyframes every 4.0 s: set the camera's I-frame interval")
    assert "≤ 2 s" in r.notes[0]
    # the main stream's GOP does not matter to analysis
    assert recommend(info(MAIN, 1920, 1080, gop_s=4.0), info(SUB, 640, 360)).notes == []
    lone = recommend(info(MAIN, 640, 360, gop_s=None, at_least_s=4.5), None)
    assert "interval over 4.5 s" in lone.notes[0]
    assert recommend(info(MAIN, 640, 360, gop_s=3.0), None, keyframe_max_s=5.0).notes == []


def test_declared_and_measured_fps_apart_is_pointed_out() -> None:
    r = recommend(info(MAIN, 640, 360, fps=12.4, declared=25.0), None)
    assert any("declares 25 fps but sent 12.4 fps" in n for n in r.notes)
    assert recommend(info(MAIN, 640, 360, fps=24.0, declared=25.0), None).notes == []


def test_config_snippet_is_a_valid_camera_without_the_password() -> None:
    import yaml

    from argus.config import parse_config

    r = recommend(info(MAIN, 1920, 1080), info(SUB, 640, 360))
    assert SECRET not in r.config and "w@rd" not in r.config
    assert "CAM_10_0_0_5_PASSWORD: the camera's password, from the environment" in r.config
    data = yaml.safe_load(r.config)
    cam = data["cameras"][0]
    assert re.match(ID_PATTERN, cam["id"]) and cam["id"] == "cam-10.0.0.5"
    assert cam["source"] == SUB.replace(SECRET, "${CAM_10_0_0_5_PASSWORD}")
    assert cam["evidence_source"] == MAIN.replace(SECRET, "${CAM_10_0_0_5_PASSWORD}")
    opened = resolve_source(cam["source"], {"CAM_10_0_0_5_PASSWORD": SECRET})
    assert opened == SUB.replace(SECRET, quote(SECRET, safe=""))  # percent-encoded
    parse_config(data)  # the snippet is a config Argus accepts
    # files have one stream each: the other is only named
    files = site.config_snippet(info("/f/sub.mp4", 640, 360), info("/f/main.mp4", 1920, 1080))
    assert "evidence_source" not in files.split("#")[0] and "/f/main.mp4" in files
    parse_config(yaml.safe_load(files))
    assert site.camera_id_for("/footage/My Plaza (day).mp4") == "cam-My-Plaza-day"


# ------------------------------------------------------------------ capacity maths
def test_ceiling_and_cameras_follow_argus_bench() -> None:
    # argus bench's ceiling: decoding and detecting share the cores
    assert ceiling_fps(200.0, 50.0) == pytest.approx(40.0)
    assert ceiling_fps(0.0, 50.0) == 0.0
    assert cameras_held(40.0, 10.0) == 4
    assert cameras_held(39.9, 10.0) == 3
    assert cameras_held(30.0, 10.0) == 3  # exact, despite float division
    assert cameras_held(5.0, 10.0) == 0 and cameras_held(5.0, 0.0) == 0


# ------------------------------------------------------------------ output
def _report(capacity: Capacity | None = None, error: str | None = None) -> SiteProbe:
    main_s, sub_s = info(MAIN, 1920, 1080), info(SUB, 640, 360)
    return SiteProbe({"main": main_s, "sub": sub_s}, recommend(main_s, sub_s), capacity, error)


CAP = Capacity("nanodet-g", 25.0, 400.0, 80.0, 66.7, 2, 4.2)


def test_table_names_every_figure() -> None:
    text = table(_report(CAP))
    for needle in (
        "h264 (Main)",
        "1920x1080",
        "640x360",
        "25.0",
        "25 frames = 1.00 s",
        "4096 kbit/s",
        "analysis",
        "evidence",
        "about 2 cameras like the sub stream",
        "nanodet-g",
        "config:",
    ):
        assert needle in text, needle
    assert SECRET not in text and "w@rd" not in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "capacity: not measured: no model" in table(_report(None, "no model"))


def test_json_is_complete_and_has_no_password() -> None:
    doc = to_json(_report(CAP))
    text = json.dumps(doc)
    assert SECRET not in text
    sub = doc["streams"]["sub"]
    assert (sub["width"], sub["height"], sub["codec"]) == (640, 360, "h264")
    assert sub["keyframe_interval_frames"] == 25.0 and sub["keyframe_interval_s"] == 1.0
    assert sub["bitrate_kbps"] == 4096.0 and sub["fps"] == 25.0
    assert doc["recommendation"]["analysis"] == "sub"
    assert doc["capacity"]["cameras"] == 2
    assert to_json(_report(None, "x"))["capacity"] is None


# ------------------------------------------------------------------ CLI
def test_cameras_group_is_made_once_for_other_subcommands() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    first = cameras_subparsers(sub)
    assert cameras_subparsers(sub) is first
    first.add_parser("discover")  # another engineer's subcommand sits beside probe
    assert p.parse_args(["cameras", "discover"]).cameras_cmd == "discover"


def test_cli_parses_probe() -> None:
    args = build_parser().parse_args(["cameras", "probe", MAIN, "--sub", SUB, "--json"])
    assert (args.main_url, args.sub_flag, args.json) == (MAIN, SUB, True)
    assert (args.seconds, args.timeout, args.bench_seconds) == (5.0, 10.0, 5.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["cameras", "probe", MAIN, SUB, "--sub", SUB],
        ["cameras", "probe", MAIN, MAIN],
        ["cameras", "probe", MAIN, "--seconds", "0"],
        ["cameras", "probe", MAIN, "--timeout", "nan"],
        ["cameras", "probe"],
    ],
)
def test_bad_arguments_exit_2_without_the_password(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = int(e.code or 0)
    assert code == 2
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err


def test_unreachable_stream_exits_3_with_the_reason_and_no_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*_a: Any, **_k: Any) -> SiteProbe:
        raise ProbeError(MAIN, "credentials", f"the camera refused the credentials ({MAIN})")

    monkeypatch.setattr(site, "probe_site", fail)
    assert main(["cameras", "probe", MAIN, "--json"]) == 3
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["error"]["problem"] == "credentials"
    assert "the camera refused the credentials" in out.err
    assert SECRET not in out.out + out.err


def test_probe_streams_raises_the_first_failure_in_url_order(tmp_path: Path) -> None:
    def fake(url: str, **_k: Any) -> StreamInfo:
        if url == SUB:
            raise ProbeError(url, "no_video", "sent nothing")
        return info(url)

    with pytest.raises(ProbeError) as ei:
        site.probe_streams([MAIN, SUB], seconds=1, timeout_s=1, record_dir=tmp_path, probe=fake)
    assert ei.value.problem == "no_video" and "Channels/102" in str(ei.value)
    got = site.probe_streams([MAIN], seconds=1, timeout_s=1, record_dir=tmp_path, probe=fake)
    assert got[0].width == 1920
