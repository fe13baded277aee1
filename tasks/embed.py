"""Stage `embed`: an embedding for every item with text (cold items included), with its id index."""

from __future__ import annotations

import json

import torch

from recause.artifacts import atomic_path, write_json
from recause.config import load_params
from recause.layout import LAYOUT
from recause.models.language.encoder import TextEncoder, embed_corpus, load_tokenizer, resolve_checkpoint, tokenize
from recause.training.device import runtime
from recause.training.faults import FaultInjector
from recause.training.run import Timer
from tasks._stage import run_stage
from tasks._training import item_texts

FINETUNED = LAYOUT.finetuned_encoder
OUTPUT = LAYOUT.embeddings
METRICS = LAYOUT.metrics_file("embed")


def main() -> None:
    from safetensors.torch import save_file
    from tqdm import tqdm

    params = load_params().encoder
    source = resolve_checkpoint(str(FINETUNED), "the `finetune` stage's output")
    device, dtype = runtime(params)
    items = item_texts()
    corpus = tokenize(load_tokenizer(source), items["text"].tolist(), params.max_length)
    encoder = TextEncoder.load(source, params.pooling, params.normalize).to(device)
    FaultInjector("embed")(0)
    with Timer() as timer:
        embeddings = embed_corpus(
            encoder, corpus, params.batch_size, device, dtype,
            progress=lambda it, desc: tqdm(list(it), desc=desc, unit="batch", leave=False, disable=None),
        )  # fmt: skip
    # One metadata key: safetensors writes several in hash-map order, which changes the file's bytes (and its
    # DVC hash) from run to run.
    metadata = {"item_ids": json.dumps(items["item_id"].tolist())}
    with atomic_path(OUTPUT) as tmp:
        save_file({"embeddings": torch.from_numpy(embeddings)}, str(tmp), metadata=metadata)
    rate = len(items) / timer.seconds if timer.seconds > 0 else float("inf")
    write_json(
        METRICS,
        {
            "items": len(items),
            "dim": int(embeddings.shape[1]),
            "seconds": round(timer.seconds, 3),
            "items_per_second": round(rate, 1),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "batch_size": params.batch_size,
        },
    )
    print(
        f"embed: {len(items):,} items x {embeddings.shape[1]} in {timer.seconds:.1f}s ({rate:.0f} items/s) -> {OUTPUT}"
    )


if __name__ == "__main__":
    run_stage(main)
