"""Results are a function of the data, never of the pseudonym key: the same MovieLens-100K users under two
keys give the same splits, the same models and metrics to the byte (the tiny pipeline checks the same of
`metrics/ranking.json` end to end: tests/integration/test_pipeline.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recause.config import EvaluateParams, SplitParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.pseudonym import pseudonymise_tables
from recause.data.sampling import sample_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.evaluation.protocol import evaluate_all
from recause.models.baselines import EASE, ItemKNN, Pop
from recause.models.joint import JointParams, train_joint

KEYS = (b"a-first-key-of-32-bytes-or-more-1", b"another-key-entirely-0123456789ab")


def test_an_index_in_any_order_finds_every_id_and_nothing_else() -> None:
    ids = np.array(["u9", "u1", "u5", "u3"])
    index = IdIndex(ids)
    assert index.positions(np.array(["u5", "u9", "nobody", "u3", "u1"])).tolist() == [2, 0, -1, 3, 1]
    assert IdIndex.first_seen(["b", "a", "b", "c", "a"]).ids.tolist() == ["b", "a", "c"]
    assert IdIndex(np.array([], dtype=str)).positions(np.array(["x"])).tolist() == [-1]


def _run(tables: Tables, key: bytes) -> tuple[list[str], str, np.ndarray]:
    """Pseudonymise with ``key``, split, fit the baselines and a small joint model, evaluate them all."""
    pseudonymised = pseudonymise_tables(tables, key)
    parts = split_interactions(pseudonymised.interactions, SplitParams())
    users = split_users(parts.values())
    items = IdIndex.from_values(tables.items["item_id"])
    train = interaction_matrix(parts["train"], users, items)
    models = {m.name: m.fit(train) for m in (Pop(), ItemKNN(), EASE())}
    joint = JointParams(dim=16, epochs=2.0, batch_size=256, n_negatives=32, adaptor_hidden=16, threads=1)
    models["joint"] = train_joint(train, joint, valid=interaction_matrix(parts["valid"], users, items))
    metrics = evaluate_all(parts, models, items, EvaluateParams(ks=(10,), metrics=("ndcg", "recall")))
    raw_of = dict(zip(pseudonymised.users["user_id"], tables.users["user_id"].astype(str), strict=True))
    return [raw_of[u] for u in users.ids], json.dumps(metrics, sort_keys=True), models["joint"].arrays()["user_vectors"]


@pytest.mark.slow
def test_two_keys_give_the_same_user_axis_models_and_metrics(ml100k: Tables) -> None:
    tables = sample_users(ml100k, 200, seed=0)
    (axis_a, metrics_a, users_a), (axis_b, metrics_b, users_b) = (_run(tables, key) for key in KEYS)
    assert axis_a == axis_b  # the same raw user at every row
    assert metrics_a == metrics_b
    np.testing.assert_array_equal(users_a, users_b)  # the joint model's user tower, trained in the same order
    assert pd.Series(axis_a).is_unique
