"""What the quickstart prints while it runs: one line per thing that happened, with the seconds
since the start, and a progress bar while the traffic flows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.text import Text

if TYPE_CHECKING:
    from loopml.core.alerts import Alert
    from loopml.core.loop import LoopIteration
    from loopml.quickstart.driver import Window
    from loopml.quickstart.traffic import TrafficStats

__all__ = ["Story", "TrafficBar"]

_MARKS = {"ok": ("✓", "green"), "info": ("·", "dim"), "warn": ("!", "yellow"), "bad": ("✗", "red")}


class Story:
    """Prints the quickstart's lines on ``console`` (a quiet console prints nothing)."""

    def __init__(self, console: Console, *, started_s: float | None = None) -> None:
        self.console = console
        self.started_s = time.monotonic() if started_s is None else started_s

    def elapsed(self) -> float:
        return time.monotonic() - self.started_s

    def title(self, text: str) -> None:
        self.console.print(Text(text, style="bold"))

    def line(self, label: str, text: str | Text, *, mark: str = "ok") -> None:
        """``  12.3s ✓ label  text``."""
        symbol, style = _MARKS[mark]
        body = text if isinstance(text, Text) else Text(text)
        self.console.print(
            Text.assemble(
                (f"{self.elapsed():6.1f}s ", "dim"),
                (f"{symbol} ", style),
                (f"{label:<11}", "bold" if mark != "info" else "dim"),
                body,
            ),
            soft_wrap=False,
        )

    def more(self, text: str) -> None:
        """A continuation of the line above."""
        self.console.print(Text(" " * 21 + text), soft_wrap=False)

    def blank(self) -> None:
        self.console.print()

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        with self.console.status(escape(text)):
            yield

    def alert(self, alert: Alert | None, detail: str) -> None:
        if alert is None:
            self.line("alert", detail, mark="warn")
            return
        self.line(
            "alert",
            f"{alert.rule} fired: {alert.metric} {alert.value:.2f} {alert.op} "
            f"{alert.threshold:g} (loopml monitor alerts lists it)",
            mark="warn",
        )

    # -- the loop, as it happens -------------------------------------------------------------
    def window(self, window: Window, *, note: str = "") -> None:
        share = f"{window.drift_share:.2f}"
        self.line(
            "monitor",
            f"window {window.index + 1} ({window.rows} rows): drift share {share}"
            + (f" {note}" if note else ""),
            mark="info",
        )

    def loop_event(self, event: str, it: LoopIteration, *, metric: str) -> None:
        """One line for one stage of a loop iteration."""
        record = it.record
        if event == "triggered":
            trigger = it.trigger
            value = trigger.get("value")
            said = f"{trigger.get('metric', trigger.get('kind'))} "
            said += f"{value:.2f}" if isinstance(value, (int, float)) else str(value)
            self.line("loop", f"iteration {it.number} starts, triggered by {said}", mark="warn")
        elif event == "data":
            data = record.get("data", {})
            rows = data.get("rows", 0) + data.get("holdout_rows", 0)
            self.line("data", f"the newest {rows} labelled rows (inputs + /feedback), stored as")
            self.more(
                f"{data.get('training')} ({data.get('rows')} rows) and "
                f"{data.get('holdout')} ({data.get('holdout_rows')} rows)"
            )
        elif event == "trained":
            run_id = str(record.get("challenger", {}).get("pipeline_run_id", ""))
            self.line("retrained", f"pipeline run {run_id[:12]}: a clone of the champion refit")
        elif event == "registered":
            version = record.get("challenger", {}).get("version")
            self.line("registered", f"challenger: version {version}")
        elif event == "evaluated":
            self.line(
                "evaluated",
                f"{metric} on the holdout: challenger "
                f"{_metric(record, 'challenger', metric)} vs champion "
                f"{_metric(record, 'champion', metric)}",
            )
        elif event == "gated":
            self._gates(record)
        elif event == "promoted" and it.stage.value == "promoted":
            old, new = record["champion"]["version"], record["challenger"]["version"]
            self.line("promoted", f"champion: version {old} -> {new}")
        elif event == "promoted":
            self.line(
                "reference",
                f"monitoring reference reset to the training data of version "
                f"{record['challenger']['version']}",
            )
        elif event == "rejected":
            self._gates(record)
            self.line("rejected", "the champion stays", mark="bad")
        elif event == "failed":
            actions = record.get("actions") or [{}]
            self.line("failed", str(actions[-1].get("detail", "")), mark="bad")
        elif event == "rolled_back":
            actions = record.get("actions") or [{}]
            self.line("rolled back", str(actions[-1].get("detail", "")), mark="bad")
        elif event == "waiting":
            self.line("waiting", "for an approval", mark="warn")

    def _gates(self, record: dict[str, Any]) -> None:
        for gate in record.get("gates", []):
            self.line("gate", _gate_text(gate), mark="ok" if gate.get("passed") else "bad")


def _gate_text(gate: dict[str, Any]) -> str:
    """``beats champion on accuracy: 0.9667 vs 0.9067 (margin +0.0600)``, or its detail."""
    numbers = gate.get("numbers") or {}
    verdict = "passed" if gate.get("passed") else "failed"
    if {"candidate", "holder", "margin"} <= set(numbers):
        return (
            f"{gate.get('gate')}: {verdict}, {numbers['candidate']:.4f} vs "
            f"{numbers['holder']:.4f} (margin {numbers['margin']:+.4f})"
        )
    return f"{gate.get('gate')}: {verdict}, {gate.get('detail')}"


def _metric(record: dict[str, Any], role: str, metric: str) -> str:
    value = record.get(role, {}).get("metrics", {}).get(metric)
    return "-" if value is None else f"{value:.4f}"


class TrafficBar:
    """The progress bar of the traffic: requests answered, the shifted share, who serves."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def update(self, stats: TrafficStats, *, drift_share: float | None) -> None:
        serving = ", ".join(f"v{v}" for v in sorted(stats.versions, key=_version_key)) or "-"
        drift = "-" if drift_share is None else f"{drift_share:.2f}"
        self.progress.update(
            self.task,
            completed=stats.answered,
            total=stats.planned,
            status=(
                f"large tumours {stats.share:4.0%}  answered by {serving}  "
                f"drift share {drift}  failed {stats.failed}"
            ),
        )


@contextmanager
def traffic_bar(console: Console) -> Iterator[TrafficBar]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("requests"),
        BarColumn(bar_width=24),
        TextColumn("{task.completed:>5}"),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("traffic", total=None, status="")
        yield TrafficBar(progress, task)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)
