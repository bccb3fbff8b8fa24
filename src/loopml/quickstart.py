"""The quickstart: train four classifiers on a bundled dataset and track each as a run.

No network is needed: the breast-cancer dataset ships inside scikit-learn. A parent run
``quickstart`` holds one child run per model, each with its params, the dataset it read, test
metrics, a confusion-matrix figure and the pickled model. ``loopml quickstart`` calls
:func:`run`; it is also a worked example of the :class:`~loopml.Client` API.

scikit-learn, NumPy and matplotlib are imported inside the functions, so importing this
module (and the command line) stays fast.
"""

from __future__ import annotations

import hashlib
import numbers
import pickle
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rich import box
from rich.console import Console
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

from loopml.core.entities import DatasetInput, RunStatus
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["EXPERIMENT", "METRICS", "ModelResult", "QuickstartResult", "run"]

EXPERIMENT = "quickstart"
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
SEED = 42
TEST_SIZE = 0.25
DATASET = "breast_cancer"
DATASET_SOURCE = "sklearn.datasets.load_breast_cancer"


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One trained model: its run, its test metrics and how long it trained."""

    name: str
    run_id: str
    metrics: Mapping[str, float]
    train_time_s: float


@dataclass(frozen=True, slots=True)
class QuickstartResult:
    experiment_id: str
    parent_run_id: str
    models: tuple[ModelResult, ...]
    best: ModelResult  # by F1 on the test set
    store_uri: str
    artifact_uri: str


def run(*, client: Client | None = None, console: Console | None = None) -> QuickstartResult:
    """Train and track the four quickstart models; print a comparison and what to try next.

    ``client`` defaults to one built from the ``LOOPML_*`` settings (closed afterwards);
    ``console`` to the terminal.
    """
    _require_sklearn()
    console = console or Console()
    if client is not None:
        return _run(client, console)
    from loopml.tracking.client import Client

    with Client() as own:
        return _run(own, console)


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise InvalidArgument(
            "the quickstart needs scikit-learn, which is not installed: "
            "pip install 'loopml[sklearn]'"
        ) from None


class _Split(NamedTuple):
    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any
    labels: list[str]


def _load() -> _Split:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_SIZE, stratify=data.target, random_state=SEED
    )
    return _Split(x_train, x_test, y_train, y_test, [str(n) for n in data.target_names])


def _run(client: Client, console: Console) -> QuickstartResult:
    with console.status("loading scikit-learn and the breast-cancer dataset..."):
        split = _load()
        models = _models(SEED)
        figures = _figures_available()
    if not figures:
        console.print(
            "matplotlib is not installed: skipping the confusion-matrix figures "
            "(pip install 'loopml[plot]')",
            style="yellow",
        )
    inputs = [
        DatasetInput(
            DATASET, _digest(split.x_train, split.y_train), DATASET_SOURCE, "sklearn", "training"
        ),
        DatasetInput(
            DATASET, _digest(split.x_test, split.y_test), DATASET_SOURCE, "sklearn", "evaluation"
        ),
    ]
    experiment_id = client.set_experiment(EXPERIMENT).experiment_id
    results: list[ModelResult] = []
    with _tracked(client, experiment_id, "quickstart") as parent_id:
        client.log_params(
            parent_id,
            {
                "dataset": DATASET,
                "test_size": TEST_SIZE,
                "seed": SEED,
                "n_train": len(split.y_train),
                "n_test": len(split.y_test),
                "n_features": split.x_train.shape[1],
            },
        )
        client.log_inputs(parent_id, inputs)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task("training", total=len(models))
            for name, model in models:
                progress.update(task, description=f"training {name}")
                with _tracked(client, experiment_id, name, parent_id) as run_id:
                    client.log_params(run_id, {"model": name, **_flat_params(model)})
                    client.log_inputs(run_id, inputs)
                    result = _train(client, run_id, name, model, split, figures)
                results.append(result)
                progress.console.print(
                    Text.assemble(
                        ("✓ ", "green"),
                        f"{name:<20} f1 {result.metrics['f1']:.4f}  ({result.train_time_s:.2f}s)",
                    )
                )
                progress.advance(task)
            progress.update(task, description=f"trained {len(models)} models")
        best = max(results, key=lambda r: r.metrics["f1"])
        client.log_metrics(parent_id, {"best_f1": best.metrics["f1"]})
        client.set_tags(parent_id, {"best_model": best.name, "best_run_id": best.run_id})
    outcome = QuickstartResult(
        experiment_id=experiment_id,
        parent_run_id=parent_id,
        models=tuple(results),
        best=best,
        store_uri=client.settings.resolved_store_uri,
        artifact_uri=client.settings.resolved_artifact_uri,
    )
    _report(console, client, outcome)
    return outcome


def _train(
    client: Client, run_id: str, name: str, model: Any, split: _Split, figures: bool
) -> ModelResult:
    """Fit one model, then log its test metrics, confusion matrix and pickled self."""
    started = time.perf_counter()
    model.fit(split.x_train, split.y_train)
    train_time = time.perf_counter() - started
    metrics = _evaluate(model, split.x_test, split.y_test)
    client.log_metrics(run_id, {**metrics, "train_time_s": train_time})
    if figures:
        figure = _confusion_figure(model, split.x_test, split.y_test, split.labels, name)
        client.log_figure(run_id, figure, "confusion_matrix.png")
    client.log_bytes(run_id, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "model.pkl")
    return ModelResult(name, run_id, metrics, train_time)


@contextmanager
def _tracked(
    client: Client, experiment_id: str, name: str, parent_run_id: str | None = None
) -> Iterator[str]:
    """A run that ends FINISHED, or FAILED (KILLED on Ctrl-C) if the block raises."""
    run_id = client.create_run(experiment_id, name=name, parent_run_id=parent_run_id).run_id
    status = RunStatus.FAILED
    try:
        yield run_id
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    finally:
        client.set_terminated(run_id, status)


def _models(seed: int) -> list[tuple[str, Any]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def scaled(estimator: Any) -> Any:
        return Pipeline([("scaler", StandardScaler()), ("clf", estimator)])

    return [
        ("logistic_regression", scaled(LogisticRegression(max_iter=1000, random_state=seed))),
        ("random_forest", RandomForestClassifier(n_estimators=200, random_state=seed)),
        ("gradient_boosting", GradientBoostingClassifier(random_state=seed)),
        ("k_nearest_neighbors", scaled(KNeighborsClassifier(n_neighbors=7))),
    ]


def _flat_params(estimator: Any) -> dict[str, Any]:
    """The estimator's (deep) params that are plain values; nested estimators are left out."""
    params: dict[str, Any] = {}
    for key, value in sorted(estimator.get_params(deep=True).items()):
        if isinstance(value, str) and value == "deprecated":
            continue  # scikit-learn's placeholder for a parameter on its way out
        if value is None or isinstance(value, (str, bool, numbers.Number)):
            params[key] = value
    return params


def _digest(*arrays: Any) -> str:
    """SHA-256 of the arrays' bytes (features, then labels): the identity of a data split."""
    import numpy as np

    sha = hashlib.sha256()
    for array in arrays:
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def _evaluate(model: Any, x_test: Any, y_test: Any) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = model.predict(x_test)
    scores = model.predict_proba(x_test)[:, 1]
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "precision": float(precision_score(y_test, predicted)),
        "recall": float(recall_score(y_test, predicted)),
        "f1": float(f1_score(y_test, predicted)),
        "roc_auc": float(roc_auc_score(y_test, scores)),
    }


def _figures_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _confusion_figure(model: Any, x_test: Any, y_test: Any, labels: list[str], title: str) -> Any:
    """A confusion-matrix figure drawn with the Agg canvas (no GUI, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_test, model.predict(x_test))
    figure = Figure(figsize=(4.2, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2
    for (i, j), count in _cells(matrix):
        color = "white" if count > threshold else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=color)
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    figure.colorbar(image, ax=ax)
    return figure


def _cells(matrix: Any) -> Iterator[tuple[tuple[int, int], int]]:
    rows, cols = matrix.shape
    for i in range(rows):
        for j in range(cols):
            yield (i, j), int(matrix[i, j])


def _report(console: Console, client: Client, result: QuickstartResult) -> None:
    table = Table(
        title=f"Test-set scores in experiment {EXPERIMENT!r} (★ best F1)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("model", no_wrap=True)
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("train", justify="right")
    for model in result.models:
        best = model is result.best
        table.add_row(
            Text(model.name + (" ★" if best else "")),
            *(f"{model.metrics[m]:.4f}" for m in METRICS),
            f"{model.train_time_s:.2f}s",
            style="bold green" if best else None,
        )
    console.print()
    console.print(table)
    console.print()
    settings = client.settings
    if not settings.store_uri and not settings.artifact_uri:
        console.print(Text.assemble(("Workspace: ", "bold"), str(settings.workspace.absolute())))
    console.print(Text.assemble(("Metadata:  ", "bold"), result.store_uri))
    console.print(Text.assemble(("Artifacts: ", "bold"), result.artifact_uri))
    ranked = sorted(result.models, key=lambda m: m.metrics["f1"], reverse=True)
    first, second = ranked[0].run_id, ranked[1].run_id
    console.print()
    console.print("Next, try:", style="bold")
    for command in (
        f"loopml runs list --experiment {EXPERIMENT}",
        f"loopml runs show {first}",
        f"loopml runs compare {first} {second} --only-diff",
        f"loopml runs list --experiment {EXPERIMENT} --filter 'metrics.f1 > 0.95' "
        "--order-by 'metrics.roc_auc DESC'",
    ):
        console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)
