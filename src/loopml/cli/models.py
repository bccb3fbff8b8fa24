"""``loopml models``: the model registry: versions, aliases, promotion gates, evaluation and
packaging.

Each command is a thin layer over :class:`loopml.registry.ModelRegistry` (and
``loopml.evaluate`` / ``loopml.packaging.build``); the tables come from
:mod:`loopml.cli._models_render`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from loopml.cli import _models_render as render
from loopml.cli._common import client_of, echo_json, stdout
from loopml.core.jsonable import to_jsonable
from loopml.core.registry import ModelVersion, RegisteredModel
from loopml.errors import InvalidArgument, PromotionRefused
from loopml.registry.service import ModelRegistry
from loopml.tracking.client import Client

app = typer.Typer(
    help="Register models, move aliases through promotion gates, evaluate and package them.",
    no_args_is_help=True,
)

_JSON = typer.Option("--json", help="Print JSON (NaN and infinities as strings).")
_NAME = typer.Argument(help="Registered model name.", show_default=False)
_VERSION = typer.Argument(min=1, help="Version number.", show_default=False)
_REASON = typer.Option("--reason", help="Why: recorded in the alias history.")


def _registry(ctx: typer.Context) -> ModelRegistry:
    return ModelRegistry(client_of(ctx))


def _all_versions(client: Client, name: str) -> list[ModelVersion]:
    """Every version of ``name``, newest first (all pages)."""
    found: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = client.store.list_model_versions(name, page_token=token)
        found.extend(page.items)
        token = page.next_page_token
        if token is None:
            return found


def _model_json(model: RegisteredModel) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(model)
    data["tags"] = render.visible_tags(model.tags)
    return data


# -- reading ---------------------------------------------------------------------------------
@app.command("list")
def list_models(
    ctx: typer.Context,
    name_like: Annotated[
        str,
        typer.Option(
            "--name-like",
            help="Only names matching this pattern ('%' matches any text), e.g. 'fraud%'.",
            show_default=False,
        ),
    ] = "",
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List registered models: latest version, aliases, last update and description."""
    page = client_of(ctx).store.list_registered_models(name_like=name_like)
    models = list(page.items)
    if as_json:
        echo_json([_model_json(m) for m in models])
        return
    console = stdout()
    if not models:
        hint = f" matching {name_like!r}" if name_like else ""
        console.print(f"no registered models{hint}", style="dim")
        return
    console.print(render.models_table(models))
    if page.next_page_token is not None:
        console.print(
            f"only the first {len(models)} are shown: narrow with --name-like", style="dim"
        )


@app.command("show")
def show_model(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Show a model: description, tags, aliases, promotion policy, alias history, approvals."""
    registry = _registry(ctx)
    store = registry.client.store
    model = store.get_registered_model(name)
    policy = registry.get_policy(name)
    history = store.get_alias_history(name)
    approvals = store.list_approvals(name)
    if as_json:
        echo_json(
            {
                **_model_json(model),
                "policy": policy.to_dict(),
                "alias_history": history,
                "approvals": approvals,
            }
        )
        return
    stdout().print(render.model_view(model, policy, history, approvals))


@app.command("versions")
def list_versions(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List the versions of a model, newest first: status, aliases, source, run, metrics."""
    registry = _registry(ctx)
    versions = _all_versions(registry.client, name)
    if as_json:
        echo_json(versions)
        return
    console = stdout()
    if not versions:
        console.print(f"{name!r} has no versions yet", style="dim")
        return
    keys = render.metric_keys(versions, render.policy_metrics(registry.get_policy(name)))
    table, hidden = render.versions_table(name, versions, keys, console.width)
    console.print(table)
    if hidden:
        console.print(
            f"metrics not shown: {', '.join(hidden)} (use --json to see them all)",
            style="dim",
            soft_wrap=True,
        )


# -- registering and policies ----------------------------------------------------------------
@app.command("register")
def register_model(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            help="The logged model: runs:/<run-id>/<artifact path>.", show_default=False
        ),
    ],
    name: Annotated[str, typer.Argument(help="Model name (created if new).", show_default=False)],
    description: Annotated[
        str, typer.Option("--description", "-d", help="Description of the new version.")
    ] = "",
) -> None:
    """Register a logged model as the next version of NAME (with its run's metrics)."""
    version = _registry(ctx).register_model(model_uri, name, description=description)
    stdout().print(
        Text.assemble(
            "registered ",
            (f"{version.name} version {version.version}", "bold"),
            f" ({version.uri}) from {version.source}",
        ),
        soft_wrap=True,
    )


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="YAML policy to store (aliases: {champion: {gates: [...]}}); "
            "without it, show the current one.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Set the promotion policy of a model from a YAML file, or show it."""
    registry = _registry(ctx)
    if file is not None:
        # An absolute path, so it is always read as a file (never as YAML text).
        current = registry.set_policy(name, file.resolve())
    else:
        current = registry.get_policy(name)
    if as_json:
        echo_json(current.to_dict())
        return
    console = stdout()
    if file is not None:
        console.print(Text.assemble("set the promotion policy of ", (name, "bold")))
    console.print(render.policy_view(current, name))


# -- aliases, promotion and approvals ---------------------------------------------------------
@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    version: Annotated[int, _VERSION],
    to: Annotated[
        str, typer.Option("--to", help="Alias to move, e.g. champion.", show_default=False)
    ],
    reason: Annotated[str, _REASON] = "",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only evaluate the gates; move nothing."),
    ] = False,
) -> None:
    """Move an alias to a version if every gate of the model's policy passes.

    Prints each gate with the numbers it compared; exits 1 when any gate fails.
    """
    registry = _registry(ctx)
    console = stdout()
    if dry_run:
        decision = registry.check_gates(name, version, to)
        results = [to_jsonable(r) for r in decision.results]
        _print_gates(results, name, version, to)
        if not decision.passed:
            raise _refused(name, version, to, results, dry_run=True)
        holder = registry.client.store.get_registered_model(name).aliases.get(to)
        before = "none" if holder is None else str(holder)
        console.print(f"dry run: {to} would move {before} → {version}; nothing changed")
        return
    try:
        decision = registry.promote(name, version, to=to, reason=reason)
    except PromotionRefused as exc:
        results = list(exc.details.get("gates", []))
        _print_gates(results, name, version, to)
        raise _refused(name, version, to, results, dry_run=False) from None
    _print_gates([to_jsonable(r) for r in decision.results], name, version, to)
    if decision.moved is not None:
        console.print(render.move_text(decision.moved), style="bold")


def _print_gates(results: list[dict[str, Any]], name: str, version: int, alias: str) -> None:
    console = stdout()
    if not results:
        console.print(f"no gates guard {alias!r} of {name!r}", style="dim")
        return
    console.print(render.gates_table(results, f"gates for {name} version {version} → {alias}"))


def _refused(
    name: str, version: int, alias: str, results: list[dict[str, Any]], *, dry_run: bool
) -> PromotionRefused:
    """The error after the gate table: which gates failed (their numbers are in the table)."""
    failed = [str(r["gate"]) for r in results if not r["passed"]]
    verb, tail = (
        ("would not become", " (dry run: nothing changed)")
        if dry_run
        else (
            "cannot become",
            "",
        )
    )
    return PromotionRefused(
        f"version {version} of {name!r} {verb} {alias!r}: {len(failed)} of {len(results)} "
        f"gates failed ({', '.join(failed)}){tail}",
        gates=results,
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    version: Annotated[int, _VERSION],
    alias: Annotated[
        str,
        typer.Option(
            "--for", help="The alias the approval is for, e.g. champion.", show_default=False
        ),
    ],
    comment: Annotated[str, typer.Option("--comment", "-m", help="A note kept with it.")] = "",
    approver: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Who approves (default: LOOPML_USER, else the OS user).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Approve a version for an alias (what an approval gate counts)."""
    approval = _registry(ctx).approve(
        name, version, alias=alias, approver=approver, comment=comment
    )
    stdout().print(
        Text.assemble(
            (approval.approver, "bold"),
            f" approved {approval.name} version {approval.version} for {approval.alias!r}",
        ),
        soft_wrap=True,
    )


@app.command("alias")
def move_alias(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. staging.", show_default=False)],
    version: Annotated[
        int | None,
        typer.Argument(
            min=1, help="Version to point it at (not with --delete).", show_default=False
        ),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    reason: Annotated[str, _REASON] = "",
) -> None:
    """Point an alias that no gate guards at a version, or delete an alias.

    Guarded aliases move only with `loopml models promote`.
    """
    if delete == (version is not None):
        raise typer.BadParameter(
            "give either a VERSION or --delete", param_hint="'VERSION' / '--delete'"
        )
    registry = _registry(ctx)
    if version is None:
        move = registry.delete_alias(name, alias, reason=reason)
    else:
        move = registry.set_alias(name, alias, version, reason=reason)
    stdout().print(render.move_text(move), style="bold")


# -- evaluation and packaging ----------------------------------------------------------------
_TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _read_table(path: Path) -> Any:
    kind = _TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidArgument(
            f"cannot read {path.name!r}: DATA must be a .csv or .parquet file",
            path=str(path),
        )
    pd: Any = importlib.import_module("pandas")  # untyped: no stubs are installed
    return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    alias: Annotated[
        str, typer.Option("--alias", help="The alias to return (default: champion).")
    ] = "champion",
    to: Annotated[
        int | None,
        typer.Option("--to", help="A version that held the alias before (default: the last)."),
    ] = None,
    reason: Annotated[str, _REASON] = "",
) -> None:
    """Return an alias to the version it pointed at before its last move (a server following
    the alias swaps back within its poll interval)."""
    moved = _registry(ctx).rollback(name, alias, to=to, reason=reason)
    stdout().print(render.move_text(moved), style="bold")


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            help="Model to evaluate: models:/<name>/<version>, models:/<name>@<alias>, "
            "runs:/<run-id>/<path> or a folder.",
            show_default=False,
        ),
    ],
    data: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A .csv or .parquet file with the features and the target column.",
            show_default=False,
        ),
    ],
    target: Annotated[str, typer.Option("--target", help="Column holding the labels.")] = "target",
    dataset_name: Annotated[
        str | None,
        typer.Option(
            "--dataset-name",
            help="Name recorded for the dataset (default: the file name without extension).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Evaluate a model on a labelled table and record the metrics in an evaluation run.

    Evaluations of registered versions on the same data are what `beats` gates compare.
    """
    from loopml.evaluation import evaluate as run_evaluation
    from loopml.tracking import fluent

    client = client_of(ctx)
    frame = _read_table(data)
    # evaluate records through the process-wide client: point it at this command's store.
    fluent.set_tracking(
        client.settings.resolved_store_uri, artifact_uri=client.settings.resolved_artifact_uri
    )
    result = run_evaluation(
        model_uri, frame, targets=target, dataset_name=dataset_name or data.stem
    )
    if as_json:
        echo_json(
            {
                "model_uri": result.model_uri,
                "task": result.task,
                "metrics": result.metrics,
                "dataset_digest": result.dataset_digest,
                "run_id": result.run_id,
            }
        )
        return
    stdout().print(render.evaluation_view(model_uri, dataset_name or data.stem, result))


@app.command("build")
def build(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            help="Model to package: models:/<name>/<version>, models:/<name>@<alias>, "
            "runs:/<run-id>/<path> or a folder.",
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option("--target", help="bundle, docker, k8s or onnx.", show_default=False),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output folder (new or empty).", file_okay=False, show_default=False
        ),
    ],
    image: Annotated[
        str | None,
        typer.Option("--image", help="k8s: the image the Deployment runs.", show_default=False),
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", min=1, help="k8s: number of replicas.", show_default=False),
    ] = None,
) -> None:
    """Package a model for deployment: a bundle, a Docker context, Kubernetes manifests or ONNX."""
    from loopml.packaging.build import build as run_build

    options: dict[str, Any] = {}
    if image is not None:
        options["image"] = image
    if replicas is not None:
        options["replicas"] = replicas
    console = stdout()
    with console.status(f"building {target} ..."):
        result = run_build(model_uri, target, out, client=client_of(ctx), **options)
    console.print(render.build_view(model_uri, result))
