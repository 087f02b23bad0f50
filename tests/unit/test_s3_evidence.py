"""S3 evidence store: spool, uploader, reads and URLs against a scripted fake S3 client."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio.error import S3Error
from prometheus_client import REGISTRY

from alerts.evidence import (
    EvidenceNotFoundError,
    EvidenceStore,
    InvalidEvidenceKeyError,
    LocalEvidenceStore,
    UrlEvidenceStore,
)
from alerts.s3_evidence import (
    CONTENT_TYPE,
    EvidenceUnavailableError,
    S3EvidenceStore,
    SpoolLockedError,
)

pytestmark = pytest.mark.unit

ACCESS = "AKIAUNITTESTKEY0001"
SECRET = "unit-secret-key-do-not-log-0001"
BUCKET = "argus-evidence"
WAIT_S = 5.0


def s3_error(code: str) -> S3Error:
    return S3Error(None, code, "scripted", "/r", "req", "host")  # type: ignore[arg-type]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class FakeS3:
    """The ``minio.Minio`` methods the store uses, with switches for outages."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.uploaded: list[str] = []
        self.bucket = False
        self.down = False
        self.lock = threading.Lock()
        self.put_gate: threading.Event | None = None  # set: put_object blocks until it fires
        self.put_entered = threading.Event()
        self.make_bucket_error: str | None = None

    def _check(self) -> None:
        if self.down:
            raise urllib3.exceptions.MaxRetryError(
                None,  # type: ignore[arg-type]
                "/",
                urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
            )

    def bucket_exists(self, bucket: str) -> bool:
        self._check()
        return self.bucket

    def make_bucket(self, bucket: str) -> None:
        self._check()
        self.bucket = True
        if self.make_bucket_error:
            raise s3_error(self.make_bucket_error)

    def put_object(
        self, bucket: str, key: str, data: Any, length: int, content_type: str = ""
    ) -> None:
        self.put_entered.set()
        if self.put_gate is not None:
            assert self.put_gate.wait(WAIT_S)
        self._check()
        if not self.bucket:
            raise s3_error("NoSuchBucket")
        body = data.read()
        assert len(body) == length
        with self.lock:
            self.objects[key] = (body, content_type)
            self.uploaded.append(key)

    def get_object(self, bucket: str, key: str) -> _Body:
        self._check()
        if key not in self.objects:
            raise s3_error("NoSuchKey")
        return _Body(self.objects[key][0])

    def stat_object(self, bucket: str, key: str) -> object:
        self._check()
        if key not in self.objects:
            raise s3_error("NoSuchKey")
        return object()

    def presigned_get_object(self, bucket: str, key: str, expires: timedelta) -> str:
        return f"http://s3.test/{bucket}/{key}?X-Amz-Expires={int(expires.total_seconds())}"


def wait_until(cond: Any, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def key(n: int) -> str:
    return f"cam-1/2024-05-01/ev-{n:04d}.jpg"


def jpeg(n: int) -> bytes:
    return b"\xff\xd8" + n.to_bytes(4, "big") * 100 + b"\xff\xd9"


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.fake = FakeS3()
        self.spool = tmp_path / "spool"
        self.stores: list[S3EvidenceStore] = []

    def store(self, **kw: Any) -> S3EvidenceStore:
        kw.setdefault("retry_initial_s", 0.05)
        kw.setdefault("retry_max_s", 0.2)
        s = S3EvidenceStore(
            "127.0.0.1:1",
            BUCKET,
            access_key=ACCESS,
            secret_key=SECRET,
            spool_dir=self.spool,
            client=self.fake,
            **kw,
        )
        self.stores.append(s)
        return s

    def spooled(self) -> list[str]:
        return sorted(
            p.relative_to(self.spool).as_posix()
            for p in self.spool.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    for s in e.stores:
        s.close(timeout_s=0.1)


def metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


def test_protocols() -> None:
    assert issubclass(S3EvidenceStore, EvidenceStore)
    assert issubclass(S3EvidenceStore, UrlEvidenceStore)
    assert issubclass(LocalEvidenceStore, UrlEvidenceStore)


def test_local_store_gives_no_url(tmp_path: Path) -> None:
    local = LocalEvidenceStore(tmp_path)
    local.put(key(1), jpeg(1))
    assert local.url_for(key(1)) is None
    with pytest.raises(InvalidEvidenceKeyError):
        local.url_for("../x.jpg")


def test_put_spools_then_uploads_with_content_type_and_creates_bucket(env: Env) -> None:
    uploads0 = metric("argus_evidence_uploads_total")
    store = env.store()
    store.put(key(1), jpeg(1))
    assert store.flush(WAIT_S)
    assert env.fake.bucket
    assert env.fake.objects[key(1)] == (jpeg(1), CONTENT_TYPE)
    assert env.spooled() == [] and store.spool_depth == 0
    assert store.get(key(1)) == jpeg(1)  # now from S3
    assert store.exists(key(1))
    assert store.url_for(key(1)) == f"http://s3.test/{BUCKET}/{key(1)}?X-Amz-Expires=300"
    assert store.url_for(key(1), 2) is not None and "Expires=2" in (store.url_for(key(1), 2) or "")
    assert metric("argus_evidence_uploads_total") == uploads0 + 1
    assert store.state()["reachable"] is True and store.state()["spool_depth"] == 0


@pytest.mark.parametrize("code", ["BucketAlreadyOwnedByYou", "BucketAlreadyExists"])
def test_bucket_creation_race_is_tolerated(env: Env, code: str) -> None:
    env.fake.make_bucket_error = code  # another process created it between exists and make
    store = env.store()
    store.put(key(1), jpeg(1))
    assert store.flush(WAIT_S)
    assert key(1) in env.fake.objects


def test_outage_spools_serves_from_spool_and_drains_in_order(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.down = True
    store = env.store()
    failures0 = metric("argus_evidence_upload_failures_total")
    depth0 = metric("argus_evidence_spool_depth")
    with caplog.at_level(logging.DEBUG, logger="alerts.s3_evidence"):
        for n in range(20):
            t = time.perf_counter()
            store.put(key(n), jpeg(n))
            assert time.perf_counter() - t < 0.5  # never waits on the network
        wait_until(lambda: store.failures >= 3)
        assert env.spooled() == sorted(key(n) for n in range(20))
        assert store.spool_depth == 20
        assert metric("argus_evidence_spool_depth") == depth0 + 20
        assert metric("argus_evidence_upload_failures_total") >= failures0 + 3
        assert store.get(key(7)) == jpeg(7)  # served from the spool
        assert store.exists(key(7))
        assert store.url_for(key(7)) is None  # not uploaded: no URL
        assert store.flush(0.2) is False
        assert store.state()["reachable"] is False
        env.fake.down = False
        assert store.flush(WAIT_S)
    assert env.fake.uploaded == [key(n) for n in range(20)]  # oldest first
    assert env.spooled() == [] and store.spool_depth == 0
    assert metric("argus_evidence_spool_depth") == depth0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "spooling" in warnings[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("reachable again" in m and "20 to upload" in m for m in infos), infos
    assert any("drained: 20" in m for m in infos), infos
    for r in caplog.records:
        assert SECRET not in r.getMessage() and ACCESS not in r.getMessage()


def test_reads_when_s3_down_raise_unavailable_without_secrets(env: Env) -> None:
    store = env.store()
    store.put(key(1), jpeg(1))
    assert store.flush(WAIT_S)
    env.fake.down = True
    for call in (store.get, store.exists, store.url_for):
        with pytest.raises(EvidenceUnavailableError) as info:
            call(key(1))
        assert isinstance(info.value, OSError)
        assert SECRET not in str(info.value) and ACCESS not in str(info.value)
        assert info.value.key == key(1)


def test_missing_and_invalid_keys(env: Env) -> None:
    store = env.store()
    with pytest.raises(EvidenceNotFoundError):
        store.get(key(9))
    assert not store.exists(key(9))
    with pytest.raises(EvidenceNotFoundError):
        store.url_for(key(9))
    for bad in ("../etc/passwd", "/abs.jpg", "a//b.jpg", ".hidden/x.jpg", "a\\b.jpg"):
        with pytest.raises(InvalidEvidenceKeyError):
            store.put(bad, b"x")
        with pytest.raises(InvalidEvidenceKeyError):
            store.get(bad)
        with pytest.raises(InvalidEvidenceKeyError):
            store.url_for(bad)
    with pytest.raises(ValueError, match="expires_s"):
        store.url_for(key(1), 0)
    with pytest.raises(ValueError, match="expires_s"):
        store.url_for(key(1), 8 * 86400)


def test_constructor_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="url_expiry_s"):
        S3EvidenceStore(
            "h:1", BUCKET, access_key=ACCESS, secret_key=SECRET, spool_dir=tmp_path, url_expiry_s=0
        )
    with pytest.raises(ValueError) as info:
        S3EvidenceStore("", BUCKET, access_key=ACCESS, secret_key=SECRET, spool_dir=tmp_path)
    assert SECRET not in str(info.value)


def test_leftovers_from_a_previous_run_are_uploaded_oldest_first(env: Env) -> None:
    t0 = time.time() - 100
    for n in (3, 1, 2):  # written out of key order; mtimes give the order 1, 2, 3
        path = env.spool / key(n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(n))
        os.utime(path, (t0 + n, t0 + n))
    stale = env.spool / "cam-1" / "2024-05-01" / ".tmp-abc.part"
    stale.write_bytes(b"half")
    store = env.store()
    assert store.flush(WAIT_S)
    assert env.fake.uploaded == [key(1), key(2), key(3)]
    assert env.fake.objects[key(2)][0] == jpeg(2)
    assert not stale.exists() and env.spooled() == []


def test_rewrite_during_upload_is_not_lost(env: Env) -> None:
    gate = threading.Event()
    env.fake.put_gate = gate
    store = env.store()
    store.put(key(1), b"old")
    assert env.fake.put_entered.wait(WAIT_S)  # the upload of "old" is in flight
    store.put(key(1), b"new")
    gate.set()
    assert store.flush(WAIT_S)
    assert env.fake.objects[key(1)][0] == b"new"
    assert env.spooled() == []


def test_spool_is_locked_to_one_live_store(env: Env) -> None:
    first = env.store()
    with pytest.raises(SpoolLockedError):
        env.store()
    first.close()
    second = env.store()  # released by close
    second.put(key(1), jpeg(1))
    assert second.flush(WAIT_S)


def test_close_while_down_is_prompt_and_keeps_the_spool(env: Env) -> None:
    env.fake.down = True
    depth0 = metric("argus_evidence_spool_depth")
    store = env.store()
    for n in range(5):
        store.put(key(n), jpeg(n))
    wait_until(lambda: store.failures >= 1)
    assert metric("argus_evidence_spool_depth") == depth0 + 5
    t = time.perf_counter()
    store.close()
    assert time.perf_counter() - t < 2.0
    assert len(env.spooled()) == 5
    assert metric("argus_evidence_spool_depth") == depth0  # no longer this process's backlog
    store.put(key(9), jpeg(9))  # after close: still kept for the next start
    assert len(env.spooled()) == 6
    assert metric("argus_evidence_spool_depth") == depth0
    again = env.store()  # S3 still down: the leftovers are counted, not uploaded
    assert metric("argus_evidence_spool_depth") == depth0 + 6
    env.fake.down = False
    assert again.flush(WAIT_S)
    assert metric("argus_evidence_spool_depth") == depth0
    assert sorted(env.fake.uploaded) == sorted([key(n) for n in range(5)] + [key(9)])


def test_bucket_deleted_behind_our_back_is_recreated(env: Env) -> None:
    store = env.store()
    store.put(key(1), jpeg(1))
    assert store.flush(WAIT_S)
    env.fake.bucket = False
    store.put(key(2), jpeg(2))
    assert store.flush(WAIT_S)
    assert env.fake.bucket and key(2) in env.fake.objects


def test_spool_bound_drops_the_oldest_queued_never_the_one_in_flight(env: Env) -> None:
    env.fake.down = True  # nothing can upload: everything piles up
    s = env.store(max_spool_files=3)
    for n in range(6):
        s.put(key(n), jpeg(n))
    wait_until(lambda: s.spool_depth == 3)
    assert s.dropped == 3
    assert env.spooled() == sorted([key(0), key(4), key(5)]), "key 0 was in flight"
    env.fake.down = False
    assert s.flush(WAIT_S)
    assert set(env.fake.objects) == {key(0), key(4), key(5)}


def test_spool_bound_drops_track_thumbnails_before_any_alert_evidence(env: Env) -> None:
    """A long outage of a busy camera: search's thumbnails give way to the alerts' snapshots."""
    env.fake.down = True
    s = env.store(max_spool_files=4)
    thumbs = [f"cam-1/2024-05-01/track-t{n}.jpg" for n in range(3)]
    s.put(key(0), jpeg(0))  # in flight
    s.put(thumbs[0], jpeg(10))
    s.put(key(1), jpeg(1))
    s.put(thumbs[1], jpeg(11))  # four: at the bound
    s.put(key(2), jpeg(2))  # drops the oldest thumbnail, not snapshot 1
    assert s.dropped == 1 and env.spooled() == sorted([key(0), key(1), thumbs[1], key(2)])
    s.put(thumbs[2], jpeg(12))  # drops thumbnail 1 (older), keeps the newest
    s.put(key(3), jpeg(3))  # drops thumbnail 2: no thumbnail is left
    assert env.spooled() == sorted([key(0), key(1), key(2), key(3)])
    s.put(key(4), jpeg(4))  # only snapshots: the oldest queued one goes
    assert s.dropped == 4 and env.spooled() == sorted([key(0), key(2), key(3), key(4)])


def test_a_large_clip_over_the_byte_bound_pushes_out_thumbnails_first(env: Env) -> None:
    env.fake.down = True
    size = len(jpeg(0))
    s = env.store(max_spool_bytes=8 * size)
    s.put(key(0), jpeg(0))  # in flight
    s.put(key(1), jpeg(1))
    thumbs = [f"cam-1/2024-05-01/track-t{n}.jpg" for n in range(5)]
    for n, t in enumerate(thumbs):
        s.put(t, jpeg(10 + n))  # seven files: under the bound
    clip = "cam-1/2024-05-01/ev-0002.mp4"
    s.put(clip, b"\x00" * (4 * size))  # 11 sizes' worth: three must go, the oldest thumbnails
    assert s.dropped == 3
    assert env.spooled() == sorted([key(0), key(1), thumbs[3], thumbs[4], clip])


def test_spool_bound_in_bytes_drops_the_oldest_too(env: Env) -> None:
    env.fake.down = True
    size = len(jpeg(0))
    s = env.store(max_spool_bytes=3 * size + 1)  # room for three of them
    for n in range(6):
        s.put(key(n), jpeg(n))
    wait_until(lambda: s.spool_depth == 3)
    assert s.dropped == 3 and env.spooled() == sorted([key(0), key(4), key(5)])
    env.fake.down = False
    assert s.flush(WAIT_S)
    assert set(env.fake.objects) == {key(0), key(4), key(5)}
    env.fake.down = True  # what was uploaded no longer counts: three more fit
    for n in range(6, 9):
        s.put(key(n), jpeg(n))
    assert s.dropped == 3 and env.spooled() == sorted(key(n) for n in range(6, 9))


def test_a_snapshot_s3_refuses_for_good_is_quarantined_and_the_rest_upload(env: Env) -> None:
    refused = key(1)
    real_put = env.fake.put_object

    def put(bucket: str, k: str, data: Any, length: int, content_type: str = "") -> None:
        if k == refused:
            raise s3_error("AccessDenied")
        real_put(bucket, k, data, length, content_type)

    env.fake.put_object = put  # type: ignore[method-assign]
    s = env.store()
    for n in range(4):
        s.put(key(n), jpeg(n))
    assert s.flush(WAIT_S), "the refused snapshot does not block the queue"
    assert set(env.fake.objects) == {key(0), key(2), key(3)}
    assert (s.quarantine_dir / refused).read_bytes() == jpeg(1)
    assert s.spool_depth == 0
