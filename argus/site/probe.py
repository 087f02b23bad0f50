"""``argus cameras probe``: what a camera streams, which stream to analyse, and how many
such cameras this machine holds.

The stream inspection is :func:`ingest.probe.probe_stream`'s; this module compares a
camera's main and sub-streams (:func:`recommend`), runs a short detector bench on frames
of the analysis stream itself with ``argus bench``'s own stages
(:func:`bench_capacity`), and writes the report as a table or JSON.

Nothing here prints or logs a password: every URL in a report is redacted at the source
(:class:`ingest.probe.StreamInfo` holds only the redacted URL).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from argus.config import GatingConfig
from ingest.factory import classify_source
from ingest.probe import ProbeError, StreamInfo, host_port, probe_stream

log = logging.getLogger(__name__)

Role = Literal["main", "sub"]

SUB_STREAM_ADVICE_PIXELS = 1280 * 720
"""A lone stream larger than this gets the advice to probe the camera's sub-stream too:
decoding costs in proportion to the pixels, and the detector scales every frame down to
its own input (416x416 for the default model) whatever the stream's size."""

FPS_MISMATCH = 0.2
"""Declared and measured frame rates further apart than this share are pointed out."""

DECODE_SHARE = 0.3
"""The share of the bench time given to decoding; the rest goes to the detector."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Which stream to analyse and which to keep for evidence.

    Attributes:
        analysis: Role of the stream to analyse (the smaller one).
        evidence: Role of the stream to keep as evidence (the larger one); ``None`` with
            one stream.
        notes: Advice in words, most important first.
        config: A camera config snippet (YAML) naming the analysis stream, its password
            named as an environment variable (``${CAM_..._PASSWORD}``), never written.
    """

    analysis: Role
    evidence: Role | None
    notes: list[str]
    config: str


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many cameras like the analysed stream this machine holds, every frame detected.

    Measured with ``argus bench``'s stages (:mod:`argus.bench.stages`) on frames of the
    analysis stream itself; the ceiling is ``argus bench``'s: decoding and detecting share
    the cores, ``1 / (1 / decode_fps + 1 / inference_fps)`` frames/s.

    Attributes:
        model: The detector model that ran.
        analysis_fps: Frames per second each camera needs analysed: its stream's rate
            (the pipeline analyses every frame it decodes; the config has no rate cap).
        decode_fps: Frames of the stream the machine decodes per second (all cores).
        inference_fps: Frames the detector runs on per second (batched).
        ceiling_fps: The two sharing the cores, frames/s.
        cameras: ``floor(ceiling_fps / analysis_fps)``: cameras held with every frame
            through the detector (a floor: with motion gating, quiet cameras cost less).
        seconds: Wall time the bench took, seconds.
    """

    model: str
    analysis_fps: float
    decode_fps: float
    inference_fps: float
    ceiling_fps: float
    cameras: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SiteProbe:
    """The report of ``argus cameras probe``.

    Attributes:
        streams: The probed streams by role (``main`` first).
        recommendation: Which to analyse, which to keep, advice, config snippet.
        capacity: The bench's figures (``None``: not measured, see ``capacity_error``).
        capacity_error: Why the capacity was not measured (``None`` when it was).
    """

    streams: dict[Role, StreamInfo]
    recommendation: Recommendation
    capacity: Capacity | None = None
    capacity_error: str | None = None


# ------------------------------------------------------------------ pure logic
def ceiling_fps(decode_fps: float, inference_fps: float) -> float:
    """Frames/s decoded and detected when both share the cores (``argus bench``'s
    ceiling); 0 when either rate is 0."""
    if decode_fps <= 0 or inference_fps <= 0:
        return 0.0
    return 1.0 / (1.0 / decode_fps + 1.0 / inference_fps)


def cameras_held(ceiling: float, analysis_fps: float) -> int:
    """Whole cameras of ``analysis_fps`` each within ``ceiling`` frames/s."""
    if analysis_fps <= 0 or ceiling <= 0:
        return 0
    return math.floor(ceiling / analysis_fps + 1e-9)


def camera_id_for(url: str) -> str:
    """A camera id for the config snippet: ``cam-`` and the host (``cam-10-0-0-5``), or
    the file's stem; always a valid id."""
    where = host_port(url)
    base = where[0] if where is not None else Path(url).stem
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "camera"
    return f"cam-{slug}"[:64]


def _size(s: StreamInfo) -> str:
    return f"{s.width}x{s.height}"


def gop_note(s: StreamInfo, keyframe_max_s: float) -> str | None:
    """Advice when the stream's keyframes come less often than ``keyframe_max_s``."""
    g = s.gop
    if g.interval_s is not None:
        if g.interval_s <= keyframe_max_s + 1e-6:
            return None
        return (
            f"keyframes every {g.interval_s:.1f} s: set the camera's I-frame interval (GOP) "
            f"to ≤ {keyframe_max_s:g} s, so a quiet camera is decoded at its keyframes only "
            "(gating.keyframe_max_s)"
        )
    if g.at_least_s > keyframe_max_s:
        return (
            f"one keyframe in {s.window_s:.0f} s (interval over {g.at_least_s:.1f} s): set "
            f"the camera's I-frame interval (GOP) to ≤ {keyframe_max_s:g} s"
        )
    return (
        f"one keyframe in {s.window_s:.0f} s: probe longer (--seconds) to measure the "
        "keyframe interval"
    )


def fps_note(s: StreamInfo) -> str | None:
    """Advice when the measured frame rate is far from the declared one."""
    if s.fps is None or s.declared_fps is None or s.declared_fps <= 0:
        return None
    if abs(s.fps - s.declared_fps) / s.declared_fps <= FPS_MISMATCH:
        return None
    return (
        f"{s.source} declares {s.declared_fps:g} fps but sent {s.fps:.1f} fps: check the "
        "camera's frame-rate setting (or its network)"
    )


def config_snippet(analysis: StreamInfo, evidence: StreamInfo | None) -> str:
    """The camera's config entry (YAML): the analysis stream as its ``source`` and the
    other, larger stream as its ``evidence_source`` (alert clips are cut from it), each
    password written as the same ``${CAM_<ID>_PASSWORD}`` reference.  Streams that are
    not network cameras (files) have no evidence stream: the other is named in a comment.
    """
    camera_id = camera_id_for(analysis.source)
    variable = password_variable(camera_id)

    def referenced(url: str) -> str:
        return url.replace(":***@", ":${" + variable + "}@", 1)

    source = referenced(analysis.source)
    lines = [
        "cameras:",
        f"  - id: {camera_id}",
        f"    source: {source}    # analysis stream ({_size(analysis)})",
    ]
    network = ("rtsp", "http", "stream")
    named = [source]
    if evidence is not None:
        if classify_source(analysis.source)[0] in network and (
            classify_source(evidence.source)[0] in network
        ):
            named.append(referenced(evidence.source))
            lines.append(
                f"    evidence_source: {named[-1]}    # evidence stream ({_size(evidence)}): "
                "alert clips are cut from it"
            )
        else:
            lines.append(
                f"    # the other stream, {evidence.source} ({_size(evidence)}), is not a "
                "network camera: a camera's evidence stream must be"
            )
    if any("${" + variable + "}" in n for n in named):
        lines.append(
            f"    # {variable}: the camera's password, from the environment (the "
            "service's EnvironmentFile), never in this file"
        )
    elif any("***" in n for n in named):
        lines.append("    # put the camera's password in place of ***")
    return "\n".join(lines)


def password_variable(camera_id: str) -> str:
    """The environment variable a camera's config names its password by:
    ``CAM_<ID>_PASSWORD`` (``cam-10.0.0.5`` -> ``CAM_10_0_0_5_PASSWORD``)."""
    stem = camera_id[4:] if camera_id.startswith("cam-") else camera_id
    return (
        "CAM_" + (re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_").upper() or "CAMERA") + "_PASSWORD"
    )


def recommend(
    main: StreamInfo, sub: StreamInfo | None, *, keyframe_max_s: float | None = None
) -> Recommendation:
    """Which stream to analyse (the smaller), which to keep for evidence (the larger),
    and advice on each.

    Args:
        main: The first stream given (the camera's main stream, as a rule).
        sub: The second (its sub-stream), or ``None``.
        keyframe_max_s: The keyframe interval activity-driven decoding wants, seconds
            (default: the config's ``gating.keyframe_max_s``).
    """
    kmax = GatingConfig().keyframe_max_s if keyframe_max_s is None else keyframe_max_s
    notes: list[str] = []
    if sub is None:
        analysis_role: Role = "main"
        evidence_role: Role | None = None
        if main.pixels > SUB_STREAM_ADVICE_PIXELS:
            notes.append(
                f"this stream is {_size(main)}: decoding costs in proportion to the pixels "
                "and the detector sees every frame scaled down anyway; if the camera has a "
                "sub-stream, probe both (argus cameras probe MAIN_URL SUB_URL) and analyse "
                "the sub-stream"
            )
    else:
        smaller_first = main.pixels < sub.pixels
        analysis_role, evidence_role = ("main", "sub") if smaller_first else ("sub", "main")
        if smaller_first:
            notes.append(
                f"the second stream ({_size(sub)}) is the larger: analyse the first "
                f"({_size(main)}), keep the second as evidence"
            )
        elif main.pixels == sub.pixels:
            notes.append(
                f"both streams are {_size(main)}: set the camera's sub-stream smaller (about "
                "640x360 to 1280x720) so analysis decodes fewer pixels"
            )
    streams = {"main": main, "sub": sub}
    analysis = streams[analysis_role]
    assert analysis is not None
    evidence = streams[evidence_role] if evidence_role is not None else None
    gop = gop_note(analysis, kmax)
    if gop is not None:
        notes.insert(0, gop)
    for s in (main, sub):
        if s is not None and (note := fps_note(s)) is not None:
            notes.append(note)
    return Recommendation(
        analysis=analysis_role,
        evidence=evidence_role,
        notes=notes,
        config=config_snippet(analysis, evidence),
    )


# ------------------------------------------------------------------ measuring
Probe = Callable[..., StreamInfo]


def probe_streams(
    urls: Sequence[str],
    *,
    seconds: float,
    timeout_s: float,
    record_dir: Path,
    probe: Probe = probe_stream,
) -> list[StreamInfo]:
    """Probe ``urls`` at once (one thread each), each window recorded under
    ``record_dir``.

    Raises:
        ingest.probe.ProbeError: the first stream (in ``urls`` order) that failed.
    """
    kmax = GatingConfig().keyframe_max_s

    def one(i: int) -> StreamInfo:
        return probe(
            urls[i],
            seconds=seconds,
            timeout_s=timeout_s,
            record_to=record_dir / f"stream{i}.mkv",
            gop_advice_s=kmax,
        )

    with ThreadPoolExecutor(max_workers=max(1, len(urls)), thread_name_prefix="probe") as ex:
        futures = [ex.submit(one, i) for i in range(len(urls))]
        errors: list[BaseException] = []
        results: list[StreamInfo] = []
        for fut in futures:
            try:
                results.append(fut.result())
            except ProbeError as e:
                errors.append(e)
        if errors:
            raise errors[0]
    return results


def bench_capacity(
    stream: StreamInfo,
    *,
    seconds: float,
    home: Path,
    detector: dict[str, Any] | None = None,
) -> Capacity:
    """Measure decode and detector throughput on ``stream``'s recorded window with
    ``argus bench``'s stages, in about ``seconds`` of wall time.

    Decoding: ``os.cpu_count()`` cameras decoding the recording (looped), as
    ``argus bench``'s decode-only stage.  The detector: the configured model (default:
    the config's default) alone on frames of the recording, batched, as its
    inference-only stage.

    Raises:
        ValueError: the stream has no recording to bench on.
        models.registry.ModelError: the model is missing or unusable.
        argus.config.ConfigError: ``detector`` settings refused.
    """
    from argus.bench import stages
    from argus.bench.footage import Footage

    if stream.recording is None or stream.recorded_frames < 1:
        raise ValueError("the probe window could not be recorded")
    t0 = time.monotonic()
    fps = stream.fps or 25.0
    frames = stream.recorded_frames
    ft = Footage(
        active=stream.recording,
        quiet=stream.recording,
        fps=fps,
        size=(stream.width, stream.height),
        frames=frames,
        codec=stream.codec,
        keyframe_s=stream.gop.interval_s,
    )
    n = max(1, os.cpu_count() or 1)
    # decoding: one pass of a few frames for the rate, then n cameras for the budget
    probe_n = min(frames, 10)
    first = stages.decode_only(ft, 1, probe_n)
    per_camera = max(probe_n, round(seconds * DECODE_SHARE * first.fps / n))
    dec = stages.decode_only(ft, n, per_camera)
    sample = stages.decoded_sample(ft, min(frames, 64))
    with tempfile.TemporaryDirectory(prefix="argus-probe-") as tmp:
        cfg = stages.bench_config(
            ft, [True], Path(tmp), realtime=False, gating=False, detector=dict(detector or {})
        )
    batch = cfg.detector.batch_size
    # the detector: two batches for the rate (the model loads and warms up untimed), then
    # the rest of the budget
    rough = stages.inference_only(cfg, sample, 2 * batch, home)
    left = max(0.5, seconds - (time.monotonic() - t0))
    total = max(batch, round(left * rough.fps / batch) * batch)
    inf = stages.inference_only(cfg, sample, total, home)
    ceiling = ceiling_fps(dec.fps, inf.fps)
    return Capacity(
        model=cfg.detector.model,
        analysis_fps=fps,
        decode_fps=dec.fps,
        inference_fps=inf.fps,
        ceiling_fps=ceiling,
        cameras=cameras_held(ceiling, fps),
        seconds=time.monotonic() - t0,
    )


def probe_site(
    main_url: str,
    sub_url: str | None = None,
    *,
    seconds: float = 5.0,
    timeout_s: float = 10.0,
    bench_seconds: float | None = 5.0,
    home: Path,
    detector: dict[str, Any] | None = None,
) -> SiteProbe:
    """Probe a camera's stream(s), recommend, and bench the analysis stream.

    Args:
        main_url: The main stream (or the only one).
        sub_url: The sub-stream, or ``None``.
        seconds: Probe window per stream, seconds of stream time.
        timeout_s: Connection and silence limit, seconds.
        bench_seconds: About how long the capacity bench runs, seconds; ``None``: no bench.
        home: ``$ARGUS_HOME`` (models).
        detector: ``detector`` config keys (``model``...); default: the config's defaults.

    Raises:
        ingest.probe.ProbeError: a stream cannot be probed.
    """
    urls = [main_url] if sub_url is None else [main_url, sub_url]
    with tempfile.TemporaryDirectory(prefix="argus-probe-") as tmp:
        infos = probe_streams(urls, seconds=seconds, timeout_s=timeout_s, record_dir=Path(tmp))
        main = infos[0]
        sub = infos[1] if len(infos) > 1 else None
        rec = recommend(main, sub)
        streams: dict[Role, StreamInfo] = {"main": main}
        if sub is not None:
            streams["sub"] = sub
        capacity: Capacity | None = None
        error: str | None = None
        if bench_seconds is not None:
            capacity, error = _bench(streams[rec.analysis], bench_seconds, home, detector)
        # the recordings go with the temporary folder: report no path to them
        streams = {role: _without_recording(s) for role, s in streams.items()}
    return SiteProbe(streams, rec, capacity, error)


def _without_recording(s: StreamInfo) -> StreamInfo:
    return replace(s, recording=None, recorded_frames=0)


def _bench(
    stream: StreamInfo, seconds: float, home: Path, detector: dict[str, Any] | None
) -> tuple[Capacity | None, str | None]:
    from argus.bench.footage import FootageError
    from argus.config import ConfigError
    from detectors.onnx_detector import InferenceError, ModelLoadError
    from ingest.errors import SourceError
    from models.registry import ModelError

    try:
        return bench_capacity(stream, seconds=seconds, home=home, detector=detector), None
    except (ModelError, ModelLoadError, InferenceError) as e:
        return None, f"{e} (`argus models pull` obtains the default detector)"
    except (ConfigError, FootageError, SourceError, ValueError) as e:
        return None, str(e)


# ------------------------------------------------------------------ output
def _f(v: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "–" if v is None else f"{v:{fmt}}{unit}"


def _gop_text(s: StreamInfo) -> str:
    g = s.gop
    if g.interval_frames is None:
        return f"one keyframe in {s.window_s:.1f} s (interval ≥ {g.at_least_s:.1f} s)"
    return f"{g.interval_frames:.0f} frames = {_f(g.interval_s, '.2f', ' s')}"


def table(report: SiteProbe) -> str:
    """The report as aligned text (for a terminal)."""
    rec = report.recommendation
    roles = list(report.streams)
    rows: list[tuple[str, list[str]]] = [
        ("url", [report.streams[r].source for r in roles]),
        ("codec", [_codec(report.streams[r]) for r in roles]),
        ("resolution", [_size(report.streams[r]) for r in roles]),
        ("fps", [_f(report.streams[r].fps) for r in roles]),
        ("keyframe interval", [_gop_text(report.streams[r]) for r in roles]),
        ("bitrate", [f"{report.streams[r].bitrate_kbps:.0f} kbit/s" for r in roles]),
        ("measured over", [f"{report.streams[r].window_s:.1f} s" for r in roles]),
        ("use for", [_use(rec, r) for r in roles]),
    ]
    width = max(len(k) for k, _ in rows)
    col = [max(len(r), *(len(v[i]) for _, v in rows)) for i, r in enumerate(roles)]
    lines = [
        f"{''.ljust(width)}  {'  '.join(r.ljust(col[i]) for i, r in enumerate(roles))}".rstrip()
    ]
    for k, values in rows:
        cells = "  ".join(v.ljust(col[i]) for i, v in enumerate(values))
        lines.append(f"{k.ljust(width)}  {cells}".rstrip())
    c = report.capacity
    if c is not None:
        lines.append("")
        lines.append(
            f"capacity: about {c.cameras} camera{'s' if c.cameras != 1 else ''} like the "
            f"{rec.analysis} stream on this machine ({c.analysis_fps:.0f} fps each, every "
            f"frame through {c.model}; with motion gating quiet cameras cost less)"
        )
        lines.append(
            f"  measured in {c.seconds:.1f} s: decode {c.decode_fps:.0f} fps, detector "
            f"{c.inference_fps:.0f} fps, both sharing the cores {c.ceiling_fps:.0f} fps "
            "(`argus bench` measures a full mix)"
        )
    elif report.capacity_error is not None:
        lines.append("")
        lines.append(f"capacity: not measured: {report.capacity_error}")
    if rec.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in rec.notes)
    lines.append("")
    lines.append("config:")
    lines.extend(f"  {line}" for line in rec.config.splitlines())
    return "\n".join(lines)


def _codec(s: StreamInfo) -> str:
    return f"{s.codec} ({s.profile})" if s.profile else s.codec


def _use(rec: Recommendation, role: Role) -> str:
    uses = []
    if rec.analysis == role:
        uses.append("analysis")
    if rec.evidence == role or rec.evidence is None:
        uses.append("evidence")
    return " + ".join(uses)


def _stream_json(s: StreamInfo) -> dict[str, Any]:
    return {
        "url": s.source,
        "kind": s.kind,
        "container": s.container,
        "codec": s.codec,
        "profile": s.profile,
        "width": s.width,
        "height": s.height,
        "fps": _r(s.fps, 2),
        "declared_fps": _r(s.declared_fps, 2),
        "keyframes": s.gop.keyframes,
        "keyframe_interval_frames": _r(s.gop.interval_frames, 1),
        "keyframe_interval_s": _r(s.gop.interval_s, 2),
        "bitrate_kbps": round(s.bitrate_kbps, 1),
        "window_s": round(s.window_s, 2),
        "frames": s.packets,
    }


def _r(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def to_json(report: SiteProbe) -> dict[str, Any]:
    """The report as a JSON-ready document."""
    rec = report.recommendation
    c = report.capacity
    return {
        "streams": {role: _stream_json(s) for role, s in report.streams.items()},
        "recommendation": {
            "analysis": rec.analysis,
            "evidence": rec.evidence,
            "notes": rec.notes,
            "config": rec.config,
        },
        "capacity": None
        if c is None
        else {
            "cameras": c.cameras,
            "model": c.model,
            "analysis_fps": round(c.analysis_fps, 2),
            "decode_fps": round(c.decode_fps, 1),
            "inference_fps": round(c.inference_fps, 1),
            "ceiling_fps": round(c.ceiling_fps, 1),
            "seconds": round(c.seconds, 2),
        },
        "capacity_error": report.capacity_error,
    }


def error_json(e: ProbeError) -> dict[str, Any]:
    """A probe failure as a JSON document (``{"error": {...}}``)."""
    return {"error": {"url": e.source, "problem": e.problem, "message": e.reason}}
