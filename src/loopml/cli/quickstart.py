"""``loopml quickstart``: the tour of the README, on the embedded workspace, offline."""

from __future__ import annotations

import typer

from loopml.cli._common import client_of, stdout


def quickstart(ctx: typer.Context) -> None:
    """Train four models on scikit-learn's bundled breast-cancer data and track each as a run."""
    from loopml.quickstart import run

    run(client=client_of(ctx), console=stdout())
