"""Real people cut out of real footage: walk-cycle sprites, a perspective fit, object patches.

Pipeline (run once, cached as ``.npz`` under the accuracy cache directory, keyed by a hash
of the footage, the model file and :data:`CODE_VERSION`):

1. Median background of the footage (every ``MEDIAN_STEP``-th frame).
2. The real detector (the registered ``nanodet-g`` ONNX model, CPU) and the real
   ByteTrack tracker over every frame, persons only.
3. Per track and frame: the box must be isolated (no other detection within a margin,
   away from the frame border); the foreground mask is ``max_c |frame - median| > T``
   inside the padded box, cleaned by morphology, reduced to its largest component,
   holes filled; its fill ratio and height must agree with the box.  A soft alpha
   (eroded, blurred mask) gives an RGBA crop; the foot point is the bottom centre of the
   mask.
4. Runs of at least ``MIN_RUN`` consecutive clean frames of one track become a
   :class:`SpriteSequence` (a walk cycle with its ground speed).
5. A linear perspective model ``height_px = a + b * foot_y`` fitted (least squares,
   one outlier-rejection pass) to every clean frame.

Object patches for the abandoned-object scenarios are cut from real imagery too (see
:func:`object_patches`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

CODE_VERSION = "sprites-v3"
"""Bump when the extraction changes: it is part of the cache key."""

SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = SAMPLES / "vtest.avi"
FPS = 10.0
MEDIAN_STEP = 3
DIFF_THRESHOLD = 28  # grey levels (max over B, G, R) separating a person from the median
MIN_RUN = 12  # frames (1.2 s at 10 fps) in a sprite sequence
MAX_RUN = 40  # frames kept per sequence (longer runs are split)
MIN_HEIGHT_PX = 55  # smaller people are too coarse to rescale up
PERSON_CLASS = 0


class ModelMissingError(RuntimeError):
    """The registered detector is not installed."""


@dataclass(frozen=True, slots=True)
class SpriteSequence:
    """Consecutive clean cut-outs of one real person walking.

    Attributes:
        rgba: ``(n, h, w, 4)`` uint8 crops, BGR + alpha (0 outside the person), each frame
            padded bottom/right with alpha 0 to the largest crop of the sequence.
        foot: ``(n, 2)`` float64 foot point (x, y) of each crop, crop pixels.
        height: ``(n,)`` float64 mask height of each frame, pixels of the source.
        src_foot: ``(n, 2)`` float64 foot point in the source frame, pixels.
        track_id: Tracker id in the source run.
        start_frame: Source frame index of the first crop.
    """

    rgba: U8
    foot: F64
    height: F64
    src_foot: F64
    track_id: int
    start_frame: int

    def __len__(self) -> int:
        return int(self.rgba.shape[0])

    @property
    def velocity(self) -> F64:
        """Mean foot velocity in the source, ``(2,)`` pixels per frame (x right, y down)."""
        d: F64 = (self.src_foot[-1] - self.src_foot[0]) / max(len(self) - 1, 1)
        return d

    @property
    def stride_h(self) -> float:
        """Ground distance walked per frame in body heights (>= 0.005): the gait's pace."""
        v = float(np.hypot(*self.velocity))
        return max(v / float(np.mean(self.height)), 0.005)

    @property
    def still_index(self) -> int:
        """Index of the narrowest pose (legs together): the one shown when standing."""
        widths = (self.rgba[..., 3] > 127).any(axis=1).sum(axis=1)
        return int(np.argmin(widths / self.height))


@dataclass(frozen=True, slots=True)
class SpriteBank:
    """Every sequence cut from one footage, with its perspective fit and background.

    Attributes:
        sequences: The clean walk cycles.
        persp: ``(a, b)``: person height in pixels is ``a + b * foot_y`` in the source.
        background: ``(H, W, 3)`` uint8 median background of the footage.
        key: Cache key the bank was stored under.
    """

    sequences: list[SpriteSequence]
    persp: tuple[float, float]
    background: U8
    key: str

    def height_at(self, foot_y: float) -> float:
        """Expected person height (px) for a foot at ``foot_y`` (px) in the source view."""
        a, b = self.persp
        return a + b * foot_y


def read_frames(path: Path) -> list[U8]:
    """Every frame of a video as BGR ``(H, W, 3)`` uint8."""
    cap = cv2.VideoCapture(str(path))
    frames: list[U8] = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame))
    cap.release()
    if not frames:
        raise RuntimeError(f"cannot read frames from {path}")
    return frames


def median_background(frames: list[U8], step: int = MEDIAN_STEP) -> U8:
    """Per-pixel median of every ``step``-th frame, ``(H, W, 3)`` uint8."""
    stack = np.stack(frames[::step])
    out: U8 = np.median(stack, axis=0).astype(np.uint8)
    return out


def model_paths(home: Path) -> tuple[Path, str]:
    """The registered detector's directory and its sha256; raises if it is not pulled."""
    from models.registry import load_manifest

    mdir = home / "models"
    if not (mdir / "nanodet-g" / "manifest.json").is_file():
        raise ModelMissingError(
            f"the detector nanodet-g is not installed under {mdir}; get it with "
            "`.venv/bin/argus models pull` (or `make model`)"
        )
    manifest = load_manifest(mdir, "nanodet-g", check_hash=False)
    return mdir, manifest.sha256


def track_footage(frames: list[U8], home: Path) -> dict[int, list[tuple[int, F64]]]:
    """Real detector + ByteTrack over ``frames`` at :data:`FPS`.

    Returns:
        ``{frame index: [(track id, box [x1, y1, x2, y2] px), ...]}`` of confirmed person
        tracks, and under key ``-1 - i`` the raw person boxes of frame ``i`` (tracked or
        not) with track id ``-1``, used for the isolation test.
    """
    from detectors.onnx_detector import OnnxDetector
    from models.registry import load_manifest
    from selector.tracker import ByteTracker

    mdir, _ = model_paths(home)
    spec = load_manifest(mdir, "nanodet-g").to_spec(mdir)
    det = OnnxDetector(spec, providers="cpu", classes=[PERSON_CLASS], conf_threshold=0.3)
    tracker = ByteTracker(frame_rate=FPS)
    out: dict[int, list[tuple[int, F64]]] = {}
    for start in range(0, len(frames), 8):
        for j, d in enumerate(det.detect(frames[start : start + 8])):
            i = start + j
            tracks = tracker.update(d, i / FPS)
            out[i] = [
                (int(tracks.tracker_id[k]), tracks.xyxy[k].astype(np.float64))
                for k in range(len(tracks))
            ]
            out[-1 - i] = [(-1, d.xyxy[k].astype(np.float64)) for k in range(len(d))]
    return out


def _fill_holes(mask: U8) -> U8:
    """``mask`` (0/255) with enclosed holes filled."""
    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask
    cv2.floodFill(flood, None, (0, 0), 255)
    holes = cv2.bitwise_not(flood[1:-1, 1:-1])
    out = np.asarray(cv2.bitwise_or(mask, holes), np.uint8)
    return out


def cut_person(frame: U8, background: U8, box: F64) -> tuple[U8, F64, float, F64] | None:
    """Cut one person out of ``frame`` inside ``box`` by background difference.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR frame.
        background: Its median background, same shape.
        box: ``[x1, y1, x2, y2]`` person box, pixels.

    Returns:
        ``(rgba crop (h, w, 4) uint8, foot point (2,) in crop px, mask height px,
        foot point (2,) in frame px)``, or ``None`` when the mask is not a plausible
        single person.
    """
    hgt, wid = frame.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    ex1 = max(int(x1 - 0.15 * bw), 0)
    ex2 = min(math.ceil(x2 + 0.15 * bw), wid)
    ey1 = max(int(y1 - 0.06 * bh), 0)
    ey2 = min(math.ceil(y2 + 0.06 * bh), hgt)
    crop = frame[ey1:ey2, ex1:ex2]
    diff = cv2.absdiff(crop, background[ey1:ey2, ex1:ex2]).max(axis=2)
    diff = cv2.GaussianBlur(diff, (3, 3), 0)
    mask = np.where(diff > DIFF_THRESHOLD, 255, 0).astype(np.uint8)
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_OPEN, k3), np.uint8)
    mask = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k5), np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = np.where(labels == big, 255, 0).astype(np.uint8)
    mask = _fill_holes(mask)
    ys, xs = np.nonzero(mask)
    mh = float(ys.max() - ys.min() + 1)
    fill = float(len(ys)) / float(bw * bh)
    if not (0.30 <= fill <= 0.85 and 0.8 * bh <= mh <= 1.12 * bh):
        return None
    # The bottom of the mask must be near the box bottom (feet found, not cut off).
    if abs((ey1 + ys.max()) - y2) > 0.1 * bh:
        return None
    my1, my2 = int(ys.min()), int(ys.max()) + 1
    mx1, mx2 = max(int(xs.min()) - 2, 0), min(int(xs.max()) + 3, mask.shape[1])
    my1, my2 = max(my1 - 2, 0), min(my2 + 2, mask.shape[0])
    alpha = cv2.erode(mask, k3).astype(np.float32)
    alpha = np.asarray(cv2.GaussianBlur(alpha, (5, 5), 1.0), np.float32)
    rgba = np.dstack([crop, np.clip(alpha, 0, 255).astype(np.uint8)])[my1:my2, mx1:mx2]
    bottom = ys.max()
    low = ys >= bottom - max(2, int(0.06 * mh))
    foot = np.array([float(xs[low].mean()) - mx1, float(bottom) - my1], np.float64)
    src_foot = foot + np.array([ex1 + mx1, ey1 + my1], np.float64)
    return np.ascontiguousarray(rgba), foot, mh, src_foot


def _isolated(box: F64, others: list[F64], width: int, height: int) -> bool:
    """``box`` is away from the border and no other box comes within 25 % of its width."""
    x1, y1, x2, y2 = box
    if x1 < 4 or y1 < 4 or x2 > width - 4 or y2 > height - 4:
        return False
    m = 0.25 * (x2 - x1)
    for o in others:
        if o[0] < x2 + m and o[2] > x1 - m and o[1] < y2 + m and o[3] > y1 - m:
            return False
    return True


def _runs(indices: list[int]) -> Iterator[list[int]]:
    """Split sorted frame indices into runs of consecutive values."""
    run: list[int] = []
    for i in indices:
        if run and i != run[-1] + 1:
            yield run
            run = []
        run.append(i)
    if run:
        yield run


def extract_sequences(
    frames: list[U8], background: U8, tracks: dict[int, list[tuple[int, F64]]]
) -> list[SpriteSequence]:
    """Clean walk-cycle sequences of every track (see the module docstring, step 3-4)."""
    hgt, wid = background.shape[:2]
    clean: dict[int, dict[int, tuple[U8, F64, float, F64]]] = {}
    for i in range(len(frames)):
        raw = [b for _, b in tracks.get(-1 - i, [])]
        for tid, box in tracks.get(i, []):
            if box[3] - box[1] < MIN_HEIGHT_PX:
                continue
            others = [b for b in raw if float(np.abs(b - box).max()) > 1.0]
            others += [b for t, b in tracks[i] if t != tid]
            if not _isolated(box, others, wid, hgt):
                continue
            cut = cut_person(frames[i], background, box)
            if cut is None:
                continue
            clean.setdefault(tid, {})[i] = cut
    sequences: list[SpriteSequence] = []
    for tid in sorted(clean):
        for run in _runs(sorted(clean[tid])):
            for s in range(0, len(run) - MIN_RUN + 1, MAX_RUN):
                part = run[s : s + MAX_RUN]
                if len(part) < MIN_RUN:
                    continue
                seq = _pack(tid, [clean[tid][i] for i in part], part[0])
                if seq is not None:
                    sequences.append(seq)
    return sequences


def _pack(tid: int, items: list[tuple[U8, F64, float, F64]], start: int) -> SpriteSequence | None:
    """One :class:`SpriteSequence` from per-frame cut-outs, or ``None`` if implausible."""
    heights = np.array([m for _, _, m, _ in items], np.float64)
    if float(np.std(heights) / np.mean(heights)) > 0.12:
        return None
    hmax = max(r.shape[0] for r, _, _, _ in items)
    wmax = max(r.shape[1] for r, _, _, _ in items)
    rgba = np.zeros((len(items), hmax, wmax, 4), np.uint8)
    for k, (r, _, _, _) in enumerate(items):
        rgba[k, : r.shape[0], : r.shape[1]] = r
    return SpriteSequence(
        rgba=rgba,
        foot=np.stack([f for _, f, _, _ in items]),
        height=heights,
        src_foot=np.stack([s for _, _, _, s in items]),
        track_id=tid,
        start_frame=start,
    )


def fit_perspective(sequences: list[SpriteSequence]) -> tuple[float, float]:
    """Least-squares ``height = a + b * foot_y`` over every frame, refit without outliers.

    Returns:
        ``(a, b)``: intercept in pixels and slope in pixels of height per pixel of foot y.
    """
    y = np.concatenate([s.src_foot[:, 1] for s in sequences])
    h = np.concatenate([s.height for s in sequences])
    b, a = np.polyfit(y, h, 1)
    resid = h - (a + b * y)
    keep = np.abs(resid) < 2.5 * float(np.std(resid)) + 1e-9
    b, a = np.polyfit(y[keep], h[keep], 1)
    return float(a), float(b)


def cache_key(video: Path, model_sha: str) -> str:
    """Hash of the footage identity, the model bytes' hash and :data:`CODE_VERSION`."""
    st = video.stat()
    ident = {
        "video": str(video.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "model": model_sha,
        "code": CODE_VERSION,
        "params": [MEDIAN_STEP, DIFF_THRESHOLD, MIN_RUN, MAX_RUN, MIN_HEIGHT_PX],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def save_bank(bank: SpriteBank, path: Path) -> None:
    """Write ``bank`` as one ``.npz`` (atomically: temp file then rename)."""
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "background": bank.background,
        "persp": np.array(bank.persp, np.float64),
        "count": np.array(len(bank.sequences)),
    }
    for k, s in enumerate(bank.sequences):
        arrays[f"s{k}_rgba"] = s.rgba
        arrays[f"s{k}_foot"] = s.foot
        arrays[f"s{k}_height"] = s.height
        arrays[f"s{k}_src_foot"] = s.src_foot
        arrays[f"s{k}_meta"] = np.array([s.track_id, s.start_frame], np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_bank(path: Path, key: str) -> SpriteBank:
    """Read a bank written by :func:`save_bank`."""
    with np.load(path) as z:
        seqs = []
        for k in range(int(z["count"])):
            meta = z[f"s{k}_meta"]
            seqs.append(
                SpriteSequence(
                    rgba=z[f"s{k}_rgba"],
                    foot=z[f"s{k}_foot"],
                    height=z[f"s{k}_height"],
                    src_foot=z[f"s{k}_src_foot"],
                    track_id=int(meta[0]),
                    start_frame=int(meta[1]),
                )
            )
        persp = z["persp"]
        return SpriteBank(seqs, (float(persp[0]), float(persp[1])), z["background"], key)


def sprite_bank(home: Path, cache_dir: Path, video: Path = VTEST) -> SpriteBank:
    """The sprite bank of ``video``: from the cache, else extracted (~1 min) and cached.

    Raises:
        ModelMissingError: The detector is not installed (the message says how to get it).
        FileNotFoundError: The footage is missing.
    """
    if not video.is_file():
        raise FileNotFoundError(f"footage {video} missing (Debian package opencv-doc)")
    _, sha = model_paths(home)
    key = cache_key(video, sha)
    path = cache_dir / "sprites" / f"{video.stem}-{key}.npz"
    if path.is_file():
        return load_bank(path, key)
    logger.info("extracting sprites from %s (cache miss, key %s)", video, key)
    frames = read_frames(video)
    background = median_background(frames)
    tracks = track_footage(frames, home)
    sequences = extract_sequences(frames, background, tracks)
    if len(sequences) < 4:
        raise RuntimeError(f"only {len(sequences)} clean sprite sequences in {video}")
    bank = SpriteBank(sequences, fit_perspective(sequences), background, key)
    save_bank(bank, path)
    return bank
