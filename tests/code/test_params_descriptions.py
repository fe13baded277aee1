"""Parameter descriptions live apart from the params modules (rewording one re-runs no stage), and all are used."""

from __future__ import annotations

import inspect

import yaml
from pydantic import BaseModel

import recause.config as config
from recause.config import Params, parse_params
from recause.config.descriptions import DESCRIPTIONS, annotated_yaml, description


def _params_classes() -> dict[str, type[BaseModel]]:
    return {
        name: cls
        for name, cls in vars(config).items()
        if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__.startswith("recause.config")
    } | {cls.__name__: cls for cls in _nested(Params)}


def _nested(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if inspect.isclass(candidate) and issubclass(candidate, BaseModel) and candidate not in found:
                found |= _nested(candidate)
    return found


def test_every_description_names_a_real_field() -> None:
    classes = _params_classes()
    stale = [
        key for key in DESCRIPTIONS if key.split(".")[1] not in classes.get(key.split(".")[0], BaseModel).model_fields
    ]
    assert not stale, f"descriptions of fields that do not exist: {stale}"


def test_params_modules_carry_no_description_text() -> None:
    described = [
        f"{cls.__name__}.{name}"
        for cls in _params_classes().values()
        for name, f in cls.model_fields.items()
        if f.description
    ]
    assert not described, f"move these descriptions to recause/config/descriptions.py: {described}"


def test_a_subclass_inherits_its_bases_descriptions() -> None:
    from recause.config import FinetuneParams

    assert description(FinetuneParams, "micro_batch_size") == DESCRIPTIONS["TrainingParams.micro_batch_size"]
    assert description(FinetuneParams, "no_such_field") is None


def test_annotated_yaml_round_trips_and_shows_the_texts() -> None:
    params = Params()
    text = annotated_yaml(params)
    assert parse_params(yaml.safe_load(text)) == params
    cold = next(line for line in text.splitlines() if line.strip().startswith("cold_item_fraction:"))
    assert cold.split("#", 1)[1].strip() == DESCRIPTIONS["SplitParams.cold_item_fraction"]
