"""Champion selection (recause.selection): the choice reads one split's metrics by one criterion, ties go
to the simpler model, and the paired comparison's interval covers the true difference as often as it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recause.errors import RecauseError
from recause.selection import paired_difference, pick

VALID = {
    "pop": {"ndcg@10": 0.10, "recall@10": 0.30},
    "ease": {"ndcg@10": 0.25, "recall@10": 0.20},
    "hybrid_ease": {"ndcg@10": 0.26, "recall@10": 0.21},
}


def test_the_best_candidate_by_the_declared_metric_wins() -> None:
    assert pick(VALID, list(VALID), "ndcg@10").name == "hybrid_ease"
    assert pick(VALID, list(VALID), "recall@10").name == "pop"
    assert pick(VALID, ["pop", "ease"], "ndcg@10").name == "ease"  # only candidates compete
    assert pick(VALID, list(VALID), "ndcg@10").values == {m: v["ndcg@10"] for m, v in VALID.items()}


def test_a_tie_within_the_tolerance_goes_to_the_first_in_report_order() -> None:
    assert pick(VALID, list(VALID), "ndcg@10", tolerance=0.02).name == "ease"
    assert pick(VALID, list(VALID), "ndcg@10", tolerance=0.005).name == "hybrid_ease"


def test_no_candidate_with_the_metric_is_a_one_line_error() -> None:
    with pytest.raises(RecauseError, match="no candidate has mrr@10"):
        pick(VALID, list(VALID), "mrr@10")


def test_the_paired_difference_matches_scipys_tests_and_its_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(0)
    b = rng.random(500)
    a = b + 0.01 + rng.normal(0, 0.05, 500)
    found = paired_difference(a, b, confidence=0.95)
    assert found.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert found.wilcoxon_p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert found.mean_difference == pytest.approx(float(np.mean(a - b)))
    covered = 0
    for seed in range(400):  # the 95% interval covers the true mean difference (0.01) ~95% of the time
        draw = np.random.default_rng(seed)
        base = draw.random(200)
        low, high = paired_difference(base + 0.01 + draw.normal(0, 0.05, 200), base).interval
        covered += low <= 0.01 <= high
    assert 0.92 <= covered / 400 <= 0.98


def test_vectors_of_different_users_are_refused() -> None:
    with pytest.raises(ValueError, match="equally long"):
        paired_difference(np.ones(3), np.ones(4))
