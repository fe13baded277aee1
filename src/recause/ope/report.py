"""A picture of the relative-error protocol: mean +- std per estimator, campaign and direction."""

from __future__ import annotations

from typing import Any


def ope_figure(results: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.2), dpi=110, squeeze=False)
    for ax, (direction, campaigns) in zip(axes[0], results.items(), strict=True):
        estimators = list(next(iter(campaigns.values())).keys()) if campaigns else []
        x = np.arange(len(estimators))
        width = 0.8 / max(len(campaigns), 1)
        for i, (campaign, by_estimator) in enumerate(campaigns.items()):
            means = [by_estimator[e]["relative_ee_mean"] for e in estimators]
            spread = [by_estimator[e]["relative_ee_std"] for e in estimators]
            ax.bar(x + i * width - 0.4 + width / 2, means, width, yerr=spread, capsize=2, label=campaign)
        ax.set_xticks(x, estimators, rotation=30, ha="right")
        ax.set_title(direction.replace("_", " "))
        ax.set_ylabel("relative estimation error (mean +- std)")
        ax.legend(frameon=False, fontsize=8, title="campaign")
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
