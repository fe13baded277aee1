"""Accuracy by user group: per-group means of per-user metrics, their bootstrap intervals, the gap and the ratio.

Groups come from the users table's sensitive attributes (age as MovieLens' bands, gender, occupation). The
per-group values, bootstrap intervals, max - min gap and min / max ratio are fairlearn's ``MetricFrame`` (Weerts
et al., "Fairlearn: assessing and improving fairness of AI systems", JMLR 2023): the per-user metric values ride in
``y_true`` (one column per metric) and each metric is its column's mean. Its bootstrap resamples users with
replacement ``n_boot`` times and reports quantiles of each statistic.

A group of few users has a mean dominated by noise (per-user NDCG@10 has a standard deviation near 0.3: 30 users
leave about +-0.1 at 95%), and the max - min of noisy means is biased upward; groups with fewer than
``min_group_users`` users are therefore pooled into one group before the gap is taken (their own means are still
reported, unpooled, beside it).

How much of a gap noise alone gives is measured too (``permutation_null``): the users' labels are shuffled, so the
groups keep their sizes but lose any link to the users, and the relative gap is taken again each time. The
observed gap's p-value is the share of shuffles with a gap at least as large (Good, "Permutation, parametric and
bootstrap tests of hypotheses", 2005). On ML-100K the 21 unpooled occupations give about the observed gap from
random groups alone, the pooled ones do not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from recause.data.features import AGE_BANDS

AGE = "age"
UNKNOWN = "unknown"


def age_band_labels(ages: pd.Series) -> pd.Series:
    """MovieLens' age bands as labels ('<18', '18-24', ..., '56+'); a missing age is 'unknown'."""
    names = [f"<{AGE_BANDS[0]}"]
    names += [f"{low}-{high - 1}" for low, high in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)]
    names += [f"{AGE_BANDS[-1]}+"]
    age = pd.to_numeric(ages, errors="coerce").astype("float64")
    bands = np.digitize(age.fillna(0).to_numpy(), AGE_BANDS)
    labels = pd.Series(np.asarray(names, dtype=object)[bands], index=ages.index)
    return labels.where(age.notna() & (age >= 0), UNKNOWN)


def attribute_labels(users: pd.DataFrame, ids: np.ndarray, attributes: list[str]) -> pd.DataFrame:
    """One label column per attribute for the users ``ids`` (in that order); ids or values missing: 'unknown'."""
    missing = [a for a in attributes if a not in users]
    if missing:
        raise ValueError(f"the users table has no column {', '.join(missing)} (it has {', '.join(users.columns)})")
    table = users.assign(user_id=users["user_id"].astype(str)).drop_duplicates("user_id").set_index("user_id")
    table = table.reindex(np.asarray(ids, dtype=str))
    labels = {
        a: age_band_labels(table[a]) if a == AGE else table[a].astype("string").fillna(UNKNOWN).astype(object)
        for a in attributes
    }
    return pd.DataFrame(labels, index=table.index).fillna(UNKNOWN)


def pooled(labels: pd.Series, min_users: int) -> pd.Series:
    """``labels`` with every group of fewer than ``min_users`` users merged into one ('N groups under M users')."""
    small = labels.map(labels.value_counts()) < min_users
    return labels.where(~small, f"{labels[small].nunique()} groups under {min_users} users")


def relative_gap(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """1 - min/max of the group means of ``values`` for each row of ``codes`` (group index per user); 0 if max <= 0."""
    codes = np.atleast_2d(codes)
    offsets = codes + n_groups * np.arange(len(codes))[:, None]
    sizes = np.bincount(codes[0], minlength=n_groups)
    sums = np.bincount(offsets.ravel(), weights=np.tile(values, len(codes)), minlength=n_groups * len(codes))
    means = sums.reshape(len(codes), n_groups) / np.maximum(sizes, 1)
    means = means[:, sizes > 0]
    top = means.max(axis=1)
    return np.divide(top - means.min(axis=1), top, out=np.zeros(len(top)), where=top > 0)


def permutation_null(
    values: np.ndarray, labels: pd.Series, n_permutations: int, confidence: float = 0.95, seed: int = 0
) -> dict:
    """The relative gap of groups of the same sizes drawn at random (labels shuffled ``n_permutations`` times):
    its mean, its central ``confidence`` interval, and the share of shuffles at least as unequal as the observed
    groups (the permutation p-value, counting the observed labelling as one shuffle)."""
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    codes, uniques = pd.factorize(pd.Series(labels.to_numpy()))
    values = np.asarray(values, dtype=np.float64)
    observed = float(relative_gap(values, codes, len(uniques))[0])
    rng = np.random.default_rng(seed)
    shuffled = relative_gap(values, np.vstack([rng.permutation(codes) for _ in range(n_permutations)]), len(uniques))
    tail = (1.0 - confidence) / 2
    return {
        "observed": observed,
        "mean": float(shuffled.mean()),
        "interval": [float(q) for q in np.quantile(shuffled, [tail, 1.0 - tail])],
        "p_value": float((1 + np.count_nonzero(shuffled >= observed - 1e-12)) / (1 + n_permutations)),
    }


def _ratio(value: float) -> float:
    return float(value) if np.isfinite(value) else 1.0


def _column_mean(column: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def mean(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        rows = np.asarray(y_true)
        return float(np.mean(rows.reshape(len(rows), -1)[:, column]))  # fairlearn flattens a single column

    return mean


def group_metrics(
    per_user: dict[str, np.ndarray],
    labels: pd.Series,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    n_permutations: int = 0,
) -> dict:
    """Per group of ``labels`` the mean of each per-user metric (with its bootstrap interval when ``n_boot``), and
    per metric the gap (max - min), the ratio (min / max) and the relative gap 1 - ratio (intervals likewise), and
    with ``n_permutations`` the relative gap of random groups of the same sizes (``permutation_null``).

    ``per_user``: metric name -> one value per user, aligned with ``labels``.
    """
    from fairlearn.metrics import MetricFrame

    names = list(per_user)
    values = np.column_stack([np.asarray(per_user[n], dtype=np.float64) for n in names])
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} users' metrics but {len(labels)} labels")
    tail = (1.0 - confidence) / 2
    boot = {"n_boot": n_boot, "ci_quantiles": [tail, 1.0 - tail], "random_state": seed} if n_boot else {}
    frame = MetricFrame(
        metrics={n: _column_mean(i) for i, n in enumerate(names)},
        y_true=values,
        y_pred=values,  # unused: each metric reads its own column of y_true
        sensitive_features=pd.Series(labels.to_numpy(), name=labels.name),
        **boot,
    )
    sizes = pd.Series(labels.to_numpy()).value_counts()
    groups = {
        str(group): {"users": int(sizes[group]), **{n: float(frame.by_group.loc[group, n]) for n in names}}
        for group in frame.by_group.index
    }
    summary = {
        n: {"gap": float(frame.difference()[n]), "ratio": float(frame.ratio()[n]), "min": float(frame.group_min()[n]),
            "max": float(frame.group_max()[n])}
        for n in names
    }  # fmt: skip
    for n in names:  # every group at 0 has no gap: fairlearn's 0 / 0 ratio is taken as 1
        summary[n]["ratio"] = _ratio(summary[n]["ratio"])
        summary[n]["relative_gap"] = 1.0 - summary[n]["ratio"]
    if n_boot:
        low, high = frame.by_group_ci
        for group in frame.by_group.index:
            for n in names:
                groups[str(group)][f"{n}_ci"] = [float(low.loc[group, n]), float(high.loc[group, n])]
        gap_low, gap_high = frame.difference_ci()
        ratio_low, ratio_high = frame.ratio_ci()
        for n in names:
            summary[n]["gap_ci"] = [float(gap_low[n]), float(gap_high[n])]
            summary[n]["relative_gap_ci"] = [1.0 - _ratio(ratio_high[n]), 1.0 - _ratio(ratio_low[n])]
    for i, n in enumerate(names if n_permutations else []):
        null = permutation_null(values[:, i], labels, n_permutations, confidence, seed)
        summary[n]["random_groups"] = {key: value for key, value in null.items() if key != "observed"}
    return {"groups": groups, "summary": summary}
