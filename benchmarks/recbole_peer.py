"""The peer race: RecBole 1.2.1 against recause on the very same train/valid/test split.

RecBole reads the split files that recause's `split` stage exports
(data/processed/recbole/<name>/<name>.{train,valid,test}.inter, name = params.yaml split.recbole_dataset_name)
through `benchmark_filename`, so no RecBole filtering, remapping loss or re-splitting can creep in (the script
checks the interaction and test-user counts). Protocol = RecBole's ML-100K default: full ranking over all items,
test ranks exclude each user's train+valid items, early stopping on valid NDCG@10, @10 and @20 metrics.
recause's numbers are read from metrics/ranking.json (test split); the table goes to
benchmarks/results/recbole_peer.json.

RecBole needs numpy<2, pandas<3, setuptools<81 and pins ray/colorama, so it runs in its own venv
(benchmarks/.venv-recbole, rebuilt by this script in ~1.5 min unless --reuse-venv) with
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, one single-threaded subprocess per model. BPR, LightGCN, MultiVAE and RecVAE train for at most
300 epochs (RecBole's default) with early stopping; the whole race took ~6 min on 2 shared CPU cores.

With --tune each model tries its TUNING grid (RecBole's hyper-parameter tables, thinned) and keeps the setting
best on valid NDCG@10, as RecBole's tables are made; --jobs runs that many single-threaded fits at once.

Run: .venv/bin/python benchmarks/recbole_peer.py [--models Pop,EASE] [--epochs 100] [--tune --jobs 2] [--reuse-venv]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recause.layout import LAYOUT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)

from recause.config import load_params  # noqa: E402

DEFAULT_VENV = ROOT / "benchmarks" / ".venv-recbole"
VENV_MARKER = ".recbole-peer"  # written into venvs this script built: only those are ever deleted
TORCH = "torch==2.13.0"  # the CPU wheel on disk; must go in first, any other spec pulls GBs of CUDA wheels
RECBOLE_REQUIREMENTS = ["recbole==1.2.1", "numpy<2", "pandas<3", "setuptools<81", "scipy<1.13"]
RECBOLE_DIR = WORKSPACE.processed / "recbole"
RANKING = WORKSPACE.metrics_file("ranking")
RESULTS = ROOT / "benchmarks" / "results" / "recbole_peer.json"

MODELS = ["Pop", "ItemKNN", "BPR", "EASE", "LightGCN", "ADMMSLIM", "SLIMElastic", "MultiVAE", "RecVAE"]
# Trained models' epoch caps (early stopping on valid NDCG@10 after 10 evaluations without gain usually stops
# them sooner); Pop, ItemKNN and EASE are one-pass models in RecBole whatever the cap.
EPOCH_CAPS = {"BPR": 300, "LightGCN": 300, "MultiVAE": 300, "RecVAE": 300}
METRICS = ["ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10"]
# RecBole 1.2.1's published ML-100K NDCG@10 (on its own random 8:1:1 split, so only roughly comparable)
PUBLISHED = {"Pop": 0.1005, "ItemKNN": 0.2833, "BPR": 0.2928, "EASE": 0.3295}
# --tune: each model's grid, chosen on valid NDCG@10 (RecBole's own early-stopping metric), from RecBole's
# hyper-parameter search tables (recbole.io, "hyper-parameter search results"), thinned around the defaults.
TUNING: dict[str, dict[str, list]] = {
    "EASE": {"reg_weight": [100.0, 250.0, 500.0, 1000.0]},
    "ADMMSLIM": {"lambda1": [0.5, 5.0], "lambda2": [50.0, 1000.0], "alpha": [0.5, 1.0]},
    "SLIMElastic": {"alpha": [0.2, 0.5], "l1_ratio": [0.01, 0.02, 0.1]},
    "MultiVAE": {"learning_rate": [5e-4, 1e-3, 5e-3]},
    "RecVAE": {"learning_rate": [5e-4, 1e-3, 5e-3]},
    "ItemKNN": {"k": [50, 100, 200], "shrink": [0.0, 1.0]},
}
TARGET_RATIOS = (1.03, 1.05)  # issue 19: the champion against the best RecBole model (1.05 is the aim)
CHAMPION = WORKSPACE.champion
# One BLAS/OpenMP thread: RecBole's batches are tiny, and on a shared 2-core box two spinning threads made
# BPR epochs swing from 0.3 s to 10 s whenever another process was busy.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

RECBOLE_SIDE = r"""
import json, sys, time
started = time.perf_counter()
import scipy.sparse as sp
if not hasattr(sp.dok_matrix, "_update"):  # gone in SciPy >= 1.13, used by RecBole's graph models (RecBole#2034)
    sp.dok_matrix._update = lambda self, d: self._dict.update(d)
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed
import torch
torch.set_num_threads(1)
model_name, settings = sys.argv[1], json.loads(sys.argv[2])
config = Config(model=model_name, dataset=settings.pop("dataset"), config_dict=settings)
init_seed(config["seed"], config["reproducibility"])
init_logger(config)
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
loaded = time.perf_counter()
best_valid, valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
trained = time.perf_counter()
test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
print("RESULT " + json.dumps({
    "test": {k: float(v) for k, v in test.items()},
    "valid": {k: float(v) for k, v in valid.items()},
    "epochs_run": len(trainer.train_loss_dict),
    "users": dataset.user_num - 1, "items": dataset.item_num - 1,  # minus RecBole's padding id 0
    "interactions": {"train": len(train_data._dataset), "valid": len(valid_data._dataset),
                     "test": len(test_data._dataset)},
    "test_users": len(test_data.uid_list),
    "seconds": {"load": loaded - started, "train": trained - loaded, "total": time.perf_counter() - started},
}))
"""


def recbole_python(venv: Path, reuse: bool) -> Path:
    """The venv's python, (re)built unless ``reuse`` and it already holds the pinned RecBole stack."""
    python = venv / "bin" / "python"
    if reuse and python.exists():
        check = (
            "import recbole, torch; assert recbole.__version__ == '1.2.1' and torch.__version__.startswith('2.13.0')"
        )
        if subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
            return python
    if venv.exists():
        if not (venv / VENV_MARKER).exists():
            raise SystemExit(f"{venv} exists and was not built by this script: pass another --venv or --reuse-venv")
        shutil.rmtree(venv)
    print(f"building {venv} for RecBole 1.2.1 (~1 minute)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (venv / VENV_MARKER).write_text("built by benchmarks/recbole_peer.py\n", encoding="utf-8")
    pip = [str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, TORCH, *RECBOLE_REQUIREMENTS], check=True)
    return python


def recbole_settings(dataset: str, epochs: int, checkpoints: Path) -> dict:
    """RecBole's ML-100K default protocol on the pre-split files, with every filter off."""
    return {
        "dataset": dataset,
        "data_path": str(RECBOLE_DIR),
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "val_interval": None,
        "threshold": None,
        "rm_dup_inter": None,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        # split is ignored with benchmark_filename (the files are the split); the rest is the protocol
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        # metric_decimal_place stays RecBole's 4: early stopping compares the rounded valid scores (a tie resets
        # the patience), so 6 places stop BPR earlier (66 epochs, NDCG@10 0.283 instead of 80 epochs, 0.291)
        "epochs": epochs,
        "stopping_step": 10,
        "eval_step": 1,
        "seed": 2020,
        "reproducibility": True,
        "gpu_id": "",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(checkpoints),
    }


def run_recbole(python: Path, model: str, settings: dict, workdir: Path) -> dict:
    """One model in a RecBole subprocess (its logs land in ``workdir``); its result or an ``error``."""
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONWARNINGS": "ignore", **ONE_THREAD}
    log = workdir / f"{model}.log"
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as stderr:
        done = subprocess.run(
            [str(python), "-c", RECBOLE_SIDE, model, json.dumps(settings)],
            cwd=workdir,  # RecBole writes ./log and ./log_tensorboard
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {done.returncode}: {tail[0][:300]}", "log": str(log), "wall_s": wall}
    return {**json.loads(lines[-1][len("RESULT ") :]), "wall_s": wall}


def grid(model: str, tune: bool) -> list[dict]:
    """The settings to try for ``model``: RecBole's defaults alone, or every combination of its TUNING grid."""
    if not tune or model not in TUNING:
        return [{}]
    knobs = TUNING[model]
    return [dict(zip(knobs, values, strict=True)) for values in itertools.product(*knobs.values())]


def race(python: Path, models: list[str], base: dict[str, dict], tune: bool, jobs: int, tmp: Path) -> dict[str, dict]:
    """Every (model, setting) run, ``jobs`` at a time; per model the run best on valid NDCG@10 (ties: the first),
    with every setting's valid score under ``tuning``."""
    runs = [(model, setting) for model in models for setting in grid(model, tune)]

    def one(index: int) -> dict:
        model, setting = runs[index]
        workdir = tmp / f"{index:03d}_{model}"
        workdir.mkdir()
        print(f"RecBole {model} {setting or '(defaults)'} ...", file=sys.stderr, flush=True)
        return run_recbole(python, model, {**base[model], **setting, "checkpoint_dir": str(workdir / "saved")}, workdir)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, range(len(runs))))
    chosen: dict[str, dict] = {}
    for model in models:
        tried = [(setting, result) for (m, setting), result in zip(runs, results, strict=True) if m == model]
        ok = [(setting, result) for setting, result in tried if "error" not in result]
        if not ok:
            chosen[model] = tried[0][1]
            continue
        setting, best = max(ok, key=lambda pair: pair[1]["valid"].get("ndcg@10", -1.0))
        tuning = [{**s, "valid_ndcg@10": r["valid"].get("ndcg@10"), "wall_s": r["wall_s"]} for s, r in ok]
        chosen[model] = {**best, "setting": setting, "tuning": tuning, "wall_s": sum(r["wall_s"] for _, r in ok)}
    return chosen


def recause_metrics() -> dict[str, dict[str, float]]:
    """recause's test metrics per model from metrics/ranking.json ({} when it is not there yet)."""
    if not RANKING.exists():
        print(
            f"note: {RANKING.relative_to(ROOT)} not found (run `recause run`): recause rows left out", file=sys.stderr
        )
        return {}
    return json.loads(RANKING.read_text(encoding="utf-8")).get("test", {})


def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated RecBole models ({','.join(MODELS)})"
    )
    parser.add_argument("--epochs", type=int, help=f"epoch cap for the trained models (default {EPOCH_CAPS})")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="RecBole's own venv (built if needed)")
    parser.add_argument("--reuse-venv", action="store_true", help="keep --venv if it already holds RecBole 1.2.1")
    parser.add_argument("--tune", action="store_true", help="try each model's TUNING grid, keep the best on valid")
    parser.add_argument("--jobs", type=int, default=1, help="RecBole runs at a time (each is single-threaded)")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    params = load_params(WORKSPACE.params)
    name = params.split.recbole_dataset_name
    files = {part: RECBOLE_DIR / name / f"{name}.{part}.inter" for part in ("train", "valid", "test")}
    if missing := [str(path.relative_to(ROOT)) for path in files.values() if not path.exists()]:
        raise SystemExit(f"missing {', '.join(missing)}: run `recause run --stage split` first")
    lines = {part: path.read_text(encoding="utf-8").splitlines()[1:] for part, path in files.items()}  # no header
    rows_in_files = {part: len(rows) for part, rows in lines.items()}
    test_users = len({row.split("\t", 1)[0] for row in lines["test"]})

    python = recbole_python(args.venv.resolve(), args.reuse_venv)
    caps = {m: args.epochs or EPOCH_CAPS.get(m, 1) for m in models}
    race_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recbole_peer_") as tmp:
        base = {model: recbole_settings(name, caps[model], Path(tmp) / "saved") for model in models}
        theirs = race(python, models, base, args.tune, args.jobs, Path(tmp))
        for model, result in theirs.items():
            if "error" in result:
                print(f"  {model} failed: {result['error']}", file=sys.stderr)
                shutil.copy(result["log"], Path(tempfile.gettempdir()) / f"recbole_peer_{model}.log")
                result["log"] = str(Path(tempfile.gettempdir()) / f"recbole_peer_{model}.log")
                continue
            print(f"  {model}: {result['wall_s']:.0f} s, chose {result.get('setting') or 'defaults'}", file=sys.stderr)
            if result["interactions"] != rows_in_files or result["test_users"] != test_users:
                result["warning"] = (
                    f"RecBole saw {result['interactions']} interactions / {result['test_users']} test users, "
                    f"the files hold {rows_in_files} / {test_users}"
                )
    race_s = time.perf_counter() - race_started
    ours = recause_metrics()

    rows = [{"side": "RecBole 1.2.1", "model": m, **{k: r["test"].get(k) for k in METRICS}}
            for m, r in theirs.items() if "test" in r]  # fmt: skip
    rows += [{"side": "recause", "model": m, **{k: v.get(k) for k in METRICS}} for m, v in ours.items()]
    best_theirs = max((r for r in rows if r["side"] != "recause"), key=lambda r: r["ndcg@10"], default=None)
    best_ours = max((r for r in rows if r["side"] == "recause"), key=lambda r: r["ndcg@10"] or 0, default=None)
    ratio = best_ours["ndcg@10"] / best_theirs["ndcg@10"] if best_ours and best_theirs else None
    champion = json.loads(CHAMPION.read_text(encoding="utf-8"))["served"] if CHAMPION.exists() else None
    served = ours.get(champion, {}).get("ndcg@10") if champion else None
    targets = {
        f"champion ndcg@10 >= {r}x RecBole best": (
            None if served is None or best_theirs is None else served >= r * best_theirs["ndcg@10"]
        )
        for r in TARGET_RATIOS
    }

    print(
        f"\ndata {params.data.source}, split `{name}` ("
        + ", ".join(f"{part} {n:,}" for part, n in rows_in_files.items())
        + "), test part, full ranking"
    )
    header = ["side", "model", "NDCG@10", "Recall@10", "MRR@10", "Hit@10", "Precision@10", "NDCG@10 / RecBole best"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * 2 + "---:|" * 6)
    for row in rows:
        row["ndcg@10 / recbole best"] = (
            row["ndcg@10"] / best_theirs["ndcg@10"] if best_theirs and row["ndcg@10"] is not None else None
        )
        vs_best = "" if row["ndcg@10 / recbole best"] is None else f"{row['ndcg@10 / recbole best']:.3f}"
        print(f"| {row['side']} | {row['model']} | " + " | ".join(fmt(row[k]) for k in METRICS) + f" | {vs_best} |")
    print()
    for model, result in theirs.items():
        if "error" in result:
            print(f"RecBole {model}: FAILED ({result['error']}; log {result['log']})")
            continue
        published = f", published {PUBLISHED[model]:.4f}" if PUBLISHED.get(model) else ""
        tuned = f", chosen on valid: {result['setting']}" if result.get("setting") else ""
        print(
            f"RecBole {model}: {result['wall_s']:.0f} s wall, {result['epochs_run']} epoch(s) of cap {caps[model]}, "
            f"{result['test_users']} test users (recause: {test_users}){published}{tuned}"
            + (f"  WARNING {result['warning']}" if "warning" in result else "")
        )
    print(f"race wall time {race_s:.0f} s")
    if ratio is not None:
        print(
            f"best recause NDCG@10 ({best_ours['model']} {best_ours['ndcg@10']:.4f}) / best RecBole "
            f"({best_theirs['model']} {best_theirs['ndcg@10']:.4f}) = {ratio:.3f}"
        )
    for target, holds in targets.items():
        verdict = "n/a (no champion in models/champion.json yet)" if holds is None else ("holds" if holds else "MISSED")
        print(f"target {target}: {verdict}" + ("" if served is None else f" ({champion} {served:.4f})"))

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": name,
        "interactions": rows_in_files,
        "test_users": {"recause": test_users, **{m: r.get("test_users") for m, r in theirs.items()}},
        "rows": rows,
        "best": {
            "recause": best_ours and {"model": best_ours["model"], "ndcg@10": best_ours["ndcg@10"]},
            "recbole": best_theirs and {"model": best_theirs["model"], "ndcg@10": best_theirs["ndcg@10"]},
            "ratio": ratio,
        },
        "targets": targets,
        "recbole_runs": {m: {k: v for k, v in r.items() if k != "log"} for m, r in theirs.items()},
        "epoch_caps": caps,
        "tuned_on_valid": args.tune,
        "race_wall_s": race_s,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if any("error" in r for r in theirs.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
