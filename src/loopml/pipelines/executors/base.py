"""The executor interface, and the body of one step attempt that every executor runs.

The runner (the driver) decides what runs, records it and handles retries and timeouts; an
executor only runs :func:`run_task` somewhere (a thread, the calling thread, a Ray worker)
and hands back a future of its :class:`StepOutcome`.
"""

from __future__ import annotations

import abc
import enum
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.entities import now_ms
from loopml.core.pipelines import StepOutput

if TYPE_CHECKING:
    from loopml.core.datasets import DatasetVersion
    from loopml.pipelines.context import TrackingPlan
    from loopml.pipelines.steps import Step
    from loopml.settings import Settings
    from loopml.tracking.client import Client


class _Missing(enum.Enum):
    """ "No value in memory": an enum member, so it stays itself when pickled to a worker."""

    MISSING = "missing"


_MISSING: Any = _Missing.MISSING


@dataclass(slots=True)
class TaskInput:
    """One argument of a step: a stored output (``output``), possibly already in memory
    (``value``), or a dataset version (``dataset``, loaded as a table unless ``as_path``)."""

    output: StepOutput | None = None
    value: Any = _MISSING
    dataset: DatasetVersion | None = None
    as_path: bool = False


@dataclass(slots=True)
class StepTask:
    """Everything one attempt of a step needs; picklable (Ray ships it to a worker)."""

    pipeline_run_id: str
    node: str
    step: Step
    params: dict[str, Any]
    inputs: dict[str, TaskInput]
    settings: Settings
    tracking: TrackingPlan | None = None
    attempt: int = 1
    keep_values: bool = True  # hand the output objects back (in-process executors)


@dataclass(slots=True)
class StepOutcome:
    outputs: tuple[StepOutput, ...] = ()
    values: dict[str, Any] | None = None
    logs: str = ""
    datasets_read: tuple[str, ...] = ()
    datasets_written: tuple[str, ...] = ()
    tracking_run_id: str = ""  # the step's tracking run, if it made one
    model_versions: tuple[str, ...] = ()
    error: str = ""  # "" on success; otherwise the traceback
    error_summary: str = ""
    retryable: bool = False
    start_ms: int = 0
    end_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


class Executor(abc.ABC):
    """Runs step attempts; ``name`` is recorded on the pipeline run."""

    name: str = ""
    interrupts: bool = False  # whether cancel() stops a running attempt (then a timeout retries)
    in_process: bool = True  # outputs come back as objects too (no reload for the next step)

    @abc.abstractmethod
    def submit(self, task: StepTask) -> Future[StepOutcome]:
        """Start one attempt; the future never raises (errors come back in the outcome)."""

    def has_room(self, task: StepTask) -> bool:
        """Whether the task's resources fit now beside those already running."""
        return True

    def cancel(self, future: Future[StepOutcome]) -> None:
        """Stop a running attempt if the executor can (best effort)."""
        future.cancel()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the executor's threads or cluster connection."""


def run_task(task: StepTask, client: Client) -> StepOutcome:
    """Run one attempt in the current thread: load inputs, run the function with its tracking
    run active and its output captured, store the outputs. Never raises for a step error."""
    from loopml.pipelines import _logs
    from loopml.pipelines.context import StepContext, step_context
    from loopml.pipelines.serializers import load_value, outputs_cache, store_value
    from loopml.tracking.fluent import use_run

    started = now_ms()
    context = StepContext(
        client=client,
        pipeline_run_id=task.pipeline_run_id,
        step_name=task.node,
        tracking=task.tracking,
        attempt=task.attempt,
    )
    artifacts = client.artifact_store()
    cache_dir = outputs_cache(client.settings.workspace)
    with _logs.capture() as buffer:
        try:
            kwargs = dict(task.params)
            for arg, given in task.inputs.items():
                if given.value is not _MISSING:
                    kwargs[arg] = given.value
                elif given.dataset is not None:
                    kwargs[arg] = _load_dataset(context, given.dataset, given.as_path)
                elif given.output is not None:
                    kwargs[arg] = load_value(artifacts, given.output, cache_dir=cache_dir)
            with use_run(client, lambda: context.tracking_run_id), step_context(context):
                result = task.step.fn(**kwargs)
            names = task.step.options.outputs
            values = _split(task.step, result)
            outputs = tuple(
                store_value(
                    artifacts,
                    values[name],
                    name=name,
                    serializer=task.step.options.serializers.get(name),
                )
                for name in names
            )
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                _end_run(client, context, "KILLED")
                raise
            _end_run(client, context, "FAILED")
            return StepOutcome(
                logs=_logs.text_of(buffer),
                datasets_read=tuple(context.datasets_read),
                datasets_written=tuple(context.datasets_written),
                tracking_run_id=context.started_run_id,
                error="".join(traceback.format_exception(exc)),
                error_summary=f"{type(exc).__name__}: {exc}",
                retryable=isinstance(exc, task.step.options.retry_on),
                start_ms=started,
                end_ms=now_ms(),
            )
    produced = _end_run(client, context, "FINISHED")
    return StepOutcome(
        outputs=outputs,
        values=values if task.keep_values else None,
        logs=_logs.text_of(buffer),
        datasets_read=tuple(context.datasets_read),
        datasets_written=tuple(context.datasets_written),
        tracking_run_id=context.started_run_id,
        model_versions=produced,
        start_ms=started,
        end_ms=now_ms(),
    )


def _end_run(client: Client, context: Any, status: str) -> tuple[str, ...]:
    """End the step's tracking run if it made one; the model versions it registered."""
    from loopml.models.api import MODEL_VERSIONS_TAG

    if not context.started_run_id:
        return ()
    run = client.set_terminated(context.started_run_id, status)
    return tuple(v for v in run.tags.get(MODEL_VERSIONS_TAG, "").split(",") if v)


def _split(step: Step, result: Any) -> dict[str, Any]:
    from loopml.errors import InvalidArgument

    names = step.options.outputs
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise InvalidArgument(
            f"step {step.name!r} declares outputs {list(names)} but returned "
            f"{type(result).__name__}"
            f"{f' of {len(result)} values' if isinstance(result, (tuple, list)) else ''}"
            f": return a tuple of {len(names)} values"
        )
    return dict(zip(names, result, strict=True))


def _load_dataset(context: Any, version: DatasetVersion, as_path: bool) -> Any:
    from loopml.data.tables import read_table
    from loopml.data.versions import load_dataset

    path = load_dataset(context.client, version.name, version.version)
    context.record_read(version)
    if as_path or version.rows is None:
        return path
    return read_table(path)
