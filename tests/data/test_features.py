"""Side features of MovieLens-100K users and items, as the joint model receives them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.data.features import AGE_BANDS, item_side_features, user_side_features
from recause.data.matrix import IdIndex
from recause.data.schemas import Tables


def test_every_user_gets_one_age_band_one_gender_and_one_occupation(ml100k: Tables) -> None:
    users = IdIndex.from_values(ml100k.users["user_id"])
    features = user_side_features(ml100k.users, users.ids)
    n_occupations = ml100k.users["occupation"].nunique()
    n_bands = len(np.unique(np.digitize(ml100k.users["age"].astype(float), AGE_BANDS)))
    assert features.shape == (len(users), n_bands + 2 + n_occupations)
    assert (features.sum(axis=1) == 3).all()  # exactly one hot per block
    # rows follow the given id order: the same user's row is the same whatever else is asked for
    subset = users.ids[::7][::-1]
    assert np.array_equal(user_side_features(ml100k.users, subset), features[users.positions(subset)])


def test_missing_values_and_unknown_ids_get_zero_blocks_not_errors(ml100k: Tables) -> None:
    users = ml100k.users.head(5).copy()
    users["occupation"] = users["occupation"].astype("string")
    users.loc[users.index[0], "occupation"] = pd.NA
    ids = np.array([*users["user_id"].astype(str), "someone-else"])
    features = user_side_features(users, ids)
    assert features[-1].sum() == 0  # not in the table
    assert features[0].sum() == 2  # age band and gender, no occupation
    assert user_side_features(users[["user_id"]], ids) is None  # nothing to encode


def test_items_get_their_genres_and_a_standardised_year(ml100k: Tables) -> None:
    items = IdIndex.from_values(ml100k.items["item_id"])
    features = item_side_features(ml100k.items, items.ids)
    genres = {g for value in ml100k.items["genres"] for g in value}
    assert features.shape == (len(items), len(genres) + 1)
    row = items.positions(np.array(["1"]))[0]  # Toy Story (1995): Animation, Children's, Comedy
    assert features[row, :-1].sum() == 3
    year = features[:, -1]
    assert abs(year.mean()) < 1e-3 and abs(year.std() - 1) < 0.01
    older = items.positions(ml100k.items.loc[ml100k.items["year"] < 1960, "item_id"].astype(str).to_numpy())
    assert (year[older] < 0).all()
