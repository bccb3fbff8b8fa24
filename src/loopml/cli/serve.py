"""``loopml serve URI``: run the minimal model server in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli._common import client_of


def serve(
    ctx: typer.Context,
    uri: Annotated[
        str,
        typer.Argument(
            help="Model folder, runs:/<run_id>/<path>, models:/<name>/<version> or "
            "models:/<name>@<alias>.",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind.")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, each with the model.")
    ] = 1,
) -> None:
    """Serve a model over HTTP: /ping, /health, /version, /invocations and /predict."""
    from loopml.serving.run import serve as run_server

    run_server(uri, host=host, port=port, workers=workers, client=client_of(ctx))
