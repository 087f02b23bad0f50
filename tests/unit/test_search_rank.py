"""Ranking of forensic search candidates (``alerts.search``) on hand-made tracks: colour
shares, the visibility factor, ties, and "more like this" by appearance."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from alerts.search import (
    DESCRIPTOR_SIZE,
    FULL_DURATION_S,
    FULL_HEIGHT_FRAC,
    colour_match,
    rank,
    similarity,
    visibility,
)
from alerts.store.tracks import Track, TrackQuery

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
Q = TrackQuery(since_ts=T0 - 3600, until_ts=T0 + 3600)
COLOURS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple",
           "pink", "brown")  # fmt: skip


def track(
    uid: str,
    *,
    colours: Mapping[str, str] | None = None,
    shares: Mapping[str, float] | None = None,
    height_frac: float = FULL_HEIGHT_FRAC,
    duration_s: float = FULL_DURATION_S,
    first_ts: float = T0,
    appearance: tuple[float, ...] | None = None,
) -> Track:
    colours = dict(colours or {})
    return Track(
        track_uid=uid,
        camera_id="cam-1",
        run_id=None,
        track_id=1,
        label="person",
        first_ts=first_ts,
        last_ts=first_ts + duration_s,
        first_s=None,
        last_s=None,
        zones=(),
        direction="left",
        colours=colours,
        shares=dict(shares or dict.fromkeys(colours, 0.5)),
        width_px=40.0,
        height_px=100.0,
        height_frac=height_frac,
        samples=5,
        appearance=appearance,
    )


def hist(**parts: Mapping[str, float]) -> tuple[float, ...]:
    """A descriptor from per-part colour shares (``upper={"red": 0.7, "black": 0.3}``)."""
    vec = [0.0] * DESCRIPTOR_SIZE
    for i, part in enumerate(("upper", "lower", "body")):
        for colour, share in parts.get(part, {}).items():
            vec[i * 11 + COLOURS.index(colour)] = share
    return tuple(vec)


def order(ranked: list[tuple[float, Track]]) -> list[str]:
    return [t.track_uid for _, t in ranked]


# ------------------------------------------------------------------------- colour


def test_upper_colour_orders_by_its_share() -> None:
    tracks = [
        track("a", colours={"upper": "red"}, shares={"upper": 0.4}),
        track("b", colours={"upper": "red"}, shares={"upper": 0.9}),
        track("c", colours={"upper": "red"}, shares={"upper": 0.6}),
    ]
    ranked = rank(tracks, TrackQuery(Q.since_ts, Q.until_ts, upper="red"))
    assert order(ranked) == ["b", "c", "a"]
    assert [s for s, _ in ranked] == pytest.approx([0.9, 0.6, 0.4])  # fully visible: x1


def test_upper_and_lower_multiply_their_shares() -> None:
    tracks = [
        # 0.9 * 0.3 = 0.27
        track("a", colours={"upper": "red", "lower": "blue"}, shares={"upper": 0.9, "lower": 0.3}),
        # 0.6 * 0.6 = 0.36
        track("b", colours={"upper": "red", "lower": "blue"}, shares={"upper": 0.6, "lower": 0.6}),
        # lower not blue: 0
        track("c", colours={"upper": "red", "lower": "grey"}, shares={"upper": 1.0, "lower": 1.0}),
    ]
    ranked = rank(tracks, TrackQuery(Q.since_ts, Q.until_ts, upper="red", lower="blue"))
    assert order(ranked) == ["b", "a", "c"]
    assert [s for s, _ in ranked] == pytest.approx([0.36, 0.27, 0.0])


def test_colour_on_any_part_takes_the_best_matching_part() -> None:
    ww, bw = {"upper": "white", "lower": "white"}, {"upper": "black", "lower": "white"}
    tracks = [
        track("a", colours=ww, shares={"upper": 0.3, "lower": 0.8}),
        track("b", colours={"body": "white"}, shares={"body": 0.5}),
        track("c", colours=bw, shares={"upper": 0.9, "lower": 0.2}),
    ]
    ranked = rank(tracks, TrackQuery(Q.since_ts, Q.until_ts, colour="white"))
    assert order(ranked) == ["a", "b", "c"]
    assert colour_match(tracks[0], TrackQuery(0, 1, colour="white")) == pytest.approx(0.8)


def test_visibility_favours_large_long_seen_tracks_but_at_most_halves() -> None:
    big = track("big", colours={"upper": "red"}, shares={"upper": 0.5})
    small = track("small", colours={"upper": "red"}, shares={"upper": 0.5}, height_frac=0.1)
    brief = track("brief", colours={"upper": "red"}, shares={"upper": 0.5}, duration_s=1.0)
    tiny = track(
        "tiny", colours={"upper": "red"}, shares={"upper": 0.5}, height_frac=0.0, duration_s=0.0
    )
    assert visibility(big) == 1.0 and visibility(tiny) == 0.5
    assert visibility(small) == pytest.approx(0.5 + 0.25 * 0.4 + 0.25)
    assert visibility(brief) == pytest.approx(0.5 + 0.25 + 0.25 * 0.2)
    ranked = rank([tiny, brief, small, big], TrackQuery(Q.since_ts, Q.until_ts, upper="red"))
    assert order(ranked) == ["big", "small", "brief", "tiny"]
    # a higher share beats better visibility when the share is more than twice as high
    clear = track("clear", colours={"upper": "red"}, shares={"upper": 0.3})
    strong = track(
        "strong", colours={"upper": "red"}, shares={"upper": 0.7}, height_frac=0.0, duration_s=0
    )
    assert order(rank([clear, strong], TrackQuery(0, 1, upper="red"))) == ["strong", "clear"]


def test_without_colour_visibility_then_newest_first() -> None:
    tracks = [
        track("old", first_ts=T0 - 100),
        track("new", first_ts=T0),
        track("small-new", first_ts=T0 + 50, height_frac=0.01),
    ]
    ranked = rank(tracks, Q)
    assert order(ranked) == ["new", "old", "small-new"]
    assert all(0.0 <= s <= 1.0 for s, _ in ranked)


def test_ties_go_newest_first() -> None:
    tracks = [track(f"t{i}", first_ts=T0 + i, colours={"upper": "red"}) for i in range(5)]
    ranked = rank(tracks, TrackQuery(Q.since_ts, Q.until_ts, upper="red"))
    assert order(ranked) == ["t4", "t3", "t2", "t1", "t0"]


# ------------------------------------------------------------------------- appearance


def test_similarity_is_one_minus_mean_half_l1_over_parts_seen_by_both() -> None:
    a = hist(upper={"red": 1.0}, lower={"black": 1.0})
    assert similarity(a, a) == pytest.approx(1.0)
    b = hist(upper={"red": 0.5, "orange": 0.5}, lower={"blue": 1.0})
    # upper: half L1 = 0.5; lower: 1.0; mean 0.75
    assert similarity(a, b) == pytest.approx(0.25)
    # a part with no colour in either is ignored (body here; lower missing in c)
    c = hist(upper={"red": 0.5, "orange": 0.5})
    assert similarity(a, c) == pytest.approx(0.5)
    # nothing in common: no answer
    assert similarity(hist(upper={"red": 1.0}), hist(body={"red": 1.0})) is None
    assert similarity(a, None) is None


def test_more_like_this_orders_by_appearance_missing_descriptors_last() -> None:
    ref = track("ref", appearance=hist(upper={"red": 0.8, "black": 0.2}, lower={"blue": 1.0}))
    same = track("same", appearance=hist(upper={"red": 0.8, "black": 0.2}, lower={"blue": 1.0}))
    close = track("close", appearance=hist(upper={"red": 0.6, "black": 0.4}, lower={"blue": 1.0}))
    far = track("far", appearance=hist(upper={"green": 1.0}, lower={"white": 1.0}))
    none = track("none", first_ts=T0 + 999)  # newest, but no descriptor
    other = track("car", appearance=hist(body={"red": 1.0}), first_ts=T0 + 998)  # no shared part
    ranked = rank([none, far, other, close, ref, same], Q, like=ref)
    assert order(ranked) == ["same", "close", "far", "none", "car"]  # the reference left out
    scores = [s for s, _ in ranked]
    assert scores[:3] == pytest.approx([1.0, 0.9, 0.0])
    assert scores[3:] == [0.0, 0.0]


def test_more_like_this_without_a_reference_descriptor_falls_back_to_colour() -> None:
    ref = track("ref")
    red = {"upper": "red"}
    tracks = [
        track("a", colours=red, shares={"upper": 0.2}, appearance=hist(upper={"red": 1})),
        track("b", colours=red, shares={"upper": 0.9}),
    ]
    assert order(rank(tracks, TrackQuery(0, 1, upper="red"), like=ref)) == ["b", "a"]


def test_empty_candidates() -> None:
    assert rank([], Q) == []
    assert rank([], Q, like=track("x", appearance=hist(upper={"red": 1.0}))) == []
