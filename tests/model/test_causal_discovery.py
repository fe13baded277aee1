"""Causal discovery: recovery of a known simulated DAG, background knowledge, the ML-100K variables, scoring."""

from __future__ import annotations

import io
import time

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from recause.causal.discovery import discover, undirected_edges
from recause.causal.graphs import compare_graphs, draw_graph, refute_graph, to_gml
from recause.causal.variables import sample_rows, variables_table
from recause.config.causal import DiscoveryParams, VariablesParams
from recause.data.schemas import Tables

# A linear-Gaussian DAG with two v-structures (A -> C <- B, C -> D <- E); A -> E is not identifiable from data
# alone (undirected in the CPDAG), the tiers below orient it.
TRUE_EDGES = {("A", "C"): 0.8, ("B", "C"): -0.7, ("A", "E"): 0.9, ("C", "D"): 0.6, ("E", "D"): 0.8, ("D", "F"): -0.7}
TRUE_TIERS = (("A", "B"), ("C", "E"), ("D", "F"))
COLUMNS = ["A", "B", "C", "D", "E", "F"]


def simulate(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for v in ("A", "B", "E", "C", "D", "F"):  # a topological order
        values[v] = sum(w * values[a] for (a, b), w in TRUE_EDGES.items() if b == v) + rng.normal(size=n)
    return pd.DataFrame(values)[COLUMNS]


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate()


@pytest.fixture(scope="module")
def truth() -> nx.DiGraph:
    return nx.DiGraph(list(TRUE_EDGES))


def claims(graph: nx.DiGraph, a: str, b: str) -> bool:
    """Does the graph allow a -> b: a directed a -> b, an undirected a - b, or a PAG edge without arrowhead at a."""
    return graph.has_edge(a, b) and graph.edges[a, b]["mark"][0] != "<"


def test_pc_recovers_the_simulated_skeleton_and_beats_the_baselines(simulated, truth):
    graph = discover(simulated, DiscoveryParams(tiers=()), "pc")
    scores = compare_graphs(graph, truth)
    assert graph.graph["ci_test"] == "fisherz"  # all columns continuous
    assert set(graph.nodes) == set(COLUMNS)
    assert scores["skeleton_f1"] >= 0.8
    assert scores["shd"] < scores["baseline_empty"]["shd"]
    assert scores["shd"] < scores["baseline_random"]["shd"]


def test_tiers_that_match_the_truth_orient_more_edges(simulated, truth):
    free = compare_graphs(discover(simulated, DiscoveryParams(tiers=()), "pc"), truth)
    tiered_graph = discover(simulated, DiscoveryParams(tiers=TRUE_TIERS), "pc")
    tiered = compare_graphs(tiered_graph, truth)
    tier = {v: t for t, vs in enumerate(TRUE_TIERS) for v in vs}
    assert all(tier[u] <= tier[v] for u, v in tiered_graph.edges if claims(tiered_graph, u, v))
    assert tiered["orientation_accuracy"] >= free["orientation_accuracy"]
    if free["orientation_accuracy"] < 1:
        assert tiered["orientation_accuracy"] > free["orientation_accuracy"]
    assert undirected_edges(tiered_graph) == []


def test_ges_beats_the_baselines(simulated, truth):
    scores = compare_graphs(discover(simulated, DiscoveryParams(tiers=()), "ges"), truth)
    assert scores["skeleton_f1"] >= 0.8
    assert scores["shd"] < min(scores["baseline_empty"]["shd"], scores["baseline_random"]["shd"])


@pytest.mark.parametrize("method", ["pc", "ges", "fci"])
@pytest.mark.parametrize(
    "knowledge",
    [
        # C -> D is true and allowed by the tiers; forbidding it (D -> C is against the tiers) removes it.
        {"tiers": TRUE_TIERS, "forbidden": (("C", "D"),), "required": (("B", "F"),)},
        # no tiers: forbidding true edges may reverse them; a false edge against the truth is required.
        {"tiers": (), "forbidden": (("A", "C"), ("E", "D")), "required": (("F", "A"),)},
    ],
)
def test_background_knowledge_is_obeyed(simulated, method, knowledge):
    graph = discover(simulated, DiscoveryParams(**knowledge), method)
    assert set(graph.nodes) == set(COLUMNS)
    for a, b in knowledge["forbidden"]:
        assert not claims(graph, a, b)
    for a, b in knowledge["required"]:
        assert graph.edges[a, b]["directed"] and graph.edges[a, b]["origin"] == "knowledge"
        assert not graph.has_edge(b, a)
    tier = {v: t for t, vs in enumerate(knowledge["tiers"]) for v in vs}
    for u, v in graph.edges:
        if u in tier and v in tier and claims(graph, u, v):
            assert tier[u] <= tier[v], (u, v, graph.edges[u, v])
    assert {d["origin"] for _, _, d in graph.edges(data=True)} <= {"learned", "knowledge"}


def test_compare_graphs_on_hand_built_graphs():
    truth = nx.DiGraph([("A", "B"), ("B", "C"), ("C", "D")])
    learned = nx.DiGraph()
    learned.add_nodes_from("ABCD")
    learned.add_edge("A", "B", directed=True)  # right
    learned.add_edge("C", "B", directed=True)  # reversed
    learned.add_edges_from([("A", "D"), ("D", "A")], directed=False)  # extra, undirected; C -> D missing
    scores = compare_graphs(learned, truth, draws=20)
    # adjacencies found {AB, BC, AD}, true {AB, BC, CD}: 2 hits -> precision 2/3, recall 2/3, F1 2/3;
    # SHD = 1 missing (CD) + 1 extra (AD) + 1 reversed (BC) = 3; orientation = (1 + 0) / 2 hits = 0.5
    assert scores["shd"] == 3
    assert scores["skeleton_precision"] == pytest.approx(2 / 3)
    assert scores["skeleton_recall"] == pytest.approx(2 / 3)
    assert scores["skeleton_f1"] == pytest.approx(2 / 3)
    assert scores["orientation_accuracy"] == pytest.approx(0.5)
    # the empty graph misses all 3 edges: SHD 3, precision/recall/F1 0 by convention
    assert scores["baseline_empty"]["shd"] == 3 and scores["baseline_empty"]["skeleton_f1"] == 0

    half = nx.DiGraph()
    half.add_edges_from([("A", "B"), ("B", "A")], directed=False)
    half.add_edge("B", "C", directed=True)
    scores = compare_graphs(half, truth, draws=20)
    # found {AB, BC}, both true: precision 1, recall 2/3, F1 = 2 * 1 * 2/3 / (5/3) = 0.8;
    # SHD = 1 missing (CD) + 1 undirected (AB) = 2; orientation = (0.5 + 1) / 2 = 0.75
    assert scores["shd"] == 2
    assert (scores["skeleton_precision"], scores["skeleton_f1"]) == pytest.approx((1.0, 0.8))
    assert scores["orientation_accuracy"] == pytest.approx(0.75)

    complete = nx.DiGraph([(a, b) for i, a in enumerate("ABCD") for b in "ABCD"[i + 1 :]])
    scores = compare_graphs(complete, truth, draws=5, seed=1)
    # a random graph with all 6 adjacencies has the same skeleton: precision 3/6, recall 1, 3 extra edges
    assert scores["baseline_random"]["skeleton_precision"] == pytest.approx(0.5)
    assert scores["baseline_random"]["skeleton_recall"] == pytest.approx(1.0)
    assert scores["baseline_random"]["shd"] >= 3
    assert compare_graphs(complete, truth, draws=5, seed=1) == scores  # seeded


def test_variables_genre_overlap_by_hand():
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4", "i5"],
            "title": ["a", "b", "c", "d", "e"],
            "year": pd.array([1990, 1991, 1992, 1993, None], dtype="Int32"),
            "genres": [
                np.array(g)
                for g in (
                    ["Action", "Comedy"],
                    ["Action", "Drama"],
                    ["Drama"],
                    ["Comedy", "Drama", "Horror"],
                    ["Drama"],
                )
            ],  # fmt: skip
            "text": ["", "", "", "", ""],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2"], "age": pd.array([17, 60], dtype="Int32"), "gender": ["F", "M"],
                          "occupation": ["writer", "artist"], "zip": ["", ""]})  # fmt: skip
    interactions = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u2"],
            "item_id": ["i4", "i2", "i3", "i1", "i5", "i3"],
            "rating": np.array([5, 4, 3, 2, 1, 5], dtype="float32"),
            "timestamp": np.array([3, 2, 2, 1, 1, 2], dtype="int64"),
        }
    )
    table = variables_table(interactions, users, items, VariablesParams(popularity_buckets=2))
    # u1 by time: i1 (nothing before) 0; i2 and i3 tie at t=2, only i1's Action/Comedy count: i2 1/2, i3 0;
    # i4 (Comedy, Drama, Horror) after all: 2/3. u2: i5 is dropped (no year) but its Drama still counts for i3: 1.
    assert table["genre_overlap"].tolist() == pytest.approx([2 / 3, 0.5, 0.0, 0.0, 1.0])
    assert table.attrs["dropped_rows"]["item_year"] == 1
    assert table["age_bucket"].tolist() == [0, 0, 0, 0, 5]
    assert table["gender"].tolist() == [1, 1, 1, 1, 0]
    assert table["occupation"].tolist() == [1, 1, 1, 1, 0]  # sorted: artist 0, writer 1


@pytest.fixture(scope="module")
def ml_table(ml100k: Tables) -> pd.DataFrame:
    return variables_table(ml100k.interactions, ml100k.users, ml100k.items, VariablesParams())


def test_ml100k_variables_table(ml100k: Tables, ml_table: pd.DataFrame):
    assert list(ml_table.columns) == list(VariablesParams().columns)
    assert all(pd.api.types.is_numeric_dtype(t) for t in ml_table.dtypes) and not ml_table.isna().any().any()
    years = ml100k.items.set_index("item_id")["year"]
    kept = ml100k.interactions["item_id"].map(years).notna().to_numpy()
    assert len(ml_table) == kept.sum() and ml_table.attrs["dropped_rows"]["item_year"] == (~kept).sum()
    assert ml_table["age_bucket"].between(0, len(VariablesParams().age_bucket_edges)).all()
    assert set(ml_table["gender"]) == {0, 1}
    assert ml_table["occupation"].between(0, len(ml_table.attrs["occupation_codes"]) - 1).all()
    assert ml_table["item_year"].between(1900, 2000).all()
    assert set(ml_table["popularity_bucket"]) == set(range(VariablesParams().popularity_buckets))
    assert ml_table["genre_overlap"].between(0, 1).all()
    assert set(ml_table["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # rows keep the interactions' order, so the first rating of each user can be found by timestamp
    events = ml100k.interactions.loc[kept].reset_index(drop=True)
    first = events["timestamp"] == events.groupby("user_id")["timestamp"].transform("min")
    assert (ml_table.loc[first.to_numpy(), "genre_overlap"] == 0).all()
    assert ml_table.loc[~first.to_numpy(), "genre_overlap"].mean() > 0.5


def test_ml100k_discovery_and_refutation(ml_table: pd.DataFrame, tmp_path):
    sample = sample_rows(ml_table, 5000, seed=0)
    assert len(sample) == 5000 and sample.equals(sample_rows(ml_table, 5000, seed=0))
    params = DiscoveryParams()
    for method in params.methods:
        start = time.perf_counter()
        graph = discover(sample, params, method)
        assert time.perf_counter() - start < 30  # a few seconds alone; slack for a busy machine
        assert set(graph.nodes) == set(sample.columns)
        assert graph.graph["ci_test"] == "gsq"  # discrete codes besides continuous genre_overlap and item_year
        assert not any(claims(graph, "rating", v) for v in sample.columns)  # rating is the last tier
        result = refute_graph(graph, sample)
        assert result["n_tested"] >= 1 and 0 <= result["share_holding"] <= 1
        nx.write_gml(graph, tmp_path / f"{method}.gml")  # what the pipeline does
        to_gml(graph, str(tmp_path / f"{method}_helper.gml"))
        back = nx.read_gml(tmp_path / f"{method}.gml")
        assert set(back.edges) == set(graph.edges)
        buffer = io.BytesIO()
        draw_graph(graph, f"{method} on ML-100K").savefig(buffer, format="png")
        assert buffer.getvalue()[:4] == b"\x89PNG"
