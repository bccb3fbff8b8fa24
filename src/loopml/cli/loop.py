"""``loopml loop``: run the closed loop of a model, start an iteration by hand, read the
decision records."""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli._common import MISSING, client_of, echo_json, fmt_time, stdout

if TYPE_CHECKING:
    from loopml.core.loop import LoopIteration

app = typer.Typer(
    help="The closed loop: retrain, compare, promote, roll back.", no_args_is_help=True
)

_POLICY = typer.Argument(help="The loop policy (YAML), e.g. loop.yaml.", show_default=False)
STYLES = {"promoted": "green", "rejected": "yellow", "rolled_back": "yellow", "failed": "red"}


def _controller(ctx: typer.Context, policy: Path, lease_s: float) -> Any:
    from loopml.loop import LoopController, LoopPolicy

    def say(event: str, it: LoopIteration) -> None:
        stdout().print(Text(f"iteration {it.number} of {it.model_name}: {event}"))

    return LoopController(
        client_of(ctx), LoopPolicy.from_file(policy), lease_s=lease_s, listener=say
    )


@app.command("run")
def run(
    ctx: typer.Context,
    policy: Annotated[Path, _POLICY],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval_s: Annotated[
        float, typer.Option("--interval-s", help="Seconds between passes.")
    ] = 30.0,
    lease_s: Annotated[
        float,
        typer.Option(
            "--lease-s", help="Take over an iteration whose controller is silent this long."
        ),
    ] = 60.0,
) -> None:
    """Watch the model, retrain when a trigger fires, promote through the gates, roll back a
    promotion that does worse live. Ctrl-C or SIGTERM stops after the current pass."""
    if not once and interval_s >= lease_s:
        raise typer.BadParameter(
            f"--interval-s {interval_s:g} must be shorter than --lease-s {lease_s:g}: a waiting "
            "iteration beats once a pass, and other controllers would take it over",
            param_hint="--interval-s",
        )
    controller = _controller(ctx, policy, lease_s)
    if once:
        controller.tick()
        return
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stdout().print(
        Text(f"loop of {controller.policy.model} running (owner {controller.owner}); Ctrl-C stops")
    )
    try:
        controller.run(interval_s=interval_s, stop_event=stop)
    except KeyboardInterrupt:
        stop.set()


@app.command("trigger")
def trigger(
    ctx: typer.Context,
    policy: Annotated[Path, _POLICY],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")] = "manual",
) -> None:
    """Start an iteration now (the policy's limits still apply) and run it as far as it goes."""
    controller = _controller(ctx, policy, 60.0)
    it = controller.trigger(reason)
    if it is None:
        stdout().print(Text("no iteration started: one is open, or the policy's limits say wait"))
        raise typer.Exit(1)
    _show(it)
    if it.outcome.value == "failed":
        raise typer.Exit(1)


@app.command("history")
def history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every loop iteration of a model, newest first, with its decision record."""
    from loopml.loop import history as loop_history

    found = loop_history(client_of(ctx), model, limit=limit)
    if as_json:
        echo_json([dataclasses.asdict(it) for it in found])
        return
    if not found:
        stdout().print(Text(f"no loop iterations for {model}"))
        return
    table = Table("#", "started", "status", "outcome", "trigger", "data", "versions", "metrics")
    for it in found:
        table.add_row(*_row(it))
    stdout().print(table)
    for it in found:
        _show(it)


def _row(it: LoopIteration) -> tuple[Any, ...]:
    record = it.record
    champion = record.get("champion", {})
    challenger = record.get("challenger", {})
    metrics = ", ".join(
        f"{k} {champion.get('metrics', {}).get(k, float('nan')):.4f} -> {v:.4f}"
        for k, v in challenger.get("metrics", {}).items()
        if k in ("accuracy", "f1", "rmse", "r2")
    )
    data = record.get("data", {})
    return (
        str(it.number),
        fmt_time(it.created_ms),
        it.status.value,
        Text(it.outcome.value or MISSING, style=STYLES.get(it.outcome.value, "")),
        str(it.trigger.get("rule") or it.trigger.get("kind", MISSING)),
        f"{data.get('training', MISSING)} / {data.get('holdout', MISSING)}",
        f"{champion.get('version', MISSING)} -> {challenger.get('version', MISSING)}",
        metrics or MISSING,
    )


def _show(it: LoopIteration) -> None:
    console = stdout()
    console.print(
        Text(
            f"iteration {it.number} of {it.model_name} ({it.iteration_id}): {it.status.value} "
            f"{it.outcome.value or ''} at stage {it.stage.value}",
            style="bold",
        )
    )
    trigger = it.trigger
    console.print(
        Text(f"  trigger: {trigger.get('rule') or trigger.get('kind')} {_brief(trigger)}")
    )
    for gate in it.record.get("gates", []):
        mark = "pass" if gate.get("passed") else "FAIL"
        console.print(Text(f"  gate {gate.get('gate')}: {mark}: {gate.get('detail')}"))
    for action in it.record.get("actions", []):
        console.print(
            Text(
                f"  {fmt_time(action.get('at_ms'))}  {action.get('action')} by "
                f"{action.get('actor')}: {action.get('detail')}",
                style="dim",
            )
        )


def _brief(trigger: dict[str, Any]) -> str:
    keys = ("metric", "value", "threshold", "dataset", "reason")
    shown = {k: v for k, v in trigger.items() if k in keys}
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
    )
