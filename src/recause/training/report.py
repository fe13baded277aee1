"""Figures of a training run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recause.artifacts import atomic_path
from recause.training.loop import TrainResult


def loss_figure(  # noqa: ANN201 (matplotlib Figure)
    losses: list[float],
    title: str,
    window: int = 10,
    validation: list[tuple[int, float]] | None = None,
    best_step: int | None = None,
):
    """Loss per optimizer step with a moving average, so the trend is visible through the noise;
    with ``validation``, its scores on a second axis and the step that was kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.0), dpi=110)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="#9ab", linewidth=0.8, label="step loss")
    if len(losses) >= window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="#1f5f8b", linewidth=2.0, label=f"mean of {window} steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    legend_axis = ax
    if validation:
        other = ax.twinx()
        steps_done, scores = zip(*validation, strict=True)
        other.plot(steps_done, scores, "o-", color="#c0392b", linewidth=1.5, label="validation (higher is better)")
        if best_step is not None:
            other.axvline(best_step, color="#c0392b", linestyle=":", label=f"kept: step {best_step}")
        other.set_ylabel("validation score")
        more_handles, more_labels = other.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
        legend_axis = other  # the axis drawn last, so the legend is not covered by its lines
    legend_axis.legend(handles, labels, loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def save_loss_plots(directory: Path, runs: Mapping[str, tuple[TrainResult, str]]) -> None:
    """Replace ``directory`` (at once) by one PNG per run: file name -> (the run's result, the figure's title)."""
    import matplotlib.pyplot as plt

    with atomic_path(directory) as tmp:
        tmp.mkdir(parents=True)
        for name, (result, title) in runs.items():
            figure = loss_figure(result.losses, title, validation=result.validation, best_step=result.best_step)
            figure.savefig(tmp / name)
            plt.close(figure)
