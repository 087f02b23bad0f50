"""The setup view's own checks (``alerts/api/static/shapes.js``, run in Node) agree with the
service: a polygon the page calls self-intersecting is one the fleet refuses, and the
other way round; the arrow the page draws for a line points to the side the line-crossing
rule calls "+" (``cross(p2 - p1, q - p1) > 0``); a zone outside the frame, too few
vertices and twice the same name are named in words.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.control import InProcessControl
from argus.fleet.admin import FleetAdmin
from argus.fleet.view import FleetView
from selector.zones import _cross

pytestmark = pytest.mark.unit

NODE = shutil.which("node")
SHAPES = resources.files("alerts.api") / "static" / "shapes.js"
POLYGONS = [
    [[0, 0], [10, 10], [10, 0], [0, 10]],  # a bow tie
    [[0, 0], [10, 0], [10, 10], [0, 10]],
    [[0, 0], [10, 0], [5, 5], [10, 10], [0, 10]],  # concave
    [[0, 0], [10, 0], [0, 0], [0, 10]],  # doubles back on itself
    [[0, 0], [20, 0], [20, 20], [10, -5], [0, 20]],  # an edge through another
    [[100, 100], [300, 100], [300, 300], [200, 50], [100, 300]],
]
LINES = [[[0, 0], [10, 0]], [[5, 5], [5, 100]], [[300, 40], [20, 400]], [[7, 9], [-3, -30]]]


def _node(script: str, tmp_path: Path) -> Any:
    if NODE is None:
        pytest.skip("node not installed")
    path = tmp_path / "run.mjs"
    path.write_text(f'import * as s from "{Path(str(SHAPES)).as_uri()}";\n{script}')
    out = subprocess.run([NODE, str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _server_refuses(polygon: list[list[int]]) -> bool:
    admin = FleetAdmin(FleetView(8), InProcessControl())
    camera = {"id": "c1", "source": "/tmp/x.mp4", "zones": [{"name": "z", "polygon": polygon}]}
    problems = admin.problems("c1", {"camera": camera, "rules": []})
    return any("intersects itself" in p for p in problems)


def test_the_page_calls_self_intersecting_what_the_fleet_refuses(tmp_path: Path) -> None:
    page = _node(
        f"console.log(JSON.stringify({json.dumps(POLYGONS)}.map((p) => s.selfIntersects(p))));",
        tmp_path,
    )
    server = [_server_refuses(p) for p in POLYGONS]
    assert page == server
    assert server[0] and not server[1]  # the cases mean something


def test_the_line_arrow_points_to_the_plus_side(tmp_path: Path) -> None:
    normals = _node(
        f"console.log(JSON.stringify({json.dumps(LINES)}.map(([a, b]) => s.plusNormal(a, b))));",
        tmp_path,
    )
    for (a, b), n in zip(LINES, normals, strict=True):
        p1, p2 = np.array(a, float), np.array(b, float)
        tip = (p1 + p2) / 2 + np.array(n) * 5
        assert float(_cross(p1, p2, tip)) > 0, (a, b, n)  # the "+" side of the rule


def test_problems_are_named_in_words(tmp_path: Path) -> None:
    zones = [
        {"name": "door", "polygon": [[0, 0], [800, 0], [400, 300]]},
        {"name": "door", "polygon": [[0, 0], [10, 0]]},
        {"name": "bow", "polygon": POLYGONS[0]},
        {"name": "ok", "polygon": POLYGONS[1]},
    ]
    lines = [{"name": "has space", "points": [[1, 1], [1, 1]]}]
    frame = {"width": 768, "height": 576}
    got = _node(
        f"console.log(JSON.stringify(s.shapeProblems({json.dumps(zones)}, "
        f"{json.dumps(lines)}, {json.dumps(frame)})));",
        tmp_path,
    )
    assert got == [
        'The zone "door" goes outside the picture (768x576): move its points inside.',
        'Two zones are named "door": names must differ.',
        'The zone "door" has 2 vertices: it needs at least 3.',
        'The zone "bow" crosses itself: move its vertices so its edges do not cross.',
        'The line "has space": a name is letters, digits, "_", "." or "-" (at most 64, no spaces).',
        'The line "has space" has both points in one place.',
    ]
