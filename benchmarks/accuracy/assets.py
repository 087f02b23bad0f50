"""Real backgrounds and real object patches the scenarios are composited from.

Backgrounds (all real photographs, none drawn):

* ``plaza`` — the median of ``vtest.avi`` (the camera the sprites come from): an
  elevated view over a path, a road and lawns, 768x576.  Perspective: the linear fit of
  the sprite bank (``height_px = a + b * foot_y``).
* ``plaza-reframed`` — the same median cropped to ``x 96..768, y 72..576`` (a tighter
  framing), scaled back to 768x576 (x1.143) and mirrored left-right: a second camera
  with different geometry; its perspective follows exactly from the crop and scale.
* ``street`` — ``leuvenA.jpg`` from the OpenCV samples (a cobbled street in Leuven's
  Groot Begijnhof, eye-level view, overcast like vtest), resized to 768x576.  Its
  perspective was measured by hand from the picture (horizon at y ~ 368, a 1.7 m person
  ~1.07 px per px below it); people walk on the cobbles only.

Objects for the abandoned-object scenarios, cut from real photographs:

* ``box`` — ``box.png`` (a photographed cardboard box face), rectangular alpha;
* ``bag`` — the black bag lying in vtest's plaza (median background), GrabCut;
* ``book`` — the blue hard-cover book standing in ``left.jpg``, GrabCut;
* ``jacket`` — the yellow garment lying on vtest's lawn (median background), GrabCut.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.accuracy.sprites import SAMPLES, SpriteBank

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

FRAME_W, FRAME_H = 768, 576


@dataclass(frozen=True, slots=True)
class Background:
    """A real empty scene people are composited onto.

    Attributes:
        name: Short name (used in scenario names and the report).
        image: ``(FRAME_H, FRAME_W, 3)`` uint8 BGR.
        persp: ``(a, b)``: a person whose feet are at ``y`` px is ``a + b * y`` px tall.
        walk: ``(k, 2)`` float64 polygon (pixels) where feet may be.
        foliage: Rectangles ``(x1, y1, x2, y2)`` (pixels) of textured vegetation, used by
            the foliage effect of quiet scenes.
        source: Where the picture comes from (for the report).
        depth_scale: Foreshortening of the ground: a ground distance across the view
            that spans ``d`` px spans about ``depth_scale * d`` px when it runs away from
            the camera (0.5 for the elevated plaza camera, less at eye level).
        occluders: Fixed things standing on the ground (lamp post, tripod): ``(ys, xs,
            base_y)``, their pixel coordinates and the y (px) of their foot.  Whatever
            stands behind them (foot above ``base_y``) is hidden by them.
    """

    name: str
    image: U8
    persp: tuple[float, float]
    walk: F64
    foliage: tuple[tuple[int, int, int, int], ...]
    source: str
    depth_scale: float = 0.5
    occluders: tuple[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], float], ...] = ()

    def height_at(self, foot_y: float) -> float:
        """Expected person height in pixels for feet at ``foot_y`` pixels (>= 8)."""
        a, b = self.persp
        return max(a + b * foot_y, 8.0)

    def inside_walk(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether ``(x, y)`` is in the walkable polygon, at least ``margin`` px inside."""
        d = cv2.pointPolygonTest(self.walk.astype(np.float32), (float(x), float(y)), True)
        return bool(d >= margin)


def _plaza_occluders(image: U8) -> list[tuple[U8, float]]:
    """Masks (0/255, frame size) and foot y of the lamp post with its sign and of the
    tripod standing in vtest's plaza (outlined by hand; the tripod's thin legs by their
    darkness within its box)."""
    post = np.zeros(image.shape[:2], np.uint8)
    cv2.rectangle(post, (423, 98), (437, 392), 255, -1)  # pole
    cv2.rectangle(post, (413, 202), (444, 243), 255, -1)  # sign
    arm = np.array([[399, 28], [420, 24], [428, 96], [420, 98], [412, 50], [398, 40]], np.int32)
    cv2.fillPoly(post, [arm], 255)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    tripod = np.zeros_like(post)
    box = grey[334:486, 455:528]
    tripod[334:486, 455:528] = np.where(box < 70, 255, 0).astype(np.uint8)
    tripod = np.asarray(cv2.dilate(tripod, np.ones((3, 3), np.uint8)), np.uint8)
    return [(post, 392.0), (tripod, 482.0)]


def _pixels(mask: U8, base_y: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], float]:
    ys, xs = np.nonzero(mask > 127)
    return ys, xs, base_y


def backgrounds(bank: SpriteBank) -> dict[str, Background]:
    """The three real backgrounds (see the module docstring), by name."""
    a, b = bank.persp
    plaza_occ = _plaza_occluders(bank.background)
    plaza = Background(
        name="plaza",
        image=bank.background,
        persp=(a, b),
        walk=np.array(
            [[0, 250], [280, 170], [560, 160], [768, 150], [768, 568], [0, 568]], np.float64
        ),
        foliage=((190, 0, 250, 80), (0, 60, 110, 110)),
        source="median of vtest.avi (OpenCV samples)",
        occluders=tuple(_pixels(m, y) for m, y in plaza_occ),
    )
    # Re-framed: crop x 96..768, y 72..576 of the plaza, scale s, mirror.
    x0, y0, s = 96, 72, FRAME_W / (FRAME_W - 96)

    def reframe_img(im: U8, interp: int) -> U8:
        out = cv2.flip(cv2.resize(im[y0:, x0:], (FRAME_W, FRAME_H), interpolation=interp), 1)
        return np.asarray(out, np.uint8)

    img = reframe_img(bank.background, cv2.INTER_CUBIC)

    def reframe(pts: F64) -> F64:
        out = (pts - np.array([x0, y0], np.float64)) * s
        out[:, 0] = FRAME_W - 1 - out[:, 0]
        return np.clip(out, [0, 0], [FRAME_W, FRAME_H - 8])

    reframed = Background(
        name="plaza-reframed",
        image=np.ascontiguousarray(img),
        # height' = s * (a + b * (y'/s + y0)) = s*a + s*b*y0 + b*y'
        persp=(s * a + s * b * y0, b),
        walk=reframe(
            np.array([[96, 230], [280, 175], [560, 165], [768, 155], [768, 576], [96, 576]], float)
        ),
        foliage=((600, 20, 768, 70), (0, 0, 120, 30)),
        source="median of vtest.avi cropped x96-768 y72-576, scaled 1.143, mirrored",
        occluders=tuple(
            _pixels(reframe_img(m, cv2.INTER_LINEAR), (y - y0) * s) for m, y in plaza_occ
        ),
    )
    leuven = cv2.imread(str(SAMPLES / "leuvenA.jpg"))
    if leuven is None:
        raise FileNotFoundError(SAMPLES / "leuvenA.jpg")
    sx, sy = FRAME_W / leuven.shape[1], FRAME_H / leuven.shape[0]
    street_img = np.asarray(
        cv2.resize(leuven, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC), np.uint8
    )
    k, horizon = 1.07, 360.0 * sy  # hand-measured, see the module docstring
    walk_orig = np.array(
        [
            [0, 472],
            [150, 440],
            [225, 410],
            [330, 408],
            [420, 425],
            [520, 448],
            [560, 485],
            [590, 530],
            [0, 530],
        ],
        np.float64,
    )
    street = Background(
        name="street",
        image=street_img,
        persp=(-k * horizon, k),
        walk=walk_orig * np.array([sx, sy]),
        foliage=((int(735 * sx), int(30 * sy), FRAME_W, int(300 * sy)),),
        source="leuvenA.jpg (OpenCV samples), resized to 768x576",
        depth_scale=0.22,
    )
    return {bg.name: bg for bg in (plaza, reframed, street)}


@dataclass(frozen=True, slots=True)
class ObjectPatch:
    """A real object cut out of a photograph.

    Attributes:
        name: Short name.
        rgba: ``(h, w, 4)`` uint8 BGR + alpha.
        height_h: Its height on screen in units of a person's height at the same foot y.
    """

    name: str
    rgba: U8
    height_h: float


def _grabcut(image: U8, rect: tuple[int, int, int, int]) -> U8:
    """RGBA crop of ``rect`` = ``(x1, y1, x2, y2)`` with a GrabCut foreground alpha."""
    x1, y1, x2, y2 = rect
    pad = 6
    px1, py1 = max(x1 - pad, 0), max(y1 - pad, 0)
    px2, py2 = min(x2 + pad, image.shape[1]), min(y2 + pad, image.shape[0])
    roi = np.ascontiguousarray(image[py1:py2, px1:px2])
    mask = np.zeros(roi.shape[:2], np.uint8)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        roi, mask, (x1 - px1, y1 - py1, x2 - x1, y2 - y1), bgd, fgd, 6, cv2.GC_INIT_WITH_RECT
    )
    fg = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n > 1:
        fg = np.where(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), 255, 0)
        fg = fg.astype(np.uint8)
    alpha = cv2.GaussianBlur(fg.astype(np.float32), (3, 3), 0.8)
    ys, xs = np.nonzero(fg)
    rgba = np.dstack([roi, np.clip(alpha, 0, 255).astype(np.uint8)])
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def object_patches(bank: SpriteBank) -> list[ObjectPatch]:
    """The four real object patches (see the module docstring)."""
    box_img = cv2.imread(str(SAMPLES / "box.png"))
    left_img = cv2.imread(str(SAMPLES / "left.jpg"))
    if box_img is None or left_img is None:
        raise FileNotFoundError(f"box.png / left.jpg missing under {SAMPLES}")
    left: U8 = np.asarray(left_img, np.uint8)
    box: U8 = np.asarray(box_img, np.uint8)[5:-5, 5:-5]
    box_alpha = np.full(box.shape[:2], 255, np.uint8)
    box_alpha[[0, -1], :] = 128
    box_alpha[:, [0, -1]] = 128
    return [
        ObjectPatch("box", np.ascontiguousarray(np.dstack([box, box_alpha])), 0.24),
        ObjectPatch("bag", _grabcut(bank.background, (398, 164, 428, 186)), 0.17),
        ObjectPatch("book", _grabcut(left, (262, 106, 406, 330)), 0.3),
        ObjectPatch("jacket", _grabcut(bank.background, (66, 494, 160, 528)), 0.16),
    ]
