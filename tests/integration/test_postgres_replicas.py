"""Several ``argus alerts serve`` replicas on one PostgreSQL database (issue 16), as real
processes on real servers: PostgreSQL (``deploy.postgres.LocalPostgres``) and a Kafka-protocol
broker (Tansu on SeaweedFS S3, ``tests.infra``).

Replicas (one pair, shared by the module's replica tests): two processes on one schema and
one topic of two partitions, as one consumer group.

* every record is consumed by exactly one replica, and each event is created once;
* of 20 simultaneous claims of one alert through both replicas exactly one wins;
* a sign-in on one replica is a sign-in on the other (cookie session and its CSRF token);
* the SLA job escalates an overdue alert once; the retention sweeper claims each period
  once and deletes the expired alerts once, though both replicas run both jobs.

Faults: PostgreSQL (a server of the test's own) stopped and started again while a producer
keeps sending: the API answers 503 while it is away, the group never commits past what is
stored, and once it is back every produced event is stored, none lost, none twice.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from alerts.api.auth import CSRF_HEADER, SESSION_COOKIE
from alerts.store.postgres import PostgresAlertStore
from deploy.localstack import LocalStack, free_port
from deploy.postgres import LocalPostgres
from selector.event import Event
from tests.factories import make_event
from tests.infra import create_topic, kafka_producer, wait_for
from tests.pg import fresh_schema, running_postgres

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ARGUS = [sys.executable, "-m", "argus"]
REPO = Path(__file__).resolve().parents[2]
API_KEY = "replicas-test-key-0123456789abcdef"
PARTITIONS = 2
CAMERAS = ("cam-1", "cam-2", "cam-3", "cam-4")
N_EVENTS = 40
"""Events produced to the pair (priority 50, recent): consumed, stored, claimed."""
N_EXPIRED = 3
"""Alerts three days old, in the store before the pair starts: retention (``days: 1``)."""
SLA_PRIORITY = 95
"""Priority of the one alert the SLA job watches (``min_priority: 90``), in the store before
the pair starts."""
SLA_CLAIM_WITHIN_S = 10.0  # the smallest the config allows
RETENTION_EVERY_S = 10.0  # the smallest the config allows
CLAIMERS = 20
PASSWORD = "correct-horse-battery-staple"
STORE_WRITE_FAILED = "alert store write failed for event_id="
"""What the alert service logs once per record whose store write failed (then retried)."""
DAY_S = 86400.0

# --------------------------------------------------------------------------- helpers


def metric_sum(text: str, sample: str, **labels: str) -> float:
    """Sum of the samples named ``sample`` (e.g. ``..._total``) whose labels include
    ``labels``, in Prometheus text ``text``; 0 when there are none."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@dataclass
class Replica:
    """One ``argus alerts serve`` process and its API."""

    name: str
    proc: subprocess.Popen[str]
    url: str
    log: Path

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """``method path`` with the API key (unless ``headers`` are given), 10 s timeout."""
        kw.setdefault("headers", {"X-API-Key": API_KEY})
        return httpx.request(method, self.url + path, timeout=10.0, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def metrics(self) -> str:
        r = httpx.get(self.url + "/metrics", timeout=10.0)
        assert r.status_code == 200, r.text
        return r.text

    def metric(self, sample: str, **labels: str) -> float:
        """This process's ``sample`` (summed over the other labels)."""
        return metric_sum(self.metrics(), sample, **labels)

    def assigned(self) -> set[str]:
        """The ``topic:partition``s its consumer holds now (``GET /api/v1/status``)."""
        r = self.get("/api/v1/status")
        if r.status_code != 200:
            return set()
        service = r.json()["components"].get("alert_service") or {}
        return set(service.get("assigned") or ())

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ---\n{self.log.read_text(errors='replace')[-chars:]}"

    def stop(self, *, signalled: bool = False) -> int:
        """SIGINT (the orderly stop; ``signalled``: already sent), SIGKILL after 20 s; the
        exit status.  (A second SIGINT would make it leave at once, not in order.)"""
        if self.proc.poll() is None:
            if not signalled:
                self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return int(self.proc.returncode)


def write_config(
    path: Path,
    *,
    dsn: str,
    schema: str,
    stack: LocalStack,
    topic: str,
    group: str,
    tmp: Path,
    api: dict[str, Any] | None = None,
    retention: dict[str, Any] | None = None,
) -> Path:
    """A config for ``argus alerts serve``: the store in ``schema`` of ``dsn``, events from
    ``topic`` (``PARTITIONS`` partitions) as ``group``; cameras ``CAMERAS`` (group
    ``default``)."""
    data: dict[str, Any] = {
        "cameras": [{"id": cam, "source": f"rtsp://127.0.0.1:1/{cam}"} for cam in CAMERAS],
        "storage": {
            "postgres": {"dsn": dsn, "schema": schema, "connect_timeout_s": 2.0},
            "evidence_dir": str(tmp / "evidence"),
        },
        "bus": {
            "kafka": {
                "bootstrap": stack.bootstrap,
                "topic": topic,
                "partitions": PARTITIONS,
                "idempotent": False,  # Tansu on durable storage refuses it
                "group_id": group,
            }
        },
        "evidence": {"clips": {"enabled": False}, "retention": retention or {}},
        "api": api or {},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ARGUS_HOME": str(home),
            "ARGUS_API_KEY": API_KEY,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def start_replicas(cfg: Path, home: Path, logs: Path, names: list[str]) -> list[Replica]:
    """Start one ``argus alerts serve`` per name (all at once) and wait for their APIs."""
    replicas: list[Replica] = []
    for name in names:
        port = free_port()
        log = logs / f"{name}.log"
        with log.open("w") as f:
            proc = subprocess.Popen(
                [*ARGUS, "alerts", "serve", "--config", str(cfg), "--port", str(port)],
                env=env_for(home),
                stdout=f,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=REPO,
            )
        replicas.append(Replica(name, proc, f"http://127.0.0.1:{port}", log))

    def up(r: Replica) -> bool:
        if r.proc.poll() is not None:
            raise AssertionError(f"{r.name} exited ({r.proc.returncode})\n{r.tail()}")
        try:
            return httpx.get(r.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        for r in replicas:
            wait_for(lambda r=r: up(r), 60, f"{r.name} API up", interval_s=0.2)
    except BaseException:
        stop_all(replicas)
        raise
    return replicas


def stop_all(replicas: list[Replica]) -> list[int]:
    """Stop the replicas together (SIGINT to all, then wait); their exit statuses."""
    for r in replicas:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGINT)
    return [r.stop(signalled=True) for r in replicas]


def wait_until(
    cond: Callable[[], bool],
    timeout_s: float,
    what: str | Callable[[], str],
    replicas: list[Replica],
) -> None:
    """Poll ``cond`` every 0.2 s until true; on timeout an AssertionError saying ``what``
    (a callable: asked then) with the replicas' logs."""
    try:
        wait_for(cond, timeout_s, "", interval_s=0.2)
    except AssertionError:
        said = what() if callable(what) else what
        raise AssertionError(
            f"timed out after {timeout_s} s waiting for {said}\n"
            + "\n".join(r.tail() for r in replicas)
        ) from None


def wait_group_settled(replicas: list[Replica], topic: str, timeout_s: float = 40.0) -> None:
    """Until every replica holds a partition of ``topic`` and together they hold each one
    once, the same a second later (the group has settled: what is produced from now on is
    not redelivered by a rebalance)."""
    every = {f"{topic}:{p}" for p in range(PARTITIONS)}

    def holdings() -> list[set[str]] | None:
        held = [r.assigned() for r in replicas]
        whole = set().union(*held) == every and sum(map(len, held)) == len(every)
        return held if whole and all(held) else None

    while True:
        wait_until(lambda: holdings() is not None, timeout_s, "the group settled", replicas)
        before = holdings()
        time.sleep(1.0)
        if before is not None and holdings() == before:
            return


@dataclass
class Produced:
    """What the producer wrote: each record's event id, partition and offset, and when
    its ack came back (UNIX s)."""

    records: list[tuple[str, int, int]] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event_id: str, partition: int, offset: int) -> None:
        with self.lock:
            self.records.append((event_id, partition, offset))
            self.acked_at.append(time.time())

    def acked_by(self, t: float) -> dict[int, int]:
        """Per partition, how many records had been acked by ``t`` (its end offset then)."""
        ends: dict[int, int] = {}
        with self.lock:
            for (_, part, off), at in zip(self.records, self.acked_at, strict=True):
                if at <= t:
                    ends[part] = max(ends.get(part, 0), off + 1)
        return ends

    def snapshot(self) -> list[tuple[str, int, int]]:
        with self.lock:
            return list(self.records)

    @property
    def ids(self) -> set[str]:
        return {e for e, _, _ in self.snapshot()}


def produce(producer: Any, topic: str, events: list[Event], into: Produced) -> None:
    """Send ``events`` (keyed by camera) and wait for each ack; note where each went."""
    futures = [
        (e.event_id, producer.send(topic, key=e.camera_id.encode(), value=record_bytes(e)))
        for e in events
    ]
    for event_id, fut in futures:
        meta = fut.get(timeout=20)
        into.add(event_id, meta.partition, meta.offset)


def record_bytes(e: Event) -> bytes:
    return json.dumps(e.to_record()).encode()


def stored_ids(dsn: str, schema: str, ids: set[str]) -> dict[str, float]:
    """``event_id -> received_at`` of those of ``ids`` in the store's ``alerts`` table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT event_id, received_at FROM {}.alerts WHERE event_id = ANY(%s)").format(
                sql.Identifier(schema)
            ),
            (list(ids),),
        ).fetchall()
    return {str(e): float(t) for e, t in rows}


def install_claim_log(dsn: str, schema: str) -> None:
    """Record every successful job claim (a row of ``jobs`` inserted or updated) in
    ``test_job_claims``: a trigger of the test's own, so it sees claims the product does
    not log.  A claim refused (``ON CONFLICT ... WHERE`` false) updates no row: not logged."""
    s = sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {s}.test_job_claims (name text, holder text, "
                "claimed_at double precision, due_at double precision)"
            ).format(s=s)
        )
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {s}.test_log_job_claim() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO {s}.test_job_claims "
                "VALUES (NEW.name, NEW.holder, NEW.claimed_at, NEW.due_at); RETURN NEW; END $$"
            ).format(s=s)
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER test_log_job_claim AFTER INSERT OR UPDATE ON {s}.jobs "
                "FOR EACH ROW EXECUTE FUNCTION {s}.test_log_job_claim()"
            ).format(s=s)
        )


def job_claims(dsn: str, schema: str, name: str) -> list[tuple[str, float]]:
    """``(holder, claimed_at)`` of every logged claim of job ``name``, in order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT holder, claimed_at FROM {}.test_job_claims WHERE name = %s "
                "ORDER BY claimed_at"
            ).format(sql.Identifier(schema)),
            (name,),
        ).fetchall()
    return [(str(h), float(t)) for h, t in rows]


def audit(replica: Replica, **params: Any) -> list[dict[str, Any]]:
    """Audit entries (newest first) matching ``params``, read with the API key."""
    r = replica.get("/api/v1/audit", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def alert(replica: Replica, event_id: str) -> httpx.Response:
    return replica.get(f"/api/v1/alerts/{event_id}")


# --------------------------------------------------------------------------- the pair


@dataclass
class Pair:
    """Two replicas on one schema and one topic; the alerts put in the store before they
    started and the events produced to them."""

    a: Replica
    b: Replica
    dsn: str
    schema: str
    topic: str
    cfg: Path
    home: Path
    produced: Produced
    events: list[Event]
    expired: list[Event]
    sla_alert: Event
    started_at: float

    @property
    def replicas(self) -> list[Replica]:
        return [self.a, self.b]

    def summed(self, sample: str, **labels: str) -> float:
        return sum(r.metric(sample, **labels) for r in self.replicas)


@pytest.fixture(scope="module")
def pair(
    postgres: LocalPostgres, localstack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two ``argus alerts serve``, started together, on a fresh schema of the session's
    PostgreSQL (holding ``N_EXPIRED`` expired alerts and one the SLA watches) and a fresh
    two-partition topic, as one group; once the group has settled, ``N_EVENTS`` events over
    four cameras are produced."""
    tmp = tmp_path_factory.mktemp("replicas")
    schemas = fresh_schema(postgres)
    schema = next(schemas)
    try:
        yield from _run_pair(postgres, localstack, tmp, schema)
    finally:
        next(schemas, None)  # drops the schema


def _run_pair(postgres: LocalPostgres, stack: LocalStack, tmp: Path, schema: str) -> Iterator[Pair]:
    """The body of ``pair`` (its schema made and dropped by the caller)."""
    tag = uuid.uuid4().hex[:8]
    topic, group = f"replicas-{tag}", f"replicas-{tag}-alerts"
    # Before the replicas start: the schema (migrated), the claim log, and the alerts the
    # jobs act on, written by a store of the test's own: the expired ones are there for the
    # first sweep (both replicas start together), the SLA's is overdue SLA_CLAIM_WITHIN_S on.
    now = time.time()
    expired = [
        make_event(100 + i, camera=CAMERAS[i % 4], wall=now - 3 * DAY_S) for i in range(N_EXPIRED)
    ]
    sla_alert = make_event(200, camera="cam-1", priority=SLA_PRIORITY, wall=now)
    seed = PostgresAlertStore(postgres.dsn, schema=schema)
    try:
        for e in [*expired, sla_alert]:
            seed.upsert(e.to_record())
    finally:
        seed.close()
    install_claim_log(postgres.dsn, schema)
    create_topic(stack, topic, partitions=PARTITIONS)
    cfg = write_config(
        tmp / "argus.yaml",
        dsn=postgres.dsn,
        schema=schema,
        stack=stack,
        topic=topic,
        group=group,
        tmp=tmp,
        api={
            "sla": {
                "min_priority": 90,
                "claim_within_s": SLA_CLAIM_WITHIN_S,
                "check_every_s": 1.0,
            }
        },
        retention={"days": 1, "every_s": RETENTION_EVERY_S},
    )
    home = tmp / "home"
    home.mkdir()
    started_at = time.time()
    a, b = replicas = start_replicas(cfg, home, tmp, ["replica-a", "replica-b"])
    try:
        wait_group_settled(replicas, topic)
        events = [make_event(i, camera=CAMERAS[i % 4], wall=time.time()) for i in range(N_EVENTS)]
        produced = Produced()
        producer = kafka_producer(stack)
        try:
            produce(producer, topic, events, produced)
        finally:
            producer.close()
        yield Pair(
            a, b, postgres.dsn, schema, topic, cfg, home, produced, events, expired, sla_alert,
            started_at,
        )  # fmt: skip
    finally:
        codes = stop_all(replicas)
    assert codes == [0, 0], f"both stopped in order: {codes}"


def wait_all_stored(p: Pair, timeout_s: float = 30.0) -> None:
    """Until the replicas have written every produced record (``..._stored_total``)."""
    n = len(p.produced.records)
    wait_until(
        lambda: p.summed("argus_alert_service_stored_total") >= n,
        timeout_s,
        f"{n} records stored",
        p.replicas,
    )


# --------------------------------------------------------------------------- replicas


def test_each_record_is_consumed_by_exactly_one_replica(pair: Pair) -> None:
    """Both replicas consume (each its own partitions), together exactly once per record,
    and each event is created in the store once (``argus_alerts_stored_total``)."""
    p = pair
    records = p.produced.snapshot()
    wait_all_stored(p)
    time.sleep(1.0)  # anything consumed twice would show by now
    held = {r.name: r.assigned() for r in p.replicas}
    by_partition = {part: sum(1 for _, q, _ in records if q == part) for part in range(PARTITIONS)}
    consumed = {r.name: r.metric("argus_alert_service_consumed_total") for r in p.replicas}
    created = {r.name: r.metric("argus_alerts_stored_total") for r in p.replicas}
    print(
        f"\nrecords per partition {by_partition}; held {held}; consumed {consumed}; "
        f"created {created}"
    )
    assert all(by_partition.values()), "keys by camera spread the records over both partitions"
    assert sum(consumed.values()) == len(records), "each record consumed exactly once"
    for r in p.replicas:  # each consumed exactly the records of the partitions it holds
        mine = sum(by_partition[int(tp.rsplit(":", 1)[1])] for tp in held[r.name])
        assert consumed[r.name] == mine, (r.name, held, consumed)
        assert consumed[r.name] > 0, f"{r.name} got no partition: {held}"
    distinct = {e for e, _, _ in records}
    assert len(distinct) == len(records)
    assert sum(created.values()) == len(distinct), "each event created once across replicas"
    assert set(stored_ids(p.dsn, p.schema, distinct)) == distinct, "every event stored"


def _claim_all(urls_and_tokens: list[tuple[str, str]], event_id: str) -> list[int]:
    """POST ``claim`` of ``event_id`` once per (url, token), from one thread each, released
    together (connections opened first); the status codes in the same order."""
    barrier = threading.Barrier(len(urls_and_tokens))
    codes: list[int] = [0] * len(urls_and_tokens)

    def claim(i: int, url: str, token: str) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        ) as client:
            assert client.get("/healthz").status_code == 200  # the connection is open
            barrier.wait(timeout=30)
            codes[i] = client.post(f"/api/v1/alerts/{event_id}/claim").status_code

    threads = [
        threading.Thread(target=claim, args=(i, url, token))
        for i, (url, token) in enumerate(urls_and_tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def test_simultaneous_claims_through_both_replicas_one_wins(pair: Pair) -> None:
    """20 operators (machine tokens of role operator, made on either replica) claim one
    alert at the same moment, 10 through each replica: exactly one 200, nineteen 409; the
    alert is the winner's, with one ``alert.claim`` in its audit trail."""
    p = pair
    target = p.events[0].event_id
    wait_for(lambda: alert(p.a, target).status_code == 200, 30, "the alert stored")
    tokens: list[tuple[str, str, str]] = []  # (url to claim through, token, token id)
    for i in range(CLAIMERS):
        made_on, used_on = (p.a, p.b) if i % 2 else (p.b, p.a)  # made on one, used on the other
        r = made_on.request("POST", "/api/v1/tokens", json={"name": f"op-{i}", "role": "operator"})
        assert r.status_code == 201, r.text
        tokens.append((used_on.url, r.json()["token"], r.json()["token_id"]))
    codes = _claim_all([(url, token) for url, token, _ in tokens], target)
    print(f"\nclaim answers: {sorted(codes)}")
    assert sorted(codes) == [200] + [409] * (CLAIMERS - 1), codes
    winner = tokens[codes.index(200)][2]
    got = alert(p.b, target).json()
    assert (got["state"], got["owner"]) == ("claimed", winner)
    claims = audit(p.a, action="alert.claim", target_id=target)
    assert [c["actor"] for c in claims] == [winner]


def test_a_sign_in_on_one_replica_holds_on_the_other(pair: Pair) -> None:
    """A user added with ``argus users add`` (straight into PostgreSQL) signs in on replica
    A; replica B knows the session (GET), checks its CSRF token (POST without it: 403, with
    it: 200) and ends it (sign-out on B: A refuses the cookie from then on)."""
    p = pair
    user, cfg = f"kim{uuid.uuid4().hex[:6]}", str(p.cfg)
    add = subprocess.run(
        [*ARGUS, "users", "add", user, "--role", "operator", "--password-stdin", "--config", cfg],
        input=PASSWORD + "\n",
        env=env_for(p.home),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert add.returncode == 0, add.stderr
    login = p.a.request(
        "POST", "/api/v1/auth/login", headers={}, json={"username": user, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    session, csrf = login.cookies[SESSION_COOKIE], login.json()["csrf_token"]
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}

    me = p.b.get("/api/v1/auth/me", headers=cookie)
    assert me.status_code == 200, me.text
    assert me.json()["name"] == user

    target = p.events[1].event_id
    wait_for(lambda: alert(p.b, target).status_code == 200, 30, "the alert stored")
    no_csrf = p.b.request("POST", f"/api/v1/alerts/{target}/claim", headers=cookie)
    assert no_csrf.status_code == 403, no_csrf.text
    claimed = p.b.request(
        "POST", f"/api/v1/alerts/{target}/claim", headers=cookie | {CSRF_HEADER: csrf}
    )
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["state"], claimed.json()["owner"]) == ("claimed", user)

    out = p.b.request("POST", "/api/v1/auth/logout", headers=cookie | {CSRF_HEADER: csrf})
    assert out.status_code == 204, out.text
    assert p.a.get("/api/v1/auth/me", headers=cookie).status_code == 401


def test_sla_escalates_an_overdue_alert_once(pair: Pair) -> None:
    """The one alert at or above ``min_priority`` nobody claims is escalated by ``sla``
    once, although both replicas check every second; the others are left alone."""
    p = pair
    target = p.sla_alert.event_id

    def escalated() -> bool:
        r = alert(p.a, target)
        return r.status_code == 200 and r.json()["state"] == "escalated"

    wait_for(escalated, SLA_CLAIM_WITHIN_S + 30, "the SLA escalation", interval_s=0.2)
    time.sleep(2.5)  # both replicas have checked again since
    entries = audit(p.a, action="alert.escalate", target_id=target)
    assert [(e["actor"], e["actor_kind"]) for e in entries] == [("sla", "system")]
    assert [e["target_id"] for e in audit(p.b, actor="sla")] == [target], "no other alert"
    assert p.summed("argus_alerts_sla_escalated_total") == 1
    got = alert(p.b, target).json()
    assert (got["escalated_by"], got["escalated_to"]) == ("sla", "supervisors")


def test_retention_claims_each_period_once_and_deletes_once(pair: Pair) -> None:
    """The sweepers of both replicas try at start (together) and every
    ``RETENTION_EVERY_S``; the store's job claim lets one of them per period: the claims (a
    trigger of the test's own logs each) are a period apart, the first included.  The
    expired alerts are deleted once: one ``retention.sweep`` audit entry, by a claim, for
    all of them, as the replicas' metrics say; the recent alerts stay."""
    p = pair
    gone = {e.event_id for e in p.expired}
    wait_until(
        lambda: all(alert(p.a, eid).status_code == 404 for eid in gone),
        RETENTION_EVERY_S + 15,
        "the expired alerts deleted",
        p.replicas,
    )
    wait_until(
        lambda: len(job_claims(p.dsn, p.schema, "retention")) >= 2,
        RETENTION_EVERY_S + 15,
        "a claim at start and one a period later",
        p.replicas,
    )
    time.sleep(0.5)
    claims = job_claims(p.dsn, p.schema, "retention")
    print(
        "\nretention claims (holder, s after the replicas started): "
        f"{[(h, round(t - p.started_at, 2)) for h, t in claims]}"
    )
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(claims)]
    assert min(gaps) >= RETENTION_EVERY_S * 0.99 - 1e-3, f"two claims in one period: {gaps}"
    sweeps = audit(p.b, action="retention.sweep")
    assert [(s["actor"], s["detail"]["alerts"]) for s in sweeps] == [("retention", N_EXPIRED)]
    at, holder = time_of(sweeps[0]["at"]), sweeps[0]["detail"]["holder"]
    assert any(h == holder and abs(t - at) < 1e-3 for h, t in claims), (
        f"the sweep at {at:.3f} by {holder} was no claim's: {claims}"
    )
    assert p.summed("argus_retention_deleted_total", kind="alert") == N_EXPIRED
    wait_all_stored(p)
    kept = {e.event_id for e in [*p.events, p.sla_alert]}
    assert len(stored_ids(p.dsn, p.schema, kept)) == len(kept), "recent alerts kept"


def time_of(iso: str) -> float:
    """UNIX seconds of an ISO 8601 time."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- faults


@dataclass
class OffsetWatch:
    """The group's committed offsets, read every 0.2 s from another thread with the
    time each answer came back: ``(t, {partition: offset})``."""

    bootstrap: str
    group: str
    topic: str
    seen: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        from kafka import KafkaAdminClient, TopicPartition

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        parts = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        try:
            while not self.stop.wait(0.2):
                try:
                    got = admin.list_group_offsets({self.group: parts})[self.group]
                except Exception as e:  # noted; the test fails on too few readings
                    self.errors.append(f"{type(e).__name__}: {e}")
                    continue
                offsets = {tp.partition: om.offset for tp, om in got.items() if om.offset >= 0}
                self.seen.append((time.time(), offsets))
        finally:
            admin.close()


def _keep_producing(
    producer: Any, topic: str, into: Produced, stop: threading.Event, errors: list[str]
) -> None:
    """One event every 20 ms (over the four cameras, recent wall time) until ``stop``."""
    n = 0
    while not stop.wait(0.02):
        e = make_event(1000 + n, camera=CAMERAS[n % 4], wall=time.time())
        try:
            meta = producer.send(topic, key=e.camera_id.encode(), value=record_bytes(e)).get(20)
        except Exception as ex:  # the test fails on any
            errors.append(f"{type(ex).__name__}: {ex}")
            return
        into.add(e.event_id, meta.partition, meta.offset)
        n += 1


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test's own (stopping it disturbs no other test)."""
    yield from running_postgres()


def test_postgres_restarted_under_load_nothing_lost_nothing_twice(
    own_postgres: LocalPostgres, localstack: LocalStack, tmp_path: Path
) -> None:
    """Two replicas; while a producer keeps sending, PostgreSQL is stopped for ~3 s and
    started again.

    While it is away: ``GET /api/v1/alerts`` and ``/readyz`` answer 503 on both replicas,
    store writes fail and are retried, and the group's committed offsets never pass what is
    stored (every record below an offset read at time t had been stored by t), while records
    do wait uncommitted.  Once it is back the replicas catch up: every produced event stored,
    none lost, none created twice, everything committed.
    """
    pg = own_postgres
    schema = "argus_faults"
    tag = uuid.uuid4().hex[:8]
    topic, group = f"faults-{tag}", f"faults-{tag}-alerts"
    create_topic(localstack, topic, partitions=PARTITIONS)
    cfg = write_config(
        tmp_path / "argus.yaml",
        dsn=pg.dsn,
        schema=schema,
        stack=localstack,
        topic=topic,
        group=group,
        tmp=tmp_path,
        api={"sla": {"enabled": False}},
        retention={"days": None},
    )
    home = tmp_path / "home"
    home.mkdir()
    replicas = start_replicas(cfg, home, tmp_path, ["fault-a", "fault-b"])
    produced, errors, stop = Produced(), [], threading.Event()
    watch = OffsetWatch(localstack.bootstrap, group, topic)
    producer = kafka_producer(localstack)
    sender = threading.Thread(
        target=_keep_producing, args=(producer, topic, produced, stop, errors), daemon=True
    )
    watcher = threading.Thread(target=watch.run, daemon=True)

    def summed(sample: str) -> float:
        return sum(r.metric(sample) for r in replicas)

    answers: list[tuple[str, str, int]] = []  # (replica, path, status) while it is away
    try:
        wait_group_settled(replicas, topic)
        sender.start()
        watcher.start()
        wait_until(
            lambda: summed("argus_alert_service_stored_total") >= 20,
            20,
            "records flowing into the store",
            replicas,
        )
        pg.stop()
        down_at = time.time()
        while time.time() - down_at < 3.0:
            for r in replicas:
                answers.append((r.name, "alerts", r.get("/api/v1/alerts").status_code))
                answers.append((r.name, "readyz", r.get("/readyz", headers={}).status_code))
            time.sleep(0.2)
        pg.start()
        up_at = time.time()
        time.sleep(1.0)  # more load after the restart
        stop.set()
        sender.join(30)
        n = len(produced.records)
        ids = produced.ids
        wait_until(
            lambda: len(stored_ids(pg.dsn, schema, ids)) == n,
            60,
            lambda: (
                f"all {n} events stored after the restart (stored: "
                f"{len(stored_ids(pg.dsn, schema, ids))})"
            ),
            replicas,
        )
        caught_up_s = time.time() - up_at
        ends = produced.acked_by(time.time())
        wait_until(
            lambda: bool(watch.seen) and watch.seen[-1][1] == ends,
            30,
            lambda: (
                f"every record committed ({ends}): last read {watch.seen[-1:]}, "
                f"errors {watch.errors[-1:]}"
            ),
            replicas,
        )
        metrics = [r.metrics() for r in replicas]
        after = [
            r.get(path).status_code for r in replicas for path in ("/readyz", "/api/v1/alerts")
        ]
    finally:
        stop.set()
        watch.stop.set()
        for t in (sender, watcher):
            if t.ident is not None:
                t.join(30)
        producer.close()
        codes = stop_all(replicas)
    assert not errors, errors
    assert codes == [0, 0], codes

    def total(sample: str) -> float:
        return sum(metric_sum(text, sample) for text in metrics)

    while_down = sum(1 for at in produced.acked_at if down_at <= at <= up_at)
    store_errors = total("argus_alert_service_store_errors_total")
    retried = sum(r.log.read_text().count(STORE_WRITE_FAILED) for r in replicas)
    print(
        f"\nproduced {n} ({while_down} while the database was away); 503 while away: "
        f"{sum(c == 503 for *_, c in answers)} of {len(answers)}; caught up {caught_up_s:.1f} s "
        f"after the restart; store write errors {store_errors:.0f} (records retried {retried}); "
        f"consumed {total('argus_alert_service_consumed_total'):.0f}; created "
        f"{total('argus_alerts_stored_total'):.0f}; offset readings {len(watch.seen)}"
    )
    # While it was away: reads and readiness 503 on both replicas; writes failed, retried.
    assert len(answers) >= 20 and all(c == 503 for *_, c in answers), answers
    assert after == [200] * 4
    assert store_errors > 0
    assert while_down > 0, "the producer went on while the database was away"

    # Committed offsets never passed what was stored: every record below an offset read at
    # time t had been stored (received_at) by t; while it was away, records waited.
    received = stored_ids(pg.dsn, schema, ids)
    where = {(part, off): e for e, part, off in produced.snapshot()}
    assert len(watch.seen) >= 20, watch.errors[-3:]
    waited = False
    for t, offsets in watch.seen:
        for part, committed in offsets.items():
            for off in range(committed):
                eid = where[(part, off)]
                assert received[eid] <= t, (
                    f"partition {part} committed up to {committed} at {t:.3f}, but offset {off} "
                    f"({eid}) was stored only at {received[eid]:.3f}"
                )
        if down_at < t < up_at:
            acked = produced.acked_by(t)
            waited |= any(offsets.get(q, 0) < end for q, end in acked.items())
    assert waited, "records waited uncommitted while the database was away"

    # Caught up: every produced event stored, once.
    assert len(ids) == n, "event ids are unique"
    assert not ids - set(received), f"lost {len(ids - set(received))} of {n}"
    # Created once and counted once, the writes the restart interrupted (``retried``)
    # included.  A first record is one INSERT (autocommit); while it was a BEGIN ... COMMIT,
    # PostgreSQL's fast shutdown could make the COMMIT durable and not answer it: the retry
    # found the row and counted nothing (seen here: 157 of 158).
    assert total("argus_alerts_stored_total") == n, f"each event created once ({retried} retried)"
