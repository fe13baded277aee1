"""The fairness stage's report for people: Markdown tables and two figures, from metrics/fairness.json's content."""

from __future__ import annotations

from typing import Any

PLOTS = "../metrics/plots/fairness"  # the figures, relative to reports/


def _interval(values: list[float] | None) -> str:
    return "" if values is None else f" [{values[0]:.3f}, {values[1]:.3f}]"


def _gap_key(report: dict) -> str:
    return "long_tail_gap" if report["target"]["targeted"] == "long_tail" else "largest_group_gap"


def tradeoff_figure(report: dict) -> Any:
    """NDCG@k against the targeted gap over the re-ranker's strengths, valid and test, the default starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, key, points = report["k"], _gap_key(report), report["rerank"]["curve"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for split, color in (("valid", "tab:blue"), ("test", "tab:orange")):
        gaps = [p[split][key] for p in points]
        ndcgs = [p[split][f"ndcg@{k}"] for p in points]
        ax.plot(gaps, ndcgs, "o-", color=color, label=split, markersize=4)
        for point, gap, ndcg in zip(points, gaps, ndcgs, strict=True):
            ax.annotate(f"{point['strength']:g}", (gap, ndcg), fontsize=6, xytext=(3, 3), textcoords="offset points")
            if point["default"]:
                ax.plot([gap], [ndcg], "*", color=color, markersize=14, markeredgecolor="black")
    target = report["target"]
    ax.axvline(target["test"]["gap_before"] / 2, color="grey", linestyle=":", linewidth=1, label="test gap halved")
    ax.set_xlabel(f"{target['targeted'].replace('_', '-')} gap (relative; 0 = none)")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title(f"{report['model']}: long-tail re-ranker, strength annotated (★ default)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def groups_figure(report: dict) -> Any:
    """One panel per attribute: each group's NDCG@k on test with its bootstrap interval (plain lists)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, attributes = report["k"], report["user_groups"]
    fig, axes = plt.subplots(1, max(len(attributes), 1), figsize=(4.2 * max(len(attributes), 1), 4.0), dpi=110,
                             squeeze=False)  # fmt: skip
    metric = f"ndcg@{k}"
    for ax, (attribute, found) in zip(axes[0], attributes.items(), strict=False):
        names = sorted(found["groups"], key=lambda g: -found["groups"][g][metric])
        values = [found["groups"][g][metric] for g in names]
        intervals = [found["groups"][g].get(f"{metric}_ci", [v, v]) for g, v in zip(names, values, strict=True)]
        low = [v - i[0] for v, i in zip(values, intervals, strict=True)]
        high = [i[1] - v for v, i in zip(values, intervals, strict=True)]
        ax.errorbar(range(len(names)), values, yerr=[low, high], fmt="o", capsize=2, markersize=4)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_xticks(range(len(names)), [f"{g} ({found['groups'][g]['users']})" for g in names], rotation=60,
                      ha="right", fontsize=6)  # fmt: skip
        ax.set_title(f"{attribute}: NDCG@{k} by group (users)", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _target_lines(report: dict) -> list[str]:
    target, k = report["target"], report["k"]
    today = target["today"]
    lines = [
        "## Target",
        "",
        f"Today (test, plain top-{k}): long-tail exposure gap **{today['long_tail_gap']:.3f}**, largest user-group "
        f"NDCG@{k} gap **{today['largest_group_gap']:.3f}** ({today['largest_group_attribute']}, groups under "
        f"the minimum size pooled). Targeted: the larger, **{target['targeted']}**. Re-ranker strength "
        f"{target['strength']:g} (chosen on valid).",
        "",
        f"| split | gap before | gap after | reduction | NDCG@{k} before | after | relative loss | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in ("valid", "test"):
        v = target[split]
        lines.append(
            f"| {split} | {v['gap_before']:.3f} | {v['gap_after']:.3f} | {v['gap_reduction']:.0%} | "
            f"{v['ndcg_before']:.4f} | {v['ndcg_after']:.4f} | {v['relative_ndcg_loss']:+.2%} | "
            f"{'yes' if v['met'] else '**no**'} |"
        )
    return [*lines, ""]


def _curve_lines(report: dict) -> list[str]:
    k = report["k"]
    lines = [
        "## Trade-off curve",
        "",
        "The re-ranker re-orders each user's best candidates by their standardised score plus strength x 1[long "
        "tail] (`recause.fairness.rerank`); strength 0 is the plain list.",
        "",
        f"| strength | valid NDCG@{k} | valid LT gap | test NDCG@{k} | test LT gap | test APLT | test ACLT | "
        "test largest group gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in report["rerank"]["curve"]:
        mark = " (default)" if p["default"] else ""
        v, t = p["valid"], p["test"]
        lines.append(
            f"| {p['strength']:g}{mark} | {v[f'ndcg@{k}']:.4f} | {v['long_tail_gap']:.3f} | {t[f'ndcg@{k}']:.4f} | "
            f"{t['long_tail_gap']:.3f} | {t['long_tail_aplt']:.3f} | {t['long_tail_aclt']:.2f} | "
            f"{t['largest_group_gap']:.3f} ({t['largest_group_attribute']}) |"
        )
    return [*lines, "", f"![trade-off]({PLOTS}/tradeoff.png)", ""]


def _long_tail_lines(report: dict) -> list[str]:
    tail = report["long_tail"]
    plain = next(p for p in report["rerank"]["curve"] if p["strength"] == 0.0)["test"]
    chosen = next(p for p in report["rerank"]["curve"] if p["default"])["test"]
    return [
        "## Long-tail exposure (test)",
        "",
        f"Short head: the {tail['head_items']} most popular items holding {tail['head_share']:.0%} of train "
        f"interactions; long tail: the other {tail['tail_items']} ({plain['long_tail_catalogue_share']:.1%} of the "
        f"catalogue, {plain['long_tail_interaction_share']:.1%} of train interactions).",
        "",
        "| lists | APLT | ACLT | gap 1 - APLT / tail interaction share |",
        "|---|---|---|---|",
        f"| plain | {plain['long_tail_aplt']:.3f} | {plain['long_tail_aclt']:.2f} | {plain['long_tail_gap']:.3f} |",
        f"| re-ranked | {chosen['long_tail_aplt']:.3f} | {chosen['long_tail_aclt']:.2f} | {chosen['long_tail_gap']:.3f} |",
        "",
    ]


def _group_lines(report: dict) -> list[str]:
    k = report["k"]
    lines = ["## User groups (test, plain lists)", "", "Intervals: bootstrap over users (fairlearn MetricFrame).", ""]
    for attribute, found in report["user_groups"].items():
        lines += [f"### {attribute}", "", f"| group | users | NDCG@{k} | Recall@{k} |", "|---|---|---|---|"]
        for group, v in sorted(found["groups"].items(), key=lambda item: -item[1][f"ndcg@{k}"]):
            lines.append(
                f"| {group} | {v['users']} | {v[f'ndcg@{k}']:.4f}{_interval(v.get(f'ndcg@{k}_ci'))} | "
                f"{v[f'recall@{k}']:.4f}{_interval(v.get(f'recall@{k}_ci'))} |"
            )
        for label, summary in (("all groups", found["summary"]), ("small groups pooled", found["pooled"]["summary"])):
            s = summary[f"ndcg@{k}"]
            lines.append(
                f"\nNDCG@{k}, {label}: gap (max - min) {s['gap']:.4f}{_interval(s.get('gap_ci'))}, ratio (min / max) "
                f"{s['ratio']:.3f}, relative gap {s['relative_gap']:.3f}{_interval(s.get('relative_gap_ci'))}."
            )
            if "random_groups" in s:
                null = s["random_groups"]
                lines.append(
                    f"Random groups of the same sizes (labels shuffled): relative gap {null['mean']:.3f}"
                    f"{_interval(null['interval'])}; p = {null['p_value']:.3f} for a gap at least this large."
                )
        lines.append("")
    return [*lines, f"![groups]({PLOTS}/groups.png)", ""]


def _counterfactual_lines(report: dict) -> list[str]:
    found, k = report["counterfactual"], report["k"]
    lines = ["## Counterfactual fairness (joint model, test)", ""]
    if "skipped" in found:
        return [*lines, f"Not measured: {found['skipped']}.", ""]
    lines += [
        f"Flipping `{found['flip']}` for each of {found['users']} users (the user vector moves by W (x' - x), W the "
        f"model's user-feature map): mean Jaccard of the top-{k} lists **{found[f'mean_jaccard@{k}']:.3f}**; "
        f"{found['changed_lists']:.0%} of the lists change; NDCG@{k} {found[f'ndcg@{k}']:.4f} -> "
        f"{found[f'ndcg@{k}_flipped']:.4f}.",
        "",
        "Removing a sensitive feature is measured at inference, without retraining: its one-hot block is replaced by "
        "the population mean (every user gets the average contribution).",
        "",
        f"| removed | NDCG@{k} | relative cost |",
        "|---|---|---|",
        f"| nothing | {found[f'ndcg@{k}']:.4f} | – |",
    ]
    for name, cost in found["removed"].items():
        lines.append(f"| {name} | {cost[f'ndcg@{k}']:.4f} | {cost['relative_cost']:+.2%} |")
    return [*lines, ""]


def fairness_report(report: dict) -> str:
    """Markdown: the target and its verdict first, then the curve, the long tail, the groups, the flips."""
    served = "on (params: fairness.rerank.served)" if report["rerank"]["served"] else "off (fairness.rerank.served)"
    lines = [
        "# Fairness report",
        "",
        f"Model: `{report['model']}` (the served champion), top-{report['k']} lists as `evaluate` ranks them. "
        f"Serving with the re-ranker: {served}.",
        "",
    ]
    for section in (_target_lines, _curve_lines, _long_tail_lines, _group_lines, _counterfactual_lines):
        lines += section(report)
    return "\n".join(lines)
