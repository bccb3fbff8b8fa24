"""``loopml pipelines``: run a pipeline, list and show its runs, explain the cache, resume, and
walk a model's lineage."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from loopml.cli._common import (
    MISSING,
    client_of,
    echo_json,
    fmt_duration,
    fmt_time,
    fmt_time_short,
    parse_params,
    stdout,
)

if TYPE_CHECKING:
    from loopml.core.pipelines import PipelineRun, StepRun
    from loopml.pipelines.definition import PipelineResult
    from loopml.pipelines.lineage import LineageNode

app = typer.Typer(
    help="Pipelines: run, list, show, explain the cache, resume, lineage.",
    no_args_is_help=True,
)

STYLES = {
    "COMPLETED": "green",
    "CACHED": "blue",
    "RUNNING": "cyan",
    "PENDING": "dim",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "KILLED": "yellow",
}
EXECUTOR_HELP = "Where steps run: local (threads), sequential (this thread) or ray."


def _status(value: str) -> Text:
    return Text(value, style=STYLES.get(value, ""))


def _duration(start: int | None, end: int | None) -> str:
    return fmt_duration(end - start) if start and end else MISSING


@app.command("run")
def run(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(help="The pipeline: package.module:name or path/to/file.py:name."),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A parameter KEY=VALUE (JSON values); repeatable."),
    ] = None,
    executor: Annotated[str, typer.Option("--executor", "-e", help=EXECUTOR_HELP)] = "local",
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even unchanged ones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run a pipeline, showing each step as it ends; exit code 1 if a step failed."""
    from loopml.pipelines.refs import load_pipeline

    client = client_of(ctx)
    target = load_pipeline(ref)
    params = parse_params(param)
    total = len(target.trace(target.bind(params)).nodes)
    with _StepProgress(total, quiet=as_json) as report:
        result = target.run(
            executor=executor, client=client, cache=not no_cache, progress=report, **params
        )
    _finish(result, as_json)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run to resume.")],
    executor: Annotated[str, typer.Option("--executor", "-e", help=EXECUTOR_HELP)] = "local",
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run a pipeline run again, reusing every step that succeeded and did not change."""
    from loopml.pipelines.refs import resume as resume_run

    client = client_of(ctx)
    total = len(client.store.list_step_runs(run_id))
    with _StepProgress(total, quiet=as_json) as report:
        result = resume_run(client, run_id, executor=executor, progress=report)
    _finish(result, as_json)


class _StepProgress:
    """A Rich progress bar of ended steps, one line printed per step as it ends."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stdout(),
            transient=True,
        )
        self.task = self.bar.add_task("steps", total=total)
        self.ended: set[str] = set()

    def __enter__(self) -> Any:
        if not self.quiet:
            self.bar.start()
        return self.report

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.bar.stop()

    def report(self, step: StepRun) -> None:
        if self.quiet:
            return
        if step.status.value == "RUNNING":
            self.bar.update(self.task, description=f"running {step.name}")
            return
        if step.name in self.ended:
            return
        self.ended.add(step.name)
        self.bar.advance(self.task)
        line = Text()
        line.append(f"{step.status.value:<9}", style=STYLES.get(step.status.value, ""))
        line.append(f" {step.name}  ")
        line.append(_duration(step.start_ms, step.end_ms), style="dim")
        if step.reason:
            line.append(f"  {step.reason}", style="dim")
        self.bar.console.print(line)


def _finish(result: PipelineResult, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "run": dataclasses.asdict(result.run),
                "steps": [dataclasses.asdict(s) for s in result.steps.values()],
            }
        )
    else:
        run = result.run
        style = "green" if result.ok else "red"
        stdout().print(
            Text(
                f"pipeline {run.pipeline} run {run.run_id}: {run.status.value} in "
                f"{_duration(run.start_ms, run.end_ms)}",
                style=style,
            )
        )
        for record in result.steps.values():
            if record.status.value == "FAILED":
                last = (record.error.strip().splitlines() or [""])[-1]
                stdout().print(Text(f"  {record.name}: {last}", style="red"))
    if not result.ok:
        raise typer.Exit(1)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pipeline runs, newest first."""
    found = client_of(ctx).store.list_pipeline_runs(pipeline, limit=limit)
    if as_json:
        echo_json([dataclasses.asdict(r) for r in found])
        return
    if not found:
        stdout().print(Text("no pipeline runs"))
        return
    table = Table("run id", "pipeline", "status", "started", "took", "trigger", "executor")
    for r in found:
        table.add_row(
            r.run_id,
            r.pipeline,
            _status(r.status.value),
            fmt_time_short(r.start_ms),
            _duration(r.start_ms, r.end_ms),
            r.trigger,
            r.executor,
        )
    stdout().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A pipeline run and its steps: status, timing, attempts, outputs, datasets, models."""
    store = client_of(ctx).store
    run = store.get_pipeline_run(run_id)
    steps = store.list_step_runs(run_id)
    if as_json:
        echo_json({"run": dataclasses.asdict(run), "steps": [dataclasses.asdict(s) for s in steps]})
        return
    _header(run)
    table = Table("step", "status", "took", "tries", "outputs", "datasets", "models", "run")
    for s in steps:
        table.add_row(
            s.name,
            _status(s.status.value),
            _duration(s.start_ms, s.end_ms),
            str(s.attempts or MISSING),
            ", ".join(f"{o.name}={o.digest[:10]} ({o.serializer})" for o in s.outputs) or MISSING,
            _datasets(s),
            ", ".join(s.model_versions) or MISSING,
            s.tracking_run_id or MISSING,
        )
    stdout().print(table)
    for s in steps:
        if s.error:
            stdout().print(Text(f"{s.name}:", style="red bold"))
            stdout().print(Text(s.error.rstrip(), style="red"))


def _header(run: PipelineRun) -> None:
    console = stdout()
    console.print(Text(f"pipeline {run.pipeline} run {run.run_id}", style="bold"))
    console.print(
        Text.assemble(
            "status: ",
            _status(run.status.value),
            f"  started {fmt_time(run.start_ms)}, took {_duration(run.start_ms, run.end_ms)}",
        )
    )
    console.print(Text(f"trigger: {run.trigger}  executor: {run.executor}  user: {run.user}"))
    if run.params:
        console.print(Text(f"params: {run.params}"))
    if run.ref:
        console.print(Text(f"ref: {run.ref}"))
    if run.resumed_from:
        console.print(Text(f"resumed from: {run.resumed_from}"))
    tracking = run.tracking_run_id or "none (every step came from the cache)"
    console.print(Text(f"tracking run: {tracking}"))


def _datasets(step: StepRun) -> str:
    parts = [f"read {d}" for d in step.datasets_read]
    parts += [f"wrote {d}" for d in step.datasets_written]
    return ", ".join(parts) or MISSING


@app.command("explain")
def explain(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each step's cache key, what it was made of, and why the step ran or was skipped."""
    store = client_of(ctx).store
    run = store.get_pipeline_run(run_id)
    steps = store.list_step_runs(run_id)
    if as_json:
        echo_json(
            [
                {
                    "step": s.name,
                    "status": s.status.value,
                    "cache_key": s.cache_key,
                    "reason": s.reason,
                    "key_parts": s.key_parts,
                    "cached_from": s.cached_from,
                }
                for s in steps
            ]
        )
        return
    console = stdout()
    console.print(Text(f"pipeline {run.pipeline} run {run.run_id}", style="bold"))
    for s in steps:
        head = Text.assemble(_status(f"{s.status.value:<9}"), f" {s.name}")
        if s.cache_key:
            head.append(f"  key {s.cache_key[:16]}", style="dim")
        console.print(head)
        console.print(Text(f"    why: {s.reason or MISSING}"))
        if s.cached_from:
            console.print(Text(f"    outputs from: {s.cached_from}"))
        parts = s.key_parts
        if not parts:
            continue
        console.print(Text(f"    code: {str(parts.get('code', MISSING))[:16]}", style="dim"))
        for label, key in (("params", "params"), ("inputs", "inputs"), ("libraries", "libraries")):
            value = parts.get(key) or {}
            if value:
                shown = ", ".join(
                    f"{k}={str(v)[:12] if key == 'inputs' else v}" for k, v in value.items()
                )
                console.print(Text(f"    {label}: {shown}", style="dim"))


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run.")],
    step: Annotated[str, typer.Argument(help="The step.")],
) -> None:
    """What a step printed and logged."""
    client = client_of(ctx)
    found = {s.name: s for s in client.store.list_step_runs(run_id)}
    if step not in found:
        from loopml.errors import NotFound

        raise NotFound(
            f"pipeline run {run_id} has no step {step!r}: steps are {sorted(found)}", step=step
        )
    record = found[step]
    if not record.logs_digest:
        stdout().print(Text(f"step {step} printed nothing"))
        return
    typer.echo(client.artifact_store().read_bytes(record.logs_digest).decode(), nl=False)


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A registered model's name.")],
    version: Annotated[int, typer.Argument(help="Its version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where a model version came from: its run, the pipeline steps, the dataset versions."""
    from loopml.pipelines.lineage import model_lineage

    root = model_lineage(client_of(ctx), model, version)
    if as_json:
        echo_json(root.to_dict())
        return
    tree = Tree(Text(root.label, style="bold"))
    _grow(tree, root)
    stdout().print(tree)


def _grow(branch: Tree, node: LineageNode) -> None:
    for parent in node.parents:
        detail = ""
        if parent.kind == "dataset":
            source = parent.details.get("source", "")
            digest = str(parent.details.get("digest", ""))[:12]
            detail = f"  digest {digest}  source {source}"
        elif parent.kind == "step":
            detail = f"  {parent.details.get('status', '')}"
        _grow(branch.add(Text(parent.label) + Text(detail, style="dim")), parent)
