"""The joint recommender (recause.models.joint) on simulated data where the truth is known.

The simulation, small enough for one CPU thread: items and users belong to topics, users mostly
consume their topic's items, and item text (or side features) reveals an item's topic; so text can
rank items nobody has consumed. Training on the shared loop (resume, micro-batches, the optimizer's
checkpoint) is tested here too; debiasing, on simulated biased exposure, in test_joint_debias.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.numpy import load_file, save_file

from recause.evaluation.metrics import ndcg, recall
from recause.fairness.counterfactual import shifted_user_vectors
from recause.models.joint import JointModel, JointParams, ips_weights, joint_training, propensities, train_joint
from recause.models.joint import train as train_module
from recause.models.joint.adaptors import whitening
from recause.models.joint.network import JointNet
from recause.models.joint.objective import PositiveStream
from recause.training.loop import TrainResult
from tests.code.joint_runs import train_until

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"dim": 16, "batch_size": 512, "learning_rate": 0.01}  # small data: small towers, more steps


def params(**overrides: object) -> JointParams:
    return JointParams(**(FAST | overrides))


@dataclass(frozen=True)
class Topics:
    train: sp.csr_matrix
    held_out: sp.csr_matrix  # held-out events of the users, on warm and cold items
    item_topic: np.ndarray
    user_topic: np.ndarray
    text: np.ndarray  # (n_items, d): topic signal buried under a large shared component
    cold: np.ndarray  # bool per item: no training events at all


def topics(seed: int = 0, n_users: int = 600, n_items: int = 240, n_topics: int = 6, d: int = 24) -> Topics:
    rng = np.random.default_rng(seed)
    item_topic = np.arange(n_items) % n_topics
    user_topic = rng.integers(0, n_topics, n_users)
    # 80% of a user's 30 events are from their topic
    same = item_topic[None, :] == user_topic[:, None]
    weights = np.where(same, 0.8 / same.sum(1, keepdims=True), 0.2 / (~same).sum(1, keepdims=True))
    keys = rng.random((n_users, n_items)) ** (1.0 / weights)  # weighted sampling without replacement
    chosen = np.argsort(-keys, axis=1)[:, :30]
    events = np.zeros((n_users, n_items), dtype=bool)
    np.put_along_axis(events, chosen, True, axis=1)
    cold = rng.random(n_items) < 0.25
    held = events & (cold[None, :] | (rng.random(events.shape) < 0.2))
    centroids = rng.normal(size=(n_topics, d))
    # anisotropic like language-model embeddings: a common offset and one dominant noise direction
    text = 5.0 + centroids[item_topic] + 0.3 * rng.normal(size=(n_items, d)) + 4.0 * rng.normal(size=(n_items, 1))
    train, held_out = (sp.csr_matrix(m.astype(np.float32)) for m in (events & ~held, held))
    return Topics(train, held_out, item_topic, user_topic, text.astype(np.float32), cold)


def ranking_quality(scores: np.ndarray, seen: sp.csr_matrix, truth: np.ndarray, k: int = 10) -> tuple[float, float]:
    """(NDCG@k, recall@k) of ``scores`` against boolean ``truth``, never ranking ``seen`` items."""
    scores = scores.astype(np.float64).copy()
    scores[seen.toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(truth, top, axis=1)
    n_relevant = truth.sum(axis=1)
    keep = n_relevant > 0
    return float(ndcg(hits[keep], n_relevant[keep], k).mean()), float(recall(hits[keep], n_relevant[keep], k).mean())


@pytest.fixture(scope="module")
def data() -> Topics:
    return topics()


@pytest.fixture(scope="module")
def id_model(data: Topics) -> JointModel:
    return train_joint(data.train, params(epochs=8), progress=False)


# --- propensities -----------------------------------------------------------------------------


def test_propensity_clipping_bounds_the_weights() -> None:
    counts = np.array([0, 1, 2, 10, 100, 1000, 100_000])
    for eta, clip in ((1.0, 0.05), (0.5, 0.01), (2.0, 0.2)):
        p = propensities(counts, eta, clip)
        w = ips_weights(counts, eta, clip)
        assert p.min() >= clip and p.max() == 1.0
        assert np.all(np.diff(p) >= 0)  # more popular, more exposed
        assert w.max() <= 1.0 / clip * (1 + 1e-6) and w.min() == pytest.approx(1.0)
        assert w[0] == pytest.approx(1.0 / clip)  # never-seen items get the bound, not infinity
    assert np.all(ips_weights(counts, 0.0, 0.05) == 1.0)  # eta 0: no debiasing


# --- training ---------------------------------------------------------------------------------


def test_training_reduces_the_loss_and_beats_random(data: Topics, id_model: JointModel) -> None:
    losses = id_model.stats.losses
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    warm_truth = (data.held_out.toarray() > 0) & ~data.cold[None, :]
    candidates = np.where(data.cold[None, :], -np.inf, 0.0)  # rank warm items only
    model_ndcg, model_recall = ranking_quality(
        id_model.score_users(np.arange(600)) + candidates, data.train, warm_truth
    )
    random_scores = np.random.default_rng(0).random(warm_truth.shape) + candidates
    random_ndcg, random_recall = ranking_quality(random_scores, data.train, warm_truth)
    assert model_recall > 2 * random_recall and model_ndcg > 2 * random_ndcg


@pytest.mark.parametrize(
    ("loss", "negatives", "user_features"),
    [
        ("softmax", "in_batch", False),
        ("bpr", "uniform", False),
        ("bpr", "in_batch", False),
        ("softmax", "uniform", True),
    ],
)
def test_every_loss_and_sampler_learns(data: Topics, loss: str, negatives: str, user_features: bool) -> None:
    """Each objective ranks held-out warm events well above chance (with user side features too)."""
    side = {"user_features": np.eye(6, dtype=np.float32)[data.user_topic]} if user_features else {}
    model = train_joint(data.train, params(epochs=4, loss=loss, negatives=negatives), progress=False, **side)
    warm_truth = (data.held_out.toarray() > 0) & ~data.cold[None, :]
    candidates = np.where(data.cold[None, :], -np.inf, 0.0)
    _, model_recall = ranking_quality(model.score_users(np.arange(600)) + candidates, data.train, warm_truth)
    _, random_recall = ranking_quality(
        np.random.default_rng(0).random(warm_truth.shape) + candidates, data.train, warm_truth
    )
    assert model_recall > 2 * random_recall


@pytest.mark.parametrize(
    "inputs",
    [
        {"adaptor": "whiten_mlp"},
        {"adaptor": "moe"},
        {"item_features": True},
    ],
    ids=["whiten_mlp", "moe", "item_features"],
)
def test_item_content_ranks_items_nobody_consumed(data: Topics, id_model: JointModel, inputs: dict) -> None:
    """Cold items have no events: an ID-only model ranks them at random, text (or features) by topic."""
    side = {"item_features": np.eye(6, dtype=np.float32)[data.item_topic]} if inputs.pop("item_features", False) else {}
    side = side or {"item_text": data.text}
    model = train_joint(data.train, params(epochs=8, **inputs), progress=False, **side)
    cold_truth = (data.held_out.toarray() > 0) & data.cold[None, :]
    only_cold = np.where(data.cold[None, :], 0.0, -np.inf)
    users = np.arange(600)
    content = ranking_quality(model.score_users(users) + only_cold, data.train, cold_truth)
    ids_only = ranking_quality(id_model.score_users(users) + only_cold, data.train, cold_truth)
    assert content[1] > ids_only[1] + 0.1 and content[0] > 1.5 * ids_only[0]


def test_frozen_adaptor_is_not_trained(data: Topics, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[JointNet] = []

    class Recorded(JointNet):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)
            self.before = {k: v.clone() for k, v in self.state_dict().items()}

    monkeypatch.setattr(train_module, "JointNet", Recorded)
    train_joint(data.train, params(epochs=1, adaptor_trainable=False), item_text=data.text, progress=False)
    (net,) = built
    after = net.state_dict()
    assert all(torch.equal(after[k], net.before[k]) for k in after if k.startswith("adaptor."))
    assert not torch.equal(after["item_ids.weight"], net.before["item_ids.weight"])


def test_whitening_gives_identity_covariance(data: Topics) -> None:
    mean, transform = whitening(data.text)
    white = (data.text - mean) @ transform
    np.testing.assert_allclose(np.cov(white, rowvar=False, bias=True), np.eye(transform.shape[1]), atol=1e-3)


# --- determinism, state, cost -----------------------------------------------------------------


def test_same_seed_same_scores_and_other_seed_differs(data: Topics) -> None:
    runs = [train_joint(data.train, params(epochs=1, seed=s), item_text=data.text, progress=False) for s in (3, 3, 4)]
    scores = [run.score_users(np.arange(50)) for run in runs]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.allclose(scores[0], scores[2])


@pytest.mark.parametrize("debias", ["none", "pda"])
def test_state_round_trips_through_safetensors_and_json(data: Topics, tmp_path, debias: str) -> None:
    model = train_joint(data.train, params(epochs=1, debias=debias), item_text=data.text, progress=False)
    save_file(model.arrays(), str(tmp_path / "joint.safetensors"))
    loaded = JointModel.from_state(model.config(), load_file(str(tmp_path / "joint.safetensors")))
    users = np.arange(40)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    np.testing.assert_array_equal(loaded.score(data.train[users]), model.score(data.train[users]))
    # an empty history folds in to the zero vector: the ranking falls back to the item biases;
    # PDA has no item bias, and under softmax its intervened score of a zero match is log(exp(0)) = 0
    empty = sp.csr_matrix((1, data.train.shape[1]), dtype=np.float32)
    prior = loaded.arrays()["item_bias"] if debias == "none" else np.zeros(data.train.shape[1], np.float32)
    np.testing.assert_allclose(loaded.score(empty)[0], prior, rtol=1e-6)


def test_a_history_folds_in_as_the_mean_of_its_item_vectors(data: Topics, id_model: JointModel) -> None:
    arrays = id_model.arrays()
    items, bias = arrays["item_vectors"].astype(np.float64), arrays["item_bias"].astype(np.float64)
    history = sp.csr_matrix(([3.0, 1.0, 1.0, 1.0], ([0, 0, 0, 1], [5, 9, 9, 17])), shape=(2, data.train.shape[1]))
    expected = np.stack([items[[5, 9]].mean(axis=0), items[17]]) @ items.T + bias  # values and duplicates ignored
    np.testing.assert_allclose(id_model.score(history), expected, rtol=1e-4, atol=1e-5)
    # what the rule is for: a history alone (no user row) ranks the user's held-out items well above chance
    warm_truth = (data.held_out.toarray() > 0) & ~data.cold[None, :]
    candidates = np.where(data.cold[None, :], -np.inf, 0.0)
    _, folded = ranking_quality(id_model.score(data.train) + candidates, data.train, warm_truth)
    _, random = ranking_quality(np.random.default_rng(0).random(warm_truth.shape) + candidates, data.train, warm_truth)
    assert folded > 2 * random


def test_one_epoch_is_ceil_nnz_over_batch_steps(data: Topics) -> None:
    nnz = data.train.nnz
    for epochs, batch_size in ((1.0, 512), (2.5, 700), (0.5, 4096)):
        model = train_joint(data.train, params(epochs=epochs, batch_size=batch_size), progress=False)
        assert model.stats.steps == math.ceil(nnz * epochs / batch_size) == len(model.stats.losses)
    capped = train_joint(data.train, params(epochs=3.0, max_steps=4), progress=False)
    assert capped.stats.steps == 4


def test_positive_stream_visits_every_positive_once_per_epoch_and_depends_on_the_step_only() -> None:
    stream = PositiveStream(1000, 300, 2500, seed=0)
    batches = [stream.positions(step) for step in range(9)]
    assert [len(b) for b in batches] == [300] * 8 + [100]
    visited = np.concatenate(batches)
    for epoch in range(2):
        assert sorted(visited[epoch * 1000 : (epoch + 1) * 1000]) == list(range(1000))
    # a fresh stream asked for steps out of order (as after a resume) gives the same positives
    fresh = PositiveStream(1000, 300, 2500, seed=0)
    for step in (7, 3, 8, 0):
        np.testing.assert_array_equal(fresh.positions(step), batches[step])
    assert not np.array_equal(PositiveStream(1000, 300, 2500, seed=1).positions(0), batches[0])
    # past the plan (a caller rounding the step count up), the stream goes on with full batches
    np.testing.assert_array_equal(stream.positions(9), stream.permutation(2)[700:1000])


def test_validation_ranks_unseen_items_with_the_shared_evaluation_and_ties_go_to_the_lower_item() -> None:
    # 3 users x 14 items; user 0 saw items 0-1, all scores tie: its top 10 are items 2..11 (lowest index first)
    train = sp.csr_matrix(([1.0] * 3, ([0, 0, 1], [0, 1, 13])), shape=(3, 14))
    valid = sp.csr_matrix(([1.0] * 4, ([0, 0, 1, 2], [11, 12, 0, 5])), shape=(3, 14))

    def scores(rows: np.ndarray) -> np.ndarray:  # user 1 prefers item 13 (seen) then item 0; user 2 ties
        values = np.zeros((len(rows), 14), dtype=np.float32)
        values[rows == 1, 13], values[rows == 1, 0] = 2.0, 1.0
        return values

    users = np.array([0, 1, 2])
    # user 0: item 11 at rank 10 (item 12 falls off the cut); user 1: item 0 at rank 1; user 2: item 5 at rank 6
    expected = np.mean([(1 / np.log2(11)) / (1 + 1 / np.log2(3)), 1.0, 1 / np.log2(7)])
    assert train_module.validation_ndcg(scores, train, valid, users) == pytest.approx(expected, abs=1e-12)
    assert train_module.validation_ndcg(scores, train, valid, users[1:2]) == 1.0  # only the users asked for


def test_the_model_is_fitted_by_train_joint_which_builds_on_it() -> None:
    with pytest.raises(NotImplementedError, match="train_joint"):
        JointModel().fit(sp.csr_matrix((2, 3)))


def test_validation_keeps_the_best_step(data: Topics) -> None:
    valid = data.held_out.multiply(sp.csr_matrix(~data.cold[None, :])).tocsr()
    model = train_joint(data.train, params(epochs=4, validate_every=4, patience=2), valid=valid, progress=False)
    steps = [step for step, _ in model.stats.validation]
    assert steps and steps == sorted(steps) and model.stats.best_step in steps
    best = max(score for _, score in model.stats.validation)
    assert dict(model.stats.validation)[model.stats.best_step] == best
    # training ran to the end, or stopped after `patience` validations without improvement
    stale = [step for step in steps if step > model.stats.best_step]
    assert model.stats.steps == model.stats.planned_steps or (len(stale) == 2 and stale[-1] == model.stats.steps)


# --- the shared training loop: resume, micro-batches, the optimizer's checkpoint ---------------


def test_resumed_joint_run_ends_where_the_uninterrupted_run_ends(data: Topics, tmp_path: Path) -> None:
    """Dense (adaptor, side features) and sparse (ID tables) parameters, validation, a crash and a resume."""
    run_params = params(max_steps=12, checkpoint_every=4, validate_every=3, patience=10, debias="snips")
    inputs = {"item_text": data.text, "user_features": np.eye(6, dtype=np.float32)[data.user_topic]}
    valid = data.held_out.multiply(sp.csr_matrix(~data.cold[None, :])).tocsr()

    def go(directory: Path, crash_at: int | None = None, scramble: bool = False) -> tuple[JointModel, TrainResult]:
        run = joint_training(data.train, run_params, valid=valid, **inputs)
        if scramble:  # a fresh process whose towers start elsewhere: the checkpoint must win
            torch.nn.init.normal_(run.objective.module.user_ids.weight)
        return train_until(run, directory, crash_at, "joint-test")

    reference, full = go(tmp_path / "a")
    assert len(full.losses) == 12 and [step for step, _ in full.validation] == [3, 6, 9, 12]
    with pytest.raises(RuntimeError, match="killed at step 9"):
        go(tmp_path / "b", crash_at=9)
    optimizer_state = torch.load(tmp_path / "b" / "optimizer.pt", weights_only=True)
    assert len(optimizer_state["optimizers"]) == 2  # SparseAdam (ID tables) and Adam (dense layers)
    resumed, again = go(tmp_path / "b", scramble=True)
    assert again.resumed_from == 8 and again.losses == full.losses and again.validation == full.validation
    for name, values in reference.arrays().items():
        np.testing.assert_array_equal(resumed.arrays()[name], values, err_msg=name)
    assert resumed.stats.best_step == reference.stats.best_step == full.best_step


@pytest.mark.parametrize(
    "overrides",
    [
        {"debias": "snips", "negatives": "in_batch"},
        {"debias": "dr", "negatives": "in_batch"},
        {"debias": "dr", "loss": "bpr"},
        {"debias": "pda", "loss": "bpr", "negatives": "in_batch"},
    ],
    ids=["snips-in_batch", "dr-in_batch", "dr-bpr", "pda-bpr-in_batch"],
)
def test_micro_batches_of_a_step_add_up_to_its_loss(data: Topics, overrides: dict) -> None:
    """Negatives and normalisers belong to the step, so splitting it (as the loop does on OOM) keeps the loss."""
    objective = joint_training(data.train, params(**overrides), item_text=data.text).objective
    rows = objective.examples(3, np.random.default_rng(0))
    whole = float(objective.loss(rows).detach())
    parts = sum(
        float(objective.loss(rows[s : s + 100]).detach()) * len(rows[s : s + 100]) / len(rows)
        for s in range(0, 512, 100)
    )
    assert whole == pytest.approx(parts, rel=1e-5)
    with pytest.raises(ValueError, match="current step"):
        objective.loss(np.setdiff1d(np.arange(len(objective.users_of)), rows)[:10])


def test_the_saved_user_feature_map_moves_a_user_as_the_network_does(data: Topics) -> None:
    """p_u = e_u + W x_u: the exported map W applied to other features gives the vectors the network computes for
    them (the fairness stage's counterfactual flip reads W from the saved model); no user features, no map."""
    features = np.eye(6, dtype=np.float32)[data.user_topic]
    net = joint_training(data.train, params(), user_features=features).objective.module
    before = net.export()
    other = np.roll(features, 1, axis=1)  # every user moved to the next topic
    net.user_side = torch.from_numpy(other)
    moved = shifted_user_vectors(before["user_vectors"], features, other, before["user_feature_map"])
    np.testing.assert_allclose(moved, net.export()["user_vectors"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(moved, before["user_vectors"])
    assert "user_feature_map" not in joint_training(data.train, params()).objective.module.export()
