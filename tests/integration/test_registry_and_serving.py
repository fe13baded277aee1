"""The model registry drives the stages, and `champion.serve_debiased` switches what is served, on the tiny workspace.

Stages run in this process (their `main()`), inside a clone of the built workspace, so that a model registered
by the test is seen by them the way a model shipped in the library would be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import pandas as pd
import pytest
import scipy.sparse as sp

from recause.config import update_params_file
from recause.models import registry
from recause.models.baselines.pop import Pop
from recause.models.registry import Capabilities, baselines, register_baseline
from recause.serving import load_served
from tests.integration.workspaces import Workspace

pytestmark = pytest.mark.integration


class AntiPopular(Pop):
    """A throwaway baseline: the least consumed items first (a model that should lose to popularity)."""

    name = "anti_popular"

    def fit(self, train: sp.csr_matrix) -> Self:
        super().fit(train)
        self.counts = -self.counts
        return self


@pytest.fixture
def anti_popular_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    baselines()  # the shipped ones are registered before the registry is swapped for this test's copy
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    register_baseline(capabilities=Capabilities(warm_items=True, cold_items=False, debiases=False))(AntiPopular)


def test_a_model_registered_in_a_test_is_fit_by_train_baselines_and_ranked_by_evaluate(
    anti_popular_registered: None, workspace_clone: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import evaluate, train_baselines

    monkeypatch.chdir(workspace_clone.root)
    train_baselines.main()
    evaluate.main()
    ranking = json.loads(Path("metrics/ranking.json").read_text(encoding="utf-8"))
    for split in ("valid", "test"):
        assert list(ranking[split])[:3] == ["pop", "itemknn", "ease"] and list(ranking[split])[-1] == "anti_popular"
        assert ranking[split]["anti_popular"]["ndcg@10"] < ranking[split]["pop"]["ndcg@10"]
    assert "anti_popular" not in ranking["cold"]  # a baseline is fit on the main split only


def test_serve_debiased_serves_the_champions_debiased_variant_everywhere(
    workspace_clone: Workspace, monkeypatch
) -> None:  # noqa: ANN001
    from tasks import select_champion

    root = workspace_clone.root
    monkeypatch.chdir(root)
    update_params_file(root / "params.yaml", {"champion": {"serve_debiased": True}})
    select_champion.main()
    choice = json.loads((root / "models/champion.json").read_text(encoding="utf-8"))
    assert choice["chosen"] == "hybrid_ease" and choice["served"] == "hybrid_ease_debiased"
    assert set(choice["candidates"]) == {"hybrid_ease"}  # only families with a debiased variant compete
    topk = pd.read_parquet(root / "data/recommendations/topk.parquet")
    user = str(topk["user_id"].iloc[0])
    expected = load_served(root, "hybrid_ease_debiased").top_k(5)
    expected = expected[expected["user_id"] == user]
    mine = topk[topk["user_id"] == user].sort_values("rank").head(5)
    assert mine["item_id"].tolist() == expected["item_id"].tolist()
    done = workspace_clone.run("recause", "recommend", "--user", user, "--k", "5")
    assert done.returncode == 0 and "by hybrid_ease_debiased" in done.stdout, done.stderr[-2000:]
