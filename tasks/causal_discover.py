"""Stage `causal_discover`: the variables table, causal graphs learned from it with background
knowledge, how well their implied independences hold, and discovery quality on a known truth."""

from __future__ import annotations

import time

import networkx as nx

from recause.artifacts import atomic_path, read_parquet, write_json, write_parquet
from recause.causal.discovery import discover, undirected_edges
from recause.causal.graphs import compare_graphs, draw_graph, linear_gaussian_data, random_tiered_dag, refute_graph
from recause.causal.variables import sample_rows, variables_table
from recause.config import load_params
from recause.errors import InputDataError
from recause.layout import LAYOUT
from tasks._stage import run_stage

VALIDATED = LAYOUT.validated
CAUSAL_DIR = LAYOUT.causal
VARIABLES = CAUSAL_DIR / "variables.parquet"
GRAPH = CAUSAL_DIR / "graph.gml"
METRICS = LAYOUT.metrics_file("causal_discovery")
PLOTS = LAYOUT.plot_dir("causal")


def _describe(graph: nx.DiGraph) -> dict:
    return {
        "edges": [
            {"cause": u, "effect": v, "origin": d["origin"]}
            for u, v, d in sorted(graph.edges(data=True))
            if d["directed"]
        ],
        "undirected": [list(pair) for pair in undirected_edges(graph)],
    }


def main() -> None:
    params = load_params().causal
    tables = {
        name: read_parquet(VALIDATED / f"{name}.parquet", f"{name} table")
        for name in ("interactions", "users", "items")
    }
    table = variables_table(tables["interactions"], tables["users"], tables["items"], params.variables)
    if len(table) < 100:
        raise InputDataError(f"only {len(table)} rows with every causal variable: too few to discover a graph")
    sample = sample_rows(table, params.variables.sample_rows, params.seed)
    columns = list(table.columns)
    truth = random_tiered_dag(columns, params.discovery, params.seed)
    simulated = linear_gaussian_data(truth, params.discovery.truth_rows, params.seed)

    results, graphs = {}, {}
    for method in params.discovery.methods:
        started = time.perf_counter()
        graph = discover(sample, params.discovery, method)
        seconds = time.perf_counter() - started
        graphs[method] = graph
        learned_on_truth = discover(simulated, params.discovery, method)
        results[method] = {
            **_describe(graph),
            "seconds": round(seconds, 3),
            "ci_test": graph.graph.get("ci_test"),
            "graph_refutation": {k: v for k, v in refute_graph(graph, sample).items() if k != "dag_edges"},
            "known_truth": compare_graphs(learned_on_truth, truth, params.discovery.random_baseline_draws, params.seed),
        }
    primary = params.discovery.methods[0]
    write_parquet(table, VARIABLES)
    with atomic_path(GRAPH) as tmp:
        nx.write_gml(graphs[primary], str(tmp))
    with atomic_path(PLOTS) as tmp:
        tmp.mkdir(parents=True)
        for method, graph in graphs.items():
            share = results[method]["graph_refutation"]["share_holding"]
            draw_graph(
                graph, f"{method.upper()} on {len(sample):,} ratings; {share:.0%} of implied independences hold"
            ).savefig(tmp / f"graph_{method}.png", dpi=110)
    write_json(
        METRICS,
        {
            "rows": len(table),
            "sample_rows": len(sample),
            "dropped_rows": table.attrs.get("dropped_rows", {}),
            "primary": primary,
            "truth_edges": [list(edge) for edge in sorted(truth.edges)],
            "methods": results,
        },
    )
    for method, result in results.items():
        quality = result["known_truth"]
        print(
            f"causal_discover [{method}]: {len(result['edges'])} directed + {len(result['undirected'])} undirected edges, "
            f"{result['graph_refutation']['share_holding']:.0%} of implied independences hold; known truth: "
            f"SHD {quality['shd']:.0f} (empty {quality['baseline_empty']['shd']:.0f}, "
            f"random {quality['baseline_random']['shd']:.1f}), skeleton F1 {quality['skeleton_f1']:.2f}"
        )


if __name__ == "__main__":
    run_stage(main)
