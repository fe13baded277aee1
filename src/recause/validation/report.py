"""The validation report as Markdown: what was checked, what broke, what was set apart."""

from __future__ import annotations

from recause.validation.drift import DriftReport
from recause.validation.gate import TableCheck


def validation_markdown(
    checks: dict[str, TableCheck], drifts: list[DriftReport], mode: str, blocking: list[str]
) -> str:
    verdict = "**FAILED**: the pipeline stops here" if blocking else "**passed**"
    lines = [f"# Data validation: {verdict}", "", f"Mode: `{mode}`.", ""]
    lines += ["| table | rows | broke a rule | quarantined |", "|---|---:|---:|---:|"]
    for table, check in checks.items():
        quarantined = len(check.rejected) if mode == "quarantine" and not blocking else 0
        lines.append(f"| {table} | {check.evaluated:,} | {len(check.rejected):,} | {quarantined:,} |")
    failures = [m for check in checks.values() for m in check.failures]
    if failures:
        lines += ["", "## Broken rules", ""] + [f"- {m}" for m in failures]
    if drifts:
        lines += ["", "## Drift against the last accepted snapshot", ""]
        for report in drifts:
            measures = ", ".join(f"{k} {v:.4g}" for k, v in report.measures.items())
            status = "; ".join(report.breaches) or "within limits"
            lines.append(f"- {report.table}: {measures}: {status}")
    if blocking:
        lines += ["", "## Why the pipeline stopped", ""] + [f"- {m}" for m in blocking]
    return "\n".join(lines) + "\n"
