"""The ``loopml`` command: a thin edge over :class:`loopml.Client`.

Every command reads its :class:`Client` from the Typer context (built once from
``--store-uri``/``--artifact-uri`` or the ``LOOPML_*`` variables) and only formats what the
SDK returns. A :class:`~loopml.errors.LoopmlError` ends the command with ``error: ...`` on
standard error and exit code 1; wrong usage exits with 2, as Click does.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from loopml._version import __version__
from loopml.cli import (
    data,
    db,
    experiments,
    loop,
    models,
    monitor,
    pipelines,
    quickstart,
    runs,
    scheduler,
    serve,
)
from loopml.cli._common import print_error
from loopml.errors import LoopmlError
from loopml.tracking.client import Client


class _Root(TyperGroup):
    """The root group: turns every loopml error into a one-line message and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # Any: Typer's Context class moved between versions
        try:
            return super().invoke(ctx)
        except LoopmlError as exc:
            print_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="loopml",
    cls=_Root,
    help="Track, compare and manage machine-learning runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(db.app, name="db")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(loop.app, name="loop")
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(
    monitor.app, name="monitor", help="Drift, data-quality and prediction-quality reports."
)
app.command("quickstart")(quickstart.quickstart)
app.command("serve")(serve.serve)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"loopml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    store_uri: Annotated[
        str | None,
        typer.Option(
            "--store-uri",
            envvar="LOOPML_STORE_URI",
            help="Metadata store: sqlite:///path.db or postgresql+psycopg://user@host/db "
            "(default: the workspace's SQLite file).",
            show_default=False,
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            "--artifact-uri",
            envvar="LOOPML_ARTIFACT_URI",
            help="Artifact root: a folder, file://, s3://bucket/prefix or memory:// "
            "(default: the workspace's artifacts folder).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Track, compare and manage machine-learning runs."""
    client = Client(store_uri or None, artifact_uri=artifact_uri or None)
    ctx.obj = client
    ctx.call_on_close(client.close)


def main() -> None:
    """Entry point of the ``loopml`` console script."""
    try:
        app()
    except LoopmlError as exc:  # raised outside a command, e.g. while closing the client
        print_error(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
