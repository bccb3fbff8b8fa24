"""Domain entities: small immutable values, free of any storage or web library.

Times are integers in milliseconds since the Unix epoch (the convention of MLflow's API, so
the same numbers travel through the REST layer unchanged).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class LifecycleStage(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class Metric(NamedTuple):
    """One point of a metric series. A tuple, because millions of them are made in loops."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its parameters, tags and the latest value of each metric."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    user: str
    notes: str
    artifact_uri: str
    lifecycle_stage: LifecycleStage
    host: str
    pid: int | None
    heartbeat_time: int | None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset a run read: what it is called, its content digest and where it came from."""

    name: str
    digest: str
    source: str = ""
    source_type: str = ""
    context: str = ""


class ArtifactKind(enum.StrEnum):
    FILE = "file"
    DIRECTORY = "directory"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An artifact recorded for a run: its path inside the run and its content digest.

    For a directory the digest names a manifest object listing every file.
    """

    path: str
    digest: str
    size: int
    kind: ArtifactKind = ArtifactKind.FILE
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Environment:
    """Where and with what a run executed: enough to reproduce it."""

    python_version: str
    platform: str
    packages: Mapping[str, str]
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    command: Sequence[str] = ()
    cwd: str = ""
    hostname: str = ""
    user: str = ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; pass ``next_page_token`` back to get the next."""

    items: Sequence[T]
    next_page_token: str | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
