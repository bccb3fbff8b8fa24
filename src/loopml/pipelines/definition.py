"""``@pipeline``: a function whose step calls make a graph, run by :meth:`Pipeline.run`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from loopml.core.pipelines import PipelineRun, PipelineStatus, StepRun, StepStatus
from loopml.errors import InvalidArgument, PipelineFailed
from loopml.pipelines.graph import Graph, Tracer, is_json_value
from loopml.pipelines.runner import Progress, Runner, RunPlan

if TYPE_CHECKING:
    from loopml.pipelines.executors.base import Executor
    from loopml.tracking.client import Client

EXECUTORS = ("local", "sequential", "ray")
RUN_OPTIONS = ("executor", "client", "cache", "workers", "trigger", "progress")


@dataclass
class PipelineResult:
    """A finished pipeline run: its record, its steps' records, and a way to their outputs."""

    run: PipelineRun
    steps: dict[str, StepRun]
    client: Client
    values: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.run.status is PipelineStatus.COMPLETED

    def output(self, step: str, name: str = "output") -> Any:
        """The value of a step's output: in memory when this process made it, else loaded from
        the artifact store (a cached or remote step)."""
        from loopml.pipelines.serializers import load_value, outputs_cache

        record = self.steps.get(step)
        if record is None:
            raise InvalidArgument(
                f"pipeline run {self.run.run_id} has no step {step!r}: steps are "
                f"{sorted(self.steps)}"
            )
        if not record.status.succeeded:
            raise InvalidArgument(
                f"step {step!r} of run {self.run.run_id} has no outputs: it ended "
                f"{record.status.value}"
            )
        in_memory = self.values.get(step, {})
        if name in in_memory:
            return in_memory[name]
        cache_dir = outputs_cache(self.client.settings.workspace)
        return load_value(self.client.artifact_store(), record.output(name), cache_dir=cache_dir)

    def raise_for_status(self) -> PipelineResult:
        """This result, or ``PipelineFailed`` naming each failed step and its error."""
        if self.ok:
            return self
        failed = {
            r.name: (r.error.strip().splitlines() or [""])[-1]
            for r in self.steps.values()
            if r.status is StepStatus.FAILED
        }
        detail = "; ".join(f"{name}: {error}" for name, error in failed.items())
        raise PipelineFailed(
            f"pipeline {self.run.pipeline!r} run {self.run.run_id} ended "
            f"{self.run.status.value}: {detail or self.run.error}",
            run_id=self.run.run_id,
            steps=failed,
        )


class Pipeline:
    """A function made a pipeline by :func:`pipeline`."""

    def __init__(self, fn: Callable[..., Any], *, name: str, experiment: str | None) -> None:
        self.fn = fn
        self.name = name
        self.experiment = experiment or name
        self.signature = inspect.signature(fn)
        taken = sorted(set(self.signature.parameters) & set(RUN_OPTIONS))
        if taken:
            raise InvalidArgument(
                f"pipeline {name!r} has parameters named {taken}: these names are run options "
                f"of Pipeline.run ({', '.join(RUN_OPTIONS)}); rename them"
            )
        self.ref = _default_ref(fn)  # how resume and the scheduler import it again
        functools.update_wrapper(self, fn)

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline's parameters with defaults applied; JSON-able values only."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            names = list(self.signature.parameters)
            raise InvalidArgument(
                f"pipeline {self.name!r}: {exc}; its parameters are {names}"
            ) from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        for key, value in values.items():
            if not is_json_value(value):  # the graph's rule: finite numbers, str keys
                raise InvalidArgument(
                    f"pipeline {self.name!r}: parameter {key!r} is a {type(value).__name__}; "
                    "pipeline parameters must be JSON values (finite numbers, strings, lists, "
                    "dicts with string keys); read data in a step instead"
                )
        return values

    def trace(self, params: Mapping[str, Any]) -> Graph:
        """The graph the body builds for these parameters (nothing runs)."""
        tracer = Tracer()
        with tracer.active():
            self.fn(**params)
        if not tracer.graph.nodes:
            raise InvalidArgument(f"pipeline {self.name!r} calls no step")
        return tracer.graph

    def run(
        self,
        *,
        executor: str | Executor = "local",
        client: Client | None = None,
        cache: bool = True,
        workers: int | None = None,
        trigger: str = "manual",
        progress: Progress | None = None,
        **params: Any,
    ) -> PipelineResult:
        """Run the pipeline with ``params``; returns when every step has ended.

        ``executor``: ``local`` (threads; parallel branches run at once), ``sequential`` (the
        calling thread), ``ray`` (each step a Ray task) or an :class:`Executor`. ``cache=False``
        runs every step. A step failure does not raise: check ``result.ok`` or call
        ``result.raise_for_status()``.
        """
        return execute(
            self,
            params,
            executor=executor,
            client=client,
            cache=cache,
            workers=workers,
            trigger=trigger,
            progress=progress,
        )

    def __call__(self, **params: Any) -> PipelineResult:
        return self.run(**params)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    *, name: str | None = None, experiment: str | None = None
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name=..., experiment=...)``.

    The body calls steps; how their outputs feed other steps' inputs is the graph. Its runs are
    tracked in experiment ``experiment`` (default: the pipeline's name).
    """
    from loopml.core.pipelines import check_pipeline_name

    def wrap(function: Callable[..., Any]) -> Pipeline:
        if not callable(function):
            raise InvalidArgument(f"@pipeline needs a function, got {function!r}")
        return Pipeline(
            function, name=check_pipeline_name(name or function.__name__), experiment=experiment
        )

    return wrap(fn) if fn is not None else wrap


def execute(
    target: Pipeline,
    params: Mapping[str, Any],
    *,
    executor: str | Executor = "local",
    client: Client | None = None,
    cache: bool = True,
    workers: int | None = None,
    trigger: str = "manual",
    progress: Progress | None = None,
    resumed_from: str = "",
    reuse: Mapping[str, StepRun] | None = None,
) -> PipelineResult:
    """Run ``target`` (what :meth:`Pipeline.run` and ``resume`` call)."""
    from loopml.tracking.fluent import get_client

    client = client or get_client()
    values = target.bind(params)
    graph = target.trace(values)
    chosen = make_executor(executor, client, workers=workers)
    runner = Runner(client, chosen, cache=cache, progress=progress)
    plan = RunPlan(
        pipeline=target.name,
        experiment=target.experiment,
        graph=graph,
        params=values,
        ref=target.ref,
        trigger=trigger,
        resumed_from=resumed_from,
        reuse=dict(reuse or {}),
    )
    try:
        record = runner.run(plan)
    finally:
        if isinstance(executor, str):  # made here: ours to close
            chosen.close()
        client.flush()
    return PipelineResult(record, dict(runner.records), client, runner.values)


def _default_ref(fn: Callable[..., Any]) -> str:
    """``module:qualname``, or ``file.py:qualname`` for a script's ``__main__``; "" for a
    function that cannot be imported again (defined inside another function)."""
    import sys

    qualname = getattr(fn, "__qualname__", "")
    if not qualname or "<locals>" in qualname:
        return ""
    module = getattr(fn, "__module__", "")
    if module == "__main__":
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        return f"{Path(path).resolve()}:{qualname}" if path else ""
    if module.startswith("loopml_pipeline_"):  # imported from a file by load_pipeline
        path = getattr(sys.modules.get(module), "__file__", None)
        return f"{path}:{qualname}" if path else ""
    return f"{module}:{qualname}" if module else ""


def make_executor(
    executor: str | Executor, client: Client, *, workers: int | None = None
) -> Executor:
    from loopml.pipelines.executors.base import Executor as ExecutorBase

    if isinstance(executor, ExecutorBase):
        return executor
    if executor == "local":
        from loopml.pipelines.executors.local import LocalExecutor

        count = client.settings.pipeline_workers if workers is None else workers
        return LocalExecutor(client, workers=count)
    if executor == "sequential":
        from loopml.pipelines.executors.local import SequentialExecutor

        return SequentialExecutor(client)
    if executor == "ray":
        from loopml.pipelines.executors.ray import RayExecutor

        return RayExecutor(client)
    raise InvalidArgument(
        f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)} or pass an "
        "Executor instance"
    )
