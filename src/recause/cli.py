"""The `recause` command line (Typer). Run it from a recause workspace (a folder with dvc.yaml)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from recause.environment import quiet_environment
from recause.errors import RecauseError
from recause.layout import LAYOUT
from recause.workspace import StageFailed, flows_command, load_flows

app = typer.Typer(
    help="recause: an orchestrated, reproducible recommender pipeline that learns why users act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WorkspaceOption = Annotated[
    Path, typer.Option("--workspace", "-w", help="Project folder holding dvc.yaml (searched upwards).")
]


def nearest_workspace(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a dvc.yaml, if any."""
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if (folder / LAYOUT.dvc_yaml).exists()), None)


def find_workspace(start: Path) -> Path:
    root = nearest_workspace(start)
    if root is None:
        raise RecauseError(f"no dvc.yaml in {start.resolve()} or any parent: run recause inside a recause project")
    return root


def configure_environment(root: Path) -> None:
    """Quiet, offline defaults; an ephemeral Prefect with its own home unless PREFECT_API_URL is set."""
    quiet_environment()
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))


def fail(error: Exception, code: int) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code)


def print_ranking(path: Path) -> None:
    """The accuracy metrics of every (split, model), then the unbiased and popularity-bias measures where computed."""
    from rich.console import Console
    from rich.table import Table

    from recause.evaluation.report import BIAS_PREFIXES, metric_rows

    rows = metric_rows(json.loads(path.read_text(encoding="utf-8")))
    columns = list(dict.fromkeys(name for row in rows for name in row))
    bias = [c for c in columns if c.startswith(BIAS_PREFIXES)]
    console = Console(width=max(160, Console().width))
    for title, shown in (
        (f"Ranking metrics ({path})", [c for c in columns if c not in bias]),
        ("Unbiased (SNIPS) estimates and popularity bias of the top lists", ["split", "model", *bias]),
    ):
        selected = [row for row in rows if any(c in row for c in shown[2:])]
        if not selected:
            continue
        table = Table(title=title, show_lines=False)
        for column in shown:
            table.add_column(column, justify="left" if column in ("split", "model") else "right")
        for row in selected:
            table.add_row(*(f"{row[c]:.4f}" if isinstance(row.get(c), float) else str(row.get(c, "-")) for c in shown))
        console.print(table)


@app.command()
def run(
    force: Annotated[
        list[str], typer.Option("--force", "-f", help="Re-run this stage even if up to date (repeatable).")
    ] = [],  # noqa: B006
    stage: Annotated[
        list[str], typer.Option("--stage", help="Run only this stage and what it needs (repeatable).")
    ] = [],  # noqa: B006
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            "-s",
            help="Override a param, e.g. split.protocol=temporal; written to params.yaml so DVC tracks it.",
        ),
    ] = [],  # noqa: B006
    profile: Annotated[
        Path | None,
        typer.Option(help="YAML file of param overrides merged into params.yaml (e.g. a small test profile)."),
    ] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Run the pipeline (every dvc.yaml stage as a Prefect task) and print the metrics table."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        from recause.config import apply_params_updates, load_params
        from recause.models.registry import with_baseline_defaults

        paths = LAYOUT.under(root)
        apply_params_updates(paths.params, profile, set_, check=with_baseline_defaults)
        # fail fast, in one line, before anything runs (baselines' knobs included: their models type them)
        with_baseline_defaults(load_params(paths.params), str(paths.params))
        pipeline = load_flows(root, "pipeline").pipeline
    except RecauseError as error:
        raise fail(error, 2) from None

    state = pipeline(workspace=str(root), force=list(force), stages=list(stage) or None, return_state=True)
    if not state.is_completed():
        error = state.result(raise_on_failure=False)
        if isinstance(error, StageFailed):
            raise fail(error, 1 if error.transient else 2)
        if isinstance(error, RecauseError):
            raise fail(error, 2)
        raise fail(RuntimeError(state.message or "the pipeline did not complete"), 1)
    outcomes = state.result()
    ran = [name for name, outcome in outcomes.items() if outcome == "ran"]
    typer.echo(f"stages run: {', '.join(ran) or 'none'}; up to date: {len(outcomes) - len(ran)}")
    ranking = LAYOUT.under(root).metrics_file("ranking")
    if ranking.exists():
        print_ranking(ranking)
    champion = LAYOUT.under(root).metrics_file("champion")
    if champion.exists():
        from recause.selection import summary

        typer.echo(summary(json.loads(champion.read_text(encoding="utf-8"))))


@app.command()
def validate(
    table: Annotated[str, typer.Argument(help="What the file holds: interactions, items, users or bandit.")],
    path: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet or RecBole atomic (.inter/.item/.user) file.")],
    users: Annotated[Path | None, typer.Option(help="Users file: interactions' user ids must exist in it.")] = None,
    items: Annotated[Path | None, typer.Option(help="Items file: interactions' item ids must exist in it.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Check one file with the pipeline's rules (params.yaml's when run in a project); exit 0 or 1."""
    import time

    from recause.config import parse_params
    from recause.validation.files import table_from_bytes
    from recause.validation.gate import check_table
    from recause.validation.runner import GreatExpectations

    def read(kind: str, file: Path):  # noqa: ANN202
        if not file.is_file():
            raise RecauseError(f"{kind} file not found: {file}")
        return table_from_bytes(kind, file.read_bytes(), str(file))

    try:
        root = nearest_workspace(workspace)  # outside a project: the packaged defaults
        settings = parse_params({}).validate_
        if root is not None:
            configure_environment(root)
            from recause.config import load_params

            settings = load_params(LAYOUT.under(root).params).validate_
        frame = read(table, path)
        references = {}
        if users is not None:
            references["user_id"] = read("users", users)["user_id"].dropna().tolist()
        if items is not None:
            references["item_id"] = read("items", items)["item_id"].dropna().tolist()
    except RecauseError as error:
        raise fail(error, 1) from None
    check = check_table(table, frame, str(path), settings, int(time.time()), GreatExpectations(), references or None)
    for message in check.failures:
        typer.echo(f"invalid: {message}", err=True)
    if not check.success:
        raise typer.Exit(1)
    typer.echo(f"ok: {path}: {check.evaluated:,} rows of {table} pass every rule")


@app.command()
def explain(
    user: Annotated[str, typer.Option("--user", "-u", help="User id as in your data (or its pseudonym).")],
    item: Annotated[
        str | None, typer.Option("--item", "-i", help="Item id to explain; omitted: the user's top-k, one reason each.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="A model whose list comes from the history (default: the champion, models/champion.json)."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Length of the recommendation list.")] = 10,
    reasons: Annotated[int, typer.Option(min=1, help="History items to name per explanation.")] = 3,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Why is an item recommended? The history items without which its score drops most, recomputed
    with the model, the rank it would fall to without them, and a set whose removal drops it out of the top-k."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        from recause.config import load_params
        from recause.data.keys import existing_pseudonym_key
        from recause.serving import EXPLAINABLE, champion, item_column, load_served, user_row

        settings = load_params(LAYOUT.under(root).params).data
        name = model or champion(root)
        if name not in EXPLAINABLE:
            raise RecauseError(
                f"'{name}' scores users by their ids, so no history item explains its list: "
                f"choose one of {', '.join(EXPLAINABLE)}"
            )
        served = load_served(root, name)
        key = existing_pseudonym_key(settings, root) if settings.pseudonymise else None
        row = user_row(served, user, key)
        history = served.history[row]
        if history.nnz == 0:
            raise RecauseError(f"user '{user}' has no interactions: nothing to explain")
        column = item_column(served, item) if item is not None else None
        if column is not None and history[0, column] > 0:
            raise RecauseError(f"user '{user}' already interacted with item '{item}': recommendations exclude it")
    except RecauseError as error:
        raise fail(error, 2) from None
    if column is None:
        _print_top_k(served, history, k)
    else:
        _print_one(served, history, column, k, reasons)


@app.command()
def recommend(
    user: Annotated[str, typer.Option("--user", "-u", help="User id as in your data (or its pseudonym).")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many items to recommend.")] = 10,
    model: Annotated[
        str | None, typer.Option(help="Any servable model by name (default: the champion, models/champion.json).")
    ] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """A user's top-k items they have not interacted with yet: title, score, and whether each item is
    warm (it has training events) or cold (known to the model from its text and features only)."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        import numpy as np

        from recause.config import load_params
        from recause.data.keys import existing_pseudonym_key
        from recause.serving import champion, load_served, user_row

        settings = load_params(LAYOUT.under(root).params)
        served = load_served(root, model or champion(root), settings.fairness)
        key = existing_pseudonym_key(settings.data, root) if settings.data.pseudonymise else None
        row = user_row(served, user, key)
    except RecauseError as error:
        raise fail(error, 2) from None
    from rich.console import Console
    from rich.table import Table

    top = served.top_k(k, np.array([row]))
    table = Table(title=f"Top {len(top)} for user {user} by {served.model.name}")
    for name in ("rank", "item", "score", "warm/cold"):
        table.add_column(name, justify="right" if name in ("rank", "score") else "left")
    for found in top.itertuples():
        table.add_row(str(found.rank), found.title, f"{found.score:.4f}", "warm" if found.warm else "cold")
    Console(width=max(100, Console().width)).print(table)


def _print_top_k(served, history, k: int) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table

    from recause.causal.explain import explain_top_k

    title = served.titles.iloc
    table = Table(title=f"Top {k} by {served.model.name}, each with the history item it owes most to")
    for name in ("rank", "item", "score", "because of", "rank without it"):
        table.add_column(name, justify="right" if name in ("rank", "score", "rank without it") else "left")
    for rank, found in enumerate(explain_top_k(served.model.score, history, k), start=1):
        reason = "(no single history item)" if found.reason is None else title[found.reason]
        without = "-" if found.reason is None else str(found.rank_without)
        table.add_row(str(rank), title[found.item], f"{found.score:.4f}", reason, without)
    Console(width=max(120, Console().width)).print(table)


def _print_one(served, history, column: int, k: int, n_reasons: int) -> None:  # noqa: ANN001
    from rich.console import Console

    from recause.causal.explain import explain

    title = served.titles.iloc
    console = Console(width=max(120, Console().width))
    found = explain(served.model.score, history, column, k, n_reasons)
    console.print(f"{title[column]}: score {found.score:.4f}, rank {found.rank} for this user ({served.model.name})")
    for reason in found.reasons:
        console.print(
            f"  because of {title[reason.item]}: without it the score drops by {reason.score_drop:.4f}"
            f" and the item {'falls' if reason.rank_without > found.rank else 'moves'} to rank {reason.rank_without}"
        )
    if not found.reasons:
        console.print("  no history item raises its score: it is recommended for what it is (e.g. popularity)")
    else:
        console.print(f"  without all {len(found.reasons)} of them: rank {found.rank_without_reasons}")
    if found.counterfactual_set:
        named = "; ".join(title[j] for j in found.counterfactual_set)
        console.print(f"  without these it leaves the top {k} (rank {found.rank_without_set}): {named}")


DEFAULT_API_URL = "http://127.0.0.1:4200/api"


@app.command()
def serve(
    profile: Annotated[
        str | None, typer.Option(help="Default params profile of the pipeline deployment's form (workspace path).")
    ] = None,
    stage: Annotated[
        list[str], typer.Option("--stage", help="Default stages of the pipeline deployment's form (repeatable).")
    ] = [],  # noqa: B006
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Register and serve the deployments (pipeline, evaluate, retrain) on a running Prefect server.

    Start the server first (`make server`); PREFECT_API_URL defaults to the local one. Ctrl-C stops.
    """
    try:
        root = find_workspace(workspace)
        os.environ.setdefault("PREFECT_API_URL", DEFAULT_API_URL)
        configure_environment(root)
        if profile is not None and not (root / profile).exists():
            raise RecauseError(f"profile not found: {root / profile}")
        options = [*(["--profile", profile] if profile else []), *(a for s in stage for a in ("--stage", s))]
        command = flows_command(root, "deployments", *options)
    except RecauseError as error:
        raise fail(error, 2) from None
    os.chdir(root)
    os.execv(command[0], command)  # this process becomes the workspace's server of flows (same pid, Ctrl-C)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: serving.host, loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    model: Annotated[
        str | None, typer.Option(help="Serve this model by name (default: the champion, swapped on promotion).")
    ] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Serve the champion over HTTP: recommendations and reasons in real time, exposure logged, events taken in.

    Docs at http://HOST:PORT/docs. Off loopback the API key variable (serving.api_key_env) must be set.
    """
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        from recause.config import load_params
        from recause.online.app import api_key_problem
        from recause.serving import SERVABLE

        params = load_params(LAYOUT.under(root).params)
        settings = params.serving.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v})
        problem = api_key_problem(settings.host, settings.api_key_env)
        if problem:
            raise RecauseError(problem)
        if model is not None and model not in SERVABLE:
            raise RecauseError(f"unknown model '{model}': choose one of {', '.join(sorted(SERVABLE))}")
    except RecauseError as error:
        raise fail(error, 2) from None
    import uvicorn

    from recause.online.server import HOST_ENV, MODEL_ENV, ROOT_ENV

    # Each worker process builds its own app from these (its own model copy, exposure file and hot swap).
    os.environ.update({ROOT_ENV: str(root), MODEL_ENV: model or "", HOST_ENV: settings.host})
    typer.echo(f"recause api: http://{settings.host}:{settings.port} (docs at /docs), {settings.workers} worker(s)")
    uvicorn.run(
        "recause.online.server:app_from_environment", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level="warning", access_log=False,
    )  # fmt: skip


@app.command()
def retrain(
    force: Annotated[bool, typer.Option(help="Train a challenger even if no new data arrived.")] = False,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Run the retrain flow once: new data -> challenger -> gate -> promote or keep the champion."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        retrain_flow = load_flows(root, "retrain").retrain
    except RecauseError as error:
        raise fail(error, 2) from None
    state = retrain_flow(workspace=str(root), force=force, return_state=True)
    if not state.is_completed():
        raise fail(RuntimeError(state.message or "the retrain flow did not complete"), 1)
    result = state.result()
    typer.echo(f"retrain: {result['outcome']}" + (f" ({result['reason']})" if "reason" in result else ""))


@app.command()
def rollback(workspace: WorkspaceOption = Path(".")) -> None:
    """Make the previous champion current again (its dvc.lock and outputs; committed when in git)."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        from recause.operations.retrain import rollback as rollback_champion

        champion = rollback_champion(root, lambda line: typer.echo(line, err=True))
    except RecauseError as error:
        raise fail(error, 2) from None
    value = "n/a" if champion.value is None else f"{champion.value:.4f}"
    typer.echo(
        f"champion is now the one accepted at {champion.accepted_at} ({champion.model} {champion.metric} {value})"
    )


@app.command()
def params(workspace: WorkspaceOption = Path(".")) -> None:
    """Print every parameter with its effective value (packaged defaults < params.yaml) and what it means."""
    try:
        root = find_workspace(workspace)
        configure_environment(root)
        from recause.config import load_params
        from recause.config.descriptions import annotated_yaml
        from recause.models.registry import with_baseline_defaults

        path = LAYOUT.under(root).params
        effective = with_baseline_defaults(load_params(path), str(path))
    except RecauseError as error:
        raise fail(error, 2) from None
    typer.echo(annotated_yaml(effective).rstrip())


if __name__ == "__main__":
    app()
