"""Each dvc.yaml stage declares what its module really uses: layout paths in deps/outs, params keys, params modules.

Read statically from the stage's module (and the helpers it imports from ``tasks._*``): every ``LAYOUT`` path it
touches must lie in (or hold) one of its deps or outs, every out must be touched, every params section it reads
must be under its ``params:``, and its deps must name exactly the ``recause.config`` modules that type those params.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path, PurePosixPath

import pytest
import yaml
from pydantic import BaseModel

from recause.config import Params
from recause.layout import LAYOUT

ROOT = Path(__file__).resolve().parents[2]
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
LAYOUT_METHODS = {"metrics_file", "plot_dir", "report", "split_dir"}
# Where work runs (local or on Dask) never changes a result (tests/integration/test_dask_runner.py): not a dependency.
EXECUTION_SECTIONS = {("orchestration",)}


def _entries(spec: dict, *keys: str) -> set[str]:
    return {entry if isinstance(entry, str) else next(iter(entry)) for key in keys for entry in spec.get(key) or []}


def _layout_path(node: ast.AST) -> str | None:
    """``LAYOUT.items`` or ``LAYOUT.metrics_file("ranking")`` (literal argument) as a path."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "LAYOUT":
        value = getattr(LAYOUT, node.attr)
        return None if callable(value) else str(value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LAYOUT_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "LAYOUT"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(getattr(LAYOUT, node.func.attr)(node.args[0].value))
    return None


def _paths_in(node: ast.AST) -> set[str]:
    return {path for child in ast.walk(node) if (path := _layout_path(child))}


def _helper_paths(module: str, names: set[str]) -> set[str]:
    """Layout paths used by the named functions of a ``tasks._*`` helper (and the module constants they read)."""
    tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8"))
    constants = {
        target.id: _paths_in(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    paths: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names:
            paths |= _paths_in(node)
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            paths |= set().union(*(constants[n] for n in used & constants.keys()))
    return paths


def _stage_tree(stage: str) -> tuple[ast.Module, set[str]]:
    """The stage module's AST, and the layout paths it uses (its own and through its tasks helpers)."""
    module = DVC_YAML[stage]["cmd"].removeprefix("python -m ")
    tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8"))
    paths = _paths_in(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks._"):
            paths |= _helper_paths(node.module, {alias.name for alias in node.names})
    return tree, paths


def _covered(path: str, entries: set[str]) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(e) or PurePosixPath(e) in p.parents or p in PurePosixPath(e).parents for e in entries)


STAGES = [name for name, spec in DVC_YAML.items() if spec["cmd"].startswith("python -m tasks.")]


@pytest.mark.parametrize("stage", STAGES)
def test_deps_and_outs_cover_the_layout_paths_the_stage_uses(stage: str) -> None:
    spec = DVC_YAML[stage]
    deps, outs = _entries(spec, "deps"), _entries(spec, "outs", "metrics", "plots")
    _, used = _stage_tree(stage)
    assert used, f"{stage} uses no LAYOUT path: does it spell paths itself?"
    undeclared = sorted(path for path in used if not _covered(path, deps | outs))
    assert not undeclared, f"{stage} uses {undeclared} but dvc.yaml declares neither as dep nor out"
    unwritten = sorted(out for out in outs if not _covered(out, used))
    assert not unwritten, f"dvc.yaml says {stage} writes {unwritten}, but its module never names them"


def _params_bindings(tree: ast.Module) -> list[tuple[str, ...]]:
    """Dotted params keys the module reads: chains of attributes on ``load_params()`` or on names bound to it
    (``params = load_params().causal``) or annotated ``Params``."""
    bound: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and isinstance(node.annotation, ast.Name) and node.annotation.id == "Params":
            bound[node.arg] = ()
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            chain = _chain(node.value, bound)
            if chain is not None:
                bound[node.targets[0].id] = chain
    used = []
    for node in ast.walk(tree):
        chain = _chain(node, bound)
        if chain:
            used.append(chain)
    return used


def _chain(node: ast.AST, bound: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "load_params":
        return tuple(attributes)
    if isinstance(node, ast.Name) and node.id in bound:
        return bound[node.id] + tuple(attributes)
    return None


def _params_keys(tree: ast.Module) -> set[tuple[str, ...]]:
    """Used chains cut at the first name that is not a params field (a method, or a value's attribute)."""
    keys = set()
    for chain in _params_bindings(tree):
        model: type[BaseModel] | None = Params
        kept: list[str] = []
        for name in chain:
            fields = {f.alias or key: key for key, f in model.model_fields.items()} if model else {}
            if name not in fields and name not in (model.model_fields if model else {}):
                break
            kept.append(name.removesuffix("_"))
            model = _model_of(model.model_fields[fields.get(name, name)].annotation)
        if kept and tuple(kept[:1]) not in EXECUTION_SECTIONS:
            keys.add(tuple(kept))
    return keys


def _model_of(annotation: object) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if inspect.isclass(candidate) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _config_modules(key: tuple[str, ...]) -> set[str]:
    """The recause.config modules whose classes type the fields along ``key`` (base classes included)."""
    modules, model = set(), Params
    for name in key:
        field = next(f for k, f in model.model_fields.items() if name in (k, k.removesuffix("_"), f.alias))
        model = _model_of(field.annotation)
        if model is None:
            break
        modules |= {cls.__module__ for cls in model.__mro__ if cls.__module__.startswith("recause.config.")}
    return {f"src/{m.replace('.', '/')}.py" for m in modules - {"recause.config.base"}}


@pytest.mark.parametrize("stage", STAGES)
def test_params_and_params_modules_are_exactly_what_the_stage_reads(stage: str) -> None:
    spec = DVC_YAML[stage]
    tree, _ = _stage_tree(stage)
    keys = _params_keys(tree)
    declared = {tuple(entry.split(".")) for entry in _entries(spec, "params")}
    for key in keys:
        assert any(key[: len(d)] == d or d[: len(key)] == key for d in declared), (
            f"{stage} reads params '{'.'.join(key)}' but its dvc.yaml params do not name it"
        )
    needed = set().union(*(_config_modules(key) for key in keys)) if keys else set()
    listed = {dep for dep in _entries(spec, "deps") if dep.startswith("src/recause/config")}
    assert listed == needed, f"{stage}: deps name params modules {sorted(listed)}, it reads {sorted(needed)}"


def test_every_stage_module_imports_cleanly() -> None:
    for stage in STAGES:
        importlib.import_module(DVC_YAML[stage]["cmd"].removeprefix("python -m "))
