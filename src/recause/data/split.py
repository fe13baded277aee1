"""Deterministic train/valid/test(/cold) splits.

Protocols:
- ``random``: RecBole's default (``RS: [0.8, 0.1, 0.1]``, ``group_by: user``, ``order: RO``):
  shuffle, then split each user's interactions with RecBole's count rule.
- ``temporal``: one global cut in time; everything in test happened no earlier than train.
- ``intervened`` (``intervened_parts``): after RecBole-Debias' intervened ML-100K, a test set whose
  exposure is close to uniform over items: a random half of the data is thinned against item
  popularity, and its survivors are split into train/valid/test; the other half is ordinary train.

Every split also has a cold-item variant (``cold_item_parts``): a seeded share of items is held
out entirely into ``cold``, and train/valid/test keep only the other items' rows. Because it is
derived from the main split, its train is a subset of the main train: a model fit on it can be
evaluated on the main test without leakage, and on ``cold`` without ever having seen those items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.config.split import IntervenedParams, SplitParams

Ratios = tuple[float, float, float]


def split_counts(total: int, ratios: Ratios) -> list[int]:
    """How many of ``total`` rows go to each part, exactly as RecBole's ``_calcu_split_ids``.

    Later parts get ``int(ratio * total)`` rows; a part whose share is below one row still gets
    one while the first part keeps more than one; the first part takes the rest.
    """
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def _label_by_position(position: np.ndarray, size: np.ndarray, ratios: Ratios) -> np.ndarray:
    """Part index (0 train, 1 valid, 2 test) of each row given its position within its group."""
    group_sizes, which = np.unique(size, return_inverse=True)
    bounds = np.array([np.cumsum(split_counts(int(n), ratios)) for n in group_sizes])[which]
    # how many part ends the position has passed (searchsorted 'right'), for every row at once:
    # one pass per part, where a loop over distinct group sizes would pass over all rows per size
    labels = np.zeros(len(position), dtype=np.int8)
    for end in bounds.T:
        labels += position >= end
    return labels


def _per_user_random(interactions: pd.DataFrame, ratios: Ratios, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(interactions))
    # Integer codes (hashing, linear) instead of sorting id strings: only the shuffled order inside each
    # user's group decides the labels, never the order of the groups.
    user_code = pd.factorize(interactions["user_id"])[0]
    # A stable sort by user keeps the shuffled order inside each user's group.
    by_user = order[np.argsort(user_code[order], kind="stable")]
    size = np.bincount(user_code)
    start = np.cumsum(size) - size
    code_sorted = user_code[by_user]
    position = np.arange(len(by_user)) - start[code_sorted]
    labels = np.empty(len(interactions), dtype=np.int8)
    labels[by_user] = _label_by_position(position, size[code_sorted], ratios)
    return labels


def _temporal(interactions: pd.DataFrame, ratios: Ratios) -> np.ndarray:
    order = np.lexsort(
        (
            interactions["item_id"].to_numpy(),
            interactions["user_id"].to_numpy(),
            interactions["timestamp"].to_numpy(),
        )
    )
    labels = np.empty(len(interactions), dtype=np.int8)
    labels[order] = _label_by_position(np.arange(len(order)), np.full(len(order), len(order)), ratios)
    return labels


def cold_items(item_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The seeded share of distinct items held out as cold (sorted)."""
    distinct = np.sort(pd.unique(item_ids))  # hash out the distinct ids first: sorting all rows is slower
    n_cold = max(1, int(round(fraction * len(distinct))))
    return np.sort(np.random.default_rng(seed).choice(distinct, size=n_cold, replace=False))


def split_interactions(interactions: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    """Split interactions by ``params.protocol`` into train, valid and test frames."""
    names = ("train", "valid", "test")
    if params.protocol == "temporal":
        labels = _temporal(interactions, params.ratios)
    else:
        labels = _per_user_random(interactions, params.ratios, params.seed)
    return {name: interactions[labels == i].reset_index(drop=True) for i, name in enumerate(names)}


def intervened_parts(interactions: pd.DataFrame, params: IntervenedParams, seed: int) -> dict[str, pd.DataFrame]:
    """Train/valid/test with a near-uniform item exposure in valid and test (RecBole-Debias on ML-100K).

    Why: in the logged data popular items are seen, hence interacted with, far more often, so an
    ordinary test set rewards recommending popularity. Thinning the test set against popularity
    approximates an intervention that shows every item equally often.

    How, with one ``numpy`` generator seeded by ``seed``, drawing in this order:

    1. Sample: ``round(sample_fraction * N)`` of the N rows, uniformly without replacement.
    2. Resample: keep each sampled row of item i independently with probability
       ``min(1, c / pop_i)``, where ``pop_i`` is the item's count in the full ``interactions`` and
       ``c`` is the median of ``pop_i`` over the distinct items. An item's expected number of
       survivors is then ``sample_fraction * min(pop_i, c)``: the most popular half of the
       catalogue is flattened to one common level, and the less popular half -- which thinning
       can only lower, never raise -- is kept whole. A smaller ``c`` would be flatter but much
       smaller; the median balances the two and needs no extra parameter.
    3. Split the n survivors, in a seeded shuffle, by ``split_counts(n, params.ratios)``
       (RecBole's rule: valid gets ``int(ratios[1] * n)``, test ``int(ratios[2] * n)``, train the
       rest): the first part joins train, the next forms valid, the last forms test.

    The ``N - round(sample_fraction * N)`` rows not sampled are ordinary train; sampled rows that
    the resampling drops are discarded, so the parts together hold fewer rows than
    ``interactions``. Rows keep their original order within each part. Users and items of
    valid/test need not occur in train: the evaluation ranks every user with truth in a part from
    whatever train history the user has (possibly none), and leaves out users without truth.
    """
    rng = np.random.default_rng(seed)
    n_rows = len(interactions)
    item_code = pd.factorize(interactions["item_id"])[0]
    popularity = np.bincount(item_code)
    cap = float(np.median(popularity)) if len(popularity) else 0.0
    sampled = rng.choice(n_rows, size=int(round(params.sample_fraction * n_rows)), replace=False)
    keep_probability = np.minimum(1.0, cap / popularity[item_code[sampled]])
    kept = rng.permutation(sampled[rng.random(len(sampled)) < keep_probability])
    labels = np.zeros(n_rows, dtype=np.int8)  # 0 train: every row not sampled
    labels[sampled] = -1  # sampled, then dropped by the resampling
    labels[kept] = np.repeat(np.arange(3, dtype=np.int8), split_counts(len(kept), params.ratios))
    names = ("train", "valid", "test")
    return {name: interactions[labels == i].reset_index(drop=True) for i, name in enumerate(names)}


def cold_item_parts(parts: dict[str, pd.DataFrame], fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """The split with a seeded share of items moved out of every part into ``cold``."""
    all_items = pd.concat([frame["item_id"] for frame in parts.values()]).to_numpy()
    held_out = set(cold_items(all_items, fraction, seed))
    cold = [frame[frame["item_id"].isin(held_out)] for frame in parts.values()]
    warm = {name: frame[~frame["item_id"].isin(held_out)].reset_index(drop=True) for name, frame in parts.items()}
    return {**warm, "cold": pd.concat(cold, ignore_index=True)}


def to_recbole_atomic(part: pd.DataFrame) -> str:
    """Render a split part as a RecBole ``.inter`` atomic file, for running peers on it."""
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    body = part.loc[:, ["user_id", "item_id", "rating", "timestamp"]].to_csv(sep="\t", header=False, index=False)
    return header + body
