"""``loopml monitor``: drift and data-quality reports on data files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from loopml.cli._common import stdout

app = typer.Typer(
    help="Watch data and models: drift, data quality and prediction quality.",
    no_args_is_help=True,
)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


@app.command("report")
def report(
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            "-r",
            help="The data the model was trained on: CSV, Parquet or JSON lines.",
            show_default=False,
        ),
    ],
    current: Annotated[
        Path,
        typer.Option(
            "--current",
            "-c",
            help="The data to compare with it: CSV, Parquet or JSON lines.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the report: .html (one self-contained page) or .json.",
            show_default=False,
        ),
    ],
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the report as JSON to this file."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="The label column: tested for drift on its own."),
    ] = None,
    prediction: Annotated[
        str | None,
        typer.Option(
            "--prediction",
            help="The model output column: tested for drift on its own; with --target, "
            "the current rows also get accuracy/precision/recall/F1 or RMSE/MAE.",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns", help="Comma-separated feature columns to compare (default: all)."
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="The report's title.", show_default=False)
    ] = None,
) -> None:
    """Compare two data files: drift per column, data quality, distributions, and prediction
    metrics; write an HTML page (opens offline) and/or JSON."""
    from loopml.monitoring.report import report_format, report_from_files

    report_format(output)  # a bad suffix fails before the work
    status = Console(stderr=True, highlight=False)
    with status.status(f"comparing {current.name} with {reference.name}..."):
        result = report_from_files(
            reference,
            current,
            target=target,
            prediction=prediction,
            columns=_split(columns),
            title=title,
        )
    written = [result.save(output)]
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(result.to_json(), encoding="utf-8")
        written.append(json_path)
    summary = result.summary()
    console = stdout()
    verdict = (
        Text("dataset drift", style="red bold")
        if summary["dataset_drifted"]
        else Text("no dataset drift", style="green")
    )
    drifted = summary["drifted_columns"]
    line = Text.assemble(
        verdict,
        f": {len(drifted)} of {summary['columns_tested']} columns drifted "
        f"(share {summary['share_drifted']:.2f}, threshold {summary['share_threshold']:.2f})",
    )
    console.print(line)
    if drifted:
        console.print(Text(f"drifted: {', '.join(drifted)}"))
    for role in ("target", "prediction"):
        flag = summary[f"{role}_drifted"]
        if flag is not None:
            console.print(Text(f"{role}: {'drifted' if flag else 'no drift'}"))
    for key, value in result.metrics.items():
        console.print(Text(f"{key}: {value:.4g}"))
    if result.warnings:
        console.print(Text(f"{len(result.warnings)} warning(s), listed in the report", "yellow"))
    for path in written:
        console.print(Text(f"wrote {path}"))


@app.command("run")
def run(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="The served model's name, or models:/<name>@<alias> or models:/<name>/<version> "
            "(whose stored reference is used).",
            show_default=False,
        ),
    ],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", "-r", help="Reference data file (default: the stored one)."),
    ] = None,
    window_rows: Annotated[
        int | None, typer.Option("--window-rows", min=1, help="Rows per window (default 1000).")
    ] = None,
    window_s: Annotated[
        float | None, typer.Option("--window-s", min=0.001, help="Seconds per window.")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Alert rules and channels, YAML or JSON."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running: score new windows as they fill.")
    ] = False,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between rounds with --follow.")
    ] = 30.0,
    flush: Annotated[
        bool, typer.Option("--flush", help="Also score the last, incomplete window.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve the gauges to Prometheus on this port."),
    ] = None,
) -> None:
    """Score the windows of a served model's prediction log: drift, data quality, live and
    estimated performance; record them, export them, and apply the alert rules."""
    from rich.table import Table

    from loopml.cli._common import client_of
    from loopml.monitoring.monitor import Monitor

    client = client_of(ctx)
    alerts = None
    if rules is not None:
        from loopml.monitoring.alerts import AlertManager

        alerts = AlertManager.from_file(client.store, rules)
    monitor = Monitor(
        client,
        model,
        reference=reference,
        window_rows=window_rows,
        window_s=window_s,
        alerts=alerts,
    )
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    if follow:
        stdout().print(Text(f"watching {monitor.name} every {interval_s:g} s (Ctrl-C stops)"))
        try:
            monitor.run_forever(interval_s=interval_s)
        except KeyboardInterrupt:
            return
        return
    windows = monitor.run_once(flush=flush)
    if not windows:
        stdout().print(Text(f"no complete window of {monitor.name} to score yet"))
        return
    table = Table(
        "window", "rows", "labelled", "drift share", "accuracy", "est. accuracy", "alerts"
    )
    for window in windows:
        values = window.values
        table.add_row(
            str(window.index),
            str(window.rows),
            str(window.labelled_rows),
            f"{values.get('drift.share', float('nan')):.2f}",
            _fmt(values.get("performance.accuracy")),
            _fmt(values.get("performance.estimated_accuracy")),
            ", ".join(alert.rule for alert in window.alerts) or "-",
        )
    stdout().print(table)


@app.command("alerts")
def alerts_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model's alerts.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most alerts shown.")] = 50,
) -> None:
    """List the alerts fired, newest first."""
    from datetime import UTC, datetime

    from rich.table import Table

    from loopml.cli._common import client_of

    found = client_of(ctx).store.list_alerts(model, limit=limit)
    if not found:
        stdout().print(Text("no alerts"))
        return
    table = Table("fired", "model", "rule", "metric", "value", "threshold", "severity", "delivered")
    for alert in found:
        fired = datetime.fromtimestamp(alert.fired_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            fired,
            alert.model_name,
            alert.rule,
            alert.metric,
            f"{alert.value:.4g}",
            f"{alert.op} {alert.threshold:g}",
            alert.severity,
            ", ".join(f"{k}: {v}" for k, v in alert.deliveries.items()),
        )
    stdout().print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("labels")
def labels(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The served model's name.", show_default=False)],
    path: Annotated[
        Path,
        typer.Argument(
            help="A file (CSV, Parquet, JSON lines) with request_id and ground_truth columns, "
            "and optionally row (the row within the request).",
            show_default=False,
        ),
    ],
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill/--no-backfill",
            help="Then score the processed windows again on the new labels.",
        ),
    ] = True,
) -> None:
    """Load ground truth by request id into the prediction log (what the server's /feedback
    does, for labels that come later from elsewhere)."""
    import time

    from loopml.cli._common import client_of
    from loopml.data.tables import read_table
    from loopml.errors import InvalidArgument
    from loopml.predictions import FeedbackEntry, PredictionLogger

    frame = read_table(path)
    missing = [c for c in ("request_id", "ground_truth") if c not in frame.columns]
    if missing:
        raise InvalidArgument(
            f"{path} has no column {', '.join(map(repr, missing))}; it needs request_id and "
            "ground_truth (and optionally row); its columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    client = client_of(ctx)
    now = int(time.time() * 1000)
    logger = PredictionLogger.from_client(client)
    count = 0
    for request_id, rows in frame.groupby("request_id", sort=False):
        if "row" in rows.columns:  # one slot per row of the request; rows not given stay unknown
            positions = rows["row"].astype(int).tolist()
            truth: list[object] = [None] * (max(positions) + 1)
            for position, value in zip(positions, rows["ground_truth"].tolist(), strict=True):
                truth[position] = value
        else:
            truth = rows["ground_truth"].tolist()
        logger.log_feedback(
            FeedbackEntry(str(request_id), model, "", now, truth if len(truth) > 1 else truth[0])
        )
        count += 1
    logger.close()
    stdout().print(Text(f"loaded {len(frame)} label(s) for {count} request(s) of {model}"))
    if backfill:
        from loopml.monitoring.monitor import Monitor

        rescored = Monitor(client, model).backfill_performance()
        if rescored:
            stdout().print(Text(f"rescored {len(rescored)} window(s) with the new labels"))
