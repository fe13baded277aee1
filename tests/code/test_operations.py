"""The champion/challenger gate, the registry and params updates, on small real frames."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recause.config import apply_params_updates
from recause.config.retrain import GateParams
from recause.errors import ParamsError, RecauseError
from recause.operations.champion import Champion, Registry, decide, frozen_holdout, lock_outs, promoted, rolled_back
from recause.operations.retrain import nothing_new, uncached_outputs_kept
from recause.operations.store import fingerprint, materialise


def _champion(name: str) -> Champion:
    return Champion(fingerprint=name, accepted_at=name, model="ease", metric="ndcg@10", value=0.3, outs={}, dvc_lock="")


def test_the_gate_promotes_only_a_challenger_that_clears_the_minimum_improvement() -> None:
    gate = GateParams(min_improvement=0.01)
    assert decide(None, 0.1, 10, 50, gate).promote
    assert decide(0.30, 0.311, 10, 50, gate).promote
    rejected = decide(0.30, 0.305, 10, 50, gate)
    assert not rejected.promote and "0.3050 < champion 0.3000 + min_improvement 0.01" in rejected.reason
    assert not decide(0.30, float("nan"), 10, 50, gate).promote
    assert not decide(0.30, 0.9, 2, 5, GateParams(min_holdout_users=3)).promote


def test_gate_metric_must_name_a_cutoff() -> None:
    with pytest.raises(ValueError, match="METRIC@K"):
        GateParams(metric="ndcg")


def test_frozen_holdout_keeps_only_rows_both_models_held_out() -> None:
    old = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "2", "3"], "rating": [5, 4, 3]})
    new = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["2", "3", "9"], "rating": [4, 3, 5]})
    shared = frozen_holdout(old, new)
    assert list(zip(shared["user_id"], shared["item_id"], strict=True)) == [("a", "2"), ("b", "3")]
    assert len(shared.columns) == 3


def test_promotion_keeps_history_and_rollback_walks_it_back() -> None:
    registry = promoted(promoted(Registry(), _champion("one")), _champion("two"))
    assert registry.current.fingerprint == "two" and [c.fingerprint for c in registry.previous] == ["one"]
    back = rolled_back(registry)
    assert back.current.fingerprint == "one" and back.previous == []
    with pytest.raises(RecauseError, match="no predecessor"):
        rolled_back(back)
    with pytest.raises(RecauseError, match="no champion"):
        rolled_back(Registry())


def test_lock_outs_reads_every_stage_output_hash() -> None:
    lock = yaml.safe_dump(
        {
            "schema": "2.0",
            "stages": {
                "split": {"outs": [{"path": "data/processed", "md5": "abc.dir"}]},
                "evaluate": {"outs": [{"path": "metrics/ranking.json", "md5": "def"}]},
            },
        }
    )
    assert lock_outs(lock) == {"data/processed": "abc.dir", "metrics/ranking.json": "def"}


def test_fingerprint_changes_with_a_new_file_but_not_with_tool_files(tmp_path: Path) -> None:
    raw, incoming = tmp_path / "raw", tmp_path / "incoming"
    raw.mkdir(), incoming.mkdir()
    (raw / "ratings.csv").write_text("u,i\n1,2\n")
    (incoming / "README.md").write_text("drop files here")
    before = fingerprint([raw, incoming])
    (incoming / ".gitignore").write_text("*")
    assert fingerprint([raw, incoming]) == before
    (incoming / "week.csv").write_text("u,i\n3,4\n")
    assert fingerprint([raw, incoming]) != before


def test_run_settings_write_profile_overrides_and_seed_into_params(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "split:\n  seed: 1  # the split's seed\nmodels:\n  baselines:\n    ease:\n      reg_weight: 250.0\n"
    )
    profile = tmp_path / "tiny.yaml"
    profile.write_text("models:\n  baselines:\n    ease:\n      reg_weight: 10.0\n")
    assert apply_params_updates(params, profile, ["models.baselines.itemknn.k=5"], seed=7)
    written = yaml.safe_load(params.read_text())
    assert written["split"]["seed"] == 7 and written["finetune"]["seed"] == 7
    assert written["models"] == {"baselines": {"ease": {"reg_weight": 10.0}, "itemknn": {"k": 5}}}
    assert "# the split's seed" in params.read_text()
    assert not apply_params_updates(params, None, [], None)
    with pytest.raises(ParamsError, match="profile not found"):
        apply_params_updates(params, tmp_path / "missing.yaml")


def test_a_champions_output_comes_back_out_of_the_dvc_cache_by_its_hash(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "dvc.yaml").write_text(
        "stages:\n  make:\n"
        "    cmd: mkdir -p out/sub && echo a > out/a.txt && echo b > out/sub/b.txt && echo f > single.txt\n"
        "    outs: [out, single.txt]\n"
    )
    dvc = str(Path(sys.executable).parent / "dvc")
    for command in ([dvc, "init", "--no-scm", "-q"], [dvc, "repro", "-q"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    outs = lock_outs((root / "dvc.lock").read_text())
    shutil.rmtree(root / "out")  # gone from the workspace: only the cache holds them now
    (root / "single.txt").unlink()

    champion = tmp_path / "champion"
    materialise(root, outs["out"], champion / "out")
    materialise(root, outs["single.txt"], champion / "single.txt")
    assert sorted(p.relative_to(champion).as_posix() for p in champion.rglob("*") if p.is_file()) == [
        "out/a.txt",
        "out/sub/b.txt",
        "single.txt",
    ]
    assert (champion / "out/sub/b.txt").read_text() == "b\n" and (champion / "single.txt").read_text() == "f\n"
    with pytest.raises(RecauseError, match="0123456789abcdef0123456789abcdef.dir is not in the DVC cache"):
        materialise(root, "0123456789abcdef0123456789abcdef.dir", tmp_path / "missing")


def test_a_rejected_challengers_uncached_outputs_are_put_back(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/ranking.json").write_text("champion")
    with uncached_outputs_kept(tmp_path) as put_back:
        (tmp_path / "metrics/ranking.json").write_text("challenger")
        (tmp_path / "metrics/extra.json").write_text("challenger only")
        put_back()
    assert (tmp_path / "metrics/ranking.json").read_text() == "champion"
    assert not (tmp_path / "metrics/extra.json").exists()


def test_no_challenger_is_trained_on_the_inputs_the_champion_saw() -> None:
    champion = _champion("seen")
    assert "No new data since the champion accepted at seen" in nothing_new(champion, "seen", force=False)
    assert nothing_new(champion, "seen", force=True) is None
    assert nothing_new(champion, "new", force=False) is None and nothing_new(None, "seen", force=False) is None
