"""Forensic search through the API, as an operator's page asks it: ``GET /api/v1/search``
over a SQLite store of 1,000,000 tracks (the city of ``benchmarks.search_bench``), timed
from the request to the whole JSON answer: the API key checked, the question validated,
the search written to the audit trail, the store's rows read and ranked, 48 results
serialised.  In process (FastAPI's test client: no network), so the figure is the
server's work.

Usage::

    .venv/bin/python -m benchmarks.search_http [--tracks 1000000] [--queries 30] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from alerts.api import AccessSettings, create_app
from alerts.evidence import LocalEvidenceStore
from alerts.store import SqliteAlertStore
from argus.bench import machine_description
from benchmarks.search_bench import (
    KINDS,
    SqliteLoader,
    make_city,
    questions,
    track_rows,
)

KEY = "search-http-bench-key-0123456789"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def params_of(question: Any) -> tuple[str, list[tuple[str, str]]]:
    """The request a page would send for ``question``: path and query parameters."""
    q = question.query
    if question.camera is not None:  # a camera's timeline: a search of that camera
        return "/api/v1/search", [
            ("since", _iso(q.since_ts)),
            ("until", _iso(q.until_ts)),
            ("camera", question.camera),
            ("limit", "100"),
        ]
    out = [("since", _iso(q.since_ts)), ("until", _iso(q.until_ts))]
    for name, value in (
        ("class", q.label),
        ("upper", q.upper),
        ("lower", q.lower),
        ("colour", q.colour),
        ("zone", q.zone),
        ("direction", q.direction),
        ("like", question.like_uid),
    ):
        if value is not None:
            out.append((name, str(value)))
    for cam in sorted(q.camera_ids or ()):
        out.append(("camera", cam))
    return "/api/v1/search", out


def main(argv: list[str] | None = None) -> int:
    """Run it; the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.search_http", description=__doc__)
    p.add_argument("--tracks", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=30, help="questions of each kind")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    city = make_city(400, 20, 30, 23)
    with tempfile.TemporaryDirectory(prefix="search-http-") as tmp:
        path = Path(tmp) / "search.sqlite"
        SqliteAlertStore(path).close()  # the schema
        loader = SqliteLoader(path)
        t0 = time.perf_counter()
        for rows in track_rows(city, args.tracks, 23):
            loader.load(rows)
        loader.finish()
        load_s = time.perf_counter() - t0
        store = SqliteAlertStore(path)
        app = create_app(
            store,
            LocalEvidenceStore(Path(tmp) / "evidence"),
            api_key=KEY,
            access=AccessSettings(
                camera_groups={cam: [f"g{i}"] for i, g in enumerate(city.groups) for cam in g}
            ),
        )
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        statuses: dict[int, int] = {}
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for question in questions(city, args.queries, 29):
                path_, params = params_of(question)
                t = time.perf_counter()
                r = client.get(path_, params=params, headers={"X-API-Key": KEY})
                r.json()
                times[question.kind].append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        audited = len(store.list_audit(action="search.tracks", limit=500))
        store.close()

    def ms(values: list[float], q: float) -> float:
        return round(1000.0 * float(np.quantile(values, q)), 1)

    every = [v for vs in times.values() for v in vs]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "tracks": args.tracks,
        "load_s": round(load_s, 1),
        "statuses": statuses,
        "audited": audited,
        "kinds": {
            k: {"n": len(v), "p50_ms": ms(v, 0.5), "p95_ms": ms(v, 0.95), "max_ms": ms(v, 1.0)}
            for k, v in times.items()
        },
        "all": {"n": len(every), "p50_ms": ms(every, 0.5), "p95_ms": ms(every, 0.95)},
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0 if set(statuses) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
