"""``loopml experiments``: list and create experiments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli._common import client_of, echo_json, fmt_time, stdout

app = typer.Typer(help="List and create experiments.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include deleted experiments.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the experiments."""
    items = client_of(ctx).list_experiments(include_deleted=all_)
    if as_json:
        echo_json(items)
        return
    table = Table(title=f"{len(items)} experiment{'s' * (len(items) != 1)}")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name")
    if all_:
        table.add_column("Stage")
    table.add_column("Created", no_wrap=True)
    table.add_column("Tags")
    for e in items:
        tags = Text(", ".join(f"{k}={v}" for k, v in sorted(e.tags.items())))
        stage = [Text(e.lifecycle_stage.value)] if all_ else []
        table.add_row(Text(e.experiment_id), Text(e.name), *stage, fmt_time(e.created_at), tags)
    stdout().print(table)


@app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="A KEY=VALUE tag; repeat for more.", show_default=False),
    ] = None,
) -> None:
    """Create an experiment."""
    tags: dict[str, str] = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--tag")
        tags[key] = value
    experiment = client_of(ctx).create_experiment(name, tags=tags or None)
    stdout().print(
        Text.assemble(
            "created experiment ", (experiment.name, "bold"), f" (id {experiment.experiment_id})"
        )
    )
