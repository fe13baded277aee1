"""Stage `finetune`: two-tower behaviour fine-tuning of the pretrained language model.

It learns from the cold-item variant's train part: a subset of the main train (no leakage into
the main valid/test) that has never seen the held-out items (so `cold` measures true cold start).
"""

from __future__ import annotations

import numpy as np
import torch

from recause.artifacts import atomic_path, read_parquet, write_json
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix
from recause.errors import InputDataError
from recause.layout import LAYOUT
from recause.models.language.collaborative_head import HeadGrid, fit_collaborative_head
from recause.models.language.encoder import TextEncoder, embed_corpus, load_tokenizer, resolve_checkpoint, tokenize
from recause.models.language.finetune import (
    TwoTower,
    TwoTowerObjective,
    cold_start_validator,
    hold_out_items,
    next_item_examples,
)
from recause.training.device import runtime
from recause.training.digest import file_digest
from recause.training.report import save_loss_plots
from recause.training.run import plan_run
from tasks._stage import run_stage
from tasks._training import ITEMS, item_texts, stage_inputs, train_stage

PRETRAINED = LAYOUT.pretrained
TRAIN = LAYOUT.split_dir("cold_item") / "train.parquet"
OUTPUT = LAYOUT.finetuned
METRICS = LAYOUT.metrics_file("finetune")
PLOTS = LAYOUT.plot_dir("finetune")


def main() -> None:
    params = load_params()
    encoder_params, train_params = params.encoder, params.finetune
    source = resolve_checkpoint(str(PRETRAINED), "the `pretrain` stage's output")
    device, dtype = runtime(encoder_params)
    items = item_texts()
    index = IdIndex(items["item_id"].to_numpy(dtype=str))
    interactions = read_parquet(TRAIN, "cold-item train part")
    rows = index.positions(interactions["item_id"].to_numpy())
    if (rows < 0).any():
        raise InputDataError(f"{TRAIN}: {(rows < 0).sum()} interactions name items without text in {ITEMS}")
    validator, held_out = None, interactions.iloc[:0]
    users = IdIndex.first_seen(interactions["user_id"])
    if train_params.validation_item_fraction > 0:
        interactions, held_out = hold_out_items(interactions, train_params.validation_item_fraction, train_params.seed)
        rows = index.positions(interactions["item_id"].to_numpy())
    history, held_out_matrix = (interaction_matrix(frame, users, index) for frame in (interactions, held_out))
    examples = next_item_examples(interactions, rows, len(items), train_params.history_length)
    if len(examples.targets) < 2:
        raise InputDataError(f"{TRAIN}: fewer than 2 (history, next item) examples: nothing to fine-tune on")

    tokenizer = load_tokenizer(source)
    corpus = tokenize(tokenizer, items["text"].tolist(), encoder_params.max_length)
    torch.manual_seed(train_params.seed)
    encoder = TextEncoder.load(source, encoder_params.pooling, encoder_params.normalize)
    encoder.train_top_layers(train_params.trainable_layers)
    dim = int(encoder.backbone.config.hidden_size)
    model = TwoTower(encoder, dim, len(items)).to(device)
    collaborative = train_params.retrieval_head == "collaborative"
    head_grid = HeadGrid(**train_params.collaborative_head.model_dump())
    if train_params.validation_item_fraction > 0:
        validator = cold_start_validator(
            model, corpus, history, held_out_matrix, device, train_params.temperature, encoder_params.batch_size,
            collaborative=head_grid if collaborative else None,
        )  # fmt: skip
    objective = TwoTowerObjective(
        model, corpus, examples, device, train_params.batch_size, train_params.temperature,
        train_params.logq_correction, train_params.refresh_every, encoder_params.batch_size,
    )  # fmt: skip
    heads = [*model.user_projection.parameters(), *model.item_bias.parameters()]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": train_params.learning_rate},
            {"params": heads, "lr": train_params.head_learning_rate},
        ],
        weight_decay=train_params.weight_decay,
    )
    depends_on = stage_inputs(encoder_params, file_digest(PRETRAINED, TRAIN, ITEMS))
    plan = plan_run(train_params, len(examples.targets), depends_on, validator, name="finetune")
    run = train_stage("finetune", plan, objective, optimizer, device, dtype)
    result, steps = run.result, run.steps
    heads, head_summary = model.heads(), {}
    if collaborative:
        embeddings = embed_corpus(encoder, corpus, encoder_params.batch_size, device)
        head, head_summary = fit_collaborative_head(embeddings, history, held_out_matrix, head_grid)
        heads |= head.heads()

    with atomic_path(OUTPUT) as tmp:
        encoder.save(tmp / "encoder", tokenizer)
        from safetensors.numpy import save_file

        save_file(heads, str(tmp / "two_tower.safetensors"))
        write_json(
            tmp / "two_tower.json",
            {"temperature": train_params.temperature, "dim": dim, "retrieval_head": train_params.retrieval_head},
        )
    save_loss_plots(PLOTS, {"loss.png": (result, "finetune: two-tower sampled-softmax loss (logQ-corrected)")})
    write_json(
        METRICS,
        {
            "examples": int(len(examples.targets)),
            "examples_seen": int(steps * train_params.batch_size),
            "epochs_seen": round(steps * train_params.batch_size / len(examples.targets), 4),
            **run.metrics(),
            "validation_ndcg@10": {str(step): round(score, 6) for step, score in result.validation},
            "best_step": result.best_step,
            "items_with_events": int(np.isfinite(examples.item_log_share).sum()),
            "retrieval_head": train_params.retrieval_head,
            **({"collaborative_head": head_summary} if head_summary else {}),
        },
    )
    print(
        f"finetune: {steps} steps ({len(examples.targets):,} examples) in {run.seconds:.1f}s, "
        f"loss {np.mean(result.losses[:10]):.3f} -> {np.mean(result.losses[-10:]):.3f}"
        + (
            f"; kept step {result.best_step} (validation NDCG@10 {max(s for _, s in result.validation):.4f})"
            if result.validation
            else ""
        )
    )


if __name__ == "__main__":
    run_stage(main)
