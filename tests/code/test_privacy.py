"""User-level DP for the closed-form models (recause.privacy.gram) and the membership-inference audit
(recause.privacy.membership), on real ML-100K users.

What is checked: the analytic calibration meets delta exactly (against a numerical integral of the hockey-stick
divergence, not the closed form it solves) and is tighter than the classic bound where that holds; every user's
bounded row moves the Gram's upper triangle by at most the sensitivity the noise is calibrated to; the noise is
symmetric, of the stated spread and a function of seed and split only; a private fit reads only the release, differs
from the plain one and is the plain one when there is no noise; the hybrid's private-release path is the plain path
when given the exact Gram; the audit tells a memorising model's members apart and gives ~0.5 to models that cannot.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from scipy.integrate import quad
from scipy.stats import norm

from recause.config import SplitParams
from recause.config.privacy import DPParams, GramDPParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.sampling import sample_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.layout import LAYOUT
from recause.models.baselines.ease import EASE, EASEParams, ease_solve, gram_matrix
from recause.models.hybrid import HybridEASE, HybridEASEParams, select_cold_weight
from recause.models.registry import load_saved
from recause.privacy.gram import (
    GramMechanism,
    bound_rows,
    gaussian_delta,
    mechanism_for,
    noise_multiplier,
    private_gram,
    sensitivity,
)
from recause.privacy.membership import dp_auc_bound, fold_halves, member_mask, membership_audit


@pytest.fixture(scope="module")
def split(ml100k: Tables) -> dict[str, sp.csr_matrix]:
    """Train and valid of 400 ML-100K users (RecBole's random 80/10/10 per user)."""
    tables = sample_users(ml100k, 400, seed=0)
    parts = split_interactions(tables.interactions, SplitParams())
    users, items = split_users(parts.values()), IdIndex.from_values(tables.interactions["item_id"])
    return {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}


def hockey_stick(epsilon: float, z: float) -> float:
    """``sup_S P(S) - e^eps Q(S)`` for P = N(1/z, 1), Q = N(0, 1), by quadrature past the point where p = e^eps q."""
    mu = 1.0 / z
    start = epsilon / mu + mu / 2
    value, _ = quad(
        lambda x: norm.pdf(x, mu) - math.exp(epsilon) * norm.pdf(x),
        start,
        start + 60,
        epsabs=0,
        epsrel=1e-13,
        limit=200,
    )
    return value


@pytest.mark.parametrize("epsilon", [0.3, 1.0, 3.0, 8.0])
@pytest.mark.parametrize("delta", [1e-5, 1 / 943])
def test_the_noise_multiplier_meets_delta_exactly(epsilon: float, delta: float) -> None:
    z = noise_multiplier(epsilon, delta)
    assert hockey_stick(epsilon, z) == pytest.approx(delta, rel=1e-9)
    assert gaussian_delta(epsilon, z * 0.99) > delta  # the smallest such noise: a bit less breaks the target
    if epsilon < 1:  # the classic bound holds there, and the analytic calibration is tighter
        assert z < math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def test_the_auc_bound_of_pure_dp_is_e_eps_over_one_plus_e_eps() -> None:
    for epsilon in (0.5, 1.0, 3.0):
        assert dp_auc_bound(epsilon, 0.0) == pytest.approx(math.exp(epsilon) / (1 + math.exp(epsilon)), abs=1e-6)
    assert dp_auc_bound(1.0, 1e-3) > dp_auc_bound(1.0, 0.0)


def test_noise_falls_with_epsilon_and_vanishes_at_infinity() -> None:
    multipliers = [noise_multiplier(e, 1e-3) for e in (0.5, 1, 2, 3, 5, 8, 16)]
    assert all(a > b > 0 for a, b in zip(multipliers, multipliers[1:], strict=False))
    assert noise_multiplier(math.inf, 1e-3) == 0.0
    with pytest.raises(ValueError, match="delta"):
        noise_multiplier(1.0, 1.5)


@pytest.mark.parametrize(("user_norm", "min_items", "normalize"), [(1.0, 1, False), (10.0, 16, True), (3.0, 4, False)])
def test_no_user_moves_the_gram_by_more_than_the_sensitivity(
    split: dict[str, sp.csr_matrix], user_norm: float, min_items: int, normalize: bool
) -> None:
    bounded = bound_rows(split["train"], user_norm, min_items, normalize).toarray()
    rows = bounded[np.abs(bounded).sum(axis=1) > 0]
    upper = np.triu_indices(rows.shape[1])
    bound = sensitivity(user_norm, min_items)
    assert bound <= user_norm**2
    for x in rows[:: max(1, len(rows) // 60)]:  # the full outer product of 60 users (400 take ~3 s)
        contribution = np.outer(x, x)
        assert np.linalg.norm(contribution) <= user_norm**2 * (1 + 1e-12)  # Frobenius: ||x||^2 <= C^2
        assert np.linalg.norm(contribution[upper]) <= bound * (1 + 1e-12)  # what the noise is calibrated to
        assert np.abs(x).max() <= user_norm / math.sqrt(min_items) * (1 + 1e-12)
    norms = np.linalg.norm(rows, axis=1)
    assert norms.max() <= user_norm * (1 + 1e-12)
    counts = (rows != 0).sum(axis=1)
    raw = np.sqrt(counts)  # binary rows: the norm before scaling
    if normalize:  # users with at least min_items items all weigh the same
        np.testing.assert_allclose(norms[counts >= min_items], user_norm)
    else:  # rows within the bound are kept as they are
        small = (raw <= user_norm) & (counts >= min_items)
        np.testing.assert_allclose(norms[small], raw[small])


def test_the_noise_is_symmetric_seeded_per_split_and_of_the_stated_spread(split: dict[str, sp.csr_matrix]) -> None:
    train = split["train"]
    mechanism = GramMechanism(epsilon=3.0, delta=1e-3, user_norm=10.0, min_items=16, normalize=True, seed=5)
    exact = bound_rows(train, 10.0, 16, True)
    noise = mechanism.release(train, "main") - (exact.T @ exact).toarray()
    np.testing.assert_array_equal(noise, noise.T)
    upper = noise[np.triu_indices(noise.shape[0])]
    assert np.std(upper) == pytest.approx(mechanism.noise_std, rel=0.01)
    assert abs(np.mean(upper)) < 0.01 * mechanism.noise_std
    np.testing.assert_array_equal(mechanism.release(train, "main"), mechanism.release(train, "main"))
    assert not np.allclose(mechanism.release(train, "main"), mechanism.release(train, "intervened"))
    other_seed = GramMechanism(3.0, 1e-3, 10.0, 16, True, seed=6)
    assert not np.allclose(mechanism.release(train, "main"), other_seed.release(train, "main"))


def test_delta_defaults_to_one_over_the_users_with_train_events(split: dict[str, sp.csr_matrix]) -> None:
    train = split["train"]
    emptied = sp.csr_matrix(sp.diags((np.arange(train.shape[0]) % 2).astype(float)) @ train)
    emptied.eliminate_zeros()
    assert mechanism_for(train, DPParams(enabled=True)).delta == pytest.approx(1 / train.shape[0])
    assert mechanism_for(emptied, DPParams(enabled=True)).delta == pytest.approx(1 / (train.shape[0] // 2))
    assert mechanism_for(train, DPParams(enabled=True, delta=1e-6)).delta == 1e-6


def test_private_ease_differs_and_is_plain_ease_without_noise(split: dict[str, sp.csr_matrix]) -> None:
    train = split["train"]
    plain = EASE(EASEParams(reg_weight=250.0)).fit(train).weights
    dp = DPParams(enabled=True, epsilon=8.0)
    private = private_gram(train, dp, "main")
    model = EASE(EASEParams(reg_weight=250.0)).fit_gram(private.gram, private.ridge)
    assert model.params.reg_weight == 250.0 + private.ridge > 250.0  # the saved config is the ridge used
    assert np.abs(model.weights - plain).max() > 0.01
    # no noise, no bound that binds, no denoising: exactly the plain fit
    widest = float(np.sqrt(np.asarray(train.sum(axis=1)).max()))
    off = DPParams(enabled=True, epsilon=math.inf, gram=GramDPParams(user_norm=widest, min_items=1, normalize=False))
    release = private_gram(train, off, "main")
    np.testing.assert_array_equal(release.gram, gram_matrix(train))
    np.testing.assert_array_equal(release.counts, np.asarray(train.sum(axis=0)).ravel())
    assert release.ridge == 0.0
    np.testing.assert_array_equal(EASE(EASEParams(reg_weight=250.0)).fit_gram(release.gram).weights, plain)


def test_train_baselines_fits_ease_on_the_release_and_skips_what_has_no_private_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tasks import train_baselines

    (tmp_path / LAYOUT.processed).mkdir(parents=True)
    (tmp_path / LAYOUT.items).parent.mkdir(parents=True)
    users, items = ["u1", "u1", "u2", "u3", "u3", "u3"], ["a", "b", "b", "a", "b", "c"]
    pd.DataFrame({"user_id": users, "item_id": items}).to_parquet(tmp_path / LAYOUT.processed / "train.parquet")
    pd.DataFrame({"item_id": list("abcd"), "text": list("ABCD")}).to_parquet(tmp_path / LAYOUT.items)
    params = {"privacy": {"dp": {"enabled": True, "epsilon": 3.0, "seed": 4}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    train_baselines.main()
    out = capsys.readouterr().out
    assert "pop skipped" in out and "itemknn skipped" in out and "no differentially private fit" in out
    ((model, meta),) = load_saved("main").values()
    assert meta["privacy"]["epsilon"] == 3.0 and meta["privacy"]["delta"] == pytest.approx(1 / 3)
    train = sp.csr_matrix(([1.0] * 6, ([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 2])), shape=(3, 4))
    private = private_gram(train, DPParams(enabled=True, epsilon=3.0, seed=4), "main")
    np.testing.assert_allclose(model.weights, ease_solve(private.gram, 250.0 + private.ridge), rtol=1e-6)


def test_counts_lost_in_the_noise_become_zero(split: dict[str, sp.csr_matrix]) -> None:
    dp = DPParams(enabled=True, epsilon=1.0)
    private = private_gram(split["train"], dp, "main")
    assert (private.counts >= 0).all()
    lost = private.counts == 0
    assert 0 < lost.sum() < len(lost)
    assert np.all(np.diag(private.mechanism.release(split["train"], "main"))[lost] <= 2 * private.mechanism.noise_std)


def test_the_hybrids_release_path_is_its_plain_path_on_the_exact_gram(split: dict[str, sp.csr_matrix]) -> None:
    train, valid = split["train"], split["valid"]
    rng = np.random.default_rng(0)
    embeddings, head = rng.normal(size=(train.shape[1], 8)), rng.normal(size=(train.shape[1],) * 2)
    params = HybridEASEParams(reg_weight=300.0, popularity_reg=0.5, content_weight=50.0, cold_weight=1.0)
    model = HybridEASE(params, embeddings, head)
    gram = gram_matrix(train)
    np.testing.assert_array_equal(model.fit(train).weights, HybridEASE(params, embeddings, head).fit_gram(gram).weights)
    args = (train, valid, model, [0.0, 1.0], 0.2, 3)
    assert select_cold_weight(*args) == select_cold_weight(*args, gram=gram, counts=np.diag(gram))


def test_fold_halves_split_every_users_items_and_leave_train_untouched(split: dict[str, sp.csr_matrix]) -> None:
    train = split["train"]
    before = train.copy()
    first, second = fold_halves(train, seed=0)
    assert (first + second != train).nnz == 0
    assert first.multiply(second).nnz == 0
    np.testing.assert_array_equal(np.diff(second.indptr) - np.diff(first.indptr) >= 0, True)
    assert (train != before).nnz == 0
    assert member_mask(10, 0).sum() == 5


def ease_scorer(ridge: float):  # noqa: ANN201
    def fit(rows: sp.csr_matrix):  # noqa: ANN202
        weights = ease_solve(gram_matrix(rows), ridge)
        return lambda history: np.asarray(history @ weights)

    return fit


def popularity(rows: sp.csr_matrix):  # noqa: ANN201
    counts = np.asarray(rows.sum(axis=0), dtype=np.float64).ravel()
    return lambda history: np.broadcast_to(counts, history.shape).copy()


def test_the_audit_catches_a_memorising_model_and_not_a_private_or_popularity_one(
    split: dict[str, sp.csr_matrix],
) -> None:
    train = split["train"]
    memorising = membership_audit(train, ease_scorer(1.0)).auc
    assert memorising > 0.6
    assert membership_audit(train, lambda rows: lambda history: np.zeros(history.shape)).auc == 0.5
    assert abs(membership_audit(train, popularity).auc - 0.5) < 0.1
    mechanism = mechanism_for(train, DPParams(enabled=True, epsilon=1.0))  # the full train's delta

    def private_fit(rows: sp.csr_matrix):  # noqa: ANN202
        release = private_gram(rows, DPParams(enabled=True, epsilon=1.0), "main", mechanism)
        weights = ease_solve(release.gram, 250.0 + release.ridge)
        return lambda history: np.asarray(history @ weights)

    private = membership_audit(train, private_fit).auc
    assert private < dp_auc_bound(1.0, mechanism.delta)  # e / (1 + e) = 0.73: what any test of a 1-DP fit can reach
    assert private < memorising - 0.3
