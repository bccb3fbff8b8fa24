"""Pipelines by reference (``package.module:attribute`` or ``path/to/file.py:attribute``): what
the CLI, the scheduler and ``resume`` use to find a pipeline again."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.pipelines import StepRun, check_pipeline_run_id
from loopml.errors import InvalidArgument, InvalidState

if TYPE_CHECKING:
    from loopml.pipelines.definition import Pipeline, PipelineResult
    from loopml.pipelines.executors.base import Executor
    from loopml.pipelines.runner import Progress
    from loopml.tracking.client import Client


def load_pipeline(ref: str) -> Pipeline:
    """The pipeline that ``ref`` names; ``InvalidArgument`` says what is wrong with it."""
    from loopml.pipelines.definition import Pipeline

    if not isinstance(ref, str) or ref.count(":") < 1 or not ref.rpartition(":")[2]:
        raise InvalidArgument(
            f"invalid pipeline reference {ref!r}: write module:attribute (e.g. "
            "mypkg.pipelines:training) or path/to/file.py:attribute"
        )
    where, _, attribute = ref.rpartition(":")
    module = _import(where, ref)
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            found = sorted(n for n, v in vars(module).items() if isinstance(v, Pipeline))
            raise InvalidArgument(
                f"pipeline reference {ref!r}: {where!r} has no attribute {attribute!r}; "
                f"pipelines there: {found or 'none'}"
            )
        target = getattr(target, part)
    if not isinstance(target, Pipeline):
        raise InvalidArgument(
            f"pipeline reference {ref!r} names a {type(target).__name__}, not a @pipeline function"
        )
    # a file path is kept absolute: resume and the scheduler may run from another folder
    target.ref = (
        f"{Path(where).expanduser().resolve()}:{attribute}" if where.endswith(".py") else ref
    )
    return target


def _import(where: str, ref: str) -> Any:
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise InvalidArgument(f"pipeline reference {ref!r}: no such file {str(path)!r}")
        name = "loopml_pipeline_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InvalidArgument(f"pipeline reference {ref!r}: cannot import {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))  # its sibling modules import as in a script
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        raise InvalidArgument(
            f"pipeline reference {ref!r}: cannot import module {where!r} ({exc}); is it on "
            "PYTHONPATH, or did you mean a file path ending in .py?"
        ) from None


def run_pipeline_ref(
    client: Client,
    ref: str,
    params: Mapping[str, Any] | None = None,
    *,
    trigger: str = "manual",
    executor: str | Executor = "local",
    cache: bool = True,
    progress: Progress | None = None,
) -> PipelineResult:
    """Import the pipeline ``ref`` names and run it with ``params``."""
    from loopml.pipelines.definition import execute

    return execute(
        load_pipeline(ref),
        dict(params or {}),
        client=client,
        trigger=trigger,
        executor=executor,
        cache=cache,
        progress=progress,
    )


def resume(
    client: Client,
    pipeline_run_id: str,
    *,
    executor: str | Executor = "local",
    progress: Progress | None = None,
) -> PipelineResult:
    """Run a finished pipeline run again with its parameters, reusing every step that
    succeeded with an unchanged key (even with the cache off): only what failed, was skipped or
    changed runs. The new run records ``resumed_from``."""

    earlier = client.store.get_pipeline_run(check_pipeline_run_id(pipeline_run_id))
    if not earlier.ref:
        raise InvalidState(
            f"pipeline run {pipeline_run_id} cannot be resumed: its pipeline "
            f"{earlier.pipeline!r} was not started by reference (defined in a script's "
            "__main__?); run it with `loopml pipelines run module:attribute` or call "
            "resume_pipeline(pipeline, run_id)"
        )
    return resume_pipeline(
        client, load_pipeline(earlier.ref), pipeline_run_id, executor=executor, progress=progress
    )


def resume_pipeline(
    client: Client,
    target: Pipeline,
    pipeline_run_id: str,
    *,
    executor: str | Executor = "local",
    progress: Progress | None = None,
) -> PipelineResult:
    """:func:`resume` for a pipeline object at hand."""
    from loopml.pipelines.definition import execute

    earlier = client.store.get_pipeline_run(check_pipeline_run_id(pipeline_run_id))
    if earlier.pipeline != target.name:
        raise InvalidArgument(
            f"pipeline run {pipeline_run_id} is of pipeline {earlier.pipeline!r}, not "
            f"{target.name!r}"
        )
    reuse: dict[str, StepRun] = {
        s.name: s for s in client.store.list_step_runs(pipeline_run_id) if s.status.succeeded
    }
    return execute(
        target,
        earlier.params,
        client=client,
        executor=executor,
        trigger=f"resume:{pipeline_run_id}",
        resumed_from=pipeline_run_id,
        reuse=reuse,
        progress=progress,
    )
