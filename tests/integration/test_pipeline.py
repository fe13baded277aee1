"""The whole pipeline, built once per test run by the Prefect flow over DVC (tests/integration/conftest.py),
then what the CLI, the flow and plain DVC do with it; each test that changes a workspace has its own clone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from recause.config import load_params
from recause.data.pseudonym import pseudonym
from recause.layout import LAYOUT
from recause.orchestration import execution_order, pipeline_graph, stage_names
from tests.integration.workspaces import ROOT, TinyBuild, Workspace

STAGES = stage_names(ROOT)  # every stage of dvc.yaml, in the order the flow runs them

pytestmark = pytest.mark.integration


def test_flow_runs_every_stage_and_writes_every_output(tiny_build: TinyBuild) -> None:
    root, done = tiny_build.workspace.root, tiny_build
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"stages run: {', '.join(STAGES)}; up to date: 0" in done.stdout
    assert "Ranking metrics" in done.stdout

    for path in [
        "data/raw/ml-100k/ml-100k.inter",
        *(f"data/interim/{t}.parquet" for t in ("interactions", "items", "users")),
        *(f"data/processed/{p}.parquet" for p in ("train", "valid", "test")),
        *(f"data/processed/recbole/recause/recause.{p}.inter" for p in ("train", "valid", "test")),
        *(f"data/processed/cold_item/{p}.parquet" for p in ("train", "valid", "test", "cold")),
        *(f"models/baselines/{m}.{ext}" for m in ("pop", "itemknn", "ease") for ext in ("safetensors", "json")),
        *(f"models/hybrid/{split}/hybrid_ease.safetensors" for split in ("main", "cold_item", "intervened")),
        *(f"models/hybrid/{split}/hybrid_ease_debiased.safetensors" for split in ("main", "intervened")),
        "models/pretrained/model.safetensors",
        "models/finetuned/encoder/model.safetensors",
        "models/finetuned/two_tower.safetensors",
        "checkpoints/finetune/progress.json",
        "data/embeddings/items.safetensors",
        "metrics/validation.json",
        "dvc.lock",
    ]:
        assert (root / path).is_file(), path
    for plot in (
        "pretrain/loss.png",
        "finetune/loss.png",
        *(f"ranking/ranking_{s}.png" for s in ("valid", "test", "cold", "intervened")),
        *(f"ranking/popularity_{s}.png" for s in ("test", "intervened")),
    ):
        assert (root / f"metrics/plots/{plot}").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ranking = json.loads((root / "metrics/ranking.json").read_text())
    mixed = ("mixed_all", "mixed_warm", "mixed_cold")  # the cold-item variant: warm and cold in one list
    assert set(ranking) == {"valid", "test", "cold", "intervened", *mixed}
    expected_keys = {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "hit", "precision", "f1") for k in (10, 20)}
    expected_keys |= {"gauc", "auc"}  # the whole ranking, no cut-off
    unbiased = {f"snips_{m}@{k}" for m in ("recall", "ndcg") for k in (10, 20)}
    unbiased |= {f"{m}@10" for m in ("mean_popularity", "coverage", "gini")}
    content, joint = {"tfidf_knn", "lm_retrieval", "hybrid_ease"}, {"joint", "joint_debiased"}
    debiased = {"hybrid_ease_debiased"}  # chosen on the intervened valid, refit on the main train
    expected_models = {
        "valid": {"pop", "itemknn", "ease"} | content | joint | debiased,
        "test": {"pop", "itemknn", "ease"} | content | joint | debiased,
        "cold": {"pop", "ease"} | content | joint,  # pop and ease refit on the variant's train
        "intervened": {"pop", "ease", "hybrid_ease"} | joint | debiased,  # only models fit on its own train
        **{split: {"pop", "ease"} | content | joint for split in mixed},
    }
    for split, models in ranking.items():
        assert set(models) == expected_models[split], split
        for values in models.values():
            assert set(values) == expected_keys | (unbiased if split in ("test", "intervened") else set())
            assert all(0.0 <= v <= 1.0 for k, v in values.items() if not k.startswith("mean_popularity"))
    assert ranking["test"]["ease"]["hit@20"] > 0
    assert ranking["cold"]["tfidf_knn"]["hit@20"] > 0
    pretrain = json.loads((root / "metrics/pretrain.json").read_text())
    assert pretrain["objective"] == "simcse" and pretrain["steps"] == 2  # MiniLM-L6 has no MLM head
    head = json.loads((root / "metrics/finetune.json").read_text())["collaborative_head"]
    grid = yaml.safe_load((root / "params.yaml").read_text())["finetune"]["collaborative_head"]
    assert head["gamma"] in grid["gammas"] and head["reg"] in grid["regs"]  # chosen on validation, refitted
    assert len(head["validation_ndcg@10"]) == len(grid["gammas"]) * len(grid["regs"])
    heads = load_file(str(root / "models/finetuned/two_tower.safetensors"))
    anchors = head["anchors"]  # what evaluate's lm_retrieval scores with:
    assert heads["retrieval_anchors"].shape == (anchors, 384) and heads["retrieval_weights"].shape == (anchors,) * 2
    embed = json.loads((root / "metrics/embed.json").read_text())
    n_items = len(pd.read_parquet(root / "data/validated/items.parquet"))
    assert embed["items"] == n_items and embed["items_per_second"] > 0  # every item, cold ones included

    ope = json.loads((root / "metrics/ope.json").read_text())
    assert set(ope) == {"bts_from_random", "random_from_bts"}
    for direction in ope.values():
        by_estimator = direction["all"]
        assert set(by_estimator) == {"replay", "ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os"}
        for values in by_estimator.values():
            assert values["relative_ee_mean"] >= 0 and values["relative_ee_std"] >= 0 and values["ground_truth"] > 0
    policy = json.loads((root / "metrics/ope_policy.json").read_text())["all"]
    assert policy["logged_on_policy_value"] == {"random": 0.0038, "bts": 0.0042}  # clicks / rounds of the logs
    assert (root / "metrics/plots/ope/relative_error.png").read_bytes()[:4] == b"\x89PNG"

    causal = json.loads((root / "metrics/causal.json").read_text())
    assert set(causal) == {"questions", "discovery", "semi_synthetic"}
    assert set(causal["questions"]) == {"genre_match_on_rating", "popular_item_on_rating"}
    refuters = {"placebo_treatment", "random_common_cause", "data_subset", "bootstrap", "dummy_outcome"}
    for answer in [*causal["questions"].values(), causal["semi_synthetic"]]:
        low, high = answer["ci"]
        assert low <= high and answer["estimator"] == "propensity_score_weighting"
        assert set(answer["refutations"]) == refuters | {"unobserved_common_cause"}
        for name in refuters:
            verdict = answer["refutations"][name]
            assert {"passed", "p_value", "new_effect"} <= set(verdict) and 0 <= verdict["p_value"] <= 1
        assert answer["refuted"] == (not all(r["passed"] for r in answer["refutations"].values()))
    assert causal["semi_synthetic"]["true_ate"] > 0
    assert set(causal["discovery"]) == {"pc", "ges"}
    for method in causal["discovery"].values():
        truth = method["known_truth"]
        assert truth["shd"] < truth["baseline_empty"]["shd"] and truth["shd"] < truth["baseline_random"]["shd"]
    graph = nx.read_gml(root / "data/causal/graph.gml")
    assert set(graph.nodes) == {
        "age_bucket", "gender", "occupation", "item_year", "popularity_bucket", "genre_overlap", "rating"
    }  # fmt: skip
    assert graph.has_edge("popularity_bucket", "rating")  # required by the background knowledge
    for method in ("pc", "ges"):
        assert (root / f"metrics/plots/causal/graph_{method}.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "reports/causal.md").read_text().startswith("# Causal report")
    fairness = json.loads((root / "metrics/fairness.json").read_text())
    served = json.loads((root / "models/champion.json").read_text())["served"]
    plain = next(point for point in fairness["rerank"]["curve"] if point["strength"] == 0)
    assert fairness["model"] == served and plain["test"]["ndcg@10"] == pytest.approx(ranking["test"][served]["ndcg@10"])
    assert set(fairness["user_groups"]) == {"gender", "age", "occupation"}
    assert "skipped" not in fairness["counterfactual"]  # the joint model's flip was measured
    assert (root / "reports/fairness.md").read_text().startswith("# Fairness report")
    for plot in ("tradeoff", "groups"):
        assert (root / f"metrics/plots/fairness/{plot}.png").read_bytes()[:4] == b"\x89PNG"
    uplift = json.loads((root / "metrics/uplift.json").read_text())
    assert set(uplift) >= {"uplift", "accuracy", "random", "uplift_over_accuracy_cp@10"}
    assert all(0 <= uplift[m]["realised_effect/cp@10"] <= 1 for m in ("uplift", "accuracy", "random"))
    explained = pd.read_parquet(root / "data/recommendations/explained_topk.parquet")
    assert explained.groupby("user_id").size().eq(10).all() and explained["because_of"].notna().mean() > 0.9
    seen = pd.concat(pd.read_parquet(root / f"data/processed/{p}.parquet") for p in ("train", "valid", "test"))
    pairs = set(zip(seen["user_id"], seen["item_id"].astype(str), strict=True))
    _assert_joint_outputs(root)
    _assert_champion_outputs(root, pairs)
    assert not any(pair in pairs for pair in zip(explained["user_id"], explained["item_id"], strict=True))
    reasons = explained.dropna(subset=["because_of"])
    assert all(pair in pairs for pair in zip(reasons["user_id"], reasons["because_of"], strict=True))


def _a_trained_user(root: Path) -> tuple[str, bytes]:
    """A raw ML-100K user id with training events in this workspace, and the workspace's pseudonym key."""
    events = pd.read_parquet(root / "data/processed/train.parquet")
    key = (root / load_params(root / "params.yaml").data.pseudonym_key_file).read_text().strip().encode()
    return next(str(r) for r in range(1, 944) if pseudonym(str(r), key) in set(events["user_id"])), key


def _assert_joint_outputs(root: Path) -> None:
    """train_joint's models and evaluate's joint rows on test, cold and intervened."""
    params = load_params(root / "params.yaml").models.joint
    for split in ("main", "cold_item", "intervened"):
        for name in ("joint", "joint_debiased"):
            assert (root / f"models/joint/{split}/{name}.safetensors").exists()
            config = json.loads((root / f"models/joint/{split}/{name}.json").read_text())["config"]
            assert config["debias"] == ("none" if name == "joint" else params.debias)
    ranking = json.loads((root / "metrics/ranking.json").read_text())
    for split in ("test", "cold", "intervened"):
        assert {"joint", "joint_debiased"} <= set(ranking[split]), split
    test = ranking["test"]["joint"]
    assert 0 <= test["snips_ndcg@10"] <= 1 and 0 < test["coverage@10"] <= 1 and 0 <= test["gini@10"] <= 1
    assert test["mean_popularity@10"] > 0
    assert (root / "metrics/plots/train_joint/main_joint.png").read_bytes()[:4] == b"\x89PNG"


def _assert_champion_outputs(root: Path, seen_pairs: set[tuple[str, str]]) -> None:
    """select_champion's choice (the best explainable model on valid), its report and its top-k."""
    params = load_params(root / "params.yaml").champion
    choice = json.loads((root / "models/champion.json").read_text())
    valid = json.loads((root / "metrics/ranking.json").read_text())["valid"]
    candidates = choice["candidates"]
    assert {"ease", "hybrid_ease"} <= set(candidates)
    assert not {"joint", "lm_retrieval", "hybrid_ease_debiased"} & set(candidates)  # not explainable, or a variant
    assert candidates == {m: valid[m][params.metric] for m in candidates}  # read from valid, nothing else
    assert choice["served"] == choice["chosen"] == max(candidates, key=candidates.__getitem__)
    report = json.loads((root / "metrics/champion.json").read_text())
    test = json.loads((root / "metrics/ranking.json").read_text())["test"]
    paired = report["test_against_best_other_baseline"]
    assert paired["mean_a"] == pytest.approx(test[choice["served"]][params.metric])  # evaluate's own test number
    assert paired["mean_b"] == pytest.approx(test[paired["baseline"]][params.metric])
    assert paired["interval"][0] <= paired["mean_difference"] <= paired["interval"][1] and 0 <= paired["p_value"] <= 1
    topk = pd.read_parquet(root / "data/recommendations/topk.parquet")
    users = pd.concat(pd.read_parquet(root / f"data/processed/{p}.parquet") for p in ("train", "valid", "test"))
    assert set(topk["user_id"]) == set(users["user_id"]) and topk.groupby("user_id").size().eq(params.top_k).all()
    assert not any(pair in seen_pairs for pair in zip(topk["user_id"], topk["item_id"], strict=True))
    ranked = topk.sort_values(["user_id", "rank"])
    assert (ranked.groupby("user_id")["score"].diff().dropna() <= 0).all()  # best first
    assert {"title", "warm"} <= set(topk.columns) and topk["title"].notna().all()


def test_recommend_explain_topk_and_the_retrain_gate_serve_the_same_champion(tiny_workspace: Workspace) -> None:
    from recause.operations.retrain import _gate_model

    root = tiny_workspace.root
    served = json.loads((root / "models/champion.json").read_text())["served"]
    raw, key = _a_trained_user(root)
    recommended = tiny_workspace.run("recause", "recommend", "--user", raw, "--k", "5")
    explained = tiny_workspace.run("recause", "explain", "--user", raw, "--k", "5")
    assert recommended.returncode == explained.returncode == 0, recommended.stderr[-2000:] + explained.stderr[-2000:]
    assert f"by {served}" in recommended.stdout and f"Top 5 by {served}" in explained.stdout
    rows = [re.split(r"\s*│\s*", line) for line in recommended.stdout.splitlines() if re.match(r"^│\s*\d+\s*│", line)]
    titles = [row[2] for row in rows]
    explained_rows = [line for line in explained.stdout.splitlines() if re.match(r"^│\s*\d+\s*│", line)]
    assert len(titles) == len(explained_rows) == 5
    for title, line in zip(titles, explained_rows, strict=True):  # the same list, in the same order
        assert title[:20] in line, (title, line)
    topk = pd.read_parquet(root / "data/recommendations/topk.parquet")
    first = topk[topk["user_id"] == pseudonym(raw, key)].sort_values("rank").head(5)
    assert [t[:20] for t in first["title"]] == [t[:20] for t in titles]
    explained_topk = pd.read_parquet(root / "data/recommendations/explained_topk.parquet")
    mine = explained_topk[explained_topk["user_id"] == pseudonym(raw, key)].sort_values("rank").head(5)
    assert mine["item_id"].tolist() == first["item_id"].tolist()
    assert json.loads((root / "metrics/explain.json").read_text())["model"] == served
    gated, _ = _gate_model(root, "champion")  # retrain.gate.model's default
    assert gated.name == served


def test_recommend_prints_a_users_unseen_top_k_with_titles_and_warm_or_cold(tiny_workspace: Workspace) -> None:
    root = tiny_workspace.root
    raw, key = _a_trained_user(root)
    done = tiny_workspace.run("recause", "recommend", "--user", raw, "--k", "7")
    assert done.returncode == 0, done.stderr[-2000:]
    topk = pd.read_parquet(root / "data/recommendations/topk.parquet")
    expected = topk[topk["user_id"] == pseudonym(raw, key)].sort_values("rank").head(7)
    lines = [line for line in done.stdout.splitlines() if re.match(r"^│\s*\d+\s*│", line)]  # rows, not the header
    assert len(lines) == 7, done.stdout
    for line, row in zip(lines, expected.itertuples(), strict=True):  # the stage's top-k, in order
        assert row.title[:20] in line and ("warm" if row.warm else "cold") in line, (line, row)
    unknown = tiny_workspace.run("recause", "recommend", "--user", "nobody")
    assert unknown.returncode == 2 and "unknown user 'nobody'" in unknown.stderr


@pytest.mark.slow
def test_second_flow_run_skips_every_stage(workspace_clone: Workspace) -> None:
    root = workspace_clone.root
    before = (root / "metrics/ranking.json").read_text()
    done = workspace_clone.run("recause", "run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"stages run: none; up to date: {len(STAGES)}" in done.stdout
    assert (root / "metrics/ranking.json").read_text() == before


def test_explain_names_the_history_items_behind_a_users_recommendations(tiny_workspace: Workspace) -> None:
    root = tiny_workspace.root
    raw, key = _a_trained_user(root)
    top = tiny_workspace.run("recause", "explain", "--user", raw, "--k", "5")
    assert top.returncode == 0, top.stderr[-2000:]
    served = json.loads((root / "models/champion.json").read_text())["served"]
    assert f"Top 5 by {served}" in top.stdout and top.stdout.count("│") >= 5 * 6, top.stdout
    catalogue = pd.read_parquet(root / "data/validated/items.parquet")
    seen = pd.concat(pd.read_parquet(root / f"data/processed/{p}.parquet") for p in ("train", "valid", "test"))
    seen = set(seen.loc[seen["user_id"] == pseudonym(raw, key), "item_id"].astype(str))
    item = next(i for i in catalogue["item_id"].astype(str) if i not in seen)
    one = tiny_workspace.run("recause", "explain", "--user", pseudonym(raw, key), "--item", item)
    assert one.returncode == 0, one.stderr[-2000:]
    title = catalogue.loc[catalogue["item_id"].astype(str) == item, "title"].iloc[0]
    assert one.stdout.startswith(f"{title}: score ") and f"for this user ({served})" in one.stdout, one.stdout
    again = tiny_workspace.run("recause", "explain", "--user", raw, "--item", next(iter(seen)))
    assert again.returncode == 2 and "already interacted with" in again.stderr
    unknown = tiny_workspace.run("recause", "explain", "--user", "nobody")
    assert unknown.returncode == 2 and "unknown user 'nobody'" in unknown.stderr


def _forced_by_plain_dvc(root: Path) -> list[str]:
    """What plain `dvc repro --force` re-runs: every stage `evaluate` depends on, from ingest (where users get
    their pseudonyms) on, except pretraining, which reads item text only (users never reach it)."""
    return [s for s in execution_order(pipeline_graph(root), ["evaluate"]) if s != "pretrain"]


def _cached_outs(lock: dict, stages: list[str]) -> dict[str, str]:
    """The models and data (not metrics, plots or reports) the stages wrote, by path: their md5 in dvc.lock."""
    outs = [out for stage in stages for out in lock["stages"][stage]["outs"]]
    return {o["path"]: o["md5"] for o in outs if not o["path"].startswith(("metrics/", "reports/"))}


def _raw_user_ids(root: Path, key: bytes) -> dict[str, str]:
    """Pseudonym -> raw id of every user of the workspace's raw interactions, under ``key``."""
    raw = pd.read_csv(root / "data/raw/ml-100k/ml-100k.inter", sep="\t", usecols=[0])
    return {pseudonym(str(user), key): str(user) for user in raw.iloc[:, 0].unique()}


def _split_in_raw_ids(root: Path, key: bytes) -> dict[str, pd.DataFrame]:
    raw = _raw_user_ids(root, key)
    parts = {p: pd.read_parquet(root / f"data/processed/{p}.parquet") for p in ("train", "valid", "test")}
    return {p: frame.assign(user_id=frame["user_id"].map(raw)) for p, frame in parts.items()}


@pytest.mark.slow
def test_plain_dvc_repro_under_another_pseudonym_key_gives_the_flows_results(workspace_clone: Workspace) -> None:
    """Plain DVC (no Prefect) re-runs every stage behind the ranking metrics with users pseudonymised under
    another key: the metrics are the flow's to the byte, and so are the models that hold no user id."""
    root = workspace_clone.root
    flow_metrics = (root / "metrics/ranking.json").read_bytes()
    flow_key = (root / load_params(root / "params.yaml").data.pseudonym_key_file).read_text().strip().encode()
    flow_split = _split_in_raw_ids(root, flow_key)
    status = workspace_clone.run("dvc", "status")
    assert "up to date" in status.stdout
    forced = _forced_by_plain_dvc(root)
    assert {"ingest", "split", "train_baselines", "finetune", "train_joint", "evaluate"} <= set(forced)
    flow_lock = yaml.safe_load((root / "dvc.lock").read_text())
    for stage in forced:  # train from scratch, not resume a finished run
        shutil.rmtree(LAYOUT.under(root).checkpoints / stage, ignore_errors=True)
    # as in a fresh workspace: no snapshot accepted under the other key (every user would count as new)
    shutil.rmtree(LAYOUT.under(root).validation_snapshots)
    other_key = "another-key-than-the-builds-0123456789"
    env = {**workspace_clone.env, "RECAUSE_PSEUDONYM_KEY": other_key}
    done = workspace_clone.run("dvc", "repro", "--force", "--single-item", *forced, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage")] == forced
    train = pd.read_parquet(root / "data/processed/train.parquet")
    assert not set(train["user_id"]) & set(flow_split["train"]["user_id"])  # other pseudonyms everywhere...
    split = _split_in_raw_ids(root, other_key.encode())
    for part, frame in split.items():  # ...of the same users, with the same events in each part
        pd.testing.assert_frame_equal(frame, flow_split[part])
    assert (root / "metrics/ranking.json").read_bytes() == flow_metrics
    dvc_lock = yaml.safe_load((root / "dvc.lock").read_text())
    keyless = ("models/baselines", "models/finetuned", "data/embeddings")  # models that hold no user id
    outs = {path: md5 for path, md5 in _cached_outs(dvc_lock, forced).items() if path in keyless}
    assert outs == {path: md5 for path, md5 in _cached_outs(flow_lock, forced).items() if path in keyless}
    assert len(outs) == len(keyless)


@pytest.mark.slow
def test_a_gpu_stage_killed_by_the_os_is_retried_by_the_flow_and_resumes(workspace_clone: Workspace) -> None:
    root, env = workspace_clone.root, workspace_clone.env
    reference = json.loads((root / "metrics/pretrain.json").read_text())
    shutil.rmtree(LAYOUT.under(root).checkpoints / "pretrain")  # else the forced run finds its finished checkpoint
    # the tiny profile's pretraining: 2 steps (0 and 1), a checkpoint after each; killed before step 1
    faults = {"RECAUSE_FAULTS": "pretrain:kill:1@1", "RECAUSE_FAULTS_STATE": str(root / ".recause/faults")}
    without_shell = {k: v for k, v in env.items() if k != "SHELL"}  # DVC then runs stages with /bin/sh, as in CI
    done = workspace_clone.run(
        "recause", "run", "--force", "pretrain", "--set", "orchestration.retries.gpu.retry_delay_s=0",
        env={**without_shell, **faults},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (root / ".recause/faults/pretrain-kill-1.count").read_text() == "1"  # the stage was killed once
    said = done.stdout + done.stderr
    assert "stage 'pretrain' failed (killed by SIGKILL, exit 137)" in said, said[-3000:]
    assert "resuming from the checkpoint at step 1/2" in said
    metrics = json.loads((root / "metrics/pretrain.json").read_text())
    assert metrics["resumed_from_step"] == 1 and reference["resumed_from_step"] == 0  # the retry resumed...
    assert {k: metrics[k] for k in ("loss_first", "loss_last", "steps")} == {
        k: reference[k] for k in ("loss_first", "loss_last", "steps")
    }  # ...and ended where the uninterrupted run did, to the byte: DVC finds what depends on it unchanged
    assert f"stages run: pretrain; up to date: {len(STAGES) - 1}" in done.stdout


def test_a_failing_stage_stops_the_flow_with_one_line_and_keeps_the_last_good_outputs(
    workspace_clone: Workspace,
) -> None:
    root = workspace_clone.root
    missing = root / "nowhere" / "ratings.csv"
    done = workspace_clone.run(
        "recause", "run", "--set", "data.source=files",
        "--set", f"data.files={{interactions: {{path: {missing}}}, items: {{path: {missing}}}}}",
    )  # fmt: skip
    assert done.returncode == 2
    # exactly one error line (Prefect's own shutdown log may follow it)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: stage 'ingest' failed (exit 2): interactions file not found: {missing} (data.files.interactions.path)"
    ]
    assert "Traceback" not in done.stderr + done.stdout
    assert "Retry" not in done.stderr + done.stdout  # a user error is not retried
    # DVC deleted ingest's outputs before running it; the flow put the last good ones back
    assert (root / "data/interim/interactions.parquet").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("split.protocl=random", "unknown key 'split.protocl'"),
        (
            "split.protocol=leave_one_out",
            "split.protocol: Input should be 'random' or 'temporal' (got 'leave_one_out')",
        ),
    ],
)
def test_bad_params_fail_before_anything_runs(workspace_clone: Workspace, override: str, message: str) -> None:
    root = workspace_clone.root
    before = (root / "params.yaml").read_text()
    done = workspace_clone.run("recause", "run", "--set", override)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr
    assert (root / "params.yaml").read_text() == before


def _fingerprints(root: Path, paths: list[str]) -> dict[str, bytes]:
    files = [p for path in paths for p in sorted((root / path).rglob("*") if (root / path).is_dir() else [root / path])]
    return {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}


def _corrupt_ratings(root: Path, every: int = 40) -> None:
    """Set every 40th rating of the raw interactions file to 9 (outside the 1..5 scale)."""
    path = root / "data/raw/ml-100k/ml-100k.inter"
    lines = path.read_text().splitlines()
    for i in range(1, len(lines), every):
        fields = lines[i].split("\t")
        lines[i] = "\t".join([fields[0], fields[1], "9", fields[3]])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_corrupted_raw_data_stops_the_flow_at_validate_and_quarantine_mode_lets_the_good_rows_through(
    workspace_clone: Workspace,
) -> None:
    root = workspace_clone.root
    kept = ["metrics/ranking.json", "metrics/validation.json", "models/baselines", "data/processed"]
    before = _fingerprints(root, kept)

    _corrupt_ratings(root)
    done = workspace_clone.run("recause", "run")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "error: stage 'validate' failed (exit 2): data/interim/interactions.parquet "
        "(from data/raw/ml-100k/ml-100k.inter): column 'rating': rule 'rating within [1, 5]' broken by "
    )
    assert "e.g. [9.0, 9.0, 9.0, 9.0, 9.0]" in errors[0]
    assert "Task run 'split'" not in done.stdout + done.stderr  # nothing after the gate ran
    assert _fingerprints(root, kept) == before
    report = (root / "reports/validation.md").read_text()
    assert report.startswith("# Data validation: **FAILED**") and "rating within [1, 5]" in report
    _quarantine_mode_sets_the_bad_rows_apart_and_the_pipeline_continues(workspace_clone)


def _quarantine_mode_sets_the_bad_rows_apart_and_the_pipeline_continues(workspace_clone: Workspace) -> None:
    """The same corrupted data, in quarantine mode (in the same clone: the corrupted data is ingested)."""
    root = workspace_clone.root
    # up to a model fit on the split: enough to show the pipeline continues past the gate on the good rows
    done = workspace_clone.run("recause", "run", "--stage", "train_baselines", "--set", "validate.mode=quarantine")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((root / "metrics/validation.json").read_text())["interactions"]
    quarantined = pd.read_parquet(root / "data/quarantine/interactions.parquet")
    accepted = pd.read_parquet(root / "data/validated/interactions.parquet")
    assert summary["quarantined"] == len(quarantined) > 0
    assert summary["evaluated"] == len(accepted) + len(quarantined)
    # judged against the snapshot the build accepted, the good rows show no drift: no false alarm
    assert "psi_rating" in summary["drift"]
    assert set(quarantined["broken_rules"]) == {"rating within [1, 5]"} and (quarantined["rating"] == 9).all()
    assert accepted["rating"].between(1, 5).all()
    train = pd.read_parquet(root / "data/processed/train.parquet")
    assert len(train) < len(accepted) and train["rating"].max() <= 5  # downstream saw only good rows
    index = (root / "reports/data_docs/index.html").read_text()
    for table in ("users", "items", "interactions"):
        pages = list((root / f"reports/data_docs/validations/{table}-values").rglob("*.html"))
        assert len(pages) == 1 and pages[0].name in index


@pytest.mark.slow
def test_a_drift_breach_against_the_last_accepted_snapshot_stops_the_flow(workspace_clone: Workspace) -> None:
    """Every rating moved up two stars (capped at 5), judged against the snapshot the build accepted
    (the same data without the shift passes: the quarantine test above)."""
    root = workspace_clone.root
    raw = root / "data/raw/ml-100k/ml-100k.inter"
    lines = raw.read_text().splitlines()
    for i in range(1, len(lines)):
        fields = lines[i].split("\t")
        lines[i] = "\t".join([fields[0], fields[1], str(min(5, int(fields[2]) + 2)), fields[3]])
    raw.write_text("\n".join(lines) + "\n")
    done = workspace_clone.run("recause", "run", "--stage", "validate")  # the gate is where drift is judged
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interactions: drift: rating distribution shifted: PSI" in errors[0]
