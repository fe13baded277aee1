"""Stage `train_joint`: the joint recommender fit on each split's train, plain (`joint`) and debiased (`joint_debiased`).

Splits: the main split (RecBole's protocol), its cold-item variant and the `intervened` variant; each
model sees that split's train only, with its valid for early stopping. Every run is resumable
(checkpoints/train_joint/<split>/<model>/), so a killed or retried stage continues where it was.
Every user's top-k comes from the champion (`select_champion`), whichever model that is.

With `privacy.dp.enabled` every run is DP-SGD (recause.models.joint.private; the accountant's epsilon and the
budget go to metrics per model). DP-SGD cannot debias (propensities read every event), so `joint_debiased` is
then the same run as `joint` (the same release, saved under both names, costing no further privacy). Each
split's model is its own release: the three splits share users, so together they spend up to 3 epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import recause.models.joint
import recause.privacy.sgd
import recause.training
from recause.artifacts import atomic_path, read_parquet, save_model, write_json
from recause.config import Params, load_params
from recause.config.models import JOINT_VARIANTS, JointStageParams
from recause.data.features import item_side_features, user_side_features
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.errors import InputDataError
from recause.layout import LAYOUT
from recause.models.joint import JointModel, JointParams, joint_training, train_joint
from recause.training.device import resolve_device, set_threads
from recause.training.digest import file_digest
from recause.training.loop import TrainResult
from recause.training.report import save_loss_plots
from tasks._stage import run_stage
from tasks._training import ITEMS, item_embeddings, stage_inputs, train_stage

PROCESSED_DIR = LAYOUT.processed
SPLITS = {"main": PROCESSED_DIR, "cold_item": PROCESSED_DIR / "cold_item", "intervened": PROCESSED_DIR / "intervened"}
USERS = LAYOUT.users
EMBEDDINGS = LAYOUT.embeddings
OUTPUT = LAYOUT.joint  # <split>/<model>.{safetensors,json}
METRICS = LAYOUT.metrics_file("train_joint")
PLOTS = LAYOUT.plot_dir("train_joint")
# what a run's results depend on (with this module)
CODE = (recause.models.joint, recause.privacy.sgd, recause.training)


@dataclass(frozen=True)
class SplitData:
    users: IdIndex
    matrices: dict[str, sp.csr_matrix]  # part -> users x items
    user_side: np.ndarray | None


def model_params(stage: JointStageParams, name: str) -> JointParams:
    """The JointParams of ``name``: `joint` never debiases, `joint_debiased` uses ``stage.debias``."""
    fields = stage.model_dump(include=set(JointParams.model_fields))
    return JointParams(**fields | {"debias": "none" if name == "joint" else stage.debias})


def read_split(directory: Path, items: IdIndex, users_table: pd.DataFrame | None, with_side: bool) -> SplitData:
    names = ("train", "valid", "test")
    parts = {name: read_parquet(directory / f"{name}.parquet", f"{name} part ({directory})") for name in names}
    # the evaluation's user axis (every user of the split), so a model's user rows are evaluate's rows
    users = split_users(parts.values())
    if (directory / "cold.parquet").exists():  # the cold-item variant: its evaluation's users include cold's
        cold = read_parquet(directory / "cold.parquet", f"cold part ({directory})")
        users = split_users([*parts.values(), cold])
    unknown = items.positions(parts["train"]["item_id"].to_numpy()) < 0
    if unknown.any():
        raise InputDataError(f"{directory}/train.parquet: {unknown.sum()} interactions name items not in {ITEMS}")
    side = user_side_features(users_table, users.ids) if with_side and users_table is not None else None
    matrices = {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}
    return SplitData(users, matrices, side)


def read_inputs(stage: JointStageParams) -> tuple[IdIndex, np.ndarray | None, np.ndarray | None, pd.DataFrame | None]:
    """The item axis (every catalogue item, as the baselines'), item text embeddings, item side features, users."""
    catalogue = read_parquet(ITEMS, "items table")
    items = IdIndex.from_values(catalogue["item_id"])
    text = item_embeddings(items) if stage.use_text else None
    item_side = item_side_features(catalogue, items.ids) if stage.use_side_features else None
    users_table = read_parquet(USERS, "users table") if USERS.exists() else None
    return items, text, item_side, users_table


def private_joint(epsilon: float, params: Params, split: str = "main", progress: bool = False) -> JointModel:
    """`joint` fit on ``split``'s train as this stage fits it, but with DP-SGD at ``epsilon`` (``privacy.dp``
    otherwise as in ``params``; inf: clipped, noise-free), in memory: the privacy benchmark's joint model.
    Its user rows are the split's users (``read_split``), as `evaluate` expects; ``model.stats.privacy``
    holds the budget and the accountant's epsilon."""
    stage = params.models.joint
    dp = params.privacy.dp.model_copy(update={"enabled": True, "epsilon": epsilon})
    items, text, item_side, users_table = read_inputs(stage)
    data = read_split(SPLITS[split], items, users_table, stage.use_side_features)
    return train_joint(
        data.matrices["train"], model_params(stage, "joint"), item_text=text, user_features=data.user_side,
        item_features=item_side, valid=data.matrices["valid"], progress=progress, dp=dp,
    )  # fmt: skip


def main() -> None:
    params = load_params()
    stage = params.models.joint
    dp = params.privacy.dp
    set_threads(stage.threads)
    items, text, item_side, users_table = read_inputs(stage)
    print(f"train_joint: device {resolve_device(stage.device)}, {len(items):,} items, text {text is not None}")
    inputs = [ITEMS, *([EMBEDDINGS] if stage.use_text else []), *([USERS] if users_table is not None else [])]
    report: dict[str, dict] = {}
    fitted: dict[tuple[str, str], JointModel] = {}
    split_data: dict[str, SplitData] = {}
    plots: dict[str, tuple[TrainResult, str]] = {}  # file name -> (run, title)
    for split, directory in SPLITS.items():
        data = split_data[split] = read_split(directory, items, users_table, stage.use_side_features)
        train = data.matrices["train"]
        for name in JOINT_VARIANTS:
            run_params = model_params(stage, name)
            if dp.enabled and name != "joint":  # DP trains no debiased variant: the joint run, saved again
                joint = fitted[split, "joint"]
                fitted[split, name] = JointModel.from_state(joint.config(), joint.arrays())
                report[split][name] = report[split]["joint"] | {"same_run_as": "joint"}
                continue
            training = joint_training(
                train, run_params, item_text=text, user_features=data.user_side, item_features=item_side,
                valid=data.matrices["valid"], dp=dp,
            )  # fmt: skip
            depends_on = stage_inputs(
                file_digest(directory / "train.parquet", directory / "valid.parquet", *inputs), split, code=CODE
            )
            plan = training.plan(depends_on, name=f"train_joint/{split}/{name}")
            run = train_stage("train_joint", plan, training.objective, training.optimizer, training.device)
            fitted[split, name] = training.finish(run.result, run.seconds)
            report.setdefault(split, {})[name] = {
                "debias": run_params.debias,
                "train_interactions": int(train.nnz),
                **run.metrics(),
                "validation_ndcg@10": {str(step): round(score, 6) for step, score in run.result.validation},
                "best_step": run.result.best_step,
                **({"privacy": training.privacy()} if dp.enabled else {}),
            }
            title = f"train_joint: {split}_{name} (loss per step, validation NDCG@10)"
            plots[f"{split}_{name}.png"] = (run.result, title)
            best = max((s for _, s in run.result.validation), default=float("nan"))
            stopped = " (stopped early)" if run.result.stopped_early else ""
            print(
                f"train_joint [{split}] {name}: {len(run.result.losses)} of {run.steps} steps{stopped} in "
                f"{run.seconds:.1f}s, best valid NDCG@10 {best:.4f} at step {run.result.best_step}"
            )

    with atomic_path(OUTPUT) as tmp:
        for (split, name), model in fitted.items():
            (tmp / split).mkdir(parents=True, exist_ok=True)
            model.name = name
            meta = {"item_ids": items.ids.tolist(), "user_ids": split_data[split].users.ids.tolist(), "split": split}
            save_model(tmp / split, model, meta)
    save_loss_plots(PLOTS, plots)
    write_json(METRICS, {"splits": report})


if __name__ == "__main__":
    run_stage(main)
