"""Baselines against independent references on tiny matrices; every registered model fits, scores and round-trips;
the registry is what `train_baselines` and `evaluate` read, so a baseline registered anywhere is fit and ranked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from pydantic import Field

import recause.models.registry as registry
from recause.artifacts import load_model, save_model
from recause.config import parse_params
from recause.config.base import StrictModel
from recause.errors import ParamsError
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.models.baselines.ease import EASE, EASEParams
from recause.models.baselines.itemknn import ItemKNN, ItemKNNParams, cosine_topk
from recause.models.baselines.pop import Pop
from recause.models.registry import (
    Capabilities,
    baseline_types,
    baselines,
    baselines_params,
    build_baselines,
    load_saved,
    register_baseline,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def binary_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(7)
    return sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))


def test_ease_equals_per_item_ridge_regression(binary_matrix: sp.csr_matrix) -> None:
    """EASE's closed form must solve its own objective: per item j, ridge-regress x_j on the others."""
    x = binary_matrix.toarray().astype(np.float64)
    reg = 3.0
    n_items = x.shape[1]
    reference = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = [i for i in range(n_items) if i != j]
        a = x[:, others]
        reference[others, j] = np.linalg.solve(a.T @ a + reg * np.eye(n_items - 1), a.T @ x[:, j])
    model = EASE(EASEParams(reg_weight=reg)).fit(binary_matrix)
    np.testing.assert_allclose(model.weights, reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.score(binary_matrix[:3]), x[:3] @ reference, rtol=1e-4, atol=1e-5)


def test_ease_skips_itself_above_max_items(binary_matrix: sp.csr_matrix) -> None:
    assert EASE(EASEParams(max_items=12)).skip_reason(binary_matrix) is None
    assert EASE(EASEParams(max_items=None)).skip_reason(binary_matrix) is None
    assert EASE(EASEParams(max_items=11)).skip_reason(binary_matrix).startswith("12 items exceed max_items 11")


def _dense_cosine(x: np.ndarray, shrink: float) -> np.ndarray:
    norms = np.sqrt((x**2).sum(axis=0))
    sims = (x.T @ x) / (np.outer(norms, norms) + shrink + 1e-6)
    np.fill_diagonal(sims, 0.0)
    return sims


def test_itemknn_keeping_all_neighbours_is_plain_cosine(binary_matrix: sp.csr_matrix) -> None:
    x = binary_matrix.toarray().astype(np.float64)
    model = ItemKNN(ItemKNNParams(k=x.shape[1] - 1, shrink=2.0)).fit(binary_matrix)
    np.testing.assert_allclose(model.weights.toarray(), _dense_cosine(x, 2.0), rtol=1e-5, atol=1e-6)


def test_itemknn_keeps_the_k_most_similar_items_per_target(binary_matrix: sp.csr_matrix) -> None:
    x = binary_matrix.toarray().astype(np.float64)
    sims = _dense_cosine(x, 0.0)
    weights = ItemKNN(ItemKNNParams(k=3)).fit(binary_matrix).weights.toarray()
    for j in range(x.shape[1]):
        kept = np.flatnonzero(weights[:, j])
        assert len(kept) <= 3
        dropped = np.setdiff1d(np.arange(x.shape[1]), np.append(kept, j))
        assert sims[kept, j].min() >= sims[dropped, j].max() - 1e-9
        np.testing.assert_allclose(weights[kept, j], sims[kept, j], rtol=1e-5)


def test_pop_scores_items_by_train_count(binary_matrix: sp.csr_matrix) -> None:
    scores = Pop().fit(binary_matrix).score(binary_matrix[:2])
    counts = binary_matrix.toarray().sum(axis=0)
    assert scores.shape == (2, binary_matrix.shape[1])
    np.testing.assert_array_equal(scores[0], counts)
    np.testing.assert_array_equal(scores[1], counts)


def test_scoring_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        EASE().score(sp.csr_matrix((1, 3)))


@pytest.mark.parametrize("name", list(baselines()))
def test_every_registered_baseline_fits_scores_and_round_trips(
    name: str, binary_matrix: sp.csr_matrix, tmp_path: Path
) -> None:
    """Built from the registry with its packaged defaults, as `train_baselines` builds it."""
    model = baselines()[name].build()
    assert model.name == name and model.skip_reason(binary_matrix) is None
    scores = model.fit(binary_matrix).score(binary_matrix[:5])
    assert scores.shape == (5, binary_matrix.shape[1]) and scores.dtype == np.float32 and np.isfinite(scores).all()
    save_model(tmp_path, model, {"item_ids": [str(i) for i in range(binary_matrix.shape[1])]})
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.safetensors"]
    restored, meta = load_model(tmp_path, name, baseline_types())
    assert meta["model"] == name and len(meta["item_ids"]) == binary_matrix.shape[1]
    np.testing.assert_array_equal(restored.score(binary_matrix), model.score(binary_matrix))


def test_the_shipped_baselines_are_found_by_name_in_report_order() -> None:
    assert list(baselines())[:3] == ["pop", "itemknn", "ease"]  # the key order of metrics/ranking.json
    assert baseline_types()["ease"] is EASE and baselines()["itemknn"].params is ItemKNNParams
    for name in ("pop", "itemknn", "ease"):
        assert baselines()[name].capabilities == Capabilities(warm_items=True, cold_items=False, debiases=False)


def test_params_yaml_holds_every_baselines_knobs_at_their_defaults() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["models"]["baselines"]
    for name, entry in baselines().items():
        defaults = entry.params().model_dump(mode="json") if entry.params else {}
        assert raw.get(name, {}) == defaults, f"params.yaml models.baselines.{name} should show {defaults}"
    assert baselines_params(raw) == baselines_params({})


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"itemknn": {"kk": 5}}, "params.yaml: unknown key 'models.baselines.itemknn.kk'"),
        ({"itemknn": {"k": 0}}, "params.yaml: models.baselines.itemknn.k: Input should be greater than or equal to 1"),
        ({"eas": {"reg_weight": 1.0}}, "params.yaml: unknown key 'models.baselines.eas'"),
        ({"pop": {"k": 1}}, "params.yaml: unknown key 'models.baselines.pop.k'"),
    ],
)
def test_a_wrong_baseline_knob_is_a_one_line_error_naming_it(knobs: dict, message: str) -> None:
    assert parse_params({"models": {"baselines": knobs}})  # the section is typed by the models, not by recause.config
    with pytest.raises(ParamsError) as error:
        build_baselines(knobs)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_knobs_reach_the_models_and_absent_ones_keep_their_defaults() -> None:
    built = {model.name: model for model in build_baselines({"ease": {"reg_weight": 10.0}})}
    assert built["ease"].params == EASEParams(reg_weight=10.0) and built["itemknn"].params == ItemKNNParams()


class ShiftParams(StrictModel):
    shift: float = Field(default=1.0, gt=0.0)


class Shifted(Pop):
    """A throwaway baseline: popularity plus a constant, enough to tell that its knob reached it."""

    name = "shifted"

    def __init__(self, params: ShiftParams | None = None) -> None:
        super().__init__()
        self.params = params or ShiftParams()

    def fit(self, train: sp.csr_matrix) -> Self:
        super().fit(train)
        self.counts = self.counts + self.params.shift
        return self

    def config(self) -> dict[str, Any]:
        return self.params.model_dump()

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        model = cls(ShiftParams(**config))
        model.counts = arrays["counts"]
        return model


@pytest.fixture
def shifted_registered(monkeypatch: pytest.MonkeyPatch) -> type[Recommender]:
    """``Shifted`` registered for this test only (the registry is restored afterwards)."""
    baselines()  # the shipped ones are imported (and registered) before the registry is swapped
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    return register_baseline(params=ShiftParams, capabilities=Capabilities(True, False, False))(Shifted)


def _tiny_workspace(root: Path, params: dict) -> None:
    (root / LAYOUT.processed).mkdir(parents=True)
    (root / LAYOUT.items).parent.mkdir(parents=True)
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u3", "u3"], "item_id": ["a", "b", "b", "a", "b", "c"]})
    train.to_parquet(root / LAYOUT.processed / "train.parquet")
    pd.DataFrame({"item_id": ["a", "b", "c", "d"], "text": ["A", "B", "C", "D"]}).to_parquet(root / LAYOUT.items)
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


def test_a_registered_baseline_is_fit_by_train_baselines_and_loaded_for_evaluate(
    shifted_registered: type[Recommender], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from tasks import train_baselines

    knobs = {"shifted": {"shift": 2.5}, "ease": {"max_items": 3}}  # 4 items: EASE skips itself
    _tiny_workspace(tmp_path, {"models": {"baselines": knobs}})
    monkeypatch.chdir(tmp_path)
    train_baselines.main()
    assert "ease skipped (models.baselines.ease): 4 items exceed max_items 3" in capsys.readouterr().out
    fitted = load_saved("main")  # what `evaluate` ranks
    assert list(fitted) == [name for name in baselines() if name != "ease"] and list(fitted)[-1] == "shifted"
    model, meta = fitted["shifted"]
    assert meta["config"] == {"shift": 2.5} and meta["item_ids"] == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(model.score(sp.csr_matrix((1, 4)))[0], [4.5, 5.5, 3.5, 2.5])


def test_itemknn_keeps_the_lower_items_of_equal_similarities() -> None:
    """Items 1-300 are equally similar to item 0 (one shared user each); with k=100 the neighbours kept are items
    1-100. np.argpartition kept others, and other ones again under numpy's AVX-512 partition (a machine-dependent metric)."""
    users = np.arange(300)
    train = sp.csr_matrix(
        (np.ones(600), (np.repeat(users, 2), np.column_stack([np.zeros(300, int), users + 1]).ravel())),
        shape=(300, 301),
    )
    weights = cosine_topk(train, k=100, shrink=0.0)
    np.testing.assert_array_equal(np.flatnonzero(weights[:, [0]].toarray()), np.arange(1, 101))
