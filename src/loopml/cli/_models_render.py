"""Tables and sentences for ``loopml models``: models, versions, policies, gates and history.

Only formatting lives here; every value comes from the registry SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loopml.cli._common import MISSING, fmt_number, fmt_time, fmt_time_short, value_text
from loopml.core.registry import AliasMove, Approval, ModelVersion, RegisteredModel
from loopml.registry.gates import Gate
from loopml.registry.policy import POLICY_TAG, PromotionPolicy

if TYPE_CHECKING:
    from loopml.evaluation.result import EvaluationResult
    from loopml.packaging.result import BuildResult

# Metric columns ``versions`` shows at most (metrics the policy names come first).
MAX_METRIC_COLUMNS = 6


# -- small pieces ------------------------------------------------------------------------------
def visible_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """A model's tags without the stored promotion policy (shown on its own)."""
    return {k: v for k, v in sorted(tags.items()) if k != POLICY_TAG}


def aliases_text(aliases: Mapping[str, int]) -> Text:
    """``champion→3, staging→4`` (sorted by alias)."""
    if not aliases:
        return Text(MISSING, style="dim")
    return Text(", ".join(f"{a}→{v}" for a, v in sorted(aliases.items())))


def version_text(version: int | None) -> str:
    return MISSING if version is None else str(version)


def move_text(move: AliasMove) -> str:
    """``moved champion: 3 → 4``, ``moved staging: none → 2``, ``deleted staging (was 2)``."""
    if move.to_version is None:
        return f"deleted {move.alias} (was {version_text(move.from_version)})"
    before = "none" if move.from_version is None else str(move.from_version)
    return f"moved {move.alias}: {before} → {move.to_version}"


def _num(value: Any) -> str:
    """A number from a policy as written: ``0.8``, ``0.005``, ``3``."""
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


# -- policies and gates ------------------------------------------------------------------------
def describe_gate(gate: Gate | Mapping[str, Any]) -> str:
    """One gate as a sentence, e.g. ``f1 >= 0.8 (on dataset 'holdout')``."""
    spec = gate.to_dict() if isinstance(gate, Gate) else dict(gate)
    kind = spec.get("kind")
    dataset = spec.get("dataset")
    if kind == "threshold":
        metric, low, high = spec["metric"], spec.get("min"), spec.get("max")
        if low is not None and high is not None:
            rule = f"{_num(low)} <= {metric} <= {_num(high)}"
        elif low is not None:
            rule = f"{metric} >= {_num(low)}"
        elif high is not None:
            rule = f"{metric} <= {_num(high)}"
        else:
            rule = f"{metric} is recorded"
        where = (
            f"on dataset {dataset!r}"
            if dataset
            else "from the newest evaluation, else the version's own metrics"
        )
        return f"threshold: {rule} ({where})"
    if kind == "beats":
        better = "higher" if spec.get("higher_is_better", True) else "lower"
        where = f"on dataset {dataset!r}" if dataset else "on the newest common evaluation dataset"
        return (
            f"beats: {spec['metric']} at least {_num(spec.get('by', 0.0))} better than "
            f"the version holding {spec['alias']!r} ({better} is better, {where})"
        )
    if kind == "approval":
        count = int(spec.get("count", 1))
        who = spec.get("approvers") or []
        among = f" from {', '.join(who)}" if who else ""
        return f"approval: {count} approval{'s' * (count != 1)}{among}"
    return f"{kind}: {gate!r}" if isinstance(gate, Gate) else f"{kind}: {spec}"


def policy_view(policy: PromotionPolicy, name: str) -> RenderableType:
    """Each guarded alias with its gates, one per line."""
    guarded = {alias: gates for alias, gates in policy.gates.items() if gates}
    if not guarded:
        return Text(f"{name!r} has no promotion policy: every alias moves freely", style="dim")
    table = Table(
        title="Promotion policy", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False
    )
    table.add_column("Alias", style="bold", no_wrap=True)
    table.add_column("Gate")
    for i, (alias, gates) in enumerate(sorted(guarded.items())):
        if i:
            table.add_section()
        for j, gate in enumerate(gates):
            table.add_row(Text(alias if j == 0 else ""), Text(describe_gate(gate)))
    return table


def gates_table(results: Sequence[Mapping[str, Any]], title: str) -> Table:
    """✓/✗, gate and detail (with the numbers compared) for each gate result."""
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("Gate", no_wrap=True)
    table.add_column("Detail")
    for r in results:
        style = "" if r["passed"] else "red"
        table.add_row(
            Text("✓", style="bold green") if r["passed"] else Text("✗", style="bold red"),
            Text(str(r["gate"]), style=style),
            Text(str(r["detail"]), style=style),
        )
    return table


# -- models ------------------------------------------------------------------------------------
def models_table(models: Sequence[RegisteredModel]) -> Table:
    table = Table(title=f"{len(models)} registered model{'s' * (len(models) != 1)}")
    table.add_column("Name", style="bold")
    table.add_column("Latest", justify="right", no_wrap=True)
    table.add_column("Aliases")
    table.add_column("Updated", no_wrap=True)
    table.add_column("Description")
    for m in models:
        table.add_row(
            Text(m.name),
            version_text(m.latest_version),
            aliases_text(m.aliases),
            fmt_time_short(m.updated_at),
            Text(m.description or MISSING, style="" if m.description else "dim"),
        )
    return table


def model_view(
    model: RegisteredModel,
    policy: PromotionPolicy,
    history: Sequence[AliasMove],
    approvals: Sequence[Approval],
) -> Group:
    info = _grid()
    info.add_row("Model", Text(model.name, style="bold"))
    info.add_row("Description", Text(model.description or MISSING))
    info.add_row("Latest version", version_text(model.latest_version))
    info.add_row("Created", fmt_time(model.created_at))
    info.add_row("Updated", fmt_time(model.updated_at))
    tags = visible_tags(model.tags)
    info.add_row("Tags", Text(", ".join(f"{k}={v}" for k, v in tags.items()) or MISSING))
    parts: list[RenderableType] = [info]
    if model.aliases:
        table = Table(title="Aliases", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        table.add_column("Alias", style="bold")
        table.add_column("Version", justify="right")
        table.add_column("URI")
        table.add_column("Gates", justify="right")
        for alias, version in sorted(model.aliases.items()):
            table.add_row(
                Text(alias),
                str(version),
                Text(f"models:/{model.name}@{alias}"),
                str(len(policy.for_alias(alias))),
            )
        parts.append(table)
    else:
        parts.append(Text("Aliases: none", style="dim"))
    parts.append(policy_view(policy, model.name))
    parts.append(history_table(history))
    parts.append(approvals_table(approvals))
    return Group(*parts)


def history_table(history: Sequence[AliasMove]) -> RenderableType:
    if not history:
        return Text("Alias history: no moves yet", style="dim")
    table = Table(
        title=f"Alias history ({len(history)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("When", no_wrap=True)
    table.add_column("Alias", style="bold")
    table.add_column("From → To", no_wrap=True)
    table.add_column("Who")
    table.add_column("Why")
    for move in history:
        to = "deleted" if move.to_version is None else str(move.to_version)
        table.add_row(
            fmt_time(move.time),
            Text(move.alias),
            f"{version_text(move.from_version)} → {to}",
            Text(move.actor or MISSING),
            Text(move.reason or MISSING),
        )
    return table


def approvals_table(approvals: Sequence[Approval]) -> RenderableType:
    if not approvals:
        return Text("Approvals: none", style="dim")
    table = Table(
        title=f"Approvals ({len(approvals)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("When", no_wrap=True)
    table.add_column("Version", justify="right")
    table.add_column("For alias", style="bold")
    table.add_column("Approver")
    table.add_column("Comment")
    for a in approvals:
        table.add_row(
            fmt_time(a.time),
            str(a.version),
            Text(a.alias),
            Text(a.approver),
            Text(a.comment or MISSING),
        )
    return table


# -- versions ----------------------------------------------------------------------------------
def metric_keys(versions: Sequence[ModelVersion], preferred: Iterable[str]) -> list[str]:
    """Every metric key of ``versions``: those ``preferred`` first, then the rest sorted."""
    present = {k for v in versions for k in v.metrics}
    first = [k for k in dict.fromkeys(preferred) if k in present]
    return first + sorted(present - set(first))


_MIN_SOURCE = 12


def versions_table(
    name: str, versions: Sequence[ModelVersion], metrics: Sequence[str], width: int
) -> tuple[Table, list[str]]:
    """One row per version for a terminal ``width`` columns wide, and the metric keys left out.

    The run id is shortened (the source holds it whole); the source folds when narrow; metric
    columns are added, in order, while they fit, at most :data:`MAX_METRIC_COLUMNS`.
    """
    columns: list[tuple[str, list[Text]]] = [
        ("Version", [Text(str(v.version)) for v in versions]),
        (
            "Status",
            [
                Text(v.status.value, style="green" if v.status.value == "READY" else "yellow")
                for v in versions
            ],
        ),
        (
            "Aliases",
            [
                Text(", ".join(v.aliases) or MISSING, style="bold" if v.aliases else "dim")
                for v in versions
            ],
        ),
        (
            "Created",
            [
                Text(fmt_time_short(v.created_at) + (f" by {v.created_by}" if v.created_by else ""))
                for v in versions
            ],
        ),
        ("Run", [Text(v.run_id[:8] if v.run_id else MISSING, style="dim") for v in versions]),
    ]
    sources = [Text(v.source) for v in versions]
    # Each column takes its width plus two: one space of padding, one of separator.
    used = sum(_width(h, cells) + 2 for h, cells in columns) + 2
    source_width = _width("Source", sources)
    shown: list[tuple[str, list[Text]]] = []
    for key in metrics:
        cells = [value_text(v.metrics.get(key)) for v in versions]
        needed = _width(key, cells) + 2
        if len(shown) == MAX_METRIC_COLUMNS or used + needed + _MIN_SOURCE > width:
            break
        shown.append((key, cells))
        used += needed
    source_width = max(_MIN_SOURCE, min(source_width, width - used))
    table = Table(
        title=Text(f"{name}: {len(versions)} version{'s' * (len(versions) != 1)}"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for header, _ in columns[:4]:
        table.add_column(header, no_wrap=True, justify="right" if header == "Version" else "left")
    table.add_column("Source", overflow="fold", width=source_width)
    table.add_column("Run", no_wrap=True)
    for key, _ in shown:
        table.add_column(Text(key), justify="right", no_wrap=True)
    for i in range(len(versions)):
        table.add_row(
            *(cells[i] for _, cells in columns[:4]),
            sources[i],
            columns[4][1][i],
            *(cells[i] for _, cells in shown),
        )
    return table, list(metrics[len(shown) :])


def _width(header: str, cells: Sequence[Text]) -> int:
    return max([len(header), *(c.cell_len for c in cells)])


def policy_metrics(policy: PromotionPolicy) -> list[str]:
    """Metrics the policy's gates compare, in the order they are declared."""
    found: list[str] = []
    for gates in policy.gates.values():
        for gate in gates:
            metric = gate.to_dict().get("metric")
            if isinstance(metric, str) and metric not in found:
                found.append(metric)
    return found


# -- evaluation and packaging ------------------------------------------------------------------
def evaluation_view(model_uri: str, dataset: str, result: EvaluationResult) -> Group:
    head = Text.assemble((model_uri, "bold"), " on ", (dataset, "bold"), f" ({result.task})")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for key, value in sorted(result.metrics.items()):
        table.add_row(Text(key), fmt_number(value))
    where = Text(
        f"dataset digest: {result.dataset_digest[:16]}\n"
        f"recorded in run: {result.run_id or MISSING}",
        style="dim",
    )
    return Group(head, table, where)


def build_view(model_uri: str, result: BuildResult) -> Group:
    head = Text.assemble(
        "built ", (result.target, "bold"), f" for {model_uri} in ", (str(result.path), "bold")
    )
    files = Table(
        title=f"{len(result.files)} file{'s' * (len(result.files) != 1)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_header=False,
    )
    files.add_column("File")
    for path in result.files:
        files.add_row(Text(path))
    parts: list[RenderableType] = [head, files]
    if result.details:
        grid = _grid()
        for key, value in result.details.items():
            grid.add_row(Text(key), Text(_detail(value)))
        parts.append(grid)
    return Group(*parts)


def _detail(value: Any) -> str:
    if isinstance(value, float):
        return fmt_number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_detail(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_detail(v) for v in value) or MISSING
    return str(value)
