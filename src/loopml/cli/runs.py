"""``loopml runs``: search, inspect, compare and clean up runs."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from loopml.cli._common import (
    MISSING,
    client_of,
    echo_json,
    fmt_duration,
    fmt_number,
    fmt_size,
    fmt_time,
    fmt_time_short,
    resolve_experiment,
    status_text,
    stdout,
    value_text,
)
from loopml.core.entities import (
    ArtifactRef,
    DatasetInput,
    Environment,
    Experiment,
    Run,
    now_ms,
)
from loopml.core.jsonable import to_jsonable
from loopml.errors import NotFound

app = typer.Typer(help="Search, inspect, compare and clean up runs.", no_args_is_help=True)

_JSON = typer.Option("--json", help="Print JSON (NaN and infinities as strings).")


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment name or id; repeat for several (default: every experiment).",
            show_default=False,
        ),
    ] = None,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="Filter such as \"metrics.acc > 0.9 AND params.model = 'rf'\".",
            show_default=False,
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            help="Order such as 'metrics.acc DESC'; repeat for ties (default: newest first).",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="Metric to show as a column; repeat for more (default: as many as fit).",
            show_default=False,
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", "-n", min=1, help="Most runs to show.")
    ] = 100,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List runs, newest first, optionally filtered and ordered."""
    client = client_of(ctx)
    ids = [resolve_experiment(client, e).experiment_id for e in experiment] if experiment else None
    page = client.search_runs(
        ids, filter=filter_, order_by=order_by or None, max_results=max_results
    )
    if as_json:
        echo_json([_run_json(r) for r in page.items])
        return
    console = stdout()
    if not page.items:
        console.print("no runs found", style="dim")
        return
    names = {e: client.get_experiment(e).name for e in {r.experiment_id for r in page.items}}
    table, hidden = _runs_table(page.items, names, metric, console.width)
    console.print(table)
    if hidden:
        console.print(
            f"not shown for lack of width: {', '.join(hidden)} (pick with --metric, or use --json)",
            style="dim",
            soft_wrap=True,
        )
    if page.next_page_token is not None:
        console.print(f"more runs match: raise --max (now {max_results}) to see them", style="dim")


_NAME_WIDTH = 24


def _runs_table(
    runs: Sequence[Run], names: Mapping[str, str], metrics: list[str] | None, width: int
) -> tuple[Table, list[str]]:
    """The table of ``runs`` for a terminal ``width`` columns wide, and the metric keys left out.

    Run ids stay whole (other commands take them); names are cut short first, then metric
    columns left out, unless ``metrics`` names them.
    """
    columns: list[tuple[str, list[Text]]] = [
        ("Run ID", [Text(r.run_id, style="dim") for r in runs]),
        ("Name", [_name(r) for r in runs]),
    ]
    if len(names) > 1:
        columns.append(("Experiment", [Text(names[r.experiment_id]) for r in runs]))
    columns += [
        ("Status", [status_text(r.status) for r in runs]),
        ("Started", [Text(fmt_time_short(r.start_time)) for r in runs]),
        ("Duration", [Text(fmt_duration(r.duration_ms)) for r in runs]),
    ]
    first_number = len(columns) - 1
    widths = [_width(header, cells) for header, cells in columns]
    widths[1] = min(widths[1], _NAME_WIDTH)
    keys = metrics or sorted({k for r in runs for k in r.metrics})
    shown = 0
    for key in keys:
        cells = [value_text(r.metrics.get(key)) for r in runs]
        needed = _width(key, cells)
        if not metrics and sum(widths) + 2 * (len(widths) + 1) + needed > width:
            break
        columns.append((key, cells))
        widths.append(needed)
        shown += 1
    # Each column takes its width plus two: one space of padding, one of separator.
    widths[1] = max(8, min(widths[1], width - sum(widths) + widths[1] - 2 * len(widths)))
    table = Table(
        title=f"{len(runs)} run{'s' * (len(runs) != 1)}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i, (header, _) in enumerate(columns):
        table.add_column(
            Text(header),
            justify="right" if i >= first_number else "left",
            no_wrap=True,
            width=widths[i],
            overflow="ellipsis",
        )
    for i in range(len(runs)):
        table.add_row(*(cells[i] for _, cells in columns))
    return table, keys[shown:]


def _width(header: str, cells: list[Text]) -> int:
    return max([len(header), *(c.cell_len for c in cells)])


def _name(run: Run) -> Text:
    return Text(("└ " if run.parent_run_id else "") + run.name)


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Id of the run.")],
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Show a run: info, params, latest metrics, tags, inputs, artifacts and environment."""
    client = client_of(ctx)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.experiment_id)
    inputs = client.get_inputs(run_id)
    artifacts = client.list_artifacts(run_id)
    env = client.get_environment(run_id)
    if as_json:
        echo_json(
            {
                **_run_json(run),
                "experiment_name": experiment.name,
                "inputs": inputs,
                "artifacts": artifacts,
                "environment": env,
            }
        )
        return
    stdout().print(_run_view(run, experiment, inputs, artifacts, env))


def _run_view(
    run: Run,
    experiment: Experiment,
    inputs: Sequence[DatasetInput],
    artifacts: Sequence[ArtifactRef],
    env: Environment | None,
) -> Group:
    info = _grid()
    info.add_row("Run", Text.assemble((run.name, "bold"), f"  {run.run_id}"))
    info.add_row("Experiment", Text(f"{experiment.name} (id {experiment.experiment_id})"))
    info.add_row("Status", status_text(run.status))
    info.add_row("Started", fmt_time(run.start_time))
    info.add_row("Ended", fmt_time(run.end_time))
    if run.end_time is None:
        info.add_row("Duration", f"{fmt_duration(now_ms() - run.start_time)} so far")
    else:
        info.add_row("Duration", fmt_duration(run.duration_ms))
    if run.parent_run_id:
        info.add_row("Parent run", run.parent_run_id)
    info.add_row("User", Text(run.user or MISSING))
    info.add_row("Host / pid", Text(f"{run.host or MISSING} / {run.pid or MISSING}"))
    info.add_row("Artifacts at", Text(run.artifact_uri or MISSING))
    if run.notes:
        info.add_row("Notes", Text(run.notes))
    parts: list[Table | Text] = [info]
    parts.append(_pairs("Params", {k: Text(v) for k, v in sorted(run.params.items())}))
    parts.append(_pairs("Metrics", {k: value_text(v) for k, v in sorted(run.metrics.items())}))
    parts.append(_pairs("Tags", {k: Text(v) for k, v in sorted(run.tags.items())}))
    if inputs:
        table = Table(title="Inputs", title_justify="left")
        for column in ("Name", "Context", "Digest", "Source"):
            table.add_column(column)
        for d in inputs:
            table.add_row(Text(d.name), Text(d.context), Text(d.digest[:16]), Text(d.source))
        parts.append(table)
    if artifacts:
        table = Table(title="Artifacts", title_justify="left")
        table.add_column("Path")
        table.add_column("Kind")
        table.add_column("Size", justify="right")
        table.add_column("Digest")
        for a in artifacts:
            table.add_row(Text(a.path), a.kind.value, fmt_size(a.size), Text(a.digest[:16]))
        parts.append(table)
    if env is not None:
        grid = _grid("Environment")
        grid.add_row("Python", Text(f"{env.python_version} on {env.platform}"))
        dirty = {True: " (dirty)", False: " (clean)", None: ""}[env.git_dirty]
        branch = f" on {env.git_branch}" if env.git_branch else ""
        grid.add_row(
            "Git commit", Text(f"{env.git_commit}{branch}{dirty}" if env.git_commit else MISSING)
        )
        grid.add_row("Command", Text(shlex.join(env.command) if env.command else MISSING))
        grid.add_row("Directory", Text(env.cwd or MISSING))
        grid.add_row("Packages", f"{len(env.packages)} installed")
        parts.append(grid)
    return Group(*parts)


def _grid(title: str | None = None) -> Table:
    grid = Table.grid(padding=(0, 2))
    if title:
        grid.title = title
        grid.title_justify = "left"
        grid.title_style = "bold"
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _pairs(title: str, values: dict[str, Text]) -> Table | Text:
    if not values:
        return Text(f"{title}: none", style="dim")
    table = Table(title=f"{title} ({len(values)})", title_justify="left", show_header=False)
    table.add_column("Key", style="bold")
    table.add_column("Value")
    for key, value in values.items():
        table.add_row(Text(key), value)
    return table


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    only_diff: Annotated[
        bool, typer.Option("--only-diff", "-d", help="Show only the rows that differ.")
    ] = False,
) -> None:
    """Compare runs side by side: params, then metrics; rows that differ are highlighted."""
    comparison = client_of(ctx).compare_runs(run_ids)
    rows = comparison.differing if only_diff else comparison.rows
    console = stdout()
    if not rows:
        console.print(
            "the runs have the same params and metrics" if only_diff else "nothing to compare"
        )
        return
    table = Table(title=f"{len(comparison.runs)} runs, {len(comparison.differing)} differing rows")
    table.add_column("", no_wrap=True)
    widest = max(len(r.key) + (7 if r.kind == "param" else 8) for r in rows)
    table.add_column("Key", no_wrap=True, min_width=min(widest, 40))
    for run in comparison.runs:
        table.add_column(
            Text.assemble((run.name, "bold"), "\n", (run.run_id[:8], "dim")), justify="right"
        )
    kind = rows[0].kind
    for row in rows:
        if row.kind != kind:
            table.add_section()
            kind = row.kind
        style = "bold yellow" if row.differs else ""
        prefix = "params" if row.kind == "param" else "metrics"
        table.add_row(
            Text("≠" if row.differs else "", style=style),
            Text(f"{prefix}.{row.key}", style=style),
            *(_styled(value_text(v), style) for v in row.values),
        )
    console.print(table)


def _styled(text: Text, style: str) -> Text:
    if style:
        text.stylize(style)
    return text


@app.command("history")
def metric_history(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Id of the run.")],
    key: Annotated[str, typer.Argument(help="Metric key.")],
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Show every logged point of one metric of a run."""
    client = client_of(ctx)
    points = client.get_metric_history(run_id, key)
    if not points:
        known = ", ".join(repr(k) for k in sorted(client.get_run(run_id).metrics)) or "none"
        raise NotFound(f"run {run_id!r} has no metric {key!r} (it has: {known})", id=run_id)
    if as_json:
        echo_json([{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points])
        return
    table = Table(title=Text(f"{key} ({len(points)} points)"))
    table.add_column("Step", justify="right")
    table.add_column("Value", justify="right")
    table.add_column("Time", no_wrap=True)
    for p in points:
        table.add_row(str(p.step), fmt_number(p.value), fmt_time(p.timestamp))
    stdout().print(table)


@app.command("reap")
def reap_runs(
    ctx: typer.Context,
    stale_after: Annotated[
        float | None,
        typer.Option(
            "--stale-after",
            min=0,
            help="Seconds without a heartbeat after which a RUNNING run counts as orphaned "
            "(default: LOOPML_STALE_AFTER_S, 120). Runs of dead processes on this host are "
            "orphaned regardless.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the orphaned runs; change nothing.")
    ] = False,
) -> None:
    """Find RUNNING runs whose process is gone and mark them KILLED."""
    client = client_of(ctx)
    console = stdout()
    with console.status("looking for orphaned runs..."):
        if dry_run:
            found = client.find_orphaned_runs(stale_after_s=stale_after)
        else:
            found = client.mark_orphaned_runs(stale_after_s=stale_after)
    if not found:
        console.print("no orphaned runs")
        return
    table = Table()
    table.add_column("Run ID", no_wrap=True)
    table.add_column("Name")
    table.add_column("Status")
    table.add_column("Host / pid")
    table.add_column("Last heartbeat", no_wrap=True)
    for run in found:
        table.add_row(
            Text(run.run_id, style="dim"),
            _name(run),
            status_text(run.status),
            Text(f"{run.host or MISSING} / {run.pid or MISSING}"),
            fmt_time(run.heartbeat_time),
        )
    console.print(table)
    plural = "s" * (len(found) != 1)
    if dry_run:
        console.print(f"{len(found)} orphaned run{plural} (dry run: nothing changed)")
    else:
        console.print(f"marked {len(found)} run{plural} KILLED")


def _run_json(run: Run) -> dict[str, Any]:
    return {**to_jsonable(run), "duration_ms": run.duration_ms}
