"""Training the joint recommender on the shared loop (``recause.training.loop``).

``joint_training`` builds everything a run needs: the seeded towers (item biases at their prior),
the objective (``objective.py``: a seeded stream of positives, the step's negatives, the debiased
loss), one optimizer over both kinds of parameters (SparseAdam for the ID tables, so a step costs
what its batch touches; Adam for the dense layers), the number of steps and, with ``valid``, a
validation callback (NDCG@10 by ``recause.evaluation`` on a seeded sample of validation users,
every ``validate_every`` steps, default once per epoch). ``JointTraining.plan`` gives the run's loop
settings (``recause.training.run.plan_run``, the one builder every training run uses); the loop then
trains it, with or without checkpoints (a DVC stage gets resume, fault injection and out-of-memory
handling exactly like the language-model stages), keeps the best-validated weights and stops after
``patience`` validations without improvement; ``finish`` exports the towers into a ``JointModel``.
``train_joint`` is all three, in memory. This module builds on ``model.py``, never the reverse.
With ``dp`` (``privacy.dp`` enabled) the run is DP-SGD instead: ``private.py``'s objective (privacy units,
Poisson sampling, per-unit negatives) and ``recause.privacy.sgd``'s optimizer (Opacus clipping, noise and
accountant); its budget joins the checkpoint fingerprint and the accountant's epsilon the run's stats.

Nothing is materialised per user x item during training, and there is no per-row Python loop: an
epoch is ceil(nnz / batch_size) steps of fixed cost. On CPU the same seed gives the same model,
and a run resumed from a checkpoint ends where the uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recause.config.joint import JointParams
from recause.config.privacy import DPParams
from recause.evaluation.metrics import ndcg
from recause.evaluation.ranking import relevance, top_k
from recause.models.joint.debias import bias_prior, imputation_factors
from recause.models.joint.model import JointModel, TrainStats, canonical
from recause.models.joint.network import JointNet
from recause.models.joint.objective import JointObjective
from recause.models.joint.private import PrivateJointObjective, private_joint_params, private_parts
from recause.models.joint.propensity import positive_propensities
from recause.privacy.sgd import PrivateOptimizer, SgdBudget
from recause.training.device import resolve_device, set_threads
from recause.training.loop import TrainResult
from recause.training.run import RunPlan, plan_run, planned_examples, planned_steps

VALIDATION_K = 10
VALIDATION_CHUNK = 512  # users scored at once when validating

UserScores = Callable[[np.ndarray], np.ndarray]  # user rows -> (len(rows), n_items) scores


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the caller's setting afterwards."""
    before = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def validation_ndcg(score_users: UserScores, train: sp.csr_matrix, valid: sp.csr_matrix, users: np.ndarray) -> float:
    """Mean NDCG@10 of ``users`` on ``valid``, ranking every item not in their train rows.

    Ranked by ``recause.evaluation`` (``top_k``: train rows excluded, equal scores to the lower item index,
    an order ``torch.topk``, used here before, left unspecified).
    The mean is numpy's over the users in order, as it always was here (``evaluate_ranking``'s exactly
    rounded sum can differ in the last bit, and a validation score decides the kept step).
    """
    values = []
    for start in range(0, len(users), VALIDATION_CHUNK):
        rows = users[start : start + VALIDATION_CHUNK]
        top = top_k(score_users(rows), VALIDATION_K, excluded=train[rows].toarray() > 0)
        truth = valid[rows]
        values.append(ndcg(relevance(top, truth), np.asarray(truth.sum(axis=1)).ravel(), VALIDATION_K))
    return float(np.concatenate(values).mean()) if values else 0.0


def validation_users(valid: sp.csr_matrix, count: int, seed: int) -> np.ndarray:
    with_truth = np.flatnonzero(np.diff(sp.csr_matrix(valid).indptr) > 0)
    if len(with_truth) <= count:
        return with_truth
    return np.sort(np.random.default_rng(seed).choice(with_truth, count, replace=False))


class JointOptimizer:
    """SparseAdam over the ID tables and Adam over the dense layers, as the one optimizer the loop steps.

    ``state_dict`` nests the two optimizers' states (tensors, numbers and lists only), so it saves
    with ``torch.save`` and loads with ``weights_only=True``. ``param_groups`` lists both groups, which
    is what a gradient scaler unscales before ``step``.
    """

    def __init__(self, net: JointNet, learning_rate: float, weight_decay: float):
        self.optimizers: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(net.sparse_parameters(), learning_rate)]
        if dense := net.dense_parameters():
            self.optimizers.append(torch.optim.Adam(dense, learning_rate, weight_decay=weight_decay))

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        saved = state["optimizers"]
        if len(saved) != len(self.optimizers):
            raise ValueError(f"the state holds {len(saved)} optimizers, this one has {len(self.optimizers)}")
        for optimizer, optimizer_state in zip(self.optimizers, saved, strict=True):
            optimizer.load_state_dict(optimizer_state)


@dataclass
class JointTraining:
    """A prepared run: train ``objective`` and ``optimizer`` under ``plan()``, then ``finish``."""

    objective: JointObjective | PrivateJointObjective
    optimizer: JointOptimizer | PrivateOptimizer
    n_examples: int  # positives in train (under DP: privacy units)
    validate: Callable[[], float] | None
    validate_every: int
    device: torch.device
    params: JointParams
    item_counts: np.ndarray
    budget: SgdBudget | None = None  # DP-SGD's privacy settings (None: not private)

    @property
    def total_steps(self) -> int:
        """The run's optimizer steps: the count ``plan`` gives it (``planned_steps``, the one count)."""
        return planned_steps(self.n_examples, self.params)

    def plan(self, depends_on: tuple[Any, ...] = (), name: str = "train_joint", show_progress: bool = True) -> RunPlan:
        """The run's loop settings (``depends_on``: what a checkpoint must match to be resumed, with the params)."""
        private = () if self.budget is None else (asdict(self.budget),)
        return plan_run(
            self.params, self.n_examples, (*depends_on, *private), self.validate, self.validate_every, name,
            show_progress,
        )  # fmt: skip

    def privacy(self) -> dict[str, Any] | None:
        """The DP-SGD budget with the steps taken and the accountant's epsilon for them (None when not private)."""
        if self.budget is None:
            return None
        return self.budget.report(self.optimizer.steps_taken, self.optimizer.epsilon())

    def snapshot(self) -> JointModel:
        """The towers as they stand, exported into a fitted model."""
        net = self.objective.module
        was_training = net.training
        net.eval()
        vectors = net.export()
        if isinstance(self.objective, PrivateJointObjective):  # DP: history user vectors are folded in
            vectors = self.objective.exported(vectors)
        model = JointModel.from_vectors(self.params, vectors, self.item_counts)
        net.train(was_training)
        return model

    def finish(self, result: TrainResult, seconds: float) -> JointModel:
        """The trained model (the loop has already restored the best-validated weights) with its run's stats."""
        model = self.snapshot()
        model.stats = TrainStats(
            planned_steps=self.total_steps,
            steps=len(result.losses),
            losses=list(result.losses),
            validation=list(result.validation),
            best_step=result.best_step,
            seconds=seconds,
            privacy=self.privacy(),
        )
        return model


def build_net(
    n_users: int, item_counts: np.ndarray, params: JointParams, side: dict, device: torch.device, prior: np.ndarray
) -> JointNet:
    """The seeded towers on ``device``, item biases at ``prior`` (unless ``bias_init`` is zero or PDA)."""
    torch.manual_seed(params.seed)
    net = JointNet(n_users, len(item_counts), params, **side).to(device)
    if params.bias_init == "popularity" and net.item_bias.weight.requires_grad:
        net.item_bias.weight.data.copy_(torch.from_numpy(prior).unsqueeze(1))
    return net


def joint_training(
    train: sp.csr_matrix,
    params: JointParams,
    item_text: np.ndarray | None = None,
    user_features: np.ndarray | None = None,
    item_features: np.ndarray | None = None,
    valid: sp.csr_matrix | None = None,
    dp: DPParams | None = None,
) -> JointTraining:
    """Prepare a run on the binary users x items ``train`` matrix (see the module docstring; DP-SGD when
    ``dp`` is enabled).

    Thread count is the caller's (``train_joint`` applies ``params.threads``); ``params.device`` is resolved here.
    """
    train = canonical(train)
    if valid is not None and valid.shape != train.shape:
        raise ValueError(f"valid has shape {valid.shape}, train {train.shape}")
    n_users, n_items = train.shape
    users_of = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(train.indptr))  # int32: half the memory
    items_of = train.indices.astype(np.int32, copy=False)
    if not len(users_of):
        raise ValueError("train has no positives: nothing to learn from")
    item_counts = np.bincount(items_of, minlength=n_items)
    private = dp is not None and dp.enabled
    if private:
        params = private_joint_params(params, dp.sgd)
    device = resolve_device(params.device)
    weights = imputation = weight_sums = None
    if params.debias in ("ips", "snips", "dr"):
        propensity = positive_propensities(
            users_of, items_of, n_users, n_items, params.propensity_model, params.propensity_eta,
            params.propensity_clip, params.seed, user_features, item_features,
        )  # fmt: skip
        weights = (1.0 / propensity).astype(np.float32)
        weight_sums = np.bincount(items_of, weights=weights, minlength=n_items)
        if params.debias == "dr":
            imputation = imputation_factors(users_of, items_of, weights, n_users, n_items, params.dr_rank, params.seed)
    side = {"item_text": item_text, "user_features": user_features, "item_features": item_features}
    net = build_net(
        n_users, item_counts, params, side, device, bias_prior(item_counts, weight_sums, params.propensity_clip)
    )
    if private:
        objective = private_parts(net, params, dp, users_of, items_of, device)
        optimizer, n_examples, budget = objective.optimizer, objective.n_units, objective.optimizer.budget
        item_counts = np.zeros_like(item_counts)  # the counts are not private: the DP model stores none
    else:
        total_steps = planned_steps(len(users_of), params)
        total_examples = min(planned_examples(len(users_of), params.epochs), total_steps * params.batch_size)
        objective = JointObjective(
            net, params, users_of, items_of, n_users, item_counts, total_examples, device, weights, imputation
        )
        optimizer = JointOptimizer(net, params.learning_rate, params.weight_decay)
        n_examples, budget = len(users_of), None
    run = JointTraining(
        objective=objective,
        optimizer=optimizer,
        n_examples=n_examples,
        validate=None,
        validate_every=params.validate_every or math.ceil(n_examples / params.batch_size),  # default: per epoch
        device=device,
        params=params,
        item_counts=item_counts,
        budget=budget,
    )
    if valid is not None:
        checked = validation_users(valid, params.validate_users, params.seed)
        valid = sp.csr_matrix(valid)
        run.validate = lambda: validation_ndcg(run.snapshot().score_users, train, valid, checked)
    return run


def train_joint(
    train: sp.csr_matrix,
    params: JointParams,
    item_text: np.ndarray | None = None,
    user_features: np.ndarray | None = None,
    item_features: np.ndarray | None = None,
    valid: sp.csr_matrix | None = None,
    progress: bool = True,
    dp: DPParams | None = None,
) -> JointModel:
    """Fit the joint model in memory: ``joint_training``, the shared loop without checkpoints, ``finish``."""
    started = time.perf_counter()
    with torch_threads(params.threads):
        run = joint_training(train, params, item_text, user_features, item_features, valid, dp)
        plan = run.plan(show_progress=progress)
        trained = plan.train(run.objective, run.optimizer, run.device, log=print if progress else lambda message: None)
        return run.finish(trained.result, time.perf_counter() - started)
