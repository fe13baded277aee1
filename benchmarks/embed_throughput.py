"""Text-embedding throughput: recause's encoder path against sentence-transformers (the peer) on CPU.

Both embed the MovieLens-100K item texts (data/validated/items.parquet, written by `make run`) with the
same MiniLM-L6 checkpoint, max length 48, batch size and torch thread count, mean pooling + L2 norm.
recause's time includes tokenisation (sentence-transformers tokenises inside `encode`). After one
warm-up each, the paths take turns --repeats times (so a shared machine's changing load hits them
alike) and each one's best is kept. Faster paths, each checked against recause's fp32 embeddings (goal: min
cosine >= 0.99): torch int8 dynamic quantisation; the TextEncoder exported to ONNX and run by ONNX Runtime
(same sorted batches, tokenisation included) in fp32, in int8 (dynamic, per channel) and in int8 with the
FFN output MatMuls kept fp32 (that exclusion was picked by one trial on this corpus).

sentence-transformers, onnxruntime and onnx are not dependencies: `.venv/bin/pip install -e '.[bench]'`.
Run: .venv/bin/python benchmarks/embed_throughput.py [--threads 2] [--batch-size 128] [--repeats 3] [--no-int8] [--no-onnx]
Prints sentences/s, the ratio recause / sentence-transformers (goal >= 1.0) and the embeddings' agreement.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recause.layout import LAYOUT  # noqa: E402
from recause.models.language.encoder import (  # noqa: E402
    Corpus,
    TextEncoder,
    embed_corpus,
    load_tokenizer,
    resolve_checkpoint,
    tokenize,
)

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)
ITEMS = WORKSPACE.items
MAX_LENGTH = 48
GOAL_COSINE = 0.99
ONNX_ROWS = {
    "onnx": "recause ONNX Runtime fp32",
    "onnx-int8": "recause ONNX Runtime int8 (per channel)",
    "onnx-int8-mixed": "recause ORT int8, FFN-out MatMuls fp32",
}


def best_of(paths: dict[str, Callable[[], np.ndarray]], repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    """Fastest of ``repeats`` timed calls per (warmed-up) path, the paths taking turns, and its embeddings."""
    out: dict[str, tuple[float, np.ndarray]] = {name: (float("inf"), np.empty(0)) for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            started = time.perf_counter()
            emb = fn()
            out[name] = (min(out[name][0], time.perf_counter() - started), np.asarray(emb, dtype=np.float32))
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Max abs difference, min and mean row cosine (rows L2-normalised again to be safe)."""
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.abs(a - b).max()), float(cos.min()), float(cos.mean())


def ort_session(onnx_path: Path, threads: int):  # noqa: ANN201
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def ort_embed(session, corpus: Corpus, batch_size: int) -> np.ndarray:  # noqa: ANN001
    """Like embed_corpus: batches sorted by length, trimmed to their longest text, rows put back in order."""
    order = np.argsort(-corpus.attention_mask.sum(dim=1).numpy(), kind="stable")
    chunks = []
    for start in range(0, len(order), batch_size):
        batch = corpus.batch(order[start : start + batch_size], torch.device("cpu"))
        chunks.append(session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})[0])
    out = np.empty((len(corpus), chunks[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(chunks)
    return out


def onnx_paths(encoder: TextEncoder, tokenizer, texts: list[str], args) -> dict[str, Callable[[], np.ndarray]]:  # noqa: ANN001
    """The whole TextEncoder (backbone + pooling + L2 norm) exported once to ONNX (dynamic batch and sequence
    axes) and run by ONNX Runtime: fp32, plus int8 variants unless --no-int8; each path warmed up."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    example = tokenize(tokenizer, ["a padded example text of several words", "short"], MAX_LENGTH)  # keeps the mask
    names = ["input_ids", "attention_mask"]
    sessions = {}
    with tempfile.TemporaryDirectory(prefix="recause-onnx-") as tmp:  # sessions hold the models in memory
        fp32_onnx = Path(tmp) / "encoder.onnx"
        with warnings.catch_warnings():  # the legacy (TorchScript) exporter is deprecated; its tracer warns too
            warnings.simplefilter("ignore")
            axes = {name: {0: "batch", 1: "seq"} for name in names} | {"embedding": {0: "batch"}}
            spec = {"input_names": names, "output_names": ["embedding"], "dynamic_axes": axes, "opset_version": 17}
            torch.onnx.export(
                encoder, (example.input_ids, example.attention_mask), str(fp32_onnx), dynamo=False, **spec
            )
        sessions["onnx"] = ort_session(fp32_onnx, args.threads)
        # BERT's FFN output projections see large activation outliers: int8 there costs most of the agreement.
        nodes = onnx.load(str(fp32_onnx)).graph.node
        ffn_out = [node.name for node in nodes if re.search(r"/layer\.\d+/output/dense/MatMul$", node.name)]
        for name, excluded in {"onnx-int8": [], "onnx-int8-mixed": ffn_out}.items() if not args.no_int8 else ():
            logging.disable(logging.WARNING)  # ORT's "consider pre-processing" hint
            out = Path(tmp) / f"{name}.onnx"
            quantize_dynamic(fp32_onnx, out, per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
            logging.disable(logging.NOTSET)
            sessions[name] = ort_session(out, args.threads)
    paths = {}
    for name, session in sessions.items():
        paths[name] = lambda s=session: ort_embed(s, tokenize(tokenizer, texts, MAX_LENGTH), args.batch_size)
        paths[name]()  # the warm-up: fail here, not inside the timing loop
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 dynamic-quantisation rows")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    args = parser.parse_args()

    if importlib.util.find_spec("sentence_transformers") is None:
        print("sentence-transformers is not installed; install the bench extra:\n  .venv/bin/pip install -e '.[bench]'")
        sys.exit(2)
    if not ITEMS.is_file():
        raise SystemExit(f"{ITEMS.relative_to(ROOT)} not found: run `make run` first to build the validated data")
    items = pd.read_parquet(ITEMS)
    if "text" not in items.columns:
        raise SystemExit(f"{ITEMS.relative_to(ROOT)} has no 'text' column: run `make run` first")
    texts = items["text"].astype(str).tolist()

    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    torch.set_num_threads(args.threads)
    path = resolve_checkpoint("minilm-l6")
    cpu = torch.device("cpu")
    tokenizer = load_tokenizer(path)
    encoder = TextEncoder.load(path, "mean", True).eval()
    peer = SentenceTransformer(str(path), device="cpu")
    peer.max_seq_length = MAX_LENGTH

    def recause_embed(model: TextEncoder) -> Callable[[], np.ndarray]:
        return lambda: embed_corpus(model, tokenize(tokenizer, texts, MAX_LENGTH), args.batch_size, cpu)

    def peer_embed() -> np.ndarray:
        return peer.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)

    paths = {"peer": peer_embed, "fp32": recause_embed(encoder)}
    for warm_up in paths.values():
        warm_up()
    int8_note = "skipped (--no-int8)"
    if not args.no_int8:
        try:
            with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao
                warnings.simplefilter("ignore")
                quantized = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(encoder), {torch.nn.Linear}, torch.qint8
                )
            paths["int8"] = recause_embed(quantized)
            paths["int8"]()  # the warm-up: fail here, not inside the timing loop
        except Exception as error:  # noqa: BLE001 (report any backend failure and go on)
            int8_note = f"skipped ({type(error).__name__}: {error})"
            paths.pop("int8", None)
    onnx_note = "skipped (--no-onnx)"
    if not args.no_onnx and importlib.util.find_spec("onnxruntime") is None:
        onnx_note = "skipped: onnxruntime is not installed (.venv/bin/pip install -e '.[bench]')"
    elif not args.no_onnx:
        try:
            paths.update(onnx_paths(encoder, tokenizer, texts, args))
        except Exception as error:  # noqa: BLE001 (report any exporter/runtime failure and go on)
            onnx_note = f"skipped ({type(error).__name__}: {error})"
    results = best_of(paths, args.repeats)
    peer_s, peer_emb = results["peer"]
    ours_s, ours_emb = results["fp32"]
    diff, min_cos, _ = agreement(ours_emb, peer_emb)

    n = len(texts)
    print(
        f"embedding throughput: {n} MovieLens-100K item texts, MiniLM-L6, max_length {MAX_LENGTH}, "
        f"batch {args.batch_size}, {torch.get_num_threads()} thread(s), best of {args.repeats}"
    )
    print(
        f"  torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a busy machine skews ratios)"
    )
    print(f"  {'path (recause rows incl. tokenise)':<40}{'time':>9}{'sentences/s':>13}{'vs peer':>9}  min cos vs fp32")
    print(f"  {'sentence-transformers (peer)':<40}{peer_s:8.3f}s{n / peer_s:13.0f}{1.0:8.2f}x")
    print(f"  {'recause fp32':<40}{ours_s:8.3f}s{n / ours_s:13.0f}{peer_s / ours_s:8.2f}x")
    agreements = [f"  sentence-transformers (peer): max |diff| {diff:.2e}, min cosine {min_cos:.8f}"]
    for name, label in {"int8": "recause torch int8 dynamic", **ONNX_ROWS}.items():
        if name not in results:
            if name in ("int8", "onnx"):  # one note for all the ONNX rows
                print(f"  {label}: {int8_note if name == 'int8' else onnx_note}")
            continue
        fast_s, emb = results[name]
        q_diff, q_min, q_mean = agreement(emb, ours_emb)
        goal = "meets goal" if q_min >= GOAL_COSINE else "MISSES goal"
        print(f"  {label:<40}{fast_s:8.3f}s{n / fast_s:13.0f}{peer_s / fast_s:8.2f}x  {q_min:.5f} ({goal})")
        agreements.append(f"  {label}: max |diff| {q_diff:.2e}, min cosine {q_min:.5f}, mean {q_mean:.5f} ({goal})")
    print(f"agreement with recause fp32 (faster paths' goal: min cosine >= {GOAL_COSINE})", *agreements, sep="\n")


if __name__ == "__main__":
    main()
