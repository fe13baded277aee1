"""The `recause` command line: help on every command, params shown, clear errors outside a project."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recause.cli import app
from recause.config import Params
from recause.models.baselines.ease import EASEParams
from recause.models.registry import with_baseline_defaults
from recause.workspace import load_flows

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["run"], ["params"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    if command == ["run"]:
        for option in ("--force", "--stage", "--set", "--profile", "--workspace"):
            assert option in result.output


def test_params_prints_every_effective_value() -> None:
    result = runner.invoke(app, ["params", "--workspace", str(ROOT)])
    assert result.exit_code == 0
    printed = yaml.safe_load(result.output)
    assert printed == with_baseline_defaults(Params()).model_dump(mode="json", by_alias=True)
    assert printed["models"]["baselines"]["ease"]["reg_weight"] == EASEParams().reg_weight  # the model's own default
    assert "# Share of items held out entirely in the cold-item variant." in result.output  # what it means


def test_a_baseline_knob_typo_fails_before_params_yaml_is_written(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("models:\n  baselines:\n    itemknn:\n      k: 20\n")
    result = runner.invoke(app, ["run", "-w", str(tmp_path), "--set", "models.baselines.itemknn.kk=3"])
    assert result.exit_code == 2
    assert "unknown key 'models.baselines.itemknn.kk'" in result.output and result.output.count("\n") == 1
    assert (tmp_path / "params.yaml").read_text() == "models:\n  baselines:\n    itemknn:\n      k: 20\n"


def test_outside_a_project_says_so_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: no dvc.yaml in {tmp_path.resolve()} or any parent: run recause inside a recause project"
    )


def test_validate_command_passes_clean_files_and_fails_corrupted_ones(
    ml100k_raw: dict[str, Path], tmp_path: Path
) -> None:
    inter, items, users = (str(ml100k_raw[t]) for t in ("interactions", "items", "users"))
    result = runner.invoke(
        app, ["validate", "interactions", inter, "--items", items, "--users", users, "-w", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok: {inter}: 100,000 rows of interactions pass every rule"

    lines = Path(inter).read_text().splitlines()
    lines[5] = "\t".join(lines[5].split("\t")[:2] + ["0", lines[5].split("\t")[3]])
    broken = tmp_path / "broken.tsv"
    broken.write_text("\n".join(lines).replace("user_id:token", "user_id").replace(":float", "") + "\n")
    result = runner.invoke(app, ["validate", "interactions", str(broken), "-w", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"invalid: {broken}: column 'rating': rule 'rating within [1, 5]' broken by 1 row(s); e.g. [0.0]"
    )

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["validate", "users", str(empty), "-w", str(tmp_path)])
    assert result.exit_code == 1 and result.output.strip() == f"error: {empty}: file is empty"


@pytest.fixture
def own_flows_modules() -> Iterator[None]:
    """Whatever `flows` package this test loads, the session's own comes back afterwards."""
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "flows"}
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "flows"]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_a_workspaces_flows_load_from_its_folder_without_touching_sys_path(
    tmp_path: Path, own_flows_modules: None
) -> None:
    path_before, tasks_before = list(sys.path), {name for name in sys.modules if name.split(".")[0] == "tasks"}
    for root in (tmp_path / "one", tmp_path / "two"):
        (root / "flows").mkdir(parents=True)
        (root / "flows/__init__.py").write_text("")
        (root / "flows/helpers.py").write_text("from pathlib import Path\nWHERE = Path(__file__).parent.parent\n")
        (root / "flows/pipeline.py").write_text("from flows.helpers import WHERE\n")
    assert load_flows(tmp_path / "one", "pipeline").WHERE == tmp_path / "one"
    assert load_flows(tmp_path / "two", "pipeline").WHERE == tmp_path / "two"  # each workspace its own flows
    assert sys.path == path_before
    assert {name for name in sys.modules if name.split(".")[0] == "tasks"} == tasks_before  # no stage imported


def test_a_workspace_without_flows_says_so_in_one_line(
    tmp_path: Path, own_flows_modules: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))  # the command sets it where unset
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    result = runner.invoke(app, ["run", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: {tmp_path.resolve()}/flows/__init__.py not found: the workspace has no flows package"
    )
