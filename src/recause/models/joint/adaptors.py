"""Adaptors: map a frozen language-model embedding of item text into the recommender's item space.

Language-model embeddings are anisotropic (a few directions carry most of the variance and every
vector shares a large common component), so dot products between them mostly measure that common
part. Both adaptors therefore see a standardised input, computed once in closed form from the
embedding matrix, and learn only the small network on top:

- ``whiten_mlp``: centre + PCA-whiten (every retained direction gets unit variance), then an MLP.
- ``moe``: centre + scale to unit mean variance, then expert MLPs mixed by a softmax gate over the
  same input (UniSRec-style mixture), so different regions of text space can map differently.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recause.config.joint import AdaptorName


def whitening(embeddings: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and PCA-whitening map (d, k) of ``embeddings`` (n, d): (x - mean) @ map has identity covariance.

    Directions with variance below ``eps`` times the largest are dropped (k <= d), so a rank-deficient
    matrix (fewer items than dimensions, duplicated rows) is not blown up along its null space.
    """
    values = np.asarray(embeddings, dtype=np.float64)
    mean = values.mean(axis=0)
    centred = values - mean
    covariance = centred.T @ centred / max(len(values), 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    keep = eigenvalues > eps * max(float(eigenvalues.max()), 1e-30)
    transform = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])
    return mean.astype(np.float32), transform.astype(np.float32)


def standardising(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and a scalar scale as a (d, d) diagonal map: centred inputs get unit mean variance."""
    values = np.asarray(embeddings, dtype=np.float64)
    mean = values.mean(axis=0)
    scale = 1.0 / max(float(np.sqrt(((values - mean) ** 2).sum(axis=1).mean() / values.shape[1])), 1e-12)
    return mean.astype(np.float32), (np.eye(values.shape[1]) * scale).astype(np.float32)


class _Standardised(nn.Module):
    """Holds the closed-form input map as buffers (saved with the module, never trained)."""

    def __init__(self, mean: np.ndarray, transform: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean))
        self.register_buffer("transform", torch.as_tensor(transform))

    def standardise(self, text: torch.Tensor) -> torch.Tensor:
        return (text - self.mean) @ self.transform


class WhitenMLP(_Standardised):
    def __init__(self, embeddings: np.ndarray, hidden: int, dim: int):
        super().__init__(*whitening(embeddings))
        self.mlp = nn.Sequential(nn.Linear(self.transform.shape[1], hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.standardise(text))


class MixtureOfExperts(_Standardised):
    def __init__(self, embeddings: np.ndarray, hidden: int, dim: int, n_experts: int):
        super().__init__(*standardising(embeddings))
        d = self.transform.shape[1]
        self.n_experts, self.hidden = n_experts, hidden
        self.gate = nn.Linear(d, n_experts)
        self.up = nn.Linear(d, n_experts * hidden)  # every expert's first layer in one matmul
        self.down = nn.Parameter(torch.randn(n_experts, hidden, dim) / hidden**0.5)
        self.down_bias = nn.Parameter(torch.zeros(n_experts, dim))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        x = self.standardise(text)
        gates = torch.softmax(self.gate(x), dim=-1)  # (n, E)
        hidden = F.gelu(self.up(x)).view(len(x), self.n_experts, self.hidden)  # (n, E, H)
        experts = torch.einsum("neh,ehd->ned", hidden, self.down) + self.down_bias  # (n, E, dim)
        return (gates.unsqueeze(-1) * experts).sum(dim=1)


def build_adaptor(kind: AdaptorName, embeddings: np.ndarray, hidden: int, dim: int, n_experts: int) -> nn.Module:
    """The adaptor named ``kind``, its input standardisation fitted to ``embeddings`` (n_items, d)."""
    if kind == "whiten_mlp":
        return WhitenMLP(embeddings, hidden, dim)
    return MixtureOfExperts(embeddings, hidden, dim, n_experts)
