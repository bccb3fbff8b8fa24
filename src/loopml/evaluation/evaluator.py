"""``loopml.evaluate``: metrics and plots of a model on a labelled dataset, logged to a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from loopml.core.entities import RunStatus
from loopml.errors import InvalidArgument
from loopml.evaluation.datasets import dataset_digest, split_data
from loopml.evaluation.metrics import classification_metrics, regression_metrics
from loopml.evaluation.model_refs import ModelRef, registry_version, resolve_model
from loopml.evaluation.recording import Evaluated, evaluation_tags, record
from loopml.evaluation.result import EvaluationResult
from loopml.evaluation.tasks import CLASSIFICATION, check_task, infer_task

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from loopml.tracking.client import Client

__all__ = ["EVALUATION_EXPERIMENT", "evaluate"]

EVALUATION_EXPERIMENT: Final = "evaluations"


def evaluate(
    model: Any,
    data: Any,
    *,
    targets: Any,
    task: str | None = None,
    dataset_name: str = "evaluation",
    run_id: str | None = None,
    log: bool = True,
) -> EvaluationResult:
    """Score ``model`` on ``data`` and (with ``log=True``) record the result in a run.

    ``model`` is a model URI (``runs:/<run_id>/model``, ``models:/name/3``,
    ``models:/name@alias``, a local folder), a loaded model, or any fitted estimator with a
    ``predict`` method. ``data`` is a DataFrame whose column ``targets`` holds the labels, or
    features (DataFrame or array) with ``targets`` an array-like of one label per row.

    ``task`` is ``"classification"`` or ``"regression"``; None infers it from the labels and
    the model. The result is logged to the run ``run_id``, else to the active run, else to a new
    run ``eval-<model>`` in the experiment ``evaluations``, which is ended afterwards.
    """
    chosen_task = check_task(task)
    if not isinstance(dataset_name, str) or not dataset_name.strip():
        raise InvalidArgument(f"invalid dataset_name {dataset_name!r}: must be a non-empty string")
    labeled = split_data(data, targets)
    ref = resolve_model(model)
    predictions = _labels_out(ref.predictor.predict(labeled.features), len(labeled.targets))
    has_proba = "predict_proba" in ref.methods
    if chosen_task is None:
        chosen_task = infer_task(
            labeled.targets,
            predictions,
            has_proba=has_proba,
            estimator_type=ref.estimator_type,
        )
    outcome = None
    if chosen_task == CLASSIFICATION:
        proba = _probabilities(ref, labeled.features) if has_proba else None
        classes = ref.classes
        outcome = classification_metrics(
            labeled.targets,
            predictions,
            proba=proba,
            classes=None if classes is None else _array(classes),
        )
        metrics = outcome.metrics
    else:
        metrics = regression_metrics(labeled.targets, predictions)
    evaluated = Evaluated(
        task=chosen_task,
        metrics=metrics,
        targets=labeled.targets,
        predictions=predictions,
        outcome=outcome,
        dataset_name=dataset_name,
        dataset_digest=dataset_digest(labeled.features, labeled.targets),
        source_type=labeled.source_type,
    )
    if not log:
        return _result(evaluated, ref, None, (), {})
    return _log(evaluated, ref, run_id)


def _log(evaluated: Evaluated, ref: ModelRef, run_id: str | None) -> EvaluationResult:
    from loopml.tracking import fluent

    client = fluent.get_client()
    registered = registry_version(ref.uri, client)
    tags = evaluation_tags(
        evaluated, ref.uri, None if registered is None else (registered.name, registered.version)
    )
    created = False
    if run_id is not None:
        client.get_run(run_id)  # NotFound now, before anything is written
    elif (active := fluent.active_run()) is not None:
        run_id = active.run_id
    else:
        run_id = _new_run(client, ref)
        created = True
    try:
        artifacts = record(client, run_id, evaluated, tags)
    except BaseException:
        if created:
            client.set_terminated(run_id, RunStatus.FAILED)
        raise
    if created:
        client.set_terminated(run_id, RunStatus.FINISHED)
    return _result(evaluated, ref, run_id, artifacts, tags)


def _new_run(client: Client, ref: ModelRef) -> str:
    experiment = client.set_experiment(EVALUATION_EXPERIMENT)
    return client.create_run(experiment.experiment_id, name=f"eval-{ref.label}").run_id


def _result(
    evaluated: Evaluated,
    ref: ModelRef,
    run_id: str | None,
    artifacts: tuple[str, ...],
    tags: dict[str, str],
) -> EvaluationResult:
    outcome = evaluated.outcome
    return EvaluationResult(
        metrics=dict(evaluated.metrics),
        task=evaluated.task,
        dataset_digest=evaluated.dataset_digest,
        run_id=run_id,
        artifacts=artifacts,
        confusion_matrix=None if outcome is None else outcome.confusion_matrix,
        labels=None if outcome is None else outcome.labels,
        model_uri=ref.uri,
        tags=tags,
    )


def _array(values: Any) -> NDArray[Any]:
    import numpy as np

    return values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)


def _labels_out(predictions: Any, n_rows: int) -> NDArray[Any]:
    """The model's predictions as a 1-D array with one value per row."""
    out = _array(predictions)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out.ravel()
    if out.ndim != 1 or len(out) != n_rows:
        raise InvalidArgument(
            f"the model returned predictions of shape {out.shape} for {n_rows} rows: "
            "evaluate needs one predicted value per row",
            shape=list(out.shape),
        )
    return out


def _probabilities(ref: ModelRef, features: Any) -> NDArray[Any] | None:
    try:
        return _array(ref.predictor.predict_proba(features))
    except (AttributeError, NotImplementedError):  # advertised but unavailable (e.g. SVC)
        return None
