"""Forensic search over a city's track summaries, on SQLite and PostgreSQL (issue 23).

1. **A city's tracks.**  ``--tracks`` track summaries (default 1,000,000) of ``--cameras``
   cameras (400) in ``--groups`` camera groups (20) over ``--days`` days (30), from a seeded
   RNG: busy and quiet cameras (log-normal rates), more traffic by day than by night; 70 %
   people, the rest cars, trucks, buses, bicycles and motorcycles; colours skewed as real
   clothing and cars are (black, white, grey and blue common; red, green, yellow rarer);
   zones on 40 % of the cameras; a few long tracks (parked cars, people waiting: up to 4 h).
   The rows are **bulk-loaded** into the ``tracks`` table of stores the real classes created
   and migrated (SQLite: ``executemany`` in one transaction; PostgreSQL: ``COPY``, then
   ``VACUUM ANALYZE``, which autovacuum does on its own after a bulk load); a sample of
   ``--through-store`` records also goes through ``add_track`` (validation included), timed.
2. **Searches.**  ``--queries`` questions of each kind (below), with random cameras, times
   and colours, each asked of every backend in turn, as the API answers it: ``find_tracks``
   then ``alerts.search.rank`` and the top 48 (for "more like this", the reference's
   ``get_track`` first).  p50 / p95 / max per kind, and p95 over all.  One untimed round of
   every kind first (cold caches are not what is measured).
3. **Plans.**  For one question of each kind, the plans of the statements the store runs:
   SQLite's ``EXPLAIN QUERY PLAN`` and PostgreSQL's ``EXPLAIN (ANALYZE, BUFFERS)``, custom and
   generic (psycopg prepares a statement run 5 times), with the indexes they use.

Query kinds (``KINDS``): ``camera_2h`` (one camera, 2 h), ``group_day_person_upper`` (a
group's 20 cameras, 1 day, person, upper colour), ``all_day_car_colour`` (every camera, 1
day, car, a colour: on a car, its body), ``zone_direction`` (every camera, 1 day, a zone and a
direction), ``colour_7d`` (every camera, 7 days, a colour on any part), ``like_group_day``
("more like this": a group, 1 day, the reference's class, by appearance) and
``timeline_camera_1h`` (a camera's timeline, ``camera_tracks``, 1 h).

Usage::

    .venv/bin/python -m benchmarks.search_bench [--tracks 1000000] [--queries 50]
        [--backend sqlite|postgres|both] [--out F.json] [--results-md benchmarks/RESULTS.md]

PostgreSQL: a ``LocalPostgres`` of its own (``deploy/postgres.py``) in a temporary
directory, stopped at the end (or ``--dsn``).  Absolute figures hold for this machine on this
date: quote them with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from alerts.evidence import thumbnail_key
from alerts.search import rank
from alerts.store import (
    SearchTooBroadError,
    SqlAlertStore,
    SqliteAlertStore,
    TrackQuery,
)
from alerts.store.postgres import PostgresAlertStore
from alerts.store.sql_tracks import COLUMNS, search_statements
from benchmarks.store_bench import (
    log,
    machine,
    pg_facts,
    pg_plans,
    quantiles_ms,
    sqlite_plan,
    table_size_mib,
)
from deploy.postgres import LocalPostgres

DAY_S = 86_400.0
HOUR_S = 3_600.0
TOP = 48
"""Results an API page shows."""
END_TS = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
"""The city's last moment (the tracks cover the ``days`` before it)."""
COLOUR_NAMES = (
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink",
    "brown",
)  # fmt: skip
UPPER_WEIGHTS = (30, 14, 13, 6, 2, 3, 4, 15, 2, 3, 8)
"""People's upper-body colours: dark and neutral tops, blue, few bright ones."""
LOWER_WEIGHTS = (42, 4, 14, 1, 0.5, 0.5, 2, 28, 0.5, 0.5, 7)
"""People's lower-body colours: black and blue (jeans) trousers, grey, brown."""
BODY_WEIGHTS = (22, 27, 20, 9, 1, 2, 3, 9, 0.5, 0.5, 6)
"""Vehicles' colours: white, black, grey (silver) and blue, then red."""
LABELS = ("person", "car", "truck", "bus", "bicycle", "motorcycle")
LABEL_WEIGHTS = (70, 18, 4, 2, 3, 3)
DIRECTIONS = ("left", "right", "up", "down", "still")
DIRECTION_WEIGHTS = (34, 34, 12, 12, 8)
ZONE_NAMES = (
    "entrance", "exit", "road", "crossing", "platform", "car_park", "lobby", "gate",
    "bus_stop", "bike_lane", "plaza", "door",
)  # fmt: skip
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 7, 9, 8, 7, 7, 8, 8, 7, 7, 8, 9, 9, 7, 5, 4, 3, 2)
"""Traffic by hour of day (night is quiet)."""
LONG_SHARE = 0.005
"""Tracks seen longer than 10 minutes (parked cars, people waiting), up to 4 h."""
KINDS = (
    "camera_2h",
    "group_day_person_upper",
    "all_day_car_colour",
    "zone_direction",
    "colour_7d",
    "like_group_day",
    "timeline_camera_1h",
)
CHUNK = 50_000
INSERT_COLUMNS = f"{COLUMNS}, appearance, received_at"
N_INSERT_COLUMNS = len(INSERT_COLUMNS.split(","))


def _pick(
    rng: np.random.Generator, options: Sequence[str], weights: Sequence[float], n: int
) -> Any:
    p = np.asarray(weights, dtype=np.float64)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p / p.sum())]


# --------------------------------------------------------------------------- the city


@dataclass
class City:
    """The cameras, their groups, rates and zones, and a sample of the tracks made."""

    cameras: list[str]
    groups: list[list[str]]
    weights: np.ndarray[Any, np.dtype[np.float64]]
    zones: dict[str, list[str]]
    days: int
    end_ts: float = END_TS
    sample: list[tuple[str, str, float, str]] = field(default_factory=list)
    """(track_uid, camera, first_ts, label) of every 1000th track, if its colours were told
    (for "more like this": the API refuses it of a track never seen clearly)."""

    @property
    def start_ts(self) -> float:
        return self.end_ts - self.days * DAY_S


def make_city(cameras: int, groups: int, days: int, seed: int) -> City:
    """``cameras`` cameras in ``groups`` equal groups, log-normal activity, zones on 40 %."""
    rng = random.Random(seed)
    names = [f"cam-{i:04d}" for i in range(cameras)]
    size = max(1, cameras // groups)
    grouped = [names[i * size : (i + 1) * size] for i in range(groups)]
    weights = np.random.default_rng(seed).lognormal(0.0, 0.8, cameras)
    zones = {cam: rng.sample(ZONE_NAMES, rng.randint(1, 3)) for cam in names if rng.random() < 0.4}
    return City(names, grouped, weights / weights.sum(), zones, days)


def track_rows(city: City, n: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """``n`` rows of ``tracks`` (``INSERT_COLUMNS`` order), in chunks of ``CHUNK``, in order
    of first sighting (as they arrive); every 1000th is remembered in ``city.sample``."""
    rng = np.random.default_rng(seed)
    hours = np.asarray(HOUR_WEIGHTS, dtype=np.float64)
    made = 0
    # times of the whole run, sorted, so chunks come in time order
    day = rng.integers(0, city.days, n)
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    first_all = np.sort(city.start_ts + day * DAY_S + hour * HOUR_S + rng.uniform(0, HOUR_S, n))
    while made < n:
        m = min(CHUNK, n - made)
        first = first_all[made : made + m]
        cams = np.asarray(city.cameras, dtype=object)[
            rng.choice(len(city.cameras), size=m, p=city.weights)
        ]
        labels = _pick(rng, LABELS, LABEL_WEIGHTS, m)
        duration = np.clip(rng.lognormal(math.log(8.0), 0.8, m), 0.5, 590.0)
        long = rng.random(m) < LONG_SHARE
        duration[long] = rng.uniform(600.0, 4 * HOUR_S, int(long.sum()))
        uppers = _pick(rng, COLOUR_NAMES, UPPER_WEIGHTS, m)
        lowers = _pick(rng, COLOUR_NAMES, LOWER_WEIGHTS, m)
        bodies = _pick(rng, COLOUR_NAMES, BODY_WEIGHTS, m)
        shares = rng.uniform(0.3, 0.95, (m, 3))
        told = rng.random((m, 3)) > 0.08  # a part too small to tell: no colour
        directions = _pick(rng, DIRECTIONS, DIRECTION_WEIGHTS, m)
        height_frac = np.clip(rng.lognormal(math.log(0.15), 0.6, m), 0.02, 1.0)
        zone_draw = rng.random((m, 3))
        second = rng.choice(len(COLOUR_NAMES), size=(m, 3))
        now = time.time()
        rows: list[tuple[Any, ...]] = []
        for i in range(m):
            cam, label = str(cams[i]), str(labels[i])
            person = label == "person"
            colours = (
                [uppers[i] if told[i, 0] else None, lowers[i] if told[i, 1] else None, None]
                if person
                else [None, None, bodies[i] if told[i, 2] else None]
            )
            appearance = np.zeros(33, dtype=np.float64)
            for p, colour in enumerate(colours):
                if colour is not None:
                    k = COLOUR_NAMES.index(colour)
                    appearance[p * 11 + k] += shares[i, p]
                    appearance[p * 11 + second[i, p]] += 1.0 - shares[i, p]
            zones = [
                z for z, d in zip(city.zones.get(cam, ()), zone_draw[i], strict=False) if d < 0.4
            ]
            h = float(height_frac[i]) * 1080.0
            uid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | made + i, version=4))
            t0 = float(first[i])
            rows.append(
                (
                    uid, cam, None, made + i, label, t0, t0 + float(duration[i]), None, None,
                    json.dumps(zones, separators=(",", ":")), str(directions[i]),
                    colours[0], colours[1], colours[2],
                    float(shares[i, 0]) if colours[0] else None,
                    float(shares[i, 1]) if colours[1] else None,
                    float(shares[i, 2]) if colours[2] else None,
                    h * (0.4 if person else 1.6), h, float(height_frac[i]), 10,
                    100.0, 100.0, 100.0 + h * 0.4, 100.0 + h,
                    thumbnail_key(cam, t0, uid),
                    appearance.astype("<f2").tobytes(), now,
                )
            )  # fmt: skip
            if (made + i) % 1000 == 0 and any(colours):  # "more like this" needs a look
                city.sample.append((uid, cam, t0, label))
        made += m
        yield rows


def as_record(row: tuple[Any, ...], n: int) -> dict[str, Any]:
    """A track summary record (``alerts/track.schema.json``) of a generated row, with a
    fresh track uid (for ``add_track``)."""
    (_, cam, _, _, label, t0, t1, _, _, zones, direction, up, lo, bo, us, ls, bs, w, h, hf,
     samples, x1, y1, x2, y2, _, blob, _) = row  # fmt: skip
    colours = {k: v for k, v in (("upper", up), ("lower", lo), ("body", bo)) if v}
    shares = {k: v for k, v in (("upper", us), ("lower", ls), ("body", bs)) if v is not None}
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"search-bench/{n}"))
    return {
        "schema_version": 1,
        "kind": "track",
        "track_uid": uid,
        "camera_id": cam,
        "track_id": n,
        "label": label,
        "first_seen": datetime.fromtimestamp(t0, UTC).isoformat(),
        "last_seen": datetime.fromtimestamp(t1, UTC).isoformat(),
        "zones": json.loads(zones),
        "direction": direction,
        "colours": colours,
        "shares": shares,
        "appearance": [min(1.0, max(0.0, float(v))) for v in np.frombuffer(blob, "<f2")],
        "size": {"width_px": w, "height_px": h, "height_frac": hf},
        "samples": samples,
        "bbox": [x1, y1, x2, y2],
        "thumbnail": thumbnail_key(cam, t0, uid),
    }


# --------------------------------------------------------------------------- loading


class SqliteLoader:
    """``executemany`` into the store file's ``tracks``, all in one transaction."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
        self._conn.execute("BEGIN")
        marks = ", ".join("?" * N_INSERT_COLUMNS)
        self._insert = f"INSERT INTO tracks ({INSERT_COLUMNS}) VALUES ({marks})"

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(self._insert, rows)

    def finish(self) -> None:
        self._conn.execute("COMMIT")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


class PostgresLoader:
    """``COPY ... FROM STDIN`` into the schema's ``tracks``, one transaction; then ``VACUUM
    ANALYZE``."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._conn = psycopg.connect(dsn, options=f"-c search_path={schema}")
        self._copy = sql.SQL("COPY tracks ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c.strip()) for c in INSERT_COLUMNS.split(","))
        )

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cur, cur.copy(self._copy) as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self) -> float:
        """Commit, ``VACUUM ANALYZE tracks``, close; the seconds the VACUUM took."""
        self._conn.commit()
        self._conn.autocommit = True
        t0 = time.perf_counter()
        self._conn.execute("VACUUM (ANALYZE) tracks")
        seconds = time.perf_counter() - t0
        self._conn.close()
        return seconds


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """One search, as the API would ask it."""

    kind: str
    query: TrackQuery
    like_uid: str | None = None
    camera: str | None = None
    """``timeline_camera_1h``: the camera."""


def questions(city: City, n: int, seed: int) -> list[Question]:
    """``n`` questions of every kind (``KINDS``), interleaved by kind."""
    rng = random.Random(seed)
    out: list[Question] = []
    zoned = sorted(city.zones)

    def end(span: float) -> float:
        return rng.uniform(city.start_ts + span, city.end_ts)

    for _ in range(n):
        for kind in KINDS:
            if kind == "camera_2h":
                until = end(2 * HOUR_S)
                cam = rng.choice(city.cameras)
                q = TrackQuery(until - 2 * HOUR_S, until, camera_ids=frozenset({cam}))
            elif kind == "group_day_person_upper":
                until = end(DAY_S)
                q = TrackQuery(
                    until - DAY_S,
                    until,
                    camera_ids=frozenset(rng.choice(city.groups)),
                    label="person",
                    upper=rng.choice(("red", "blue", "white", "green", "yellow")),
                )
            elif kind == "all_day_car_colour":
                until = end(DAY_S)
                q = TrackQuery(
                    until - DAY_S,
                    until,
                    label="car",
                    colour=rng.choice(("white", "red", "black", "blue")),
                )
            elif kind == "zone_direction":
                until = end(DAY_S)
                cam = rng.choice(zoned)
                q = TrackQuery(
                    until - DAY_S,
                    until,
                    zone=rng.choice(city.zones[cam]),
                    direction=rng.choice(("left", "right", "up", "down")),
                )
            elif kind == "colour_7d":
                until = end(7 * DAY_S)
                q = TrackQuery(
                    until - 7 * DAY_S,
                    until,
                    colour=rng.choice(("red", "green", "yellow", "purple", "white")),
                )
            elif kind == "like_group_day":
                uid, cam, t0, label = rng.choice(city.sample)
                group = next(g for g in city.groups if cam in g)
                since = max(city.start_ts, min(t0 - DAY_S / 2, city.end_ts - DAY_S))
                q = TrackQuery(
                    since,
                    since + DAY_S,
                    camera_ids=frozenset(group),
                    label=label,
                    exclude_uid=uid,
                )
                out.append(Question(kind, q, like_uid=uid))
                continue
            else:  # timeline_camera_1h
                until = end(HOUR_S)
                cam = rng.choice(city.cameras)
                out.append(Question(kind, TrackQuery(until - HOUR_S, until), camera=cam))
                continue
            out.append(Question(kind, q))
    return out


@dataclass
class Answer:
    """What one question gave on one backend."""

    seconds: float
    find_seconds: float
    rows: int
    capped: bool
    top: list[str]
    too_broad: bool = False


def ask(store: SqlAlertStore, question: Question) -> Answer:
    """The question as the API answers it: the store's candidates, ranked, the top 48."""
    t0 = time.perf_counter()
    try:
        if question.camera is not None:
            tracks = store.camera_tracks(
                question.camera,
                since_ts=question.query.since_ts,
                until_ts=question.query.until_ts,
                limit=500,
            )
            t1 = time.perf_counter()
            return Answer(t1 - t0, t1 - t0, len(tracks), False, [t.track_uid for t in tracks[:TOP]])
        like = None
        if question.like_uid is not None:
            like = store.get_track(question.like_uid)
        found = store.find_tracks(question.query, with_appearance=like is not None)
        t1 = time.perf_counter()
        top = rank(found.tracks, question.query, like)[:TOP]
        t2 = time.perf_counter()
    except SearchTooBroadError:
        t2 = time.perf_counter()
        return Answer(t2 - t0, t2 - t0, 0, False, [], too_broad=True)
    return Answer(t2 - t0, t1 - t0, len(found.tracks), found.capped, [t.track_uid for _, t in top])


# --------------------------------------------------------------------------- plans


def _sqlite_verdict(plan: Sequence[str]) -> dict[str, Any]:
    text = "\n".join(plan)
    return {
        "indexes": sorted(set(re.findall(r"INDEX (\w+)", text))),
        "full_table_scan": bool(re.search(r"SCAN tracks(?! USING)", text)),
        "sort": "TEMP B-TREE" in text,
    }


def _pg_verdict(plan: Sequence[str]) -> dict[str, Any]:
    text = "\n".join(plan)
    executed = re.search(r"Execution Time: ([\d.]+) ms", text)
    return {
        "indexes": sorted(
            set(
                re.findall(
                    r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) "
                    r"(?:Backward )?(?:using|on) (\w+)",
                    text,
                )
            )
        ),
        "full_table_scan": "Seq Scan on tracks" in text,
        "sort": bool(re.search(r"\bSort\b", text)),
        "rows_removed_by_filter": sum(
            int(x) for x in re.findall(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", text)
        ),
        "execution_ms": float(executed.group(1)) if executed else None,
    }


def plans(
    question: Question, sqlite_path: Path | None, pg: tuple[str, str] | None
) -> dict[str, Any]:
    """The plans of the search statements of ``question`` (the first: recent tracks; the
    second, for long tracks, runs only when the first leaves room)."""
    out: dict[str, Any] = {}
    with_appearance = question.like_uid is not None
    if question.camera is not None:
        return out  # the timeline: one camera's index range (tracks_by_camera)
    for backend in ("sqlite", "postgres"):
        if backend == "sqlite" and sqlite_path is None:
            continue
        if backend == "postgres" and pg is None:
            continue
        recent, long = search_statements(
            question.query, with_appearance=with_appearance, sqlite=backend == "sqlite"
        )
        entry: dict[str, Any] = {"statement": recent[0]}
        for name, (statement, params) in (("recent", recent), ("long", long)):
            if backend == "sqlite":
                assert sqlite_path is not None
                plan = sqlite_plan(sqlite_path, statement, tuple(params))
                entry[name] = plan
                entry[f"{name}_verdict"] = _sqlite_verdict(plan)
            else:
                assert pg is not None
                got = pg_plans(pg[0], pg[1], statement, tuple(params))
                entry[f"{name}_custom"] = got["custom"]
                entry[f"{name}_generic"] = got["generic"]
                entry[f"{name}_custom_verdict"] = _pg_verdict(got["custom"])
                entry[f"{name}_generic_verdict"] = _pg_verdict(got["generic"])
        out[backend] = entry
    return out


# --------------------------------------------------------------------------- the run


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A ``LocalPostgres`` in a temporary directory; its DSN.  Stopped and removed on exit."""
    home = Path(tempfile.mkdtemp(prefix="argus-pg-search-"))
    home.chmod(0o711)  # as root the server runs as ``postgres``, which must enter it
    pg = LocalPostgres(home)
    try:
        log("starting PostgreSQL")
        pg.start()
        yield pg.dsn
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(home, ignore_errors=True)


def run(
    *,
    tracks: int,
    queries: int,
    backends: Sequence[str],
    workdir: Path,
    dsn: str | None = None,
    cameras: int = 400,
    groups: int = 20,
    days: int = 30,
    through_store: int = 1000,
    seed: int = 23,
) -> dict[str, Any]:
    """Load the city into each backend and ask the questions; the report (JSON-ready)."""
    started = time.perf_counter()
    city = make_city(cameras, groups, days, seed)
    schema = f"search_bench_{uuid.uuid4().hex[:8]}"
    stores: dict[str, SqlAlertStore] = {}
    sqlite_path = workdir / "search.sqlite" if "sqlite" in backends else None
    if sqlite_path is not None:
        stores["sqlite"] = SqliteAlertStore(sqlite_path)
    if "postgres" in backends:
        if dsn is None:
            raise ValueError("PostgreSQL needs a DSN")
        stores["postgres"] = PostgresAlertStore(dsn, schema=schema)
    try:
        report = _measure(
            city, stores, tracks, queries, through_store, seed, sqlite_path, dsn, schema
        )
    finally:
        for store in stores.values():
            store.close()
        if dsn is not None and "postgres" in backends:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def _measure(
    city: City,
    stores: dict[str, SqlAlertStore],
    n_tracks: int,
    n_queries: int,
    through_store: int,
    seed: int,
    sqlite_path: Path | None,
    dsn: str | None,
    schema: str,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "search_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"sqlite": sqlite3.sqlite_version},
        "parameters": {
            "tracks": n_tracks,
            "queries_per_kind": n_queries,
            "cameras": len(city.cameras),
            "groups": len(city.groups),
            "days": city.days,
            "through_store": through_store,
            "seed": seed,
            "backends": sorted(stores),
            "top": TOP,
        },
    }
    if dsn is not None and "postgres" in stores:
        facts = pg_facts(dsn)
        report["versions"]["postgresql"] = facts["server_version"]
        report["postgres_settings"] = facts["settings"]

    # -- load
    log(f"loading {n_tracks} tracks into {', '.join(sorted(stores))}")
    load_s = dict.fromkeys(stores, 0.0)
    gen_s = 0.0
    sqlite_loader = SqliteLoader(sqlite_path) if sqlite_path is not None else None
    pg_loader = PostgresLoader(dsn, schema) if dsn is not None and "postgres" in stores else None
    sample_rows: list[tuple[Any, ...]] = []
    t_gen = time.perf_counter()
    for rows in track_rows(city, n_tracks, seed):
        gen_s += time.perf_counter() - t_gen
        if len(sample_rows) < through_store:
            sample_rows.extend(rows[: through_store - len(sample_rows)])
        if sqlite_loader is not None:
            t0 = time.perf_counter()
            sqlite_loader.load(rows)
            load_s["sqlite"] += time.perf_counter() - t0
        if pg_loader is not None:
            t0 = time.perf_counter()
            pg_loader.load(rows)
            load_s["postgres"] += time.perf_counter() - t0
        t_gen = time.perf_counter()
    vacuum_s = None
    if sqlite_loader is not None:
        t0 = time.perf_counter()
        sqlite_loader.finish()
        load_s["sqlite"] += time.perf_counter() - t0
    if pg_loader is not None:
        t0 = time.perf_counter()
        vacuum_s = pg_loader.finish()
        load_s["postgres"] += time.perf_counter() - t0
    log(f"loaded: {load_s} (generation {gen_s:.1f} s)")

    # -- the real path: add_track of a sample (validation + one upsert each)
    records = [as_record(r, i) for i, r in enumerate(sample_rows)]
    add_us: dict[str, float] = {}
    for kind, store in stores.items():
        t0 = time.perf_counter()
        for record in records:
            store.add_track(record)
        add_us[kind] = round((time.perf_counter() - t0) / max(1, len(records)) * 1e6, 1)
    counts = {kind: store.count_tracks() for kind, store in stores.items()}
    report["load"] = {
        "method": "SQLite: executemany in one transaction; PostgreSQL: COPY, then VACUUM ANALYZE",
        "generate_s": round(gen_s, 1),
        **{f"{k}_s": round(v, 3) for k, v in load_s.items()},
        "postgres_vacuum_analyze_s": None if vacuum_s is None else round(vacuum_s, 1),
        "add_track_us": add_us,
        "add_track_records": len(records),
        "counts": counts,
        "size_mib": {
            kind: table_size_mib(
                store, sqlite_path if kind == "sqlite" else None, dsn or "", schema
            )
            for kind, store in stores.items()
        },
    }

    # -- searches
    qs = questions(city, n_queries, seed + 1)
    log(f"asking {len(qs)} questions of each backend (one untimed round first)")
    for question in qs[: len(KINDS)]:
        for store in stores.values():
            ask(store, question)
    answers: dict[str, dict[str, list[Answer]]] = {k: {q: [] for q in KINDS} for k in stores}
    same_top = 0
    for question in qs:
        tops = []
        for kind, store in stores.items():
            a = ask(store, question)
            answers[kind][question.kind].append(a)
            tops.append(a.top)
        same_top += all(t == tops[0] for t in tops)
    searches: dict[str, Any] = {}
    for kind in KINDS:
        searches[kind] = {}
        for backend in stores:
            got = answers[backend][kind]
            searches[kind][backend] = {
                **quantiles_ms([a.seconds for a in got]),
                "find_p50_ms": quantiles_ms([a.find_seconds for a in got])["p50_ms"],
                "mean_rows": round(statistics.fmean(a.rows for a in got), 1),
                "capped": sum(a.capped for a in got),
                "too_broad": sum(a.too_broad for a in got),
            }
    report["searches"] = searches
    report["overall"] = {
        backend: quantiles_ms([a.seconds for k in KINDS for a in answers[backend][k]])
        for backend in stores
    }
    report["checks"] = {
        "questions": len(qs),
        "same_top_on_every_backend": same_top,
    }

    # -- plans
    log("plans")
    pg = (dsn, schema) if dsn is not None and "postgres" in stores else None
    report["plans"] = {q.kind: plans(q, sqlite_path, pg) for q in qs[len(KINDS) : 2 * len(KINDS)]}
    return report


# --------------------------------------------------------------------------- output


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    backends = report["parameters"]["backends"]
    head = (
        "| question | "
        + " | ".join(f"{b} p50 | p95 | max" for b in backends)
        + " | rows read (mean) | capped |"
    )
    lines = [head, "|---|" + "---:|" * (3 * len(backends) + 2)]
    for kind, per in report["searches"].items():
        cells = []
        for b in backends:
            s = per[b]
            cells += [f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}", f"{s['max_ms']:.1f}"]
        first = per[backends[0]]
        lines.append(
            f"| `{kind}` | " + " | ".join(cells) + f" | {first['mean_rows']:.0f} | "
            f"{first['capped']}/{first['n']} |"
        )
    overall = " | ".join(
        f"{report['overall'][b]['p50_ms']:.1f} | {report['overall'][b]['p95_ms']:.1f} | "
        f"{report['overall'][b]['max_ms']:.1f}"
        for b in backends
    )
    lines.append(f"| **all** | {overall} | | |")
    return "\n".join(lines)


def plan_summary(report: dict[str, Any]) -> str:
    """One line per question kind: the indexes each backend's plan uses."""
    lines = []
    for kind, per in report["plans"].items():
        parts = []
        if "sqlite" in per:
            v = per["sqlite"]["recent_verdict"]
            parts.append(
                f"SQLite {', '.join(v['indexes']) or 'no index'}{' + sort' if v['sort'] else ''}"
            )
        if "postgres" in per:
            for plan in ("custom", "generic"):
                v = per["postgres"][f"recent_{plan}_verdict"]
                parts.append(
                    f"PostgreSQL {plan} {', '.join(v['indexes']) or 'seq scan'}"
                    f"{' + sort' if v['sort'] else ''} ({v['execution_ms']} ms)"
                )
        if parts:
            lines.append(f"- `{kind}`: " + "; ".join(parts))
    return "\n".join(lines)


MD_START = "<!-- search_bench: start -->"
MD_END = "<!-- search_bench: end -->"


def results_section(report: dict[str, Any], json_name: str) -> str:
    """The section of ``benchmarks/RESULTS.md`` (between ``MD_START`` and ``MD_END``)."""
    p, m, load = report["parameters"], report["machine"], report["load"]
    sizes = ", ".join(f"{k} {v:,.0f} MiB" for k, v in load["size_mib"].items())
    loads = ", ".join(f"{k} {load[f'{k}_s']:.0f} s" for k in p["backends"])
    adds = ", ".join(f"{k} {v:.0f} µs" for k, v in load["add_track_us"].items())
    return "\n".join(
        [
            MD_START,
            "## Forensic search over track summaries (issue 23)",
            "",
            f"**Command:** `.venv/bin/python -m benchmarks.search_bench --tracks {p['tracks']} "
            f"--queries {p['queries_per_kind']} --out benchmarks/results/{json_name} "
            "--results-md benchmarks/RESULTS.md`. **Output:** "
            f"[`results/{json_name}`](results/{json_name}).",
            f"**Machine:** {m['description']} ({m['cpu_model']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB); SQLite {report['versions']['sqlite']}, PostgreSQL "
            f"{report['versions'].get('postgresql', '-')}. **Date:** {report['date']}.",
            "",
            f"{p['tracks']:,} tracks of {p['cameras']} cameras in {p['groups']} groups over "
            f"{p['days']} days (70 % people; clothing and car colours skewed as in the street; "
            "zones on 40 % of the cameras; 0.5 % long tracks up to 4 h), bulk-loaded ("
            f"{loads}; {sizes}); {load['add_track_records']} more through `add_track` "
            f"({adds} each, validation included). Each question is answered as the API does: "
            f"`find_tracks` (at most 5,000 rows) then `rank`, top {p['top']}; "
            f"{p['queries_per_kind']} of each kind, backends taking turns. Times in ms.",
            "",
            table(report),
            "",
            "Plans of the first statement (recent tracks):",
            "",
            plan_summary(report),
            MD_END,
        ]
    )


def write_results_md(path: Path, section: str) -> None:
    """Put ``section`` in ``path``: replacing the earlier one of this bench, else appended."""
    text = path.read_text() if path.exists() else ""
    if MD_START in text and MD_END in text:
        head, _, rest = text.partition(MD_START)
        _, _, tail = rest.partition(MD_END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50, help="questions of each kind")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--dsn", help="an existing PostgreSQL (default: start a local one)")
    parser.add_argument("--cameras", type=int, default=400)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--results-md", type=Path, help="put the summary section in this file")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    workdir = Path(tempfile.mkdtemp(prefix="argus-search-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            dsn = args.dsn
            if "postgres" in backends and dsn is None:
                dsn = stack.enter_context(local_postgres())
            report = run(
                tracks=args.tracks,
                queries=args.queries,
                backends=backends,
                workdir=workdir,
                dsn=dsn,
                cameras=args.cameras,
                groups=args.groups,
                days=args.days,
                seed=args.seed,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(report))
    print()
    print(plan_summary(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.results_md is not None:
        name = args.out.name if args.out is not None else "search.json"
        write_results_md(args.results_md, results_section(report, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
