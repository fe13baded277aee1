"""Present ranking metrics: flat rows (for tables and Prefect artifacts) and bar charts."""

from __future__ import annotations

from typing import Any

RankingMetrics = dict[str, dict[str, dict[str, float]]]  # split -> model -> "metric@k" -> value
BIAS_PREFIXES = ("snips_", "mean_popularity@", "coverage@", "gini@")  # measures beside the accuracy metrics
POPULARITY_MEASURES = ("mean_popularity", "coverage", "gini")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return "[" + ", ".join(str(_cell(v)) for v in value) + "]"
    return value


def nested_rows(data: dict[str, Any], levels: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """Flatten ``{a: {b: {metric: value}}}`` into rows ``{levels[0]: a, levels[1]: b, metric: value}``."""
    if not levels:
        return [{name: _cell(value) for name, value in data.items()}]
    return [
        {levels[0]: key, **row}
        for key, inner in data.items()
        if isinstance(inner, dict)
        for row in nested_rows(inner, levels[1:])
    ]


def metric_rows(ranking: RankingMetrics) -> list[dict[str, Any]]:
    """One row per (split, model) with every metric as a column, values rounded for display."""
    return nested_rows(ranking, ("split", "model"))


def ranking_figure(models: dict[str, dict[str, float]], title: str) -> Any:
    """Grouped bars: one group per metric@k, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # popularity measures have their own scales (popularity_figure); the SNIPS estimates share [0, 1]
    names = [n for n in next(iter(models.values())) if not n.startswith(BIAS_PREFIXES[1:])] if models else []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.2), dpi=110)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(names))
    for i, (model, values) in enumerate(models.items()):
        bars = ax.bar(x + i * width - 0.4 + width / 2, [values[n] for n in names], width, label=model)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("value (mean over users)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def popularity_figure(models: dict[str, dict[str, float]], title: str) -> Any:
    """One panel per popularity-bias measure of the top lists (mean popularity, coverage, Gini), a bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(models.values()), {})
    keys = [key for measure in POPULARITY_MEASURES for key in first if key.startswith(f"{measure}@")]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4.0 * max(len(keys), 1), 3.6), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        names = [m for m, values in models.items() if key in values]
        bars = ax.bar(names, [models[m][key] for m in names], color="tab:orange")
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
