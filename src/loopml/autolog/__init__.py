"""Autologging: ``loopml.autolog()`` records every training call without changing the code.

Patched: scikit-learn's ``fit`` (every estimator, Pipeline, the searches), ``xgboost.train``
and ``XGBModel.fit``, ``lightgbm.train`` and ``LGBMModel.fit``, for the libraries that are
installed. Only the outermost call of nested training is logged. See docs/evaluation.md.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from collections.abc import Callable

from loopml.autolog import config as _config
from loopml.autolog.patches import patched_targets, restore_all
from loopml.autolog.sessions import AutologWarning

__all__ = ["AutologWarning", "autolog", "patched_targets"]


def _integrations() -> list[tuple[str, Callable[[], int]]]:
    from loopml.autolog.lightgbm import patch_lightgbm
    from loopml.autolog.sklearn import patch_sklearn
    from loopml.autolog.xgboost import patch_xgboost

    return [("sklearn", patch_sklearn), ("xgboost", patch_xgboost), ("lightgbm", patch_lightgbm)]


def autolog(
    *,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    silent: bool = False,
) -> None:
    """Turn on (or, with ``disable=True``, off) autologging of training calls.

    For each outermost ``fit``/``train``: a run is started if none is active (and ended when
    training returns, FAILED if it raises); the params, training metrics (``training_*``),
    per-round evaluation results of boosting libraries, a digest of the training data (input
    with context ``"training"``, unless ``log_datasets=False``) and the fitted model (artifact
    ``model``, unless ``log_models=False``) are logged. Logging never breaks training: errors
    become :class:`AutologWarning` warnings (nothing at all with ``silent=True``).

    Calling it again only changes the settings; ``disable=True`` restores the original methods.
    """
    if disable:
        _config.set_current(None)
        restore_all()
        return
    config = _config.AutologConfig(
        log_models=bool(log_models), log_datasets=bool(log_datasets), silent=bool(silent)
    )
    for module, install in _integrations():
        if importlib.util.find_spec(module) is None:
            continue
        try:
            install()
        except Exception as exc:  # a library version we cannot patch: the others still work
            if not silent:
                warnings.warn(
                    f"loopml autolog: could not patch {module}: {type(exc).__name__}: {exc}",
                    AutologWarning,
                    stacklevel=2,
                )
    _config.set_current(config)


class _CallableModule(types.ModuleType):
    """``loopml.autolog`` names both this package and the function: once the package has been
    imported, ``loopml.autolog`` may be the package, so calling it calls the function."""

    def __call__(
        self,
        *,
        log_models: bool = True,
        log_datasets: bool = True,
        disable: bool = False,
        silent: bool = False,
    ) -> None:
        autolog(log_models=log_models, log_datasets=log_datasets, disable=disable, silent=silent)


sys.modules[__name__].__class__ = _CallableModule
