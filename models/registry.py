"""The on-disk model registry: ``<models_dir>/<name>/{model.onnx, manifest.json}``.

* ``load_manifest`` - read and trust-check one model (sha256 of the ONNX vs the manifest).
* ``list_models`` - every readable manifest under ``models_dir``.
* ``install_model`` - atomically write an ONNX + manifest pair (used by ``pull`` and below).
* ``register_onnx`` - copy in a user's own Ultralytics YOLO (v5/v8/11) ONNX export, inspecting
  its input/output shapes to fill in or validate ``layout`` and ``input_size``.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from detectors.spec import Layout
from models.manifest import MANIFEST_FILE, ONNX_FILE, ModelManifest, Task

logger = logging.getLogger(__name__)


class ModelError(Exception):
    """Base class of every model registry / pull error (the CLI reports these)."""


class ModelNotFoundError(ModelError):
    """No model of that name is registered.

    ``install`` says how to obtain it (default: the default detector's ``argus models pull``).
    """

    def __init__(
        self,
        models_dir: Path,
        name: str,
        known: Sequence[str] = (),
        install: str = "run `argus models pull` to obtain the default model",
    ) -> None:
        hint = f" (registered: {', '.join(known)})" if known else ""
        super().__init__(f"model {name!r} is not installed in {models_dir}{hint}; {install}")
        self.models_dir = models_dir
        self.name = name


class ModelCorruptError(ModelError):
    """A registered model's files are unreadable or do not match the manifest.

    ``install`` says how to rebuild it (default: ``argus models pull --force``).
    """

    def __init__(
        self,
        path: Path,
        reason: str,
        install: str = "re-run `argus models pull --force` (or register the model again)",
    ) -> None:
        super().__init__(f"model files at {path} are not usable: {reason}; {install}")
        self.path = path
        self.reason = reason


class ModelTaskError(ModelError):
    """A registered model is of another task than the caller needs (a pose model named
    as the detector, or a detector as the pose model)."""

    def __init__(self, name: str, task: str, wanted: str) -> None:
        kind = {"detect": "a detector", "pose": "a pose model"}
        super().__init__(
            f"model {name!r} is {kind.get(task, task)}, not {kind.get(wanted, wanted)}"
        )
        self.name = name
        self.task = task
        self.wanted = wanted


class ModelRegistrationError(ModelError):
    """A user-supplied ONNX cannot be registered (shapes/layout/classes do not fit)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot register {path}: {reason}")
        self.path = path
        self.reason = reason


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(path: Path) -> ModelManifest:
    try:
        return ModelManifest.model_validate_json(path.read_bytes())
    except OSError as e:
        raise ModelCorruptError(path, f"cannot read manifest ({e})") from e
    except ValidationError as e:
        raise ModelCorruptError(path, f"invalid manifest ({e.error_count()} errors: {e})") from e


def load_manifest(
    models_dir: Path, name: str, *, check_hash: bool = True, task: Task | None = "detect"
) -> ModelManifest:
    """Load the manifest of model ``name`` and check its ONNX file.

    Args:
        models_dir: Registry root (``$ARGUS_HOME/models``).
        name: Registered model name, e.g. ``nanodet-g``.
        check_hash: Verify the ONNX sha256 against the manifest (about 20 ms for 15 MB).
        task: The task the caller needs (``"detect"``: a detector, ``"pose"``: a pose
            model); ``None`` accepts any.

    Raises:
        ModelNotFoundError: No ``<models_dir>/<name>/manifest.json``.
        ModelCorruptError: Unreadable/invalid manifest, missing ONNX, sha256 mismatch, or a
            manifest whose ``name`` differs from its folder.
        ModelTaskError: The model is of another task than ``task``.
    """
    path = models_dir / name / MANIFEST_FILE
    if not path.is_file():
        known = [m.name for m in list_models(models_dir)] if models_dir.is_dir() else []
        raise ModelNotFoundError(models_dir, name, known)
    manifest = _read_manifest(path)
    if manifest.name != name:
        raise ModelCorruptError(path, f"manifest names model {manifest.name!r}, folder is {name!r}")
    if task is not None and manifest.task != task:
        raise ModelTaskError(name, manifest.task, task)
    onnx_path = manifest.onnx_path(models_dir)
    if not onnx_path.is_file():
        raise ModelCorruptError(onnx_path, "ONNX file is missing")
    if check_hash:
        actual = sha256_of(onnx_path)
        if actual != manifest.sha256:
            raise ModelCorruptError(
                onnx_path, f"sha256 {actual} does not match the manifest's {manifest.sha256}"
            )
    return manifest


def list_models(models_dir: Path) -> list[ModelManifest]:
    """All models with a readable manifest under ``models_dir``, sorted by name.

    Broken entries are logged at WARNING and skipped; hashes are not checked here.
    """
    if not models_dir.is_dir():
        return []
    found: list[ModelManifest] = []
    for sub in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        path = sub / MANIFEST_FILE
        if not path.is_file():
            continue
        try:
            found.append(_read_manifest(path))
        except ModelCorruptError as e:
            logger.warning("skipping %s: %s", sub, e)
    return found


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_model(models_dir: Path, manifest: ModelManifest, onnx_bytes: bytes) -> Path:
    """Write ``model.onnx`` + ``manifest.json`` into ``<models_dir>/<name>/`` atomically.

    The old manifest is removed first and the new one written last (both via temp file +
    rename), so an interrupted install reads as "not installed", never as a mismatch.

    Raises:
        ModelCorruptError: ``onnx_bytes`` do not hash to ``manifest.sha256``.
    """
    target = manifest.model_dir(models_dir)
    if hashlib.sha256(onnx_bytes).hexdigest() != manifest.sha256:
        raise ModelCorruptError(target, "ONNX bytes do not match the manifest sha256")
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_FILE).unlink(missing_ok=True)
    _atomic_write(target / manifest.onnx_file, onnx_bytes)
    _atomic_write(target / MANIFEST_FILE, manifest.to_json().encode("utf-8"))
    logger.info("installed model %s in %s (sha256 %s)", manifest.name, target, manifest.sha256)
    return target


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    """Dims of a graph input/output: ints, or the symbolic name (``"?"`` if unnamed)."""
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def _ultralytics_names(model: onnx.ModelProto) -> list[str] | None:
    """Class names from an Ultralytics export's ``names`` metadata (``{0: 'person', ...}``)."""
    for prop in model.metadata_props:
        if prop.key == "names":
            try:
                names = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
    return None


def register_onnx(
    models_dir: Path,
    name: str,
    onnx_path: Path,
    classes: Sequence[str] | None = None,
    layout: Layout | None = None,
    input_size: tuple[int, int] | None = None,
    licence: str = "AGPL-3.0",
    source: str | None = None,
) -> ModelManifest:
    """Register a user's own Ultralytics YOLO ONNX export (``yolo export format=onnx``).

    The input must be ``[B, 3, H, W]`` float (NCHW, RGB/255, letterbox 114 - the
    Ultralytics conventions).  One output is expected: ``[B, 4 + C, N]`` (``yolov8``, also
    YOLO11) or ``[B, N, 5 + C]`` (``yolov5``).

    Args:
        models_dir: Registry root.
        name: Name to register under (folder name).
        onnx_path: The exported ``.onnx`` (copied in, the original is untouched).
        classes: Class names; default: the export's ``names`` metadata.
        layout: ``"yolov5"`` or ``"yolov8"``; default: inferred from the output shape.
        input_size: ``(width, height)``; default: from the input shape (required if dynamic).
        licence: Licence of the weights (Ultralytics models are AGPL-3.0 unless licensed).
        source: Provenance text; default: the original path.

    Returns:
        The written manifest.

    Raises:
        ModelRegistrationError: Unreadable ONNX, or shapes/classes/layout that do not fit.
    """
    try:
        data = onnx_path.read_bytes()
        model = onnx.load_model_from_string(data)
    except OSError as e:
        raise ModelRegistrationError(onnx_path, f"cannot read file ({e})") from e
    except DecodeError as e:
        raise ModelRegistrationError(onnx_path, f"not an ONNX model ({e})") from e
    init_names = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ModelRegistrationError(onnx_path, f"expected 1 input, found {len(inputs)}")
    in_dims = _dims(inputs[0])
    if len(in_dims) != 4 or in_dims[1] != 3:
        raise ModelRegistrationError(onnx_path, f"input shape {in_dims} is not [B, 3, H, W]")
    h, w = in_dims[2], in_dims[3]
    if isinstance(h, int) and isinstance(w, int):
        if input_size is not None and tuple(input_size) != (w, h):
            raise ModelRegistrationError(
                onnx_path, f"input_size {input_size} disagrees with the graph's {(w, h)}"
            )
        size = (w, h)
    elif input_size is None:
        raise ModelRegistrationError(onnx_path, f"dynamic input {in_dims}: pass input_size")
    else:
        size = (int(input_size[0]), int(input_size[1]))
    names = list(classes) if classes is not None else _ultralytics_names(model)
    if not names:
        raise ModelRegistrationError(onnx_path, "no class names given and none in the metadata")
    if len(model.graph.output) != 1:
        raise ModelRegistrationError(
            onnx_path, f"expected 1 output (YOLO export), found {len(model.graph.output)}"
        )
    out = _dims(model.graph.output[0])
    n_cls = len(names)
    candidates: list[Layout] = []
    if len(out) == 3 and out[1] == 4 + n_cls:
        candidates.append("yolov8")
    if len(out) == 3 and out[2] == 5 + n_cls:
        candidates.append("yolov5")
    if not candidates:
        raise ModelRegistrationError(
            onnx_path,
            f"output shape {out} fits neither yolov8 [B, {4 + n_cls}, N] "
            f"nor yolov5 [B, N, {5 + n_cls}] for {n_cls} classes",
        )
    if layout is None:
        chosen = candidates[0]
    elif layout in candidates:
        chosen = layout
    else:
        raise ModelRegistrationError(
            onnx_path, f"layout {layout!r} does not fit output {out} (fits {candidates})"
        )
    try:
        manifest = ModelManifest(
            name=name,
            classes=names,
            input_size=size,
            input_layout="NCHW",
            channel_order="RGB",
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            scale=1.0 / 255.0,
            letterbox=True,
            pad_value=114,
            layout=chosen,
            dynamic_batch=not isinstance(in_dims[0], int),
            licence=licence,
            source=source or str(onnx_path),
            upstream="Ultralytics export (https://github.com/ultralytics/ultralytics)",
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=datetime.now(UTC),
        )
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ModelRegistrationError(onnx_path, problems) from e
    install_model(models_dir, manifest, data)
    return manifest


__all__ = [
    "ONNX_FILE",
    "ModelCorruptError",
    "ModelError",
    "ModelNotFoundError",
    "ModelRegistrationError",
    "ModelTaskError",
    "install_model",
    "list_models",
    "load_manifest",
    "register_onnx",
    "sha256_of",
]
