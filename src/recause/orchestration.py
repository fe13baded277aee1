"""The stage graph, derived from dvc.yaml so the DAG is written once.

A stage B depends on stage A when one of A's outputs (outs, metrics, plots) is, contains, or lies
inside one of B's deps -- the same rule DVC uses. The graph decides order; DVC decides staleness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import networkx as nx

from recause.config.orchestration import RetryPolicy
from recause.errors import ParamsError


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    tags: tuple[str, ...] = ()
    report: str | None = None  # a Markdown file the stage writes, pass or fail, for people to read
    table: dict[str, Any] | None = None  # {path, key, levels}: a JSON metrics file to publish as a table


def _paths(entries: list[Any] | None) -> tuple[str, ...]:
    """Paths of a dvc.yaml list whose items are 'path' or {'path': {options}}."""
    paths: list[str] = []
    for entry in entries or []:
        paths.extend([entry] if isinstance(entry, str) else list(entry))
    return tuple(paths)


def parse_stages(dvc_yaml: dict[str, Any]) -> dict[str, Stage]:
    """Stages of a parsed dvc.yaml, in declaration order."""
    stages: dict[str, Stage] = {}
    for name, spec in (dvc_yaml.get("stages") or {}).items():
        if "foreach" in spec or "matrix" in spec:
            raise ParamsError(f"dvc.yaml: stage '{name}' uses foreach/matrix, which the flow does not expand")
        outs = _paths(spec.get("outs")) + _paths(spec.get("metrics")) + _paths(spec.get("plots"))
        meta = spec.get("meta") or {}
        stages[name] = Stage(
            name=name,
            deps=_paths(spec.get("deps")),
            outs=outs,
            tags=tuple(meta.get("tags") or ()),
            report=meta.get("report"),
            table=meta.get("table"),
        )
    return stages


def _overlaps(a: str, b: str) -> bool:
    pa, pb = PurePosixPath(a), PurePosixPath(b)
    return pa == pb or pa in pb.parents or pb in pa.parents


def stage_graph(stages: dict[str, Stage]) -> nx.DiGraph:
    """Directed graph upstream -> downstream; raises ParamsError on a cycle."""
    graph = nx.DiGraph()
    for position, stage in enumerate(stages.values()):
        graph.add_node(stage.name, position=position, tags=stage.tags, report=stage.report, table=stage.table)
    for producer in stages.values():
        for consumer in stages.values():
            if producer.name != consumer.name and any(
                _overlaps(out, dep) for out in producer.outs for dep in consumer.deps
            ):
                graph.add_edge(producer.name, consumer.name)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(edge[0] for edge in nx.find_cycle(graph))
        raise ParamsError(f"dvc.yaml: stages form a cycle: {cycle}")
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


def retry_policy(tags: tuple[str, ...], policies: dict[str, RetryPolicy]) -> RetryPolicy:
    """The policy of the stage's first tag that has one, else the default policy."""
    for tag in tags:
        if tag in policies:
            return policies[tag]
    return policies["default"]
