"""What does X do to Y? Identification, estimation and refutation with DoWhy, on copies.

Every DoWhy call gets its own ``CausalModel`` over a fresh copy of the data: DoWhy's propensity
estimators write ``propensity_score`` and helper columns into the frame they are given and later
estimators and refuters silently reuse them (py-why/dowhy#1728).

Refutation verdicts, each documented where it is decided:
- ``random_common_cause``, ``data_subset``, ``bootstrap``: the re-estimate must not differ
  significantly from the estimate (DoWhy's p-value >= threshold).
- ``placebo_treatment``, ``dummy_outcome``: the effect of a permuted treatment / of an outcome
  with no cause must not be significant (p-value >= threshold): a real effect stands apart.
- ``unobserved_common_cause``: E-value sensitivity (VanderWeele & Ding 2017), which DoWhy
  computes on a regression estimate of the same question. It fails when an unobserved confounder
  no stronger than an observed common cause (DoWhy's observed-covariate E-value benchmark) could
  move the confidence interval to no effect. A hidden confounder that *inflates* an effect makes
  it look more robust: no sensitivity analysis can flag that one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from recause.config.causal import CausalParams, CausalQuestion, EstimatorName, RefuteParams, RefuterName

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
DEFAULT_STRATA = 50  # the stratification estimator's propensity strata (CausalParams.strata)
DOWHY_REFUTERS: dict[str, str] = {
    "placebo_treatment": "placebo_treatment_refuter",
    "random_common_cause": "random_common_cause",
    "data_subset": "data_subset_refuter",
    "bootstrap": "bootstrap_refuter",
    "dummy_outcome": "dummy_outcome_refuter",
}


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class Refutation:
    passed: bool
    p_value: float | None
    new_effect: float | None
    detail: dict[str, float] = field(default_factory=dict)


def question_frame(table: pd.DataFrame, question: CausalQuestion) -> pd.DataFrame:
    """A copy with the treatment as 0/1 (``>= threshold`` when one is given); ids and text dropped."""
    for column in (question.treatment, question.outcome, *question.effect_modifiers):
        if column not in table:
            raise ValueError(f"column '{column}' of the causal question is not in the table ({', '.join(table)})")
    frame = table.select_dtypes(include=["number", "bool"]).copy()
    treated = (
        frame[question.treatment] >= question.threshold if question.threshold is not None else frame[question.treatment]
    )
    values = set(pd.unique(treated.astype(float)))
    if not values <= {0.0, 1.0}:
        raise ValueError(f"treatment '{question.treatment}' is not binary: give the question a threshold")
    if len(values) < 2:
        raise ValueError(f"treatment '{question.treatment}' takes one value only: no effect can be estimated")
    frame[question.treatment] = treated.astype(int)
    return frame


def _model(frame: pd.DataFrame, graph: nx.DiGraph, question: CausalQuestion) -> Any:
    from dowhy import CausalModel

    nodes = [node for node in graph.nodes if node in frame]
    return CausalModel(
        data=frame.copy(),
        treatment=question.treatment,
        outcome=question.outcome,
        graph=nx.DiGraph(graph.subgraph(nodes)),
        effect_modifiers=list(question.effect_modifiers) or None,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    """DoWhy and statsmodels warn on every call (convergence, future changes): keep the logs readable."""
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def identify(frame: pd.DataFrame, graph: nx.DiGraph, question: CausalQuestion) -> tuple[Any, str]:
    """DoWhy's identified estimand and the strategy it found (backdoor, frontdoor or iv)."""
    estimand = _model(frame, graph, question).identify_effect(proceed_when_unidentifiable=True)
    # DoWhy builds adjustment sets from Python sets, whose order changes with each process's hash seed; the
    # estimators fit on the columns in that order, so without sorting the last digits change from run to run.
    for key, variables in (estimand.backdoor_variables or {}).items():
        estimand.backdoor_variables[key] = sorted(variables)
    for strategy in ("backdoor", "frontdoor", "iv"):
        expression = estimand.estimands.get(strategy)
        if expression is not None:
            return estimand, strategy
    raise ValueError(f"the effect of {question.treatment} on {question.outcome} is not identifiable in this graph")


def _estimate(  # noqa: ANN202
    frame: pd.DataFrame,
    graph: nx.DiGraph,
    question: CausalQuestion,
    estimand: Any,
    name: str,
    strata: int = DEFAULT_STRATA,
    **kw: Any,
):
    # Effect modifiers are the question's only: DoWhy would otherwise infer them from the graph (every other
    # cause of the outcome), which some estimators (doubly robust) refuse and the ATE does not need.
    if name == "propensity_score_stratification":
        # A fixed number of strata: DoWhy's "auto" starts at n/20 strata and halves them while too few hold 10
        # treated and 10 control units, each try a pandas groupby-filter (68 s of 113 on 50k planted rows),
        # and drops the thin strata it keeps (+23% off the planted truth there; 50 strata: +2%).
        method_params = kw.pop("method_params", None) or {}
        kw["method_params"] = {**method_params, "init_params": {"num_strata": strata}}
    return _model(frame, graph, question).estimate_effect(
        estimand, method_name=f"backdoor.{name}", effect_modifiers=list(question.effect_modifiers), **kw
    )


def estimate_effects(
    frame: pd.DataFrame,
    graph: nx.DiGraph,
    question: CausalQuestion,
    estimators: tuple[EstimatorName, ...],
    ci_simulations: int,
    seed: int,
    strata: int = DEFAULT_STRATA,
) -> dict[str, Estimate]:
    """The average treatment effect by each estimator, with a 95% interval from its bootstrap standard error
    (``ci_simulations`` draws, seeded); ``strata``: the stratification estimator's propensity strata."""
    with _quiet():
        estimand, _ = identify(frame, graph, question)
        results = {}
        for name in estimators:
            np.random.seed(seed)  # DoWhy's bootstrap draws from numpy's global generator
            found = _estimate(
                frame, graph, question, estimand, name, strata,
                confidence_intervals=True, method_params={"num_simulations": ci_simulations, "sample_size_fraction": 1},
            )  # fmt: skip
            # A normal interval from the bootstrap standard error: DoWhy's own interval is the "basic"
            # bootstrap, whose bounds with tens of draws are the two most extreme draws (too narrow, skewed).
            error = float(np.ravel(found.get_standard_error(method="bootstrap"))[0])
            value = float(found.value)
            results[name] = Estimate(name, value, (value - Z_95 * error, value + Z_95 * error))
        return results


def refute_effect(
    frame: pd.DataFrame,
    graph: nx.DiGraph,
    question: CausalQuestion,
    estimator: EstimatorName,
    params: RefuteParams,
    seed: int,
    strata: int = DEFAULT_STRATA,
) -> dict[str, Refutation]:
    """Every refuter in ``params`` against one estimator's estimate; see the module docstring for verdicts."""
    with _quiet():
        estimand, _ = identify(frame, graph, question)
        estimate = _estimate(frame, graph, question, estimand, estimator, strata)
        results: dict[str, Refutation] = {}
        for refuter in params.refuters:
            np.random.seed(seed)
            results[refuter] = _refute(frame, graph, question, estimand, estimate, refuter, params, seed)
        return results


def _refute(
    frame: pd.DataFrame,
    graph: nx.DiGraph,
    question: CausalQuestion,
    estimand: Any,
    estimate: Any,
    refuter: RefuterName,
    params: RefuteParams,
    seed: int,
) -> Refutation:
    if refuter == "unobserved_common_cause":
        return _sensitivity(frame, graph, question, estimand)
    options: dict[str, Any] = {"num_simulations": params.num_simulations, "random_seed": seed}
    if refuter == "placebo_treatment":
        options["placebo_type"] = "permute"
    if refuter == "data_subset":
        options["subset_fraction"] = params.subset_fraction
    found = _model(frame, graph, question).refute_estimate(
        estimand, estimate, method_name=DOWHY_REFUTERS[refuter], **options
    )
    found = found[0] if isinstance(found, list) else found  # dummy_outcome returns one per outcome
    result = found.refutation_result or {}
    p_value = None if result.get("p_value") is None else float(result["p_value"])
    new_effect = float(np.mean(found.new_effect))
    return Refutation(
        passed=p_value is not None and p_value >= params.p_value_threshold, p_value=p_value, new_effect=new_effect
    )


def _sensitivity(frame: pd.DataFrame, graph: nx.DiGraph, question: CausalQuestion, estimand: Any) -> Refutation:
    """E-value of the interval bound nearest to no effect against the observed covariates' E-values."""
    regression = _estimate(frame, graph, question, estimand, "linear_regression")
    analyzer = _model(frame, graph, question).refute_estimate(
        estimand,
        regression,
        method_name="add_unobserved_common_cause",
        simulation_method="e-value",
        plot_estimate=False,
    )
    stats = analyzer.stats
    bound = stats["evalue_lower_ci"] if stats["evalue_lower_ci"] is not None else stats["evalue_upper_ci"]
    benchmarks = analyzer.benchmarking_results
    strongest = (
        float(benchmarks["observed_covariate_e_value"].max()) if benchmarks is not None and len(benchmarks) else 1.0
    )
    detail = {"e_value_estimate": float(stats["evalue_estimate"]), "e_value_ci_bound": float(bound)}
    return Refutation(float(bound) > strongest, None, None, {**detail, "strongest_observed_e_value": strongest})


def answer_question(
    frame: pd.DataFrame, graph: nx.DiGraph, question: CausalQuestion, params: CausalParams
) -> dict[str, Any]:
    """One question's entry of ``metrics/causal.json``: the primary estimate, every estimator, refutations."""
    _, strategy = identify(frame, graph, question)
    estimates = estimate_effects(
        frame, graph, question, params.estimators, params.refute.num_simulations, params.seed, params.strata
    )
    primary = estimates[params.primary_estimator]
    refutations = refute_effect(
        frame, graph, question, params.primary_estimator, params.refute, params.seed, params.strata
    )
    return {
        "treatment": question.treatment,
        "outcome": question.outcome,
        "identification": strategy,
        "estimate": primary.value,
        "ci": list(primary.ci),
        "estimator": primary.estimator,
        "estimators": {name: {"estimate": e.value, "ci": list(e.ci)} for name, e in estimates.items()},
        **verdicts(refutations),
        "rows": int(len(frame)),
    }


def verdicts(refutations: dict[str, Refutation]) -> dict[str, Any]:
    """The refutations as ``metrics/causal.json`` holds them; a question is refuted when any refuter fails."""
    return {
        "refutations": {
            name: {"passed": r.passed, "p_value": r.p_value, "new_effect": r.new_effect, **r.detail}
            for name, r in refutations.items()
        },
        "refuted": not all(r.passed for r in refutations.values()),
    }
