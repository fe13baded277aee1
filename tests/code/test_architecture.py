"""The layers hold: import-linter's contracts (pyproject.toml), benchmarks on the library only, paths written once."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from recause.layout import LAYOUT

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = (ROOT / "src/recause", ROOT / "tasks", ROOT / "flows")


def _lint_imports(root: Path, source_root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's packages win over the editable install of this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_root), str(root)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_hold() -> None:
    done = _lint_imports(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout


def test_a_library_module_importing_a_stage_breaks_the_suite(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    for package in ("tasks", "flows"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", copy)
    errors = copy / "src/recause/errors.py"
    errors.write_text(errors.read_text(encoding="utf-8") + "\nimport tasks.split  # noqa: E402,F401\n")
    done = _lint_imports(copy, copy / "src")
    assert done.returncode != 0
    assert "The library imports neither stages nor flows BROKEN" in done.stdout, done.stdout[-3000:]
    assert "recause.errors -> tasks.split" in done.stdout


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_benchmarks_use_only_the_library_and_never_patch_sys_path() -> None:
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        source = script.read_text(encoding="utf-8")
        assert not _imported_roots(ast.parse(source)) & {"tasks", "flows"}, script.name
        assert "sys.path.insert" not in source and "sys.path.append" not in source, script.name


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String literals that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_workspace_paths_are_written_only_in_the_layout() -> None:
    """Every path of ``Layout`` is spelled once (recause/layout.py); code elsewhere asks the layout.

    Params defaults (recause/config) are exempt: they are user-facing knobs whose values live in params.yaml.
    """
    paths = {str(getattr(LAYOUT, f.name)) for f in fields(LAYOUT)}
    # a bare folder word ('metrics', 'reports') is also a dvc.yaml key: only its sub-paths count
    exact = {path for path in paths if "/" in path or "." in path}
    found = []
    for package in (*PACKAGES, ROOT / "benchmarks"):
        for module in sorted(package.rglob("*.py")):
            parts = module.relative_to(ROOT).parts
            # hidden folders are tools' own venvs (benchmarks/.venv-recbole after a peer race), not our code
            if module.name == "layout.py" or "config" in parts or any(part.startswith(".") for part in parts):
                continue
            for node in _code_strings(ast.parse(module.read_text(encoding="utf-8"))):
                text = node.value.strip()
                if text in exact or any(text.startswith(f"{path}/") for path in paths):
                    found.append(f"{module.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert not found, "\n".join(found)
