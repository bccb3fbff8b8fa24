"""``loopml scheduler``: triggers that start pipelines, their firings, and the scheduler loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from loopml.cli._common import MISSING, client_of, parse_params, stdout
from loopml.core.entities import now_ms
from loopml.core.schedules import Firing, FiringStatus, Trigger, TriggerKind

if TYPE_CHECKING:
    from loopml.pipelines.scheduler import Launcher

app = typer.Typer(
    help="Run pipelines on a cron schedule, on new dataset versions or on alerts.",
    no_args_is_help=True,
)

_STATUS_STYLES = {
    FiringStatus.CLAIMED: "cyan",
    FiringStatus.RUNNING: "cyan",
    FiringStatus.DONE: "green",
    FiringStatus.FAILED: "red",
}


def _when(ms: int | None) -> str:
    if not ms:
        return MISSING
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _spec_text(trigger: Trigger) -> str:
    labels = {TriggerKind.CRON: "cron", TriggerKind.DATASET: "dataset", TriggerKind.ALERT: "alert"}
    return f"{labels[trigger.kind]} {trigger.spec!r}"


def _next_due(trigger: Trigger, now: int) -> str:
    from loopml.pipelines.schedules import next_cron_ms

    if trigger.kind is not TriggerKind.CRON or not trigger.enabled:
        return MISSING
    return _when(next_cron_ms(trigger.spec, now))


def _status(firing: Firing) -> Text:
    return Text(firing.status.value, style=_STATUS_STYLES.get(firing.status, ""))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The trigger's name.", show_default=False)],
    pipeline: Annotated[
        str,
        typer.Option(
            "--pipeline",
            "-p",
            help="The pipeline to run: package.module:attribute or path/file.py:attribute.",
            show_default=False,
        ),
    ],
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="A cron expression in UTC, e.g. '0 3 * * *'."),
    ] = None,
    on_dataset: Annotated[
        str | None,
        typer.Option("--on-dataset", help="Fire for each new version of this dataset."),
    ] = None,
    on_alert: Annotated[
        str | None,
        typer.Option("--on-alert", help="Fire for each new alert of MODEL, or of MODEL:RULE only."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="A pipeline parameter KEY=VALUE (VALUE read as JSON when it is); repeatable.",
        ),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", help="What the trigger is for.")
    ] = "",
) -> None:
    """Create or replace a trigger: --cron, --on-dataset or --on-alert.

    Replacing a trigger keeps its firings, so nothing already run runs again.
    """
    from loopml.pipelines.schedules import add_trigger

    given = [
        flag
        for flag, value in (
            ("--cron", cron),
            ("--on-dataset", on_dataset),
            ("--on-alert", on_alert),
        )
        if value is not None
    ]
    if len(given) != 1:
        got = f"got {' and '.join(given)}" if given else "got none"
        raise typer.BadParameter(
            f"give exactly one of --cron, --on-dataset or --on-alert ({got})",
            param_hint="'--cron' / '--on-dataset' / '--on-alert'",
        )
    client = client_of(ctx)
    existed = any(t.name == name for t in client.store.list_triggers())
    trigger = add_trigger(
        client,
        name,
        pipeline,
        cron=cron,
        on_dataset=on_dataset,
        on_alert=on_alert,
        params=parse_params(param),
        description=description,
    )
    verb = "replaced" if existed else "added"
    line = f"{verb} trigger {trigger.name}: {_spec_text(trigger)} runs {trigger.pipeline}"
    if trigger.kind is TriggerKind.CRON:
        line += f", next due {_next_due(trigger, now_ms())} UTC"
    stdout().print(Text(line))


@app.command("list")
def list_triggers(ctx: typer.Context) -> None:
    """Every trigger, its last firing and (cron) when it is next due."""
    store = client_of(ctx).store
    triggers = store.list_triggers()
    if not triggers:
        stdout().print(Text("no triggers"))
        return
    now = now_ms()
    table = Table(
        "name", "fires on", "pipeline", "params", "last firing", "status", "next due (UTC)"
    )
    for trigger in triggers:
        last = store.list_firings(trigger.name, limit=1)
        table.add_row(
            trigger.name,
            _spec_text(trigger) + ("" if trigger.enabled else " (disabled)"),
            trigger.pipeline,
            json.dumps(trigger.params) if trigger.params else MISSING,
            f"{last[0].key}" if last else MISSING,
            _status(last[0]) if last else Text(MISSING),
            _next_due(trigger, now),
        )
    stdout().print(table)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The trigger's name.", show_default=False)],
) -> None:
    """Delete a trigger and its firings."""
    client_of(ctx).store.delete_trigger(name)
    stdout().print(Text(f"removed trigger {name}"))


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this trigger's firings.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Most firings.")] = 50,
) -> None:
    """Firings, newest first: which scheduler ran them, pipeline runs, errors."""
    store = client_of(ctx).store
    if name is not None:
        store.get_trigger(name)  # NotFound names the triggers that exist
    firings = store.list_firings(name, limit=limit)
    if not firings:
        stdout().print(Text("no firings" + (f" of {name}" if name else "")))
        return
    table = Table("trigger", "key", "due (UTC)", "status", "owner", "pipeline run", "error")
    for firing in firings:
        table.add_row(
            firing.trigger,
            firing.key,
            _when(firing.due_ms),
            _status(firing),
            firing.owner,
            firing.pipeline_run_id or MISSING,
            Text(firing.error.splitlines()[0] if firing.error else MISSING),
        )
    stdout().print(table)


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Tick once (run what is due now) and exit.")
    ] = False,
    poll_s: Annotated[
        float, typer.Option("--poll-s", min=0.01, help="Seconds between ticks.")
    ] = 5.0,
    lease_s: Annotated[
        float,
        typer.Option(
            "--lease-s",
            min=0.01,
            help="Seconds without a heartbeat after which another scheduler takes a firing over.",
        ),
    ] = 60.0,
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", min=1, help="Firings run at the same time.")
    ] = 1,
) -> None:
    """Fire due triggers until stopped, or once with --once.

    Ctrl-C or SIGTERM stops claiming and lets the running pipelines finish; a second one
    leaves them to another scheduler. Any number of schedulers may share a store: each
    firing runs once. With --once the exit code is 1 if a firing failed.
    """
    from loopml.pipelines.scheduler import Scheduler, default_launcher

    client = client_of(ctx)
    console = stdout()
    launcher = _reporting(default_launcher(client), console)
    scheduler = Scheduler(
        client,
        poll_s=poll_s,
        lease_s=lease_s,
        launcher=launcher,
        max_concurrent=max_concurrent,
    )
    if once:
        fired = scheduler.tick()
        failed = sum(f.status is FiringStatus.FAILED for f in fired)
        console.print(Text(f"{len(fired)} firing(s), {failed} failed" if fired else "nothing due"))
        if failed:
            raise typer.Exit(1)
        return
    console.print(Text(f"scheduler {scheduler.owner}: ticking every {poll_s:g} s (Ctrl-C stops)"))
    with console.status("waiting for due triggers..."):
        scheduler.run()
    console.print(Text("scheduler stopped"))


def _reporting(launcher: Launcher, console: Console) -> Launcher:
    """``launcher``, printing a line when each firing starts and ends."""

    def launch(trigger: Trigger, firing: Firing) -> str:
        console.print(
            Text(f"{_when(now_ms())} {trigger.name} [{firing.key}]: starting {trigger.pipeline}")
        )
        try:
            run_id = launcher(trigger, firing)
        except Exception as exc:
            console.print(
                Text(f"{_when(now_ms())} {trigger.name} [{firing.key}]: failed: {exc}", "red")
            )
            raise
        console.print(
            Text(f"{_when(now_ms())} {trigger.name} [{firing.key}]: done, pipeline run {run_id}")
        )
        return run_id

    return launch
