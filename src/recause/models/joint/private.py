"""The joint model's objective under DP-SGD (``privacy.dp``; the Opacus wiring is ``recause.privacy.sgd``).

DP-SGD bounds what one *privacy unit* changes in a step by clipping that unit's gradient, so every choice
below keeps one unit's loss a function of that unit's data alone:

- **Unit.** ``user`` (default): user-level DP, the guarantee covers adding or removing a user with all their
  train events. A unit's loss is the mean loss of up to ``interactions_per_user`` of its positives (every
  user weighs the same: a heavy user cannot spend more than one clipped gradient). ``interaction``:
  event-level DP, each logged positive is a unit (a weaker guarantee: a user with n events is protected
  only at about n epsilon, by group privacy).
- **User vectors.** ``history`` (default, unit user): the mean item vector of the user's history plus the
  side features, no per-user parameter (see ``PrivateJointObjective``); ``id``: the ID embedding, noised
  like every parameter (on ML-100K it stays noise: test NDCG@10 0.105 against 0.152 at epsilon 8).
- **Sampling.** Each step takes each unit independently with probability q = ``batch_size`` / units
  (Poisson sampling, the accountant's assumption; batches vary in size and may be empty), from a generator
  seeded by (``privacy.dp.seed``, step): secret like the noise, and the same after a resume.
- **Negatives.** Each positive gets its own ``n_negatives`` items drawn uniformly from the catalogue,
  independently of the data: the step's other positives (``in_batch``) would put one unit's items in
  other units' losses, and a popularity sample or its logQ correction reads every unit's counts.
  Sampled softmax (or BPR averaged over the negatives) of the positive against them; a negative equal to
  the positive is masked, as without DP.
- **No data-wide statistics.** No debiasing (ips/snips/dr propensities and pda's shares are functions of
  every event; snips also normalises by the batch), item biases start at zero rather than at the popularity
  prior, and the fitted model stores no item counts. L2 on the ID rows a unit touches stays in its own loss.

The towers are evaluated once per forward pass on batch-first tensors (users (B,), items (B, T)), which
Opacus' ghost clipping requires. Not covered by the guarantee: the validation that picks the kept step
(it scores valid events and excludes train items, unnoised) and the user side features (inputs, not events).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recause.config.joint import JointParams
from recause.config.privacy import DPParams, SgdDPParams
from recause.models.joint.network import JointNet
from recause.privacy.sgd import PrivateOptimizer, sgd_budget
from recause.training.run import planned_steps

SAMPLING_STREAM = 0x5A4D  # the sampler's generator: (seed, step, this), apart from the noise's


def private_joint_params(params: JointParams, sgd: SgdDPParams) -> JointParams:
    """The params a DP-SGD run trains with: per-unit uniform negatives, no popularity prior, the DP batch."""
    if params.debias != "none":
        raise ValueError(
            f"privacy.dp: debias {params.debias!r} reads every event's popularity, which DP-SGD cannot clip "
            "per unit; use debias: none"
        )
    if sgd.unit == "interaction" and sgd.user_vector == "history":
        raise ValueError(
            "privacy.dp: history user vectors read a user's other events, which are other units under unit "
            "interaction; use user_vector: id"
        )
    if params.adaptor == "moe" and params.adaptor_trainable:
        # its own parameters sit next to buffers (Opacus refuses such a layer) and have no norm sampler
        raise ValueError("privacy.dp: Opacus cannot clip the moe adaptor per unit; use whiten_mlp or a frozen adaptor")
    return params.model_copy(
        update={
            "negatives": "uniform", "n_negatives": sgd.n_negatives, "bias_init": "zero", "logq_correction": False,
            "batch_size": sgd.batch_size,
        }
    )  # fmt: skip


def privacy_units(users_of: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """(first positive, number of positives) of each unit; ``users_of`` is sorted (positives in CSR order)."""
    n = len(users_of)
    if unit == "interaction":
        return np.arange(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, users_of[1:] != users_of[:-1]]).astype(np.int64)
    return starts, np.diff(np.r_[starts, n])


@dataclass
class PrivateStep:
    """One step's sampled units (sorted) and, per unit, its target positives (B, L), their negatives (B, L, K)
    and history positives (B, H), as positions in the list of positives (masks: which slots are used)."""

    units: np.ndarray
    targets: np.ndarray
    target_mask: np.ndarray
    negatives: np.ndarray
    history: np.ndarray
    history_mask: np.ndarray


def split_histories(
    starts: np.ndarray, counts: np.ndarray, targets: int, history: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's positives in a random order: the first min(``targets``, ceil(count / 2)) are its targets,
    up to ``history`` of the rest its history (disjoint: a target never predicts itself)."""
    owner = np.repeat(np.arange(len(starts)), counts)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)  # position within the unit
    shuffled = (np.repeat(starts, counts) + rank)[np.lexsort((rng.random(len(owner)), owner))]
    n_targets = np.minimum(targets, (counts + 1) // 2)[owner]
    slots = {"target": (rank < n_targets, rank, targets), "history": (rank >= n_targets, rank - n_targets, history)}
    out = []
    for keep, column, width in slots.values():
        keep &= column < width
        positions, mask = np.zeros((len(starts), width), np.int64), np.zeros((len(starts), width), bool)
        positions[owner[keep], column[keep]], mask[owner[keep], column[keep]] = shuffled[keep], True
        out += [positions, mask]
    return tuple(out)


class PrivateJointObjective:
    """The loop's ``Objective`` under DP-SGD: examples are privacy units, the loss one value per unit.

    ``user_vector: history`` (unit user): a user's vector is the mean item vector of their history plus their
    side features, trained on disjoint history/target splits of each sampled user's positives and exported as
    the mean over all their train positives (``JointModel.fold_in``'s rule). No per-user parameter is trained:
    a user's ID row would only ever see that user's clipped gradient under noise of the whole batch. The DP
    release is then the item side (and the side-feature layers); each user's stored vector is a function of
    their own history, which only that user's recommendations read (joint differential privacy).
    ``user_vector: id``: the ID embedding, trained (and noised) like every other parameter.
    """

    def __init__(
        self,
        net: JointNet,
        params: JointParams,
        users_of: np.ndarray,
        items_of: np.ndarray,
        sgd: SgdDPParams,
        optimizer: PrivateOptimizer,
        device: torch.device,
    ):
        self.module, self.params, self.device, self.optimizer = net, params, device, optimizer
        self.users_of, self.items_of, self.n_items = users_of, items_of, net.item_ids.num_embeddings
        self.starts, self.counts = privacy_units(users_of, sgd.unit)
        self.folded = sgd.user_vector == "history"
        self.targets = 1 if sgd.unit == "interaction" else sgd.interactions_per_user
        self.history = sgd.history_size if self.folded else 0
        self.sample_rate = optimizer.budget.sample_rate
        self.plan: PrivateStep | None = None

    @property
    def n_units(self) -> int:
        return len(self.starts)

    def examples(self, step: int, rng: np.random.Generator) -> np.ndarray:
        """Poisson-sampled units of ``step``; draws their targets and history and (from ``rng``) negatives."""
        sampler = np.random.default_rng([self.optimizer.budget.seed, step, SAMPLING_STREAM])
        units = np.flatnonzero(sampler.random(self.n_units) < self.sample_rate)
        starts, counts = self.starts[units], self.counts[units]
        if self.folded:
            targets, target_mask, history, history_mask = split_histories(
                starts, counts, self.targets, self.history, sampler
            )
        else:  # with replacement: every unit weighs the same whatever its number of positives
            targets = starts[:, None] + (sampler.random((len(units), self.targets)) * counts[:, None]).astype(np.int64)
            target_mask = np.ones(targets.shape, bool)
            history, history_mask = np.zeros((len(units), 0), np.int64), np.zeros((len(units), 0), bool)
        negatives = rng.integers(0, self.n_items, (*targets.shape, self.params.n_negatives))
        self.plan = PrivateStep(units, targets, target_mask, negatives, history, history_mask)
        return units

    def before_step(self, step: int) -> None:
        """Nothing to refresh: the towers are evaluated afresh in every loss."""

    def loss(self, units: np.ndarray):  # -> ClippedLoss (back-propagates clipped per-unit gradients)
        """One loss per unit of ``units`` (of the current step): its targets' mean loss plus L2 on its ID rows."""
        plan = self.plan
        if plan is None:
            raise ValueError("loss before examples: call examples(step, rng) first")
        at = np.minimum(np.searchsorted(plan.units, units), max(len(plan.units) - 1, 0))
        if not len(plan.units) or not np.array_equal(plan.units[at], units):
            raise ValueError("units are not of the current step: call examples(step, rng) first")
        tensor = lambda array, kind=torch.long: torch.from_numpy(np.ascontiguousarray(array)).to(self.device, kind)  # noqa: E731
        items, negatives = tensor(self.items_of[plan.targets[at]]), tensor(plan.negatives[at])  # (B, L), (B, L, K)
        users = tensor(self.users_of[plan.targets[at, 0]])
        batch, draws, k = negatives.shape
        candidates = torch.cat([items.unsqueeze(-1), negatives], dim=-1).reshape(batch, draws * (k + 1))
        history = tensor(self.items_of[plan.history[at]]) if self.folded else candidates[:, :0]
        # one call per tower on batch-first inputs: what Opacus' per-unit norms need
        vectors, ids = self.module.items(torch.cat([history, candidates], dim=1))
        width = history.shape[1]
        p, l2 = self._users(users, vectors[:, :width], tensor(plan.history_mask[at], torch.float32))
        scores = torch.einsum("bd,btd->bt", p, vectors[:, width:]) + self.module.bias(candidates)
        per_target = self._per_target(scores.view(batch, draws, k + 1), negatives == items.unsqueeze(-1))
        target_ids = ids[:, width:].reshape(batch, draws, k + 1, -1)[:, :, 0]
        mask = tensor(plan.target_mask[at], torch.float32)
        mean = lambda values: (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # noqa: E731
        l2 = l2 + mean(target_ids.pow(2).sum(-1))
        return self.optimizer.loss(mean(per_target) + self.params.weight_decay * l2)

    def _users(
        self, users: torch.Tensor, history: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors (B, d) and the L2 of their ID rows (zero for history vectors, which have none)."""
        if not self.folded:
            p, p_ids = self.module.users(users)
            return p, p_ids.pow(2).sum(-1)
        p = (history * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        if self.module.user_linear is not None:
            p = p + self.module.user_linear(self.module.user_side[users])
        return p, torch.zeros(len(users), device=p.device)

    def _per_target(self, scores: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """(B, L) losses of each target against its negatives (scores[..., 0] is the target's)."""
        if self.params.loss == "softmax":
            logits = scores.masked_fill(torch.cat([torch.zeros_like(hit[..., :1]), hit], dim=-1), float("-inf"))
            return -torch.log_softmax(logits, dim=-1)[..., 0]
        pairs = -F.logsigmoid(scores[..., :1] - scores[..., 1:])
        return torch.where(hit, 0.0, pairs).sum(-1) / (~hit).sum(-1).clamp(min=1)

    def exported(self, vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``JointNet.export``'s vectors with history user vectors: each user's mean item vector over all their
        train positives, plus their side features (users without positives: side features only)."""
        if not self.folded:
            return vectors
        n_users = len(vectors["user_vectors"])
        rows = sp.csr_matrix(
            (np.ones(len(self.users_of), np.float32), (self.users_of, self.items_of)),
            shape=(n_users, self.n_items),
        )
        folded = np.asarray(
            sp.diags(1.0 / np.maximum(rows.getnnz(axis=1), 1)) @ rows @ vectors["item_vectors"], dtype=np.float32
        )
        if self.module.user_linear is not None:
            with torch.no_grad():
                folded += self.module.user_linear(self.module.user_side).float().cpu().numpy()
        return vectors | {"user_vectors": folded}


def private_parts(
    net: JointNet,
    params: JointParams,
    dp: DPParams,
    users_of: np.ndarray,
    items_of: np.ndarray,
    device: torch.device,
) -> PrivateJointObjective:
    """The DP-SGD objective over ``net`` (``params`` from ``private_joint_params``), its optimizer attached.

    The noise reaches every row of the ID tables, so their gradients are dense and one Adam steps all
    parameters (weight decay on the dense layers; the ID rows' L2 is in each unit's loss, as without DP).
    Sigma is calibrated for ``planned_steps`` over the units at the expected batch ``params.batch_size``.
    """
    for layer in net.modules():
        if isinstance(layer, nn.Embedding):
            layer.sparse = False
    if dp.sgd.user_vector == "history":  # the ID rows are then neither trained nor noised
        net.user_ids.weight.requires_grad_(False)
    n_units = len(privacy_units(users_of, dp.sgd.unit)[0])
    n_users = int(len(np.unique(users_of)))  # train users (delta's default is one over them)
    budget = sgd_budget(dp, n_units, params.batch_size, planned_steps(n_units, params), n_users)
    groups = [{"params": net.sparse_parameters(), "weight_decay": 0.0}]
    if dense := net.dense_parameters():
        groups.append({"params": dense, "weight_decay": params.weight_decay})
    optimizer = PrivateOptimizer(net, torch.optim.Adam(groups, lr=params.learning_rate), budget)
    return PrivateJointObjective(net, params, users_of, items_of, dp.sgd, optimizer, device)
