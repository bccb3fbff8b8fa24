"""The quickstart's closing tables: before and after, drift, time, the decision record, and the
commands that look around the workspace it leaves."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from loopml.quickstart.result import QuickstartResult, Served

__all__ = ["next_commands", "report"]


def report(console: Console, result: QuickstartResult) -> None:
    console.print()
    console.print(_before_after(result))
    console.print()
    console.print(_facts("Drift and time", _drift_and_time(result)))
    if result.iteration is not None:
        console.print()
        console.print(_facts(_record_title(result), _record(result)))
    console.print()
    if result.server_pid is not None:
        console.print(
            Text.assemble(
                ("The server is still up ", "bold"),
                f"at {result.server_url} (pid {result.server_pid}, log {result.server_log}); "
                f"stop it with: kill {result.server_pid}",
            ),
            soft_wrap=True,
        )
        console.print()
    console.print(Text("Look around the workspace:", style="bold"))
    for command in next_commands(result):
        console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)


def next_commands(result: QuickstartResult) -> list[str]:
    model = result.model
    version = result.loop_version or result.static_version
    commands = [
        f"loopml models show {model}",
        f"loopml loop history {model}",
        f"loopml monitor alerts {model}",
        "loopml pipelines list",
        f"loopml pipelines lineage {model} {version}",
        "loopml runs list --experiment quickstart",
    ]
    if result.server_pid is not None:
        commands += [
            f"curl -s {result.server_url}/version",
            f"curl -s {result.server_url}/metrics | grep loopml_model_swaps_total",
        ]
    return commands


# -- tables ----------------------------------------------------------------------------------
def _before_after(result: QuickstartResult) -> Table:
    table = Table(
        title="Accuracy on the larger tumours, before and after the loop",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("")
    table.add_column(f"static model (v{result.static_version})", justify="right")
    loop_name = (
        f"the loop's model (v{result.loop_version})"
        if result.loop_version is not None
        else "after the loop (no new model)"
    )
    table.add_column(loop_name, justify="right", style="bold")
    table.add_row(
        f"{result.held_out_rows} held-out rows (never trained on or sent)",
        _number(result.static_accuracy),
        _number(result.loop_accuracy),
    )
    table.add_row(
        "live answers on the shifted traffic",
        _served(result.served_before),
        _served(result.served_after),
    )
    record = result.iteration.record if result.iteration is not None else {}
    table.add_row(
        "the loop's fresh holdout",
        _number(_record_metric(record, "champion")),
        _number(_record_metric(record, "challenger")),
    )
    data = record.get("data", {})
    table.add_row(
        "trained on",
        "small tumours only",
        f"{data['rows']} labelled live rows" if "rows" in data else "-",
    )
    return table


def _drift_and_time(result: QuickstartResult) -> list[tuple[str, str]]:
    threshold = result.drift_threshold
    before = [w for w in result.windows if result.shift_ms is None or w.end_ms < result.shift_ms]
    promoted_ms = (result.iteration.record.get("promoted_ms") if result.iteration else None) or 0
    after = [w for w in result.windows if promoted_ms and w.end_ms > promoted_ms]
    rows: list[tuple[str, str]] = []
    if before:
        rows.append(
            (
                "drift share before the shift",
                f"at most {max(w.drift_share for w in before):.2f} in {len(before)} windows",
            )
        )
    share = result.drift_share
    rows.append(
        (
            "drift share that triggered",
            "never triggered" if share is None else f"{share:.2f} (threshold {threshold:g})",
        )
    )
    if after:
        rows.append(
            (
                "against the new reference",
                f"{after[-1].drift_share:.2f} in the last window ({len(after)} windows)",
            )
        )
    rows.append(("shift -> drift detected", _seconds(result.onset_to_detection_s)))
    rows.append(("shift -> new champion answering", _seconds(result.drift_to_promotion_s)))
    rows.append(("wall time", _seconds(result.wall_s)))
    served = ", ".join(f"v{v}: {n}" for v, n in sorted(result.versions_served.items()))
    rows.append(
        (
            "requests",
            f"{result.requests} answered ({served}), {result.failed_requests} failed; "
            f"{result.failed_feedback} feedback posts failed",
        )
    )
    return rows


def _record_title(result: QuickstartResult) -> str:
    it = result.iteration
    assert it is not None
    outcome = it.outcome.value or "-"
    return f"Decision record of loop iteration {it.number} ({it.status.value}, {outcome})"


def _record(result: QuickstartResult) -> list[tuple[str, str]]:
    it = result.iteration
    assert it is not None
    record = it.record
    trigger = record.get("trigger", {})
    rows = [
        (
            "trigger",
            f"{trigger.get('kind')}: {trigger.get('metric', '')} = "
            f"{_number(trigger.get('value'))}, rule {trigger.get('rule', '-')}",
        )
    ]
    data = record.get("data")
    if data:
        rows.append(
            (
                "data",
                f"training {data.get('training')} ({data.get('rows')} rows), holdout "
                f"{data.get('holdout')} ({data.get('holdout_rows')} rows)",
            )
        )
    for role in ("champion", "challenger"):
        entry = record.get(role)
        if entry:
            metrics = entry.get("metrics", {})
            shown = ", ".join(
                f"{k} {_number(metrics[k])}" for k in ("accuracy", "f1", "roc_auc") if k in metrics
            )
            rows.append((role, f"version {entry.get('version')}" + (f": {shown}" if shown else "")))
    for gate in record.get("gates", []):
        verdict = "passed" if gate.get("passed") else "FAILED"
        rows.append(("gate", f"{gate.get('gate')}: {verdict} ({gate.get('detail')})"))
    if record.get("decision"):
        rows.append(("decision", str(record["decision"])))
    live = record.get("live")
    if isinstance(live, dict):
        rows.append(
            ("live check", f"new {_number(live.get('new'))} vs old {_number(live.get('old'))}")
        )
    start = it.created_ms
    actors = sorted({str(a.get("actor")) for a in record.get("actions", [])})
    if actors:
        rows.append(("actions by", ", ".join(actors)))
    for action in record.get("actions", []):
        at = (int(action.get("at_ms", start)) - start) / 1000
        rows.append((f"  +{at:5.1f}s", f"{action.get('action')}: {action.get('detail')}"))
    if record.get("error"):
        rows.append(("error", str(record["error"]).strip().splitlines()[-1]))
    return rows


def _facts(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold"
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def _record_metric(record: dict[str, Any], role: str) -> float | None:
    value = record.get(role, {}).get("metrics", {}).get("accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def _number(value: Any) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"


def _served(served: Served | None) -> str:
    if served is None or served.accuracy is None:
        return "-"
    return f"{served.accuracy:.4f} ({served.rows} rows)"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
