"""Where every artifact of a workspace lives: the one catalogue of paths (relative to the workspace root).

Stages run with the workspace as their working directory and use ``LAYOUT`` as it is; the CLI, the
flows and serving, which may run elsewhere, use ``Layout.under(root)``. dvc.yaml names the same paths,
and ``tests/code/test_stage_contracts.py`` checks that each stage's deps and outs cover the layout
entries its module uses.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Typed paths of one workspace; ``under(root)`` rebases all of them."""

    params: Path = Path("params.yaml")
    dvc_yaml: Path = Path("dvc.yaml")
    dvc_lock: Path = Path("dvc.lock")
    # data: raw -> interim -> validated -> processed (+ variants)
    raw: Path = Path("data/raw")
    wheels: Path = Path("data/external/wheels")
    incoming: Path = Path("data/incoming")
    exposure: Path = Path("data/exposure")  # what `recause api` showed, with propensities (bandit-log schema)
    interim: Path = Path("data/interim")
    validated: Path = Path("data/validated")
    interactions: Path = Path("data/validated/interactions.parquet")
    items: Path = Path("data/validated/items.parquet")
    users: Path = Path("data/validated/users.parquet")
    quarantine: Path = Path("data/quarantine")
    validation_snapshots: Path = Path("data/validation_snapshots")
    processed: Path = Path("data/processed")
    bandit: Path = Path("data/bandit")
    embeddings: Path = Path("data/embeddings/items.safetensors")
    causal: Path = Path("data/causal")
    causal_variables: Path = Path("data/causal/variables.parquet")
    causal_graph: Path = Path("data/causal/graph.gml")
    causal_estimates: Path = Path("data/causal/estimates.json")
    topk: Path = Path("data/recommendations/topk.parquet")
    explained_topk: Path = Path("data/recommendations/explained_topk.parquet")
    # models
    baselines: Path = Path("models/baselines")
    pretrained: Path = Path("models/pretrained")
    finetuned: Path = Path("models/finetuned")
    finetuned_encoder: Path = Path("models/finetuned/encoder")
    joint: Path = Path("models/joint")  # <split>/<model>.{safetensors,json}
    hybrid: Path = Path("models/hybrid")  # <split>/hybrid_ease.{safetensors,json}
    champion: Path = Path("models/champion.json")  # the model select_champion chose (a DVC output)
    accepted: Path = Path("models/accepted.json")  # the retrain registry: accepted runs, the current one first
    checkpoints: Path = Path("checkpoints")
    # metrics, plots and reports
    metrics: Path = Path("metrics")
    plots: Path = Path("metrics/plots")
    reports: Path = Path("reports")
    dvc_dir: Path = Path(".dvc")  # DVC's own folder: a workspace without it has not been `dvc init`-ed
    # the workspace's own state (git-ignored)
    state: Path = Path(".recause")
    workspace_lock: Path = Path(".recause/workspace.lock")
    workspace_lock_holder: Path = Path(".recause/workspace.lock.holder")  # who holds it, for a waiting run
    events_lock: Path = Path(".recause/events.lock")  # `recause api`'s workers write data/incoming/ one at a time

    def under(self, root: Path) -> Layout:
        """The same layout with every path below ``root``."""
        return Layout(**{f.name: Path(root) / getattr(self, f.name) for f in fields(self)})

    def split_dir(self, split: str) -> Path:
        """Parts of a split: ``main`` is the processed folder itself, a variant is a subfolder."""
        return self.processed if split == "main" else self.processed / split

    def metrics_file(self, name: str) -> Path:
        return self.metrics / f"{name}.json"

    def plot_dir(self, name: str) -> Path:
        return self.plots / name

    def report(self, name: str) -> Path:
        return self.reports / f"{name}.md"


LAYOUT = Layout()
