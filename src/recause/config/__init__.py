"""Typed parameters: the one source of truth for every knob of the pipeline, and the one reader of param files.

Layering (lowest to highest): the defaults declared in the area modules < ``params.yaml`` < a profile
< CLI overrides (``--set key=value``) < ``--seed``. Unknown keys are an error that names the key, so a
typo never silently falls back to a default.

Each area of params has its own module (``recause.config.split``, ``...language``, ...) so that a DVC
stage depends on the modules it reads and no other.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recause.config.base import StrictModel
from recause.config.causal import CausalParams, CausalQuestion
from recause.config.champion import ChampionParams
from recause.config.data import DataParams, SyntheticParams, TableFile, UserFiles, WheelSource
from recause.config.evaluate import EvaluateParams, MetricName
from recause.config.fairness import FairnessParams
from recause.config.joint import JointParams
from recause.config.language import (
    CollaborativeHeadParams,
    EncoderParams,
    FinetuneParams,
    PretrainParams,
    TrainingParams,
)
from recause.config.models import JointStageParams, ModelsParams
from recause.config.ope import BanditParams, EstimatorName, OBDSource, OPEParams
from recause.config.orchestration import DaskParams, OrchestrationParams, RetryPolicy
from recause.config.privacy import DPParams, PrivacyParams
from recause.config.retrain import GateParams, RetrainParams
from recause.config.serving import ServingParams, ServingPolicy
from recause.config.split import IntervenedParams, SplitParams, SplitProtocol
from recause.config.validate import ML100K_OCCUPATIONS, DriftParams, RowCountBounds, ValidateParams
from recause.errors import ParamsError

PARAMS_FILE = Path("params.yaml")
SEEDED_SECTIONS = ("split", "ope", "pretrain", "finetune", "causal")  # what `--seed` sets
Section = TypeVar("Section", bound=BaseModel)


class Params(StrictModel):
    data: DataParams = DataParams()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    split: SplitParams = SplitParams()
    models: ModelsParams = ModelsParams()
    evaluate: EvaluateParams = EvaluateParams()
    bandit: BanditParams = BanditParams()
    ope: OPEParams = OPEParams()
    encoder: EncoderParams = EncoderParams()
    pretrain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    causal: CausalParams = CausalParams()
    orchestration: OrchestrationParams = OrchestrationParams()
    retrain: RetrainParams = RetrainParams()
    champion: ChampionParams = ChampionParams()
    serving: ServingParams = ServingParams()
    fairness: FairnessParams = FairnessParams()
    privacy: PrivacyParams = PrivacyParams()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _describe(error: dict[str, Any], section: str = "") -> str:
    parts = [*(section.split(".") if section else ()), *(str(part) for part in error["loc"] if part != "validate_")]
    location = ".".join(parts) or "<root>"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{location}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message} (got {error.get('input')!r})"


def parse_params(raw: dict[str, Any] | None, source: str = "params.yaml") -> Params:
    """Validate a raw parameter mapping; raise ParamsError with one line naming every problem."""
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    return parse_section(Params, raw, source=source)


def parse_section(
    model: type[Section], raw: Mapping[str, Any] | None, section: str = "", source: str = "params.yaml"
) -> Section:
    """Validate the raw mapping of one params ``section`` (dotted, e.g. ``models.baselines``) against ``model``;
    raise ParamsError with one line naming every problem by its full key (what a model-owned section uses)."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as error:
        problems = "; ".join(_describe(e, section) for e in error.errors())
        raise ParamsError(f"{source}: {problems}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``dotted.key=value`` overrides applied (values parsed as YAML)."""
    merged = copy.deepcopy(raw)
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"override {override!r}: expected KEY=VALUE, e.g. split.protocol=temporal")
        node = merged
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {override!r}: '{part}' is not a section")
            node = child
        node[leaf] = yaml.safe_load(value)
    return merged


def deep_merge(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """``updates`` merged over ``base`` section by section (updates win); neither input is modified.

    Works on plain dicts and on ruamel's comment-keeping maps alike (the result keeps ``base``'s type).
    """
    merged = copy.deepcopy(base)
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def default_params_mapping() -> dict[str, Any]:
    """Every knob with its packaged default, as plain data (what a complete params.yaml holds)."""
    return Params().model_dump(mode="json", by_alias=True)


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate a params file (a missing file is an error: run from the project root)."""
    if not path.exists():
        raise ParamsError(f"{path}: file not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_params(raw, source=str(path))


ParamsCheck = Callable[[Params, str], object]  # a further check of parsed params (model-owned sections)


def update_params_file(path: Path, updates: Mapping[str, Any], check: ParamsCheck | None = None) -> bool:
    """Merge ``updates`` into a params file keeping its comments; validate first; True if it changed.

    ``check`` (e.g. ``recause.models.registry.with_baseline_defaults``) also judges the merged params before the
    file is written, for sections whose types the params modules do not know.
    """
    from ruamel.yaml import YAML

    from recause.artifacts import write_text

    round_trip = YAML()
    round_trip.preserve_quotes = True
    original = path.read_text(encoding="utf-8") if path.exists() else ""
    document = deep_merge(round_trip.load(original) or {}, updates)
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    source = f"{path} (after overrides)"
    merged = parse_params(yaml.safe_load(buffer.getvalue()), source=source)
    if check is not None:
        check(merged, source)
    if buffer.getvalue() == original:
        return False
    write_text(path, buffer.getvalue())
    return True


def apply_params_updates(
    path: Path,
    profile: Path | None = None,
    overrides: list[str] | None = None,
    seed: int | None = None,
    check: ParamsCheck | None = None,
) -> bool:
    """Write a profile, ``KEY=VALUE`` overrides and a seed into a params file (so DVC sees them).

    Precedence: the file < profile < overrides < seed (the seed of the split and every trained step).
    """
    updates: dict[str, Any] = {}
    if profile is not None:
        if not profile.exists():
            raise ParamsError(f"profile not found: {profile}")
        updates = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
        if not isinstance(updates, dict):
            raise ParamsError(f"profile {profile}: expected a mapping of params sections")
    updates = deep_merge(updates, apply_overrides({}, overrides or []))
    if seed is not None:
        updates = deep_merge(updates, {section: {"seed": seed} for section in SEEDED_SECTIONS})
    return bool(updates) and update_params_file(path, updates, check)


__all__ = [
    "ML100K_OCCUPATIONS", "PARAMS_FILE", "BanditParams", "ChampionParams", "CausalParams", "CausalQuestion", "CollaborativeHeadParams",
    "DaskParams", "DPParams", "DataParams", "DriftParams", "EncoderParams", "EstimatorName", "EvaluateParams", "FairnessParams",
    "FinetuneParams", "GateParams", "IntervenedParams", "JointParams", "JointStageParams",
    "MetricName", "ModelsParams", "OBDSource", "OPEParams", "OrchestrationParams", "Params", "PretrainParams", "PrivacyParams",
    "RetrainParams", "RetryPolicy", "RowCountBounds", "ServingParams", "ServingPolicy", "SplitParams", "SplitProtocol", "StrictModel",
    "SyntheticParams", "TableFile", "TrainingParams", "UserFiles", "ValidateParams", "WheelSource",
    "apply_overrides", "apply_params_updates", "deep_merge", "default_params_mapping", "load_params",
    "parse_params", "parse_section", "update_params_file",
]  # fmt: skip
