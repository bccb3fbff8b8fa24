"""``loopml quickstart``: the closed loop end to end, on the embedded workspace, offline."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from loopml.cli._common import client_of, stdout
from loopml.core.jsonable import to_jsonable


def quickstart(
    ctx: typer.Context,
    keep_serving: Annotated[
        bool,
        typer.Option(
            "--keep-serving",
            help="Leave the model server running at the end (its URL and pid are printed).",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Port of the model server (0: a free one)."),
    ] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print no story: only one line of JSON with the figures (wall_s, "
            "static_accuracy, loop_accuracy, drift_to_promotion_s, ...).",
        ),
    ] = False,
) -> None:
    """Train a model, serve it, shift its traffic, and watch the loop detect the drift,
    retrain, compare, promote and hot-swap (scikit-learn's bundled breast-cancer data)."""
    from loopml.quickstart import run

    console = Console(quiet=True) if as_json else stdout()
    result = run(client=client_of(ctx), console=console, keep_serving=keep_serving, port=port)
    if as_json:
        typer.echo(json.dumps(to_jsonable(result.to_dict()), allow_nan=False))
