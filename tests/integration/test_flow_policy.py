"""The real pipeline flow under Prefect, with the DVC call replaced by scripted outcomes.

Proves the retry policy comes from params.yaml per stage tag, that transient failures are retried
and user errors are not, that a failure stops everything after it, and that the metrics artifact
is published under its key. Runs in a subprocess, against the test run's Prefect server; only the
artifacts of its own flow runs are read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# one module-scoped flow run report shared by every test here: keep them on one xdist worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("flow_policy")]

DVC_YAML = """
stages:
  train:
    cmd: "true"
    outs: [model]
    meta: {tags: [gpu]}
  report:
    cmd: "true"
    deps: [model]
    outs: [report]
    meta: {report: reports/report.md}
  evaluate:
    cmd: "true"
    deps: [report]
    meta: {table: {path: metrics/ranking.json, key: ranking-metrics, levels: [split, model]}}
    metrics: [{metrics/ranking.json: {cache: false}}]
"""

PARAMS_YAML = """
orchestration:
  retries:
    default: {retries: 0, retry_delay_s: 0}
    gpu: {retries: 2, retry_delay_s: 0}
"""

DRIVER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import flows.pipeline as pipeline_module
    from recause.workspace import StageFailed
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    workspace = sys.argv[2]
    scenarios = json.loads(sys.argv[3])
    report, runs = {}, []
    for name, plan in scenarios.items():
        calls = {}

        def scripted(root, stage, force, log, plan=plan, calls=calls):
            calls[stage] = calls.get(stage, 0) + 1
            outcomes = plan.get(stage, ["ok"])
            outcome = outcomes[min(calls[stage], len(outcomes)) - 1]
            if outcome == "transient":
                raise StageFailed(stage, 1, "CUDA out of memory (injected)")
            if outcome == "permanent":
                raise StageFailed(stage, 2, "bad config (injected)")
            return outcome != "up to date"  # DVC found nothing to do

        pipeline_module.repro_stage = scripted
        def status(root, plan=plan, calls=calls):  # what `dvc status` says: before and after a stage ran
            up_to_date = plan.get("status: up to date", [])  # (the workspace is no DVC repository: nothing)
            return set(plan.get("status after a run", up_to_date) if calls else up_to_date)

        pipeline_module.up_to_date_stages = status
        state = pipeline_module.pipeline(workspace=workspace, return_state=True)
        report[name] = {"state": state.type.value, "message": state.message, "calls": calls}
        if "status: up to date" not in plan:  # the artifact tests read the retry scenarios' runs only
            runs.append(state.state_details.flow_run_id)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["ranking-metrics", "report-report"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=runs),
            )
        )
    report["artifacts"] = [{"key": a.key, "type": a.type, "data": a.data} for a in artifacts]
    print("REPORT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, workspace_env: dict[str, str]) -> dict:
    workspace = tmp_path_factory.mktemp("flow")
    (workspace / "dvc.yaml").write_text(DVC_YAML)
    (workspace / "params.yaml").write_text(PARAMS_YAML)
    (workspace / "metrics").mkdir()
    (workspace / "metrics/ranking.json").write_text(json.dumps({"test": {"ease": {"ndcg@10": 0.33}}}))
    (workspace / "reports").mkdir()
    (workspace / "reports/report.md").write_text("# Report\n\n- all good\n")
    scenarios = {
        "gpu_transient_then_ok": {"train": ["transient", "transient", "ok"]},
        "gpu_permanent": {"train": ["permanent"]},
        "untagged_transient": {"report": ["transient"]},
        "all_up_to_date": {"status: up to date": ["train", "report", "evaluate"]},
        "stale_upstream_ran": {"status: up to date": ["report", "evaluate"], "status after a run": []},
        "stale_upstream_ran_unchanged": {"status: up to date": ["report", "evaluate"]},
        "stale_upstream_unchanged": {"status: up to date": ["report", "evaluate"], "train": ["up to date"]},
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(ROOT), str(workspace), json.dumps(scenarios)],
        env=workspace_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("REPORT "))


def test_transient_failures_of_a_gpu_stage_are_retried_per_its_policy(report: dict) -> None:
    run = report["gpu_transient_then_ok"]
    assert run["state"] == "COMPLETED"
    assert run["calls"] == {"train": 3, "report": 1, "evaluate": 1}


def test_user_errors_are_not_retried_and_stop_the_flow(report: dict) -> None:
    run = report["gpu_permanent"]
    assert run["state"] == "FAILED" and run["calls"] == {"train": 1}
    assert run["message"] == "stage 'train' failed (exit 2): bad config (injected)"


def test_untagged_stages_use_the_default_policy(report: dict) -> None:
    run = report["untagged_transient"]
    assert run["state"] == "FAILED" and run["calls"] == {"train": 1, "report": 1}


def test_stages_that_dvc_status_found_up_to_date_start_no_dvc_unless_a_stage_they_need_ran(report: dict) -> None:
    assert report["all_up_to_date"]["state"] == "COMPLETED" and report["all_up_to_date"]["calls"] == {}
    # `train` ran and changed its model: the status taken again finds the rest stale, and DVC runs them
    assert report["stale_upstream_ran"]["calls"] == {"train": 1, "report": 1, "evaluate": 1}
    # `train` ran, its model came out the same (a resumed run): the status taken again vouches for the rest
    assert report["stale_upstream_ran_unchanged"]["calls"] == {"train": 1}
    # `train` was stale at the start but `dvc repro` found it unchanged: the rest is skipped without DVC
    assert report["stale_upstream_unchanged"]["calls"] == {"train": 1}
    scenarios = ("stale_upstream_ran", "stale_upstream_ran_unchanged", "stale_upstream_unchanged")
    assert all(report[name]["state"] == "COMPLETED" for name in scenarios)


def test_metrics_are_published_as_a_keyed_table_artifact(report: dict) -> None:
    tables = [a for a in report["artifacts"] if a["key"] == "ranking-metrics"]
    # only the completed run reached `evaluate`
    assert len(tables) == 1 and tables[0]["type"] == "table"
    assert json.loads(tables[0]["data"]) == [{"split": "test", "model": "ease", "ndcg@10": 0.33}]


def test_a_stage_report_is_published_whether_the_stage_passed_or_failed(report: dict) -> None:
    reports = [a for a in report["artifacts"] if a["key"] == "report-report"]
    # `report` ran in the completed scenario and failed in the untagged one; it never ran in the other
    assert len(reports) == 2 and {a["type"] for a in reports} == {"markdown"}
    assert all(a["data"] == "# Report\n\n- all good\n" for a in reports)
