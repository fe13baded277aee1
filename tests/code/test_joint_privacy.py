"""DP-SGD for the joint model (recause.models.joint.private, recause.privacy.sgd) on 200 real ML-100K users.

What is checked: the accountant's epsilon after the planned steps meets the target within Opacus' tolerance;
the private update (without noise) is the sum of per-unit gradients clipped to the norm, over the expected
batch, each unit's loss computed alone (no unit's loss reads another's data); units are Poisson-sampled
from the DP seed; a resumed run continues the accountant and ends where the uninterrupted run ends; with DP
off the run is the plain one; what DP-SGD cannot clip is refused. Towers see the real side features: item
genres and year (also through the text adaptor, as a stand-in for the language-model embeddings) and user
age, gender and occupation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from opacus.accountants.utils import get_noise_multiplier

from recause.config import SplitParams
from recause.config.joint import JointParams
from recause.config.privacy import DPParams, SgdDPParams
from recause.data.features import item_side_features, user_side_features
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.sampling import sample_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.models.joint import joint_training, train_joint
from recause.privacy.sgd import EPSILON_TOLERANCE, epsilon_after
from tests.code.joint_runs import train_until

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARAMS = JointParams(dim=8, adaptor_hidden=16, epochs=2, learning_rate=0.02, validate_users=100)


@dataclass(frozen=True)
class Data:
    train: sp.csr_matrix
    valid: sp.csr_matrix
    side: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def data(ml100k: Tables) -> Data:
    tables = sample_users(ml100k, 200, seed=0)
    parts = split_interactions(tables.interactions, SplitParams())
    users, items = split_users(parts.values()), IdIndex.from_values(tables.items["item_id"])
    catalogue = tables.items.set_index(tables.items["item_id"].astype(str)).reindex(items.ids).reset_index(drop=True)
    people = tables.users.set_index(tables.users["user_id"].astype(str)).reindex(users.ids).reset_index(drop=True)
    content = item_side_features(catalogue, items.ids)
    side = {"item_text": content, "item_features": content, "user_features": user_side_features(people, users.ids)}
    return Data(
        interaction_matrix(parts["train"], users, items), interaction_matrix(parts["valid"], users, items), side
    )


def private(epsilon: float = 3.0, **sgd: object) -> DPParams:
    return DPParams(enabled=True, epsilon=epsilon, sgd=SgdDPParams(**({"batch_size": 32} | sgd)))


@pytest.mark.parametrize(
    ("unit", "accountant"),
    [("user", "rdp"), ("interaction", "rdp"), pytest.param("user", "prv", marks=pytest.mark.slow)],
    ids=["user", "event", "prv"],
)
def test_the_accountants_epsilon_after_the_planned_steps_meets_the_target(data: Data, unit: str, accountant: str):
    batch, vectors = (32, "history") if unit == "user" else (256, "id")
    dp = private(3.0, unit=unit, batch_size=batch, accountant=accountant, user_vector=vectors)
    model = train_joint(data.train, PARAMS, progress=False, dp=dp, **data.side)
    report = model.stats.privacy
    n_units = data.train.getnnz(axis=1).astype(bool).sum() if unit == "user" else data.train.nnz
    assert report["sample_rate"] == pytest.approx(batch / n_units)
    assert report["delta"] == pytest.approx(1 / data.train.getnnz(axis=1).astype(bool).sum())  # 1 / train users
    assert report["steps"] == report["planned_steps"] == model.stats.steps == np.ceil(2 * n_units / batch)
    assert 3.0 - EPSILON_TOLERANCE <= report["epsilon_spent"] <= 3.0
    # the noise is Opacus' for the target, and half the steps spend less
    assert report["noise_multiplier"] == get_noise_multiplier(
        target_epsilon=3.0, target_delta=report["delta"], sample_rate=report["sample_rate"],
        steps=report["steps"], accountant=accountant, epsilon_tolerance=EPSILON_TOLERANCE,
    )  # fmt: skip
    assert np.all(np.isfinite(model.arrays()["item_vectors"])) and not model.arrays()["item_counts"].any()


@pytest.mark.filterwarnings("ignore:Full backward hook")  # the hooks stay registered while disabled
@pytest.mark.parametrize(("unit", "vectors"), [("user", "history"), ("user", "id"), ("interaction", "id")])
def test_the_noise_free_update_is_the_mean_of_per_unit_clipped_gradients(data: Data, unit: str, vectors: str):
    """Each unit's gradient, computed from its loss alone, clipped to C; summed; over the expected batch."""
    clip = 0.05  # below most units' gradient norms: clipping binds
    dp = private(noise_multiplier=0.0, max_grad_norm=clip, unit=unit, user_vector=vectors)
    run = joint_training(data.train, PARAMS, **data.side, dp=dp)
    objective, optimizer = run.objective, run.optimizer
    units = objective.examples(0, np.random.default_rng(0))
    parameters = [p for p in objective.module.parameters() if p.requires_grad]
    optimizer.zero_grad()
    for part in np.array_split(units, 3):  # micro-batches of one step add up
        objective.loss(part).backward()
    optimizer.optimizer.pre_step()  # adds the (zero) noise and divides by the expected batch
    private_grad = [p.grad.clone() for p in parameters]

    optimizer.hooks.disable_hooks()
    whole = objective.loss(units).per_unit.detach()
    expected, norms = [torch.zeros_like(p) for p in parameters], []
    for k, unit in enumerate(units):
        alone = objective.loss(np.array([unit])).per_unit
        assert alone.item() == pytest.approx(whole[k].item(), rel=1e-5)  # no other unit enters its loss
        grads = torch.autograd.grad(alone.sum(), parameters)
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        norms.append(norm.item())
        for total, g in zip(expected, grads, strict=True):
            total += g * min(1.0, clip / (norm.item() + 1e-6))
    assert np.mean(np.array(norms) > clip) > 0.9
    batch = optimizer.budget.expected_batch_size
    for got, want in zip(private_grad, expected, strict=True):
        torch.testing.assert_close(got, want / batch, rtol=1e-4, atol=1e-7)


def test_units_are_poisson_sampled_from_the_dp_seed(data: Data) -> None:
    def batches(dp_seed: int, model_seed: int) -> list[np.ndarray]:
        dp = DPParams(enabled=True, seed=dp_seed, sgd=SgdDPParams(batch_size=50, noise_multiplier=1.0))
        objective = joint_training(data.train, PARAMS.model_copy(update={"seed": model_seed}), dp=dp).objective
        return [objective.examples(step, np.random.default_rng(step)) for step in range(300)]

    drawn = batches(0, 0)
    sizes = np.array([len(b) for b in drawn])
    assert sizes.std() > 3 and abs(sizes.mean() - 50) < 2  # independent draws at q = 50 / 200: Binomial(200, 1/4)
    share = np.bincount(np.concatenate(drawn), minlength=200) / 300
    assert abs(share.mean() - 0.25) < 0.01 and share.min() > 0.1
    assert all(np.array_equal(a, b) for a, b in zip(drawn, batches(0, 5), strict=True))  # not the model's seed
    assert not all(np.array_equal(a, b) for a, b in zip(drawn, batches(1, 0), strict=True))


def test_a_resumed_run_continues_the_accountant_and_ends_where_the_uninterrupted_run_ends(
    data: Data, tmp_path: Path
) -> None:
    params = PARAMS.model_copy(update={"epochs": 1.0, "checkpoint_every": 3, "validate_every": 2})
    dp = private(noise_multiplier=1.0)  # calibration is tested above

    def go(directory: Path, crash_at: int | None = None):  # noqa: ANN202
        run = joint_training(data.train, params, valid=data.valid, dp=dp, **data.side)
        return train_until(run, directory, crash_at, "dp-test")

    reference, full = go(tmp_path / "a")
    with pytest.raises(RuntimeError, match="killed at step 5"):
        go(tmp_path / "b", crash_at=5)
    saved = torch.load(tmp_path / "b" / "optimizer.pt", weights_only=True)
    budget = joint_training(data.train, params, dp=dp, **data.side).budget
    assert [tuple(entry) for entry in saved["accountant"]["history"]] == [
        (budget.noise_multiplier, budget.sample_rate, 3)
    ]
    resumed, again = go(tmp_path / "b")
    assert again.resumed_from == 3 and again.losses == full.losses
    assert resumed.stats.privacy == reference.stats.privacy
    assert resumed.stats.privacy["steps"] == len(full.losses) == budget.steps
    assert reference.stats.privacy["epsilon_spent"] == epsilon_after(budget, budget.steps)
    for name, values in reference.arrays().items():
        np.testing.assert_array_equal(resumed.arrays()[name], values, err_msg=name)


def test_with_dp_off_the_run_is_the_plain_one(data: Data) -> None:
    plain = train_joint(data.train, PARAMS, progress=False, **data.side)
    off = train_joint(data.train, PARAMS, progress=False, dp=DPParams(enabled=False, epsilon=1.0), **data.side)
    assert off.stats.privacy is None and off.stats.losses == plain.stats.losses
    for name, values in plain.arrays().items():
        np.testing.assert_array_equal(off.arrays()[name], values, err_msg=name)


def test_history_user_vectors_never_see_their_targets_and_export_as_the_fold_in(data: Data) -> None:
    run = joint_training(data.train, PARAMS, dp=private(noise_multiplier=1.0), **data.side)
    objective = run.objective
    assert not objective.module.user_ids.weight.requires_grad  # no per-user parameter is trained or noised
    objective.examples(0, np.random.default_rng(0))
    plan = objective.plan
    users = objective.users_of
    for k, unit in enumerate(plan.units):
        targets, history = plan.targets[k][plan.target_mask[k]], plan.history[k][plan.history_mask[k]]
        own = np.arange(objective.starts[unit], objective.starts[unit] + objective.counts[unit])
        assert len(targets) == min(16, (len(own) + 1) // 2) and len(history) == min(32, len(own) - len(targets))
        assert set(targets) | set(history) <= set(own) and not set(targets) & set(history)
        assert len(set(targets)) == len(targets) and len(set(users[targets])) == 1
    model = run.snapshot()
    arrays, side = model.arrays(), objective.module.user_linear(objective.module.user_side).detach().numpy()
    history = data.train[:5]
    np.testing.assert_allclose(arrays["user_vectors"][:5], model.fold_in(history) + side[:5], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "sgd", "message"),
    [({"debias": "ips"}, {}, "debias"), ({"adaptor": "moe"}, {}, "moe"), ({}, {"unit": "interaction"}, "history")],
    ids=["ips", "moe", "event-history"],
)
def test_what_dp_sgd_cannot_clip_per_unit_is_refused(data: Data, overrides: dict, sgd: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        joint_training(data.train, PARAMS.model_copy(update=overrides), dp=private(**sgd), **data.side)
