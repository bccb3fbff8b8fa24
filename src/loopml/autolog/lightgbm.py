"""Autologging for LightGBM: ``lightgbm.train`` and the scikit-learn API (``LGBMModel.fit``).

With validation sets, each one's metrics are logged per boosting round as metric series named
``<set>-<metric>`` (e.g. ``valid_0-binary_logloss``), with the round as the step.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Final

from loopml.autolog.boosting import log_eval_results, subclasses_in
from loopml.autolog.estimators import first_rows, fit_wrapper, log_dataset, log_model
from loopml.autolog.params import flatten_params
from loopml.autolog.patches import patch
from loopml.autolog.sessions import FitSession, fit_session

__all__ = ["FLAVOR", "patch_lightgbm"]

FLAVOR: Final = "lightgbm"


def patch_lightgbm() -> int:
    """Patch ``lightgbm.train`` and the ``fit`` of LightGBM's estimators; returns the count."""
    import lightgbm
    import lightgbm.sklearn

    count = int(patch(lightgbm, "train", _wrap_train))
    wrapper = fit_wrapper(FLAVOR, _log_sklearn_evals)
    for cls in subclasses_in(lightgbm.sklearn.LGBMModel, "lightgbm.sklearn"):
        count += patch(cls, "fit", wrapper)
    return count


def _log_sklearn_evals(session: FitSession, model: Any) -> None:
    log_eval_results(session, getattr(model, "evals_result_", None) or {})


def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        with fit_session(FLAVOR, "lightgbm.train") as session:
            if session is None:
                return original(*args, **kwargs)
            try:
                bound = inspect.signature(original).bind(*args, **kwargs)
            except TypeError:  # the call itself is wrong: let the original raise its own error
                return original(*args, **kwargs)
            # The raw data is freed when the Dataset is built: take what is needed now.
            train_set = bound.arguments.get("train_set")
            raw = session.safely("the training dataset", _raw_data, train_set)
            recorded: dict[str, Any] = {}
            recorder = session.safely("the evaluation results", _recorder, recorded)
            if recorder is not None:
                bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []), recorder]
            booster = original(*bound.args, **bound.kwargs)
            _log_train(session, bound.arguments, booster, recorded, raw)
            return booster

    return train


def _recorder(recorded: dict[str, Any]) -> Any:
    import lightgbm

    return lightgbm.record_evaluation(recorded)


def _raw_data(train_set: Any) -> tuple[Any, Any] | None:
    data = getattr(train_set, "data", None)
    if data is None or isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return None  # already built, or a file on disk
    return data, getattr(train_set, "label", None)


def _log_train(
    session: FitSession,
    arguments: dict[str, Any],
    booster: Any,
    recorded: dict[str, Any],
    raw: tuple[Any, Any] | None,
) -> None:
    params = dict(arguments.get("params") or {})
    if arguments.get("num_boost_round") is not None:
        params["num_boost_round"] = arguments["num_boost_round"]
    session.safely("the params", session.log_params, flatten_params(params))
    session.safely("the evaluation results", log_eval_results, session, recorded)
    if session.config.log_datasets and raw is not None:
        session.safely("the training dataset", log_dataset, session, raw[0], raw[1])
    if session.config.log_models:
        example = session.safely("the input example", first_rows, raw[0]) if raw else None
        session.safely("the model", log_model, booster, example)
