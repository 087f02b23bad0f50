"""Choosing and configuring onnxruntime execution providers.

Order of preference: TensorRT > CUDA > (other available providers) > CPU.  The CPU
provider is always appended as the last resort, because onnxruntime runs any node an
accelerator cannot take on it.  Every fallback is logged, and after the session is
created ``log_loaded_providers`` compares what was asked for with what
``session.get_providers()`` reports: onnxruntime silently drops CUDA/TensorRT when their
shared libraries (CUDA, cuDNN, TensorRT) cannot be loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

logger = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# Priority order of the providers this package knows how to configure.
PREFERRED_ORDER: tuple[str, ...] = (TENSORRT, CUDA, CPU)

# Short aliases accepted in configuration files.
ALIASES: dict[str, str] = {
    "tensorrt": TENSORRT,
    "trt": TENSORRT,
    "cuda": CUDA,
    "gpu": CUDA,
    "cpu": CPU,
}

ProviderPreference = str | Sequence[str]
ProviderConfig = tuple[str, dict[str, str]]


class ProviderError(ValueError):
    """A provider preference that cannot be understood."""

    def __init__(self, message: str, value: object):
        super().__init__(f"{message}: {value!r}")
        self.value = value


def _short(name: str) -> str:
    return name.removesuffix("ExecutionProvider")


def _canonical(name: str) -> str:
    return ALIASES.get(name.lower(), name)


def _rank(name: str) -> int:
    # TensorRT 0, CUDA 1, unknown accelerators 2, CPU 3.
    if name == TENSORRT:
        return 0
    if name == CUDA:
        return 1
    if name == CPU:
        return 3
    return 2


def select_providers(
    preference: ProviderPreference = "auto", available: Sequence[str] | None = None
) -> list[str]:
    """The execution providers to request, best first, always ending with CPU.

    Args:
        preference: ``"auto"`` (TensorRT, CUDA, CPU, whichever are available), one
            provider name, or a list of names (full names like ``"CUDAExecutionProvider"``
            or aliases ``"tensorrt"``/``"trt"``, ``"cuda"``/``"gpu"``, ``"cpu"``).
        available: Providers of this onnxruntime build; default
            ``onnxruntime.get_available_providers()`` (a parameter so tests can fake it).

    Returns:
        Requested providers that are available, in the order TensorRT > CUDA > others >
        CPU, with CPU last.

    Raises:
        ProviderError: the preference is empty or not a string/sequence of strings.
    """
    avail = list(ort.get_available_providers() if available is None else available)
    if isinstance(preference, str):
        if preference.lower() == "auto":
            chosen = [p for p in PREFERRED_ORDER if p in avail or p == CPU]
            missing = [p for p in (TENSORRT, CUDA) if p not in avail]
            if missing:
                logger.info(
                    "providers=auto: %s not available in this onnxruntime build (%s)",
                    ", ".join(_short(p) for p in missing),
                    ", ".join(avail) or "none",
                )
            logger.info("providers=auto: using %s", " > ".join(_short(p) for p in chosen))
            return chosen
        requested = [preference]
    else:
        requested = list(preference)
    if not requested or not all(isinstance(p, str) and p for p in requested):
        raise ProviderError("providers must be 'auto' or a non-empty list of names", preference)
    wanted: list[str] = []
    for name in map(_canonical, requested):
        if name not in wanted:
            wanted.append(name)
    chosen = []
    for name in sorted(wanted, key=_rank):
        if name in avail or name == CPU:
            chosen.append(name)
        else:
            logger.warning(
                "%s requested but not available in this onnxruntime build (available: %s)",
                _short(name),
                ", ".join(avail) or "none",
            )
    if CPU not in chosen:
        chosen.append(CPU)
    if chosen == [CPU] and wanted != [CPU]:
        logger.warning("no requested accelerator is available; using CPU")
    else:
        logger.info("execution providers: %s", " > ".join(_short(p) for p in chosen))
    return chosen


def provider_configs(
    providers: Sequence[str],
    *,
    device_id: int = 0,
    trt_fp16: bool = True,
    trt_cache_dir: Path | None = None,
    trt_profile: tuple[str, Sequence[int], Sequence[int], Sequence[int]] | None = None,
) -> list[ProviderConfig]:
    """``(name, options)`` pairs for ``onnxruntime.InferenceSession(providers=...)``.

    Args:
        providers: Names from ``select_providers``.
        device_id: CUDA device index for TensorRT and CUDA.
        trt_fp16: Let TensorRT build FP16 kernels (about 2x faster on recent GPUs).
        trt_cache_dir: Directory for TensorRT engine and timing caches (created if missing);
            without it the engine is rebuilt at every start (tens of seconds to minutes).
        trt_profile: ``(input_name, min_shape, opt_shape, max_shape)`` optimisation profile
            for a dynamic input (e.g. batch 1..8), so TensorRT builds one engine for the
            whole range instead of rebuilding for each new batch size.

    Returns:
        One entry per provider, options as strings (onnxruntime's convention).
    """
    configs: list[ProviderConfig] = []
    for name in providers:
        options: dict[str, str] = {}
        if name == TENSORRT:
            options["device_id"] = str(device_id)
            options["trt_fp16_enable"] = str(bool(trt_fp16))
            if trt_cache_dir is not None:
                cache = Path(trt_cache_dir)
                cache.mkdir(parents=True, exist_ok=True)
                options["trt_engine_cache_enable"] = "True"
                options["trt_engine_cache_path"] = str(cache)
                options["trt_timing_cache_enable"] = "True"
                options["trt_timing_cache_path"] = str(cache)
            if trt_profile is not None:
                input_name, lo, opt, hi = trt_profile

                def fmt(shape: Sequence[int], input_name: str = input_name) -> str:
                    return f"{input_name}:" + "x".join(str(int(d)) for d in shape)

                options["trt_profile_min_shapes"] = fmt(lo)
                options["trt_profile_opt_shapes"] = fmt(opt)
                options["trt_profile_max_shapes"] = fmt(hi)
        elif name == CUDA:
            options["device_id"] = str(device_id)
            # Fixed input shapes: let cuDNN benchmark conv algorithms once.
            options["cudnn_conv_algo_search"] = "EXHAUSTIVE"
        configs.append((name, options))
    return configs


def session_options(intra_op_threads: int | None = None) -> ort.SessionOptions:
    """Session options: full graph optimisation, ``intra_op_threads`` CPU threads that do
    not spin-wait between runs.

    Args:
        intra_op_threads: Threads for one operator on CPU; ``None`` = all cores
            (``os.cpu_count()``).  Use fewer when several detectors share the machine.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = intra_op_threads if intra_op_threads is not None else (os.cpu_count() or 1)
    if threads < 1:
        raise ProviderError("intra_op_threads must be >= 1", intra_op_threads)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No spin-waiting after a run: the detector shares the cores with the decode threads,
    # and a spinning pool burnt ~55 ms of CPU per run in 50 ms gaps (nanodet-g, 2 threads,
    # 2-core EPYC) while they waited; the run itself is as fast (34 ms either way).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def log_loaded_providers(requested: Sequence[str], session: Any) -> list[str]:
    """Log which providers the session really uses and warn about silent fallbacks.

    Args:
        requested: Names passed to the session, best first.
        session: An ``onnxruntime.InferenceSession`` (anything with ``get_providers()``).

    Returns:
        ``session.get_providers()`` as a list.
    """
    loaded = list(session.get_providers())
    dropped = [p for p in requested if p not in loaded]
    if dropped:
        logger.warning(
            "onnxruntime could not load %s (missing CUDA/cuDNN/TensorRT libraries?); running on %s",
            ", ".join(_short(p) for p in dropped),
            " > ".join(_short(p) for p in loaded),
        )
    else:
        logger.info("session providers: %s", " > ".join(_short(p) for p in loaded))
    return loaded


__all__ = [
    "ALIASES",
    "CPU",
    "CUDA",
    "PREFERRED_ORDER",
    "TENSORRT",
    "ProviderConfig",
    "ProviderError",
    "ProviderPreference",
    "log_loaded_providers",
    "provider_configs",
    "select_providers",
    "session_options",
]
