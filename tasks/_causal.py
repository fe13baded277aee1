"""What the causal stages share: the questions' frames on the discovered graph, and the planted world."""

from __future__ import annotations

import networkx as nx
import pandas as pd

from recause.artifacts import read_parquet, require_file
from recause.causal.effects import question_frame
from recause.causal.graphs import as_dag
from recause.causal.semi_synthetic import interaction_grid, plant
from recause.causal.variables import sample_rows
from recause.config.causal import CausalParams, CausalQuestion
from recause.errors import InputDataError
from recause.layout import LAYOUT

VARIABLES = LAYOUT.causal_variables
GRAPH = LAYOUT.causal_graph
INTERACTIONS = LAYOUT.interactions
PLANTED_QUESTION = CausalQuestion(treatment="recommended", outcome="consumed")


def planted_graph(observed_confounder: bool) -> nx.DiGraph:
    """The true graph of the planted world, as the estimator is told it (the confounder only when observed)."""
    graph = nx.DiGraph([("preference", "recommended"), ("preference", "consumed"), ("recommended", "consumed")])
    if observed_confounder:
        graph.add_edges_from([("confounder", "recommended"), ("confounder", "consumed")])
    return graph


def planted_table(params: CausalParams) -> tuple[pd.DataFrame, float, nx.DiGraph]:
    """The planted world's sample for the estimator, its true ATE and the graph the estimator gets."""
    events = read_parquet(INTERACTIONS, "interactions")
    world = plant(interaction_grid(events), params.semi_synthetic, params.seed)
    table, true_ate = world.table(params.semi_synthetic.sample_rows, params.seed)
    return table, true_ate, planted_graph(world.confounder_observed)


def study_frames(params: CausalParams) -> dict[str, tuple[pd.DataFrame, nx.DiGraph, CausalQuestion]]:
    """Each question's (frame, graph, question) on the real data's discovered graph."""
    table = read_parquet(VARIABLES, "causal variables table")
    graph = as_dag(nx.read_gml(str(require_file(GRAPH, "causal graph"))), list(table.columns))
    sample = sample_rows(table, params.estimate_rows, params.seed)
    studies = {}
    for name, question in params.questions.items():
        try:
            studies[name] = (question_frame(sample, question), graph, question)
        except ValueError as error:
            raise InputDataError(f"causal question '{name}': {error}") from None
    return studies
