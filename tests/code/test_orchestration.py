"""The flow's stage graph is DVC's own graph of dvc.yaml; retries per stage tag; the workspace lock."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import networkx as nx
import pytest

from recause.config import RetryPolicy
from recause.errors import ParamsError
from recause.orchestration import StatusTracker, execution_order, pipeline_graph, retry_policy, stage_names
from recause.workspace import StageFailed, up_to_date_stages, workspace_lock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project_graph() -> nx.DiGraph:
    return pipeline_graph(ROOT)


def _dvc_yaml(folder: Path, text: str) -> Path:
    (folder / "dvc.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _dvc_dag_edges(root: Path) -> set[tuple[str, str]]:
    """`dvc dag --dot` of a workspace, as (upstream, downstream) edges."""
    dvc = Path(sys.executable).parent / "dvc"
    dot = subprocess.run([str(dvc), "dag", "--dot"], cwd=root, capture_output=True, text=True, check=True).stdout
    return set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))


def test_graph_equals_dvcs_own_dag(project_graph: nx.DiGraph) -> None:
    dvc_edges = _dvc_dag_edges(ROOT)
    assert dvc_edges and set(project_graph.edges) == dvc_edges


def test_stage_names_follow_declaration_order_where_the_dag_allows(project_graph: nx.DiGraph) -> None:
    names = stage_names(ROOT)
    declared = sorted(project_graph, key=lambda n: project_graph.nodes[n]["position"])
    assert sorted(names) == sorted(declared) and len(names) == len(set(names)) > 1
    position = {name: i for i, name in enumerate(names)}
    assert all(position[a] < position[b] for a, b in project_graph.edges)
    # a stage runs as early as declaration order allows: nothing declared before it could have run instead
    for i, name in enumerate(names):
        ready = [n for n in names[i:] if all(position[p] < i for p in project_graph.predecessors(n))]
        assert project_graph.nodes[name]["position"] == min(project_graph.nodes[n]["position"] for n in ready)


def test_targets_pull_exactly_their_ancestors(project_graph: nx.DiGraph) -> None:
    everything = execution_order(project_graph)
    for target in project_graph:
        order = execution_order(project_graph, [target])
        assert order[-1] == target and set(order) == nx.ancestors(project_graph, target) | {target}
        assert order == [n for n in everything if n in set(order)]
    assert execution_order(project_graph, ["split"]) == ["ingest", "validate", "split"]
    with pytest.raises(ParamsError, match="unknown stage\\(s\\) trian; dvc.yaml has "):
        execution_order(project_graph, ["trian"])


def test_graph_rules_for_directories_foreach_and_meta(tmp_path: Path) -> None:
    root = _dvc_yaml(
        tmp_path,
        """
        stages:
          b:
            foreach: [2, 1]
            do:
              cmd: x
              deps: [data/a/file.parquet]
              outs: [{"models/b${item}": {persist: true}}]
              meta: {tags: [gpu]}
          a: {cmd: x, outs: [data/a], meta: {report: reports/a.md}}
          c:
            cmd: x
            deps: [models]
            metrics: [{m.json: {cache: false}}]
            meta: {table: {path: m.json, key: c-metrics, levels: [model]}}
        """,
    )
    graph = pipeline_graph(root)
    assert set(graph.edges) == {("a", "b@2"), ("a", "b@1"), ("b@2", "c"), ("b@1", "c")}
    assert execution_order(graph) == ["a", "b@2", "b@1", "c"] and stage_names(root) == ["a", "b@2", "b@1", "c"]
    assert graph.nodes["b@1"]["tags"] == ("gpu",) and graph.nodes["a"]["report"] == "reports/a.md"
    assert graph.nodes["c"]["table"]["key"] == "c-metrics" and graph.nodes["c"]["tags"] == ()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=root, check=True)
    assert set(graph.edges) == _dvc_dag_edges(root)


def test_a_broken_dvc_yaml_is_a_one_line_params_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="dvc.yaml not found"):
        pipeline_graph(tmp_path)
    _dvc_yaml(tmp_path, "stages:\n  a: {cmd: x, deps: [y], outs: [x]}\n  b: {cmd: x, deps: [x], outs: [y]}\n")
    with pytest.raises(ParamsError, match="cycle"):
        pipeline_graph(tmp_path)
    _dvc_yaml(tmp_path, "stages:\n  a: {cmd: x, dep: [y]}\n")
    with pytest.raises(ParamsError, match="extra keys not allowed in stages -> a -> dep"):
        pipeline_graph(tmp_path)


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
                "import sys, time; from pathlib import Path; from recause.workspace import workspace_lock\n"
                "with workspace_lock(Path(sys.argv[1]), print):\n print('held', flush=True); time.sleep(2)"
            ),
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
    assert messages[1].startswith("workspace lock acquired after ")
    with workspace_lock(tmp_path, messages.append):  # released: the next run takes it at once
        pass
    assert len(messages) == 2


def test_up_to_date_stages_are_those_dvc_status_finds_unchanged(tmp_path: Path) -> None:
    dvc = str(Path(sys.executable).parent / "dvc")
    assert up_to_date_stages(tmp_path) == set()  # not a DVC repository: every stage goes through `dvc repro`
    _dvc_yaml(
        tmp_path,
        """
        stages:
          copy:
            cmd: cp source.txt copied.txt
            deps: [source.txt]
            outs: [copied.txt]
          count:
            cmd: wc -c copied.txt > count.txt
            deps: [copied.txt]
            outs: [count.txt]
        """,
    )
    (tmp_path / "source.txt").write_text("one\n")
    for command in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "repro", "-q"]):
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    assert up_to_date_stages(tmp_path) == {"copy", "count"}
    (tmp_path / "source.txt").write_text("two\n")
    assert up_to_date_stages(tmp_path) == {"count"}  # stale only once `copy` runs: the flow sends it to DVC
    (tmp_path / "count.txt").unlink()
    assert up_to_date_stages(tmp_path) == set()


def _chain(*stages: str) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_edges_from(zip(stages, stages[1:], strict=False))
    return graph


def test_status_tracker_vouches_for_unchanged_stages_until_something_upstream_runs() -> None:
    answers = iter([{"b", "c", "d"}, {"b", "c", "d"}, set()])  # successive `dvc status`: what is up to date
    status = StatusTracker(_chain("a", "b", "c", "d"), forced=set(), status=lambda: next(answers))
    assert not status.up_to_date("a")  # stale: DVC runs it
    status.ran("a")
    # `b` was unchanged before `a` ran; now it may not be: the status is taken again, and it still is
    assert status.up_to_date("b") and status.taken == 2
    assert status.up_to_date("c") and status.taken == 2  # nothing ran since: no new status
    status.ran("c")  # (forced, say) and its outputs changed: the status taken again finds `d` stale
    assert not status.up_to_date("d") and status.taken == 3


def test_status_tracker_never_vouches_for_a_forced_stage_and_asks_once_when_all_is_stale() -> None:
    calls = []
    status = StatusTracker(_chain("a", "b"), forced={"b"}, status=lambda: calls.append(1) or {"a", "b"})
    assert status.up_to_date("a") and not status.up_to_date("b")
    stale = StatusTracker(_chain("a", "b", "c"), forced=set(), status=set)
    for stage in "abc":
        assert not stale.up_to_date(stage)
        stale.ran(stage)
    assert stale.taken == 1 and len(calls) == 1
