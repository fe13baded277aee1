"""The synthetic generator: MovieLens-like shape at any size, exact counts, deterministic, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recause.data.synthetic import RATING_SHARES, SPAN_SECONDS, SPAN_START, SyntheticSpec, synthetic_tables
from recause.data.tables import canonical


@pytest.fixture(scope="module")
def tables_100k():
    return synthetic_tables(SyntheticSpec(100_000, seed=3))


def test_exactly_the_asked_number_of_distinct_pairs_with_compact_dtypes(tables_100k) -> None:
    events = tables_100k.interactions
    assert len(events) == 100_000 and not events.duplicated(["user_id", "item_id"]).any()
    assert events.dtypes.to_dict() == {
        "user_id": np.int32, "item_id": np.int32, "rating": np.float32, "timestamp": np.int64,
    }  # fmt: skip
    assert events["user_id"].nunique() == len(tables_100k.users) == 943  # ML-100K's population
    assert events["item_id"].max() < len(tables_100k.items) == 1682  # and catalogue
    assert events.groupby("user_id").size().min() >= 20  # MovieLens keeps users with 20+ ratings
    shares = events["rating"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(shares, RATING_SHARES, atol=0.01)
    assert events["timestamp"].between(SPAN_START, SPAN_START + SPAN_SECONDS).all()


def test_popularity_and_activity_are_heavy_tailed(tables_100k) -> None:
    events = tables_100k.interactions
    per_item = np.sort(events["item_id"].value_counts().to_numpy())[::-1]
    assert per_item[: len(per_item) // 10].sum() > 0.3 * len(events)  # uniform would give 10%
    per_user = events.groupby("user_id").size()
    assert per_user.max() > 5 * per_user.median()


def test_users_have_tastes_that_the_item_text_reveals(tables_100k) -> None:
    events = tables_100k.interactions.merge(
        tables_100k.items.assign(genre=tables_100k.items["genres"].str[0])[["item_id", "genre"]], on="item_id"
    )

    def top_genre_share(frame: pd.DataFrame) -> float:
        return float(frame.groupby("user_id")["genre"].agg(lambda g: g.value_counts(normalize=True).iloc[0]).mean())

    shuffled = events.assign(genre=np.random.default_rng(0).permutation(events["genre"].to_numpy()))
    assert top_genre_share(events) > top_genre_share(shuffled) + 0.15


def test_the_same_seed_gives_the_same_tables_and_another_seed_does_not() -> None:
    first, again, other = (synthetic_tables(SyntheticSpec(20_000, seed=s)) for s in (1, 1, 2))
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.interactions.equals(other.interactions)


def test_sizes_grow_like_the_movielens_releases() -> None:
    one_million = SyntheticSpec(1_000_000)
    assert 0.8 * 3_706 < one_million.n_items < 1.3 * 3_706  # ML-1M
    assert 0.8 * 6_040 < one_million.n_users < 1.3 * 6_040
    ten_million = SyntheticSpec(10_000_000)
    assert 0.8 * 10_681 < ten_million.n_items < 1.3 * 10_681  # ML-10M
    assert 0.6 * 71_567 < ten_million.n_users < 1.3 * 71_567


def test_users_near_the_whole_catalogue_still_get_distinct_items() -> None:
    # a steep popularity law leaves most items almost never drawn: the unseen-item fill must finish the job
    spec = SyntheticSpec(3_000, seed=0, popularity_exponent=4.0, n_topics=2, min_user_events=20)
    events = synthetic_tables(spec).interactions
    assert len(events) == 3_000 and not events.duplicated(["user_id", "item_id"]).any()
    assert events["item_id"].between(0, spec.n_items - 1).all()


def test_every_topic_has_items_even_when_topics_nearly_outnumber_them() -> None:
    # 2,000 topics for 2,000 items: drawn at random, about a third of the topics would be empty
    events = synthetic_tables(SyntheticSpec(20_000, n_topics=2_000)).interactions
    assert len(events) == 20_000 and not events.duplicated(["user_id", "item_id"]).any()


def test_the_items_become_canonical_items_with_text() -> None:
    items = canonical("items", synthetic_tables(SyntheticSpec(5_000)).items)
    assert items["text"].str.len().min() > 0
    first = items.iloc[0]
    assert first["text"].startswith(f"{first['title']} ({first['year']})")


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="interactions must be positive"):
        SyntheticSpec(0)
    with pytest.raises(ValueError, match="taste"):
        SyntheticSpec(1_000, taste=1.5)
