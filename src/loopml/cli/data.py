"""``loopml data``: dataset versions by content, their differences, and validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli._common import client_of, stdout

app = typer.Typer(help="Dataset versions and validation.", no_args_is_help=True)


def _profiler(frame: Any) -> dict[str, Any]:
    from loopml.monitoring.profile import profile_dataset

    return profile_dataset(frame).to_dict()


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="A file or folder (CSV, Parquet, JSON lines, any file).")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")],
) -> None:
    """Record a version of a dataset by its content digest (identical content: same version),
    with its schema, row count and profile."""
    from loopml.data.versions import add_dataset

    version = add_dataset(client_of(ctx), path, name=name, profiler=_profiler)
    rows = "-" if version.rows is None else f"{version.rows:,}"
    stdout().print(
        Text(
            f"{version.name} version {version.version}: {version.format}, {rows} rows, "
            f"{version.size_bytes:,} bytes, digest {version.digest[:12]}"
        )
    )


@app.command("list")
def list_versions(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this dataset's versions.")] = None,
) -> None:
    """Every dataset version, by name then version."""
    found = client_of(ctx).store.list_dataset_versions(name)
    if not found:
        stdout().print(Text("no dataset versions"))
        return
    table = Table("name", "version", "format", "rows", "bytes", "digest", "created")
    for v in found:
        table.add_row(
            v.name,
            str(v.version),
            v.format,
            "-" if v.rows is None else f"{v.rows:,}",
            f"{v.size_bytes:,}",
            v.digest[:12],
            _when(v.created_ms),
        )
    stdout().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset's name.")],
    version: Annotated[int | None, typer.Argument(help="The version (default: latest).")] = None,
) -> None:
    """One version: where it came from, its digest, schema and row count."""
    store = client_of(ctx).store
    if version is None:
        versions = store.list_dataset_versions(name)
        if not versions:
            store.get_dataset_version(name, 1)  # NotFound, worded by the store
        found = versions[-1]
    else:
        found = store.get_dataset_version(name, version)
    console = stdout()
    console.print(Text(f"{found.name} version {found.version}", style="bold"))
    console.print(Text(f"source: {found.source}"))
    console.print(Text(f"format: {found.format}, {found.size_bytes:,} bytes"))
    console.print(Text(f"rows: {'-' if found.rows is None else f'{found.rows:,}'}"))
    console.print(Text(f"digest: {found.digest}"))
    console.print(Text(f"created: {_when(found.created_ms)} by {found.created_by or '-'}"))
    if found.schema:
        table = Table("column", "type")
        for column, dtype in found.schema.items():
            table.add_row(str(column), str(dtype))
        console.print(table)


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset's name.")],
    a: Annotated[int, typer.Argument(help="The older version.")],
    b: Annotated[int, typer.Argument(help="The newer version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the difference as JSON.")] = False,
) -> None:
    """Schema and statistics differences between two versions of a dataset."""
    from loopml.data.versions import diff_versions

    store = client_of(ctx).store
    result = diff_versions(store.get_dataset_version(name, a), store.get_dataset_version(name, b))
    console = stdout()
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    if result.get("same_content"):
        console.print(Text(f"{name} {a} and {b} have the same content"))
        return
    schema = result.get("schema", {})
    for label in ("added", "removed", "changed"):
        items = schema.get(label) or []
        if items:
            console.print(Text(f"{label} columns: {', '.join(map(str, items))}"))
    rows = result.get("rows") or {}
    if rows:
        console.print(Text(f"rows: {rows.get('from')} -> {rows.get('to')}"))
    columns = result.get("columns") or {}
    if columns:
        table = Table("column", "statistic", f"version {a}", f"version {b}", "change")
        for column, stats in columns.items():
            for stat, values in stats.items():
                table.add_row(
                    str(column),
                    stat,
                    _num(values.get("from")),
                    _num(values.get("to")),
                    _num(values.get("change")),
                )
        console.print(table)


@app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="The data file (CSV, Parquet, JSON lines).")],
    expectations: Annotated[
        Path, typer.Option("--expectations", "-e", help="The rules, YAML or JSON.")
    ],
) -> None:
    """Check a data file against declarative expectations; exit 1 when any rule breaks."""
    from loopml.data.tables import read_table
    from loopml.data.validation import load_expectations
    from loopml.data.validation import validate as check

    report = check(read_table(path), load_expectations(expectations))
    table = Table("rule", "column", "passed", "failing rows", "message")
    for result in report.results:
        table.add_row(
            result.rule,
            result.column or "-",
            "yes" if result.passed else "NO",
            str(result.failing_count),
            result.message,
        )
    stdout().print(table)
    report.raise_for_failures()


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
