"""loopml: track, version, serve and watch models in one closed loop.

``import loopml`` is cheap: the SDK below loads on first use.

    import loopml

    with loopml.start_run(experiment="churn"):
        loopml.log_params({"model": "rf", "n_estimators": 100})
        loopml.log_metric("accuracy", 0.93)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopml._version import __version__

if TYPE_CHECKING:
    from loopml.core.entities import (
        ArtifactRef,
        DatasetInput,
        Environment,
        Experiment,
        Metric,
        Page,
        Run,
        RunStatus,
    )
    from loopml.settings import Settings
    from loopml.tracking.client import Client
    from loopml.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        get_client,
        log_artifact,
        log_artifacts,
        log_batch,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
        set_tracking,
        start_run,
    )

_FLUENT = (
    "ActiveRun active_run end_run flush get_client log_artifact log_artifacts log_batch "
    "log_dict log_figure log_input log_metric log_metrics log_param log_params log_text "
    "set_tag set_tags set_tracking start_run"
).split()
_ENTITIES = "ArtifactRef DatasetInput Environment Experiment Metric Page Run RunStatus".split()

_LAZY: dict[str, str] = {
    **dict.fromkeys(_FLUENT, "loopml.tracking.fluent"),
    **dict.fromkeys(_ENTITIES, "loopml.core.entities"),
    "Client": "loopml.tracking.client",
    "Settings": "loopml.settings",
    "errors": "loopml.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "errors":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
