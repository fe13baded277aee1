"""How cost grows with data: ingest -> validate -> split -> baselines -> joint (1 epoch) -> evaluate.

Synthetic MovieLens-like logs (``recause.data.synthetic``, what ``data.source: synthetic`` draws) at
100k, 1M and 10M interactions, each in its own scratch workspace. `generate` writes them as Parquet
files; `ingest` then reads them as a user's own files would be read (``data.source: files``), so its
time is what your data would cost, not the generator's. The next three stages are the pipeline's
own stage modules (what `dvc repro` runs); `joint` trains the joint model for one epoch on the train
part; `evaluate` ranks the full catalogue for a seeded sample of test users. Every stage runs in its own process, so its
wall time and peak memory (that process's max RSS, from wait4) are its alone.

  .venv/bin/python benchmarks/scale.py                       # 100k, 1M, 10M (about 10 minutes)
  .venv/bin/python benchmarks/scale.py --sizes 100000 1000000 --keep /tmp/scale

Prints one table: seconds and peak MB per stage and size, and the growth factor per 10x data.
Growth <= 10x is linear or better. Stages that are super-linear by nature are named in the table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from recause.environment import quiet_environment  # noqa: E402
from recause.layout import LAYOUT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)
STAGES = ("generate", "ingest", "validate", "split", "train_baselines", "joint", "evaluate")
# Why a stage may grow faster than the data, and what bounds it.
SUPER_LINEAR = {
    "generate": "draws are de-duplicated by sorting pair keys: n log n (about 1.2x linear per 10x)",
    "train_baselines": "ItemKNN's co-counts grow with sum(events per user ^ 2); EASE is cubic in items "
    "and skipped above models.baselines.ease.max_items",
}
MEMORY_BUDGET_MB = 8 * 1024
EVALUATED_USERS = 2_000
SEED = 0


def workspace_params(interactions: int) -> dict:
    """params.yaml for one size: synthetic logs; everything else as shipped."""
    raw = yaml.safe_load(WORKSPACE.params.read_text(encoding="utf-8"))
    raw["data"]["source"] = "files"
    raw["data"]["files"] = {
        table: {"path": f"generated/{table}.parquet"} for table in ("interactions", "items", "users")
    }
    raw["data"]["synthetic"]["interactions"] = interactions  # what `generate` draws
    raw["data"]["pseudonym_key_file"] = str(LAYOUT.state / "pseudonym.key")
    raw["validate"]["drift"]["enabled"] = False  # a fresh workspace has no snapshot to drift from
    return raw


def run_stage(stage: str, workspace: Path) -> tuple[float, float]:
    """Run one stage in its own process; (wall seconds, peak RSS in MB)."""
    if stage in ("generate", "joint", "evaluate"):
        command = [sys.executable, str(Path(__file__).resolve()), "--stage", stage]
    else:
        command = [sys.executable, "-m", f"tasks.{stage}"]
    env = {**quiet_environment(dict(os.environ)), "PYTHONPATH": str(ROOT)}  # stages run as `python -m tasks.X`
    log = workspace / "logs" / f"{stage}.log"
    log.parent.mkdir(exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=workspace, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{stage} failed in {workspace} (exit {process.returncode}):\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KB


def side_features(items, users) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """(item text features, item side features, user side features) as float32 matrices."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import MultiLabelBinarizer

    # The language model's embeddings are sized by the catalogue, not the logs (benchmarks/embed_throughput.py
    # times them); 64-d LSA of the item text stands in for them here.
    tfidf = TfidfVectorizer(min_df=1).fit_transform(items["text"].fillna(""))
    text = TruncatedSVD(64, random_state=SEED).fit_transform(tfidf).astype(np.float32)
    genres = MultiLabelBinarizer().fit_transform(items["genres"].map(list))
    year = items["year"].astype("float64").fillna(items["year"].astype("float64").median()).to_numpy()
    item_side = np.column_stack([genres, (year - year.mean()) / (year.std() + 1e-9)]).astype(np.float32)
    age = np.digitize(users["age"].astype("float64").fillna(30).to_numpy(), [18, 25, 35, 45, 56])
    one_hot = [np.eye(7)[age]]
    for column in ("gender", "occupation"):
        codes, _ = users[column].astype("string").fillna("?").factorize()
        one_hot.append(np.eye(codes.max() + 1)[codes])
    return text, item_side, np.column_stack(one_hot).astype(np.float32)


def generate_stage() -> None:
    """The synthetic logs of this workspace's params as Parquet files (explicit int32/float32/int64 dtypes)."""
    from recause.config import parse_params
    from recause.data.synthetic import SyntheticSpec, synthetic_tables

    params = parse_params(yaml.safe_load(LAYOUT.params.read_text(encoding="utf-8"))).data.synthetic
    tables = synthetic_tables(SyntheticSpec(**params.model_dump()))
    Path("generated").mkdir(exist_ok=True)
    for name in ("interactions", "items", "users"):
        getattr(tables, name).to_parquet(f"generated/{name}.parquet", index=False)
    print(
        f"generate: {len(tables.interactions):,} interactions, {len(tables.items):,} items, {len(tables.users):,} users"
    )


def joint_stage() -> None:
    """One epoch of the joint model on the train part; saved for `evaluate` (safetensors + JSON)."""
    import pandas as pd

    from recause.artifacts import save_model
    from recause.data.matrix import IdIndex, interaction_matrix
    from recause.models.joint import JointParams, train_joint
    from recause.models.registry import models

    parts = {p: pd.read_parquet(LAYOUT.processed / f"{p}.parquet") for p in ("train", "valid", "test")}
    items = pd.read_parquet(LAYOUT.items)
    users = pd.read_parquet(LAYOUT.users)
    item_index = IdIndex.from_values(items["item_id"])
    user_index = IdIndex.from_values(pd.concat([frame["user_id"] for frame in parts.values()]))
    text, item_side, user_side = side_features(
        items.set_index("item_id").loc[item_index.ids].reset_index(),
        users.set_index("user_id").reindex(user_index.ids).reset_index(),
    )
    train = interaction_matrix(parts["train"], user_index, item_index)
    params = JointParams(epochs=1.0, seed=SEED)
    model = train_joint(train, params, item_text=text, user_features=user_side, item_features=item_side, progress=False)
    folder = models()[model.name].location(LAYOUT, "main")  # where `evaluate` (load_saved) finds it
    folder.mkdir(parents=True, exist_ok=True)
    save_model(folder, model, {"user_ids": user_index.ids.tolist(), "item_ids": item_index.ids.tolist()})
    print(f"joint: one epoch over {train.nnz:,} train events")


def evaluate_stage() -> None:
    """NDCG@10 etc. on test for a seeded sample of users, full ranking, every model (RecBole's protocol)."""
    import pandas as pd

    from recause.config import EvaluateParams
    from recause.data.matrix import IdIndex, interaction_matrix
    from recause.evaluation.ranking import evaluate_ranking, tie_priority
    from recause.models.registry import load_saved

    saved = load_saved("main")
    joint, meta = saved.pop("joint")  # ranked by its user rows, the baselines by their history
    users, items = IdIndex(np.asarray(meta["user_ids"], dtype=str)), IdIndex(np.asarray(meta["item_ids"], dtype=str))
    parts = {p: pd.read_parquet(LAYOUT.processed / f"{p}.parquet") for p in ("train", "valid", "test")}
    tested = parts["test"]["user_id"].unique()
    sample = set(np.random.default_rng(SEED).choice(tested, size=min(EVALUATED_USERS, len(tested)), replace=False))
    matrices = {p: interaction_matrix(frame[frame["user_id"].isin(sample)], users, items) for p, frame in parts.items()}
    params = EvaluateParams()
    shared = {
        "history": matrices["train"],
        "excluded": matrices["train"] + matrices["valid"],
        "truth": matrices["test"],
        "ks": params.ks,
        "metrics": ("ndcg", "recall"),
        "priority": tie_priority(len(items), params.tie_seed),
        "batch_users": 512,
    }
    ndcg = {}
    for name, (model, _) in saved.items():
        ndcg[name] = evaluate_ranking(model.score, **shared)["ndcg@10"]
    found = evaluate_ranking(lambda rows, _history: joint.score_users(rows), by_user_rows=True, **shared)
    ndcg["joint"] = found["ndcg@10"]
    print(f"evaluate ({len(sample):,} users) ndcg@10: " + ", ".join(f"{m} {v:.4f}" for m, v in ndcg.items()))


def growth(values: list[float]) -> list[float]:
    return [later / max(earlier, 1e-9) for earlier, later in zip(values, values[1:], strict=False)]


def report(sizes: list[int], seconds: dict[str, list[float]], peak_mb: dict[str, list[float]]) -> bool:
    """Print the table; True when every stage meets the targets (or is named super-linear)."""
    label = [f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k" for n in sizes]
    head = " | ".join(f"{x:>8}" for x in label)
    ratios = " | ".join(f"{a}->{b:>4}" for a, b in zip(label, label[1:], strict=False))
    print(f"\n{'stage':<16} | seconds: {head} | growth/10x: {ratios} | peak MB: {head}")
    ok = True
    for stage in STAGES:
        factors = growth(seconds[stage])
        linear = all(f <= 10.0 for f in factors)
        ok &= linear or stage in SUPER_LINEAR
        flag = "" if linear else ("  super-linear by nature" if stage in SUPER_LINEAR else "  OVER 10x")
        print(
            f"{stage:<16} | seconds: {' | '.join(f'{s:8.1f}' for s in seconds[stage])} | growth/10x: "
            f"{' | '.join(f'{f:10.1f}' for f in factors)} | peak MB: {' | '.join(f'{m:8.0f}' for m in peak_mb[stage])}"
            f"{flag}"
        )
    biggest = max(max(v) for v in peak_mb.values())
    ok &= biggest <= MEMORY_BUDGET_MB
    print(f"\npeak memory of any stage at any size: {biggest:,.0f} MB (budget {MEMORY_BUDGET_MB:,} MB)")
    totals = [sum(seconds[s][i] for s in STAGES) for i in range(len(sizes))]
    print(
        f"whole run: {' | '.join(f'{t:.0f}s' for t in totals)}; growth/10x {', '.join(f'{g:.1f}' for g in growth(totals))}"
    )
    for stage, why in SUPER_LINEAR.items():
        print(f"  {stage}: {why}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--keep", type=Path, help="workspace root to keep (default: a temporary one, removed)")
    parser.add_argument("--stage", choices=("generate", "joint", "evaluate"), help=argparse.SUPPRESS)  # children
    args = parser.parse_args()
    if args.stage:
        {"generate": generate_stage, "joint": joint_stage, "evaluate": evaluate_stage}[args.stage]()
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="recause-scale-"))
    seconds: dict[str, list[float]] = {s: [] for s in STAGES}
    peak_mb: dict[str, list[float]] = {s: [] for s in STAGES}
    try:
        for size in args.sizes:
            workspace = root / f"n{size}"
            shutil.rmtree(workspace, ignore_errors=True)
            workspace.mkdir(parents=True)
            LAYOUT.under(workspace).params.write_text(yaml.safe_dump(workspace_params(size)), encoding="utf-8")
            for stage in STAGES:
                took, peak = run_stage(stage, workspace)
                seconds[stage].append(took)
                peak_mb[stage].append(peak)
                tail = (workspace / "logs" / f"{stage}.log").read_text().strip().splitlines()[-1:]
                print(f"[{size:>10,}] {stage:<16} {took:7.1f}s {peak:7.0f} MB  {tail[0][:90] if tail else ''}")
        ok = report(args.sizes, seconds, peak_mb)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
