"""Write a scenario's video, truth and config, and run the real ``argus run`` on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.accuracy.assets import FRAME_H, FRAME_W, Background, ObjectPatch
from benchmarks.accuracy.render import U8, encode, render_frames
from benchmarks.accuracy.scenarios import Scenario
from benchmarks.accuracy.sprites import SpriteBank

ARGUS = [sys.executable, "-m", "argus"]


def write_video(
    scn: Scenario,
    bank: SpriteBank,
    bgs: dict[str, Background],
    patches: Sequence[ObjectPatch],
    path: Path,
    post: Callable[[Iterator[U8]], Iterator[U8]] | None = None,
    size: tuple[int, int] = (FRAME_W, FRAME_H),
) -> int:
    """Render and encode ``scn`` to ``path`` (H.264 ``.mp4``); returns the frame count.

    ``post`` (default none) maps the rendered ``(FRAME_H, FRAME_W, 3)`` uint8 BGR frames
    to the frames encoded, ``(size[1], size[0], 3)`` uint8 BGR (``size`` = ``(width,
    height)`` px, default the rendered size).
    """
    if scn.sim is None:
        raise ValueError(f"{scn.name}: not simulated")
    frames = render_frames(
        scn.sim, scn.actors, scn.objects, bank, bgs[scn.background], patches, scn.effects, scn.seed
    )
    return encode(frames if post is None else post(frames), path, size=size)


def write_truth(scn: Scenario, path: Path) -> None:
    """The scenario's description and ground truth as JSON (next to its video)."""
    data = scn.describe()
    data["actors"] = [
        {
            "role": a.role,
            "t0_s": round(a.t0_s, 2),
            "sprite": a.seq,
            "start": [round(v, 1) for v in a.start],
            "steps": [repr(s) for s in a.steps],
        }
        for a in scn.actors
    ]
    data["effects"] = repr(scn.effects)
    path.write_text(json.dumps(plain(data), indent=1) + "\n")


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and tuples turned into plain Python (for YAML/JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def config_for(
    scn: Scenario,
    video: Path,
    work: Path,
    gating: dict[str, Any] | None = None,
    camera: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``argus run`` config of a scenario: its camera, its rules + camera_health, a
    JSON-lines sink and a private alert store/evidence folder under ``work``; ``gating``:
    the config's ``gating`` section (default: Argus's defaults); ``camera``: more keys of
    the camera (e.g. ``{"ground": {"estimate": false}}``)."""
    cam: dict[str, Any] = {
        "id": scn.name,
        "source": str(video),
        "realtime": False,
        **(camera or {}),
    }
    if scn.zones:
        cam["zones"] = [{"name": n, "polygon": p} for n, p in scn.zones.items()]
    if scn.lines:
        cam["lines"] = [{"name": n, "points": p} for n, p in scn.lines.items()]
    rules = [{**r, "camera": scn.name} for r in scn.rules]
    rules.append({"type": "camera_health", "camera": scn.name})
    cfg: dict[str, Any] = plain(
        {
            "cameras": [cam],
            "rules": rules,
            "sinks": [{"jsonl": str(work / "events.jsonl")}],
            "storage": {"sqlite": str(work / "alerts.db"), "evidence_dir": str(work / "evidence")},
            "evidence": {"clips": {"enabled": False}},  # accuracy, not evidence
        }
    )
    if gating:
        cfg["gating"] = dict(gating)
    return cfg


@dataclass(frozen=True, slots=True)
class RunResult:
    """Outcome of one ``argus run``.

    Attributes:
        returncode: Exit status of the process.
        wall_s: Wall time, seconds.
        tail: The last lines it printed (for error reports).
    """

    returncode: int
    wall_s: float
    tail: str


def run_argus(
    config: dict[str, Any],
    work: Path,
    home: Path,
    label: str,
    timeout_s: float = 3600.0,
    echo: bool = True,
) -> RunResult:
    """Write ``config`` to ``work/argus.yaml`` and run ``argus run`` on it (one process).

    Its output goes to ``work/argus.log`` and, prefixed with ``label``, to stdout (so
    its progress lines show); ``ARGUS_HOME`` is passed through.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "events.jsonl").unlink(missing_ok=True)  # the sink appends
    cfg_path = work / "argus.yaml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ)
    env["ARGUS_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    tail: deque[str] = deque(maxlen=40)
    t0 = time.monotonic()
    with (
        (work / "argus.log").open("w") as log,
        subprocess.Popen(
            [*ARGUS, "run", str(cfg_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip())
            if echo:
                print(f"    [{label}] {line.rstrip()}", flush=True)
            if time.monotonic() - t0 > timeout_s:
                proc.kill()
                break
        rc = proc.wait()
    return RunResult(rc, time.monotonic() - t0, "\n".join(tail))
