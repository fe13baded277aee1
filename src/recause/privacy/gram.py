"""User-level differential privacy for the closed-form models: the Gaussian mechanism on the item Gram matrix.

EASE and the hybrid read their train data only through ``G = X^T X`` (items x items). Releasing
``G~ = X_b^T X_b + N`` once per split and fitting on it alone makes every model fit on it (ε, δ)-differentially
private with respect to adding or removing one user (all of that user's train events):

- **Contribution bound** (``bound_rows``). Each user's row is scaled so that its L2 norm is at most ``C``
  (``user_norm``) and every entry at most ``C / sqrt(k)`` (``min_items``); with ``normalize`` every row is scaled
  up to that bound too (a binary row gets ``C / sqrt(max(n_u, k))`` per item), so each user weighs the same.
- **Symmetric noise with the right sensitivity.** ``N`` is i.i.d. ``N(0, s^2)`` on the upper triangle, diagonal
  included, mirrored below it: the Gaussian mechanism on the vector ``u(G) = (G_ij)_{i <= j}``, the mirror being
  post-processing. One user moves ``u`` by ``u(x x^T)``, with
  ``||u(x x^T)||^2 = sum_{i<=j} x_i^2 x_j^2 = (||x||^4 + sum_i x_i^4) / 2 <= C^4 (1 + 1/k) / 2``, so the L2
  sensitivity is ``Delta = C^2 sqrt((1 + 1/k) / 2)`` (``C^2`` for ``k = 1``, attained by a one-item user).
  Calibrating to ``C^2`` (the Frobenius norm ``||x x^T||_F = ||x||^2`` of the full matrix) is valid but loose by
  that factor (up to ``1/sqrt(2)``); drawing both triangles independently would not even be symmetric.
- **Calibration** (``noise_multiplier``). ``s = z Delta`` with the smallest ``z`` at which the exact privacy
  profile of the Gaussian mechanism (Balle & Wang, "Improving the Gaussian mechanism for differential privacy:
  analytical calibration and optimal denoising", ICML 2018, Theorem 8),
  ``delta(eps) = Phi(1/(2z) - eps z) - e^eps Phi(-1/(2z) - eps z)``, is at most δ. The classic
  ``z = sqrt(2 ln(1.25/δ)) / ε`` holds for ε < 1 only (at ε = 8, δ = 1e-3 it is below the exact ``z``).
- **Denoising** (``denoise``, post-processing, so free): the eigenvalues of ``G~`` are soft-thresholded at
  ``shrink`` x the noise's spectral norm ``2 s sqrt(n)`` (the nuclear-norm proximal step; Wigner noise fills the
  spectrum up to that edge), and every ridge grows by ``noise_ridge`` x that norm (``PrivateGram.ridge``).

Everything the released model needs from train is read from the release: the Gram the solve uses, the item
counts of the hybrid's popularity ridge, deconfounding and cold columns (``G~``'s diagonal, set to 0 below two
noise standard deviations: an item whose count is lost in the noise is treated as cold). The item catalogue and
item text (the content kernel, the cold head) are public. What the guarantee does NOT cover:

- **Hyper-parameter choice.** The stages choose the ridge, content weight and cold weight on valid, which holds
  the same users' held-out events, unnoised: the choice among a handful of settings is not private.
- **Several releases.** One ``G~`` per split (main, intervened, cold_item) of the same users: by basic
  composition the three splits' models together are (3ε, 3δ)-DP. EASE (`train_baselines`) and the hybrid on
  one split share that split's draw (the noise is a function of the seed and the split), so they are one
  release; a new seed on the same data is a new release.
- **Model metadata** (how many train events there were), the number of users behind the default
  δ = 1 / n_users (taken as public), and evaluation metrics, which read test.
- **Events outside train.** The unit is the user's train row; valid and test events are not in ``G``.
- **A known seed.** The noise is drawn from ``privacy.dp.seed`` (results stay reproducible): anyone who knows it
  can subtract the noise. Keep the seed of a release secret.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr

from recause.config.privacy import DPParams

MECHANISM = "gaussian mechanism on the item Gram (analytic calibration, Balle & Wang 2018)"


def gaussian_delta(epsilon: float, noise_multiplier: float) -> float:
    """The exact privacy profile δ(ε) of the Gaussian mechanism with noise std ``noise_multiplier`` x sensitivity
    (Balle & Wang 2018, Theorem 8)."""
    if noise_multiplier <= 0:
        return 1.0
    if math.isinf(epsilon):
        return 0.0
    a, b = 0.5 / noise_multiplier, epsilon * noise_multiplier
    return float(ndtr(a - b) - math.exp(epsilon + log_ndtr(-a - b)))


def noise_multiplier(epsilon: float, delta: float) -> float:
    """The smallest ``z`` (noise std over L2 sensitivity) with ``gaussian_delta(epsilon, z) <= delta``;
    0 for ε = inf (no noise)."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if math.isinf(epsilon):
        return 0.0
    # δ(ε; z) falls strictly with z: find the root of log δ(ε; z) - log δ in log z (relative accuracy in δ)
    gap = lambda log_z: math.log(max(gaussian_delta(epsilon, math.exp(log_z)), 1e-300)) - math.log(delta)  # noqa: E731
    low, high = math.log(1e-6), math.log(1e6)
    return math.exp(brentq(gap, low, high, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def bound_rows(train: sp.csr_matrix, user_norm: float, min_items: int = 1, normalize: bool = False) -> sp.csr_matrix:
    """``train`` (float64) with every row scaled so that its L2 norm is at most ``user_norm`` and each entry at most
    ``user_norm / sqrt(min_items)`` (what bounds one user's Gram contribution, see ``sensitivity``).

    ``normalize``: scale every row up to that bound too (a binary row gets ``user_norm / sqrt(max(n_u, min_items))``
    per item), so light and heavy users count alike; else rows already within it are kept as they are.
    """
    if user_norm <= 0 or min_items < 1:
        raise ValueError(f"user_norm must be > 0 and min_items >= 1, got {user_norm} and {min_items}")
    rows = sp.csr_matrix(train, dtype=np.float64)
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    peaks = np.asarray(abs(rows).max(axis=1).todense()).ravel() * math.sqrt(min_items)
    size = np.maximum(norms, peaks)
    scale = user_norm / np.where(size > 0, size, 1.0)
    return sp.csr_matrix(sp.diags(scale if normalize else np.minimum(1.0, scale)) @ rows)


def sensitivity(user_norm: float, min_items: int = 1) -> float:
    """L2 sensitivity of the Gram's upper triangle (diagonal included) to one user whose row has norm <= C and
    entries <= C / sqrt(k): ``sum_{i<=j} x_i^2 x_j^2 = (||x||^4 + sum_i x_i^4) / 2 <= (C^4 + C^4 / k) / 2``."""
    return user_norm**2 * math.sqrt((1 + 1 / min_items) / 2)


def symmetric_noise(n_items: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """An (n, n) symmetric matrix: i.i.d. N(0, std^2) on and above the diagonal, mirrored below it."""
    draw = rng.standard_normal((n_items, n_items)) * std
    return np.triu(draw) + np.triu(draw, 1).T


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """The noise generator of one release: a function of the seed and the split (different splits must never
    share noise: ``G1 + N`` and ``G2 + N`` would reveal ``G1 - G2`` exactly)."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


@dataclass(frozen=True)
class GramMechanism:
    """One (ε, δ) budget for the Gram of users' rows bounded by ``bound_rows`` (see the module docstring)."""

    epsilon: float
    delta: float
    user_norm: float
    min_items: int = 1
    normalize: bool = False
    seed: int = 0

    @property
    def sensitivity(self) -> float:
        return sensitivity(self.user_norm, self.min_items)

    @property
    def noise_std(self) -> float:
        return noise_multiplier(self.epsilon, self.delta) * self.sensitivity

    def noise_norm(self, n_items: int) -> float:
        """About the spectral norm of the noise matrix, ``2 s sqrt(n)`` (the edge of Wigner's semicircle): a ridge
        above it keeps ``G~ + ridge I`` positive definite."""
        return 2.0 * self.noise_std * math.sqrt(n_items)

    def release(self, train: sp.csr_matrix, stream: str = "main") -> np.ndarray:
        """The noisy Gram ``X_b^T X_b + N`` (dense float64, symmetric): all a private fit may read of ``train``.
        ``stream`` names the split: each split's train is its own release with its own noise."""
        bounded = bound_rows(train, self.user_norm, self.min_items, self.normalize)
        gram = np.asarray((bounded.T @ bounded).todense(), dtype=np.float64)
        std = self.noise_std
        if std > 0:
            gram += symmetric_noise(gram.shape[0], std, stream_rng(self.seed, stream))
        return gram

    def summary(self, n_items: int) -> dict[str, float | int | str | bool]:
        """What a stage writes to its metrics when the mechanism is on."""
        return {
            "mechanism": MECHANISM,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "user_norm": self.user_norm,
            "min_items": self.min_items,
            "normalize": self.normalize,
            "sensitivity": self.sensitivity,
            "noise_multiplier": noise_multiplier(self.epsilon, self.delta),
            "noise_std": self.noise_std,
            "noise_norm": self.noise_norm(n_items),
            "seed": self.seed,
        }


def denoise(gram: np.ndarray, threshold: float) -> np.ndarray:
    """``gram``'s eigenvalues soft-thresholded at ``threshold`` (negative ones dropped): the positive
    semi-definite ``argmin ||A - G~||_F^2 + 2 t ||A||_*``; ``gram`` itself when ``threshold`` is 0 or below."""
    if threshold <= 0:
        return gram
    values, vectors = np.linalg.eigh(gram)
    kept = values > threshold
    return (vectors[:, kept] * (values[kept] - threshold)) @ vectors[:, kept].T


@dataclass(frozen=True)
class PrivateGram:
    """What a private fit of one split reads: the denoised Gram, item counts, the ridge to add, and the budget."""

    gram: np.ndarray
    counts: np.ndarray  # items' noisy counts (the release's diagonal), 0 where lost in the noise
    ridge: float  # added to every ridge of the fit
    mechanism: GramMechanism

    def summary(self) -> dict[str, float | int | str | bool]:
        return {**self.mechanism.summary(len(self.counts)), "ridge_added": self.ridge}


def mechanism_for(train: sp.csr_matrix, dp: DPParams) -> GramMechanism:
    """``privacy.dp``'s mechanism for ``train`` (δ = 1 / its number of users with train events when unset)."""
    delta = dp.delta_for(int((np.diff(sp.csr_matrix(train).indptr) > 0).sum()))
    gram = dp.gram
    return GramMechanism(dp.epsilon, delta, gram.user_norm, gram.min_items, gram.normalize, dp.seed)


def private_gram(
    train: sp.csr_matrix, dp: DPParams, stream: str, mechanism: GramMechanism | None = None
) -> PrivateGram:
    """One release of ``train``'s Gram under ``privacy.dp`` (``stream``: the split), denoised as the module
    docstring says; ``mechanism`` overrides the one ``dp`` describes (e.g. a fixed δ for an audit)."""
    mechanism = mechanism or mechanism_for(train, dp)
    released = mechanism.release(train, stream)
    n_items = released.shape[0]
    diagonal = np.diag(released).copy()
    counts = np.where(diagonal > 2.0 * mechanism.noise_std, diagonal, 0.0)
    norm = mechanism.noise_norm(n_items)
    return PrivateGram(denoise(released, dp.gram.shrink * norm), counts, dp.gram.noise_ridge * norm, mechanism)
