"""Autologging ``fit`` of scikit-learn-style estimators (scikit-learn's own, XGBoost's and
LightGBM's scikit-learn APIs): params, training metrics, the dataset and the fitted model."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from loopml.autolog.params import flatten_params
from loopml.autolog.sessions import FitSession, fit_session

__all__ = [
    "INPUT_EXAMPLE_ROWS",
    "first_rows",
    "fit_wrapper",
    "log_dataset",
    "log_model",
    "source_type",
]

INPUT_EXAMPLE_ROWS = 5

ExtraLogger = Callable[[FitSession, Any], None]


def fit_wrapper(flavor: str, extra: ExtraLogger | None = None) -> Callable[[Any], Any]:
    """A ``make_wrapper`` for :func:`loopml.autolog.patches.patch` of a ``fit`` method.

    ``extra(session, estimator)`` logs what is particular to a library (e.g. evaluation
    results per boosting round) after the common part.
    """

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            cls = type(self)
            with fit_session(flavor, f"{cls.__module__}.{cls.__qualname__}") as session:
                result = original(self, *args, **kwargs)
                if session is not None:
                    _log_fit(session, self, args, kwargs, extra)
                return result

        return fit

    return make


def _log_fit(
    session: FitSession,
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    extra: ExtraLogger | None,
) -> None:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    session.safely("the params", session.log_params, _params_of(estimator))
    if X is not None and y is not None:
        session.safely("the training metrics", _log_training_metrics, session, estimator, X, y)
    session.safely("the search results", _log_search_results, session, estimator)
    if extra is not None:
        session.safely("the evaluation results", extra, session, estimator)
    if session.config.log_datasets and X is not None:
        session.safely("the training dataset", log_dataset, session, X, y)
    if session.config.log_models and callable(getattr(estimator, "predict", None)):
        example = session.safely("the input example", first_rows, X) if X is not None else None
        session.safely("the model", log_model, estimator, example)


def _params_of(estimator: Any) -> dict[str, str]:
    get_params = getattr(estimator, "get_params", None)
    if not callable(get_params):
        return {}
    return flatten_params(get_params(deep=True))


def _estimator_type(estimator: Any) -> str | None:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classifier"
    if is_regressor(estimator):
        return "regressor"
    return None


def _log_training_metrics(session: FitSession, estimator: Any, X: Any, y: Any) -> None:
    import numpy as np

    from loopml.evaluation.metrics import classification_metrics, regression_metrics

    kind = _estimator_type(estimator)
    if kind is None:
        return
    y_true = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if y_true.ndim != 1:  # multi-output: no single set of training metrics
        return
    y_pred = np.asarray(estimator.predict(X))
    if y_pred.ndim != 1:
        return
    if kind == "classifier":
        proba = None
        if callable(getattr(estimator, "predict_proba", None)):
            proba = np.asarray(estimator.predict_proba(X))
        classes = getattr(estimator, "classes_", None)
        metrics = classification_metrics(
            y_true, y_pred, proba=proba, classes=None if classes is None else np.asarray(classes)
        ).metrics
    else:
        metrics = regression_metrics(y_true, y_pred)
    session.log_metrics({f"training_{k}": v for k, v in metrics.items()})


def _log_search_results(session: FitSession, estimator: Any) -> None:
    """For a hyper-parameter search: the best candidate's params and cross-validated score."""
    best = getattr(estimator, "best_params_", None)
    if not isinstance(best, Mapping):
        return
    session.log_params(flatten_params(best, prefix="best_"))
    score = getattr(estimator, "best_score_", None)
    if isinstance(score, numbers.Real):  # NumPy floats included
        session.log_metrics({"best_cv_score": float(score)})


def source_type(data: Any) -> str:
    module = type(data).__module__.partition(".")[0]
    return {"pandas": "pandas", "scipy": "scipy", "numpy": "numpy"}.get(module, module)


def log_dataset(session: FitSession, X: Any, y: Any) -> None:
    from loopml.evaluation.datasets import dataset_digest

    session.log_dataset("training_data", dataset_digest(X, y), source_type(X))


def first_rows(X: Any, n: int = INPUT_EXAMPLE_ROWS) -> Any:
    """The first ``n`` rows of ``X``: a DataFrame stays one, sparse rows become dense."""
    from loopml.evaluation.datasets import is_dataframe

    if is_dataframe(X):
        return X.iloc[:n]
    if hasattr(X, "tocsr"):
        return X.tocsr()[:n].toarray()
    import numpy as np

    return np.asarray(X)[:n]


def log_model(model: Any, input_example: Any) -> None:
    from loopml.models.api import log_model as _log_model

    _log_model(model, name="model", input_example=input_example)
