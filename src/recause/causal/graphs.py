"""Using a discovered graph: compare it with a known truth, refute it against data, draw it, make it a DAG."""

from __future__ import annotations

import itertools
import logging

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from recause.causal.discovery import adjacencies, undirected_edges
from recause.config.causal import DiscoveryParams


def compare_graphs(learned: nx.DiGraph, truth: nx.DiGraph, draws: int = 100, seed: int = 0) -> dict:
    """Scores of ``learned`` against a true DAG, with the same scores for the empty graph and random graphs.

    Skeleton precision/recall/F1 are over adjacencies (0 when undefined, e.g. the empty graph's precision).
    Orientation accuracy is over correctly found adjacencies: 1 when the direction matches the truth, 0.5 when
    the learned edge is undirected (half: it does not commit to the wrong direction), 0 when reversed.
    SHD = missing adjacencies + extra adjacencies + found adjacencies whose orientation differs from the truth
    (reversed or undirected each count 1). The random baseline draws, ``draws`` times, as many adjacencies as
    ``learned`` has, uniformly among node pairs, each with a random direction, and averages the scores.
    """
    nodes = sorted(set(learned.nodes) | set(truth.nodes))
    scores = _score(learned, truth)
    rng = np.random.default_rng(seed)
    pairs = list(itertools.combinations(nodes, 2))
    k = len(adjacencies(learned))
    randoms = []
    for _ in range(draws):
        g = nx.DiGraph()
        g.add_nodes_from(nodes)
        for i in rng.choice(len(pairs), size=k, replace=False):
            u, v = pairs[i] if rng.random() < 0.5 else pairs[i][::-1]
            g.add_edge(u, v, directed=True, origin="learned", mark="-->")
        randoms.append(_score(g, truth))
    empty = nx.DiGraph()
    empty.add_nodes_from(nodes)
    scores["baseline_empty"] = _score(empty, truth)
    scores["baseline_random"] = {key: float(np.mean([r[key] for r in randoms])) for key in randoms[0]}
    return scores


def refute_graph(graph: nx.DiGraph, table: pd.DataFrame, max_conditioning: int | None = None) -> dict:
    """Test the conditional independences the graph implies, with DoWhy's ``CausalModel.refute_graph``.

    For every conditioning-set size k (0 .. ``max_conditioning``, default all), DoWhy lists the pairs d-separated
    given k other nodes and tests each at p >= 0.05. Undirected edges are oriented along a topological order of
    the directed part (ties broken by column order), so the DAG is deterministic and acyclic (a directed cycle
    raises ``nx.NetworkXUnfeasible``). All columns are
    passed as floats so that DoWhy uses its partial-correlation test: its discrete test (``conditional_MI``)
    in 0.14 returns the same value whatever the data, so every discrete independence would "hold".
    """
    from dowhy import CausalModel

    columns = [str(c) for c in table.columns]
    dag = as_dag(graph, columns)
    data = table[columns].astype(np.float64).copy()
    treatment, outcome = next(iter(dag.edges), (columns[0], columns[1]))
    max_k = len(columns) - 2 if max_conditioning is None else min(max_conditioning, len(columns) - 2)
    implied = holding = 0
    by_k = {}
    dowhy_logger = logging.getLogger("dowhy")
    level = dowhy_logger.level
    dowhy_logger.setLevel(logging.ERROR)  # DoWhy logs every implied independence at INFO and warns on models
    try:
        model = CausalModel(data=data, treatment=treatment, outcome=outcome, graph=dag)
        for k in range(max_k + 1):
            result = model.refute_graph(k=k)
            n, ok = result.number_of_constraints_model, result.number_of_constraints_satisfied
            by_k[k] = {"implied": n, "holding": ok}
            implied, holding = implied + n, holding + ok
    finally:
        dowhy_logger.setLevel(level)
    return {
        "n_tested": implied,
        "n_holding": holding,
        "share_holding": holding / implied if implied else float("nan"),
        "passed": holding == implied,
        "by_conditioning_size": by_k,
        "dag_edges": sorted(dag.edges),
    }


def draw_graph(graph: nx.DiGraph, title: str) -> Figure:
    """A figure of the graph: learned edges solid blue, knowledge edges dashed orange, undirected without arrows.

    Nodes sit on a circle, ordered by tier (node attribute ``tier``) then by column order, so causes come first
    clockwise from the top and no straight edge passes through a node it does not touch.
    """
    fig = Figure(figsize=(8.5, 7))
    ax = fig.add_subplot()
    tiers = nx.get_node_attributes(graph, "tier")
    index = {n: i for i, n in enumerate(graph.nodes)}
    nodes = sorted(graph.nodes, key=lambda n: (tiers.get(n, -1) < 0, tiers.get(n, -1), index[n]))
    pos = {n: (np.sin(2 * np.pi * i / len(nodes)), np.cos(2 * np.pi * i / len(nodes))) for i, n in enumerate(nodes)}
    size = 3000
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color="#eeeeee", edgecolors="#444444", node_size=size)
    nx.draw_networkx_labels(graph, pos, labels={n: str(n).replace("_", "\n") for n in nodes}, ax=ax, font_size=8)
    style = {"learned": ("#1f5fa8", "solid"), "knowledge": ("#d9730d", "dashed")}
    undirected = set(undirected_edges(graph))
    for origin, (colour, line) in style.items():
        directed = [(u, v) for u, v, d in graph.edges(data=True) if d["origin"] == origin and d["directed"]]
        loose = [(u, v) for u, v in undirected if graph.edges[u, v]["origin"] == origin]
        for edges, arrow in ((directed, "-|>"), (loose, "-")):
            nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax, edge_color=colour, style=line, width=1.8,
                                   arrows=True, arrowstyle=arrow, arrowsize=18, node_size=size,
                                   connectionstyle="arc3")  # fmt: skip
    handles = [
        Line2D([], [], color=style["learned"][0], linestyle="-", label="learned from data"),
        Line2D([], [], color=style["knowledge"][0], linestyle="--", label="from background knowledge"),
        Line2D([], [], color="#666666", label="no arrow: direction not identified"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8, frameon=False)
    ax.set_title(title)
    ax.set_axis_off()
    ax.margins(0.15)
    fig.tight_layout()
    return fig


def to_gml(graph: nx.DiGraph, path: str) -> None:
    """Write the graph as GML: every attribute is a str or int (``directed`` is written 1/0, read back as int)."""
    nx.write_gml(graph, path)


def as_dag(graph: nx.DiGraph, columns: list[str]) -> nx.DiGraph:
    """The directed part plus every undirected edge oriented along its topological order (ties: column order)."""
    directed = nx.DiGraph()
    directed.add_nodes_from(columns)
    directed.add_edges_from((u, v) for u, v, d in graph.edges(data=True) if d["directed"])
    rank = {c: i for i, c in enumerate(columns)}
    order = {n: i for i, n in enumerate(nx.lexicographical_topological_sort(directed, key=rank.get))}
    directed.add_edges_from((u, v) if order[u] < order[v] else (v, u) for u, v in undirected_edges(graph))
    return directed


def _score(learned: nx.DiGraph, truth: nx.DiGraph) -> dict:
    found, true = adjacencies(learned), adjacencies(truth)
    hits = found & true
    right = reversed_ = half = 0.0
    for a, b in hits:
        if learned.has_edge(a, b) and learned.has_edge(b, a):
            half += 1  # undirected (the truth is a DAG)
        elif learned.has_edge(a, b) == truth.has_edge(a, b):
            right += 1
        else:
            reversed_ += 1
    precision = len(hits) / len(found) if found else 0.0
    recall = len(hits) / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "shd": float(len(true - hits) + len(found - hits) + reversed_ + half),
        "skeleton_precision": precision,
        "skeleton_recall": recall,
        "skeleton_f1": f1,
        "orientation_accuracy": (right + 0.5 * half) / len(hits) if hits else 0.0,
        "n_edges": float(len(found)),
        "missing": float(len(true - hits)),
        "extra": float(len(found - hits)),
        "reversed": reversed_,
        "undirected": half,
    }


def random_tiered_dag(columns: list[str], params: DiscoveryParams, seed: int) -> nx.DiGraph:
    """A seeded random DAG over ``columns`` that the background knowledge in ``params`` is true of: no edge
    into an earlier tier (nor, within a tier, against column order), no forbidden edge, every required one."""
    tiers = params.tiers
    rank = {column: (next((t for t, tier in enumerate(tiers) if column in tier), len(tiers)), i)
            for i, column in enumerate(columns)}  # fmt: skip
    ordered = sorted(columns, key=rank.__getitem__)
    forbidden = set(params.forbidden)
    rng = np.random.default_rng(seed)
    dag = nx.DiGraph()
    dag.add_nodes_from(ordered)
    for i, cause in enumerate(ordered):
        for effect in ordered[i + 1 :]:
            drawn = rng.random() < params.truth_edge_probability
            if (drawn and (cause, effect) not in forbidden) or (cause, effect) in params.required:
                dag.add_edge(cause, effect)
    return dag


def linear_gaussian_data(dag: nx.DiGraph, rows: int, seed: int) -> pd.DataFrame:
    """Rows from a linear-Gaussian SEM on ``dag``: each node = sum of weight x parent + N(0, 1) noise,
    weights drawn away from zero (|w| in [0.5, 1.5]) so every edge is detectable."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for node in nx.topological_sort(dag):
        value = rng.standard_normal(rows)
        for parent in dag.predecessors(node):
            value += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * data[parent]
        data[node] = value
    return pd.DataFrame({node: data[node] for node in dag.nodes})
