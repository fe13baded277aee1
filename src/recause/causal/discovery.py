"""Causal discovery (causal-learn PC/GES/FCI) with background knowledge; ``graphs`` compares, refutes, draws.

Graphs are ``nx.DiGraph`` over every variable. Each edge carries ``origin`` ("learned" or "knowledge"),
``directed`` (bool; GML writes it as 1/0) and ``mark`` (the causal-learn edge as seen from its source, e.g.
"-->", "---", "o->", "<->"). An undirected or partially oriented adjacency is two opposite edges with
``directed=False``. ``origin="knowledge"`` means the edge is required, or its direction is the only one the
background knowledge allows (the reverse is forbidden); "learned" means adjacency and direction come from the data.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd

from recause.config.causal import DiscoveryMethod, DiscoveryParams

if TYPE_CHECKING:
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

MAX_DISCRETE_LEVELS = 25  # an integer-valued column with at most this many distinct values is discrete
CONTINUOUS_BINS = 5  # quantile bins for continuous columns when a discrete test (chisq/gsq) is used
_TAIL, _ARROW, _CIRCLE = -1, 1, 2  # causal-learn endpoint codes
_LEFT = {_TAIL: "-", _ARROW: "<", _CIRCLE: "o"}
_RIGHT = {_TAIL: "-", _ARROW: ">", _CIRCLE: "o"}
_MIRROR = str.maketrans("<>", "><")


@dataclass(frozen=True)
class Knowledge:
    """Which directed edges are forbidden or required, from tiers and explicit lists."""

    tier_of: dict[str, int] = field(default_factory=dict)
    forbidden: frozenset[tuple[str, str]] = frozenset()
    required: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_params(cls, params: DiscoveryParams, columns: list[str]) -> Knowledge:
        tier_of = {v: t for t, tier in enumerate(params.tiers) for v in tier if v in columns}
        known = set(columns)
        forbidden = frozenset((a, b) for a, b in params.forbidden if a in known and b in known)
        required = frozenset((a, b) for a, b in params.required if a in known and b in known)
        knowledge = cls(tier_of, forbidden, required)
        clash = [edge for edge in required if knowledge.is_forbidden(*edge)]
        if clash:
            raise ValueError(f"required edges are forbidden by tiers or the forbidden list: {sorted(clash)}")
        return knowledge

    def is_forbidden(self, a: str, b: str) -> bool:
        """True if a -> b may not appear: explicitly forbidden, or a sits in a later tier than b."""
        if (a, b) in self.forbidden:
            return True
        return a in self.tier_of and b in self.tier_of and self.tier_of[a] > self.tier_of[b]

    def for_causallearn(self) -> BackgroundKnowledge:
        from causallearn.graph.GraphNode import GraphNode
        from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

        bk = BackgroundKnowledge()
        for name, tier in self.tier_of.items():
            bk.add_node_to_tier(GraphNode(name), tier)  # GraphNode equality is by name
        for a, b in self.forbidden:
            bk.add_forbidden_by_node(GraphNode(a), GraphNode(b))
        for a, b in self.required:
            bk.add_required_by_node(GraphNode(a), GraphNode(b))
        return bk


def ci_data(table: pd.DataFrame, ci_test: str) -> tuple[str, np.ndarray]:
    """The CI test to run and the matrix to run it on.

    Rule for ``ci_test="auto"``: a column is discrete when all its values are integers and it has at most
    ``MAX_DISCRETE_LEVELS`` distinct values; if no column is discrete, Fisher-z on the raw values (linear-Gaussian
    assumption); otherwise the G-test (gsq) on integer codes, continuous columns cut into ``CONTINUOUS_BINS``
    quantile bins (ties kept together, so heavily tied columns get fewer bins).
    """
    discrete = [_is_discrete(table[c]) for c in table.columns]
    test = ("gsq" if any(discrete) else "fisherz") if ci_test == "auto" else ci_test
    if test == "fisherz":
        return test, table.to_numpy(dtype=np.float64)
    codes = [
        pd.factorize(table[c], sort=True)[0] if is_d else _quantile_codes(table[c].to_numpy(dtype=np.float64))
        for c, is_d in zip(table.columns, discrete, strict=True)
    ]
    return test, np.column_stack(codes).astype(np.int64)


def discover(table: pd.DataFrame, params: DiscoveryParams, method: DiscoveryMethod) -> nx.DiGraph:
    """Learn a graph over ``table``'s columns with PC, GES or FCI and make it obey the background knowledge.

    PC and FCI get the knowledge as causal-learn ``BackgroundKnowledge``. GES takes none, so its output is
    post-processed (as every method's is, which changes nothing PC/FCI already did): an adjacency forbidden both
    ways is dropped, a learned orientation that is forbidden is reversed, undirected edges that the knowledge
    orients are oriented, Meek rules 1-2 propagate those orientations, and required edges are added.
    GES scores with BIC when the CI rule picks Fisher-z, otherwise BDeu on the same discrete codes.
    """
    columns = [str(c) for c in table.columns]
    knowledge = Knowledge.from_params(params, columns)
    test, data = ci_data(table, params.ci_test)
    quiet = contextlib.redirect_stdout(io.StringIO())  # causal-learn prints progress for FCI's knowledge step
    with quiet:
        if method == "pc":
            from causallearn.search.ConstraintBased.PC import pc

            cg = pc(data, params.alpha, test, background_knowledge=knowledge.for_causallearn(), show_progress=False,
                    node_names=columns)  # fmt: skip
            matrix = cg.G.graph
        elif method == "fci":
            from causallearn.search.ConstraintBased.FCI import fci

            pag, _ = fci(data, test, params.alpha, background_knowledge=knowledge.for_causallearn(),
                         show_progress=False, node_names=columns)  # fmt: skip
            matrix = pag.graph
        elif method == "ges":
            from causallearn.search.ScoreBased.GES import ges

            score = "local_score_BIC" if test == "fisherz" else "local_score_BDeu"
            matrix = ges(data.astype(np.float64), score, node_names=columns)["G"].graph
        else:
            raise ValueError(f"unknown discovery method '{method}'")
    graph = _from_matrix(np.asarray(matrix), columns)
    graph.graph.update(method=method, ci_test=test)
    nx.set_node_attributes(graph, {c: knowledge.tier_of.get(c, -1) for c in columns}, "tier")  # -1: no tier
    return apply_knowledge(graph, knowledge)


def apply_knowledge(graph: nx.DiGraph, knowledge: Knowledge) -> nx.DiGraph:
    """A copy of ``graph`` that obeys ``knowledge`` (the post-processing described in ``discover``).

    FCI's partially oriented edges are not turned into directed ones: a circle at the end of a variable that
    may not cause the other becomes an arrowhead (e.g. ``a o-> b`` with a -> b forbidden becomes ``a <-> b``).
    """
    out = graph.copy()
    for a, b in sorted(adjacencies(out)):
        fab, fba = knowledge.is_forbidden(a, b), knowledge.is_forbidden(b, a)
        if fab and fba:
            _remove(out, a, b)
            continue
        if not (fab or fba):
            continue
        cause, effect = (b, a) if fab else (a, b)  # the only direction the knowledge allows
        edge = out.edges[a, b] if out.has_edge(a, b) else out.edges[b, a]
        if edge["directed"] or edge["mark"] == "---":
            _set_directed(out, cause, effect, "knowledge")
        elif out.edges[effect, cause]["mark"][0] == "o":
            _set_mark(out, effect, cause, "<" + out.edges[effect, cause]["mark"][1:])
    _meek(out)
    for a, b in sorted(knowledge.required):
        _set_directed(out, a, b, "knowledge")
    return out


def undirected_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """Adjacencies left without a direction, each once as (smaller name, larger name)."""
    return sorted({tuple(sorted((u, v))) for u, v, d in graph.edges(data=True) if not d["directed"]})


def _is_discrete(column: pd.Series) -> bool:
    values = column.to_numpy(dtype=np.float64)
    return bool(np.all(values == np.round(values))) and column.nunique() <= MAX_DISCRETE_LEVELS


def _quantile_codes(values: np.ndarray) -> np.ndarray:
    inner = np.unique(np.quantile(values, np.arange(1, CONTINUOUS_BINS) / CONTINUOUS_BINS))
    # side="right" puts a value equal to an edge in the upper bin, so a mass of ties (genre_overlap = 1)
    # still gets a bin of its own instead of swallowing everything below it
    return np.searchsorted(inner, values, side="right")


def _from_matrix(matrix: np.ndarray, columns: list[str]) -> nx.DiGraph:
    """causal-learn's endpoint matrix (``matrix[i, j]`` = mark at i on the i-j edge) as our DiGraph."""
    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    for i, j in itertools.combinations(range(len(columns)), 2):
        at_i, at_j = int(matrix[i, j]), int(matrix[j, i])
        if at_i == 0 and at_j == 0:
            continue
        a, b = columns[i], columns[j]
        if (at_i, at_j) == (_TAIL, _ARROW):
            graph.add_edge(a, b, origin="learned", directed=True, mark="-->")
        elif (at_i, at_j) == (_ARROW, _TAIL):
            graph.add_edge(b, a, origin="learned", directed=True, mark="-->")
        else:
            _set_mark(graph, a, b, f"{_LEFT[at_i]}-{_RIGHT[at_j]}", origin="learned")
    return graph


def adjacencies(graph: nx.DiGraph) -> set[tuple[str, str]]:
    return {tuple(sorted((u, v))) for u, v in graph.edges}


def _remove(graph: nx.DiGraph, a: str, b: str) -> None:
    graph.remove_edges_from([(a, b), (b, a)])  # missing edges are ignored


def _set_directed(graph: nx.DiGraph, a: str, b: str, origin: str) -> None:
    _remove(graph, a, b)
    graph.add_edge(a, b, origin=origin, directed=True, mark="-->")


def _set_mark(graph: nx.DiGraph, a: str, b: str, mark: str, origin: str = "knowledge") -> None:
    """A not fully directed edge, stored both ways; ``mark`` is read from a to b (``b``'s view mirrors it)."""
    graph.add_edge(a, b, origin=origin, directed=False, mark=mark)
    graph.add_edge(b, a, origin=origin, directed=False, mark=mark[::-1].translate(_MIRROR))


def _meek(graph: nx.DiGraph) -> None:
    """Meek rules 1 (no new v-structure) and 2 (no cycle) on plain undirected edges, in place."""

    def plain(u: str, v: str) -> bool:
        return graph.has_edge(u, v) and not graph.edges[u, v]["directed"] and graph.edges[u, v]["mark"] == "---"

    def points(u: str, v: str) -> bool:
        return graph.has_edge(u, v) and graph.edges[u, v]["directed"]

    changed = True
    while changed:
        changed = False
        for b, c in sorted((u, v) for u, v in graph.edges if plain(u, v)):
            if not plain(b, c):
                continue
            rule1 = any(points(a, b) and not graph.has_edge(a, c) and not graph.has_edge(c, a) for a in graph.nodes)
            rule2 = any(points(b, m) and points(m, c) for m in graph.nodes)
            if rule1 or rule2:
                _set_directed(graph, b, c, "knowledge")
                changed = True
