"""Workspaces for the integration tests: a fresh copy of the project, and clones of a built one.

The tiny pipeline is built once per test run (tests/integration/conftest.py); a test that changes a
workspace works in a clone of it: the whole tree with its DVC cache, dvc.lock, git repository and
outputs, so `dvc status` is clean there and DVC can restore any output, at the cost of a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.prefect_server import started_in_s

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMMAND_TIMEOUT_S = 600

# What a clone of the project does not have (virtual environments, VCS and tool state, generated outputs).
NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".venv-*",
    ".git",
    ".dvc",
    ".prefect",
    ".recause",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "dvc.lock",
    "checkpoints",
    "test-artifacts",
)
GENERATED = ("data", "models", "metrics", "reports")
BUILD_RECORD = "tiny-build.json"  # in the run's shared directory: the flow's exit code, output and time
# Replaced, never rewritten in place: DVC names each cache file by its content, and a training run saves a
# checkpoint into a new folder that then takes the old one's place. A clone hard-links these (~500 MB).
LINKED = (Path(".dvc/cache"), Path("checkpoints"))


@dataclass(frozen=True)
class Workspace:
    """A project folder and the environment its commands run in (this venv's tools first on PATH)."""

    root: Path
    env: dict[str, str] = field(repr=False)

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """A tool of this venv (recause, dvc, prefect) or any command, in the workspace; output captured."""
        program = str(args[0])
        command = [str(BIN / program) if (BIN / program).exists() else program, *map(str, args[1:])]
        return subprocess.run(
            command, cwd=self.root, env=env or self.env, capture_output=True, text=True, timeout=timeout
        )


@dataclass(frozen=True)
class TinyBuild:
    """The tiny workspace after the flow ran every stage once, and what the flow printed."""

    workspace: Workspace
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def fresh_copy(target: Path, wheels: list[Path], env: dict[str, str]) -> Workspace:
    """The project as a fresh clone sees it (no outputs, no dvc.lock), git- and DVC-initialised, with the
    data wheels in its cache so nothing is downloaded."""
    shutil.copytree(ROOT, target, ignore=NOT_COPIED)
    for generated in GENERATED:
        shutil.rmtree(target / generated, ignore_errors=True)
    (target / "data/incoming").mkdir(parents=True)  # committed (its README), a dependency of ingest
    shutil.copy2(ROOT / "data/incoming/README.md", target / "data/incoming")
    cache = target / "data/external/wheels"
    cache.mkdir(parents=True)
    for wheel in wheels:
        shutil.copy2(wheel, cache)
    for command in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(command, cwd=target, env=env, check=True)
    return Workspace(target, env)


def clone(source: Workspace, target: Path) -> Workspace:
    """A copy of a built workspace that a test may change: files under ``LINKED`` are hard links, the rest
    (which tests and stages may rewrite in place: raw data, params.yaml, dvc.lock) are copies."""
    linked = [source.root / path for path in LINKED]

    def copy(src: str, dst: str) -> object:
        if any(Path(src).is_relative_to(path) for path in linked):
            try:
                return os.link(src, dst)
            except OSError:  # another file system
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(source.root, target, symlinks=True, copy_function=copy)
    return Workspace(target, source.env)


def run_summary(shared: Path) -> list[str]:
    """What this test run built once: the Prefect server's start-up and the tiny pipeline's build time."""
    lines = []
    if (server := started_in_s(shared)) is not None:
        lines.append(f"one Prefect server for the whole run, started in {server:.1f}s")
    if (record := shared / BUILD_RECORD).exists():
        lines.append(f"the tiny workspace, built once by the flow in {json.loads(record.read_text())['seconds']:.1f}s")
    return lines
