"""Scheduled retraining: new data -> challenger -> gate against the champion -> promote or reject.

The steps are `recause.operations.retrain`'s; this module wires them to Prefect (the pipeline's
stages as Prefect task runs, the gate report as an artifact). `recause rollback` needs no flow: it calls
`recause.operations.retrain.rollback`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.pipeline import run_stages
from recause.config import load_params
from recause.layout import LAYOUT
from recause.operations.champion import gate_report
from recause.operations.retrain import (
    challenge,
    nothing_new,
    promote,
    raw_inputs,
    restore_outputs,
    uncached_outputs_kept,
)
from recause.operations.store import fingerprint, read_registry
from recause.orchestration import execution_order, pipeline_graph
from recause.workspace import workspace_lock


@flow(name="recause-retrain")
def retrain(workspace: str = ".", force: bool = False) -> dict[str, object] | State:
    """Retrain when the raw inputs changed; promote the challenger only if it beats the champion.

    Args:
        workspace: The recause project folder (holds dvc.yaml and params.yaml).
        force: Train a challenger even when no new data arrived (e.g. after a params change).
    """
    logger = get_run_logger()
    root = Path(workspace).resolve()
    with workspace_lock(root, logger.info), uncached_outputs_kept(root) as put_back_uncached:
        params = load_params(LAYOUT.under(root).params)
        registry = read_registry(root)
        champion = registry.current
        seen = fingerprint(raw_inputs(root, params.data))
        skipped = nothing_new(champion, seen, force)
        if skipped:
            logger.info(skipped)
            create_markdown_artifact(key="retrain-report", markdown=f"# Retrain: skipped\n\n{skipped}\n")
            return {"outcome": "no-new-data"}
        graph = pipeline_graph(root)
        outcome = run_stages(root, graph, execution_order(graph, params.retrain.stages), set())
        if isinstance(outcome, State):
            if champion is not None:
                restore_outputs(root, champion, logger.info)
                put_back_uncached()
            return outcome
        decision = challenge(root, champion, params.retrain.gate, params.evaluate.tie_seed)
        if decision.promote:
            promote(root, registry, params, decision, logger.info)
        else:
            assert champion is not None  # the first run is always promoted
            restore_outputs(root, champion, logger.info)
            put_back_uncached()
        report = gate_report(decision, params.retrain.gate, seen)
        logger.info(report.splitlines()[2])
        create_markdown_artifact(key="retrain-report", markdown=report, description="Champion/challenger gate")
        return {"outcome": "promoted" if decision.promote else "rejected", **decision.model_dump()}
