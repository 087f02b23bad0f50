"""People masked in every frame of a clip, pre-roll included, with the real detector.

A generated crowd scene (the accuracy suite's generator knows every person's exact box in
every frame) is played through a file source into the camera's packet ring; the clip
maker the composition root builds (the real model, its masking threshold) makes the clip
of a window with people in it.  In every frame of the masked clip, inside every true person
box, the sharpness (variance of the Laplacian) is below 20 % of the original's; away from
the people the picture is unchanged but for the encoding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from alerts.clips import ClipJob, ClipMaker
from alerts.evidence import LocalEvidenceStore, masked_key
from alerts.masking import FEATHER, GROW, sharpness
from argus.app import clip_maker
from argus.config import parse_config
from argus.paths import argus_home
from benchmarks.accuracy.assets import FRAME_H, FRAME_W, backgrounds, object_patches
from benchmarks.accuracy.pipeline import write_video
from benchmarks.accuracy.scenarios import generate
from benchmarks.accuracy.sprites import sprite_bank
from ingest.file_source import FileSource
from ingest.packets import ClipPackets, PacketRing
from tests.e2e.conftest import VTEST, require_prerequisites

pytestmark = pytest.mark.e2e

CACHE = argus_home() / "bench" / "accuracy"
MARGIN = GROW + FEATHER + 0.2
"""How far a mask may reach beyond a true box, as a share of the box's larger side."""
CHANGED = 6.0
"""Grey levels of the smoothed masked-minus-unmasked difference that count as a change."""
MIN_BOX_PX = 12
"""True boxes less than this high or wide (a person almost wholly off the picture) are
not judged: a handful of pixels has no sharpness to speak of."""


def frames_of(path: Path) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return [
            (
                float((f.pts or 0) * (f.time_base or 0)),
                np.asarray(f.to_ndarray(format="bgr24"), np.uint8),
            )
            for f in c.decode(st)
        ]


def in_front(
    occluders: Sequence[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], float]], foot_y: float
) -> npt.NDArray[np.bool_]:
    """Pixels of the fixed things drawn over a person whose feet are at ``foot_y`` (those
    standing nearer the camera: lower in the picture), grown by 2 px (the Laplacian there
    sees their edge)."""
    mask = np.zeros((FRAME_H, FRAME_W), np.uint8)
    for ys, xs, base_y in occluders:
        if base_y > foot_y:
            mask[ys, xs] = 1
    return np.asarray(cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0)


def gray(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)


def test_every_person_is_blurred_in_every_frame_of_the_clip(tmp_path: Path) -> None:
    require_prerequisites()
    bank = sprite_bank(argus_home(), CACHE)
    bgs, patches = backgrounds(bank), object_patches(bank)
    scn = generate("crowding", 1, 11, bank, bgs, patches, quick=True)
    assert scn.sim is not None
    bg = bgs[scn.background]
    video = tmp_path / "crowd.mp4"
    n = write_video(scn, bank, bgs, patches, video)

    # the 15 s window with the most people in it (5 s before an "event" to 10 s after)
    present = np.sum([tr.present for tr in scn.sim.actors], axis=0)
    t_event = max(5.0, min(float(np.argmax(present)) / 10.0, n / 10.0 - 10.0))
    start, end = t_event - 5.0, t_event + 10.0

    cfg = parse_config({"cameras": [{"id": "crowd", "source": str(video)}], "rules": []})
    store = LocalEvidenceStore(tmp_path / "ev")
    maker = clip_maker(cfg, store, ["person"], argus_home(), "<test>")
    assert maker is not None
    ring = PacketRing("crowd", keep_s=16.0, max_bytes=32 << 20)
    got: list[ClipPackets | None] = []
    src = FileSource("crowd", video, realtime=False)
    src.packets = ring
    for frame in src.frames():
        if abs(frame.pts_s - t_event) < 0.05:
            ring.request(start, end, got.append)
    (clip,) = got
    assert clip is not None and clip.ended is None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    info = maker.make(ClipJob("crowd", "e1", "crowd/2026-12-06/e1.mp4", clip))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert info is not None and info.complete and info.frames == 150
    assert abs(info.start_s - start) < 0.1 and abs(info.end_s - end) < 0.1

    (tmp_path / "m.mp4").write_bytes(store.get(masked_key("crowd/2026-12-06/e1.mp4")))
    masked = frames_of(tmp_path / "m.mp4")
    # the same clip through the same encoder, nobody masked: what "unchanged" is compared
    # with (the masked copy is re-encoded, so it is never the camera's bits)
    plain_maker = ClipMaker(LocalEvidenceStore(tmp_path / "plain"), detector=None, person_ids=[0])
    assert plain_maker.make(ClipJob("crowd", "e1", "crowd/2026-12-06/e1.mp4", clip)) is not None
    (tmp_path / "p.mp4").write_bytes(
        (tmp_path / "plain" / masked_key("crowd/2026-12-06/e1.mp4")).read_bytes()
    )
    plain = frames_of(tmp_path / "p.mp4")
    source = dict(enumerate(img for _, img in frames_of(video)))
    assert len(masked) == 150
    ratios: list[float] = []
    worst: list[str] = []
    outside_diffs: list[float] = []
    changed: list[float] = []
    encoding: list[float] = []  # what the encoding alone changes there
    judged_boxes = 0
    for (t_rel, image), (_, unmasked) in zip(masked, plain, strict=True):
        k = round((info.start_s + t_rel) * 10)
        orig = source[k]
        g, g0, gp = gray(image), gray(orig), gray(unmasked)
        people = []
        for i, tr in enumerate(scn.sim.actors):
            if not tr.present[k] or np.isnan(tr.box[k, 0]):
                continue
            x1, y1, x2, y2 = (round(v) for v in tr.box[k])
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, FRAME_W), min(y2, FRAME_H)
            people.append(tr.box[k])
            if x2 - x1 < MIN_BOX_PX or y2 - y1 < MIN_BOX_PX:
                continue
            judged_boxes += 1
            # the person's pixels: the box less what stands in front of them (a lamp post
            # nearer the camera hides part of someone behind it: that is not them)
            mine = ~in_front(bg.occluders, float(tr.xy[k, 1]))[y1:y2, x1:x2]
            before = sharpness(g0[y1:y2, x1:x2], mine)
            ratio = sharpness(g[y1:y2, x1:x2], mine) / max(before, 1e-6)
            ratios.append(ratio)
            if ratio >= 0.2:
                worst.append(f"t={k / 10:.1f} s person {i} box {x1},{y1},{x2},{y2}: {ratio:.2f}")
        # away from everyone the picture is as the same encoding leaves it unmasked.  "Away":
        # beyond what a mask may reach from a true box -- its growth and fade (a share of
        # the box's larger side) and a detector's box being a little off
        away = np.ones((FRAME_H, FRAME_W), bool)
        for x1, y1, x2, y2 in people:
            m = MARGIN * max(x2 - x1, y2 - y1) + 8
            away[max(int(y1 - m), 0) : int(y2 + m), max(int(x1 - m), 0) : int(x2 + m)] = False
        # what the masking changed, not the encoder's noise: the difference smoothed
        smooth = cv2.GaussianBlur((g.astype(np.float32) - gp.astype(np.float32)), (9, 9), 0)
        changed.append(float((np.abs(smooth)[away] > CHANGED).mean()))
        outside_diffs.append(float(np.abs(g.astype(int) - gp.astype(int))[away].mean()))
        encoding.append(float(np.abs(gp.astype(int) - g0.astype(int))[away].mean()))
    assert judged_boxes > 150, "the window has people in it"
    assert not worst, f"{len(worst)} of {judged_boxes} person boxes not masked: {worst[:10]}"
    # away from people the masked copy is the unmasked encoding but for what the detector
    # takes for a person at its faint threshold (the tripod, now and then): privacy errs
    # that way, a little
    assert float(np.mean(changed)) < 0.03, f"the picture changed away from people: {changed}"
    assert max(changed) < 0.06, f"the picture changed away from people: {changed}"
    print(
        f"\nmasked clip of {info.frames} frames, {judged_boxes} person boxes: sharpness ratio "
        f"max {max(ratios):.3f}, median {float(np.median(ratios)):.3f}; mean grey difference "
        f"away from people (against the same encoding unmasked) max {max(outside_diffs):.2f} "
        f"(the encoding alone: mean {float(np.mean(encoding)):.2f}), "
        f"share changed by masking there (smoothed difference > {CHANGED}): mean "
        f"{float(np.mean(changed)):.2%}, max {max(changed):.2%}; "
        f"CPU {cpu:.1f} s, wall {wall:.1f} s "
        f"({VTEST.name} sprites)"
    )
