"""Pipelines: typed steps, cached and recorded with their lineage, run locally or on Ray.

    import loopml

    @loopml.step
    def ingest() -> pd.DataFrame: ...

    @loopml.step(retries=2, timeout_s=600)
    def train(frame: pd.DataFrame, C: float = 1.0) -> LogisticRegression: ...

    @loopml.pipeline
    def training(C: float = 1.0) -> None:
        train(ingest(), C=C)

    result = training.run(C=0.5)        # executor="local" | "sequential" | "ray"

``import loopml.pipelines`` is cheap: each name loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.pipelines.cache import CacheKey
    from loopml.pipelines.context import StepContext, get_step_context
    from loopml.pipelines.definition import Pipeline, PipelineResult, pipeline
    from loopml.pipelines.executors.base import Executor
    from loopml.pipelines.graph import dataset
    from loopml.pipelines.lineage import LineageNode, model_lineage
    from loopml.pipelines.refs import load_pipeline, resume, resume_pipeline, run_pipeline_ref
    from loopml.pipelines.serializers import Serializer, register_serializer
    from loopml.pipelines.steps import Step, step
    from loopml.pipelines.tuning import SearchResult, Trial, search

_LAZY: dict[str, str] = {
    "CacheKey": "loopml.pipelines.cache",
    "Executor": "loopml.pipelines.executors.base",
    "LineageNode": "loopml.pipelines.lineage",
    "Pipeline": "loopml.pipelines.definition",
    "PipelineResult": "loopml.pipelines.definition",
    "SearchResult": "loopml.pipelines.tuning",
    "Serializer": "loopml.pipelines.serializers",
    "Step": "loopml.pipelines.steps",
    "Trial": "loopml.pipelines.tuning",
    "StepContext": "loopml.pipelines.context",
    "dataset": "loopml.pipelines.graph",
    "get_step_context": "loopml.pipelines.context",
    "load_pipeline": "loopml.pipelines.refs",
    "model_lineage": "loopml.pipelines.lineage",
    "pipeline": "loopml.pipelines.definition",
    "register_serializer": "loopml.pipelines.serializers",
    "resume": "loopml.pipelines.refs",
    "resume_pipeline": "loopml.pipelines.refs",
    "run_pipeline_ref": "loopml.pipelines.refs",
    "search": "loopml.pipelines.tuning",
    "step": "loopml.pipelines.steps",
}

__all__ = [
    "CacheKey",
    "Executor",
    "LineageNode",
    "Pipeline",
    "PipelineResult",
    "SearchResult",
    "Serializer",
    "Step",
    "StepContext",
    "Trial",
    "dataset",
    "get_step_context",
    "load_pipeline",
    "model_lineage",
    "pipeline",
    "register_serializer",
    "resume",
    "resume_pipeline",
    "run_pipeline_ref",
    "search",
    "step",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
