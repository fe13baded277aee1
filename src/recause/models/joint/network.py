"""The trainable towers: user = ID embedding (+ side features), item = ID embedding + text adaptor (+ side features).

score(u, i) = <p_u, q_i> + b_i. ID tables use sparse gradients, so one optimizer step costs what
its batch touches, not the size of the user or item tables: an epoch's cost grows linearly with
the number of interactions even though the user count grows with them too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from recause.config.joint import JointParams
from recause.models.joint.adaptors import build_adaptor

EXPORT_CHUNK = 65_536  # rows per forward pass when exporting every vector


def _as_buffer(values: np.ndarray | None, rows: int, what: str) -> torch.Tensor | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2 or len(array) != rows:
        raise ValueError(f"{what} must be a 2-D array with {rows} rows, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array))


class JointNet(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        params: JointParams,
        item_text: np.ndarray | None = None,
        user_features: np.ndarray | None = None,
        item_features: np.ndarray | None = None,
    ):
        super().__init__()
        self.user_ids = nn.Embedding(n_users, params.dim, sparse=True)
        self.item_ids = nn.Embedding(n_items, params.dim, sparse=True)
        self.item_bias = nn.Embedding(n_items, 1, sparse=True)
        nn.init.normal_(self.user_ids.weight, std=params.init_std)
        nn.init.normal_(self.item_ids.weight, std=params.init_std)
        nn.init.zeros_(self.item_bias.weight)  # the trainer may start it at a popularity prior instead
        # PDA explains popularity by m_i^gamma: a free item bias would absorb it again and survive the
        # intervention at inference, so under PDA the bias stays zero (f is the pure user-item match)
        self.item_bias.weight.requires_grad_(params.debias != "pda")
        # side inputs are data, not state: non-persistent buffers follow the module to its device
        for name, values, rows in (
            ("text", item_text, n_items),
            ("user_side", user_features, n_users),
            ("item_side", item_features, n_items),
        ):
            self.register_buffer(name, _as_buffer(values, rows, name), persistent=False)
        self.adaptor = (
            None
            if item_text is None
            else build_adaptor(params.adaptor, self.text.numpy(), params.adaptor_hidden, params.dim, params.n_experts)
        )
        if self.adaptor is not None and not params.adaptor_trainable:
            self.adaptor.requires_grad_(False)
        self.adaptor_trainable = params.adaptor_trainable
        self._text_cache: torch.Tensor | None = None
        self.user_linear = None if user_features is None else nn.Linear(user_features.shape[1], params.dim, bias=False)
        self.item_linear = None if item_features is None else nn.Linear(item_features.shape[1], params.dim, bias=False)

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.user_ids.weight, self.item_ids.weight, self.item_bias.weight) if p.requires_grad]

    def dense_parameters(self) -> list[nn.Parameter]:
        sparse = {id(p) for p in (self.user_ids.weight, self.item_ids.weight, self.item_bias.weight)}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in sparse]

    def users(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors of ``rows`` and their ID-embedding part (what L2 regularises)."""
        ids = self.user_ids(rows)
        if self.user_linear is None:
            return ids, ids
        return ids + self.user_linear(self.user_side[rows]), ids

    def items(self, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors of ``cols`` and their ID-embedding part."""
        ids = self.item_ids(cols)
        vectors = ids
        if self.adaptor is not None:
            vectors = vectors + self._text_vectors(cols)
        if self.item_linear is not None:
            vectors = vectors + self.item_linear(self.item_side[cols])
        return vectors, ids

    def bias(self, cols: torch.Tensor) -> torch.Tensor:
        return self.item_bias(cols).squeeze(-1)

    def _text_vectors(self, cols: torch.Tensor) -> torch.Tensor:
        if self.adaptor_trainable:
            return self.adaptor(self.text[cols])
        if self._text_cache is None or self._text_cache.device != self.text.device:
            # a frozen adaptor gives every item the same output all run: compute it once
            with torch.no_grad():
                self._text_cache = torch.cat([self.adaptor(chunk) for chunk in self.text.split(EXPORT_CHUNK)])
        return self._text_cache[cols]

    @torch.no_grad()
    def export(self) -> dict[str, np.ndarray]:
        """Every user and item vector, the item biases and the user-feature map W (with user side features), as
        float32 arrays (for scoring and saving)."""
        device = self.user_ids.weight.device

        def every(n: int, tower: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
            chunks = [
                tower(torch.arange(s, min(s + EXPORT_CHUNK, n), device=device))[0] for s in range(0, n, EXPORT_CHUNK)
            ]
            return torch.cat(chunks).float().cpu().numpy()

        exported = {
            "user_vectors": every(self.user_ids.num_embeddings, self.users),
            "item_vectors": every(self.item_ids.num_embeddings, self.items),
            "item_bias": self.item_bias.weight.squeeze(-1).float().cpu().numpy().copy(),
        }
        if self.user_linear is not None:  # W of p_u = e_u + W x_u: what a counterfactual change of x_u moves
            exported["user_feature_map"] = self.user_linear.weight.float().cpu().numpy().copy()
        return exported
