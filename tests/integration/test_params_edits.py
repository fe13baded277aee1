"""Which edits re-run which stages: a parameter's description none, a params module its own stage."""

from __future__ import annotations

import re

import pytest

from recause.layout import LAYOUT
from tests.integration.workspaces import Workspace

pytestmark = pytest.mark.integration
UP_TO_DATE = "Data and pipelines are up to date."


def _changed_stages(workspace: Workspace) -> set[str]:
    done = workspace.run("dvc", "status")
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^(\w+):\s*$", done.stdout, flags=re.M)) if UP_TO_DATE not in done.stdout else set()


def test_rewording_a_parameters_description_re_runs_no_stage(workspace_clone: Workspace) -> None:
    root = workspace_clone.root
    assert _changed_stages(workspace_clone) == set()
    descriptions = root / "src/recause/config/descriptions.py"
    text = descriptions.read_text(encoding="utf-8")
    old = "Share of items held out entirely in the cold-item variant."
    assert old in text
    descriptions.write_text(text.replace(old, "Share of items never seen in training (cold-item variant)."))
    params = root / LAYOUT.params
    params.write_text(params.read_text(encoding="utf-8").replace("# ", "# (reworded) ", 1), encoding="utf-8")
    assert _changed_stages(workspace_clone) == set()

    # the control: a change to the params module that types `split` is a change to what `split` depends on
    split_module = root / "src/recause/config/split.py"
    split_module.write_text(split_module.read_text(encoding="utf-8") + "\n# a change in split's own params module\n")
    assert _changed_stages(workspace_clone) == {"split"}
