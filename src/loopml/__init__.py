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
    from loopml.autolog import autolog
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
    from loopml.evaluation import EvaluationResult, evaluate
    from loopml.models.api import load_model, log_model
    from loopml.pipelines import dataset, get_step_context, pipeline, step
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
        log_dataset_version,
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

_LAZY: dict[str, str] = {
    "ActiveRun": "loopml.tracking.fluent",
    "active_run": "loopml.tracking.fluent",
    "end_run": "loopml.tracking.fluent",
    "flush": "loopml.tracking.fluent",
    "get_client": "loopml.tracking.fluent",
    "log_artifact": "loopml.tracking.fluent",
    "log_artifacts": "loopml.tracking.fluent",
    "log_batch": "loopml.tracking.fluent",
    "log_dataset_version": "loopml.tracking.fluent",
    "log_dict": "loopml.tracking.fluent",
    "log_figure": "loopml.tracking.fluent",
    "log_input": "loopml.tracking.fluent",
    "log_metric": "loopml.tracking.fluent",
    "log_metrics": "loopml.tracking.fluent",
    "log_param": "loopml.tracking.fluent",
    "log_params": "loopml.tracking.fluent",
    "log_text": "loopml.tracking.fluent",
    "set_tag": "loopml.tracking.fluent",
    "set_tags": "loopml.tracking.fluent",
    "set_tracking": "loopml.tracking.fluent",
    "start_run": "loopml.tracking.fluent",
    "ArtifactRef": "loopml.core.entities",
    "DatasetInput": "loopml.core.entities",
    "Environment": "loopml.core.entities",
    "Experiment": "loopml.core.entities",
    "Metric": "loopml.core.entities",
    "Page": "loopml.core.entities",
    "Run": "loopml.core.entities",
    "RunStatus": "loopml.core.entities",
    "Client": "loopml.tracking.client",
    "load_model": "loopml.models.api",
    "log_model": "loopml.models.api",
    "Settings": "loopml.settings",
    "errors": "loopml.errors",
    "autolog": "loopml.autolog",
    "evaluate": "loopml.evaluation",
    "step": "loopml.pipelines",
    "pipeline": "loopml.pipelines",
    "dataset": "loopml.pipelines",
    "get_step_context": "loopml.pipelines",
    "EvaluationResult": "loopml.evaluation",
}

__all__ = [
    "ActiveRun",
    "ArtifactRef",
    "Client",
    "DatasetInput",
    "Environment",
    "EvaluationResult",
    "Experiment",
    "Metric",
    "Page",
    "Run",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "autolog",
    "dataset",
    "end_run",
    "errors",
    "evaluate",
    "flush",
    "get_client",
    "get_step_context",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_dataset_version",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipeline",
    "set_tag",
    "set_tags",
    "set_tracking",
    "start_run",
    "step",
]


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
