"""Champion selection: one model behind `recommend`, `explain`, `topk.parquet` and the retrain gate.

The champion is picked from the evaluation's *valid* metrics only (``pick``): the best candidate by one
metric, where candidates within a tolerance of the best tie and the tie goes to the first in report order
(baselines come first, so a tie goes to the simpler model). Its comparison with the best baseline on test is
a report made after the choice (``paired_difference``), never an input to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from recause.errors import RecauseError


@dataclass(frozen=True)
class Pick:
    """The chosen model and every candidate's value on the selection split, in report order."""

    name: str
    metric: str
    values: dict[str, float]


def pick(valid: dict[str, dict[str, float]], candidates: list[str], metric: str, tolerance: float = 0.0) -> Pick:
    """The best of ``candidates`` (in report order) by ``valid[model][metric]``; ties within ``tolerance``
    go to the earliest."""
    values = {name: valid[name][metric] for name in candidates if name in valid and metric in valid[name]}
    if not values:
        raise RecauseError(f"no candidate has {metric} on the selection split: re-run `evaluate`")
    best = max(values.values())
    name = next(model for model, value in values.items() if value >= best - tolerance)
    return Pick(name, metric, values)


@dataclass(frozen=True)
class PairedDifference:
    """Per-user ``a - b`` over the same users: mean, interval and the paired t-test's two-sided p-value.

    With n users, d_u = m_a(u) - m_b(u): mean d̄, standard error s_d / sqrt(n), interval
    d̄ ± t_{(1+c)/2, n-1} · s_d / sqrt(n), and p = P(|T_{n-1}| ≥ |d̄| / (s_d / sqrt(n))) (Student, 1908).
    Also Wilcoxon's signed-rank p-value, which assumes no normality of the differences.
    """

    users: int
    mean_a: float
    mean_b: float
    mean_difference: float
    interval: tuple[float, float]
    confidence: float
    p_value: float
    wilcoxon_p_value: float

    @property
    def ratio(self) -> float:
        return self.mean_a / self.mean_b if self.mean_b else math.inf


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedDifference:
    """Compare two models' per-user values (the same users, in the same order)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two equally long per-user vectors of at least 2 users, got {a.shape} and {b.shape}")
    difference = a - b
    mean = float(difference.mean())
    error = float(difference.std(ddof=1) / math.sqrt(len(difference)))
    half = float(stats.t.ppf((1 + confidence) / 2, len(difference) - 1)) * error
    p_value = float(stats.ttest_rel(a, b).pvalue) if error > 0 else (0.0 if mean else 1.0)
    wilcoxon = float(stats.wilcoxon(a, b).pvalue) if np.any(difference) else 1.0
    return PairedDifference(
        len(a), float(a.mean()), float(b.mean()), mean, (mean - half, mean + half), confidence, p_value, wilcoxon
    )


def summary(report: dict) -> str:
    """One line for people from `select_champion`'s metrics (metrics/champion.json)."""
    found, metric = report["test_against_best_other_baseline"], report["metric"]
    low, high = found["interval"]
    return (
        f"champion {report['champion']} vs {found['baseline']} on test {metric}: {found['mean_a']:.4f} vs "
        f"{found['mean_b']:.4f} ({found['ratio']:.3f}x), paired difference {found['mean_difference']:+.4f} "
        f"[{low:+.4f}, {high:+.4f}] at {found['confidence']:.0%}, p = {found['p_value']:.2g} "
        f"(Wilcoxon {found['wilcoxon_p_value']:.2g}) over {found['users']} users"
    )
