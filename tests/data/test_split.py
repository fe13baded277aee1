"""Split invariants on the real MovieLens-100K interactions, for every protocol."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from recause.config import IntervenedParams, SplitParams
from recause.data.movielens import parse_atomic
from recause.data.schemas import Tables
from recause.data.split import (
    cold_item_parts,
    intervened_parts,
    split_counts,
    split_interactions,
    to_recbole_atomic,
)
from recause.evaluation.exposure import gini

KEY = ["user_id", "item_id", "timestamp"]


def _rows(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[KEY].itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def interactions(ml100k: Tables) -> pd.DataFrame:
    return ml100k.interactions


@pytest.mark.parametrize(
    ("total", "expected"),
    [(20, [16, 2, 2]), (10, [8, 1, 1]), (5, [3, 1, 1]), (2, [1, 0, 1]), (1, [1, 0, 0])],
)
def test_split_counts_follow_recboles_rule(total: int, expected: list[int]) -> None:
    # RecBole: later parts get int(ratio*n), a sub-one share still gets a row while train keeps > 1
    assert split_counts(total, (0.8, 0.1, 0.1)) == expected


@pytest.mark.parametrize(("protocol", "cold"), [("random", False), ("temporal", False), ("random", True)])
def test_parts_partition_the_interactions_without_leakage(
    interactions: pd.DataFrame, protocol: str, cold: bool
) -> None:
    parts = split_interactions(interactions, SplitParams(protocol=protocol))
    if cold:
        parts = cold_item_parts(parts, 0.2, seed=3)
    assert sum(len(p) for p in parts.values()) == len(interactions)
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not _rows(parts[a]) & _rows(parts[b]), f"{a} and {b} share events"
    assert set().union(*(_rows(p) for p in parts.values())) == _rows(interactions)


def test_random_split_is_per_user_and_matches_ratios(interactions: pd.DataFrame) -> None:
    parts = split_interactions(interactions, SplitParams())
    sizes = {name: part.groupby("user_id").size() for name, part in parts.items()}
    totals = interactions.groupby("user_id").size()
    for user in totals.index[:200]:
        expected = split_counts(int(totals[user]), (0.8, 0.1, 0.1))
        assert [int(sizes[p].get(user, 0)) for p in ("train", "valid", "test")] == expected
    shares = np.array([len(parts[p]) for p in ("train", "valid", "test")]) / len(interactions)
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)


def test_splits_are_deterministic_in_the_seed(interactions: pd.DataFrame) -> None:
    first = split_interactions(interactions, SplitParams(seed=11))
    second = split_interactions(interactions, SplitParams(seed=11))
    other = split_interactions(interactions, SplitParams(seed=12))
    assert all(first[p].equals(second[p]) for p in first)
    assert not first["test"].equals(other["test"])


def test_temporal_split_never_trains_on_the_future(interactions: pd.DataFrame) -> None:
    parts = split_interactions(interactions, SplitParams(protocol="temporal"))
    assert [len(parts[p]) for p in ("train", "valid", "test")] == [80_000, 10_000, 10_000]
    assert parts["train"]["timestamp"].max() <= parts["valid"]["timestamp"].min()
    assert parts["valid"]["timestamp"].max() <= parts["test"]["timestamp"].min()


def test_cold_items_never_reach_train_valid_or_test(interactions: pd.DataFrame) -> None:
    main = split_interactions(interactions, SplitParams())
    parts = cold_item_parts(main, 0.2, seed=2020)
    cold = set(parts["cold"]["item_id"])
    n_items = interactions["item_id"].nunique()
    assert len(cold) == round(0.2 * n_items)
    for name in ("train", "valid", "test"):
        assert cold.isdisjoint(parts[name]["item_id"]), f"cold item in {name}"
        # the variant only removes rows: its train is inside the main train, so no main valid/test row leaks
        assert _rows(parts[name]) == _rows(main[name]) - _rows(parts["cold"])
    assert len(parts["cold"]) == interactions["item_id"].isin(cold).sum()
    again = cold_item_parts(main, 0.2, seed=2020)
    assert all(again[p].equals(parts[p]) for p in parts)


def test_recbole_atomic_export_round_trips(interactions: pd.DataFrame) -> None:
    test = split_interactions(interactions, SplitParams())["test"]
    text = to_recbole_atomic(test)
    assert text.splitlines()[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    parsed = parse_atomic(text.encode("utf-8"), "x.test.inter", "interactions")
    assert len(parsed) == len(test)
    assert parsed["user_id"].tolist() == test["user_id"].tolist()
    assert pd.read_csv(io.StringIO(text), sep="\t")["rating:float"].sum() == pytest.approx(test["rating"].sum())


@pytest.fixture(scope="module")
def intervened(interactions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return intervened_parts(interactions, IntervenedParams(), SplitParams().seed)


def _item_counts(part: pd.DataFrame, items: pd.Index) -> np.ndarray:
    return part["item_id"].value_counts().reindex(items, fill_value=0).to_numpy()


def test_intervened_parts_are_disjoint_and_sized_by_the_rule(
    interactions: pd.DataFrame, intervened: dict[str, pd.DataFrame]
) -> None:
    names = ("train", "valid", "test")
    assert tuple(intervened) == names
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not _rows(intervened[a]) & _rows(intervened[b]), f"{a} and {b} share events"
    assert set().union(*(_rows(p) for p in intervened.values())) <= _rows(interactions)
    n_rows = len(interactions)
    not_sampled = n_rows - round(0.5 * n_rows)  # ordinary train
    resampled = sum(len(p) for p in intervened.values()) - not_sampled
    assert 0 < resampled < round(0.5 * n_rows)  # the resampling dropped some sampled rows, kept others
    sizes = [len(intervened["train"]) - not_sampled, len(intervened["valid"]), len(intervened["test"])]
    assert sizes == split_counts(resampled, (0.25, 0.25, 0.5))
    assert list(intervened["test"].columns) == list(interactions.columns)


def test_intervened_resampling_caps_popular_items_and_keeps_the_rest(
    interactions: pd.DataFrame, intervened: dict[str, pd.DataFrame]
) -> None:
    popularity = interactions["item_id"].value_counts()
    cap = popularity.median()
    kept = pd.concat(intervened.values())["item_id"].value_counts().reindex(popularity.index, fill_value=0)
    # keep probability min(1, cap / pop) is 1 at or below the median: none of those items' rows are dropped
    rare = popularity.index[popularity <= cap]
    assert (kept[rare] == popularity[rare]).all()
    # at twice the median or more, at most half of an item's sampled rows survive: every such item loses rows
    popular = popularity.index[popularity >= 2 * cap]
    assert (kept[popular] < popularity[popular]).all()
    # expected survivors of the resampling: sample_fraction * min(pop_i, cap), summed over items
    n_rows = len(interactions)
    resampled = sum(len(p) for p in intervened.values()) - (n_rows - round(0.5 * n_rows))
    assert resampled == pytest.approx(0.5 * np.minimum(popularity.to_numpy(), cap).sum(), rel=0.03)


def test_intervened_test_exposure_is_much_flatter_than_the_ordinary_test(
    interactions: pd.DataFrame, intervened: dict[str, pd.DataFrame]
) -> None:
    popularity = interactions["item_id"].value_counts()
    ordinary = split_interactions(interactions, SplitParams())["test"]
    flat, skewed = _item_counts(intervened["test"], popularity.index), _item_counts(ordinary, popularity.index)
    assert gini(flat) < gini(skewed) - 0.15
    assert np.corrcoef(flat, popularity)[0, 1] < 0.6 < 0.9 < np.corrcoef(skewed, popularity)[0, 1]
    # the 10% most popular items hold a far smaller share of the intervened test
    top = popularity.index[: len(popularity) // 10]
    assert intervened["test"]["item_id"].isin(top).mean() < 0.6 * ordinary["item_id"].isin(top).mean()


def test_intervened_parts_are_deterministic_in_the_seed(
    interactions: pd.DataFrame, intervened: dict[str, pd.DataFrame]
) -> None:
    again = intervened_parts(interactions, IntervenedParams(), SplitParams().seed)
    other = intervened_parts(interactions, IntervenedParams(), SplitParams().seed + 1)
    assert all(again[p].equals(intervened[p]) for p in intervened)
    assert not other["test"].equals(intervened["test"])
