"""``loopml serve URI...``: run the model server in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli._common import client_of


def serve(
    ctx: typer.Context,
    uris: Annotated[
        list[str],
        typer.Argument(
            help="Models to serve: folders, runs:/<run_id>/<path>, models:/<name>/<version> or "
            "models:/<name>@<alias> (followed: the server swaps when the alias moves). The "
            "first is the default of /invocations and /predict.",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind.")] = 8080,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes, each with the models (default: one per core).",
        ),
    ] = None,
    canary: Annotated[
        list[str] | None,
        typer.Option(
            "--canary",
            help="NAME@ALIAS=PERCENT or NAME/VERSION=PERCENT: send that share of NAME's "
            "traffic to that version (repeatable).",
        ),
    ] = None,
    shadow: Annotated[
        list[str] | None,
        typer.Option(
            "--shadow",
            help="NAME@ALIAS or NAME/VERSION: score a copy of NAME's traffic with that version; "
            "its answers are logged, never returned (repeatable).",
        ),
    ] = None,
    sticky_header: Annotated[
        str | None,
        typer.Option(
            "--sticky-header",
            help="Route requests with the same value of this header to the same version "
            "(e.g. X-User-Id).",
        ),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Most rows scored in one model call.")
    ] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms",
            min=0,
            help="How long a batch may wait to fill once the model is free (0: never wait).",
        ),
    ] = 0.0,
    deadline_ms: Annotated[
        float,
        typer.Option(
            "--deadline-ms",
            min=0,
            help="Answer 503 + Retry-After when a request would wait longer than this "
            "(0: no deadline).",
        ),
    ] = 1000.0,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body accepted.")
    ] = 16.0,
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx/--no-onnx",
            help="Serve scikit-learn models through their ONNX twin when they have one.",
        ),
    ] = True,
    log_predictions: Annotated[
        bool,
        typer.Option(
            "--log-predictions/--no-log-predictions",
            help="Write every prediction to the prediction log (for monitoring).",
        ),
    ] = True,
    poll_s: Annotated[
        float,
        typer.Option(
            "--poll-s", min=0, help="How often to check aliases for a hot swap (0: never)."
        ),
    ] = 2.0,
) -> None:
    """Serve models over HTTP: MLflow scoring, /predict, /feedback, the Open Inference Protocol
    (/v2) and Prometheus /metrics, on one port."""
    from loopml.serving.config import ServeConfig, parse_canary, parse_shadow
    from loopml.serving.run import serve as run_server

    config = ServeConfig(
        models=tuple(uris),
        canaries=tuple(parse_canary(text) for text in canary or ()),
        shadows=tuple(parse_shadow(text) for text in shadow or ()),
        sticky_header=sticky_header,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        deadline_ms=deadline_ms or None,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_predictions=log_predictions,
        onnx_fast_path=onnx,
        poll_interval_s=poll_s,
    )
    run_server(config, host=host, port=port, workers=workers, client=client_of(ctx))
