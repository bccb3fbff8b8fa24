"""Pieces every command shares: the client from the context, consoles and formatting.

Nothing here decides anything about runs; it only turns SDK values into text or JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from loopml.core.entities import (
    Experiment,
    RunStatus,
)
from loopml.core.jsonable import to_jsonable
from loopml.errors import LoopmlError, NotFound
from loopml.tracking.client import Client

MISSING = "-"

STATUS_STYLES: Mapping[RunStatus, str] = {
    RunStatus.RUNNING: "cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
}


# -- context and consoles --------------------------------------------------------------------
def client_of(ctx: typer.Context) -> Client:
    """The :class:`Client` the root command put into the context."""
    obj = ctx.find_root().obj
    if isinstance(obj, Client):
        return obj
    client = Client()
    ctx.find_root().obj = client
    ctx.find_root().call_on_close(client.close)
    return client


def stdout() -> Console:
    """A console on the current standard output (made per command: tests swap the stream)."""
    return Console(highlight=False)


def print_error(exc: LoopmlError) -> None:
    """``error: <message>`` in red on standard error, never a traceback."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(Text(f"error: {exc.message}", style="red"))


def echo_json(data: Any) -> None:
    """Machine-readable output: plain JSON, NaN and infinities spelled as strings."""
    typer.echo(json.dumps(to_jsonable(data), indent=2, allow_nan=False))


def resolve_experiment(client: Client, ref: str) -> Experiment:
    """The experiment named ``ref``, or else the one whose id is ``ref``."""
    found = client.get_experiment_by_name(ref)
    if found is not None:
        return found
    if ref.isdigit():
        return client.get_experiment(ref)
    raise NotFound(f"experiment {ref!r} not found (looked it up by name and by id)", id=ref)


# -- text ------------------------------------------------------------------------------------
def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local wall-clock time (0 means unknown)."""
    if not ms:
        return MISSING
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_time_short(ms: int | None, *, now: datetime | None = None) -> str:
    """A compact local time for lists: ``16:26:03`` today, ``Nov 22 16:26`` this year."""
    if not ms:
        return MISSING
    when = datetime.fromtimestamp(ms / 1000).astimezone()
    today = (now or datetime.now()).astimezone()
    if when.date() == today.date():
        return when.strftime("%H:%M:%S")
    if when.year == today.year:
        return when.strftime("%b %d %H:%M")
    return when.strftime("%Y-%m-%d")


def fmt_duration(ms: int | None) -> str:
    """``0.4s``, ``3.2s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if ms is None or ms < 0:
        return MISSING
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def fmt_number(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}"


def fmt_size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def status_text(status: RunStatus) -> Text:
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def value_text(value: str | float | None) -> Text:
    """A param (text) or metric (number) as a table cell; user text is never read as markup."""
    if value is None:
        return Text(MISSING, style="dim")
    if isinstance(value, str):
        return Text(value)
    return Text(fmt_number(value))


# -- JSON ------------------------------------------------------------------------------------


def parse_params(items: list[str] | None, *, option: str = "--param") -> dict[str, Any]:
    """``["C=0.5", "name=x"]`` as ``{"C": 0.5, "name": "x"}``: each value read as JSON when it
    is JSON, else kept as text."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(
                f"{item!r} is not KEY=VALUE (e.g. {option} C=0.5)", param_hint=option
            )
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params
