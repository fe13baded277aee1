"""The three deployments `make serve` registers with a Prefect server and serves until Ctrl-C.

- `recause-pipeline/pipeline`: the whole DAG; its form asks which stages to force, a params
  profile and a seed.
- `recause-evaluate/evaluate`: the `evaluate` stage only.
- `recause-retrain/retrain`: the champion/challenger retrain, on `retrain.schedule_cron` from
  params.yaml, and on demand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.client.schemas.schedules import CronSchedule

from flows.pipeline import evaluate, pipeline
from flows.retrain import retrain
from recause.config import load_params
from recause.layout import LAYOUT


def deployments(root: Path, profile: str | None = None, stages: list[str] | None = None) -> list:
    """The deployments of a workspace; ``profile`` and ``stages`` become the pipeline form's defaults."""
    params = load_params(LAYOUT.under(root).params).retrain
    workspace = {"workspace": str(root)}
    return [
        pipeline.to_deployment(
            name="pipeline",
            parameters={
                **workspace,
                **({"profile": profile} if profile else {}),
                **({"stages": stages} if stages else {}),
            },
            description="Run the DAG (DVC skips what is up to date). Pick stages to force, a profile, a seed.",
            tags=["recause"],
        ),
        evaluate.to_deployment(
            name="evaluate", parameters=workspace, description="Re-run the evaluate stage only.", tags=["recause"]
        ),
        retrain.to_deployment(
            name="retrain",
            parameters=workspace,
            schedules=[CronSchedule(cron=params.schedule_cron, timezone=params.timezone)],
            description="Retrain on new data; promote the challenger only if it beats the champion.",
            tags=["recause"],
        ),
    ]


def serve_workspace(root: Path, profile: str | None = None, stages: list[str] | None = None) -> None:
    """Register and serve the deployments until interrupted (Ctrl-C stops cleanly)."""
    serve(*deployments(root, profile, stages), print_starting_message=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.deployments`, run in the workspace: what `recause serve` starts."""
    parser = argparse.ArgumentParser(prog="python -m flows.deployments", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="Default params profile of the pipeline deployment's form.")
    parser.add_argument("--stage", action="append", default=[], help="Default stage of that form (repeatable).")
    args = parser.parse_args(argv)
    serve_workspace(Path.cwd(), args.profile, args.stage or None)


if __name__ == "__main__":
    main()
