"""ByteTracker on scripted box sequences (no model, no footage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.detections import Detections
from selector.tracker import ByteTracker, TrackerError, iou_matrix

FPS = 10.0


def dets(
    boxes: list[tuple[float, float, float, float]],
    scores: list[float] | None = None,
    classes: list[int] | None = None,
) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(n, 4),
        score=np.array(scores if scores is not None else [0.9] * n, np.float32),
        class_id=np.array(classes if classes is not None else [0] * n, np.int64),
        names=("person", "car"),
    )


def walker(
    x0: float, y0: float, vx: float, k: int, w: float = 40, h: float = 100
) -> tuple[float, float, float, float]:
    x = x0 + vx * k
    return (x, y0, x + w, y0 + h)


def ids_by_x(out: Detections) -> dict[int, float]:
    return {int(t): float(b[0]) for t, b in zip(out.tracker_id, out.xyxy, strict=True)}


@pytest.mark.unit
def test_iou_matrix_values_and_shape() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(m[1], [0.0, 0.0, 0.0])  # degenerate box: no NaN
    assert iou_matrix(np.empty((0, 4)), b).shape == (0, 3)


@pytest.mark.unit
def test_single_object_keeps_id_from_1_after_min_hits() -> None:
    tr = ByteTracker(frame_rate=FPS, min_hits=2)
    first = tr.update(dets([walker(100, 100, 8, 0)]), 0.0)
    assert len(first) == 0  # tentative: not reported yet
    for k in range(1, 20):
        out = tr.update(dets([walker(100, 100, 8, k)]), k / FPS)
        assert out.tracker_id.tolist() == [1]
        np.testing.assert_allclose(out.xyxy[0], walker(100, 100, 8, k))  # the detection's box


@pytest.mark.unit
def test_min_hits_1_reports_at_once() -> None:
    tr = ByteTracker(min_hits=1)
    assert tr.update(dets([(0, 0, 10, 20)]), 0.0).tracker_id.tolist() == [1]


@pytest.mark.unit
def test_two_people_crossing_keep_their_ids() -> None:
    tr = ByteTracker(frame_rate=FPS)
    # A walks right, B walks left at a slightly different depth; they overlap mid-way.
    seen: dict[int, list[float]] = {}
    for k in range(40):
        a = walker(100, 200, 10, k)
        b = walker(500, 215, -10, k, w=44, h=110)
        out = tr.update(dets([a, b], [0.9, 0.85]), k / FPS)
        for tid, x in ids_by_x(out).items():
            seen.setdefault(tid, []).append(x)
    assert sorted(seen) == [1, 2]
    for xs in seen.values():
        steps = np.diff(xs)
        # Each id moves monotonically in one direction: no swap at the crossing.
        assert np.all(steps > 0) or np.all(steps < 0), steps
    assert len(seen[1]) == len(seen[2]) == 39  # reported on every frame after frame 0


@pytest.mark.unit
def test_occluded_for_five_frames_keeps_id() -> None:
    tr = ByteTracker(frame_rate=FPS)
    for k in range(10):
        out = tr.update(dets([walker(50, 100, 12, k)]), k / FPS)
    assert out.tracker_id.tolist() == [1]
    for k in range(10, 15):  # fully occluded: no detection at all
        assert len(tr.update(dets([]), k / FPS)) == 0
        assert tr.lost_ids == [1]
    # Reappears where constant velocity puts it (60 px past the last box, 40 px wide:
    # no overlap with the last seen box, so only the motion model can re-find it).
    out = tr.update(dets([walker(50, 100, 12, 15)]), 1.5)
    assert out.tracker_id.tolist() == [1]
    assert tr.lost_ids == []


@pytest.mark.unit
def test_low_score_boxes_keep_track_alive_second_association() -> None:
    tr = ByteTracker(frame_rate=FPS, high_thresh=0.5, low_thresh=0.1)
    for k in range(5):
        tr.update(dets([walker(50, 100, 5, k)], [0.9]), k / FPS)
    for k in range(5, 10):  # partial occlusion: confidence drops below high_thresh
        out = tr.update(dets([walker(50, 100, 5, k)], [0.3]), k / FPS)
        assert out.tracker_id.tolist() == [1]
        assert out.score.tolist() == pytest.approx([0.3])
    # A low box far from any track starts nothing.
    out = tr.update(dets([walker(50, 100, 5, 10), (600, 400, 640, 500)], [0.9, 0.3]), 1.0)
    assert out.tracker_id.tolist() == [1]
    out = tr.update(dets([walker(50, 100, 5, 11), (600, 400, 640, 500)], [0.9, 0.3]), 1.1)
    assert out.tracker_id.tolist() == [1]


@pytest.mark.unit
def test_below_low_thresh_is_ignored() -> None:
    tr = ByteTracker(frame_rate=FPS, low_thresh=0.2)
    for k in range(3):
        tr.update(dets([walker(50, 100, 5, k)]), k / FPS)
    out = tr.update(dets([walker(50, 100, 5, 3)], [0.1]), 0.3)
    assert len(out) == 0
    assert tr.lost_ids == [1]


@pytest.mark.unit
def test_new_object_gets_new_id_and_ids_are_deterministic() -> None:
    def run() -> list[list[int]]:
        tr = ByteTracker(frame_rate=FPS)
        result = []
        for k in range(12):
            boxes = [walker(50, 100, 6, k)]
            if k >= 5:
                boxes.insert(0, walker(400, 300, -6, k - 5))  # newcomer, listed first
            result.append(tr.update(dets(boxes), k / FPS).tracker_id.tolist())
        return result

    a, b = run(), run()
    assert a == b
    assert a[1] == [1]
    assert a[6] == [1, 2]  # the newcomer is confirmed on its 2nd frame, id 2
    assert a[-1] == [1, 2]


@pytest.mark.unit
def test_unconfident_high_box_does_not_start_track() -> None:
    tr = ByteTracker(high_thresh=0.5, new_track_thresh=0.7)
    for k in range(5):
        assert len(tr.update(dets([(0, 0, 10, 20)], [0.6]), k / FPS)) == 0


@pytest.mark.unit
def test_time_based_buffer_drops_track_and_ids_are_not_reused() -> None:
    tr = ByteTracker(frame_rate=FPS, track_buffer_s=1.0)
    box = (100, 100, 140, 200)
    for k in range(5):
        tr.update(dets([box]), k / FPS)
    # Unseen for 0.8 s (8 frames, some dropped by the source): still re-found.
    tr.update(dets([]), 0.6)
    tr.update(dets([]), 1.0)
    assert tr.update(dets([box]), 1.2).tracker_id.tolist() == [1]
    assert tr.pop_ended_ids() == []
    # Unseen for more than 1.0 s, whatever the number of frames (here just two).
    tr.update(dets([]), 1.5)
    assert tr.lost_ids == [1]
    tr.update(dets([]), 2.3)
    assert tr.lost_ids == []
    assert tr.pop_ended_ids() == [1]
    assert tr.pop_ended_ids() == []
    tr.update(dets([box]), 2.4)
    assert tr.update(dets([box]), 2.5).tracker_id.tolist() == [2]


@pytest.mark.unit
def test_reset_forgets_tracks_and_clock_keeps_id_counter() -> None:
    tr = ByteTracker(min_hits=1)
    tr.update(dets([(0, 0, 10, 20)]), 5.0)
    tr.reset()
    assert tr.pop_ended_ids() == [1]
    assert tr.update(dets([(0, 0, 10, 20)]), 0.0).tracker_id.tolist() == [2]


@pytest.mark.unit
def test_empty_input_and_untracked_output_shape() -> None:
    tr = ByteTracker()
    out = tr.update(Detections.empty(("person",)), 0.0)
    assert len(out) == 0 and out.tracker_id.dtype == np.int64
    assert out.names == ("person",)


@pytest.mark.unit
def test_time_must_not_go_backwards() -> None:
    tr = ByteTracker()
    tr.update(dets([]), 1.0)
    with pytest.raises(TrackerError, match=r"0\.5"):
        tr.update(dets([]), 0.5)
    with pytest.raises(TrackerError, match="nan"):
        tr.update(dets([]), float("nan"))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"high_thresh": 1.5}, "high_thresh"),
        ({"low_thresh": -0.1}, "low_thresh"),
        ({"low_thresh": 0.6, "high_thresh": 0.5}, "low_thresh"),
        ({"new_track_thresh": 0.4}, "new_track_thresh"),
        ({"match_iou": 2.0}, "match_iou"),
        ({"track_buffer_s": -1.0}, "track_buffer_s"),
        ({"frame_rate": 0.0}, "frame_rate"),
        ({"min_hits": 0}, "min_hits"),
        ({"min_hits": 1.5}, "min_hits"),
    ],
)
@pytest.mark.unit
def test_bad_constructor_values_are_named(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(TrackerError, match=name):
        ByteTracker(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real footage

FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture(scope="module")
def hog_detections() -> list[Detections]:
    """Pedestrians on the first 60 frames of vtest.avi, found by OpenCV's HOG people detector.

    A real (if weak) detector independent of the Argus model; SVM margins are mapped to
    (0, 1) scores with a logistic function.
    """
    cv2 = pytest.importorskip("cv2")
    if not FOOTAGE.exists():
        pytest.skip(f"footage not installed: {FOOTAGE}")
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    cap = cv2.VideoCapture(str(FOOTAGE))
    frames: list[Detections] = []
    try:
        for _ in range(60):
            ok, img = cap.read()
            assert ok, "could not decode vtest.avi"
            rects, weights = hog.detectMultiScale(img, winStride=(8, 8), scale=1.1)
            r = np.asarray(rects, np.float32).reshape(-1, 4)
            margin = np.asarray(weights, np.float32).reshape(-1)
            frames.append(
                Detections(
                    xyxy=np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1),
                    score=(1.0 / (1.0 + np.exp(-margin))).astype(np.float32),
                    class_id=np.zeros(len(r), np.int64),
                    names=("person",),
                )
            )
    finally:
        cap.release()
    return frames


@pytest.mark.integration
def test_real_footage_ids_are_stable_and_deterministic(hog_detections: list[Detections]) -> None:
    def run() -> list[Detections]:
        tr = ByteTracker(frame_rate=10.0)
        return [tr.update(d, k / 10.0) for k, d in enumerate(hog_detections)]

    a, b = run(), run()
    assert all(np.array_equal(x.tracker_id, y.tracker_id) for x, y in zip(a, b, strict=True))
    n_dets = sum(len(d) for d in hog_detections)
    observations = [int(t) for out in a for t in out.tracker_id]
    ids = set(observations)
    assert n_dets > 100 and ids  # the detector does find the pedestrians
    for out, dets_k in zip(a, hog_detections, strict=True):
        assert len(set(out.tracker_id.tolist())) == len(out)  # no id twice in a frame
        for row in out.xyxy:  # every output box is one of the frame's detections
            assert np.any(np.all(dets_k.xyxy == row, axis=1))
    # Stable ids: on average a pedestrian keeps its id for many frames (a tracker
    # that re-identified nobody would have about one id per detection).
    assert len(observations) / len(ids) >= 8, (len(observations), sorted(ids))


def test_only_tentative_lost_or_moving_tracks_need_every_frame() -> None:
    import numpy as np

    from detectors.detections import Detections

    def dets(*boxes: tuple[float, float, float, float]) -> Detections:
        return Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            score=np.full((len(boxes),), 0.9, np.float32),
            class_id=np.zeros((len(boxes),), np.int64),
        )

    parked = ByteTracker(frame_rate=10.0)
    assert not parked.needs_every_frame()
    parked.update(dets((100, 100, 200, 160)), 0.0)
    assert parked.needs_every_frame()  # tentative
    for k in range(1, 30):
        parked.update(dets((100, 100, 200, 160)), k / 10)
    assert parked.active_ids and not parked.needs_every_frame()  # confirmed, standing still
    parked.update(dets(), 3.0)
    assert parked.needs_every_frame()  # lost: being looked for

    walker = ByteTracker(frame_rate=10.0)
    for k in range(30):
        x = 100 + 8.0 * k  # 80 px/s for a 100 px tall person: 0.8 heights per second
        walker.update(dets((x, 100, x + 40, 200)), k / 10)
    assert walker.active_ids and walker.needs_every_frame()
