"""The `recause` command line: help on every command, params shown, clear errors outside a project."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recause.cli import app
from recause.config import default_params_mapping

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
    assert yaml.safe_load(result.output) == default_params_mapping()


def test_outside_a_project_says_so_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: no dvc.yaml in {tmp_path.resolve()} or any parent: run recause inside a recause project"
    )
