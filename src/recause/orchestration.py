"""The stage graph of a workspace, as DVC's own index builds it from dvc.yaml, so the DAG is written once.

DVC decides which stage depends on which (an output that is, contains or lies inside a dep) and
which are stale; this module adds what the flow needs on top: an execution order (declaration
order breaks ties), the stages a target needs, each stage's ``meta`` (tags, report, table) and the
retry policy of its tags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import networkx as nx

from recause.config.orchestration import RetryPolicy
from recause.errors import ParamsError
from recause.layout import LAYOUT


def _dvc_stages(dvc_yaml: Path) -> tuple[list, nx.DiGraph]:
    """DVC's stages of one dvc.yaml (declaration order; foreach/matrix expanded) and its graph.

    The Repo is opened over the folder itself, as a workspace that may not have run (nor have
    `.dvc/`) yet, and only this dvc.yaml is read: no walk of the workspace's data.
    """
    from dvc.exceptions import CyclicGraphError, DvcException
    from dvc.fs import LocalFileSystem
    from dvc.repo import Repo
    from dvc.repo.index import Index

    if not dvc_yaml.is_file():
        raise ParamsError(f"{dvc_yaml} not found")
    try:
        with Repo(str(dvc_yaml.parent), uninitialized=True, fs=LocalFileSystem()) as repo:
            index = Index.from_file(repo, str(dvc_yaml))
            return list(index.stages), index.graph
    except CyclicGraphError as error:
        raise ParamsError(f"{dvc_yaml.name}: stages form a cycle: {error}") from None
    except DvcException as error:
        raise ParamsError(f"{dvc_yaml.name}: {_details(error)}") from None


def _details(error: Exception) -> str:
    """DVC's message, with each schema violation it found (they are only in its pretty output)."""
    violations = getattr(getattr(error, "exc", None), "errors", None) or []
    where = [f"{v.error_message} in {' -> '.join(map(str, v.path))}" for v in violations]
    return "; ".join([str(error), *where])


def pipeline_graph(root: Path) -> nx.DiGraph:
    """The stages of ``<root>/dvc.yaml``, upstream -> downstream.

    Nodes carry ``position`` (declaration order), ``tags``, ``report`` (a Markdown file the stage
    writes, pass or fail) and ``table`` ({path, key, levels}: a JSON metrics file to publish), all
    from the stage's ``meta``.
    """
    stages, dvc_graph = _dvc_stages(LAYOUT.under(root).dvc_yaml)
    graph = nx.DiGraph()
    for position, stage in enumerate(stages):
        meta = stage.meta or {}
        graph.add_node(
            stage.name,
            position=position,
            tags=tuple(meta.get("tags") or ()),
            report=meta.get("report"),
            table=meta.get("table"),
        )
    # DVC's edges point from a stage to the stages it depends on
    graph.add_edges_from((upstream.name, downstream.name) for downstream, upstream in dvc_graph.edges)
    return graph


def execution_order(graph: nx.DiGraph, targets: list[str] | None = None) -> list[str]:
    """Topological order (ties kept in declaration order); with targets, only them and their ancestors."""
    if targets:
        unknown = [t for t in targets if t not in graph]
        if unknown:
            raise ParamsError(f"unknown stage(s) {', '.join(unknown)}; dvc.yaml has {', '.join(graph)}")
        keep = set(targets).union(*(nx.ancestors(graph, t) for t in targets))
        graph = graph.subgraph(keep)
    return list(nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["position"]))


def stage_names(root: Path) -> list[str]:
    """Every stage of the workspace's dvc.yaml, in the order the flow runs them."""
    return execution_order(pipeline_graph(root))


def retry_policy(tags: tuple[str, ...], policies: dict[str, RetryPolicy]) -> RetryPolicy:
    """The policy of the stage's first tag that has one, else the default policy."""
    for tag in tags:
        if tag in policies:
            return policies[tag]
    return policies["default"]


class StatusTracker:
    """The stages a flow may skip without starting DVC: those `dvc status` found unchanged, as long as no
    stage they depend on has run since that status was taken.

    When one has, the status is taken again, once for every stage after it: what ran may have left its
    outputs as they were (a resumed run, a forced one), and then DVC need not be started for the rest.
    A run where everything is stale takes the status once.
    """

    def __init__(self, graph: nx.DiGraph, forced: set[str], status: Callable[[], set[str]]) -> None:
        self.graph, self.forced, self.status = graph, forced, status
        self.unchanged = status() - forced
        self.ran_since: set[str] = set()
        self.taken = 1

    def up_to_date(self, stage: str) -> bool:
        """Whether ``stage`` is known to be up to date now (False: let `dvc repro` decide)."""
        if stage in self.unchanged and self.ran_since & nx.ancestors(self.graph, stage):
            self.unchanged, self.ran_since = self.status() - self.forced, set()
            self.taken += 1
        return stage in self.unchanged

    def ran(self, stage: str) -> None:
        """``stage`` ran (DVC found it stale and re-ran it)."""
        self.ran_since.add(stage)
