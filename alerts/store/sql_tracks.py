"""Track summaries in the SQL stores (``TrackStore``, ``alerts.store.tracks``): stored from the
bus, read by forensic search, swept by retention.

One row per track in ``tracks`` (SQLite migration 11, PostgreSQL migration 4).  Every search
reads one bounded time range, newest first, at most ``scan_limit + 1`` rows, and runs under a
time limit in the database (``search_timeout_s``: SQLite's progress handler, PostgreSQL's
``SET LOCAL statement_timeout``); a search that runs past it raises
``SearchTooBroadError``.

**Time ranges.**  A track overlaps ``[since, until]`` when ``last_ts >= since`` and
``first_ts <= until``.  Neither bound alone limits an index range on ``first_ts``: a track
first seen long before ``since`` may still overlap.  So a search is two statements:

1. the tracks first seen from ``since - LONG_TRACK_S`` (every track seen for at most
   ``LONG_TRACK_S`` that overlaps is among them): an index range on ``first_ts``, under the
   camera or colour asked for;
2. only when (1) did not fill the page: the tracks first seen before that and seen longer
   than ``LONG_TRACK_S`` (few: parked cars, people waiting), from the partial index
   ``tracks_long`` (``first_ts, last_ts``), from ``since`` less the longest one's duration
   (``tracks_long_duration``).  They are all older than (1)'s, so "newest first" is (1)
   then (2).

**Plans.**  SQLite keeps no statistics here, so its planner cannot tell a camera's rows from
a colour's; the SQLite statements name the index to use (``INDEXED BY``), chosen by
``choose_index`` from what the question narrows (measured: ``benchmarks/search_bench.py``).
PostgreSQL plans with its statistics; the statements are otherwise the same.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import struct
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import psycopg
import psycopg.errors

from alerts.schema import validate_track
from alerts.store.sql_common import (
    DB_ERRORS,
    Row,
    StoreParts,
    db_errors,
    in_clause,
)
from alerts.store.sql_retention import delete_keyed
from alerts.store.tracks import (
    DIRECTIONS,
    ExpiredTrack,
    SearchTooBroadError,
    Track,
    TrackCandidates,
    TrackQuery,
)

logger = logging.getLogger("alerts.store")

SEARCH_TIMEOUT_S: Final = 2.0
"""Longest a search statement may run in the database, seconds (then
``SearchTooBroadError``)."""
LONG_TRACK_S: Final = 600.0
"""A track seen longer than this (s) is a *long* track, found through ``tracks_long``; the
others are looked for from this long before a range's start.  The partial index's predicate
(migrations) spells the same number."""
LONG_PREDICATE: Final = "last_ts - first_ts > 600.0"
"""``tracks_long``'s predicate, verbatim (a planner uses the index only for a query that
states it)."""
MAX_SCAN_LIMIT: Final = 50_000
"""Most rows one search may ask for (``TrackQuery.scan_limit``)."""
MAX_TIMELINE: Final = 10_000
"""Most tracks one ``camera_tracks`` call returns."""
APPEARANCE_SIZE: Final = 33
"""Numbers in an appearance descriptor (11 colour shares in each of 3 bands)."""
_APPEARANCE = struct.Struct(f"<{APPEARANCE_SIZE}e")
"""How a descriptor is stored: 33 little-endian IEEE float16 (66 bytes; a share keeps about
3 significant digits, absolute error under 0.0005)."""
SLACK_S: Final = 1.0
"""Added to ``LONG_TRACK_S`` where the two statements meet, so a track seen for exactly
``LONG_TRACK_S`` is found whatever the rounding of ``last_ts - first_ts``."""
PROGRESS_STEPS: Final = 1000
"""SQLite virtual-machine steps between two looks at the clock of a search (about 10 us)."""
CAMERA_INDEX_MAX: Final = 64
"""SQLite: a search of at most this many cameras reads them through ``tracks_by_camera``
(one index range each); of more, through a colour index or the time index."""

COLUMNS: Final = (
    "track_uid, camera_id, run_id, track_id, label, first_ts, last_ts, first_s, last_s, "
    "zones, direction, upper, lower, body, upper_share, lower_share, body_share, width_px, "
    "height_px, height_frac, samples, bbox_x1, bbox_y1, bbox_x2, bbox_y2, thumbnail"
)
"""The columns a search reads (``appearance`` only when asked for), in ``row_to_track``'s
order."""
_INSERT_COLUMNS = f"{COLUMNS}, appearance, received_at"
_UPSERT = (
    f"INSERT INTO tracks ({_INSERT_COLUMNS}) VALUES ({', '.join('?' * 28)}) "
    "ON CONFLICT (track_uid) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _INSERT_COLUMNS.split(",")[1:])
)


def encode_appearance(values: Sequence[float] | None) -> bytes | None:
    """A 33-number descriptor as stored (66 bytes, float16), or ``None``.

    Raises:
        ValueError: Not 33 numbers.
    """
    if values is None:
        return None
    if len(values) != APPEARANCE_SIZE:
        raise ValueError(f"an appearance descriptor has {APPEARANCE_SIZE} numbers")
    return _APPEARANCE.pack(*values)


def decode_appearance(blob: bytes | memoryview | None) -> tuple[float, ...] | None:
    """A stored descriptor as 33 floats (``None`` stays ``None``; a blob of another size,
    not written by this code, reads as ``None``)."""
    if blob is None or len(blob) != _APPEARANCE.size:
        return None
    return _APPEARANCE.unpack(bytes(blob))


def zone_token(zone: str) -> str:
    """What ``zones`` (JSON text of names) contains exactly when the track entered ``zone``:
    the name in double quotes (a zone name holds no quote, so ``"a"`` is not in
    ``["ab"]``)."""
    return json.dumps(zone)


def track_params(record: Mapping[str, Any], received_at: float) -> tuple[Any, ...]:
    """The ``tracks`` row of a valid track summary record, in ``COLUMNS`` order followed by
    ``appearance`` and ``received_at``."""
    colours: Mapping[str, str] = record.get("colours") or {}
    shares: Mapping[str, float] = record.get("shares") or {}
    size = record["size"]
    bbox = record.get("bbox") or (None, None, None, None)
    return (
        record["track_uid"],
        record["camera_id"],
        record.get("run_id"),
        record["track_id"],
        record["label"],
        datetime.fromisoformat(record["first_seen"]).timestamp(),
        datetime.fromisoformat(record["last_seen"]).timestamp(),
        record.get("first_s"),
        record.get("last_s"),
        json.dumps(list(record["zones"]), separators=(",", ":")),
        record["direction"],
        colours.get("upper"),
        colours.get("lower"),
        colours.get("body"),
        shares.get("upper"),
        shares.get("lower"),
        shares.get("body"),
        size["width_px"],
        size["height_px"],
        size["height_frac"],
        record["samples"],
        *bbox,
        record.get("thumbnail"),
        encode_appearance(record.get("appearance")),
        received_at,
    )


def row_to_track(row: Row) -> Track:
    """A ``tracks`` row (``COLUMNS``, then ``appearance`` if read) as a ``Track``."""
    values: tuple[Any, ...] = tuple(cast(Iterable[Any], row))  # both kinds of row iterate
    (
        uid, camera, run, track_id, label, first_ts, last_ts, first_s, last_s, zones,
        direction, upper, lower, body, upper_share, lower_share, body_share, width, height,
        height_frac, samples, x1, y1, x2, y2, thumbnail,
    ) = values[:26]  # fmt: skip
    colours: dict[str, str] = {}
    shares: dict[str, float] = {}
    for part, colour, share in (
        ("upper", upper, upper_share),
        ("lower", lower, lower_share),
        ("body", body, body_share),
    ):
        if colour is not None:
            colours[part] = colour
            if share is not None:
                shares[part] = share
    return Track(
        track_uid=uid,
        camera_id=camera,
        run_id=run,
        track_id=track_id,
        label=label,
        first_ts=first_ts,
        last_ts=last_ts,
        first_s=first_s,
        last_s=last_s,
        zones=() if zones == "[]" else tuple(json.loads(zones)),
        direction=direction,
        colours=colours,
        shares=shares,
        width_px=width,
        height_px=height,
        height_frac=height_frac,
        samples=samples,
        bbox=None if x1 is None else (x1, y1, x2, y2),
        thumbnail=thumbnail,
        appearance=decode_appearance(values[26]) if len(values) > 26 else None,
    )


def choose_index(query: TrackQuery) -> str:
    """The index a SQLite search reads (``INDEXED BY``), by what narrows the question most:
    a few cameras (``tracks_by_camera``), then an upper or lower colour
    (``tracks_by_upper``, ``tracks_by_lower``), else the time index (``tracks_by_time``).
    A colour on any part, without a few cameras, reads the three colour indexes instead
    (``search_statements``)."""
    if query.camera_ids is not None and len(query.camera_ids) <= CAMERA_INDEX_MAX:
        return "tracks_by_camera"
    for part in ("upper", "lower"):
        if getattr(query, part) is not None:
            return f"tracks_by_{part}"
    return "tracks_by_time"


def check_query(query: TrackQuery) -> None:
    """Refuse a question no search should run (``ValueError``): an empty or reversed time
    range, a row cap outside 1..``MAX_SCAN_LIMIT``, an unknown direction, a bare string of
    cameras."""
    if not query.until_ts > query.since_ts:
        raise ValueError(f"until_ts must be after since_ts, got {query.since_ts}..{query.until_ts}")
    if not 1 <= query.scan_limit <= MAX_SCAN_LIMIT:
        raise ValueError(f"scan_limit must be in 1..{MAX_SCAN_LIMIT}, got {query.scan_limit}")
    if query.direction is not None and query.direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {query.direction!r}")
    if isinstance(query.camera_ids, str):
        raise TypeError("camera_ids must be a collection of strings, not a string")


def _filters(query: TrackQuery, *, plain: bool, colour: bool = True) -> tuple[list[str], list[Any]]:
    """The query's filters but time, as AND-ed terms and their parameters (``colour``: with
    the any-part colour term).  With ``plain`` false every column is wrapped
    (``camera_id || ''``) so that no index serves it: the statement that must read
    ``tracks_long`` reads nothing else."""

    def col(name: str) -> str:
        return name if plain else f"({name} || '')"

    terms: list[str] = []
    params: list[Any] = []
    if query.camera_ids is not None:
        clause, more = in_clause(col("camera_id"), sorted(query.camera_ids), "camera_ids")
        terms.append(clause)
        params.extend(more)
    for name, value in (
        ("label", query.label),
        ("upper", query.upper),
        ("lower", query.lower),
        ("direction", query.direction),
    ):
        if value is not None:
            terms.append(f"{col(name)} = ?")
            params.append(value)
    if colour and query.colour is not None:
        terms.append(f"({col('upper')} = ? OR {col('lower')} = ? OR {col('body')} = ?)")
        params.extend([query.colour] * 3)
    if query.zone is not None:
        terms.append("replace(zones, ?, '') <> zones")
        params.append(zone_token(query.zone))
    if query.exclude_uid is not None:
        terms.append("track_uid <> ?")
        params.append(query.exclude_uid)
    return terms, params


_MAX_LONG = (
    f"(SELECT last_ts - first_ts FROM tracks{{hint}} WHERE {LONG_PREDICATE} "
    "ORDER BY last_ts - first_ts DESC LIMIT 1)"
)
"""The longest a long track was seen (s), from ``tracks_long_duration``; NULL when there is
none (then the long statement finds nothing, rightly)."""


def _long_statement(
    columns: str,
    since_ts: float,
    start: float,
    terms: Sequence[str],
    params: Sequence[Any],
    *,
    descending: bool,
    limit: int,
    sqlite: bool,
) -> tuple[str, list[Any]]:
    """The long tracks first seen before ``start`` and last seen from ``since_ts``: an index
    range of ``tracks_long`` from ``since_ts`` less the longest one's duration."""
    hint = " INDEXED BY tracks_long" if sqlite else ""
    longest = _MAX_LONG.format(hint=" INDEXED BY tracks_long_duration" if sqlite else "")
    where = " AND ".join(
        [LONG_PREDICATE, f"first_ts >= ? - {longest}", "first_ts < ?", "last_ts >= ?", *terms]
    )
    order = "DESC" if descending else "ASC"
    return (
        f"SELECT {columns} FROM tracks{hint} WHERE {where} ORDER BY first_ts {order} LIMIT ?",
        [since_ts, start, since_ts, *params, limit],
    )


def search_statements(
    query: TrackQuery, *, with_appearance: bool, sqlite: bool
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """The two statements of a search (SQLite dialect, ``?`` parameters; see the module):
    the recent tracks, and the long ones first seen before them.  Each ends with ``LIMIT
    ?`` whose parameter is ``scan_limit + 1`` (the caller lowers the second's to what the
    first left).

    A colour on any part, without a few cameras to narrow it, is three ordered index ranges
    (one per part's colour index, each stopping at the limit) merged: a rare colour reads
    only its tracks, a common one at most three times the limit.  With a few cameras
    (``choose_index``) the rows of those cameras are read and sorted; PostgreSQL is told so
    too (``ORDER BY first_ts + 0``: not an ordered walk of the time index, which its
    estimates of an ``IN`` list favour and which reads the whole range when the cameras'
    rows are fewer than the limit).
    """
    columns = f"{COLUMNS}, appearance" if with_appearance else COLUMNS
    start = query.since_ts - LONG_TRACK_S - SLACK_S
    limit = query.scan_limit + 1
    time_terms = ["first_ts >= ?", "first_ts <= ?", "last_ts >= ?"]
    time_params: list[Any] = [start, query.until_ts, query.since_ts]
    index = choose_index(query)
    if query.colour is not None and index != "tracks_by_camera":
        terms, params = _filters(query, plain=True, colour=False)
        branches: list[str] = []
        branch_params: list[Any] = []
        for part in ("upper", "lower", "body"):
            hint = f" INDEXED BY tracks_by_{part}" if sqlite else ""
            where = " AND ".join([f"{part} = ?", *time_terms, *terms])
            branches.append(
                f"SELECT * FROM (SELECT {columns} FROM tracks{hint} WHERE {where} "
                f"ORDER BY first_ts DESC LIMIT ?) AS by_{part}"
            )
            branch_params += [query.colour, *time_params, *params, limit]
        recent = (
            " UNION ".join(branches) + " ORDER BY first_ts DESC LIMIT ?",
            [*branch_params, limit],
        )
    else:
        terms, params = _filters(query, plain=True)
        where = " AND ".join([*time_terms, *terms])
        hint = f" INDEXED BY {index}" if sqlite else ""
        order = "first_ts + 0" if index == "tracks_by_camera" and not sqlite else "first_ts"
        recent = (
            f"SELECT {columns} FROM tracks{hint} WHERE {where} ORDER BY {order} DESC LIMIT ?",
            [*time_params, *params, limit],
        )
    terms, params = _filters(query, plain=False)
    long = _long_statement(
        columns, query.since_ts, start, terms, params, descending=True, limit=limit, sqlite=sqlite
    )
    return recent, long


@dataclass(frozen=True, slots=True)
class _Timeline:
    """The two statements of ``camera_tracks`` (long tracks first: they start earlier)."""

    long: tuple[str, list[Any]]
    recent: tuple[str, list[Any]]


def _timeline(
    camera_id: str, since_ts: float, until_ts: float, limit: int, *, sqlite: bool
) -> _Timeline:
    start = since_ts - LONG_TRACK_S - SLACK_S
    return _Timeline(
        long=_long_statement(
            COLUMNS,
            since_ts,
            start,
            ["(camera_id || '') = ?"],
            [camera_id],
            descending=False,
            limit=limit,
            sqlite=sqlite,
        ),
        recent=(
            f"SELECT {COLUMNS} FROM tracks WHERE camera_id = ? AND first_ts >= ? "
            "AND first_ts <= ? AND last_ts >= ? ORDER BY first_ts LIMIT ?",
            [camera_id, start, until_ts, since_ts, limit],
        ),
    )


class TracksMixin(StoreParts):
    """Track summaries (``TrackStore``) on the store's connection."""

    backend: str
    search_timeout_s: float = SEARCH_TIMEOUT_S
    """Time limit of each search statement in the database, seconds (tests lower it)."""

    # ------------------------------------------------------------------ writing

    def add_track(self, record: Mapping[str, Any]) -> None:
        """Store one track summary record; a redelivery (same ``track_uid``) replaces the
        earlier row.

        Raises:
            InvalidEventError: Not a valid track summary (``alerts/track.schema.json``).
            AlertStoreError: The database failed.
        """
        validate_track(record)
        params = track_params(record, datetime.now(UTC).timestamp())
        uid = record["track_uid"]
        with self._lock, db_errors(f"cannot store track {uid}", self.path):
            self._conn.execute(_UPSERT, params)
        logger.debug("track %s of camera %s stored", uid, record["camera_id"])

    def delete_tracks(self, track_uids: Collection[str]) -> int:
        """Delete these tracks in one transaction; how many existed (unknown ids ignored).

        Raises:
            TypeError: ``track_uids`` is a bare string.
            AlertStoreError: The database failed (nothing is deleted).
        """
        return delete_keyed(self, "tracks", "track_uid", track_uids, "tracks")

    # ------------------------------------------------------------------ reading

    def get_track(self, track_uid: str) -> Track | None:
        """The track, with its appearance, or ``None``."""
        with self._lock, db_errors(f"cannot read track {track_uid}", self.path):
            row = self._conn.execute(
                f"SELECT {COLUMNS}, appearance FROM tracks WHERE track_uid = ?", (track_uid,)
            ).fetchone()
        return None if row is None else row_to_track(row)

    def find_tracks(self, query: TrackQuery, *, with_appearance: bool = False) -> TrackCandidates:
        """Tracks overlapping ``[query.since_ts, query.until_ts]`` that pass every filter of
        ``query``, most recently first seen first, at most ``query.scan_limit``; ``capped``
        when more matched.  With ``with_appearance`` their descriptors too (66 more bytes
        a row).

        Raises:
            ValueError: The query is out of range (``check_query``).
            SearchTooBroadError: A statement ran past ``search_timeout_s``.
            AlertStoreError: The database failed.
        """
        check_query(query)
        if query.camera_ids is not None and not query.camera_ids:
            return TrackCandidates()
        recent, long = search_statements(
            query, with_appearance=with_appearance, sqlite=self._is_sqlite
        )
        want = query.scan_limit + 1
        with self._lock, db_errors("cannot search tracks", self.path), self._time_limit():
            rows = self._conn.execute(*recent).fetchall()
            if len(rows) < want:
                sql, params = long
                params[-1] = want - len(rows)
                rows.extend(self._conn.execute(sql, params).fetchall())
        capped = len(rows) > query.scan_limit
        return TrackCandidates([row_to_track(r) for r in rows[: query.scan_limit]], capped)

    def camera_tracks(
        self, camera_id: str, *, since_ts: float, until_ts: float, limit: int
    ) -> builtins.list[Track]:
        """Tracks of ``camera_id`` overlapping ``[since_ts, until_ts]`` (UNIX s), in order of
        first sighting, at most ``limit`` (1..``MAX_TIMELINE``): a camera's timeline.

        Raises:
            ValueError: ``limit`` out of range, or ``until_ts < since_ts``.
            SearchTooBroadError: A statement ran past ``search_timeout_s``.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_TIMELINE:
            raise ValueError(f"limit must be in 1..{MAX_TIMELINE}, got {limit}")
        if until_ts < since_ts:
            raise ValueError(f"until_ts must not be before since_ts ({since_ts}..{until_ts})")
        timeline = _timeline(camera_id, since_ts, until_ts, limit, sqlite=self._is_sqlite)
        with (
            self._lock,
            db_errors(f"cannot read the tracks of {camera_id}", self.path),
            self._time_limit(),
        ):
            rows = self._conn.execute(*timeline.long).fetchall()
            if len(rows) < limit:
                sql, params = timeline.recent
                params[-1] = limit - len(rows)
                rows.extend(self._conn.execute(sql, params).fetchall())
        return [row_to_track(r) for r in rows]

    def count_tracks(self) -> int:
        """How many tracks are stored."""
        with self._lock, db_errors("cannot count tracks", self.path):
            (n,) = self._conn.execute("SELECT COUNT(*) FROM tracks").fetchone()
        return int(n)

    def track_cameras(self) -> builtins.list[str]:
        """Every camera id that has tracks, sorted."""
        with self._lock, db_errors("cannot list track cameras", self.path):
            rows = self._conn.execute(
                "SELECT DISTINCT camera_id FROM tracks ORDER BY camera_id"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def expired_tracks(
        self, camera_id: str, *, before: float, limit: int, offset: int = 0
    ) -> builtins.list[ExpiredTrack]:
        """Tracks of ``camera_id`` last seen before ``before`` (UNIX s), the first seen
        first, at most ``limit`` (1..``MAX_SCAN_LIMIT``) after skipping ``offset`` (those a
        sweep had to leave).

        Raises:
            ValueError: ``limit`` or ``offset`` out of range.
            AlertStoreError: The database failed.
        """
        if not 1 <= limit <= MAX_SCAN_LIMIT:
            raise ValueError(f"limit must be in 1..{MAX_SCAN_LIMIT}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        with self._lock, db_errors(f"cannot list expired tracks of {camera_id}", self.path):
            rows = self._conn.execute(
                # first_ts < before (implied) bounds the camera's index range
                "SELECT track_uid, thumbnail FROM tracks "
                "WHERE camera_id = ? AND first_ts < ? AND last_ts < ? "
                "ORDER BY first_ts LIMIT ? OFFSET ?",
                (camera_id, before, before, limit, offset),
            ).fetchall()
        return [ExpiredTrack(r[0], r[1]) for r in rows]

    # ------------------------------------------------------------------ the time limit

    @property
    def _is_sqlite(self) -> bool:
        return isinstance(self._conn, sqlite3.Connection)

    @contextmanager
    def _time_limit(self) -> Iterator[None]:
        """Run the body's statements under ``search_timeout_s`` each; one that runs past it
        is stopped by the database and ``SearchTooBroadError`` raised.  The caller holds the
        lock.

        SQLite: a progress handler on the connection, for the body only.  PostgreSQL: a
        transaction with ``statement_timeout`` (and ``plan_cache_mode =
        force_custom_plan``) set locally.  Another connection (a test
        double): no limit.
        """
        limit_s = self.search_timeout_s
        conn = self._conn
        if isinstance(conn, sqlite3.Connection):
            deadline = time.monotonic() + limit_s
            conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
            try:
                yield
            except sqlite3.OperationalError as e:
                if "interrupt" not in str(e):
                    raise
                raise SearchTooBroadError(
                    f"search stopped after {limit_s:g} s: narrow it (cameras, time, class)"
                ) from e
            finally:
                conn.set_progress_handler(None, 0)
            return
        if self.backend != "postgres":
            yield
            return
        conn.execute("BEGIN")
        try:
            # SET LOCAL of both in one round trip: the time limit (ms, >= 1: 0 is none), and
            # a plan made for each search's own values (psycopg prepares a statement run 5
            # times, and PostgreSQL's generic plan of a colour search, blind to which
            # colour and range, read the time index: 146 ms against 68 ms at 1,000,000
            # tracks; benchmarks/search_bench.py)
            conn.execute(
                "SELECT set_config('statement_timeout', ?, true), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)",
                (str(max(1, round(limit_s * 1000))),),
            )
            yield
            conn.execute("COMMIT")
        except psycopg.errors.QueryCanceled as e:
            self._rollback()
            raise SearchTooBroadError(
                f"search stopped after {limit_s:g} s: narrow it (cameras, time, class)"
            ) from e
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        with suppress(*DB_ERRORS):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")


__all__ = [
    "APPEARANCE_SIZE",
    "CAMERA_INDEX_MAX",
    "COLUMNS",
    "LONG_TRACK_S",
    "MAX_SCAN_LIMIT",
    "MAX_TIMELINE",
    "SEARCH_TIMEOUT_S",
    "TracksMixin",
    "choose_index",
    "decode_appearance",
    "encode_appearance",
    "row_to_track",
    "search_statements",
    "track_params",
    "zone_token",
]
