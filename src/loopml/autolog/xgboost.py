"""Autologging for XGBoost: ``xgboost.train`` and the scikit-learn API (``XGBModel.fit``).

With evaluation sets, each one's metrics are logged per boosting round as metric series named
``<set>-<metric>`` (e.g. ``validation_0-logloss``), with the round as the step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from loopml.autolog.boosting import log_eval_results, subclasses_in
from loopml.autolog.estimators import fit_wrapper, log_model
from loopml.autolog.params import flatten_params
from loopml.autolog.patches import patch
from loopml.autolog.sessions import FitSession, fit_session

__all__ = ["FLAVOR", "patch_xgboost"]

FLAVOR: Final = "xgboost"


def patch_xgboost() -> int:
    """Patch ``xgboost.train`` and the ``fit`` of XGBoost's estimators; returns the count."""
    import xgboost
    import xgboost.sklearn

    count = int(patch(xgboost, "train", _wrap_train))
    wrapper = fit_wrapper(FLAVOR, _log_sklearn_evals)
    for cls in subclasses_in(xgboost.sklearn.XGBModel, "xgboost.sklearn"):
        count += patch(cls, "fit", wrapper)
    return count


def _log_sklearn_evals(session: FitSession, model: Any) -> None:
    try:
        results = model.evals_result()
    except Exception:  # no eval_set was given
        return
    log_eval_results(session, results)


def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        with fit_session(FLAVOR, "xgboost.train") as session:
            if session is None:
                return original(*args, **kwargs)
            bound = _bind(original, args, kwargs)
            recorded: dict[str, Any] = {}
            if bound is not None and bound.arguments.get("evals_result") is None:
                bound.arguments["evals_result"] = recorded
                args, kwargs = bound.args, bound.kwargs
            booster = original(*args, **kwargs)
            if bound is not None:
                _log_train(session, bound.arguments, booster, recorded)
            return booster

    return train


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    import inspect

    try:
        return inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:  # the call itself is wrong: let the original raise its own error
        return None


def _log_train(
    session: FitSession, arguments: dict[str, Any], booster: Any, recorded: dict[str, Any]
) -> None:
    params = dict(arguments.get("params") or {})
    for name in ("num_boost_round", "early_stopping_rounds", "maximize"):
        if arguments.get(name) is not None:
            params[name] = arguments[name]
    session.safely("the params", session.log_params, flatten_params(params))
    results = arguments.get("evals_result") or recorded
    session.safely("the evaluation results", log_eval_results, session, results)
    dtrain = arguments.get("dtrain")
    if session.config.log_datasets and dtrain is not None:
        session.safely("the training dataset", _log_dmatrix, session, dtrain)
    if session.config.log_models:
        example = session.safely("the input example", _example_rows, dtrain)
        session.safely("the model", log_model, booster, example)


def _log_dmatrix(session: FitSession, dtrain: Any) -> None:
    from loopml.evaluation.datasets import dataset_digest

    data = dtrain.get_data()
    labels = dtrain.get_label()
    session.log_dataset(
        "training_data", dataset_digest(data, labels if labels.size else None), "xgboost"
    )


def _example_rows(dtrain: Any) -> Any:
    """The first rows of a DMatrix, as a DataFrame when it has feature names."""
    if dtrain is None:
        return None
    from loopml.autolog.estimators import INPUT_EXAMPLE_ROWS

    rows = dtrain.get_data()[:INPUT_EXAMPLE_ROWS].toarray()
    names = dtrain.feature_names
    if not names:
        return rows
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=list(names))
