"""What a running step can ask about itself: ``get_step_context()`` inside a step body."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.datasets import dataset_input
from loopml.errors import InvalidState

if TYPE_CHECKING:
    import pandas as pd

    from loopml.core.datasets import DatasetVersion
    from loopml.tracking.client import Client


@dataclass(frozen=True, slots=True)
class TrackingPlan:
    """The tracking run a step gets when it first logs: nested in the pipeline's run."""

    experiment_id: str
    parent_run_id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class StepContext:
    """The running step: its client, its records' ids, and the datasets it reads and writes.

    The step's tracking run is made on first use (``tracking_run_id``, the fluent API, a
    logged model), so a step that logs nothing costs no run. Datasets read or added through
    the context are recorded on the step run and, as inputs, on that tracking run (context
    ``input`` or ``output``).
    """

    client: Client
    pipeline_run_id: str
    step_name: str
    tracking: TrackingPlan | None = None
    attempt: int = 1
    datasets_read: list[str] = field(default_factory=list)
    datasets_written: list[str] = field(default_factory=list)
    started_run_id: str = ""

    @property
    def tracking_run_id(self) -> str:
        """The step's tracking run (created now if it has none yet)."""
        if not self.started_run_id and self.tracking is not None:
            plan = self.tracking
            run = self.client.create_run(
                plan.experiment_id,
                name=plan.name,
                tags=plan.tags,
                parent_run_id=plan.parent_run_id,
                capture_environment=False,  # the pipeline's run holds the environment
            )
            if plan.params:
                self.client.log_params(run.run_id, plan.params)
            self.started_run_id = run.run_id
        return self.started_run_id

    def load_dataset(self, name: str, version: int | None = None) -> Path:
        """The local path of a dataset version (default: the latest), recorded as read."""
        from loopml.data.versions import find_version, load_dataset

        found = find_version(self.client, name, version)
        path = load_dataset(self.client, name, found.version)
        self.record_read(found)
        return path

    def read_dataset(self, name: str, version: int | None = None) -> pd.DataFrame:
        """A table dataset version as a DataFrame, recorded as read."""
        from loopml.data.tables import read_table

        return read_table(self.load_dataset(name, version))

    def add_dataset(
        self, source: str | os.PathLike[str] | pd.DataFrame, *, name: str
    ) -> DatasetVersion:
        """Store ``source`` as a version of dataset ``name``, recorded as written."""
        from loopml.data.versions import add_dataset

        version = add_dataset(self.client, source, name=name, profiler=_profiler())
        self.record_written(version)
        return version

    def record_read(self, version: DatasetVersion) -> None:
        self._record(version, "input", self.datasets_read)

    def record_written(self, version: DatasetVersion) -> None:
        self._record(version, "output", self.datasets_written)

    def _record(self, version: DatasetVersion, context: str, into: list[str]) -> None:
        label = f"{version.name}@{version.version}"
        if label in into:
            return
        into.append(label)
        if self.tracking is not None:
            self.client.log_inputs(
                self.tracking_run_id,
                [dataset_input(version, context)],
            )


def _profiler() -> Any:
    """Monitoring's profile when its libraries are installed (the drift reference of data)."""
    try:
        from loopml.monitoring.profile import profile_dataset
    except ImportError:
        return None
    return lambda frame: profile_dataset(frame).to_dict()


_context: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "loopml_step_context", default=None
)


def get_step_context() -> StepContext:
    """The context of the step running in this thread; ``InvalidState`` outside a step."""
    context = _context.get()
    if context is None:
        raise InvalidState(
            "get_step_context() was called outside a running pipeline step; call it inside "
            "a @step function while its pipeline runs"
        )
    return context


@contextmanager
def step_context(context: StepContext) -> Iterator[StepContext]:
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)
