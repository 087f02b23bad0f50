"""The one data directory everything written at run time lives under."""

from __future__ import annotations

import os
from pathlib import Path


def argus_home() -> Path:
    """``$ARGUS_HOME`` if set, else ``$XDG_DATA_HOME/argus``, else ``~/.local/share/argus``.

    Models, footage caches, the alert store, snapshots and spools live here, never in
    the repository.  The directory is created on first use.
    """
    env = os.environ.get("ARGUS_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
        home = base / "argus"
    home.mkdir(parents=True, exist_ok=True)
    return home


def models_dir() -> Path:
    """Where converted and registered models are cached."""
    return argus_home() / "models"


BUNDLED_FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
"""The bundled default footage (Debian's opencv-doc: 768x576, 10 fps, 795 frames, people
walking on a plaza): the demo camera and the benchmarks' real footage."""
