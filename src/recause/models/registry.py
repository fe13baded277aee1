"""The models recause fits, found by name (RecBole-style): what each is, what it can do, how it is built.

``models()`` is the one table of every model: the baselines (below) and the model families fit by their own
stages (``FAMILIES``: the hybrid EASE, the joint model and their debiased variants; the text retrievers). Each
entry says what the model can do (warm items, cold items, debiasing), which stage writes it and where, on which
splits, whether `explain` can explain its list, and its debiased variant. `evaluate` ranks what it lists,
serving and the CLI serve what it lists, `select_champion` picks among what it lists.

A baseline declares itself where it is written. Its module under ``recause.models.baselines`` holds the
model class, its params class (the knobs under ``models.baselines.<name>`` in params.yaml) and
``@register_baseline(...)`` on the class. The registry imports every module of that package the first
time it is asked. So a new baseline is one new file in the library (plus its knobs in params.yaml):
`train_baselines` fits it, `evaluate` ranks it, `recause recommend --model <name>` serves it, and no
stage or dvc.yaml names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError, create_model

from recause.artifacts import load_model
from recause.config import Params, parse_section
from recause.config.base import StrictModel
from recause.config.models import JOINT_VARIANTS
from recause.layout import LAYOUT, Layout
from recause.models.base import Recommender

BASELINES_PACKAGE = "recause.models.baselines"
PARAMS_SECTION = "models.baselines"  # where each baseline's knobs live in params.yaml, by model name

R = TypeVar("R", bound=type[Recommender])


@dataclass(frozen=True)
class Capabilities:
    """What a model can score or correct, so a stage or report can pick the models a question applies to."""

    warm_items: bool  # ranks items that have interactions in its train data
    cold_items: bool  # ranks items that have none (from what they are: text, features)
    debiases: bool  # corrects for how items were exposed in the logs, not only fits them


class NoKnobs(StrictModel):
    """The params of a baseline without knobs: a section for it in params.yaml must be empty."""


@dataclass(frozen=True)
class BaselineEntry:
    model: type[Recommender]
    params: type[StrictModel] | None  # None: built with no arguments
    capabilities: Capabilities
    order: int  # place in reports and metrics/ranking.json: lower first, then by name

    @property
    def name(self) -> str:
        return self.model.name

    def build(self, params: StrictModel | None = None) -> Recommender:
        """An unfitted model with ``params`` (validated knobs; None: its defaults)."""
        if self.params is None:
            return self.model()
        return self.model(self.params() if params is None else params)


_REGISTERED: dict[str, BaselineEntry] = {}


def register_baseline(
    *, capabilities: Capabilities, params: type[StrictModel] | None = None, order: int = 100
) -> Callable[[R], R]:
    """Class decorator: make ``model`` a baseline, found by its ``name`` (every knob of ``params`` needs a default)."""

    def register(model: R) -> R:
        known = _REGISTERED.get(model.name)
        if known is not None and known.model is not model:
            raise ValueError(f"two baselines are named '{model.name}': {known.model.__name__} and {model.__name__}")
        if params is not None:
            try:
                params()
            except ValidationError as error:
                raise TypeError(f"{params.__name__}: every knob of a baseline needs a default ({error})") from None
        _REGISTERED[model.name] = BaselineEntry(model, params, capabilities, order)
        return model

    return register


@cache
def _import_every_baseline_module() -> None:
    package = importlib.import_module(BASELINES_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__, f"{BASELINES_PACKAGE}."):
        importlib.import_module(module.name)


def baselines() -> dict[str, BaselineEntry]:
    """Every registered baseline by name, in report order."""
    _import_every_baseline_module()
    return dict(sorted(_REGISTERED.items(), key=lambda item: (item[1].order, item[0])))


def baseline_types() -> dict[str, type[Recommender]]:
    """Name -> class of every baseline: what `recause.artifacts.load_model` rebuilds a saved one with."""
    return {name: entry.model for name, entry in baselines().items()}


@dataclass(frozen=True)
class ModelEntry:
    """One model of the registry: what it can do, which stage writes it (and where), how to rebuild it."""

    name: str
    capabilities: Capabilities
    stage: str  # the stage that fits it (or, for a text retriever, the stage its parts come from)
    class_path: str  # "module:Class", imported when first needed (the joint model's module imports torch)
    folder: str | None  # the Layout field of its folder (one sub-folder per split unless `per_split`); None: not saved
    splits: tuple[str, ...] = ("main",)  # the splits whose train it is fit on
    per_split: bool = True
    explainable: bool = True  # its list is a function of the user's history alone: `explain` can re-score it
    debiased_variant: str | None = None  # the same family, deconfounded and chosen on the intervened valid
    order: int = 100

    @property
    def servable(self) -> bool:
        """Saved by its stage, so `recommend`, `explain` and the retrain gate can load it."""
        return self.folder is not None

    def model_type(self) -> type[Recommender]:
        module, _, attribute = self.class_path.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def location(self, layout: Layout, split: str = "main") -> Path:
        """The folder holding its ``<name>.safetensors`` and ``<name>.json`` fit on ``split``."""
        if self.folder is None:
            raise ValueError(f"{self.name} is built from the items' text where it is used, never saved")
        base: Path = getattr(layout, self.folder)
        return base / split if self.per_split else base


WARM_AND_COLD = Capabilities(warm_items=True, cold_items=True, debiases=False)
DEBIASED = Capabilities(warm_items=True, cold_items=True, debiases=True)
VARIANTS = ("main", "cold_item", "intervened")
FAMILIES = (
    ModelEntry("tfidf_knn", WARM_AND_COLD, "validate", "recause.models.language.retrieval:TfidfKNN", None, VARIANTS[:2], order=40),
    ModelEntry("lm_retrieval", WARM_AND_COLD, "finetune", "recause.models.language.retrieval:KernelRetrieval", None, VARIANTS[:2], order=50),
    ModelEntry("joint", WARM_AND_COLD, "train_joint", "recause.models.joint.model:JointModel", "joint", VARIANTS, explainable=False, debiased_variant="joint_debiased", order=60),
    ModelEntry("joint_debiased", DEBIASED, "train_joint", "recause.models.joint.model:JointModel", "joint", VARIANTS, explainable=False, order=70),
    ModelEntry("hybrid_ease", WARM_AND_COLD, "train_hybrid", "recause.models.hybrid:HybridEASE", "hybrid", VARIANTS, debiased_variant="hybrid_ease_debiased", order=80),
    ModelEntry("hybrid_ease_debiased", DEBIASED, "train_hybrid", "recause.models.hybrid:HybridEASEDebiased", "hybrid", ("main", "intervened"), order=90),
)  # fmt: skip


def _baseline_entry(entry: BaselineEntry) -> ModelEntry:
    path = f"{entry.model.__module__}:{entry.model.__qualname__}"
    return ModelEntry(
        entry.name, entry.capabilities, "train_baselines", path, "baselines", per_split=False, order=entry.order
    )


def models() -> dict[str, ModelEntry]:
    """Every model by name, in report order (``order``, then name): the registered baselines and ``FAMILIES``."""
    entries = [*(_baseline_entry(entry) for entry in baselines().values()), *FAMILIES]
    return {entry.name: entry for entry in sorted(entries, key=lambda entry: (entry.order, entry.name))}


def servable() -> dict[str, ModelEntry]:
    return {name: entry for name, entry in models().items() if entry.servable}


def fit_on(split: str) -> Iterator[ModelEntry]:
    """The saved models fit on ``split``'s own train, in report order."""
    return (entry for entry in servable().values() if split in entry.splits)


def baselines_params(
    knobs: Mapping[str, Mapping[str, Any]] | None, source: str = str(LAYOUT.params)
) -> dict[str, StrictModel]:
    """The ``models.baselines`` section checked against every baseline's params class, defaults filled in.

    A knob or a baseline that does not exist is a one-line ParamsError naming its key, as for any param.
    """
    entries = baselines()
    types = {name: entry.params or NoKnobs for name, entry in entries.items()}
    fields: dict[str, Any] = {name: (params, params()) for name, params in types.items()}
    model = create_model("BaselinesParams", __base__=StrictModel, **fields)
    section = parse_section(model, knobs, PARAMS_SECTION, source)
    return {name: getattr(section, name) for name in entries}


def with_baseline_defaults(params: Params, source: str = str(LAYOUT.params)) -> Params:
    """``params`` with ``models.baselines`` checked against every baseline's knobs and their defaults filled in:
    the effective values (`recause params`), and the check the CLI runs before anything is written or run."""
    knobs = {name: p.model_dump(mode="json") for name, p in baselines_params(params.models.baselines, source).items()}
    return params.model_copy(update={"models": params.models.model_copy(update={"baselines": knobs})})


def build_baselines(knobs: Mapping[str, Mapping[str, Any]] | None) -> list[Recommender]:
    """Every registered baseline, unfitted, with its knobs from ``models.baselines``, in report order."""
    params = baselines_params(knobs)
    return [entry.build(params[name]) for name, entry in baselines().items()]


def load_saved(split: str = "main", layout: Layout = LAYOUT) -> dict[str, tuple[Recommender, dict[str, Any]]]:
    """Every saved model fit on ``split``'s own train (``fit_on``) with its metadata, in report order.

    A model without files there was skipped by its stage on purpose (EASE above ``max_items``, say) and is left out.
    """
    found = {}
    for entry in fit_on(split):
        folder = entry.location(layout, split)
        if (folder / f"{entry.name}.json").exists():
            found[entry.name] = load_model(folder, entry.name, {entry.name: entry.model_type()})
    return found


__all__ = [
    "FAMILIES", "JOINT_VARIANTS", "PARAMS_SECTION", "BaselineEntry", "Capabilities", "ModelEntry", "fit_on", "models",
    "servable", "NoKnobs", "baseline_types", "baselines",
    "baselines_params", "build_baselines", "with_baseline_defaults", "load_saved", "register_baseline",
]  # fmt: skip
