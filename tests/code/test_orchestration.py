"""The flow's stage graph comes from dvc.yaml and must be DVC's own graph; retries per stage tag."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.workspace import StageFailed, workspace_lock
from recause.config import RetryPolicy
from recause.errors import ParamsError
from recause.orchestration import execution_order, parse_stages, retry_policy, stage_graph

ROOT = Path(__file__).resolve().parents[2]


def _project_graph():
    return stage_graph(parse_stages(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))))


def test_graph_equals_dvcs_own_dag() -> None:
    dvc = Path(sys.executable).parent / "dvc"
    dot = subprocess.run([str(dvc), "dag", "--dot"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    dvc_edges = set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))
    assert dvc_edges and set(_project_graph().edges) == dvc_edges


def test_execution_order_is_topological_and_targets_pull_their_ancestors() -> None:
    graph = _project_graph()
    assert execution_order(graph) == [
        "ingest", "validate", "split", "train_baselines", "pretrain", "finetune", "embed", "train_joint", "evaluate",
        "ingest_bandit", "ope", "causal_discover", "causal_estimate", "refute", "explain", "uplift",
    ]  # fmt: skip
    assert execution_order(graph, ["refute"]) == ["ingest", "validate", "causal_discover", "causal_estimate", "refute"]
    assert execution_order(graph, ["embed"]) == ["ingest", "validate", "split", "pretrain", "finetune", "embed"]
    assert execution_order(graph, ["split"]) == ["ingest", "validate", "split"]
    with pytest.raises(ParamsError, match="unknown stage\\(s\\) trian"):
        execution_order(graph, ["trian"])


def test_graph_rules_for_directories_cycles_and_foreach() -> None:
    stages = parse_stages(
        {
            "stages": {
                "b": {
                    "cmd": "x",
                    "deps": ["data/a/file.parquet"],
                    "outs": [{"models/b": {"persist": True}}],
                    "meta": {"tags": ["gpu"]},
                },
                "a": {"cmd": "x", "outs": ["data/a"]},
                "c": {"cmd": "x", "deps": ["models"], "metrics": [{"m.json": {"cache": False}}]},
            }
        }
    )
    graph = stage_graph(stages)
    assert set(graph.edges) == {("a", "b"), ("b", "c")}
    assert execution_order(graph) == ["a", "b", "c"] and stages["b"].tags == ("gpu",)
    cyclic = parse_stages(
        {"stages": {"a": {"cmd": "x", "deps": ["y"], "outs": ["x"]}, "b": {"cmd": "x", "deps": ["x"], "outs": ["y"]}}}
    )
    with pytest.raises(ParamsError, match="cycle"):
        stage_graph(cyclic)
    with pytest.raises(ParamsError, match="foreach/matrix"):
        parse_stages({"stages": {"a": {"foreach": [1, 2], "do": {"cmd": "x"}}}})


def test_retry_policy_follows_the_first_tag_that_has_one() -> None:
    policies = {"default": RetryPolicy(retries=0), "gpu": RetryPolicy(retries=3, retry_delay_s=1)}
    assert retry_policy(("gpu",), policies).retries == 3
    assert retry_policy(("io", "gpu"), policies).retries == 3
    assert retry_policy((), policies).retries == 0


def test_only_user_errors_are_permanent() -> None:
    assert not StageFailed("split", 2, "bad params").transient
    assert StageFailed("train", 1, "CUDA out of memory").transient
    assert StageFailed("train", -9, "killed").transient


def test_a_stage_killed_by_a_signal_says_so_whichever_shell_ran_it() -> None:
    under_bash, under_dash = StageFailed("finetune", -9, "x"), StageFailed("finetune", 137, "x")
    assert under_bash.signal is under_dash.signal is signal.SIGKILL
    assert "killed by SIGKILL, exit 137" in str(under_dash) and "killed by SIGKILL, exit -9" in str(under_bash)
    assert StageFailed("split", 2, "bad params").signal is None and "(exit 2)" in str(StageFailed("split", 2, "x"))


def test_a_second_holder_of_the_workspace_lock_waits_and_says_so(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
                "from flows.workspace import workspace_lock\n"
                "with workspace_lock(Path(sys.argv[2]), print):\n print('held', flush=True); time.sleep(2)"
            ),
            str(ROOT),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    messages: list[str] = []
    started = time.monotonic()
    with workspace_lock(tmp_path, messages.append):
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.5
    assert messages[0].startswith("waiting for the workspace lock") and f"pid {holder.pid}" in messages[0]
