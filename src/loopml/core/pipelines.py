"""Pipeline records: a pipeline run, the runs of its steps, and the outputs they stored.

Plain values the store keeps. The steps, graph, cache and executors that produce them live in
:mod:`loopml.pipelines`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidArgument

_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_NODE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$")
MAX_PIPELINE_NAME = 250


class PipelineStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # every step completed or came from the cache
    FAILED = "FAILED"  # at least one step failed (the others' results are kept)
    KILLED = "KILLED"  # interrupted (Ctrl-C, SIGTERM) or abandoned by a dead process


class StepStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # ran and stored its outputs
    CACHED = "CACHED"  # skipped: an earlier success with the same cache key gave its outputs
    FAILED = "FAILED"  # raised (after its retries) or timed out
    SKIPPED = "SKIPPED"  # not run because a step it depends on failed

    @property
    def succeeded(self) -> bool:
        return self in (StepStatus.COMPLETED, StepStatus.CACHED)


@dataclass(frozen=True, slots=True)
class StepOutput:
    """One stored output of a step: its content digest in the artifact store and how to read it.

    ``serializer`` names the serializer that wrote it; ``kind`` is ``file`` or ``directory``.
    """

    name: str
    digest: str
    serializer: str
    type_name: str = ""
    size: int = 0
    kind: str = "file"


@dataclass(frozen=True, slots=True)
class StepInput:
    """One input of a step: the content digest it had and where it came from.

    ``source`` is ``step:<node>/<output>`` for another step's output, ``dataset:<name>@<v>``
    for a dataset version, or ``value`` for a value passed in the pipeline's code.
    """

    name: str
    digest: str
    source: str = "value"


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of one pipeline run.

    ``name`` is the step's node name, unique in its run (``train``, ``train_2``); ``step`` the
    qualified name of its function. ``key_parts`` holds what the cache key was made of (code
    digest, parameters, input digests, library versions), so ``explain`` can say what changed;
    ``reason`` says why the step ran or was skipped. ``cached_from`` is
    ``<pipeline_run_id>/<name>`` of the run whose outputs a CACHED step reused.
    ``datasets_read`` and ``datasets_written`` hold ``name@version``; ``model_versions`` holds
    ``name/version`` of model versions the step registered.
    """

    pipeline_run_id: str
    name: str
    pipeline: str
    step: str
    status: StepStatus
    cache_key: str = ""
    key_parts: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    upstream: tuple[str, ...] = ()
    inputs: tuple[StepInput, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[StepOutput, ...] = ()
    datasets_read: tuple[str, ...] = ()
    datasets_written: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()
    tracking_run_id: str = ""
    cached_from: str = ""
    attempts: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    error: str = ""
    logs_digest: str = ""
    resources: dict[str, float] = field(default_factory=dict)

    def output(self, name: str) -> StepOutput:
        for out in self.outputs:
            if out.name == name:
                return out
        raise InvalidArgument(
            f"step {self.name!r} has no output {name!r}: outputs are "
            f"{[o.name for o in self.outputs]}"
        )


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One run of a pipeline.

    ``ref`` is the import reference (``package.module:attribute`` or ``path/file.py:attribute``)
    that re-creates the pipeline for ``resume`` and the scheduler ("" when it cannot be
    imported, e.g. defined in ``__main__``). ``trigger`` says what started it (``manual``,
    ``schedule:<name>``, ``resume:<run id>``). ``tracking_run_id`` is the parent tracking run
    whose children are the steps' runs.
    """

    run_id: str
    pipeline: str
    status: PipelineStatus
    ref: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    start_ms: int = 0
    end_ms: int | None = None
    tracking_run_id: str = ""
    resumed_from: str = ""
    trigger: str = "manual"
    user: str = ""
    error: str = ""


def check_pipeline_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise InvalidArgument(
            f"invalid pipeline run id {run_id!r}: must be 32 lowercase hex characters"
        )
    return run_id


def check_pipeline_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_PIPELINE_NAME:
        raise InvalidArgument(
            f"invalid pipeline name {name!r}: must be a non-empty string of at most "
            f"{MAX_PIPELINE_NAME} characters"
        )
    return name


def check_node_name(name: object) -> str:
    if not isinstance(name, str) or not _NODE_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid step name {name!r}: must start with a letter or '_' and hold at most 200 "
            "letters, digits, '_', '.' or '-'"
        )
    return name
