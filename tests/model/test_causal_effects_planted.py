"""DoWhy estimation and refutation on planted truth over the real MovieLens-100K users and items."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest
import scipy.sparse as sp

from recause.causal.effects import answer_question, question_frame
from recause.causal.semi_synthetic import interaction_grid, plant
from recause.config.causal import CausalParams, CausalQuestion, RefuteParams, SemiSyntheticParams
from recause.data.matrix import IdIndex, interaction_matrix
from recause.data.pseudonym import pseudonymise_ids
from recause.data.schemas import Tables

QUESTION = CausalQuestion(treatment="recommended", outcome="consumed")
TRUE_GRAPH = nx.DiGraph([("preference", "recommended"), ("preference", "consumed"), ("recommended", "consumed")])
# The pipeline's sample of rows, fewer estimators and 10 simulations (the defaults are 5 and 20).
FAST = CausalParams(
    estimators=("linear_regression", "propensity_score_weighting", "doubly_robust"),
    refute=RefuteParams(num_simulations=10),
)


@pytest.fixture(scope="module")
def interactions(ml100k: Tables) -> sp.csr_matrix:
    frame = ml100k.interactions
    return interaction_matrix(frame, IdIndex.from_values(frame["user_id"]), IdIndex.from_values(frame["item_id"]))


def _answer(interactions: sp.csr_matrix, world: SemiSyntheticParams) -> tuple[dict, float, pd.DataFrame]:
    table, true_ate = plant(interactions, world, seed=0).table(world.sample_rows, seed=0)
    before = table.copy()
    answer = answer_question(question_frame(table, QUESTION), TRUE_GRAPH, QUESTION, FAST)
    pd.testing.assert_frame_equal(table, before)  # DoWhy never writes into the caller's data (dowhy#1728)
    return answer, true_ate, table


@pytest.mark.slow
def test_the_planted_effect_is_recovered_and_survives_every_refuter(interactions: sp.csr_matrix) -> None:
    answer, true_ate, table = _answer(interactions, SemiSyntheticParams())
    naive = table.loc[table["recommended"], "consumed"].mean() - table.loc[~table["recommended"], "consumed"].mean()
    assert naive > 1.5 * true_ate  # the logging policy confounds the raw comparison...
    assert answer["estimate"] == pytest.approx(true_ate, rel=0.10)  # ...and adjustment recovers the truth
    assert answer["estimators"]["doubly_robust"]["estimate"] == pytest.approx(true_ate, rel=0.10)
    low, high = answer["ci"]
    assert low < answer["estimate"] < high and high - low < 0.5 * true_ate
    assert answer["identification"] == "backdoor" and answer["estimator"] == FAST.primary_estimator
    assert set(answer["refutations"]) == set(FAST.refute.refuters)
    assert all(r["passed"] for r in answer["refutations"].values()), answer["refutations"]
    assert not answer["refuted"]
    assert abs(answer["refutations"]["placebo_treatment"]["new_effect"]) < 0.1 * true_ate


@pytest.mark.slow
def test_a_hidden_confounder_that_masks_the_effect_is_flagged_by_the_sensitivity_refuter(
    interactions: sp.csr_matrix,
) -> None:
    masked = SemiSyntheticParams(confounder_on_treatment=1.0, confounder_on_outcome=-1.0, hide_confounder=True)
    answer, true_ate, _ = _answer(interactions, masked)
    assert answer["estimate"] < 0.6 * true_ate  # the estimator cannot see the confounder: biased
    sensitivity = answer["refutations"]["unobserved_common_cause"]
    assert not sensitivity["passed"] and answer["refuted"]
    assert sensitivity["e_value_ci_bound"] < sensitivity["strongest_observed_e_value"]


@pytest.mark.slow
def test_the_same_confounder_observed_is_adjusted_for(interactions: sp.csr_matrix) -> None:
    visible = SemiSyntheticParams(confounder_on_treatment=1.0, confounder_on_outcome=-1.0, hide_confounder=False)
    table, true_ate = plant(interactions, visible, seed=0).table(visible.sample_rows, seed=0)
    graph = nx.DiGraph(TRUE_GRAPH)
    graph.add_edges_from([("confounder", "recommended"), ("confounder", "consumed")])
    answer = answer_question(question_frame(table, QUESTION), graph, QUESTION, FAST)
    assert answer["estimate"] == pytest.approx(true_ate, rel=0.10)


@pytest.mark.slow
def test_with_no_planted_effect_the_interval_covers_zero(interactions: sp.csr_matrix) -> None:
    answer, true_ate, _ = _answer(interactions, SemiSyntheticParams(zero_effect=True))
    assert true_ate == 0.0
    low, high = answer["ci"]
    assert low <= 0.0 <= high


def test_questions_that_cannot_be_asked_are_refused() -> None:
    table = pd.DataFrame({"dose": [0.0, 1.5, 3.0, 2.0], "outcome": [1.0, 0.0, 1.0, 0.0], "name": list("abcd")})
    with pytest.raises(ValueError, match="not binary: give the question a threshold"):
        question_frame(table, CausalQuestion(treatment="dose", outcome="outcome"))
    with pytest.raises(ValueError, match="'missing' of the causal question is not in the table"):
        question_frame(table, CausalQuestion(treatment="missing", outcome="outcome"))
    with pytest.raises(ValueError, match="one value only"):
        question_frame(table, CausalQuestion(treatment="dose", outcome="outcome", threshold=10))
    frame = question_frame(table, CausalQuestion(treatment="dose", outcome="outcome", threshold=2.0))
    assert frame["dose"].tolist() == [0, 0, 1, 1] and "name" not in frame  # text columns never reach DoWhy


def test_the_planted_world_does_not_depend_on_the_pseudonym_key(ml100k: Tables) -> None:
    events = ml100k.interactions
    grids = []
    for key in (b"one key of sixteen bytes", b"another key, also long enough"):
        renamed = events.assign(user_id=pseudonymise_ids(events["user_id"], key))
        grids.append(interaction_grid(renamed))
    assert (grids[0] != grids[1]).nnz == 0 and grids[0].nnz == len(events.drop_duplicates(["user_id", "item_id"]))
    worlds = [plant(grid, SemiSyntheticParams(), seed=0) for grid in grids]
    assert worlds[0].ate == worlds[1].ate and (worlds[0].treatment == worlds[1].treatment).all()
