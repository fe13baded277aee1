"""Stage `pretrain`: self-supervised domain adaptation of the language model on the items' text."""

from __future__ import annotations

from pathlib import Path

import torch

from recause.artifacts import atomic_path, write_json
from recause.config import load_params
from recause.errors import InputDataError
from recause.layout import LAYOUT
from recause.models.language.encoder import (
    TextEncoder,
    checkpoint_summary,
    has_mlm_head,
    load_tokenizer,
    resolve_checkpoint,
    tokenize,
)
from recause.models.language.pretrain import SimCSEObjective, alignment_uniformity
from recause.training.device import runtime
from recause.training.digest import file_digest
from recause.training.report import save_loss_plots
from recause.training.run import plan_run
from tasks._stage import run_stage
from tasks._training import ITEMS, item_texts, stage_inputs, train_stage

OUTPUT = LAYOUT.pretrained
METRICS = LAYOUT.metrics_file("pretrain")
PLOTS = LAYOUT.plot_dir("pretrain")


def extra_passages(paths: tuple[str, ...]) -> list[str]:
    passages = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise InputDataError(f"pretrain.extra_text: file not found: {path}")
        try:
            passages += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            raise InputDataError(f"pretrain.extra_text: {path} is not UTF-8 text ({error.reason})") from None
    return passages


def main() -> None:
    params = load_params()
    encoder_params, train_params = params.encoder, params.pretrain
    source = resolve_checkpoint(encoder_params.model)
    with_head = has_mlm_head(source)
    print(
        f"pretrain: {source} — "
        + (
            "MLM head found: SimCSE + MLM"
            if with_head
            else "no trained MLM head: SimCSE only (no MLM on a random head)"
        )
    )
    device, dtype = runtime(encoder_params)
    texts = item_texts()["text"].tolist() + extra_passages(train_params.extra_text)
    tokenizer = load_tokenizer(source)
    corpus = tokenize(tokenizer, texts, encoder_params.max_length)
    torch.manual_seed(train_params.seed)
    encoder = TextEncoder.load(source, encoder_params.pooling, encoder_params.normalize, with_mlm_head=with_head)
    encoder.to(device).train_top_layers(train_params.trainable_layers)
    before = alignment_uniformity(encoder, corpus, device, train_params.quality_sample)

    objective = SimCSEObjective(
        encoder, corpus, device, train_params.batch_size, train_params.seed, train_params.temperature,
        train_params.mlm_weight, train_params.mlm_probability, tokenizer.mask_token_id, tokenizer.all_special_ids,
    )  # fmt: skip
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=train_params.learning_rate, weight_decay=train_params.weight_decay)
    depends_on = stage_inputs(encoder_params, str(source), file_digest(ITEMS), len(texts))
    plan = plan_run(train_params, len(corpus), depends_on, name="pretrain")
    run = train_stage("pretrain", plan, objective, optimizer, device, dtype)
    after = alignment_uniformity(encoder, corpus, device, train_params.quality_sample)

    with atomic_path(OUTPUT) as tmp:
        encoder.save(tmp, tokenizer)
    save_loss_plots(PLOTS, {"loss.png": (run.result, f"pretrain: SimCSE{' + MLM' if objective.use_mlm else ''} loss")})
    write_json(
        METRICS,
        {
            "objective": "simcse+mlm" if objective.use_mlm else "simcse",
            "checkpoint": checkpoint_summary(source, encoder_params.model),
            "texts": len(texts),
            **run.metrics(),
            "before": before,
            "after": after,
        },
    )
    print(
        f"pretrain: {run.steps} steps in {run.seconds:.1f}s, loss {run.result.losses[0]:.3f} -> "
        f"{run.result.losses[-1]:.3f}; "
        f"alignment {before['alignment']:.3f} -> {after['alignment']:.3f}, "
        f"uniformity {before['uniformity']:.3f} -> {after['uniformity']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
