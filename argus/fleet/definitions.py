"""Camera definitions: what the fleet topic carries for each camera, and their checks.

A definition is one camera with its rules, under the key ``camera/<id>`` of the fleet
topic (compacted: the topic keeps the latest definition of every camera; a tombstone
removes the camera).  Its value, JSON::

    {"camera": {<CameraConfig>}, "rules": [<rule>, ...], "model": null | "<name>",
     "updated_at": <unix seconds>}

``model``: the camera needs this model (workers running another decline it); ``null``:
any worker whose model knows the classes the rules name.

Credentials are never part of a definition: a source URL names its password as a
reference, ``${NAME}`` (the worker's environment variable ``NAME``) or ``${file:/path}``
(the first line of a file on the worker, e.g. a container secret), expanded by the
worker when it opens the camera.  A definition whose URL holds a password itself is
refused, with the reason, before it is published and when it is read.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kafka.partitioner.default import murmur2

from argus.config import ArgusConfig, CameraConfig, ConfigError, RuleConfig, parse_config
from argus.paths import argus_home
from ingest.redact import secrets_in
from selector.rules.config import ID_PATTERN

CAMERA_PREFIX = "camera/"
"""Key prefix of a camera definition on the fleet topic."""

DEFAULT_FLEET_TOPIC = "argus.fleet"
DEFAULT_FLEET_PARTITIONS = 64
"""Partitions of a fleet topic created by Argus: the most workers one site can spread its
cameras over usefully is this (a partition is the unit a worker is assigned)."""

ENV_PREFIX = "CAM_"
"""Environment references name variables starting with this (``${CAM_GATE_PW}``)."""
MAX_CLOCK_SKEW_S = 86_400.0
"""A definition's ``updated_at`` may be at most this far in the future (clocks differ)."""

_ID_RE = re.compile(ID_PATTERN)
_REF_RE = re.compile(r"\$\{(?:(?P<env>[A-Za-z_][A-Za-z0-9_]*)|file:(?P<file>[^}]+))\}")
_REFS_ONLY = re.compile(r"(?:\$\{(?:[A-Za-z_][A-Za-z0-9_]*|file:[^}]+)\})+")


def is_reference(value: str) -> bool:
    """Whether a secret's place holds only credential references (``${CAM_X}``,
    ``${file:/run/secrets/x}``), not a secret."""
    return _REFS_ONLY.fullmatch(value) is not None


class SecretError(ValueError):
    """A source's credential reference cannot be resolved (the message names the reference,
    never a value)."""


@dataclass(frozen=True)
class CameraDefinition:
    """One camera of the fleet, validated.

    Attributes:
        camera: The camera (source with credential references, zones, lines, groups).
        rules: Its rules (each names this camera).
        model: The model the camera needs, or ``None`` (any that knows its classes).
        updated_at: UNIX time the definition was published.
    """

    camera: CameraConfig
    rules: tuple[RuleConfig, ...]
    model: str | None = None
    updated_at: float = 0.0

    @property
    def camera_id(self) -> str:
        return self.camera.id

    @property
    def key(self) -> str:
        return camera_key(self.camera.id)

    def to_value(self) -> dict[str, Any]:
        """The JSON value published under :attr:`key`."""
        return {
            "camera": self.camera.model_dump(mode="json"),
            "rules": [r.model_dump(mode="json") for r in self.rules],
            "model": self.model,
            "updated_at": self.updated_at,
        }

    def placement(self) -> tuple[str, str | None, tuple[str, ...]]:
        """What decides which workers can run the camera: (id, model, classes named)."""
        return (self.camera.id, self.model, classes_named(self.rules))


def camera_key(camera_id: str) -> str:
    """The fleet topic key of a camera: ``"camera/<id>"``."""
    return CAMERA_PREFIX + camera_id


def partition_of(camera_id: str, partitions: int) -> int:
    """The fleet topic partition of a camera: where Kafka's default partitioner puts its key
    (murmur2 of the key's UTF-8 bytes, positive, modulo the partition count)."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return int(murmur2(camera_key(camera_id).encode("utf-8")) & 0x7FFFFFFF) % partitions


def classes_named(rules: tuple[RuleConfig, ...] | list[RuleConfig]) -> tuple[str, ...]:
    """The class names a camera's rules ask for (sorted, unique)."""
    found: set[str] = set()
    for rule in rules:
        classes = getattr(rule, "classes", None)
        if isinstance(classes, list | tuple):
            found.update(str(c) for c in classes)
    return tuple(sorted(found))


def source_problem(source: str) -> str | None:
    """Why a definition's source may not be published, or None.  The message never repeats
    the source.

    Refused: spaces; a password or secret query value written out (it must be a
    reference); a reference anywhere else (a reference stands only where logs redact it,
    so a definition cannot send a worker's secrets to a host of its choosing); a
    reference to an environment variable not named ``CAM_...`` (the worker's own secrets,
    ``ARGUS_*``, are out of reach), or to a file by a relative path or through ``..``.
    """
    if any(c.isspace() for c in source):
        return "source must not contain spaces (percent-encode them in a URL: %20)"
    rest = source
    for value in secrets_in(source):
        if not is_reference(value):
            return (
                "source holds a password or secret: write it as a reference, ${CAM_NAME} "
                "(the worker's environment variable) or ${file:/run/secrets/name} (a secret "
                "file on the worker)"
            )
        rest = rest.replace(value, "", 1)
    if "${" in rest:
        return (
            "a reference may stand only for the password (rtsp://user:${CAM_NAME}@host/...) "
            "or a secret query value (?password=${CAM_NAME})"
        )
    for m in _REF_RE.finditer(source):
        problem = _reference_problem(m)
        if problem:
            return problem
    return None


def _reference_problem(m: re.Match[str]) -> str | None:
    name, path = m.group("env"), m.group("file")
    if name is not None and not name.startswith(ENV_PREFIX):
        return f"an environment reference must name a variable starting with {ENV_PREFIX}"
    if path is not None and (not path.startswith("/") or ".." in path.split("/")):
        return "a file reference must be an absolute path without '..'"
    return None


def secret_dirs() -> tuple[Path, ...]:
    """Where a file reference may point on this worker: ``/run/secrets`` (containers'
    secrets) and ``$ARGUS_HOME/secrets``."""
    return (Path("/run/secrets"), argus_home() / "secrets")


def resolve_source(
    source: str,
    environ: Mapping[str, str] | None = None,
    allowed_dirs: Sequence[Path] | None = None,
) -> str:
    """``source`` with every ``${CAM_...}`` / ``${file:/path}`` replaced by its value
    (percent-encoded in a URL).  Files only under ``allowed_dirs`` (default
    :func:`secret_dirs`).

    Raises:
        SecretError: A reference not allowed (see :func:`source_problem`), an environment
            variable unset, a file outside the secret folders or unreadable (the message
            names the reference only, never a value).
    """
    env = os.environ if environ is None else environ
    dirs = [d.resolve() for d in (secret_dirs() if allowed_dirs is None else allowed_dirs)]
    for m in _REF_RE.finditer(source):
        problem = _reference_problem(m)
        if problem:
            raise SecretError(problem)
    in_url = "://" in source  # a value in a URL is percent-encoded (an '@' or '/' in it)

    def one(m: re.Match[str]) -> str:
        value = raw(m)
        return quote(value, safe="") if in_url else value

    def raw(m: re.Match[str]) -> str:
        name, path = m.group("env"), m.group("file")
        if name is not None:
            value = env.get(name)
            if value is None:
                raise SecretError(f"environment variable {name} (named by the source) is not set")
            return value
        where = Path(path).resolve()
        if not any(where.is_relative_to(d) for d in dirs):
            raise SecretError(
                f"secret file {path} (named by the source) is not under "
                f"{' or '.join(str(d) for d in dirs)}"
            )
        try:
            with open(where, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as e:
            raise SecretError(
                f"secret file {path} (named by the source) cannot be read: {type(e).__name__}"
            ) from e

    return _REF_RE.sub(one, source)


def parse_definition(key: str, value: Any, source: str = "fleet") -> CameraDefinition:
    """Validate one fleet record (``key``, decoded JSON ``value``).

    The camera and its rules are checked as one config of that camera (the same checks as
    a config file: zones, lines, rule types, a rule naming an unknown zone), and the key
    must name the camera.

    Raises:
        ConfigError: With every problem, named by key.
    """
    where = f"{source} {key!r}"
    if not key.startswith(CAMERA_PREFIX) or not _ID_RE.fullmatch(key[len(CAMERA_PREFIX) :]):
        raise ConfigError(where, [f"key must be {CAMERA_PREFIX}<camera id>"])
    if not isinstance(value, Mapping):
        raise ConfigError(where, [f"value must be an object, got {type(value).__name__}"])
    unknown = sorted(set(value) - {"camera", "rules", "model", "updated_at"})
    problems = [f"{k}: unknown key (not allowed here)" for k in unknown]
    camera, rules, model = value.get("camera"), value.get("rules", []), value.get("model")
    updated_at = value.get("updated_at", 0.0)
    if not isinstance(camera, Mapping):
        problems.append("camera: must be an object")
    elif camera.get("id") != key[len(CAMERA_PREFIX) :]:
        problems.append(f"camera.id: must be the key's camera id {key[len(CAMERA_PREFIX) :]!r}")
    else:
        for field in ("source", "evidence_source"):
            if isinstance(camera.get(field), str) and (problem := source_problem(camera[field])):
                problems.append(f"camera.{field}: {problem}")
    if not isinstance(rules, list):
        problems.append("rules: must be a list")
    elif any(isinstance(r, Mapping) and r.get("camera") != camera_id_of(camera) for r in rules):
        problems.append("rules: every rule must name this camera")
    if model is not None and not (isinstance(model, str) and 0 < len(model) <= 128):
        problems.append("model: a model name or null")
    if (
        isinstance(updated_at, bool)
        or not isinstance(updated_at, int | float)
        or not 0 <= updated_at <= time.time() + MAX_CLOCK_SKEW_S
    ):
        problems.append("updated_at: must be UNIX seconds, not in the future")
    if problems:
        raise ConfigError(where, problems)
    assert isinstance(camera, Mapping) and isinstance(rules, list)
    try:
        cfg = parse_config({"cameras": [dict(camera)], "rules": list(rules)}, where)
    except ConfigError as e:  # named as in the definition: camera.zones.0, not cameras.0...
        raise ConfigError(where, [_as_definition(p) for p in e.problems]) from e
    return CameraDefinition(
        camera=cfg.cameras[0],
        rules=tuple(cfg.rules),
        model=model,
        updated_at=float(updated_at),
    )


def _as_definition(problem: str) -> str:
    if problem.startswith("cameras.0."):
        return "camera." + problem[len("cameras.0.") :]
    if problem.startswith("cameras.0:"):
        return "camera:" + problem[len("cameras.0:") :]
    return problem


def camera_id_of(camera: Any) -> Any:
    return camera.get("id") if isinstance(camera, Mapping) else None


def definitions_of(cfg: ArgusConfig, model: str | None = None) -> list[CameraDefinition]:
    """A site config's cameras as definitions (each with its rules), stamped now.

    Raises:
        ConfigError: A camera's source holds a password.
    """
    problems = [
        f"cameras.{i}.{field}: {p}"
        for i, cam in enumerate(cfg.cameras)
        for field, value in (("source", cam.source), ("evidence_source", cam.evidence_source))
        if value is not None and (p := source_problem(value)) is not None
    ]
    if problems:
        raise ConfigError("site", problems)
    now = time.time()
    return [
        CameraDefinition(
            camera=cam,
            rules=tuple(r for r in cfg.rules if r.camera == cam.id),
            model=model,
            updated_at=now,
        )
        for cam in cfg.cameras
    ]


__all__ = [
    "CAMERA_PREFIX",
    "DEFAULT_FLEET_PARTITIONS",
    "DEFAULT_FLEET_TOPIC",
    "CameraDefinition",
    "SecretError",
    "camera_key",
    "classes_named",
    "definitions_of",
    "parse_definition",
    "partition_of",
    "resolve_source",
    "source_problem",
]
