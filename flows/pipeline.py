"""The pipeline flow: one Prefect task per dvc.yaml stage, in DAG order; DVC decides what is stale."""

from __future__ import annotations

import json
import time
from pathlib import Path

import networkx as nx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed, State

from recause.config import apply_params_updates, load_params
from recause.evaluation.report import nested_rows
from recause.layout import LAYOUT
from recause.orchestration import StatusTracker, execution_order, pipeline_graph, retry_policy
from recause.workspace import StageFailed, repro_stage, up_to_date_stages, workspace_lock


def retry_if_transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's callback signature
    """Retry policy applies to transient failures only; a stage's user error (exit 2) fails at once."""
    error = state.data
    return not (isinstance(error, StageFailed) and not error.transient)


@task(name="dvc-stage")
def run_dvc_stage(root: str, stage: str, force: bool, up_to_date: bool = False) -> str | State:
    """`dvc repro --single-item STAGE`; returns 'ran' or 'skipped'.

    ``up_to_date``: a `dvc status` taken since the last of the stages it depends on ran found it
    unchanged, so it is skipped without starting DVC (the task run still shows it).
    A failing stage becomes a Failed state carrying its one-line reason (no traceback: the stage
    already said what is wrong); `retry_if_transient` reads it to decide whether to retry.
    """
    logger = get_run_logger()
    if up_to_date and not force:
        logger.info(f"Stage '{stage}' is up to date (dvc status), skipping")
        return "skipped"
    try:
        return "ran" if repro_stage(Path(root), stage, force, logger.info) else "skipped"
    except StageFailed as error:
        return Failed(message=str(error), data=error)


@task(name="publish-metrics-table")
def publish_metrics_table(root: str, stage: str, table: dict) -> None:
    """Publish a stage's JSON metrics (dvc.yaml meta.table) as a keyed table artifact."""
    path = Path(root) / table["path"]
    if path.exists():
        rows = nested_rows(json.loads(path.read_text(encoding="utf-8")), table.get("levels", []))
        create_table_artifact(key=table["key"], table=rows, description=f"{table['path']} from stage '{stage}'")


@task(name="publish-stage-report")
def publish_stage_report(root: str, stage: str, report: str) -> None:
    """Publish a stage's Markdown report (pass or fail) as the keyed artifact '<stage>-report'."""
    path = Path(root) / report
    if path.exists():
        create_markdown_artifact(
            key=f"{stage.replace('_', '-')}-report",
            markdown=path.read_text(encoding="utf-8"),
            description=f"Report of stage '{stage}'",
        )


def run_stages(root: Path, graph: nx.DiGraph, order: list[str], forced: set[str]) -> dict[str, str] | State:
    """Run ``order`` (stages of ``graph``) as one Prefect task each, with the retry policy of its tag;
    stop at a failure.

    The caller holds the workspace lock. Reports and metrics tables are published as they appear. A
    `dvc status` up front spares the stages it finds unchanged a `dvc repro` of their own (seconds each;
    see ``StatusTracker``).
    """
    logger = get_run_logger()
    params = load_params(LAYOUT.under(root).params)
    outcomes: dict[str, str] = {}
    started = time.perf_counter()
    status = StatusTracker(graph, forced, lambda: up_to_date_stages(root))
    for stage in order:
        policy = retry_policy(graph.nodes[stage]["tags"], params.orchestration.retries)
        stage_task = run_dvc_stage.with_options(
            task_run_name=stage,
            retries=policy.retries,
            retry_delay_seconds=policy.retry_delay_s,
            retry_condition_fn=retry_if_transient,
        )
        state = stage_task(str(root), stage, stage in forced, status.up_to_date(stage), return_state=True)
        report = graph.nodes[stage]["report"]
        if report and not (state.is_completed() and state.result() == "skipped"):
            publish_stage_report(str(root), stage, report)
        if state.is_failed():
            logger.error(state.message)
            return Failed(message=state.message, data=state.data)
        outcomes[stage] = state.result()
        if outcomes[stage] == "ran":
            status.ran(stage)
        if graph.nodes[stage]["table"]:
            publish_metrics_table(str(root), stage, graph.nodes[stage]["table"])
    ran = [s for s, outcome in outcomes.items() if outcome == "ran"]
    logger.info(
        f"{len(order)} stage(s) in {time.perf_counter() - started:.1f}s: "
        f"ran {', '.join(ran) or 'none'}; skipped {len(order) - len(ran)}"
    )
    return outcomes


@flow(name="recause-pipeline")
def pipeline(
    workspace: str = ".",
    force: list[str] | None = None,
    stages: list[str] | None = None,
    profile: str | None = None,
    seed: int | None = None,
) -> dict[str, str] | State:
    """Run the stages of dvc.yaml; DVC skips what is up to date.

    Args:
        workspace: The recause project folder (holds dvc.yaml and params.yaml).
        force: Stages to re-run even if up to date, e.g. ["train_baselines"].
        stages: Run only these stages and what they need; empty runs every stage.
        profile: A YAML params profile in the workspace merged into params.yaml first, e.g. tests/profiles/tiny.yaml.
        seed: Seed of the split and of every trained step, written into params.yaml.
    """
    logger = get_run_logger()
    root = Path(workspace).resolve()
    with workspace_lock(root, logger.info):
        if profile or seed is not None:
            apply_params_updates(LAYOUT.under(root).params, root / profile if profile else None, seed=seed)
        graph = pipeline_graph(root)
        return run_stages(root, graph, execution_order(graph, stages), set(force or []))


@flow(name="recause-evaluate")
def evaluate(workspace: str = ".") -> dict[str, str] | State:
    """Re-run only the `evaluate` stage on the models and splits in the workspace.

    Args:
        workspace: The recause project folder (holds dvc.yaml and params.yaml).
    """
    logger = get_run_logger()
    root = Path(workspace).resolve()
    with workspace_lock(root, logger.info):
        return run_stages(root, pipeline_graph(root), ["evaluate"], {"evaluate"})
