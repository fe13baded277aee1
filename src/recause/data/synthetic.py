"""Synthetic interaction logs with MovieLens-like statistics, at any size (100k to 10M and beyond).

What is imitated, and from where:
- catalogue and population grow like the MovieLens releases do: items ~ 1,682 (N / 100k)^0.4 and
  users ~ 943 (N / 100k)^0.88 for N interactions (ML-1M: 3,706 and 6,040; ML-10M: 10,681 and
  71,567; this gives 4,225 / 7,157 and 10,613 / 54,279);
- user activity is heavy-tailed (log-normal) with at least ``min_user_events`` events per user
  (MovieLens keeps users with 20 or more ratings);
- item popularity is a power law (Zipf over a random popularity rank) mixed with taste: every
  item belongs to one of ``n_topics`` topics, every user prefers one topic, and ``taste`` of a
  user's events come from that topic, so recommenders have something to learn;
- item text is a title of words drawn from the item's topic's share of a generated vocabulary,
  a year and genres (topic-specific), so text predicts co-consumption as it does for films;
- ratings follow ML-100K's distribution (1-5 stars), shifted by an item quality;
- timestamps: each user is active over an interval of the ML-100K span (Sept 1997 to April 1998).

Everything is vectorised (no per-event Python loop) and deterministic for a seed: ids are int32,
ratings float32, timestamps int64 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.data.schemas import Tables

RATING_SHARES = np.array([0.061, 0.114, 0.271, 0.342, 0.212])  # ML-100K's 1..5 stars
SPAN_START, SPAN_SECONDS = 874_724_710, 18_830_000  # ML-100K's first timestamp and its span
GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS = ("administrator", "artist", "educator", "engineer", "librarian", "other", "programmer", "student")
SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")


@dataclass(frozen=True)
class SyntheticSpec:
    interactions: int
    seed: int = 0
    n_topics: int = 20
    taste: float = 0.6  # share of a user's events drawn from their preferred topic
    popularity_exponent: float = 0.9  # Zipf exponent of item popularity
    min_user_events: int = 20
    vocabulary_size: int = 5000
    words_per_title: tuple[int, int] = (1, 4)

    def __post_init__(self) -> None:
        if self.interactions < 1:
            raise ValueError(f"interactions must be positive, got {self.interactions}")
        if not 0.0 <= self.taste <= 1.0:
            raise ValueError(f"taste must be in [0, 1], got {self.taste}")

    @property
    def scale(self) -> float:
        return self.interactions / 100_000

    @property
    def n_items(self) -> int:
        return max(self.n_topics, round(1682 * self.scale**0.4))

    @property
    def n_users(self) -> int:
        # every user needs min_user_events distinct items, so the population is capped by N
        return max(1, min(round(943 * self.scale**0.88), self.interactions // self.min_user_events))


def synthetic_tables(spec: SyntheticSpec) -> Tables:
    """Interactions, items and users drawn from ``spec`` (see the module docstring)."""
    rng = np.random.default_rng(spec.seed)
    item_topic = rng.permutation(np.arange(spec.n_items) % spec.n_topics)  # dealt out: no topic is empty
    popularity = (1.0 + rng.permutation(spec.n_items)) ** -spec.popularity_exponent
    user_topic = rng.integers(0, spec.n_topics, spec.n_users)
    users, items = _events(spec, rng, item_topic, popularity, user_topic)
    quality = rng.normal(0.0, 0.6, spec.n_items)
    interactions = pd.DataFrame(
        {
            "user_id": users.astype(np.int32),
            "item_id": items.astype(np.int32),
            "rating": _ratings(rng, quality[items]),
            "timestamp": _timestamps(rng, users, spec.n_users),
        }
    )
    return Tables(interactions, _items(spec, rng, item_topic), _users(spec, rng))


def _events(
    spec: SyntheticSpec,
    rng: np.random.Generator,
    item_topic: np.ndarray,
    popularity: np.ndarray,
    user_topic: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``spec.interactions`` distinct (user, item) pairs: heavy-tailed activity, popularity x taste."""
    wanted = _user_counts(spec, rng)
    by_topic = [np.flatnonzero(item_topic == t) for t in range(spec.n_topics)]
    topic_cdf = [np.cumsum(popularity[members]) / popularity[members].sum() for members in by_topic]
    global_cdf = np.cumsum(popularity) / popularity.sum()
    have = np.zeros(0, dtype=np.int64)  # pair keys user * n_items + item, unique
    owed = wanted.copy()
    for _ in range(20):  # each round draws what is still owed; duplicates are dropped
        if not owed.any():
            break
        users = np.repeat(np.arange(spec.n_users), owed * 2)  # oversample: duplicates are common for power users
        items = _draw(global_cdf, rng.random(len(users)))
        from_taste = np.flatnonzero(rng.random(len(users)) < spec.taste)
        topics = user_topic[users[from_taste]]
        order = np.argsort(topics, kind="stable")
        bounds = np.searchsorted(topics[order], np.arange(spec.n_topics + 1))
        for topic in range(spec.n_topics):
            rows = from_taste[order[bounds[topic] : bounds[topic + 1]]]
            items[rows] = by_topic[topic][_draw(topic_cdf[topic], rng.random(len(rows)))]
        keys = _sorted_unique(users * spec.n_items + items)
        keys = keys[~_contains(have, keys)]
        keys = keys[rng.permutation(len(keys))]  # which duplicates survive must not favour low item ids
        rank = _rank_within(keys // spec.n_items)
        keys = keys[rank < owed[keys // spec.n_items]]
        have = np.sort(np.concatenate([have, keys]))  # disjoint, so no duplicates
        owed = wanted - np.bincount(have // spec.n_items, minlength=spec.n_users)
    # Users near the whole catalogue still owe items the popularity draw almost never reaches: give
    # them uniformly chosen unseen items (a handful of users, so a loop over them is cheap).
    added = []
    for user in np.flatnonzero(owed > 0):
        first, last = np.searchsorted(have, [user * spec.n_items, (user + 1) * spec.n_items])
        unseen = np.flatnonzero(~np.isin(np.arange(spec.n_items), have[first:last] % spec.n_items))
        added.append(user * spec.n_items + rng.choice(unseen, owed[user], replace=False))
    have = np.sort(np.concatenate([have, *added]))
    return have // spec.n_items, have % spec.n_items


def _user_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Events per user: ``min_user_events`` each, the rest shared by log-normal activity; nobody
    gets more than the catalogue, what that cuts off goes to the users below the cap."""
    if spec.interactions > spec.n_users * spec.n_items:
        raise ValueError(f"{spec.interactions:,} interactions do not fit {spec.n_users:,} x {spec.n_items:,} pairs")
    activity = rng.lognormal(0.0, 1.0, spec.n_users)
    counts = np.full(spec.n_users, min(spec.min_user_events, spec.n_items))
    while (left := spec.interactions - counts.sum()) > 0:
        room = counts < spec.n_items
        share = np.where(room, activity, 0.0)
        counts = np.minimum(counts + rng.multinomial(left, share / share.sum()), spec.n_items)
    return counts


def _draw(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws; clipped because the last cumulative share can round to just below 1."""
    return np.minimum(np.searchsorted(cdf, uniform), len(cdf) - 1)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy's hash-based unique is several times slower on int64 keys)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in ``sorted_values``, by binary search."""
    if not len(sorted_values):
        return np.zeros(len(queries), dtype=bool)
    positions = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[positions] == queries


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each group, in order of appearance."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    counts = np.diff(np.r_[starts, len(groups)])
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - np.repeat(starts, counts)
    return rank


def _ratings(rng: np.random.Generator, quality: np.ndarray) -> np.ndarray:
    """Stars with ML-100K's shares, shifted up for good items: a latent draw cut at fixed quantiles."""
    latent = rng.normal(0.0, 1.0, len(quality)) + quality
    cuts = np.quantile(latent, np.cumsum(RATING_SHARES)[:-1])
    return (1 + np.searchsorted(cuts, latent)).astype(np.float32)


def _timestamps(rng: np.random.Generator, users: np.ndarray, n_users: int) -> np.ndarray:
    """Each user's events spread uniformly over their own active interval inside the span."""
    start = rng.uniform(0.0, 0.9, n_users)
    length = rng.uniform(0.01, 1.0, n_users) * (1.0 - start)
    when = start[users] + rng.random(len(users)) * length[users]
    return (SPAN_START + when * SPAN_SECONDS).astype(np.int64)


def _items(spec: SyntheticSpec, rng: np.random.Generator, item_topic: np.ndarray) -> pd.DataFrame:
    """Titles from the topic's part of the vocabulary, years, and genres that depend on the topic."""
    vocabulary = np.array(_vocabulary(spec.vocabulary_size, rng))
    per_topic = max(1, spec.vocabulary_size // spec.n_topics)
    low, high = spec.words_per_title
    n_words = rng.integers(low, high + 1, spec.n_items)
    # 80% of a title's words come from its topic's slice of the vocabulary, the rest from anywhere
    own = item_topic[:, None] * per_topic + rng.integers(0, per_topic, (spec.n_items, high))
    anywhere = rng.integers(0, spec.vocabulary_size, (spec.n_items, high))
    words = np.where(rng.random((spec.n_items, high)) < 0.8, own, anywhere) % spec.vocabulary_size
    titles = [" ".join(vocabulary[row[:n]]).title() for row, n in zip(words, n_words, strict=True)]
    topic_genres = rng.integers(0, len(GENRES), (spec.n_topics, 2))
    genres = [
        [GENRES[topic_genres[t, 0]], *([GENRES[topic_genres[t, 1]]] if coin else [])]
        for t, coin in zip(item_topic, rng.random(spec.n_items) < 0.5, strict=True)
    ]
    years = np.clip(np.round(1998 - rng.exponential(8.0, spec.n_items)), 1920, 1998).astype(np.int32)
    return pd.DataFrame(
        {"item_id": np.arange(spec.n_items, dtype=np.int32), "title": titles, "year": years, "genres": genres}
    )


def _vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """``size`` distinct pronounceable words of two to four syllables."""
    words: dict[str, None] = {}
    while len(words) < size:
        lengths = rng.integers(2, 5, size)
        picks = rng.integers(0, len(SYLLABLES), (size, 4))
        words.update((("".join(SYLLABLES[p] for p in row[:n]), None) for row, n in zip(picks, lengths, strict=True)))
    return list(words)[:size]


def _users(spec: SyntheticSpec, rng: np.random.Generator) -> pd.DataFrame:
    n = spec.n_users
    return pd.DataFrame(
        {
            "user_id": np.arange(n, dtype=np.int32),
            "age": np.clip(np.round(rng.normal(33, 12, n)), 7, 73).astype(np.int32),
            "gender": np.where(rng.random(n) < 0.71, "M", "F"),  # ML-100K: 71% of users are men
            "occupation": np.array(OCCUPATIONS)[rng.integers(0, len(OCCUPATIONS), n)],
            "zip": [f"{z:05d}" for z in rng.integers(0, 100_000, n)],
        }
    )
