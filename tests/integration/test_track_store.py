"""Track summaries in the store (``TrackStore``, ``alerts/store/sql_tracks.py``) on both
backends (fixture ``store_factory``: a SQLite file and the local PostgreSQL): the round trip
of every field, redelivery, each search filter, time ranges, the row cap, the time limit,
``upsert`` of a track record, and retention of tracks with their thumbnails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerts.evidence import LocalEvidenceStore, masked_key
from alerts.retention import RetentionJob
from alerts.schema import InvalidEventError
from alerts.store import (
    SearchTooBroadError,
    SqlAlertStore,
    Track,
    TrackQuery,
    TrackStore,
)
from alerts.store.sql_tracks import LONG_TRACK_S, MAX_SCAN_LIMIT
from tests.factories import T0, make_event, make_track_record
from tests.pg import StoreFactory

pytestmark = pytest.mark.integration

DAY = 86400.0
HOUR = 3600.0


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlAlertStore:
    return store_factory()


def add(store: SqlAlertStore, n: int, **kw: Any) -> dict[str, Any]:
    record = make_track_record(n, **kw)
    store.add_track(record)
    return record


def uids(tracks: list[Track]) -> list[str]:
    return [t.track_uid for t in tracks]


def find(store: SqlAlertStore, **kw: Any) -> list[str]:
    kw.setdefault("since_ts", T0 - DAY)
    kw.setdefault("until_ts", T0 + DAY)
    return uids(store.find_tracks(TrackQuery(**kw)).tracks)


# ---------------------------------------------------------------------------- storing


def test_the_store_is_a_track_store(store: SqlAlertStore) -> None:
    assert isinstance(store, TrackStore)


def test_every_field_round_trips(store: SqlAlertStore) -> None:
    appearance = [0.0] * 33
    appearance[3], appearance[0], appearance[11], appearance[23] = 0.7, 0.3, 1.0, 0.123
    record = make_track_record(
        7,
        camera="gate-2",
        label="person",
        first=T0 + 12.25,
        duration_s=31.5,
        upper="red",
        lower="blue",
        body="grey",
        shares={"upper": 0.7, "lower": 0.55, "body": 0.123},
        zones=["door", "lobby_1", "a.b-c"],
        direction="up",
        height_px=250.0,
        thumbnail=True,
        appearance=appearance,
    )
    record["run_id"] = "2b1d6f9e-1c8a-4f0e-9a51-3d7f0c1e2a44"
    record["size"] = {"width_px": 101.5, "height_px": 250.0, "height_frac": 0.347}
    record["samples"] = 17
    record["bbox"] = [10.5, 20.0, 112.0, 270.25]
    store.add_track(record)

    t = store.get_track(str(record["track_uid"]))
    assert t is not None
    assert (t.track_uid, t.camera_id, t.run_id, t.track_id, t.label) == (
        record["track_uid"], "gate-2", record["run_id"], 7, "person",
    )  # fmt: skip
    assert (t.first_ts, t.last_ts, t.first_s, t.last_s) == (T0 + 12.25, T0 + 43.75, 7.0, 38.5)
    assert t.duration_s == 31.5
    assert t.zones == ("door", "lobby_1", "a.b-c")  # in order of entry
    assert t.direction == "up"
    assert dict(t.colours) == {"upper": "red", "lower": "blue", "body": "grey"}
    assert dict(t.shares) == {"upper": 0.7, "lower": 0.55, "body": 0.123}
    assert (t.width_px, t.height_px, t.height_frac, t.samples) == (101.5, 250.0, 0.347, 17)
    assert t.bbox == (10.5, 20.0, 112.0, 270.25)
    assert t.thumbnail == record["thumbnail"]
    assert str(t.thumbnail).startswith("gate-2/")
    assert t.appearance is not None and len(t.appearance) == 33
    assert t.appearance == pytest.approx(appearance, abs=5e-4)  # float16
    assert store.get_track("00000000-0000-0000-0000-000000000000") is None


def test_optional_fields_absent(store: SqlAlertStore) -> None:
    record = make_track_record(1, upper=None, lower=None, body="white")
    for key in ("first_s", "last_s", "bbox", "appearance"):
        del record[key]
    store.add_track(record)
    t = store.get_track(str(record["track_uid"]))
    assert t is not None
    assert (t.run_id, t.first_s, t.last_s, t.bbox, t.thumbnail, t.appearance) == (None,) * 6
    assert dict(t.colours) == {"body": "white"} and dict(t.shares) == {"body": 0.6}
    assert t.zones == ()


def test_redelivery_replaces_the_row(store: SqlAlertStore) -> None:
    record = add(store, 1, upper="red")
    add(store, 1, upper="red")
    assert store.count_tracks() == 1
    again = make_track_record(1, upper="green", zones=["z"], thumbnail=True)
    store.add_track(again)
    assert store.count_tracks() == 1
    t = store.get_track(str(record["track_uid"]))
    assert t is not None and t.colours["upper"] == "green" and t.zones == ("z",)
    assert t.thumbnail == again["thumbnail"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"direction": "sideways"}, "$.direction"),
        ({"colours": {"upper": "teal"}}, "$.colours.upper"),
        ({"appearance": [0.5] * 32}, "$.appearance"),
        ({"last_seen": "2024-05-01T00:00:00+00:00"}, "$.last_seen"),
        ({"zones": ["a b"]}, "$.zones[0]"),
    ],
)
def test_an_invalid_record_is_refused(
    store: SqlAlertStore, change: dict[str, Any], path: str
) -> None:
    record = make_track_record(1) | change
    with pytest.raises(InvalidEventError) as e:
        store.add_track(record)
    assert e.value.path == path
    with pytest.raises(InvalidEventError):
        store.upsert(record)
    assert store.count_tracks() == 0


def test_a_record_without_a_field_is_refused(store: SqlAlertStore) -> None:
    record = make_track_record(1)
    del record["samples"]
    with pytest.raises(InvalidEventError):
        store.add_track(record)


def test_upsert_stores_a_track_record_and_no_alert(store: SqlAlertStore) -> None:
    record = make_track_record(3, zones=["yard"])
    store.upsert(record)
    store(dict(record))  # the bus subscriber's form: a redelivery
    assert store.count_tracks() == 1 and store.count() == 0
    assert store.get_track(str(record["track_uid"])) is not None
    store.upsert(make_event(1).to_record())
    assert store.count() == 1 and store.count_tracks() == 1


# ---------------------------------------------------------------------------- searching


def test_each_filter(store: SqlAlertStore) -> None:
    a = add(store, 1, camera="cam-a", upper="red", lower="black", zones=["door"])["track_uid"]
    b = add(store, 2, camera="cam-b", upper="blue", lower="red", direction="left")["track_uid"]
    c = add(
        store, 3, camera="cam-a", label="car", upper=None, lower=None, body="red", zones=["ab"]
    )["track_uid"]
    d = add(store, 4, camera="cam-c", upper="white", lower="grey", zones=["a", "door"])["track_uid"]
    assert find(store) == [d, c, b, a]  # the most recently first seen first
    assert find(store, camera_ids=frozenset({"cam-a"})) == [c, a]
    assert find(store, camera_ids=frozenset({"cam-a", "cam-c"})) == [d, c, a]
    assert find(store, camera_ids=frozenset()) == []
    assert find(store, camera_ids=None) == [d, c, b, a]
    assert find(store, label="car") == [c]
    assert find(store, label="person") == [d, b, a]
    assert find(store, upper="red") == [a]
    assert find(store, lower="red") == [b]
    assert find(store, upper="red", lower="black") == [a]
    assert find(store, upper="red", lower="red") == []
    assert find(store, colour="red") == [c, b, a]  # upper, lower or body
    assert find(store, colour="grey") == [d]
    assert find(store, zone="door") == [d, a]
    assert find(store, zone="a") == [d]  # exact: not "ab"
    assert find(store, zone="ab") == [c]
    assert find(store, zone="do") == []
    assert find(store, direction="left") == [b]
    assert find(store, direction="right") == [d, c, a]
    assert find(store, exclude_uid=c) == [d, b, a]
    assert find(store, colour="red", camera_ids=frozenset({"cam-a"}), label="car") == [c]


def test_with_appearance_only_when_asked(store: SqlAlertStore) -> None:
    add(store, 1)
    q = TrackQuery(T0 - HOUR, T0 + HOUR)
    (plain,) = store.find_tracks(q).tracks
    (full,) = store.find_tracks(q, with_appearance=True).tracks
    assert plain.appearance is None
    assert full.appearance is not None and full.appearance[3] == 1.0  # upper red
    assert plain.colours == full.colours and plain.zones == full.zones


def test_time_ranges_select_overlapping_tracks(store: SqlAlertStore) -> None:
    since, until = T0 + 1000.0, T0 + 2000.0

    def at(n: int, first: float, duration: float) -> str:
        return str(add(store, n, first=first, duration_s=duration)["track_uid"])

    before = at(1, since - 60, 50)  # ends 10 s before the range
    ends_in = at(2, since - 60, 60)  # ends exactly at its start
    inside = at(3, since + 100, 10)
    starts_at_end = at(4, until, 30)  # first seen exactly at its end
    after = at(5, until + 1, 5)
    covering = at(6, since - 10, 2000)  # overlaps the whole range
    long_ago = at(7, since - 10 * LONG_TRACK_S, 10 * LONG_TRACK_S + 1)  # parked, long
    long_ended = at(8, since - 10 * LONG_TRACK_S, 5 * LONG_TRACK_S)  # long, ended before
    found = find(store, since_ts=since, until_ts=until)
    assert found == [starts_at_end, inside, covering, ends_in, long_ago]
    assert not {before, after, long_ended} & set(found)
    timeline = uids(
        store.camera_tracks("cam-1", since_ts=since, until_ts=until, limit=10)
    )  # first seen first
    assert timeline == [long_ago, ends_in, covering, inside, starts_at_end]
    assert uids(store.camera_tracks("cam-1", since_ts=since, until_ts=until, limit=2)) == [
        long_ago,
        ends_in,
    ]
    assert store.camera_tracks("cam-2", since_ts=since, until_ts=until, limit=10) == []


def test_the_row_cap_reads_the_newest_and_says_it_capped(store: SqlAlertStore) -> None:
    recs = [add(store, n, first=T0 + 10 * n) for n in range(6)]
    long = add(store, 99, first=T0 - 3 * LONG_TRACK_S, duration_s=3 * LONG_TRACK_S + 20)
    newest = [str(r["track_uid"]) for r in reversed(recs)]
    q = {"since_ts": T0 + 9, "until_ts": T0 + 1000}  # the first one ended at T0 + 8
    capped = store.find_tracks(TrackQuery(**q, scan_limit=3))
    assert uids(capped.tracks) == newest[:3] and capped.capped
    exact = store.find_tracks(TrackQuery(**q, scan_limit=5))  # 5 recent + 1 long match
    assert uids(exact.tracks) == newest[:5] and exact.capped
    whole = store.find_tracks(TrackQuery(**q, scan_limit=6))
    assert uids(whole.tracks) == [*newest[:5], long["track_uid"]] and not whole.capped
    roomy = store.find_tracks(TrackQuery(**q, scan_limit=100))
    assert len(roomy.tracks) == 6 and not roomy.capped


def test_questions_out_of_range_are_refused(store: SqlAlertStore) -> None:
    for bad in (
        TrackQuery(T0, T0),
        TrackQuery(T0, T0 - 1),
        TrackQuery(T0, T0 + 1, scan_limit=0),
        TrackQuery(T0, T0 + 1, scan_limit=MAX_SCAN_LIMIT + 1),
        TrackQuery(T0, T0 + 1, direction="north"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError):
            store.find_tracks(bad)
    with pytest.raises(ValueError):
        store.camera_tracks("cam-1", since_ts=T0, until_ts=T0 + 1, limit=0)


BULK = 30_000


def bulk_load(store: SqlAlertStore, n: int) -> None:
    """``n`` plain tracks of camera ``bulk`` one second apart from ``T0``, by one statement
    (a recursive CTE: both backends run it)."""
    with store._lock:
        store._conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO tracks (track_uid, camera_id, track_id, label, first_ts, last_ts, "
            "zones, direction, width_px, height_px, height_frac, samples, received_at) "
            "SELECT 'bulk-' || i, 'bulk', i, 'person', ? + i, ? + i + 5, '[]', 'left', "
            "10.0, 20.0, 0.1, 1, 0.0 FROM n",
            (n, T0, T0),
        )


def test_a_search_past_its_time_limit_is_stopped(store: SqlAlertStore) -> None:
    bulk_load(store, BULK)
    assert store.count_tracks() == BULK
    slow = TrackQuery(T0, T0 + BULK + 10, zone="nowhere")  # reads every row, finds none
    store.search_timeout_s = 1e-4  # PostgreSQL: its least, 1 ms
    with pytest.raises(SearchTooBroadError):
        store.find_tracks(slow)
    with pytest.raises(SearchTooBroadError):
        store.camera_tracks("bulk", since_ts=T0, until_ts=T0 + BULK, limit=10_000)
    # the connection is fine afterwards, and the limit applies to searches only
    assert store.count_tracks() == BULK
    add(store, 1)
    store.search_timeout_s = 30.0
    assert store.find_tracks(slow).tracks == []
    found = store.find_tracks(TrackQuery(T0, T0 + BULK + 10, camera_ids=frozenset({"bulk"})))
    assert found.capped and len(found.tracks) == 5000
    assert found.tracks[0].track_uid == f"bulk-{BULK}"


# ---------------------------------------------------------------------------- retention

NOW = T0 + 400 * DAY


def deleted_total(kind: str) -> float:
    value = REGISTRY.get_sample_value("argus_retention_deleted_total", {"kind": kind})
    return 0.0 if value is None else value


class FlakyEvidence(LocalEvidenceStore):
    """A local evidence store whose deletes of ``failing`` keys raise ``OSError``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failing: set[str] = set()

    def delete(self, key: str) -> bool:
        if key in self.failing:
            raise OSError(f"cannot delete {key}")
        return super().delete(key)


@pytest.fixture
def evidence(tmp_path: Path) -> Iterator[FlakyEvidence]:
    yield FlakyEvidence(tmp_path / "evidence")


def test_retention_sweeps_old_tracks_and_their_thumbnails(
    store: SqlAlertStore, evidence: FlakyEvidence
) -> None:
    keys: dict[int, str] = {}

    def track(n: int, camera: str, age_days: float, *, thumbnail: bool = True) -> str:
        first = NOW - age_days * DAY
        record = add(store, n, camera=camera, first=first, duration_s=60.0, thumbnail=thumbnail)
        key = record.get("thumbnail")
        if isinstance(key, str):
            keys[n] = key
            evidence.put(key, b"jpeg")
            evidence.put(masked_key(key), b"masked jpeg")
        return str(record["track_uid"])

    old = [track(1, "cam-1", 40), track(2, "cam-1", 31), track(3, "cam-2", 35, thumbnail=False)]
    stuck = track(4, "cam-2", 50)
    young = [track(5, "cam-1", 29), track(6, "cam-2", 1)]
    # last seen 60 s after first: one first seen just over 30 days ago but last seen within
    edge = track(7, "cam-1", 30 + 30 / DAY)
    evidence.failing = {keys[4]}
    before = {k: deleted_total(k) for k in ("track", "thumbnail")}

    job = RetentionJob(store, evidence, days=30, every_s=3600.0, holder="r1", batch_size=1)
    result = job.sweep_once(NOW)

    assert (result.tracks, result.thumbnails, result.tracks_kept) == (3, 4, 1)
    assert result.cameras == ("cam-1", "cam-2")
    assert {k: deleted_total(k) - v for k, v in before.items()} == {"track": 3, "thumbnail": 4}
    assert all(store.get_track(u) is None for u in old)
    assert store.get_track(stuck) is not None, "kept: its thumbnail could not be deleted"
    assert all(store.get_track(u) is not None for u in [*young, edge])
    files = {p.name for p in evidence.root.rglob("*.jpg")}
    assert files == {Path(k).name for n in (4, 5, 6, 7) for k in (keys[n], masked_key(keys[n]))}
    (entry,) = store.list_audit(action="retention.sweep")
    assert entry.detail["tracks"] == 3 and entry.detail["thumbnails"] == 4
    assert entry.detail["tracks_kept"] == 1 and entry.detail["alerts"] == 0

    evidence.failing.clear()
    again = job.sweep_once(NOW + 3600.0)
    # the stuck one, and the edge one, last seen 30 days ago within this hour
    assert (again.tracks, again.thumbnails, again.tracks_kept) == (2, 4, 0)
    assert store.get_track(stuck) is None and store.get_track(edge) is None
    assert store.track_cameras() == ["cam-1", "cam-2"]
    assert store.count_tracks() == 2


def test_expired_tracks_and_delete_tracks(store: SqlAlertStore) -> None:
    a = add(store, 1, first=T0, duration_s=10)["track_uid"]
    b = add(store, 2, first=T0 + 100, duration_s=10)["track_uid"]
    c = add(store, 3, first=T0 + 50, duration_s=1000)["track_uid"]  # last seen T0 + 1050
    add(store, 4, camera="cam-2", first=T0, duration_s=10)
    expired = store.expired_tracks("cam-1", before=T0 + 500, limit=10)
    assert [e.track_uid for e in expired] == [a, b]  # the first seen first; c still seen
    assert [e.track_uid for e in store.expired_tracks("cam-1", before=T0 + 500, limit=1)] == [a]
    assert [
        e.track_uid for e in store.expired_tracks("cam-1", before=T0 + 500, limit=5, offset=1)
    ] == [b]
    assert store.delete_tracks([a, c, "nope", a]) == 2
    assert store.delete_tracks([]) == 0
    with pytest.raises(TypeError):
        store.delete_tracks(str(b))
    assert store.count_tracks() == 2 and store.track_cameras() == ["cam-1", "cam-2"]
