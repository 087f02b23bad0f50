"""The demo's control room made once per test session (fixture ``demo_room``).

Making the demo's videos from the real footage with the real model takes about half a
minute; the tests that need them (the videos themselves, ``argus demo`` served) share one
making.  A test that runs ``argus demo`` copies them into its own ``ARGUS_HOME`` with
:func:`seed_demo`, so nothing it does can touch another test's files.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from argus import demo
from argus.paths import BUNDLED_FOOTAGE, models_dir


@dataclass(frozen=True)
class DemoRoom:
    """The demo made once: its home, its cameras, what making it said, and how long it took."""

    home: Path
    cameras: list[demo.DemoCamera]
    said: list[str]
    seconds: float


@pytest.fixture(scope="session")
def demo_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRoom]:
    """The demo's videos made from the real footage with the real model (once a session)."""
    if not BUNDLED_FOOTAGE.is_file():
        pytest.skip(f"footage {BUNDLED_FOOTAGE} missing (Debian opencv-doc; `make footage`)")
    if not (models_dir() / "nanodet-g" / "manifest.json").is_file():
        pytest.skip("default model not pulled (`make model`)")
    home = tmp_path_factory.mktemp("demo-home")
    (home / "models").symlink_to(models_dir(), target_is_directory=True)
    said: list[str] = []
    t = time.monotonic()
    cams = demo.prepare_demo(BUNDLED_FOOTAGE, home, say=said.append)
    yield DemoRoom(home, cams, said, time.monotonic() - t)
    shutil.rmtree(home, ignore_errors=True)


def seed_demo(room: DemoRoom, home: Path) -> None:
    """Copy the made videos into ``home`` (an ``ARGUS_HOME``): ``argus demo`` reuses them."""
    shutil.copytree(demo.demo_dir(room.home), demo.demo_dir(home))
