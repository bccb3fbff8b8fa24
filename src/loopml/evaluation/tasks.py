"""The evaluation task (classification or regression): checking it, or inferring it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["CLASSIFICATION", "REGRESSION", "TASKS", "check_task", "infer_task"]

CLASSIFICATION: Final = "classification"
REGRESSION: Final = "regression"
TASKS: Final = (CLASSIFICATION, REGRESSION)


def check_task(task: object) -> str | None:
    """``task`` if it is None or a known task name, else ``InvalidArgument``."""
    if task is None:
        return None
    if isinstance(task, str) and task in TASKS:
        return task
    raise InvalidArgument(
        f"unknown task {task!r}: must be one of {', '.join(map(repr, TASKS))}, or None to "
        "infer it from the targets and the model",
        task=repr(task),
    )


def infer_task(
    targets: NDArray[Any],
    predictions: NDArray[Any],
    *,
    has_proba: bool,
    estimator_type: str | None,
) -> str:
    """Classification or regression, judged from the labels, the model and its predictions.

    Text, boolean and categorical labels mean classification, fractional numbers regression.
    For whole-number labels the model decides: a scikit-learn classifier or regressor says so
    itself; otherwise a ``predict_proba`` method, or predictions that are all among the labels,
    mean classification.
    """
    import numpy as np

    if targets.dtype.kind not in "iuf":
        return CLASSIFICATION
    if targets.dtype.kind == "f" and not np.all(np.mod(targets, 1) == 0):
        return REGRESSION
    if estimator_type in TASKS_BY_ESTIMATOR_TYPE:
        return TASKS_BY_ESTIMATOR_TYPE[estimator_type]
    if has_proba:
        return CLASSIFICATION
    if predictions.dtype.kind in "iufb" and predictions.ndim == 1:
        try:
            if np.all(np.isin(predictions, targets)):
                return CLASSIFICATION
        except TypeError:
            pass
        return REGRESSION
    return CLASSIFICATION


TASKS_BY_ESTIMATOR_TYPE: Final = {"classifier": CLASSIFICATION, "regressor": REGRESSION}
