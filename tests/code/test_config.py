"""Parameters: one source of truth, strict keys, one-line errors, layered overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from recause.config import (
    apply_overrides,
    deep_merge,
    default_params_mapping,
    load_params,
    parse_params,
    update_params_file,
)
from recause.errors import ParamsError

ROOT = Path(__file__).resolve().parents[2]


def _leaf_keys(mapping: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        keys |= _leaf_keys(value, f"{path}.") if isinstance(value, dict) and value else {path}
    return keys


def test_unknown_key_is_named() -> None:
    with pytest.raises(ParamsError) as error:
        parse_params({"split": {"protocl": "random"}})
    assert str(error.value) == "params.yaml: unknown key 'split.protocl'"


def test_unknown_protocol_names_key_and_value() -> None:
    with pytest.raises(ParamsError, match=r"split\.protocol: .*'random' or 'temporal'.*'bogus'"):
        parse_params({"split": {"protocol": "bogus"}})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"split": {"ratios": [0.5, 0.1, 0.1]}}, "split.ratios"),
        ({"evaluate": {"ks": [0]}}, "evaluate.ks"),
        ({"data": {"source": "files"}}, "data.files is not set"),
        ({"orchestration": {"retries": {"gpu": {"retries": 1}}}}, "'default' policy"),
    ],
)
def test_invalid_values_fail_in_one_line(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params(raw)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_params_yaml_is_valid_and_names_every_knob() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["models"].pop("baselines")  # typed by each baseline's own module: tests/code/test_models.py checks it
    params = parse_params(raw)
    missing = _leaf_keys(default_params_mapping()) - _leaf_keys(raw) - {"models.baselines"}
    assert not missing, f"params.yaml does not show these knobs: {sorted(missing)}"
    assert params == parse_params({}), "params.yaml should hold the packaged defaults"


def test_overrides_and_profiles_layer_over_params() -> None:
    merged = deep_merge({"split": {"seed": 1, "protocol": "random"}}, {"split": {"seed": 2}})
    assert merged == {"split": {"seed": 2, "protocol": "random"}}
    merged = apply_overrides(merged, ["split.protocol=temporal", "evaluate.ks=[5, 10]"])
    params = parse_params(merged)
    assert params.split.protocol == "temporal" and params.split.seed == 2 and params.evaluate.ks == (5, 10)
    with pytest.raises(ParamsError, match="KEY=VALUE"):
        apply_overrides({}, ["split.protocol"])


def test_update_params_file_keeps_comments_and_refuses_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("# my comment\nsplit:\n  seed: 1  # why\n", encoding="utf-8")
    assert update_params_file(path, {"split": {"seed": 5}})
    text = path.read_text(encoding="utf-8")
    assert "# my comment" in text and "# why" in text and load_params(path).split.seed == 5
    with pytest.raises(ParamsError, match="unknown key 'split.sed'"):
        update_params_file(path, {"split": {"sed": 5}})
    assert path.read_text(encoding="utf-8") == text
    assert not update_params_file(path, {"split": {"seed": 5}})  # no change, no write


def test_missing_or_broken_params_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("split: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
