"""The whole pipeline in a temporary copy of the project: Prefect flow over DVC, then plain DVC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGES = ["ingest", "validate", "split", "train_baselines", "evaluate"]
# What a clone does not have: environments, tool state and every pipeline output.
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", ".dvc", ".prefect", ".recause", "__pycache__", ".pytest_cache", "*.egg-info", "dvc.lock"
)

pytestmark = pytest.mark.integration


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, ml100k_wheel: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("workspace") / "recause"
    shutil.copytree(ROOT, root, ignore=NOT_COPIED)
    for generated in ("data", "models", "metrics"):
        shutil.rmtree(root / generated, ignore_errors=True)
    wheels = root / "data/external/wheels"
    wheels.mkdir(parents=True)
    shutil.copy2(ml100k_wheel, wheels)
    env = {**os.environ, "PREFECT_HOME": str(root / ".prefect"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    for command in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(command, cwd=root, env=env, check=True)
    return root, env


def test_flow_runs_every_stage_and_writes_every_output(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    done = _run([str(BIN / "recause"), "run", "--profile", "tests/profiles/tiny.yaml"], root, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"stages run: {', '.join(STAGES)}; up to date: 0" in done.stdout
    assert "Ranking metrics" in done.stdout

    for path in [
        "data/raw/ml-100k/ml-100k.inter",
        *(f"data/interim/{t}.parquet" for t in ("interactions", "items", "users")),
        *(f"data/processed/{p}.parquet" for p in ("train", "valid", "test")),
        *(f"data/processed/recbole/recause/recause.{p}.inter" for p in ("train", "valid", "test")),
        *(f"models/baselines/{m}.{ext}" for m in ("pop", "itemknn", "ease") for ext in ("safetensors", "json")),
        "metrics/validation.json",
        "dvc.lock",
    ]:
        assert (root / path).is_file(), path
    for split in ("valid", "test"):
        assert (root / f"metrics/plots/ranking_{split}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ranking = json.loads((root / "metrics/ranking.json").read_text())
    assert set(ranking) == {"valid", "test"}
    expected_keys = {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "hit", "precision") for k in (10, 20)}
    for models in ranking.values():
        assert set(models) == {"pop", "itemknn", "ease"}
        for values in models.values():
            assert set(values) == expected_keys
            assert all(0.0 <= v <= 1.0 for v in values.values())
    assert ranking["test"]["ease"]["hit@20"] > 0


def test_second_flow_run_skips_every_stage(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    before = (root / "metrics/ranking.json").read_text()
    done = _run([str(BIN / "recause"), "run"], root, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"stages run: none; up to date: {len(STAGES)}" in done.stdout
    assert (root / "metrics/ranking.json").read_text() == before


def test_plain_dvc_repro_gives_the_flows_results(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    flow_metrics = json.loads((root / "metrics/ranking.json").read_text())
    status = _run([str(BIN / "dvc"), "status"], root, env)
    assert "up to date" in status.stdout
    done = _run([str(BIN / "dvc"), "repro", "--force"], root, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((root / "metrics/ranking.json").read_text()) == flow_metrics


def test_a_failing_stage_stops_the_flow_with_one_line_and_keeps_the_last_good_outputs(
    workspace: tuple[Path, dict[str, str]],
) -> None:
    root, env = workspace
    params_before = (root / "params.yaml").read_text()
    missing = root / "nowhere" / "ratings.csv"
    done = _run(
        [
            str(BIN / "recause"),
            "run",
            "--set",
            "data.source=files",
            "--set",
            f"data.files={{interactions: {{path: {missing}}}, items: {{path: {missing}}}}}",
        ],
        root,
        env,
    )
    assert done.returncode == 2
    # exactly one error line (Prefect's own shutdown log may follow it)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: stage 'ingest' failed (exit 2): interactions file not found: {missing} (data.files.interactions.path)"
    ]
    assert "Traceback" not in done.stderr + done.stdout
    assert "Retry" not in done.stderr + done.stdout  # a user error is not retried
    # DVC deleted ingest's outputs before running it; the flow put the last good ones back
    assert (root / "data/interim/interactions.parquet").is_file()
    (root / "params.yaml").write_text(params_before)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("split.protocl=random", "unknown key 'split.protocl'"),
        (
            "split.protocol=leave_one_out",
            "split.protocol: Input should be 'random', 'temporal' or 'cold_item' (got 'leave_one_out')",
        ),
    ],
)
def test_bad_params_fail_before_anything_runs(
    workspace: tuple[Path, dict[str, str]], override: str, message: str
) -> None:
    root, env = workspace
    before = (root / "params.yaml").read_text()
    done = _run([str(BIN / "recause"), "run", "--set", override], root, env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr
    assert (root / "params.yaml").read_text() == before
