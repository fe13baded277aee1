"""Stage `train_baselines`: fit every registered baseline (recause.models.registry) on the train part only.

Each gets its knobs from `models.baselines.<name>`; one that should not be fit on this data (EASE above
its `max_items`) is skipped with a log line, and `evaluate` ranks with the models that exist.

With `privacy.dp.enabled`, a baseline that can fit on a Gram matrix alone (`fit_gram`: EASE) fits on the
main split's differentially private release (recause.privacy.gram: the same draw `train_hybrid` uses), its
ridge grown by the release's `ridge_added`, and its saved JSON says so under "privacy"; the others have no
private fit and are skipped.
"""

from __future__ import annotations

import time

import scipy.sparse as sp

from recause.artifacts import atomic_path, read_parquet, save_model
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.models.registry import PARAMS_SECTION, build_baselines
from recause.privacy.gram import PrivateGram, private_gram
from tasks._stage import run_stage

TRAIN = LAYOUT.processed / "train.parquet"
ITEMS = LAYOUT.items
MODELS_DIR = LAYOUT.baselines


def fit(model: Recommender, matrix: sp.csr_matrix, private: PrivateGram | None) -> dict:
    """Fit ``model`` on train, or on the private release alone; the metadata that says which."""
    if private is None:
        model.fit(matrix)
        return {}
    model.fit_gram(private.gram, private.ridge)
    return {"privacy": private.summary()}


def main() -> None:
    params = load_params()
    knobs = params.models.baselines
    dp = params.privacy.dp
    models = build_baselines(knobs)  # checks every knob before anything is read or fit
    train = read_parquet(TRAIN, "train part")
    # Every catalogue item gets an index, so cold items can be ranked (and are scored 0 here).
    items = IdIndex.from_values(read_parquet(ITEMS, "items table")["item_id"])
    users = IdIndex.first_seen(train["user_id"])
    matrix = interaction_matrix(train, users, items)
    private = None
    with atomic_path(MODELS_DIR) as tmp:
        tmp.mkdir(parents=True)
        for model in models:
            reason = model.skip_reason(matrix)
            if reason is None and dp.enabled and not hasattr(model, "fit_gram"):
                reason = "no differentially private fit (privacy.dp.enabled)"
            if reason is not None:
                print(f"train_baselines: {model.name} skipped ({PARAMS_SECTION}.{model.name}): {reason}")
                continue
            started = time.perf_counter()
            if dp.enabled and private is None:
                private = private_gram(matrix, dp, "main")
            privacy = fit(model, matrix, private)
            seconds = time.perf_counter() - started
            meta = {"item_ids": items.ids.tolist(), "train_interactions": int(matrix.nnz), **privacy}
            save_model(tmp, model, meta)
            print(f"train_baselines: {model.name} fitted in {seconds:.2f}s")


if __name__ == "__main__":
    run_stage(main)
