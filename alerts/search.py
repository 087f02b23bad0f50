"""Ranking of forensic search candidates (pure: no database, no I/O).

The store finds the tracks that pass a question's filters (``TrackStore.find_tracks``); this
module orders them, best first, with a score in [0, 1]:

* **By colour and visibility** (a search by description).  The colour factor is the product,
  over the colours the question names, of the matched part's share (``upper``: the track's
  upper-body share, ``lower`` likewise; ``colour`` on any part: the best share among the parts
  of that colour); 1 when the question names no colour.  It is multiplied by the
  *visibility* factor ``visibility(track)`` in [0.5, 1]: a large track seen for a while
  (better pictured, its colours measured on more pixels) goes before a small, brief one of
  the same colour share, but never by more than a factor of 2.
* **By appearance** (``like``: "more like this").  The score is ``similarity`` of the two
  33-number descriptors; tracks without a comparable descriptor come last (score 0).

Ties go to the most recently first seen (then ``track_uid``, for a stable order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from alerts.store.tracks import PARTS, Track, TrackQuery

COLOURS_PER_PART = 11
"""Colour shares per part in an appearance descriptor (``alerts/track.schema.json``)."""
DESCRIPTOR_SIZE = COLOURS_PER_PART * len(PARTS)
"""Numbers in an appearance descriptor: 33 (upper, lower, body bands, 11 shares each)."""
FULL_HEIGHT_FRAC = 0.25
"""A track whose box is this tall a share of the picture (or taller) counts as fully large."""
FULL_DURATION_S = 5.0
"""A track seen this long (seconds, or longer) counts as fully seen."""

F64 = npt.NDArray[np.float64]


def visibility(track: Track) -> float:
    """How well ``track`` was seen, in [0.5, 1]: ``0.5 + 0.25 * size + 0.25 * seen`` where
    ``size = min(1, height_frac / FULL_HEIGHT_FRAC)`` and ``seen = min(1, duration_s /
    FULL_DURATION_S)`` (each clamped to [0, 1])."""
    size = track.height_frac / FULL_HEIGHT_FRAC
    seen = (track.last_ts - track.first_ts) / FULL_DURATION_S
    size = 1.0 if size > 1.0 else 0.0 if size < 0.0 else size
    seen = 1.0 if seen > 1.0 else 0.0 if seen < 0.0 else seen
    return 0.5 + 0.25 * size + 0.25 * seen


def colour_match(track: Track, query: TrackQuery) -> float:
    """The colour factor of ``track`` for ``query``, in [0, 1] (see the module): the product
    of the shares of the parts the question names (0 for a part not of the asked colour); 1
    when it names none."""
    factor = 1.0
    colours = track.colours
    if query.upper is not None:
        factor *= _share(track, "upper") if colours.get("upper") == query.upper else 0.0
    if query.lower is not None:
        factor *= _share(track, "lower") if colours.get("lower") == query.lower else 0.0
    if query.colour is not None:
        factor *= max(
            (_share(track, p) for p, c in colours.items() if c == query.colour), default=0.0
        )
    return factor


def _share(track: Track, part: str) -> float:
    return min(1.0, max(0.0, float(track.shares.get(part, 0.0))))


def descriptor(values: Sequence[float] | None) -> F64 | None:
    """A descriptor as a ``(3, 11)`` array (parts x colours), or ``None`` when absent or not
    33 numbers."""
    if values is None or len(values) != DESCRIPTOR_SIZE:
        return None
    return np.asarray(values, dtype=np.float64).reshape(len(PARTS), COLOURS_PER_PART)


def similarities(like: F64, others: F64) -> F64:
    """Appearance similarity of ``like`` ``(3, 11)`` to each of ``others`` ``(n, 3, 11)``:
    ``(n,)`` in [0, 1], or NaN where no part has colour in both.

    Per part coloured in both (a part whose 11 shares are all 0 was not seen), the distance
    is half the L1 distance of the two 11-share histograms (0: the same, 1: no colour in
    common); the similarity is 1 minus the mean distance over those parts.
    """
    seen_like = like.sum(axis=-1) > 0  # (3,)
    seen = (others.sum(axis=-1) > 0) & seen_like  # (n, 3)
    distance = np.minimum(1.0, 0.5 * np.abs(others - like).sum(axis=-1))  # (n, 3)
    parts = seen.sum(axis=-1)  # (n,)
    total = np.where(seen, distance, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(parts > 0, 1.0 - total / parts, np.nan)


def similarity(a: Sequence[float] | None, b: Sequence[float] | None) -> float | None:
    """Appearance similarity of two 33-number descriptors in [0, 1] (``similarities``), or
    ``None`` when either is missing or no part has colour in both."""
    da, db = descriptor(a), descriptor(b)
    if da is None or db is None:
        return None
    value = float(similarities(da, db[np.newaxis])[0])
    return None if np.isnan(value) else value


def rank(
    candidates: Sequence[Track], query: TrackQuery, like: Track | None = None
) -> list[tuple[float, Track]]:
    """``candidates`` as ``(score, track)``, best first, scores in [0, 1] (see the module).

    Args:
        candidates: What the store found for ``query`` (``find_tracks``; with
            ``with_appearance=True`` when ``like`` is given).
        query: The question (its colours weigh the score).
        like: Rank by appearance similarity to this track (its descriptor needed; without
            one the colour and visibility ranking applies).  The track itself, if among the
            candidates, is left out.
    """
    reference = None if like is None else descriptor(like.appearance)
    if like is not None and reference is not None:
        pool = [t for t in candidates if t.track_uid != like.track_uid]
        have = [
            i
            for i, t in enumerate(pool)
            if t.appearance is not None and len(t.appearance) == DESCRIPTOR_SIZE
        ]
        scores = np.full(len(pool), np.nan)
        if have:
            stacked = np.array([pool[i].appearance for i in have], dtype=np.float64)
            scores[have] = similarities(
                reference, stacked.reshape(len(have), len(PARTS), COLOURS_PER_PART)
            )
        keyed = [
            (not np.isnan(s), 0.0 if np.isnan(s) else s, t)
            for s, t in zip(scores.tolist(), pool, strict=True)
        ]
    elif query.upper is None and query.lower is None and query.colour is None:
        keyed = [(True, visibility(t), t) for t in candidates]
    else:
        keyed = [(True, colour_match(t, query) * visibility(t), t) for t in candidates]
    keyed.sort(key=lambda k: (k[0], k[1], k[2].first_ts, k[2].track_uid), reverse=True)
    return [(min(1.0, max(0.0, score)), track) for _, score, track in keyed]
