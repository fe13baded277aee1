"""DP-SGD wiring (Opacus) for a model trained on the shared loop (``recause.training.loop``).

Differentially private SGD (Abadi et al., "Deep learning with differential privacy", CCS 2016): every step
samples each privacy unit independently with probability ``q`` (Poisson sampling), clips each unit's
gradient to L2 norm ``C`` and adds N(0, (sigma C)^2) noise to their sum before the optimizer sees it.
The pieces here are Opacus':

- **Noise for the target.** ``sigma`` is ``opacus.accountants.utils.get_noise_multiplier`` for the target
  (epsilon, delta) over the *planned* steps at rate ``q``: a binary search that stops within
  ``EPSILON_TOLERANCE`` below the target, so the planned run spends epsilon in [target - 0.01, target].
  A run that stops early (patience) spends less: the accountant counts the steps actually taken.
- **Clipping.** Opacus' ghost clipping hooks (``GradSampleHooksFastGradientClipping``; Li et al. 2022, and
  the embedding norms of Bu et al. 2023) give each unit's gradient norm without materialising per-unit
  gradients (an embedding table per unit would not fit); a second backward pass of the loss weighted by
  ``min(1, C / norm)`` leaves the sum of clipped gradients in ``.grad``. Every trainable layer must have an
  Opacus norm sampler and be called once per forward pass (Opacus raises otherwise).
- **Noise and accounting.** ``DPOptimizerFastGradientClipping`` adds the noise and divides by the expected
  batch ``q N``; its step hook advances an RDP (or PRV) accountant.

What the caller must guarantee (``recause.models.joint.private`` does, for the joint model): one loss row per
privacy unit that depends on that unit's data only (no in-batch negatives, no batch normalisers), and units
sampled by Poisson sampling at rate ``q``. The accountant's state travels in the optimizer's state dict, so a
run resumed from a checkpoint continues its count; the noise of step ``s`` is drawn from a generator seeded
with (``seed``, ``s``), so a step redone after a crash repeats the same noisy update and releases nothing new.
The guarantee assumes the noise and sampling randomness are secret: keep ``privacy.dp.seed`` private.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from recause.config.privacy import DPParams

EPSILON_TOLERANCE = 0.01  # get_noise_multiplier's binary search: the planned run spends [target - this, target]


@dataclass(frozen=True)
class SgdBudget:
    """One DP-SGD run's privacy settings: target (epsilon, delta), and the noise that meets it over ``steps``."""

    epsilon: float
    delta: float
    sample_rate: float
    steps: int  # planned optimizer steps (what sigma is calibrated for)
    expected_batch_size: int
    max_grad_norm: float
    noise_multiplier: float
    accountant: str
    seed: int
    unit: str

    def report(self, steps_taken: int, epsilon_spent: float) -> dict[str, Any]:
        """What a stage writes to its metrics (infinite epsilons as null: JSON has no infinity)."""
        settings = asdict(self)
        del settings["epsilon"], settings["steps"]
        return {
            "target_epsilon": _finite(self.epsilon),
            **settings,
            "planned_steps": self.steps,
            "steps": steps_taken,
            "epsilon_spent": _finite(epsilon_spent),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def noise_for_target(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "rdp") -> float:
    """Opacus' noise multiplier for (epsilon, delta) after ``steps`` Poisson-sampled steps at ``sample_rate``
    (0 for epsilon = inf: clipping only)."""
    if math.isinf(epsilon):
        return 0.0
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps,
            accountant=accountant, epsilon_tolerance=EPSILON_TOLERANCE,
        )
    )  # fmt: skip


def sgd_budget(dp: DPParams, n_units: int, expected_batch_size: int, steps: int, n_users: int) -> SgdBudget:
    """The budget of a run over ``n_units`` privacy units, ``expected_batch_size`` of them per step on average."""
    if n_units < 1 or steps < 1:
        raise ValueError(f"DP-SGD needs at least one unit and one step, got {n_units} units and {steps} steps")
    sample_rate = min(expected_batch_size / n_units, 1.0)
    delta = dp.delta_for(n_users)
    sgd = dp.sgd
    sigma = sgd.noise_multiplier
    if sigma is None:
        sigma = noise_for_target(dp.epsilon, delta, sample_rate, steps, sgd.accountant)
    return SgdBudget(
        epsilon=dp.epsilon, delta=delta, sample_rate=sample_rate, steps=steps,
        expected_batch_size=max(round(sample_rate * n_units), 1), max_grad_norm=sgd.max_grad_norm,
        noise_multiplier=sigma, accountant=sgd.accountant, seed=dp.seed, unit=sgd.unit,
    )  # fmt: skip


def epsilon_after(budget: SgdBudget, steps: int) -> float:
    """The accountant's epsilon after ``steps`` steps of ``budget`` (what a planned run spends: ``steps = budget.steps``)."""
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism=budget.accountant)
    if steps > 0:
        accountant.history = [(budget.noise_multiplier, budget.sample_rate, steps)]
    return spent(accountant, budget)


def spent(accountant: Any, budget: SgdBudget) -> float:
    """An Opacus accountant's epsilon at ``budget.delta`` (0 before any step, inf without noise)."""
    if not accountant.history:
        return 0.0
    if budget.noise_multiplier == 0:
        return math.inf
    return float(accountant.get_epsilon(delta=budget.delta))


class ClippedLoss:
    """A per-unit loss whose ``backward`` adds the sum of the units' clipped gradients to ``.grad``.

    Opacus' ghost clipping (``DPTensorFastGradientClipping.backward``) in two passes: the first, through
    ``torch.autograd.grad``, runs the hooks that measure each unit's gradient norm and leaves ``.grad`` alone
    (so micro-batches of a step accumulate, unlike Opacus' version, which zeroes it); the second back-propagates
    ``sum_i min(1, C / norm_i) loss_i`` with the hooks off. The shared loop scales a micro-batch's loss by its
    share of the step: here that scale only changes the reported value, since the clipped sum must not be
    rescaled (the optimizer divides it by the expected batch).
    """

    def __init__(self, hooks: Any, per_unit: torch.Tensor, scale: float = 1.0):
        if per_unit.dim() != 1:
            raise ValueError(f"the loss must have one value per privacy unit, got shape {tuple(per_unit.shape)}")
        self.hooks, self.per_unit, self.scale = hooks, per_unit, scale

    def __mul__(self, factor: float) -> ClippedLoss:
        return ClippedLoss(self.hooks, self.per_unit, self.scale * float(factor))

    __rmul__ = __mul__

    def detach(self) -> torch.Tensor:
        return self.per_unit.detach().mean() * self.scale

    def backward(self) -> None:
        with warnings.catch_warnings():
            # an embedding's input (ids) needs no gradient: its hook fires on the output's, which is what Opacus reads
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            parameters = self.hooks.trainable_parameters
            torch.autograd.grad(self.per_unit.mean(), parameters, retain_graph=True, allow_unused=True)
            coefficients = self.hooks.get_clipping_coef().to(self.per_unit.device)
            self.hooks.disable_hooks()
            try:
                (coefficients * self.per_unit).sum().backward()
            finally:
                self.hooks.enable_hooks()


class PrivateOptimizer:
    """The loop's optimizer under DP-SGD: Opacus' ghost-clipping hooks on ``module`` and its noisy optimizer
    around ``optimizer``, with an accountant whose state is saved with the optimizer's."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, budget: SgdBudget):
        from opacus.accountants import create_accountant
        from opacus.grad_sample import GradSampleHooksFastGradientClipping
        from opacus.optimizers import DPOptimizerFastGradientClipping

        self.module, self.budget = module, budget
        # strict: Opacus refuses a trainable layer that holds buffers (their values would not be private)
        self.hooks = GradSampleHooksFastGradientClipping(
            module, batch_first=True, loss_reduction="mean", strict=True, max_grad_norm=budget.max_grad_norm
        )
        device = next(module.parameters()).device
        self.generator = torch.Generator(device=device)
        self.optimizer = DPOptimizerFastGradientClipping(
            optimizer, noise_multiplier=budget.noise_multiplier, max_grad_norm=budget.max_grad_norm,
            expected_batch_size=budget.expected_batch_size, loss_reduction="mean", generator=self.generator,
        )  # fmt: skip
        self.accountant = create_accountant(mechanism=budget.accountant)
        self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=budget.sample_rate))

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @property
    def steps_taken(self) -> int:
        return sum(int(steps) for _, _, steps in self.accountant.history)

    def loss(self, per_unit: torch.Tensor) -> ClippedLoss:
        """What the objective returns: one loss value per sampled unit, clipped on backward."""
        return ClippedLoss(self.hooks, per_unit)

    def zero_grad(self, set_to_none: bool = True) -> None:
        # a step redone after out-of-memory must not see the failed attempt's captured activations
        for layer in self.module.modules():
            if getattr(layer, "activations", None):
                layer.activations.clear()
        for parameter in self.hooks.trainable_parameters:
            parameter._forward_counter = 0
        self.optimizer.zero_grad(set_to_none)

    def step(self) -> None:
        """Noise the clipped sum (zero for an empty Poisson batch: the step is still taken and counted), then step."""
        for parameter in self.optimizer.params:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        seed = np.random.SeedSequence([self.budget.seed, self.steps_taken, 0xD9]).generate_state(1)[0]
        self.generator.manual_seed(int(seed))
        self.optimizer.step()

    def epsilon(self) -> float:
        """The accountant's epsilon for the steps taken so far (those before a resume included)."""
        return spent(self.accountant, self.budget)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "accountant": dict(self.accountant.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        accountant = dict(state["accountant"])
        accountant["history"] = [tuple(entry) for entry in accountant["history"]]
        self.accountant.load_state_dict(accountant)
