"""The resumable training loop: exact resume, fingerprints, surviving out-of-memory, atomic checkpoints."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recause.models.language.encoder import Corpus, TextEncoder
from recause.models.language.finetune import TwoTower, TwoTowerObjective, next_item_examples
from recause.models.language.pretrain import SimCSEObjective
from recause.training.device import is_out_of_memory
from recause.training.loop import CheckpointDir, LoopConfig, TrainResult, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
CHECKPOINT_FILES = ["module.safetensors", "optimizer.pt", "progress.json"]


class TinyRegression:
    """A small MLP regression; rows seen by ``loss`` are recorded per step and per call."""

    def __init__(self, init_seed: int, dropout: float = 0.3, batch_norm: bool = True, n: int = 64, batch: int = 8):
        data = np.random.default_rng(123)  # the data never depends on the init seed
        self.x = torch.from_numpy(data.normal(size=(n, 5)).astype(np.float32))
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1
        torch.manual_seed(init_seed)
        layers: list[nn.Module] = [nn.Linear(5, 16)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(16))  # running statistics: buffers must be checkpointed too
        layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1)]
        self.module = nn.Sequential(*layers)
        self.batch = batch
        self.step = -1
        self.rows_seen: dict[int, int] = defaultdict(int)
        self.chunks: list[tuple[int, int]] = []  # (step, len(chunk)) of every loss call
        self.fail_in_loss: Callable[[int, int], None] = lambda step, call: None

    def examples(self, step: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.x), size=self.batch, replace=False)

    def before_step(self, step: int) -> None:
        self.step = step

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        self.fail_in_loss(self.step, sum(1 for s, _ in self.chunks if s == self.step))
        self.chunks.append((self.step, len(rows)))
        self.rows_seen[self.step] += len(rows)
        rows_t = torch.as_tensor(rows)
        prediction = self.module(self.x[rows_t]).squeeze(-1)
        return nn.functional.mse_loss(prediction, self.y[rows_t])


def config(fingerprint: str = "f1", total_steps: int = 6, micro: int = 4, checkpoint_every: int = 2) -> LoopConfig:
    return LoopConfig(
        total_steps=total_steps,
        batch_size=8,
        micro_batch_size=micro,
        seed=11,
        checkpoint_every=checkpoint_every,
        fingerprint=fingerprint,
    )


def run(
    objective: TinyRegression,
    directory: Path,
    cfg: LoopConfig,
    before_forward: Callable[[int], None] = lambda step: None,
) -> TrainResult:
    optimizer = torch.optim.AdamW(objective.module.parameters(), lr=0.01)
    return train(
        objective, optimizer, cfg, CheckpointDir(directory), CPU, before_forward=before_forward, log=lambda m: None
    )


def assert_same_state(first: nn.Module, second: nn.Module) -> None:
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def crash_at(step: int, error: type[Exception] = RuntimeError) -> Callable[[int], None]:
    def hook(current: int) -> None:
        if current == step:
            raise error(f"crash at step {step}")

    return hook


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    reference = TinyRegression(init_seed=0)
    full = run(reference, tmp_path / "a", config())
    assert full.resumed_from == 0 and len(full.losses) == 6

    crashed = TinyRegression(init_seed=0)
    with pytest.raises(RuntimeError, match="crash at step 3"):
        run(crashed, tmp_path / "b", config(), before_forward=crash_at(3))
    saved = json.loads((tmp_path / "b" / "progress.json").read_text())
    assert saved["step"] == 2  # steps 0-1 are checkpointed; step 2 was done but is lost and redone

    # A fresh process: new module and optimizer (initialised differently: the checkpoint must win).
    resumed_objective = TinyRegression(init_seed=99)
    resumed = run(resumed_objective, tmp_path / "b", config())
    assert resumed.resumed_from == 2
    assert sorted(resumed_objective.rows_seen) == [2, 3, 4, 5]
    assert resumed.losses == full.losses
    assert_same_state(resumed_objective.module, reference.module)


def test_dropout_makes_the_per_step_seeding_matter(tmp_path: Path) -> None:
    """Guards the test above: with another loop seed, the same run must end elsewhere."""
    first = TinyRegression(init_seed=0)
    run(first, tmp_path / "a", config())
    second = TinyRegression(init_seed=0)
    other_seed = LoopConfig(**{**config().__dict__, "seed": 12})
    run(second, tmp_path / "b", other_seed)
    assert not torch.equal(first.module[0].weight, second.module[0].weight)


def test_completed_run_is_not_trained_again(tmp_path: Path) -> None:
    done = run(TinyRegression(init_seed=0), tmp_path, config())
    again_objective = TinyRegression(init_seed=0)
    again = run(again_objective, tmp_path, config())
    assert again.resumed_from == 6 and again.losses == done.losses
    assert not again_objective.rows_seen


def test_checkpoint_with_another_fingerprint_is_ignored(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        run(TinyRegression(init_seed=0), tmp_path, config("old"), before_forward=crash_at(5))
    assert json.loads((tmp_path / "progress.json").read_text())["step"] == 4

    objective = TinyRegression(init_seed=0)
    result = run(objective, tmp_path, config("new"))
    assert result.resumed_from == 0
    assert sorted(objective.rows_seen) == list(range(6)) and len(result.losses) == 6
    # Identical to a run that never saw the old checkpoint.
    fresh_objective = TinyRegression(init_seed=0)
    fresh = run(fresh_objective, tmp_path / "fresh", config("new"))
    assert result.losses == fresh.losses
    assert_same_state(objective.module, fresh_objective.module)
    assert json.loads((tmp_path / "progress.json").read_text())["fingerprint"] == "new"


def oom_once_at(step: int) -> tuple[Callable[[int], None], list[int]]:
    calls: list[int] = []

    def hook(current: int) -> None:
        calls.append(current)
        if current == step and calls.count(step) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    return hook, calls


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_batch(tmp_path: Path) -> None:
    objective = TinyRegression(init_seed=0)
    hook, calls = oom_once_at(2)
    result = run(objective, tmp_path, config(micro=4), before_forward=hook)
    assert result.micro_batch_size == 2
    assert result.out_of_memory_retries == 1
    assert calls == [0, 1, 2, 2, 3, 4, 5]  # only step 2 is redone
    assert len(result.losses) == 6
    assert dict(objective.rows_seen) == dict.fromkeys(range(6), 8)  # effective batch unchanged
    assert [size for step, size in objective.chunks if step < 2] == [4, 4, 4, 4]
    assert [size for step, size in objective.chunks if step >= 2] == [2] * 16
    assert json.loads((tmp_path / "progress.json").read_text())["micro_batch_size"] == 2


def test_resumed_run_keeps_the_halved_micro_batch(tmp_path: Path) -> None:
    oom, _ = oom_once_at(1)

    def hook(step: int) -> None:
        oom(step)
        if step == 4:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run(TinyRegression(init_seed=0), tmp_path, config(micro=4), before_forward=hook)
    objective = TinyRegression(init_seed=0)
    result = run(objective, tmp_path, config(micro=4))
    assert result.resumed_from == 4
    assert result.micro_batch_size == 2 and result.out_of_memory_retries == 0
    assert [size for _, size in objective.chunks] == [2] * 8


def test_out_of_memory_mid_step_discards_the_partial_gradient(tmp_path: Path) -> None:
    """An OOM after some micro-batches were back-propagated: the retry must start from zero gradients.

    Without dropout or batch norm the loss of a batch does not depend on how it is split, so the
    run must match an uninterrupted one up to float rounding.
    """
    reference = TinyRegression(init_seed=0, dropout=0.0, batch_norm=False)
    full = run(reference, tmp_path / "a", config(micro=4))

    objective = TinyRegression(init_seed=0, dropout=0.0, batch_norm=False)

    failed: list[int] = []

    def fail(step: int, call: int) -> None:
        if step == 2 and call == 1 and not failed:  # the second micro-batch of the first attempt at step 2
            failed.append(step)
            raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")

    objective.fail_in_loss = fail
    result = run(objective, tmp_path / "b", config(micro=4))
    assert result.out_of_memory_retries == 1 and result.micro_batch_size == 2
    np.testing.assert_allclose(result.losses, full.losses, rtol=1e-5, atol=1e-7)
    for (name, a), b in zip(objective.module.state_dict().items(), reference.module.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_out_of_memory_with_micro_batch_one_is_raised(tmp_path: Path) -> None:
    objective = TinyRegression(init_seed=0, batch_norm=False)
    hook, calls = oom_once_at(0)
    with pytest.raises(torch.OutOfMemoryError):
        run(objective, tmp_path, config(micro=1), before_forward=hook)
    assert calls == [0]
    assert not (tmp_path / "progress.json").exists()


def test_other_errors_propagate_without_retry(tmp_path: Path) -> None:
    objective = TinyRegression(init_seed=0)
    calls: list[int] = []

    def hook(step: int) -> None:
        calls.append(step)
        if step == 1:
            raise ConnectionError("connection reset")

    with pytest.raises(ConnectionError, match="connection reset"):
        run(objective, tmp_path, config(micro=4), before_forward=hook)
    assert calls == [0, 1]


def test_is_out_of_memory_recognises_cuda_oom_only() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("anything"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float but found Half"))
    assert not is_out_of_memory(MemoryError())


def test_checkpoint_save_is_atomic_and_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "ckpt"
    objective = TinyRegression(init_seed=0)
    optimizer = torch.optim.AdamW(objective.module.parameters(), lr=0.01)
    checkpoints = CheckpointDir(directory)
    for step in (1, 2):
        # Leftovers of an earlier crash mid-save must not survive or get in the way.
        for leftover in (".ckpt.saving", ".ckpt.old"):
            (tmp_path / leftover).mkdir()
            (tmp_path / leftover / "junk").write_text("x")
        checkpoints.save({"step": step, "fingerprint": "f"}, objective.module, optimizer)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
        assert sorted(p.name for p in directory.iterdir()) == CHECKPOINT_FILES

    other = TinyRegression(init_seed=5)
    other_optimizer = torch.optim.AdamW(other.module.parameters(), lr=0.01)
    assert checkpoints.load("another", other.module, other_optimizer) is None
    assert checkpoints.load("f", other.module, other_optimizer) == {"step": 2, "fingerprint": "f"}
    assert_same_state(other.module, objective.module)

    # A save that fails half-way leaves the previous checkpoint whole.
    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save({"step": 3, "fingerprint": "f"}, objective.module, optimizer)
    monkeypatch.undo()
    assert sorted(p.name for p in directory.iterdir()) == CHECKPOINT_FILES
    assert json.loads((directory / "progress.json").read_text())["step"] == 2
    assert checkpoints.load("f", other.module, other_optimizer)["step"] == 2


def tiny_bert_encoder(seed: int) -> TextEncoder:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    bert = BertModel(
        BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    )
    return TextEncoder(bert, pooling="mean", normalize=True)


def test_simcse_on_a_tiny_bert_resumes_exactly(tmp_path: Path) -> None:
    """The real pretraining objective through the loop: dropout views, in-batch negatives, resume."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 12, size=24)
    ids = torch.zeros((24, 12), dtype=torch.long)
    mask = torch.zeros((24, 12), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.from_numpy(rng.integers(5, 100, size=length))
        mask[row, :length] = 1
    corpus = Corpus(ids, mask)
    cfg = LoopConfig(total_steps=5, batch_size=8, micro_batch_size=8, seed=3, checkpoint_every=2, fingerprint="simcse")

    def objective(seed: int) -> SimCSEObjective:
        return SimCSEObjective(tiny_bert_encoder(seed), corpus, CPU, batch_size=8, seed=3, temperature=0.05)

    def go(obj: SimCSEObjective, directory: Path, hook: Callable[[int], None] = lambda s: None) -> TrainResult:
        optimizer = torch.optim.AdamW(obj.module.parameters(), lr=1e-3)
        return train(obj, optimizer, cfg, CheckpointDir(directory), CPU, before_forward=hook, log=lambda m: None)

    reference = objective(0)
    full = go(reference, tmp_path / "a")
    assert all(np.isfinite(full.losses)) and full.losses[0] > 0
    with pytest.raises(RuntimeError):
        go(objective(0), tmp_path / "b", crash_at(3))
    resumed_objective = objective(7)
    resumed = go(resumed_objective, tmp_path / "b")
    assert resumed.resumed_from == 2 and resumed.losses == full.losses
    assert_same_state(resumed_objective.module, reference.module)


def _token_corpus(rows: int, seed: int) -> Corpus:
    """``rows`` token sequences of 3-11 ids (padding 0), as the tokenizer would give them."""
    rng = np.random.default_rng(seed)
    ids = torch.zeros((rows, 12), dtype=torch.long)
    mask = torch.zeros((rows, 12), dtype=torch.long)
    for row, length in enumerate(rng.integers(3, 12, size=rows)):
        ids[row, :length] = torch.from_numpy(rng.integers(5, 100, size=length))
        mask[row, :length] = 1
    return Corpus(ids, mask)


def test_two_tower_finetuning_on_a_tiny_bert_resumes_exactly_item_cache_included(tmp_path: Path) -> None:
    """The real fine-tuning objective through the loop: the item cache is refreshed at steps 0 and 3, so the
    run that crashed at step 3 resumes at step 2 with the cache of step 0 from its checkpoint, and ends with
    the uninterrupted run's losses and weights."""
    n_items, rng = 20, np.random.default_rng(1)
    corpus = _token_corpus(n_items, seed=2)
    events = pd.DataFrame(
        {"user_id": np.repeat(["u1", "u2", "u3"], 8), "item_id": rng.integers(0, n_items, 24), "timestamp": range(24)}
    )
    examples = next_item_examples(events, events["item_id"].to_numpy(), n_items, history_length=4)
    cfg = LoopConfig(total_steps=5, batch_size=6, micro_batch_size=6, seed=3, checkpoint_every=2, fingerprint="tt")

    def objective(seed: int) -> TwoTowerObjective:
        model = TwoTower(tiny_bert_encoder(seed), 16, n_items)
        return TwoTowerObjective(model, corpus, examples, CPU, 6, 0.05, True, refresh_every=3, embed_batch_size=8)

    def go(obj: TwoTowerObjective, directory: Path, hook: Callable[[int], None] = lambda s: None) -> TrainResult:
        optimizer = torch.optim.AdamW(obj.module.parameters(), lr=1e-3)
        return train(obj, optimizer, cfg, CheckpointDir(directory), CPU, before_forward=hook, log=lambda m: None)

    reference = objective(0)
    full = go(reference, tmp_path / "a")
    assert all(np.isfinite(full.losses)) and len(full.losses) == 5
    with pytest.raises(RuntimeError):
        go(objective(0), tmp_path / "b", crash_at(3))
    resumed_objective = objective(7)  # other initial weights: everything must come from the checkpoint
    resumed = go(resumed_objective, tmp_path / "b")
    assert resumed.resumed_from == 2 and resumed.losses == full.losses
    assert_same_state(resumed_objective.module, reference.module)  # the item cache is one of its buffers


def test_a_kill_between_the_two_renames_of_a_save_loses_no_progress(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    objective = TinyRegression(init_seed=0)
    optimizer = torch.optim.AdamW(objective.module.parameters(), lr=0.01)
    checkpoints = CheckpointDir(directory)
    checkpoints.save({"step": 2, "fingerprint": "f"}, objective.module, optimizer)
    checkpoints.save({"step": 4, "fingerprint": "f"}, objective.module, optimizer)
    # What save leaves when killed after moving the current checkpoint aside, before moving the new one in.
    directory.rename(tmp_path / ".ckpt.saving")
    assert checkpoints.load("f", objective.module, optimizer)["step"] == 4
    # Killed one step earlier, the previous checkpoint only sits aside as .old.
    (tmp_path / ".ckpt.saving").rename(tmp_path / ".ckpt.old")
    assert checkpoints.load("f", objective.module, optimizer)["step"] == 4
    shutil.rmtree(tmp_path / ".ckpt.old")
    assert checkpoints.load("f", objective.module, optimizer) is None


def test_validation_keeps_the_best_step_and_survives_a_resume(tmp_path: Path) -> None:
    def validator(objective: TinyRegression) -> Callable[[], float]:
        # Scores as the model's state stands: peaks at step 4 of 6, so training ends past the best.
        scores = {2: 0.1, 4: 0.9, 6: 0.5}
        return lambda: scores[max(objective.rows_seen) + 1]

    cfg = LoopConfig(
        total_steps=6, batch_size=8, micro_batch_size=4, seed=11, checkpoint_every=2, fingerprint="v", validate_every=2
    )
    reference = TinyRegression(init_seed=0)
    until_best = TinyRegression(init_seed=0)
    run(until_best, tmp_path / "best", config(total_steps=4))
    optimizer = torch.optim.AdamW(reference.module.parameters(), lr=0.01)
    full = train(reference, optimizer, cfg, CheckpointDir(tmp_path / "a"), CPU, log=lambda m: None,
                 validate=validator(reference))  # fmt: skip
    assert full.best_step == 4 and full.validation == [(2, 0.1), (4, 0.9), (6, 0.5)]
    assert_same_state(reference.module, until_best.module)  # ends with step 4's weights, not step 6's

    crashed = TinyRegression(init_seed=0)
    optimizer = torch.optim.AdamW(crashed.module.parameters(), lr=0.01)
    with pytest.raises(RuntimeError):
        train(crashed, optimizer, cfg, CheckpointDir(tmp_path / "b"), CPU, before_forward=crash_at(5),
              log=lambda m: None, validate=validator(crashed))  # fmt: skip
    resumed = TinyRegression(init_seed=7)
    optimizer = torch.optim.AdamW(resumed.module.parameters(), lr=0.01)
    again = train(resumed, optimizer, cfg, CheckpointDir(tmp_path / "b"), CPU, log=lambda m: None,
                  validate=validator(resumed))  # fmt: skip
    assert again.resumed_from == 4 and again.best_step == 4 and again.validation == full.validation
    assert_same_state(resumed.module, reference.module)


def test_loss_figure_shows_validation_and_the_kept_step() -> None:
    from recause.training.report import loss_figure

    plain = loss_figure([3.0, 2.5, 2.0], "plain")
    assert len(plain.axes) == 1
    figure = loss_figure([3.0, 2.5, 2.0, 1.8], "with validation", validation=[(2, 0.1), (4, 0.3)], best_step=4)
    loss_axis, validation_axis = figure.axes
    assert list(validation_axis.lines[0].get_xdata()) == [2, 4]
    assert list(validation_axis.lines[1].get_xdata()) == [4, 4]  # the kept step
    assert "kept: step 4" in [t.get_text() for t in validation_axis.get_legend().get_texts()]


def test_patience_stops_early_keeps_the_best_and_a_rerun_trains_no_further(tmp_path: Path) -> None:
    def validator(objective: TinyRegression) -> Callable[[], float]:
        # improves at step 2, then twice not (steps 4, 6): patience 2 stops there, before step 8's peak
        scores = {2: 0.5, 4: 0.4, 6: 0.3, 8: 0.9, 10: 0.1}
        return lambda: scores[max(objective.rows_seen) + 1]

    def cfg(patience: int | None) -> LoopConfig:
        return LoopConfig(total_steps=10, batch_size=8, micro_batch_size=8, seed=11, checkpoint_every=4,
                          fingerprint="p", validate_every=2, patience=patience)  # fmt: skip

    def go(objective: TinyRegression, directory: Path | None, patience: int | None) -> TrainResult:
        optimizer = torch.optim.AdamW(objective.module.parameters(), lr=0.01)
        checkpoints = None if directory is None else CheckpointDir(directory)
        return train(objective, optimizer, cfg(patience), checkpoints, CPU, log=lambda m: None,
                     validate=validator(objective))  # fmt: skip

    patient = go(TinyRegression(init_seed=0), None, patience=None)
    assert len(patient.losses) == 10 and patient.best_step == 8 and not patient.stopped_early

    stopped_objective = TinyRegression(init_seed=0)
    stopped = go(stopped_objective, tmp_path, patience=2)
    assert stopped.stopped_early and len(stopped.losses) == 6 and sorted(stopped_objective.rows_seen) == list(range(6))
    assert stopped.validation == [(2, 0.5), (4, 0.4), (6, 0.3)] and stopped.best_step == 2
    until_best = TinyRegression(init_seed=0)
    run(until_best, tmp_path / "best", config(total_steps=2, micro=8))
    assert_same_state(stopped_objective.module, until_best.module)  # ends with step 2's weights
    assert json.loads((tmp_path / "progress.json").read_text())["step"] == 6  # the stop is checkpointed

    rerun_objective = TinyRegression(init_seed=3)
    rerun = go(rerun_objective, tmp_path, patience=2)
    assert rerun.stopped_early and rerun.resumed_from == 6 and not rerun_objective.rows_seen
    assert_same_state(rerun_objective.module, until_best.module)


def test_without_a_checkpoint_folder_nothing_is_written_and_the_run_is_the_same(tmp_path: Path) -> None:
    with_checkpoints = TinyRegression(init_seed=0)
    reference = run(with_checkpoints, tmp_path / "a", config())
    in_memory = TinyRegression(init_seed=0)
    optimizer = torch.optim.AdamW(in_memory.module.parameters(), lr=0.01)
    result = train(in_memory, optimizer, config(), None, CPU, log=lambda m: None)
    assert result.losses == reference.losses and result.resumed_from == 0
    assert_same_state(in_memory.module, with_checkpoints.module)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


# --- the one run builder: step count, loop settings, fingerprint -------------------------------


def test_planned_steps_rounds_the_examples_once_at_least_one_step_and_caps_at_max_steps() -> None:
    from recause.config.joint import JointParams
    from recause.config.language import FinetuneParams, PretrainParams
    from recause.training.run import planned_steps

    # ceil(n * epochs / batch_size); 3 * 0.1 epochs of 10 examples are 3 examples (not 4 from 0.30000000000000004)
    assert planned_steps(10, PretrainParams(epochs=0.1 * 3, batch_size=3)) == 1
    assert planned_steps(1682, PretrainParams(epochs=1.0, batch_size=64)) == 27  # ceil(26.28)
    assert planned_steps(1, PretrainParams(epochs=0.01, batch_size=64)) == 1  # never zero steps
    assert planned_steps(58_000, FinetuneParams()) == 150  # finetune's default cap
    # the language-model and joint params count alike (one count, whatever the params' class)
    for n, epochs, batch_size in ((1000, 1.0, 64), (79_619, 20.0, 2048), (3591, 3.0, 256), (777, 2.5, 100)):
        joint = planned_steps(n, JointParams(epochs=epochs, batch_size=batch_size))
        language = planned_steps(n, PretrainParams(epochs=epochs, batch_size=batch_size))
        assert joint == language == -(-n * int(epochs * 2) // (batch_size * 2))  # exact integer ceil


def test_plan_run_builds_the_loop_settings_and_fingerprints_what_the_run_depends_on() -> None:
    from recause.config.language import FinetuneParams, PretrainParams
    from recause.training.run import plan_run

    params = FinetuneParams(max_steps=40, batch_size=16, micro_batch_size=4, validate_every=7, checkpoint_every=5)
    validated = plan_run(params, 1000, ("inputs-a",), validate=lambda: 0.0, name="finetune", show_progress=False)
    assert validated.steps == validated.config.total_steps == 40 and validated.name == "finetune"
    assert (validated.config.batch_size, validated.config.micro_batch_size) == (16, 4)
    assert (validated.config.checkpoint_every, validated.config.validate_every) == (5, 7)
    # a caller's own interval wins; without a validation callback there is no validation at all
    assert plan_run(params, 1000, validate=lambda: 0.0, validate_every=3).config.validate_every == 3
    unvalidated = plan_run(params, 1000, ("inputs-a",))
    assert unvalidated.config.validate_every is None and unvalidated.config.patience is None
    assert plan_run(PretrainParams(batch_size=16), 100).config.micro_batch_size == 16  # null: the whole batch
    # the fingerprint follows the params and the inputs, nothing else
    assert unvalidated.config.fingerprint == validated.config.fingerprint
    assert plan_run(params, 1000, ("inputs-b",)).config.fingerprint != validated.config.fingerprint
    assert plan_run(params.model_copy(update={"seed": 1}), 1000, ("inputs-a",)).config.fingerprint != (
        validated.config.fingerprint
    )


def test_a_planned_run_trains_its_steps_with_its_validation_and_reports_them(tmp_path: Path) -> None:
    from recause.config.language import FinetuneParams
    from recause.training.run import plan_run

    objective = TinyRegression(init_seed=0)
    scores = iter([0.2, 0.6, 0.4])
    params = FinetuneParams(epochs=1.0, max_steps=None, batch_size=8, validate_every=2, checkpoint_every=3, seed=11)
    plan = plan_run(params, 48, validate=lambda: next(scores), show_progress=False)  # 48 examples: 6 steps
    optimizer = torch.optim.AdamW(objective.module.parameters(), lr=0.01)
    run = plan.train(objective, optimizer, CPU, checkpoints=CheckpointDir(tmp_path), log=lambda m: None)
    assert run.steps == 6 and len(run.result.losses) == 6 and sorted(objective.rows_seen) == list(range(6))
    assert run.result.validation == [(2, 0.2), (4, 0.6), (6, 0.4)] and run.result.best_step == 4
    metrics = run.metrics()
    assert metrics["steps"] == 6 and metrics["resumed_from_step"] == 0 and metrics["micro_batch_size"] == 8
    assert metrics["loss_first"] == pytest.approx(np.mean(run.result.losses))
    assert json.loads((tmp_path / "progress.json").read_text())["fingerprint"] == plan.config.fingerprint


def test_save_loss_plots_replaces_the_folder_with_one_png_per_run(tmp_path: Path) -> None:
    from recause.training.report import save_loss_plots

    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "stale.png").write_bytes(b"old")  # from an earlier run with other names
    result = TrainResult(losses=[3.0, 2.0, 1.5], validation=[(2, 0.1), (3, 0.2)], best_step=3)
    save_loss_plots(folder, {"a.png": (result, "run a"), "b.png": (result, "run b")})
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]
    assert (folder / "a.png").read_bytes()[:4] == b"\x89PNG"
