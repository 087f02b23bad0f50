"""What clips cost: memory of a camera's packet ring, and CPU per masked clip.

For each footage (the plaza footage re-encoded to H.264 at 768x576 and at 1920x1080, a
keyframe every ``--keyframe-s``, CRF 23 like a camera's stream; and the footage's own
MS-MPEG4 AVI, which clips transcode): the footage is played through a file source into a
:class:`ingest.packets.PacketRing` sized as the worker sizes it (``pre_s + post_s + 1`` s
kept, ``buffer_mb`` at most), measuring the bytes it holds (peak and at the end) and the
seconds of video that is; then one 15 s clip (5 s before a moment with people, 10 after)
is made by the clip maker the composition root builds (the configured model, its masking
thresholds), measuring the CPU time of the process (``time.process_time``: this thread,
the decoder's and the detector's threads) and the wall time, for ``--detect-every`` 1
and 2.

Usage::

    .venv/bin/python -m benchmarks.clip_cost [--json OUT]

Absolute figures depend on the machine: quote them with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from alerts.clips import ClipJob
from alerts.evidence import LocalEvidenceStore
from argus.app import clip_maker
from argus.config import parse_config
from argus.paths import argus_home
from ingest.file_source import FileSource
from ingest.packets import ClipPackets, PacketRing

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
EVENT_S = 30.0
"""The "event" whose clip is made: 30 s into the footage (people crossing the plaza)."""


def encode(src: Path, out: Path, size: tuple[int, int], keyframe_s: float) -> None:
    """``src`` re-encoded to H.264 (CRF 23, veryfast, a keyframe every ``keyframe_s``)."""
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        fps = float(st.average_rate or 10)
        frames = [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in c.decode(st)]
    with av.open(str(out), "w") as o:
        vs = o.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        gop = str(max(1, round(keyframe_s * fps)))
        vs.options = {"crf": "23", "preset": "veryfast", "g": gop, "keyint_min": gop}
        for img in frames:
            if img.shape[1::-1] != size:
                img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, np.uint8), format="bgr24")
            for p in vs.encode(vf):
                o.mux(p)
        for p in vs.encode(None):
            o.mux(p)


def measure(video: Path, cfg_data: dict[str, Any], detect_every: list[int]) -> dict[str, Any]:
    """Ring memory while ``video`` plays, then the cost of one masked clip per setting."""
    cfg = parse_config(cfg_data)
    clips = cfg.evidence.clips
    ring = PacketRing(
        "bench", keep_s=clips.pre_s + clips.post_s + 1.0, max_bytes=int(clips.buffer_mb * 2**20)
    )
    got: list[ClipPackets | None] = []
    src = FileSource("bench", video, realtime=False)
    src.packets = ring
    asked = False
    samples: list[int] = []
    width = height = 0
    for frame in src.frames():
        width, height = frame.width, frame.height
        samples.append(ring.nbytes)
        if not asked and frame.pts_s >= EVENT_S:
            ring.request(EVENT_S - clips.pre_s, EVENT_S + clips.post_s, got.append)
            asked = True
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        codec, bitrate = st.codec_context.name, c.bit_rate
    out: dict[str, Any] = {
        "video": video.name,
        "size": f"{width}x{height}",
        "codec": codec,
        "bitrate_kbps": round((bitrate or 0) / 1000),
        "ring": {
            "keep_s": ring.keep_s,
            "max_bytes": ring.max_bytes,
            "peak_mib": round(ring.peak_bytes / 2**20, 2),
            "median_mib": round(float(np.median(samples)) / 2**20, 2),
            "end_mib": round(ring.nbytes / 2**20, 2),
            "end_span_s": round(ring.span_s(), 1),
        },
        "clips": [],
    }
    (clip,) = got
    assert clip is not None
    for k in detect_every:
        clip_cfg = {**cfg_data["evidence"]["clips"], "mask_detect_every": k}
        data = {**cfg_data, "evidence": {"clips": clip_cfg}}
        with tempfile.TemporaryDirectory() as tmp:
            store = LocalEvidenceStore(tmp)
            maker = clip_maker(parse_config(data), store, ["person"], argus_home(), "<bench>")
            assert maker is not None
            maker.make(ClipJob("bench", "warm", "bench/d/warm.mp4", clip))  # loads the model
            cpu0, wall0 = time.process_time(), time.perf_counter()
            info = maker.make(ClipJob("bench", "e1", "bench/d/e1.mp4", clip))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            assert info is not None
            size = sum(f.stat().st_size for f in Path(tmp).rglob("e1*.mp4"))
        out["clips"].append(
            {
                "detect_every": k,
                "frames": info.frames,
                "seconds_of_video": round(info.end_s - info.start_s, 2),
                "remuxed": info.remuxed,
                "cpu_s": round(cpu, 2),
                "wall_s": round(wall, 2),
                "cpu_per_video_s": round(cpu / max(info.end_s - info.start_s, 1e-9), 3),
                "frames_detected": int(info.masking["frames_detected"]),
                "clip_mib": round(size / 2**20, 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=VTEST)
    ap.add_argument("--keyframe-s", type=float, default=2.0)
    ap.add_argument("--detect-every", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.video.is_file():
        print(f"footage not found: {args.video}", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = [args.video]
        for size in ((768, 576), (1920, 1080)):
            path = Path(tmp) / f"plaza-{size[0]}x{size[1]}.mp4"
            encode(args.video, path, size, args.keyframe_s)
            videos.append(path)
        for video in videos:
            cfg = {
                "cameras": [{"id": "bench", "source": str(video)}],
                "rules": [],
                "evidence": {"clips": {"enabled": True}},
                "detector": {"threads": 1},
            }
            r = measure(video, cfg, args.detect_every)
            results.append(r)
            ring = r["ring"]
            print(
                f"{r['size']} {r['codec']} {r['bitrate_kbps']} kb/s: ring peak "
                f"{ring['peak_mib']} MiB (median {ring['median_mib']} MiB, {ring['end_span_s']} s "
                f"held at the end)"
            )
            for c in r["clips"]:
                print(
                    f"  clip of {c['seconds_of_video']} s ({c['frames']} frames, remuxed "
                    f"{c['remuxed']}), detector every {c['detect_every']}: CPU {c['cpu_s']} s "
                    f"(wall {c['wall_s']} s), {c['clip_mib']} MiB"
                )
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0))},
        "results": results,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
